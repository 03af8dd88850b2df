//! The bytes of HAProxy's peers protocol (version 2.1): the text hello and status lines,
//! the message framing, HAProxy's variable-length integers, and the bodies of the table
//! definition, update and acknowledgement messages. Pure functions, so that every byte
//! can be checked against what HAProxy sends without a socket.

use crate::stick::{DataType, Key, KeyType};

/// The protocol name and version a hello starts with.
pub const HELLO_VERSION: &str = "HAProxyS 2.1";
/// Status: the hello was accepted.
pub const STATUS_OK: u32 = 200;
/// Status: the peer is busy with another session of ours; try again later.
pub const STATUS_TRY_AGAIN: u32 = 300;
/// Status: the hello is not the protocol's.
pub const STATUS_ERR_PROTO: u32 = 501;
/// Status: an unknown protocol version.
pub const STATUS_ERR_VERSION: u32 = 502;
/// Status: the hello names another local peer than us.
pub const STATUS_ERR_HOST: u32 = 503;
/// Status: the hello comes from a peer we do not know.
pub const STATUS_ERR_PEER: u32 = 504;

/// Message class: control (resync, heartbeat).
pub const CLASS_CONTROL: u8 = 0;
/// Message class: errors.
pub const CLASS_ERROR: u8 = 1;
/// Message class: stick tables.
pub const CLASS_TABLE: u8 = 10;
/// Message class HAProxy keeps reserved: receiving it is a protocol error.
pub const CLASS_RESERVED: u8 = 255;

/// Control: "teach me every entry".
pub const CTRL_RESYNC_REQ: u8 = 0;
/// Control: the teaching is over and complete.
pub const CTRL_RESYNC_FINISHED: u8 = 1;
/// Control: the teaching is over but the teacher was not up to date itself.
pub const CTRL_RESYNC_PARTIAL: u8 = 2;
/// Control: the learner got the end of the teaching.
pub const CTRL_RESYNC_CONFIRM: u8 = 3;
/// Control: still here.
pub const CTRL_HEARTBEAT: u8 = 4;
/// Error: a malformed message.
pub const ERR_PROTO: u8 = 0;
/// Error: a message larger than the receiver takes.
pub const ERR_SIZE: u8 = 1;

/// Table message: an update with its update id.
pub const STKT_UPDATE: u8 = 0x80;
/// Table message: an update whose id is the previous one's plus one.
pub const STKT_INCUPDATE: u8 = 0x81;
/// Table message: a table definition (also makes it the current table).
pub const STKT_DEFINE: u8 = 0x82;
/// Table message: makes a defined table the current one.
pub const STKT_SWITCH: u8 = 0x83;
/// Table message: the last update id received for a table.
pub const STKT_ACK: u8 = 0x84;
/// Table message: an update with its id and the entry's remaining life.
pub const STKT_UPDATE_TIMED: u8 = 0x85;
/// Table message: an update with the next id and the entry's remaining life.
pub const STKT_INCUPDATE_TIMED: u8 = 0x86;

/// The largest message body taken (HAProxy's buffer size); a larger one is refused with
/// the size error, as HAProxy does.
pub const MAX_BODY: usize = 16_384;

/// A malformed message or line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed peers message: {0}")]
pub struct Malformed(pub &'static str);

/// Appends `v` in HAProxy's variable-length encoding (`intencode`): below 240 one byte;
/// above, the low 4 bits then 7 bits per byte, bit 7 set on every byte but the last.
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 0xf0 {
        out.push(v as u8);
        return;
    }
    out.push((v as u8) | 0xf0);
    let mut i = (v - 0xf0) >> 4;
    while i >= 0x80 {
        out.push((i as u8) | 0x80);
        i = (i - 0x80) >> 7;
    }
    out.push(i as u8);
}

