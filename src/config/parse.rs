//! The parse driver: reads files, splits lines, tracks the current section and hands each line to
//! its section parser, collecting every error instead of stopping at the first.

use super::lexer;
use super::section::{global, mailers, peers, proxy, resolvers, ring, server, Ctx};
use super::suggest::{did_you_mean, SECTIONS};
use super::validate;
use super::{
    Capabilities, Config, ConfigError, ConfigErrors, Location, MailersConfig, PeersConfig,
    ProxyConfig, ResolversConfig, RingConfig, ServerConfig, ServerParams,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// HAProxy sections harp skips with one warning (their lines are not checked).
const IGNORED_SECTIONS: &[&str] = &[
    "crt-store",
    "traces",
    "acme",
    "userlist",
    "cache",
    "program",
    "http-errors",
    "log-forward",
];

pub(super) fn load(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut texts = Vec::new();
    if paths.is_empty() {
        errors.push(ConfigError::File {
            message: "no configuration file given (use -f <file|dir>)".into(),
        });
    }
    for path in paths {
        for file in expand(path, &mut errors) {
            match std::fs::read(&file) {
                Ok(bytes) => texts.push((
                    file.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                )),
                Err(e) => errors.push(ConfigError::File {
                    message: format!(
                        "Could not open configuration file {} : {}",
                        file.display(),
                        io_reason(&e)
                    ),
                }),
            }
        }
    }
    match parse_texts(&texts) {
        Ok(cfg) if errors.is_empty() => Ok(cfg),
        Ok(cfg) => Err(ConfigErrors {
            errors,
            warnings: cfg.warnings,
        }),
        Err(more) => {
            errors.extend(more.errors);
            Err(ConfigErrors {
                errors,
                warnings: more.warnings,
            })
        }
    }
}

/// `std::io::Error`'s text without the "(os error N)" suffix, like `strerror()`.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(pos) => s[..pos].to_string(),
        None => s,
    }
}

/// A `-f` path: a file as is, a directory as its `*.cfg` files in lexical order.
fn expand(path: &Path, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => {
            errors.push(ConfigError::File {
                message: format!(
                    "Could not open configuration directory {} : {}",
                    path.display(),
                    io_reason(&e)
                ),
            });
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cfg") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        errors.push(ConfigError::File {
            message: format!(
                "no *.cfg configuration file found in directory {}",
                path.display()
            ),
        });
    }
    files
}

/// The section being filled.
enum Section {
    None,
    Global,
    /// A `defaults` section (its name in `ProxyConfig::name`).
    Defaults(Box<ProxyConfig>),
    Proxy(Box<ProxyConfig>),
    Mailers(MailersConfig),
    Resolvers(ResolversConfig),
    Peers(PeersConfig),
    Ring(RingConfig),
    /// A section whose header was wrong or which harp ignores: its lines are skipped.
    Skip,
}

/// Parser state across all files (sections do not span files, but defaults do).
pub(super) struct Parser {
    pub(super) cfg: Config,
    pub(super) errors: Vec<ConfigError>,
    /// Named (and anonymous, name "") defaults sections seen so far, in order.
    defaults: Vec<ProxyConfig>,
    /// What a new proxy starts from: the last defaults section.
    current_defaults: ProxyConfig,
    section: Section,
    /// Extra facts per proxy for validation (same index as `cfg.proxies`).
    pub(super) proxy_meta: Vec<proxy::ProxyMeta>,
    meta: proxy::ProxyMeta,
    /// Where `httpclient.resolvers.id` was written, to cite it if the section does not exist.
    pub(super) httpclient_resolvers_at: Option<Location>,
    /// The environment `${VAR}` reads: the process's, as `setenv` and friends change it.
    env: Env,
}

/// The environment the configuration sees (`global` `setenv`, `presetenv`, `unsetenv`,
/// `resetenv`, as HAProxy applies them while it reads): changes over the process's variables,
/// kept here rather than in the process (tests parse in parallel).
#[derive(Default)]
struct Env {
    /// Set (`Some`) or unset (`None`) names.
    changed: std::collections::HashMap<String, Option<String>>,
    /// `resetenv` kept only these process variables (and what was set after).
    reset: Option<Vec<String>>,
}

