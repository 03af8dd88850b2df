//! Lua event dispatch: Rust publish → Lua callback.
//!
//! Prints the event-to-callback latency (p50/p99, measured inside the callback against the
//! publish time) and the events/s the engine sustains, then runs a criterion group timing
//! batches of 100 events from publish to the start of the last callback.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use harp::events::{EventBus, EventType, ServerEvent};
use harp::lua::{self, LuaEngine};
use harp::model::Registry;

const SCRIPT: &str = r#"
local OUT = ...
local lat = {}
core.event_sub({"SERVER_CHECK", "SERVER_DEL"}, function(event, data, sub, when)
  if event == "SERVER_DEL" then
    table.sort(lat)
    local f = io.open(OUT, "w")
    local n = #lat
    if n > 0 then
      f:write(string.format("%d %d %d %d\n", n, lat[math.max(1, n // 2)],
        lat[math.max(1, math.ceil(n * 0.99))], lat[n]))
    end
    f:close()
    lat = {}
    return
  end
  local t = core.now()
  lat[#lat + 1] = (t.sec * 1000000 + t.usec) - when
end)
"#;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// CPU seconds (user + system) used so far by the Lua engine thread (`harp-lua`), from /proc.
fn lua_thread_cpu() -> Option<f64> {
    let tick = 100.0; // USER_HZ on Linux
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let p = t.ok()?.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() == "harp-lua" {
            let stat = std::fs::read_to_string(p.join("stat")).ok()?;
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            return Some((ut + st) / tick);
        }
    }
    None
}

fn wait_delivered(eng: &LuaEngine, n: u64) {
    let end = Instant::now() + Duration::from_secs(30);
    while eng.delivered() < n && Instant::now() < end {
        std::thread::yield_now();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    harp::logging::set_quiet(true);
    // `cargo test --benches` runs this without `--bench`: a small smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("bench.lua");
    let out = dir.path().join("lat.txt");
    std::fs::write(&script, SCRIPT).expect("write script");
    let cfg = format!(
        "global\n    lua-load {} {}\nbackend be\n    server s1 127.0.0.1:1\n",
        script.display(),
        out.display()
    );
    let config = harp::config::parse_str("bench.cfg", &cfg).expect("config");
    let bus = Arc::new(EventBus::new());
    let reg = Registry::new(config, bus.clone());
    let eng = lua::start(reg).expect("lua start");

    // Latency: one event at a time (idle engine), measured inside the callback.
    let n: u64 = if full { 5000 } else { 200 };
    let base = eng.delivered();
    for i in 0..n {
        bus.publish(ServerEvent::sample(EventType::ServerCheck, now_us()));
        wait_delivered(&eng, base + i + 1);
    }
    bus.publish(ServerEvent::sample(EventType::ServerDel, 0));
    let end = Instant::now() + Duration::from_secs(10);
    while !out.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let txt = std::fs::read_to_string(&out).unwrap_or_default();
    let f: Vec<i64> = txt
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if f.len() == 4 {
        println!(
            "lua_dispatch latency (publish -> callback, {} events, one at a time): p50 {} us, p99 {} us, max {} us",
            f[0], f[1], f[2], f[3]
        );
    }

    // Throughput: batches of 50 (below the 100-event pause threshold), back to back.
    let total: u64 = if full { 100_000 } else { 1000 };
    let base = eng.delivered();
    let cpu0 = lua_thread_cpu();
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < total {
        for _ in 0..50 {
            bus.publish(ServerEvent::sample(EventType::ServerCheck, now_us()));
        }
        sent += 50;
        wait_delivered(&eng, base + sent);
    }
    let el = t0.elapsed();
    println!(
        "lua_dispatch throughput: {total} events in {:.3} s = {:.0} events/s",
        el.as_secs_f64(),
        total as f64 / el.as_secs_f64()
    );
    if let (Some(a), Some(b)) = (cpu0, lua_thread_cpu()) {
        let per = (b - a) / total as f64;
        if per > 0.0 {
            println!(
                "lua_dispatch Lua-thread CPU: {:.2} us/event => {:.0} events/s per core (load-independent)",
                per * 1e6,
                1.0 / per
            );
        }
    }

    let mut c = Criterion::default().configure_from_args();
    c.bench_function("lua_dispatch_batch_100", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let base = eng.delivered();
                for _ in 0..100 {
                    bus.publish(ServerEvent::sample(EventType::ServerCheck, now_us()));
                }
                wait_delivered(&eng, base + 100);
            }
            start.elapsed()
        })
    });
    c.final_summary();
    eng.stop();
}
