//! HAProxy variables: `set-var(<scope>.<name>) <expr>`, `set-var-fmt`, `unset-var` and the
//! `var()` fetch, so that a TCP config can remember a sample in one rule and read it in a later
//! one (`use_backend %[var(txn.be)]`) or in its log line.
//!
//! A session's variables (`sess`, `txn`, `req`, `res`: in TCP mode a session carries one
//! stream, so all four live as long as it) are kept in a [`SessVars`] the worker owns; the
//! process's (`proc`) in the [`ProcVars`] of the registry, shared by the workers, the Runtime
//! API (`get var`, `set var`) and Lua (`core.get_var`, `core.set_var`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::pattern::Value;

/// Where a variable lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `proc.`: the whole process, until it stops.
    Proc,
    /// `sess.`: the client's session.
    Sess,
    /// `txn.`: the transaction (the session's one stream in TCP mode).
    Txn,
    /// `req.`: the request's processing.
    Req,
    /// `res.`: the response's processing.
    Res,
    /// `check.`: a health check's (nothing in harp sets them).
    Check,
}

/// A variable's name, its scope included (`txn.backend`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarName {
    /// Its scope.
    pub scope: Scope,
    /// The whole name as written, which is also the key it is stored under.
    pub full: Arc<str>,
}

impl std::fmt::Display for VarName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full)
    }
}

impl VarName {
    /// HAProxy's `vars_hash_name`: a scope prefix, then a name of letters, digits, `_` and
    /// `.`; its messages otherwise.
    pub fn parse(name: &str) -> Result<VarName, String> {
        VarName::parse_at(name).map_err(|(e, _)| e)
    }

    /// [`VarName::parse`], with the byte offset of a bad character in `name` (HAProxy quotes
    /// the rest of the text it was given from there).
    fn parse_at(name: &str) -> Result<VarName, (String, Option<usize>)> {
        if name.is_empty() {
            return Err(("Empty variable name cannot be accepted".into(), None));
        }
        let scopes = [
            ("proc.", Scope::Proc),
            ("sess.", Scope::Sess),
            ("txn.", Scope::Txn),
            ("req.", Scope::Req),
            ("res.", Scope::Res),
            ("check.", Scope::Check),
        ];
        let Some((prefix, scope)) = scopes
            .iter()
            .find(|(p, _)| name.len() > p.len() && name.starts_with(p))
        else {
            return Err((format!(
                "invalid variable name '{name}'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'"
            ), None));
        };
        let short = &name[prefix.len()..];
        if let Some(at) = short
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map(|(i, _)| i)
        {
            let at = prefix.len() + at;
            return Err((
                format!("invalid syntax at char '{}'", &name[at..]),
                Some(at),
            ));
        }
        Ok(VarName {
            scope: *scope,
            full: Arc::from(name),
        })
    }
}

/// Which variable action a word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `set-var(...)`.
    Set,
    /// `set-var-fmt(...)`.
    SetFmt,
    /// `unset-var(...)`.
    Unset,
}

impl Verb {
    /// The verb a rule's action word starts with, if any (HAProxy matches these by prefix).
    pub fn of(word: &str) -> Option<(Verb, usize)> {
        [
            ("set-var-fmt", Verb::SetFmt),
            ("set-var", Verb::Set),
            ("unset-var", Verb::Unset),
        ]
        .into_iter()
        .find(|(p, _)| word.starts_with(p))
        .map(|(p, v)| (v, p.len()))
    }
}

