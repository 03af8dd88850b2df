//! TLS for the load generator (`--tls`): a rustls client that takes any certificate (the
//! proxies under test serve a throw-away self-signed one), so the figures weigh the proxies'
//! TLS, not certificate checks on the client.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// A TLS connection over a blocking socket (its read/write timeouts apply).
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// The client configuration of every `--tls` connection: TLS 1.3 and 1.2, no ticket reuse
/// between connections (each connection pays a full handshake, as new clients do).
pub fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(crypto::ring::default_provider());
    let mut c = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    c.resumption = rustls::client::Resumption::disabled();
    Arc::new(c)
}

/// Starts TLS on `s` (handshake done on return), naming `perf.test`.
pub fn wrap(s: TcpStream, cfg: &Arc<ClientConfig>) -> Result<TlsStream> {
    let name = ServerName::try_from("perf.test").context("server name")?;
    let conn = ClientConnection::new(cfg.clone(), name).context("tls client")?;
    let mut t = StreamOwned::new(conn, s);
    while t.conn.is_handshaking() {
        t.conn.complete_io(&mut t.sock).context("tls handshake")?;
    }
    Ok(t)
}

/// Ends a TLS connection politely: `close_notify`, sent if the socket takes it.
pub fn close(t: &mut TlsStream) {
    t.conn.send_close_notify();
    let _ = t.flush();
}

/// Takes any certificate; handshake signatures are still checked.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
