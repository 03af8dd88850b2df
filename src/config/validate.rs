//! Checks that need the whole configuration (references between sections, duplicates) and the
//! id assignment HAProxy does after parsing.

use super::parse::Parser;
use super::{ConfigError, Location};
use std::collections::BTreeSet;

/// First uuid HAProxy 3.x hands out automatically: it "skips '1' due to an historical bug"
/// (`next_pxid = 2` in `check_config_validity()`); the reference transcript agrees (`fe` = 2,
/// `test` = 3).
const FIRST_AUTO_PROXY_ID: u32 = 2;

pub(super) fn run(p: &mut Parser) {
    if p.cfg.global.nosplice {
        // `nosplice`: every session copies
        for px in p.cfg.proxies.iter_mut() {
            px.splice = crate::config::Splice::both(crate::config::SpliceMode::Off);
        }
    }
    http_mode_left(p);
    tls_checks(p);
    server_resolvers(p);
    tracks(p);
    duplicates(p);
    references(p);
    rule_references(p);
    session_logs(p);
    rings(p);
    declare_proc_vars(p);
    // the ACLs' and maps' pattern lists get HAProxy's ids, in the order they were made
    column_conflicts(p);
    for px in &p.cfg.proxies {
        for f in px.rules.dynamic_names() {
            f.maps().iter().for_each(|r| r.made_late());
        }
    }
    let mut refs: Vec<_> = p
        .cfg
        .proxies
        .iter()
        .flat_map(|px| px.pattern_refs())
        .collect();
    refs.sort_by_key(|r| r.seq());
    crate::rules::patref::assign_ids(refs.into_iter());
    frontends_need_binds(p);
    assign_proxy_ids(p);
    assign_server_ids(p);
    missing_timeouts(p);
}

