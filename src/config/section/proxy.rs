//! `defaults`, `frontend`, `backend` and `listen` sections (one parser: a `defaults` section is a
//! proxy without capabilities whose settings new proxies start from).

use std::time::Duration;

use super::{arg, log, no_more, server, Ctx};
use crate::config::suggest::{did_you_mean, unknown_keyword};
use crate::config::units::{parse_socket_addr, parse_time, parse_u32};
use crate::config::{
    BalanceAlgo, BindConfig, CheckKind, HashType, HttpCheck, Location, ProxyConfig, ProxyMode,
    SpliceMode,
};

/// Facts about a proxy that the typed config does not keep but validation needs.
#[derive(Debug, Default, Clone)]
pub(crate) struct ProxyMeta {
    /// Where `default_backend` was written (`None` = inherited from defaults or unset).
    pub default_backend_at: Option<Location>,
    /// Where each `use_backend` was written, in order.
    pub use_backend_at: Vec<Location>,
    /// Where each `use-server` rule was written (its server is checked once all are read).
    pub use_server_at: Vec<Location>,
    /// Where `email-alert mailers` was written.
    pub mailers_at: Option<Location>,
    /// Where `id` was written.
    pub id_at: Option<Location>,
    /// A `bind` line was written (even a wrong one: no "no bind" error on top of its error).
    pub bind_seen: bool,
    /// This section wrote `tcp-check` rules: the ones it took from its defaults are gone.
    pub tcp_rules_own: bool,
    /// Where the first `http-request`/`http-response` line of a proxy in `mode http` was.
    pub http_rules_at: Option<Location>,
    /// The `rate-limit sessions` the proxy took from its defaults: writing it once more with
    /// another value draws HAProxy's "overwriting" warning.
    pub defaults_rate_limit: u32,
}

/// Keywords harp understands in proxy sections (for did-you-mean and the README).
pub(crate) const KEYWORDS: &[&str] = &[
    "mode",
    "bind",
    "default_backend",
    "use_backend",
    "use-server",
    "acl",
    "tcp-request",
    "stick-table",
    "stick",
    "balance",
    "hash-type",
    "timeout",
    "retries",
    "option",
    "no",
    "maxconn",
    "fullconn",
    "default-server",
    "server",
    "http-check",
    "tcp-check",
    "source",
    "load-server-state-from-file",
    "server-state-file-name",
    "retry-on",
    "server-template",
    "hash-balance-factor",
    "bind-process",
    "max-keep-alive-queue",
    "email-alert",
    "backlog",
    "id",
    "disabled",
    "enabled",
    "log",
    "log-tag",
    "description",
    "errorfile",
    "log-format",
    "clitcpka-idle",
    "clitcpka-intvl",
    "clitcpka-cnt",
    "srvtcpka-idle",
    "srvtcpka-intvl",
    "srvtcpka-cnt",
];

/// HAProxy keywords harp cannot honour and that change routing or traffic: refused.
const UNSUPPORTED: &[&str] = &[
    "tcp-response",
    "stick-on",
    "stick-store",
    "dispatch",
    "force-persist",
    "ignore-persist",
    "filter",
    "external-check",
];

/// HTTP-only keywords: HAProxy ignores them with a warning in TCP mode, and so does harp.
const HTTP_ONLY: &[&str] = &[
    "http-request",
    "http-response",
    "http-after-response",
    "cookie",
    "capture",
    "compression",
    "redirect",
    "monitor-uri",
    "http-reuse",
    "errorloc",
    "errorloc302",
    "errorloc303",
    "http-error",
    "errorfiles",
];

/// HAProxy options that only act in `mode http`: ignored with HAProxy's warning in tcp mode.
const HTTP_OPTIONS: &[&str] = &[
    "forwardfor",
    "originalto",
    "http-buffer-request",
    "http-ignore-probes",
    "prefer-last-server",
    "http-use-proxy-header",
    "http-pretend-keepalive",
    "http-no-delay",
    "http-restrict-req-hdr-names",
    "accept-invalid-http-request",
    "accept-invalid-http-response",
    "checkcache",
    "httpslog",
    "h1-case-adjust-bogus-client",
    "h1-case-adjust-bogus-server",
    "disable-h2-upgrade",
    "idle-close-on-response",
];

/// Options harp understands (`option <name>`).
const OPTIONS: &[&str] = &[
    "redispatch",
    "allbackups",
    "httpchk",
    "tcp-check",
    "redis-check",
    "smtpchk",
    "pgsql-check",
    "mysql-check",
    "ldap-check",
    "ssl-hello-chk",
    "log-health-checks",
    "tcplog",
    "splice-auto",
    "splice-request",
    "splice-response",
    "tcp-smart-connect",
    "tcp-smart-accept",
    "dontlognull",
    "tcpka",
    "clitcpka",
    "srvtcpka",
    "httplog",
    "forwardfor",
    "http-server-close",
    "httpclose",
    "http-keep-alive",
    "abortonclose",
    "log-separate-errors",
    "logasap",
    "nolinger",
];

/// Which section kind a proxy is, for messages (`frontend`, `backend`, `listen`, `defaults`).
fn kind(p: &ProxyConfig) -> &'static str {
    match (p.cap.frontend, p.cap.backend) {
        (true, true) => "listen",
        (true, false) => "frontend",
        (false, true) => "backend",
        (false, false) => "defaults",
    }
}

/// A keyword that needs a capability the proxy lacks: HAProxy ignores it with a warning.
/// Returns true when the line must be skipped. `defaults` have every capability.
fn lacks(p: &ProxyConfig, frontend: bool, kw: &str, ctx: &mut Ctx<'_>) -> bool {
    let k = kind(p);
    if k == "defaults" {
        return false;
    }
    let has = if frontend {
        p.cap.frontend
    } else {
        p.cap.backend
    };
    if !has {
        ctx.warn(format!(
            "'{kw}' ignored because {k} '{}' has no {} capability.",
            p.name,
            if frontend { "frontend" } else { "backend" }
        ));
    }
    !has
}

/// `stats <what> ...`: the statistics page's settings (any of them enables it, as in HAProxy).
fn stats(p: &mut ProxyConfig, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    let what = words.first().map(String::as_str).unwrap_or("");
    let val = |what: &str| {
        words
            .get(1)
            .map(String::as_str)
            .ok_or_else(|| format!("'stats {what}' expects an argument."))
    };
    let page = p
        .stats
        .get_or_insert_with(crate::config::StatsPage::default);
    match what {
        "enable" => {}
        "uri" => page.uri = val(what)?.to_string(),
        "realm" => page.realm = val(what)?.to_string(),
        "auth" => {
            let v = val(what)?;
            let Some((user, pass)) = v.split_once(':') else {
                return Err("'stats auth' expects <user>:<password>.".into());
            };
            page.auth.push((user.to_string(), pass.to_string()));
        }
        "refresh" => {
            // HAProxy reads a bare number as seconds here
            let v = val(what)?;
            let v = if v.bytes().all(|b| b.is_ascii_digit()) {
                format!("{v}s")
            } else {
                v.to_string()
            };
            page.refresh = Some(parse_time(&v, "stats refresh")?);
        }
        "hide-version" => page.hide_version = true,
        "scope" => page.scope.push(val(what)?.to_string()),
        "show-legends" | "show-node" | "show-desc" | "show-modules" => {}
        "admin" => {
            ctx.warn(format!(
                "'stats {what}' has no effect in harp (its statistics page is read-only); ignored."
            ));
        }
        "http-request" => {
            return Err(
                "'stats http-request' is not supported by harp (its statistics page applies no rules)."
                    .into(),
            )
        }
        "bind-process" | "maxconn" | "timeout" | "socket" => {
            return Err(format!("'stats {what}' is a 'global' section keyword."));
        }
        other => {
            return Err(format!(
                "'stats' expects 'admin', 'auth', 'enable', 'hide-version', 'http-request', 'realm', 'refresh', 'scope', 'show-desc', 'show-legends', 'show-modules', 'show-node' or 'uri', got '{other}'."
            ))
        }
    }
    if p.mode != ProxyMode::Http {
        ctx.warn(format!(
            "'stats' ignored for {} '{}' as it requires HTTP mode.",
            kind(p),
            p.name
        ));
    }
    Ok(())
}

