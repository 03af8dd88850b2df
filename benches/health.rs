//! Check-thread cost: 1,000 servers checked every 100 ms (10,000 TCP checks/s) against a
//! listener on 127.0.0.1. Prints the check thread's CPU share (from /proc/self/task/*/stat),
//! the checks done per second, and the supervisor's overhead with no check enabled.
//! A steady-state measurement, so it prints figures instead of using criterion's timing loop.
//!
//! Run: `cargo bench --bench health` (`HEALTH_BENCH_SECS`, `HEALTH_BENCH_SERVERS` to change).

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harp::config::{Capabilities, Config, Location, ProxyConfig, ServerConfig, ServerParams};
use harp::events::EventBus;
use harp::model::Registry;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn registry(n: usize, addr: SocketAddr, check: bool) -> Arc<Registry> {
    let mut be = ProxyConfig::new(
        "be",
        Capabilities {
            frontend: false,
            backend: true,
        },
        Location::default(),
    );
    be.servers = (0..n)
        .map(|i| ServerConfig {
            name: format!("s{i}"),
            addr,
            params: ServerParams {
                check,
                inter: Duration::from_millis(100),
                ..Default::default()
            },
            location: Location::default(),
        })
        .collect();
    let bus = Arc::new(EventBus::new());
    Registry::new(
        Config {
            proxies: vec![be],
            ..Default::default()
        },
        bus,
    )
}

/// (utime, stime), in clock ticks, of the thread named `name` in this process.
fn thread_ticks(name: &str) -> Option<(u64, u64)> {
    for e in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields after the comm: state is index 0, utime is 11, stime is 12.
        return Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?));
    }
    None
}

fn ticks_per_sec() -> f64 {
    100.0 // USER_HZ on Linux
}

fn measure(label: &str, reg: Arc<Registry>, secs: u64, accepted: &AtomicU64) {
    let checker = harp::health::start(reg).expect("start checks");
    // Let the first, spread checks happen and the counters settle.
    std::thread::sleep(Duration::from_millis(500));
    let t0 = thread_ticks("harp-checks").unwrap_or((0, 0));
    let a0 = accepted.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let t1 = thread_ticks("harp-checks").unwrap_or((0, 0));
    let a1 = accepted.load(Ordering::Relaxed);
    let wall = start.elapsed().as_secs_f64();
    checker.stop();
    let user = (t1.0 - t0.0) as f64 / ticks_per_sec();
    let sys = (t1.1 - t0.1) as f64 / ticks_per_sec();
    let cpu = user + sys;
    let checks = (a1 - a0) as f64 / wall;
    println!(
        "{label}: check thread CPU {cpu:.2} s (user {user:.2} s, kernel {sys:.2} s) over {wall:.2} s wall = {:.1}% of one core; {checks:.0} checks/s",
        100.0 * cpu / wall,
    );
    if checks > 0.0 {
        println!(
            "  = {:.1} us of check-thread CPU per check (the kernel part includes both ends of the loopback handshake)",
            1e6 * cpu / wall / checks
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    harp::logging::set_quiet(true);
    // `cargo test --benches` runs this without `--bench`: a short smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let secs = env("HEALTH_BENCH_SECS", if full { 5 } else { 1 });
    let n = env("HEALTH_BENCH_SERVERS", if full { 1000 } else { 50 }) as usize;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (accepted, stop) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        })
    };
    measure(
        &format!("{n} servers, inter 100ms, TCP checks"),
        registry(n, addr, true),
        secs,
        &accepted,
    );
    measure(
        &format!("{n} servers, checks disabled (supervisor + Tick only)"),
        registry(n, addr, false),
        secs.min(3),
        &accepted,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = acceptor.join();
}
