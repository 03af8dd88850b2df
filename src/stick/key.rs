//! A table's key type (`type ip|ipv6|integer|string [len n]|binary [len n]`), the keys made
//! from samples and from Runtime API arguments, and how `show table` prints them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The key type of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `ip`: IPv4 addresses.
    Ip,
    /// `ipv6`: IPv6 addresses (IPv4 ones are stored mapped, `::ffff:a.b.c.d`).
    Ipv6,
    /// `integer`: 32-bit unsigned integers.
    Integer,
    /// `string [len <n>]`: strings cut to `n` bytes (31 without `len`: HAProxy's 32-byte
    /// key with its NUL).
    String(usize),
    /// `binary [len <n>]`: `n` bytes, padded with zeros.
    Binary(usize),
}

/// HAProxy's default key size for string and binary keys (a string keeps one byte for its
/// NUL).
pub const DEFAULT_LEN: usize = 32;

/// A key of a table (already cut or padded to the table's length); ordered as HAProxy's key
/// trees are (bytes, addresses by their bytes, integers by value).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// An integer.
    Int(u32),
    /// String or binary bytes.
    Bytes(Vec<u8>),
}

/// A sample to make a key of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySample<'a> {
    /// An address.
    Ip(IpAddr),
    /// An integer.
    Int(i64),
    /// Bytes (a string or binary sample).
    Bytes(&'a [u8]),
}

impl KeyType {
    /// Its name in `show table`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ip => "ip",
            KeyType::Ipv6 => "ipv6",
            KeyType::Integer => "integer",
            KeyType::String(_) => "string",
            KeyType::Binary(_) => "binary",
        }
    }

    /// The key a sample gives, converted as HAProxy's sample casts do; `None` when it cannot
    /// be one (an IPv6 address in an `ip` table, text that is no address).
    pub fn key(self, s: &KeySample<'_>) -> Option<Key> {
        match (self, s) {
            (KeyType::Ip, KeySample::Ip(IpAddr::V4(a))) => Some(Key::V4(*a)),
            (KeyType::Ip, KeySample::Ip(IpAddr::V6(a))) => a.to_ipv4_mapped().map(Key::V4),
            (KeyType::Ipv6, KeySample::Ip(IpAddr::V4(a))) => Some(Key::V6(a.to_ipv6_mapped())),
            (KeyType::Ipv6, KeySample::Ip(IpAddr::V6(a))) => Some(Key::V6(*a)),
            (KeyType::Ip | KeyType::Ipv6, KeySample::Bytes(b)) => {
                let ip: IpAddr = std::str::from_utf8(b).ok()?.trim().parse().ok()?;
                self.key(&KeySample::Ip(ip))
            }
            (KeyType::Ip, KeySample::Int(i)) => u32::try_from(*i).ok().map(|v| Key::V4(v.into())),
            (KeyType::Ipv6, KeySample::Int(_)) => None,
            (KeyType::Integer, KeySample::Int(i)) => Some(Key::Int(*i as u32)),
            (KeyType::Integer, KeySample::Ip(IpAddr::V4(a))) => Some(Key::Int(u32::from(*a))),
            (KeyType::Integer, KeySample::Ip(IpAddr::V6(_))) => None,
            (KeyType::Integer, KeySample::Bytes(b)) => {
                // HAProxy's c_str2int: the leading digits, as atoi reads them
                let t = std::str::from_utf8(b).ok()?;
                Some(Key::Int(crate::config::units::c_atol_u32(t)))
            }
            (KeyType::String(len), s) => {
                let text = match s {
                    KeySample::Bytes(b) => b.to_vec(),
                    KeySample::Ip(a) => a.to_string().into_bytes(),
                    KeySample::Int(i) => i.to_string().into_bytes(),
                };
                let mut text = text;
                text.truncate(len);
                Some(Key::Bytes(text))
            }
            (KeyType::Binary(len), s) => {
                let mut b = match s {
                    KeySample::Bytes(b) => b.to_vec(),
                    KeySample::Ip(IpAddr::V4(a)) => a.octets().to_vec(),
                    KeySample::Ip(IpAddr::V6(a)) => a.octets().to_vec(),
                    KeySample::Int(i) => (*i as u64).to_be_bytes().to_vec(),
                };
                b.resize(len, 0);
                Some(Key::Bytes(b))
            }
        }
    }

    /// The key a Runtime API argument names (`key <k>`): an address, a decimal integer, a
    /// string, or hexadecimal digits for a binary key. `Err` holds HAProxy's reply.
    pub fn parse_cli(self, text: &str) -> Result<Key, &'static str> {
        match self {
            KeyType::Ip => text
                .parse::<Ipv4Addr>()
                .map(Key::V4)
                .map_err(|_| "Invalid key\n"),
            // an IPv4 address is no key of an ipv6 table here (HAProxy: "Invalid key")
            KeyType::Ipv6 => text
                .parse::<Ipv6Addr>()
                .map(Key::V6)
                .map_err(|_| "Invalid key\n"),
            // read as HAProxy casts a string to an integer: leading digits, any text a 0
            KeyType::Integer if text.is_empty() => Err("Invalid key\n"),
            KeyType::Integer => Ok(Key::Int(crate::config::units::c_atol_u32(text))),
            KeyType::String(len) => {
                let mut b = text.as_bytes().to_vec();
                b.truncate(len);
                Ok(Key::Bytes(b))
            }
            KeyType::Binary(len) => {
                if text.len() % 2 != 0 || text.len() / 2 > len {
                    return Err("Invalid key\n");
                }
                let mut b = Vec::with_capacity(len);
                for pair in text.as_bytes().chunks(2) {
                    let hex = std::str::from_utf8(pair).map_err(|_| "Invalid key\n")?;
                    b.push(u8::from_str_radix(hex, 16).map_err(|_| "Invalid key\n")?);
                }
                b.resize(len, 0);
                Ok(Key::Bytes(b))
            }
        }
    }
}

impl Key {
    /// As `show table` prints it after `key=`: addresses and integers in text, strings as they
    /// are, binary keys in upper-case hexadecimal.
    pub fn show(&self, t: KeyType) -> String {
        match (self, t) {
            (Key::V4(a), _) => a.to_string(),
            (Key::V6(a), _) => a.to_string(),
            (Key::Int(i), _) => i.to_string(),
            (Key::Bytes(b), KeyType::Binary(_)) => b.iter().map(|x| format!("{x:02X}")).collect(),
            (Key::Bytes(b), _) => dump_text(b),
        }
    }
}

/// HAProxy's `dump_text`: printable ASCII as it is, but `\`, space and `=` escaped with a
/// backslash, `\t \n \r \e` by name, any other byte as `\xHH`; stops at a NUL.
fn dump_text(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b.iter().take_while(|c| **c != 0) {
        match c {
            b'\\' => out.push_str("\\\\"),
            b' ' => out.push_str("\\ "),
            b'=' => out.push_str("\\="),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x1b => out.push_str("\\e"),
            0x21..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02X}")),
        }
    }
    out
}
