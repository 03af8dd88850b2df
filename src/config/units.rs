//! Time, size, number, port and address parsing with HAProxy's rules and limits.
//!
//! Every function returns the bare message on error; the caller adds `parsing [file:line]`.

use super::Address;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// HAProxy keeps timers as signed 32-bit milliseconds: anything longer is a "timer overflow".
pub const MAX_TIMER_MS: u64 = i32::MAX as u64;

/// Parses a time such as `5s`, `300ms`, `100us`, `2m`, `1h`, `1d`; a bare number is
/// milliseconds. `kw` names the directive for the message. Like HAProxy, values are kept in
/// milliseconds (microseconds round up), a non-zero value that rounds to 0 is an underflow and
/// values above 2147483647 ms (~24.8 days) overflow.
pub fn parse_time(text: &str, kw: &str) -> Result<Duration, String> {
    // HAProxy's wording, plus the argument and what is expected.
    let bad = |c: char| {
        format!(
            "unexpected character '{c}' in '{kw}' (argument '{text}'; expects a positive time such as 5s or 300ms, units us, ms, s, m, h, d)"
        )
    };
    let digits = text.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err(match text.chars().next() {
            None => format!("'{kw}' expects a time value (e.g. 5s)"),
            Some(c) => bad(c),
        });
    }
    let unit = &text[digits..];
    let value: u64 = text[..digits].parse().unwrap_or(u64::MAX);
    // (multiplier, divisor) to milliseconds.
    let (mul, div): (u64, u64) = match unit {
        "" | "ms" => (1, 1),
        "us" => (1, 1000),
        "s" => (1000, 1),
        "m" => (60_000, 1),
        "h" => (3_600_000, 1),
        "d" => (86_400_000, 1),
        _ => {
            // Point at the first character that cannot continue a valid unit.
            let valid = ["ms", "us", "s", "m", "h", "d"];
            let pos = (1..=unit.len())
                .take_while(|&n| {
                    unit.is_char_boundary(n) && valid.iter().any(|v| v.starts_with(&unit[..n]))
                })
                .last()
                .unwrap_or(0);
            return Err(bad(unit[pos..].chars().next().unwrap_or(' ')));
        }
    };
    let ms = value
        .checked_mul(mul)
        .map(|v| v.div_ceil(div))
        .unwrap_or(u64::MAX);
    if ms > MAX_TIMER_MS {
        return Err(format!(
            "timer overflow in argument '{text}' to '{kw}' (maximum value is 2147483647 ms or ~24.8 days)"
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// Parses a size with an optional `k`, `m` or `g` suffix (powers of 1024, as HAProxy).
pub fn parse_size(text: &str, kw: &str) -> Result<u64, String> {
    let digits = text.chars().take_while(|c| c.is_ascii_digit()).count();
    let bad = || format!("'{kw}' expects a size such as 16384, 16k, 1m or 1g, got '{text}'");
    if digits == 0 {
        return Err(bad());
    }
    let value: u64 = text[..digits].parse().map_err(|_| bad())?;
    let mul: u64 = match text[digits..].to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(bad()),
    };
    value.checked_mul(mul).ok_or_else(bad)
}

/// Parses an unsigned integer in `min..=max`.
pub fn parse_u32(text: &str, kw: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u64>() {
        Ok(v) if v >= u64::from(min) && v <= u64::from(max) => Ok(v as u32),
        Ok(_) => Err(format!(
            "'{kw}' expects an integer between {min} and {max}, got '{text}'"
        )),
        Err(_) => Err(format!("'{kw}' expects an integer argument, got '{text}'")),
    }
}

/// Parses a port number 1..=65535.
pub fn parse_port(text: &str, kw: &str) -> Result<u16, String> {
    match text.parse::<u64>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Ok(_) => Err(format!(
            "invalid port '{text}' for '{kw}' (must be between 1 and 65535)"
        )),
        Err(_) => Err(format!("invalid port '{text}' for '{kw}'")),
    }
}

/// Which address families an `ipv4@`/`ipv6@` prefix allows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Any,
    V4,
    V6,
}

