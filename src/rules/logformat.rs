//! HAProxy's log-format strings (`log-format`, `set-var-fmt`, a `use_backend` name with
//! `%`): text, `%<alias>` session figures (`%ci`, `%Tt`, `%ts`...), `%[<fetch>,<converters>]`
//! samples and `%{+Q,+X,+E}` flags, compiled once from the config and rendered per session.
//!
//! The parser follows HAProxy's `parse_logformat_string` state machine so that what HAProxy
//! accepts is read the same way (`%%` is a `%`, a `%` before another character is dropped,
//! runs of spaces in `log-format` are one separator) and what it refuses gets its message.
//! Rendering follows `sess_build_logline`: `-` for what a session lacks, quotes and hex on
//! request.

use std::net::SocketAddr;
use std::time::SystemTime;

use super::fetch::{Env, Fetch, Sample};
use super::pattern::Value;

/// A compiled log-format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    nodes: Vec<Node>,
}

/// `%{...}` flags of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opts(u8);

impl Default for Opts {
    /// `M` is on unless `%{-M}o` turns it off.
    fn default() -> Opts {
        Opts(Opts::MANDATORY)
    }
}

impl Opts {
    /// `Q`: quote text.
    const QUOTE: u8 = 1;
    /// `X`: hexadecimal addresses, ports and some numbers.
    const HEX: u8 = 2;
    /// `E`: escape `"`, `\` and `]` with a backslash.
    const ESC: u8 = 4;
    /// `M`: `-` for a missing value (else nothing).
    const MANDATORY: u8 = 8;

    fn has(self, f: u8) -> bool {
        self.0 & f != 0
    }

