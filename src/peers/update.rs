//! Update messages: an entry's key, remaining life and values as HAProxy writes them, and
//! the per-session dictionary that sends a `server_key` name once then by number.

use super::wire::{put_key, put_varint, read_key, Define, Malformed, Reader, WireKind, WIRE_TYPES};
use super::wire::{STKT_INCUPDATE, STKT_INCUPDATE_TIMED, STKT_UPDATE, STKT_UPDATE_TIMED};
use crate::stick::{Key, KeyType};

/// A value on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireValue {
    /// A counter, tag or server id.
    Int(u64),
    /// A frequency counter: ms since its period began, current and previous counts.
    Freq {
        /// How long ago the current period began.
        age: u64,
        /// Events in the current period.
        curr: u64,
        /// Events in the previous one.
        prev: u64,
    },
    /// A server name (`server_key`), `None` when the entry has none.
    Text(Option<String>),
}

/// An update, as sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Its update id (`None` on receipt of an "incremental" one: the previous plus one).
    pub id: Option<u32>,
    /// The entry's remaining life in ms, for timed updates.
    pub expire: Option<u32>,
    /// The key.
    pub key: Key,
    /// The values, by wire type number, in type order.
    pub values: Vec<(u32, WireValue)>,
}

/// The names sent to or received from one peer on one session, by number: HAProxy's
/// 128-entry dictionary cache, so that a server's name crosses the wire once.
#[derive(Debug, Default)]
pub struct Dict {
    slots: Vec<Option<String>>,
    next: usize,
}

/// HAProxy's `PEER_STKT_CACHE_MAX_ENTRIES`.
const DICT_SIZE: usize = 128;

impl Dict {
    fn slots(&mut self) -> &mut Vec<Option<String>> {
        if self.slots.is_empty() {
            self.slots = vec![None; DICT_SIZE];
        }
        &mut self.slots
    }

    /// Sending side: the slot of `name` and whether it was already there (else it takes the
    /// next slot in turn, as HAProxy's cache does).
    fn tx(&mut self, name: &str) -> (usize, bool) {
        if let Some(i) = self.slots().iter().position(|s| s.as_deref() == Some(name)) {
            return (i, true);
        }
        let i = self.next;
        self.slots()[i] = Some(name.to_string());
        self.next = (self.next + 1) % DICT_SIZE;
        (i, false)
    }
}

impl Update {
    /// The message type and body, with the id when `with_id` (HAProxy drops it when it is
    /// the previous one plus one).
    pub fn encode(&self, key_type: KeyType, with_id: bool, dict: &mut Dict) -> (u8, Vec<u8>) {
        let mut b = Vec::with_capacity(64);
        let id = self.id.unwrap_or(0);
        if with_id {
            b.extend_from_slice(&id.to_be_bytes());
        }
        if let Some(x) = self.expire {
            b.extend_from_slice(&x.to_be_bytes());
        }
        put_key(&mut b, key_type, &self.key);
        for (_, v) in &self.values {
            match v {
                WireValue::Int(n) => put_varint(&mut b, *n),
                WireValue::Freq { age, curr, prev } => {
                    put_varint(&mut b, *age);
                    put_varint(&mut b, *curr);
                    put_varint(&mut b, *prev);
                }
                WireValue::Text(None) => put_varint(&mut b, 0),
                WireValue::Text(Some(name)) => match dict.tx(name) {
                    (slot, true) => {
                        put_varint(&mut b, 1);
                        put_varint(&mut b, slot as u64 + 1);
                    }
                    (slot, false) => {
                        let mut d = Vec::new();
                        put_varint(&mut d, slot as u64 + 1);
                        put_varint(&mut d, name.len() as u64);
                        d.extend_from_slice(name.as_bytes());
                        put_varint(&mut b, d.len() as u64);
                        b.extend_from_slice(&d);
                    }
                },
            }
        }
        let kind = match (with_id, self.expire.is_some()) {
            (true, true) => STKT_UPDATE_TIMED,
            (false, true) => STKT_INCUPDATE_TIMED,
            (true, false) => STKT_UPDATE,
            (false, false) => STKT_INCUPDATE,
        };
        (kind, b)
    }

    /// Reads an update of message type `kind` for a table the peer defined as `def`, whose
    /// keys are `key_type` here; `dict` is the session's receiving dictionary.
    pub fn decode(
        kind: u8,
        body: &[u8],
        def: &Define,
        key_type: KeyType,
        dict: &mut Dict,
    ) -> Result<Update, Malformed> {
        let mut r = Reader::new(body);
        let id = match kind {
            STKT_UPDATE | STKT_UPDATE_TIMED => Some(r.u32()?),
            _ => None,
        };
        let expire = match kind {
            STKT_UPDATE_TIMED | STKT_INCUPDATE_TIMED => Some(r.u32()?),
            _ => None,
        };
        let key = read_key(&mut r, key_type)?;
        let mut values = Vec::new();
        for &(t, wk, array) in WIRE_TYPES {
            if def.data & (1u64 << t) == 0 {
                continue;
            }
            if array {
                // harp stores no arrays: read past them
                for _ in 0..def.elements(t) {
                    read_value(&mut r, wk, dict)?;
                }
                continue;
            }
            let v = read_value(&mut r, wk, dict)?;
            values.push((t, v));
        }
        Ok(Update {
            id,
            expire,
            key,
            values,
        })
    }
}

fn read_value(r: &mut Reader<'_>, wk: WireKind, dict: &mut Dict) -> Result<WireValue, Malformed> {
    let first = r.varint()?;
    Ok(match wk {
        WireKind::Int => WireValue::Int(first),
        WireKind::Freq => WireValue::Freq {
            age: first,
            curr: r.varint()?,
            prev: r.varint()?,
        },
        WireKind::Dict => {
            if first == 0 {
                return Ok(WireValue::Text(None));
            }
            let mut d = Reader::new(r.bytes(first as usize)?);
            let id = d.varint()? as usize;
            if id == 0 || id > DICT_SIZE {
                return Err(Malformed("bad dictionary id"));
            }
            if d.is_empty() {
                WireValue::Text(dict.slots()[id - 1].clone())
            } else {
                let n = d.varint()? as usize;
                let raw = d.bytes(n)?;
                // a C string: up to its NUL
                let end = raw.iter().position(|c| *c == 0).unwrap_or(raw.len());
                let name = String::from_utf8_lossy(&raw[..end]).into_owned();
                dict.slots()[id - 1] = Some(name.clone());
                WireValue::Text(Some(name))
            }
        }
    })
}