/// Strips a known prefix. `unix@` returns the path; `abns@`, `fd@`, `sockpair@` and `udp@` are
/// HAProxy families harp does not support.
fn strip_prefix<'a>(text: &'a str, kw: &str) -> Result<(Family, Option<&'a str>, &'a str), String> {
    if let Some(rest) = text.strip_prefix("ipv4@") {
        return Ok((Family::V4, None, rest));
    }
    if let Some(rest) = text.strip_prefix("ipv6@") {
        return Ok((Family::V6, None, rest));
    }
    if let Some(rest) = text.strip_prefix("unix@") {
        return Ok((Family::Any, Some(rest), rest));
    }
    for (p, family) in [
        ("tcp@", Family::Any),
        ("tcp4@", Family::V4),
        ("tcp6@", Family::V6),
    ] {
        if let Some(rest) = text.strip_prefix(p) {
            return Ok((family, None, rest));
        }
    }
    for p in [
        "abns@",
        "abnsz@",
        "fd@",
        "sockpair@",
        "udp@",
        "udp4@",
        "udp6@",
        "quic4@",
        "quic6@",
        "uxst@",
        "uxdg@",
    ] {
        if text.starts_with(p) {
            return Err(format!(
                "address family '{p}' in '{text}' for '{kw}' is not supported by harp"
            ));
        }
    }
    if text.starts_with('/') {
        return Ok((Family::Any, Some(text), text));
    }
    Ok((Family::Any, None, text))
}

/// Splits `host:port` at the last colon (`[v6]:port` and bare `v6:port` both work, as in
/// HAProxy). Returns the host part (brackets removed) and the port part, if any.
fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &rest[..end];
            let after = &rest[end + 1..];
            return (host, after.strip_prefix(':'));
        }
    }
    // As HAProxy: the last colon always separates the port, so `::1:80` is `[::1]:80`.
    match text.rfind(':') {
        Some(pos) => (&text[..pos], Some(&text[pos + 1..])),
        None => (text, None),
    }
}

fn resolve_host(host: &str, family: Family, text: &str, kw: &str) -> Result<IpAddr, String> {
    if host.is_empty() || host == "*" {
        return Ok(match family {
            Family::V6 => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        });
    }
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            // A host name, resolved once at parse time as HAProxy does with libc.
            let addrs: Vec<SocketAddr> = (host, 0)
                .to_socket_addrs()
                .map_err(|_| format!("could not resolve address '{host}' in '{text}' for '{kw}'"))?
                .collect();
            let pick = addrs
                .iter()
                .find(|a| family != Family::V6 && a.is_ipv4())
                .or_else(|| addrs.iter().find(|a| family != Family::V4 && a.is_ipv6()))
                .ok_or_else(|| {
                    format!("could not resolve address '{host}' in '{text}' for '{kw}'")
                })?;
            pick.ip()
        }
    };
    match (family, ip) {
        (Family::V4, IpAddr::V6(_)) => Err(format!("'{text}' for '{kw}' is not an IPv4 address")),
        (Family::V6, IpAddr::V4(_)) => Err(format!("'{text}' for '{kw}' is not an IPv6 address")),
        _ => Ok(ip),
    }
}

/// A server address as written: its host part (a name or an IP literal, unresolved) and its
/// port, checked as [`parse_socket_addr`] checks them.
pub fn server_host_port(text: &str, kw: &str) -> Result<(String, u16), String> {
    host_port(text, kw).map(|(_, host, port)| (host.to_string(), port))
}

