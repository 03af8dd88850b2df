//! One check run against one address: TCP connect, `option tcp-check` (its rules in
//! `tcp_check.rs`) or `option httpchk`, with HAProxy's statuses, infos and timeouts.
//!
//! Timeouts (HAProxy `check.c`): the whole check is bounded by `inter`; when both `timeout
//! check` and `timeout connect` are set, the connect phase is bounded by `min(inter, timeout
//! connect)` and, once connected, the response by `timeout check`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stream::{CheckStream, CheckTls};
use crate::config::{CheckKind, HttpCheck};
use crate::model::{CheckResult, CheckStatus};

/// Biggest response head read by an HTTP check: the status line must fit in it.
const MAX_HEAD: usize = 16 * 1024;

/// Suffix HAProxy appends to connect errors of `option tcp-check` (leading space included).
pub(super) const TCPCHK_CONNECT_STEP: &str = " at initial connection step of tcp-check";

/// Everything one probe needs, copied out of the configuration so a probe owns no lock.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// Where to connect (`addr`/`port` server keywords, else the server's address).
    pub addr: SocketAddr,
    /// What to send and expect.
    pub kind: CheckKind,
    /// The server's `inter`: bounds the whole check when `timeout check` is unset.
    pub inter: Duration,
    /// The backend's `timeout connect`.
    pub timeout_connect: Option<Duration>,
    /// The backend's `timeout check`.
    pub timeout_check: Option<Duration>,
    /// The server's `send-proxy(-v2)`, when the check goes to the server's own address: the
    /// check then starts with a PROXY protocol header too, as HAProxy's do (a server that
    /// expects one would refuse a check without it).
    pub proxy: Option<crate::config::ProxyProtocol>,
    /// The backend's `tcp-check` rules (or a protocol check's), run when `kind` is
    /// `TcpCheck`; none: a plain connect.
    pub rules: std::sync::Arc<Vec<crate::config::tcp_check::TcpCheckRule>>,
    /// The rules are a protocol check's (`option redis-check`...), not user `tcp-check` lines:
    /// HAProxy reports their failures without step texts.
    pub proto: bool,
    /// The server's or backend's `source`: checks leave from there too, as in HAProxy.
    pub source: Option<crate::config::SourceAddr>,
    /// `check-ssl`: TLS over the check connection.
    pub tls: Option<CheckTls>,
    /// The server's TLS settings for `tcp-check connect ssl` rules: one configuration that
    /// verifies the name a rule's `sni` sends, one for rules sending none.
    pub rule_tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
}

/// Opens a check connection to `addr`, from `source` when one is set.
pub(super) async fn open(
    addr: SocketAddr,
    source: Option<&crate::config::SourceAddr>,
) -> std::io::Result<TcpStream> {
    let Some(src) = source else {
        return TcpStream::connect(addr).await;
    };
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_nonblocking(true)?;
    crate::sys::bind_source(&s, src.addr, src.interface.as_deref())?;
    let std: std::net::TcpStream = s.into();
    tokio::net::TcpSocket::from_std_stream(std)
        .connect(addr)
        .await
}

impl ProbeSpec {
    pub(super) fn connect_deadline(&self, start: Instant) -> Instant {
        let whole = start + self.inter;
        match (self.timeout_check, self.timeout_connect) {
            (Some(_), Some(c)) => whole.min(start + c),
            _ => whole,
        }
    }

    pub(super) fn read_deadline(&self, start: Instant, connected: Instant) -> Instant {
        match self.timeout_check {
            Some(t) => connected + t,
            None => start + self.inter,
        }
    }
}

