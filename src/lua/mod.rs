//! The Lua 5.4 engine running HAProxy scripts on its own thread (to be written: see issue 6).

use std::sync::Arc;

use crate::config::Config;
use crate::model::Registry;

/// Why Lua could not start.
#[derive(Debug, thiserror::Error)]
pub enum LuaError {
    /// A script failed to load or its body/init raised an error: `file:line: message`.
    #[error("{0}")]
    Script(String),
    /// The Lua thread could not be spawned.
    #[error("cannot start Lua thread: {0}")]
    Spawn(std::io::Error),
}

/// The running engine.
#[derive(Debug)]
pub struct LuaEngine {}

/// Loads every `lua-load` script on the Lua thread, runs their bodies and `register_init`
/// functions, and returns once subscriptions made there are in place (so no early event is
/// missed); tasks then run.
pub fn start(_reg: Arc<Registry>) -> Result<LuaEngine, LuaError> {
    Ok(LuaEngine {})
}

/// For `harp -c`: compiles every `lua-load` script and reports syntax errors as `file:line: ...`.
pub fn check(_cfg: &Config) -> Result<(), Vec<String>> {
    Ok(())
}

impl LuaEngine {
    /// Lines for `show info` (memory, events dropped per subscription...).
    pub fn info(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Stops the engine thread.
    pub fn stop(&self) {}
}
