//! Named ACLs and the `if`/`unless` conditions built from them, evaluated with HAProxy's three
//! outcomes: a condition over request content that cannot be decided yet says so (`Miss`), and
//! the rule waits for more bytes instead of guessing.

use std::sync::Arc;

use super::fetch::{Env, Fetch, Sample};
use super::patref::PatRef;
use super::pattern::{Method, Patterns};

/// An ACL's outcome (HAProxy's `ACL_TEST_*` values, so that AND and OR are bitwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// Does not match.
    Fail = 0,
    /// Cannot tell yet.
    Miss = 1,
    /// Matches.
    Pass = 3,
}

impl Tri {
    fn bits(b: u8) -> Tri {
        match b {
            0 => Tri::Fail,
            3 => Tri::Pass,
            _ => Tri::Miss,
        }
    }

    /// `!`: a miss stays a miss.
    fn not(self) -> Tri {
        match self {
            Tri::Fail => Tri::Pass,
            Tri::Pass => Tri::Fail,
            Tri::Miss => Tri::Miss,
        }
    }
}

/// One `acl <name> <fetch> [flags] <patterns>` line.
#[derive(Debug, Clone)]
pub struct Expr {
    /// The sample it reads.
    pub fetch: Fetch,
    /// What it is compared with: its files' patterns and its own (the Runtime API may change
    /// them).
    pub refs: Vec<Arc<PatRef>>,
}

/// An ACL: the lines of one name (any of them matching is a match).
#[derive(Debug, Clone)]
pub struct Acl {
    /// Its name (anonymous ones get a generated one).
    pub name: String,
    /// Its lines, in file order.
    pub exprs: Vec<Expr>,
}

impl Acl {
    /// HAProxy's `acl_exec_cond` for one ACL: the first expression that matches decides;
    /// an expression whose sample may still change and does not match yet is a miss.
    pub fn eval(&self, env: &dyn Env) -> Tri {
        let mut res = Tri::Fail as u8;
        for e in &self.exprs {
            match e.fetch.sample(env) {
                Sample::Missing => res |= Tri::Miss as u8,
                Sample::None => {}
                Sample::Val { v, may_change } => {
                    if e.refs.iter().any(|r| r.matches(&v)) {
                        return Tri::Pass;
                    }
                    if may_change && !env.is_final() {
                        res |= Tri::Miss as u8;
                    }
                }
            }
        }
        Tri::bits(res)
    }
}

/// The ACLs of one proxy: conditions name them by index, so that an `acl` line written after a
/// condition that uses its name still adds to it, as in HAProxy.
#[derive(Debug, Clone, Default)]
pub struct AclTable {
    /// Named, predefined and anonymous ACLs.
    pub acls: Vec<Acl>,
    /// Warnings of the line being parsed (anonymous ACLs' among them), for the caller.
    warnings: Vec<String>,
    /// The config file and line being parsed.
    pub(super) site: (String, usize),
}

/// HAProxy's predefined ACLs that mean something in TCP mode: name, fetch, patterns.
const PREDEFINED: &[(&str, &str, &[&str])] = &[
    ("TRUE", "always_true", &[]),
    ("FALSE", "always_false", &[]),
    ("LOCALHOST", "src", &["127.0.0.1/8", "::1"]),
    ("WAIT_END", "wait_end", &[]),
    ("REQ_CONTENT", "req.len", &["gt", "0"]),
    ("RDP_COOKIE", "req.rdp_cookie_cnt", &["gt", "0"]),
];

impl AclTable {
    /// Parses the words after `acl` (its name first), adding to an ACL of that name.
    /// Returns HAProxy's warning for an ACL given no pattern.
    pub fn parse_acl(&mut self, words: &[String], proxy: &str) -> Result<Option<String>, String> {
        let Some(name) = words.first() else {
            return Err("'acl' expects an ACL name.".into());
        };
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
        {
            return Err(format!(
                "'acl' : character '{c}' is not permitted in acl name '{name}'."
            ));
        }
        if words.len() < 2 {
            return Err(format!("'acl {name}' expects a sample fetch keyword."));
        }
        if name.eq_ignore_ascii_case("or") {
            return Err(format!("acl name '{name}' will never match. 'or' is used to express a logical disjunction within a condition."));
        }
        let (expr, never) = self
            .parse_expr(&words[1..], proxy)
            .map_err(|e| format!("error detected while parsing ACL '{name}' : {e}."))?;
        match self.acls.iter_mut().find(|a| a.name == *name) {
            Some(a) => a.exprs.push(expr),
            None => self.acls.push(Acl {
                name: name.clone(),
                exprs: vec![expr],
            }),
        }
        Ok(never.then(|| never_matches(&words[1])))
    }

    /// The warnings the last condition parsed left (anonymous ACLs without patterns).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The first ACL of `cond` that reads request content, and the keyword: HAProxy's
    /// `acl_cond_conflicts` for rules that run before any content exists.
    pub fn content_conflict(&self, cond: &Cond) -> Option<(String, &str)> {
        cond.alts.iter().flatten().find_map(|t| {
            let acl = &self.acls[t.acl];
            let e = acl.exprs.iter().find(|e| e.fetch.reads_content())?;
            let who = if acl.name.starts_with("anonymous #") {
                "anonymous acl".to_string()
            } else {
                format!("acl '{}'", acl.name)
            };
            Some((who, e.fetch.keyword()))
        })
    }