/// Every `proc` variable the proxies name exists from start-up, without a value until set,
/// as HAProxy creates them while parsing (so `ifexists` holds for them).
fn declare_proc_vars(p: &mut Parser) {
    let mut names = Vec::new();
    for px in &p.cfg.proxies {
        let fmt = px.session_log.iter().flat_map(|f| f.fetches());
        let in_format = fmt.flat_map(|f| f.var_names());
        for n in px.rules.var_names().into_iter().chain(in_format) {
            if n.scope == crate::rules::vars::Scope::Proc && !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    for n in names {
        if !p.cfg.global.proc_vars.iter().any(|(m, _)| *m == n) {
            p.cfg.global.proc_vars.push((n, None));
        }
    }
}

/// Compiles each frontend's log format (`log-format`, else `option tcplog`'s), as HAProxy
/// does once the configuration is read: errors name the line the format was written on (a
/// `defaults` line for an inherited one).
fn session_logs(p: &mut Parser) {
    use crate::rules::logformat::{LogFormat, Use, TCPLOG};
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let global_logs = !p.cfg.global.logs.is_empty();
    for px in p.cfg.proxies.iter_mut() {
        // every proxy's, as HAProxy compiles it (a frontend's is the one used)
        if let Some((fmt, at)) = &px.unique_id_format {
            match LogFormat::parse(fmt, &px.name, &(at.file.clone(), at.line), Use::UniqueId) {
                Ok(f) => px.unique_id = Some(std::sync::Arc::new(f)),
                Err(e) => errors.push((at.clone(), format!("failed to parse unique-id : {e}."))),
            }
        }
        if !px.cap.frontend {
            continue;
        }
        if let Some((fmt, at)) = &px.error_log_format {
            match LogFormat::parse(fmt, &px.name, &(at.file.clone(), at.line), Use::Log) {
                Ok(f) if !f.is_empty() => px.error_log = Some(std::sync::Arc::new(f)),
                Ok(_) => {}
                Err(e) => errors.push((
                    at.clone(),
                    format!("failed to parse error-log-format : {e}."),
                )),
            }
        }
        let (fmt, at) = match &px.log_format {
            Some((f, at)) => (f.as_str(), Some(at.clone())),
            None if px.tcplog => (TCPLOG, None),
            None => continue,
        };
        let logs = px.logs.iter().any(|t| match t {
            crate::config::LogTarget::Global => global_logs,
            _ => true,
        });
        let site = at.as_ref().map_or_else(
            || (px.location.file.clone(), px.location.line),
            |l| (l.file.clone(), l.line),
        );
        match LogFormat::parse(fmt, &px.name, &site, Use::Log) {
            // nothing in it (`%{+Q}o` alone): as without a format, HAProxy says
            Ok(f) if f.is_empty() => {}
            Ok(f) if logs => {
                f.fetches()
                    .flat_map(|x| x.maps())
                    .for_each(|r| r.made_late());
                px.session_log = Some(std::sync::Arc::new(f));
            }
            Ok(_) => {}
            Err(e) => errors.push((
                at.unwrap_or_else(|| px.location.clone()),
                format!("failed to parse log-format : {e}."),
            )),
        }
        if !logs {
            let k = if px.cap.backend { "proxy" } else { "frontend" };
            warnings.push(format!(
                "[WARNING] config : log format ignored for {k} '{}' since it has no log address.",
                px.name
            ));
        }
    }
    p.cfg.warnings.extend(warnings);
    for (location, message) in errors {
        p.errors.push(ConfigError::Checked { location, message });
    }
}

/// A file read with one column (an ACL's `-f`) and with two (a map, `-M`) is refused, as
/// HAProxy refuses to share one reference between them.
fn column_conflicts(p: &mut Parser) {
    let mut found = Vec::new();
    for (i, px) in p.cfg.proxies.iter().enumerate() {
        let mut seen: Vec<(&str, bool)> = p.cfg.proxies[..i]
            .iter()
            .flat_map(|q| q.pattern_refs())
            .filter_map(|r| Some((r.file.as_deref()?, r.two_column)))
            .collect();
        for r in px.pattern_refs() {
            let Some(f) = r.file.as_deref() else {
                continue;
            };
            if let Some((_, two)) = seen.iter().find(|(g, two)| *g == f && *two != r.two_column) {
                let (was, now) = if *two { ("two", "one") } else { ("one", "two") };
                found.push((
                    px.location.clone(),
                    r.used_at.clone(),
                    format!("The file \"{f}\" is already used as {was} column file and cannot be used by as {now} column file."),
                ));
            } else {
                seen.push((f, r.two_column));
            }
        }
    }
    for (loc, (file, line), msg) in found {
        let at = Location {
            file: if file.is_empty() {
                loc.file.clone()
            } else {
                file
            },
            line,
        };
        err(p, &at, msg);
    }
}

/// `log ring@<name>` lines name a `ring` section (HAProxy's message, its file and line);
/// a ring's `maxlen` past its `size` is cut to it.
fn rings(p: &mut Parser) {
    let known = |n: &str| p.cfg.rings.iter().any(|r| r.name == n) || n == "buf0";
    let mut missing = Vec::new();
    let global = p.cfg.global.logs.iter().map(|t| ("global".to_string(), t));
    let proxies = p.cfg.proxies.iter().flat_map(|px| {
        px.logs
            .iter()
            .map(move |t| (format!("proxy '{}'", px.name), t))
    });
    for (who, t) in global.chain(proxies) {
        if let crate::config::LogTarget::Ring { ring, location, .. } = t {
            if !known(ring) {
                missing.push(format!(
                    "{who} log server declared in file '{}' at line {} uses unknown ring named '{ring}'.",
                    location.file, location.line
                ));
            }
        }
    }
    p.errors.extend(
        missing
            .into_iter()
            .map(|message| ConfigError::File { message }),
    );
    for r in p.cfg.rings.iter_mut() {
        if let Some(m) = r.maxlen.filter(|m| *m > r.size) {
            p.cfg.warnings.push(format!(
                "[WARNING] config : ring '{}' event max length '{m}' exceeds size, forced to size '{}'.",
                r.name, r.size
            ));
            r.maxlen = Some(r.size);
        }
    }
}

fn err(p: &mut Parser, loc: &Location, msg: String) {
    p.errors.push(ConfigError::at(loc, msg));
}

fn kind(front: bool, back: bool) -> &'static str {
    match (front, back) {
        (true, true) => "listen",
        (true, false) => "frontend",
        _ => "backend",
    }
}

/// Two proxies may share a name only if their capabilities do not overlap (a frontend and a
/// backend called `www` is fine).
fn duplicates(p: &mut Parser) {
    let mut found = Vec::new();
    for (i, a) in p.cfg.proxies.iter().enumerate() {
        if let Some(b) = p.cfg.proxies[..i].iter().find(|b| {
            b.name == a.name
                && ((a.cap.frontend && b.cap.frontend) || (a.cap.backend && b.cap.backend))
        }) {
            found.push((
                a.location.clone(),
                format!(
                    "{} '{}' has the same name as {} '{}' declared at {}.",
                    kind(a.cap.frontend, a.cap.backend),
                    a.name,
                    kind(b.cap.frontend, b.cap.backend),
                    b.name,
                    b.location
                ),
            ));
        }
    }
    for (loc, msg) in found {
        err(p, &loc, msg);
    }
}

/// What is wrong with proxy `px` sending its sessions to backend `be` through `kw`
/// (`default_backend`, `use_backend`), in HAProxy's words: no such backend, or itself.
fn target_error(
    proxies: &[crate::config::ProxyConfig],
    px: &crate::config::ProxyConfig,
    be: &str,
    kw: &str,
) -> Option<String> {
    let name = &px.name;
    match proxies.iter().find(|b| b.name == be && b.cap.backend) {
        None => Some(format!(
            "Proxy '{name}': unable to find required {kw}: '{be}'."
        )),
        Some(b) if std::ptr::eq(b, px) => Some(if kw == "default_backend" {
            format!("Proxy '{name}': default_backend cannot point to itself.")
        } else {
            format!("Proxy '{name}': loop detected for {kw}: '{be}'.")
        }),
        Some(_) => None,
    }
}

fn references(p: &mut Parser) {
    let mut found = Vec::new();
    for (i, px) in p.cfg.proxies.iter().enumerate() {
        let meta = &p.proxy_meta[i];
        if let Some(be) = &px.default_backend {
            let loc = meta
                .default_backend_at
                .clone()
                .unwrap_or_else(|| px.location.clone());
            if px.cap.frontend {
                if let Some(msg) = target_error(&p.cfg.proxies, px, be, "default_backend") {
                    found.push((loc, msg));
                }
            }
        }
        if let Some(m) = &px.email_alert.mailers {
            if px.cap.backend && !p.cfg.mailers.iter().any(|x| &x.name == m) {
                let loc = meta
                    .mailers_at
                    .clone()
                    .unwrap_or_else(|| px.location.clone());
                found.push((
                    loc,
                    format!("Proxy '{}': unable to find mailers '{m}'.", px.name),
                ));
            }
        }
    }
    for (loc, msg) in found {
        err(p, &loc, msg);
    }
    if let Some(id) = p.cfg.global.httpclient.resolvers_id.clone() {
        if !p.cfg.resolvers.iter().any(|r| r.name == id) {
            let message = format!("httpclient: cannot find resolvers id '{id}'");
            p.errors.push(match &p.httpclient_resolvers_at {
                Some(loc) => ConfigError::at(loc, message),
                None => ConfigError::File { message },
            });
        }
    }
}

/// What `use_backend` and the ACLs' fetches name must exist, with HAProxy's messages.
fn rule_references(p: &mut Parser) {
    let mut found = Vec::new();
    let proxies = &p.cfg.proxies;
    let find = |name: &str, front: bool| {
        proxies
            .iter()
            .find(|b| b.name == name && if front { b.cap.frontend } else { b.cap.backend })
    };
    for (i, px) in proxies.iter().enumerate() {
        let meta = &p.proxy_meta[i];
        for (n, rule) in px.rules.switching.iter().enumerate() {
            let loc = meta
                .use_backend_at
                .get(n)
                .cloned()
                .unwrap_or_else(|| px.location.clone());
            if rule.dynamic.is_some() {
                continue;
            }
            if let Some(msg) = target_error(proxies, px, &rule.backend, "use_backend") {
                found.push((loc, msg));
            }
        }
        // `use-server`: a fixed name must be one of the proxy's servers
        for (n, rule) in px.rules.server_rules.iter().enumerate() {
            if rule.dynamic.is_some() || px.servers.iter().any(|s| s.name == rule.server) {
                continue;
            }
            let loc = meta
                .use_server_at
                .get(n)
                .cloned()
                .unwrap_or_else(|| px.location.clone());
            found.push((
                loc,
                format!(
                    "{} '{}' : unable to find server '{}' referenced in a 'use-server' rule.",
                    kind(px.cap.frontend, px.cap.backend),
                    px.name,
                    rule.server
                ),
            ));
        }
        // stick tables: a proxy's table is named after it, and names are unique
        if let Some((t, at)) = &px.stick_table {
            if let Some(name) = &t.peers {
                if !p.cfg.peers.iter().any(|s| &s.name == name) {
                    found.push((
                        at.clone(),
                        format!("Proxy '{}': unable to find sync peers '{name}'.", px.name),
                    ));
                }
            }
            if let Some(first) = proxies[..i]
                .iter()
                .find(|q| q.name == px.name && q.stick_table.is_some())
            {
                let first_at = first
                    .stick_table
                    .as_ref()
                    .map_or(&first.location, |(_, l)| l);
                found.push((
                    at.clone(),
                    format!(
                        "stick-table name '{}' conflicts with table declared in {} '{}' at {first_at}.",
                        px.name,
                        kind(first.cap.frontend, first.cap.backend),
                        first.name
                    ),
                ));
            }
        }
        // a proxy's table is named after it, a peers section's `<section>/<name>`; `None`:
        // no such table
        let peers = &p.cfg.peers;
        let table_of = |name: &str| {
            proxies
                .iter()
                .find(|q| q.name == name && q.stick_table.is_some())
                .and_then(|q| q.stick_table.as_ref())
                .map(|(t, _)| t)
                .or_else(|| {
                    peers.iter().find_map(|s| {
                        s.tables
                            .iter()
                            .find(|t| s.table_name(t) == name)
                            .map(|t| &t.config)
                    })
                })
        };
        let has_table = |t: &str| table_of(t).is_some();
        for (_, slot, table, key) in px.rules.tracks() {
            let msg = match table_of(table) {
                None => format!("unable to find table '{table}' referenced by track-sc{slot}"),
                Some(t) if !takes_key(t, key) => format!(
                    "stick-table '{table}' uses a type incompatible with the 'track-sc{slot}' rule"
                ),
                Some(_) => continue,
            };
            found.push((px.location.clone(), format!("proxy '{}': {msg}.", px.name)));
        }
        for r in &px.rules.sticking {
            let msg = match table_of(&r.table) {
                None => format!("unable to find stick-table '{}'", r.table),
                Some(t) if !takes_key(t, &r.key) => format!(
                    "type of fetch not usable with type of stick-table '{}'",
                    r.table
                ),
                Some(_) => continue,
            };
            found.push((px.location.clone(), format!("Proxy '{}': {msg}.", px.name)));
        }
        // the tables the keys of `track-sc*` and `stick` rules read through converters
        let keys = px
            .rules
            .tracks()
            .map(|(_, _, _, k)| k)
            .chain(px.rules.sticking.iter().map(|r| &r.key))
            .chain(px.rules.gpt_exprs());
        for f in px.rules.fetches().chain(keys) {
            for (what, t) in f.tables() {
                if !has_table(t) {
                    found.push((
                        px.location.clone(),
                        format!(
                            "unable to find table '{t}' referenced in arg 1 of {what} in proxy '{}'.",
                            px.name
                        ),
                    ));
                }
            }
            let Some((name, server)) = f.names() else {
                continue;
            };
            let (front, what) = if f.wants_frontend() {
                (true, "frontend")
            } else {
                (false, "backend")
            };
            // a fetch without argument reads the proxy it is written in, which must have the
            // capability all the same
            let own_cap = if front {
                px.cap.frontend
            } else {
                px.cap.backend
            };
            let msg = match (find(name, front), server) {
                _ if name == px.name && server.is_none() && !own_cap => format!(
                    "proxy '{name}', referenced in arg 1 of ACL keyword '{}' in proxy '{}', has not {what} capability.",
                    f.keyword(),
                    px.name
                ),
                _ if name == px.name && server.is_none() => continue,
                (None, _) => format!(
                    "unable to find {what} '{name}' referenced in arg 1 of ACL keyword '{}' in proxy '{}'.",
                    f.keyword(),
                    px.name
                ),
                (Some(b), Some(s)) if !b.servers.iter().any(|x| x.name == s) => format!(
                    "unable to find server '{s}' in backend '{name}' referenced in arg 1 of ACL keyword '{}' in proxy '{}'.",
                    f.keyword(),
                    px.name
                ),
                _ => continue,
            };
            found.push((px.location.clone(), msg));
        }
    }
    found.dedup();
    for (loc, msg) in found {
        err(p, &loc, msg);
    }
    // a table `stick` rules use (to match or to store) keeps the server, by id and by name,
    // as HAProxy's does
    let stored: Vec<String> = p
        .cfg
        .proxies
        .iter()
        .flat_map(|px| px.rules.sticking.iter())
        .map(|r| r.table.clone())
        .collect();
    for px in p.cfg.proxies.iter_mut() {
        if let Some((t, _)) = px
            .stick_table
            .as_mut()
            .filter(|_| stored.contains(&px.name))
        {
            t.schema.ensure(crate::stick::DataType::ServerId);
            t.schema.ensure(crate::stick::DataType::ServerKey);
        }
    }
    for s in p.cfg.peers.iter_mut() {
        let section = s.name.clone();
        for t in s.tables.iter_mut() {
            if stored.contains(&format!("{section}/{}", t.name)) {
                t.config.schema.ensure(crate::stick::DataType::ServerId);
                t.config.schema.ensure(crate::stick::DataType::ServerKey);
            }
        }
    }
}

/// Whether a table can take the keys `key` gives: raw bytes make no address or integer
/// (HAProxy has no such sample cast).
fn takes_key(t: &crate::stick::TableConfig, key: &crate::rules::Fetch) -> bool {
    use crate::stick::KeyType;
    let numeric = matches!(t.key, KeyType::Ip | KeyType::Ipv6 | KeyType::Integer);
    !(numeric && key.default_method().is_none())
}

/// `mode http` comes only from a `defaults` section (the parser refuses it in a proxy): a proxy
/// that did not say `mode tcp` is refused, at its own line; one that did is warned, as HAProxy
/// warns once a proxy is complete, about the HTTP-only options it took from those defaults.
fn http_mode_left(p: &mut Parser) {
    let mut errors = Vec::new();
    for (px, meta) in p.cfg.proxies.iter_mut().zip(&p.proxy_meta) {
        let k = kind(px.cap.frontend, px.cap.backend);
        let hd = std::mem::take(&mut px.http_defaults);
        if px.mode == crate::config::ProxyMode::Http {
            // the one HTTP service harp has: a statistics page on a proxy without servers
            let page_only = px.stats.is_some()
                && px.cap.frontend
                && px.servers.is_empty()
                && px.default_backend.is_none();
            if page_only {
                if let Some(at) = &meta.http_rules_at {
                    // e.g. `http-request deny unless { src ... }`: serving the page anyway
                    // would expose it
                    errors.push((
                        at.clone(),
                        format!(
                            "{k} '{}' : 'http-request'/'http-response' rules are not supported by harp's statistics page; remove them and restrict access otherwise (bind address, 'stats auth').",
                            px.name
                        ),
                    ));
                }
                continue;
            }
            let own = hd
                .mode_at
                .as_ref()
                .is_some_and(|l| l.file == px.location.file && l.line >= px.location.line);
            let (loc, msg) = match (own, hd.mode_at) {
                (true, Some(at)) => (
                    at,
                    "'mode http' is not supported yet by harp (only 'mode tcp', and a statistics page without servers).".to_string(),
                ),
                (_, at) => (
                    px.location.clone(),
                    format!(
                        "{k} '{}' is in 'mode http', taken from its defaults section{}, which harp does not support yet: add 'mode tcp' to it.",
                        px.name,
                        at.map(|l| format!(" (set at [{l}])")).unwrap_or_default()
                    ),
                ),
            };
            errors.push((loc, msg));
            continue;
        }
        if hd.forwardfor {
            p.cfg.warnings.push(format!(
                "[WARNING] config : 'option forwardfor' ignored for {k} '{}' as it requires HTTP mode.",
                px.name
            ));
        }
        if hd.httplog && px.cap.frontend && !px.tcplog {
            p.cfg.warnings.push(format!(
                "[WARNING] config : 'option httplog' not usable with {k} '{}' (needs 'mode http'). Falling back to 'option tcplog'.",
                px.name
            ));
            px.tcplog = true;
        }
    }
    for (loc, msg) in errors {
        err(p, &loc, msg);
    }
}

/// A server's `resolvers <id>` must name a `resolvers` section.
fn server_resolvers(p: &mut Parser) {
    let mut errors = Vec::new();
    for px in &p.cfg.proxies {
        for s in &px.servers {
            if let Some(id) = &s.params.resolvers {
                if !p.cfg.resolvers.iter().any(|r| &r.name == id) {
                    errors.push((
                        s.location.clone(),
                        format!(
                            "'server {}/{}' : unable to find required resolvers section '{id}'.",
                            px.name, s.name
                        ),
                    ));
                }
            }
        }
    }
    for (loc, msg) in errors {
        err(p, &loc, msg);
    }
}

/// `track [<backend>/]<server>`: where it points must exist and be checked (by a health or
/// agent check, or by tracking in turn), without a loop: HAProxy's `srv_apply_track` texts.
fn tracks(p: &mut Parser) {
    let cfg = &p.cfg;
    // the server a `track` value names, seen from proxy `px`
    let find = |px: &str, t: &str| -> Result<(usize, usize), String> {
        let (be, name) = t.rsplit_once('/').unwrap_or((px, t));
        let pi = cfg
            .proxies
            .iter()
            .position(|q| q.name == be && q.cap.backend)
            .ok_or_else(|| format!("unable to find required proxy '{be}' for tracking."))?;
        let si = cfg.proxies[pi]
            .servers
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("unable to find required server '{name}' for tracking."))?;
        Ok((pi, si))
    };
    let mut errors = Vec::new();
    for (pi, px) in cfg.proxies.iter().enumerate() {
        for (si, s) in px.servers.iter().enumerate() {
            let Some(t) = &s.params.track else { continue };
            let fail = |m: String| {
                (
                    s.location.clone(),
                    format!("'server {}/{}' : {m}", px.name, s.name),
                )
            };
            let (tp, ts) = match find(&px.name, t) {
                Ok(x) => x,
                Err(m) => {
                    errors.push(fail(m));
                    continue;
                }
            };
            let target = &cfg.proxies[tp].servers[ts];
            let tname = format!("{}/{}", cfg.proxies[tp].name, target.name);
            let tp_ = &target.params;
            if !tp_.check && !tp_.agent_check && tp_.track.is_none() {
                errors.push(fail(format!(
                    "unable to use {tname} for tracking as it does not have any check nor agent enabled."
                )));
                continue;
            }
            // follow the chain: back to this server is a loop. As HAProxy links servers in
            // file order, only the links of servers before this one exist yet, so only the
            // server that closes a loop is refused
            let mut at = (tp, ts);
            for _ in 0..=cfg.proxies.iter().map(|q| q.servers.len()).sum::<usize>() {
                if at == (pi, si) {
                    errors.push(fail(format!(
                        "unable to track {tname} as it belongs to a tracking chain looping back to {}/{}.",
                        cfg.proxies[tp].name, s.name
                    )));
                    break;
                }
                if at > (pi, si) {
                    break;
                }
                let here = &cfg.proxies[at.0];
                match here.servers[at.1]
                    .params
                    .track
                    .as_ref()
                    .map(|n| find(&here.name, n))
                {
                    Some(Ok(next)) => at = next,
                    _ => break,
                }
            }
        }
    }
    for (loc, msg) in errors {
        err(p, &loc, msg);
    }
}