/// Parses one line of a proxy or `defaults` section. `meta` is `None` for `defaults`.
pub(crate) fn parse(
    p: &mut ProxyConfig,
    meta: Option<&mut ProxyMeta>,
    words: &[String],
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    let kw = words[0].as_str();
    let is_defaults = meta.is_none();
    if is_defaults && kw == "stick-table" {
        return Err("'stick-table' is not supported in 'defaults' section.".into());
    }
    if is_defaults
        && matches!(
            kw,
            "bind"
                | "server"
                | "server-template"
                | "id"
                | "acl"
                | "use_backend"
                | "use-server"
                | "tcp-request"
                | "stick-table"
                | "stick"
        )
    {
        return Err(format!("'{kw}' not allowed in 'defaults' section."));
    }
    if UNSUPPORTED.contains(&kw) {
        return Err(format!("'{kw}' is not supported by harp (its proxies forward TCP to the backend that 'use_backend' or 'default_backend' names)."));
    }
    // in `mode http` (a defaults section, or a proxy that has not said `mode tcp` yet) the
    // HTTP-only keywords are what that mode expects: HAProxy judges them once the proxy is
    // complete (config::validate), not here
    let http_now = p.mode == ProxyMode::Http;
    if HTTP_ONLY.contains(&kw) && http_now {
        if let Some(m) = meta {
            // rules harp cannot apply: a statistics page must not pretend to honour them
            if kw.starts_with("http-") {
                m.http_rules_at.get_or_insert_with(|| ctx.loc.clone());
            }
        }
        return Ok(());
    }
    if HTTP_ONLY.contains(&kw) {
        ctx.warn(format!(
            "'{kw}' ignored for {} '{}' as it requires HTTP mode.",
            kind(p),
            p.name
        ));
        return Ok(());
    }
    if matches!(
        kw,
        "acl" | "tcp-request" | "use_backend" | "use-server" | "stick"
    ) {
        p.rules.acls.set_site(&ctx.loc.file, ctx.loc.line);
    }
    match kw {
        "mode" => match arg(words, 1, "one of 'tcp', 'http'")? {
            "tcp" => {
                no_more(words, 2)?;
                p.mode = ProxyMode::Tcp;
                Ok(())
            }
            "http" => {
                // judged once the proxy is complete (config::validate): a statistics page
                // without servers may be in it
                no_more(words, 2)?;
                p.mode = ProxyMode::Http;
                p.http_defaults.mode_at = Some(ctx.loc.clone());
                Ok(())
            }
            o => Err(format!(
                "'mode' : unknown or unsupported mode '{o}' (harp supports only 'mode tcp')."
            )),
        },
        "bind" => {
            if lacks(p, true, kw, ctx) {
                return Ok(());
            }
            if let Some(m) = meta {
                m.bind_seen = true;
            }
            let list = arg(words, 1, "<addr>:<port>[,...] as arguments")?;
            let BindOptions {
                accept_proxy,
                name,
                id,
                tls,
            } = bind_options(&words[2..], ctx).map_err(|e| {
                // HAProxy names the line and section before its TLS keywords' messages
                match e.strip_prefix("'bind' : ") {
                    Some(m) if m.starts_with('\'') && !m.starts_with("'bind") => {
                        let section = if p.cap.backend { "listen" } else { "frontend" };
                        format!("'bind {list}' in section '{section}' : {m}")
                    }
                    _ => e,
                }
            })?;
            // settings HAProxy refuses once the configuration is read are reported then
            // (`Proxy 'fe': ... for bind '...' at [...]`); files that do not load, now
            let mut tls_problem = None;
            let tls = match tls.filter(|t| t.enabled) {
                Some(t) => match t.problem() {
                    Some((what, tail)) => {
                        tls_problem = Some(format!(
                            "Proxy '{}': {what} for bind '{list}' at [{}]{tail}.",
                            p.name, ctx.loc
                        ));
                        None
                    }
                    None => {
                        let section = match (p.cap.frontend, p.cap.backend) {
                            (true, true) => "listen",
                            (true, false) => "frontend",
                            _ => "defaults",
                        };
                        let (acceptor, warnings) =
                            t.build(&format!("'bind {list}' in section '{section}'"))?;
                        for w in warnings {
                            ctx.warn(w);
                        }
                        Some(acceptor)
                    }
                },
                None => None,
            };
            // a listener's number names one socket of its frontend, as HAProxy checks it
            if let Some(n) = id {
                if list.contains(',') {
                    return Err(format!(
                        "'bind {list}' : 'id' can only be used with a single socket."
                    ));
                }
                if let Some(b) = p.binds.iter().find(|b| b.id == Some(n)) {
                    return Err(format!(
                        "'bind {list}' : 'id' : custom id {n} already used at {} ('bind {}').",
                        b.location, b.addr
                    ));
                }
            }
            for one in list.split(',') {
                let addr = parse_socket_addr(one, "bind")?;
                p.binds.push(BindConfig {
                    addr,
                    accept_proxy,
                    name: name.clone(),
                    id,
                    tls: tls.clone(),
                    tls_problem: tls_problem.take(),
                    location: ctx.loc.clone(),
                });
            }
            Ok(())
        }
        "stick" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            let name = p.name.clone();
            for w in p.rules.parse_stick(words, &name)? {
                ctx.warn(w);
            }
            Ok(())
        }
        "persist" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            // `persist rdp-cookie[(<name>)]`, the only kind HAProxy has
            let what = arg(words, 1, "'rdp-cookie'")?;
            let name = match what.strip_prefix("rdp-cookie") {
                Some("") => "msts",
                Some(r) => r
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .filter(|n| !n.is_empty())
                    .ok_or("'persist rdp-cookie' expects a cookie name between parentheses.")?,
                None => return Err(format!("'persist' : unknown persistence method '{what}'.")),
            };
            p.persist_rdp = Some(name.to_string());
            no_more(words, 2)
        }
        "stick-table" => {
            if let Some((_, at)) = &p.stick_table {
                return Err(format!(
                    "stick-table name '{}' conflicts with table declared in {} '{}' at {at}.",
                    p.name,
                    kind(p),
                    p.name
                ));
            }
            let (t, warnings) = crate::stick::config::parse(&words[1..])?;
            for w in warnings {
                ctx.warn(w);
            }
            p.stick_table = Some((t, ctx.loc.clone()));
            Ok(())
        }
        "acl" => {
            let name = p.name.clone();
            if let Some(w) = p.rules.parse_acl(&words[1..], &name)? {
                ctx.warn(w);
            }
            Ok(())
        }
        "tcp-request" => {
            let (name, k) = (p.name.clone(), kind(p));
            let warnings = p.rules.parse_tcp_request(words, &name, k, p.cap.frontend)?;
            for w in warnings {
                ctx.warn(w);
            }
            Ok(())
        }
        "use_backend" => {
            // HAProxy warns in a backend and keeps the rule (its target is still checked)
            lacks(p, true, kw, ctx);
            let name = p.name.clone();
            for w in p.rules.parse_use_backend(words, &name)? {
                ctx.warn(w);
            }
            if let Some(m) = meta {
                m.use_backend_at.push(ctx.loc.clone());
            }
            Ok(())
        }
        "use-server" => {
            // HAProxy warns in a frontend and keeps the rule all the same (its server is
            // still looked for, and not found there)
            lacks(p, false, kw, ctx);
            let name = p.name.clone();
            for w in p.rules.parse_use_server(words, &name)? {
                ctx.warn(w);
            }
            if let Some(m) = meta {
                m.use_server_at.push(ctx.loc.clone());
            }
            Ok(())
        }
        "default_backend" => {
            if lacks(p, true, kw, ctx) {
                return Ok(());
            }
            p.default_backend = Some(arg(words, 1, "a backend name")?.to_string());
            if let Some(m) = meta {
                m.default_backend_at = Some(ctx.loc.clone());
            }
            no_more(words, 2)
        }
        "balance" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            let algo = arg(words, 1, "an algorithm")?;
            // `rdp-cookie[(<name>)]`: the cookie hashed, `mstshash` by default
            if let Some(rest) = algo.strip_prefix("rdp-cookie") {
                let name = match rest {
                    "" => "mstshash",
                    r => r
                        .strip_prefix('(')
                        .and_then(|r| r.strip_suffix(')'))
                        .filter(|n| !n.is_empty())
                        .ok_or("'balance rdp-cookie' expects a cookie name between parentheses.")?,
                };
                p.balance = BalanceAlgo::RdpCookie;
                p.rdp_cookie = name.to_string();
                return no_more(words, 2);
            }
            p.balance = balance(algo, ctx)?;
            Ok(())
        }
        "hash-type" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            p.hash_type = match arg(words, 1, "'map-based' or 'consistent'")? {
                "map-based" => HashType::MapBased,
                "consistent" => HashType::Consistent,
                o => {
                    return Err(format!(
                        "'hash-type' : unknown method '{o}' (expects 'map-based' or 'consistent')."
                    ))
                }
            };
            // `[<function> [avalanche]]`, in that order, as HAProxy reads them. `balance
            // source` hashes the address itself, so only the modifier matters, and
            // `consistent` without a function implies it
            match words.get(2).map(String::as_str) {
                // no function: sdbm, as HAProxy resets it
                None => {
                    p.hash_function = crate::config::HashFunction::Sdbm;
                    p.hash_avalanche = p.hash_type == HashType::Consistent;
                }
                Some(f @ ("sdbm" | "djb2" | "wt6" | "crc32" | "none")) => {
                    p.hash_function = crate::config::HashFunction::by_name(f).unwrap_or_default();
                    p.hash_avalanche = match words.get(3).map(String::as_str) {
                        None => false,
                        Some("avalanche") => true,
                        Some(_) => {
                            return Err("'hash-type' only supports 'avalanche' as a modifier \
                                        for hash functions."
                                .into())
                        }
                    };
                }
                Some(_) => {
                    return Err(
                        // HAProxy's words, which leave out the `none` it accepts too
                        "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash \
                         functions."
                            .into(),
                    );
                }
            }
            no_more(words, 4)
        }
        "timeout" => timeout(p, words, ctx),
        "retries" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            p.retries = parse_u32(arg(words, 1, "an integer")?, kw, 0, i32::MAX as u32)?;
            no_more(words, 2)
        }
        "maxconn" => {
            if lacks(p, true, kw, ctx) {
                return Ok(());
            }
            p.maxconn = parse_u32(arg(words, 1, "an integer")?, kw, 0, i32::MAX as u32)?;
            no_more(words, 2)
        }
        "rate-limit" => {
            let what = words.get(1).map(String::as_str).unwrap_or("");
            if what != "sessions" {
                return Err(format!("'{kw}' only supports 'sessions' (got '{what}')"));
            }
            let Some(v) = words.get(2) else {
                return Err(format!(
                    "'{kw} {what}' expects expects an integer value (in sessions/second)"
                ));
            };
            let n = crate::config::units::parse_c_ulong(v).map_err(|c| {
                format!("'{kw} {what}' : unexpected character '{c}' in integer value '{v}'")
            })?;
            if !p.cap.frontend && kind(p) != "defaults" {
                ctx.warn(format!(
                    "{kw} {what} will be ignored because {} '{}' has no frontend capability",
                    kind(p),
                    p.name
                ));
                return Ok(());
            }
            if meta.is_some_and(|m| m.defaults_rate_limit != p.rate_limit_sessions) {
                ctx.warn(format!(
                    "overwriting {kw} {what} which was already specified"
                ));
            }
            p.rate_limit_sessions = n;
            // HAProxy's proxy keyword parsers ignore extra words
            Ok(())
        }
        "fullconn" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            p.fullconn = Some(parse_u32(
                arg(words, 1, "an integer")?,
                kw,
                0,
                i32::MAX as u32,
            )?);
            no_more(words, 2)
        }
        "backlog" => {
            if lacks(p, true, kw, ctx) {
                return Ok(());
            }
            p.backlog = Some(parse_u32(
                arg(words, 1, "an integer")?,
                kw,
                1,
                i32::MAX as u32,
            )?);
            no_more(words, 2)
        }
        "default-server" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            server::apply_keywords(&mut p.default_server, &words[1..], true, ctx)
                .map_err(|e| format!("'default-server' : {e}"))
        }
        "server" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            let name = arg(words, 1, "<name> and <addr>:<port> as arguments")?;
            if let Err(e) = super::super::parse::check_name(name) {
                return Err(format!("'server {name}' : {e}"));
            }
            if let Some(prev) = p.servers.iter().find(|s| s.name == name) {
                return Err(format!(
                    "{} '{}' has the same server name '{name}' as another server declared at {}.",
                    kind(p),
                    p.name,
                    prev.location
                ));
            }
            let s = server::parse_server(name, &words[2..], &p.default_server, ctx)?;
            p.servers.push(s);
            Ok(())
        }
        "server-template" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            // `server-template <prefix> <num>|<from>-<to> <addr>:<port> [params]`: one server
            // per number, named <prefix><n>, all with these settings
            let prefix = arg(words, 1, "<prefix> <num | range> <fqdn>[:<port>]")?;
            let range = arg(words, 2, "<num | range> <fqdn>[:<port>]")?;
            arg(words, 3, "<fqdn>[:<port>]")?;
            let bad =
                || format!("'{kw}' : invalid range '{range}' (expects <num> or <from>-<to>).");
            let (from, to) = match range.split_once('-') {
                Some((a, b)) => (
                    a.parse::<u32>().map_err(|_| bad())?,
                    b.parse::<u32>().map_err(|_| bad())?,
                ),
                None => (1, range.parse::<u32>().map_err(|_| bad())?),
            };
            if from == 0 || to < from || to - from >= 10_000 {
                return Err(bad());
            }
            // parsed once (one name lookup, one set of warnings), then copied per number
            let first = format!("{prefix}{from}");
            let model = server::parse_server(&first, &words[3..], &p.default_server, ctx)?;
            for (slot, n) in (from..=to).enumerate() {
                let name = format!("{prefix}{n}");
                if let Err(e) = super::super::parse::check_name(&name) {
                    return Err(format!("'{kw} {prefix}' : {e}"));
                }
                if p.servers.iter().any(|s| s.name == name) {
                    return Err(format!(
                        "{} '{}' has the same server name '{name}' as another server.",
                        kind(p),
                        p.name
                    ));
                }
                let mut s = model.clone();
                s.name = name;
                s.params.template_slot = Some(slot as u32);
                p.servers.push(s);
            }
            Ok(())
        }
        "http-check" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            http_check(p, words, ctx)
        }
        "stats" => stats(p, &words[1..], ctx),
        "retry-on" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            let kinds = &words[1..];
            if kinds.is_empty() {
                return Err(format!("'{kw}' expects a list of failure types."));
            }
            // in TCP a retry follows a failed connect: as in HAProxy (every mode), a list
            // without conn-failure (or all-retryable-errors) turns connection retries off;
            // the HTTP failure types have nothing to act on
            const KNOWN: &[&str] = &[
                "none",
                "conn-failure",
                "all-retryable-errors",
                "empty-response",
                "junk-response",
                "response-timeout",
                "0rtt-rejected",
                "401",
                "403",
                "404",
                "408",
                "421",
                "425",
                "429",
                "500",
                "501",
                "502",
                "503",
                "504",
            ];
            // left to right, as HAProxy reads them
            for k in kinds {
                if k == "none" && kinds.len() > 1 {
                    // HAProxy's own wording
                    return Err(format!("'{kw}' 'none' keyworld only usable alone"));
                }
                if !KNOWN.contains(&k.as_str()) {
                    return Err(format!("'{kw}': unknown keyword '{k}'"));
                }
            }
            p.conn_retries_off = !kinds
                .iter()
                .any(|k| k == "conn-failure" || k == "all-retryable-errors");
            let http: Vec<&str> = kinds
                .iter()
                .map(String::as_str)
                .filter(|k| !matches!(*k, "none" | "conn-failure" | "all-retryable-errors"))
                .collect();
            if !http.is_empty() {
                ctx.warn(format!(
                    "'{kw}' : {} ignored in TCP mode (only connection failures are retried).",
                    http.join(", ")
                ));
            }
            Ok(())
        }
        "hash-balance-factor" | "bind-process" | "max-keep-alive-queue" => {
            arg(words, 1, "an argument")?;
            ctx.warn(format!("'{kw}' has no effect in harp; ignored."));
            Ok(())
        }
        "load-server-state-from-file" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            p.load_server_state = match arg(words, 1, "'global', 'local' or 'none'")? {
                "global" => crate::config::LoadServerState::Global,
                "local" => crate::config::LoadServerState::Local,
                "none" => crate::config::LoadServerState::None,
                o => {
                    return Err(format!(
                        "'{kw}' expects 'global', 'local' or 'none'. Got '{o}'"
                    ))
                }
            };
            no_more(words, 2)
        }
        "server-state-file-name" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            p.server_state_file_name = match words.get(1).map(String::as_str) {
                None | Some("use-backend-name") => None,
                Some(name) => Some(name.to_string()),
            };
            no_more(words, 2)
        }
        "source" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            let (src, used) = crate::config::units::parse_source(&words[1..], kw)?;
            no_more(words, 1 + used)?;
            p.source = Some(src);
            Ok(())
        }
        "tcp-check" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            let rule = crate::config::tcp_check::parse_rule(&words[1..])?;
            if let Some(m) = meta {
                // a proxy's own rules replace those of its defaults, as in HAProxy
                if !m.tcp_rules_own {
                    m.tcp_rules_own = true;
                    p.tcp_check_rules.clear();
                }
            }
            if p.tcp_check_proto {
                // a protocol check's rules are not extended by user lines
                p.tcp_check_rules.clear();
                p.tcp_check_proto = false;
            }
            p.tcp_check_rules.push(rule);
            Ok(())
        }
        "email-alert" => {
            if lacks(p, false, kw, ctx) {
                return Ok(());
            }
            email_alert(p, meta, words, ctx.loc)
        }
        "id" => {
            let id = parse_u32(arg(words, 1, "an integer")?, kw, 1, i32::MAX as u32)?;
            p.id = Some(id);
            p.forced_id = true;
            if let Some(m) = meta {
                m.id_at = Some(ctx.loc.clone());
            }
            no_more(words, 2)
        }
        "disabled" => {
            p.disabled = true;
            no_more(words, 1)
        }
        "enabled" => {
            p.disabled = false;
            no_more(words, 1)
        }
        "log" => log::parse(&mut p.logs, words, false, ctx.loc),
        "log-tag" => {
            p.log_tag = Some(arg(words, 1, "a tag")?.to_string());
            no_more(words, 2)
        }
        "description" => Ok(()),
        "log-format" => log_format(p, words, ctx),
        "unique-id-format" => {
            let Some(fmt) = words.get(1).filter(|f| !f.is_empty()) else {
                return Err("unique-id-format expects an argument.".into());
            };
            if words.len() > 2 {
                return Err(
                    "unique-id-format expects only one argument, don't forget to escape spaces!"
                        .into(),
                );
            }
            p.unique_id_format = Some((fmt.clone(), ctx.loc.clone()));
            Ok(())
        }
        // the header it names is HTTP's; in TCP mode HAProxy takes the line and uses nothing
        "unique-id-header" => match words.get(1).filter(|h| !h.is_empty()) {
            Some(_) => Ok(()),
            None => Err("unique-id-header expects an argument.".into()),
        },
        "error-log-format" => {
            let Some(fmt) = words.get(1).filter(|f| !f.is_empty()) else {
                return Err("error-log-format expects an argument.".into());
            };
            if words.len() > 2 {
                return Err(
                    "error-log-format expects only one argument, don't forget to escape spaces!"
                        .into(),
                );
            }
            if kind(p) == "backend" {
                ctx.warn(format!(
                    "backend '{}' : 'error-log-format' directive is ignored in backends.",
                    p.name
                ));
                return Ok(());
            }
            if kind(p) == "defaults" && p.error_log_format.is_some() {
                ctx.warn(
                    "'error-log-format' overrides previous 'error-log-format' in 'defaults' section."
                        .to_string(),
                );
            }
            p.error_log_format = Some((fmt.clone(), ctx.loc.clone()));
            Ok(())
        }
        "errorfile" | "log-format-sd" => {
            ctx.warn(format!("'{kw}' has no effect in harp; ignored."));
            Ok(())
        }
        "clitcpka-idle" | "clitcpka-intvl" | "clitcpka-cnt" | "srvtcpka-idle"
        | "srvtcpka-intvl" | "srvtcpka-cnt" => keepalive(p, words, ctx),
        "option" => option(p, &words[1..], false, ctx),
        "no" => match words.get(1).map(String::as_str) {
            Some("option") => option(p, &words[2..], true, ctx),
            Some("log") => {
                p.logs.clear();
                no_more(words, 2)
            }
            _ => Err("'no' expects 'option <name>' or 'log'.".into()),
        },
        _ => Err(unknown_keyword(kw, kind(p), KEYWORDS)),
    }
}

