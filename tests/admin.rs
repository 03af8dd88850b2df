//! Runtime API over real sockets: library-level (registry built in code, `admin::start_with`)
//! over 127.0.0.1 TCP and a unix socket, with real `socat` for the common paths, plus end-to-end
//! runs of the `harp` binary (the seed article's steps, `add server`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command as Proc, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harp::admin::{self, Admin, InfoHook, Listening};
use harp::config::{
    AccessLevel, Address, Capabilities, Config, Location, ProxyConfig, ServerConfig, ServerParams,
    StatsSocket,
};
use harp::events::EventBus;
use harp::model::{OpState, Registry};

fn srv(name: &str, port: u16, check: bool) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        params: ServerParams {
            check,
            rise: 2,
            fall: 2,
            inter: Duration::from_millis(300),
            ..Default::default()
        },
        location: Location::default(),
    }
}

fn config() -> Config {
    let mut fe = ProxyConfig::new(
        "fe",
        Capabilities {
            frontend: true,
            backend: false,
        },
        Location::default(),
    );
    fe.id = Some(2);
    fe.default_backend = Some("test".into());
    let mut be = ProxyConfig::new(
        "test",
        Capabilities {
            frontend: false,
            backend: true,
        },
        Location::default(),
    );
    be.id = Some(3);
    be.servers = vec![
        srv("webserver1", 29081, true),
        srv("webserver2", 29082, false),
    ];
    let mut c = Config {
        proxies: vec![fe, be],
        ..Default::default()
    };
    c.global.maxconn = Some(9985);
    c
}

fn sock(addr: Address, level: AccessLevel) -> StatsSocket {
    StatsSocket {
        addr,
        level,
        mode: None,
        user: None,
        group: None,
        location: Location::default(),
    }
}

struct Fixture {
    reg: Arc<Registry>,
    admin: Admin,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(timeout: Duration) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(config(), Arc::new(EventBus::new()));
        let mut unix = sock(
            Address::Unix(dir.path().join("admin.sock")),
            AccessLevel::Admin,
        );
        unix.mode = Some(0o600);
        let sockets = vec![
            sock(
                Address::Tcp("127.0.0.1:0".parse().unwrap()),
                AccessLevel::Admin,
            ),
            sock(
                Address::Tcp("127.0.0.1:0".parse().unwrap()),
                AccessLevel::User,
            ),
            unix,
        ];
        let hook: InfoHook = Arc::new(|| vec![("LuaEventsDropped".into(), "7".into())]);
        let admin = admin::start_with(reg.clone(), hook, &sockets, timeout).unwrap();
        Fixture {
            reg,
            admin,
            _dir: dir,
        }
    }

    fn tcp(&self, i: usize) -> SocketAddr {
        let tcp: Vec<SocketAddr> = self
            .admin
            .listening()
            .iter()
            .filter_map(|l| match l {
                Listening::Tcp(a) => Some(*a),
                _ => None,
            })
            .collect();
        tcp[i]
    }

    fn admin_port(&self) -> u16 {
        self.tcp(0).port()
    }

    fn user_port(&self) -> u16 {
        self.tcp(1).port()
    }

    fn unix(&self) -> PathBuf {
        self.admin
            .listening()
            .iter()
            .find_map(|l| match l {
                Listening::Unix(p) => Some(p.clone()),
                _ => None,
            })
            .unwrap()
    }
}