/// Runs one check and describes what it saw; never panics, whatever the peer does.
pub async fn probe(spec: &ProbeSpec) -> CheckResult {
    if matches!(spec.kind, CheckKind::TcpCheck) && !spec.rules.is_empty() {
        return super::tcp_check::run(spec, &spec.rules).await;
    }
    let start = Instant::now();
    let tcpchk = matches!(spec.kind, CheckKind::TcpCheck);
    let connect = tokio::time::timeout_at(
        spec.connect_deadline(start).into(),
        open(spec.addr, spec.source.as_ref()),
    )
    .await;
    let mut stream = match connect {
        Err(_elapsed) => {
            let info = tcpchk.then(|| TCPCHK_CONNECT_STEP.to_string());
            return result(CheckStatus::L4Tout, start, info, None);
        }
        Ok(Err(e)) => {
            let mut info = strerror(&e);
            if tcpchk {
                info.push_str(TCPCHK_CONNECT_STEP);
            }
            return result(CheckStatus::L4Con, start, Some(info), None);
        }
        Ok(Ok(s)) => s,
    };
    let connected = Instant::now();
    let mut first = match (spec.proxy, stream.local_addr()) {
        (Some(v), Ok(local)) => crate::proxy_protocol::check_header(v, local, spec.addr),
        _ => Vec::new(),
    };
    if let Some(tls) = &spec.tls {
        // `check-ssl`: the PROXY header goes first, in clear, then the TLS handshake
        return match tls_check(spec, tls, stream, &first, start, connected).await {
            Ok((mut t, res)) => {
                let res = match (&spec.kind, res) {
                    (_, Some(r)) => r,
                    (CheckKind::Http(h), None) => {
                        let deadline = spec.read_deadline(start, connected);
                        http(&mut t, &[], h, deadline, start).await
                    }
                    (_, None) => result(CheckStatus::L6Ok, start, None, None),
                };
                close_silently(t.into_tcp());
                res
            }
            Err(res) => res,
        };
    }
    let res = match &spec.kind {
        CheckKind::Tcp | CheckKind::TcpCheck if first.is_empty() => {
            result(CheckStatus::L4Ok, start, None, None)
        }
        CheckKind::Tcp | CheckKind::TcpCheck => {
            let deadline = spec.read_deadline(start, connected);
            match tokio::time::timeout_at(deadline.into(), stream.write_all(&first)).await {
                Ok(Ok(())) => result(CheckStatus::L4Ok, start, None, None),
                Ok(Err(e)) => result(CheckStatus::SockErr, start, Some(strerror(&e)), None),
                Err(_) => result(CheckStatus::L4Tout, start, None, None),
            }
        }
        CheckKind::Http(h) => {
            let deadline = spec.read_deadline(start, connected);
            let mut s = CheckStream::Plain(stream);
            let res = http(&mut s, &std::mem::take(&mut first), h, deadline, start).await;
            close_silently(s.into_tcp());
            return res;
        }
    };
    close_silently(stream);
    res
}

/// Sends the PROXY header if any, then runs the TLS handshake within the connect deadline:
/// the TLS stream, or the check's result (L6RSP on a failed handshake, L6TOUT on none in time).
async fn tls_check(
    spec: &ProbeSpec,
    tls: &CheckTls,
    mut stream: TcpStream,
    first: &[u8],
    start: Instant,
    connected: Instant,
) -> Result<(CheckStream, Option<CheckResult>), CheckResult> {
    // the header and the handshake are part of the connection, bounded as it is
    let deadline = spec.connect_deadline(start).max(connected);
    if !first.is_empty() {
        match tokio::time::timeout_at(deadline.into(), stream.write_all(first)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                close_silently(stream);
                return Err(result(
                    CheckStatus::SockErr,
                    start,
                    Some(strerror(&e)),
                    None,
                ));
            }
            Err(_) => {
                close_silently(stream);
                return Err(result(CheckStatus::L4Tout, start, None, None));
            }
        }
    }
    // a failed handshake drops the socket inside the connector: reset, as HAProxy closes
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    match tokio::time::timeout_at(deadline.into(), CheckStream::handshake(stream, tls)).await {
        Ok(Ok(t)) => Ok((t, None)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "check TLS handshake failed");
            Err(result(
                CheckStatus::L6Rsp,
                start,
                Some("SSL handshake failure".into()),
                None,
            ))
        }
        Err(_) => Err(result(CheckStatus::L6Tout, start, None, None)),
    }
}

/// Closes with a reset, as HAProxy does after a check, so thousands of checks per second leave
/// no TIME_WAIT sockets behind.
pub(super) fn close_silently(s: TcpStream) {
    let sock = socket2::SockRef::from(&s);
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(s);
}

