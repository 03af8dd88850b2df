//! Throughput scenario: N long-lived connections pushing bulk bytes one way or both ways; the
//! figure is Gbit/s of all bytes the client moved, and the proxy's CPU seconds per GB.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;

use crate::load::{self, AliveGuard, Counters, Direction, LoadCfg, Phase};
use crate::net;
use crate::report::Report;

fn writer(mut s: impl Write, chunk: usize, ctr: &Counters, phase: &Phase) {
    let buf = vec![b'x'; chunk];
    while !phase.stopped() {
        match s.write(&buf) {
            Ok(0) => {
                ctr.error("peer closed while writing");
                return;
            }
            Ok(n) => {
                ctr.tx.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if net::is_timeout(&e) => {}
            Err(e) => {
                ctr.error(format!("write: {e}"));
                return;
            }
        }
    }
}

fn reader(mut s: impl Read, chunk: usize, ctr: &Counters, phase: &Phase) {
    let mut buf = vec![0u8; chunk];
    while !phase.stopped() {
        match s.read(&mut buf) {
            Ok(0) => {
                ctr.error("peer closed while reading");
                return;
            }
            Ok(n) => {
                ctr.rx.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if net::is_timeout(&e) => {}
            Err(e) => {
                ctr.error(format!("read: {e}"));
                return;
            }
        }
    }
}

fn one_conn(cfg: &LoadCfg, ctr: &Counters, phase: &Phase) {
    let _alive = AliveGuard::new(ctr);
    let s = match net::connect(cfg.target, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(e) => {
            ctr.error(format!("connect: {e}"));
            return;
        }
    };
    if let Some(tls) = &cfg.tls {
        let t = match crate::tls::wrap(s, tls) {
            Ok(t) => t,
            Err(e) => {
                ctr.error(format!("{e:#}"));
                return;
            }
        };
        match cfg.dir {
            Direction::Up => writer(t, cfg.chunk, ctr, phase),
            Direction::Down => reader(t, cfg.chunk, ctr, phase),
            // one TLS connection cannot be read and written from two threads
            Direction::Both => ctr.error("--tls takes --dir up or down"),
        }
        return;
    }
    match cfg.dir {
        Direction::Up => writer(s, cfg.chunk, ctr, phase),
        Direction::Down => reader(s, cfg.chunk, ctr, phase),
        Direction::Both => {
            let r = match s.try_clone() {
                Ok(r) => r,
                Err(e) => {
                    ctr.error(format!("dup socket: {e}"));
                    return;
                }
            };
            std::thread::scope(|sc| {
                sc.spawn(|| reader(r, cfg.chunk, ctr, phase));
                writer(s, cfg.chunk, ctr, phase);
            });
        }
    }
}

/// Runs the throughput scenario.
pub fn run(cfg: &LoadCfg) -> Result<Report> {
    let ctr = Counters::default();
    let phase = load::phase_for(cfg);
    let report = std::thread::scope(|sc| {
        for _ in 0..cfg.conns.max(1) {
            sc.spawn(|| one_conn(cfg, &ctr, &phase));
        }
        load::measure(cfg, &ctr, &phase)
    });
    Ok(load::finish(report, &ctr, None))
}
