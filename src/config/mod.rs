//! HAProxy-syntax configuration: lexer, section parsers, and the typed [`Config`].
//!
//! Entry points: [`load`] for `-f` paths (files or directories), [`parse_str`] for text, and
//! [`parse_server_args`] which the Runtime API's `add server` shares with `server` lines.

mod error;
pub mod lexer;
mod parse;
mod section;
pub(crate) mod suggest;
pub mod tcp_check;
mod tls_options;
mod types;
pub mod units;

#[cfg(test)]
mod test_support;
mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use types::*;

use std::path::PathBuf;

/// Why a `check-ssl` server cannot verify its certificates, with HAProxy's messages: `verify
/// required` (explicit, or the global `ssl-server-verify` default) without a `ca-file`, or a
/// `ca-file` that does not load. Shared by the configuration check and `add server`.
pub fn check_ssl_problem(proxy: &str, s: &ServerConfig, default_verify: bool) -> Option<String> {
    let p = &s.params;
    if !p.check_ssl || !p.verify.unwrap_or(default_verify) {
        return None;
    }
    match &p.ca_file {
        None => Some(format!(
            "Proxy '{proxy}', server '{}' [{}] verify is enabled{} but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable server-side verifications by default.",
            s.name,
            s.location,
            if p.verify.is_none() { " by default" } else { "" }
        )),
        Some(f) => crate::tls::client_config(crate::tls::Verify::ChainOnly, false, Some(f), "ca-file")
            .err()
            .map(|e| format!("'server {}' : unable to load CA file: {e}", s.name)),
    }
}

/// Why an `ssl` server cannot connect as configured, with HAProxy's messages (located with
/// `[file:line] : 'server <backend>/<name>' : `): a `ca-file` that does not load (even under
/// `verify none`), verification (explicit, or the global `ssl-server-verify` default) without
/// a `ca-file`, a `crt` that does not load. Shared by the configuration check and `add server`.
pub fn server_ssl_problem(proxy: &str, s: &ServerConfig, default_verify: bool) -> Option<String> {
    let p = &s.params;
    if !p.ssl {
        return None;
    }
    let at = format!("[{}] : 'server {proxy}/{}' : ", s.location, s.name);
    if let Some(f) = &p.ca_file {
        if let Err(e) = std::fs::metadata(f) {
            let e = e.to_string();
            let e = e.split(" (os error").next().unwrap_or("");
            return Some(format!(
                "{at}Couldn't open the ca-file '{}' ({e}).",
                f.display()
            ));
        }
        if let Err(e) =
            crate::tls::client_config(crate::tls::Verify::ChainOnly, false, Some(f), "ca-file")
        {
            return Some(format!("{at}unable to load the ca-file: {e}."));
        }
    }
    if p.verify.unwrap_or(default_verify) && p.ca_file.is_none() {
        return Some(format!(
            "{at}verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable server-side verifications by default."
        ));
    }
    if let Some(c) = &p.crt {
        if let Err(e) = crate::tls::load_chain(c) {
            return Some(format!("{at}{e}"));
        }
    }
    // versions, ciphers, `crl-file`: the configuration its connections will use
    crate::tls::ServerTls::new(p, default_verify)
        .err()
        .map(|e| format!("{at}{e}."))
}

/// Loads and validates every `-f` path in order (a directory contributes its `*.cfg` files in
/// lexical order). Returns all errors found, never only the first.
pub fn load(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    parse::load(paths)
}

/// Parses one configuration text; `name` is used as the file name in messages.
pub fn parse_str(name: &str, text: &str) -> Result<Config, ConfigErrors> {
    parse::parse_texts(&[(name.to_string(), text.to_string())])
}

/// Parses the words after `server <name>` (`<addr>:<port> [keywords...]`) on top of `defaults`.
/// Used by `server` lines and by the Runtime API's `add server`; the error is the message only
/// (callers add the location or reply text).
pub fn parse_server_args(
    name: &str,
    words: &[String],
    defaults: &ServerParams,
) -> Result<ServerConfig, String> {
    parse::server_args(name, words, defaults)
}
