//! The `map` converters (`map_<match>[_<output>](<file>[,<default>])`): the value a map file
//! gives the sample, as HAProxy's `map.c` computes it. The file is read once at start-up into a
//! [`PatRef`] the Runtime API (`add map`, `set map`...) and Lua's Patref change in place.

use std::net::IpAddr;
use std::sync::Arc;

use super::patref::{self, Out, PatRef};
use super::pattern::{Method, Value};

/// How a map converter casts its input before the lookup (HAProxy's `expect_type` of the
/// match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Text (`str`, `beg`, `sub`, `dir`, `dom`, `end`, `reg`).
    Text,
    /// An integer (`map_int*`).
    Int,
    /// An address (`map_ip*`).
    Addr,
}

/// One map converter: the list it reads and what it gives when no key matches.
#[derive(Debug, Clone)]
pub struct MapConv {
    /// Its keyword as written (`map_beg_int`).
    pub name: String,
    /// The file's entries (shared with every expression using the file).
    pub list: Arc<PatRef>,
    /// How the sample is cast for the lookup.
    pub input: Input,
    /// `<default>`: the output when no key matches (none: no sample).
    pub default: Option<Value>,
    /// `map_regm`: the value is a template whose `\1`.. take the matching regex's groups.
    pub regm: bool,
}

impl PartialEq for MapConv {
    fn eq(&self, other: &MapConv) -> bool {
        self.name == other.name
            && Arc::ptr_eq(&self.list, &other.list)
            && self.default == other.default
    }
}

impl Eq for MapConv {}

/// The match methods a map converter's name may carry, with the input each wants.
const MATCHES: &[(&str, Method, Input)] = &[
    ("str", Method::Str, Input::Text),
    ("beg", Method::Beg, Input::Text),
    ("sub", Method::Sub, Input::Text),
    ("dir", Method::Dir, Input::Text),
    ("dom", Method::Dom, Input::Text),
    ("end", Method::End, Input::Text),
    ("reg", Method::Reg, Input::Text),
    ("int", Method::Int, Input::Int),
    ("ip", Method::Ip, Input::Addr),
];

/// Splits a converter name into its match and output: `map` is `map_str`, `map_<m>` outputs
/// text, `map_<m>_<int|ip|key>` the rest; `None` for a name that is no map converter.
fn split_name(name: &str) -> Option<(Method, Input, Out)> {
    if name == "map" {
        return Some((Method::Str, Input::Text, Out::Str));
    }
    // `map_regm`: a regex list whose values use the match's groups (text only)
    if name == "map_regm" {
        return Some((Method::Reg, Input::Text, Out::Str));
    }
    let rest = name.strip_prefix("map_")?;
    let (m, out) = match rest.split_once('_') {
        None => (rest, Out::Str),
        Some((m, o)) => (
            m,
            match o {
                "int" => Out::Int,
                "ip" => Out::Ip,
                "key" => Out::Key,
                _ => return None,
            },
        ),
    };
    let (_, method, input) = MATCHES.iter().find(|(n, ..)| *n == m)?;
    Some((*method, *input, out))
}

/// Whether `name` is a map converter's keyword.
pub fn is_map(name: &str) -> bool {
    split_name(name).is_some()
}

/// The sample as a lookup with `method` wants it (HAProxy's `sample_convert` to the match's
/// type): an integer or an address for those methods, else text; `None` when it cannot be.
pub fn cast_for(method: Method, v: Value) -> Option<Value> {
    let input = MATCHES
        .iter()
        .find(|(_, m, _)| *m == method)
        .map_or(Input::Text, |(_, _, i)| *i);
    input.cast(v)
}

impl Input {
    /// `v` cast to this input.
    fn cast(self, v: Value) -> Option<Value> {
        Some(match (self, v) {
            (Input::Text, v @ (Value::Str(_) | Value::Bin(_))) => v,
            (Input::Text, v) => Value::Str(v.to_text().into_bytes()),
            (Input::Int, v) => Value::Int(super::convert::as_int(&v)?),
            (Input::Addr, v) => Value::Ip(super::convert::as_ip(&v)?),
        })
    }
}