/// Reads bytes off the front of a message body.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Whether all was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One variable-length integer (`intdecode`).
    pub fn varint(&mut self) -> Result<u64, Malformed> {
        let (&first, mut rest) = self
            .buf
            .split_first()
            .ok_or(Malformed("truncated integer"))?;
        let mut v = u64::from(first);
        if first >= 0xf0 {
            let mut shift = 4u32;
            loop {
                let (&b, r) = rest.split_first().ok_or(Malformed("truncated integer"))?;
                rest = r;
                if shift >= 64 {
                    return Err(Malformed("integer too long"));
                }
                v = v.wrapping_add(u64::from(b) << shift);
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
        }
        self.buf = rest;
        Ok(v)
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed("truncated field"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    /// A big-endian 32-bit integer.
    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Frames one message: the two header bytes, then for table messages (bit 7 of the type
/// set) the body's length and the body.
pub fn frame(class: u8, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 7);
    out.push(class);
    out.push(kind);
    if kind & 0x80 != 0 {
        put_varint(&mut out, body.len() as u64);
        out.extend_from_slice(body);
    }
    out
}

/// A message cut off the front of a receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its class.
    pub class: u8,
    /// Its type.
    pub kind: u8,
    /// Its body (empty for control and error messages).
    pub body: &'a [u8],
}

/// What the front of a receive buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole message, and how many bytes it took.
    Frame(Frame<'a>, usize),
    /// Not a whole message yet.
    Partial,
    /// A body larger than [`MAX_BODY`].
    TooLarge,
}

/// Cuts the first message off `buf`.
pub fn parse_frame(buf: &[u8]) -> Result<Parsed<'_>, Malformed> {
    if buf.len() < 2 {
        return Ok(Parsed::Partial);
    }
    let (class, kind) = (buf[0], buf[1]);
    if kind & 0x80 == 0 {
        return Ok(Parsed::Frame(
            Frame {
                class,
                kind,
                body: &[],
            },
            2,
        ));
    }
    let mut r = Reader::new(&buf[2..]);
    let len = match r.varint() {
        Ok(l) => l,
        // a length is at most 5 bytes long: more is malformed, less may be partial
        Err(_) if buf.len() - 2 >= 5 => return Err(Malformed("length too long")),
        Err(_) => return Ok(Parsed::Partial),
    };
    if len > MAX_BODY as u64 {
        return Ok(Parsed::TooLarge);
    }
    let head = buf.len() - r.rest().len();
    let end = head + len as usize;
    if buf.len() < end {
        return Ok(Parsed::Partial);
    }
    Ok(Parsed::Frame(
        Frame {
            class,
            kind,
            body: &buf[head..end],
        },
        end,
    ))
}

/// How a value is kept on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireKind {
    /// One integer.
    Int,
    /// A frequency counter: age of its period, current and previous counts.
    Freq,
    /// A dictionary reference (`server_key`).
    Dict,
}

/// HAProxy's data type numbers, their wire kinds and, for the arrays harp does not store,
/// whether they are arrays: `(id, kind, is_array)`. The order is HAProxy's
/// `stktable_data_types`.
pub const WIRE_TYPES: &[(u32, WireKind, bool)] = &[
    (0, WireKind::Int, false),   // server_id
    (1, WireKind::Int, false),   // gpt0
    (2, WireKind::Int, false),   // gpc0
    (3, WireKind::Freq, false),  // gpc0_rate
    (4, WireKind::Int, false),   // conn_cnt
    (5, WireKind::Freq, false),  // conn_rate
    (6, WireKind::Int, false),   // conn_cur
    (7, WireKind::Int, false),   // sess_cnt
    (8, WireKind::Freq, false),  // sess_rate
    (9, WireKind::Int, false),   // http_req_cnt
    (10, WireKind::Freq, false), // http_req_rate
    (11, WireKind::Int, false),  // http_err_cnt
    (12, WireKind::Freq, false), // http_err_rate
    (13, WireKind::Int, false),  // bytes_in_cnt
    (14, WireKind::Freq, false), // bytes_in_rate
    (15, WireKind::Int, false),  // bytes_out_cnt
    (16, WireKind::Freq, false), // bytes_out_rate
    (17, WireKind::Int, false),  // gpc1
    (18, WireKind::Freq, false), // gpc1_rate
    (19, WireKind::Dict, false), // server_key
    (20, WireKind::Int, false),  // http_fail_cnt
    (21, WireKind::Freq, false), // http_fail_rate
    (22, WireKind::Int, true),   // gpt (array)
    (23, WireKind::Int, true),   // gpc (array)
    (24, WireKind::Freq, true),  // gpc_rate (array)
    (25, WireKind::Int, false),  // glitch_cnt
    (26, WireKind::Freq, false), // glitch_rate
];

