//! Idle-connection memory scenario: open `conns` connections through the target, make one small
//! request/response on each (so the proxy has its backend side set up, as after a real request),
//! then leave them idle and compare the proxy's RSS with its RSS before the first connect.
//! Answers "how much memory does an idle connection cost" for the memory comparison.

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::load::{Counters, LoadCfg};
use crate::net;
use crate::procstat;
use crate::report::Report;

/// A held connection, in the clear or TLS (`--tls`).
enum Held {
    /// Plain TCP.
    Plain(#[allow(dead_code)] TcpStream),
    /// TLS (the proxy ends it).
    Tls(#[allow(dead_code)] Box<crate::tls::TlsStream>),
}

fn open_one(cfg: &LoadCfg, req: &[u8], resp: &mut [u8]) -> Result<Held> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = net::connect(cfg.target, Duration::from_secs(2))?;
    if let Some(tls) = &cfg.tls {
        let mut t = crate::tls::wrap(s, tls)?;
        net::write_all_until(&mut t, req, deadline)?;
        net::read_exact_until(&mut t, resp, deadline)?;
        return Ok(Held::Tls(Box::new(t)));
    }
    net::write_all_until(&mut s, req, deadline)?;
    net::read_exact_until(&mut s, resp, deadline)?;
    Ok(Held::Plain(s))
}

/// Runs the idle-connection scenario. `duration` bounds the time spent opening connections;
/// `warmup` is how long they stay idle before RSS is read.
pub fn run(cfg: &LoadCfg) -> Result<Report> {
    let ctr = Counters::default();
    let rss = |pids: &[u32]| {
        if pids.is_empty() {
            None
        } else {
            procstat::rss_kib(pids)
        }
    };
    let before = rss(&cfg.cpu_pids);
    let req = vec![b'q'; cfg.req.max(1)];
    let mut resp = vec![0u8; cfg.resp.max(1)];
    let started = Instant::now();
    let give_up = started + cfg.duration.max(Duration::from_secs(1));
    let mut held = Vec::with_capacity(cfg.conns);
    while held.len() < cfg.conns && Instant::now() < give_up {
        match open_one(cfg, &req, &mut resp) {
            Ok(s) => held.push(s),
            Err(e) => {
                ctr.error(format!("connection {}: {e:#}", held.len() + 1));
                // The target or the fd limit refuses more: measure what we have.
                if ctr.errors.load(Ordering::Relaxed) >= 10 {
                    break;
                }
            }
        }
    }
    let opened = started.elapsed();
    std::thread::sleep(cfg.warmup);
    let after = rss(&cfg.cpu_pids);
    let r = Report {
        scenario: "idle".into(),
        target: cfg.target.to_string(),
        conns: cfg.conns,
        secs: opened.as_secs_f64(),
        connections: held.len() as u64,
        errors: ctr.errors.load(Ordering::Relaxed),
        rss_kib: after,
        rss_before_kib: before,
        first_error: None,
        ..Default::default()
    };
    drop(held);
    Ok(crate::load::finish(r, &ctr, None))
}
