//! `help` and the "Unknown command" reply, in HAProxy 3.2's wording, layout and fuzzy matching.

use crate::config::AccessLevel;

/// One help line: usage column, description, and the level needed to run it.
#[derive(Debug, Clone, Copy)]
pub struct HelpEntry {
    /// Usage as HAProxy prints it (`show servers state [<backend>]`).
    pub usage: &'static str,
    /// Description after the colon.
    pub desc: &'static str,
    /// Lowest level that may run it.
    pub level: AccessLevel,
}

const fn e(usage: &'static str, desc: &'static str, level: AccessLevel) -> HelpEntry {
    HelpEntry { usage, desc, level }
}

use AccessLevel::{Admin, Operator, User};

/// The commands harp implements, in HAProxy's (alphabetical) help order.
pub const ENTRIES: &[HelpEntry] = &[
    e(
        "abort ssl cert <certfile>",
        "abort a transaction for a certificate file",
        Admin,
    ),
    e(
        "add acl [@<ver>] <acl> <pattern>",
        "add an acl entry",
        Operator,
    ),
    e(
        "add map [@<ver>] <map> <key> <val>",
        "add a map entry (payload supported instead of key/val)",
        Operator,
    ),
    e("add server <bk>/<srv>", "create a new server", Admin),
    e(
        "clear acl [@<ver>] <acl>",
        "clear the contents of this acl",
        Operator,
    ),
    e(
        "clear counters [all]",
        "clear max statistics counters (or all counters)",
        Operator,
    ),
    e(
        "clear map [@<ver>] <map>",
        "clear the contents of this map",
        Operator,
    ),
    e(
        "clear table <table> [<filter>]*",
        "remove an entry from a table (filter: data/key)",
        User,
    ),
    e(
        "commit acl @<ver> <acl>",
        "commit the ACL at this version",
        Operator,
    ),
    e(
        "commit map @<ver> <map>",
        "commit the map at this version",
        Operator,
    ),
    e(
        "commit ssl cert <certfile>",
        "commit a certificate file",
        Admin,
    ),
    e(
        "del acl <acl> [<key>|#<ref>]",
        "delete acl entries matching <key>",
        Operator,
    ),
    e(
        "del map <map> [<key>|#<ref>]",
        "delete map entries matching <key>",
        Operator,
    ),
    e(
        "del server <bk>/<srv>",
        "remove a dynamically added server",
        Admin,
    ),
    e("disable agent", "disable agent checks", Admin),
    e(
        "disable frontend <frontend>",
        "temporarily disable specific frontend",
        Admin,
    ),
    e("disable health", "disable health checks", Admin),
    e(
        "disable server (DEPRECATED)",
        "disable a server for maintenance (use 'set server' instead)",
        Admin,
    ),
    e("echo <text>", "print text to the output", User),
    e("enable agent", "enable agent checks", Admin),
    e(
        "enable frontend <frontend>",
        "re-enable specific frontend",
        Admin,
    ),
    e("enable health", "enable health checks", Admin),
    e(
        "enable server  (DEPRECATED)",
        "enable a disabled server (use 'set server' instead)",
        Admin,
    ),
    e(
        "get acl <acl> <value>",
        "report the patterns matching a sample for an ACL",
        User,
    ),
    e(
        "get map <acl> <value>",
        "report the keys and values matching a sample for a map",
        User,
    ),
    e(
        "get var <name>",
        "retrieve contents of a process-wide variable",
        Operator,
    ),
    e(
        "get weight <bk>/<srv>",
        "report a server's current weight",
        User,
    ),
    e(
        "operator",
        "lower the level of the current CLI session to operator",
        User,
    ),
    e(
        "prepare acl <acl>",
        "prepare a new version for atomic ACL replacement",
        Operator,
    ),
    e(
        "prepare map <acl>",
        "prepare a new version for atomic map replacement",
        Operator,
    ),
    e(
        "set map <map> [<key>|#<ref>] <value>",
        "modify a map entry",
        Operator,
    ),
    e(
        "set maxconn frontend <frontend> <value>",
        "change a frontend's maxconn setting",
        Admin,
    ),
    e(
        "set maxconn global <value>",
        "change the per-process maxconn setting",
        Admin,
    ),
    e(
        "set maxconn server <bk>/<srv>",
        "change a server's maxconn setting",
        Admin,
    ),
    e(
        "set rate-limit <setting> <value>",
        "change a rate limiting value",
        Admin,
    ),
    e(
        "set server <bk>/<srv> [opts]",
        "change a server's state, weight, address or ssl",
        Admin,
    ),
    e(
        "set ssl cert <certfile> <payload>",
        "replace a certificate file",
        Admin,
    ),
    e(
        "set table <table> key <k> [data.* <v>]*",
        "update or create a table entry's data",
        User,
    ),
    e(
        "set weight <bk>/<srv>  (DEPRECATED)",
        "change a server's weight (use 'set server' instead)",
        Admin,
    ),
    e(
        "show acl [@<ver>] <acl>]",
        "report available acls or dump an acl's contents",
        User,
    ),
    e(
        "show backend",
        "list backends in the current running config",
        User,
    ),
    e(
        "show cli level",
        "display the level of the current CLI session",
        User,
    ),
    e(
        "show info [desc|json|typed|float]*",
        "report information about the running process",
        User,
    ),
    e(
        "show map [@ver] [map]",
        "report available maps or dump a map's contents",
        User,
    ),
    e(
        "show servers state [<backend>]",
        "dump volatile server information (all or for a single backend)",
        User,
    ),
    e(
        "show ssl cert [<certfile>]",
        "display the SSL certificates used in memory, or the details of a file",
        Operator,
    ),
    e(
        "show stat [desc|json|no-maint|typed|up]*",
        "report counters for each proxy and server",
        User,
    ),
    e(
        "show events [<sink>] [-w] [-n] [-0]",
        "show event sink state",
        User,
    ),
    e(
        "show table <table> [<filter>]*",
        "report table usage stats or dump this table's contents (filter: data/key)",
        User,
    ),
    e("show version", "show version of the current process", User),
    e(
        "shutdown frontend <frontend>",
        "stop a specific frontend",
        Admin,
    ),
    e(
        "shutdown sessions server <bk>/<srv>",
        "kill sessions on a server",
        Admin,
    ),
    e(
        "user",
        "lower the level of the current CLI session to user",
        User,
    ),
];

