//! Library-level data-plane tests: a `Config` built in code, real sockets on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{
    BindConfig, Capabilities, Config, Location, ProxyConfig, ServerConfig, ServerParams, Splice,
    SpliceMode,
};
use crate::events::EventBus;
use crate::model::{AdminAction, Cause, Command};

/// An upstream that echoes, or (with `tag`) sends its tag first and then echoes.
fn upstream(tag: Option<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                if let Some(t) = tag {
                    let _ = s.write_all(&[t]);
                }
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    a
}

fn listen_cfg(servers: &[SocketAddr], f: impl FnOnce(&mut ProxyConfig)) -> Config {
    let mut p = ProxyConfig::new(
        "px",
        Capabilities {
            frontend: true,
            backend: true,
        },
        Location::default(),
    );
    p.binds = vec![BindConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        accept_proxy: false,
        name: None,
        id: None,
        tls: None,
        tls_problem: None,
        location: Location::default(),
    }];
    p.timeouts.connect = Some(Duration::from_millis(500));
    p.timeouts.client = Some(Duration::from_secs(10));
    p.timeouts.server = Some(Duration::from_secs(10));
    p.servers = servers
        .iter()
        .enumerate()
        .map(|(i, a)| ServerConfig {
            name: format!("s{}", i + 1),
            addr: *a,
            params: ServerParams::default(),
            location: Location::default(),
        })
        .collect();
    f(&mut p);
    let mut cfg = Config {
        proxies: vec![p],
        ..Default::default()
    };
    cfg.global.nbthread = Some(2);
    cfg
}

struct Running {
    reg: Arc<Registry>,
    w: Option<Workers>,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(w) = self.w.take() {
            w.stop(false);
            w.wait();
        }
    }
}

fn run(cfg: Config) -> Running {
    let reg = Registry::new(cfg, Arc::new(EventBus::new()));
    let w = start(reg.clone()).unwrap();
    let addr = w.bound()[0].1;
    Running {
        reg,
        w: Some(w),
        addr,
    }
}

