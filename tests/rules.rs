//! `acl`, `tcp-request` and `use_backend` end to end: the real binary routing TLS by the name
//! in the ClientHello (bytes unchanged), rejecting connections and requests with HAProxy's
//! counters and log line, and switching backends on their servers' state.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::{cli, connect_from, free_port, syslog_line, syslog_sink, wait_until, Harp};
use harp::rules::hello::sample_client_hello;

/// A server that names itself (`<name>\n`) on each connection, then echoes what it reads.
fn named_upstream(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            std::thread::spawn(move || {
                if c.write_all(format!("{name}\n").as_bytes()).is_err() {
                    return;
                }
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Sends `first` in two parts (the rules must wait for the second), then reads the server's
/// name and the echo; checks the echo is what was sent. Returns the name.
fn through(port: u16, first: &[u8]) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let cut = first.len().min(7);
    c.write_all(&first[..cut]).expect("send");
    std::thread::sleep(Duration::from_millis(20));
    c.write_all(&first[cut..]).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.iter().filter(|&&b| b == b'\n').count() == 0 || !echoed(&got, first) {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let nl = got.iter().position(|&b| b == b'\n').expect("a server name");
    assert_eq!(&got[nl + 1..], first, "bytes reach the server unchanged");
    String::from_utf8_lossy(&got[..nl]).into_owned()
}

fn echoed(got: &[u8], sent: &[u8]) -> bool {
    got.iter()
        .position(|&b| b == b'\n')
        .is_some_and(|nl| got.len() - nl > sent.len())
}

#[test]
fn tls_is_routed_by_server_name_and_reaches_the_server_unchanged() {
    let (a, w, d) = (
        named_upstream("api"),
        named_upstream("www"),
        named_upstream("default"),
    );
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    tcp-request inspect-delay 3s\n\
         \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20   acl api req.ssl_sni -i api.example.com\n\
         \x20   use_backend be_api if api\n\
         \x20   use_backend be_www if {{ req.ssl_sni -m end .example.com }}\n\
         \x20   default_backend be_default\n\
         backend be_api\n    server a 127.0.0.1:{a}\n\
         backend be_www\n    server w 127.0.0.1:{w}\n\
         backend be_default\n    server d 127.0.0.1:{d}\n"
    );
    let _h = Harp::start(&cfg, port, &[]);
    assert_eq!(
        through(port, &sample_client_hello("API.example.com")),
        "api"
    );
    assert_eq!(
        through(port, &sample_client_hello("www.example.com")),
        "www"
    );
    assert_eq!(
        through(port, &sample_client_hello("example.org")),
        "default"
    );
}

#[test]
fn rejected_connections_and_requests_are_counted_closed_and_logged_as_haproxy_does() {
    let up = named_upstream("s");
    let (port, api) = (free_port(), free_port());
    let (sink, log) = syslog_sink();
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n{log}\
         \x20   acl blocked src 127.0.0.2\n\
         \x20   tcp-request connection reject if blocked\n\
         \x20   tcp-request inspect-delay 300ms\n\
         \x20   tcp-request content reject if {{ req.payload(0,4) -m bin 51554954 }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    // the readiness probe's session, once its accept is counted
    let stot = || -> u64 {
        common::stat_field(api, "fe,FRONTEND,", "stot")
            .parse()
            .expect("stot")
    };
    assert!(wait_until(Duration::from_secs(5), || stot() == 1));
    let stot0 = stot();

    // from a blocked address: reset at once, nothing logged, `dcon`, not a session
    let mut blocked = connect_from("127.0.0.2", port);
    let mut buf = [0u8; 64];
    let r = blocked.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "a rejected connection is reset: {r:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        common::stat_field(api, "fe,FRONTEND,", "dcon") == "1"
    }));

    // a request the content rule refuses: closed, `dreq`, logged `PR` with no backend reached
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    c.write_all(b"QUIT now\r\n").expect("send");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing reached a server: {rest:?}");
    let line = syslog_line(&sink, " PR ");
    assert!(line.contains(" fe fe/<NOSRV> -1/-1/"), "{line}");
    assert_eq!(common::stat_field(api, "fe,FRONTEND,", "dreq"), "1");

    // anything else goes through once the delay says the rule cannot match
    assert_eq!(through(port, b"HELO\r\n"), "s");
    let stot = stot();
    assert_eq!(stot - stot0, 2, "the rejected connection is not a session");
    let conn_tot: u64 = common::stat_field(api, "fe,FRONTEND,", "conn_tot")
        .parse()
        .expect("conn_tot");
    assert!(
        conn_tot > stot,
        "conn_tot {conn_tot} counts it, stot {stot} not"
    );
    assert!(!h.stderr().contains("panicked"), "{}", h.stderr());
}