/// Always listed last, whatever matched.
pub const BASE: &[HelpEntry] = &[
    e("help [<command>]", "list matching or all commands", User),
    e(
        "prompt [help | n | i | p | timed ]*",
        "toggle interactive mode with prompt",
        User,
    ),
    e("quit", "disconnect", User),
];

/// How many fuzzy matches HAProxy proposes at most (`CLI_MAX_MATCHES`).
const MAX_MATCHES: usize = 5;

impl HelpEntry {
    /// The line as printed, without the trailing newline.
    pub fn line(&self) -> String {
        format!("  {:<40}: {}", self.usage, self.desc)
    }

    /// The keyword words (usage up to the first argument placeholder).
    pub fn keywords(&self) -> Vec<&'static str> {
        keywords_of(self.usage)
    }
}

/// Keyword words of a usage text: words before the first `<`, `[`, `{` or `(` placeholder.
pub fn keywords_of(usage: &str) -> Vec<&str> {
    usage
        .split_whitespace()
        .take_while(|w| !w.starts_with(['<', '[', '{', '(']))
        .collect()
}

/// HAProxy's word fingerprint: counts of letter-class transitions (a-z, digit, other, begin/end).
pub fn update_fingerprint(fp: &mut [u8; 1024], word: &str) {
    let class = |c: u8| -> usize {
        match c.to_ascii_lowercase() {
            c @ b'a'..=b'z' => (c - b'a' + 1) as usize,
            b'0'..=b'9' => 27,
            _ => 28,
        }
    };
    let mut from = 28;
    for &b in word.as_bytes() {
        let to = class(b);
        fp[32 * from + to] = fp[32 * from + to].wrapping_add(1);
        from = to;
    }
    fp[32 * from + 28] = fp[32 * from + 28].wrapping_add(1);
}

