//! The text converters TCP configs route with (`req.ssl_sni,field(1,.)`, `regsub`, `word`):
//! HAProxy's `field`, `word`, `regsub`, `ltrim`, `rtrim`, `bytes`, `hex` and `base64`, with
//! its argument checks and its edge cases (a field past the last is no sample; `bytes` waits
//! for content it lacks, as HAProxy 2.9 and later do: 2.6 to 2.8 cut at once).

use regex::bytes::{Regex, RegexBuilder};

/// One text converter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextConv {
    /// `field(<index>,<delimiters>[,<count>])`: the index-th field (from the end when
    /// negative), `count` fields long (0: all the way to the end the index counts from).
    Field(Split),
    /// `word(<index>,<delimiters>[,<count>])`: the same, runs of delimiters counting as one.
    Word(Split),
    /// `regsub(<regex>,<subst>[,<flags>])`: the first match (every one with `g`) replaced.
    Regsub(Regsub),
    /// `ltrim(<chars>)`: those characters removed from the start.
    Ltrim(Vec<u8>),
    /// `rtrim(<chars>)`: ... from the end.
    Rtrim(Vec<u8>),
    /// `bytes(<offset>[,<length>])`: a slice of the input, as raw bytes.
    Bytes(i64, Option<i64>),
    /// `hex`: the bytes as upper-case hex digits.
    Hex,
    /// `base64`: the bytes in base64, padded.
    Base64,
}

/// Where `field` and `word` cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// 1-based, negative from the end, never 0.
    pub index: i64,
    /// Any of these bytes delimits.
    pub delims: Vec<u8>,
    /// How many fields (0: all the rest).
    pub count: i64,
}

/// A compiled `regsub`.
#[derive(Debug, Clone)]
pub struct Regsub {
    re: Regex,
    /// The replacement in the regex crate's syntax (`\1` became `${1}`); `None` when it ends
    /// with a lone backslash, which HAProxy's `exp_replace` fails on (no sample).
    with: Option<Vec<u8>>,
    global: bool,
}

impl PartialEq for Regsub {
    fn eq(&self, o: &Regsub) -> bool {
        self.re.as_str() == o.re.as_str() && self.with == o.with && self.global == o.global
    }
}

impl Eq for Regsub {}

/// The keywords, for messages.
pub const NAMES: &[&str] = &[
    "field", "word", "regsub", "ltrim", "rtrim", "bytes", "hex", "base64",
];

/// Splits converter arguments as HAProxy's `make_arg_list` does: at commas outside quotes
/// (HAProxy's documentation quotes regexes so: `regsub('(a|b)+','x')`); single quotes keep
/// everything, double quotes and bare text take the escapes `\\`, `\'`, `\"`, `\ `, `\r`,
/// `\n`, `\t` (any other backslash stays, with what follows).
pub fn split_args(args: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = args.chars().peekable();
    let mut quote = None;
    while let Some(c) = chars.next() {
        let arg = out.len() - 1;
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), c) => out[arg].push(c),
            (_, '\\') => {
                let escaped = match chars.peek() {
                    Some(&e @ ('\\' | '\'' | '"' | ' ')) => Some(e),
                    Some('r') => Some('\r'),
                    Some('n') => Some('\n'),
                    Some('t') => Some('\t'),
                    _ => None,
                };
                match escaped {
                    Some(e) => {
                        chars.next();
                        out[arg].push(e);
                    }
                    None => out[arg].push('\\'),
                }
            }
            (Some('"'), '"') => quote = None,
            (Some(_), c) => out[arg].push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, ',') => out.push(String::new()),
            (None, c) => out[arg].push(c),
        }
    }
    out
}

