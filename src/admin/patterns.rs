//! `show|add|del|clear|get acl` and `show|add|set|del|clear|get map`: the pattern lists of
//! ACLs and maps, by file or `#<id>`, with HAProxy 3.2's replies. A change is seen by the
//! next connection the rules judge; the files themselves are not rewritten (as in HAProxy).

use std::sync::Arc;

use crate::model::Registry;
use crate::rules::patref::{self, PatEvent, PatRef, Target};

/// Which kind of list a command names (`acl` or `map`): what it lists, and its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `... acl`.
    Acl,
    /// `... map`.
    Map,
}

impl Kind {
    /// HAProxy's reply to a reference it cannot find.
    fn unknown(self) -> &'static str {
        match self {
            Kind::Acl => "Unknown ACL identifier. Please use #<id> or <file>.",
            Kind::Map => "Unknown map identifier. Please use #<id> or <file>.",
        }
    }

    /// The groups of its kind, in id order (`show`, `del`, `clear` look only there).
    fn lists(self, reg: &Registry) -> Vec<Vec<Arc<PatRef>>> {
        match self {
            Kind::Acl => reg.acl_lists(),
            Kind::Map => reg.map_lists(),
        }
    }

    /// The group `name` designates among those of its kind.
    fn find(self, reg: &Registry, name: &str) -> Option<Vec<Arc<PatRef>>> {
        patref::find(self.lists(reg), name)
    }
}

/// Splits HAProxy's `@<version>` argument off.
fn versioned(args: &[String]) -> (Option<&str>, &[String]) {
    match args.first() {
        Some(a) if a.starts_with('@') => (Some(&a[1..]), &args[1..]),
        _ => (None, args),
    }
}

/// `show acl|map [@<ver>] [<ref>]`: the lists of that kind, or one's entries.
pub(super) fn show(reg: &Registry, kind: Kind, args: &[String]) -> String {
    let (ver, args) = versioned(args);
    match args.first() {
        None => {
            let mut out = String::from("# id (file) description\n");
            for g in kind.lists(reg) {
                out.push_str(&patref::list_line(&g));
                out.push('\n');
            }
            out
        }
        Some(name) => match kind.find(reg, name) {
            None => format!("{}\n", kind.unknown()),
            Some(g) => patref::entries_at(&g, patref::version_of(&g, ver))
                .iter()
                .map(|e| match &e.value {
                    Some(v) => format!("0x{:x} {} {v}\n", e.handle, e.text),
                    None => format!("0x{:x} {}\n", e.handle, e.text),
                })
                .collect(),
        },
    }
}

/// `add acl [@<ver>] <acl> <pattern>` and `add map [@<ver>] <map> <key> <value>` (or a
/// payload of `<key> <value>` lines): checked against every expression using the list, then
/// added to all of them at once.
pub(super) fn add(reg: &Registry, kind: Kind, args: &[String], payload: Option<&str>) -> String {
    let (ver, args) = versioned(args);
    // a payload line without a value stops the adding there, after the lines before it
    let mut missing = None;
    let pairs: Vec<(String, Option<String>)> = match kind {
        Kind::Acl => {
            let (Some(_), Some(pattern)) = (args.first(), args.get(1)) else {
                return "'add acl' expects two parameters: ACL identifier and pattern.".into();
            };
            vec![(pattern.clone(), None)]
        }
        Kind::Map => match (payload, args.get(1), args.get(2)) {
            (Some(p), ..) if !args.is_empty() => {
                let mut pairs = Vec::new();
                for line in p.lines() {
                    let Some(i) = line.find([' ', '\t']) else {
                        missing = Some(format!("Missing value for key '{line}'."));
                        break;
                    };
                    let (key, value) =
                        (&line[..i], line[i + 1..].trim_start_matches([' ', '\t']));
                    pairs.push((key.to_string(), Some(value.to_string())));
                }
                pairs
            }
            (None, Some(k), Some(v)) => vec![(k.clone(), Some(v.clone()))],
            _ => {
                return "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload".into()
            }
        },
    };
    let Some(name) = args.first() else {
        return kind.unknown().into();
    };
    let Some(g) = patref::find(reg.pattern_lists(), name) else {
        return kind.unknown().into();
    };
    let future = || -> String {
        match kind {
            Kind::Acl => "Version number in the future, please use 'prepare acl' before.",
            Kind::Map => "Version number in the future, please use 'prepare map' before.",
        }
        .into()
    };
    if patref::in_future(&g, ver) {
        return future();
    }
    if kind == Kind::Acl && g.iter().any(|r| r.two_column) {
        return "This ACL is shared with a map containing samples. You must use the command 'add map' to add values.".into();
    }
    let two_column = g.iter().any(|r| r.two_column);
    let pairs: Vec<(&str, Option<&str>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref().filter(|_| two_column)))
        .collect();
    // as HAProxy's loop, the entries before a bad one stay: find it, then add those before
    // it in one step (one copy of the list for the workers, however many lines)
    let bad = pairs.iter().enumerate().find_map(|(i, p)| {
        patref::group_check(&g, std::slice::from_ref(p))
            .err()
            .map(|e| (i, e))
    });
    let good = &pairs[..bad.as_ref().map_or(pairs.len(), |(i, _)| *i)];
    // another version's entries wait for its commit, unseen and unannounced
    match patref::group_add_versioned(&g, ver, good) {
        Err(e) => return format!("{e}."),
        Ok(patref::AddedTo::Future) => return future(),
        Ok(patref::AddedTo::Other) => {}
        Ok(patref::AddedTo::Current) => {
            for _ in good {
                g[0].fire(PatEvent::Add);
            }
        }
    }
    match bad {
        Some((_, e)) => format!("{e}."),
        None => missing.unwrap_or_default(),
    }
}

