//! The data plane: one tokio-uring runtime per worker thread, SO_REUSEPORT listeners, balancing,
//! connect with retries, and zero-copy forwarding (to be written: see issue 3).

use std::sync::Arc;

use crate::model::Registry;

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A listener could not be opened.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A worker thread could not be spawned.
    #[error("cannot start worker thread: {0}")]
    Spawn(std::io::Error),
}

/// Running workers.
#[derive(Debug)]
pub struct Workers {}

/// Starts `nbthread` workers listening on every frontend `bind`.
pub fn start(_reg: Arc<Registry>) -> Result<Workers, WorkerError> {
    Ok(Workers {})
}

impl Workers {
    /// Stops accepting. `graceful`: let sessions finish (bounded by `hard-stop-after`);
    /// otherwise close everything now.
    pub fn stop(&self, _graceful: bool) {}

    /// Waits until every worker thread ended.
    pub fn wait(self) {}
}
