//! How sessions end on the wire, as HAProxy ends them: a side quiet past its timeout ends one
//! direction only, a server connection closed before the server's FIN is reset (no
//! FIN_WAIT/TIME_WAIT left on the proxy's ports), `option nolinger` does the same to a client
//! connection (after its FIN) and turns a FIN forwarded to a server into a reset, and `option
//! tcpka` / `*tcpka-idle` arm keepalive timers. Real harp, real sockets on 127.0.0.1.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{free_port, Harp};

/// A config with one `listen px` on `port` in front of `server`, `extra` lines in the section.
fn config(port: u16, server: SocketAddr, extra: &str) -> String {
    format!(
        "global\n    nbthread 2\n\ndefaults\n    mode tcp\n    timeout connect 1s\n    \
         timeout client 10s\n    timeout server 10s\n\nlisten px\n    bind 127.0.0.1:{port}\n\
         {extra}    server s1 {server}\n"
    )
}

/// A listening upstream and a harp `listen px` in front of it, `extra` lines in the section.
fn setup(extra: &str) -> (Harp, u16, TcpListener) {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    up.set_nonblocking(true).unwrap();
    let port = free_port();
    let h = Harp::start(&config(port, up.local_addr().unwrap(), extra), port, &[]);
    end_probe(&up);
    (h, port, up)
}

/// Ends the session of harp's start-up probe (a connection that sends nothing and closes):
/// it reaches the upstream too, and left in the upstream's backlog it would stay open and count
/// in the test session's log line (`2/2/1/1/0` for `1/1/0/0/0`, seen in CI).
fn end_probe(up: &TcpListener) {
    let mut s = accept_next(up, Instant::now() + Duration::from_secs(10))
        .expect("harp's start-up probe never reached the upstream");
    // the probe's end of stream, forwarded by harp
    let _ = end_of(&mut s);
}

/// The next connection to reach the upstream before `end`, made blocking with reads timing
/// out in 5 s.
fn accept_next(up: &TcpListener, end: Instant) -> Option<TcpStream> {
    while Instant::now() < end {
        let Ok((s, _)) = up.accept() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        return Some(s);
    }
    None
}

/// The upstream side of the session whose client sent `tag` first (harp's start-up probe
/// connections send nothing and are skipped). The returned socket blocks, reads time out in 5 s.
fn accept_tagged(up: &TcpListener, tag: &[u8]) -> TcpStream {
    let end = Instant::now() + Duration::from_secs(10);
    while let Some(mut s) = accept_next(up, end) {
        let mut got = vec![0u8; tag.len()];
        if s.read_exact(&mut got).is_ok() && got == tag {
            return s;
        }
    }
    panic!("no session with tag {tag:?} reached the upstream");
}

/// A client connected to harp that has sent `tag`; reads time out in 5 s.
fn client(port: u16, tag: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(tag).unwrap();
    c
}

/// How the stream on `s` ends after any data: `Ok(())` for a FIN, the error kind otherwise.
fn end_of(s: &mut TcpStream) -> Result<(), ErrorKind> {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) => return Err(e.kind()),
        }
    }
}

/// One IPv4 socket of /proc/net/tcp: local and remote port, state (hex: 01 established, 04
/// FIN_WAIT1, 05 FIN_WAIT2, 06 TIME_WAIT...) and timer field (`tr:when`).
struct TcpRow {
    local: u16,
    remote: u16,
    state: String,
    timer: String,
}

fn tcp_rows() -> Vec<TcpRow> {
    let port = |a: &str| {
        a.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(TcpRow {
                local: port(f.get(1)?)?,
                remote: port(f.get(2)?)?,
                state: f.get(3)?.to_string(),
                timer: f.get(5)?.to_string(),
            })
        })
        .collect()
}

/// States of the sockets from local port `local` to remote port `remote`.
fn states(local: u16, remote: u16) -> Vec<String> {
    tcp_rows()
        .into_iter()
        .filter(|r| r.local == local && r.remote == remote)
        .map(|r| r.state)
        .collect()
}

