//! Sample converters (`fetch,conv1,conv2(args)`): the ones TCP configs use on addresses, server
//! names, stick tables and maps — `lower`, `upper`, `length`, `bool`, `not`, `ipmask`,
//! `in_table`, the `table_*` family, the `map*` family, the text ones of [`text`] (`field`,
//! `word`, `regsub`...) and the integer ones of [`arith`] (`add`, `mod`...).

pub mod arith;
pub mod text;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::fetch::Env;
use super::pattern::{Method, Value};
use crate::stick::fetch::{Op, TableRead};

/// One converter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conv {
    /// `lower`: text in lower case.
    Lower,
    /// `upper`.
    Upper,
    /// `length`: the text's length in bytes.
    Length,
    /// `bool`: true when the integer is not 0.
    Bool,
    /// `not`: true when the integer is 0.
    Not,
    /// `ipmask(<v4 mask>[,<v6 mask>])`: the address's network.
    Ipmask(u8, Option<u8>),
    /// `in_table(<table>)`: whether the table holds the sample as a key.
    InTable(String),
    /// `table_expire(<table>[,<default>])`: milliseconds before the key's entry expires.
    Expire(String, Option<i64>),
    /// `table_idle(<table>[,<default>])`: milliseconds since the key's entry was touched.
    Idle(String, Option<i64>),
    /// `table_<x>(<table>)`: a value of the sample's entry in the table.
    Table(String, Op),
    /// `map_<match>[_<out>](<file>[,<default>])`: the value a map file gives the sample.
    Map(super::map::MapConv),
    /// `field`, `word`, `regsub`, `ltrim`, `rtrim`, `bytes`, `hex`, `base64`.
    Text(text::TextConv),
    /// `add`, `sub`, `mul`, `div`, `mod`, `and`, `or`, `xor`, `neg`, `cpl`, `odd`, `even`.
    Int(arith::IntConv),
    /// `set-var(<name>[,<cond>...])`: stores the sample and passes it on (fails when it
    /// could not store it).
    SetVar(super::vars::VarName, Vec<super::vars::SetCond>),
    /// `unset-var(<name>)`: removes the variable and passes the sample on.
    UnsetVar(super::vars::VarName),
    /// An integer converter whose operand is a variable (`add(txn.n)`): its value, read as an
    /// integer when the converter runs (none: no sample). The converter holds a placeholder.
    IntVar(arith::IntConv, super::vars::VarName),
    /// `concat([<start>],[<var>],[<end>])`: the text, then `start`, the variable's value (if
    /// set) and `end`.
    Concat(Vec<u8>, Option<super::vars::VarName>, Vec<u8>),
}

/// The converters harp knows, for messages.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = [
        "lower",
        "upper",
        "length",
        "bool",
        "not",
        "ipmask",
        "in_table",
        "set-var",
        "unset-var",
        "concat",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(crate::stick::fetch::table_ops().map(|(n, _)| format!("table_{n}")));
    v.extend(super::map::names());
    v.extend(
        text::NAMES
            .iter()
            .chain(arith::NAMES)
            .map(|s| s.to_string()),
    );
    v
}