    /// HAProxy's `parse_logformat_var_args`: `+Q,-X,...`; unknown names are ignored.
    fn apply(mut self, args: &str) -> Opts {
        for a in args.split(',') {
            let (add, name) = match a.as_bytes().first() {
                Some(b'+') => (true, &a[1..]),
                Some(b'-') => (false, &a[1..]),
                _ => continue,
            };
            let f = match name {
                "Q" => Opts::QUOTE,
                "X" => Opts::HEX,
                "E" => Opts::ESC,
                "M" => Opts::MANDATORY,
                _ => continue,
            };
            if add {
                self.0 |= f;
            } else {
                self.0 &= !f;
            }
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// Text as written.
    Text(String),
    /// A run of spaces: one space, unless the line ends in one already.
    Sep,
    /// A `%<alias>`.
    Alias(Alias, Opts),
    /// A `%[<expr>]`.
    Expr(Box<Fetch>, Opts),
}

/// The `%` aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alias {
    /// `%o`: sets the flags of the nodes after it.
    Global,
    /// `%B`: bytes sent to the client.
    BytesOut,
    /// `%U`: bytes received from the client.
    BytesIn,
    /// `%H`: the host name.
    Hostname,
    /// `%ID`: the unique id (none in harp: `-`).
    UniqueId,
    /// `%ST`: the HTTP status (none in TCP).
    Status,
    /// `%T`: the accept date in GMT, `[07/Dec/2026:21:45:02 +0000]` style.
    DateGmt,
    /// `%Tl`: the accept date in local time.
    DateLocal,
    /// `%Ts`: the accept date, in seconds since the epoch.
    Timestamp,
    /// `%t`: the accept date with milliseconds.
    Date,
    /// `%ms`: the accept date's milliseconds.
    Ms,
    /// `%Th`: handshake time.
    Th,
    /// `%Tw`: time in queues.
    Tw,
    /// `%Tc`: time to connect.
    Tc,
    /// `%Tt`: total time.
    Tt,
    /// `%Tu`: total time less idle time (the same in TCP).
    Tu,
    /// `%Td`: data transfer time (`Tt - Tc` once connected).
    Td,
    /// An HTTP timer (`%Ta %Ti %Tq %TR %Tr`): `-1` in TCP.
    HttpTimer,
    /// An HTTP date (`%tr %trg %trl`).
    HttpDate,
    /// An HTTP-only text (`%r %HM %HP %HPO %HQ %HU %HV %CC %CS`).
    HttpText,
    /// `%hr`: the request captures, `{a|b}` (nothing without capture slots).
    ReqCaptures,
    /// `%hrl`: the request captures, one field each.
    ReqCaptureList,
    /// `%hs %hsl`: response captures, which TCP proxies never have: nothing printed.
    Headers,
    /// `%ac`: the process's connections.
    ActConn,
    /// `%fc`: the frontend's sessions.
    FeConn,
    /// `%bc`: the backend's sessions.
    BeConn,
    /// `%sc`: the server's sessions.
    SrvConn,
    /// `%rc`: retries, `+` prefixed after a redispatch.
    Retries,
    /// `%sq`: position in the server's queue.
    SrvQueue,
    /// `%bq`: position in the backend's queue.
    BeQueue,
    /// `%rt`: the session's number (HAProxy's request counter).
    ReqCounter,
    /// `%lc`: the frontend's log line counter.
    LogCounter,
    /// `%pid`.
    Pid,
    /// `%ci`: the client's address.
    ClientIp,
    /// `%cp`.
    ClientPort,
    /// `%fi`: the address the client reached.
    FrontendIp,
    /// `%fp`.
    FrontendPort,
    /// `%bi`: the address harp connected to the server from.
    BackendIp,
    /// `%bp`.
    BackendPort,
    /// `%si`: the server's address.
    ServerIp,
    /// `%sp`.
    ServerPort,
    /// `%f`: the frontend's name.
    Frontend,
    /// `%ft`: the frontend's name, `~` after it for TLS (never in harp).
    FrontendXprt,
    /// `%b`: the backend's name.
    Backend,
    /// `%s`: the server's name.
    Server,
    /// `%ts`: the termination state.
    TermState,
    /// `%tsc`: the termination state with HTTP cookie flags (`--` appended in TCP).
    TermStateCookie,
    /// `%sslc`: the client connection's cipher, as OpenSSL names it.
    SslCipher,
    /// `%sslv`: its protocol version (`TLSv1.3`).
    SslVersion,
}

/// The aliases by name, as HAProxy's `logformat_keywords` lists them, with whether they are
/// HTTP-only.
const ALIASES: &[(&str, Alias, bool)] = &[
    ("o", Alias::Global, false),
    ("B", Alias::BytesOut, false),
    ("CC", Alias::HttpText, true),
    ("CS", Alias::HttpText, true),
    ("H", Alias::Hostname, false),
    ("ID", Alias::UniqueId, false),
    ("ST", Alias::Status, false),
    ("T", Alias::DateGmt, false),
    ("Ta", Alias::HttpTimer, true),
    ("Tc", Alias::Tc, false),
    ("Th", Alias::Th, false),
    ("Ti", Alias::HttpTimer, true),
    ("Tl", Alias::DateLocal, false),
    ("Tq", Alias::HttpTimer, true),
    ("Tr", Alias::HttpTimer, true),
    ("TR", Alias::HttpTimer, true),
    ("Td", Alias::Td, false),
    ("Ts", Alias::Timestamp, false),
    ("Tt", Alias::Tt, false),
    ("Tu", Alias::Tu, false),
    ("Tw", Alias::Tw, false),
    ("U", Alias::BytesIn, false),
    ("ac", Alias::ActConn, false),
    ("b", Alias::Backend, false),
    ("bc", Alias::BeConn, false),
    ("bi", Alias::BackendIp, false),
    ("bp", Alias::BackendPort, false),
    ("bq", Alias::BeQueue, false),
    ("ci", Alias::ClientIp, false),
    ("cp", Alias::ClientPort, false),
    ("f", Alias::Frontend, false),
    ("fc", Alias::FeConn, false),
    ("fi", Alias::FrontendIp, false),
    ("fp", Alias::FrontendPort, false),
    ("ft", Alias::FrontendXprt, false),
    ("hr", Alias::ReqCaptures, false),
    ("hrl", Alias::ReqCaptureList, false),
    ("hs", Alias::Headers, false),
    ("hsl", Alias::Headers, false),
    ("HM", Alias::HttpText, true),
    ("HP", Alias::HttpText, true),
    ("HPO", Alias::HttpText, true),
    ("HQ", Alias::HttpText, true),
    ("HU", Alias::HttpText, true),
    ("HV", Alias::HttpText, true),
    ("lc", Alias::LogCounter, false),
    ("ms", Alias::Ms, false),
    ("pid", Alias::Pid, false),
    ("r", Alias::HttpText, true),
    ("rc", Alias::Retries, false),
    ("rt", Alias::ReqCounter, false),
    ("s", Alias::Server, false),
    ("sc", Alias::SrvConn, false),
    ("si", Alias::ServerIp, false),
    ("sp", Alias::ServerPort, false),
    ("sq", Alias::SrvQueue, false),
    ("sslc", Alias::SslCipher, false),
    ("sslv", Alias::SslVersion, false),
    ("t", Alias::Date, false),
    ("tr", Alias::HttpDate, true),
    ("trg", Alias::HttpDate, true),
    ("trl", Alias::HttpDate, true),
    ("ts", Alias::TermState, false),
    ("tsc", Alias::TermStateCookie, false),
];

/// HAProxy's `option tcplog` format.
pub const TCPLOG: &str = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

/// What a format is for: it decides whether spaces merge, what a missing value prints and
/// which samples may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A log line (`log-format`): runs of spaces are one separator, a missing value is `-`,
    /// the request's content is gone.
    Log,
    /// A name or a variable (`use_backend`, `set-var-fmt` in content rules): spaces are
    /// text, a missing value prints nothing (`%{+M}` asks for `-`).
    Text,
    /// [`Use::Text`] where no content was read (`tcp-request connection|session`, the
    /// global section, the Runtime API).
    TextNoContent,
    /// `unique-id-format`: spaces merge as in a log line, a missing value prints nothing.
    UniqueId,
}

