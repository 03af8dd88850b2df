//! What every load scenario shares: its settings, the counters its worker threads bump, and the
//! measured window (warm-up first, then `duration`; CPU of the proxy sampled at both edges so the
//! warm-up's cost never enters the per-GB and per-connection figures).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;

use crate::procstat;
use crate::report::{Latency, Report};

/// Which scenario a load run performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Long streams of bulk bytes: Gbit/s and CPU per GB.
    Throughput,
    /// One connection per request: conn/s and CPU per connection.
    Connrate,
    /// Persistent connections at a fixed offered rate: latency percentiles.
    Rr,
    /// Many idle connections held open: proxy RSS per connection.
    Idle,
}

impl Scenario {
    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Throughput => "throughput",
            Scenario::Connrate => "connrate",
            Scenario::Rr => "rr",
            Scenario::Idle => "idle",
        }
    }
}

/// Which way bulk bytes flow in the throughput scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// Client to server only (needs a `sink` upstream).
    Up,
    /// Server to client only (needs a `source` upstream).
    Down,
    /// Both ways at once (needs an `echo` upstream).
    Both,
}

/// Settings of one load run.
#[derive(Clone, Debug)]
pub struct LoadCfg {
    /// Where to send the load (loopback only).
    pub target: SocketAddr,
    /// Scenario to run.
    pub scenario: Scenario,
    /// Concurrent connections (throughput, rr) or concurrent workers (connrate).
    pub conns: usize,
    /// Measured window.
    pub duration: Duration,
    /// Un-measured lead-in so caches, pools and TCP windows are warm.
    pub warmup: Duration,
    /// Total offered requests per second for rr (0 = closed loop, as fast as possible).
    pub rate: f64,
    /// Request size in bytes (rr, connrate).
    pub req: usize,
    /// Response size in bytes (rr, connrate).
    pub resp: usize,
    /// Bulk direction (throughput).
    pub dir: Direction,
    /// connrate: wait for the server to close first (needs a `once` upstream) instead of
    /// closing right after the response.
    pub server_closes: bool,
    /// Write/read size for bulk transfers.
    pub chunk: usize,
    /// Processes whose CPU and memory are accounted (the proxy).
    pub cpu_pids: Vec<u32>,
    /// `--tls`: connections speak TLS (connrate, throughput up/down) with this client.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// rr: write every measured request here (`intended_unix_us latency_us` per line), so that
    /// latency can be split by what the machine was doing at the time (`perf/spinsplit.py`).
    pub dump: Option<std::path::PathBuf>,
}

/// Counters shared by all workers of a run.
#[derive(Default)]
pub struct Counters {
    /// Bytes sent.
    pub tx: AtomicU64,
    /// Bytes received.
    pub rx: AtomicU64,
    /// Connections completed.
    pub conns: AtomicU64,
    /// Requests answered.
    pub reqs: AtomicU64,
    /// Errors.
    pub errors: AtomicU64,
    /// Workers still running; when it drops to 0 the run ends early.
    pub alive: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    /// Counts an error and keeps the first message for the report.
    pub fn error(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.first_error.lock() {
            if g.is_none() {
                *g = Some(e.to_string());
            }
        }
    }

    fn snapshot(&self) -> [u64; 4] {
        [
            self.tx.load(Ordering::Relaxed),
            self.rx.load(Ordering::Relaxed),
            self.conns.load(Ordering::Relaxed),
            self.reqs.load(Ordering::Relaxed),
        ]
    }
}

/// The run's timeline, fixed before any worker starts so every worker agrees on it.
pub struct Phase {
    /// When workers start.
    pub begin: Instant,
    /// End of warm-up: samples before this are not recorded.
    pub warm_end: Instant,
    /// End of the measured window.
    pub end: Instant,
    /// Set when workers must stop (end reached or the run aborted).
    pub stop: AtomicBool,
}

impl Phase {
    /// True once workers must stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// True if a sample taken at `t` belongs to the measured window.
    pub fn in_window(&self, t: Instant) -> bool {
        t >= self.warm_end && t < self.end
    }
}

/// A fresh histogram of microseconds (1 us .. 1 h, 3 significant digits).
pub fn new_hist() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 3_600_000_000, 3) {
        Ok(h) => h,
        // Constant, valid bounds: cannot fail; fall back to an auto-resizing one anyway.
        Err(_) => Histogram::new(3).unwrap_or_else(|_| unreachable!("3 sigfig is valid")),
    }
}