fn client(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

fn echo_once(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut c = client(addr);
    let mut w = c.try_clone().unwrap();
    let d = data.to_vec();
    let t = std::thread::spawn(move || {
        w.write_all(&d).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    t.join().unwrap();
    out
}

fn payload(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn wait_until(mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "condition not reached");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn echo_splice_and_copy() {
    let up = upstream(None);
    for mode in [SpliceMode::Always, SpliceMode::Auto, SpliceMode::Off] {
        let r = run(listen_cfg(&[up], |p| p.splice = Splice::both(mode)));
        let data = payload(3 << 20, 7);
        assert!(echo_once(r.addr, &data) == data, "{mode:?}");
        let srv = r.reg.find_server("px/s1").unwrap();
        wait_until(|| srv.counters.cur_sess.load(Ordering::Relaxed) == 0);
        assert_eq!(srv.counters.bytes_out.load(Ordering::Relaxed), 3 << 20);
        let spliced = srv.counters.spliced.load(Ordering::Relaxed);
        let gc = &r.reg.counters;
        wait_until(|| gc.pipes_used.load(Ordering::Relaxed) == 0);
        match mode {
            SpliceMode::Always | SpliceMode::Auto => {
                // `Auto` copies until the direction streams: at most 256 KiB each way
                let least = if mode == SpliceMode::Auto {
                    (6 << 20) - (512 << 10)
                } else {
                    6 << 20
                };
                assert!(spliced >= least, "{mode:?}: {spliced} bytes spliced");
                // Each direction gives its pipe back whenever it waits for data, so the two
                // directions of an echo may have taken turns with one pipe.
                let free = gc.pipes_free.load(Ordering::Relaxed);
                assert!((1..=2).contains(&free), "{free} pipes pooled");
            }
            SpliceMode::Off => assert_eq!(spliced, 0),
        }
    }
}

#[test]
fn small_messages_are_copied_without_pipes() {
    let up = upstream(None);
    // `no option splice-auto`, and the default while messages stay small
    for mode in [SpliceMode::Off, SpliceMode::Auto] {
        let r = run(listen_cfg(&[up], |p| p.splice = Splice::both(mode)));
        let mut c = TcpStream::connect(r.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0..50u8 {
            c.write_all(&[i; 100]).unwrap();
            let mut back = [0u8; 100];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, [i; 100]);
        }
        drop(c);
        let srv = r.reg.find_server("px/s1").unwrap();
        wait_until(|| srv.counters.cur_sess.load(Ordering::Relaxed) == 0);
        assert_eq!(srv.counters.bytes_out.load(Ordering::Relaxed), 5000);
        assert_eq!(srv.counters.spliced.load(Ordering::Relaxed), 0, "{mode:?}");
        let gc = &r.reg.counters;
        let pipes = gc.pipes_free.load(Ordering::Relaxed) + gc.pipes_used.load(Ordering::Relaxed);
        assert_eq!(pipes, 0, "{mode:?}: no pipe was ever made");
    }
}

#[test]
fn idle_connections_hold_no_pipe() {
    let up = upstream(None);
    let r = run(listen_cfg(&[up], |p| {
        p.splice = Splice::both(SpliceMode::Always)
    }));
    let mut conns = Vec::new();
    for i in 0..20u8 {
        let mut c = TcpStream::connect(r.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(&[i; 1000]).unwrap();
        let mut back = [0u8; 1000];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, [i; 1000]);
        conns.push(c);
    }
    let srv = r.reg.find_server("px/s1").unwrap();
    assert_eq!(srv.counters.cur_sess.load(Ordering::Relaxed), 20);
    let gc = &r.reg.counters;
    // 20 open, idle, spliced sessions: every pipe is back in the pool, none is held.
    wait_until(|| gc.pipes_used.load(Ordering::Relaxed) == 0);
    assert!(gc.pipes_free.load(Ordering::Relaxed) <= 4);
    drop(conns);
}

#[test]
fn roundrobin_spreads_and_down_server_gets_nothing() {
    let ups: Vec<_> = (1..=3).map(|i| upstream(Some(i))).collect();
    let r = run(listen_cfg(&ups, |_| {}));
    let mut seen = [0; 4];
    for _ in 0..30 {
        let out = echo_once(r.addr, b"x");
        seen[out[0] as usize] += 1;
    }
    // two workers each run their own smooth round robin: at most one extra per worker
    for (i, &n) in seen.iter().enumerate().skip(1) {
        assert!((8..=12).contains(&n), "server {i} got {n}: {seen:?}");
    }
    let s2 = r.reg.find_server("px/s2").unwrap();
    r.reg
        .apply(Command::SetAdmin {
            server: s2.clone(),
            action: AdminAction::Maint,
            cause: Cause::Cli,
        })
        .unwrap();
    let before = s2.counters.tot_sess.load(Ordering::Relaxed);
    for _ in 0..20 {
        let out = echo_once(r.addr, b"y");
        assert_ne!(out[0], 2);
    }
    assert_eq!(s2.counters.tot_sess.load(Ordering::Relaxed), before);
}

#[test]
fn refused_backend_retries_then_closes_client() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = run(listen_cfg(&[dead], |p| {
        p.retries = 2;
        p.timeouts.connect = Some(Duration::from_millis(50));
    }));
    let mut c = client(r.addr);
    let mut buf = Vec::new();
    assert_eq!(c.read_to_end(&mut buf).map(|_| buf.len()).unwrap_or(0), 0);
    let s = r.reg.find_server("px/s1").unwrap();
    // as HAProxy counts them: three attempts (`stot`), two retries, one session that gave up
    wait_until(|| s.counters.econ.load(Ordering::Relaxed) == 1);
    assert_eq!(s.counters.wretr.load(Ordering::Relaxed), 2);
    assert_eq!(s.counters.tot_sess.load(Ordering::Relaxed), 3);
}

#[test]
fn redispatch_on_last_retry() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let good = upstream(Some(9));
    let r = run(listen_cfg(&[dead, good], |p| {
        p.retries = 1;
        p.redispatch = true;
        p.timeouts.connect = Some(Duration::from_millis(50));
    }));
    for _ in 0..4 {
        assert_eq!(echo_once(r.addr, b"z"), [9, b'z']);
    }
    let px = r.reg.backend("px").unwrap();
    assert!(px.counters.wredis.load(Ordering::Relaxed) >= 1);
    // HAProxy counts a redispatch on the server left, a failed connect only when giving up
    let (s1, s2) = (
        r.reg.find_server("px/s1").unwrap(),
        r.reg.find_server("px/s2").unwrap(),
    );
    assert!(s1.counters.wredis.load(Ordering::Relaxed) >= 1);
    assert_eq!(s2.counters.wredis.load(Ordering::Relaxed), 0);
    assert_eq!(px.counters.econ.load(Ordering::Relaxed), 0);
}

#[test]
fn half_close_still_gets_full_response_and_many_parallel() {
    let up = upstream(None);
    let r = run(listen_cfg(&[up], |_| {}));
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let a = r.addr;
            std::thread::spawn(move || {
                let d = payload(1 << 20, i + 1);
                assert!(echo_once(a, &d) == d);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wait_until(|| r.reg.counters.cur_conns.load(Ordering::Relaxed) == 0);
    assert_eq!(r.reg.counters.cum_conns.load(Ordering::Relaxed), 20);
}

#[test]
fn frontend_maxconn_queues_in_backlog() {
    let up = upstream(None);
    let r = run(listen_cfg(&[up], |p| p.maxconn = 5));
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let a = r.addr;
            std::thread::spawn(move || {
                let d = payload(1000, i + 1);
                assert!(echo_once(a, &d) == d);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let px = r.reg.frontend("px").unwrap();
    assert!(px.counters.max_sess.load(Ordering::Relaxed) <= 5);
}

#[test]
fn server_maxconn_queue_timeout_closes() {
    // upstream that accepts but never answers: the one slot stays busy
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        for s in l.incoming().flatten() {
            keep.push(s);
        }
    });
    let r = run(listen_cfg(&[a], |p| {
        p.servers[0].params.maxconn = 1;
        p.timeouts.queue = Some(Duration::from_millis(100));
    }));
    let _busy = client(r.addr);
    let s = r.reg.find_server("px/s1").unwrap();
    wait_until(|| s.counters.cur_sess.load(Ordering::Relaxed) == 1);
    let mut c = client(r.addr);
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert_eq!(s.counters.cur_sess.load(Ordering::Relaxed), 1);
}

#[test]
fn shutdown_sessions_kills_and_graceful_stop_lets_finish() {
    let up = upstream(None);
    let mut r = run(listen_cfg(&[up], |_| {}));
    let mut c = client(r.addr);
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    let s = r.reg.find_server("px/s1").unwrap();
    r.reg
        .apply(Command::ShutdownSessions { server: s.clone() })
        .unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty());
    // graceful: an open session keeps working after stop(true)
    let mut c = client(r.addr);
    c.write_all(b"a").unwrap();
    c.read_exact(&mut b[..1]).unwrap();
    let w = r.w.take().unwrap();
    w.stop(true);
    std::thread::sleep(Duration::from_millis(50));
    c.write_all(b"b").unwrap();
    c.read_exact(&mut b[..1]).unwrap();
    assert_eq!(&b[..1], b"b");
    c.shutdown(Shutdown::Write).unwrap();
    let _ = c.read_to_end(&mut rest);
    w.wait();
    assert!(TcpStream::connect_timeout(&r.addr, Duration::from_millis(200)).is_err());
}

#[test]
fn client_timeout_closes_idle_session_unless_tunnel() {
    let up = upstream(None);
    let r = run(listen_cfg(&[up], |p| {
        p.timeouts.client = Some(Duration::from_millis(300));
    }));
    let mut c = client(r.addr);
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(r);
    // activity keeps it open: round trips every ~100 ms for 1.2 s outlive a 600 ms timeout. On a
    // machine so loaded that one gap itself exceeded the timeout the check is inconclusive.
    let r = run(listen_cfg(&[up], |p| {
        p.timeouts.client = Some(Duration::from_millis(600));
    }));
    let mut c = client(r.addr);
    let mut last = Instant::now();
    let start = last;
    while start.elapsed() < Duration::from_millis(1200) {
        std::thread::sleep(Duration::from_millis(100));
        let gap = last.elapsed();
        let ok = c.write_all(b"k").is_ok() && {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).is_ok()
        };
        if gap >= Duration::from_millis(550) {
            eprintln!("inconclusive: the test thread stalled {gap:?}");
            break;
        }
        assert!(ok, "closed after {:?} despite activity", start.elapsed());
        last = Instant::now();
    }
    drop(r);
    let r = run(listen_cfg(&[up], |p| {
        p.timeouts.client = Some(Duration::from_millis(100));
        p.timeouts.tunnel = Some(Duration::from_secs(5));
    }));
    let mut c = client(r.addr);
    std::thread::sleep(Duration::from_millis(300));
    c.write_all(b"t").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"t");
}

#[test]
fn backups_only_when_no_active_server() {
    let a = upstream(Some(1));
    let b1 = upstream(Some(2));
    let b2 = upstream(Some(3));
    for all in [false, true] {
        let r = run(listen_cfg(&[a, b1, b2], |p| {
            p.servers[1].params.backup = true;
            p.servers[2].params.backup = true;
            p.allbackups = all;
        }));
        for _ in 0..6 {
            assert_eq!(echo_once(r.addr, b"")[0], 1);
        }
        let s1 = r.reg.find_server("px/s1").unwrap();
        r.reg
            .apply(Command::SetAdmin {
                server: s1,
                action: AdminAction::Maint,
                cause: Cause::Cli,
            })
            .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..12 {
            seen.insert(echo_once(r.addr, b"")[0]);
        }
        let want: Vec<u8> = if all { vec![2, 3] } else { vec![2] };
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            want,
            "allbackups {all}"
        );
    }
}

