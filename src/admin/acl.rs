//! `show acl`, `add acl`, `del acl`, `clear acl`, `get acl`: the ACLs' pattern lists, by file
//! or `#<id>`, with HAProxy 3.2's replies. A change is seen by the next connection the rules
//! judge; the files themselves are not rewritten (as in HAProxy).

use std::sync::Arc;

use crate::model::Registry;
use crate::rules::patref::{self, PatEvent, PatRef};

/// HAProxy's reply to an ACL reference it cannot find.
const UNKNOWN: &str = "Unknown ACL identifier. Please use #<id> or <file>.";

/// Every pattern list of the configuration, grouped by id.
fn groups(reg: &Registry) -> Vec<Vec<Arc<PatRef>>> {
    patref::groups(
        reg.proxies()
            .iter()
            .flat_map(|p| p.config.rules.acls.refs()),
    )
}

/// The lists `name` designates (`#<id>` or a file name).
fn find(reg: &Registry, name: &str) -> Option<Vec<Arc<PatRef>>> {
    patref::find(groups(reg), name)
}

/// Skips HAProxy's `@<version>` argument (harp has one version: the current one).
fn unversioned(args: &[String]) -> &[String] {
    match args.first() {
        Some(a) if a.starts_with('@') => &args[1..],
        _ => args,
    }
}

/// `show acl [<acl>]`: the list of ACLs, or one's entries.
pub(super) fn show(reg: &Registry, args: &[String]) -> String {
    match unversioned(args).first() {
        None => {
            let mut out = String::from("# id (file) description\n");
            for g in groups(reg) {
                out.push_str(&patref::list_line(&g));
                out.push('\n');
            }
            out
        }
        Some(name) => match find(reg, name) {
            None => format!("{UNKNOWN}\n"),
            Some(g) => g[0]
                .entries()
                .iter()
                .map(|e| format!("0x{:x} {}\n", e.handle, e.text))
                .collect(),
        },
    }
}

/// `add acl <acl> <pattern>`: checked against every expression using the list, then added.
pub(super) fn add(reg: &Registry, args: &[String]) -> String {
    let (Some(name), Some(pattern)) = (unversioned(args).first(), unversioned(args).get(1)) else {
        return "'add acl' expects two parameters: ACL identifier and pattern.".into();
    };
    let Some(g) = find(reg, name) else {
        return UNKNOWN.into();
    };
    if let Some(e) = g.iter().find_map(|r| r.check(pattern).err()) {
        return format!("{e}.");
    }
    for r in &g {
        if let Err(e) = r.add(pattern) {
            return format!("{e}.");
        }
    }
    g[0].fire(PatEvent::Add);
    String::new()
}

/// `del acl <acl> <key>|#<handle>`.
pub(super) fn del(reg: &Registry, args: &[String]) -> String {
    let (Some(name), Some(key)) = (args.first(), args.get(1)) else {
        return "This command expects two parameters: ACL identifier and key.".into();
    };
    let Some(g) = find(reg, name) else {
        // sic: HAProxy 2.6-3.2 say "map" here
        return "Unknown map identifier. Please use #<id> or <file>.".into();
    };
    let removed = match key.strip_prefix("#0x") {
        Some(hex) => {
            let Ok(handle) = u64::from_str_radix(hex, 16) else {
                return "Malformed identifier. Please use #<id> or <file>.".into();
            };
            // the handle is the first list's; the others using the file lose the same text
            match g[0].remove_handle(handle) {
                Some(text) => {
                    for r in &g[1..] {
                        r.remove_text(&text);
                    }
                    true
                }
                None => false,
            }
        }
        // from every list sharing the file, not just until one had it
        None => g
            .iter()
            .map(|r| r.remove_text(key))
            .collect::<Vec<_>>()
            .contains(&true),
    };
    if removed {
        g[0].fire(PatEvent::Del);
        String::new()
    } else {
        "Key not found.".into()
    }
}

/// `clear acl <acl>`.
pub(super) fn clear(reg: &Registry, args: &[String]) -> String {
    let Some(name) = unversioned(args).first() else {
        return "Missing ACL identifier.".into();
    };
    match find(reg, name) {
        None => UNKNOWN.into(),
        Some(g) => {
            g.iter().for_each(|r| r.clear());
            g[0].fire(PatEvent::Clear);
            String::new()
        }
    }
}

/// `get acl <acl> <value>`: one line per expression using the list.
pub(super) fn get(reg: &Registry, args: &[String]) -> String {
    let (Some(name), Some(value)) = (args.first(), args.get(1)) else {
        return "Missing ACL identifier and/or key.\n".into();
    };
    match find(reg, name) {
        None => format!("{UNKNOWN}\n"),
        Some(g) => g
            .iter()
            .map(|r| format!("{}\n", r.lookup_line(value)))
            .collect(),
    }
}
