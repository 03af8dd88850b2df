//! Connection-rate scenario: every request on a new connection (connect, send `req` bytes, read
//! `resp` bytes, close), as many as the workers manage; conn/s and proxy CPU per connection.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;

use crate::load::{self, AliveGuard, Counters, LoadCfg, Phase};
use crate::net;
use crate::report::Report;

fn one_cycle(cfg: &LoadCfg, req: &[u8], resp: &mut [u8]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut s = net::connect_lean(cfg.target, Duration::from_secs(1))?;
    if let Some(tls) = &cfg.tls {
        let mut t = crate::tls::wrap(s, tls)?;
        net::write_all_until(&mut t, req, deadline)?;
        net::read_exact_until(&mut t, resp, deadline)?;
        if cfg.server_closes {
            net::read_eof_until(&mut t, deadline)?;
        }
        crate::tls::close(&mut t);
        return Ok(());
    }
    net::write_all_until(&mut s, req, deadline)?;
    net::read_exact_until(&mut s, resp, deadline)?;
    if cfg.server_closes {
        // Wait for the server's FIN so our close is the passive one (no TIME_WAIT here).
        net::read_eof_until(&mut s, deadline)?;
    }
    Ok(())
}

fn worker(cfg: &LoadCfg, ctr: &Counters, phase: &Phase) -> Histogram<u64> {
    let _alive = AliveGuard::new(ctr);
    let mut hist = load::new_hist();
    let req = vec![b'q'; cfg.req.max(1)];
    let mut resp = vec![0u8; cfg.resp.max(1)];
    while !phase.stopped() {
        let t0 = Instant::now();
        match one_cycle(cfg, &req, &mut resp) {
            Ok(()) => {
                ctr.conns.fetch_add(1, Ordering::Relaxed);
                ctr.reqs.fetch_add(1, Ordering::Relaxed);
                ctr.tx.fetch_add(req.len() as u64, Ordering::Relaxed);
                ctr.rx.fetch_add(resp.len() as u64, Ordering::Relaxed);
                if phase.in_window(t0) {
                    hist.saturating_record(t0.elapsed().as_micros().max(1) as u64);
                }
            }
            Err(e) => {
                ctr.error(format!("{e:#}"));
                // Refused or reset: do not turn a dead target into a busy loop.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    hist
}

/// Runs the connection-rate scenario.
pub fn run(cfg: &LoadCfg) -> Result<Report> {
    let ctr = Counters::default();
    let phase = load::phase_for(cfg);
    let mut all = load::new_hist();
    let report = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..cfg.conns.max(1))
            .map(|_| sc.spawn(|| worker(cfg, &ctr, &phase)))
            .collect();
        let r = load::measure(cfg, &ctr, &phase);
        for h in hs {
            if let Ok(h) = h.join() {
                let _ = all.add(&h);
            }
        }
        r
    });
    Ok(load::finish(report, &ctr, Some(&all)))
}