/// `log-format <fmt>`: the format of the session log lines, compiled once the proxy is
/// complete (for a `defaults` section, in each proxy that inherits it).
fn log_format(p: &mut ProxyConfig, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    let Some(fmt) = words.get(1).filter(|f| !f.is_empty()) else {
        return Err("log-format expects an argument.".into());
    };
    if words.len() > 2 {
        return Err("log-format expects only one argument, don't forget to escape spaces!".into());
    }
    if kind(p) == "backend" {
        ctx.warn(format!(
            "backend '{}' : 'log-format' directive is ignored in backends.",
            p.name
        ));
        return Ok(());
    }
    overrides(p, "log-format", ctx);
    p.tcplog = false;
    p.log_format = Some((fmt.clone(), ctx.loc.clone()));
    Ok(())
}

/// HAProxy's warning when a `defaults` section's log format replaces another one.
fn overrides(p: &ProxyConfig, now: &str, ctx: &mut Ctx<'_>) {
    if kind(p) != "defaults" || (p.log_format.is_none() && !p.tcplog) {
        return;
    }
    let was = if p.tcplog {
        "option tcplog"
    } else {
        "log-format"
    };
    ctx.warn(format!(
        "'{now}' overrides previous '{was}' in 'defaults' section."
    ));
}

/// `clitcpka-idle|-intvl|-cnt` and `srvtcpka-*`: how keepalive probes are paced. Times default
/// to seconds, as in HAProxy; 0 means "the system's value" (and undoes a `defaults` setting).
/// Values Linux would refuse (above 32767 s or 127 probes) are errors here rather than a
/// setsockopt failure on every connection.
fn keepalive(p: &mut ProxyConfig, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    let kw = words[0].as_str();
    let frontend = kw.starts_with("cli");
    let cnt = kw.ends_with("-cnt");
    let value = arg(words, 1, if cnt { "a number of probes" } else { "a time" })?;
    no_more(words, 2)?;
    if lacks(p, frontend, kw, ctx) {
        return Ok(());
    }
    let ka = if frontend {
        &mut p.cli_ka
    } else {
        &mut p.srv_ka
    };
    if cnt {
        let n = parse_u32(value, kw, 0, 127)?;
        ka.cnt = (n > 0).then_some(n);
        return Ok(());
    }
    let t = if value.bytes().all(|b| b.is_ascii_digit()) {
        parse_time(&format!("{value}s"), kw)?
    } else {
        parse_time(value, kw)?
    };
    let t = if t.is_zero() {
        None
    } else if t < Duration::from_secs(1) || t > Duration::from_secs(32767) {
        return Err(format!(
            "'{kw}' : '{value}' is out of range (1s to 32767s, or 0 for the system's value)."
        ));
    } else {
        Some(t)
    };
    if kw.ends_with("-idle") {
        ka.idle = t;
    } else {
        ka.intvl = t;
    }
    Ok(())
}

