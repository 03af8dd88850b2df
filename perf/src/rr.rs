//! Request/response scenario: persistent connections sending `req`-byte requests at a fixed
//! offered rate and waiting for `resp`-byte answers. Latency is measured from the time each
//! request was *scheduled* to go out (wrk2 style), so a stall delays every request behind it and
//! shows in the percentiles instead of being hidden (no coordinated omission).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use hdrhistogram::Histogram;

use crate::load::{self, AliveGuard, Counters, LoadCfg, Phase};
use crate::net;
use crate::report::Report;

/// How long one request may wait for its answer before the connection counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One measured request for `--dump`: when it was scheduled (since the run's start) and how
/// long it took, in microseconds.
type Sample = (Duration, u64);

/// A connection's latencies, and each request when `--dump` asks for them.
struct Recorded {
    hist: Histogram<u64>,
    samples: Vec<Sample>,
}

fn worker(idx: usize, cfg: &LoadCfg, ctr: &Counters, phase: &Phase) -> Recorded {
    let _alive = AliveGuard::new(ctr);
    let mut rec = Recorded {
        hist: load::new_hist(),
        samples: Vec::new(),
    };
    let mut s = match net::connect(cfg.target, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(e) => {
            ctr.error(format!("connect: {e}"));
            return rec;
        }
    };
    let req = vec![b'q'; cfg.req.max(1)];
    let mut resp = vec![0u8; cfg.resp.max(1)];
    let conns = cfg.conns.max(1) as f64;
    // Each connection carries rate/conns requests per second; phases are staggered so the
    // connections do not all fire at the same instant.
    let interval = (cfg.rate > 0.0).then(|| Duration::from_secs_f64(conns / cfg.rate));
    let first = match interval {
        Some(iv) => phase.begin + iv.mul_f64(idx as f64 / conns),
        None => phase.begin,
    };
    let mut k: u32 = 0;
    while !phase.stopped() {
        let intended = match interval {
            Some(iv) => first + iv * k,
            None => Instant::now(),
        };
        if intended >= phase.end {
            break;
        }
        let now = Instant::now();
        if intended > now {
            std::thread::sleep(intended - now);
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let res = net::write_all_until(&mut s, &req, deadline)
            .and_then(|()| net::read_exact_until(&mut s, &mut resp, deadline));
        if let Err(e) = res {
            ctr.error(format!("{e:#}"));
            return rec;
        }
        let done = Instant::now();
        ctr.tx.fetch_add(req.len() as u64, Ordering::Relaxed);
        ctr.rx.fetch_add(resp.len() as u64, Ordering::Relaxed);
        if phase.in_window(intended) {
            ctr.reqs.fetch_add(1, Ordering::Relaxed);
            let us = (done - intended).as_micros().max(1) as u64;
            rec.hist.saturating_record(us);
            if cfg.dump.is_some() {
                rec.samples.push((intended - phase.begin, us));
            }
        }
        k = k.saturating_add(1);
    }
    rec
}

/// Writes `samples` to `path` as `intended_unix_us latency_us` lines; `begin_unix` is the wall
/// clock at the run's start (the samples hold monotonic offsets from it).
fn write_dump(path: &Path, begin_unix: Duration, samples: &[Sample]) -> Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for (at, us) in samples {
        writeln!(w, "{} {us}", (begin_unix + *at).as_micros())?;
    }
    w.flush()?;
    Ok(())
}

/// Runs the request/response scenario.
pub fn run(cfg: &LoadCfg) -> Result<Report> {
    let ctr = Counters::default();
    let phase = load::phase_for(cfg);
    let begin_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut all = load::new_hist();
    let mut samples = Vec::new();
    let report = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..cfg.conns.max(1))
            .map(|i| {
                let (ctr, phase) = (&ctr, &phase);
                sc.spawn(move || worker(i, cfg, ctr, phase))
            })
            .collect();
        let r = load::measure(cfg, &ctr, &phase);
        for h in hs {
            if let Ok(mut rec) = h.join() {
                let _ = all.add(&rec.hist);
                samples.append(&mut rec.samples);
            }
        }
        r
    });
    if let Some(path) = &cfg.dump {
        samples.sort_unstable();
        write_dump(path, begin_unix, &samples)?;
    }
    let mut r = load::finish(report, &ctr, Some(&all));
    // Count by schedule: every request whose intended send time fell in the window, including
    // the few that completed after the window's last counter sample.
    r.requests = all.len();
    // ... over the scheduled window, whose length is exactly `duration`.
    r.secs = cfg.duration.as_secs_f64();
    r.offered_rate = cfg.rate;
    Ok(r)
}