/// `check-ssl` verifies certificates unless told not to (`verify none`, `ssl-server-verify
/// none`): without a `ca-file` to verify against, HAProxy refuses the server, and so does harp;
/// a `ca-file` must load.
fn tls_checks(p: &mut Parser) {
    // `crt-base` and `ca-base` for servers' relative `crt` and `ca-file`
    let (crt_base, ca_base) = (
        p.cfg.global.bind_tls.crt_base.clone(),
        p.cfg.global.bind_tls.ca_base.clone(),
    );
    let defaults = p.cfg.global.server_tls.clone();
    for px in p.cfg.proxies.iter_mut() {
        for s in px.servers.iter_mut() {
            let params = &mut s.params;
            // `ssl-default-server-*`: what a server line leaves unset
            let t = &mut params.tls_tuning;
            t.min_ver = t.min_ver.or(defaults.min_ver);
            t.max_ver = t.max_ver.or(defaults.max_ver);
            t.forced = t.forced.or(defaults.forced);
            if t.disabled.is_empty() {
                t.disabled = defaults.disabled.clone();
            }
            if t.ciphers.is_none() {
                t.ciphers = defaults.ciphers.clone();
            }
            if t.ciphersuites.is_none() {
                t.ciphersuites = defaults.ciphersuites.clone();
            }
            if let Some(f) = params.crt.as_ref().and_then(|f| f.to_str()) {
                params.crt = Some(crate::tls::in_base(crt_base.as_deref(), f));
            }
            if let Some(f) = params.ca_file.as_ref().and_then(|f| f.to_str()) {
                params.ca_file = Some(crate::tls::in_base(ca_base.as_deref(), f));
            }
            if let Some(f) = params.crl_file.as_ref().and_then(|f| f.to_str()) {
                params.crl_file = Some(crate::tls::in_base(ca_base.as_deref(), f));
            }
        }
    }
    let default_verify = p.cfg.global.ssl_server_verify;
    let mut errors = Vec::new();
    for px in &p.cfg.proxies {
        for s in &px.servers {
            if let Some(e) = crate::config::check_ssl_problem(&px.name, s, default_verify) {
                errors.push((s.location.clone(), e));
            }
        }
    }
    for (loc, msg) in errors {
        err(p, &loc, msg);
    }
    let servers: Vec<String> = p
        .cfg
        .proxies
        .iter()
        .flat_map(|px| {
            px.servers
                .iter()
                .filter_map(|s| crate::config::server_ssl_problem(&px.name, s, default_verify))
        })
        .collect();
    for message in servers {
        p.errors.push(ConfigError::File { message });
    }
    let binds: Vec<String> = p
        .cfg
        .proxies
        .iter()
        .flat_map(|px| px.binds.iter().filter_map(|b| b.tls_problem.clone()))
        .collect();
    for message in binds {
        p.errors.push(ConfigError::File { message });
    }
}

