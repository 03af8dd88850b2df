//! `log-format` and variables end to end: the real binary logging sessions in a custom format
//! to a syslog listener, with variables set by `tcp-request` rules choosing the backend and
//! filling the line; `proc.*` variables from the global section, the Runtime API (`get var`,
//! `set var` through `socat`) and Lua's `core.get_var`; `harp -c` naming a bad format.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::{free_port, socat, write_file, Harp};

/// A server that accepts connections and keeps them open, saying nothing.
fn holding_upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            let Ok(c) = c else { break };
            held.push(c);
        }
    });
    port
}

/// The first line the sink receives that starts with `prefix`.
fn line_starting(sink: &UdpSocket, prefix: &str) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sink
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no log line starting with {prefix:?} ({e})"));
        let l = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
        if l.starts_with(prefix) {
            return l;
        }
    }
}

/// Sends `msg`, returns what came back.
fn talk(port: u16, msg: &str) -> (String, u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(msg.as_bytes()).expect("send");
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    (
        got.trim_end().to_string(),
        c.local_addr().expect("addr").port(),
    )
}

#[test]
fn variables_route_and_fill_a_custom_log_line() {
    let (a, b) = (common::named_upstream("a"), common::named_upstream("b"));
    let (sink, to) = common::udp_sink();
    let (port, api) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    set-var proc.env str(prod)\n\
         \x20   set-var proc.n int(40),add(2)\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   log {to} format raw local0\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    tcp-request inspect-delay 2s\n\
         \x20   tcp-request session set-var(sess.peer) src\n\
         \x20   tcp-request content set-var(txn.word) req.payload(0,2)\n\
         \x20   tcp-request content set-var(txn.route) str(b) if {{ req.payload(0,2) -m bin 6262 }}\n\
         \x20   tcp-request content set-var(txn.route,ifnotexists) str(a)\n\
         \x20   tcp-request content set-var-fmt(txn.tag) \"%[var(txn.route)]-%[var(proc.env)]\"\n\
         \x20   tcp-request content set-var(txn.len) req.len\n\
         \x20   tcp-request content set-var(txn.cc) str(ab),concat(-,txn.word,!)\n\
         \x20   tcp-request content set-var(txn.m) int(3),add(txn.len)\n\
         \x20   tcp-request content set-var(txn.z) int(3),add(txn.none)\n\
         \x20   tcp-request content accept if {{ req.len ge 2 }}\n\
         \x20   use_backend be_%[var(txn.route)]\n\
         \x20   log-format \"LF %ci:%cp %f %b/%s %[var(txn.tag)] %{{+Q}}[var(txn.word)] %[var(sess.peer)] %[var(proc.n)] %B %U %ts %[var(txn.none)] %bi %[var(txn.cc)] %[var(txn.m)] %[var(txn.z)]\"\n\
         backend be_a\n    server sa 127.0.0.1:{a}\n\
         backend be_b\n    server sb 127.0.0.1:{b}\n"
    );
    let mut h = Harp::spawn_in(dir, &cfg, &[]);
    h.wait_port(port);
    h.wait_port(api);
    let (got, cport) = talk(port, "bb");
    assert_eq!(got, "b", "{}", h.stderr());
    let line = line_starting(&sink, &format!("LF 127.0.0.1:{cport} "));
    assert_eq!(
        line,
        format!("LF 127.0.0.1:{cport} fe be_b/sb b-prod \"bb\" 127.0.0.1 42 2 2 -- - 127.0.0.1 ab-bb! 5 -")
    );
    let (got, cport) = talk(port, "aa");
    assert_eq!(got, "a");
    let line = line_starting(&sink, &format!("LF 127.0.0.1:{cport} "));
    assert!(line.contains(" fe be_a/sa a-prod \"aa\" "), "{line}");

    // proc variables on the Runtime API, as an operator types them
    assert_eq!(
        socat(api, "get var proc.env"),
        "proc.env: type=str value=<prod>\n"
    );
    assert_eq!(
        socat(api, "get var proc.n"),
        "proc.n: type=sint value=<42>\n"
    );
    assert_eq!(socat(api, "get var proc.nope"), "Variable not found.\n\n");
    assert_eq!(socat(api, "get var txn.word"), "Variable not found.\n\n");
    assert_eq!(
        socat(api, "set var proc.env str(x)"),
        "This command is restricted to experimental mode only.\n\n"
    );
    assert_eq!(
        socat(api, "experimental-mode on; set var proc.env str(staging)"),
        "\n\n"
    );
    assert_eq!(
        socat(
            api,
            "experimental-mode on; set var proc.env fmt %[var(proc.n)]-x"
        ),
        "\n\n"
    );
    assert_eq!(
        socat(api, "get var proc.env"),
        "proc.env: type=str value=<42-x>\n"
    );
    assert_eq!(
        socat(api, "experimental-mode on; set var txn.a int(1)"),
        "\n'set var': cannot set variable 'txn.a', only scope 'proc' is permitted here.\n"
    );
    assert_eq!(
        socat(api, "experimental-mode on; set var proc.a int(1) extra"),
        "\n'set var': arg type must be either 'expr' or 'fmt' but got 'int(1)'.\n"
    );
    assert_eq!(
        socat(api, "experimental-mode on; set var proc.ip src"),
        "\nfetch method 'set-var(proc.ip)' extracts information from 'client address', none of which is available here\n"
    );
    // the new value reaches the sessions
    let (_, cport) = talk(port, "aa");
    let line = line_starting(&sink, &format!("LF 127.0.0.1:{cport} "));
    assert!(line.contains(" a-42-x "), "{line}");
}