/// The wire number of a stored type.
pub fn wire_id(t: DataType) -> u32 {
    match t {
        DataType::ServerId => 0,
        DataType::Gpt0 => 1,
        DataType::Gpc0 => 2,
        DataType::Gpc0Rate => 3,
        DataType::ConnCnt => 4,
        DataType::ConnRate => 5,
        DataType::ConnCur => 6,
        DataType::SessCnt => 7,
        DataType::SessRate => 8,
        DataType::HttpReqCnt => 9,
        DataType::HttpReqRate => 10,
        DataType::HttpErrCnt => 11,
        DataType::HttpErrRate => 12,
        DataType::BytesInCnt => 13,
        DataType::BytesInRate => 14,
        DataType::BytesOutCnt => 15,
        DataType::BytesOutRate => 16,
        DataType::Gpc1 => 17,
        DataType::Gpc1Rate => 18,
        DataType::ServerKey => 19,
        DataType::HttpFailCnt => 20,
        DataType::HttpFailRate => 21,
        DataType::GlitchCnt => 25,
        DataType::GlitchRate => 26,
    }
}

/// The stored type of a wire number (`None` for the arrays and unknown numbers).
pub fn type_of_wire(id: u32) -> Option<DataType> {
    crate::stick::data::ALL
        .iter()
        .copied()
        .find(|t| wire_id(*t) == id)
}

/// The wire's key type number and key size of a table's key type.
pub fn key_wire(k: KeyType) -> (u64, u64) {
    match k {
        KeyType::Integer => (2, 4),
        KeyType::Ip => (4, 4),
        KeyType::Ipv6 => (5, 16),
        // the string's key keeps a byte for its NUL
        KeyType::String(n) => (6, n as u64 + 1),
        KeyType::Binary(n) => (7, n as u64),
    }
}

/// A table definition (`STKT_DEFINE`), as sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Define {
    /// The sender's id for the table (what its switch, update and ack messages name).
    pub id: u64,
    /// The table's name.
    pub name: Vec<u8>,
    /// The key type number.
    pub key_type: u64,
    /// The key size.
    pub key_size: u64,
    /// Bit `n` set: data type `n` is stored.
    pub data: u64,
    /// The entries' lifetime (ms), when sent.
    pub expire: Option<u64>,
    /// `(type, [elements,] [period])` parameters of the rates and arrays, in type order.
    pub params: Vec<(u64, Vec<u64>)>,
}