impl Conv {
    /// Parses one converter (`name` or `name(args)`); `proxy` is the default table's name,
    /// `site` the configuration file and line (a map file names its first user).
    pub fn parse(word: &str, proxy: &str, site: &(String, usize)) -> Result<Conv, String> {
        let (name, args) = match word.split_once('(') {
            Some((n, rest)) => match rest.strip_suffix(')') {
                Some(a) => (n, Some(a)),
                None => {
                    return Err(format!(
                        "missing closing ')' after arguments to converter '{n}'"
                    ))
                }
            },
            None => (word, None),
        };
        let no_args = |c: Conv| match args {
            Some(a) if !a.is_empty() => {
                Err(format!("converter '{name}' does not support any args"))
            }
            _ => Ok(c),
        };
        // a table argument is required; an empty one names the proxy's own table
        let table = || -> Result<String, String> {
            match args {
                Some(a) if !a.trim().is_empty() => Ok(a.trim().to_string()),
                Some(_) => Ok(proxy.to_string()),
                None => Err(format!(
                    "converter '{name}' : missing arg 1 (expects <table>)"
                )),
            }
        };
        if super::map::is_map(name) {
            return Ok(Conv::Map(super::map::MapConv::parse(name, args, site)?));
        }
        if let Some(c) = text::TextConv::parse(name, args) {
            return c.map(Conv::Text);
        }
        if let Some(c) = arith::IntConv::parse(name, args) {
            // HAProxy's check_operator: a variable name first, else an integer
            let arg = args.unwrap_or("");
            if c.is_err() {
                if let Ok(v) = super::vars::VarName::parse(arg) {
                    if let Some(Ok(placeholder)) = arith::IntConv::parse(name, Some("0")) {
                        return Ok(Conv::IntVar(placeholder, v));
                    }
                }
            }
            return c.map(Conv::Int);
        }
        Ok(match name {
            "concat" => {
                let a = text::split_args(args.unwrap_or(""));
                if a.len() > 3 {
                    // HAProxy's make_arg_list counts this one as arg 3
                    let raw = args.unwrap_or("");
                    let rest = raw.splitn(4, ',').nth(3).unwrap_or("");
                    return Err(format!(
                        "invalid arg 3 in converter 'concat' : expected ')' before ',{rest})'"
                    ));
                }
                let var = match a.get(1).filter(|v| !v.is_empty()) {
                    None => None,
                    Some(v) => Some(super::vars::VarName::parse(v).map_err(|_| {
                        format!("invalid args in converter 'concat' : failed to register variable name '{v}'")
                    })?),
                };
                let part = |i: usize| a.get(i).map(|s| s.as_bytes().to_vec()).unwrap_or_default();
                Conv::Concat(part(0), var, part(2))
            }
            "set-var" | "unset-var" => {
                let bad = |e: String| format!("invalid args in converter '{name}' : {e}");
                let a = text::split_args(args.unwrap_or(""));
                let max = if name == "set-var" { 5 } else { 1 };
                if a.len() > max {
                    let rest: Vec<&str> = args.unwrap_or("").splitn(max + 1, ',').collect();
                    return Err(format!(
                        "invalid arg {} in converter '{name}' : expected ')' before ',{})'",
                        max + 1,
                        rest[max]
                    ));
                }
                let var = super::vars::VarName::parse(&a[0]).map_err(bad)?;
                if name == "unset-var" {
                    Conv::UnsetVar(var)
                } else {
                    let conds = a[1..]
                        .iter()
                        .map(|c| {
                            super::vars::SetCond::parse(c)
                                .ok_or_else(|| bad(format!("unknown condition \"{c}\"")))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Conv::SetVar(var, conds)
                }
            }
            "lower" => no_args(Conv::Lower)?,
            "upper" => no_args(Conv::Upper)?,
            "length" => no_args(Conv::Length)?,
            "bool" => no_args(Conv::Bool)?,
            "not" => no_args(Conv::Not)?,
            "ipmask" => {
                let a = args.unwrap_or("");
                let mut parts = a.split(',').map(str::trim);
                let v4 = parts.next().filter(|p| !p.is_empty()).ok_or_else(|| {
                    format!("converter '{name}' : missing arg 1 (expects <mask4>[,<mask6>])")
                })?;
                let v4 = mask_len(v4, 32)
                    .ok_or_else(|| format!("converter '{name}' : invalid IPv4 mask '{v4}'"))?;
                let v6 =
                    match parts.next() {
                        None => None,
                        Some(m) => Some(mask_len(m, 128).ok_or_else(|| {
                            format!("converter '{name}' : invalid IPv6 mask '{m}'")
                        })?),
                    };
                Conv::Ipmask(v4, v6)
            }
            "in_table" => Conv::InTable(table()?),
            "table_expire" | "table_idle" => {
                let a = args.ok_or_else(|| {
                    format!("converter '{name}' : missing arg 1 (expects <table>[,<default>])")
                })?;
                let (t, default) = match a.split_once(',') {
                    Some((t, d)) => {
                        let d = d.trim().parse::<i64>().map_err(|_| {
                            format!("converter '{name}' : '{}' is not an integer", d.trim())
                        })?;
                        (t.trim(), Some(d))
                    }
                    None => (a.trim(), None),
                };
                let t = if t.is_empty() {
                    proxy.to_string()
                } else {
                    t.to_string()
                };
                if name == "table_expire" {
                    Conv::Expire(t, default)
                } else {
                    Conv::Idle(t, default)
                }
            }
            other => match other
                .strip_prefix("table_")
                .and_then(|x| crate::stick::fetch::table_ops().find(|(n, _)| *n == x))
            {
                Some((_, op)) => Conv::Table(table()?, op),
                None => {
                    return Err(format!(
                        "unknown converter '{other}' (harp knows {})",
                        names().join(", ")
                    ))
                }
            },
        })
    }

    /// Its keyword.
    pub fn name(&self) -> String {
        match self {
            Conv::Lower => "lower".into(),
            Conv::Upper => "upper".into(),
            Conv::Length => "length".into(),
            Conv::Bool => "bool".into(),
            Conv::Not => "not".into(),
            Conv::Ipmask(..) => "ipmask".into(),
            Conv::InTable(_) => "in_table".into(),
            Conv::Expire(..) => "table_expire".into(),
            Conv::Idle(..) => "table_idle".into(),
            Conv::Table(_, op) => crate::stick::fetch::table_ops()
                .find(|(_, o)| o == op)
                .map_or_else(|| "table_*".into(), |(n, _)| format!("table_{n}")),
            Conv::Map(m) => m.name.clone(),
            Conv::Text(c) => c.name().into(),
            Conv::Int(c) => c.name().into(),
            Conv::SetVar(..) => "set-var".into(),
            Conv::UnsetVar(_) => "unset-var".into(),
            Conv::IntVar(c, _) => c.name().into(),
            Conv::Concat(..) => "concat".into(),
        }
    }

    /// Whether it gives its input back unchanged (the variable ones): the type is the
    /// previous one's.
    pub fn passes_through(&self) -> bool {
        matches!(self, Conv::SetVar(..) | Conv::UnsetVar(_))
    }

    /// The table it reads, for the start-up check that it exists.
    pub fn table(&self) -> Option<&str> {
        match self {
            Conv::InTable(t) | Conv::Table(t, _) | Conv::Expire(t, _) | Conv::Idle(t, _) => Some(t),
            _ => None,
        }
    }

    /// The match method its output calls for.
    pub fn method(&self) -> Method {
        match self {
            Conv::Lower | Conv::Upper => Method::Str,
            Conv::Length | Conv::Table(..) | Conv::Expire(..) | Conv::Idle(..) => Method::Int,
            Conv::Bool | Conv::Not | Conv::InTable(_) => Method::Bool,
            Conv::Ipmask(..) => Method::Ip,
            Conv::Map(m) => m.method(),
            Conv::Text(text::TextConv::Bytes(..)) => Method::Bin,
            Conv::Text(_) => Method::Str,
            Conv::Int(c) if c.is_bool() => Method::Bool,
            Conv::Int(_) => Method::Int,
            Conv::IntVar(c, _) if c.is_bool() => Method::Bool,
            Conv::IntVar(..) => Method::Int,
            Conv::Concat(..) => Method::Str,
            // callers skip these (their output is their input)
            Conv::SetVar(..) | Conv::UnsetVar(_) => Method::Str,
        }
    }

    /// Whether its output no longer depends on the content (the `table_*` ones read a table,
    /// which HAProxy marks volatile but final).
    pub fn settles(&self) -> bool {
        matches!(
            self,
            Conv::InTable(_) | Conv::Table(..) | Conv::Expire(..) | Conv::Idle(..)
        )
    }

    /// Converts `v`; `None` when it cannot (no sample then).
    pub fn apply(&self, v: Value, env: &dyn Env) -> Option<Value> {
        Some(match self {
            Conv::Lower => Value::Str(text(&v).to_ascii_lowercase()),
            Conv::Upper => Value::Str(text(&v).to_ascii_uppercase()),
            Conv::Length => Value::Int(text(&v).len() as i64),
            Conv::Bool => Value::Bool(int(&v)? != 0),
            Conv::Not => Value::Bool(int(&v)? == 0),
            Conv::Ipmask(m4, m6) => match ip(&v)? {
                IpAddr::V4(a) => Value::Ip(IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask4(*m4)))),
                IpAddr::V6(a) => {
                    let m = (*m6)?;
                    Value::Ip(IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask6(m))))
                }
            },
            Conv::InTable(t) => Value::Bool(env.table_read(t, &v, TableRead::Present)? != 0),
            Conv::Table(t, op) => Value::Int(env.table_read(t, &v, TableRead::Value(*op))?),
            // an absent key gives the default, else no sample
            Conv::Expire(t, d) => Value::Int(env.table_read(t, &v, TableRead::Expire).or(*d)?),
            Conv::Idle(t, d) => Value::Int(env.table_read(t, &v, TableRead::Idle).or(*d)?),
            Conv::Map(m) => m.apply(v)?,
            Conv::Text(c) => {
                // the byte-wise ones take the sample as binary (HAProxy's casts to bin: an
                // address's bytes, an integer's 8 big-endian ones), the others as text
                let bytewise = matches!(
                    c,
                    text::TextConv::Hex | text::TextConv::Base64 | text::TextConv::Bytes(..)
                );
                let input = if bytewise { binary(&v) } else { text(&v) };
                let out = c.apply(&input, env.is_final())?;
                if matches!(c, text::TextConv::Bytes(..)) {
                    Value::Bin(out)
                } else {
                    Value::Str(out)
                }
            }
            Conv::Int(c) => match c.apply(int(&v)?) {
                arith::Out::Int(i) => Value::Int(i),
                arith::Out::Bool(b) => Value::Bool(b),
            },
            Conv::SetVar(name, conds) => {
                if !env.set_var(name, v.clone(), conds) {
                    return None;
                }
                v
            }
            Conv::UnsetVar(name) => {
                if !env.unset_var(name) {
                    return None;
                }
                v
            }
            Conv::IntVar(c, name) => {
                let n = match env.var(name) {
                    super::vars::Got::Val(x) => int(&x)?,
                    _ => return None,
                };
                match c.with_operand(n).apply(int(&v)?) {
                    arith::Out::Int(i) => Value::Int(i),
                    arith::Out::Bool(b) => Value::Bool(b),
                }
            }
            Conv::Concat(start, var, end) => {
                let mut out = text(&v);
                out.extend_from_slice(start);
                if let Some(name) = var {
                    if let super::vars::Got::Val(x) = env.var(name) {
                        out.extend_from_slice(&text(&x));
                    }
                }
                out.extend_from_slice(end);
                Value::Str(out)
            }
        })
    }
}