/// Sum of absolute differences of two fingerprints.
pub fn distance(a: &[u8; 1024], b: &[u8; 1024]) -> i64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (*x as i64 - *y as i64).abs())
        .sum()
}

/// The closest entries to `args` among `pool`, HAProxy's algorithm: count exactly matching
/// leading words, fuzzy-match the rest, keep the best five, drop those far behind the best.
pub fn close_matches<'a>(args: &[String], pool: &'a [Listed<'_>]) -> Vec<&'a Listed<'a>> {
    let length = matched_length(args, pool);
    let mut matches: Vec<(&Listed, i64)> = Vec::new();
    if args.first().map(|a| a.is_empty()).unwrap_or(true) {
        return Vec::new();
    }
    for kw in pool {
        let words = &kw.0;
        let mut idx = 0;
        while idx < length {
            match (words.get(idx), args.get(idx)) {
                (Some(k), Some(a)) if !a.is_empty() && k == a => idx += 1,
                _ => break,
            }
        }
        if idx != length || args.get(idx).map(|a| a.is_empty()).unwrap_or(true) {
            continue;
        }
        let mut wsig = [0u8; 1024];
        let mut lsig = [0u8; 1024];
        let mut totlen = 0i64;
        for a in args.iter().take(PREFIX_NB).skip(idx) {
            if a.is_empty() {
                break;
            }
            update_fingerprint(&mut wsig, a);
            totlen += a.len() as i64;
        }
        for k in words.iter().take(PREFIX_NB).skip(idx) {
            update_fingerprint(&mut lsig, k);
            totlen += k.len() as i64;
        }
        let dist = distance(&wsig, &lsig);
        let worst = if matches.len() < MAX_MATCHES {
            i64::MAX
        } else {
            matches[MAX_MATCHES - 1].1
        };
        if dist < 5 * totlen / 2 && dist < worst {
            if matches.len() == MAX_MATCHES {
                matches.pop();
            }
            let pos = matches
                .iter()
                .position(|(_, d)| *d > dist)
                .unwrap_or(matches.len());
            matches.insert(pos, (kw, dist));
        }
    }
    let best = matches.first().map(|m| m.1).unwrap_or(0);
    let kept: Vec<&Listed> = matches
        .into_iter()
        .take_while(|(_, d)| *d <= 5 * best / 2)
        .map(|(k, _)| k)
        .collect();
    // HAProxy sorts the proposals like the help list (by usage text, which the pool is in).
    pool.iter()
        .filter(|e| kept.iter().any(|k| std::ptr::eq(*k, *e)))
        .collect()
}

/// How many leading words of `args` some command of `pool` matches exactly (HAProxy looks at
/// five at most).
fn matched_length(args: &[String], pool: &[Listed<'_>]) -> usize {
    let mut length = 0;
    for (words, _) in pool {
        for idx in 0..PREFIX_NB {
            match (words.get(idx), args.get(idx)) {
                (Some(k), Some(a)) if !a.is_empty() && k == a => length = length.max(idx + 1),
                _ => break,
            }
        }
    }
    length
}

/// Words of a command line the matcher looks at (`CLI_PREFIX_KW_NB`).
const PREFIX_NB: usize = 5;

/// A command as the lists and the fuzzy matcher see it: its keywords, and its help line as
/// printed (without the newline).
pub type Listed<'a> = (Vec<&'a str>, String);