/// Decrements `alive` when a worker ends, however it ends.
pub struct AliveGuard<'a>(&'a Counters);

impl<'a> AliveGuard<'a> {
    /// Registers a running worker.
    pub fn new(c: &'a Counters) -> Self {
        c.alive.fetch_add(1, Ordering::SeqCst);
        Self(c)
    }
}

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

fn cpu(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    procstat::cpu_seconds(pids).ok()
}

/// Sleeps until `t` unless every worker died or the run was stopped.
fn sleep_until(t: Instant, ctr: &Counters, phase: &Phase) {
    loop {
        let now = Instant::now();
        if now >= t || phase.stopped() || ctr.alive.load(Ordering::SeqCst) == 0 {
            return;
        }
        std::thread::sleep((t - now).min(Duration::from_millis(50)));
    }
}

/// Run by the calling thread while workers run: samples counters and CPU at the edges of the
/// window, stops the workers, and fills the throughput/connection fields of a report.
pub fn measure(cfg: &LoadCfg, ctr: &Counters, phase: &Phase) -> Report {
    // Give workers a moment to register before "all workers died" can end the run.
    let settle = Instant::now() + Duration::from_millis(20);
    while ctr.alive.load(Ordering::SeqCst) == 0 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(1));
    }
    sleep_until(phase.warm_end, ctr, phase);
    let t0 = Instant::now();
    let c0 = ctr.snapshot();
    let cpu0 = cpu(&cfg.cpu_pids);
    let me = [std::process::id()];
    let self0 = procstat::cpu_seconds(&me).ok();
    // Nothing worked during warm-up and errors piled up: the target does not forward; stop now
    // rather than spin for the whole run.
    let dead = c0.iter().all(|&v| v == 0) && ctr.errors.load(Ordering::Relaxed) > 0;
    if !dead {
        sleep_until(phase.end, ctr, phase);
    }
    let t1 = Instant::now();
    let c1 = ctr.snapshot();
    let cpu1 = cpu(&cfg.cpu_pids);
    let self1 = procstat::cpu_seconds(&me).ok();
    let rss = if cfg.cpu_pids.is_empty() {
        None
    } else {
        procstat::rss_kib(&cfg.cpu_pids)
    };
    phase.stop.store(true, Ordering::SeqCst);
    Report {
        scenario: cfg.scenario.name().into(),
        target: cfg.target.to_string(),
        conns: cfg.conns,
        secs: (t1 - t0).as_secs_f64(),
        tx_bytes: c1[0] - c0[0],
        rx_bytes: c1[1] - c0[1],
        connections: c1[2] - c0[2],
        requests: c1[3] - c0[3],
        errors: 0,
        offered_rate: 0.0,
        latency: None,
        cpu_s: match (cpu0, cpu1) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        client_cpu_s: match (self0, self1) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        rss_kib: rss,
        rss_before_kib: None,
        first_error: None,
    }
}

/// Fills in what is only known after the workers joined.
pub fn finish(mut r: Report, ctr: &Counters, hist: Option<&Histogram<u64>>) -> Report {
    r.errors = ctr.errors.load(Ordering::Relaxed);
    r.first_error = ctr.first_error.lock().ok().and_then(|g| g.clone());
    if let Some(h) = hist {
        if !h.is_empty() {
            r.latency = Some(Latency::from_hist(h));
        }
    }
    r
}

/// Makes sleeps wake close to their deadline (1 ns timer slack instead of 50 us) so the rr
/// schedule is kept precisely; inherited by threads spawned afterwards.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Runs a scenario end to end.
pub fn run(cfg: &LoadCfg) -> Result<Report> {
    tighten_timer_slack();
    match cfg.scenario {
        Scenario::Throughput => crate::throughput::run(cfg),
        Scenario::Connrate => crate::connrate::run(cfg),
        Scenario::Rr => crate::rr::run(cfg),
        Scenario::Idle => crate::idle::run(cfg),
    }
}

/// The timeline for a run starting now.
pub fn phase_for(cfg: &LoadCfg) -> Phase {
    let begin = Instant::now();
    Phase {
        begin,
        warm_end: begin + cfg.warmup,
        end: begin + cfg.warmup + cfg.duration,
        stop: AtomicBool::new(false),
    }
}
