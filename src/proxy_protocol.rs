//! The PROXY protocol (HAProxy's `proxy-protocol.txt`), both ways. A server with `send-proxy` or
//! `send-proxy-v2` gets a header before the client's first byte, so that it sees the client's
//! address instead of harp's: byte for byte what HAProxy sends in TCP mode (in v2, the TLVs
//! `proxy-v2-options` asks for and the client's TLS gives; an IPv4 address written as
//! IPv4-mapped IPv6 when the other one is IPv6). A `bind` with
//! `accept-proxy` expects one from the load balancer in front and takes the client's address
//! from it ([`parse`]).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::config::ProxyProtocol;

/// The v2 signature.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The header a health check sends first to a server with `send-proxy(-v2)`, as HAProxy does:
/// v1 names the check's own connection (`local` to the server at `peer`), v2 is a `LOCAL`
/// header without addresses.
pub fn check_header(v: ProxyProtocol, local: SocketAddr, peer: SocketAddr) -> Vec<u8> {
    match v {
        ProxyProtocol::V1 => v1(local, peer).into_bytes(),
        ProxyProtocol::V2 => {
            let mut h = V2_SIG.to_vec();
            h.extend_from_slice(&[0x20, 0x00, 0, 0]);
            h
        }
    }
}

/// The header for a connection from `src` (the client) to `dst` (the address it connected to).
pub fn header(v: ProxyProtocol, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    header_with(v, src, dst, &Tlvs::default())
}

/// What a v2 header carries after the addresses (`proxy-v2-options`, the client's TLS).
#[derive(Debug, Default, Clone)]
pub struct Tlvs<'a> {
    /// The protocol the client's TLS negotiated by ALPN (`PP2_TYPE_ALPN`, sent whenever there
    /// is one, as HAProxy does).
    pub alpn: Option<&'a [u8]>,
    /// `authority`: the client's SNI (`PP2_TYPE_AUTHORITY`).
    pub authority: Option<&'a [u8]>,
    /// `unique-id`: the stream's unique id (`PP2_TYPE_UNIQUE_ID`; empty without a format).
    pub unique_id: Option<&'a [u8]>,
    /// `ssl` and its companions (`PP2_TYPE_SSL`).
    pub ssl: Option<SslTlv<'a>>,
}

/// The `PP2_TYPE_SSL` TLV: flags, the verify result and sub-TLVs. Present with `proxy-v2-options
/// ssl` even for a client in the clear (then only the flags, all zero).
#[derive(Debug, Default, Clone)]
pub struct SslTlv<'a> {
    /// The client connection is TLS: `PP2_CLIENT_SSL`, and its version (`PP2_SUBTYPE_SSL_VERSION`).
    pub version: Option<&'a str>,
    /// Its session has a client certificate (`PP2_CLIENT_CERT_SESS`, verify 0).
    pub cert: bool,
    /// ... shown on this connection, not a resumed session (`PP2_CLIENT_CERT_CONN`).
    pub cert_conn: bool,
    /// `cert-cn`: the certificate's common name (`PP2_SUBTYPE_SSL_CN`).
    pub cn: Option<&'a str>,
    /// `ssl-cipher`: the cipher, as OpenSSL names it (`PP2_SUBTYPE_SSL_CIPHER`).
    pub cipher: Option<&'a str>,
}