#[test]
fn use_backend_follows_the_servers_state() {
    let (m, s) = (named_upstream("main"), named_upstream("spare"));
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   use_backend main if {{ nbsrv(main) ge 1 }} !{{ src 127.0.0.3 }}\n\
         \x20   default_backend spare\n\
         backend main\n    server m 127.0.0.1:{m}\n\
         backend spare\n    server s 127.0.0.1:{s}\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    assert_eq!(through(port, b"x"), "main");
    assert_eq!(cli(api, "disable server main/m"), "\n");
    assert_eq!(through(port, b"x"), "spare");
    assert_eq!(cli(api, "enable server main/m"), "\n");
    assert_eq!(through(port, b"x"), "main");
    // HAProxy's fullconn counts the frontends a use_backend leads to a backend, as it counts
    // the ones whose default_backend it is
    let slim = common::stat_field(api, "main,BACKEND,", "slim");
    assert_eq!(
        slim,
        common::stat_field(api, "spare,BACKEND,", "slim"),
        "same fullconn"
    );
}

/// A connection from `src` to `port`: whether the proxy let it through to the server.
fn served_from(src: &str, port: u16) -> bool {
    let mut c = connect_from(src, port);
    let mut buf = [0u8; 8];
    matches!(c.read(&mut buf), Ok(n) if n > 0)
}

