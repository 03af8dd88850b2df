//! A health check's connection: plain TCP, or TLS over it when the server has `check-ssl`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

/// What `check-ssl` checks need: the client configuration (`verify`, `ca-file`) and the name
/// sent as SNI and verified (`check-sni`, `verifyhost`, else the server's address).
#[derive(Debug, Clone)]
pub struct CheckTls {
    /// rustls client configuration.
    pub config: Arc<ClientConfig>,
    /// SNI / verified name.
    pub name: ServerName<'static>,
}

/// A check connection.
pub(super) enum CheckStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl CheckStream {
    /// The TCP connection under it (to close it with a reset).
    pub(super) fn into_tcp(self) -> TcpStream {
        match self {
            CheckStream::Plain(s) => s,
            CheckStream::Tls(t) => t.into_inner().0,
        }
    }

    /// Runs the TLS handshake over `s`.
    pub(super) async fn handshake(s: TcpStream, tls: &CheckTls) -> io::Result<CheckStream> {
        let c = tokio_rustls::TlsConnector::from(tls.config.clone());
        let t = c.connect(tls.name.clone(), s).await?;
        Ok(CheckStream::Tls(Box::new(t)))
    }
}

impl AsyncRead for CheckStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            CheckStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            CheckStream::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for CheckStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            CheckStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            CheckStream::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            CheckStream::Plain(s) => Pin::new(s).poll_flush(cx),
            CheckStream::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            CheckStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            CheckStream::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}