    /// The index of the ACL `name`, adding a predefined one on first use.
    fn find(&mut self, name: &str, proxy: &str) -> Option<usize> {
        if let Some(i) = self.acls.iter().position(|a| a.name == name) {
            return Some(i);
        }
        let (_, fetch, pats) = PREDEFINED.iter().find(|(n, ..)| *n == name)?;
        let mut words = vec![fetch.to_string()];
        words.extend(pats.iter().map(|p| p.to_string()));
        let (expr, _) = self.parse_expr(&words, proxy).ok()?;
        self.acls.push(Acl {
            name: name.to_string(),
            exprs: vec![expr],
        });
        Some(self.acls.len() - 1)
    }

    /// Parses `if|unless <terms>` (the words after a rule's action). Terms are ACL names,
    /// `!` negates the next one, `{ <fetch> ... }` is an anonymous ACL, `||` or `or` starts
    /// another alternative.
    pub fn parse_cond(&mut self, words: &[String], proxy: &str) -> Result<Cond, String> {
        let unless = match words.first().map(String::as_str) {
            Some("if") => false,
            Some("unless") => true,
            Some(w) => {
                return Err(format!(
                    "expects 'if' or 'unless' followed by a condition but found '{w}'"
                ))
            }
            None => return Err("expects 'if' or 'unless' followed by a condition".into()),
        };
        let mut alts: Vec<Vec<Term>> = vec![Vec::new()];
        let mut neg = false;
        let mut i = 1;
        while i < words.len() {
            let w = words[i].as_str();
            i += 1;
            match w {
                _ if w == "||" || w.eq_ignore_ascii_case("or") => {
                    // HAProxy drops a `!` left before it and ignores an empty alternative
                    neg = false;
                    if alts.last().is_some_and(|a| !a.is_empty()) {
                        alts.push(Vec::new());
                    }
                }
                _ => {
                    // `!` toggles the negation, alone or before a name or `{`
                    let word = w.trim_start_matches('!');
                    if (w.len() - word.len()) % 2 == 1 {
                        neg = !neg;
                    }
                    match word {
                        "" => {}
                        "{" => {
                            let close = words[i..]
                                .iter()
                                .position(|x| x == "}")
                                .ok_or("missing closing '}' in condition")?;
                            let body = &words[i..i + close];
                            i += close + 1;
                            if body.is_empty() {
                                return Err("'{ }' holds no ACL".into());
                            }
                            let (expr, never) = self.parse_expr(body, proxy).map_err(|e| {
                                format!(
                                    "error detected while parsing anonymous ACL '{}' : {e}",
                                    body.join(" ")
                                )
                            })?;
                            if never {
                                self.warnings.push(never_matches(&body[0]));
                            }
                            self.acls.push(Acl {
                                name: format!("anonymous #{}", self.acls.len()),
                                exprs: vec![expr],
                            });
                            push(&mut alts, &mut neg, self.acls.len() - 1);
                        }
                        "}" => return Err("unexpected '}' in condition".into()),
                        name => {
                            let idx = self
                                .find(name, proxy)
                                .ok_or_else(|| format!("no such ACL : '{name}'"))?;
                            push(&mut alts, &mut neg, idx);
                        }
                    }
                }
            }
        }
        // as HAProxy: a trailing `!` or `||` is dropped; no term at all never matches (`if`)
        alts.retain(|a| !a.is_empty());
        Ok(Cond { unless, alts })
    }

    /// Evaluates `cond`: `Pass`/`Fail` once decided (with `unless` applied), `Miss` while it
    /// waits on content.
    pub fn eval(&self, cond: &Cond, env: &dyn Env) -> Tri {
        let mut res = Tri::Fail as u8;
        for alt in &cond.alts {
            let mut suite = Tri::Pass as u8;
            for t in alt {
                let mut r = self.acls[t.acl].eval(env);
                if t.neg {
                    r = r.not();
                }
                suite &= r as u8;
                // as `acl_exec_cond`: a miss is as final as a fail for the rest of the suite
                if suite != Tri::Pass as u8 {
                    break;
                }
            }
            res |= suite;
            if res == Tri::Pass as u8 {
                break;
            }
        }
        let r = Tri::bits(res);
        if cond.unless {
            r.not()
        } else {
            r
        }
    }
}

fn push(alts: &mut [Vec<Term>], neg: &mut bool, acl: usize) {
    if let Some(last) = alts.last_mut() {
        last.push(Term { neg: *neg, acl });
    }
    *neg = false;
}

impl AclTable {
    /// Says where the next lines come from (`show acl` names them).
    pub fn set_site(&mut self, file: &str, line: usize) {
        self.site = (file.to_string(), line);
    }