/// The parser's states (HAProxy's `LF_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Init,
    Text,
    Sep,
    Percent,
    OpenArg,
    ArgDone,
    Alias,
    ExprDone,
    End,
}

impl LogFormat {
    /// Compiles `fmt`. `proxy` is the proxy it is written in (fetches default to it), `site`
    /// the file and line (map files name it), `http` whether the proxy is in HTTP mode.
    pub fn parse(
        fmt: &str,
        proxy: &str,
        site: &(String, usize),
        use_: Use,
    ) -> Result<LogFormat, String> {
        let b = fmt.as_bytes();
        let mut nodes = Vec::new();
        // HAProxy compiles log lines with `M`, names and variables without
        let mut opts = if use_ == Use::Log {
            Opts::default()
        } else {
            Opts(0)
        };
        let (mut sp, mut arg, mut alias) = (0usize, None::<(usize, usize)>, 0usize);
        let mut cur = St::Init;
        let mut at = 0usize;
        let mut prev;
        loop {
            prev = cur;
            let c = b.get(at).copied().unwrap_or(0);
            if c == 0 {
                cur = St::End;
            }
            match prev {
                // `%[` or `%{...}[`: the whole sample expression at once, up to its `]`
                St::Percent | St::ArgDone if c == b'[' => {
                    if prev == St::Percent {
                        arg = None;
                    }
                    let (f, end) = expr(fmt, at + 1, proxy, site, use_)?;
                    let o = arg.map_or(opts, |(s, e)| opts.apply(&fmt[s..e]));
                    nodes.push(Node::Expr(Box::new(f), o));
                    at = end;
                    cur = St::ExprDone;
                    prev = St::ExprDone;
                    sp = at;
                }
                St::Percent => {
                    arg = None;
                    if c == b'{' {
                        cur = St::OpenArg;
                        arg = Some((at + 1, at + 1));
                    } else if c.is_ascii_alphabetic() {
                        cur = St::Alias;
                        alias = at;
                    } else if c == b'%' {
                        cur = St::Text;
                    } else if c.is_ascii_digit() || c == b' ' || c == b'\t' {
                        return Err(format!("unexpected variable name near '{}' at position {at} line : '{fmt}'. Maybe you want to write a single '%', use the syntax '%%'", c as char));
                    } else if c != 0 {
                        cur = St::Init;
                    }
                }
                St::OpenArg => {
                    if c == b'}' {
                        if let Some((s, _)) = arg {
                            arg = Some((s, at));
                        }
                        cur = St::ArgDone;
                    }
                }
                St::ArgDone => {
                    if c.is_ascii_alphanumeric() {
                        cur = St::Alias;
                        alias = at;
                    } else {
                        let a = arg.map_or("", |(s, e)| &fmt[s..e]);
                        return Err(format!(
                            "parse argument modifier without variable name near '%{{{a}}}'"
                        ));
                    }
                }
                St::Alias => {
                    if !c.is_ascii_alphanumeric() {
                        cur = St::Init;
                    }
                }
                _ => cur = St::Init,
            }
            if cur == St::Init {
                cur = match c {
                    b'%' => St::Percent,
                    0 => St::End,
                    b' ' if matches!(use_, Use::Log | Use::UniqueId) => St::Sep,
                    _ => St::Text,
                };
            }
            if cur != prev || prev == St::Sep {
                match prev {
                    St::Alias => {
                        let name = &fmt[alias..at];
                        let Some(&(_, a, http)) = ALIASES.iter().find(|(n, _, _)| *n == name)
                        else {
                            return Err(format!("no such format variable '{name}'. If you wanted to emit the '%' character verbatim, you need to use '%%'"));
                        };
                        let o = arg.map_or(opts, |(s, e)| opts.apply(&fmt[s..e]));
                        if http {
                            return Err(format!(
                                "format variable '{name}' is reserved for HTTP mode"
                            ));
                        }
                        if a == Alias::Global {
                            opts = o;
                        } else {
                            nodes.push(Node::Alias(a, o));
                        }
                    }
                    St::Text => nodes.push(Node::Text(fmt[sp..at].to_string())),
                    St::Sep => nodes.push(Node::Sep),
                    _ => {}
                }
                sp = at;
            }
            if cur == St::End {
                break;
            }
            at += 1;
        }
        if matches!(prev, St::Percent | St::OpenArg) {
            let what = match arg {
                Some((s, _)) => &fmt[s..],
                None => "%",
            };
            return Err(format!("truncated line after '{what}'"));
        }
        // adjacent text nodes (`%%` splits them) are one
        let mut merged: Vec<Node> = Vec::with_capacity(nodes.len());
        for n in nodes {
            match (merged.last_mut(), n) {
                (Some(Node::Text(t)), Node::Text(u)) => t.push_str(&u),
                (_, n) => merged.push(n),
            }
        }
        Ok(LogFormat { nodes: merged })
    }

