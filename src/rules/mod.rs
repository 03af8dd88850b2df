//! A proxy's rules in TCP mode: `acl`, `tcp-request connection|session|content`,
//! `tcp-request inspect-delay`, `use_backend`, `use-server` and `stick`, parsed from the words
//! of their config lines and evaluated against a session through the [`Env`] the worker
//! implements.
//!
//! Pure logic, no I/O (map files are read once, at start-up): the config parser builds a
//! [`Rules`] per proxy, and the worker asks it five questions in HAProxy's order — accept this
//! connection? (`connection`, `session`), accept this request, or wait for more of it?
//! (`content`, bounded by `inspect-delay`), which backend? (`use_backend`, a name fixed or
//! built from samples, else `default_backend`), which server does a rule name? (`use-server`),
//! and which server did this client have? (`stick`). Actions with effects (`track-sc*`, `sc-inc-gpc*`, `sc-set-gpt0`) and the stick
//! fetches and table converters go through [`Env`] to the session's counters and the
//! [`crate::stick`] tables.

pub mod acl;
pub mod convert;
pub mod fetch;
pub mod hello;
pub mod logformat;
#[cfg(test)]
mod logformat_tests;
pub mod map;
#[cfg(test)]
mod map_tests;
pub mod patref;
pub mod pattern;
pub mod rdp;
#[cfg(test)]
mod tests;
pub mod tls_fetch;
pub mod vars;
#[cfg(test)]
mod vars_tests;

use std::time::Duration;

pub use acl::{Acl, AclTable, Cond, Tri};
pub use fetch::{Env, Fetch, ProxyStat, Sample, ServerStat};
pub use pattern::Value;

/// The most request content rules wait for: HAProxy's buffer less its rewrite reserve
/// (`tune.bufsize` - `tune.maxrewrite`), where its `channel_full` ends the waiting.
pub const MAX_CONTENT: usize = 15_360;

/// What a `tcp-request` rule does when its condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `accept`: stop evaluating, go on.
    Accept,
    /// `reject`: close the connection.
    Reject,
    /// `expect-proxy layer4` (connection rules): the connection starts with a PROXY header,
    /// as under `accept-proxy`; the rules go on.
    ExpectProxy,
    /// `track-sc<slot> <key> [table <table>]`: the session's counter `slot` tracks the key's
    /// entry (the table defaults to the rule's proxy); the rules go on.
    Track {
        /// The stick counter, 0 to 2.
        slot: usize,
        /// What gives the key.
        key: Fetch,
        /// The table's name.
        table: String,
    },
    /// `sc-inc-gpc0(<slot>)` (`which` 0) or `sc-inc-gpc1(<slot>)` (1); the rules go on.
    IncGpc {
        /// The stick counter.
        slot: usize,
        /// 0 or 1.
        which: u8,
    },
    /// `silent-drop [rst-ttl <ttl>]`: close without telling the client (no FIN, no reset it
    /// can see); the rules stop.
    SilentDrop {
        /// `rst-ttl`: send a reset with this TTL instead of staying silent (`None`: silent
        /// when the process may use TCP_REPAIR, else a reset with TTL 1, as HAProxy).
        rst_ttl: Option<u8>,
    },
    /// `sc-set-gpt0(<slot>) <int|expr>`; the rules go on.
    SetGpt0 {
        /// The stick counter.
        slot: usize,
        /// What is stored.
        value: GptValue,
    },
    /// `set-var(<name>[,<cond>...]) <expr>` or `set-var-fmt(...) <fmt>`: stores the sample
    /// (read as final: no waiting) or the format's text; the rules go on.
    SetVar {
        /// The variable.
        name: vars::VarName,
        /// Its conditions.
        conds: Vec<vars::SetCond>,
        /// What is stored.
        value: VarValue,
    },
    /// `unset-var(<name>)`; the rules go on.
    UnsetVar(vars::VarName),
    /// `capture <sample> len <n>` (content rules of a frontend): the sample as text, cut to
    /// `len` bytes, kept in capture slot `slot` for the log (`%hr`, `capture.req.hdr`).
    Capture {
        /// What is captured.
        expr: Fetch,
        /// The most bytes kept.
        len: usize,
        /// Its slot: the frontend's captures in file order.
        slot: usize,
    },
}

/// What `set-var` or `set-var-fmt` stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// A sample expression's value, with its type.
    Expr(Fetch),
    /// A log-format's text.
    Fmt(logformat::LogFormat),
}