impl Env {
    fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.changed.get(name) {
            return v.clone();
        }
        match &self.reset {
            Some(keep) if !keep.iter().any(|k| k == name) => None,
            _ => std::env::var(name).ok(),
        }
    }

    /// Applies a `setenv`-family line of the `global` section; false for any other line.
    fn apply(&mut self, words: &[String], in_global: &bool) -> bool {
        if !*in_global {
            return false;
        }
        match (words[0].as_str(), &words[1..]) {
            ("setenv", [name, value]) => {
                self.changed.insert(name.clone(), Some(value.clone()));
            }
            ("presetenv", [name, value]) => {
                if self.get(name).is_none() {
                    self.changed.insert(name.clone(), Some(value.clone()));
                }
            }
            ("unsetenv", names) if !names.is_empty() => {
                for n in names {
                    self.changed.insert(n.clone(), None);
                }
            }
            ("resetenv", keep) => {
                self.changed.retain(|k, _| keep.contains(k));
                self.reset = Some(keep.to_vec());
            }
            // a malformed one: the global parser reports it
            _ => return false,
        }
        true
    }
}

impl Parser {
    fn new() -> Self {
        Parser {
            cfg: Config::default(),
            errors: Vec::new(),
            defaults: Vec::new(),
            current_defaults: ProxyConfig::new("", Capabilities::default(), Location::default()),
            section: Section::None,
            proxy_meta: Vec::new(),
            meta: proxy::ProxyMeta::default(),
            httpclient_resolvers_at: None,
            env: Env::default(),
        }
    }

    fn section_is_global(&self) -> bool {
        matches!(self.section, Section::Global)
    }

    fn error(&mut self, loc: &Location, msg: impl Into<String>) {
        self.errors.push(ConfigError::at(loc, msg));
    }

    /// Ends the current section, storing what it built.
    fn close_section(&mut self) {
        match std::mem::replace(&mut self.section, Section::None) {
            Section::Defaults(d) => {
                self.current_defaults = (*d).clone();
                self.defaults.push(*d);
            }
            Section::Proxy(p) => {
                self.cfg.proxies.push(*p);
                self.proxy_meta.push(std::mem::take(&mut self.meta));
            }
            Section::Mailers(m) => self.cfg.mailers.push(m),
            Section::Resolvers(r) => self.cfg.resolvers.push(r),
            Section::Peers(p) => self.cfg.peers.push(p),
            Section::Ring(r) => self.cfg.rings.push(r),
            Section::None | Section::Global | Section::Skip => {}
        }
    }