/// HAProxy warns (it does not refuse) when a frontend has no `bind`: it may be meant as a
/// backend, or be filled later.
fn frontends_need_binds(p: &mut Parser) {
    for (px, m) in p.cfg.proxies.iter().zip(&p.proxy_meta) {
        if px.cap.frontend && !m.bind_seen && !px.disabled {
            p.cfg.warnings.push(format!(
                "[WARNING] parsing [{}] : Proxy '{}' has no 'bind' directive. Please declare it as a backend if this was intended.",
                px.location, px.name
            ));
        }
    }
}

/// HAProxy's numbering: forced ids first (duplicates refused), then in file order each proxy
/// without one takes the first free id at or after a cursor that starts at 2 and moves past
/// every proxy, forced or not.
fn assign_proxy_ids(p: &mut Parser) {
    let mut used = BTreeSet::new();
    let mut found = Vec::new();
    for (i, px) in p.cfg.proxies.iter().enumerate() {
        if !px.forced_id {
            continue;
        }
        let Some(id) = px.id else { continue };
        if let Some(prev) = p.cfg.proxies[..i]
            .iter()
            .find(|b| b.forced_id && b.id == Some(id))
        {
            let loc = p.proxy_meta[i]
                .id_at
                .clone()
                .unwrap_or_else(|| px.location.clone());
            found.push((
                loc,
                format!(
                    "{} {} reuses same custom id as {} {} (declared at {}).",
                    kind(px.cap.frontend, px.cap.backend),
                    px.name,
                    kind(prev.cap.frontend, prev.cap.backend),
                    prev.name,
                    prev.location
                ),
            ));
        }
        used.insert(id);
    }
    for (loc, msg) in found {
        err(p, &loc, msg);
    }
    let mut next = FIRST_AUTO_PROXY_ID;
    for px in &mut p.cfg.proxies {
        if !px.forced_id {
            while used.contains(&next) {
                next += 1;
            }
            px.id = Some(next);
            used.insert(next);
        }
        next += 1;
    }
}