fn cli_raw(port: u16, data: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(data).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn socat_common_paths() {
    let f = Fixture::new(Duration::from_secs(10));
    let p = f.admin_port();
    assert_eq!(
        common::socat(p, "get weight test/webserver1"),
        "1 (initial 1)\n\n"
    );
    assert_eq!(
        common::socat(p, "set server test/webserver2 weight 300"),
        "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    );
    assert_eq!(
        common::socat(p, "set server test/webserver1 health down"),
        "\n"
    );
    assert_eq!(
        common::socat(p, "set server test/webserver2 state maint"),
        "\n"
    );
    let w1 = f.reg.find_server("test/webserver1").unwrap();
    let w2 = f.reg.find_server("test/webserver2").unwrap();
    assert_eq!(w1.op_state(), OpState::Stopped);
    assert!(w2.admin().maint());
    let state = common::socat(p, "show servers state test");
    assert!(state.starts_with("1\n# be_id be_name srv_id"), "{state}");
    assert!(
        state.contains("\n3 test 1 webserver1 127.0.0.1 0 0 1 1 "),
        "{state}"
    );
    assert!(
        state.contains("\n3 test 2 webserver2 127.0.0.1 0 1 1 1 "),
        "{state}"
    );
    let stat = common::socat(p, "show stat");
    assert!(stat.starts_with("# pxname,svname,qcur,"));
    assert!(stat.contains("test,webserver2,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,"));
    assert_eq!(common::socat(p, "show backend"), "# name\ntest\n\n");
    assert!(common::socat(p, "show info").starts_with("Name: harp\n"));
    assert!(common::socat(p, "show info").contains("\nLuaEventsDropped: 7\n"));
    assert_eq!(
        common::socat(p, "echo hello;echo world"),
        "hello\n\nworld\n\n"
    );
}

#[test]
fn unix_socket_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(Duration::from_secs(10));
    let path = f.unix();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = Proc::new("socat")
        .arg("stdio")
        .arg(format!("unix-connect:{}", path.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"show cli level\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "admin\n\n");
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"set server test/webserver1 state drain\n")
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert_eq!(r, "\n");
    assert!(f
        .reg
        .find_server("test/webserver1")
        .unwrap()
        .admin()
        .drain());
    f.admin.stop();
    assert!(!path.exists(), "unix socket file removed at stop");
}

#[test]
fn bad_inputs() {
    let f = Fixture::new(Duration::from_secs(10));
    let p = f.admin_port();
    let unknown = common::cli(p, "frobnicate");
    assert!(unknown.starts_with(
        "Unknown command: 'frobnicate', but maybe one of the following ones is a better match:\n"
    ));
    assert!(unknown.ends_with("  quit                                    : disconnect\n\n"));
    assert_eq!(
        common::cli(p, "get weight"),
        "Require 'backend/server'.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test state ready"),
        "Require 'backend/server'.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server nope/x state ready"),
        "No such backend.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test/nope state ready"),
        "No such server.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test/webserver2 state bogus"),
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test/webserver2 health"),
        "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test/webserver2 agent up"),
        "agent checks are not enabled on this server.\n\n"
    );
    assert_eq!(
        common::cli(p, "set weight test/webserver2 -1"),
        "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    );
    assert_eq!(
        common::cli(p, "set weight test/webserver2"),
        "Require <weight> or <weight%>.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test/webserver2 addr"),
        "set server <b>/<s> addr requires an address and optionally a port.\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test/webserver2 addr 300.1.1.1"),
        "Invalid addr '300.1.1.1'\n\n"
    );
    assert_eq!(
        common::cli(p, "set server test/webserver2 addr 127.0.0.3 port http"),
        "provided port is not an integer\n\n"
    );
    assert_eq!(
        common::cli(p, "enable health test/webserver2"),
        "Health check was not configured on this server, cannot enable.\n\n"
    );
    assert_eq!(
        common::cli(p, "del server test/webserver1"),
        "Only servers in maintenance mode can be deleted.\n\n"
    );
    assert_eq!(
        common::cli(p, "set maxconn server test/webserver1 -4"),
        "Value out of range.\n\n"
    );
    // binary garbage: a clear reply, the connection closes, the socket keeps working
    let g = cli_raw(p, b"\x00\xff\xfe\x01garbage\x7f\n");
    assert!(g.starts_with("Unknown command: '"), "{g:?}");
    // a 1 MiB line without newline: error then close, never unbounded buffering
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = vec![b'x'; 1 << 20];
    let _ = s.write_all(&big);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("The command is too big"), "{out:?}");
    assert_eq!(common::cli(p, "echo alive"), "alive\n\n");
}

#[test]
fn user_level_socket_reads_only() {
    let f = Fixture::new(Duration::from_secs(10));
    let p = f.user_port();
    assert_eq!(common::socat(p, "show cli level"), "user\n\n");
    assert_eq!(
        common::socat(p, "set server test/webserver1 state maint"),
        "Permission denied\n\n"
    );
    assert_eq!(
        common::socat(p, "disable server test/webserver1"),
        "Permission denied\n\n"
    );
    assert_eq!(
        common::socat(p, "add server test/x 127.0.0.1:1"),
        "Permission denied\n\n"
    );
    assert_eq!(common::socat(p, "operator"), "Permission denied\n\n");
    assert!(!f
        .reg
        .find_server("test/webserver1")
        .unwrap()
        .admin()
        .maint());
    assert!(common::socat(p, "show stat").contains("test,webserver1,"));
    assert_eq!(
        common::socat(p, "get weight test/webserver1"),
        "1 (initial 1)\n\n"
    );
    let help = common::socat(p, "help");
    assert!(help.contains("show stat") && !help.contains("set server"));
}

