//! The statistics page of a `mode http` proxy with `stats enable` (HAProxy's `listen stats`
//! section): the same counters as `show stat`, as CSV when the URI carries `;csv` (what
//! monitoring exporters scrape), else as an HTML table; HTTP basic authentication with `stats
//! auth`. Served by the admin thread, one connection per request, read-only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::parse::Format;
use super::render::{show_stat, StatOptions};
use super::AdminError;
use crate::config::{ProxyMode, StatsPage};
use crate::model::Registry;

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Most requests served at once per page (HAProxy's stats frontend defaults to a small
/// `maxconn` too): more wait in the backlog.
const MAX_CONNS: usize = 64;

/// How long a request head may take (a stats client sends it at once; a slow one is dropped).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// One bound statistics page listener.
#[derive(Debug)]
pub struct PageListener {
    listener: std::net::TcpListener,
    page: StatsPage,
    /// The proxy it serves: `disable|enable|shutdown frontend` act on it as on any frontend.
    proxy: Arc<crate::model::Proxy>,
    /// `timeout client` of the proxy, at most [`HEAD_TIMEOUT`]: how long a request may take.
    timeout: Duration,
}

impl PageListener {
    /// Where it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// Binds every `bind` of the proxies that serve a statistics page.
pub fn bind_pages(reg: &Registry) -> Result<Vec<PageListener>, AdminError> {
    let mut out = Vec::new();
    for p in reg.proxies().iter() {
        let c = &p.config;
        let Some(page) = c.stats.as_ref().filter(|_| c.mode == ProxyMode::Http) else {
            continue;
        };
        if c.disabled {
            continue;
        }
        for b in &c.binds {
            let err = |e| AdminError::Bind {
                addr: b.addr.to_string(),
                source: e,
            };
            let sock = socket2::Socket::new(
                socket2::Domain::for_address(b.addr),
                socket2::Type::STREAM,
                None,
            )
            .map_err(err)?;
            sock.set_reuse_address(true).map_err(err)?;
            sock.bind(&b.addr.into()).map_err(err)?;
            sock.listen(128).map_err(err)?;
            sock.set_nonblocking(true).map_err(err)?;
            // the frontend keeps a handle, so pausing or stopping it acts on this socket
            let dup = sock.try_clone().map_err(err)?;
            let bound = sock
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .unwrap_or(b.addr);
            p.add_listener(dup.into(), bound, b.addr.port() == 0, 128);
            out.push(PageListener {
                listener: sock.into(),
                page: page.clone(),
                proxy: p.clone(),
                timeout: c.timeouts.client.unwrap_or(HEAD_TIMEOUT).min(HEAD_TIMEOUT),
            });
        }
    }
    Ok(out)
}

/// Serves the pages until `stop` turns true.
pub async fn serve_all(
    pages: Vec<PageListener>,
    reg: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let mut loops = tokio::task::JoinSet::new();
    for p in pages {
        let reg = reg.clone();
        match tokio::net::TcpListener::from_std(p.listener) {
            Ok(l) => {
                loops.spawn(accept_loop(l, p.page, p.timeout, p.proxy, reg));
            }
            Err(e) => tracing::error!(error = %e, "stats page: cannot register listener"),
        }
    }
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    loops.abort_all();
}

async fn accept_loop(
    l: tokio::net::TcpListener,
    page: StatsPage,
    timeout: Duration,
    proxy: Arc<crate::model::Proxy>,
    reg: Arc<Registry>,
) {
    let page = Arc::new(page);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Ok((s, _)) = l.accept().await else {
            // a stopped frontend closed its socket for good; a paused one listens again later
            if proxy.stopped.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (page, reg) = (page.clone(), reg.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(timeout, serve_one(s, &page, &reg)).await;
            drop(permit);
        });
    }
}

/// Reads one request head and answers it; the connection closes after the answer.
async fn serve_one(
    mut s: tokio::net::TcpStream,
    page: &StatsPage,
    reg: &Registry,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let ended = |h: &[u8], from: usize| {
        // only the bytes around the new ones can complete the blank line
        let from = from.saturating_sub(3);
        h[from..].windows(4).any(|w| w == b"\r\n\r\n") || h[from..].windows(2).any(|w| w == b"\n\n")
    };
    let mut scanned = 0;
    while !ended(&head, scanned) {
        scanned = head.len();
        if head.len() >= MAX_HEAD {
            return s
                .write_all(&simple(
                    400,
                    "Bad request",
                    "Your browser (or proxy) sent a request that this server could not understand.",
                ))
                .await;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let reply = answer(&text, page, reg);
    s.write_all(&reply).await?;
    s.shutdown().await
}

/// The whole response to a request head.
pub(crate) fn answer(head: &str, page: &StatsPage, reg: &Registry) -> Vec<u8> {
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (Some(method), Some(uri)) = (first.next(), first.next()) else {
        return simple(
            400,
            "Bad request",
            "Your browser (or proxy) sent a request that this server could not understand.",
        );
    };
    let Some(rest) = uri.strip_prefix(page.uri.as_str()) else {
        return simple(
            503,
            "Service Unavailable",
            "No server is available to handle this request.",
        );
    };
    if !page.auth.is_empty() && !authorized(lines, page) {
        let body = "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n";
        return format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nwww-authenticate: Basic realm=\"{}\"\r\nconnection: close\r\n\r\n{body}",
            body.len(),
            page.realm
        )
        .into_bytes();
    }
    if !matches!(method, "GET" | "HEAD") {
        return simple(
            405,
            "Method Not Allowed",
            "A request was made of a resource using a request method not supported by that resource",
        );
    }
    let opts: Vec<&str> = rest.split(';').skip(1).collect();
    let o = StatOptions {
        filter: None,
        format: if opts.contains(&"json") {
            Format::Json
        } else {
            Format::Plain
        },
        up: opts.contains(&"up"),
        no_maint: false,
    };
    let stat = match show_stat(reg, &o) {
        Ok(s) => s,
        Err(e) => return simple(500, "Internal Server Error", &e),
    };
    let (ctype, body) = if opts.contains(&"csv") {
        ("text/plain", scoped_csv(&stat, &page.scope))
    } else if opts.contains(&"json") {
        ("application/json", stat)
    } else {
        let refresh = page.refresh.filter(|_| !opts.contains(&"norefresh"));
        (
            "text/html",
            html(&scoped_csv(&stat, &page.scope), page, refresh),
        )
    };
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncache-control: no-cache\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method == "GET" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// HAProxy's canned error pages.
fn simple(code: u16, reason: &str, text: &str) -> Vec<u8> {
    let body = format!("<html><body><h1>{code} {reason}</h1>\n{text}\n</body></html>\n");
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether an `Authorization: Basic` header names one of the `stats auth` users.
fn authorized<'a>(mut headers: impl Iterator<Item = &'a str>, page: &StatsPage) -> bool {
    let Some(cred) = headers.find_map(|h| {
        let (name, value) = h.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("authorization") {
            return None;
        }
        let (scheme, cred) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| cred.trim())
    }) else {
        return false;
    };
    let Some(decoded) = base64_decode(cred) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, pass)) = text.split_once(':') else {
        return false;
    };
    page.auth.iter().any(|(u, p)| u == user && p == pass)
}