/// `set map <map> <key>|#<ref> <value>`: the value of every entry of that key (or of that
/// one entry), in every expression using the map.
pub(super) fn set(reg: &Registry, args: &[String]) -> String {
    let (Some(name), Some(key), Some(value)) = (args.first(), args.get(1), args.get(2)) else {
        return "'set map' expects three parameters: map identifier, key and value.".into();
    };
    let Some(g) = patref::find(reg.pattern_lists(), name) else {
        return Kind::Map.unknown().into();
    };
    let Some(target) = Target::parse(key) else {
        return "Malformed identifier. Please use #<id> or <file>.".into();
    };
    match patref::group_set(&g, target, value) {
        Err(e) => format!("{e}."),
        Ok(()) => {
            g[0].fire(PatEvent::Set);
            String::new()
        }
    }
}

/// `del acl|map <ref> <key>|#<handle>`.
pub(super) fn del(reg: &Registry, kind: Kind, args: &[String]) -> String {
    let (Some(name), Some(key)) = (args.first(), args.get(1)) else {
        return match kind {
            Kind::Acl => "This command expects two parameters: ACL identifier and key.",
            Kind::Map => "This command expects two parameters: map identifier and key.",
        }
        .into();
    };
    let Some(g) = kind.find(reg, name) else {
        // sic: HAProxy 2.6-3.2 say "map" here for both
        return Kind::Map.unknown().into();
    };
    let Some(target) = Target::parse(key) else {
        return "Malformed identifier. Please use #<id> or <file>.".into();
    };
    if patref::group_remove(&g, target) {
        g[0].fire(PatEvent::Del);
        String::new()
    } else {
        "Key not found.".into()
    }
}

/// `clear acl|map [@<ver>] <ref>`.
pub(super) fn clear(reg: &Registry, kind: Kind, args: &[String]) -> String {
    let (ver, args) = versioned(args);
    let Some(name) = args.first() else {
        return match kind {
            Kind::Acl => "Missing ACL identifier.",
            Kind::Map => "Missing map identifier.",
        }
        .into();
    };
    match kind.find(reg, name) {
        None => kind.unknown().into(),
        Some(g) => {
            let at = patref::version_of(&g, ver);
            if patref::is_current(&g, at) {
                patref::group_clear(&g);
                g[0].fire(PatEvent::Clear);
            } else {
                patref::group_clear_at(&g, at);
            }
            String::new()
        }
    }
}

/// `prepare acl|map <ref>`: a new, empty version to fill with `add ... @<ver>`.
pub(super) fn prepare(reg: &Registry, kind: Kind, args: &[String]) -> String {
    let name = args.first().map_or("", String::as_str);
    match kind.find(reg, name) {
        None => format!("{}\n", kind.unknown()),
        Some(g) => format!("New version created: {}\n", patref::group_prepare(&g)),
    }
}

/// `commit acl|map @<ver> <ref>`: the prepared version replaces the list at once.
pub(super) fn commit(reg: &Registry, kind: Kind, args: &[String]) -> String {
    let (Some(ver), args) = versioned(args) else {
        return "Missing version number.".into();
    };
    let Some(name) = args.first() else {
        return match kind {
            Kind::Acl => "Missing ACL identifier.",
            Kind::Map => "Missing map identifier.",
        }
        .into();
    };
    let Some(g) = kind.find(reg, name) else {
        return kind.unknown().into();
    };
    if !patref::group_commit(&g, patref::version_of(&g, Some(ver))) {
        return "Version number out of range.".into();
    }
    g[0].fire(PatEvent::Commit);
    String::new()
}

/// `get acl|map <ref> <value>`: one line per expression using the list.
pub(super) fn get(reg: &Registry, kind: Kind, args: &[String]) -> String {
    let (Some(name), Some(value)) = (args.first(), args.get(1)) else {
        return match kind {
            Kind::Acl => "Missing ACL identifier and/or key.\n",
            Kind::Map => "Missing map identifier and/or key.\n",
        }
        .into();
    };
    match patref::find(reg.pattern_lists(), name) {
        None => format!("{}\n", kind.unknown()),
        Some(g) => patref::expressions(&g)
            .iter()
            .map(|r| format!("{}\n", r.lookup_line(kind == Kind::Map, value)))
            .collect(),
    }
}