/// What a `bind` line's options say.
struct BindOptions {
    /// `accept-proxy`.
    accept_proxy: bool,
    /// `name`.
    name: Option<String>,
    /// `id`.
    id: Option<u32>,
    /// Its TLS keywords on top of `ssl-default-bind-options`, if it has any.
    tls: Option<crate::tls::BindTls>,
}

/// `bind` options after the address list. TCP-level ones harp ignores warn; TLS ones are
/// read by `tls_options`; protocol ones are refused.
fn bind_options(words: &[String], ctx: &mut Ctx<'_>) -> Result<BindOptions, String> {
    let mut accept_proxy = false;
    let mut name = None;
    let mut id = None;
    let mut tls = ctx.bind_tls.take().unwrap_or_default();
    let mut tls_seen = false;
    let mut i = 0;
    while i < words.len() {
        let mut warnings = Vec::new();
        let read =
            crate::config::tls_options::bind_keyword(&mut tls, words, i, &mut |w| warnings.push(w));
        for w in warnings {
            ctx.warn(w);
        }
        if let Some(n) = read.map_err(|e| format!("'bind' : {e}"))? {
            tls_seen = true;
            i += n;
            continue;
        }
        match words[i].as_str() {
            "accept-proxy" => {
                accept_proxy = true;
                i += 1;
            }
            "v4v6" | "v6only" | "transparent" | "defer-accept" | "tfo" => {
                ctx.warn(format!(
                    "bind option '{}' has no effect in harp; ignored.",
                    words[i]
                ));
                i += 1;
            }
            "name" | "id" | "backlog" | "maxconn" | "process" | "thread" | "interface" | "mss"
            | "nice" | "tcp-ut" | "level" | "severity-output" | "user" | "uid" | "group"
            | "gid" | "mode" | "shards" | "expose-fd" => {
                if words.get(i + 1).is_none() {
                    return Err(format!("'bind' : '{}' expects an argument.", words[i]));
                }
                if words[i] == "expose-fd" && words[i + 1] != "listeners" {
                    return Err("'bind' : 'expose-fd' only supports 'listeners'.".to_string());
                }
                // `name` and `id` only label the listener; the others change its behaviour.
                if words[i] == "name" {
                    name = words.get(i + 1).cloned();
                } else if words[i] == "id" {
                    let v = words.get(i + 1).map(String::as_str).unwrap_or("");
                    id = Some(parse_u32(v, "id", 1, i32::MAX as u32)?);
                } else {
                    ctx.warn(format!(
                        "bind option '{}' has no effect in harp; ignored.",
                        words[i]
                    ));
                }
                i += 2;
            }
            o => return Err(format!("'bind' : option '{o}' is not supported by harp.")),
        }
    }
    if tls_seen && !tls.enabled {
        ctx.warn("'crt' and the other TLS options have no effect without 'ssl' on this 'bind'.");
    }
    Ok(BindOptions {
        accept_proxy,
        name,
        id,
        tls: tls_seen.then_some(tls),
    })
}

fn balance(algo: &str, ctx: &mut Ctx<'_>) -> Result<BalanceAlgo, String> {
    Ok(match algo {
        "roundrobin" => BalanceAlgo::RoundRobin,
        "static-rr" => BalanceAlgo::StaticRr,
        "leastconn" => BalanceAlgo::LeastConn,
        "first" => BalanceAlgo::First,
        "source" => BalanceAlgo::Source,
        "random" => BalanceAlgo::Random,
        a if a.starts_with("random(") && a.ends_with(')') => {
            let n = &a[7..a.len() - 1];
            if n.parse::<u32>().map_or(true, |n| n == 0) {
                return Err(format!(
                    "'balance random(<draws>)' expects a positive integer, got '{n}'."
                ));
            }
            if n != "2" {
                ctx.warn(format!(
                    "'balance {a}' : harp always draws 2; using random(2)."
                ));
            }
            BalanceAlgo::Random
        }
        "uri" | "url_param" => {
            return Err(format!(
                "'balance {algo}' is not supported by harp (needs 'mode http')."
            ))
        }
        a if a.starts_with("hdr(") || a.starts_with("hash") => {
            return Err(format!("'balance {a}' is not supported by harp."))
        }
        o => {
            let algos = [
                "roundrobin",
                "static-rr",
                "leastconn",
                "first",
                "source",
                "random",
            ];
            return Err(match did_you_mean(o, &algos) {
                Some(s) => format!("'balance' : unknown algorithm '{o}'; did you mean '{s}'?"),
                None => format!(
                    "'balance' : unknown algorithm '{o}' (expects one of {}).",
                    algos.join(", ")
                ),
            });
        }
    })
}

