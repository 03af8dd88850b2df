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
    duplicates(p);
    references(p);
    frontends_need_binds(p);
    assign_proxy_ids(p);
    assign_server_ids(p);
    missing_timeouts(p);
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
                match p
                    .cfg
                    .proxies
                    .iter()
                    .find(|b| &b.name == be && b.cap.backend)
                {
                    None => found.push((
                        loc,
                        format!(
                            "Proxy '{}': unable to find required default_backend: '{be}'.",
                            px.name
                        ),
                    )),
                    Some(b) if b.name == px.name && b.cap.frontend => found.push((
                        loc,
                        format!(
                            "Proxy '{}': default_backend cannot point to itself.",
                            px.name
                        ),
                    )),
                    Some(_) => {}
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
            p.errors.push(ConfigError::File {
                message: format!("httpclient: cannot find resolvers id '{id}'"),
            });
        }
    }
}

fn frontends_need_binds(p: &mut Parser) {
    let found: Vec<_> = p
        .cfg
        .proxies
        .iter()
        .zip(&p.proxy_meta)
        .filter(|(px, m)| px.cap.frontend && !px.cap.backend && !m.bind_seen && !px.disabled)
        .map(|(px, _)| px)
        .map(|px| {
            (
                px.location.clone(),
                format!("Proxy '{}' has no 'bind' directive. Please declare it as a backend if this was intended.", px.name),
            )
        })
        .collect();
    for (loc, msg) in found {
        err(p, &loc, msg);
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
                "[WARNING] config : missing timeouts for {} '{}'. While not properly invalid, you will certainly encounter various problems with such a configuration. To fix this, please ensure that all following timeouts are set to a non-zero value: {}.",
                kind(px.cap.frontend, px.cap.backend),
                px.name,
                missing.join(", ")
            ));
        }
    }
}
