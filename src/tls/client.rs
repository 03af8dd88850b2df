//! TLS client configurations (rustls with ring) shared by the parts that open TLS connections
//! to servers: Lua's `Socket:connect_ssl()`, health checks with `check-ssl`, and `server ... ssl`.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// How a server's certificate is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Not at all (`verify none`); handshake signatures are still checked.
    None,
    /// Chain and name (the HTTP client's and `connect_ssl`'s default).
    ChainAndName,
    /// The chain only, as HAProxy's `verify required` without `verifyhost` or SNI.
    ChainOnly,
    /// The chain, and this name rather than the one sent as SNI (`verifyhost`).
    ChainAndNamed(ServerName<'static>),
}

/// A client configuration: `roots` from the webpki set when `webpki`, plus `ca_file`;
/// `what` names the setting in errors (`httpclient.ssl.ca-file`, `ca-file`).
pub fn client_config(
    verify: Verify,
    webpki: bool,
    ca_file: Option<&Path>,
    what: &str,
) -> Result<Arc<ClientConfig>, String> {
    client_config_with_cert(verify, webpki, ca_file, None, Vec::new(), what)
}

/// [`client_config`] presenting a client certificate (`cert`: chain and key, a server's `crt`)
/// and offering `alpn`.
pub fn client_config_with_cert(
    verify: Verify,
    webpki: bool,
    ca_file: Option<&Path>,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
    what: &str,
) -> Result<Arc<ClientConfig>, String> {
    let tuning = super::TlsTuning::default();
    client_config_tuned(verify, webpki, ca_file, cert, alpn, (&tuning, None), what)
}

/// [`client_config_with_cert`] with a server line's versions and ciphers, and its
/// `crl-file`.
pub fn client_config_tuned(
    verify: Verify,
    webpki: bool,
    ca_file: Option<&Path>,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
    (tuning, crl_file): (&super::TlsTuning, Option<&Path>),
    what: &str,
) -> Result<Arc<ClientConfig>, String> {
    let ring = crypto::ring::default_provider();
    let versions = tuning.versions();
    if versions.is_empty() {
        return Err("all SSL/TLS versions are disabled".into());
    }
    if let Err(l) = super::acceptor::filter(tuning.ciphers.as_deref()) {
        return Err(format!("unable to set SSL cipher list to '{l}'"));
    }
    if let Err(l) = super::acceptor::filter(tuning.ciphersuites.as_deref()) {
        return Err(format!("unable to set TLS 1.3 cipher suites to '{l}'"));
    }
    let suites = tuning.suites(&ring, &versions, what)?;
    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..ring
    });
    let crls = match crl_file {
        Some(f) => {
            super::certs::load_crls(f).map_err(|e| format!("crl-file {}: {e}", f.display()))?
        }
        None => Vec::new(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let builder = if verify == Verify::None {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        if webpki {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(path) = ca_file {
            super::certs::add_roots(&mut roots, path)
                .map_err(|e| format!("{what} {}: {e}", path.display()))?;
        }
        if verify == Verify::ChainAndName && crls.is_empty() {
            builder.with_root_certificates(roots)
        } else {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .with_crls(crls)
                .build()
                .map_err(|e| format!("{what}: {e}"))?;
            let verifier: Arc<dyn ServerCertVerifier> = match verify {
                // (with CRLs: webpki's verifier, which checks the name itself)
                Verify::ChainAndName => inner,
                Verify::ChainAndNamed(name) => Arc::new(Named { inner, name }),
                _ => Arc::new(ChainOnly(inner)),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
        }
    };
    let mut config = match cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("crt: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

/// The client configurations of an `ssl` server's connections: `named` checks the name sent
/// as SNI (or `verifyhost`), `unnamed` serves connections sending none, where HAProxy checks the
/// chain alone.
#[derive(Debug)]
pub struct ServerTls {
    /// For connections with an SNI.
    pub named: Arc<ClientConfig>,
    /// For connections without.
    pub unnamed: Arc<ClientConfig>,
}

impl ServerTls {
    /// From a server's `verify`, `verifyhost`, `ca-file`, `crt` and `alpn`; `default_verify`:
    /// the global `ssl-server-verify`.
    pub fn new(p: &crate::config::ServerParams, default_verify: bool) -> Result<ServerTls, String> {
        let host = p
            .verifyhost
            .clone()
            .and_then(|h| ServerName::try_from(h).ok());
        let (named, unnamed) = match (p.verify.unwrap_or(default_verify), host) {
            (false, _) => (Verify::None, Verify::None),
            (true, Some(h)) => (Verify::ChainAndNamed(h.clone()), Verify::ChainAndNamed(h)),
            (true, None) => (Verify::ChainAndName, Verify::ChainOnly),
        };
        let cert =
            || -> Result<_, String> { p.crt.as_deref().map(super::certs::load_chain).transpose() };
        let ca = p.ca_file.as_deref();
        let tuning = (&p.tls_tuning, p.crl_file.as_deref());
        Ok(ServerTls {
            named: client_config_tuned(
                named,
                false,
                ca,
                cert()?,
                p.alpn.clone(),
                tuning,
                "ca-file",
            )?,
            unnamed: client_config_tuned(
                unnamed,
                false,
                ca,
                cert()?,
                p.alpn.clone(),
                tuning,
                "ca-file",
            )?,
        })
    }

    /// Configurations that verify against no CA: every handshake fails (what a server whose
    /// files vanished since the check gets, rather than unverified TLS).
    pub fn failing() -> Result<ServerTls, String> {
        let c = client_config(Verify::ChainOnly, false, None, "ca-file")?;
        Ok(ServerTls {
            named: c.clone(),
            unnamed: c,
        })
    }
}

/// Verifies the chain and a configured name, whatever name went out as SNI (`verifyhost`).
#[derive(Debug)]
struct Named {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for Named {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate but still checks handshake signatures (`verify none`).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Verifies the chain against the roots but not the name (HAProxy checks a name only when
/// `verifyhost` or an SNI gives one).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