/// HAProxy 2.9's `core.get_var`, on the variables of the global section.
#[test]
fn lua_reads_proc_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(
        dir.path(),
        "v.lua",
        "core.register_task(function()\n\
         \x20 core.Info('env=' .. tostring(core.get_var('proc.env')) .. ' none=' .. tostring(core.get_var('proc.none')))\n\
         \x20 local ok, err = pcall(core.get_var, 'txn.x')\n\
         \x20 core.Info('txn: ' .. tostring(err))\n\
         end)\n",
    );
    let cfg = "global\n    set-var proc.env str(prod)\n    lua-load v.lua\n\
               defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n";
    let h = Harp::spawn_in(dir, cfg, &[]);
    assert!(h.wait_log("env=prod none=nil"), "{}", h.stderr());
    assert!(
        h.wait_log(
            "txn: 'get_var': Only 'proc.' scope allowed to be retrieved in 'core.get_var()'."
        ),
        "{}",
        h.stderr()
    );
}

#[test]
fn the_tcplog_format_and_legacy_lines_match_haproxy() {
    let a = common::named_upstream("a");
    let (sink, to) = common::udp_sink();
    let (port, bare, early) = (free_port(), free_port(), free_port());
    let hold = holding_upstream();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   log {to} format raw local0\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    option tcplog\n    default_backend be\n\
         frontend nofmt\n    bind 127.0.0.1:{bare}\n    default_backend be\n\
         frontend early\n    bind 127.0.0.1:{early}\n    log-format \"EARLY %ci:%cp %f %b/%s %[var(txn.x)]\"\n\
         \x20   tcp-request content set-var(txn.x) str(set)\n    default_backend held\n\
         backend held\n    server h 127.0.0.1:{hold}\n\
         backend be\n    server s1 127.0.0.1:{a}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    h.wait_port(bare);
    h.wait_port(early);
    let (_, cport) = talk(port, "x");
    let line = line_starting(&sink, &format!("127.0.0.1:{cport} "));
    // HAProxy 2.6: `127.0.0.1:42352 [07/Dec/2026:21:50:13.171] TCPLOG be/s1 1/0/254 5 --
    // 1/1/0/0/0 0/0` (Tw counts from accept, plus one)
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[2], "fe");
    assert_eq!(fields[3], "be/s1");
    let timers: Vec<i64> = fields[4]
        .split('/')
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(
        timers.len() == 3 && timers[0] >= 1 && timers[1] >= 0,
        "{line}"
    );
    // (the counters depend on the readiness probes still open)
    assert_eq!(fields[5..7].join(" "), "2 --");
    assert_eq!(fields[7].split('/').count(), 5, "{line}");
    assert_eq!(fields[8], "0/0");
    // nothing of the session's end in the format: logged once the server is connected,
    // while the session goes on
    let c = TcpStream::connect(("127.0.0.1", early)).expect("connect");
    let cport = c.local_addr().expect("addr").port();
    let line = line_starting(&sink, &format!("EARLY 127.0.0.1:{cport} "));
    assert_eq!(line, format!("EARLY 127.0.0.1:{cport} early held/h set"));
    drop(c);
    // no format: the line HAProxy logs at accept; its datagram ends with a newline, as
    // HAProxy's do
    let (_, cport) = talk(bare, "x");
    let mut buf = [0u8; 2048];
    let raw = loop {
        let n = sink.recv(&mut buf).expect("the Connect line");
        if buf[..n].starts_with(b"Connect from ") {
            break buf[..n].to_vec();
        }
    };
    assert_eq!(raw.last(), Some(&b'\n'));
    let line = String::from_utf8_lossy(&raw).trim_end().to_string();
    assert_eq!(
        line,
        format!("Connect from 127.0.0.1:{cport} to 127.0.0.1:{bare} (nofmt/TCP)")
    );
}

