//! Event bus costs: one publish + drain through a subscription, and an "event storm" of
//! 1,000,000 state changes through `Registry::apply` with a consumer that never reads (a stalled
//! Lua handler). The storm report prints ns/change, events published and dropped (every drop must
//! be counted), and the latency of the balancing read path (what a worker does to pick a server)
//! on another thread with and without the storm.
//!
//! Run: `cargo bench --bench events` (`STORM_CHANGES=n` to change the storm size).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion};
use harp::config::{Capabilities, Config, Location, ProxyConfig, ServerConfig, ServerParams};
use harp::events::{EventBus, EventType, ServerEvent};
use harp::model::{Cause, Command, ForcedHealth, Registry};

/// Backends `be` (whose `s1` the storm flaps) and `other` (untouched), 4 servers each.
fn registry(bus: Arc<EventBus>) -> Arc<Registry> {
    let backend = |name: &str| {
        let mut be = ProxyConfig::new(
            name,
            Capabilities {
                frontend: false,
                backend: true,
            },
            Location::default(),
        );
        be.servers = (1..=4)
            .map(|i| ServerConfig {
                name: format!("s{i}"),
                addr: format!("127.0.0.1:{}", 20000 + i).parse().unwrap(),
                params: ServerParams::default(),
                location: Location::default(),
            })
            .collect();
        be
    };
    Registry::new(
        Config {
            proxies: vec![backend("be"), backend("other")],
            ..Default::default()
        },
        bus,
    )
}

fn bus_benches(c: &mut Criterion) {
    let bus = EventBus::new();
    let sub = bus.subscribe("bench", 1024, None);
    c.bench_function("bus_publish_and_drain_1", |b| {
        b.iter(|| {
            bus.publish(ServerEvent::sample(EventType::ServerDown, 0));
            sub.receiver().try_recv().is_ok()
        })
    });
    c.bench_function("bus_publish_and_drain_100", |b| {
        b.iter(|| {
            for _ in 0..100 {
                bus.publish(ServerEvent::sample(EventType::ServerDown, 0));
            }
            sub.receiver().try_iter().count()
        })
    });
    let full = EventBus::new();
    let stalled = full.subscribe("stalled", 100, None);
    for _ in 0..100 {
        full.publish(ServerEvent::sample(EventType::ServerDown, 0));
    }
    c.bench_function("bus_publish_to_full_queue_counts_drop", |b| {
        b.iter(|| full.publish(ServerEvent::sample(EventType::ServerDown, 0)))
    });
    assert!(stalled.dropped() > 0);

    let bus = Arc::new(EventBus::new());
    let _stalled = bus.subscribe("stalled", 100, None);
    let reg = registry(bus);
    let s1 = reg.find_server("be/s1").unwrap();
    let mut up = false;
    c.bench_function("apply_state_change_stalled_consumer", |b| {
        b.iter_batched(
            || {
                up = !up;
                if up {
                    ForcedHealth::Up
                } else {
                    ForcedHealth::Down
                }
            },
            |health| {
                reg.apply(Command::SetHealth {
                    server: s1.clone(),
                    health,
                    cause: Cause::Cli,
                })
            },
            BatchSize::SmallInput,
        )
    });
}

/// What a worker does per connection to choose a server: walk the snapshot, first usable one
/// with a free slot.
fn pick(reg: &Registry, backend: usize) -> usize {
    let p = &reg.proxies()[backend];
    let servers = p.servers();
    servers
        .iter()
        .position(|s| s.is_usable() && s.has_free_slot(p))
        .unwrap_or(usize::MAX)
}

/// Picks on this thread for `d`, returning (mean ns, p99 ns, p99.9 ns).
fn pick_latency(reg: &Registry, backend: usize, d: Duration) -> (f64, u64, u64) {
    let mut lat = Vec::with_capacity(1 << 20);
    let end = Instant::now() + d;
    let mut sink = 0usize;
    while Instant::now() < end {
        for _ in 0..64 {
            let t = Instant::now();
            sink = sink.wrapping_add(pick(reg, backend));
            lat.push(t.elapsed().as_nanos() as u64);
        }
    }
    std::hint::black_box(sink);
    lat.sort_unstable();
    let mean = lat.iter().sum::<u64>() as f64 / lat.len().max(1) as f64;
    let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)];
    (mean, q(0.99), q(0.999))
}