/// The family prefix, host part and port of a TCP `addr:port`, each checked.
fn host_port<'a>(text: &'a str, kw: &str) -> Result<(Family, &'a str, u16), String> {
    let (family, unix, rest) = strip_prefix(text, kw)?;
    if unix.is_some() {
        return Err(format!(
            "unix socket '{text}' is not supported for '{kw}' (needs an address:port)"
        ));
    }
    if rest.is_empty() {
        return Err(format!("missing address in '{text}' for '{kw}'"));
    }
    let (host, port) = split_host_port(rest);
    let Some(port) = port else {
        return Err(format!(
            "missing port in '{text}' for '{kw}' (expects <address>:<port>)"
        ));
    };
    if port.contains('-') {
        return Err(format!(
            "port ranges ('{port}') are not supported by harp in '{text}' for '{kw}'"
        ));
    }
    match port.parse::<u64>() {
        Ok(p) if (1..=65535).contains(&p) => Ok((family, host, p as u16)),
        Ok(_) => Err(format!(
            "invalid port '{port}' in '{text}' for '{kw}' (must be between 1 and 65535)"
        )),
        Err(_) => Err(format!("invalid port '{port}' in '{text}' for '{kw}'")),
    }
}

/// Parses `source <addr>[:<port>] [interface <name>]` (proxy or server keyword), starting at
/// the address: the source and how many words it took. `usesrc` (transparent proxying) is
/// refused.
pub fn parse_source(
    words: &[String],
    kw: &str,
) -> Result<(crate::config::SourceAddr, usize), String> {
    let Some(text) = words.first() else {
        return Err(format!("'{kw}' expects <addr>[:<port>] as argument."));
    };
    let (family, unix, rest) = strip_prefix(text, kw)?;
    if unix.is_some() || rest.is_empty() {
        return Err(format!(
            "'{kw}' expects <addr>[:<port>] as argument, got '{text}'."
        ));
    }
    let (host, port) = split_host_port(rest);
    let port = match port {
        None | Some("") => 0,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port '{p}' in '{text}' for '{kw}'"))?,
    };
    let ip = resolve_host(host, family, text, kw)?;
    let mut src = crate::config::SourceAddr {
        addr: SocketAddr::new(ip, port),
        interface: None,
    };
    let mut used = 1;
    while let Some(w) = words.get(used) {
        match w.as_str() {
            "interface" => {
                let name = words
                    .get(used + 1)
                    .ok_or_else(|| format!("'{kw}' : 'interface' expects an interface name."))?;
                src.interface = Some(name.clone());
                used += 2;
            }
            "usesrc" => {
                return Err(format!(
                    "'{kw} ... usesrc' is not supported by harp (it needs transparent proxying)."
                ))
            }
            _ => break,
        }
    }
    Ok((src, used))
}

/// Parses a TCP `addr:port` (with an optional `ipv4@`/`ipv6@` prefix; `*:port` and `:port` mean
/// all IPv4 addresses). `port_required`: a `bind`, `server` or `mailer` needs one.
pub fn parse_socket_addr(text: &str, kw: &str) -> Result<SocketAddr, String> {
    let (family, host, port) = host_port(text, kw)?;
    let ip = resolve_host(host, family, text, kw)?;
    Ok(SocketAddr::new(ip, port))
}

/// Parses a listening or logging address that may also be a unix socket path (`unix@/path` or
/// `/path`).
pub fn parse_address(text: &str, kw: &str) -> Result<Address, String> {
    let (_, unix, _) = strip_prefix(text, kw)?;
    if let Some(path) = unix {
        if path.is_empty() {
            return Err(format!("missing path in '{text}' for '{kw}'"));
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    parse_socket_addr(text, kw).map(Address::Tcp)
}

/// Parses an IP address without a port (`addr` server keyword).
pub fn parse_ip(text: &str, kw: &str) -> Result<IpAddr, String> {
    let (family, unix, rest) = strip_prefix(text, kw)?;
    if unix.is_some() {
        return Err(format!("'{kw}' expects an IP address, got '{text}'"));
    }
    resolve_host(rest, family, text, kw)
}

/// Parses `on|off` style booleans.
pub fn parse_on_off(text: &str, kw: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("'{kw}' expects 'on' or 'off', got '{text}'")),
    }
}