    /// Whether it holds nothing (`%{+Q}o` alone): HAProxy then logs as without a format.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether it is only text (a `use_backend` name with `%` but no variable, say).
    pub fn is_text(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// Whether it prints where harp connected to the server from (`%bi`, `%bp`): a
    /// `getsockname` the session does only then.
    pub fn reads_backend_src(&self) -> bool {
        self.has(|a| matches!(a, Alias::BackendIp | Alias::BackendPort))
    }

    /// Whether it prints something only the session's end knows (bytes, timers, counts, the
    /// termination state: HAProxy's `LW_BYTES` items). Without any, HAProxy logs the line
    /// once the server connection is made.
    pub fn waits_for_end(&self) -> bool {
        self.has(|a| {
            matches!(
                a,
                Alias::BytesOut
                    | Alias::BytesIn
                    | Alias::UniqueId
                    | Alias::Th
                    | Alias::Tw
                    | Alias::Tc
                    | Alias::Tt
                    | Alias::Tu
                    | Alias::Td
                    | Alias::HttpTimer
                    | Alias::TermState
                    | Alias::ActConn
                    | Alias::FeConn
                    | Alias::BeConn
                    | Alias::SrvConn
                    | Alias::Retries
                    | Alias::SrvQueue
                    | Alias::BeQueue
            )
        })
    }

    /// Whether it prints the stream's unique id (`%ID`).
    pub fn prints_unique_id(&self) -> bool {
        self.has(|a| a == Alias::UniqueId)
    }

    /// Whether it prints the address the client reached (`%fi`, `%fp`), or a sample may.
    pub fn reads_frontend_addr(&self) -> bool {
        self.has(|a| matches!(a, Alias::FrontendIp | Alias::FrontendPort))
    }

    fn has(&self, f: impl Fn(Alias) -> bool) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n, Node::Alias(a, _) if f(*a)))
    }

    /// The sample expressions it holds.
    pub fn fetches(&self) -> impl Iterator<Item = &Fetch> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Expr(f, _) => Some(&**f),
            _ => None,
        })
    }

    /// Renders it for a session: `facts` for the aliases, `env` for the samples.
    pub fn render(&self, facts: &Facts<'_>, env: &dyn Env) -> String {
        let mut out = String::with_capacity(128);
        // HAProxy's `last_isspace`: a separator after a space (or first) prints nothing
        let mut last_space = true;
        for n in &self.nodes {
            match n {
                Node::Text(t) => {
                    out.push_str(t);
                    last_space = false;
                    continue;
                }
                Node::Sep => {
                    if !last_space {
                        out.push(' ');
                        last_space = true;
                    }
                    continue;
                }
                // no captures: nothing written, the spacing untouched
                Node::Alias(Alias::Headers, _) => continue,
                Node::Alias(Alias::ReqCaptures | Alias::ReqCaptureList, _)
                    if facts.req_caps.is_empty() =>
                {
                    continue
                }
                Node::Alias(a, o) => facts.alias(&mut out, *a, *o),
                Node::Expr(f, o) => match f.sample(env) {
                    Sample::Val { v, .. } => sample_text(&mut out, &v, *o),
                    _ => text(&mut out, None, *o),
                },
            }
            last_space = false;
        }
        out
    }
}

