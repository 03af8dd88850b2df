//! An ACL's patterns and how a sample is matched against them (HAProxy's `-m` methods), so that
//! `acl` lines written for HAProxy keep their meaning: integer ranges with `eq`/`ge`/`gt`/`le`/
//! `lt`, networks for addresses (IPv4 patterns match IPv4-mapped IPv6 samples), strings exactly
//! or by prefix, suffix, substring, domain, length or regular expression, `-i` for case.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use regex::bytes::{Regex, RegexBuilder};

/// A fetched sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A boolean (`always_true`, `srv_is_up`, `wait_end`).
    Bool(bool),
    /// An integer (ports, counts, lengths).
    Int(i64),
    /// An address.
    Ip(IpAddr),
    /// Text (a server name).
    Str(Vec<u8>),
    /// Raw bytes (`req.payload`).
    Bin(Vec<u8>),
}

impl Value {
    /// The sample as text, as a log line or a log-format name shows it.
    pub fn to_text(&self) -> String {
        String::from_utf8_lossy(&self.text()).into_owned()
    }

    /// The sample as text, as HAProxy casts it for string matching.
    fn text(&self) -> Vec<u8> {
        match self {
            Value::Bool(b) => (if *b { "1" } else { "0" }).into(),
            Value::Int(i) => i.to_string().into_bytes(),
            Value::Ip(ip) => ip.to_string().into_bytes(),
            Value::Str(s) | Value::Bin(s) => s.clone(),
        }
    }

    /// The sample as an integer (text is read as `atoi` reads it, leading digits only).
    fn int(&self) -> Option<i64> {
        match self {
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Int(i) => Some(*i),
            Value::Ip(_) => None,
            // HAProxy's c_str2int: an empty text has no integer, another its leading one
            Value::Str(s) | Value::Bin(s) if s.is_empty() => None,
            Value::Str(s) | Value::Bin(s) => Some(read_int64(s).0),
        }
    }
}

/// HAProxy's `read_int64`: an optional sign, then the leading digits, clamped to the range of
/// an i64; and how many bytes it read (a map's integer value must be read whole).
pub fn read_int64(s: &[u8]) -> (i64, usize) {
    let (neg, mut at) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut v: u64 = 0;
    while let Some(d) = s.get(at).filter(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        at += 1;
    }
    let n = if neg {
        // -2^63 is the lowest; anything past it clamps there
        0i64.checked_sub_unsigned(v).unwrap_or(i64::MIN)
    } else {
        i64::try_from(v).unwrap_or(i64::MAX)
    };
    (n, at)
}

/// How patterns compare with a sample (`-m <method>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The sample exists (`-m found`; takes no pattern).
    Found,
    /// The sample is true or non-zero (`-m bool`; takes no pattern).
    Bool,
    /// Integer ranges.
    Int,
    /// Networks.
    Ip,
    /// Equal bytes.
    Str,
    /// Starts with.
    Beg,
    /// Ends with.
    End,
    /// Contains.
    Sub,
    /// Contains as whole `/`, `.`-delimited words (a domain).
    Dom,
    /// Contains as whole `/`-delimited words (a directory of a path).
    Dir,
    /// A regular expression.
    Reg,
    /// The length is in a range.
    Len,
    /// Equal bytes, written in hex.
    Bin,
}

impl Method {
    /// `-m <name>`.
    pub fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "found" => Method::Found,
            "bool" => Method::Bool,
            "int" => Method::Int,
            "ip" => Method::Ip,
            "str" => Method::Str,
            "beg" => Method::Beg,
            "end" => Method::End,
            "sub" => Method::Sub,
            "dom" => Method::Dom,
            "dir" => Method::Dir,
            "reg" => Method::Reg,
            "len" => Method::Len,
            "bin" => Method::Bin,
            _ => return None,
        })
    }

    /// Whether patterns are read as integer ranges.
    fn ranges(self) -> bool {
        matches!(self, Method::Int | Method::Len)
    }
}