/// C's `strtoul(text, &end, 0)` where the whole text must be read (HAProxy's `rate-limit`):
/// decimal, `0x` hex or `0` octal; the value (saturated to 32 bits), or the first character
/// left unread.
pub fn parse_c_ulong(text: &str) -> Result<u32, char> {
    let t = text.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // "0x" needs a hex digit after it; "0x" alone reads as 0 followed by the 'x'
    let hex = (t.starts_with("0x") || t.starts_with("0X"))
        && t[2..].starts_with(|c: char| c.is_ascii_hexdigit());
    let (radix, start) = if hex {
        (16, 2)
    } else if t.starts_with('0') {
        (8, 0)
    } else {
        (10, 0)
    };
    let digits = &t[start..];
    let n = digits.chars().take_while(|c| c.is_digit(radix)).count();
    if n == 0 {
        // nothing read: C points at the very start (an empty text reads as 0)
        return match text.chars().next() {
            Some(c) => Err(c),
            None => Ok(0),
        };
    }
    let rest = &digits[n..];
    if let Some(c) = rest.chars().next() {
        return Err(c);
    }
    // C's unsigned long (saturated), negated modulo 2^64 for a '-', then kept in HAProxy's
    // unsigned int: "4294967296" reads 0 there, "-5" 4294967291
    let v = u64::from_str_radix(&digits[..n], radix).unwrap_or(u64::MAX);
    Ok(if neg { v.wrapping_neg() } else { v } as u32)
}