/// Waits until neither harp's socket from `local` to `remote` nor the peer's socket the other
/// way exists any more: harp reset it (no FIN_WAIT/TIME_WAIT on harp's side, no CLOSE_WAIT left
/// on the peer's).
fn gone_both_ways(local: u16, remote: u16) -> bool {
    common::wait_until(Duration::from_secs(5), || {
        states(local, remote).is_empty() && states(remote, local).is_empty()
    })
}

#[test]
fn server_timeout_ends_the_response_direction_only() {
    // HAProxy 2.6 in TCP mode, watched on the wire: when the server stays quiet past `timeout
    // server`, the client gets a FIN but may still send, and the server receives it; the
    // client's own FIN then reaches the server, followed by a reset. The log says `sD`.
    let (sink, log) = common::syslog_sink();
    let (_h, port, up) = setup(&format!(
        "    timeout server 300ms
{log}"
    ));
    let mut c = client(port, b"timeout");
    let mut s = accept_tagged(&up, b"timeout");
    let (upstream, harp_side) = (port_of(&s, true), port_of(&s, false));
    let t = Instant::now();
    assert_eq!(end_of(&mut c), Ok(()), "the client reads an end of stream");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    c.write_all(b"more").unwrap();
    let mut more = [0u8; 4];
    s.read_exact(&mut more).unwrap();
    assert_eq!(&more, b"more", "the request direction still forwards");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        end_of(&mut s),
        Ok(()),
        "the client's FIN reaches the server"
    );
    let gone = gone_both_ways(harp_side, upstream);
    assert!(gone, "{:?}", states(upstream, harp_side));
    // HAProxy's line: no byte from the server, and the backend and server counts no longer
    // include the ended session
    let line = log_of(&sink, &c);
    assert!(line.contains(" px px/s1 "), "{line}");
    assert!(line.contains(" 0 sD 1/1/0/0/0 0/0"), "{line}");
}

#[test]
fn client_timeout_ends_the_request_direction_only() {
    // ... and the other way round: a client quiet past `timeout client` sends the server a FIN,
    // the server may still answer, and the client gets the answer and the server's FIN. `cD`.
    let (sink, log) = common::syslog_sink();
    let (_h, port, up) = setup(&format!(
        "    timeout client 300ms
{log}"
    ));
    let mut c = client(port, b"quiet");
    let mut s = accept_tagged(&up, b"quiet");
    assert_eq!(end_of(&mut s), Ok(()), "the server reads an end of stream");
    s.write_all(b"answer").unwrap();
    let mut got = [0u8; 6];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"answer", "the response direction still forwards");
    drop(s);
    assert_eq!(
        end_of(&mut c),
        Ok(()),
        "the server's FIN reaches the client"
    );
    let line = log_of(&sink, &c);
    assert!(line.contains(" px px/s1 "), "{line}");
    assert!(line.contains(" 6 cD 1/1/0/0/0 0/0"), "{line}");
}

#[test]
fn fin_timeouts_apply_once_a_side_was_sent_a_fin() {
    // HAProxy 2.6: `timeout client-fin` also covers a client that was sent the server's FIN and
    // stays quiet, counted from that FIN; `timeout server-fin` likewise a server sent the
    // client's FIN. Here 300 ms against 10 s for the full timeouts.
    let (sink, log) = common::syslog_sink();
    let fins = "    timeout client-fin 300ms\n    timeout server-fin 300ms\n";
    let (_h, port, up) = setup(&format!("{fins}{log}"));
    // the server closes its direction, the client never does
    let mut c = client(port, b"srvfin");
    let mut s = accept_tagged(&up, b"srvfin");
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(end_of(&mut c), Ok(()));
    let t = Instant::now();
    assert_eq!(end_of(&mut s), Ok(()), "the session ends at client-fin");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let line = log_of(&sink, &c);
    assert!(line.contains(" px px/s1 "), "{line}");
    assert!(line.contains(" cD "), "{line}");
    // the client closes its direction, the server never does
    let mut c = client(port, b"clifin");
    let mut s = accept_tagged(&up, b"clifin");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(end_of(&mut s), Ok(()));
    let t = Instant::now();
    assert_eq!(end_of(&mut c), Ok(()), "the session ends at server-fin");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let line = log_of(&sink, &c);
    assert!(line.contains(" px px/s1 "), "{line}");
    assert!(line.contains(" sD "), "{line}");
}

