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
use harp::config::{AccessLevel, Address, Config, Location, StatsSocket};
use harp::events::EventBus;
use harp::model::{OpState, Registry};

/// The reference transcript's configuration (`shared/reference/haproxy-3.2-runtime-api.txt`),
/// without its listeners: the Runtime API is started directly on the registry.
fn config() -> Config {
    const TEXT: &str = "\
global
    maxconn 9985
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    default_backend test
backend test
    balance roundrobin
    server webserver1 127.0.0.1:29081 check inter 300ms rise 2 fall 2
    server webserver2 127.0.0.1:29082
";
    harp::config::parse_str("reference.cfg", TEXT).expect("reference config parses")
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
    // A long write timeout: if the hog could block the admin thread, `echo` would wait for it
    // (30 s); the bound below is far under that yet tolerant of a loaded test machine.
    let f = Fixture::new(Duration::from_secs(30));
    let p = f.admin_port();
    // Many pipelined `show stat` in prompt mode, never reading: the replies fill the socket
    // buffers; the session waits on its write without stalling anyone else.
    let mut hog = TcpStream::connect(("127.0.0.1", p)).unwrap();
    let mut req = b"prompt\n".to_vec();
    for _ in 0..3000 {
        req.extend_from_slice(b"show stat\n");
    }
    let _ = hog.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = hog.write_all(&req);
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(common::cli(p, "echo still here"), "still here\n\n");
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
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

// ---------------------------------------------------------------------------------------------
// The binary on the reference transcript's configuration (plus a user socket, a unix socket and a
// static-rr backend): replies, log lines and formats compared with HAProxy 3.2's.

struct RefPorts {
    admin: u16,
    user: u16,
    fe: u16,
    /// webserver1's port: a live listener, so its checks pass and never race the CLI.
    live: u16,
    _listener: std::net::TcpListener,
}

/// The reference transcript's configuration, plus a `user` level socket, a unix socket and a
/// static-rr backend.
fn ref_start() -> (common::Harp, RefPorts) {
    let p = RefPorts {
        admin: common::free_port(),
        user: common::free_port(),
        fe: common::free_port(),
        live: 0,
        _listener: std::net::TcpListener::bind("127.0.0.1:0").expect("bind"),
    };
    let p = RefPorts {
        live: p._listener.local_addr().expect("addr").port(),
        ..p
    };
    let cfg = format!(
        "global\n\
         \x20   stats socket ipv4@127.0.0.1:{admin} level admin\n\
         \x20   stats socket ipv4@127.0.0.1:{user} level user\n\
         \x20   stats socket unix@admin.sock mode 600 level admin\n\
         \x20   stats timeout 2s\n\
         \x20   maxconn 9985\n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   timeout connect 1s\n\
         \x20   timeout client 5s\n\
         \x20   timeout server 5s\n\
         frontend fe\n\
         \x20   bind 127.0.0.1:{fe}\n\
         \x20   default_backend test\n\
         backend test\n\
         \x20   balance roundrobin\n\
         \x20   option log-health-checks\n\
         \x20   server webserver1 127.0.0.1:{live} check inter 10s rise 2 fall 2\n\
         \x20   server webserver2 127.0.0.1:29082\n\
         backend st\n\
         \x20   balance static-rr\n\
         \x20   server s1 127.0.0.1:29091\n",
        admin = p.admin,
        user = p.user,
        fe = p.fe,
        live = p.live
    );
    let mut h = common::Harp::spawn(&cfg, &[]);
    h.wait_port(p.admin);
    h.wait_port(p.user);
    (h, p)
}

/// The reply of one command, without the final empty line every reply ends with.
fn ref_run(port: u16, cmd: &str) -> String {
    let r = common::cli(port, cmd);
    assert!(
        r.ends_with('\n'),
        "reply to {cmd:?} lacks its final empty line: {r:?}"
    );
    r[..r.len() - 1].to_string()
}

fn ref_state_line(port: u16, srv: &str) -> String {
    ref_run(port, "show servers state test")
        .lines()
        .find(|l| l.split(' ').nth(3) == Some(srv))
        .unwrap_or_default()
        .to_string()
}

/// Columns 0-9 of a `show servers state` line (up to uweight/iweight, before the timer).
fn ref_head(line: &str) -> String {
    line.split(' ').take(9).collect::<Vec<_>>().join(" ")
}

#[test]
fn e2e_transcript_config_seed_steps_with_checks() {
    let (h, p) = ref_start();
    assert_eq!(
        common::socat(p.admin, "set server test/webserver1 health down"),
        "\n"
    );
    assert_eq!(
        common::socat(p.admin, "set server test/webserver2 state maint"),
        "\n"
    );
    let st = common::socat(p.admin, "show servers state");
    assert!(st.starts_with("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"), "{st}");
    let l1 = st.lines().find(|l| l.contains(" webserver1 ")).unwrap();
    let l2 = st.lines().find(|l| l.contains(" webserver2 ")).unwrap();
    assert_eq!(ref_head(l1), "3 test 1 webserver1 127.0.0.1 0 0 1 1");
    assert!(
        l1.ends_with(&format!(" 0 0 0 - {} - 0 0 - - 0", p.live)),
        "{l1}"
    );
    assert_eq!(ref_head(l2), "3 test 2 webserver2 127.0.0.1 0 1 1 1");
    assert!(l2.ends_with(" 0 0 0 - 29082 - 0 0 - - 0"), "{l2}");
    let pid = h.pid();
    for want in [
        format!("[WARNING]  ({pid}) : Server test/webserver1 is DOWN, changed from CLI. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."),
        format!("[WARNING]  ({pid}) : Server test/webserver2 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."),
        format!("[ALERT]    ({pid}) : backend 'test' has no server available!"),
    ] {
        assert!(h.wait_log(&want), "missing log line {want:?} in:\n{}", h.stderr());
    }
    // And back, as in the transcript.
    assert_eq!(
        common::socat(p.admin, "set server test/webserver1 health up"),
        "\n"
    );
    assert_eq!(
        common::socat(p.admin, "set server test/webserver2 state ready"),
        "\n"
    );
    assert!(h.wait_log(&format!("[WARNING]  ({pid}) : CLI : Server test/webserver1 is UP, changed from CLI. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")), "{}", h.stderr());
    assert!(h.wait_log(&format!(
        "[WARNING]  ({pid}) : Server test/webserver2 is UP/READY (leaving forced maintenance)."
    )));
    assert_eq!(
        ref_head(&ref_state_line(p.admin, "webserver2")),
        "3 test 2 webserver2 127.0.0.1 2 0 1 1"
    );
}

#[test]
fn e2e_transcript_replies() {
    let (_h, p) = ref_start();
    let help = common::socat(p.admin, "help");
    assert!(help.starts_with("The following commands are valid at this level:\n"));
    assert!(help.contains(
        "  get weight <bk>/<srv>                   : report a server's current weight\n"
    ));
    assert!(help.ends_with("  quit                                    : disconnect\n\n"));
    assert_eq!(
        common::socat(p.admin, "show backend"),
        "# name\ntest\nst\n\n"
    );
    assert_eq!(
        common::socat(p.admin, "get weight test/webserver1"),
        "1 (initial 1)\n\n"
    );
    let cases = [
        (
            "set server test/webserver2 weight 300",
            "Absolute weight can only be between 0 and 256 inclusive.",
        ),
        ("set server test/webserver2 weight 50%", ""),
        ("get weight test/webserver2", "0 (initial 1)"),
        (
            "set server test/webserver2 state bogus",
            "'set server <srv> state' expects 'ready', 'drain' and 'maint'.",
        ),
        (
            "set server test/webserver2 health bogus",
            "'set server <srv> health' expects 'up', 'stopping', or 'down'.",
        ),
        ("set server test/nope state ready", "No such server."),
        ("set server nope/x state ready", "No such backend."),
        ("set server test state ready", "Require 'backend/server'."),
        (
            "set server test/webserver2 agent up",
            "agent checks are not enabled on this server.",
        ),
        (
            "enable agent test/webserver2",
            "Agent was not configured on this server, cannot enable.",
        ),
        (
            "enable health test/webserver2",
            "Health check was not configured on this server, cannot enable.",
        ),
        (
            "set server test/webserver2 weight x",
            "Empty weight string empty or preceded by garbage",
        ),
        ("set weight test/webserver2 7", ""),
        ("get weight test/webserver2", "7 (initial 1)"),
        (
            "set weight test/webserver2 5x",
            "Trailing garbage in weight string",
        ),
        (
            "set maxconn server test/webserver1 10x",
            "Trailing garbage in maxconn string",
        ),
        ("set maxconn server test/webserver1", "Require <maxconn>."),
        (
            "set weight test/webserver2",
            "Require <weight> or <weight%>.",
        ),
        (
            "set server st/s1 weight 5",
            "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.",
        ),
        (
            "set server test/webserver1 addr",
            "set server <b>/<s> addr requires an address and optionally a port.",
        ),
        (
            "set server test/webserver1 addr not-an-ip",
            "Invalid addr 'not-an-ip'",
        ),
        (
            "set server test/webserver1 addr 127.0.0.2",
            "IP changed from '127.0.0.1' to '127.0.0.2' by 'stats socket command'",
        ),
        (
            "set maxconn server test/webserver1 x",
            "maxconn string empty or preceded by garbage",
        ),
        ("set maxconn server test/webserver1 100", ""),
        ("get weight", "Require 'backend/server'."),
        ("show servers state nope", "Can't find backend."),
        ("show cli level", "admin"),
        ("echo hello world", "hello world"),
    ];
    for (cmd, want) in cases {
        let got = ref_run(p.admin, cmd);
        let want = if want.is_empty() {
            String::new()
        } else {
            format!("{want}\n")
        };
        assert_eq!(got, want, "reply to {cmd:?}");
    }
    let unknown = common::socat(p.admin, "frobnicate");
    assert!(unknown.starts_with("Unknown command: 'frobnicate', but maybe one of the following ones is a better match:\n"), "{unknown}");
    assert!(unknown.ends_with("  prompt [help | n | i | p | timed ]*     : toggle interactive mode with prompt\n  quit                                    : disconnect\n\n"));
    let typo = ref_run(p.admin, "show servers stat");
    assert!(typo.contains("show servers state [<backend>]"), "{typo}");
}

#[test]
fn e2e_show_info_and_stat_formats() {
    let (h, p) = ref_start();
    let info = common::socat(p.admin, "show info");
    assert!(
        info.starts_with("Name: harp\nVersion: 0.1.0\nRelease_date: "),
        "{info}"
    );
    for f in [
        "Nbproc: 1\n",
        &format!("Pid: {}\n", h.pid()),
        "Maxconn: 9985\n",
        "Hard_maxconn: 9985\n",
        "CurrConns: 0\n",
        "Stopping: 0\n",
        "\nEventsDropped: 0\n",
    ] {
        assert!(info.contains(f), "{f:?} missing in {info}");
    }
    let names: Vec<&str> = info.lines().filter_map(|l| l.split(": ").next()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        pos("Uptime_sec") < pos("Ulimit-n")
            && pos("Idle_pct") < pos("node")
            && pos("CumStreams") < pos("BlockedTrafficWarnings")
    );

    let stat = common::socat(p.admin, "show stat");
    let lines: Vec<&str> = stat.lines().collect();
    assert!(lines[0].starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,"));
    assert!(lines[0].ends_with(",proto,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,ssl_ocsp_staple,ssl_failed_ocsp_staple,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,"));
    // The FRONTEND row is byte for byte HAProxy's.
    assert_eq!(lines[1], "fe,FRONTEND,,,0,0,9985,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,,0,0,0,0,0,0,0,0,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,");
    let ncols = lines[0].matches(',').count();
    for l in lines[1..].iter().filter(|l| !l.is_empty()) {
        assert_eq!(l.matches(',').count(), ncols, "{l}");
    }
    assert!(
        lines[3].starts_with("test,webserver2,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,,,"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with("test,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,UP,2,2,0,,0,"),
        "{}",
        lines[4]
    );

    common::socat(p.admin, "set server test/webserver2 state maint");
    let typed = common::socat(p.admin, "show stat typed");
    for want in [
        "F.2.0.0.pxname.1:KNS:str:fe\n",
        "S.3.2.17.status.1:SGP:str:MAINT\n",
        "S.3.1.67.check_rise.1:CGS:u32:2\n",
        "B.3.0.76.algo.1:CGS:str:roundrobin\n",
        "B.3.0.19.act.1:MGP:u32:1\n",
        "S.3.1.113.ssl_sess.1:MCP:u64:0\n",
    ] {
        assert!(typed.contains(want), "{want:?} missing");
    }
    assert!(!typed.contains("S.3.2.67.check_rise"));
    let json = common::socat(p.admin, "show stat json");
    assert!(json.starts_with("[[{\"objType\":\"Frontend\",\"proxyId\":2,\"id\":0,\"field\":{\"pos\":0,\"name\":\"pxname\"},\"processNum\":1,\"tags\":{\"origin\":\"Key\",\"nature\":\"Name\",\"scope\":\"Service\"},\"value\":{\"type\":\"str\",\"value\":\"fe\"}}"), "{}", &json[..200]);
    // Filters: servers of proxy 3 only; no-maint hides webserver2.
    let f = common::socat(p.admin, "show stat 3 4 -1");
    assert_eq!(f.lines().filter(|l| !l.is_empty()).count(), 3, "{f}");
    let nm = common::socat(p.admin, "show stat no-maint");
    assert!(!nm.contains("webserver2") && nm.contains("webserver1"));
    let ti = common::socat(p.admin, "show info typed");
    assert!(
        ti.starts_with("0.Name.1:POS:str:harp\n1.Version.1:POS:str:0.1.0\n"),
        "{ti}"
    );
}

#[test]
fn e2e_dynamic_servers_revisions_and_errors() {
    let (h, p) = ref_start();
    assert_eq!(
        ref_run(p.admin, "add server test/dyn 127.0.0.1:29083"),
        "New server registered.\n"
    );
    assert_eq!(
        ref_run(p.admin, "add server test/dyn 127.0.0.1:29083"),
        "Already exists a server with the same name in backend.\n"
    );
    assert_eq!(
        ref_head(&ref_state_line(p.admin, "dyn")),
        "3 test 3 dyn 127.0.0.1 0 1 1 1"
    );
    assert!(ref_state_line(p.admin, "dyn").ends_with(" - 29083 - 0 0 - - 0"));
    assert_eq!(
        ref_run(p.admin, "del server test/webserver1"),
        "Only servers in maintenance mode can be deleted.\n"
    );
    assert_eq!(ref_run(p.admin, "enable server test/dyn"), "");
    assert_eq!(
        ref_head(&ref_state_line(p.admin, "dyn")),
        "3 test 3 dyn 127.0.0.1 2 0 1 1"
    );
    assert!(common::socat(p.admin, "show stat").contains("\ntest,dyn,"));
    assert_eq!(
        ref_run(p.admin, "del server test/dyn"),
        "Only servers in maintenance mode can be deleted.\n"
    );
    assert_eq!(ref_run(p.admin, "disable server test/dyn"), "");
    assert_eq!(ref_run(p.admin, "del server test/dyn"), "Server deleted.\n");
    assert_eq!(ref_state_line(p.admin, "dyn"), "");
    assert_eq!(ref_run(p.admin, "get weight test/dyn"), "No such server.\n");
    let pid = h.pid();
    for want in [
        format!("[NOTICE]   ({pid}) : CLI : 'server test/dyn' : New server registered."),
        format!("[ALERT]    ({pid}) : CLI : 'server test/dyn' : Already exists a server with the same name in backend."),
        format!("[WARNING]  ({pid}) : Server test/dyn is UP/READY (leaving forced maintenance)."),
        format!("[NOTICE]   ({pid}) : CLI : Server deleted."),
    ] {
        assert!(h.wait_log(&want), "missing {want:?} in:\n{}", h.stderr());
    }
    // A re-added name gets a new revision id (srid) and a fresh server with keywords.
    assert_eq!(
        ref_run(
            p.admin,
            "add server test/dyn 127.0.0.1:29084 weight 20 check"
        ),
        "New server registered.\n"
    );
    assert_eq!(ref_run(p.admin, "get weight test/dyn"), "20 (initial 20)\n");
    assert_eq!(ref_run(p.admin, "enable health test/dyn"), "");
    let typed = common::socat(p.admin, "show stat typed");
    assert!(typed.contains("S.3.3.103.srid.1:MCP:u32:1\n"), "srid");
    // Errors.
    assert_eq!(
        ref_run(p.admin, "add server st/x 127.0.0.1:1"),
        "Backend must use a dynamic load balancing to support dynamic servers.\n"
    );
    assert_eq!(
        ref_run(p.admin, "add server nope/x 127.0.0.1:1"),
        "No such backend.\n"
    );
    assert_eq!(
        ref_run(p.admin, "add server test"),
        "Require 'backend/server'.\n"
    );
    assert!(!ref_run(p.admin, "add server test/y").is_empty());
    assert!(!ref_run(p.admin, "add server test/y 127.0.0.1:1 bogus-keyword").is_empty());
    assert_eq!(
        ref_run(p.admin, "del server test/nope"),
        "No such server.\n"
    );
    let kw = ref_run(p.admin, "add server help");
    assert!(
        kw.starts_with("List of keywords supported for dynamic server:\n")
            && kw.contains("\nweight\n")
    );
    assert_eq!(
        ref_run(p.admin, "shutdown sessions server test/webserver1"),
        ""
    );
}

#[test]
fn e2e_levels_semicolons_prompt_unix() {
    let (_h, p) = ref_start();
    assert_eq!(ref_run(p.user, "show cli level"), "user\n");
    assert_eq!(
        ref_run(p.user, "set server test/webserver2 state maint"),
        "Permission denied\n"
    );
    assert_eq!(
        ref_run(p.user, "add server test/x 127.0.0.1:1"),
        "Permission denied\n"
    );
    assert_eq!(ref_run(p.user, "operator"), "Permission denied\n");
    assert!(ref_run(p.user, "show stat").starts_with("# pxname,"));
    assert_eq!(
        ref_head(&ref_state_line(p.admin, "webserver2")),
        "3 test 2 webserver2 127.0.0.1 2 0 1 1"
    );
    // Lowering the level within one line, several commands separated by ';'.
    assert_eq!(
        ref_run(p.admin, "show cli level; operator; show cli level;user;show cli level; set weight test/webserver2 3"),
        "admin\n\n\noperator\n\n\nuser\n\nPermission denied\n"
    );
    // Interactive mode: prompt, commands, quit.
    let mut s = TcpStream::connect(("127.0.0.1", p.admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"prompt\nshow cli level\necho a\\;b\nquit\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, "\n> admin\n\n> a;b\n\n> ");
    // The unix socket, with its mode, through socat.
    let sock = _h.path("admin.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = std::process::Command::new("socat")
        .arg("-")
        .arg(format!("unix-connect:{}", sock.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"get weight test/webserver1\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 (initial 1)\n\n");
}

/// One HTTP/1.0 request to 127.0.0.1:`port`, the whole answer back.
fn http_get(port: u16, path: &str, auth: Option<&str>) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: x\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Basic {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// HAProxy's `listen stats` section (`mode http`, `stats enable`, `uri`, `auth`, `refresh`):
/// harp serves it, basic authentication first, CSV under `;csv` as exporters scrape it, HTML
/// otherwise, HAProxy's 503 outside the URI; the TCP proxies beside it forward as usual.
#[test]
fn stats_page_of_a_listen_stats_section() {
    let port = common::free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen stats\n    bind 127.0.0.1:{port}\n    stats enable\n    stats uri /monitor\n\
         \x20   stats refresh 10s\n    stats auth admin:secret\n    stats admin if TRUE\n\
         backend be\n    mode tcp\n    server s1 127.0.0.1:1\n"
    );
    let mut h = common::Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    let denied = http_get(port, "/monitor", None);
    assert!(
        denied.starts_with("HTTP/1.1 401 Unauthorized\r\n")
            && denied.contains("www-authenticate: Basic realm=\"HAProxy Statistics\"\r\n"),
        "{denied}"
    );
    // admin:secret
    let csv = http_get(port, "/monitor;csv", Some("YWRtaW46c2VjcmV0"));
    assert!(csv.starts_with("HTTP/1.1 200 OK\r\n"), "{csv}");
    let body = csv.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.starts_with("# pxname,svname,qcur,"), "{body}");
    assert!(body.contains("\nbe,s1,"), "{body}");
    let html = http_get(port, "/monitor", Some("YWRtaW46c2VjcmV0"));
    assert!(
        html.contains("content-type: text/html") && html.contains("<td>s1</td>"),
        "{html}"
    );
    assert!(
        html.contains("http-equiv=\"refresh\" content=\"10\""),
        "{html}"
    );
    let elsewhere = http_get(port, "/", Some("YWRtaW46c2VjcmV0"));
    assert!(
        elsewhere.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{elsewhere}"
    );
    assert!(
        h.stderr().contains("'stats admin' has no effect in harp"),
        "{}",
        h.stderr()
    );
}

/// `server-state-file` + `load-server-state-from-file global`, as HAProxy users keep server
/// states across restarts (`show servers state > file` first): a server left in maintenance
/// stays there, a changed weight is kept; a missing file is a warning, not a failure.
#[test]
fn server_states_come_back_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let api = common::free_port();
    std::fs::write(
        dir.path().join("states"),
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
         3 be 1 s1 127.0.0.1 0 1 1 1 5 1 0 0 0 0 0 0 - 1 - 0 0 - - 0\n\
         3 be 2 s2 127.0.0.1 2 0 40 1 5 1 0 0 2 18 0 0 - 2 - 0 0 - - 0\n\
         3 be 3 gone 127.0.0.1 2 0 1 1 5 1 0 0 0 0 0 0 - 3 - 0 0 - - 0\n\
         3 be 4 s3 127.0.0.1 2 0 40 1 5 1 0 0 0 0 0 0 - 4 - 0 0 - - 0\n\
         3 be 5 s4 127.0.0.1 2 999 1 1 5 1 0 0 0 0 0 0 - 5 - 0 0 - - 0\n\
         3 be 6 s5 127.0.0.9 2 0 1 1 5 1 0 0 0 0 0 0 app.harp.invalid 6 - 0 0 - - 0\n",
    )
    .unwrap();
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    server-state-base {}\n    server-state-file states\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    load-server-state-from-file global\n\
         backend be\n    server s1 127.0.0.1:1\n    server s2 127.0.0.1:2 check agent-check agent-port 9\n    server s3 127.0.0.1:4 weight 10\n    server s4 127.0.0.1:5\n    server s5 app.harp.invalid:6 init-addr last,none\n\
         backend other\n    load-server-state-from-file local\n    server o1 127.0.0.1:3\n",
        dir.path().display()
    );
    let mut h = common::Harp::spawn(&cfg, &[]);
    h.wait_port(api);
    let state = common::cli(api, "show servers state be");
    let row = |name: &str| -> Vec<String> {
        state
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {state}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(row("s1")[6], "1", "s1 stays in forced maintenance: {state}");
    assert_eq!(row("s2")[7], "40", "s2 keeps its weight: {state}");
    assert_eq!(common::cli(api, "get weight be/s2"), "40 (initial 1)\n\n");
    // `disable health` and `disable agent` outlive the restart
    assert_eq!(
        (row("s2")[13].as_str(), row("s2")[14].as_str()),
        ("2", "18"),
        "{state}"
    );
    // the configuration's weight changed since the file was written: it wins
    assert_eq!(common::cli(api, "get weight be/s3"), "10 (initial 10)\n\n");
    assert_eq!(row("s4")[6], "0", "an invalid line is not applied: {state}");
    // a name's saved address is its first one (HAProxy applies the file before init-addr):
    // no resolution maintenance to leave
    assert_eq!(row("s5")[4], "127.0.0.9", "{state}");
    assert_eq!(row("s5")[6], "0", "{state}");
    let err = h.stderr();
    assert!(
        err.contains(
            "server-state application failed for server 'be/s4', invalid srv_admin_state value '999'"
        ),
        "{err}"
    );
    assert!(err.contains("server 'be/gone' not found"), "{err}");
    assert!(!err.contains("DNS"), "{err}");
    assert!(
        err.contains("Can't load server state file"),
        "the local file of 'other': {err}"
    );
}