/// Appends one TLV.
fn tlv(out: &mut Vec<u8>, ty: u8, value: &[u8]) {
    // a TLV's length is 16 bits: what harp sends is far shorter
    let value = &value[..value.len().min(u16::MAX as usize - 3)];
    out.push(ty);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// [`header`], a v2 one carrying `tlvs` after the addresses, in HAProxy's order (ALPN,
/// authority, unique id, SSL), counted in the length. v1 carries none.
pub fn header_with(v: ProxyProtocol, src: SocketAddr, dst: SocketAddr, tlvs: &Tlvs<'_>) -> Vec<u8> {
    match v {
        ProxyProtocol::V1 => v1(src, dst).into_bytes(),
        ProxyProtocol::V2 => {
            let mut h = v2(src, dst);
            if let Some(a) = tlvs.alpn {
                tlv(&mut h, 0x01, a);
            }
            if let Some(a) = tlvs.authority {
                tlv(&mut h, 0x02, a);
            }
            if let Some(id) = tlvs.unique_id {
                tlv(&mut h, 0x05, id);
            }
            if let Some(ssl) = &tlvs.ssl {
                let mut client = 0u8;
                let mut sub = Vec::new();
                if let Some(version) = ssl.version {
                    client |= 0x01;
                    tlv(&mut sub, 0x21, version.as_bytes());
                    if ssl.cert {
                        client |= 0x04;
                        if ssl.cert_conn {
                            client |= 0x02;
                        }
                    }
                    if let Some(cn) = ssl.cn {
                        tlv(&mut sub, 0x22, cn.as_bytes());
                    }
                    if let Some(c) = ssl.cipher {
                        tlv(&mut sub, 0x23, c.as_bytes());
                    }
                }
                let mut value = vec![client];
                // the verify result: 0, as rustls ends a handshake whose certificate fails
                value.extend_from_slice(&0u32.to_be_bytes());
                value.extend_from_slice(&sub);
                tlv(&mut h, 0x20, &value);
            }
            let len = (h.len() - 16) as u16;
            h[14..16].copy_from_slice(&len.to_be_bytes());
            h
        }
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

/// HAProxy's words for a connection that is not a PROXY protocol one (its log says them).
pub const NOT_HDR: &str = "Received something which does not look like a PROXY protocol header";
/// ... for a broken header.
pub const BAD_HDR: &str = "Received an invalid PROXY protocol header";
/// ... for a v1 protocol other than TCP4, TCP6 and UNKNOWN.
pub const BAD_PROTO: &str = "Received an unhandled protocol in the PROXY protocol header";

/// The longest v1 line, CRLF included.
pub const V1_MAX: usize = 107;

/// The longest header of any version: v2's 16 bytes and the most its length field can say.
pub const MAX_LEN: usize = 16 + u16::MAX as usize;

/// What the start of a connection holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes yet to decide (a hint of how many; read more and parse again).
    Need(usize),
    /// A valid header of `len` bytes; `addrs`: the client's and the address it reached, or
    /// `None` when the header carries none (v1 `UNKNOWN`, v2 `LOCAL` or another family): the
    /// connection's own addresses stand.
    Header {
        len: usize,
        addrs: Option<(SocketAddr, SocketAddr)>,
    },
    /// Not a PROXY protocol header, or a broken one: HAProxy's log message.
    Invalid(&'static str),
}

/// Parses a PROXY protocol header, v1 or v2, at the start of `buf` (what a peek returned).
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.len() < 6 && (b"PROXY ".starts_with(buf) || V2_SIG.starts_with(buf)) {
        return Parsed::Need(16);
    }
    if buf.starts_with(b"PROXY ") {
        return parse_v1(buf);
    }
    if buf.len() < V2_SIG.len() {
        return if V2_SIG.starts_with(buf) {
            Parsed::Need(16)
        } else {
            Parsed::Invalid(NOT_HDR)
        };
    }
    if !buf.starts_with(V2_SIG) {
        return Parsed::Invalid(NOT_HDR);
    }
    parse_v2(buf)
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parsed::Invalid(BAD_HDR)
        } else {
            Parsed::Need(buf.len() + 1)
        };
    };
    let len = end + 2;
    if len > V1_MAX {
        return Parsed::Invalid(BAD_HDR);
    }
    let Ok(line) = std::str::from_utf8(&buf[6..end]) else {
        return Parsed::Invalid(BAD_HDR);
    };
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Parsed::Header { len, addrs: None };
    }
    let f: Vec<&str> = line.split(' ').collect();
    let v4 = match f[0] {
        "TCP4" => true,
        "TCP6" => false,
        _ => return Parsed::Invalid(BAD_PROTO),
    };
    let [_, src, dst, sport, dport] = f[..] else {
        return Parsed::Invalid(BAD_HDR);
    };
    let ip = |s: &str| -> Option<IpAddr> {
        let ip: IpAddr = s.parse().ok()?;
        (ip.is_ipv4() == v4).then_some(ip)
    };
    // ports as decimal numbers without sign or leading zero, as the spec writes them
    let port = |s: &str| -> Option<u16> {
        if s.is_empty()
            || !s.bytes().all(|b| b.is_ascii_digit())
            || (s.len() > 1 && s.starts_with('0'))
        {
            return None;
        }
        s.parse().ok()
    };
    match (ip(src), ip(dst), port(sport), port(dport)) {
        (Some(s), Some(d), Some(sp), Some(dp)) => Parsed::Header {
            len,
            addrs: Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp))),
        },
        _ => Parsed::Invalid(BAD_HDR),
    }
}