/// C's `atol` kept in 32 bits, as HAProxy stores `maxconnrate`: leading blanks, a sign, the
/// digits up to the first other byte (none: 0), wrapped to an unsigned int.
pub fn c_atol_u32(text: &str) -> u32 {
    let t = text.trim_start();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = body.bytes().take_while(u8::is_ascii_digit).count();
    let v: i64 = body[..n]
        .parse()
        .unwrap_or(if n == 0 { 0 } else { i64::MAX });
    (if neg { v.wrapping_neg() } else { v }) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_ulong_reads_like_strtoul() {
        assert_eq!(parse_c_ulong("100"), Ok(100));
        assert_eq!(parse_c_ulong("0x10"), Ok(16));
        assert_eq!(parse_c_ulong("010"), Ok(8));
        assert_eq!(parse_c_ulong("0"), Ok(0));
        assert_eq!(parse_c_ulong("10k"), Err('k'));
        assert_eq!(parse_c_ulong("0x"), Err('x'));
        assert_eq!(parse_c_ulong("09"), Err('9'));
        assert_eq!(parse_c_ulong("+"), Err('+'));
        assert_eq!(parse_c_ulong("4294967296"), Ok(0));
        assert_eq!(parse_c_ulong("-5"), Ok(4294967291));
        assert_eq!(c_atol_u32("10k"), 10);
        assert_eq!(c_atol_u32("abc"), 0);
        assert_eq!(c_atol_u32("-1"), u32::MAX);
    }

    fn t(s: &str) -> Result<u128, String> {
        parse_time(s, "timeout client").map(|d| d.as_millis())
    }

    #[test]
    fn times() {
        assert_eq!(t("5000"), Ok(5000));
        assert_eq!(t("5s"), Ok(5000));
        assert_eq!(t("300ms"), Ok(300));
        assert_eq!(t("1500us"), Ok(2));
        assert_eq!(t("2m"), Ok(120_000));
        assert_eq!(t("1h"), Ok(3_600_000));
        assert_eq!(t("1d"), Ok(86_400_000));
        assert_eq!(t("0"), Ok(0));
        assert_eq!(t("24d"), Ok(24 * 86_400_000));
        assert!(t("25d").unwrap_err().contains("timer overflow"));
        assert!(t("2147483648").unwrap_err().contains("timer overflow"));
        assert_eq!(t("2147483647"), Ok(2147483647));
        assert!(t("99999999999999999999999d")
            .unwrap_err()
            .contains("timer overflow"));
        assert!(t("-1s")
            .unwrap_err()
            .starts_with("unexpected character '-' in 'timeout client'"));
        assert!(t("5x")
            .unwrap_err()
            .starts_with("unexpected character 'x' in 'timeout client'"));
        assert!(t("5sx")
            .unwrap_err()
            .starts_with("unexpected character 'x'"));
        assert!(t("5mz")
            .unwrap_err()
            .starts_with("unexpected character 'z'"));
        assert!(t("").is_err());
        assert!(t("s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384", "k"), Ok(16384));
        assert_eq!(parse_size("16k", "k"), Ok(16384));
        assert_eq!(parse_size("2m", "k"), Ok(2 << 20));
        assert_eq!(parse_size("1g", "k"), Ok(1 << 30));
        assert!(parse_size("1t", "k").is_err());
        assert!(parse_size("x", "k").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("1", "bind"), Ok(1));
        assert_eq!(parse_port("65535", "bind"), Ok(65535));
        assert!(parse_port("0", "bind").is_err());
        assert!(parse_port("65536", "bind")
            .unwrap_err()
            .contains("between 1 and 65535"));
        assert!(parse_port("http", "bind").is_err());
    }

    #[test]
    fn socket_addrs() {
        let p = |s| parse_socket_addr(s, "bind");
        assert_eq!(p("127.0.0.1:80"), Ok("127.0.0.1:80".parse().unwrap()));
        assert_eq!(p(":80"), Ok("0.0.0.0:80".parse().unwrap()));
        assert_eq!(p("*:80"), Ok("0.0.0.0:80".parse().unwrap()));
        assert_eq!(
            p("ipv4@127.0.0.1:9999"),
            Ok("127.0.0.1:9999".parse().unwrap())
        );
        assert_eq!(p("ipv6@:::80"), Ok("[::]:80".parse().unwrap()));
        assert_eq!(p("ipv6@[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        assert_eq!(p("::1:80"), Ok("[::1]:80".parse().unwrap()));
        assert_eq!(p("localhost:80").map(|a| a.port()), Ok(80));
        assert!(p("127.0.0.1").unwrap_err().contains("missing port"));
        assert!(p("127.0.0.1:70000")
            .unwrap_err()
            .contains("between 1 and 65535"));
        assert!(p("ipv4@::1:80").is_err());
        assert!(p("ipv6@127.0.0.1:80").is_err());
        assert!(p("unix@/tmp/x").is_err());
        assert!(p("abns@foo").is_err());
        assert!(p("127.0.0.1:80-90").unwrap_err().contains("port ranges"));
        assert!(p("").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("unix@/run/h.sock", "stats socket"),
            Ok(Address::Unix("/run/h.sock".into()))
        );
        assert_eq!(
            parse_address("/run/h.sock", "stats socket"),
            Ok(Address::Unix("/run/h.sock".into()))
        );
        assert_eq!(
            parse_address("ipv4@127.0.0.1:9999", "stats socket"),
            Ok(Address::Tcp("127.0.0.1:9999".parse().unwrap()))
        );
        assert!(parse_address("unix@", "stats socket").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panic(s in "\\PC{0,40}") {
            let _ = parse_time(&s, "k");
            let _ = parse_size(&s, "k");
            let _ = parse_port(&s, "k");
            let _ = parse_u32(&s, "k", 0, 10);
        }

        #[test]
        fn addr_never_panics(s in "[\\[\\]:0-9a-f.@*uixpv46/]{0,30}") {
            let _ = parse_address(&s, "k");
            let _ = parse_ip(&s, "k");
        }
    }
}