    fn open_section(&mut self, words: &[String], loc: &Location) {
        self.close_section();
        let kw = words[0].as_str();
        let name = words.get(1).cloned();
        self.section = Section::Skip;
        match kw {
            "global" => {
                if words.len() > 1 {
                    self.error(
                        loc,
                        format!("'global' takes no argument, got '{}'", words[1]),
                    );
                }
                self.section = Section::Global;
            }
            "defaults" => self.open_defaults(words, loc),
            "frontend" | "backend" | "listen" => self.open_proxy(words, loc),
            "ring" => {
                let Some(name) = name else {
                    self.error(loc, "missing ring name.".to_string());
                    return;
                };
                if let Err(e) = check_name(&name) {
                    self.error(loc, format!("ring '{name}': {e}"));
                    return;
                }
                if let Some(prev) = self.cfg.rings.iter().find(|r| r.name == name) {
                    let prev = prev.location.clone();
                    self.error(
                        loc,
                        format!("sink '{name}' already exists (declared at {prev})."),
                    );
                    return;
                }
                self.section = Section::Ring(RingConfig::new(&name, loc.clone()));
            }
            "peers" => {
                let Some(name) = name else {
                    self.error(loc, "missing name for peers section.".to_string());
                    return;
                };
                if let Err(e) = check_name(&name) {
                    self.error(loc, format!("peers section '{name}': {e}"));
                    return;
                }
                if let Some(prev) = self.cfg.peers.iter().find(|p| p.name == name) {
                    let prev = prev.location.clone();
                    self.error(loc, format!("peers section '{name}' has the same name as another peers section declared at {prev}."));
                    return;
                }
                self.section = Section::Peers(PeersConfig {
                    name,
                    peers: Vec::new(),
                    bind: None,
                    disabled: false,
                    tables: Vec::new(),
                    local: None,
                    location: loc.clone(),
                });
            }
            "mailers" | "resolvers" => {
                let Some(name) = name else {
                    self.error(loc, format!("missing name for {kw} section."));
                    return;
                };
                if let Err(e) = check_name(&name) {
                    self.error(loc, format!("{kw} section '{name}': {e}"));
                    return;
                }
                if words.len() > 2 {
                    self.error(
                        loc,
                        format!("'{kw} {name}' takes no other argument, got '{}'", words[2]),
                    );
                }
                let dup = if kw == "mailers" {
                    self.cfg
                        .mailers
                        .iter()
                        .find(|m| m.name == name)
                        .map(|m| m.location.clone())
                } else {
                    self.cfg
                        .resolvers
                        .iter()
                        .find(|r| r.name == name)
                        .map(|r| r.location.clone())
                };
                if let Some(prev) = dup {
                    self.error(loc, format!("{kw} section '{name}' has the same name as another {kw} section declared at {prev}."));
                    return;
                }
                self.section = if kw == "mailers" {
                    Section::Mailers(MailersConfig {
                        name,
                        mailers: Vec::new(),
                        timeout_mail: Duration::from_secs(10),
                        location: loc.clone(),
                    })
                } else {
                    Section::Resolvers(ResolversConfig {
                        name,
                        nameservers: Vec::new(),
                        hold_valid: Duration::from_secs(10),
                        hold_nx: Duration::from_secs(30),
                        hold_timeout: Duration::from_secs(30),
                        hold_refused: Duration::from_secs(30),
                        hold_other: Duration::from_secs(30),
                        timeout_resolve: Duration::from_secs(1),
                        timeout_retry: Duration::from_secs(1),
                        resolve_retries: 3,
                        accepted_payload_size: 512,
                        location: loc.clone(),
                    })
                };
            }
            _ => {}
        }
    }

    fn open_defaults(&mut self, words: &[String], loc: &Location) {
        // `defaults [<name>] [from <defaults>]`
        let mut name = String::new();
        let mut rest = &words[1..];
        if let Some(first) = rest.first() {
            if first != "from" {
                name = first.clone();
                rest = &rest[1..];
            }
        }
        if !name.is_empty() {
            if let Err(e) = check_name(&name) {
                self.error(loc, format!("defaults section '{name}': {e}"));
                return;
            }
        }
        let base = match self.parse_from_clause(rest, loc, "defaults") {
            Ok(Some(b)) => b,
            Ok(None) => ProxyConfig::new("", Capabilities::default(), Location::default()),
            Err(()) => return,
        };
        let mut d = base;
        d.name = name;
        d.location = loc.clone();
        self.section = Section::Defaults(Box::new(d));
    }

    /// Parses an optional `from <defaults>`; `Ok(None)` when absent.
    fn parse_from_clause(
        &mut self,
        rest: &[String],
        loc: &Location,
        what: &str,
    ) -> Result<Option<ProxyConfig>, ()> {
        match rest {
            [] => Ok(None),
            [from, name] if from == "from" => {
                match self
                    .defaults
                    .iter()
                    .rev()
                    .find(|d| &d.name == name && !d.name.is_empty())
                {
                    Some(d) => Ok(Some(d.clone())),
                    None => {
                        self.error(loc, format!("{what} section: defaults section '{name}' not found for 'from' clause."));
                        Err(())
                    }
                }
            }
            [from] if from == "from" => {
                self.error(
                    loc,
                    format!("{what} section: 'from' expects the name of a defaults section."),
                );
                Err(())
            }
            _ => {
                self.error(
                    loc,
                    format!(
                        "{what} section: unexpected argument '{}' (expects '[from <defaults>]').",
                        rest[0]
                    ),
                );
                Err(())
            }
        }
    }

