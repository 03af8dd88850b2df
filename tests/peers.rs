//! Peers: two processes share a stick table over HAProxy's peers protocol. The second
//! process is harp too, or whatever `HARP_PEER_BIN` names (a wrapper running
//! `haproxy -db "$@"` checks harp against HAProxy: every test here passes that way).

mod common;

use common::{cli, free_port, wait_until, write_file, Harp};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Starts a process named `me` in a peers section of `lbA` and `lbB`, with a frontend on
/// `front` tracking clients in table `st`, and its Runtime API on `api`. `other` runs the
/// `HARP_PEER_BIN` program instead of harp.
fn start(me: &str, peers: (u16, u16), front: u16, api: u16, upstream: u16, other: bool) -> Harp {
    let cfg = format!(
        "global\n    localpeer {me}\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\
         peers mypeers\n    peer lbA 127.0.0.1:{}\n    peer lbB 127.0.0.1:{}\n\
         frontend fe\n    bind 127.0.0.1:{front}\n    tcp-request connection track-sc0 src table st\n    default_backend st\n\
         backend st\n    stick-table type ip size 1k expire 30s peers mypeers store server_id,conn_cnt,conn_rate(10s),gpc0,server_key\n\
         \x20   stick on src\n    server s1 127.0.0.1:{upstream}\n",
        peers.0, peers.1
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = match std::env::var_os("HARP_PEER_BIN").filter(|_| other) {
        Some(bin) => Harp::spawn_bin(bin, dir, &cfg, &[], |_| {}),
        None => Harp::spawn_in(dir, &cfg, &[]),
    };
    h.wait_port(api);
    h
}

/// The `show table st` line of `key` (empty when absent).
fn entry(api: u16, key: &str) -> String {
    cli(api, "show table st")
        .lines()
        .find(|l| l.contains(&format!(" key={key} ")))
        .unwrap_or("")
        .to_string()
}

/// Waits (10 s) until `key`'s entry on `api` contains every one of `want`.
/// Two peers that dial each other at once may both drop a session (the newest wins on each
/// side) and redial after a random delay, as HAProxy's do: a loaded machine may need a few
/// rounds.
fn wait_entry(api: u16, key: &str, want: &[&str]) -> String {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(25), || {
        last = entry(api, key);
        want.iter().all(|w| last.contains(w))
    });
    assert!(
        ok,
        "{key} never had {want:?}; last: {last:?}\n{}",
        cli(api, "show peers")
    );
    last
}

/// One connection through the frontend on `port` (sent and closed).
fn visit(port: u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = c.write_all(b"x");
}

#[test]
fn two_peers_share_tracked_counters_stickiness_and_runtime_api_changes_both_ways() {
    let up = common::accepting_upstream();
    let (pa, pb) = (free_port(), free_port());
    let (fa, fb, aa, ab) = (free_port(), free_port(), free_port(), free_port());
    let _a = start("lbA", (pa, pb), fa, aa, up, false);
    let _b = start("lbB", (pa, pb), fb, ab, up, true);
    // a client seen by A: B learns its counters and the server it sticks to
    visit(fa);
    let on_b = wait_entry(
        ab,
        "127.0.0.1",
        &["conn_cnt=1", "server_id=1", "server_key=s1"],
    );
    assert!(on_b.contains("conn_rate(10000)=1"), "{on_b}");
    // the same client then seen by B: A gets B's count, which went on from A's
    visit(fb);
    wait_entry(aa, "127.0.0.1", &["conn_cnt=2", "server_key=s1"]);
    // a Runtime API change on either side reaches the other
    let r = cli(ab, "set table st key 127.0.0.2 data.gpc0 5");
    assert_eq!(r.trim(), "", "{r}");
    wait_entry(aa, "127.0.0.2", &["gpc0=5"]);
    cli(aa, "set table st key 127.0.0.2 data.gpc0 7");
    wait_entry(ab, "127.0.0.2", &["gpc0=7"]);
    // `show peers` on either side: the other one, its session established
    for (api, other, me) in [(aa, "lbB", "lbA"), (ab, "lbA", "lbB")] {
        let shown = cli(api, "show peers");
        let line = shown
            .lines()
            .find(|l| l.contains(&format!(": id={other}(")))
            .unwrap_or_default();
        assert!(
            line.contains(&format!("id={other}(remote,active)"))
                && line.contains("last_status=ESTA"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("id={me}(local,inactive)")),
            "{shown}"
        );
        assert!(shown.contains(" id=mypeers disabled=0 "), "{shown}");
    }
    assert_eq!(cli(aa, "show peers nosuch"), "No such peers\n\n");
}