/// A mask as a prefix length (`24`) or a dotted mask (`255.255.255.0`).
fn mask_len(m: &str, max: u8) -> Option<u8> {
    if let Ok(n) = m.parse::<u8>() {
        return (n <= max).then_some(n);
    }
    if max == 32 {
        let bits = u32::from(m.parse::<Ipv4Addr>().ok()?);
        let n = bits.leading_ones();
        return (bits.checked_shl(n).unwrap_or(0) == 0).then_some(n as u8);
    }
    None
}

fn mask4(n: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(n.min(32))).unwrap_or(0)
}

fn mask6(n: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(n.min(128)))
        .unwrap_or(0)
}

/// The sample as binary, as HAProxy casts one: text and bytes as they are, an address's 4 or
/// 16 bytes, an integer (or boolean) as 8 big-endian bytes.
fn binary(v: &Value) -> Vec<u8> {
    match v {
        Value::Bool(b) => i64::from(*b).to_be_bytes().to_vec(),
        Value::Int(i) => i.to_be_bytes().to_vec(),
        Value::Ip(IpAddr::V4(a)) => a.octets().to_vec(),
        Value::Ip(IpAddr::V6(a)) => a.octets().to_vec(),
        Value::Str(s) | Value::Bin(s) => s.clone(),
    }
}