impl VarValue {
    /// The value for the session `env` describes (`None`: no sample, nothing stored).
    pub fn eval(&self, env: &dyn Env) -> Option<Value> {
        match self {
            VarValue::Expr(f) => match f.sample(env) {
                Sample::Val { v, .. } => Some(v),
                _ => None,
            },
            VarValue::Fmt(f) => {
                let facts = logformat::Facts::from_env(env);
                Some(Value::Str(f.render(&facts, env).into_bytes()))
            }
        }
    }
}

/// What `sc-set-gpt0` stores: a constant, or a sample read when the rule runs (stored as an
/// unsigned 32-bit integer, as HAProxy's `gpt0` is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GptValue {
    /// An integer written in the rule.
    Int(i64),
    /// A fetch (and converters) giving it.
    Expr(Fetch),
}

/// One `tcp-request <when> <action> [if|unless ...]` line.
#[derive(Debug, Clone)]
pub struct TcpRule {
    /// Its action.
    pub action: Action,
    /// Its condition (`None`: always).
    pub cond: Option<Cond>,
}

/// One `use_backend <name> [if|unless ...]` line.
#[derive(Debug, Clone)]
pub struct SwitchRule {
    /// The backend it sends to (checked to exist at start-up); for a dynamic rule, its
    /// name as written.
    pub backend: String,
    /// A name built from samples (`use_backend be_%[req.ssl_sni,map(f)]`): a log-format, as
    /// any name with a `%` is in HAProxy. `None`: the fixed name above.
    pub dynamic: Option<logformat::LogFormat>,
    /// Its condition (`None`: always).
    pub cond: Option<Cond>,
}

/// One `use-server <server> if|unless <cond>` line (a backend's): the server a session goes
/// to when the condition holds and the server is not stopped.
#[derive(Debug, Clone)]
pub struct ServerRule {
    /// The server's name as written (checked to exist at start-up when fixed).
    pub server: String,
    /// A name built from samples (`use-server %[...]`), as for `use_backend`.
    pub dynamic: Option<logformat::LogFormat>,
    /// Its condition (required, as in HAProxy).
    pub cond: Cond,
}

/// What the worker says of a server a `use-server` rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named<T> {
    /// It exists and may take the session: the rules stop.
    Usable(T),
    /// It exists but is stopped: the next rules are tried.
    Down,
    /// No server has that name: the rules stop (a dynamic name), none is forced.
    Missing,
}

/// What a `stick` rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickKind {
    /// `stick match`: a key the table holds sends the session to the server stored with it.
    Match,
    /// `stick store-request`: the key is stored with the server the session reaches.
    Store,
    /// `stick on`: both.
    On,
}

impl StickKind {
    /// Whether it looks the key up.
    pub fn matches(self) -> bool {
        self != StickKind::Store
    }

    /// Whether it stores the key.
    pub fn stores(self) -> bool {
        self != StickKind::Match
    }
}

/// One `stick on|match|store-request <pattern> [table <t>] [if|unless <cond>]` line: server
/// persistence through a stick table.
#[derive(Debug, Clone)]
pub struct StickRule {
    /// What it does.
    pub kind: StickKind,
    /// What gives the key.
    pub key: Fetch,
    /// The table (the proxy's own by default).
    pub table: String,
    /// Its condition (`None`: always).
    pub cond: Option<Cond>,
}

/// The outcome of a rule list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (a rule accepted, or none matched).
    Accept,
    /// Close.
    Reject,
    /// Close without telling the client (`silent-drop`), with the `rst-ttl` given if any.
    Drop(Option<u8>),
    /// A condition needs more content: read more and ask again (never once the content is
    /// final).
    Wait,
}

/// The phases a `tcp-request` rule runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `tcp-request connection`: at accept, before a PROXY header is read.
    Connection,
    /// `tcp-request session`: once the session exists (after a PROXY header).
    Session,
    /// `tcp-request content`: on the request's first bytes.
    Content,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connection => "connection",
            Phase::Session => "session",
            Phase::Content => "content",
        }
    }
}

/// A proxy's rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Its ACLs, named and anonymous.
    pub acls: AclTable,
    /// `tcp-request connection` rules.
    pub connection: Vec<TcpRule>,
    /// `tcp-request session` rules.
    pub session: Vec<TcpRule>,
    /// `tcp-request content` rules.
    pub content: Vec<TcpRule>,
    /// `tcp-request inspect-delay`: how long content rules may wait for the bytes they need.
    pub inspect_delay: Option<Duration>,
    /// `use_backend` rules, in file order.
    pub switching: Vec<SwitchRule>,
    /// `stick` rules, in file order.
    pub sticking: Vec<StickRule>,
    /// `use-server` rules, in file order.
    pub server_rules: Vec<ServerRule>,
    /// The lengths of the capture slots `capture` actions declared, in order.
    pub captures: Vec<usize>,
}

