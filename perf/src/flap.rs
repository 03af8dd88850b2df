//! Server flapping through the Runtime API (`disable server` / `enable server` on a stats
//! socket, HAProxy syntax), run beside an rr load to see whether admin events move I/O latency.
//! Also times each command's round trip, and can log each send time (Unix microseconds) so a
//! Lua event callback's timestamps can be matched against them.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::load;

/// Settings of a flap run.
pub struct FlapCfg {
    /// Stats socket path.
    pub socket: String,
    /// `backend/server` to flap.
    pub server: String,
    /// Time between two commands.
    pub interval: Duration,
    /// How long to flap.
    pub duration: Duration,
    /// Optional file receiving one line per command: `index command send_unix_us rtt_us`.
    pub log: Option<String>,
}

/// Sends one command in non-interactive mode and returns the answer (the server closes after it).
pub fn socket_cmd(path: &str, cmd: &str, timeout: Duration) -> Result<String> {
    let mut s = UnixStream::connect(path).with_context(|| format!("connect {path}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(format!("{cmd}\n").as_bytes())?;
    let mut out = String::new();
    s.take(1 << 20)
        .read_to_string(&mut out)
        .context("read stats socket answer")?;
    Ok(out)
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// Flaps the server and returns a one-line JSON summary.
pub fn run(cfg: &FlapCfg) -> Result<String> {
    let mut hist = load::new_hist();
    let mut errors = 0u64;
    let mut first_error: Option<String> = None;
    let mut log = String::new();
    let start = Instant::now();
    let end = start + cfg.duration;
    let mut k: u32 = 0;
    let mut disabled = false;
    loop {
        let at = start + cfg.interval * k;
        if at >= end {
            break;
        }
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let cmd = if disabled {
            format!("enable server {}", cfg.server)
        } else {
            format!("disable server {}", cfg.server)
        };
        let sent = unix_us();
        let t0 = Instant::now();
        let res = socket_cmd(&cfg.socket, &cmd, Duration::from_secs(2));
        let rtt = t0.elapsed().as_micros().max(1) as u64;
        match res {
            // Success is an empty answer (HAProxy prints just a newline).
            Ok(a) if a.trim().is_empty() => {
                hist.saturating_record(rtt);
                disabled = !disabled;
            }
            Ok(a) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{cmd}: {}", a.trim()));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{cmd}: {e:#}"));
            }
        }
        let _ = writeln!(log, "{k} {cmd} {sent} {rtt}");
        k = k.saturating_add(1);
    }
    if disabled {
        // Leave the server enabled, whatever happens to this last command.
        let _ = socket_cmd(
            &cfg.socket,
            &format!("enable server {}", cfg.server),
            Duration::from_secs(2),
        );
    }
    if let Some(path) = &cfg.log {
        std::fs::write(path, &log).with_context(|| format!("write {path}"))?;
    }
    let q = |p: f64| {
        if hist.is_empty() {
            "null".to_string()
        } else {
            hist.value_at_quantile(p).to_string()
        }
    };
    let err = first_error.map_or("null".into(), |e| {
        format!("\"{}\"", e.replace(['"', '\\'], "'").replace('\n', " "))
    });
    Ok(format!(
        "{{\"commands\":{},\"ok\":{},\"errors\":{},\"rtt_p50_us\":{},\"rtt_p99_us\":{},\"rtt_max_us\":{},\"first_error\":{}}}",
        k,
        hist.len(),
        errors,
        q(0.5),
        q(0.99),
        if hist.is_empty() { "null".into() } else { hist.max().to_string() },
        err
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_counts_errors_and_ends() {
        let cfg = FlapCfg {
            socket: "/nonexistent/harp-perf.sock".into(),
            server: "be/s2".into(),
            interval: Duration::from_millis(20),
            duration: Duration::from_millis(100),
            log: None,
        };
        let j = run(&cfg).unwrap_or_default();
        assert!(j.contains("\"ok\":0"), "{j}");
        assert!(j.contains("\"commands\":5"), "{j}");
    }
}
