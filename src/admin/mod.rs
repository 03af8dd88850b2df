//! The Runtime API on `stats socket`s (to be written: see issue 5).

use std::sync::Arc;

use crate::model::Registry;

/// Extra `show info` lines from other modules (e.g. Lua memory and dropped events).
pub type InfoHook = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Why the Runtime API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A stats socket could not be opened.
    #[error("cannot bind stats socket {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Running stats sockets.
#[derive(Debug)]
pub struct Admin {}

/// Opens every `stats socket` and serves the Runtime API on its own thread.
pub fn start(_reg: Arc<Registry>, _info: InfoHook) -> Result<Admin, AdminError> {
    Ok(Admin {})
}

impl Admin {
    /// Closes the sockets (unix socket files are removed).
    pub fn stop(&self) {}
}