fn timeout(p: &mut ProxyConfig, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    let name = arg(
        words,
        1,
        "'client', 'server', 'connect', 'queue', 'check', 'tunnel', 'client-fin' or 'server-fin'",
    )?;
    let frontend = matches!(name, "client" | "client-fin");
    let known = [
        "connect",
        "client",
        "server",
        "queue",
        "check",
        "tunnel",
        "client-fin",
        "server-fin",
    ];
    if name == "http-request" || name == "http-keep-alive" || name == "tarpit" {
        ctx.warn(format!(
            "'timeout {name}' ignored for {} '{}' as it requires HTTP mode.",
            kind(p),
            p.name
        ));
        return Ok(());
    }
    if !known.contains(&name) {
        return Err(match did_you_mean(name, &known) {
            Some(s) => format!("'timeout' : unknown timeout '{name}'; did you mean '{s}'?"),
            None => format!("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'tunnel', 'client-fin' and 'server-fin' (got '{name}')."),
        });
    }
    let kw = format!("timeout {name}");
    let value = parse_time(arg(words, 2, "a time")?, &kw)?;
    no_more(words, 3)?;
    if lacks(p, frontend, &kw, ctx) {
        return Ok(());
    }
    let t = &mut p.timeouts;
    let slot = match name {
        "connect" => &mut t.connect,
        "client" => &mut t.client,
        "server" => &mut t.server,
        "queue" => &mut t.queue,
        "check" => &mut t.check,
        "tunnel" => &mut t.tunnel,
        "client-fin" => &mut t.client_fin,
        _ => &mut t.server_fin,
    };
    *slot = Some(value);
    Ok(())
}

fn option(
    p: &mut ProxyConfig,
    words: &[String],
    negate: bool,
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    let Some(name) = words.first().map(String::as_str) else {
        return Err("'option' expects an option name.".into());
    };
    let full = if negate {
        format!("no option {name}")
    } else {
        format!("option {name}")
    };
    let flag = !negate;
    // HAProxy's alertif_too_many_args_idx for options
    let simple = |words: &[String]| match words.get(1) {
        // (HAProxy names the option without its `no`)
        Some(extra) => Err(format!(
            "'option {name}' cannot handle unexpected argument '{extra}'."
        )),
        None => Ok(()),
    };
    match name {
        "redispatch" => {
            // `option redispatch [<interval>]`: every Nth retry, or the Nth before the last when
            // negative (-1, the default: the last); 0 turns it off
            let after = match words.get(1) {
                None => -1,
                // `no option redispatch <n>`: HAProxy 2.6 takes it, the interval unread
                Some(_) if negate => -1,
                Some(v) => {
                    no_more(words, 2)?;
                    v.parse::<i32>().map_err(|_| {
                        format!(
                            "'{full}' expects an integer interval (redispatch on every Nth retry, \
                             or on the Nth before the last when negative), not '{v}'."
                        )
                    })?
                }
            };
            p.redispatch = flag && after != 0;
            p.redispatch_after = after;
            Ok(())
        }
        "allbackups" => {
            p.allbackups = flag;
            simple(words)
        }
        "log-health-checks" => {
            p.log_health_checks = flag;
            simple(words)
        }
        "tcplog" => {
            simple(words)?;
            if flag && kind(p) == "backend" {
                ctx.warn(format!(
                    "backend '{}' : 'option tcplog' directive is ignored in backends.",
                    p.name
                ));
                return Ok(());
            }
            if flag {
                overrides(p, "option tcplog", ctx);
                p.log_format = None;
            }
            p.tcplog = flag;
            Ok(())
        }
        "splice-auto" => {
            // independent of explicit splice-request/-response, as HAProxy's flags are
            for m in [&mut p.splice.request, &mut p.splice.response] {
                *m = match (*m, flag) {
                    (SpliceMode::Off, true) => SpliceMode::Auto,
                    (SpliceMode::Auto, false) => SpliceMode::Off,
                    (m, _) => m,
                };
            }
            simple(words)
        }
        "splice-request" | "splice-response" => {
            let m = if name == "splice-request" {
                &mut p.splice.request
            } else {
                &mut p.splice.response
            };
            *m = match (*m, flag) {
                (_, true) => SpliceMode::Always,
                (SpliceMode::Always, false) => SpliceMode::Auto,
                (m, false) => m,
            };
            simple(words)
        }
        "tcp-check" => {
            if negate {
                if p.check == CheckKind::TcpCheck {
                    p.check = CheckKind::Tcp;
                }
            } else {
                p.check = CheckKind::TcpCheck;
                if p.tcp_check_proto {
                    // HAProxy: `option tcp-check` after a protocol check starts from no rule
                    p.tcp_check_rules.clear();
                    p.tcp_check_proto = false;
                }
            }
            simple(words)
        }
        "redis-check" | "ldap-check" | "ssl-hello-chk" | "smtpchk" | "pgsql-check"
        | "mysql-check" => {
            use crate::config::tcp_check as tc;
            if negate {
                if p.check == CheckKind::TcpCheck {
                    p.check = CheckKind::Tcp;
                }
                return simple(words);
            }
            let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
            let rules = match (name, args.as_slice()) {
                ("redis-check", []) => tc::redis_check(),
                ("ldap-check", []) => tc::ldap_check(),
                ("ssl-hello-chk", []) => tc::ssl_hello_check(),
                ("mysql-check", []) => tc::mysql_check(),
                ("mysql-check", ["user", u]) | ("mysql-check", ["user", u, "post-41"]) => {
                    tc::mysql_login_check(u, true)
                }
                ("mysql-check", ["user", u, "pre-41"]) => tc::mysql_login_check(u, false),
                ("mysql-check", _) => {
                    return Err("'option mysql-check' only supports optional values: 'user <username> [post-41|pre-41]'.".into())
                }
                ("smtpchk", []) => tc::smtp_check("HELO localhost"),
                ("smtpchk", [hello @ ("HELO" | "EHLO"), domain]) => {
                    tc::smtp_check(&format!("{hello} {domain}"))
                }
                // HAProxy: anything else falls back to the default greeting
                ("smtpchk", _) => tc::smtp_check("HELO localhost"),
                ("pgsql-check", ["user", u]) => tc::pgsql_check(u),
                ("pgsql-check", _) => {
                    return Err("'option pgsql-check' expects 'user <username>' as argument.".into())
                }
                _ => return Err(format!("'{full}' takes no argument.")),
            };
            p.check = CheckKind::TcpCheck;
            p.tcp_check_rules = rules;
            p.tcp_check_proto = true;
            Ok(())
        }
        "httpchk" => {
            if negate {
                if matches!(p.check, CheckKind::Http(_)) {
                    p.check = CheckKind::Tcp;
                }
                return simple(words);
            }
            // Keep `http-check` settings written before the option.
            let mut h = match &p.check {
                CheckKind::Http(h) => h.clone(),
                _ => HttpCheck::default(),
            };
            match &words[1..] {
                [] => {}
                [uri] => h.uri = uri.clone(),
                [meth, uri] => {
                    h.method = meth.clone();
                    h.uri = uri.clone();
                }
                [meth, uri, ver] => {
                    h.method = meth.clone();
                    h.uri = uri.clone();
                    h.version = ver.clone();
                }
                _ => {
                    return Err("'option httpchk' expects at most <method> <uri> <version>.".into())
                }
            }
            p.check = CheckKind::Http(h);
            Ok(())
        }
        "tcpka" | "clitcpka" | "srvtcpka" | "nolinger" => {
            simple(words)?;
            // HAProxy's capabilities: tcpka and nolinger act on whichever sides the proxy has
            let frontend = name == "clitcpka";
            if matches!(name, "clitcpka" | "srvtcpka") && lacks(p, frontend, &full, ctx) {
                return Ok(());
            }
            match name {
                "tcpka" => {
                    p.cli_ka.on = flag;
                    p.srv_ka.on = flag;
                }
                "clitcpka" => p.cli_ka.on = flag,
                "srvtcpka" => p.srv_ka.on = flag,
                _ => p.nolinger = flag,
            }
            Ok(())
        }
        "dontlognull" => {
            simple(words)?;
            p.dontlognull = flag;
            Ok(())
        }
        "logasap" => {
            simple(words)?;
            if !lacks(p, true, "logasap", ctx) {
                p.logasap = flag;
            }
            Ok(())
        }
        "log-separate-errors" => {
            simple(words)?;
            if !lacks(p, true, "log-separate-errors", ctx) {
                p.log_separate_errors = flag;
            }
            Ok(())
        }
        "tcp-smart-accept" | "tcp-smart-connect" | "abortonclose" => {
            ctx.warn(format!("'{full}' has no effect in harp; ignored."));
            Ok(())
        }
        "httplog" if p.mode == ProxyMode::Http => {
            // judged once the proxy is complete (config::validate)
            p.http_defaults.httplog = flag;
            Ok(())
        }
        "forwardfor" if p.mode == ProxyMode::Http => {
            p.http_defaults.forwardfor = flag;
            Ok(())
        }
        "httplog" => {
            if flag {
                ctx.warn(format!(
                    "'option httplog' not usable with {} '{}' (needs 'mode http'). Falling back to 'option tcplog'.",
                    kind(p),
                    p.name
                ));
                p.tcplog = true;
                p.log_format = None;
            }
            Ok(())
        }
        // HTTP connection modes: nothing to do in tcp mode, and HAProxy says nothing either
        "http-server-close" | "httpclose" | "http-keep-alive" => Ok(()),
        o if HTTP_OPTIONS.contains(&o) => {
            if p.mode != ProxyMode::Http {
                ctx.warn(format!(
                    "'{full}' ignored for {} '{}' as it requires HTTP mode.",
                    kind(p),
                    p.name
                ));
            }
            Ok(())
        }
        "contstats" | "socket-stats" | "independent-streams" => {
            ctx.warn(format!("'{full}' has no effect in harp; ignored."));
            Ok(())
        }
        "dontlog-normal" => {
            simple(words)?;
            if !lacks(p, true, "dontlog-normal", ctx) {
                p.dontlog_normal = flag;
            }
            Ok(())
        }
        "transparent" | "spop-check" | "external-check" | "persist" => {
            Err(format!("'{full}' is not supported by harp."))
        }
        o => Err(match did_you_mean(o, OPTIONS) {
            Some(s) => format!("unknown option '{o}'; did you mean '{s}'?"),
            None => format!("unknown option '{o}'."),
        }),
    }
}