/// An inclusive integer range (`N`, `N:M`, `:M`, `N:`, or an operator and a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: i64,
    pub max: i64,
}

/// A network: an address and how many leading bits must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub bits: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => same_bits(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V4(n), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| same_bits(&n.octets(), &a.octets(), self.bits)),
            (IpAddr::V6(n), IpAddr::V6(a)) => same_bits(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V4(a)) => {
                same_bits(&n.octets(), &a.to_ipv6_mapped().octets(), self.bits)
            }
        }
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn same_bits(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits).min(a.len() * 8);
    let (full, rest) = (bits / 8, bits % 8);
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// One compiled pattern.
#[derive(Debug, Clone)]
enum Item {
    /// `-m int` / `-m len`.
    Range(Range),
    /// `-m ip`.
    Net(Net),
    /// The string methods (lowercased under `-i`) and `-m bin` (decoded hex).
    Bytes(Vec<u8>),
    /// `-m reg`.
    Reg(Regex),
}

/// The patterns of one ACL expression, in the form their method compares, in the order they
/// were added, each with an id (`add` returns it) that stays its own when others go: the
/// Runtime API names and deletes entries by it. Held in persistent structures, so that a copy
/// for the workers after one change shares everything else with the one before (a change
/// costs O(log n), not a copy of the list).
#[derive(Debug, Clone)]
pub struct Patterns {
    /// The `-m` method (or the fetch's default).
    pub method: Method,
    /// `-i`.
    pub ignore_case: bool,
    items: imbl::Vector<(u64, Item)>,
    /// The id the next pattern gets (ids grow: the lowest of a key's is its first).
    next_id: u64,
    /// The networks and exact strings again, hashed: a blocklist of 10,000 networks costs a
    /// few lookups per connection instead of 10,000 comparisons (HAProxy keeps them in trees).
    index: Index,
    /// A map's values, by pattern id (empty for an ACL's list, which has none).
    data: imbl::OrdMap<u64, Value>,
}

/// The ids of the patterns of one key, lowest (first added) first: one, inline, as almost
/// every key has.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ids {
    One(u64),
    Many(Vec<u64>),
}

impl Ids {
    fn first(&self) -> Option<u64> {
        match self {
            Ids::One(id) => Some(*id),
            Ids::Many(v) => v.first().copied(),
        }
    }
}

/// Networks by prefix length (longest first) and exact strings, each with the ids of its
/// patterns (duplicates are allowed: a lookup finds the first, as HAProxy's trees do).
#[derive(Debug, Clone, Default)]
struct Index {
    v4: Vec<(u8, imbl::OrdMap<u32, Ids>)>,
    v6: Vec<(u8, imbl::OrdMap<u128, Ids>)>,
    exact: imbl::OrdMap<Vec<u8>, Ids>,
}

/// The network part of `a` under a `bits` prefix.
fn mask4(a: u32, bits: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0)
}

fn mask6(a: u128, bits: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0)
}

/// Adds (`add`) or removes id `id` of `key` in the set of its prefix length (kept longest
/// first; a length left empty goes).
fn change<K: Ord + Clone>(
    sets: &mut Vec<(u8, imbl::OrdMap<K, Ids>)>,
    bits: u8,
    key: K,
    id: u64,
    add: bool,
) {
    let i = match sets.iter().position(|(b, _)| *b == bits) {
        Some(i) => i,
        None if !add => return,
        None => {
            let at = sets
                .iter()
                .position(|(b, _)| *b < bits)
                .unwrap_or(sets.len());
            sets.insert(at, (bits, imbl::OrdMap::new()));
            at
        }
    };
    change_ids(&mut sets[i].1, key, id, add);
    if sets[i].1.is_empty() {
        sets.remove(i);
    }
}