/// Parses the sample expression of `%[...]` starting at `from`, as HAProxy's
/// `sample_parse_expr` reads it (it ends at a space or a `]` outside arguments); returns it
/// and the position of the `]` that must follow.
fn expr(
    fmt: &str,
    from: usize,
    proxy: &str,
    site: &(String, usize),
    use_: Use,
) -> Result<(Fetch, usize), String> {
    let rest = &fmt[from..];
    let (mut depth, mut quote) = (0i32, None);
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => return false,
                (None, '\'' | '"') if depth > 0 => quote = Some(c),
                (None, '(') => depth += 1,
                (None, ')') => depth -= 1,
                _ => {}
            }
            depth == 0 && matches!(c, ']' | ' ' | '\t')
        })
        .map_or(rest.len(), |(i, _)| i);
    let text = &rest[..end];
    // HAProxy quotes the rest of the whole format in these messages
    let failed = |e: String| format!("failed to parse sample expression <{rest}> : {e}");
    if text.is_empty() {
        return Err(failed("missing fetch method".into()));
    }
    let f = Fetch::parse_at(text, proxy, site).map_err(failed)?;
    // (a unique id may name them: HAProxy only warns, and they give nothing then)
    if !matches!(use_, Use::Text | Use::UniqueId) && f.reads_content() {
        return Err(format!("sample fetch <{rest}> may not be reliably used here because it needs 'request buffer' which is not available here"));
    }
    match rest[end..].chars().next() {
        Some(']') => Ok((f, from + end)),
        Some(c) => Err(format!("expected ']' after '{text}', but found '{c}'")),
        None => Err(format!("missing ']' after '{text}'")),
    }
}

