//! Configuration errors, rendered the way HAProxy renders them so operators recognise them.

use super::Location;

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A problem tied to a line: `[ALERT] parsing [file:line] : message`.
    #[error("[ALERT] parsing [{location}] : {message}")]
    At {
        /// Where.
        location: Location,
        /// What and why, e.g. `unknown keyword 'sevrer' in 'backend' section; did you mean 'server'?`.
        message: String,
    },
    /// A problem found once the configuration is read, tied to a line: HAProxy's
    /// post-parsing framing, `[ALERT] Parsing [file:line]: message` (a log-format that does
    /// not compile).
    #[error("[ALERT] Parsing [{location}]: {message}")]
    Checked {
        /// Where.
        location: Location,
        /// What and why.
        message: String,
    },
    /// A problem with a whole file (missing, unreadable, empty directory).
    #[error("[ALERT] config : {message}")]
    File {
        /// What and why, naming the path.
        message: String,
    },
}

impl ConfigError {
    /// Shorthand for an error at a location.
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        ConfigError::At {
            location: location.clone(),
            message: message.into(),
        }
    }
}

/// Every error of a run: HAProxy reports all of them, not only the first.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.errors))]
pub struct ConfigErrors {
    /// The errors in the order found.
    pub errors: Vec<ConfigError>,
    /// The warnings found before the run failed: `harp -c` shows them too, as HAProxy
    /// does, so one run tells an operator everything to fix.
    pub warnings: Vec<String>,
}

fn render(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors {
            errors: vec![e],
            warnings: Vec::new(),
        }
    }
}
