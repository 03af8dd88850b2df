//! Health checks: a check thread that probes every server with `check` enabled and reports each
//! result to the model as `Command::CheckDone`.
//!
//! The thread runs a current-thread tokio runtime, so checks never run on the Lua thread or on a
//! data-plane worker. A supervisor task re-scans the registry every 100 ms (picking up `enable
//! health`, dynamic servers, and dropping deleted or disabled ones), sends `Command::Tick` for
//! slowstart ramps, and keeps one task per checked server ([`scheduler`]). Each task runs one
//! probe at a time ([`probe`]; `tcp-check` rules and the protocol checks in `tcp_check`) and
//! sleeps for `inter`, `fastinter` or `downinter` in between. Servers with `agent-check` get a
//! second task that asks their agent for a line every `agent-inter` ([`agent`]); the model
//! reads it (`Command::AgentDone`).

mod agent;
mod probe;
mod resolve;
mod scheduler;
mod stream;
mod tcp_check;

pub use probe::{probe, ProbeSpec};
pub use scheduler::next_interval;
pub use stream::CheckTls;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::model::Registry;

/// Why checks could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The check thread could not be spawned.
    #[error("cannot start health check thread: {0}")]
    Spawn(std::io::Error),
}

/// The running check scheduler; stopping it (or dropping it) ends every check.
#[derive(Debug)]
pub struct Checker {
    stop_tx: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Starts checking every server whose check is enabled (and servers enabled later).
pub fn start(reg: Arc<Registry>) -> Result<Checker, HealthError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(HealthError::Spawn)?;
    let thread = std::thread::Builder::new()
        .name("harp-checks".into())
        .spawn(move || rt.block_on(scheduler::supervise(reg, stop_rx)))
        .map_err(HealthError::Spawn)?;
    Ok(Checker {
        stop_tx,
        thread: Mutex::new(Some(thread)),
    })
}

impl Checker {
    /// Stops checking and waits for the check thread to end (in-flight probes are abandoned,
    /// their results never reported).
    pub fn stop(&self) {
        let _ = self.stop_tx.send(true);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("health check thread panicked");
            }
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop();
    }
}