/// What a session's aliases read.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// The client's address.
    pub client: Option<SocketAddr>,
    /// The address the client reached.
    pub frontend_addr: Option<SocketAddr>,
    /// The address harp connected to the server from.
    pub backend_src: Option<SocketAddr>,
    /// The server's address.
    pub server_addr: Option<SocketAddr>,
    /// When the connection was accepted.
    pub accepted: Option<SystemTime>,
    /// The frontend's name.
    pub frontend: &'a str,
    /// The backend's name (the frontend's until one is chosen).
    pub backend: &'a str,
    /// The server's name (`<NOSRV>` when none).
    pub server: &'a str,
    /// Handshake time, ms.
    pub th: i64,
    /// Queue time, ms (-1: never got out of a queue).
    pub tw: i64,
    /// Connect time, ms (-1: no connection).
    pub tc: i64,
    /// When the server connection was made, ms since accept (-1: never).
    pub connected: i64,
    /// Total time, ms.
    pub tt: i64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// Termination state.
    pub ts: [u8; 2],
    /// `%ac %fc %bc %sc`.
    pub conns: [u64; 4],
    /// Retries.
    pub retries: u32,
    /// Whether it was redispatched.
    pub redispatched: bool,
    /// `%sq %bq`.
    pub queues: [u64; 2],
    /// `%rt`.
    pub req_id: u64,
    /// `%lc`.
    pub log_count: u64,
    /// `%ID`: the stream's unique id (`unique-id-format`).
    pub unique_id: Option<&'a str>,
    /// The frontend's capture slots and what each captured (`%hr`, `%hrl`); empty when it
    /// declares none.
    pub req_caps: Vec<Option<Vec<u8>>>,
    /// Logged as soon as the server connection was made (`option logasap`): `%Tt`, `%Tu`
    /// and `%B` get a `+` (they are bound to grow).
    pub logasap: bool,
    /// The listener speaks TLS: `%ft` is the frontend's name and `~`.
    pub ssl_listener: bool,
    /// The client connection's TLS session (`%sslc`, `%sslv`).
    pub tls: Option<&'a crate::tls::TlsFacts>,
}