fn http_check(p: &mut ProxyConfig, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    let sub = arg(words, 1, "'expect', 'send' or 'disable-on-404'")?;
    let mut h = match &p.check {
        CheckKind::Http(h) => h.clone(),
        _ => HttpCheck::default(),
    };
    match sub {
        "expect" => {
            let mut i = 2;
            if words.get(i).map(String::as_str) == Some("!") {
                return Err(
                    "'http-check expect !' (negated match) is not supported by harp.".into(),
                );
            }
            while words.get(i).is_some_and(|w| w.contains('=')) {
                // min-recv=, ok-status= ... options
                i += 1;
            }
            match words.get(i).map(String::as_str) {
                Some("status") => {
                    let code = arg(words, i + 1, "a status code")?;
                    let c = parse_u32(code, "http-check expect status", 100, 599)
                        .map_err(|_| format!("'http-check expect status' expects a single status code between 100 and 599 (got '{code}'); ranges are not supported by harp."))?;
                    h.expect_status = Some(c as u16);
                    no_more(words, i + 2)?;
                }
                Some(o) => {
                    return Err(format!(
                        "'http-check expect {o}' is not supported by harp (only 'status <code>')."
                    ))
                }
                None => return Err("'http-check expect' expects 'status <code>'.".into()),
            }
        }
        "send" => {
            let mut i = 2;
            while i < words.len() {
                let k = words[i].as_str();
                let v = |n: usize| arg(words, i + n, "a value").map(str::to_string);
                match k {
                    "meth" => h.method = v(1)?,
                    "uri" => h.uri = v(1)?,
                    "ver" => h.version = v(1)?,
                    "hdr" => {
                        h.headers.push((v(1)?, v(2)?));
                        i += 1;
                    }
                    o => return Err(format!("'http-check send' : unsupported argument '{o}' (supported: meth, uri, ver, hdr).")),
                }
                i += 2;
            }
        }
        "disable-on-404" | "send-state" => {
            ctx.warn(format!(
                "'http-check {sub}' has no effect in harp; ignored."
            ));
            return Ok(());
        }
        o => {
            return Err(format!(
                "'http-check {o}' is not supported by harp (supported: expect status, send)."
            ))
        }
    }
    if !matches!(p.check, CheckKind::Http(_)) {
        ctx.warn(format!(
            "'http-check {sub}' implies 'option httpchk' in harp."
        ));
    }
    p.check = CheckKind::Http(h);
    Ok(())
}