#[test]
fn killed_sessions_close_as_haproxy_closes_them() {
    // HAProxy 2.6, watched on the wire: a session closed by `shutdown sessions server` or by
    // `on-marked-down shutdown-sessions` sends its server a FIN and then a reset, its client a
    // FIN, and logs `K-` or `D-` (no session state)
    let (sink, log) = common::syslog_sink();
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    up.set_nonblocking(true).unwrap();
    let (port, api) = (free_port(), free_port());
    let server = format!(
        "{} on-marked-down shutdown-sessions",
        up.local_addr().unwrap()
    );
    let cfg = config(port, up.local_addr().unwrap(), &log)
        .replace(
            "nbthread 2\n",
            &format!("nbthread 2\n    stats socket ipv4@127.0.0.1:{api} level admin\n"),
        )
        .replace(
            &format!("server s1 {}", up.local_addr().unwrap()),
            &format!("server s1 {server}"),
        );
    let _h = Harp::start(&cfg, port, &[]);
    for (cmd, state) in [
        ("shutdown sessions server px/s1", " K- "),
        ("set server px/s1 state maint", " D- "),
    ] {
        let mut c = client(port, state.as_bytes());
        let mut s = accept_tagged(&up, state.as_bytes());
        let (upstream, harp_side) = (port_of(&s, true), port_of(&s, false));
        assert_eq!(common::cli(api, cmd).trim(), "", "{cmd}");
        assert_eq!(
            end_of(&mut c),
            Ok(()),
            "{cmd}: the client reads an end of stream"
        );
        assert_eq!(
            end_of(&mut s),
            Ok(()),
            "{cmd}: the server reads a FIN first ..."
        );
        let gone = gone_both_ways(harp_side, upstream);
        assert!(
            gone,
            "{cmd}: ... then a reset: {:?}",
            states(upstream, harp_side)
        );
        let line = log_of(&sink, &c);
        assert!(line.contains(" px px/s1 "), "{line}");
        assert!(line.contains(state), "{line}");
        common::cli(api, "set server px/s1 state ready");
    }
}

/// `on-marked-up shutdown-backup-sessions`: when the active server comes up, the sessions on the
/// backup are closed as killed ones are, logged `U-` (HAProxy 2.6:
/// `px px/b1 1/0/0 0 U- 1/1/0/0/0 0/0`).
#[test]
fn an_active_server_coming_up_closes_the_backup_sessions() {
    let (sink, log) = common::syslog_sink();
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    up.set_nonblocking(true).unwrap();
    let (port, api) = (free_port(), free_port());
    let addr = up.local_addr().unwrap();
    let cfg = config(port, addr, &log)
        .replace(
            "nbthread 2\n",
            &format!("nbthread 2\n    stats socket ipv4@127.0.0.1:{api} level admin\n"),
        )
        .replace(
            &format!("server s1 {addr}"),
            &format!(
                "server s1 {addr} disabled on-marked-up shutdown-backup-sessions\n    \
                 server b1 {addr} backup"
            ),
        );
    let _h = Harp::start(&cfg, port, &[]);
    let mut c = client(port, b"on-backup");
    let mut s = accept_tagged(&up, b"on-backup");
    assert_eq!(common::cli(api, "set server px/s1 state ready").trim(), "");
    assert_eq!(end_of(&mut c), Ok(()), "the client reads an end of stream");
    assert_eq!(end_of(&mut s), Ok(()), "the backup reads a FIN");
    let line = log_of(&sink, &c);
    assert!(
        line.contains(" px px/b1 ") && line.contains(" U- "),
        "{line}"
    );
}

