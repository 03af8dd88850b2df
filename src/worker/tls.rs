//! TLS on a worker's non-blocking sockets: a rustls connection driven by hand on the std
//! socket (readiness waits through the runtime), shared by a session's two directions on one
//! thread. Used for `bind ... ssl` (the client side) and `server ... ssl`. Nothing here blocks,
//! and the rustls state is never borrowed across an await.
//!
//! Reads: one `recv` of up to [`RAW_READ`] bytes of ciphertext into the worker's scratch
//! buffer, fed to rustls a record at a time and decrypted into the caller's buffer; rustls'
//! own `read_tls` would read at most 4 KiB per syscall. What rustls cannot take yet (the
//! caller's buffer is full) waits in the connection's `pending` bytes, empty and unallocated
//! otherwise.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::server::Acceptor as HelloReader;
use tokio_rustls::rustls::{ClientConfig, ClientConnection, Connection};

use super::runtime::Rt;
use crate::sys::Interest;
use crate::tls::{Acceptor, TlsFacts};

/// The most ciphertext one read takes from a socket.
const RAW_READ: usize = 64 * 1024;

thread_local! {
    /// The worker's ciphertext scratch buffer: filled and emptied within one call.
    static RAW: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; RAW_READ].into_boxed_slice());
}

/// One TLS connection over a session's socket.
pub(crate) struct TlsConn {
    /// Where it is counted while it lives (`CurrSslConns`), once its handshake is done.
    counted: Option<Arc<crate::model::Registry>>,
    conn: RefCell<Connection>,
    /// Ciphertext read and not yet taken by rustls, from `pending_at` on.
    pending: RefCell<Vec<u8>>,
    pending_at: Cell<usize>,
    /// A fault came behind data already returned: the next read reports it.
    faulted: Cell<bool>,
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
    /// Not done within the timeout.
    Timeout,
    /// A client certificate that the CA file does not vouch for.
    Untrusted,
    /// `maxsslconn` TLS connections are open already.
    TooMany,
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
            HandshakeError::TooMany => "Too many SSL connections",
            HandshakeError::Failed => "SSL handshake failure",
        }
    }

    /// As an I/O error (a server's handshake is part of connecting to it).
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            HandshakeError::Timeout => io::ErrorKind::TimedOut.into(),
            e => io::Error::other(e.text()),
        }
    }
}

/// A TLS alert record in the clear (before any key is agreed): fatal, `unrecognized_name`, what
/// HAProxy sends under `strict-sni` (rustls would send `access_denied`).
const UNRECOGNIZED_NAME: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