/// An integer argument at `pos` (1-based), as HAProxy's argument parser reports one.
fn int_arg(name: &str, pos: usize, v: &str) -> Result<i64, String> {
    // HAProxy's read_int64 must read it whole: no blank, clamped
    let (n, used) = crate::rules::pattern::read_int64(v.as_bytes());
    if v.is_empty() || used != v.len() {
        return Err(format!("invalid arg {pos} in converter '{name}' : failed to parse '{v}' as type 'integer' at position {pos}"));
    }
    Ok(n)
}

impl TextConv {
    /// Parses `name(args)`; `None` when `name` is not one of these converters.
    pub fn parse(name: &str, args: Option<&str>) -> Option<Result<TextConv, String>> {
        if !NAMES.contains(&name) {
            return None;
        }
        Some(Self::parse_known(name, args))
    }

    fn parse_known(name: &str, args: Option<&str>) -> Result<TextConv, String> {
        let list = args.map(split_args).unwrap_or_default();
        let (min, max) = match name {
            "field" | "word" => (2, 3),
            "regsub" => (2, 3),
            "ltrim" | "rtrim" => (1, 1),
            "bytes" => (1, 2),
            _ => (0, 0),
        };
        // `ltrim()` trims nothing: an empty argument is one there
        let given = match args {
            Some(a) if !a.is_empty() || (min == 1 && max == 1) => list.len(),
            _ => 0,
        };
        if given < min {
            return Err(format!(
                "converter '{name}' : missing arg {} in converter '{name}'",
                given + 1
            ));
        }
        if given > max {
            return Err(if max == 0 {
                format!("converter '{name}' does not support any args")
            } else {
                format!(
                    "invalid args in converter '{name}' : end of arguments expected at position {}",
                    max + 1
                )
            });
        }
        let invalid = |e: &str| format!("invalid args in converter '{name}' : {e}");
        Ok(match name {
            "field" | "word" => {
                let index = int_arg(name, 1, &list[0])?;
                if index == 0 {
                    return Err(invalid("Unexpected value 0 for index"));
                }
                if list[1].is_empty() {
                    return Err(invalid("Empty separators list"));
                }
                let count = match list.get(2) {
                    Some(c) => int_arg(name, 3, c)?,
                    None => 1,
                };
                let s = Split {
                    index,
                    delims: list[1].clone().into_bytes(),
                    count,
                };
                if name == "field" {
                    TextConv::Field(s)
                } else {
                    TextConv::Word(s)
                }
            }
            "regsub" => {
                let flags = list.get(2).map_or("", String::as_str);
                let mut icase = false;
                let mut global = false;
                for f in flags.chars() {
                    match f {
                        'i' => icase = true,
                        'g' => global = true,
                        other => {
                            return Err(invalid(&format!(
                                "invalid regex flag '{other}', only 'i' and 'g' are supported"
                            )))
                        }
                    }
                }
                let re = RegexBuilder::new(&list[0])
                    .unicode(false)
                    .case_insensitive(icase)
                    .build()
                    .map_err(|e| invalid(&format!("regex '{}' is invalid: {e}", list[0])))?;
                TextConv::Regsub(Regsub {
                    re,
                    with: replacement(&list[1]),
                    global,
                })
            }
            "ltrim" => TextConv::Ltrim(list[0].clone().into_bytes()),
            "rtrim" => TextConv::Rtrim(list[0].clone().into_bytes()),
            "bytes" => {
                let off = int_arg(name, 1, &list[0])?;
                let len = list.get(1).map(|l| int_arg(name, 2, l)).transpose()?;
                TextConv::Bytes(off, len)
            }
            "hex" => TextConv::Hex,
            _ => TextConv::Base64,
        })
    }

