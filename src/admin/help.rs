//! `help` and the `Unknown command` reply, in HAProxy's layout: the usage column padded to 40
//! characters, commands sorted, `help`/`prompt`/`quit` last; unknown commands get HAProxy's fuzzy
//! matches (word fingerprint distance, best five).

/// One help entry: its keywords (for matching) and its usage line.
struct Entry {
    words: &'static [&'static str],
    usage: &'static str,
    desc: &'static str,
}

const fn e(words: &'static [&'static str], usage: &'static str, desc: &'static str) -> Entry {
    Entry { words, usage, desc }
}

/// The commands harp implements, in HAProxy's help order (usage texts are HAProxy's).
const ENTRIES: &[Entry] = &[
    e(
        &["add", "server"],
        "add server <bk>/<srv>",
        "create a new server",
    ),
    e(
        &["del", "server"],
        "del server <bk>/<srv>",
        "remove a dynamically added server",
    ),
    e(
        &["disable", "agent"],
        "disable agent",
        "disable agent checks",
    ),
    e(
        &["disable", "health"],
        "disable health",
        "disable health checks",
    ),
    e(
        &["disable", "server"],
        "disable server (DEPRECATED)",
        "disable a server for maintenance (use 'set server' instead)",
    ),
    e(&["echo"], "echo <text>", "print text to the output"),
    e(&["enable", "agent"], "enable agent", "enable agent checks"),
    e(
        &["enable", "health"],
        "enable health",
        "enable health checks",
    ),
    e(
        &["enable", "server"],
        "enable server  (DEPRECATED)",
        "enable a disabled server (use 'set server' instead)",
    ),
    e(
        &["get", "weight"],
        "get weight <bk>/<srv>",
        "report a server's current weight",
    ),
    e(
        &["operator"],
        "operator",
        "lower the level of the current CLI session to operator",
    ),
    e(
        &["set", "maxconn", "server"],
        "set maxconn server <bk>/<srv>",
        "change a server's maxconn setting",
    ),
    e(
        &["set", "server"],
        "set server <bk>/<srv> [opts]",
        "change a server's state, weight, address or ssl",
    ),
    e(
        &["set", "weight"],
        "set weight <bk>/<srv>  (DEPRECATED)",
        "change a server's weight (use 'set server' instead)",
    ),
    e(
        &["show", "backend"],
        "show backend",
        "list backends in the current running config",
    ),
    e(
        &["show", "cli", "level"],
        "show cli level",
        "display the level of the current CLI session",
    ),
    e(
        &["show", "info"],
        "show info [desc|json|typed|float]*",
        "report information about the running process",
    ),
    e(
        &["show", "servers", "state"],
        "show servers state [<backend>]",
        "dump volatile server information (all or for a single backend)",
    ),
    e(
        &["show", "stat"],
        "show stat [desc|json|no-maint|typed|up]*",
        "report counters for each proxy and server",
    ),
    e(
        &["show", "version"],
        "show version",
        "show version of the current process",
    ),
    e(
        &["shutdown", "sessions", "server"],
        "shutdown sessions server <bk>/<srv>",
        "kill sessions on a server",
    ),
    e(
        &["user"],
        "user",
        "lower the level of the current CLI session to user",
    ),
];

/// Always listed last, as HAProxy does.
const TAIL: &[Entry] = &[
    e(
        &["help"],
        "help [<command>]",
        "list matching or all commands",
    ),
    e(
        &["prompt"],
        "prompt [help | n | i | p | timed ]*",
        "toggle interactive mode with prompt",
    ),
    e(&["quit"], "quit", "disconnect"),
];

fn line(out: &mut String, en: &Entry) {
    out.push_str(&format!("  {:<40}: {}\n", en.usage, en.desc));
}

/// The full `help` reply.
pub fn full() -> String {
    let mut out = String::from("The following commands are valid at this level:\n");
    for en in ENTRIES.iter().chain(TAIL) {
        line(&mut out, en);
    }
    out
}

/// `help <words>`: the entries starting with those words, else the full list.
pub fn help(words: &[String]) -> String {
    if words.is_empty() {
        return full();
    }
    let hits: Vec<&Entry> = ENTRIES
        .iter()
        .chain(TAIL)
        .filter(|en| words.iter().zip(en.words.iter()).all(|(a, b)| a == b))
        .collect();
    if hits.is_empty() {
        return full();
    }
    let mut out = String::from("The following commands are valid at this level:\n");
    for en in hits {
        line(&mut out, en);
    }
    out
}