/// Adds or removes `id` among the ids of `key` (a key left without any goes).
fn change_ids<K: Ord + Clone>(map: &mut imbl::OrdMap<K, Ids>, key: K, id: u64, add: bool) {
    if add {
        match map.get_mut(&key) {
            None => {
                map.insert(key, Ids::One(id));
            }
            Some(ids) => {
                let mut v = match ids {
                    Ids::One(x) => vec![*x],
                    Ids::Many(v) => std::mem::take(v),
                };
                let at = v.partition_point(|&x| x < id);
                v.insert(at, id);
                *ids = Ids::Many(v);
            }
        }
    } else if let Some(ids) = map.get_mut(&key) {
        let gone = match ids {
            Ids::One(x) => *x == id,
            Ids::Many(v) => {
                v.retain(|&x| x != id);
                v.is_empty()
            }
        };
        if let Ids::Many(v) = ids {
            if let [only] = v[..] {
                *ids = Ids::One(only);
            }
        }
        if gone {
            map.remove(&key);
        }
    }
}

impl Index {
    /// Indexes (`add`) or unindexes `item`, the pattern of id `id`.
    fn change(&mut self, method: Method, item: &Item, id: u64, add: bool) {
        match item {
            Item::Net(n) => match n.addr {
                IpAddr::V4(a) => change(&mut self.v4, n.bits, mask4(u32::from(a), n.bits), id, add),
                IpAddr::V6(a) => {
                    change(&mut self.v6, n.bits, mask6(u128::from(a), n.bits), id, add)
                }
            },
            Item::Bytes(b) if matches!(method, Method::Str | Method::Bin) => {
                change_ids(&mut self.exact, b.clone(), id, add);
            }
            _ => {}
        }
    }

    /// The id of the first of the longest networks holding `ip` (IPv4 ones hold IPv4-mapped
    /// addresses too), looked up in the sample's own family first, as HAProxy's trees are.
    fn find_ip(&self, ip: IpAddr) -> Option<u64> {
        let v4 = |a: u32| {
            self.v4
                .iter()
                .find_map(|(b, s)| s.get(&mask4(a, *b)).and_then(Ids::first))
        };
        let v6 = |a: u128| {
            self.v6
                .iter()
                .find_map(|(b, s)| s.get(&mask6(a, *b)).and_then(Ids::first))
        };
        match ip {
            IpAddr::V4(a) => v4(u32::from(a)).or_else(|| v6(u128::from(a.to_ipv6_mapped()))),
            IpAddr::V6(a) => {
                v6(u128::from(a)).or_else(|| a.to_ipv4_mapped().and_then(|m| v4(u32::from(m))))
            }
        }
    }

    /// Whether a network holds `ip`.
    fn has_ip(&self, ip: IpAddr) -> bool {
        self.find_ip(ip).is_some()
    }
}

/// An integer comparison word that applies to the values after it (`ge 10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// A sample made ready for the patterns of a method: read once, compared with each.
enum Prepared {
    Int(Option<i64>),
    Ip(Option<IpAddr>),
    Bytes(Vec<u8>),
}

impl Patterns {
    /// Empty patterns for `method`.
    pub fn new(method: Method, ignore_case: bool) -> Patterns {
        Patterns {
            method,
            ignore_case,
            items: imbl::Vector::new(),
            next_id: 0,
            index: Index::default(),
            data: imbl::OrdMap::new(),
        }
    }

