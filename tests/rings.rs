//! `ring` sections: `log ring@<name>` lines kept in memory (`show events`) and sent on to
//! TCP syslog servers, one line and a newline each, as HAProxy 2.6 sends them
//! (`HARP_BIN=<wrapper running haproxy -db "$@">` runs these against HAProxy).

mod common;

use common::{cli, free_port, write_file, Harp};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A TCP syslog receiver: everything it was sent on its first connection, as lines, read
/// until `want` lines came (10 s at most).
fn receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = l.accept() else { return };
        c.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(p) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=p).collect();
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            }
        }
    });
    (port, rx)
}

fn config(api: u16, front: u16, ring: &str) -> String {
    format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    log ring@logs local0\n\
         ring logs\n{ring}\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{front}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        common::accepting_upstream()
    )
}

#[test]
fn logged_lines_reach_the_ring_and_its_tcp_servers_one_per_line() {
    let (syslog, lines) = receiver();
    let (api, front) = (free_port(), free_port());
    let ring = format!(
        "    description \"tcp syslog\"\n    format rfc5424\n    maxlen 1200\n    size 32768\n\
         \x20   timeout connect 2s\n    timeout server 5s\n    server s 127.0.0.1:{syslog}\n"
    );
    let _h = Harp::start(&config(api, front, &ring), front, &[]);
    let mut c = TcpStream::connect(("127.0.0.1", front)).expect("connect");
    c.write_all(b"hello").expect("send");
    drop(c);
    let line = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("a line on the TCP server");
    // RFC 5424 framing, the tcplog line, a newline and no octet count
    assert!(line.starts_with("<134>1 "), "{line:?}");
    assert!(
        line.contains(" - - 127.0.0.1:") && line.contains(" fe be/s1 "),
        "{line:?}"
    );
    assert!(line.ends_with("\n"), "{line:?}");
    // (the start-up probe's connection is logged too)
    let shown = cli(api, "show events logs");
    assert!(shown.contains(&line), "{shown}");
    let sinks = cli(api, "show events");
    assert!(
        sinks.starts_with(
            "Supported events sinks are listed below. Add -w(wait), -n(new). Any key to stop\n"
        ),
        "{sinks}"
    );
    assert!(
        sinks.contains("\n    logs       : type=buffer, 0 dropped, tcp syslog\n"),
        "{sinks}"
    );
    assert!(
        sinks.contains("\n    buf0       : type=buffer, "),
        "{sinks}"
    );
    assert_eq!(cli(api, "show events nosuch"), "No such event sink\n");
    assert_eq!(cli(api, "show events logs -n"), "\n");
    // HAProxy's other replies: the fd sinks, an unknown flag, the sink named first only
    assert_eq!(
        cli(api, "show events stdout"),
        "Nothing to report for this sink\n"
    );
    assert_eq!(cli(api, "show events logs -x"), "unknown option\n");
    assert_eq!(cli(api, "show events -w logs"), "No such event sink\n");
}

#[test]
fn a_syslog_server_that_closes_and_comes_back_misses_no_line() {
    // the first connection is closed after its first line (a restart), the second stays
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let syslog = l.local_addr().expect("addr").port();
    let (tx, lines) = std::sync::mpsc::channel::<(usize, String)>();
    std::thread::spawn(move || {
        for (n, c) in l.incoming().enumerate() {
            let Ok(mut c) = c else { break };
            let tx = tx.clone();
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(20))).ok();
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(k) = c.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..k]);
                    while let Some(p) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=p).collect();
                        let _ = tx.send((n, String::from_utf8_lossy(&line).into_owned()));
                        if n == 0 {
                            return;
                        }
                    }
                }
            });
        }
    });
    let (api, front) = (free_port(), free_port());
    let ring = format!("    format raw\n    server s 127.0.0.1:{syslog}\n");
    let _h = Harp::start(&config(api, front, &ring), front, &[]);
    // the start-up probe's line is the first one, which the first connection takes
    let (n, _) = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("a first line");
    assert_eq!(n, 0);
    let mut ports = Vec::new();
    for _ in 0..5 {
        let c = TcpStream::connect(("127.0.0.1", front)).expect("connect");
        ports.push(c.local_addr().expect("addr").port());
        drop(c);
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let Ok((n, line)) = lines.recv_timeout(Duration::from_secs(10)) else {
            break;
        };
        assert_eq!(n, 1, "{line}");
        got.push(line);
    }
    for p in ports {
        assert!(
            got.iter().any(|l| l.contains(&format!("127.0.0.1:{p} "))),
            "the line of {p} is missing: {got:?}"
        );
    }
}

