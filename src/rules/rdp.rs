//! The RDP cookie of a Remote Desktop client's first packet (an X.224 Connection Request
//! after its TPKT header: `Cookie: mstshash=<user>\r\n`), read as HAProxy's
//! `fetch_rdp_cookie_name` reads it: for `req.rdp_cookie`, `balance rdp-cookie` and
//! `persist rdp-cookie`, the classic TCP-mode setup in front of Windows terminal servers.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::hello::Hello;

/// The value of the cookie named `name` (any name when `None`) in `buf`, as HAProxy reads
/// it: 11 header bytes, `Cookie:` in any case, blanks, `name=`, the value up to `\r\n`.
pub fn cookie<'a>(buf: &'a [u8], name: Option<&str>) -> Hello<&'a [u8]> {
    // TPKT (4 bytes) and the X.224 Connection Request header (7 bytes)
    let Some(mut data) = buf.get(11..).filter(|d| !d.is_empty()) else {
        return Hello::Short;
    };
    if data.len() <= 7 {
        return Hello::Short;
    }
    if !data[..7].eq_ignore_ascii_case(b"Cookie:") {
        return Hello::Absent;
    }
    data = &data[7..];
    while let [b' ', rest @ ..] = data {
        data = rest;
    }
    match name {
        Some(k) => {
            let k = k.as_bytes();
            if data.len() <= k.len() {
                return Hello::Short;
            }
            if data[k.len()] != b'=' || !data[..k.len()].eq_ignore_ascii_case(k) {
                return Hello::Absent;
            }
            data = &data[k.len() + 1..];
        }
        None => {
            let Some(eq) = data.iter().position(|c| matches!(c, b'=' | b'\r' | b'\n')) else {
                return Hello::Short;
            };
            if data[eq] != b'=' {
                return Hello::Absent;
            }
            data = &data[eq + 1..];
        }
    }
    let Some(cr) = data.iter().position(|c| *c == b'\r') else {
        return Hello::Short;
    };
    match data.get(cr + 1) {
        None => Hello::Short,
        Some(b'\n') => Hello::Found(&data[..cr]),
        Some(_) => Hello::Absent,
    }
}

/// The server a `msts` routing token names (`<addr>.<port>.<reserved>`: the IPv4 address
/// and the port as decimal numbers of their bytes in network order read little-endian),
/// as HAProxy's `persist rdp-cookie` decodes it.
pub fn msts_server(value: &[u8]) -> Option<SocketAddrV4> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.splitn(3, '.');
    let addr = leading_number(parts.next()?)?;
    let port = leading_number(parts.next()?)?;
    // the third part must exist (HAProxy wants the second dot), whatever it holds
    parts.next()?;
    let ip = Ipv4Addr::from((addr as u32).to_le_bytes());
    let port = (port as u16).swap_bytes();
    Some(SocketAddrV4::new(ip, port))
}

/// `strtoul`'s reading of a field that must be a number up to its end: blanks, a sign,
/// digits (none reads as 0), wrapping as `unsigned long` does.
fn leading_number(s: &str) -> Option<u64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v = digits.bytes().fold(0u64, |v, c| {
        v.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    });
    Some(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(cookie: &str) -> Vec<u8> {
        let mut p = vec![3, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0];
        p.extend_from_slice(cookie.as_bytes());
        p.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
        p
    }

    #[test]
    fn the_cookie_is_read_as_haproxy_reads_it() {
        let p = packet("Cookie: mstshash=alice\r\n");
        assert_eq!(cookie(&p, Some("mstshash")), Hello::Found(&b"alice"[..]));
        assert_eq!(cookie(&p, Some("MSTSHASH")), Hello::Found(&b"alice"[..]));
        assert_eq!(cookie(&p, None), Hello::Found(&b"alice"[..]));
        assert_eq!(cookie(&p, Some("msts")), Hello::Absent);
        // not all there yet
        assert_eq!(cookie(&p[..20], Some("mstshash")), Hello::Short);
        assert_eq!(cookie(&p[..5], None), Hello::Short);
        // another first packet
        assert_eq!(
            cookie(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
            Hello::Absent
        );
        assert_eq!(
            cookie(&packet("Cookie: mstshash=a\rb\r\n"), None),
            Hello::Absent
        );
    }

    #[test]
    fn a_routing_token_names_an_address_and_a_port() {
        // 10.0.0.1:3389, as a session broker writes it
        let a = u32::from_le_bytes([10, 0, 0, 1]);
        let p = 3389u16.swap_bytes();
        let token = format!("{a}.{p}.0000");
        assert_eq!(
            msts_server(token.as_bytes()),
            Some("10.0.0.1:3389".parse().unwrap())
        );
        assert_eq!(msts_server(b"16777226.15629"), None);
        assert_eq!(msts_server(b"x.15629.0000"), None);
        // strtoul's leniency: blanks and a sign before the number, nothing reads as 0
        assert_eq!(
            msts_server(format!(" +{a}.{p}.0000").as_bytes()),
            Some("10.0.0.1:3389".parse().unwrap())
        );
        assert_eq!(
            msts_server(format!(".{p}.0000").as_bytes()),
            Some("0.0.0.0:3389".parse().unwrap())
        );
    }
}
