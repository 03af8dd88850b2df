//! The live model: proxies and servers, their state machine, weights and counters.
//!
//! Readers (workers, stats, Lua) use atomics and `arc-swap` snapshots and never wait. Writers
//! (checks, Runtime API, Lua) build a [`Command`] and call [`Registry::apply`], which serialises
//! changes, publishes SERVER_* events and prints HAProxy's log lines.

pub mod agent;
pub mod check;
mod command;
mod gate;
pub mod lb;
mod proxy;
mod queue;
mod rate;
mod registry;
mod server;
pub mod state;
pub mod state_file;
mod weight;

pub use check::{CheckOutcome, CheckReport, CheckResult, CheckStatus, Health};
pub use command::{AdminAction, ApplyError, Command, ForcedHealth, Outcome};
pub use gate::Gate;
pub use proxy::{Proxy, ProxyCounters};
pub use queue::{QueueOf, Ticket, WaitQueue};
pub use rate::Rate;
pub use registry::{GlobalCounters, LookupError, RateLimit, Registry};
pub use server::{CheckState, KillCause, Server, ServerCounters};
pub use state::{AdminFlags, Cause, DnsStatus, OpState};
pub use weight::{parse_maxconn, parse_weight, strtol};

/// One session start on a `cur`/`max`/`tot` triple (`scur`, `smax`, `stot`), which proxies and
/// servers both keep: `max` never misses a peak `cur`.
fn count_session_start(
    cur: &std::sync::atomic::AtomicU64,
    max: &std::sync::atomic::AtomicU64,
    tot: &std::sync::atomic::AtomicU64,
) {
    use std::sync::atomic::Ordering;
    let now = cur.fetch_add(1, Ordering::Relaxed) + 1;
    tot.fetch_add(1, Ordering::Relaxed);
    max.fetch_max(now, Ordering::Relaxed);
}

/// Seconds since the Unix epoch (event `when`, `lastchg`).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