#[test]
fn prompt_mode_and_idle_timeout() {
    let f = Fixture::new(Duration::from_millis(500));
    let mut s = TcpStream::connect(("127.0.0.1", f.admin_port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"prompt\n").unwrap();
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\n> ");
    s.write_all(b"show cli level\n").unwrap();
    let mut buf = [0u8; 9];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"admin\n\n> ");
    // idle: closed after `stats timeout`
    let start = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn client_that_never_reads_does_not_block_others() {
    let f = Fixture::new(Duration::from_millis(800));
    let p = f.admin_port();
    // Many pipelined `show stat` in prompt mode, never reading: the replies fill the socket
    // buffers; the session must time out on its write without stalling anyone else.
    let mut hog = TcpStream::connect(("127.0.0.1", p)).unwrap();
    let mut req = b"prompt\n".to_vec();
    for _ in 0..3000 {
        req.extend_from_slice(b"show stat\n");
    }
    let _ = hog.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = hog.write_all(&req);
    let start = Instant::now();
    assert_eq!(common::cli(p, "echo still here"), "still here\n\n");
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(hog);
}

#[test]
fn thousand_concurrent_connections() {
    let f = Fixture::new(Duration::from_secs(10));
    let p = f.admin_port();
    let start = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..1000 {
        conns.push(TcpStream::connect(("127.0.0.1", p)).unwrap());
    }
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(b"get weight test/webserver1\n").unwrap();
    }
    for c in &mut conns {
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert_eq!(out, "1 (initial 1)\n\n");
    }
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn dynamic_server_lifecycle() {
    let f = Fixture::new(Duration::from_secs(10));
    let p = f.admin_port();
    assert_eq!(
        common::socat(p, "add server test/dyn 127.0.0.1:29083 weight 5"),
        "New server registered.\n\n"
    );
    assert_eq!(
        common::socat(p, "add server test/dyn 127.0.0.1:29083"),
        "Already exists a server with the same name in backend.\n\n"
    );
    assert_eq!(
        common::socat(p, "add server test 127.0.0.1:1"),
        "Require 'backend/server'.\n\n"
    );
    assert_eq!(
        common::socat(p, "add server nope/x 127.0.0.1:1"),
        "No such backend.\n\n"
    );
    let dyn_srv = f.reg.find_server("test/dyn").unwrap();
    assert!(dyn_srv.admin().maint());
    let st = common::socat(p, "show servers state test");
    assert!(st.contains("\n3 test 3 dyn 127.0.0.1 0 1 5 5 "), "{st}");
    assert_eq!(common::socat(p, "enable server test/dyn"), "\n");
    assert!(dyn_srv.is_usable());
    assert!(common::socat(p, "show stat").contains("test,dyn,"));
    assert_eq!(
        common::socat(p, "del server test/dyn"),
        "Only servers in maintenance mode can be deleted.\n\n"
    );
    assert_eq!(common::socat(p, "disable server test/dyn"), "\n");
    assert_eq!(
        common::socat(p, "del server test/dyn"),
        "Server deleted.\n\n"
    );
    assert_eq!(
        common::socat(p, "get weight test/dyn"),
        "No such server.\n\n"
    );
    assert!(common::socat(p, "add server help")
        .starts_with("List of keywords supported for dynamic server:\n"));
    assert_eq!(
        common::socat(p, "shutdown sessions server test/webserver1"),
        "\n"
    );
}

// ---- end-to-end with the real binary ----

fn e2e_config(admin_port: u16, fe_port: u16) -> String {
    format!(
        "global\n    stats socket ipv4@127.0.0.1:{admin_port} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{fe_port}\n    default_backend test\n\
         backend test\n    balance roundrobin\n    server webserver1 127.0.0.1:29081\n    server webserver2 127.0.0.1:29082\n"
    )
}

#[test]
fn e2e_seed_article_steps() {
    let (ap, fp) = (common::free_port(), common::free_port());
    let h = common::Harp::start(&e2e_config(ap, fp), ap, &[]);
    assert_eq!(
        common::socat(ap, "set server test/webserver1 health down"),
        "\n"
    );
    assert_eq!(
        common::socat(ap, "set server test/webserver2 state maint"),
        "\n"
    );
    let st = common::socat(ap, "show servers state");
    let lines: Vec<&str> = st.lines().collect();
    assert_eq!(lines[0], "1");
    let w1: Vec<&str> = lines[2].split(' ').collect();
    let w2: Vec<&str> = lines[3].split(' ').collect();
    assert_eq!((w1[3], w1[5], w1[6]), ("webserver1", "0", "0"), "{st}");
    assert_eq!((w2[3], w2[5], w2[6]), ("webserver2", "0", "1"), "{st}");
    assert!(
        h.wait_log("Server test/webserver2 is going DOWN for maintenance."),
        "{}",
        h.stderr()
    );
}

#[test]
fn e2e_add_server_then_enable() {
    let (ap, fp) = (common::free_port(), common::free_port());
    let _h = common::Harp::start(&e2e_config(ap, fp), ap, &[]);
    assert_eq!(
        common::socat(ap, "add server test/dyn 127.0.0.1:29083"),
        "New server registered.\n\n"
    );
    assert_eq!(common::socat(ap, "enable server test/dyn"), "\n");
    let st = common::socat(ap, "show servers state test");
    assert!(st.contains("\n3 test 3 dyn 127.0.0.1 2 0 1 1 "), "{st}");
    let stat = common::socat(ap, "show stat");
    assert!(
        stat.contains("test,dyn,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,"),
        "{stat}"
    );
}
