//! HAProxy `option tcplog` lines, sent to the proxy's `log` targets
//! ([`crate::logging::targets`]; a syslog target never blocks a worker).

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::logging::targets::{civil, MONTHS};

/// The fields of one tcplog line, in HAProxy's order.
#[derive(Debug, Clone)]
pub(crate) struct TcpLog<'a> {
    /// Client address (`%ci:%cp`).
    pub client: SocketAddr,
    /// Accept time (`%t`).
    pub accepted: SystemTime,
    /// Frontend (`%ft`).
    pub frontend: &'a str,
    /// Backend (`%b`).
    pub backend: &'a str,
    /// Server, `<NOSRV>` when none (`%s`).
    pub server: &'a str,
    /// Queue ms (`%Tw`), -1 if never queued to completion.
    pub tw: i64,
    /// Connect ms (`%Tc`), -1 if no connection.
    pub tc: i64,
    /// Total ms (`%Tt`).
    pub tt: i64,
    /// Bytes to the client (`%B`).
    pub bytes: u64,
    /// Termination state (`%ts`).
    pub ts: [u8; 2],
    /// `%ac/%fc/%bc/%sc/%rc`.
    pub conns: [u64; 4],
    /// Retries (`%rc`), `+` prefixed after a redispatch.
    pub retries: u32,
    /// Redispatched.
    pub redispatched: bool,
    /// `%sq/%bq`: the session's positions in the server and backend queues (0 when it did
    /// not wait there).
    pub queues: [u64; 2],
}

/// `ip:port [date]`, the start of every line about a client connection.
fn client_and_date(client: SocketAddr, accepted: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(accepted);
    let ip = match client {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => a.ip().to_string(),
        },
    };
    format!(
        "{ip}:{} [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02}.{ms:03}]",
        client.port(),
        MONTHS[mo - 1]
    )
}

/// The line HAProxy logs for a connection that died before it became a session (a missing or
/// broken PROXY protocol header): `<client> [<date>] <frontend>/<bind>: <why>`.
pub(crate) fn embryonic(
    client: SocketAddr,
    accepted: SystemTime,
    frontend: &str,
    bind: &str,
    why: &str,
) -> String {
    format!(
        "{} {frontend}/{bind}: {why}",
        client_and_date(client, accepted)
    )
}

impl TcpLog<'_> {
    /// The line without syslog header, as HAProxy's `tcplog` format prints it.
    pub(crate) fn render(&self) -> String {
        format!(
            "{} {} {}/{} {}/{}/{} {} {} {}/{}/{}/{}/{}{} {}/{}",
            client_and_date(self.client, self.accepted),
            self.frontend,
            self.backend,
            self.server,
            self.tw,
            self.tc,
            self.tt,
            self.bytes,
            String::from_utf8_lossy(&self.ts),
            self.conns[0],
            self.conns[1],
            self.conns[2],
            self.conns[3],
            if self.redispatched { "+" } else { "" },
            self.retries,
            self.queues[0],
            self.queues[1],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_haproxy_tcplog() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let l = TcpLog {
            client: "127.0.0.1:40000".parse().unwrap(),
            accepted: t,
            frontend: "fe",
            backend: "be",
            server: "s1",
            tw: 0,
            tc: 1,
            tt: 25,
            bytes: 1234,
            ts: *b"--",
            conns: [1, 1, 1, 1],
            retries: 0,
            redispatched: false,
            queues: [0, 0],
        };
        assert_eq!(
            l.render(),
            "127.0.0.1:40000 [14/Nov/2023:22:13:20.123] fe be/s1 0/1/25 1234 -- 1/1/1/1/0 0/0"
        );
        assert!(crate::logging::targets::frame(
            crate::config::LogFormat::Rfc3164,
            "local0",
            crate::logging::targets::INFO,
            "harp",
            t,
            "x"
        )
        .starts_with("<134>Nov 14 22:13:20 harp["));
    }
}