/// HAProxy's `parse_store`: the variable and conditions of an action word such as
/// `set-var(txn.x,ifnotexists)`, with its messages.
pub fn parse_action(word: &str) -> Result<(Verb, VarName, Vec<SetCond>), String> {
    const EXPECTS: &str =
        "Expects 'set-var(<var-name>)', 'set-var-fmt(<var-name>)' or 'unset-var(<var-name>)'";
    let Some((verb, len)) = Verb::of(word) else {
        return Err(format!("invalid or incomplete action '{word}'. {EXPECTS}"));
    };
    if word.as_bytes().get(len) != Some(&b'(') {
        return Err(format!("invalid or incomplete action '{word}'. {EXPECTS}"));
    }
    let Some(inner) = word[len + 1..].strip_suffix(')') else {
        return Err(format!(
            "incomplete argument after action '{word}'. {EXPECTS}"
        ));
    };
    let mut fields = inner.split(',');
    let name = fields.next().unwrap_or("");
    // the conditions stop at the first empty one
    let conds: Vec<&str> = fields.take_while(|f| !f.is_empty()).collect();
    if verb == Verb::Unset && !conds.is_empty() {
        return Err("unset-var does not expect parameters after the variable name. Only \"set-var\" and \"set-var-fmt\" manage conditions".into());
    }
    let conds = conds
        .iter()
        .map(|c| SetCond::parse(c).ok_or_else(|| format!("unknown condition \"{c}\"")))
        .collect::<Result<Vec<_>, _>>()?;
    let name = VarName::parse_at(name).map_err(|(e, at)| match at {
        // HAProxy's message quotes the rest of the word, closing parenthesis included
        Some(at) => format!("invalid syntax at char '{}'", &word[len + 1 + at..]),
        None => e,
    })?;
    Ok((verb, name, conds))
}

/// A condition of `set-var(<name>,<cond>...)`: the variable is set only when all hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCond {
    /// `ifexists`: it exists already.
    IfExists,
    /// `ifnotexists`: it does not exist yet.
    IfNotExists,
    /// `ifempty`: the new sample is empty (an empty text or binary, or no sample).
    IfEmpty,
    /// `ifnotempty`: the new sample is not empty.
    IfNotEmpty,
    /// `ifset`: it exists and holds a value (a type other than nothing).
    IfSet,
    /// `ifnotset`: it does not, or holds nothing.
    IfNotSet,
    /// `ifgt`: both are integers and the old one is greater than the new one.
    IfGt,
    /// `iflt`: both are integers and the old one is lower than the new one.
    IfLt,
}

impl SetCond {
    /// The names HAProxy's `vars_parse_cond_param` knows.
    pub fn parse(word: &str) -> Option<SetCond> {
        Some(match word {
            "ifexists" => SetCond::IfExists,
            "ifnotexists" => SetCond::IfNotExists,
            "ifempty" => SetCond::IfEmpty,
            "ifnotempty" => SetCond::IfNotEmpty,
            "ifset" => SetCond::IfSet,
            "ifnotset" => SetCond::IfNotSet,
            "ifgt" => SetCond::IfGt,
            "iflt" => SetCond::IfLt,
            _ => return None,
        })
    }
}

/// HAProxy's `var_set`: whether `new` may replace what the variable holds (`old`: `None`
/// when it does not exist, `Some(None)` when it exists without a value), in HAProxy's order.
/// `created`: it did not exist and the existence checks passed, so it exists from now on
/// even if a later check fails (HAProxy creates it empty first).
fn check(conds: &[SetCond], old: Option<Option<&Value>>, new: &Value) -> Check {
    let has = |c| conds.contains(&c);
    let (created, old) = match old {
        Some(_) if has(SetCond::IfNotExists) => return Check::No { created: false },
        Some(o) => (false, o),
        None if has(SetCond::IfExists) => return Check::No { created: false },
        None => (true, None),
    };
    let no = Check::No { created };
    if (has(SetCond::IfSet) && old.is_none()) || (has(SetCond::IfNotSet) && old.is_some()) {
        return no;
    }
    match new {
        Value::Str(s) | Value::Bin(s)
            if (has(SetCond::IfNotEmpty) && s.is_empty())
                || (has(SetCond::IfEmpty) && !s.is_empty()) =>
        {
            return no
        }
        Value::Str(_) | Value::Bin(_) => {}
        _ if has(SetCond::IfEmpty) => return no,
        _ => {}
    }
    if let (Value::Int(n), Some(Value::Int(o))) = (new, old) {
        if (has(SetCond::IfGt) && o <= n) || (has(SetCond::IfLt) && o >= n) {
            return no;
        }
    }
    Check::Yes
}

