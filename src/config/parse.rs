//! The parse driver: reads files, splits lines, tracks the current section and hands each line to
//! its section parser, collecting every error instead of stopping at the first.

use super::lexer;
use super::section::{global, mailers, proxy, resolvers, server, Ctx};
use super::suggest::did_you_mean;
use super::validate;
use super::{
    Capabilities, Config, ConfigError, ConfigErrors, Location, MailersConfig, ProxyConfig,
    ResolversConfig, ServerConfig, ServerParams,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Section keywords that open a new section.
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "mailers",
];

/// HAProxy sections harp skips with one warning (their lines are not checked).
const IGNORED_SECTIONS: &[&str] = &[
    "userlist",
    "peers",
    "cache",
    "program",
    "http-errors",
    "ring",
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
        Ok(_) => Err(ConfigErrors { errors }),
        Err(more) => {
            errors.extend(more.errors);
            Err(ConfigErrors { errors })
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
        }
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
        p.disabled = false;
        self.meta = proxy::ProxyMeta::default();
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
        let mut warnings = Vec::new();
        let mut ctx = Ctx {
            loc,
            warnings: &mut warnings,
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
        for (number, line) in lexer::lex(text) {
            let loc = Location {
                file: file.clone(),
                line: number,
            };
            match line {
                Ok(line) => p.line(&line.words, &loc),
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
        Err(ConfigErrors { errors: p.errors })
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
    };
    server::parse_server(name, words, defaults, &mut ctx)
}