#[test]
fn an_operator_blocks_and_unblocks_addresses_through_the_runtime_api() {
    let up = named_upstream("s");
    let (port, api) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let list = common::write_file(dir.path(), "blocked.lst", "# none yet\n");
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   tcp-request connection reject if {{ src -f {} }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n",
        list.display()
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    let file = list.display().to_string();
    assert!(served_from("127.0.0.4", port));
    // as an operator does it, with socat
    assert_eq!(
        common::socat(api, &format!("add acl {file} 127.0.0.4")),
        "\n"
    );
    assert!(!served_from("127.0.0.4", port), "blocked at once");
    assert!(served_from("127.0.0.5", port));
    let shown = common::socat(api, &format!("show acl {file}"));
    assert!(shown.ends_with(" 127.0.0.4\n\n"), "{shown}");
    let listed = common::socat(api, "show acl");
    assert!(
        listed.starts_with(&format!(
            "# id (file) description\n0 ({file}) pattern loaded from file '{file}' used by acl at file "
        )),
        "{listed}"
    );
    assert_eq!(
        common::socat(api, "get acl #0 127.0.0.4"),
        "type=ip, case=sensitive, match=yes, idx=tree, pattern=\"127.0.0.4\"\n\n"
    );
    assert_eq!(
        common::socat(api, "add acl #0 127.0.0.300"),
        "'127.0.0.300' is not a valid IPv4 or IPv6 address.\n\n"
    );
    assert_eq!(
        common::socat(api, "del acl #0 127.0.0.9"),
        "Key not found.\n\n"
    );
    // harp keeps one version of a list, the current one (0)
    assert_eq!(
        common::socat(api, "add acl @1 #0 127.0.0.9"),
        "Version number in the future, please use 'prepare acl' before.\n\n"
    );
    assert_eq!(
        common::socat(api, &format!("del acl {file} 127.0.0.4")),
        "\n"
    );
    assert!(served_from("127.0.0.4", port), "unblocked at once");
    assert_eq!(
        common::socat(api, "user; add acl #0 127.0.0.6"),
        "\nPermission denied\n\n"
    );
    assert_eq!(
        common::socat(api, "show acl #7"),
        "Unknown ACL identifier. Please use #<id> or <file>.\n\n"
    );
}

#[test]
fn lua_scripts_change_pattern_lists_and_hear_of_every_change() {
    let up = named_upstream("s");
    let (port, api) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let list = common::write_file(dir.path(), "blocked.lst", "");
    let file = list.display().to_string();
    let script = common::write_file(
        dir.path(),
        "patref.lua",
        &format!(
            r#"
local ref = core.get_patref("{file}")
assert(ref ~= nil and core.get_patref("/nowhere.lst") == nil)
local seen = {{}}
ref:event_sub({{"PAT_REF"}}, function(ev, sub, when)
    seen[#seen + 1] = ev .. ":" .. type(sub) .. ":" .. type(when)
end)
core.register_cli({{"patref", "block"}}, "block 127.0.0.7", function(applet)
    local ok = ref:add("127.0.0.7")
    applet:send(string.format("%s %s %s %s\n", tostring(ok), tostring(ref["127.0.0.7"]),
        ref:get_name(), tostring(ref:is_map())))
end)
core.register_cli({{"patref", "swap"}}, "replace the list", function(applet)
    ref:prepare()
    ref:add("127.0.0.8")
    ref:commit()
    local ok, err = pcall(ref.add, ref, "not-an-address")
    applet:send(tostring(ok) .. " " .. tostring(err) .. "\n")
end)
core.register_cli({{"patref", "seen"}}, "events heard", function(applet)
    applet:send(table.concat(seen, ",") .. "\n")
end)
"#
        ),
    );
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    lua-load {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   tcp-request connection reject if {{ src -f {file} }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n",
        script.display()
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    assert!(served_from("127.0.0.7", port));
    assert_eq!(
        cli(api, "patref block"),
        format!("true true {file} false\n\n")
    );
    assert!(!served_from("127.0.0.7", port), "the script's entry blocks");
    assert_eq!(cli(api, &format!("del acl {file} 127.0.0.7")), "\n");
    // a bad pattern raises HAProxy's plain string
    assert_eq!(
        cli(api, "patref swap"),
        "false 'not-an-address' is not a valid IPv4 or IPv6 address\n\n"
    );
    assert!(served_from("127.0.0.7", port) && !served_from("127.0.0.8", port));
    let want = "PAT_REF_ADD:userdata:number,PAT_REF_DEL:userdata:number,PAT_REF_COMMIT:userdata:number\n\n";
    assert!(
        wait_until(Duration::from_secs(10), || cli(api, "patref seen") == want),
        "{} / {}",
        cli(api, "patref seen"),
        h.stderr()
    );
}

/// Sends `first` from `src` and returns what the server echoed (after its name line).
fn echoed_from(src: &str, port: u16, first: &[u8], want: usize) -> Vec<u8> {
    let mut c = connect_from(src, port);
    c.write_all(first).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !echoed(&got, &vec![0; want]) {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let nl = got
        .iter()
        .position(|&b| b == b'\n')
        .map_or(got.len(), |n| n + 1);
    got[nl..].to_vec()
}

#[test]
fn expect_proxy_reads_a_proxy_header_only_from_the_sources_it_names() {
    let up = named_upstream("s");
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   tcp-request connection expect-proxy layer4 if {{ src 127.0.0.8 }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n"
    );
    let _h = Harp::start(&cfg, port, &[]);
    let header = b"PROXY TCP4 192.0.2.9 127.0.0.1 1234 80\r\n";
    let mut sent = header.to_vec();
    sent.extend_from_slice(b"hello");
    // from the load balancer: the header is read, the rest forwarded
    assert_eq!(echoed_from("127.0.0.8", port, &sent, 5), b"hello");
    // from anyone else: the bytes are data like any other
    assert_eq!(echoed_from("127.0.0.9", port, &sent, sent.len()), sent);
}

/// Whether this process may put sockets in TCP_REPAIR mode (CAP_NET_ADMIN, bit 12 of its
/// effective capabilities; harp inherits them): `silent-drop` is then silent, else it resets
/// (with a TTL of 1, which loopback does not decrement).
fn may_repair() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let caps = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&caps, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

/// What a client that sent `msg` (maybe nothing) hears within half a second: `Ok(None)` for
/// nothing at all, `Ok(Some(n))` for bytes or an end of stream (0), `Err` for a reset.
fn hears(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<Option<usize>> {
    if !msg.is_empty() {
        c.write_all(msg)?;
    }
    c.set_read_timeout(Some(Duration::from_millis(500))).ok();
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[test]
fn silent_drop_closes_without_a_word_and_counts_in_dreq() {
    let up = named_upstream("s");
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   tcp-request connection silent-drop if {{ src 127.0.0.2 }}\n\
         \x20   tcp-request connection silent-drop rst-ttl 1 if {{ src 127.0.0.3 }}\n\
         \x20   tcp-request inspect-delay 1s\n\
         \x20   tcp-request content silent-drop if {{ req.payload(0,4) -m bin 51554954 }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    let dreq = || common::stat_field(api, "fe,FRONTEND,", "dreq");
    let silent = may_repair();
    // at the connection: nothing at all when repair mode is allowed
    let mut c = connect_from("127.0.0.2", port);
    let r = hears(&mut c, b"");
    if silent {
        assert!(matches!(r, Ok(None)), "no FIN, no reset: {r:?}");
    } else {
        assert!(r.is_err(), "a reset with TTL 1: {r:?}");
    }
    assert!(wait_until(Duration::from_secs(5), || dreq() == "1"));
    // `rst-ttl`: a reset (loopback keeps its TTL)
    let mut c = connect_from("127.0.0.3", port);
    let r = hears(&mut c, b"");
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || dreq() == "2"));
    // in the content: the request reaches no server, the client hears nothing
    let mut c = connect_from("127.0.0.4", port);
    let r = hears(&mut c, b"QUIT");
    if silent {
        assert!(matches!(r, Ok(None)), "{r:?}");
    }
    assert!(wait_until(Duration::from_secs(5), || dreq() == "3"));
    // others go through; the connections dropped at connection time were no sessions (the
    // three: the readiness probe, the one dropped in its content, this one)
    let mut ok = connect_from("127.0.0.5", port);
    assert!(matches!(hears(&mut ok, b"hello"), Ok(Some(n)) if n > 0));
    assert_eq!(common::stat_field(api, "fe,FRONTEND,", "stot"), "3");
}

/// The name of the server that answered a connection from `src`.
fn server_for(src: &str, port: u16) -> String {
    let mut c = connect_from(src, port);
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.contains(&b'\n') {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn use_server_sends_clients_to_their_server_while_it_runs() {
    let (s1, s2) = (named_upstream("s1"), named_upstream("s2"));
    let (port, api) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_file(dir.path(), "who.map", "127.0.0.3 s1\n127.0.0.4 nosuch\n");
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen li\n    bind 127.0.0.1:{port}\n    balance roundrobin\n\
         \x20   use-server s2 if {{ src 127.0.0.2 }}\n\
         \x20   use-server %[src,map_ip(who.map)] if {{ src 127.0.0.3 127.0.0.4 }}\n\
         \x20   use-server s1 if {{ src 127.0.0.4 }}\n\
         \x20   server s1 127.0.0.1:{s1}\n    server s2 127.0.0.1:{s2}\n"
    );
    let mut h = Harp::spawn_in(dir, &cfg, &[]);
    h.wait_port(port);
    h.wait_port(api);
    for _ in 0..4 {
        assert_eq!(server_for("127.0.0.2", port), "s2");
        assert_eq!(server_for("127.0.0.3", port), "s1", "the map names s1");
    }
    // a dynamic name no server has ends the rules: the balancer picks, both servers serve
    let picked: std::collections::BTreeSet<String> =
        (0..6).map(|_| server_for("127.0.0.4", port)).collect();
    assert_eq!(picked.len(), 2, "{picked:?}");
    // a stopped server lets the balancer pick among the others
    assert_eq!(cli(api, "disable server li/s2"), "\n");
    // a server a fixed rule names stays (HAProxy 3.x marks it non-purgeable)
    assert_eq!(
        cli(api, "del server li/s2"),
        "This server cannot be removed at runtime due to other configuration elements pointing to it.\n\n"
    );
    for _ in 0..3 {
        assert_eq!(server_for("127.0.0.2", port), "s1");
    }
    assert_eq!(cli(api, "enable server li/s2"), "\n");
    assert_eq!(server_for("127.0.0.2", port), "s2");
}

#[test]
fn use_server_lines_are_checked_as_haproxy_checks_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = common::write_file(
        dir.path(),
        "us.cfg",
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
         frontend fe\n    bind 127.0.0.1:8\n    default_backend be\n\
         backend be\n    use-server nosuch if TRUE\n    use-server s1\n    server s1 127.0.0.1:1\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harp"))
        .args(["-c", "-f"])
        .arg(&cfg)
        .output()
        .expect("harp -c");
    let err = String::from_utf8_lossy(&out.stderr);
    let path = cfg.display();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "[{path}:11] : 'use-server' requires either 'if' or 'unless' followed by a condition."
        )),
        "{err}"
    );
}

#[test]
fn a_full_use_server_target_redispatches_when_the_backend_allows_it() {
    let (s1, s2) = (named_upstream("s1"), named_upstream("s2"));
    for (redispatch, third) in [(true, "s2"), (false, "")] {
        let (port, api) = (free_port(), free_port());
        let cfg = format!(
            "global\n    stats socket 127.0.0.1:{api} level admin\n\
             defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout queue 5s\n\
             listen li\n    bind 127.0.0.1:{port}\n    balance roundrobin\n{}\
             \x20   use-server s1 if {{ src 127.0.0.2 }}\n\
             \x20   server s1 127.0.0.1:{s1} maxconn 1 maxqueue 1\n    server s2 127.0.0.1:{s2}\n",
            if redispatch { "    option redispatch\n" } else { "" }
        );
        let mut h = Harp::spawn(&cfg, &[]);
        h.wait_port(port);
        h.wait_port(api);
        // the start-up probe's session must not hold s1's slot
        let idle = || common::stat_field(api, "li,FRONTEND,", "scur") == "0";
        assert!(wait_until(Duration::from_secs(10), idle));
        let mut holder = connect_from("127.0.0.2", port);
        holder.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut buf = [0u8; 3];
        holder
            .read_exact(&mut buf)
            .expect("s1 answers the first client");
        assert_eq!(&buf, b"s1\n");
        let _queued = connect_from("127.0.0.2", port);
        assert!(wait_until(Duration::from_secs(10), || common::stat_field(
            api, "li,s1,", "qcur"
        ) == "1"));
        // s1 holds one and queues one: the third either goes elsewhere or is refused
        assert_eq!(
            server_for("127.0.0.2", port),
            third,
            "option redispatch: {redispatch}"
        );
    }
}