#[test]
fn check_mode_names_a_bad_format_and_ignores_one_in_a_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_file(
        dir.path(),
        "h.cfg",
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
         \x20   log-format \"%ci %Zz\"\n\
         frontend fe\n    bind 127.0.0.1:8443\n    default_backend be\n\
         backend be\n    log-format \"%ci\"\n    server s 127.0.0.1:1\n",
    );
    // (HARP_BIN runs it against another build, or HAProxy)
    let bin = std::env::var_os("HARP_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_harp").into());
    let out = Command::new(bin)
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .expect("run harp -c");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("Parsing [") && err.contains("h.cfg:6]: failed to parse log-format : no such format variable 'Zz'. If you wanted to emit the '%' character verbatim, you need to use '%%'."),
        "{err}"
    );
    assert!(
        err.contains("h.cfg:11] : backend 'be' : 'log-format' directive is ignored in backends."),
        "{err}"
    );
    assert!(
        err.contains("config : log format ignored for frontend 'fe' since it has no log address."),
        "{err}"
    );
}

/// `option logasap` logs a session once its server answers the connect, `+` before what will
/// grow; `unique-id-format` gives `%ID` (HAProxy takes both in TCP mode).
#[test]
fn logasap_and_unique_ids() {
    let (hold, named) = (holding_upstream(), common::named_upstream("n"));
    let (sink, to) = common::udp_sink();
    let (asap, uid, uid2) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   log {to} format raw local0\n\
         frontend asap\n    bind 127.0.0.1:{asap}\n    option tcplog\n    option logasap\n    default_backend held\n\
         frontend uid\n    bind 127.0.0.1:{uid}\n    unique-id-format %ci:%cp_%f\n    unique-id-header X-Unique-ID\n\
         \x20   log-format \"UID %ID %{{+Q}}ID\"\n    default_backend named\n\
         frontend uid2\n    bind 127.0.0.1:{uid2}\n    unique-id-format %rt:%B\n\
         \x20   tcp-request content set-var(txn.u) unique-id\n\
         \x20   log-format \"U2 %cp %ID %[var(txn.u)] %[unique-id] %B\"\n    default_backend named\n\
         backend held\n    server h 127.0.0.1:{hold}\n\
         backend named\n    server n 127.0.0.1:{named}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(asap);
    h.wait_port(uid);
    h.wait_port(uid2);
    // the session is still open when its line arrives
    let c = TcpStream::connect(("127.0.0.1", asap)).expect("connect");
    let cport = c.local_addr().expect("addr").port();
    let line = line_starting(&sink, &format!("127.0.0.1:{cport} "));
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f[2..4].join(" "), "asap held/h", "{line}");
    let timers: Vec<&str> = f[4].split('/').collect();
    assert!(timers.len() == 3 && timers[2].starts_with('+'), "{line}");
    assert_eq!(f[5..7].join(" "), "+0 --", "{line}");
    // the session counted in its backend and server too (the readiness probe's may be as well)
    let counts: Vec<u64> = f[7].split('/').filter_map(|c| c.parse().ok()).collect();
    assert!(
        counts.len() == 5 && counts[2] >= 1 && counts[3] >= 1 && counts[4] == 0,
        "{line}"
    );
    drop(c);
    let (_, cport) = talk(uid, "x");
    let line = line_starting(&sink, &format!("UID 127.0.0.1:{cport}_"));
    assert_eq!(
        line,
        format!("UID 127.0.0.1:{cport}_uid \"127.0.0.1:{cport}_uid\"")
    ); // an id a rule asked for is built then (`%B` 0) and kept for the log line
    let (_, cport) = talk(uid2, "x");
    let line = line_starting(&sink, &format!("U2 {cport} "));
    let f: Vec<&str> = line.split(' ').collect();
    assert!(
        f[2].ends_with(":0") && f[2] == f[3] && f[3] == f[4],
        "{line}"
    );
    assert_eq!(f[5], "2", "{line}");
}