impl Rules {
    /// Runs `phase`'s rules: the first accept or reject whose condition holds decides; none:
    /// accept.
    pub fn run(&self, phase: Phase, env: &dyn Env) -> Verdict {
        self.run_from(phase, env, &mut 0).0
    }

    /// The connection rules, and whether an `expect-proxy layer4` applied.
    pub fn run_connection(&self, env: &dyn Env) -> (Verdict, bool) {
        self.run_from(Phase::Connection, env, &mut 0)
    }

    /// Runs `phase`'s rules from rule `at`. On [`Verdict::Wait`], `at` is where the next run
    /// starts, as in HAProxy's `tcp_inspect_request`: the first rule again when a condition
    /// lacked data, the same rule when a `track-sc*` key did (its `current_rule`).
    pub fn run_from(&self, phase: Phase, env: &dyn Env, at: &mut usize) -> (Verdict, bool) {
        let list = match phase {
            Phase::Connection => &self.connection,
            Phase::Session => &self.session,
            Phase::Content => &self.content,
        };
        let mut expect_proxy = false;
        while let Some(r) = list.get(*at) {
            if let Some(c) = &r.cond {
                match self.acls.eval(c, env) {
                    Tri::Miss => {
                        *at = 0;
                        return (Verdict::Wait, expect_proxy);
                    }
                    Tri::Fail => {
                        *at += 1;
                        continue;
                    }
                    Tri::Pass => {}
                }
            }
            match &r.action {
                Action::Accept => return (Verdict::Accept, expect_proxy),
                Action::Reject => return (Verdict::Reject, expect_proxy),
                Action::SilentDrop { rst_ttl } => return (Verdict::Drop(*rst_ttl), expect_proxy),
                Action::ExpectProxy => expect_proxy = true,
                Action::Track { slot, key, table } => match key.sample(env) {
                    Sample::Missing => return (Verdict::Wait, expect_proxy),
                    Sample::Val { may_change, .. } if may_change && !env.is_final() => {
                        return (Verdict::Wait, expect_proxy)
                    }
                    Sample::Val { v, .. } => env.track(*slot, table, &v),
                    Sample::None => {}
                },
                Action::IncGpc { slot, which } => env.inc_gpc(*slot, *which),
                Action::SetGpt0 { slot, value } => {
                    let v = match value {
                        GptValue::Int(i) => Some(*i),
                        // read as final, as HAProxy's `SMP_OPT_FINAL`: no waiting here
                        GptValue::Expr(f) => match f.sample(env) {
                            Sample::Val { v, .. } => convert::as_int(&v),
                            _ => None,
                        },
                    };
                    match v {
                        Some(v) => env.set_gpt0(*slot, u64::from(v as u32)),
                        None => tracing::debug!(
                            "stick table: invalid expression or data type while setting gpt0."
                        ),
                    }
                }
                Action::SetVar { name, conds, value } => {
                    if let Some(v) = value.eval(env) {
                        env.set_var(name, v, conds);
                    }
                }
                Action::UnsetVar(name) => {
                    env.unset_var(name);
                }
                Action::Capture { expr, len, slot } => {
                    // as HAProxy's tcp_action_capture: wait while the sample may still come
                    // or change (until the inspection ends); then text, cut to its length
                    let s = expr.sample(env);
                    match &s {
                        Sample::Missing if !env.is_final() => return (Verdict::Wait, expect_proxy),
                        Sample::Val {
                            may_change: true, ..
                        } if !env.is_final() => return (Verdict::Wait, expect_proxy),
                        _ => {}
                    }
                    if let Sample::Val { v, .. } = s {
                        let mut t = match v {
                            Value::Str(b) | Value::Bin(b) => b,
                            v => v.to_text().into_bytes(),
                        };
                        // a C string: up to the first NUL
                        if let Some(z) = t.iter().position(|&c| c == 0) {
                            t.truncate(z);
                        }
                        t.truncate(*len);
                        env.capture(*slot, t);
                    }
                }
            }
            *at += 1;
        }
        (Verdict::Accept, expect_proxy)
    }

    /// Whether a connection rule may ask for a PROXY header (`expect-proxy layer4`).
    pub fn expects_proxy(&self) -> bool {
        self.connection
            .iter()
            .any(|r| r.action == Action::ExpectProxy)
    }