impl Facts<'_> {
    /// HAProxy's `strm_log` error test: a redispatch, a termination cause other than none or
    /// local, or retries on a session that ended well (what `option log-separate-errors`
    /// raises and `option dontlog-normal` keeps).
    pub fn is_error(&self) -> bool {
        self.redispatched
            || !matches!(self.ts[0], b'-' | b'L')
            || (self.ts[0] == b'-' && self.retries > 0)
    }

    /// A session seen by rules: its addresses, and its stream as far as it goes (no server
    /// yet, the clock not stopped: `%Tt` is 0, as in HAProxy).
    pub fn from_env<'e>(env: &'e dyn Env) -> Facts<'e> {
        let s = env.stream();
        Facts {
            client: env.src(),
            frontend_addr: env.dst(),
            accepted: s.map(|s| s.accepted),
            frontend: s.map_or("", |s| s.frontend),
            backend: s.map_or("", |s| s.backend),
            server: "<NOSRV>",
            req_id: s.map_or(0, |s| s.id),
            tw: -1,
            tc: -1,
            connected: -1,
            tt: 0,
            ts: *b"--",
            ..Facts::default()
        }
    }

    fn alias(&self, out: &mut String, a: Alias, o: Opts) {
        use std::fmt::Write;
        match a {
            Alias::Global => {}
            Alias::ClientIp => ip(out, self.client, o),
            Alias::ClientPort => port(out, self.client, o),
            Alias::FrontendIp => ip(out, self.frontend_addr, o),
            Alias::FrontendPort => port(out, self.frontend_addr, o),
            Alias::BackendIp => ip(out, self.backend_src, o),
            Alias::BackendPort => port(out, self.backend_src, o),
            Alias::ServerIp => ip(out, self.server_addr, o),
            Alias::ServerPort => port(out, self.server_addr, o),
            Alias::Frontend => text(out, Some(self.frontend), o),
            Alias::FrontendXprt if self.ssl_listener => {
                text(out, Some(&format!("{}~", self.frontend)), o)
            }
            Alias::FrontendXprt => text(out, Some(self.frontend), o),
            Alias::SslCipher => text(out, self.tls.map(|t| t.cipher), o),
            Alias::SslVersion => text(out, self.tls.map(|t| t.version), o),
            Alias::Backend => text(out, Some(self.backend), o),
            Alias::Server => text(out, Some(self.server), o),
            Alias::Hostname => text(out, hostname(), o),
            Alias::UniqueId => text(out, self.unique_id, o),
            Alias::HttpText => text(out, None, o),
            Alias::Headers => {}
            Alias::ReqCaptures => {
                if o.has(Opts::QUOTE) {
                    out.push('"');
                }
                out.push('{');
                for (i, c) in self.req_caps.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    if let Some(c) = c {
                        encode_header(out, c, o.has(Opts::ESC));
                    }
                }
                out.push('}');
                if o.has(Opts::QUOTE) {
                    out.push('"');
                }
            }
            Alias::ReqCaptureList => {
                for (i, c) in self.req_caps.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let q = o.has(Opts::QUOTE);
                    if q {
                        out.push('"');
                    }
                    match c {
                        Some(c) => encode_header(out, c, o.has(Opts::ESC)),
                        None if !q => out.push('-'),
                        None => {}
                    }
                    if q {
                        out.push('"');
                    }
                }
            }
            // HAProxy 2.6 prints 0 for a TCP session's status
            Alias::Status => out.push('0'),
            Alias::HttpTimer => out.push_str("-1"),
            Alias::HttpDate => date(out, self.accepted, true, o),
            Alias::Date => date(out, self.accepted, true, o),
            Alias::DateGmt => date_zone(out, self.accepted, false),
            Alias::DateLocal => date_zone(out, self.accepted, true),
            Alias::Timestamp => {
                let s = self
                    .accepted
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                hex_or_dec(out, s, o);
            }
            Alias::Ms => {
                let ms = self
                    .accepted
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.subsec_millis());
                if o.has(Opts::HEX) {
                    let _ = write!(out, "{ms:02X}");
                } else {
                    let _ = write!(out, "{ms:03}");
                }
            }
            Alias::Th => num(out, self.th),
            // HAProxy's `t_queue - t_request`, where a TCP stream has no request time (-1)
            Alias::Tw => num(out, if self.tw >= 0 { self.tw + 1 } else { -1 }),
            Alias::Tc => num(out, self.tc),
            Alias::Tt | Alias::Tu => {
                if self.logasap {
                    out.push('+');
                }
                num(out, self.tt)
            }
            // from the connection's establishment to the end
            Alias::Td => num(
                out,
                if self.connected >= 0 {
                    self.tt - self.connected
                } else {
                    -1
                },
            ),
            Alias::BytesOut => {
                if self.logasap {
                    out.push('+');
                }
                num(out, self.bytes_out as i64)
            }
            Alias::BytesIn => num(out, self.bytes_in as i64),
            Alias::TermState => out.push_str(&String::from_utf8_lossy(&self.ts)),
            Alias::TermStateCookie => {
                out.push_str(&String::from_utf8_lossy(&self.ts));
                out.push_str("--");
            }
            Alias::ActConn => num(out, self.conns[0] as i64),
            Alias::FeConn => num(out, self.conns[1] as i64),
            Alias::BeConn => num(out, self.conns[2] as i64),
            Alias::SrvConn => num(out, self.conns[3] as i64),
            Alias::Retries => {
                if self.redispatched {
                    out.push('+');
                }
                num(out, i64::from(self.retries))
            }
            Alias::SrvQueue => num(out, self.queues[0] as i64),
            Alias::BeQueue => num(out, self.queues[1] as i64),
            Alias::ReqCounter => hex_or_dec(out, self.req_id, o),
            Alias::LogCounter => hex_or_dec(out, self.log_count, o),
            Alias::Pid => hex_or_dec(out, u64::from(std::process::id()), o),
        }
    }
}

/// The host name, read once.
fn hostname() -> Option<&'static str> {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NAME.get_or_init(crate::sys::hostname).as_deref()
}

/// A unique id as HAProxy keeps it: 127 bytes at most (its `UNIQUEID_LEN` buffer), cut on a
/// character boundary.
pub fn cap_unique_id(mut id: String) -> String {
    if id.len() > 127 {
        let mut end = 127;
        while !id.is_char_boundary(end) {
            end -= 1;
        }
        id.truncate(end);
    }
    id
}

/// A captured header as HAProxy logs it: `"#{|}`, control and non-ASCII bytes as `#XX`.
/// With `+E`, `\` and `]` are escaped with a backslash as well.
fn encode_header(out: &mut String, c: &[u8], esc: bool) {
    use std::fmt::Write;
    for &b in c {
        if !(32..127).contains(&b) || b"\"#{|}".contains(&b) {
            let _ = write!(out, "#{b:02X}");
        } else {
            if esc && matches!(b, b'\\' | b']') {
                out.push('\\');
            }
            out.push(b as char);
        }
    }
}