/// An HTTP check; `first`: a PROXY protocol header sent with the request, in one write.
async fn http(
    s: &mut CheckStream,
    first: &[u8],
    h: &HttpCheck,
    deadline: Instant,
    start: Instant,
) -> CheckResult {
    let mut req = first.to_vec();
    req.extend_from_slice(http_request(h).as_bytes());
    match tokio::time::timeout_at(deadline.into(), s.write_all(&req)).await {
        Err(_) => return result(CheckStatus::L7Tout, start, None, None),
        Ok(Err(e)) => return result(CheckStatus::SockErr, start, Some(strerror(&e)), None),
        Ok(Ok(())) => {}
    }
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return status_line(&buf[..end], h, start);
        }
        if buf.len() >= MAX_HEAD {
            return status_line(&buf, h, start);
        }
        match tokio::time::timeout_at(deadline.into(), s.read(&mut chunk)).await {
            Err(_) => return result(CheckStatus::L7Tout, start, None, None),
            Ok(Err(e)) => return result(CheckStatus::SockErr, start, Some(strerror(&e)), None),
            Ok(Ok(0)) => {
                if buf.is_empty() {
                    // Closed without a byte: HAProxy reports an empty HTX message as L7RSP.
                    return result(CheckStatus::L7Rsp, start, None, None);
                }
                let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
                return status_line(&buf[..end], h, start);
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The request `option httpchk` sends: request line, headers (`Host` only with HTTP/1.1), blank
/// line.
pub(crate) fn http_request(h: &HttpCheck) -> String {
    let mut req = format!("{} {} {}\r\n", h.method, h.uri, h.version);
    let http11 = h.version.eq_ignore_ascii_case("HTTP/1.1");
    for (name, value) in &h.headers {
        if name.eq_ignore_ascii_case("host") && !http11 {
            continue;
        }
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// Judges an HTTP status line: L7OK for 2xx/3xx (or the expected status), L7STS with the code
/// and the reason phrase otherwise, L7RSP (no info) when it is not HTTP.
fn status_line(line: &[u8], h: &HttpCheck, start: Instant) -> CheckResult {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    let Some((code, reason)) = parse_status_line(text) else {
        return result(CheckStatus::L7Rsp, start, None, None);
    };
    let passed = match h.expect_status {
        Some(want) => code == want,
        None => (200..400).contains(&code),
    };
    let status = if passed {
        CheckStatus::L7Ok
    } else {
        CheckStatus::L7Sts
    };
    // HAProxy 2.2+ (`tcpcheck_eval_expect_http`): a failed status reports the reason phrase, a
    // pass reports nothing but the code.
    let info = (!passed && !reason.is_empty()).then(|| reason.to_string());
    result(status, start, info, Some(code as i32))
}

/// `HTTP/1.x NNN reason` → `(NNN, reason)`.
pub(crate) fn parse_status_line(line: &str) -> Option<(u16, &str)> {
    let rest = line.strip_prefix("HTTP/")?;
    let (version, rest) = rest.split_once(' ')?;
    let mut v = version.split('.');
    let (major, minor) = (v.next()?, v.next()?);
    if v.next().is_some()
        || major.len() != 1
        || minor.len() != 1
        || !major
            .bytes()
            .chain(minor.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let code_text = rest.get(..3)?;
    if !code_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let after = &rest[3..];
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    let code: u16 = code_text.parse().ok()?;
    if !(100..=999).contains(&code) {
        return None;
    }
    Some((code, after.trim()))
}

pub(super) fn result(
    status: CheckStatus,
    start: Instant,
    info: Option<String>,
    code: Option<i32>,
) -> CheckResult {
    CheckResult {
        status,
        duration_ms: start.elapsed().as_millis() as i64,
        info,
        code,
        agent: false,
    }
}

/// `strerror(errno)` as HAProxy prints it (`Connection refused`), without Rust's
/// ` (os error N)` suffix.
pub(super) fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK"), Some((200, "OK")));
        assert_eq!(parse_status_line("HTTP/1.0 503"), Some((503, "")));
        assert_eq!(
            parse_status_line("HTTP/1.1 404 Not Found"),
            Some((404, "Not Found"))
        );
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line("HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status_line("HTTP/x.1 200 OK"), None);
        assert_eq!(parse_status_line(""), None);
    }

    #[test]
    fn request_drops_host_on_http10() {
        let mut h = HttpCheck {
            method: "GET".into(),
            uri: "/health".into(),
            version: "HTTP/1.0".into(),
            headers: vec![("Host".into(), "example".into())],
            expect_status: None,
        };
        assert_eq!(http_request(&h), "GET /health HTTP/1.0\r\n\r\n");
        h.version = "HTTP/1.1".into();
        assert_eq!(
            http_request(&h),
            "GET /health HTTP/1.1\r\nHost: example\r\n\r\n"
        );
    }

    #[test]
    fn strerror_strips_os_error() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(strerror(&e), "Connection refused");
    }
}
