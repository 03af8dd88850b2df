//! Splits configuration text into lines of words, the way HAProxy's `parse_line()` does.
//!
//! Rules (HAProxy 3.x, section 2.2 "Quoting and escaping" of its configuration manual):
//! - words are separated by spaces and tabs; `#` outside quotes starts a comment;
//! - a backslash escapes ` `, `#`, `\`, `'`, `"` and `$`; `\t`, `\n`, `\r` and `\xNN` give the
//!   control character; any other backslash (including one at the end of a line) is kept as is:
//!   HAProxy has no line continuation, and neither has harp;
//! - double quotes ("weak quoting") keep spaces, `#` and `'`, still interpret escapes and expand
//!   environment variables `$NAME`, `${NAME}` and `${NAME-default}`;
//! - single quotes ("strong quoting") keep everything as written, escapes and `$` included;
//! - quoted and unquoted parts next to each other form one word (`"a b"'c'` is `a bc`); an empty
//!   pair of quotes is an empty word.

/// One non-empty configuration line split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in its file.
    pub number: usize,
    /// The words, quotes and escapes resolved, variables expanded. Never empty.
    pub words: Vec<String>,
}

/// Splits a whole file. Blank and comment-only lines are skipped; a line that cannot be split
/// (unmatched quote, bad `\x` escape) is returned as `Err(message)` with its line number so the
/// caller can report it and carry on with the next line.
pub fn lex(text: &str) -> Vec<(usize, Result<Line, String>)> {
    lex_with_env(text, &|name| std::env::var(name).ok())
}