/// The sample as text (HAProxy's casts to a string: raw bytes stop at a NUL).
fn text(v: &Value) -> Vec<u8> {
    match v {
        Value::Bool(b) => (if *b { "1" } else { "0" }).into(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Ip(a) => a.to_string().into_bytes(),
        Value::Str(s) => s.clone(),
        Value::Bin(s) => s.iter().copied().take_while(|c| *c != 0).collect(),
    }
}

/// The sample as an integer, as HAProxy casts one (for actions that store one, too).
pub fn as_int(v: &Value) -> Option<i64> {
    int(v)
}

/// The sample as an integer, as HAProxy casts one: text by its leading digits (none: 0; only
/// an empty one fails), an IPv4 address as its 32 bits.
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Int(i) => Some(*i),
        Value::Str(s) if s.is_empty() => None,
        Value::Str(s) => Some(super::pattern::read_int64(s).0),
        Value::Ip(IpAddr::V4(a)) => Some(i64::from(u32::from(*a))),
        _ => None,
    }
}

/// The sample as an address, as HAProxy casts one (for the map converters too).
pub fn as_ip(v: &Value) -> Option<IpAddr> {
    ip(v)
}

/// The sample as an address: text parsed, an integer as an IPv4 address.
fn ip(v: &Value) -> Option<IpAddr> {
    match v {
        Value::Ip(a) => Some(*a),
        Value::Str(s) => std::str::from_utf8(s).ok()?.trim().parse().ok(),
        Value::Int(i) => u32::try_from(*i)
            .ok()
            .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        _ => None,
    }
}
