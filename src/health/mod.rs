//! Health checks (to be written: see issue 4): a check thread that probes every server with
//! `check` enabled and reports each result to the model as `Command::CheckDone`.

use std::sync::Arc;

use crate::model::Registry;

/// Why checks could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The check thread could not be spawned.
    #[error("cannot start health check thread: {0}")]
    Spawn(std::io::Error),
}

/// The running check scheduler.
#[derive(Debug)]
pub struct Checker {}

/// Starts checking every server whose check is enabled (and servers enabled later).
pub fn start(_reg: Arc<Registry>) -> Result<Checker, HealthError> {
    Ok(Checker {})
}

impl Checker {
    /// Stops checking.
    pub fn stop(&self) {}
}
