//! `show acl`, `add acl`, `del acl`, `clear acl`, `get acl`: the ACLs' pattern lists, by file
//! or `#<id>`, with HAProxy 3.2's replies. A change is seen by the next connection the rules
//! judge; the files themselves are not rewritten (as in HAProxy).

use crate::model::Registry;
use crate::rules::patref::{self, PatEvent};

/// HAProxy's reply to an ACL reference it cannot find.
const UNKNOWN: &str = "Unknown ACL identifier. Please use #<id> or <file>.";

/// Splits HAProxy's `@<version>` argument off: harp keeps one version of each list, the
/// current one, numbered 0 (`show acl` says `curr_ver=0 next_ver=0`).
fn versioned(args: &[String]) -> (Option<&str>, &[String]) {
    match args.first() {
        Some(a) if a.starts_with('@') => (Some(&a[1..]), &args[1..]),
        _ => (None, args),
    }
}

/// Whether `@<ver>` names a version past the current one (HAProxy reads its leading digits,
/// none being 0).
fn other_version(ver: Option<&str>) -> bool {
    ver.is_some_and(|v| {
        let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().unwrap_or(0) != 0
    })
}

/// `show acl [@<ver>] [<acl>]`: the list of ACLs, or one's entries.
pub(super) fn show(reg: &Registry, args: &[String]) -> String {
    let (ver, args) = versioned(args);
    match args.first() {
        None => {
            let mut out = String::from("# id (file) description\n");
            for g in reg.acl_lists() {
                out.push_str(&patref::list_line(&g));
                out.push('\n');
            }
            out
        }
        Some(name) => match reg.acl_list(name) {
            None => format!("{UNKNOWN}\n"),
            // no entry belongs to a version harp does not keep
            Some(_) if other_version(ver) => String::new(),
            Some(g) => g[0]
                .entries()
                .iter()
                .map(|e| format!("0x{:x} {}\n", e.handle, e.text))
                .collect(),
        },
    }
}

/// `add acl [@<ver>] <acl> <pattern>`: checked against every expression using the list, then
/// added to all of them at once.
pub(super) fn add(reg: &Registry, args: &[String]) -> String {
    let (ver, args) = versioned(args);
    let (Some(name), Some(pattern)) = (args.first(), args.get(1)) else {
        return "'add acl' expects two parameters: ACL identifier and pattern.".into();
    };
    let Some(g) = reg.acl_list(name) else {
        return UNKNOWN.into();
    };
    if other_version(ver) {
        return "Version number in the future, please use 'prepare acl' before.".into();
    }
    match patref::group_add(&g, &[pattern.as_str()]) {
        Err(e) => format!("{e}."),
        Ok(()) => {
            g[0].fire(PatEvent::Add);
            String::new()
        }
    }
}

/// `del acl <acl> <key>|#<handle>`.
pub(super) fn del(reg: &Registry, args: &[String]) -> String {
    let (Some(name), Some(key)) = (args.first(), args.get(1)) else {
        return "This command expects two parameters: ACL identifier and key.".into();
    };
    let Some(g) = reg.acl_list(name) else {
        // sic: HAProxy 2.6-3.2 say "map" here
        return "Unknown map identifier. Please use #<id> or <file>.".into();
    };
    let removed = match key.strip_prefix("#0x") {
        Some(hex) => {
            let Ok(handle) = u64::from_str_radix(hex, 16) else {
                return "Malformed identifier. Please use #<id> or <file>.".into();
            };
            patref::group_remove_handle(&g, handle)
        }
        None => patref::group_remove_text(&g, key),
    };
    if removed {
        g[0].fire(PatEvent::Del);
        String::new()
    } else {
        "Key not found.".into()
    }
}

/// `clear acl [@<ver>] <acl>`.
pub(super) fn clear(reg: &Registry, args: &[String]) -> String {
    let (ver, args) = versioned(args);
    let Some(name) = args.first() else {
        return "Missing ACL identifier.".into();
    };
    match reg.acl_list(name) {
        None => UNKNOWN.into(),
        // a version harp does not keep holds nothing to clear
        Some(_) if other_version(ver) => String::new(),
        Some(g) => {
            patref::group_clear(&g);
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
    match reg.acl_list(name) {
        None => format!("{UNKNOWN}\n"),
        Some(g) => g
            .iter()
            .map(|r| format!("{}\n", r.lookup_line(value)))
            .collect(),
    }
}
