//! The sample fetches a TCP proxy can answer (HAProxy's layer 4 and layer 6 ones, and the
//! backend and server state ones), and what each returns for a session.

use std::net::SocketAddr;

use super::hello::{self, Hello};
use super::pattern::{Method, Value};
use super::rdp;

/// A sample fetch of an ACL expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// `always_true`.
    AlwaysTrue,
    /// `always_false`.
    AlwaysFalse,
    /// `src`: the client's address (the one a PROXY header names once it was read).
    Src,
    /// `src_port`.
    SrcPort,
    /// `dst`: the address the client reached.
    Dst,
    /// `dst_port`.
    DstPort,
    /// `req.len` / `req_len`: request bytes received so far.
    ReqLen,
    /// `req.payload(<offset>,<length>)`: raw request bytes (length 0: to the end).
    ReqPayload(usize, usize),
    /// `req.ssl_sni` / `req_ssl_sni`: the server name of a TLS ClientHello.
    ReqSslSni,
    /// `req.ssl_hello_type` / `req_ssl_hello_type`.
    ReqSslHelloType,
    /// `req.rdp_cookie([<name>])` / `rdp_cookie`: the cookie of an RDP client's first
    /// packet (any name when none is given).
    ReqRdpCookie(Option<String>),
    /// `req.rdp_cookie_cnt([<name>])` / `rdp_cookie_cnt`: 1 when it has one, else 0.
    ReqRdpCookieCnt(Option<String>),
    /// `wait_end`: true once the inspection is over (`WAIT_END`).
    WaitEnd,
    /// `nbsrv([<backend>])`: usable servers.
    Nbsrv(String),
    /// `be_conn([<backend>])`: the backend's current sessions.
    BeConn(String),
    /// `connslots([<backend>])`: free connection and queue slots, -1 when unlimited.
    Connslots(String),
    /// `queue([<backend>])`: connections waiting in the backend's and its servers' queues.
    Queue(String),
    /// `fe_conn([<frontend>])`: the frontend's current sessions.
    FeConn(String),
    /// `srv_is_up(<backend>/<server>)`.
    SrvIsUp(String, String),
    /// `srv_conn(<backend>/<server>)`.
    SrvConn(String, String),
    /// A stick-table fetch (`sc_*`, `sc<n>_*`, `src_*`, `table_*`), under the name written.
    Stick(String, crate::stick::fetch::Fetch),
    /// A fetch followed by converters (`req.ssl_sni,lower`).
    Converted(Box<Fetch>, Vec<super::convert::Conv>),
    /// `capture.req.hdr(<idx>)`: what a `tcp-request content capture` stored in that slot.
    CaptureReq(usize),
    /// `unique-id`: the stream's unique id.
    UniqueId,
    /// `var(<name>[,<default>])`: a variable's value, else the default as text.
    Var(super::vars::VarName, Option<Vec<u8>>),
    /// A constant: `str(<text>)`, `int(<n>)`, `bool(<b>)`, `bin(<hex>)`, `ipv4(<a>)`,
    /// `ipv6(<a>)`, `env(<name>)` (read at start-up), `hostname`.
    Const(&'static str, Option<Value>),
    /// `ssl_fc`, `ssl_fc_sni`, `ssl_c_s_dn`...: the client connection's TLS session.
    Tls(super::tls_fetch::TlsFetch),
    /// `fc_err`: the client connection's error code (HAProxy's `CO_ER_*`, 0 without one).
    FcErr,
    /// `fc_err_str`: its text (`Success` without one).
    FcErrStr,
}

/// HAProxy's numbers (`enum co_er`) of the connection errors harp reports, by their text.
const CONN_ERRORS: &[(i64, &str)] = &[
    (
        11,
        "Connection closed while waiting for PROXY protocol header",
    ),
    (
        12,
        "Connection error while waiting for PROXY protocol header",
    ),
    (13, "Timeout while waiting for PROXY protocol header"),
    (14, "Truncated PROXY protocol header received"),
    (15, crate::proxy_protocol::NOT_HDR),
    (16, crate::proxy_protocol::BAD_HDR),
    (17, crate::proxy_protocol::BAD_PROTO),
    (24, "Connection closed during SSL handshake"),
    (25, "Connection error during SSL handshake"),
    (26, "Timeout during SSL handshake"),
    (27, "Too many SSL connections"),
    (31, "SSL client certificate not trusted"),
    (34, "SSL handshake failure"),
];