/// What [`check`] decided.
enum Check {
    /// Store it.
    Yes,
    /// Do not; `created`: the variable exists (empty) from now on all the same.
    No { created: bool },
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// The variable's scope does not exist here (`txn` before a stream, `req` once the
    /// server connection was asked for): a `var()` fails even with a default.
    Unavailable,
    /// The scope exists, the variable has no value.
    Unset,
    /// Its value.
    Val(Value),
}

/// A session variable: its whole name, scope and value.
type Item = (Arc<str>, Scope, Option<Value>);

/// What a session stores once a variable is set or a sample captured.
#[derive(Debug, Default, Clone)]
struct Store {
    /// Name, scope, value (`None`: created by a failed conditional set, holding nothing).
    items: Vec<Item>,
    /// `tcp-request content capture` slots, by index.
    caps: Vec<Option<Vec<u8>>>,
    /// The stream's unique id once built (`unique-id-format`): built once, at first use.
    uid: Option<String>,
}

/// A session's variables (`sess`, `txn`, `req`, `res`). Few per session: a list beats a map;
/// 16 bytes in every session, and nothing allocated until a variable is set.
#[derive(Debug, Default, Clone)]
pub struct SessVars {
    /// Its variables and captures, boxed: 8 bytes in every session until one is set.
    store: Option<Box<Store>>,
    /// A stream exists (`tcp-request content` on): `txn`, `req`, `res` can be used.
    stream: bool,
    /// The server connection was asked for: `req` variables are gone, `res` ones usable.
    response: bool,
}

impl SessVars {
    /// The stream starts (before the content rules): `txn` and `req` become usable.
    pub fn start_stream(&mut self) {
        self.stream = true;
    }

    /// The server connection is asked for: HAProxy prunes the `req` variables and switches
    /// its request/response list to `res`.
    pub fn to_response(&mut self) {
        if !self.response {
            self.response = true;
            if let Some(st) = &mut self.store {
                st.items
                    .retain(|(_, s, _)| !matches!(s, Scope::Req | Scope::Res));
            }
        }
    }

