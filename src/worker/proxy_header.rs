//! The PROXY protocol header a server with `send-proxy` or `send-proxy-v2` gets before the
//! client's first byte, so that it sees the client's address instead of harp's. Byte for byte
//! what HAProxy sends in TCP mode: no TLVs in v2, and an IPv4 address written as IPv4-mapped
//! IPv6 when the other one is IPv6.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::config::ProxyProtocol;

/// The v2 signature.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The header for a connection from `src` (the client) to `dst` (the address it connected to).
pub(crate) fn header(v: ProxyProtocol, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    match v {
        ProxyProtocol::V1 => v1(src, dst).into_bytes(),
        ProxyProtocol::V2 => v2(src, dst),
    }
}

/// Both addresses in one family: IPv4 if both are, else IPv6 (an IPv4 one mapped).
fn same_family(src: SocketAddr, dst: SocketAddr) -> (IpAddr, IpAddr) {
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (a.into(), b.into()),
        (a, b) => (v6(a).into(), v6(b).into()),
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn v1(src: SocketAddr, dst: SocketAddr) -> String {
    let (s, d) = same_family(src, dst);
    let fam = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    format!("PROXY {fam} {s} {d} {} {}\r\n", src.port(), dst.port())
}

fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = Vec::with_capacity(52);
    h.extend_from_slice(V2_SIG);
    // version 2, command PROXY
    h.push(0x21);
    match same_family(src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // TCP over IPv4
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
        (s, d) => {
            // TCP over IPv6
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(s).octets());
            h.extend_from_slice(&v6(d).octets());
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // the expected bytes are what HAProxy 2.6.12 sent to a server with `send-proxy` /
    // `send-proxy-v2` for the same connections

    #[test]
    fn v1_as_haproxy_writes_it() {
        let h = header(
            ProxyProtocol::V1,
            a("127.0.0.1:46104"),
            a("127.0.0.1:17100"),
        );
        assert_eq!(h, b"PROXY TCP4 127.0.0.1 127.0.0.1 46104 17100\r\n");
        let h = header(ProxyProtocol::V1, a("[::1]:37794"), a("[::1]:17100"));
        assert_eq!(h, b"PROXY TCP6 ::1 ::1 37794 17100\r\n");
    }

    #[test]
    fn v2_as_haproxy_writes_it() {
        let h = header(
            ProxyProtocol::V2,
            a("127.0.0.1:46108"),
            a("127.0.0.1:17100"),
        );
        assert_eq!(
            hex(&h),
            "0d0a0d0a000d0a515549540a2111000c7f0000017f000001b41c42cc"
        );
        let h = header(ProxyProtocol::V2, a("[::1]:37800"), a("[::1]:17100"));
        assert_eq!(
            hex(&h),
            "0d0a0d0a000d0a515549540a21210024\
             00000000000000000000000000000001\
             00000000000000000000000000000001\
             93a842cc"
        );
    }

    #[test]
    fn mixed_families_map_the_ipv4_address() {
        let h = header(ProxyProtocol::V1, a("10.0.0.1:1000"), a("[2001:db8::1]:80"));
        assert_eq!(h, b"PROXY TCP6 ::ffff:10.0.0.1 2001:db8::1 1000 80\r\n");
        let h = header(ProxyProtocol::V2, a("10.0.0.1:1000"), a("[2001:db8::1]:80"));
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[13..16], &[0x21, 0x00, 36]);
        assert_eq!(&h[16..32], &v6("10.0.0.1".parse().unwrap()).octets());
    }
}