#[test]
fn hard_stop_after_bounds_a_graceful_stop() {
    let up = upstream(None);
    let mut cfg = listen_cfg(&[up], |_| {});
    cfg.global.hard_stop_after = Some(Duration::from_millis(200));
    let mut r = run(cfg);
    let mut c = client(r.addr);
    c.write_all(b"a").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    let w = r.w.take().unwrap();
    let t = Instant::now();
    w.stop(true);
    w.wait();
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert!(t.elapsed() < Duration::from_secs(3));
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert_eq!(r.reg.counters.cur_conns.load(Ordering::Relaxed), 0);
}

#[test]
fn source_hash_waits_in_the_server_queue_of_its_full_server() {
    let a = upstream(Some(1));
    let b = upstream(Some(2));
    let r = run(listen_cfg(&[a, b], |p| {
        p.balance = crate::config::BalanceAlgo::Source;
        p.servers[0].params.maxconn = 1;
        p.servers[1].params.maxconn = 1;
        p.timeouts.queue = Some(Duration::from_secs(10));
    }));
    // every test client is 127.0.0.1: always the same server
    let mut first = client(r.addr);
    let mut tag = [0u8; 1];
    first.read_exact(&mut tag).unwrap();
    let srv = r.reg.find_server(&format!("px/s{}", tag[0])).unwrap();
    let mut second = client(r.addr);
    wait_until(|| srv.counters.queue_cur.load(Ordering::Relaxed) == 1);
    let px = r.reg.backend("px").unwrap();
    assert_eq!(px.counters.queue_cur.load(Ordering::Relaxed), 0);
    drop(first);
    let mut t2 = [0u8; 1];
    second.read_exact(&mut t2).unwrap();
    assert_eq!(t2, tag);
    assert_eq!(srv.counters.queue_cur.load(Ordering::Relaxed), 0);
    assert_eq!(srv.counters.queue_max.load(Ordering::Relaxed), 1);
}

