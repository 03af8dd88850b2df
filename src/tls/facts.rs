//! What a finished handshake tells the rules (`ssl_fc_*`, `ssl_c_*`) and the log (`%sslv`,
//! `%sslc`), named as OpenSSL names them, since HAProxy users match and parse those names.

use tokio_rustls::rustls::{CipherSuite, ProtocolVersion};

/// A client connection's TLS session as the rules and logs see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFacts {
    /// The server name the client sent (SNI), as sent.
    pub sni: Option<Box<str>>,
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: &'static str,
    /// OpenSSL's name of the cipher (`TLS_AES_256_GCM_SHA384`, `ECDHE-RSA-AES128-GCM-SHA256`).
    pub cipher: &'static str,
    /// Bits of the cipher's key (`ssl_fc_use_keysize`).
    pub keysize: i64,
    /// The protocol negotiated with ALPN.
    pub alpn: Option<Box<[u8]>>,
    /// Whether the session was resumed.
    pub resumed: bool,
    /// The client's certificate: (subject, issuer) in OpenSSL's one-line form.
    pub client_cert: Option<(Box<str>, Box<str>)>,
    /// Its common name (`proxy-v2-options cert-cn`).
    pub client_cn: Option<Box<str>>,
    /// Its DER (`ssl_c_der`, and what `ssl_c_serial`, `ssl_c_sha1`... read).
    pub client_der: Option<Box<[u8]>>,
    /// The frontend certificate's subject, one-line.
    pub frontend_subject: Option<Box<str>>,
}

/// OpenSSL's name of a protocol version, as `ssl_fc_protocol` and `%sslv` print it.
pub fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        ProtocolVersion::TLSv1_1 => "TLSv1.1",
        ProtocolVersion::TLSv1_0 => "TLSv1",
        _ => "unknown",
    }
}

/// The cipher suites rustls (ring) offers: IANA suite, OpenSSL name, key bits.
const SUITES: &[(CipherSuite, &str, i64)] = &[
    (
        CipherSuite::TLS13_AES_256_GCM_SHA384,
        "TLS_AES_256_GCM_SHA384",
        256,
    ),
    (
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_128_GCM_SHA256",
        128,
    ),
    (
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_CHACHA20_POLY1305_SHA256",
        256,
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        256,
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        128,
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        256,
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384",
        256,
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256",
        128,
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305",
        256,
    ),
];

/// OpenSSL's name of a cipher suite and its key bits.
pub fn cipher_name(s: CipherSuite) -> (&'static str, i64) {
    SUITES
        .iter()
        .find(|(c, _, _)| *c == s)
        .map_or(("unknown", 0), |(_, n, b)| (*n, *b))
}

/// The suite OpenSSL calls `name`, if rustls offers it.
pub(crate) fn suite_named(name: &str) -> Option<CipherSuite> {
    SUITES
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(c, _, _)| *c)
}

/// Every OpenSSL name harp can negotiate, for error messages.
pub(crate) fn suite_names() -> Vec<&'static str> {
    SUITES.iter().map(|(_, n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rustls_suite_has_an_openssl_name() {
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        for s in provider.cipher_suites {
            assert_ne!(cipher_name(s.suite()).0, "unknown", "{:?}", s.suite());
        }
        assert_eq!(
            suite_named("ECDHE-RSA-AES128-GCM-SHA256"),
            Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
        );
    }
}