/// Same scheme per backend for server puids, starting at 1.
fn assign_server_ids(p: &mut Parser) {
    let mut found = Vec::new();
    for px in &mut p.cfg.proxies {
        let mut used = BTreeSet::new();
        for (i, s) in px.servers.iter().enumerate() {
            if let (true, Some(id)) = (s.params.forced_id, s.params.id) {
                if let Some(prev) = px.servers[..i]
                    .iter()
                    .find(|o| o.params.forced_id && o.params.id == Some(id))
                {
                    found.push((
                        s.location.clone(),
                        format!(
                            "server {}/{} reuses same custom id as server {} (declared at {}).",
                            px.name, s.name, prev.name, prev.location
                        ),
                    ));
                }
                used.insert(id);
            }
        }
        let mut next = 1u32;
        for s in &mut px.servers {
            if !s.params.forced_id {
                while used.contains(&next) {
                    next += 1;
                }
                s.params.id = Some(next);
                used.insert(next);
            }
            next += 1;
        }
    }
    for (loc, msg) in found {
        err(p, &loc, msg);
    }
}

/// HAProxy warns when a proxy misses one of the three main timeouts.
fn missing_timeouts(p: &mut Parser) {
    for px in &p.cfg.proxies {
        if px.disabled {
            continue;
        }
        let t = &px.timeouts;
        let mut missing = Vec::new();
        if px.cap.frontend && t.client.is_none() {
            missing.push("'client'");
        }
        if px.cap.backend && t.connect.is_none() {
            missing.push("'connect'");
        }
        if px.cap.backend && t.server.is_none() {
            missing.push("'server'");
        }
        if !missing.is_empty() {
            p.cfg.warnings.push(format!(
                "[WARNING] parsing [{}] : missing timeouts for {} '{}'. While not properly invalid, you will certainly encounter various problems with such a configuration. To fix this, please ensure that all following timeouts are set to a non-zero value: {}.",
                px.location,
                kind(px.cap.frontend, px.cap.backend),
                px.name,
                missing.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{err, ok};

    #[test]
    fn ids_match_the_reference_transcript() {
        // The config of shared/reference/haproxy-3.2-runtime-api.txt: fe = 2, test = 3,
        // webserver1 = 1, webserver2 = 2.
        let cfg = ok("global\n stats socket ipv4@127.0.0.1:29999 level admin\n lua-load dump.lua\n \
             tune.lua.bool-sample-conversion normal\ndefaults\n mode tcp\n timeout connect 1s\n timeout client 5s\n \
             timeout server 5s\nfrontend fe\n bind 127.0.0.1:29000\n default_backend test\nbackend test\n \
             balance roundrobin\n option log-health-checks\n server webserver1 127.0.0.1:29081 check inter 300ms rise 2 fall 2\n \
             server webserver2 127.0.0.1:29082\n");
        assert_eq!(cfg.proxies[0].id, Some(2));
        assert_eq!(cfg.proxies[1].id, Some(3));
        assert!(!cfg.proxies[1].forced_id);
        let ids: Vec<_> = cfg.proxies[1].servers.iter().map(|s| s.params.id).collect();
        assert_eq!(ids, [Some(1), Some(2)]);
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    #[test]
    fn forced_ids_move_the_cursor_like_haproxy() {
        let cfg = ok(
            "backend a\n id 3\nbackend b\nbackend c\n id 10\nbackend d\n\
             backend s\n server x 127.0.0.1:1 id 2\n server y 127.0.0.1:2\n server z 127.0.0.1:3\n",
        );
        let ids: Vec<_> = cfg.proxies.iter().map(|p| p.id.unwrap()).collect();
        // Cursor starts at 2. a forced 3: cursor 3. b: 3 is taken -> 4, cursor 5. c forced 10:
        // cursor 6. d: 6, cursor 7. s: 7.
        assert_eq!(ids, [3, 4, 10, 6, 7]);
        let s: Vec<_> = cfg.proxies[4]
            .servers
            .iter()
            .map(|s| s.params.id.unwrap())
            .collect();
        // x forced 2; y: cursor 2 -> taken -> 3; z: cursor 4.
        assert_eq!(s, [2, 3, 4]);
        assert!(cfg.proxies[4].servers[0].params.forced_id);
    }

    #[test]
    fn rule_references_are_checked_as_haproxy_checks_them() {
        let e = err("frontend f\n bind :80\n acl a src 10.0.0.0/8\n use_backend nope if a\n");
        assert!(
            e.contains("[t.cfg:4] : Proxy 'f': unable to find required use_backend: 'nope'."),
            "{e}"
        );
        let e = err("listen l\n bind :80\n use_backend l\n");
        assert!(
            e.contains("[t.cfg:3] : Proxy 'l': loop detected for use_backend: 'l'."),
            "{e}"
        );
        let e = err("listen l\n bind :80\n default_backend l\n");
        assert!(
            e.contains("[t.cfg:3] : Proxy 'l': default_backend cannot point to itself."),
            "{e}"
        );
        let e = err("frontend f\n bind :80\n use_backend b if { nbsrv(x) gt 0 }\nbackend b\n");
        assert!(
            e.contains("unable to find backend 'x' referenced in arg 1 of ACL keyword 'nbsrv' in proxy 'f'."),
            "{e}"
        );
        let e = err("frontend f\n bind :80\n use_backend b if { srv_is_up(b/s9) }\nbackend b\n server s 127.0.0.1:1\n");
        assert!(
            e.contains("unable to find server 's9' in backend 'b'"),
            "{e}"
        );
        let e = err("frontend f\n bind :80\n use_backend b if nope\nbackend b\n");
        assert!(
            e.contains(
                "[t.cfg:3] : error detected while parsing switching rule : no such ACL : 'nope'."
            ),
            "{e}"
        );
        assert!(err("defaults\n acl a src 1.2.3.4\n")
            .contains("'acl' not allowed in 'defaults' section."));
        // a fetch without argument reads the proxy it is written in, which must have the
        // capability
        let e = err("frontend f\n bind :80\n tcp-request connection reject if { nbsrv lt 1 }\n default_backend b\nbackend b\n");
        assert!(
            e.contains("proxy 'f', referenced in arg 1 of ACL keyword 'nbsrv' in proxy 'f', has not backend capability."),
            "{e}"
        );
        let cfg = ok("frontend f\n bind :80\n tcp-request connection reject if { fe_conn gt 9 }\n default_backend b\n\
                      backend b\n use_backend c\nbackend c\n");
        assert!(
            cfg.warnings.iter().any(|w| w
                .contains("'use_backend' ignored because backend 'b' has no frontend capability.")),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn duplicate_ids_and_names() {
        let e = err("backend a\n id 5\nbackend b\n id 5\n");
        assert!(
            e.contains(
                "[t.cfg:4] : backend b reuses same custom id as backend a (declared at t.cfg:1)."
            ),
            "{e}"
        );
        let e = err("backend a\n server x 127.0.0.1:1 id 1\n server y 127.0.0.1:1 id 1\n");
        assert!(
            e.contains("[t.cfg:3] : server a/y reuses same custom id as server x"),
            "{e}"
        );
        let e = err("backend a\nbackend a\n");
        assert!(
            e.contains(
                "[t.cfg:2] : backend 'a' has the same name as backend 'a' declared at t.cfg:1."
            ),
            "{e}"
        );
        let e = err("frontend a\n bind :1\nlisten a\n bind :2\n");
        assert!(e.contains("[t.cfg:3] : listen 'a'"), "{e}");
        // A frontend and a backend may share a name.
        ok("frontend www\n bind :1\n default_backend www\n timeout client 1s\nbackend www\n");
    }

    #[test]
    fn tracks_are_checked_as_haproxy_checks_them() {
        let cfg = ok(
            "backend a\n server s1 127.0.0.1:1 check\n server s2 127.0.0.1:2 track s1\n\
             backend b\n server s1 127.0.0.1:1 track a/s2\n",
        );
        assert_eq!(
            cfg.proxies[1].servers[0].params.track.as_deref(),
            Some("a/s2")
        );
        for (text, want) in [
            (
                "backend a\n server s1 127.0.0.1:1 track nope/s1\n",
                "[t.cfg:2] : 'server a/s1' : unable to find required proxy 'nope' for tracking.",
            ),
            (
                "backend a\n server s1 127.0.0.1:1 track s9\n",
                "unable to find required server 's9' for tracking.",
            ),
            (
                "backend a\n server s1 127.0.0.1:1\n server s2 127.0.0.1:1 track s1\n",
                "unable to use a/s1 for tracking as it does not have any check nor agent enabled.",
            ),
            (
                "backend a\n server s1 127.0.0.1:1 track s2\n server s2 127.0.0.1:1 track s1\n",
                "unable to track a/s1 as it belongs to a tracking chain looping back to a/s2.",
            ),
            (
                "backend a\n server s1 127.0.0.1:1 check track s2\n",
                "unable to enable checks and tracking at the same time!",
            ),
            (
                "backend a\n server s1 127.0.0.1:1 track\n",
                "'track' expects [<proxy>/]<server> as argument.",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(want), "{e}");
        }
        // only the server that closes a loop is refused
        let e =
            err("backend a\n server s1 127.0.0.1:1 track s2\n server s2 127.0.0.1:1 track s1\n");
        assert!(!e.contains("'server a/s1'"), "{e}");
    }

    #[test]
    fn references() {
        let e = err("frontend f\n bind :80\n default_backend nope\n");
        assert!(
            e.contains("[t.cfg:3] : Proxy 'f': unable to find required default_backend: 'nope'."),
            "{e}"
        );
        let e = err("frontend f\n bind :80\n default_backend g\nfrontend g\n bind :81\n");
        assert!(
            e.contains("unable to find required default_backend: 'g'"),
            "{e}"
        );
        let e = err("backend b\n email-alert mailers nope\n");
        assert!(
            e.contains("[t.cfg:2] : Proxy 'b': unable to find mailers 'nope'."),
            "{e}"
        );
        let w = ok("frontend f\n timeout client 1s\n").warnings;
        assert_eq!(w, ["[WARNING] parsing [t.cfg:1] : Proxy 'f' has no 'bind' directive. Please declare it as a backend if this was intended."]);
        let e = err("global\n httpclient.resolvers.id dns\n");
        assert!(
            e.contains("[t.cfg:2] : httpclient: cannot find resolvers id 'dns'"),
            "{e}"
        );
        ok("global\n httpclient.resolvers.id dns\nresolvers dns\n nameserver a 127.0.0.1\n");
    }

    #[test]
    fn missing_timeouts_warn() {
        let cfg = ok("listen l\n bind :80\n timeout client 1s\n");
        assert_eq!(cfg.warnings.len(), 1);
        assert!(cfg.warnings[0].contains("missing timeouts for listen 'l'"));
        assert!(cfg.warnings[0].contains("'connect', 'server'"));
    }
}
