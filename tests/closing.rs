//! How sessions end on the wire, as HAProxy ends them: a server connection closed before the
//! server's FIN is reset (no FIN_WAIT/TIME_WAIT left on the proxy's ports), `option nolinger`
//! does the same to a client connection (after its FIN), and `option tcpka` / `*tcpka-idle` arm
//! keepalive timers. Real harp, real sockets on 127.0.0.1.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{free_port, Harp};

/// A listening upstream and a harp `listen px` in front of it, `extra` lines in the section.
fn setup(extra: &str) -> (Harp, u16, TcpListener) {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    up.set_nonblocking(true).unwrap();
    let port = free_port();
    let cfg = format!(
        "global\n    nbthread 2\n\ndefaults\n    mode tcp\n    timeout connect 1s\n    \
         timeout client 10s\n    timeout server 10s\n\nlisten px\n    bind 127.0.0.1:{port}\n\
         {extra}    server s1 {}\n",
        up.local_addr().unwrap()
    );
    let h = Harp::start(&cfg, port, &[]);
    (h, port, up)
}

/// The upstream side of the session whose client sent `tag` first (harp's start-up probe
/// connections send nothing and are skipped). The returned socket blocks, reads time out in 5 s.
fn accept_tagged(up: &TcpListener, tag: &[u8]) -> TcpStream {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let Ok((mut s, _)) = up.accept() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
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

/// TCP states (hex, as in /proc/net/tcp: 01 established, 05 FIN_WAIT2, 06 TIME_WAIT...) of the
/// IPv4 sockets from local port `local` to remote port `remote`.
fn states(local: u16, remote: u16) -> Vec<String> {
    let port = |a: &str| {
        a.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 3 && port(f[1]) == Some(local) && port(f[2]) == Some(remote))
        .map(|f| f[3].to_string())
        .collect()
}

#[test]
fn server_timeout_ends_the_session_with_a_reset_to_the_server() {
    let (_h, port, up) = setup("    timeout server 300ms\n");
    let mut c = client(port, b"timeout");
    let mut s = accept_tagged(&up, b"timeout");
    // the server never answers: after `timeout server` the client reads a plain end of stream
    assert_eq!(end_of(&mut c), Ok(()));
    let cport = c.local_addr().unwrap().port();
    let st = states(port, cport);
    let fin_wait = ["04", "05"]; // FIN_WAIT1 until the client's ACK is in, then FIN_WAIT2
    assert!(
        st.len() == 1 && fin_wait.contains(&st[0].as_str()),
        "{st:?}"
    );
    drop(c);
    // ... and the server, whose FIN never came, a reset
    assert_eq!(end_of(&mut s), Err(ErrorKind::ConnectionReset));
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
    let (_h, port, up) = setup("    option nolinger\n    timeout client 300ms\n");
    let mut c = client(port, b"nolinger");
    let mut s = accept_tagged(&up, b"nolinger");
    // the client stays silent past `timeout client`: it reads an end of stream, as from
    // HAProxy, and harp's side of it is gone at once (reset) instead of waiting in FIN_WAIT2
    assert_eq!(end_of(&mut c), Ok(()));
    let cport = c.local_addr().unwrap().port();
    let gone = common::wait_until(Duration::from_secs(5), || states(port, cport).is_empty());
    assert!(gone, "{:?}", states(port, cport));
    assert_eq!(end_of(&mut s), Err(ErrorKind::ConnectionReset));
}

/// The keepalive timers (`tr` 2 in /proc/net/tcp) of established sockets whose local
/// (`local` true) or remote port is `port`, in seconds left.
fn keepalive_timers(port: u16, local: bool) -> Vec<f64> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut v = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[3] != "01" {
            continue;
        }
        let addr = if local { f[1] } else { f[2] };
        let p = addr
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        if p != Some(port) {
            continue;
        }
        if let Some(("02", when)) = f[5].split_once(':') {
            let ticks = u64::from_str_radix(when, 16).unwrap_or(0);
            v.push(ticks as f64 / 100.0); // USER_HZ
        }
    }
    v
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
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    \
         timeout server 10s\n    retries 0\n\nlisten px\n    bind 127.0.0.1:{port}\n    \
         option nolinger\n    server s1 {refused}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(port);
    // sends nothing: unread data would make any close a reset
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(end_of(&mut c), Ok(()), "the client reads an end of stream");
    let cport = c.local_addr().unwrap().port();
    let gone = common::wait_until(Duration::from_secs(5), || states(port, cport).is_empty());
    assert!(gone, "harp's side lingers: {:?}", states(port, cport));
}