    /// How many patterns.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds the values of an `acl` line (after its flags), with HAProxy's messages; returns
    /// the patterns as HAProxy stores them (`ge 10` is the range `10:`, `lt 10` is `:9`).
    pub fn add_all(&mut self, values: &[String]) -> Result<Vec<String>, String> {
        let mut op = Op::Eq;
        let mut added = Vec::new();
        for v in values {
            if self.method.ranges() {
                if let Some(o) = match v.as_str() {
                    "eq" => Some(Op::Eq),
                    "ge" => Some(Op::Ge),
                    "gt" => Some(Op::Gt),
                    "le" => Some(Op::Le),
                    "lt" => Some(Op::Lt),
                    _ => None,
                } {
                    op = o;
                    continue;
                }
                let r = parse_range(v, op).map_err(|e| {
                    if v.starts_with(|c: char| c.is_ascii_digit() || c == ':' || c == '-') {
                        e
                    } else {
                        format!("'{v}' is neither a number nor a supported operator")
                    }
                })?;
                self.push(Item::Range(r));
                added.push(match (op, v.parse::<i64>()) {
                    (Op::Ge, Ok(n)) => format!("{n}:"),
                    (Op::Gt, Ok(n)) => format!("{}:", n.saturating_add(1)),
                    (Op::Le, Ok(n)) => format!(":{n}"),
                    (Op::Lt, Ok(n)) => format!(":{}", n.saturating_sub(1)),
                    _ => v.clone(),
                });
            } else {
                self.add(v)?;
                added.push(v.clone());
            }
        }
        Ok(added)
    }

    /// Adds one pattern (a line of a `-f` file, one value of an `acl` line, `add acl`); its
    /// id (a fresh list numbers its patterns 0, 1, 2... in the order they are added).
    pub fn add(&mut self, v: &str) -> Result<u64, String> {
        let item = self.compile(v)?;
        Ok(self.push(item))
    }

    /// Adds one map entry: its key as a pattern, and the value a lookup returns; its id.
    pub fn add_with(&mut self, key: &str, value: Value) -> Result<u64, String> {
        let item = self.compile(key)?;
        let id = self.push(item);
        self.data.insert(id, value);
        Ok(id)
    }

    /// The regex of pattern `id` (a `reg` list's).
    pub fn regex_of(&self, id: u64) -> Option<&Regex> {
        match self.items.iter().find(|(i, _)| *i == id)? {
            (_, Item::Reg(re)) => Some(re),
            _ => None,
        }
    }

    /// The value of map entry `id`.
    pub fn value(&self, id: u64) -> Option<&Value> {
        self.data.get(&id)
    }

    /// Replaces the value of map entry `id`.
    pub fn set_value(&mut self, id: u64, value: Value) {
        if let Some(v) = self.data.get_mut(&id) {
            *v = value;
        }
    }

