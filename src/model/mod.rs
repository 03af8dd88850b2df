//! The live model: proxies and servers, their state machine, weights and counters.
//!
//! Readers (workers, stats, Lua) use atomics and `arc-swap` snapshots and never wait. Writers
//! (checks, Runtime API, Lua) build a [`Command`] and call [`Registry::apply`], which serialises
//! changes, publishes SERVER_* events and prints HAProxy's log lines.

pub mod check;
mod command;
mod proxy;
mod registry;
mod server;
pub mod state;
mod weight;

pub use check::{CheckOutcome, CheckReport, CheckResult, CheckStatus, Health};
pub use command::{AdminAction, ApplyError, Command, ForcedHealth, Outcome};
pub use proxy::{Proxy, ProxyCounters};
pub use registry::{GlobalCounters, LookupError, Registry};
pub use server::{CheckState, Server, ServerCounters};
pub use state::{AdminFlags, Cause, OpState};
pub use weight::{parse_weight, strtol};

/// Seconds since the Unix epoch (event `when`, `lastchg`).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
