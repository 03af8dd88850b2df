//! HAProxy-style process log lines (`[WARNING]  (pid) : ...`) for state changes and alerts.
//!
//! These lines are part of the product: operators grep them, so their wording follows HAProxy
//! 3.2 (see `shared/reference/haproxy-3.2-log-lines.txt`). Internal diagnostics use `tracing`.

use std::io::Write;
use std::sync::OnceLock;

pub mod ring;
pub(crate) mod targets;

/// Severity of a process log line, with HAProxy's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `[ALERT]`
    Alert,
    /// `[WARNING]`
    Warning,
    /// `[NOTICE]`
    Notice,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Alert => "[ALERT]",
            Level::Warning => "[WARNING]",
            Level::Notice => "[NOTICE]",
        }
    }
}

/// An extra destination for process log lines (e.g. syslog), set once at start-up.
pub type Sink = Box<dyn Fn(Level, &str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();
static QUIET: OnceLock<bool> = OnceLock::new();

/// Installs an extra sink; later calls are ignored.
pub fn set_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Silences stderr copies (`-q`).
pub fn set_quiet(q: bool) {
    let _ = QUIET.set(q);
}

/// Whether `-q` silenced stderr.
pub fn quiet() -> bool {
    QUIET.get().copied().unwrap_or(false)
}

static DEBUG_MODE: OnceLock<bool> = OnceLock::new();

/// Records `-d` (HAProxy's debug mode), which lets debug-level Lua messages reach stderr.
pub fn set_debug_mode(d: bool) {
    let _ = DEBUG_MODE.set(d);
}

/// Whether harp runs with `-d`.
pub fn debug_mode() -> bool {
    DEBUG_MODE.get().copied().unwrap_or(false)
}

/// Formats a line exactly as HAProxy prints it on stderr.
pub fn format_line(level: Level, msg: &str) -> String {
    format!("{:<11}({}) : {}", level.label(), std::process::id(), msg)
}

/// Emits one process log line.
pub fn emit(level: Level, msg: &str) {
    if !quiet() {
        let line = format_line(level, msg);
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
    if let Some(s) = SINK.get() {
        s(level, msg);
    }
}

/// `[ALERT]` line.
pub fn alert(msg: &str) {
    emit(Level::Alert, msg)
}

/// `[WARNING]` line.
pub fn warning(msg: &str) {
    emit(Level::Warning, msg)
}

/// `[NOTICE]` line.
pub fn notice(msg: &str) {
    emit(Level::Notice, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_padded_like_haproxy() {
        let pid = std::process::id();
        assert_eq!(
            format_line(Level::Notice, "x"),
            format!("[NOTICE]   ({pid}) : x")
        );
        assert_eq!(
            format_line(Level::Warning, "x"),
            format!("[WARNING]  ({pid}) : x")
        );
        assert_eq!(
            format_line(Level::Alert, "x"),
            format!("[ALERT]    ({pid}) : x")
        );
    }
}
