//! One parser per section kind. Each takes one line's words and returns the bare error message;
//! the driver adds `parsing [file:line]`.

pub(super) mod global;
pub(super) mod log;
pub(super) mod mailers;
pub(super) mod peers;
pub(super) mod proxy;
pub(super) mod resolvers;
pub(super) mod ring;
pub(super) mod server;

use super::Location;

/// What a section parser may need besides the words: where the line is (for `Location` fields)
/// and where to put warnings (bare messages; the driver formats them).
pub(crate) struct Ctx<'a> {
    /// The line being parsed.
    pub loc: &'a Location,
    /// Warnings for this line.
    pub warnings: &'a mut Vec<String>,
    /// For a `bind` line: the TLS settings `ssl-default-bind-*` gave so far.
    pub bind_tls: Option<crate::tls::BindTls>,
}

impl Ctx<'_> {
    /// Records a warning for the current line.
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(msg.into());
    }
}

/// Fetches the argument at `i` or explains which one is missing.
pub(crate) fn arg<'w>(words: &'w [String], i: usize, what: &str) -> Result<&'w str, String> {
    words.get(i).map(String::as_str).ok_or_else(|| {
        format!(
            "'{}' expects {what}.",
            words[..i.min(words.len())].join(" ")
        )
    })
}

/// Refuses extra words after a keyword's last argument.
pub(crate) fn no_more(words: &[String], used: usize) -> Result<(), String> {
    match words.get(used) {
        Some(w) => Err(format!(
            "'{}' : unexpected extra argument '{w}'.",
            words[..used].join(" ")
        )),
        None => Ok(()),
    }
}