/// A counter in decimal, or as at least 4 hex digits with `X`.
fn hex_or_dec(out: &mut String, n: u64, o: Opts) {
    use std::fmt::Write;
    if o.has(Opts::HEX) {
        let _ = write!(out, "{n:04X}");
    } else {
        let _ = write!(out, "{n}");
    }
}

fn num(out: &mut String, n: i64) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// `lf_text`: the text (quoted with `Q`, escaped with `E`), `-` when there is none (`""`
/// when quoted).
fn text(out: &mut String, t: Option<&str>, o: Opts) {
    if o.has(Opts::QUOTE) {
        out.push('"');
    }
    match t.filter(|t| !t.is_empty()) {
        Some(t) if o.has(Opts::ESC) => {
            for c in t.chars() {
                if matches!(c, '"' | '\\' | ']') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        Some(t) => out.push_str(t),
        None if !o.has(Opts::QUOTE) && o.has(Opts::MANDATORY) => out.push('-'),
        None => {}
    }
    if o.has(Opts::QUOTE) {
        out.push('"');
    }
}

/// A sample as text (`lf_text_len` after HAProxy's cast to string: binary bytes up to the
/// first NUL).
fn sample_text(out: &mut String, v: &Value, o: Opts) {
    match v {
        Value::Bin(b) | Value::Str(b) => {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            text(out, Some(&String::from_utf8_lossy(&b[..end])), o)
        }
        v => text(out, Some(&v.to_text()), o),
    }
}

/// `lf_ip`: an address (IPv4-mapped IPv6 shown as IPv4), as hex with `X`, `-` when none.
fn ip(out: &mut String, a: Option<SocketAddr>, o: Opts) {
    use std::fmt::Write;
    let Some(a) = a else {
        return text(out, None, o);
    };
    // an IPv4-mapped address stays as it is (`::ffff:127.0.0.1`), as HAProxy's inet_ntop
    let ip = a.ip();
    if o.has(Opts::HEX) {
        // never quoted
        let bytes = match ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        for b in bytes {
            let _ = write!(out, "{b:02X}");
        }
    } else {
        text(out, Some(&ip.to_string()), o)
    }
}

/// `lf_port`: a port (never quoted), as 4 hex digits with `X`.
fn port(out: &mut String, a: Option<SocketAddr>, o: Opts) {
    use std::fmt::Write;
    let Some(a) = a else {
        return text(out, None, o);
    };
    if o.has(Opts::HEX) {
        let _ = write!(out, "{:04X}", a.port());
    } else {
        let _ = write!(out, "{}", a.port());
    }
}

/// `%t`: `07/Dec/2026:21:45:02.123` (never quoted nor escaped, as HAProxy's).
fn date(out: &mut String, t: Option<SystemTime>, ms: bool, _o: Opts) {
    use std::fmt::Write;
    let t = t.unwrap_or_else(SystemTime::now);
    // local time, as HAProxy's `%t`
    let ((y, mo, d, h, mi, s, millis), _) = crate::logging::targets::civil_local(t);
    let mut v = format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02}",
        crate::logging::targets::MONTHS[mo - 1]
    );
    if ms {
        let _ = write!(v, ".{millis:03}");
    }
    out.push_str(&v);
}

/// `%T` (GMT, `+0000`) and `%Tl` (local time and its offset): `07/Dec/2026:21:45:02 +0000`,
/// never quoted.
fn date_zone(out: &mut String, t: Option<SystemTime>, local: bool) {
    use crate::logging::targets::{civil, civil_local, offset_text, MONTHS};
    let t = t.unwrap_or_else(SystemTime::now);
    let ((y, mo, d, h, mi, s, _), off) = if local { civil_local(t) } else { (civil(t), 0) };
    let v = format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} {}",
        MONTHS[mo - 1],
        offset_text(off, false)
    );
    out.push_str(&v);
}