/// Proxy figures the backend-state fetches read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyStat {
    /// Usable servers (the active ones, else the backup ones).
    Nbsrv,
    /// Current sessions of the backend side.
    BeConn,
    /// Free connection + queue slots of the usable servers (-1: unlimited).
    Connslots,
    /// Connections waiting in queues.
    Queue,
    /// Current sessions of the frontend side.
    FeConn,
}

/// Server figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStat {
    /// 1 when the server is UP (running, not in maintenance), else 0.
    IsUp,
    /// Its current connections.
    Conn,
}

/// What a fetch may read of a session and of the live proxies.
pub trait Env {
    /// The client's address.
    fn src(&self) -> Option<SocketAddr>;
    /// The address the client reached.
    fn dst(&self) -> Option<SocketAddr>;
    /// The request bytes received so far; `None` where rules run before any content
    /// (`tcp-request connection`/`session`).
    fn content(&self) -> Option<&[u8]>;
    /// Whether the content will not grow any more (inspection over, buffer full, client done).
    fn is_final(&self) -> bool;
    /// A figure of a proxy by name; `None` when it does not exist.
    fn proxy_stat(&self, proxy: &str, what: ProxyStat) -> Option<i64>;
    /// A figure of a server; `None` when it does not exist.
    fn server_stat(&self, backend: &str, server: &str, what: ServerStat) -> Option<i64>;
    /// A stick-table fetch's value for this session (`None`: no sample). Without tables:
    /// none.
    fn stick(&self, _fetch: &crate::stick::fetch::Fetch) -> Option<i64> {
        None
    }
    /// `track-sc<slot> <key> [table <table>]`: tracks the key in counter `slot` unless it
    /// tracks something already.
    fn track(&self, _slot: usize, _table: &str, _key: &Value) {}
    /// `sc-inc-gpc0|1(<slot>)`.
    fn inc_gpc(&self, _slot: usize, _which: u8) {}
    /// `sc-set-gpt0(<slot>) <value>`.
    fn set_gpt0(&self, _slot: usize, _value: u64) {}
    /// The client connection's TLS session (`bind ... ssl`); `None` for plain TCP or before
    /// the handshake.
    fn tls(&self) -> Option<&crate::tls::TlsFacts> {
        None
    }
    /// The client connection's error, in HAProxy's words (`fc_err_str`); `None` without one.
    fn conn_error(&self) -> Option<&str> {
        None
    }
    /// The stream a log-format built during the rules reads (`set-var-fmt`, a name with
    /// `%`): its frontend and backend names, accept time and number (`%rt`). `None` before a
    /// stream exists.
    fn stream(&self) -> Option<StreamInfo<'_>> {
        None
    }
    /// The stream's unique id (`unique-id`): built from `unique-id-format` at first use, the
    /// same afterwards. `None` without a format.
    fn unique_id(&self) -> Option<Vec<u8>> {
        None
    }
    /// `tcp-request content capture`: stores `v` in capture slot `slot`.
    fn capture(&self, _slot: usize, _v: Vec<u8>) {}
    /// What capture slot `slot` holds (`capture.req.hdr(<slot>)`).
    fn captured(&self, _slot: usize) -> Option<Vec<u8>> {
        None
    }
    /// A variable's value (`var()`). Without variables: its scope does not exist here.
    fn var(&self, _name: &super::vars::VarName) -> super::vars::Got {
        super::vars::Got::Unavailable
    }
    /// `set-var`: stores `v` if the conditions allow; whether it did.
    fn set_var(
        &self,
        _name: &super::vars::VarName,
        _v: Value,
        _conds: &[super::vars::SetCond],
    ) -> bool {
        false
    }
    /// `unset-var`: whether the variable's scope exists here.
    fn unset_var(&self, _name: &super::vars::VarName) -> bool {
        false
    }
    /// What a table converter reads of the entry of `key` in `table`. `None`: no sample.
    fn table_read(
        &self,
        _table: &str,
        _key: &Value,
        _what: crate::stick::fetch::TableRead,
    ) -> Option<i64> {
        None
    }
}