/// Server state changes reach the proxy's `log` targets as in HAProxy 2.6 (captured): going
/// down at `alert`, the lost last server at `emerg`, coming back at `notice`, under the
/// `log-tag`; a target's level keeps only what is at least as severe.
#[test]
fn server_state_changes_go_to_the_proxy_log_targets() {
    let (sink, log) = common::syslog_sink();
    let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let (port, api) = (free_port(), free_port());
    let extra = format!(
        "{log}    log {} local1 alert\n    log-tag haproxy\n",
        quiet.local_addr().unwrap()
    );
    let cfg = config(port, up.local_addr().unwrap(), &extra).replace(
        "nbthread 2\n",
        &format!("nbthread 2\n    stats socket ipv4@127.0.0.1:{api} level admin\n"),
    );
    let _h = Harp::start(&cfg, port, &[]);
    common::cli(api, "set server px/s1 state maint");
    let l = common::syslog_line(&sink, "for maintenance");
    assert!(l.starts_with("<129>") && l.contains(" haproxy["), "{l}");
    assert!(
        // (the sessions count includes harp's start-up probe, still open)
        l.contains(
            "]: Server px/s1 is going DOWN for maintenance. 0 active and 0 backup servers left. "
        ),
        "{l}"
    );
    let l = common::syslog_line(&sink, "has no server");
    assert!(
        l.starts_with("<128>") && l.ends_with("]: proxy px has no server available!"),
        "{l}"
    );
    common::cli(api, "set server px/s1 state ready");
    let l = common::syslog_line(&sink, "leaving");
    assert!(
        l.starts_with("<133>")
            && l.ends_with("]: Server px/s1 is UP/READY (leaving forced maintenance)."),
        "{l}"
    );
    // `local1 alert` took the alert and the emergency, not the notice
    assert!(common::syslog_line(&quiet, "for maintenance").starts_with("<137>"));
    assert!(common::syslog_line(&quiet, "has no server").starts_with("<136>"));
    quiet
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        quiet.recv(&mut buf).is_err(),
        "a notice passed an alert-level target"
    );
}

/// The log line of the session whose client is `c` (other sessions, e.g. harp's start-up
/// probe, which may also time out, are skipped).
fn log_of(sink: &std::net::UdpSocket, c: &TcpStream) -> String {
    let cport = c.local_addr().unwrap().port();
    common::syslog_line(sink, &format!("]: 127.0.0.1:{cport} "))
}

/// `s`'s local (`local` true) or remote port.
fn port_of(s: &TcpStream, local: bool) -> u16 {
    let a = if local { s.local_addr() } else { s.peer_addr() };
    a.unwrap().port()
}

#[test]
fn client_abort_resets_the_server() {
    let (_h, port, up) = setup("");
    let c = client(port, b"abort");
    let mut s = accept_tagged(&up, b"abort");
    socket2::SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c); // the client resets
    assert_eq!(end_of(&mut s), Err(ErrorKind::ConnectionReset));
}

#[test]
fn a_finished_exchange_ends_with_fins_both_ways() {
    let (_h, port, up) = setup("");
    let mut c = client(port, b"clean");
    let mut s = accept_tagged(&up, b"clean");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        end_of(&mut s),
        Ok(()),
        "the client's FIN reaches the server"
    );
    s.write_all(b"answer").unwrap();
    drop(s);
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"answer");
}