/// HAProxy's `update_word_fingerprint`: counts letter-class transitions (a-z, digit, other,
/// begin/end) in a 32x32 matrix.
fn fingerprint(fp: &mut [u8; 1024], word: &str) {
    let mut from = 28usize;
    for b in word.bytes() {
        let to = match b.to_ascii_lowercase() {
            c @ b'a'..=b'z' => (c - b'a' + 1) as usize,
            b'0'..=b'9' => 27,
            _ => 28,
        };
        fp[from * 32 + to] = fp[from * 32 + to].wrapping_add(1);
        from = to;
    }
    fp[from * 32 + 28] = fp[from * 32 + 28].wrapping_add(1);
}

fn distance(a: &[u8; 1024], b: &[u8; 1024]) -> i32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (*x as i32 - *y as i32).abs())
        .sum()
}

/// The reply to an unknown command: HAProxy's wording, its best fuzzy matches (or the full list
/// when nothing is close), then `help`/`prompt`/`quit`.
pub fn unknown(words: &[String]) -> String {
    let first = words.first().map(String::as_str).unwrap_or("");
    // Number of leading words that exactly match some command.
    let length = ENTRIES
        .iter()
        .map(|en| {
            en.words
                .iter()
                .zip(words.iter())
                .take_while(|(a, b)| **a == b.as_str())
                .count()
        })
        .max()
        .unwrap_or(0);
    let mut out = format!("Unknown command: '{first}'");
    if length == 0 && first.is_empty() {
        out.push_str(". Please enter one of the following commands only:\n");
    } else {
        out.push_str(", but maybe one of the following ones is a better match:\n");
    }
    let mut matches: Vec<(i32, usize)> = Vec::new();
    if let Some(w) = words.get(length).filter(|w| !w.is_empty()) {
        let _ = w;
        let mut word_sig = [0u8; 1024];
        let mut totlen_in = 0usize;
        for w in words.iter().skip(length).take(5) {
            fingerprint(&mut word_sig, w);
            totlen_in += w.len();
        }
        for (i, en) in ENTRIES.iter().enumerate() {
            if en.words.len() <= length || en.words[..length] != words[..length] {
                continue;
            }
            let mut sig = [0u8; 1024];
            let mut totlen = totlen_in;
            for kw in &en.words[length..] {
                fingerprint(&mut sig, kw);
                totlen += kw.len();
            }
            let dist = distance(&word_sig, &sig);
            if (dist as usize) < 5 * totlen / 2 {
                matches.push((dist, i));
            }
        }
        matches.sort_by_key(|m| m.0);
        matches.truncate(5);
        if let Some(best) = matches.first().map(|m| m.0) {
            matches.retain(|m| m.0 <= 5 * best / 2);
        }
    }
    if matches.is_empty() {
        for en in ENTRIES {
            line(&mut out, en);
        }
    } else {
        let mut idx: Vec<usize> = matches.iter().map(|m| m.1).collect();
        idx.sort_unstable();
        for i in idx {
            line(&mut out, &ENTRIES[i]);
        }
    }
    for en in TAIL {
        line(&mut out, en);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn help_layout_matches_haproxy() {
        let h = full();
        assert!(h.starts_with("The following commands are valid at this level:\n"));
        assert!(h.contains("  add server <bk>/<srv>                   : create a new server\n"));
        assert!(h.contains(
            "  get weight <bk>/<srv>                   : report a server's current weight\n"
        ));
        assert!(h.ends_with("  quit                                    : disconnect\n"));
        assert!(h.contains(
            "  show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server\n"
        ));
    }

    #[test]
    fn unknown_offers_close_matches() {
        let r = unknown(&w("frobnicate"));
        assert!(r.starts_with(
            "Unknown command: 'frobnicate', but maybe one of the following ones is a better match:\n"
        ));
        assert!(r.ends_with("  quit                                    : disconnect\n"));
        let r = unknown(&w("show stats"));
        assert!(r.contains("show stat "), "{r}");
        assert!(!r.contains("add server"), "{r}");
        let r = unknown(&w("get wieght"));
        assert!(r.contains("get weight"), "{r}");
    }

    #[test]
    fn help_with_words_filters() {
        let h = help(&w("show"));
        assert!(h.contains("show info"));
        assert!(!h.contains("add server"));
    }
}