#[test]
fn a_restarted_peer_learns_the_whole_table_with_what_is_left_of_each_entry_life() {
    let up = common::accepting_upstream();
    let (pa, pb) = (free_port(), free_port());
    let (fa, fb, aa, ab) = (free_port(), free_port(), free_port(), free_port());
    let _a = start("lbA", (pa, pb), fa, aa, up, false);
    for i in 1..=50 {
        cli(aa, &format!("set table st key 10.0.0.{i} data.gpc0 {i}"));
    }
    visit(fa);
    wait_until(Duration::from_secs(5), || {
        entry(aa, "127.0.0.1").contains("server_key=s1")
    });
    // B starts after the entries were made: only a resync can teach them
    let b = start("lbB", (pa, pb), fb, ab, up, true);
    wait_entry(ab, "10.0.0.50", &["gpc0=50"]);
    let all = cli(ab, "show table st");
    assert!(all.contains("used:51"), "{all}");
    let e = wait_entry(ab, "127.0.0.1", &["conn_cnt=1", "server_key=s1"]);
    let exp: u64 = e
        .split(" exp=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(exp > 0 && exp <= 30_000, "{e}");
    drop(b);
}

/// Sends `text` to a peer port and returns its whole reply.
fn hello(port: u16, text: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the peer port");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(text.as_bytes()).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    // the status line, then the session's first bytes or the close
    while !out.contains(&b'\n') {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn hellos_are_answered_with_haproxy_status_codes() {
    let up = common::accepting_upstream();
    let (pa, pb) = (free_port(), free_port());
    let (fa, aa) = (free_port(), free_port());
    let _a = start("lbA", (pa, pb), fa, aa, up, true);
    assert_eq!(hello(pa, "HAProxyS 3.0\nlbA\nlbB 1 1\n"), "502\n");
    assert_eq!(hello(pa, "HAProxyS 2.1\nsomeone\nlbB 1 1\n"), "503\n");
    assert_eq!(hello(pa, "HAProxyS 2.1\nlbA\nlbC 1 1\n"), "504\n");
    assert_eq!(hello(pa, "GET / HTTP/1.0\r\n\r\n"), "501\n");
    assert!(hello(pa, "HAProxyS 2.1\nlbA\nlbB 1 1\n").starts_with("200\n"));
    if std::env::var_os("HARP_PEER_BIN").is_some() {
        return;
    }
    // connections that say nothing cannot pile up: past a few hellos under way, more are
    // closed at once (HAProxy's peers frontend has a small maxconn too)
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(("127.0.0.1", pa)).expect("connect"))
        .collect();
    let closed = idle
        .iter()
        .filter(|c| {
            c.set_read_timeout(Some(Duration::from_millis(200))).ok();
            matches!((&**c).read(&mut [0u8; 8]), Ok(0))
        })
        .count();
    assert!(closed >= 20, "{closed} of 40 idle connections closed");
    drop(idle);
    // once they are gone, hellos are taken again
    assert!(wait_until(Duration::from_secs(10), || {
        hello(pa, "HAProxyS 2.1\nlbA\nlbB 1 1\n").starts_with("200\n")
    }));
}

/// `harp -c -L <me> -f <cfg>`: whether it passed, and what it said.
fn check(cfg: &std::path::Path, me: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harp"))
        .args(["-c", "-L", me, "-f"])
        .arg(cfg)
        .output()
        .expect("run harp -c");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_names_a_missing_peers_section_and_warns_of_one_without_the_local_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let peers = "peers mypeers\n    peer lbA 127.0.0.1:1\n    peer lbB 127.0.0.1:2\n";
    let bad = write_file(
        dir.path(),
        "bad.cfg",
        &format!("{peers}backend st\n    stick-table type ip size 1k peers nosuch\n"),
    );
    let (ok, err) = check(&bad, "lbA");
    assert!(!ok);
    assert!(
        err.contains("Proxy 'st': unable to find sync peers 'nosuch'."),
        "{err}"
    );
    let good = write_file(
        dir.path(),
        "ok.cfg",
        &format!("{peers}backend st\n    stick-table type ip size 1k peers mypeers\n"),
    );
    let (ok, err) = check(&good, "lbC");
    assert!(ok, "{err}");
    assert!(
        err.contains("Removing incomplete section 'peers mypeers' (no peer named 'lbC')."),
        "{err}"
    );
    // a remote name twice is taken (HAProxy dials both); the local one twice is refused
    let dup = write_file(
        dir.path(),
        "dup.cfg",
        &format!("{peers}    peer lbB 127.0.0.1:3\nbackend st\n    stick-table type ip size 1k peers mypeers\n"),
    );
    assert!(check(&dup, "lbA").0);
    let (ok, err) = check(&dup, "lbB");
    assert!(!ok);
    assert!(
        err.contains("dup.cfg:4] : 'peer lbB' : local peer name already referenced at ")
            && err.contains("dup.cfg:3. lbB"),
        "{err}"
    );
}

#[test]
fn a_reload_with_sf_hands_the_table_over_to_the_new_process() {
    // the common single-node form: a peers section with only the local peer keeps the
    // tables across reloads
    let (peer, front, api) = (free_port(), free_port(), free_port());
    // a server that keeps each connection open until its client closes, so that a session
    // outlives the reload
    let up = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_port = up.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut c in up.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
         peers local\n    peer me 127.0.0.1:{peer}\n\
         frontend fe\n    bind 127.0.0.1:{front}\n    tcp-request connection track-sc0 src table st\n    default_backend st\n\
         backend st\n    stick-table type ip size 1k expire 60s peers local store gpc0,conn_cnt,conn_cur\n    server s1 127.0.0.1:{up_port}\n"
    );
    let named = |c: &mut std::process::Command| {
        c.args(["-L", "me"]);
    };
    let mut old = Harp::spawn_prepared(tempfile::tempdir().expect("tempdir"), &cfg, &[], named);
    old.wait_port(api);
    for i in 1..=20 {
        cli(api, &format!("set table st key 10.0.0.{i} data.gpc0 {i}"));
    }
    // a client on the old process, its session still open
    let mut client = TcpStream::connect(("127.0.0.1", front)).expect("connect");
    client.write_all(b"x").expect("send");
    wait_entry(api, "127.0.0.1", &["conn_cur=1"]);
    let old_pid = old.pid().to_string();
    let new = Harp::spawn_prepared(tempfile::tempdir().expect("tempdir"), &cfg, &[], |c| {
        c.args(["-L", "me", "-sf", &old_pid]);
    });
    // once the new process listens, the old one is told to go and teaches it the table
    let learnt = wait_until(Duration::from_secs(10), || {
        cli(api, "show info").contains(&format!("Pid: {}", new.pid()))
            && cli(api, "show table st").contains("used:21")
    });
    assert!(learnt, "{}\n{}", cli(api, "show table st"), new.stderr());
    assert!(entry(api, "10.0.0.7").contains("gpc0=7"));
    assert!(entry(api, "127.0.0.1").contains("conn_cur=1"));
    // the old session ends: the old process says so before it goes
    drop(client);
    assert_eq!(old.wait_exit(), Some(0), "{}", old.stderr());
    let e = wait_entry(api, "127.0.0.1", &["conn_cur=0"]);
    assert!(e.contains("conn_cnt=1"), "{e}");
    // and the new process serves the frontend
    assert!(TcpStream::connect(("127.0.0.1", front)).is_ok());
}

#[test]
fn tables_declared_in_the_peers_section_are_shared_and_named_with_its_prefix() {
    let (pa, pb, aa, ab, fa) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let cfg = |me: &str, api: u16| {
        format!(
            "global\n    localpeer {me}\n    stats socket 127.0.0.1:{api} level admin\n\
             defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\
             peers mypeers\n    peer lbA 127.0.0.1:{pa}\n    peer lbB 127.0.0.1:{pb}\n\
             \x20   table names type string len 32 size 1k expire 30s store gpc0,gpc0_rate(10s)\n\
             \x20   table ids type integer size 1k expire 30s store gpt0\n\
             frontend fe\n    bind 127.0.0.1:{fa}\n    tcp-request connection track-sc0 src table mypeers/names\n\
             \x20   tcp-request connection reject if {{ src,table_gpc0(mypeers/names) gt 100 }}\n\
             \x20   default_backend be\n\
             backend be\n    server s1 127.0.0.1:1\n"
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Harp::spawn_in(dir, &cfg("lbA", aa), &[]);
    a.wait_port(aa);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = match std::env::var_os("HARP_PEER_BIN") {
        Some(bin) => Harp::spawn_bin(bin, dir, &cfg("lbB", ab), &[], |_| {}),
        None => Harp::spawn_in(dir, &cfg("lbB", ab), &[]),
    };
    b.wait_port(ab);
    let heads = cli(aa, "show table");
    assert!(
        heads.contains("# table: mypeers/names, type: string, size:1024, used:0"),
        "{heads}"
    );
    cli(aa, "set table mypeers/names key alice data.gpc0 3");
    cli(ab, "set table mypeers/ids key 42 data.gpt0 9");
    let on_b = wait_until(Duration::from_secs(10), || {
        cli(ab, "show table mypeers/names").contains("key=alice use=0")
    });
    assert!(on_b, "{}", cli(ab, "show table mypeers/names"));
    assert!(cli(ab, "show table mypeers/names").contains("gpc0=3"));
    let on_a = wait_until(Duration::from_secs(10), || {
        cli(aa, "show table mypeers/ids").contains("key=42 use=0")
    });
    assert!(on_a, "{}", cli(aa, "show table mypeers/ids"));
    assert!(cli(aa, "show table mypeers/ids").contains("gpt0=9"));
    // a client tracked on A by its address, as a string key, reaches B
    visit(fa);
    let tracked = wait_until(Duration::from_secs(10), || {
        cli(ab, "show table mypeers/names").contains("key=127.0.0.1 ")
    });
    assert!(tracked, "{}", cli(ab, "show table mypeers/names"));
}

/// Opens a session with the peer on `port` as `lbB`, sends `bytes`, and returns everything
/// it sent until it closed (10 s at most).
fn session_reply(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the peer port");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"HAProxyS 2.1\nlbA\nlbB 1 1\n").expect("hello");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.starts_with(b"200\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    s.write_all(bytes).expect("send");
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn a_peer_breaking_the_protocol_gets_haproxy_error_messages_and_the_process_goes_on() {
    let up = common::accepting_upstream();
    let (pa, pb) = (free_port(), free_port());
    let (fa, aa) = (free_port(), free_port());
    let _a = start("lbA", (pa, pb), fa, aa, up, true);
    // the reserved class: a protocol error
    let got = session_reply(pa, &[0xff, 0x00]);
    assert!(got.ends_with(&[0x01, 0x00]), "{got:x?}");
    // a table message longer than a buffer: the size error
    let got = session_reply(pa, &[0x0a, 0x80, 0xf0, 0xd3, 0x08]);
    assert!(got.ends_with(&[0x01, 0x01]), "{got:x?}");
    // an update too short for its key: a protocol error
    let mut define = vec![0x0a, 0x82];
    let body = [&[1u8, 2][..], b"st", &[4, 4, 0x01, 0xf0, 0xc4, 0x0d]].concat();
    define.push(body.len() as u8);
    define.extend_from_slice(&body);
    define.extend_from_slice(&[0x0a, 0x80, 0x05, 0, 0, 0, 1, 127]);
    let got = session_reply(pa, &define);
    assert!(got.ends_with(&[0x01, 0x00]), "{got:x?}");
    // and the process still serves its peers and its Runtime API
    assert!(cli(aa, "show table st").starts_with("# table: st"));
    assert!(hello(pa, "HAProxyS 2.1\nlbA\nlbB 1 1\n").starts_with("200\n"));
}

#[test]
fn a_start_whose_old_process_never_teaches_learns_from_a_peer_after_five_seconds() {
    // lbA learnt an entry from lbC; lbC went away; lbB starts as if replacing a process
    // (`-sf` of one that is no harp): it waits 5 s for that lesson, then asks lbA
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let (pa, pb, pc, aa, ab, ac) = (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
    let cfg = |me: &str, api: u16| {
        format!(
            "global\n    localpeer {me}\n    stats socket 127.0.0.1:{api} level admin\n\
             peers mypeers\n    peer lbA 127.0.0.1:{pa}\n    peer lbB 127.0.0.1:{pb}\n    peer lbC 127.0.0.1:{pc}\n\
             backend st\n    stick-table type ip size 1k expire 60s peers mypeers store gpc0\n"
        )
    };
    let start = |me: &str, api: u16, prepare: &dyn Fn(&mut std::process::Command)| {
        let mut h = Harp::spawn_prepared(
            tempfile::tempdir().expect("tempdir"),
            &cfg(me, api),
            &[],
            prepare,
        );
        h.wait_port(api);
        h
    };
    let _a = start("lbA", aa, &|_| {});
    let c = start("lbC", ac, &|_| {});
    cli(ac, "set table st key 10.9.9.9 data.gpc0 42");
    wait_entry(aa, "10.9.9.9", &["gpc0=42"]);
    drop(c);
    let mut stand_in = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep");
    let pid = stand_in.id().to_string();
    let _b = start("lbB", ab, &|cmd| {
        cmd.args(["-sf", &pid]);
    });
    let learnt = wait_until(Duration::from_secs(15), || {
        entry(ab, "10.9.9.9").contains("gpc0=42")
    });
    let _ = stand_in.kill();
    let _ = stand_in.wait();
    assert!(learnt, "{}", cli(ab, "show table st"));
}