    /// Every pattern reference, in the order they were made.
    pub fn refs(&self) -> Vec<&Arc<PatRef>> {
        let mut all: Vec<&Arc<PatRef>> = self
            .acls
            .iter()
            .flat_map(|a| a.exprs.iter().flat_map(|e| e.refs.iter()))
            .collect();
        all.sort_by_key(|r| r.seq());
        all
    }

    fn new_ref(
        &mut self,
        file: Option<String>,
        display: String,
        pats: Patterns,
        texts: Vec<String>,
    ) -> Arc<PatRef> {
        Arc::new(PatRef::new(file, display, self.site.clone(), pats, texts))
    }

    /// `<fetch> [flags] [patterns]`: flags `-i`, `-n`, `-u <id>`, `-m <method>`, `-f <file>`,
    /// `-M` (the files have two columns: keys, then values), and `--` before patterns that
    /// start with `-`. Also says whether HAProxy warns it can
    /// never match (nothing at all after a keyword whose method needs a pattern).
    fn parse_expr(&mut self, words: &[String], proxy: &str) -> Result<(Expr, bool), String> {
        let fetch = Fetch::parse_at(&words[0], proxy, &self.site)
            .map_err(|e| format!("{e} in ACL expression '{}'", words[0]))?;
        let mut method = None;
        let mut icase = false;
        let mut files = Vec::new();
        let mut forced: Option<u32> = None;
        let mut two_column = false;
        let mut i = 1;
        while let Some(w) = words.get(i) {
            if !w.starts_with('-') || w == "-" {
                break;
            }
            i += 1;
            let next = |i: &mut usize| -> Result<String, String> {
                let v = words
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| format!("missing argument after '{w}'"))?;
                *i += 1;
                Ok(v)
            };
            match w.as_str() {
                "--" => break,
                "-i" => icase = true,
                "-n" => {}
                "-u" => {
                    let v = next(&mut i)?;
                    forced = Some(v.parse::<u32>().map_err(|_| {
                        format!("'-u' expects a positive integer (got '{v}')")
                    })?);
                }
                "-m" => {
                    let m = next(&mut i)?;
                    method = Some(
                        Method::parse(&m)
                            .ok_or_else(|| format!("unknown matching method '{m}'"))?,
                    );
                }
                "-f" => files.push(next(&mut i)?),
                "-M" => two_column = true,
                other => {
                    return Err(format!(
                        "'{other}' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'"
                    ))
                }
            }
        }
        let method = method.or_else(|| fetch.default_method()).ok_or_else(|| {
            format!(
                "matching method must be specified first (using '-m') when using a sample fetch of this type ('{}')",
                words[0]
            )
        })?;
        let kw = words[0].split('(').next().unwrap_or_default().to_string();
        let (cfg, line) = self.site.clone();
        let mut refs = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("failed to open pattern file <{f}> : {e}"))?;
            if two_column {
                let display = format!(
                    "pattern loaded from file '{f}' used by acl at file '{cfg}' line {line}"
                );
                let r = PatRef::new_two_column(
                    f.clone(),
                    display,
                    self.site.clone(),
                    method,
                    icase,
                    super::patref::read_pairs(&text),
                )?;
                refs.push(Arc::new(r));
                continue;
            }
            let mut pats = Patterns::new(method, icase);
            let mut texts = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                pats.add(l)
                    .map_err(|e| format!("{e} at line {} of file <{f}>", n + 1))?;
                texts.push(l.to_string());
            }
            let display =
                format!("pattern loaded from file '{f}' used by acl at file '{cfg}' line {line}");
            refs.push(self.new_ref(Some(f.clone()), display, pats, texts));
        }
        // the line's own values (maybe none: HAProxy makes the reference all the same)
        let mut pats = Patterns::new(method, icase);
        let texts = pats.add_all(&words[i..])?;
        let display = format!("acl '{kw}' file '{cfg}' line {line}");
        let own = self.new_ref(None, display, pats, texts);
        if let Some(id) = forced {
            // `-u <id>`: the line's own list takes that id (lists of one id are one group)
            own.force_id(id);
        }
        refs.push(own);
        // HAProxy warns only when nothing at all follows the keyword
        let never = words.len() == 1 && !matches!(method, Method::Found | Method::Bool);
        Ok((Expr { fetch, refs }, never))
    }
}

/// HAProxy's warning for an ACL keyword given nothing to match.
fn never_matches(keyword: &str) -> String {
    format!(
        "parsing acl keyword '{keyword}' :\n  no pattern to match against were provided, so this ACL will never match.\n  If this is what you intended, please add '--' to get rid of this warning.\n  If you intended to match only for existence, please use '-m found'.\n  If you wanted to force an int to match as a bool, please use '-m bool'."
    )
}

/// One term of a condition: an ACL, maybe negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Written `!`.
    pub neg: bool,
    /// Index in the proxy's [`AclTable`].
    pub acl: usize,
}

/// `if|unless` and alternatives of terms that must all match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// `unless`.
    pub unless: bool,
    /// `a b || c`: `[[a, b], [c]]`.
    pub alts: Vec<Vec<Term>>,
}