#[test]
fn counters_move_during_a_long_transfer() {
    let up = upstream(None);
    let r = run(listen_cfg(&[up], |_| {}));
    let mut c = client(r.addr);
    let d = payload(3 << 20, 3);
    c.write_all(&d).unwrap();
    let mut back = vec![0u8; d.len()];
    c.read_exact(&mut back).unwrap();
    // session still open: at least the whole MiBs are already published
    let s = r.reg.find_server("px/s1").unwrap();
    wait_until(|| s.counters.bytes_out.load(Ordering::Relaxed) >= 2 << 20);
    assert!(s.counters.bytes_in.load(Ordering::Relaxed) >= 2 << 20);
    assert_eq!(s.counters.cur_sess.load(Ordering::Relaxed), 1);
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    wait_until(|| s.counters.cur_sess.load(Ordering::Relaxed) == 0);
    assert_eq!(s.counters.bytes_out.load(Ordering::Relaxed), 3 << 20);
    assert_eq!(s.counters.bytes_in.load(Ordering::Relaxed), 3 << 20);
    let px = r.reg.frontend("px").unwrap();
    assert_eq!(px.counters.bytes_in.load(Ordering::Relaxed), 3 << 20);
    assert_eq!(r.reg.counters.bytes_out.load(Ordering::Relaxed), 3 << 20);
}

#[test]
fn listener_numbers_as_haproxy_gives_them() {
    let b = |id: Option<u32>| BindConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        accept_proxy: false,
        name: None,
        id,
        tls: None,
        tls_problem: None,
        location: Location::default(),
    };
    // HAProxy 2.6, watched on its `px/<n>` log lines
    assert_eq!(
        super::listener_ids(&[b(Some(2)), b(None), b(None)]),
        [2, 3, 4]
    );
    assert_eq!(
        super::listener_ids(&[b(None), b(Some(5)), b(None)]),
        [1, 5, 3]
    );
    assert_eq!(super::listener_ids(&[b(None), b(None)]), [1, 2]);
}