impl Drop for TlsConn {
    fn drop(&mut self) {
        if let Some(reg) = &self.counted {
            reg.counters.cur_ssl_conns.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl TlsConn {
    /// Counts it in `CurrSslConns` until it is dropped.
    pub(crate) fn count_in(&mut self, reg: &Arc<crate::model::Registry>) {
        if self.counted.is_none() {
            reg.counters.cur_ssl_conns.fetch_add(1, Ordering::Relaxed);
            self.counted = Some(reg.clone());
        }
    }

    fn new(conn: Connection, pending: Vec<u8>) -> TlsConn {
        TlsConn {
            counted: None,
            conn: RefCell::new(conn),
            pending: RefCell::new(pending),
            pending_at: Cell::new(0),
            faulted: Cell::new(false),
        }
    }

    /// The client end of a connection to an `ssl` server, naming `name` (sent as SNI when a
    /// DNS name).
    pub(crate) fn connect(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsConn> {
        let mut c = ClientConnection::new(config, name).map_err(io::Error::other)?;
        // a direction writes what it read before reading more: what rustls holds stays
        // bounded by one read
        c.set_buffer_limit(None);
        Ok(TlsConn::new(c.into(), Vec::new()))
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
        // a fault seen behind bytes already handed out: reported now, not lost to a FIN
        if self.faulted.get() {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let mut c = self.conn.borrow_mut();
        let mut filled = 0;
        loop {
            match c.reader().read(&mut buf[filled..]) {
                // the peer's `close_notify`, after what it sent
                Ok(0) if filled < buf.len() => return Ok(Some(filled)),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(Some(filled));
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // a FIN without `close_notify`: an end all the same, as HAProxy takes it
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(filled)),
                Err(_) if filled > 0 => {
                    self.faulted.set(true);
                    return Ok(Some(filled));
                }
                Err(e) => return Err(e),
            }
            match self.feed_pending(&mut c) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) if filled > 0 => {
                    self.faulted.set(true);
                    return Ok(Some(filled));
                }
                Err(e) => return Err(e),
            }
            // nothing decrypted or pending: more ciphertext from the socket
            let got = RAW.with(|raw| -> io::Result<Option<usize>> {
                let mut raw = raw.borrow_mut();
                let n = match (&*sock).read(&mut raw[..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    // rustls learns of the end (a later read says whether it was clean)
                    c.read_tls(&mut io::empty())?;
                    return Ok(Some(0));
                }
                self.take(&mut c, &raw[..n], buf, &mut filled)?;
                Ok(Some(n))
            });
            match got {
                Ok(Some(_)) => {}
                Ok(None) if filled > 0 => return Ok(Some(filled)),
                Ok(None) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if filled > 0 => {
                    self.faulted.set(true);
                    return Ok(Some(filled));
                }
                Err(e) => return Err(e),
            }
            // after an EOF rustls' reader says the end next round (Ok(0) or UnexpectedEof)
        }
    }

    /// Gives rustls `data` a record at a time, moving what it decrypts into `buf` (from
    /// `filled` on) as it goes, so its plaintext buffer never fills; what is left once `buf`
    /// is full waits in `pending`.
    fn take(
        &self,
        c: &mut Connection,
        data: &[u8],
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<()> {
        let mut off = 0;
        while off < data.len() {
            drain(c, buf, filled);
            if *filled == buf.len() {
                break;
            }
            match c.read_tls(&mut &data[off..]) {
                // `close_notify` was read: nothing after it counts
                Ok(0) => return Ok(()),
                Ok(k) => off += k,
                // its plaintext buffer is full, and so is `buf`
                Err(e) if e.kind() == io::ErrorKind::Other => break,
                Err(e) => return Err(e),
            }
            c.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        drain(c, buf, filled);
        if off < data.len() {
            let mut p = self.pending.borrow_mut();
            let at = self.pending_at.get();
            p.drain(..at);
            self.pending_at.set(0);
            p.extend_from_slice(&data[off..]);
        }
        Ok(())
    }

    /// Feeds rustls from `pending`; whether it took anything.
    fn feed_pending(&self, c: &mut Connection) -> io::Result<bool> {
        let mut p = self.pending.borrow_mut();
        let at = self.pending_at.get();
        if at >= p.len() {
            return Ok(false);
        }
        let k = match c.read_tls(&mut &p[at..]) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Other => 0,
            Err(e) => return Err(e),
        };
        c.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if at + k >= p.len() {
            // all taken: the buffer goes
            *p = Vec::new();
            self.pending_at.set(0);
        } else {
            self.pending_at.set(at + k);
        }
        Ok(k > 0)
    }

    /// Queues `data` to be encrypted and sent ([`TlsConn::flush_now`] sends it).
    pub(crate) fn write_plain(&self, data: &[u8]) -> io::Result<()> {
        self.conn.borrow_mut().writer().write_all(data)
    }

    /// Queues `close_notify`.
    pub(crate) fn close_notify(&self) {
        self.conn.borrow_mut().send_close_notify();
    }

    /// What the handshake settled, for the rules and logs: `sni` as the client wrote it,
    /// `served` the subject of the certificate it got.
    pub(crate) fn facts(&self, sni: Option<Box<str>>, served: Option<&str>) -> TlsFacts {
        let c = self.conn.borrow();
        let (cipher, keysize) = c
            .negotiated_cipher_suite()
            .map_or(("", 0), |s| crate::tls::cipher_name(s.suite()));
        let leaf = match &*c {
            Connection::Server(_) => c.peer_certificates().and_then(|certs| certs.first()),
            Connection::Client(_) => None,
        };
        let client_cert = leaf
            .and_then(crate::tls::subject_issuer)
            .map(|(s, i)| (s.into_boxed_str(), i.into_boxed_str()));
        let client_cn = leaf
            .and_then(crate::tls::common_name_of)
            .map(String::into_boxed_str);
        let client_der = leaf.map(|c| Box::from(c.as_ref()));
        let sni = sni.or_else(|| match &*c {
            Connection::Server(s) => s.server_name().map(Box::from),
            Connection::Client(_) => None,
        });
        TlsFacts {
            frontend_subject: served.map(Box::from),
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
            client_cn,
            client_der,
        }
    }
}

/// Moves what rustls decrypted into `buf` from `filled` on, as far as it fits.
fn drain(c: &mut Connection, buf: &mut [u8], filled: &mut usize) {
    while *filled < buf.len() {
        match c.reader().read(&mut buf[*filled..]) {
            Ok(0) | Err(_) => return,
            Ok(k) => *filled += k,
        }
    }
}

/// A client connection handshaken on a `bind ... ssl` listener.
/// (Returned boxed: a session's state keeps room for it, plain sessions too, so it takes a
/// pointer there, not its 1.4 KB.)
pub(crate) struct Accepted {
    /// The connection.
    pub tls: TlsConn,
    /// What rules and logs read of it.
    pub facts: TlsFacts,
}

/// Takes a client's TLS handshake on `sock` until done or `deadline`: reads its ClientHello
/// (after `early`, bytes read already with a PROXY header), picks the certificate and the
/// ALPN settings as HAProxy would, then completes the handshake.
pub(crate) async fn accept<R: Rt>(
    acceptor: &Acceptor,
    sock: &TcpStream,
    early: Vec<u8>,
    deadline: Instant,
) -> Result<Box<Accepted>, HandshakeError> {
    // the raw bytes up to the ClientHello: its SNI as written (rustls lowercases it)
    let mut raw = early;
    let mut fed = 0;
    let mut hello = HelloReader::default();
    let accepted = loop {
        while fed < raw.len() {
            match hello.read_tls(&mut &raw[fed..]) {
                Ok(0) => break,
                Ok(k) => fed += k,
                Err(_) => return Err(HandshakeError::Failed),
            }
        }
        match hello.accept() {
            Ok(Some(a)) => break a,
            Ok(None) => {}
            Err((_, mut alert)) => {
                let _ = alert.write_all(&mut &*sock);
                return Err(HandshakeError::Failed);
            }
        }
        let at = raw.len();
        raw.resize(at + 4096, 0);
        let r = (&*sock).read(&mut raw[at..]);
        raw.truncate(at + *r.as_ref().unwrap_or(&0));
        match r {
            Ok(0) => return Err(HandshakeError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait::<R>(sock, Interest::Read, deadline).await?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(HandshakeError::Closed),
        }
    };
    let ch = accepted.client_hello();
    let sni = match crate::rules::hello::sni(&raw) {
        crate::rules::hello::Hello::Found(n) => std::str::from_utf8(n).ok().map(Box::from),
        _ => None,
    };
    let Some(cert) = acceptor.pick(ch.server_name(), ch.signature_schemes()) else {
        // `strict-sni` and no certificate for the name
        let _ = (&*sock).write(&UNRECOGNIZED_NAME);
        return Err(HandshakeError::Failed);
    };
    let config = acceptor.config_for(ch.alpn());
    let conn = match accepted.into_connection(config) {
        Ok(mut c) => {
            c.set_buffer_limit(None);
            c
        }
        Err((e, mut alert)) => {
            let _ = alert.write_all(&mut &*sock);
            return Err(classify(&e));
        }
    };
    // (the reader took every byte it was given: nothing of `raw` is left over)
    let tls = TlsConn::new(conn.into(), Vec::new());
    handshake::<R>(&tls, sock, deadline).await?;
    let facts = tls.facts(sni, acceptor.subject(cert).as_deref());
    Ok(Box::new(Accepted { tls, facts }))
}

/// Waits for `interest` on `sock` until `deadline`.
async fn wait<R: Rt>(
    sock: &TcpStream,
    interest: Interest,
    deadline: Instant,
) -> Result<(), HandshakeError> {
    let left = deadline.saturating_duration_since(Instant::now());
    match R::timeout(left, R::ready(sock.as_raw_fd(), interest)).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(Err(_)) => Err(HandshakeError::Closed),
        Ok(Ok(_)) => Ok(()),
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
        wait::<R>(sock, Interest::Write, deadline)
            .await
            .map_err(HandshakeError::into_io)?;
    }
}

/// Runs the rest of the handshake of `tls` on `sock` until done or `deadline`.
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
            wait::<R>(sock, interest, deadline).await?;
        }
    }
}

/// HAProxy's name for a failed handshake.
fn classify(e: &tokio_rustls::rustls::Error) -> HandshakeError {
    use tokio_rustls::rustls::Error;
    match e {
        // a client certificate that does not verify, whatever the reason (HAProxy's
        // `CO_ER_SSL_CRT_FAIL`); none at all where one is required is a handshake failure
        Error::InvalidCertificate(_) => HandshakeError::Untrusted,
        _ => HandshakeError::Failed,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};

    use super::TlsConn;

    /// A TLS server on a thread: sends `data` in `chunk`-sized writes, then `close_notify`.
    fn server(data: Vec<u8>, chunk: usize) -> u16 {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["t.test".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let pk = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let cfg = Arc::new(
            ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], pk)
                .expect("config"),
        );
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            let mut t = StreamOwned::new(ServerConnection::new(cfg).expect("conn"), s);
            for c in data.chunks(chunk) {
                t.write_all(c).expect("write");
            }
            t.conn.send_close_notify();
            t.flush().expect("flush");
        });
        port
    }

    /// Reads everything through `read_plain` with `buf_len`-byte buffers on a non-blocking
    /// socket, as a worker does.
    fn read_all(port: u16, buf_len: usize) -> Vec<u8> {
        let cfg = crate::tls::client_config(crate::tls::Verify::None, false, None, "ca-file")
            .expect("client config");
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let tls =
            TlsConn::connect(cfg, ServerName::try_from("t.test").expect("name")).expect("tls");
        // the handshake, blocking
        {
            let mut c = tls.conn.borrow_mut();
            while c.is_handshaking() {
                c.complete_io(&mut &sock).expect("handshake");
            }
        }
        sock.set_nonblocking(true).expect("nonblocking");
        let mut out = Vec::new();
        let mut buf = vec![0u8; buf_len];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "stalled at {}",
                out.len()
            );
            match tls.read_plain(&sock, &mut buf).expect("read") {
                Some(0) => return out,
                Some(n) => out.extend_from_slice(&buf[..n]),
                None => std::thread::sleep(std::time::Duration::from_micros(200)),
            }
        }
    }

    #[test]
    fn decrypted_bytes_arrive_whole_and_in_order_whatever_the_buffer() {
        let data: Vec<u8> = (0..(1u32 << 20) + 777)
            .map(|i| (i ^ (i >> 9)) as u8)
            .collect();
        // small buffers: what rustls cannot take waits aside, and is fed back first
        for (buf_len, chunk) in [(1000, 16384), (3000, 100_000), (65536, 7), (70_000, 65536)] {
            let port = server(data.clone(), chunk);
            let got = read_all(port, buf_len);
            assert!(
                got == data,
                "buffer {buf_len}, chunk {chunk}: {} bytes",
                got.len()
            );
        }
    }
}
