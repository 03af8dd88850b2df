//! TLS for `Socket:connect_ssl()`: the webpki roots plus `httpclient.ssl.ca-file`;
//! `httpclient.ssl.verify none` turns verification off, as for the HTTP client.

use std::sync::Arc;

use tokio_rustls::rustls::ClientConfig;

use crate::config::HttpClientSettings;
use crate::tls::{client_config as build, Verify};

/// The client configuration for `connect_ssl`, from the `httpclient.ssl.*` settings.
pub(crate) fn client_config(s: &HttpClientSettings) -> Result<Arc<ClientConfig>, String> {
    let verify = if s.ssl_verify {
        Verify::ChainAndName
    } else {
        Verify::None
    };
    build(
        verify,
        true,
        s.ssl_ca_file.as_deref(),
        "httpclient.ssl.ca-file",
    )
}
