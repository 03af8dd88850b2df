//! The line HAProxy logs for a connection that never became a session, sent to the proxy's
//! `log` targets (session lines are [`crate::rules::logformat`]'s)
//! ([`crate::logging::targets`]; a syslog target never blocks a worker).

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::logging::targets::{civil_local, MONTHS};

/// `ip:port` as HAProxy writes an address in its logs (no brackets around IPv6; an
/// IPv4-mapped one as `::ffff:a.b.c.d`, as inet_ntop writes it).
pub(crate) fn addr(a: SocketAddr) -> String {
    format!("{}:{}", a.ip(), a.port())
}

/// `ip:port [date]`, the start of every line about a client connection.
fn client_and_date(client: SocketAddr, accepted: SystemTime) -> String {
    // local time, as HAProxy's `%t`
    let ((y, mo, d, h, mi, s, ms), _) = civil_local(accepted);
    format!(
        "{} [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02}.{ms:03}]",
        addr(client),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frames_a_line_as_haproxy() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        // dates are local time: these are UTC's (CI's zone)
        if crate::logging::targets::utc_offset(t) != 0 {
            return;
        }
        assert_eq!(
            embryonic("127.0.0.1:40000".parse().unwrap(), t, "fe", "b1", "why"),
            "127.0.0.1:40000 [14/Nov/2023:22:13:20.123] fe/b1: why"
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