impl Define {
    /// The body bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_varint(&mut b, self.id);
        put_varint(&mut b, self.name.len() as u64);
        b.extend_from_slice(&self.name);
        put_varint(&mut b, self.key_type);
        put_varint(&mut b, self.key_size);
        put_varint(&mut b, self.data);
        put_varint(&mut b, self.expire.unwrap_or(0));
        for (t, args) in &self.params {
            put_varint(&mut b, *t);
            for a in args {
                put_varint(&mut b, *a);
            }
        }
        b
    }

    /// Reads a body. The parameters are read as HAProxy reads them (a type prefix, an
    /// element count for arrays, a period for rates); a definition whose parameters do not
    /// match its bits comes back with `params` cut where they stopped matching.
    pub fn decode(body: &[u8]) -> Result<Define, Malformed> {
        let mut r = Reader::new(body);
        let id = r.varint()?;
        let len = r.varint()? as usize;
        if len == 0 || len >= r.rest().len() {
            return Err(Malformed("bad table name length"));
        }
        let name = r.bytes(len)?.to_vec();
        let key_type = r.varint()?;
        let key_size = r.varint()?;
        let data = r.varint()?;
        let mut d = Define {
            id,
            name,
            key_type,
            key_size,
            data,
            expire: None,
            params: Vec::new(),
        };
        let Ok(expire) = r.varint() else {
            return Ok(d);
        };
        d.expire = Some(expire);
        for &(t, kind, array) in WIRE_TYPES {
            if data & (1u64 << t) == 0 || (!array && kind != WireKind::Freq) {
                continue;
            }
            let Ok(prefix) = r.varint() else { break };
            if prefix != u64::from(t) {
                break;
            }
            let mut args = Vec::new();
            if array {
                match r.varint() {
                    Ok(n) => args.push(n),
                    Err(_) => break,
                }
            }
            if kind == WireKind::Freq {
                match r.varint() {
                    Ok(p) => args.push(p),
                    Err(_) => break,
                }
            }
            d.params.push((prefix, args));
        }
        Ok(d)
    }

    /// The element count of array type `t` (0 when not given).
    pub fn elements(&self, t: u32) -> u64 {
        self.params
            .iter()
            .find(|(x, _)| *x == u64::from(t))
            .and_then(|(_, a)| a.first().copied())
            .unwrap_or(0)
    }
}

/// The key bytes of `key` as an update carries them.
pub fn put_key(out: &mut Vec<u8>, t: KeyType, key: &Key) {
    match (t, key) {
        (KeyType::String(_), Key::Bytes(b)) => {
            // up to the NUL, as HAProxy's strlen
            let n = b.iter().position(|c| *c == 0).unwrap_or(b.len());
            put_varint(out, n as u64);
            out.extend_from_slice(&b[..n]);
        }
        (KeyType::Binary(n), Key::Bytes(b)) => {
            let mut v = b.clone();
            v.resize(n, 0);
            out.extend_from_slice(&v);
        }
        (_, Key::Int(i)) => out.extend_from_slice(&i.to_be_bytes()),
        (_, Key::V4(a)) => out.extend_from_slice(&a.octets()),
        (_, Key::V6(a)) => out.extend_from_slice(&a.octets()),
        // a key of another type than its table's cannot be made; send it as bytes
        (_, Key::Bytes(b)) => out.extend_from_slice(b),
    }
}

/// Reads a key of type `t` off an update.
pub fn read_key(r: &mut Reader<'_>, t: KeyType) -> Result<Key, Malformed> {
    Ok(match t {
        KeyType::String(max) => {
            let n = r.varint()? as usize;
            let b = r.bytes(n)?;
            Key::Bytes(b[..n.min(max)].to_vec())
        }
        KeyType::Binary(n) => Key::Bytes(r.bytes(n)?.to_vec()),
        KeyType::Integer => Key::Int(r.u32()?),
        KeyType::Ip => {
            let b = r.bytes(4)?;
            Key::V4(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        KeyType::Ipv6 => {
            let b = r.bytes(16)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Key::V6(std::net::Ipv6Addr::from(a))
        }
    })
}

/// A hello's three lines: version, the name the sender thinks we have, its own name with
/// its pid and relative pid.
pub fn hello(remote: &str, local: &str) -> String {
    format!(
        "{HELLO_VERSION}\n{remote}\n{local} {} 1\n",
        std::process::id()
    )
}

/// Checks a hello's first line (`\r` stripped): `Ok` or the status to reply.
pub fn check_version(line: &str) -> Result<(), u32> {
    let Some(v) = line.strip_prefix("HAProxyS ") else {
        return Err(STATUS_ERR_PROTO);
    };
    let Some((maj, min)) = v.split_once('.') else {
        return Err(STATUS_ERR_VERSION);
    };
    let num = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (num(maj), num(min)) {
        (Some(2), Some(m)) if m <= 1 => Ok(()),
        _ => Err(STATUS_ERR_VERSION),
    }
}

/// The peer name of a hello's third line (`<name> <pid> <relative pid>`).
pub fn sender_name(line: &str) -> Result<&str, u32> {
    line.split_once(' ').map(|(n, _)| n).ok_or(STATUS_ERR_PROTO)
}