    /// Its keyword.
    pub fn name(&self) -> &'static str {
        match self {
            TextConv::Field(_) => "field",
            TextConv::Word(_) => "word",
            TextConv::Regsub(_) => "regsub",
            TextConv::Ltrim(_) => "ltrim",
            TextConv::Rtrim(_) => "rtrim",
            TextConv::Bytes(..) => "bytes",
            TextConv::Hex => "hex",
            TextConv::Base64 => "base64",
        }
    }

    /// Converts the text `t`; `None`: no sample (a field that is not there, `bytes` past the
    /// input while more may come: `final_` says none will).
    pub fn apply(&self, t: &[u8], final_: bool) -> Option<Vec<u8>> {
        Some(match self {
            TextConv::Field(s) => t[field(t, s)?].to_vec(),
            TextConv::Word(s) => t[word(t, s)?].to_vec(),
            TextConv::Regsub(r) => {
                let with = &r.with.as_ref()?[..];
                if r.global {
                    r.re.replace_all(t, with).into_owned()
                } else {
                    r.re.replace(t, with).into_owned()
                }
            }
            TextConv::Ltrim(chars) => {
                let from = t.iter().position(|c| !chars.contains(c)).unwrap_or(t.len());
                t[from..].to_vec()
            }
            TextConv::Rtrim(chars) => {
                let to = t
                    .iter()
                    .rposition(|c| !chars.contains(c))
                    .map_or(0, |i| i + 1);
                t[..to].to_vec()
            }
            TextConv::Bytes(off, len) => {
                let off = usize::try_from(*off).ok()?;
                if off >= t.len() {
                    return final_.then(Vec::new);
                }
                let rest = t.len() - off;
                let take = match len {
                    None => rest,
                    Some(l) => {
                        let l = usize::try_from(*l).ok()?;
                        if l > rest && !final_ {
                            return None;
                        }
                        l.min(rest)
                    }
                };
                t[off..off + take].to_vec()
            }
            TextConv::Hex => t
                .iter()
                .flat_map(|b| format!("{b:02X}").into_bytes())
                .collect(),
            TextConv::Base64 => base64(t),
        })
    }
}

/// A `regsub` replacement as HAProxy's `exp_replace` reads it, in the regex crate's syntax:
/// `\0`..`\9` are the groups, `\xHH` a byte, a backslash before anything else that character,
/// a literal `$` escaped; `None` when it ends with a lone backslash.
pub(crate) fn replacement(subst: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let b = subst.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            push_literal(&mut out, b[i]);
            i += 1;
            continue;
        }
        let next = *b.get(i + 1)?;
        if next.is_ascii_digit() {
            out.extend_from_slice(format!("${{{}}}", next - b'0').as_bytes());
            i += 2;
        } else if next == b'x' {
            match subst
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    push_literal(&mut out, byte);
                    i += 4;
                }
                None => {
                    push_literal(&mut out, b'x');
                    i += 2;
                }
            }
        } else {
            push_literal(&mut out, next);
            i += 2;
        }
    }
    Some(out)
}

/// A replacement byte taken as it is (`$` doubled for the regex crate).
fn push_literal(out: &mut Vec<u8>, c: u8) {
    if c == b'$' {
        out.push(b'$');
    }
    out.push(c);
}

/// The range of `field(<index>,<delims>[,<count>])` in `t`, as HAProxy's `sample_conv_field`
/// walks it; `None` when the field is not there.
fn field(t: &[u8], s: &Split) -> Option<std::ops::Range<usize>> {
    let delim = |b: u8| s.delims.contains(&b);
    let mut count = s.count;
    if s.index > 0 {
        let (mut n, mut start, mut end) = (1, 0, 0);
        while end < t.len() {
            if delim(t[end]) {
                if n == s.index {
                    if count == 1 {
                        return Some(start..end);
                    }
                    if count > 1 {
                        count -= 1;
                    }
                } else {
                    start = end + 1;
                    n += 1;
                }
            }
            end += 1;
        }
        (n == s.index).then_some(start..end)
    } else {
        let (mut n, mut start, mut end) = (-1, t.len(), t.len());
        while start > 0 {
            if delim(t[start - 1]) {
                if n == s.index {
                    if count == 1 {
                        return Some(start..end);
                    }
                    if count > 1 {
                        count -= 1;
                    }
                } else {
                    end = start - 1;
                    n -= 1;
                }
            }
            start -= 1;
        }
        (n == s.index).then_some(start..end)
    }
}