    fn usable(&self, scope: Scope) -> bool {
        match scope {
            Scope::Sess => true,
            Scope::Txn => self.stream,
            Scope::Req => self.stream && !self.response,
            Scope::Res => self.stream && self.response,
            Scope::Proc | Scope::Check => false,
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &VarName) -> Got {
        if !self.usable(name.scope) {
            return Got::Unavailable;
        }
        let items = self.store.iter().flat_map(|b| b.items.iter());
        match items.into_iter().find(|(n, _, _)| **n == *name.full) {
            Some((_, _, Some(v))) => Got::Val(v.clone()),
            _ => Got::Unset,
        }
    }

    /// Sets `name` to `v` if its scope is usable and the conditions allow; whether it did.
    pub fn set(&mut self, name: &VarName, v: Value, conds: &[SetCond]) -> bool {
        if !self.usable(name.scope) {
            return false;
        }
        let items = &mut self.store.get_or_insert_with(Default::default).items;
        let at = items.iter().position(|(n, _, _)| **n == *name.full);
        let old = at.map(|i| items[i].2.as_ref());
        let store = match check(conds, old, &v) {
            Check::Yes => Some(v),
            Check::No { created: false } => return false,
            Check::No { created: true } => None,
        };
        let ok = store.is_some();
        match at {
            Some(i) => items[i].2 = store,
            None => items.push((name.full.clone(), name.scope, store)),
        }
        ok
    }

    /// Removes `name`; whether its scope was usable.
    pub fn unset(&mut self, name: &VarName) -> bool {
        if !self.usable(name.scope) {
            return false;
        }
        if let Some(st) = &mut self.store {
            st.items.retain(|(n, _, _)| **n != *name.full);
        }
        true
    }

    /// Stores a captured sample (`tcp-request content capture`) in `slot`.
    pub fn capture(&mut self, slot: usize, v: Vec<u8>) {
        let caps = &mut self.store.get_or_insert_with(Default::default).caps;
        if caps.len() <= slot {
            caps.resize(slot + 1, None);
        }
        caps[slot] = Some(v);
    }

    /// What `slot` captured.
    pub fn captured(&self, slot: usize) -> Option<Vec<u8>> {
        self.store.as_ref()?.caps.get(slot)?.clone()
    }

    /// The stream's unique id, if built already.
    pub fn unique_id(&self) -> Option<String> {
        self.store.as_ref()?.uid.clone()
    }

    /// Keeps the stream's unique id.
    pub fn set_unique_id(&mut self, id: String) {
        self.store.get_or_insert_with(Default::default).uid = Some(id);
    }

    /// Every slot's capture, in order (`%hr`).
    pub fn captures(&self) -> Vec<Option<Vec<u8>>> {
        self.store
            .as_ref()
            .map(|s| s.caps.clone())
            .unwrap_or_default()
    }
}

/// The process's variables (`proc.*`), read and written by every worker, the Runtime API
/// and Lua: a lock held only for one lookup or store. A `proc` variable is never removed:
/// `unset-var` leaves it existing without a value, as HAProxy's permanent ones.
#[derive(Debug, Default)]
pub struct ProcVars {
    map: RwLock<HashMap<Arc<str>, Option<Value>>>,
}

impl ProcVars {
    /// The value of `name`.
    pub fn get(&self, name: &VarName) -> Got {
        let m = self.map.read().unwrap_or_else(|e| e.into_inner());
        match m.get(&*name.full) {
            Some(Some(v)) => Got::Val(v.clone()),
            _ => Got::Unset,
        }
    }

    /// Whether `name` exists (with a value or not).
    pub fn exists(&self, name: &VarName) -> bool {
        let m = self.map.read().unwrap_or_else(|e| e.into_inner());
        m.contains_key(&*name.full)
    }

    /// Makes `name` exist without a value, as HAProxy does for every `proc` name the
    /// configuration mentions (so `ifexists` holds for it).
    pub fn declare(&self, name: &VarName) {
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        m.entry(name.full.clone()).or_insert(None);
    }

    /// Sets `name` to `v` if the conditions allow it; whether it did.
    pub fn set(&self, name: &VarName, v: Value, conds: &[SetCond]) -> bool {
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        let old = m.get(&*name.full).map(Option::as_ref);
        let store = match check(conds, old, &v) {
            Check::Yes => Some(v),
            Check::No { created: false } => return false,
            Check::No { created: true } => None,
        };
        let ok = store.is_some();
        m.insert(name.full.clone(), store);
        ok
    }

    /// Leaves `name` without a value.
    pub fn unset(&self, name: &VarName) {
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = m.get_mut(&*name.full) {
            *v = None;
        }
    }
}

/// What an expression evaluated outside any session reads (a global `set-var`, the Runtime
/// API's `set var`): the process's variables; no address, no content, no proxy state.
pub struct ProcEnv<'a>(pub &'a ProcVars);