    /// The backend name of the first `use_backend` whose condition holds (a condition that
    /// cannot be decided does not hold); a dynamic rule's name is built here, and the caller
    /// falls back to the default backend when no backend has it, as HAProxy does.
    pub fn backend(&self, env: &dyn Env) -> Option<std::borrow::Cow<'_, str>> {
        let r = self.switching.iter().find(|r| {
            r.cond
                .as_ref()
                .map_or(true, |c| self.acls.eval(c, env) == Tri::Pass)
        })?;
        match &r.dynamic {
            None => Some(std::borrow::Cow::Borrowed(r.backend.as_str())),
            Some(f) => Some(std::borrow::Cow::Owned(build_name(f, env))),
        }
    }

    /// HAProxy's `process_server_rules`: the server of the first `use-server` rule whose
    /// condition holds and whose server `find` says is usable (a stopped one lets the next
    /// rules try; a dynamic name no server has ends the search).
    pub fn use_server<T>(&self, env: &dyn Env, find: impl Fn(&str) -> Named<T>) -> Option<T> {
        for r in &self.server_rules {
            if self.acls.eval(&r.cond, env) != Tri::Pass {
                continue;
            }
            let name = match &r.dynamic {
                Some(f) => std::borrow::Cow::Owned(build_name(f, env)),
                None => std::borrow::Cow::Borrowed(r.server.as_str()),
            };
            match find(&name) {
                Named::Usable(s) => return Some(s),
                Named::Down => continue,
                Named::Missing if r.dynamic.is_some() => return None,
                Named::Missing => continue,
            }
        }
        None
    }

    /// Parses a `use-server <server> if|unless <cond>` line (all its words).
    pub fn parse_use_server(
        &mut self,
        words: &[String],
        proxy: &str,
    ) -> Result<Vec<String>, String> {
        let Some(name) = words.get(1).filter(|n| !n.is_empty()) else {
            return Err("'use-server' expects a server name.".into());
        };
        if !matches!(words.get(2).map(String::as_str), Some("if" | "unless")) {
            return Err(
                "'use-server' requires either 'if' or 'unless' followed by a condition.".into(),
            );
        }
        let dynamic = if name.contains('%') {
            Some(
                self.name_format(name, proxy)
                    .map_err(|e| format!("failed to parse use-server rule '{name}' : {e}."))?,
            )
        } else {
            None
        };
        let cond = self
            .acls
            .parse_cond(&words[2..], proxy)
            .map_err(|e| format!("error detected while parsing switching rule : {e}."))?;
        self.server_rules.push(ServerRule {
            server: name.clone(),
            dynamic,
            cond,
        });
        Ok(self.acls.take_warnings())
    }

    /// Parses the words after `acl`; returns a warning to print, if any.
    pub fn parse_acl(&mut self, words: &[String], proxy: &str) -> Result<Option<String>, String> {
        self.acls.parse_acl(words, proxy)
    }

    /// Parses a `tcp-request ...` line (all its words). `frontend`: the proxy can accept
    /// connections. Returns warnings.
    pub fn parse_tcp_request(
        &mut self,
        words: &[String],
        proxy: &str,
        kind: &str,
        frontend: bool,
    ) -> Result<Vec<String>, String> {
        let when = words.get(1).map(String::as_str).unwrap_or("");
        let phase = match when {
            "inspect-delay" => {
                let v = words
                    .get(2)
                    .ok_or("'tcp-request inspect-delay' expects a timeout value.")?;
                if let Some(w) = words.get(3) {
                    return Err(format!("'tcp-request inspect-delay' : unexpected extra argument '{w}'."));
                }
                let d = crate::config::units::parse_time(v, "tcp-request inspect-delay")?;
                if self.inspect_delay.is_some() {
                    return Ok(vec![format!(
                        "ignoring tcp-request inspect-delay (was already defined) in {kind} '{proxy}'"
                    )]);
                }
                self.inspect_delay = Some(d);
                return Ok(Vec::new());
            }
            "connection" => Phase::Connection,
            "session" => Phase::Session,
            "content" => Phase::Content,
            other => {
                return Err(format!(
                    "'tcp-request' expects 'connection', 'session', 'content' or 'inspect-delay', got '{other}'."
                ))
            }
        };
        if phase != Phase::Content && !frontend {
            return Err(format!(
                "tcp-request {when} is not allowed because {kind} {proxy} is not a frontend"
            ));
        }
        let mut cond_at = 3;
        let action = match words.get(2).map(String::as_str) {
            Some("accept") => Action::Accept,
            Some("reject") => Action::Reject,
            Some("expect-proxy") if phase != Phase::Connection => {
                return Err(format!(
                    "'expect-proxy layer4' is not allowed in 'tcp-request {when}' rules in {kind} '{proxy}'"
                ))
            }
            Some("expect-proxy") if phase == Phase::Connection => {
                match words.get(3).map(String::as_str) {
                    Some("layer4") => {}
                    other => {
                        return Err(format!(
                            "'tcp-request connection expect-proxy' only supports 'layer4' in {kind} '{proxy}' (got '{}')",
                            other.unwrap_or("")
                        ))
                    }
                }
                cond_at = 4;
                Action::ExpectProxy
            }
            Some(a) if a.starts_with("track-sc") => {
                let slot = stick_slot(a, &a["track-sc".len()..])?;
                let Some(k) = words.get(3) else {
                    return Err(format!("'tcp-request {when} {a}' : missing fetch method"));
                };
                let key = Fetch::parse_at(k, proxy, &self.acls.site).map_err(|e| {
                    format!("'tcp-request {when} {a}' : failed to parse sample expression <{k}> : {e}.")
                })?;
                if phase != Phase::Content && key.reads_content() {
                    return Err(format!(
                        "'tcp-request {when} {a}' : fetch method '{}' extracts information from 'request content', none of which is available here.",
                        key.keyword()
                    ));
                }
                let mut table = proxy.to_string();
                cond_at = 4;
                if words.get(4).map(String::as_str) == Some("table") {
                    let Some(t) = words.get(5) else {
                        return Err(format!("'tcp-request {when} {a}' : missing table name after 'table'"));
                    };
                    table = t.clone();
                    cond_at = 6;
                }
                Action::Track { slot, key, table }
            }
            Some(a) if a.starts_with("sc-inc-gpc0") || a.starts_with("sc-inc-gpc1") => {
                let which = if a.starts_with("sc-inc-gpc0") { 0 } else { 1 };
                let slot = stick_slot(a, sc_arg(a)?)?;
                Action::IncGpc { slot, which }
            }
            Some("silent-drop") => {
                let mut rst_ttl = None;
                if words.get(3).map(String::as_str) == Some("rst-ttl") {
                    let Some(v) = words.get(4) else {
                        return Err(format!("'tcp-request {when} silent-drop' : missing rst-ttl value"));
                    };
                    // strtoul(.., 0): decimal, `0x` hex or `0` octal; the rest must be empty
                    let (n, rest) = strtoul0(v);
                    if !rest.is_empty() {
                        return Err(format!(
                            "'tcp-request {when} silent-drop' : invalid character starting at '{rest}' (value 1-255 expected)"
                        ));
                    }
                    match n {
                        1..=255 => rst_ttl = Some(n as u8),
                        _ => {
                            return Err(format!(
                                "'tcp-request {when} silent-drop' : valid rst-ttl values are [1-255]"
                            ))
                        }
                    }
                    cond_at = 5;
                }
                Action::SilentDrop { rst_ttl }
            }
            Some(a) if a.starts_with("sc-set-gpt0") => {
                let slot = stick_slot(a, sc_arg(a)?)?;
                let word = words.get(3).map(String::as_str).unwrap_or("");
                // strtol's whole word, else a sample expression (none at all: 0, as HAProxy)
                let value = match strtol10(word) {
                    Some(i) => GptValue::Int(i),
                    None => {
                        let f = Fetch::parse_at(word, proxy, &self.acls.site).map_err(|e| {
                            format!("'tcp-request {when} {a}' : failed to parse sample expression <{word}> : {e}.")
                        })?;
                        if phase != Phase::Content && f.reads_content() {
                            return Err(format!(
                                "'tcp-request {when} {a}' : fetch method '{}' extracts information from 'request content', none of which is available here.",
                                f.keyword()
                            ));
                        }
                        GptValue::Expr(f)
                    }
                };
                cond_at = if words.get(3).is_some() { 4 } else { 3 };
                Action::SetGpt0 { slot, value }
            }
            Some("capture") => {
                let what = words.get(3).map(String::as_str).unwrap_or("");
                if phase != Phase::Content {
                    return Err(format!(
                        "'capture {what}' is not allowed in 'tcp-request {when}' rules in {kind} '{proxy}'"
                    ));
                }
                const LEN: &str = "'tcp-request content capture' : a positive 'len' argument is mandatory";
                let has_cond = |w: Option<&String>| matches!(w.map(String::as_str), Some("if" | "unless"));
                if what.is_empty() || has_cond(words.get(3)) {
                    return Err(LEN.into());
                }
                let expr = Fetch::parse_at(what, proxy, &self.acls.site)
                    .map_err(|e| format!("'tcp-request content capture' : {e}"))?;
                if !frontend {
                    return Err(format!(
                        "'tcp-request content capture' : proxy '{proxy}' has no frontend capability"
                    ));
                }
                if words.get(4).map(String::as_str) != Some("len") {
                    return Err(LEN.into());
                }
                let len = match words.get(5).map(|l| strtol10(l)) {
                    Some(Some(n)) if n > 0 => n as usize,
                    _ => return Err("'tcp-request content capture' : length must be > 0".into()),
                };
                cond_at = 6;
                let slot = self.captures.len();
                self.captures.push(len);
                Action::Capture { expr, len, slot }
            }
            Some(a) if vars::Verb::of(a).is_some() => {
                let (verb, name, conds) = vars::parse_action(a)?;
                let arg = words.get(3).map(String::as_str).unwrap_or("");
                let value = match verb {
                    vars::Verb::Unset => {
                        cond_at = 3;
                        if let Some(w) = words.get(3).filter(|w| !matches!(w.as_str(), "if" | "unless")) {
                            return Err(format!("'tcp-request {when} {a}' only accepts 'if' or 'unless', in {kind} '{proxy}' (got '{w}')"));
                        }
                        None
                    }
                    vars::Verb::Set => {
                        cond_at = 4;
                        if arg.is_empty() {
                            return Err("missing fetch method".into());
                        }
                        let f = Fetch::parse_at(arg, proxy, &self.acls.site)?;
                        if phase != Phase::Content && f.reads_content() {
                            return Err(format!("fetch method '{a}' extracts information from 'request buffer', none of which is available here"));
                        }
                        Some(VarValue::Expr(f))
                    }
                    vars::Verb::SetFmt => {
                        cond_at = 4;
                        let early = phase != Phase::Content;
                        let u = if early { logformat::Use::TextNoContent } else { logformat::Use::Text };
                        let f = logformat::LogFormat::parse(arg, proxy, &self.acls.site, u)?;
                        Some(VarValue::Fmt(f))
                    }
                };
                if verb != vars::Verb::Unset {
                    if let Some(w) = words.get(4).filter(|w| !matches!(w.as_str(), "if" | "unless")) {
                        return Err(format!("'tcp-request {when} {a}' only accepts 'if' or 'unless', in {kind} '{proxy}' (got '{w}')"));
                    }
                }
                match value {
                    Some(value) => Action::SetVar { name, conds, value },
                    None => Action::UnsetVar(name),
                }
            }
            Some(a) => {
                return Err(format!(
                    "'tcp-request {when} {a}' is not supported by harp (it knows the actions 'accept', 'reject', 'silent-drop', 'expect-proxy', 'track-sc0..2', 'sc-inc-gpc0/1', 'sc-set-gpt0', 'set-var', 'set-var-fmt' and 'unset-var')."
                ))
            }
            None => return Err(format!("'tcp-request {when}' expects an action such as 'accept' or 'reject'.")),
        };
        let cond = match words.get(cond_at) {
            None => None,
            Some(w) => Some(
                self.acls
                    .parse_cond(&words[cond_at..], proxy)
                    .map_err(|e| {
                        format!(
                            "'tcp-request {when} {}' : error detected in {kind} '{proxy}' while parsing '{w}' condition : {e}",
                            words[2]
                        )
                    })?,
            ),
        };
        let mut warnings = self.acls.take_warnings();
        if let Some(c) = &cond {
            if phase != Phase::Content {
                if let Some((acl, kw)) = self.acls.content_conflict(c) {
                    let p = phase.name();
                    warnings.push(format!(
                        "{acl} will never match in 'tcp-request {p}' because it uses keyword '{kw}' which is incompatible with 'frontend tcp-request {p} rule'"
                    ));
                }
            }
        }
        let rule = TcpRule { action, cond };
        match phase {
            Phase::Connection => self.connection.push(rule),
            Phase::Session => self.session.push(rule),
            Phase::Content => self.content.push(rule),
        }
        Ok(warnings)
    }

    /// Whether `cond` holds for `env` (a condition that cannot be decided does not).
    pub fn holds(&self, cond: Option<&Cond>, env: &dyn Env) -> bool {
        cond.map_or(true, |c| self.acls.eval(c, env) == Tri::Pass)
    }

    /// Parses a `stick on|match|store-request <pattern> [table <t>] [if|unless <cond>]` line
    /// (all its words). Returns warnings.
    pub fn parse_stick(&mut self, words: &[String], proxy: &str) -> Result<Vec<String>, String> {
        let kind = match words.get(1).map(String::as_str) {
            Some("on") => StickKind::On,
            Some("match") => StickKind::Match,
            Some("store-request") => StickKind::Store,
            Some("store-response") => {
                return Err("'stick store-response' is not supported by harp (its TCP proxies do not inspect responses).".into())
            }
            _ => {
                return Err(
                    "'stick' expects 'on', 'match', 'store-request' or 'store-response'.".into(),
                )
            }
        };
        let Some(k) = words.get(2) else {
            return Err(format!("'stick {}' expects a fetch method.", words[1]));
        };
        let key = Fetch::parse_at(k, proxy, &self.acls.site)
            .map_err(|e| format!("'stick {}' : {e}.", words[1]))?;
        let mut table = proxy.to_string();
        let mut at = 3;
        if words.get(3).map(String::as_str) == Some("table") {
            let Some(t) = words.get(4) else {
                return Err(format!(
                    "'stick {}' : missing table name after 'table'.",
                    words[1]
                ));
            };
            table = t.clone();
            at = 5;
        }
        let cond = match words.get(at) {
            None => None,
            Some(_) => Some(self.acls.parse_cond(&words[at..], proxy).map_err(|e| {
                format!(
                    "'stick {}' : error detected while parsing sticking condition : {e}.",
                    words[1]
                )
            })?),
        };
        self.sticking.push(StickRule {
            kind,
            key,
            table,
            cond,
        });
        Ok(self.acls.take_warnings())
    }

    /// Parses a `use_backend <name> [if|unless <cond>]` line (all its words).
    pub fn parse_use_backend(
        &mut self,
        words: &[String],
        proxy: &str,
    ) -> Result<Vec<String>, String> {
        let Some(name) = words.get(1) else {
            return Err("'use_backend' expects a backend name.".into());
        };
        let dynamic = if name.contains('%') {
            Some(
                self.name_format(name, proxy)
                    .map_err(|e| format!("failed to parse use_backend rule '{name}' : {e}."))?,
            )
        } else {
            None
        };
        let cond = match words.get(2) {
            None => None,
            Some(_) => Some(
                self.acls
                    .parse_cond(&words[2..], proxy)
                    .map_err(|e| format!("error detected while parsing switching rule : {e}."))?,
            ),
        };
        self.switching.push(SwitchRule {
            backend: name.clone(),
            dynamic,
            cond,
        });
        Ok(self.acls.take_warnings())
    }

    /// A name with `%`: a log-format (spaces kept as text).
    fn name_format(&self, name: &str, proxy: &str) -> Result<logformat::LogFormat, String> {
        logformat::LogFormat::parse(name, proxy, &self.acls.site, logformat::Use::Text)
    }

    /// The expressions of dynamic `use_backend` and `use-server` names.
    pub fn dynamic_names(&self) -> impl Iterator<Item = &Fetch> {
        self.switching
            .iter()
            .flat_map(|r| r.dynamic.iter())
            .chain(self.server_rules.iter().flat_map(|r| r.dynamic.iter()))
            .flat_map(|f| f.fetches())
    }

    /// Every pattern list the rules use, ACLs' and map files' alike, in the order they were
    /// made (HAProxy's ids follow it).
    pub fn pattern_refs(&self) -> Vec<&std::sync::Arc<patref::PatRef>> {
        let mut all = self.acls.refs();
        let dynamic = self.dynamic_names();
        let keys = self
            .tracks()
            .map(|(_, _, _, f)| f)
            .chain(self.sticking.iter().map(|s| &s.key));
        for f in self
            .fetches()
            .chain(self.gpt_exprs())
            .chain(keys)
            .chain(dynamic)
        {
            all.extend(f.maps());
        }
        all.sort_by_key(|r| r.seq());
        all.dedup_by(|a, b| std::sync::Arc::ptr_eq(a, b));
        all
    }

    /// Every variable the rules name (HAProxy makes each `proc` one exist at start-up).
    pub fn var_names(&self) -> Vec<&vars::VarName> {
        let keys = self
            .tracks()
            .map(|(_, _, _, f)| f)
            .chain(self.sticking.iter().map(|s| &s.key));
        let mut all: Vec<&vars::VarName> = self
            .fetches()
            .chain(self.gpt_exprs())
            .chain(keys)
            .chain(self.dynamic_names())
            .flat_map(|f| f.var_names())
            .collect();
        for r in self
            .connection
            .iter()
            .chain(&self.session)
            .chain(&self.content)
        {
            match &r.action {
                Action::SetVar { name, .. } | Action::UnsetVar(name) => all.push(name),
                _ => {}
            }
        }
        all
    }

    /// Every fetch the rules use (for validating the proxies and servers they name).
    pub fn fetches(&self) -> impl Iterator<Item = &Fetch> {
        self.acls
            .acls
            .iter()
            .flat_map(|a| a.exprs.iter().map(|e| &e.fetch))
    }

    /// The fetches of `sc-set-gpt0 <expr>`, `set-var` and `set-var-fmt` actions, for the
    /// start-up check of the tables and proxies they read and the map files they use.
    pub fn gpt_exprs(&self) -> impl Iterator<Item = &Fetch> {
        self.connection
            .iter()
            .chain(&self.session)
            .chain(&self.content)
            .flat_map(|r| -> Box<dyn Iterator<Item = &Fetch> + '_> {
                match &r.action {
                    Action::SetGpt0 {
                        value: GptValue::Expr(f),
                        ..
                    } => Box::new(std::iter::once(f)),
                    Action::SetVar {
                        value: VarValue::Expr(f),
                        ..
                    } => Box::new(std::iter::once(f)),
                    Action::SetVar {
                        value: VarValue::Fmt(f),
                        ..
                    } => Box::new(f.fetches()),
                    Action::Capture { expr, .. } => Box::new(std::iter::once(expr)),
                    _ => Box::new(std::iter::empty()),
                }
            })
    }

    /// Every `track-sc*` rule: `(phase, slot, table, key fetch)`, for the start-up check that
    /// the tables exist and take such keys.
    pub fn tracks(&self) -> impl Iterator<Item = (Phase, usize, &str, &Fetch)> {
        [
            (Phase::Connection, &self.connection),
            (Phase::Session, &self.session),
            (Phase::Content, &self.content),
        ]
        .into_iter()
        .flat_map(|(p, list)| {
            list.iter().filter_map(move |r| match &r.action {
                Action::Track { slot, table, key } => Some((p, *slot, table.as_str(), key)),
                _ => None,
            })
        })
    }
}