/// The range of `word(<index>,<delims>[,<count>])` in `t` (runs of delimiters are one), as
/// HAProxy's `sample_conv_word` walks it.
fn word(t: &[u8], s: &Split) -> Option<std::ops::Range<usize>> {
    let delim = |b: u8| s.delims.contains(&b);
    let mut count = s.count;
    let (mut n, mut inword) = (0i64, false);
    if s.index > 0 {
        let (mut start, mut end) = (0, 0);
        while end < t.len() {
            let sep = delim(t[end]);
            if !inword {
                if !sep {
                    if n != s.index {
                        n += 1;
                        start = end;
                    }
                    inword = true;
                }
            } else if sep {
                if n == s.index {
                    if count == 1 {
                        return Some(start..end);
                    }
                    if count > 1 {
                        count -= 1;
                    }
                }
                inword = false;
            }
            end += 1;
        }
        (n == s.index).then_some(start..end)
    } else {
        let (mut start, mut end) = (t.len(), t.len());
        while start > 0 {
            let sep = delim(t[start - 1]);
            if !inword {
                if !sep {
                    if n != s.index {
                        n -= 1;
                        end = start;
                    }
                    inword = true;
                }
            } else if sep {
                if n == s.index {
                    if count == 1 {
                        return Some(start..end);
                    }
                    if count > 1 {
                        count -= 1;
                    }
                }
                inword = false;
            }
            start -= 1;
        }
        (n == s.index).then_some(start..end)
    }
}