/// The map converters' keywords, for messages.
pub fn names() -> Vec<String> {
    let mut v = vec!["map".to_string()];
    for (m, ..) in MATCHES {
        v.push(format!("map_{m}"));
    }
    v.push("map_regm".into());
    v.push("map_<match>_int|ip|key".into());
    v
}

/// Loads the map file `file` for lookups with `method` giving text (Lua's `Map.new`): its
/// list, or HAProxy's message (`failed to open pattern file <f>`, a bad key with its line).
pub fn load_text_map(
    file: &str,
    method: Method,
    site: &(String, usize),
) -> Result<Arc<PatRef>, String> {
    let bytes = std::fs::read(file).map_err(|_| format!("failed to open pattern file <{file}>"))?;
    let display = format!(
        "pattern loaded from file '{file}' used by map at file '{}' line {}",
        site.0, site.1
    );
    let pairs = patref::read_pairs(&String::from_utf8_lossy(&bytes));
    PatRef::new_map(
        file.to_string(),
        display,
        site.clone(),
        method,
        Out::Str,
        pairs,
    )
    .map(Arc::new)
}

impl MapConv {
    /// Parses `name(<file>[,<default>])`, reading the file (HAProxy loads it while parsing
    /// the configuration). `site` is the configuration file and line using it.
    pub fn parse(
        name: &str,
        args: Option<&str>,
        site: &(String, usize),
    ) -> Result<MapConv, String> {
        let (method, input, out) =
            split_name(name).ok_or_else(|| format!("unknown converter '{name}'"))?;
        let Some(args) = args else {
            return Err(format!(
                "converter '{name}' : missing arg 1 (expects <map file>[,<default value>])"
            ));
        };
        let invalid = |e: String| format!("invalid args in converter '{name}' : {e}");
        // `<file>[,<default>]`; `map_*_key` takes the file alone
        let most = if out == Out::Key { 1 } else { 2 };
        let list = super::convert::text::split_args(args);
        let parts: Vec<&str> = list.iter().map(|a| a.trim()).collect();
        if parts.len() > most {
            return Err(invalid(format!(
                "end of arguments expected at position {}, but got ',{}'",
                most + 1,
                parts[most..].join(",")
            )));
        }
        let (file, default) = (parts[0], parts.get(1).copied());
        let default = match default {
            None => None,
            Some(d) => Some(match out {
                Out::Str | Out::Key => Value::Str(d.as_bytes().to_vec()),
                Out::Int => Value::Int(d.parse::<i64>().map_err(|_| {
                    format!("invalid arg 2 in converter '{name}' : failed to parse '{d}' as type 'integer' at position 2")
                })?),
                Out::Ip => Value::Ip(
                    d.parse::<IpAddr>()
                        .map_err(|_| invalid(format!("map: cannot parse default ip <{d}>.")))?,
                ),
            }),
        };
        // a file that is not all UTF-8 loads all the same, its stray bytes replaced
        let bytes = std::fs::read(file)
            .map_err(|_| invalid(format!("failed to open pattern file <{file}>")))?;
        let text = String::from_utf8_lossy(&bytes);
        let display = format!(
            "pattern loaded from file '{file}' used by map at file '{}' line {}",
            site.0, site.1
        );
        let list = PatRef::new_map(
            file.to_string(),
            display,
            site.clone(),
            method,
            out,
            patref::read_pairs(&text),
        )
        .map_err(invalid)?;
        Ok(MapConv {
            name: name.to_string(),
            list: Arc::new(list),
            input,
            default,
            regm: name == "map_regm",
        })
    }

    /// The match method its output calls for, when an ACL compares it.
    pub fn method(&self) -> Method {
        match self.list.out() {
            Some(Out::Int) => Method::Int,
            Some(Out::Ip) => Method::Ip,
            _ => Method::Str,
        }
    }

    /// The value for `v` (cast as the match wants it), the default when no key matches, or
    /// `None` (no sample).
    pub fn apply(&self, v: Value) -> Option<Value> {
        let key = self.input.cast(v)?;
        let found = if self.regm {
            self.list.lookup_regm(&key)
        } else {
            self.list.lookup(&key)
        };
        found.or_else(|| self.default.clone())
    }
}