/// `experimental-mode on` lists `set var` in `help`, with HAProxy's line.
#[test]
fn help_lists_set_var_in_experimental_mode() {
    let api = free_port();
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(api);
    let line =
        "  set var <name> [fmt|expr] {<fmt>|<expr>}: set variable from an expression or a format\n";
    assert!(!socat(api, "help").contains(line));
    assert!(socat(api, "experimental-mode on; help").contains(line));
    assert!(socat(api, "help").contains("  get var <name>                          : retrieve contents of a process-wide variable\n"));
}

/// `tcp-request content capture <sample> len <n>`, logged by `%hr`, `%hrl` and
/// `capture.req.hdr(<idx>)`: the line HAProxy 2.6.12 logged for the same config and bytes.
#[test]
fn captures_are_logged_as_haproxy_logs_them() {
    let a = common::named_upstream("a");
    let (sink, to) = common::udp_sink();
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    log {to} format raw local0\n\
         \x20   tcp-request inspect-delay 2s\n\
         \x20   tcp-request content capture req.payload(0,3) len 2\n\
         \x20   tcp-request content capture req.payload(0,5),lower len 10\n\
         \x20   tcp-request content capture var(txn.none) len 10\n\
         \x20   tcp-request content accept if {{ req.len ge 5 }}\n\
         \x20   log-format \"C hr=%hr hrl=%hrl q=%{{+Q}}hrl c0=%[capture.req.hdr(0)] c1=%[capture.req.hdr(1)] c2=%[capture.req.hdr(2)] c3=%[capture.req.hdr(3)]\"\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{a}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    talk(port, "HeL|o");
    let line = line_starting(&sink, "C hr={He");
    assert_eq!(
        line,
        "C hr={He|hel#7Co|} hrl=He hel#7Co - q=\"He\" \"hel#7Co\" \"\" c0=He c1=hel|o c2=- c3=-"
    );
}

/// `error-log-format`: the line of a connection whose PROXY header was broken, as HAProxy
/// renders that session it never made; without it, the legacy text.
#[test]
fn error_log_format_for_a_broken_proxy_header() {
    let a = common::named_upstream("a");
    let (sink, to) = common::udp_sink();
    let (with, without) = (free_port(), free_port());
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   log {to} format raw local0\n\
         frontend fe\n    bind 127.0.0.1:{with} accept-proxy\n    option tcplog\n\
         \x20   error-log-format \"ERR %ci:%cp %f %ts %B %U %s %b\"\n    default_backend be\n\
         frontend legacy\n    bind 127.0.0.1:{without} accept-proxy name b1\n    option tcplog\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{a}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(with);
    h.wait_port(without);
    let (_, cport) = talk(with, "GET / HTTP/1.0\r\n\r\n");
    let line = line_starting(&sink, &format!("ERR 127.0.0.1:{cport} "));
    assert_eq!(line, format!("ERR 127.0.0.1:{cport} fe PR 0 0 <NOSRV> fe"));
    let (_, cport) = talk(without, "GET / HTTP/1.0\r\n\r\n");
    let line = line_starting(&sink, &format!("127.0.0.1:{cport} "));
    assert!(
        line.ends_with(
            "] legacy/b1: Received something which does not look like a PROXY protocol header"
        ),
        "{line}"
    );
}

