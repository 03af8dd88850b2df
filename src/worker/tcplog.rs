//! HAProxy `option tcplog` lines, sent to the proxy's `log` targets without ever blocking a
//! worker (UDP and unix datagram sends are non-blocking; a full socket drops the line).

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::SystemTime;

use crate::config::{Address, LogTarget};

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

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1..12, day, h, m, s, ms) in UTC.
fn civil(t: SystemTime) -> (i64, usize, u32, u32, u32, u32, u32) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis(),
    )
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

fn facility_code(name: &str) -> u8 {
    const F: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
        "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
        "local5", "local6", "local7",
    ];
    F.iter().position(|f| *f == name).unwrap_or(16) as u8
}

/// The RFC3164 frame: `<prio>Mon dd hh:mm:ss harp[pid]: line`.
pub(crate) fn syslog_frame(facility: &str, now: SystemTime, line: &str) -> String {
    let (_, mo, d, h, mi, s, _) = civil(now);
    let prio = facility_code(facility) as u32 * 8 + 6;
    format!(
        "<{prio}>{} {:>2} {:02}:{:02}:{:02} harp[{}]: {}",
        MONTHS[mo - 1],
        d,
        h,
        mi,
        s,
        std::process::id(),
        line
    )
}

/// A worker's log sockets, opened lazily and non-blocking.
#[derive(Default)]
pub(crate) struct LogSockets {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    unix: Option<UnixDatagram>,
}

impl LogSockets {
    fn udp(&mut self, v6: bool) -> Option<&UdpSocket> {
        let slot = if v6 { &mut self.v6 } else { &mut self.v4 };
        if slot.is_none() {
            let bind = if v6 { "[::]:0" } else { "0.0.0.0:0" };
            let s = UdpSocket::bind(bind).ok()?;
            s.set_nonblocking(true).ok()?;
            *slot = Some(s);
        }
        slot.as_ref()
    }

    /// Sends `line` to every target; errors (including EAGAIN) drop the line.
    pub(crate) fn send(&mut self, targets: &[&LogTarget], line: &str) {
        for t in targets {
            match t {
                LogTarget::Stdout => {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
                LogTarget::Stderr => {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
                LogTarget::Syslog { addr, facility, .. } => {
                    let frame = syslog_frame(facility, SystemTime::now(), line);
                    match addr {
                        Address::Tcp(a) => {
                            if let Some(s) = self.udp(a.is_ipv6()) {
                                let _ = s.send_to(frame.as_bytes(), a);
                            }
                        }
                        Address::Unix(p) => {
                            if self.unix.is_none() {
                                self.unix = UnixDatagram::unbound().ok();
                                if let Some(u) = &self.unix {
                                    let _ = u.set_nonblocking(true);
                                }
                            }
                            if let Some(u) = &self.unix {
                                let _ = u.send_to(frame.as_bytes(), p);
                            }
                        }
                    }
                }
                LogTarget::Global => {}
            }
        }
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
        assert!(syslog_frame("local0", t, "x").starts_with("<134>Nov 14 22:13:20 harp["));
    }
}