/// The commands valid at `level`, with `extra` ones (Lua's `core.register_cli`: keywords and
/// usage) among them, in HAProxy's order: sorted by their help line.
fn listing<'a>(level: AccessLevel, extra: &'a [(Vec<String>, String)]) -> Vec<Listed<'a>> {
    let mut all: Vec<Listed<'a>> = visible(level)
        .iter()
        .map(|e| (e.keywords(), e.line()))
        .chain(extra.iter().map(|(path, usage)| {
            (
                path.iter().map(String::as_str).collect(),
                format!("  {usage}"),
            )
        }))
        .collect();
    all.sort_by(|a, b| a.1.cmp(&b.1));
    all
}

fn visible(level: AccessLevel) -> Vec<&'static HelpEntry> {
    ENTRIES.iter().filter(|e| e.level <= level).collect()
}

fn push_base(out: &mut String) {
    for b in BASE {
        out.push_str(&b.line());
        out.push('\n');
    }
}

/// `help [<words>]`: the commands valid at `level` that `words` propose (see [`proposals`]),
/// with `extra` usage lines (Lua's `core.register_cli`) sorted in among them, as HAProxy lists
/// its keywords.
pub fn help(level: AccessLevel, words: &[String], extra: &[(Vec<String>, String)]) -> String {
    let mut out = String::from("The following commands are valid at this level:\n");
    let pool = listing(level, extra);
    for (_, line) in proposals(words, &pool) {
        out.push_str(line);
        out.push('\n');
    }
    push_base(&mut out);
    out
}

/// What HAProxy's `cli_gen_usage_msg` lists for `args` (after `help`, or as an unknown
/// command): the close matches when the words after the exactly matched ones fuzzy-match some
/// commands, else every command that starts with the exactly matched words (all of them when
/// none match: `show` alone lists the `show ...` commands, `help` alone everything).
fn proposals<'a>(args: &[String], pool: &'a [Listed<'a>]) -> Vec<&'a Listed<'a>> {
    let close = close_matches(args, pool);
    if !close.is_empty() {
        return close;
    }
    let length = matched_length(args, pool);
    pool.iter()
        .filter(|(words, _)| words.len() >= length && words[..length] == args[..length])
        .collect()
}

/// The reply to a command harp does not know (or that `level` may not see); `extra` are the
/// Lua commands, which HAProxy lists and proposes like its own.
pub fn unknown(level: AccessLevel, args: &[String], extra: &[(Vec<String>, String)]) -> String {
    let first = args.first().map(|s| s.as_str()).unwrap_or("");
    let pool = listing(level, extra);
    let mut out = format!("Unknown command: '{first}'");
    if first.is_empty() {
        out.push_str(". Please enter one of the following commands only:\n");
    } else {
        out.push_str(", but maybe one of the following ones is a better match:\n");
    }
    for (_, line) in proposals(args, &pool) {
        out.push_str(line);
        out.push('\n');
    }
    push_base(&mut out);
    out
}

/// `add server help`: the server keywords harp accepts on `add server`.
pub fn add_server_help() -> String {
    let mut out = String::from("List of keywords supported for dynamic server:\n");
    for k in ADD_SERVER_KEYWORDS {
        out.push_str(k);
        out.push('\n');
    }
    out
}

/// Keywords `add server` accepts (HAProxy's order, harp's subset).
pub const ADD_SERVER_KEYWORDS: &[&str] = &[
    "backup",
    "disabled",
    "id",
    "maxconn",
    "maxqueue",
    "no-backup",
    "on-marked-down",
    "slowstart",
    "weight",
    "addr",
    "check",
    "rise",
    "fall",
    "inter",
    "fastinter",
    "downinter",
    "port",
];

#[cfg(test)]
mod tests {
    use super::*;

    const HAPROXY_HELP: &str = include_str!("testdata/haproxy-help.txt");