/// A log-format name for the session `env` describes (a missing sample is `-`, as in logs).
fn build_name(f: &logformat::LogFormat, env: &dyn Env) -> String {
    f.render(&logformat::Facts::from_env(env), env)
}

/// C's `strtol(text, &end, 10)` when it reads the whole word (an empty one is 0), else `None`.
fn strtol10(text: &str) -> Option<i64> {
    if text.is_empty() {
        return Some(0);
    }
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // out of range: strtol saturates
    Some(text.parse::<i64>().unwrap_or(if text.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// C's `strtoul(text, &end, 0)`: the value (saturating) and the text left after the digits of
/// its base (`0x`/`0X`: hexadecimal, a leading `0`: octal, else decimal).
fn strtoul0(text: &str) -> (u64, &str) {
    let (radix, body) = if let Some(h) = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .filter(|h| h.starts_with(|c: char| c.is_ascii_hexdigit()))
    {
        (16, h)
    } else if text.len() > 1 && text.starts_with('0') {
        (8, &text[1..])
    } else {
        (10, text)
    };
    let n = body.chars().take_while(|c| c.is_digit(radix)).count();
    let v = body[..n].chars().fold(0u64, |acc, c| {
        acc.saturating_mul(u64::from(radix))
            .saturating_add(u64::from(c.to_digit(radix).unwrap_or(0)))
    });
    (v, &body[n..])
}

/// The stick counter a `track-sc<n>` or `sc-*(<n>)` action names (0 to 2).
fn stick_slot(action: &str, n: &str) -> Result<usize, String> {
    match n.parse::<usize>() {
        Ok(n) if n < crate::stick::SLOTS => Ok(n),
        _ => Err(format!(
            "'{action}' : invalid stick counter '{n}' (expects a number between 0 and {})",
            crate::stick::SLOTS - 1
        )),
    }
}

/// The `<n>` of `sc-inc-gpc0(<n>)`; 0 when it has no parentheses (`sc-inc-gpc0`).
fn sc_arg(action: &str) -> Result<&str, String> {
    let name = action.split('(').next().unwrap_or(action);
    if name.len() == action.len() {
        return match action {
            "sc-inc-gpc0" | "sc-inc-gpc1" | "sc-set-gpt0" => Ok("0"),
            _ => Err(format!("'{action}' is not supported by harp")),
        };
    }
    action[name.len() + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("invalid stick table track ID. Expects {name}(<Track ID>)"))
}
