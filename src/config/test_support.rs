//! Helpers shared by the config unit tests: parse a text and expect success or the error text.

use super::{parse_str, Config};

/// Parses `text` (as `t.cfg`), panicking with every error if it is refused.
pub(crate) fn ok(text: &str) -> Config {
    match parse_str("t.cfg", text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// Parses `text` (as `t.cfg`) expecting a refusal; returns the rendered errors.
pub(crate) fn err(text: &str) -> String {
    match parse_str("t.cfg", text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}