/// Standard base64 (padding optional); `None` on any other character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

/// The CSV with only the proxies of `stats scope` (all when none); the header stays.
fn scoped_csv(csv: &str, scope: &[String]) -> String {
    if scope.is_empty() {
        return csv.to_string();
    }
    csv.lines()
        .filter(|l| {
            l.starts_with('#')
                || scope
                    .iter()
                    .any(|s| l.split(',').next() == Some(s.as_str()))
        })
        .flat_map(|l| [l, "\n"])
        .collect()
}

/// A plain HTML rendering of the CSV: one table, the CSV's columns.
fn html(csv: &str, page: &StatsPage, refresh: Option<Duration>) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut out = String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">");
    if let Some(r) = refresh {
        out.push_str(&format!(
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            r.as_secs().max(1)
        ));
    }
    let title = if page.hide_version {
        "Statistics Report for harp".to_string()
    } else {
        format!("Statistics Report for harp {}", env!("CARGO_PKG_VERSION"))
    };
    out.push_str(&format!(
        "<title>{title}</title><style>table{{border-collapse:collapse;font:12px sans-serif}}td,th{{border:1px solid #999;padding:2px 4px}}th{{background:#eee}}</style></head><body><h1>{title}</h1>\n<table>\n"
    ));
    for (i, line) in csv.lines().enumerate() {
        let line = line.strip_prefix("# ").unwrap_or(line);
        let tag = if i == 0 { "th" } else { "td" };
        out.push_str("<tr>");
        for cell in line.split(',') {
            out.push_str(&format!("<{tag}>{}</{tag}>", esc(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<p><a href=\"");
    out.push_str(&esc(&format!("{};csv", page.uri)));
    out.push_str("\">CSV export</a></p></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("YWRtaW46c2VjcmV0").unwrap(), b"admin:secret");
        assert_eq!(base64_decode("YTpi").unwrap(), b"a:b");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("YW*").is_none());
    }

    #[test]
    fn scope_keeps_the_header_and_the_named_proxies() {
        let csv = "# pxname,svname\nbe,s1\nother,s2\nbe,BACKEND\n";
        assert_eq!(
            scoped_csv(csv, &["be".to_string()]),
            "# pxname,svname\nbe,s1\nbe,BACKEND\n"
        );
    }
}