/// `option dontlog-normal` logs failed sessions only, and `option log-separate-errors` sends
/// them at `err` (`<131>` for local0), as HAProxy does.
#[test]
fn only_failed_sessions_at_err() {
    let a = common::named_upstream("a");
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (sink, to) = common::udp_sink();
    let (good, bad) = (free_port(), free_port());
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   retries 0\n    log {to} local0\n    option tcplog\n    option dontlog-normal\n    option log-separate-errors\n\
         frontend good\n    bind 127.0.0.1:{good}\n    default_backend up\n\
         frontend bad\n    bind 127.0.0.1:{bad}\n    default_backend down\n\
         backend up\n    server s1 127.0.0.1:{a}\n\
         backend down\n    server s2 127.0.0.1:{dead}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(good);
    h.wait_port(bad);
    let (got, gport) = talk(good, "x");
    assert_eq!(got, "a");
    let (_, bport) = talk(bad, "x");
    let mut buf = [0u8; 4096];
    loop {
        let n = sink
            .recv(&mut buf)
            .expect("a log line for the failed session");
        let l = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            !l.contains(&format!("127.0.0.1:{gport} ")),
            "a normal session was logged: {l}"
        );
        if l.contains(&format!("127.0.0.1:{bport} ")) {
            assert!(l.starts_with("<131>"), "{l}");
            assert!(l.contains(" bad down/s2 ") && l.contains(" SC "), "{l}");
            break;
        }
    }
}

/// `proxy-v2-options unique-id`: the PROXY v2 header carries the stream's unique id (TLV
/// 0x05), the bytes HAProxy 2.6 sends for the same config.
#[test]
fn proxy_v2_header_carries_the_unique_id() {
    // a server that sends back the first bytes it gets
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut b = [0u8; 256];
                // the header (28 bytes with IPv4 addresses), the TLV and the client's "x"
                while got.len() < 28 + 3 + 4 + 1 {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&b[..n]),
                    }
                }
                let _ = c.write_all(&got);
            });
        }
    });
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    unique-id-format %f-x\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up} send-proxy-v2 proxy-v2-options unique-id\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(b"x").expect("send");
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert!(got.len() >= 36, "{got:?}");
    assert_eq!(&got[12..16], &[0x21, 0x11, 0x00, 12 + 3 + 4]);
    assert_eq!(&got[28..], b"\x05\x00\x04fe-xx");
}

/// Log dates are in local time, as HAProxy writes them (`%t`, `%Tl` with its offset, the
/// syslog header); `%T` stays in GMT.
#[test]
fn dates_follow_the_local_time_zone() {
    let a = common::named_upstream("a");
    let (sink, to) = common::udp_sink();
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    log {to} format raw local0\n\
         \x20   log-format \"TZ %cp [%t] [%Tl] [%T]\"\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{a}\n"
    );
    // POSIX TZ: "XYZ-2" is two hours east of UTC
    let mut h = Harp::spawn(&cfg, &[("TZ", "XYZ-2")]);
    h.wait_port(port);
    let (_, cport) = talk(port, "x");
    let line = line_starting(&sink, &format!("TZ {cport} "));
    let parts: Vec<&str> = line.split(['[', ']']).collect();
    let (t, tl, gmt) = (parts[1], parts[3], parts[5]);
    assert!(tl.ends_with(" +0200") && gmt.ends_with(" +0000"), "{line}");
    // the local hour is the GMT one plus two
    let hour = |s: &str| {
        s.split(':')
            .nth(1)
            .and_then(|h| h.parse::<u32>().ok())
            .unwrap_or(99)
    };
    assert_eq!(hour(t), hour(tl), "{line}");
    assert_eq!((hour(gmt) + 2) % 24, hour(tl), "{line}");
}

/// A capture waits for its sample like a tracking rule does: as the first rule, with no
/// condition, it still captures bytes that arrive late (HAProxy's tcp_action_capture yields).
#[test]
fn a_capture_waits_for_its_bytes() {
    let a = common::named_upstream("a");
    let (sink, to) = common::udp_sink();
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    log {to} format raw local0\n\
         \x20   tcp-request inspect-delay 2s\n\
         \x20   tcp-request content capture req.payload(0,5) len 10\n\
         \x20   log-format \"W %cp %hr\"\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{a}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let cport = c.local_addr().expect("addr").port();
    c.write_all(b"hel").expect("send");
    std::thread::sleep(Duration::from_millis(150));
    c.write_all(b"lo").expect("send");
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    let line = line_starting(&sink, &format!("W {cport} "));
    assert_eq!(line, format!("W {cport} {{hello}}"));
}