/// What a stream is, for the `%` aliases of a format built during the rules.
#[derive(Debug, Clone, Copy)]
pub struct StreamInfo<'a> {
    /// The frontend's name.
    pub frontend: &'a str,
    /// The backend's name (the frontend's until one is chosen).
    pub backend: &'a str,
    /// When the connection was accepted.
    pub accepted: std::time::SystemTime,
    /// The stream's number (`%rt`).
    pub id: u64,
    /// The frontend's `unique-id-format`, if any.
    pub unique_id_format: Option<&'a super::logformat::LogFormat>,
}

/// A sample, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// A value; `may_change` when more content could give another one.
    Val { v: Value, may_change: bool },
    /// None, and none will come.
    None,
    /// None yet: more content may give one.
    Missing,
}

/// A constant fetch (`str(abc)`, `int(3)`...), as HAProxy's `smp_fetch_const_*` and their
/// argument checks read it; `env` and `hostname` are read once, at start-up.
fn constant(name: &str, args: Option<&str>) -> Result<Fetch, String> {
    let kw: &'static str = NAMES.iter().find(|n| **n == name).copied().unwrap_or("str");
    let a = super::convert::text::split_args(args.unwrap_or(""));
    let given = args.is_some_and(|a| !a.is_empty());
    let bad = |e: String| format!("invalid args in fetch method '{kw}' : {e}");
    let want = |ty: &str| {
        format!("fetch method '{kw}' : missing arguments (got 0/1), type '{ty}' expected")
    };
    if kw == "hostname" {
        if given {
            return Err("fetch method 'hostname' does not support any args".into());
        }
        return Ok(Fetch::Const(
            kw,
            crate::sys::hostname().map(|h| Value::Str(h.into_bytes())),
        ));
    }
    if a.len() > 1 {
        return Err(format!(
            "fetch method '{kw}' : end of arguments expected at position 2, but got ',{}'",
            a[1..].join(",")
        ));
    }
    let arg = &a[0];
    let v = match kw {
        // `str()` is an empty text; `str` alone lacks its argument
        "str" if args.is_none() => return Err(want("string")),
        "str" => Value::Str(arg.as_bytes().to_vec()),
        "env" if !given => return Err(want("string")),
        "env" => {
            return Ok(Fetch::Const(
                kw,
                std::env::var_os(arg).map(|v| Value::Str(v.into_encoded_bytes())),
            ))
        }
        "int" if !given => return Err(want("integer")),
        "int" => {
            let (n, used) = super::pattern::read_int64(arg.as_bytes());
            if used != arg.len() || used == 0 {
                return Err(format!(
                    "fetch method '{kw}' : failed to parse '{arg}' as type 'integer' at position 1"
                ));
            }
            Value::Int(n)
        }
        "bool" if !given => return Err(want("string")),
        "bool" => match arg.as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad("Expects 'true', 'false', '0' or '1'".into())),
        },
        "bin" if !given => return Err(want("string")),
        "bin" => {
            let h = arg.as_bytes();
            let ok = h.len() % 2 == 0 && h.iter().all(u8::is_ascii_hexdigit);
            if !ok {
                return Err(bad(format!("invalid binary string '{arg}'")));
            }
            let nib = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            Value::Bin(h.chunks(2).map(|p| nib(p[0]) << 4 | nib(p[1])).collect())
        }
        "ipv4" if !given => return Err(want("ipv4")),
        "ipv4" => match arg.parse::<std::net::Ipv4Addr>() {
            Ok(a) => Value::Ip(a.into()),
            Err(_) => {
                return Err(format!(
                    "fetch method '{kw}' : failed to parse '{arg}' as type 'ipv4' at position 1"
                ))
            }
        },
        "ipv6" if !given => return Err(want("ipv6")),
        _ => match arg.parse::<std::net::Ipv6Addr>() {
            Ok(a) => Value::Ip(a.into()),
            Err(_) => {
                return Err(format!(
                    "fetch method '{kw}' : failed to parse '{arg}' as type 'ipv6' at position 1"
                ))
            }
        },
    };
    Ok(Fetch::Const(kw, Some(v)))
}