    fn haproxy_entries() -> Vec<(String, Vec<String>)> {
        HAPROXY_HELP
            .lines()
            .skip(1)
            .map(|l| {
                let kw = keywords_of(l.trim_start())
                    .into_iter()
                    .take_while(|w| *w != ":" && !w.ends_with(':'))
                    .map(String::from)
                    .collect();
                (l.to_string(), kw)
            })
            .collect()
    }

    #[test]
    fn harp_lines_are_haproxy_lines() {
        let lines: Vec<&str> = HAPROXY_HELP.lines().collect();
        for e in ENTRIES.iter().chain(BASE) {
            assert!(lines.contains(&e.line().as_str()), "{:?}", e.line());
        }
    }

    #[test]
    fn fuzzy_matching_reproduces_transcript_on_haproxy_list() {
        // Run the algorithm on HAProxy's full list (minus the base commands) with leaked entries.
        let entries: Vec<HelpEntry> = haproxy_entries()
            .into_iter()
            .filter(|(_, k)| {
                !matches!(
                    k.first().map(|s| s.as_str()),
                    Some("help" | "prompt" | "quit")
                )
            })
            .map(|(l, _)| {
                let l: &'static str = Box::leak(l.into_boxed_str());
                let (u, d) = l.trim_start().split_at(40.min(l.trim_start().len()));
                HelpEntry {
                    usage: u.trim_end(),
                    desc: d.trim_start_matches(": "),
                    level: User,
                }
            })
            .collect();
        let mut pool: Vec<Listed> = entries.iter().map(|e| (e.keywords(), e.line())).collect();
        pool.sort_by(|a, b| a.1.cmp(&b.1));
        let got: Vec<String> = close_matches(&["frobnicate".to_string()], &pool)
            .iter()
            .map(|e| e.0.join(" "))
            .collect();
        // HAProxy 3.2 proposes disable frontend, echo, enable frontend, operator, trace: ties
        // depend on its keyword registration order, which a sorted list cannot reproduce; check
        // the shape (sorted, at most five, the closest one present).
        assert!(
            got.len() <= 5 && got.contains(&"trace".to_string()),
            "{got:?}"
        );
        assert!(got.contains(&"echo".to_string()), "{got:?}");
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
    }

    #[test]
    fn unknown_and_help_shapes() {
        let u = unknown(Admin, &["frobnicate".into()], &[]);
        assert!(u.starts_with(
            "Unknown command: 'frobnicate', but maybe one of the following ones is a better match:\n"
        ));
        assert!(u.ends_with("  quit                                    : disconnect\n"));
        let h = help(User, &[], &[]);
        assert!(!h.contains("set server"));
        assert!(h.contains("show stat"));
        let h = help(Admin, &["show".into()], &[]);
        assert!(h.contains("show info") && !h.contains("set server"));
        // a misspelt word is fuzzy-matched after `help` too, as HAProxy's matcher does
        let h = help(Admin, &["shwo".into(), "info".into()], &[]);
        assert!(
            h.contains("  show info") && !h.contains("  add server"),
            "{h}"
        );
        // Lua's commands are proposed like the built-in ones
        let lua = [(
            vec!["greet".to_string(), "all".to_string()],
            "greet all : says hello".to_string(),
        )];
        let u = unknown(User, &["greet".into(), "al".into()], &lua);
        assert!(u.contains("\n  greet all : says hello\n"), "{u}");
        let u = unknown(User, &[], &lua);
        assert!(u.contains("\n  greet all : says hello\n"), "{u}");
        // words that start commands without a close match list those commands (HAProxy's
        // full dump): `greet` alone, `enable` alone
        let u = unknown(User, &["greet".into()], &lua);
        assert!(u.contains("\n  greet all : says hello\n"), "{u}");
        let u = unknown(Admin, &["enable".into()], &lua);
        assert!(
            u.contains("\n  enable frontend <frontend>") && !u.contains("greet"),
            "{u}"
        );
        assert!(add_server_help().starts_with("List of keywords supported for dynamic server:\n"));
    }
}