impl super::fetch::Env for ProcEnv<'_> {
    fn src(&self) -> Option<std::net::SocketAddr> {
        None
    }
    fn dst(&self) -> Option<std::net::SocketAddr> {
        None
    }
    fn content(&self) -> Option<&[u8]> {
        None
    }
    fn is_final(&self) -> bool {
        true
    }
    fn proxy_stat(&self, _: &str, _: super::fetch::ProxyStat) -> Option<i64> {
        None
    }
    fn server_stat(&self, _: &str, _: &str, _: super::fetch::ServerStat) -> Option<i64> {
        None
    }
    fn var(&self, name: &VarName) -> Got {
        match name.scope {
            Scope::Proc => self.0.get(name),
            _ => Got::Unavailable,
        }
    }
    fn set_var(&self, name: &VarName, v: Value, conds: &[SetCond]) -> bool {
        name.scope == Scope::Proc && self.0.set(name, v, conds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_a_scope_and_plain_characters() {
        let n = VarName::parse("txn.be_name.v2").unwrap();
        assert_eq!((n.scope, &*n.full), (Scope::Txn, "txn.be_name.v2"));
        assert!(VarName::parse("txn.")
            .unwrap_err()
            .contains("must be start by its scope"));
        assert!(VarName::parse("foo.x").unwrap_err().contains("'foo.x'"));
        assert_eq!(
            VarName::parse("sess.a-b").unwrap_err(),
            "invalid syntax at char '-b'"
        );
        assert!(VarName::parse("").is_err());
        assert_eq!(
            parse_action("set-var(txn.é')").unwrap_err(),
            "invalid syntax at char 'é')'"
        );
        assert_eq!(
            parse_action("set-var(txn.a-b')").unwrap_err(),
            "invalid syntax at char '-b')'"
        );
    }

    #[test]
    fn conditions_guard_the_store_as_haproxy_2_6_did() {
        let n = VarName::parse("sess.n").unwrap();
        let mut v = SessVars::default();
        assert!(!v.set(&n, Value::Int(1), &[SetCond::IfExists]));
        assert!(v.set(&n, Value::Int(10), &[SetCond::IfNotExists]));
        assert!(!v.set(&n, Value::Int(7), &[SetCond::IfNotExists]));
        // "set if the variable is greater than the sample"
        assert!(!v.set(&n, Value::Int(20), &[SetCond::IfGt]));
        assert!(v.set(&n, Value::Int(5), &[SetCond::IfGt]));
        assert!(v.set(&n, Value::Int(20), &[SetCond::IfLt]));
        assert!(!v.set(&n, Value::Int(5), &[SetCond::IfGt, SetCond::IfLt]));
        assert_eq!(v.get(&n), Got::Val(Value::Int(20)));
        assert!(!v.set(&n, Value::Str(Vec::new()), &[SetCond::IfNotEmpty]));
        assert!(v.unset(&n));
        assert_eq!(v.get(&n), Got::Unset);
        // a failed check still creates it, empty: a later `ifexists` holds
        let e = VarName::parse("sess.e").unwrap();
        assert!(!v.set(&e, Value::Str(b"x".to_vec()), &[SetCond::IfEmpty]));
        assert_eq!(v.get(&e), Got::Unset);
        assert!(v.set(&e, Value::Str(b"y".to_vec()), &[SetCond::IfExists]));
        // no stream yet: txn is not there; req goes when the server is asked for
        let t = VarName::parse("txn.t").unwrap();
        let r = VarName::parse("req.r").unwrap();
        assert!(!v.set(&t, Value::Int(1), &[]));
        assert_eq!(v.get(&t), Got::Unavailable);
        v.start_stream();
        assert!(v.set(&t, Value::Int(1), &[]) && v.set(&r, Value::Int(2), &[]));
        v.to_response();
        assert_eq!(v.get(&r), Got::Unavailable);
        assert_eq!(v.get(&t), Got::Val(Value::Int(1)));
        let p = ProcVars::default();
        let pn = VarName::parse("proc.x").unwrap();
        assert!(p.set(&pn, Value::Str(b"a".to_vec()), &[]));
        assert_eq!(p.get(&pn), Got::Val(Value::Str(b"a".to_vec())));
        p.unset(&pn);
        assert_eq!(p.get(&pn), Got::Unset);
        assert!(!p.set(&pn, Value::Int(3), &[SetCond::IfNotExists]));
    }
}
