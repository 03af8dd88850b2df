//! Section parsers (to be written).
use super::{Config, ConfigError, ConfigErrors, ServerConfig, ServerParams};
use std::path::PathBuf;

pub(super) fn load(_paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    Err(ConfigError::File {
        message: "config parser not written yet".into(),
    }
    .into())
}

pub(super) fn parse_texts(_texts: &[(String, String)]) -> Result<Config, ConfigErrors> {
    Err(ConfigError::File {
        message: "config parser not written yet".into(),
    }
    .into())
}

pub(super) fn server_args(
    _name: &str,
    _words: &[String],
    _defaults: &ServerParams,
) -> Result<ServerConfig, String> {
    Err("not written yet".into())
}