#[test]
fn option_nolinger_leaves_no_client_socket_lingering() {
    // a `listen` section: the option acts on both sides, as in HAProxy
    let (_h, port, up) = setup("    option nolinger\n    timeout client 300ms\n");
    let mut c = client(port, b"nolinger");
    let mut s = accept_tagged(&up, b"nolinger");
    // the client stays silent past `timeout client`: on the server side that end is forwarded
    // as a reset, which ends the session ...
    assert_eq!(end_of(&mut s), Err(ErrorKind::ConnectionReset));
    // ... the client reads an end of stream, as from HAProxy, and harp's side of it is gone at
    // once (reset) instead of waiting in FIN_WAIT2
    assert_eq!(end_of(&mut c), Ok(()));
    let cport = c.local_addr().unwrap().port();
    let gone = common::wait_until(Duration::from_secs(5), || states(port, cport).is_empty());
    assert!(gone, "{:?}", states(port, cport));
}

#[test]
fn backend_nolinger_forwards_a_half_close_as_a_reset() {
    // HAProxy 2.6, watched on the wire: with `option nolinger` in the backend, a client's FIN
    // reaches the server as a reset and the session ends (the client reads an end of stream, the
    // log says `--`): half-closing protocols do not survive it, and harp does the same
    let (sink, log) = common::syslog_sink();
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    up.set_nonblocking(true).unwrap();
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    \
         timeout server 10s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n{log}    \
         default_backend be\n\nbackend be\n    option nolinger\n    server s1 {}\n",
        up.local_addr().unwrap()
    );
    let _h = Harp::start(&cfg, port, &[]);
    let mut c = client(port, b"half");
    let mut s = accept_tagged(&up, b"half");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(end_of(&mut s), Err(ErrorKind::ConnectionReset));
    assert_eq!(end_of(&mut c), Ok(()));
    // (the counts may include harp's start-up probe, still open)
    let line = log_of(&sink, &c);
    assert!(line.contains(" 0 -- "), "{line}");
}

/// The keepalive timers (`tr` 2) of established sockets whose local (`local` true) or remote
/// port is `port`, in seconds left.
fn keepalive_timers(port: u16, local: bool) -> Vec<f64> {
    tcp_rows()
        .into_iter()
        .filter(|r| r.state == "01" && port == if local { r.local } else { r.remote })
        .filter_map(|r| match r.timer.split_once(':') {
            Some(("02", when)) => u64::from_str_radix(when, 16).ok(),
            _ => None,
        })
        .map(|ticks| ticks as f64 / 100.0) // USER_HZ
        .collect()
}

#[test]
fn tcpka_arms_keepalive_on_both_sides_with_their_idle_times() {
    let (_h, port, up) = setup("    option tcpka\n    clitcpka-idle 70\n    srvtcpka-idle 90s\n");
    let _c = client(port, b"ka");
    let s = accept_tagged(&up, b"ka");
    let upstream = s.local_addr().unwrap().port();
    // harp's client-side socket: local port = the listener's; server side: remote = upstream's.
    // The keepalive timer shows once no retransmit timer is pending (the tag ACKed).
    let armed = |port, local, range: std::ops::RangeInclusive<f64>| {
        common::wait_until(Duration::from_secs(5), || {
            keepalive_timers(port, local)
                .iter()
                .any(|t| range.contains(t))
        })
    };
    assert!(
        armed(port, true, 60.0..=70.0),
        "{:?}",
        keepalive_timers(port, true)
    );
    let srv_armed = armed(upstream, false, 80.0..=90.0);
    assert!(srv_armed, "{:?}", keepalive_timers(upstream, false));
}

#[test]
fn option_nolinger_covers_a_client_that_never_got_a_server() {
    // a port with nothing listening: every connect is refused
    let refused = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let port = free_port();
    let cfg = config(port, refused, "    retries 0\n    option nolinger\n");
    let _h = Harp::start(&cfg, port, &[]);
    // sends nothing: unread data would make any close a reset
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(end_of(&mut c), Ok(()), "the client reads an end of stream");
    let cport = c.local_addr().unwrap().port();
    let gone = common::wait_until(Duration::from_secs(5), || states(port, cport).is_empty());
    assert!(gone, "harp's side lingers: {:?}", states(port, cport));
}