    fn push(&mut self, item: Item) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.index.change(self.method, &item, id, true);
        self.items.push_back((id, item));
        id
    }

    /// One pattern in the form this method compares.
    fn compile(&self, v: &str) -> Result<Item, String> {
        Ok(match self.method {
            Method::Found | Method::Bool => {
                return Err(format!(
                    "'{}' matching method takes no pattern (got '{v}')",
                    if self.method == Method::Found {
                        "found"
                    } else {
                        "bool"
                    }
                ))
            }
            Method::Int | Method::Len => Item::Range(parse_range(v, Op::Eq)?),
            Method::Ip => Item::Net(parse_net(v)?),
            Method::Reg => Item::Reg(
                // bytes, as HAProxy's regexes match them (a payload need not be UTF-8)
                RegexBuilder::new(v)
                    .unicode(false)
                    .case_insensitive(self.ignore_case)
                    .build()
                    .map_err(|e| format!("regex '{v}' is invalid: {e}"))?,
            ),
            Method::Bin => Item::Bytes(parse_hex(v)?),
            _ => Item::Bytes(if self.ignore_case {
                v.to_ascii_lowercase().into_bytes()
            } else {
                v.as_bytes().to_vec()
            }),
        })
    }

    /// Removes pattern `id` (the others keep theirs).
    pub fn remove(&mut self, id: u64) {
        if let Some(pos) = self.items.iter().position(|(i, _)| *i == id) {
            let (_, item) = self.items.remove(pos);
            self.index.change(self.method, &item, id, false);
        }
        self.data.remove(&id);
    }

    /// Empties the list.
    pub fn clear(&mut self) {
        self.items.clear();
        self.index = Index::default();
        self.data.clear();
    }

    /// Whether `sample` matches one of the patterns (`found` and `bool` take none).
    pub fn matches(&self, sample: &Value) -> bool {
        match self.method {
            Method::Found => true,
            Method::Bool => sample.int().is_some_and(|i| i != 0),
            // (most often an `-f` expression's own, empty, list)
            _ if self.items.is_empty() => false,
            Method::Ip => match sample {
                Value::Ip(ip) => self.index.has_ip(*ip),
                other => std::str::from_utf8(&other.text())
                    .ok()
                    .and_then(|t| t.parse::<IpAddr>().ok())
                    .is_some_and(|ip| self.index.has_ip(ip)),
            },
            Method::Str | Method::Bin => {
                let mut t = sample.text();
                if self.ignore_case && self.method == Method::Str {
                    t.make_ascii_lowercase();
                }
                self.index.exact.contains_key(&t)
            }
            _ => self.matching(sample).next().is_some(),
        }
    }

    /// The ids of the patterns `sample` matches, in order.
    pub fn matching<'s>(&'s self, sample: &Value) -> impl Iterator<Item = u64> + 's {
        let prepared = match self.method {
            Method::Int => Prepared::Int(sample.int()),
            Method::Len => Prepared::Int(Some(sample.text().len() as i64)),
            Method::Ip => Prepared::Ip(match sample {
                Value::Ip(ip) => Some(*ip),
                other => std::str::from_utf8(&other.text())
                    .ok()
                    .and_then(|t| t.parse::<IpAddr>().ok()),
            }),
            m => {
                let mut t = sample.text();
                if self.ignore_case && !matches!(m, Method::Reg | Method::Bin) {
                    t.make_ascii_lowercase();
                }
                Prepared::Bytes(t)
            }
        };
        let method = self.method;
        self.items
            .iter()
            .filter(move |(_, item)| match (item, &prepared) {
                (Item::Range(r), Prepared::Int(Some(i))) => r.min <= *i && *i <= r.max,
                (Item::Net(n), Prepared::Ip(Some(ip))) => n.contains(*ip),
                (Item::Reg(re), Prepared::Bytes(t)) => re.is_match(t),
                (Item::Bytes(p), Prepared::Bytes(t)) => match method {
                    Method::Beg => t.starts_with(p),
                    Method::End => t.ends_with(p),
                    Method::Sub => !p.is_empty() && t.windows(p.len()).any(|w| w == &p[..]),
                    Method::Dom => word_match(t, p, b"/?.:"),
                    Method::Dir => word_match(t, p, b"/?"),
                    _ => t == p,
                },
                _ => false,
            })
            .map(|(id, _)| *id)
    }

    /// The pattern HAProxy's lookups find for `sample` (`get acl`, a map's value): the
    /// first of the longest networks for an address and the first exact string (found in
    /// the index), the first of the longest prefixes for a case-sensitive `beg` (HAProxy's
    /// prefix tree), else the first match in order.
    pub fn best_match(&self, sample: &Value) -> Option<u64> {
        // the hashed strings and networks find their pattern without a scan
        match self.method {
            Method::Ip => {
                let ip = match sample {
                    Value::Ip(ip) => Some(*ip),
                    other => std::str::from_utf8(&other.text())
                        .ok()
                        .and_then(|t| t.parse::<IpAddr>().ok()),
                };
                return ip.and_then(|ip| self.index.find_ip(ip));
            }
            Method::Str | Method::Bin => {
                let mut t = sample.text();
                if self.ignore_case && self.method == Method::Str {
                    t.make_ascii_lowercase();
                }
                return self.index.exact.get(&t).and_then(Ids::first);
            }
            _ => {}
        }
        if self.method == Method::Beg && !self.ignore_case {
            // the first of the longest prefixes
            let t = sample.text();
            let mut best: Option<(usize, u64)> = None;
            for (id, item) in &self.items {
                if let Item::Bytes(p) = item {
                    if t.starts_with(p) && best.map_or(true, |(len, _)| p.len() > len) {
                        best = Some((p.len(), *id));
                    }
                }
            }
            best.map(|(_, id)| id)
        } else {
            self.matching(sample).next()
        }
    }
}