fn parse_v2(buf: &[u8]) -> Parsed {
    if buf.len() < 16 {
        return Parsed::Need(16);
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid(NOT_HDR);
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Parsed::Invalid(BAD_HDR),
    };
    // a LOCAL header's address block, whatever its family says, is ignored (the spec)
    let need = match fam {
        _ if local => 0,
        0x11 => 12,
        0x21 => 36,
        _ => 0,
    };
    if len - 16 < need {
        return Parsed::Invalid(BAD_HDR);
    }
    if buf.len() < len {
        return Parsed::Need(len);
    }
    if local || need == 0 {
        // a health check of the balancer in front, or addresses harp does not use (UDP, unix)
        return Parsed::Header { len, addrs: None };
    }
    let a = &buf[16..len];
    let addrs = if fam == 0x11 {
        let ip = |o: usize| IpAddr::from([a[o], a[o + 1], a[o + 2], a[o + 3]]);
        let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
        (
            SocketAddr::new(ip(0), port(8)),
            SocketAddr::new(ip(4), port(10)),
        )
    } else {
        let ip = |o: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&a[o..o + 16]);
            IpAddr::from(b)
        };
        let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
        (
            SocketAddr::new(ip(0), port(32)),
            SocketAddr::new(ip(16), port(34)),
        )
    };
    Parsed::Header {
        len,
        addrs: Some(addrs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_header_carries_the_unique_id_as_haproxy_sends_it() {
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let id = Tlvs {
            unique_id: Some(b"fe-x"),
            ..Tlvs::default()
        };
        let h = header_with(ProxyProtocol::V2, src, dst, &id);
        assert_eq!(&h[14..16], &(12u16 + 3 + 4).to_be_bytes());
        assert_eq!(&h[28..], b"\x05\x00\x04fe-x");
        assert_eq!(
            header_with(ProxyProtocol::V2, src, dst, &Tlvs::default()),
            header(ProxyProtocol::V2, src, dst)
        );
    }

    #[test]
    fn tls_tlvs_come_in_haproxys_order() {
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let t = Tlvs {
            alpn: Some(b"h2"),
            authority: Some(b"www"),
            unique_id: None,
            ssl: Some(SslTlv {
                version: Some("TLSv1.3"),
                cert: true,
                cert_conn: true,
                cn: Some("c1"),
                cipher: None,
            }),
        };
        let h = header_with(ProxyProtocol::V2, src, dst, &t);
        let mut want = b"\x01\x00\x02h2\x02\x00\x03www\x20\x00\x14\x07\x00\x00\x00\x00".to_vec();
        want.extend_from_slice(b"\x21\x00\x07TLSv1.3\x22\x00\x02c1");
        assert_eq!(&h[28..], &want[..]);
        assert_eq!(
            usize::from(u16::from_be_bytes([h[14], h[15]])),
            h.len() - 16
        );
        // a client in the clear: the SSL TLV with its flags only
        let plain = Tlvs {
            ssl: Some(SslTlv::default()),
            ..Tlvs::default()
        };
        let h = header_with(ProxyProtocol::V2, src, dst, &plain);
        assert_eq!(&h[28..], b"\x20\x00\x05\x00\x00\x00\x00\x00");
    }

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
    fn what_is_sent_parses_back() {
        for (src, dst) in [
            ("127.0.0.1:46104", "127.0.0.1:17100"),
            ("[2001:db8::7]:1", "[::1]:65535"),
        ] {
            for v in [ProxyProtocol::V1, ProxyProtocol::V2] {
                let mut h = header(v, a(src), a(dst));
                let len = h.len();
                h.extend_from_slice(b"client data");
                assert_eq!(
                    parse(&h),
                    Parsed::Header {
                        len,
                        addrs: Some((a(src), a(dst)))
                    },
                    "{v:?}"
                );
                // every shorter prefix asks for more
                for cut in 0..len {
                    assert!(
                        matches!(parse(&h[..cut]), Parsed::Need(n) if n > cut),
                        "{v:?} cut at {cut}: {:?}",
                        parse(&h[..cut])
                    );
                }
            }
        }
    }

    #[test]
    fn headers_without_addresses_keep_the_connection_s() {
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\nGET"),
            Parsed::Header {
                len: 15,
                addrs: None
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
            Parsed::Header {
                len: 35,
                addrs: None
            }
        );
        // v2 LOCAL, no addresses (a health check of the balancer in front), as HAProxy's own
        // checks send it
        let h = check_header(ProxyProtocol::V2, a("127.0.0.1:1"), a("127.0.0.1:2"));
        assert_eq!(hex(&h), "0d0a0d0a000d0a515549540a20000000");
        assert_eq!(
            parse(&h),
            Parsed::Header {
                len: 16,
                addrs: None
            }
        );
        // v2 PROXY over a unix socket family: valid, addresses not used
        let mut h = V2_SIG.to_vec();
        h.extend_from_slice(&[0x21, 0x31, 0, 216]);
        h.extend_from_slice(&[0; 216]);
        assert_eq!(
            parse(&h),
            Parsed::Header {
                len: 232,
                addrs: None
            }
        );
    }

    #[test]
    fn a_local_header_s_addresses_are_ignored_whatever_its_family() {
        let mut h = V2_SIG.to_vec();
        h.extend_from_slice(&[0x20, 0x11, 0, 0]);
        assert_eq!(
            parse(&h),
            Parsed::Header {
                len: 16,
                addrs: None
            }
        );
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut h = header(ProxyProtocol::V2, a("10.1.2.3:4000"), a("10.0.0.1:443"));
        // a 7-byte TLV (type 0x02 authority "example")
        h[15] += 10;
        h.extend_from_slice(&[0x02, 0, 7]);
        h.extend_from_slice(b"example");
        assert_eq!(
            parse(&h),
            Parsed::Header {
                len: 38,
                addrs: Some((a("10.1.2.3:4000"), a("10.0.0.1:443")))
            }
        );
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x11\x11\x00\x0c",
            b"\r\n\r\n\0\r\nQUIT\n\x22\x11\x00\x0c",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x04",
            b"\r\n\r\n\0\r\nQUIX\n",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Invalid(_)),
                "{:?}: {:?}",
                String::from_utf8_lossy(bad),
                parse(bad)
            );
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
        assert!(matches!(parse(&long), Parsed::Invalid(_)));
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