    fn open_proxy(&mut self, words: &[String], loc: &Location) {
        let kw = words[0].as_str();
        let Some(name) = words.get(1).cloned() else {
            self.error(loc, format!("'{kw}' expects <name> as an argument."));
            return;
        };
        if let Err(e) = check_name(&name) {
            self.error(loc, format!("{kw} '{name}': {e}"));
            return;
        }
        let base = match self.parse_from_clause(&words[2..], loc, kw) {
            Ok(Some(b)) => b,
            Ok(None) => self.current_defaults.clone(),
            Err(()) => return,
        };
        let cap = Capabilities {
            frontend: kw != "backend",
            backend: kw != "frontend",
        };
        let mut p = base;
        p.name = name;
        p.cap = cap;
        p.location = loc.clone();
        p.binds.clear();
        p.servers.clear();
        p.id = None;
        p.forced_id = false;
        self.meta = proxy::ProxyMeta {
            defaults_rate_limit: p.rate_limit_sessions,
            ..Default::default()
        };
        self.section = Section::Proxy(Box::new(p));
    }

    fn line(&mut self, words: &[String], loc: &Location) {
        let kw = words[0].as_str();
        if SECTIONS.contains(&kw) {
            self.open_section(words, loc);
            return;
        }
        if IGNORED_SECTIONS.contains(&kw) {
            self.close_section();
            self.section = Section::Skip;
            self.cfg.warnings.push(format!(
                "[WARNING] parsing [{loc}] : '{kw}' sections are not supported by harp; section ignored."
            ));
            return;
        }
        if matches!(self.section, Section::Global) && kw == "httpclient.resolvers.id" {
            self.httpclient_resolvers_at = Some(loc.clone());
        }
        let mut warnings = Vec::new();
        let mut ctx = Ctx {
            loc,
            warnings: &mut warnings,
            bind_tls: (kw == "bind").then(|| self.cfg.global.bind_tls.clone()),
        };
        let result = match &mut self.section {
            Section::None => Err(match did_you_mean(kw, SECTIONS) {
                Some(s) => format!("unknown keyword '{kw}' out of section; did you mean '{s}'?"),
                None => format!("unknown keyword '{kw}' out of section."),
            }),
            Section::Skip => Ok(()),
            Section::Global => global::parse(&mut self.cfg.global, words, &mut ctx),
            Section::Defaults(d) => proxy::parse(d, None, words, &mut ctx),
            Section::Proxy(p) => proxy::parse(p, Some(&mut self.meta), words, &mut ctx),
            Section::Mailers(m) => mailers::parse(m, words),
            Section::Resolvers(r) => resolvers::parse(r, words, &mut ctx),
            Section::Peers(p) => peers::parse(p, words, &mut ctx),
            Section::Ring(r) => ring::parse(r, words, &mut ctx),
        };
        self.cfg.warnings.extend(
            warnings
                .into_iter()
                .map(|w| format!("[WARNING] parsing [{loc}] : {w}")),
        );
        if let Err(e) = result {
            self.error(loc, e);
        }
    }
}

/// HAProxy's proxy/section name rule: letters, digits, `-`, `_`, `.`, `:`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        Some(c) => Err(format!("character '{c}' is invalid in a name")),
        None if name.is_empty() => Err("empty name".into()),
        None => Ok(()),
    }
}

pub(super) fn parse_texts(texts: &[(String, String)]) -> Result<Config, ConfigErrors> {
    let mut p = Parser::new();
    for (file, text) in texts {
        // line by line, so that `setenv` and friends act on the lines after them
        for (idx, raw) in text.split('\n').enumerate() {
            let loc = Location {
                file: file.clone(),
                line: idx + 1,
            };
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let env = |name: &str| p.env.get(name);
            match lexer::split_line(raw, &env) {
                Ok(words) if words.is_empty() => {}
                Ok(words) => {
                    if !p.env.apply(&words, &p.section_is_global()) {
                        p.line(&words, &loc)
                    }
                }
                Err(e) => p.error(&loc, e),
            }
        }
        // A section ends with its file, as in HAProxy.
        p.close_section();
    }
    p.close_section();
    validate::run(&mut p);
    if p.errors.is_empty() {
        Ok(p.cfg)
    } else {
        Err(ConfigErrors {
            errors: p.errors,
            warnings: p.cfg.warnings,
        })
    }
}