/// HAProxy's `-m dom` and `-m dir` (its `match_word`): the pattern occurs in the sample
/// bounded by one of `delims` (`/?.:` for a domain, `/?` for a directory) or the ends.
fn word_match(t: &[u8], p: &[u8], delims: &[u8]) -> bool {
    let delim = |b: u8| delims.contains(&b);
    // a pattern's own leading or trailing delimiters are not part of the word
    let p = {
        let s = p.iter().position(|&b| !delim(b)).unwrap_or(p.len());
        let e = p.iter().rposition(|&b| !delim(b)).map_or(s, |e| e + 1);
        &p[s..e]
    };
    if p.is_empty() || p.len() > t.len() {
        return false;
    }
    (0..=t.len() - p.len()).any(|i| {
        t[i..i + p.len()] == *p
            && (i == 0 || delim(t[i - 1]))
            && (i + p.len() == t.len() || delim(t[i + p.len()]))
    })
}

/// An integer value: `N`, `N:M`, `:M`, `N:` (or `-` for `:`), under the comparison word
/// before it (a range ignores it, as in HAProxy).
fn parse_range(v: &str, op: Op) -> Result<Range, String> {
    let int = |s: &str| -> Result<i64, String> {
        s.parse::<i64>()
            .map_err(|_| format!("'{v}' is not a number"))
    };
    // ':' first; '-' separates too, but not as a leading sign (`-5`, `-5:` as stored)
    let sep = v
        .find(':')
        .or_else(|| v.get(1..).and_then(|r| r.find('-')).map(|i| i + 1));
    if op != Op::Eq && sep.is_none() {
        let n = int(v)?;
        return Ok(match op {
            Op::Ge => Range {
                min: n,
                max: i64::MAX,
            },
            Op::Gt => Range {
                min: n.saturating_add(1),
                max: i64::MAX,
            },
            Op::Le => Range {
                min: i64::MIN,
                max: n,
            },
            Op::Lt => Range {
                min: i64::MIN,
                max: n.saturating_sub(1),
            },
            Op::Eq => unreachable!("handled above"),
        });
    }
    match sep {
        None => {
            let n = int(v)?;
            Ok(Range { min: n, max: n })
        }
        Some(i) => {
            let (a, b) = (&v[..i], &v[i + 1..]);
            let bad = || format!("'{v}' is not a valid number range");
            let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
            let min = if a.is_empty() { i64::MIN } else { num(a)? };
            let max = if b.is_empty() { i64::MAX } else { num(b)? };
            if min > max {
                return Err(bad());
            }
            Ok(Range { min, max })
        }
    }
}

/// An address or network: `a.b.c.d`, `a.b.c.d/len`, `a.b.c.d/mask`, an IPv6 address with an
/// optional `/len`.
pub fn parse_net(v: &str) -> Result<Net, String> {
    let bad = || format!("'{v}' is not a valid IPv4 or IPv6 address");
    let (addr, len) = match v.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(b) if b <= max => b,
            Ok(_) => return Err(bad()),
            Err(_) => match (addr, l.parse::<Ipv4Addr>()) {
                (IpAddr::V4(_), Ok(mask)) => mask_bits(mask).ok_or_else(bad)?,
                _ => return Err(bad()),
            },
        },
    };
    // the network's address: bits past the prefix are not compared anyway, but keep it tidy
    let addr = match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(
            u32::from(a) & u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0),
        )),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(
            u128::from(a) & u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0),
        )),
    };
    Ok(Net { addr, bits })
}

/// The prefix length of a contiguous dotted netmask.
fn mask_bits(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// Hex digits to bytes (`-m bin`).
fn parse_hex(v: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("'{v}' is not a valid hex string");
    if v.len() % 2 != 0 {
        return Err(bad());
    }
    (0..v.len())
        .step_by(2)
        .map(|i| {
            v.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}
