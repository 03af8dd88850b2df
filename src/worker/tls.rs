//! TLS on a worker's non-blocking sockets: a rustls connection driven by hand (`read_tls` /
//! `write_tls` on the std socket, readiness waits through the runtime), shared by a session's
//! two directions on one thread. Used for `bind ... ssl` (the client side); nothing here
//! blocks, and the rustls state is never borrowed across an await.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ClientConnection, Connection, ServerConnection};

use super::runtime::Rt;
use crate::sys::Interest;
use crate::tls::{Acceptor, TlsFacts};

/// One TLS connection over a session's socket.
pub(crate) struct TlsConn {
    conn: RefCell<Connection>,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConn")
    }
}

/// Why a client's handshake failed, in HAProxy's words (`fc_err_str`), as its log shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeError {
    /// The peer closed (or reset) before the end.
    Closed,
    /// Not done within the client timeout.
    Timeout,
    /// A client certificate that the CA file does not vouch for.
    Untrusted,
    /// Anything else: not TLS, no certificate for its SNI (`strict-sni`), no certificate
    /// when one is required, no common version or cipher...
    Failed,
}

impl HandshakeError {
    /// HAProxy's text.
    pub(crate) fn text(self) -> &'static str {
        match self {
            HandshakeError::Closed => "Connection closed during SSL handshake",
            HandshakeError::Timeout => "Timeout during SSL handshake",
            HandshakeError::Untrusted => "SSL client certificate not trusted",
            HandshakeError::Failed => "SSL handshake failure",
        }
    }
}

impl TlsConn {
    /// The server end of a client's connection.
    pub(crate) fn accept(acceptor: &Acceptor) -> io::Result<TlsConn> {
        let mut c = ServerConnection::new(acceptor.config.clone()).map_err(io::Error::other)?;
        // a direction writes what it read before reading more: what rustls holds stays
        // bounded by one read
        c.set_buffer_limit(None);
        Ok(TlsConn {
            conn: RefCell::new(c.into()),
        })
    }

    /// The client end of a connection to an `ssl` server, naming `name` (sent as SNI when a
    /// DNS name).
    pub(crate) fn connect(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsConn> {
        let mut c = ClientConnection::new(config, name).map_err(io::Error::other)?;
        c.set_buffer_limit(None);
        Ok(TlsConn {
            conn: RefCell::new(c.into()),
        })
    }

    /// Sends what rustls has queued, without waiting: whether all went out, and how many
    /// bytes did.
    pub(crate) fn flush_now(&self, sock: &TcpStream) -> io::Result<(bool, usize)> {
        let mut c = self.conn.borrow_mut();
        let mut sent = 0;
        while c.wants_write() {
            match c.write_tls(&mut &*sock) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((false, sent)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((true, sent))
    }

    /// Reads decrypted bytes into `buf`: `Some(n)` (0: the peer's end, by `close_notify` or a
    /// plain FIN), `None` when the socket has nothing more now. What reading made rustls want to
    /// send (an alert, a key update) is sent if the socket takes it.
    pub(crate) fn read_plain(&self, sock: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = self.read_inner(sock, buf);
        let _ = self.flush_now(sock);
        r
    }

    fn read_inner(&self, sock: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut c = self.conn.borrow_mut();
        let mut eof = false;
        loop {
            match c.reader().read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // a FIN without `close_notify`: an end all the same, as HAProxy takes it
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(0)),
                Err(e) => return Err(e),
            }
            if eof {
                return Ok(Some(0));
            }
            match c.read_tls(&mut &*sock) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            c.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    /// Queues `data` to be encrypted and sent ([`TlsConn::flush_now`] sends it).
    pub(crate) fn write_plain(&self, data: &[u8]) -> io::Result<()> {
        self.conn.borrow_mut().writer().write_all(data)
    }

    /// Queues `close_notify`.
    pub(crate) fn close_notify(&self) {
        self.conn.borrow_mut().send_close_notify();
    }

    /// What the handshake settled, for the rules and logs.
    pub(crate) fn facts(&self, acceptor: Option<&Acceptor>) -> TlsFacts {
        let c = self.conn.borrow();
        let (cipher, keysize) = c
            .negotiated_cipher_suite()
            .map_or(("", 0), |s| crate::tls::cipher_name(s.suite()));
        let sni = match &*c {
            Connection::Server(s) => s.server_name().map(Box::from),
            Connection::Client(_) => None,
        };
        let client_cert = match &*c {
            Connection::Server(_) => c
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(crate::tls::subject_issuer)
                .map(|(s, i)| (s.into_boxed_str(), i.into_boxed_str())),
            Connection::Client(_) => None,
        };
        TlsFacts {
            frontend_subject: acceptor
                .and_then(|a| a.served_subject(sni.as_deref()))
                .map(Box::from),
            sni,
            version: c.protocol_version().map_or("", crate::tls::version_name),
            cipher,
            keysize,
            alpn: c.alpn_protocol().map(Box::from),
            resumed: matches!(
                c.handshake_kind(),
                Some(tokio_rustls::rustls::HandshakeKind::Resumed)
            ),
            client_cert,
        }
    }
}

/// Queues `data` on `tls` and sends it all, waiting for `sock` as needed until `deadline`.
pub(crate) async fn send_all<R: Rt>(
    tls: &TlsConn,
    sock: &TcpStream,
    data: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    tls.write_plain(data)?;
    loop {
        if tls.flush_now(sock)?.0 {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match R::timeout(left, R::ready(sock.as_raw_fd(), Interest::Write)).await {
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
            Ok(r) => {
                r?;
            }
        }
    }
}

/// Runs the handshake of `tls` on `sock` until done or `deadline`.
pub(crate) async fn handshake<R: Rt>(
    tls: &TlsConn,
    sock: &TcpStream,
    deadline: Instant,
) -> Result<(), HandshakeError> {
    loop {
        let want = {
            let flushed = tls.flush_now(sock).map_err(|_| HandshakeError::Closed)?.0;
            let mut c = tls.conn.borrow_mut();
            if !flushed {
                Some(Interest::Write)
            } else if !c.is_handshaking() {
                return Ok(());
            } else {
                match c.read_tls(&mut &*sock) {
                    Ok(0) => return Err(HandshakeError::Closed),
                    Ok(_) => {
                        if let Err(e) = c.process_new_packets() {
                            drop(c);
                            // the alert rustls queued, if the socket takes it
                            let _ = tls.flush_now(sock);
                            return Err(classify(&e));
                        }
                        None
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(Interest::Read),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
                    Err(_) => return Err(HandshakeError::Closed),
                }
            }
        };
        if let Some(interest) = want {
            let left = deadline.saturating_duration_since(Instant::now());
            match R::timeout(left, R::ready(sock.as_raw_fd(), interest)).await {
                Err(_) => return Err(HandshakeError::Timeout),
                Ok(Err(_)) => return Err(HandshakeError::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// HAProxy's name for a failed handshake.
fn classify(e: &tokio_rustls::rustls::Error) -> HandshakeError {
    use tokio_rustls::rustls::{CertificateError, Error};
    match e {
        Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => HandshakeError::Untrusted,
        _ => HandshakeError::Failed,
    }
}