pub(super) fn server_args(
    name: &str,
    words: &[String],
    defaults: &ServerParams,
) -> Result<ServerConfig, String> {
    let mut warnings = Vec::new();
    let loc = Location::default();
    let mut ctx = Ctx {
        loc: &loc,
        warnings: &mut warnings,
        bind_tls: None,
    };
    server::parse_server(name, words, defaults, &mut ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn err(text: &str) -> Vec<String> {
        parse_str("t.cfg", text)
            .unwrap_err()
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn all_errors_are_reported_and_parsing_goes_on() {
        let e = err("global\n nbthred 2\n maxconn x\nbackend b\n sevrer s 127.0.0.1:1\n server s 127.0.0.1:0\n retries -1\n");
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e[0].starts_with("[ALERT] parsing [t.cfg:2] : unknown keyword 'nbthred'"));
        assert!(e[1].starts_with("[ALERT] parsing [t.cfg:3] :"));
        assert_eq!(e[2], "[ALERT] parsing [t.cfg:5] : unknown keyword 'sevrer' in 'backend' section; did you mean 'server'?");
        assert!(e[3].starts_with("[ALERT] parsing [t.cfg:6] :"));
    }

    #[test]
    fn out_of_section_and_bad_headers() {
        assert_eq!(
            err("maxconn 10\n"),
            ["[ALERT] parsing [t.cfg:1] : unknown keyword 'maxconn' out of section."]
        );
        assert!(err("bakend b\n")[0].contains("did you mean 'backend'?"));
        // A bad header reports once; its lines are skipped instead of cascading.
        assert_eq!(err("backend\n server s x\n balance nope\n").len(), 1);
        assert!(err("backend a/b\n")[0].contains("character '/' is invalid"));
        assert!(err("mailers\n")[0].contains("missing name"));
    }

    #[test]
    fn sections_do_not_span_files_but_defaults_do() {
        let cfg = parse_texts(&[
            (
                "a.cfg".into(),
                "defaults\n timeout connect 9s\nbackend b\n".into(),
            ),
            ("b.cfg".into(), "backend c\n".into()),
        ])
        .unwrap();
        assert_eq!(
            cfg.proxies[1].timeouts.connect,
            Some(Duration::from_secs(9))
        );
        let e = parse_texts(&[
            ("a.cfg".into(), "backend b\n".into()),
            ("b.cfg".into(), " server s 127.0.0.1:1\n".into()),
        ])
        .unwrap_err();
        assert_eq!(
            e.errors[0].to_string(),
            "[ALERT] parsing [b.cfg:1] : unknown keyword 'server' out of section."
        );
    }

    #[test]
    fn peers_sections_in_both_forms_and_their_tables() {
        // HAProxy 2.0's form: `bind` for the local peer, `server` lines
        let mut cfg = parse_str(
            "t.cfg",
            "peers p\n bind 127.0.0.1:1000\n server a\n server b 127.0.0.1:1001\n \
             table t type string len 16 size 1k store gpc0\n\
             peers q\n peer a 127.0.0.1:2000\n peer c 127.0.0.1:2001\n disabled\n",
        )
        .unwrap();
        assert!(cfg.set_local_peer("a").is_empty());
        let (p, q) = (&cfg.peers[0], &cfg.peers[1]);
        assert_eq!(p.listen_addr(), Some("127.0.0.1:1000".parse().unwrap()));
        let remotes: Vec<_> = p.remotes().map(|(n, _)| n.to_string()).collect();
        assert_eq!(remotes, ["b"]);
        assert_eq!(p.table_name(&p.tables[0]), "p/t");
        assert_eq!(p.tables[0].config.peers.as_deref(), Some("p"));
        assert!(q.disabled);
        assert_eq!(q.listen_addr(), Some("127.0.0.1:2000".parse().unwrap()));
        // another name: both sections lose their local peer, with HAProxy's warning
        assert!(cfg.set_local_peer("z").is_empty());
        assert!(cfg.peers[0].local.is_none());
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("Removing incomplete section 'peers q'")));
        // a table name twice in a section, and a track rule naming a peers table
        assert!(err(
            "peers p\n peer a 127.0.0.1:1\n table t type ip size 1\n table t type ip size 1\n"
        )[0]
        .contains("conflicts with table"));
        let ok = parse_str(
            "t.cfg",
            "peers p\n peer a 127.0.0.1:1\n table t type ip size 1k\n\
             frontend f\n bind :1\n tcp-request connection track-sc0 src table p/t\n default_backend b\n\
             backend b\n server s 127.0.0.1:2\n",
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
        assert!(
            err("frontend f\n bind :1\n tcp-request connection track-sc0 src table p/t\n")[0]
                .contains("unable to find table 'p/t'")
        );
    }

    #[test]
    fn a_hash_type_without_function_goes_back_to_sdbm() {
        let cfg = parse_str(
            "t.cfg",
            "defaults\n hash-type map-based djb2\nbackend a\nbackend b\n hash-type consistent\n",
        )
        .unwrap();
        assert_eq!(
            cfg.proxies[0].hash_function,
            crate::config::HashFunction::Djb2
        );
        assert_eq!(
            cfg.proxies[1].hash_function,
            crate::config::HashFunction::Sdbm
        );
        assert!(cfg.proxies[1].hash_avalanche);
    }

    #[test]
    fn ignored_sections_warn() {
        let cfg = parse_str("t.cfg", "userlist u\n user a password x\nbackend b\n").unwrap();
        assert!(cfg.warnings[0].contains("'userlist' sections are not supported"));
        assert_eq!(cfg.proxies.len(), 1);
    }

    #[test]
    fn server_args_for_the_runtime_api() {
        let words: Vec<String> = ["127.0.0.1:8080", "weight", "20", "check"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let s = crate::config::parse_server_args("n", &words, &ServerParams::default()).unwrap();
        assert_eq!(s.params.weight, 20);
        assert!(s.params.check);
        assert!(crate::config::parse_server_args("n", &[], &ServerParams::default()).is_err());
    }

    #[test]
    fn load_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.cfg"), "backend b2\n").unwrap();
        std::fs::write(dir.path().join("a.cfg"), "backend a1\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "garbage\n").unwrap();
        let cfg = load(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = cfg.proxies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a1", "b2"]);
        let missing = dir.path().join("nope.cfg");
        let e = load(std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "[ALERT] config : Could not open configuration file {} : No such file or directory",
                missing.display()
            )
        );
        let empty = tempfile::tempdir().unwrap();
        let e = load(&[empty.path().to_path_buf()]).unwrap_err().to_string();
        assert!(
            e.contains("no *.cfg configuration file found in directory"),
            "{e}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn parser_never_panics_on_text(s in "\\PC{0,300}") {
            let _ = parse_str("p.cfg", &s);
        }

        #[test]
        fn parser_never_panics_on_bytes(b in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse_str("p.cfg", &String::from_utf8_lossy(&b));
        }

        #[test]
        fn parser_never_panics_on_keyword_soup(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec![
                        "global", "defaults", "frontend", "backend", "listen", "mailers", "resolvers", "x", "from",
                        "server", "bind", "default_backend", "balance", "timeout", "option", "no", "id", "log",
                        "127.0.0.1:80", ":0", "*:65536", "check", "inter", "5s", "-1", "99999999d", "weight", "257",
                        "httpchk", "http-check", "expect", "status", "send", "hdr", "email-alert", "mailers",
                        "mailer", "nameserver", "stats", "socket", "level", "admin", "\"", "'", "\\", "#",
                        "global", "lua-load", "default-server", "roundrobin", "random(0)", "unix@", "ipv6@::1:1",
                    ]),
                    0..6,
                ),
                0..30,
            )
        ) {
            let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
            let _ = parse_str("p.cfg", &text);
        }
    }
}