#[test]
fn a_full_ring_keeps_the_latest_lines_in_rfc3164_with_the_host_named() {
    let (api, front) = (free_port(), free_port());
    let ring = "    format rfc3164\n    size 16384\n".to_string();
    let _h = Harp::start(&config(api, front, &ring), front, &[]);
    for _ in 0..200 {
        let mut c = TcpStream::connect(("127.0.0.1", front)).expect("connect");
        let _ = c.write_all(b"x");
    }
    let ok = common::wait_until(Duration::from_secs(10), || {
        cli(api, "show events logs").lines().count() > 50
    });
    let shown = cli(api, "show events logs");
    assert!(ok, "{shown}");
    let lines: Vec<&str> = shown.lines().filter(|l| !l.is_empty()).collect();
    // about 16 KiB of lines of about 140 bytes: the oldest left
    assert!(lines.len() < 200, "{}", lines.len());
    assert!(shown.len() <= 16_384 + 2, "{}", shown.len());
    assert!(lines[0].starts_with("<134>"), "{}", lines[0]);
    assert_eq!(&lines[0][20..31], " localhost ", "{}", lines[0]);
}

#[test]
fn a_log_line_naming_an_unknown_ring_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_file(
        dir.path(),
        "bad.cfg",
        "global\n    log ring@nosuch local0\nring other\n    server s 127.0.0.1:1\n",
    );
    let check = |cfg: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_harp"))
            .args(["-c", "-f"])
            .arg(cfg)
            .output()
            .expect("run harp -c");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = check(&cfg);
    assert!(!ok);
    assert!(
        err.contains("global log server declared in file '")
            && err.contains("bad.cfg' at line 2 uses unknown ring named 'nosuch'."),
        "{err}"
    );
    // a ring smaller than HAProxy's least (its buffer size) is refused, as HAProxy does
    let small = write_file(dir.path(), "small.cfg", "ring r\n    size 100\n");
    let (ok, err) = check(&small);
    assert!(!ok);
    assert!(
        err.contains(
            "ignoring new size '100' that is smaller than current size '16384' for ring 'r'."
        ),
        "{err}"
    );
}

#[test]
fn show_events_w_follows_the_ring_until_the_client_sends_a_key() {
    let (api, front) = (free_port(), free_port());
    let _h = Harp::start(&config(api, front, "    format raw\n"), front, &[]);
    let mut c = TcpStream::connect(("127.0.0.1", api)).expect("connect to the API");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    // -n: only what comes next
    c.write_all(b"show events logs -n -w\n").expect("send");
    // sessions go through until one's line comes (the first may end before the command
    // runs, and -n would not show it)
    c.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end
        && !(got.ends_with(b"\n") && String::from_utf8_lossy(&got).contains(" fe be/s1 "))
    {
        let mut t = TcpStream::connect(("127.0.0.1", front)).expect("connect");
        t.write_all(b"hello").expect("send");
        drop(t);
        if let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.starts_with("127.0.0.1:") && text.contains(" fe be/s1 "),
        "{text:?}"
    );
    // any key ends it, with the empty line that ends every reply (HAProxy 2.6 then keeps
    // the connection for more commands: harp only is checked here)
    if std::env::var_os("HARP_BIN").is_some() {
        return;
    }
    c.write_all(b"\n").expect("send a key");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(
        rest.ends_with(b"\n"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
}