/// [`lex`] with an explicit environment lookup (tests use it to stay independent of the process
/// environment).
pub fn lex_with_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(usize, Result<Line, String>)> {
    let mut out = Vec::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let number = idx + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match split_line(raw, env) {
            Ok(words) if words.is_empty() => {}
            Ok(words) => out.push((number, Ok(Line { number, words }))),
            Err(e) => out.push((number, Err(e))),
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Splits one line into words (see the module doc for the rules).
pub fn split_line(line: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    // A word exists once any character or quote pair was seen (so `""` gives an empty word).
    let mut in_word = false;
    let mut quote = Quote::None;
    let mut quote_start = 0usize;
    let mut i = 0usize;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Quote::Single => {
                if c == '\'' {
                    quote = Quote::None;
                } else {
                    cur.push(c);
                }
                i += 1;
            }
            Quote::None | Quote::Double => {
                if quote == Quote::None && (c == ' ' || c == '\t') {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                    i += 1;
                    continue;
                }
                if quote == Quote::None && c == '#' {
                    break;
                }
                in_word = true;
                match c {
                    '\\' => {
                        i += escape(&chars, i, &mut cur)?;
                    }
                    '\'' if quote == Quote::None => {
                        quote = Quote::Single;
                        quote_start = i;
                        i += 1;
                    }
                    '"' => {
                        if quote == Quote::Double {
                            quote = Quote::None;
                        } else {
                            quote = Quote::Double;
                            quote_start = i;
                        }
                        i += 1;
                    }
                    '$' if quote == Quote::Double => {
                        i += expand_var(&chars, i, env, &mut cur)?;
                    }
                    _ => {
                        cur.push(c);
                        i += 1;
                    }
                }
            }
        }
    }
    if quote != Quote::None {
        return Err(format!("unmatched quote at position {}", quote_start + 1));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Handles a backslash at `chars[i]`; returns how many characters were consumed.
fn escape(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let Some(&next) = chars.get(i + 1) else {
        // HAProxy keeps a trailing backslash: there is no line continuation.
        out.push('\\');
        return Ok(1);
    };
    match next {
        ' ' | '#' | '\\' | '\'' | '"' | '$' => {
            out.push(next);
            Ok(2)
        }
        't' => {
            out.push('\t');
            Ok(2)
        }
        'n' => {
            out.push('\n');
            Ok(2)
        }
        'r' => {
            out.push('\r');
            Ok(2)
        }
        'x' => {
            let hex: String = chars.iter().skip(i + 2).take(2).collect();
            match (hex.len() == 2)
                .then(|| u8::from_str_radix(&hex, 16).ok())
                .flatten()
            {
                Some(b) => {
                    out.push(char::from(b));
                    Ok(4)
                }
                None => Err(format!(
                    "truncated or invalid hexadecimal sequence at position {}",
                    i + 1
                )),
            }
        }
        _ => {
            out.push('\\');
            Ok(1)
        }
    }
}

/// Expands `$NAME`, `${NAME}` or `${NAME-default}` at `chars[i]` (inside double quotes); returns
/// how many characters were consumed. An unset variable expands to nothing, as in HAProxy.
fn expand_var(
    chars: &[char],
    i: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<usize, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(i + 1) == Some(&'{') {
        let Some(close) = chars[i + 2..].iter().position(|&c| c == '}') else {
            return Err(format!(
                "missing closing '}}' in variable at position {}",
                i + 1
            ));
        };
        let inner: String = chars[i + 2..i + 2 + close].iter().collect();
        let (name, default) = match inner.split_once('-') {
            Some((n, d)) => (n.to_string(), Some(d.to_string())),
            None => (inner.clone(), None),
        };
        if name.is_empty()
            || !name.chars().all(is_name)
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(format!(
                "invalid variable name '{name}' at position {}",
                i + 1
            ));
        }
        match env(&name) {
            Some(v) if !(v.is_empty() && default.is_some()) => out.push_str(&v),
            _ => out.push_str(default.as_deref().unwrap_or("")),
        }
        return Ok(close + 3);
    }
    let len = chars[i + 1..].iter().take_while(|&&c| is_name(c)).count();
    if len == 0 || chars[i + 1].is_ascii_digit() {
        // HAProxy refuses a `$` that starts no name (`\$` is a literal one)
        return Err(format!(
            "forbidden first char in environment variable name at position {}",
            i + 2
        ));
    }
    let name: String = chars[i + 1..i + 1 + len].iter().collect();
    if let Some(v) = env(&name) {
        out.push_str(&v);
    }
    Ok(len + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("127.0.0.1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn words(s: &str) -> Vec<String> {
        split_line(s, &env).unwrap()
    }

    fn try_words(s: &str) -> Result<Vec<String>, String> {
        split_line(s, &env)
    }

    #[test]
    fn splits_on_spaces_and_tabs() {
        assert_eq!(
            words("  server\ts1   127.0.0.1:80 "),
            ["server", "s1", "127.0.0.1:80"]
        );
    }

    #[test]
    fn comments_end_the_line() {
        assert_eq!(words("bind :80 # listen"), ["bind", ":80"]);
        assert_eq!(words("# all comment"), Vec::<String>::new());
        assert_eq!(words("a#b"), ["a"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(words(r"a\ b \#c \\ \' \x41"), ["a b", "#c", "\\", "'", "A"]);
        assert_eq!(words(r"a\qb"), [r"a\qb"]);
        assert_eq!(words(r"tab\tx"), ["tab\tx"]);
        assert!(split_line(r"\xZZ", &env).is_err());
        assert!(split_line(r"\x4", &env).is_err());
    }

    #[test]
    fn trailing_backslash_is_literal_no_continuation() {
        let lines = lex_with_env("bind :80 \\\nserver x\n", &env);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].1.as_ref().unwrap().words, ["bind", ":80", "\\"]);
        assert_eq!(lines[1].1.as_ref().unwrap().number, 2);
    }

    #[test]
    fn quotes() {
        assert_eq!(
            words(r#""a b" 'c d' "e#f" 'g\h'"#),
            ["a b", "c d", "e#f", r"g\h"]
        );
        assert_eq!(words(r#""a"'b'c"#), ["abc"]);
        assert_eq!(words(r#"x "" y"#), ["x", "", "y"]);
        assert_eq!(words(r#""it's""#), ["it's"]);
        assert_eq!(words(r#""q\"q""#), ["q\"q"]);
    }

    #[test]
    fn unmatched_quotes_are_errors() {
        assert!(split_line("a \"b", &env)
            .unwrap_err()
            .contains("unmatched quote"));
        assert!(split_line("a 'b", &env)
            .unwrap_err()
            .contains("unmatched quote"));
    }

    #[test]
    fn env_expansion_only_in_double_quotes() {
        assert_eq!(words(r#""${HOST}:80""#), ["127.0.0.1:80"]);
        assert_eq!(words(r#""$HOST:80""#), ["127.0.0.1:80"]);
        assert_eq!(words("${HOST}"), ["${HOST}"]);
        assert_eq!(words("'${HOST}'"), ["${HOST}"]);
        assert_eq!(words(r#""${NOPE}x""#), ["x"]);
        assert_eq!(words(r#""${NOPE-dflt}""#), ["dflt"]);
        assert_eq!(words(r#""${EMPTY-dflt}""#), ["dflt"]);
        assert_eq!(words(r#""\$HOST""#), ["$HOST"]);
        assert!(try_words(r#""a$ b""#)
            .expect_err("a lone $")
            .contains("forbidden first char in environment variable name"));
        assert!(try_words(r#""c$1""#).is_err());
        assert!(try_words(r#""e$""#).is_err());
        assert!(split_line(r#""${HOST""#, &env).is_err());
    }

    #[test]
    fn line_numbers_and_crlf() {
        let lines = lex_with_env("global\r\n\n  # c\n  maxconn 10\r\n", &env);
        let got: Vec<_> = lines
            .iter()
            .map(|(n, l)| (*n, l.clone().unwrap().words))
            .collect();
        assert_eq!(
            got,
            [
                (1, vec!["global".to_string()]),
                (4, vec!["maxconn".into(), "10".into()])
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = lex(&s);
        }

        #[test]
        fn never_panics_on_bytes(b in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = lex(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn never_panics_on_syntax_chars(s in "[ a\\\\'\"#$x{}\\-\t\n0-9]{0,60}") {
            let _ = lex_with_env(&s, &env);
        }
    }
}