/// Standard base64 with padding.
fn base64(t: &[u8]) -> Vec<u8> {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(t.len().div_ceil(3) * 4);
    for chunk in t.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(conv: &str, args: &str, input: &str) -> Option<String> {
        let c = TextConv::parse(conv, Some(args))
            .expect("known")
            .expect(conv);
        c.apply(input.as_bytes(), true)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn fields_and_words_as_haproxy_cuts_them() {
        assert_eq!(
            run("field", "1,.", "api.example.com").as_deref(),
            Some("api")
        );
        assert_eq!(
            run("field", "2,.", "api.example.com").as_deref(),
            Some("example")
        );
        assert_eq!(
            run("field", "-1,.", "api.example.com").as_deref(),
            Some("com")
        );
        assert_eq!(
            run("field", "2,.,0", "api.example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            run("field", "1,.,2", "api.example.com").as_deref(),
            Some("api.example")
        );
        // from the end, the count extends leftwards
        assert_eq!(run("field", "-2,.,2", "a.b.c").as_deref(), Some("a.b"));
        assert_eq!(run("field", "4,.", "a.b.c"), None, "past the last field");
        assert_eq!(
            run("field", "2,.", "a..c").as_deref(),
            Some(""),
            "an empty field"
        );
        assert_eq!(
            run("word", "2,.", "a..c").as_deref(),
            Some("c"),
            "runs are one"
        );
        assert_eq!(run("word", "1,/", "/x/y/").as_deref(), Some("x"));
        assert_eq!(run("word", "-1,/", "/x/y/").as_deref(), Some("y"));
        assert_eq!(run("word", "1,/,0", "/x/y/").as_deref(), Some("x/y/"));
        assert_eq!(run("word", "3,/", "/x/y/"), None);
    }

    #[test]
    fn regsub_trims_slices_and_encodings() {
        assert_eq!(
            run("regsub", "^www\\.,", "www.example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(run("regsub", "o,0,g", "foo").as_deref(), Some("f00"));
        assert_eq!(run("regsub", "O,0,i", "foo").as_deref(), Some("f0o"));
        assert_eq!(
            run("regsub", "(\\w+)\\.(\\w+),\\2-\\1", "a.b").as_deref(),
            Some("b-a")
        );
        assert_eq!(
            run("regsub", "'x,y',z", "ax,yb").as_deref(),
            Some("azb"),
            "a quoted comma"
        );
        assert_eq!(
            run("regsub", r#""\\.",-"#, "a.b").as_deref(),
            Some("a-b"),
            "escapes in double quotes"
        );
        assert_eq!(
            run("regsub", r"b,\x41\\\$", "abc").as_deref(),
            Some("aA\\$c")
        );
        assert_eq!(
            run("regsub", r"b,x\", "abc"),
            None,
            "a lone trailing backslash"
        );
        assert_eq!(run("ltrim", "", "ab").as_deref(), Some("ab"));
        assert_eq!(run("ltrim", "/", "//a/").as_deref(), Some("a/"));
        assert_eq!(run("rtrim", "/.", "a/./").as_deref(), Some("a"));
        assert_eq!(run("bytes", "1,2", "abcd").as_deref(), Some("bc"));
        assert_eq!(run("bytes", "2", "abcd").as_deref(), Some("cd"));
        assert_eq!(run("bytes", "9", "abcd").as_deref(), Some(""));
        let waits = TextConv::parse("bytes", Some("2,9"))
            .expect("known")
            .expect("valid");
        assert_eq!(waits.apply(b"abcd", false), None, "more content may come");
        assert_eq!(waits.apply(b"abcd", true), Some(b"cd".to_vec()));
        assert_eq!(
            TextConv::Hex.apply(b"\x00\xffA", true),
            Some(b"00FF41".to_vec())
        );
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(
                TextConv::Base64.apply(i.as_bytes(), true),
                Some(o.as_bytes().to_vec())
            );
        }
    }

    #[test]
    fn what_haproxy_2_6_gave_for_the_same_input() {
        // `tcp-request content set-var(...) req.payload(0,0),<conv>` then logged, on HAProxy
        // 2.6.12, for the request "a..b.foo.oo"
        let input = "a..b.foo.oo";
        for (conv, args, want) in [
            ("field", "-2,.,2", Some("b.foo")),
            ("field", "2,.,0", Some(".b.foo.oo")),
            ("field", "9,.", None),
            ("word", "2,.", Some("b")),
            ("word", "-1,.,2", Some("foo.oo")),
            ("word", "2,.,0", Some("b.foo.oo")),
            ("regsub", "o,0,g", Some("a..b.f00.00")),
            ("regsub", "\\.+,-,g", Some("a-b-foo-oo")),
            ("bytes", "2,3", Some(".b.")),
            ("ltrim", "a.", Some("b.foo.oo")),
            ("rtrim", "o.", Some("a..b.f")),
        ] {
            assert_eq!(run(conv, args, input).as_deref(), want, "{conv}({args})");
        }
        assert_eq!(
            TextConv::Hex.apply(b"a..b", true),
            Some(b"612E2E62".to_vec())
        );
        assert_eq!(
            TextConv::Base64.apply(input.as_bytes(), true),
            Some(b"YS4uYi5mb28ub28=".to_vec())
        );
    }

    #[test]
    fn bad_arguments_say_which() {
        let err =
            |c: &str, a: Option<&str>| TextConv::parse(c, a).expect("known").expect_err("invalid");
        assert!(err("field", Some("0,.")).contains("Unexpected value 0 for index"));
        assert!(err("field", Some("1,")).contains("Empty separators list"));
        assert!(err("field", Some("x,.")).contains("failed to parse 'x' as type 'integer'"));
        assert!(err("field", None).contains("missing arg 1"));
        assert!(err("regsub", Some("(,x")).contains("regex '(' is invalid"));
        assert!(err("regsub", Some("a,b,q")).contains("invalid regex flag 'q'"));
        assert!(err("hex", Some("1")).contains("does not support any args"));
        assert!(err("bytes", Some("1,2,3")).contains("end of arguments expected at position 3"));
        assert!(TextConv::parse("lower", None).is_none());
    }
}