/// Flaps `s` DOWN/UP `changes` times through the model; returns the elapsed time.
fn storm(reg: &Registry, s: &Arc<harp::model::Server>, changes: u64) -> Duration {
    let t = Instant::now();
    for i in 0..changes {
        let health = if i % 2 == 0 {
            ForcedHealth::Down
        } else {
            ForcedHealth::Up
        };
        let _ = reg.apply(Command::SetHealth {
            server: s.clone(),
            health,
            cause: Cause::Cli,
        });
    }
    t.elapsed()
}

fn storm_report() {
    harp::logging::set_quiet(true);
    // `cargo test --benches` runs this without `--bench`: a small smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let changes: u64 = std::env::var("STORM_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 10_000 });
    let bus = Arc::new(EventBus::new());
    let stalled = bus.subscribe("stalled-lua", 100, None);
    let reg = registry(bus.clone());
    let s1 = reg.find_server("be/s1").unwrap();

    let idle = pick_latency(&reg, 0, Duration::from_millis(500));
    let idle_other = pick_latency(&reg, 1, Duration::from_millis(500));

    let stop = Arc::new(AtomicBool::new(false));
    let reader = |backend: usize| {
        let (reg, stop) = (reg.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut all = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                all.push(pick_latency(&reg, backend, Duration::from_millis(50)));
            }
            all
        })
    };
    // Two readers would need three cores with the storm; run the storm twice instead.
    let mut results = Vec::new();
    for backend in [0usize, 1] {
        stop.store(false, Ordering::Relaxed);
        let r = reader(backend);
        let el = storm(&reg, &s1, changes);
        stop.store(true, Ordering::Relaxed);
        results.push((el, r.join().unwrap_or_default()));
    }
    let summary = |during: &[(f64, u64, u64)]| {
        let n = during.len().max(1) as f64;
        (
            during.iter().map(|x| x.0).sum::<f64>() / n,
            during.iter().map(|x| x.1).max().unwrap_or(0),
            during.iter().map(|x| x.2).max().unwrap_or(0),
        )
    };
    let (el, el2) = (results[0].0, results[1].0);
    let (d_mean, d_p99, d_p999) = summary(&results[0].1);
    let (o_mean, o_p99, o_p999) = summary(&results[1].1);
    let published = bus.published();
    let queued = stalled.receiver().len() as u64;
    let dropped = stalled.dropped();
    println!(
        "event storm (run twice, one per reader): {changes} state changes in {:.3} s / {:.3} s = {:.0} / {:.0} ns/change",
        el.as_secs_f64(),
        el2.as_secs_f64(),
        el.as_nanos() as f64 / changes as f64,
        el2.as_nanos() as f64 / changes as f64
    );
    println!("  events published {published} (2 per change, both runs), queued {queued}, dropped {dropped} (published == queued + dropped: {})", published == queued + dropped);
    println!(
        "  server pick latency, idle:       mean {:.0} ns, p99 {} ns, p99.9 {} ns",
        idle.0, idle.1, idle.2
    );
    println!("  server pick latency, storm, same backend:  mean {d_mean:.0} ns, worst 50 ms window p99 {d_p99} ns, p99.9 {d_p999} ns");
    println!(
        "  server pick latency, idle, other backend:  mean {:.0} ns, p99 {} ns, p99.9 {} ns",
        idle_other.0, idle_other.1, idle_other.2
    );
    println!("  server pick latency, storm, other backend: mean {o_mean:.0} ns, worst 50 ms window p99 {o_p99} ns, p99.9 {o_p999} ns");
    assert_eq!(published, queued + dropped, "every lost event is counted");
}

criterion_group!(benches, bus_benches);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    storm_report();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