fn email_alert(
    p: &mut ProxyConfig,
    meta: Option<&mut ProxyMeta>,
    words: &[String],
    loc: &Location,
) -> Result<(), String> {
    let sub = arg(words, 1, "'mailers', 'from', 'to', 'level' or 'myhostname'")?;
    let v = arg(words, 2, "an argument")?.to_string();
    let e = &mut p.email_alert;
    match sub {
        "mailers" => {
            e.mailers = Some(v);
            if let Some(m) = meta {
                m.mailers_at = Some(loc.clone());
            }
        }
        "from" => e.from = Some(v),
        "to" => e.to = Some(v),
        "myhostname" => e.myhostname = Some(v),
        "level" => {
            e.level = log::LEVELS
                .iter()
                .position(|l| *l == v)
                .ok_or_else(|| format!("'email-alert level' : unknown log level '{v}'."))? as u8;
        }
        o => return Err(format!("'email-alert' : unknown keyword '{o}' (expects mailers, from, to, level or myhostname).")),
    }
    no_more(words, 3)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{err, ok};
    use crate::config::{
        BalanceAlgo, CheckKind, HashType, Keepalive, LogTarget, Splice, SpliceMode,
    };
    use std::time::Duration;

    #[test]
    fn rate_limit_sessions() {
        let cfg = ok("defaults\n rate-limit sessions 0x10\n\
             frontend fe\n bind 127.0.0.1:9\n default_backend be\n\
             frontend fe2\n bind 127.0.0.1:10\n rate-limit sessions 5\n default_backend be\n\
             backend be\n rate-limit sessions 7\n server s 127.0.0.1:1\n");
        assert_eq!(cfg.proxy("fe", false).unwrap().rate_limit_sessions, 16);
        assert_eq!(cfg.proxy("fe2", false).unwrap().rate_limit_sessions, 5);
        assert!(cfg.warnings.iter().any(|w| w.contains(
            "rate-limit sessions will be ignored because backend 'be' has no frontend capability"
        )));
        // set twice in one proxy, the second differently: HAProxy's warning (not for the
        // first one, even over its defaults' value)
        assert!(!cfg.warnings.iter().any(|w| w.contains("overwriting")));
        let cfg = ok("frontend fe\n bind 127.0.0.1:9\n rate-limit sessions 5\n rate-limit sessions 6\n default_backend be\n\
             backend be\n server s 127.0.0.1:1\n");
        assert!(cfg.warnings.iter().any(|w| w.contains("t.cfg:4")
            && w.contains("overwriting rate-limit sessions which was already specified")));
        assert_eq!(cfg.proxy("fe", false).unwrap().rate_limit_sessions, 6);
        for (line, want) in [
            (
                "rate-limit conns 5",
                "'rate-limit' only supports 'sessions' (got 'conns')",
            ),
            (
                "rate-limit sessions",
                "'rate-limit sessions' expects expects an integer value (in sessions/second)",
            ),
            (
                "rate-limit sessions 10k",
                "'rate-limit sessions' : unexpected character 'k' in integer value '10k'",
            ),
        ] {
            let e = err(&format!("frontend fe\n bind 127.0.0.1:9\n {line}\n"));
            assert!(e.contains("t.cfg:3") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn every_proxy_keyword() {
        let cfg = ok("mailers m\n mailer smtp1 127.0.0.1:25\n timeout mail 20s\n\
             backend be\n mode tcp\n balance leastconn\n hash-type consistent\n retries 5\n option redispatch\n \
             fullconn 100\n option allbackups\n default-server inter 1s rise 3\n server a 127.0.0.1:80 check\n \
             server b 127.0.0.1:81 id 9 weight 0\n option httpchk GET /health HTTP/1.1\n http-check expect status 204\n \
             http-check send hdr Host example.com\n email-alert mailers m\n email-alert from a@b\n email-alert to c@d\n \
             email-alert level err\n email-alert myhostname lb1\n option log-health-checks\n option tcplog\n \
             no option splice-auto\n log global\n log 127.0.0.1:514 local0 info\n id 42\n \
             timeout connect 1s\n timeout server 2s\n timeout queue 3s\n timeout check 4s\n timeout tunnel 1h\n \
             timeout server-fin 1s\n description hello\n\
             frontend fe\n bind 127.0.0.1:8000,127.0.0.1:8001\n bind :8002\n backlog 100\n maxconn 500\n \
             timeout client 10s\n timeout client-fin 2s\n default_backend be\n disabled\n",
        );
        let be = cfg.proxy("be", true).unwrap();
        assert_eq!(be.balance, BalanceAlgo::LeastConn);
        assert_eq!(be.hash_type, HashType::Consistent);
        assert_eq!(be.retries, 5);
        assert!(be.redispatch && be.allbackups && be.log_health_checks && !be.tcplog);
        assert_eq!(be.fullconn, Some(100));
        assert_eq!(be.servers.len(), 2);
        assert_eq!(be.servers[0].params.inter, Duration::from_secs(1));
        assert_eq!(be.servers[0].params.rise, 3);
        assert!(be.servers[0].params.check);
        assert_eq!(be.servers[1].params.weight, 0);
        assert_eq!(be.default_server.rise, 3);
        let CheckKind::Http(h) = &be.check else {
            panic!("{:?}", be.check)
        };
        assert_eq!(
            (h.method.as_str(), h.uri.as_str(), h.version.as_str()),
            ("GET", "/health", "HTTP/1.1")
        );
        assert_eq!(h.expect_status, Some(204));
        assert_eq!(h.headers, [("Host".to_string(), "example.com".to_string())]);
        assert_eq!(be.email_alert.mailers.as_deref(), Some("m"));
        assert_eq!(be.email_alert.level, 3);
        assert_eq!(be.email_alert.myhostname.as_deref(), Some("lb1"));
        assert_eq!(be.splice, Splice::both(SpliceMode::Off));
        assert_eq!(be.logs.len(), 2);
        assert_eq!(be.logs[0], LogTarget::Global);
        assert_eq!((be.id, be.forced_id), (Some(42), true));
        let t = &be.timeouts;
        assert_eq!(t.connect, Some(Duration::from_secs(1)));
        assert_eq!(t.server, Some(Duration::from_secs(2)));
        assert_eq!(t.queue, Some(Duration::from_secs(3)));
        assert_eq!(t.check, Some(Duration::from_secs(4)));
        assert_eq!(t.tunnel, Some(Duration::from_secs(3600)));
        assert_eq!(t.server_fin, Some(Duration::from_secs(1)));
        let fe = cfg.proxy("fe", false).unwrap();
        assert_eq!(fe.binds.len(), 3);
        assert_eq!(fe.binds[2].addr, "0.0.0.0:8002".parse().unwrap());
        assert_eq!(fe.binds[2].location.line, 38);
        assert_eq!(fe.backlog, Some(100));
        assert_eq!(fe.maxconn, 500);
        assert_eq!(fe.timeouts.client, Some(Duration::from_secs(10)));
        assert_eq!(fe.timeouts.client_fin, Some(Duration::from_secs(2)));
        assert_eq!(fe.default_backend.as_deref(), Some("be"));
        assert!(fe.disabled);
        assert_eq!(cfg.mailers[0].timeout_mail, Duration::from_secs(20));
    }

    #[test]
    fn balance_algorithms() {
        for (s, a) in [
            ("roundrobin", BalanceAlgo::RoundRobin),
            ("static-rr", BalanceAlgo::StaticRr),
            ("leastconn", BalanceAlgo::LeastConn),
            ("first", BalanceAlgo::First),
            ("source", BalanceAlgo::Source),
            ("random", BalanceAlgo::Random),
            ("random(2)", BalanceAlgo::Random),
        ] {
            let cfg = ok(&format!("backend b\n balance {s}\n"));
            assert_eq!(cfg.proxies[0].balance, a, "{s}");
        }
        assert!(err("backend b\n balance uri\n").contains("needs 'mode http'"));
        assert!(err("backend b\n balance roundrobbin\n").contains("did you mean 'roundrobin'?"));
    }

    #[test]
    fn defaults_inheritance() {
        let cfg = ok("defaults\n timeout connect 1s\n retries 7\n\
             defaults named\n timeout connect 2s\n default-server weight 10\n\
             backend a\n server s 127.0.0.1:1\n\
             defaults\n timeout connect 3s\n\
             backend b\n\
             backend c from named\n server s 127.0.0.1:1\n\
             defaults d2 from named\n retries 1\n\
             backend e\n");
        let get = |n: &str| cfg.proxy(n, true).unwrap();
        assert_eq!(get("a").timeouts.connect, Some(Duration::from_secs(2)));
        assert_eq!(
            get("a").retries,
            3,
            "a named defaults section starts from HAProxy defaults"
        );
        assert_eq!(get("a").servers[0].params.weight, 10);
        assert_eq!(get("b").timeouts.connect, Some(Duration::from_secs(3)));
        assert_eq!(get("c").timeouts.connect, Some(Duration::from_secs(2)));
        assert_eq!(get("c").servers[0].params.weight, 10);
        assert_eq!(get("e").timeouts.connect, Some(Duration::from_secs(2)));
        assert_eq!(get("e").retries, 1);
        assert!(err("backend x from nope\n").contains("defaults section 'nope' not found"));
    }

    #[test]
    fn splice_options_are_per_direction_flags() {
        use SpliceMode::{Always, Auto, Off};
        let mode = |body: &str| ok(&format!("backend b\n{body}")).proxies[0].splice;
        let two = |request, response| Splice { request, response };
        assert_eq!(
            mode(""),
            Splice::both(Auto),
            "harp splices bulk data by default"
        );
        assert_eq!(mode(" no option splice-auto\n"), Splice::both(Off));
        assert_eq!(mode(" option splice-response\n"), two(Auto, Always));
        // an explicit direction survives `no option splice-auto`, as HAProxy's flags do
        let s = mode(" option splice-request\n no option splice-auto\n");
        assert_eq!(s, two(Always, Off));
        assert_eq!(
            mode(" option splice-request\n no option splice-request\n"),
            Splice::both(Auto)
        );
        assert_eq!(
            mode(" no option splice-auto\n option splice-auto\n"),
            Splice::both(Auto)
        );
        // frontend + backend: explicit options win, then either side turning auto off
        let fe = two(Always, Off);
        assert_eq!(fe.with_backend(Splice::both(Auto)), two(Always, Off));
        assert_eq!(
            Splice::both(Auto).with_backend(Splice::both(Auto)),
            Splice::both(Auto)
        );
    }

    #[test]
    fn redispatch_takes_an_interval() {
        let b = |opt: &str| ok(&format!("backend b\n {opt}\n")).proxies[0].clone();
        let p = b("option redispatch");
        assert!(p.redispatch && p.redispatch_after == -1);
        let p = b("option redispatch 2");
        assert!(p.redispatch && p.redispatch_after == 2);
        assert!(!b("option redispatch 0").redispatch, "0 turns it off");
        let e = err("backend b\n option redispatch x\n");
        assert!(e.contains("expects an integer interval"), "{e}");
        assert!(!b("option redispatch\n no option redispatch 2").redispatch);
    }

    #[test]
    fn options_and_negations() {
        let cfg = ok(
            "defaults\n option redispatch\n option tcp-check\nbackend b\n no option redispatch\n \
             option splice-request\n option dontlognull\n option httplog\n option forwardfor\n",
        );
        let b = &cfg.proxies[0];
        assert!(!b.redispatch);
        assert_eq!(b.check, CheckKind::TcpCheck);
        let want = Splice {
            request: SpliceMode::Always,
            response: SpliceMode::Auto,
        };
        assert_eq!(b.splice, want);
        assert!(b.tcplog, "httplog falls back to tcplog as in HAProxy");
        assert!(b.dontlognull);
        assert_eq!(
            cfg.warnings.iter().filter(|w| w.contains("option")).count(),
            2
        );
        assert!(err("backend b\n option redispach\n").contains("did you mean 'redispatch'?"));
    }

    #[test]
    fn tcp_check_rules_and_protocol_checks() {
        use crate::config::tcp_check::TcpCheckRule;
        // a proxy's own rules replace those of its defaults; the protocol options bring theirs
        let cfg = ok(
            "defaults\n option tcp-check\n tcp-check send PING\\r\\n\n tcp-check expect string +PONG\n\
             backend inherits\n server s 127.0.0.1:1 check\n\
             backend own\n tcp-check connect port 6379\n server s 127.0.0.1:1 check\n\
             backend redis\n option redis-check\n\
             backend smtp\n option smtpchk EHLO mx.example\n",
        );
        let [inherits, own, redis, smtp] = &cfg.proxies[..] else {
            panic!("{:?}", cfg.proxies.len())
        };
        assert_eq!(inherits.tcp_check_rules.len(), 2);
        assert_eq!(
            inherits.tcp_check_rules[0],
            TcpCheckRule::Send {
                data: b"PING\r\n".to_vec(),
                comment: None
            }
        );
        assert_eq!(own.tcp_check_rules.len(), 1);
        assert_eq!(redis.check, CheckKind::TcpCheck);
        assert_eq!(
            redis.tcp_check_rules,
            crate::config::tcp_check::redis_check()
        );
        assert_eq!(
            smtp.tcp_check_rules,
            crate::config::tcp_check::smtp_check("EHLO mx.example")
        );
        assert!(err("backend b\n option pgsql-check\n").contains("expects 'user <username>'"));
        assert!(
            ok("backend b\n option mysql-check user x\n").proxies[0]
                .tcp_check_rules
                .len()
                == 4
        );
        assert!(err("backend b\n tcp-check connect proto h2\n").contains("not supported by harp"));
        assert!(err("backend b\n option transparent\n").contains("not supported by harp"));
        // HTTP connection modes pass silently, as in HAProxy
        let cfg = ok("backend b\n option http-server-close\n option http-keep-alive\n");
        assert!(
            !cfg.warnings.iter().any(|w| w.contains("option")),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn tcp_smart_options_are_accepted_and_ignored() {
        let cfg =
            ok("defaults\n option tcp-smart-connect\nbackend a\n no option tcp-smart-accept\n");
        assert_eq!(cfg.proxies.len(), 1);
        for o in ["option tcp-smart-connect", "no option tcp-smart-accept"] {
            let w = format!("'{o}' has no effect in harp; ignored.");
            assert!(cfg.warnings.iter().any(|x| x.contains(&w)), "{o}");
        }
    }

    #[test]
    fn keepalive_and_nolinger_options() {
        let cfg = ok(
            "defaults\n option tcpka\n clitcpka-idle 30\n srvtcpka-intvl 5\n\
             frontend f\n bind :80\n no option srvtcpka\n clitcpka-cnt 4\n default_backend b\n\
             backend b\n option nolinger\n no option tcpka\n option srvtcpka\n srvtcpka-idle 2m\n",
        );
        let (f, b) = (&cfg.proxies[0], &cfg.proxies[1]);
        let ka = |on, idle: Option<u64>, intvl: Option<u64>, cnt| Keepalive {
            on,
            idle: idle.map(Duration::from_secs),
            intvl: intvl.map(Duration::from_secs),
            cnt,
        };
        assert_eq!(f.cli_ka, ka(true, Some(30), None, Some(4)));
        assert!(!f.nolinger && b.nolinger);
        assert_eq!(b.srv_ka, ka(true, Some(120), Some(5), None));
        assert!(b.srv_ka.on && !b.cli_ka.on);
        assert!(
            cfg.warnings
                .iter()
                .any(|w| w.contains("'no option srvtcpka' ignored because frontend 'f'")),
            "{:?}",
            cfg.warnings
        );
        assert!(err("backend b\n srvtcpka-idle 500ms\n").contains("out of range"));
        assert!(err("backend b\n srvtcpka-intvl 10h\n").contains("out of range"));
        assert!(err("backend b\n srvtcpka-cnt 128\n").contains("srvtcpka-cnt"));
        // 0 undoes what defaults set
        let cfg = ok("defaults\n clitcpka-idle 30\n clitcpka-cnt 3\n\
             frontend f\n bind :80\n clitcpka-idle 0\n clitcpka-cnt 0\n");
        assert_eq!(cfg.proxies[0].cli_ka, Keepalive::default());
        assert_eq!(
            err("backend b\n option nolinger now\n"),
            "[ALERT] parsing [t.cfg:2] : 'option nolinger' cannot handle unexpected argument 'now'."
        );
    }

    #[test]
    fn capability_warnings_and_defaults_limits() {
        let cfg = ok("backend b\n bind :80\n timeout client 1s\nfrontend f\n bind :81\n server s 127.0.0.1:1\n balance first\n");
        assert!(cfg.proxies[0].binds.is_empty());
        assert!(cfg.proxies[1].servers.is_empty());
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("'bind' ignored because backend 'b' has no frontend capability.")));
        assert!(err("defaults\n server s 127.0.0.1:1\n")
            .contains("'server' not allowed in 'defaults' section."));
        assert!(err("defaults\n bind :80\n").contains("not allowed"));
    }

    #[test]
    fn refused_keywords() {
        assert!(err("backend b\n use-server s\n").contains("requires either 'if' or 'unless'"));
        assert!(err("backend b\n mode health\n").contains("only 'mode tcp'"));
        assert!(err("backend b\n mode http\n")
            .contains("[t.cfg:2] : 'mode http' is not supported yet by harp (only 'mode tcp', and a statistics page without servers)."));
        assert!(err("backend b\n timeout sever 1s\n").contains("did you mean 'server'?"));
        assert!(err("backend b\n http-check expect string ok\n").contains("only 'status <code>'"));
        assert!(err("frontend f\n bind 127.0.0.1\n").contains("missing port"));
        assert!(err("frontend f\n bind :80 ssl crt /nonexistent/x.pem\n").contains(
            "'bind :80' in section 'frontend' : unable to stat SSL certificate from file '/nonexistent/x.pem' : No such file or directory."
        ));
        assert!(err("frontend f\n bind :80 ssl generate-certificates\n")
            .contains("signs no certificates"));
    }

    #[test]
    fn bind_accept_proxy_and_name() {
        let cfg =
            ok("frontend f\n bind 127.0.0.1:80,127.0.0.1:81 accept-proxy name edge\n bind :82\n");
        let fe = cfg.proxy("f", false).unwrap();
        assert!(fe.binds[0].accept_proxy && fe.binds[1].accept_proxy);
        assert_eq!(fe.binds[1].name.as_deref(), Some("edge"));
        assert!(!fe.binds[2].accept_proxy && fe.binds[2].name.is_none());
    }

    /// A listener number names one socket, once per frontend, as HAProxy checks it.
    #[test]
    fn bind_id_single_socket_and_unique() {
        let fe = ok("frontend f\n bind :80 id 7\n bind :81 id 8\n");
        let ids: Vec<_> = fe
            .proxy("f", false)
            .unwrap()
            .binds
            .iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(ids, [Some(7), Some(8)]);
        assert!(err("frontend f\n bind 127.0.0.1:80,127.0.0.1:81 id 5\n").contains(
            "[t.cfg:2] : 'bind 127.0.0.1:80,127.0.0.1:81' : 'id' can only be used with a single \
             socket."
        ));
        assert!(
            err("frontend f\n bind :80 id 5\n bind :81 id 5\n").contains(
                "[t.cfg:3] : 'bind :81' : 'id' : custom id 5 already used at t.cfg:2 ('bind \
                 0.0.0.0:80')."
            )
        );
    }

    /// `hash-type <type> [<function> [avalanche]]` in HAProxy's order; `consistent` alone
    /// implies the avalanche, a function without the modifier does not.
    #[test]
    fn hash_type_function_and_modifier() {
        let aval = |line: &str| {
            let cfg = ok(&format!("backend b\n balance source\n {line}\n"));
            let be = cfg.proxy("b", true).unwrap();
            (be.hash_type, be.hash_avalanche)
        };
        assert_eq!(aval("hash-type consistent"), (HashType::Consistent, true));
        assert_eq!(
            aval("hash-type consistent sdbm"),
            (HashType::Consistent, false)
        );
        assert_eq!(
            aval("hash-type consistent djb2 avalanche"),
            (HashType::Consistent, true)
        );
        assert_eq!(aval("hash-type map-based"), (HashType::MapBased, false));
        assert_eq!(
            aval("hash-type map-based wt6 avalanche"),
            (HashType::MapBased, true)
        );
        assert!(err("backend b\n hash-type consistent avalanche\n")
            .contains("'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash"));
        assert!(err("backend b\n hash-type map-based sdbm crc32\n")
            .contains("'hash-type' only supports 'avalanche' as a modifier for hash functions."));
        assert!(err("backend b\n hash-type map-based sdbm avalanche x\n")
            .contains("unexpected extra argument 'x'"));
    }

    #[test]
    fn retry_on_without_conn_failure_turns_connect_retries_off() {
        let be = |line: &str| {
            ok(&format!("backend b\n {line}\n"))
                .proxy("b", true)
                .unwrap()
                .conn_retries_off
        };
        assert!(be("retry-on none"));
        assert!(be("retry-on 503 response-timeout"));
        assert!(!be("retry-on conn-failure 503"));
        assert!(!be("retry-on all-retryable-errors"));
        assert!(be("retry-on 421 429"));
        assert!(err("backend b\n retry-on none foo\n").contains("only usable alone"));
        assert!(err("backend b\n retry-on conn-failur\n")
            .contains("'retry-on': unknown keyword 'conn-failur'"));
        assert!(err("backend b\n retry-on none 503\n").contains("only usable alone"));
    }

    #[test]
    fn bind_expose_fd_takes_its_argument() {
        assert!(err("frontend f\n bind 127.0.0.1:80 expose-fd\n")
            .contains("'expose-fd' expects an argument"));
        assert!(err("frontend f\n bind 127.0.0.1:80 expose-fd all\n")
            .contains("'expose-fd' only supports 'listeners'"));
        let cfg = ok("frontend f\n bind 127.0.0.1:80 expose-fd listeners\n");
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("bind option 'expose-fd' has no effect")));
    }

    #[test]
    fn server_template_is_a_backend_keyword_parsed_once() {
        assert!(err("defaults\n server-template s 2 127.0.0.1:80\n")
            .contains("'server-template' not allowed in 'defaults' section."));
        let cfg = ok("backend b\n server-template s 3 127.0.0.1:80 tfo\n");
        assert_eq!(cfg.proxy("b", true).unwrap().servers.len(), 3);
        // one warning for the line, not one per server
        let tfo = cfg.warnings.iter().filter(|w| w.contains("'tfo'")).count();
        assert_eq!(tfo, 1, "{:?}", cfg.warnings);
    }

    #[test]
    fn observe_error_limit_on_error() {
        let cfg = ok("backend b\n default-server observe layer4 on-error sudden-death\n              server a 127.0.0.1:80 check error-limit 3\n server c 127.0.0.1:81 observe none\n");
        let be = cfg.proxy("b", true).unwrap();
        let a = &be.servers[0].params;
        assert!(a.observe_layer4);
        assert_eq!(
            (a.error_limit, a.on_error),
            (3, crate::config::OnError::SuddenDeath)
        );
        assert!(!be.servers[1].params.observe_layer4);
        assert_eq!(be.servers[1].params.error_limit, 10);
        assert!(err("backend b\n server a 127.0.0.1:80 observe layer5\n")
            .contains("'observe' expects one of 'none', 'layer4', 'layer7' but got 'layer5'"));
        assert!(err("backend b\n server a 127.0.0.1:80 error-limit 0\n")
            .contains("error-limit has to be > 0."));
        assert!(
            err("backend b\n server a 127.0.0.1:80 on-error reboot\n").contains("but got 'reboot'")
        );
    }
}