/// The fetches harp knows, for did-you-mean and error messages.
pub const NAMES: &[&str] = &[
    "always_true",
    "always_false",
    "src",
    "src_port",
    "dst",
    "dst_port",
    "req.len",
    "req_len",
    "req.payload",
    "payload",
    "req.ssl_sni",
    "req_ssl_sni",
    "req.rdp_cookie",
    "rdp_cookie",
    "req.rdp_cookie_cnt",
    "rdp_cookie_cnt",
    "req.ssl_hello_type",
    "req_ssl_hello_type",
    "wait_end",
    "nbsrv",
    "be_conn",
    "connslots",
    "queue",
    "fe_conn",
    "srv_is_up",
    "srv_conn",
    "var",
    "capture.req.hdr",
    "fc_err",
    "fc_err_str",
    "unique-id",
    "str",
    "int",
    "bool",
    "bin",
    "ipv4",
    "ipv6",
    "env",
    "hostname",
];

impl Fetch {
    /// Parses `name` or `name(args)`. `proxy` names the proxy the rule is written in: the
    /// backend-state fetches default to it, as HAProxy's do.
    pub fn parse(word: &str, proxy: &str) -> Result<Fetch, String> {
        Fetch::parse_at(word, proxy, &(String::new(), 0))
    }

    /// [`Fetch::parse`] for a configuration line: `site` (file, line) names the first user of
    /// a map file a converter reads.
    pub fn parse_at(word: &str, proxy: &str, site: &(String, usize)) -> Result<Fetch, String> {
        // `fetch(args),converter(args),...`: split at the commas outside the arguments
        // (quoted arguments may hold commas and parentheses: `regsub('(a|b)',x)`)
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0);
        let mut quote = None;
        for (i, c) in word.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') if depth > 0 => quote = Some(c),
                (None, '(') => depth += 1,
                (None, ')') => depth -= 1,
                (None, ',') if depth == 0 => {
                    parts.push(&word[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&word[start..]);
        if parts.len() > 1 {
            let base = Fetch::parse_at(parts[0], proxy, site)?;
            // HAProxy skips doubled and trailing commas
            let convs = parts[1..]
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| super::convert::Conv::parse(c, proxy, site))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Fetch::Converted(Box::new(base), convs));
        }
        let (name, args) = match word.split_once('(') {
            Some((n, rest)) => {
                let Some(a) = rest.strip_suffix(')') else {
                    return Err(format!(
                        "missing closing ')' after arguments to fetch keyword '{n}'"
                    ));
                };
                (n, Some(a))
            }
            None => (word, None),
        };
        let no_args = |f: Fetch| match args {
            Some(a) if !a.is_empty() => {
                Err(format!("fetch method '{name}' does not support any args"))
            }
            _ => Ok(f),
        };
        let proxy_arg = || -> String {
            match args {
                Some(a) if !a.is_empty() => a.to_string(),
                _ => proxy.to_string(),
            }
        };
        let server_arg = || -> Result<(String, String), String> {
            let a = args.unwrap_or("");
            match a.split_once('/') {
                Some((b, s)) if !b.is_empty() && !s.is_empty() => {
                    Ok((b.to_string(), s.to_string()))
                }
                _ if !a.is_empty() && !a.contains('/') => Ok((proxy.to_string(), a.to_string())),
                _ => Err(format!(
                    "fetch method '{name}' : missing arg 1 (expects <backend>/<server>)"
                )),
            }
        };
        Ok(match name {
            "always_true" => no_args(Fetch::AlwaysTrue)?,
            "always_false" => no_args(Fetch::AlwaysFalse)?,
            "src" => no_args(Fetch::Src)?,
            "src_port" => no_args(Fetch::SrcPort)?,
            "dst" => no_args(Fetch::Dst)?,
            "dst_port" => no_args(Fetch::DstPort)?,
            "req.len" | "req_len" => no_args(Fetch::ReqLen)?,
            "req.ssl_sni" | "req_ssl_sni" => no_args(Fetch::ReqSslSni)?,
            "req.rdp_cookie" | "rdp_cookie" => {
                Fetch::ReqRdpCookie(args.filter(|a| !a.is_empty()).map(str::to_string))
            }
            "req.rdp_cookie_cnt" | "rdp_cookie_cnt" => {
                Fetch::ReqRdpCookieCnt(args.filter(|a| !a.is_empty()).map(str::to_string))
            }
            "req.ssl_hello_type" | "req_ssl_hello_type" => no_args(Fetch::ReqSslHelloType)?,
            "wait_end" => no_args(Fetch::WaitEnd)?,
            "req.payload" | "payload" => {
                let a = args.unwrap_or("");
                let (off, len) = a.split_once(',').ok_or_else(|| {
                    format!("fetch method '{name}' expects 2 arguments (<offset>,<length>)")
                })?;
                let num = |s: &str| {
                    s.trim().parse::<usize>().map_err(|_| {
                        format!("fetch method '{name}' : '{s}' is not a positive integer")
                    })
                };
                let (off, len) = (num(off)?, num(len)?);
                if off.checked_add(len).is_none() {
                    return Err(format!(
                        "fetch method '{name}' : offset and length are too large"
                    ));
                }
                Fetch::ReqPayload(off, len)
            }
            "nbsrv" => Fetch::Nbsrv(proxy_arg()),
            "be_conn" => Fetch::BeConn(proxy_arg()),
            "connslots" => Fetch::Connslots(proxy_arg()),
            "queue" => Fetch::Queue(proxy_arg()),
            "fe_conn" => Fetch::FeConn(proxy_arg()),
            "srv_is_up" => {
                let (b, s) = server_arg()?;
                Fetch::SrvIsUp(b, s)
            }
            "srv_conn" => {
                let (b, s) = server_arg()?;
                Fetch::SrvConn(b, s)
            }
            "var" => {
                let a = super::convert::text::split_args(args.unwrap_or(""));
                let bad = |e: String| format!("invalid args in fetch method 'var' : {e}");
                if a.len() > 2 {
                    let rest = &args.unwrap_or("")[args.unwrap_or("").find(',').unwrap_or(0)..];
                    let after = &rest[1..];
                    let at = after.find(',').map_or(rest, |i| &after[i..]);
                    return Err(format!("fetch method 'var' : expected ')' before '{at})'"));
                }
                let name = super::vars::VarName::parse(&a[0]).map_err(bad)?;
                Fetch::Var(name, a.get(1).map(|d| d.as_bytes().to_vec()))
            }
            "unique-id" => no_args(Fetch::UniqueId)?,
            "fc_err" => no_args(Fetch::FcErr)?,
            "fc_err_str" => no_args(Fetch::FcErrStr)?,
            "capture.req.hdr" => {
                let a = args.unwrap_or("").trim();
                match a.parse::<usize>() {
                    Ok(i) => Fetch::CaptureReq(i),
                    Err(_) if a.is_empty() => {
                        return Err("fetch method 'capture.req.hdr' : missing arguments (got 0/1), type 'integer' expected".into())
                    }
                    Err(_) => {
                        return Err(format!("fetch method 'capture.req.hdr' : failed to parse '{a}' as type 'integer' at position 1"))
                    }
                }
            }
            "str" | "int" | "bool" | "bin" | "ipv4" | "ipv6" | "env" | "hostname" => {
                constant(name, args)?
            }
            other => {
                if let Some(f) = super::tls_fetch::TlsFetch::named(other) {
                    return no_args(Fetch::Tls(f));
                }
                if let Some(r) = crate::stick::fetch::Fetch::parse(other, args, proxy) {
                    return r.map(|f| Fetch::Stick(other.to_string(), f));
                }
                let mut all: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
                all.extend(super::tls_fetch::NAMES.iter().map(|(n, _)| n.to_string()));
                all.extend(crate::stick::fetch::names());
                let all: Vec<&str> = all.iter().map(String::as_str).collect();
                let hint = crate::config::suggest::did_you_mean(other, &all)
                    .map(|s| format!(", did you mean '{s}' maybe ?"))
                    .unwrap_or_default();
                return Err(format!("unknown fetch method '{other}'{hint}"));
            }
        })
    }

    /// The match method an ACL uses when it names none (the fetch's output type).
    /// Raw bytes have none: HAProxy wants `-m` for them.
    pub fn default_method(&self) -> Option<Method> {
        Some(match self {
            Fetch::Converted(base, convs) => {
                // the variable converters' output has no type of its own: `-m` is needed
                return match convs.last() {
                    Some(c) if c.passes_through() => None,
                    Some(c) => Some(c.method()),
                    None => base.default_method(),
                };
            }
            Fetch::AlwaysTrue | Fetch::AlwaysFalse | Fetch::WaitEnd | Fetch::SrvIsUp(..) => {
                Method::Bool
            }
            Fetch::Src | Fetch::Dst => Method::Ip,
            Fetch::ReqSslSni
            | Fetch::ReqRdpCookie(_)
            | Fetch::CaptureReq(_)
            | Fetch::UniqueId
            | Fetch::FcErrStr => Method::Str,
            Fetch::ReqPayload(..) | Fetch::Var(..) => return None,
            Fetch::Const(_, v) => match v {
                Some(Value::Bool(_)) => Method::Bool,
                Some(Value::Int(_)) => Method::Int,
                Some(Value::Ip(_)) => Method::Ip,
                Some(Value::Bin(_)) => Method::Bin,
                _ => Method::Str,
            },
            Fetch::Stick(_, f) if f.is_bool() => Method::Bool,
            Fetch::Tls(f) => f.method(),
            _ => Method::Int,
        })
    }

    /// What of a session it reads, by HAProxy's name for it (`client address`, `request
    /// buffer`...); `None` for what a global `set-var` may use (constants, variables, proxy
    /// and server state).
    pub fn session_source(&self) -> Option<&'static str> {
        match self {
            Fetch::Converted(base, _) => base.session_source(),
            Fetch::Src | Fetch::SrcPort => Some("client address"),
            Fetch::Dst | Fetch::DstPort => Some("frontend address"),
            Fetch::Stick(..) => Some("tracked counters"),
            Fetch::Tls(_) => Some("client connection"),
            f if f.reads_content() => Some("request buffer"),
            _ => None,
        }
    }

    /// Whether it reads the request's content (meaningless before any arrived).
    pub fn reads_content(&self) -> bool {
        if let Fetch::Converted(base, _) = self {
            return base.reads_content();
        }
        matches!(
            self,
            Fetch::ReqLen
                | Fetch::ReqPayload(..)
                | Fetch::ReqSslSni
                | Fetch::ReqSslHelloType
                | Fetch::ReqRdpCookie(_)
                | Fetch::ReqRdpCookieCnt(_)
                | Fetch::WaitEnd
        )
    }

    /// The proxies and servers it names, for validation: `(proxy, server)`.
    pub fn names(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Fetch::Converted(base, _) => base.names(),
            Fetch::Nbsrv(p) | Fetch::BeConn(p) | Fetch::Connslots(p) | Fetch::Queue(p) => {
                Some((p, None))
            }
            Fetch::FeConn(p) => Some((p, None)),
            Fetch::SrvIsUp(b, s) | Fetch::SrvConn(b, s) => Some((b, Some(s))),
            _ => None,
        }
    }

    /// Its keyword, for messages.
    pub fn keyword(&self) -> &str {
        match self {
            Fetch::Stick(name, _) => name,
            Fetch::Converted(base, _) => base.keyword(),
            Fetch::Var(..) => "var",
            Fetch::CaptureReq(_) => "capture.req.hdr",
            Fetch::UniqueId => "unique-id",
            Fetch::Const(kw, _) => kw,
            Fetch::Tls(f) => f.keyword(),
            Fetch::FcErr => "fc_err",
            Fetch::FcErrStr => "fc_err_str",
            Fetch::ReqRdpCookie(_) => "req.rdp_cookie",
            Fetch::ReqRdpCookieCnt(_) => "req.rdp_cookie_cnt",
            Fetch::AlwaysTrue => "always_true",
            Fetch::AlwaysFalse => "always_false",
            Fetch::Src => "src",
            Fetch::SrcPort => "src_port",
            Fetch::Dst => "dst",
            Fetch::DstPort => "dst_port",
            Fetch::ReqLen => "req.len",
            Fetch::ReqPayload(..) => "req.payload",
            Fetch::ReqSslSni => "req.ssl_sni",
            Fetch::ReqSslHelloType => "req.ssl_hello_type",
            Fetch::WaitEnd => "wait_end",
            Fetch::Nbsrv(_) => "nbsrv",
            Fetch::BeConn(_) => "be_conn",
            Fetch::Connslots(_) => "connslots",
            Fetch::Queue(_) => "queue",
            Fetch::FeConn(_) => "fe_conn",
            Fetch::SrvIsUp(..) => "srv_is_up",
            Fetch::SrvConn(..) => "srv_conn",
        }
    }

    /// Whether the proxy it names must be a frontend (else a backend).
    pub fn wants_frontend(&self) -> bool {
        match self {
            Fetch::Converted(base, _) => base.wants_frontend(),
            _ => matches!(self, Fetch::FeConn(_)),
        }
    }

    /// The stick tables it reads, each with what names it (`ACL keyword 'src_conn_rate'`,
    /// `converter 'table_gpc0'`), for the start-up check that they exist.
    pub fn tables(&self) -> Vec<(String, &str)> {
        match self {
            Fetch::Stick(kw, f) => f
                .table()
                .map(|t| (format!("ACL keyword '{kw}'"), t))
                .into_iter()
                .collect(),
            Fetch::Converted(base, convs) => {
                let mut v = base.tables();
                for c in convs {
                    if let Some(t) = c.table() {
                        v.push((format!("converter '{}'", c.name()), t));
                    }
                }
                v
            }
            _ => Vec::new(),
        }
    }

    /// The variables it reads (`var()`) or its converters set (`set-var`, `unset-var`).
    pub fn var_names(&self) -> Vec<&super::vars::VarName> {
        match self {
            Fetch::Var(n, _) => vec![n],
            Fetch::Converted(base, convs) => {
                let mut v = base.var_names();
                v.extend(convs.iter().filter_map(|c| match c {
                    super::convert::Conv::SetVar(n, _)
                    | super::convert::Conv::UnsetVar(n)
                    | super::convert::Conv::IntVar(_, n)
                    | super::convert::Conv::Concat(_, Some(n), _) => Some(n),
                    _ => None,
                }));
                v
            }
            _ => Vec::new(),
        }
    }

    /// The map files its converters read (their lists, for `show map` and the ids).
    pub fn maps(&self) -> Vec<&std::sync::Arc<super::patref::PatRef>> {
        match self {
            Fetch::Converted(_, convs) => convs
                .iter()
                .filter_map(|c| match c {
                    super::convert::Conv::Map(m) => Some(&m.list),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The sample for the session `env` describes.
    pub fn sample(&self, env: &dyn Env) -> Sample {
        let val = |v: Value| Sample::Val {
            v,
            may_change: false,
        };
        let opt = |v: Option<Value>| v.map_or(Sample::None, val);
        let fin = env.is_final();
        match self {
            Fetch::Converted(base, convs) => match base.sample(env) {
                Sample::Val { v, mut may_change } => {
                    let mut v = Some(v);
                    for c in convs {
                        v = v.and_then(|x| c.apply(x, env));
                        may_change &= !c.settles();
                    }
                    match v {
                        Some(v) => Sample::Val { v, may_change },
                        None if may_change => Sample::Missing,
                        None => Sample::None,
                    }
                }
                other => other,
            },
            Fetch::AlwaysTrue => val(Value::Bool(true)),
            Fetch::AlwaysFalse => val(Value::Bool(false)),
            Fetch::Src => opt(env.src().map(|a| Value::Ip(a.ip()))),
            Fetch::SrcPort => opt(env.src().map(|a| Value::Int(i64::from(a.port())))),
            Fetch::Dst => opt(env.dst().map(|a| Value::Ip(a.ip()))),
            Fetch::DstPort => opt(env.dst().map(|a| Value::Int(i64::from(a.port())))),
            Fetch::WaitEnd => match env.content() {
                None => Sample::None,
                Some(_) if fin => val(Value::Bool(true)),
                Some(_) => Sample::Missing,
            },
            Fetch::ReqLen => match env.content() {
                None => Sample::None,
                Some(c) => Sample::Val {
                    v: Value::Int(c.len() as i64),
                    may_change: !fin,
                },
            },
            Fetch::ReqPayload(off, len) => match env.content() {
                None => Sample::None,
                Some(c) => {
                    // both were checked not to overflow at parse time
                    let end = if *len == 0 { c.len() } else { off + len };
                    match c.get(*off..end) {
                        Some(b) => Sample::Val {
                            v: Value::Bin(b.to_vec()),
                            // with no length, more bytes would give another sample
                            may_change: *len == 0 && !fin,
                        },
                        // bytes the buffer can never hold: no use waiting for them
                        None if fin || end > super::MAX_CONTENT => Sample::None,
                        None => Sample::Missing,
                    }
                }
            },
            Fetch::ReqSslSni => match env.content().map(hello::sni) {
                None | Some(Hello::Absent) => Sample::None,
                Some(Hello::Short) if fin => Sample::None,
                Some(Hello::Short) => Sample::Missing,
                Some(Hello::Found(name)) => val(Value::Str(name.to_vec())),
            },
            Fetch::ReqRdpCookie(n) => match env.content().map(|c| rdp::cookie(c, n.as_deref())) {
                None | Some(Hello::Absent) => Sample::None,
                Some(Hello::Short) if fin => Sample::None,
                Some(Hello::Short) => Sample::Missing,
                Some(Hello::Found(v)) => val(Value::Str(v.to_vec())),
            },
            // HAProxy's count is 0 or 1; a packet not whole yet gives nothing, waiting or not
            Fetch::ReqRdpCookieCnt(n) => {
                match env.content().map(|c| rdp::cookie(c, n.as_deref())) {
                    None => Sample::None,
                    Some(Hello::Short) if fin => Sample::None,
                    Some(Hello::Short) => Sample::Missing,
                    Some(Hello::Found(_)) => val(Value::Int(1)),
                    Some(Hello::Absent) => val(Value::Int(0)),
                }
            }
            Fetch::ReqSslHelloType => match env.content().map(hello::hello_type) {
                None | Some(Hello::Absent) => Sample::None,
                Some(Hello::Short) if fin => Sample::None,
                Some(Hello::Short) => Sample::Missing,
                Some(Hello::Found(t)) => val(Value::Int(i64::from(t))),
            },
            Fetch::Nbsrv(p) => opt(env.proxy_stat(p, ProxyStat::Nbsrv).map(Value::Int)),
            Fetch::BeConn(p) => opt(env.proxy_stat(p, ProxyStat::BeConn).map(Value::Int)),
            Fetch::Connslots(p) => opt(env.proxy_stat(p, ProxyStat::Connslots).map(Value::Int)),
            Fetch::Queue(p) => opt(env.proxy_stat(p, ProxyStat::Queue).map(Value::Int)),
            Fetch::FeConn(p) => opt(env.proxy_stat(p, ProxyStat::FeConn).map(Value::Int)),
            Fetch::SrvIsUp(b, s) => opt(env
                .server_stat(b, s, ServerStat::IsUp)
                .map(|v| Value::Bool(v != 0))),
            Fetch::SrvConn(b, s) => opt(env.server_stat(b, s, ServerStat::Conn).map(Value::Int)),
            Fetch::Stick(_, f) if f.is_bool() => opt(env.stick(f).map(|v| Value::Bool(v != 0))),
            Fetch::Stick(_, f) => opt(env.stick(f).map(Value::Int)),
            Fetch::Const(_, v) => opt(v.clone()),
            Fetch::CaptureReq(i) => opt(env.captured(*i).map(Value::Str)),
            Fetch::UniqueId => opt(env.unique_id().map(Value::Str)),
            Fetch::Tls(f) => f.sample(env.tls()),
            Fetch::FcErr => val(Value::Int(env.conn_error().map_or(0, |e| {
                CONN_ERRORS
                    .iter()
                    .find(|(_, t)| *t == e)
                    .map_or(0, |(c, _)| *c)
            }))),
            Fetch::FcErrStr => val(Value::Str(
                env.conn_error().unwrap_or("Success").as_bytes().to_vec(),
            )),
            Fetch::Var(name, default) => match env.var(name) {
                super::vars::Got::Val(v) => val(v),
                super::vars::Got::Unset => opt(default.clone().map(Value::Str)),
                super::vars::Got::Unavailable => Sample::None,
            },
        }
    }
}
