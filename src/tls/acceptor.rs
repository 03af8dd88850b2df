//! `bind ... ssl`: the TLS settings of a listener as HAProxy's `bind` keywords give them, and
//! the rustls server configuration built from them once, at configuration time (a certificate
//! that does not load is a configuration error, with the file named), then shared by every
//! worker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{
    version, RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion,
};

use arc_swap::ArcSwap;

use super::certs::{add_roots, load_crls, load_crt, CertFile};

/// A protocol version as `ssl-min-ver`/`ssl-max-ver` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `SSLv3`.
    Ssl3,
    /// `TLSv1.0`.
    Tls10,
    /// `TLSv1.1`.
    Tls11,
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

impl TlsVersion {
    /// `SSLv3`, `TLSv1.0`... as HAProxy's keywords write them.
    pub fn parse(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "SSLv3" => TlsVersion::Ssl3,
            "TLSv1.0" => TlsVersion::Tls10,
            "TLSv1.1" => TlsVersion::Tls11,
            "TLSv1.2" => TlsVersion::Tls12,
            "TLSv1.3" => TlsVersion::Tls13,
            _ => return None,
        })
    }

    /// The version `no-<v>`/`force-<v>` keywords name (`tlsv12`).
    pub fn from_keyword(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "sslv3" => TlsVersion::Ssl3,
            "tlsv10" => TlsVersion::Tls10,
            "tlsv11" => TlsVersion::Tls11,
            "tlsv12" => TlsVersion::Tls12,
            "tlsv13" => TlsVersion::Tls13,
            _ => return None,
        })
    }
}

/// Where a bind's certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// `crt <file|dir>`.
    Crt(PathBuf),
    /// `crt-list <file>`.
    List(PathBuf),
}

/// `verify` on a bind: whether clients must show a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `verify none` (the default): none is asked for.
    #[default]
    None,
    /// `verify optional`: asked for, checked when given.
    Optional,
    /// `verify required`: the handshake fails without a valid one.
    Required,
}

/// The TLS keywords of one `bind` line (with `ssl-default-bind-*` applied first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindTls {
    /// `ssl`: the listener speaks TLS (without it, `crt` only loads certificates).
    pub enabled: bool,
    /// `crt <file|dir>` and `crt-list <file>`, in the line's order: the first certificate
    /// loaded is the default one.
    pub certs: Vec<CertSource>,
    /// `alpn <proto>,...`.
    pub alpn: Vec<Vec<u8>>,
    /// Versions and ciphers: `ssl-min-ver`, `no-tlsv13`, `ciphers`...
    pub tuning: TlsTuning,
    /// `verify`.
    pub verify: ClientAuth,
    /// `ca-file`: the roots client certificates are checked against.
    pub ca_file: Option<PathBuf>,
    /// `crl-file`: revoked client certificates.
    pub crl_file: Option<PathBuf>,
    /// `strict-sni`: no default certificate; a client naming none the bind has fails.
    pub strict_sni: bool,
    /// `no-tls-tickets`: resumption by the server's session cache only.
    pub no_tickets: bool,
    /// `prefer-client-ciphers`.
    pub prefer_client_ciphers: bool,
    /// `tune.ssl.cachesize`: sessions the server keeps for resumption (unset: HAProxy's
    /// 20,000; 0: none).
    pub cache_size: Option<usize>,
    /// Global `crt-base`: where relative `crt` paths (and those in `crt-list` files) are.
    pub crt_base: Option<PathBuf>,
    /// Global `ca-base`: where relative `ca-file` and `crl-file` paths are.
    pub ca_base: Option<PathBuf>,
}

/// A built TLS listener configuration: what the workers hand new connections to.
#[derive(Clone)]
pub struct Acceptor {
    /// rustls' configuration.
    pub config: Arc<ServerConfig>,
    /// The same without ALPN, for clients offering none of the bind's protocols: HAProxy goes
    /// on without ALPN with them, where rustls would end the handshake.
    no_alpn: Arc<ServerConfig>,
    resolver: Arc<Resolver>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("certs", &self.resolver.slots.len())
            .finish()
    }
}

impl PartialEq for Acceptor {
    fn eq(&self, other: &Acceptor) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for Acceptor {}

impl Acceptor {
    /// The certificate served to a client naming `sni` and signing with `schemes` (what
    /// rustls' resolver will pick): its number, or `None` under `strict-sni` without one.
    pub fn pick(
        &self,
        sni: Option<&str>,
        schemes: &[tokio_rustls::rustls::SignatureScheme],
    ) -> Option<usize> {
        self.resolver.pick(sni, schemes)
    }

    /// The subject (one-line) of certificate `i` (`ssl_f_s_dn`).
    pub fn subject(&self, i: usize) -> Option<String> {
        self.resolver
            .slots
            .get(i)
            .map(|(f, _)| f.current().subject.clone())
    }

    /// Its certificate files, in load order (a file twice if loaded twice).
    pub fn files(&self) -> impl Iterator<Item = &Arc<CertFile>> {
        self.resolver.slots.iter().map(|(f, _)| f)
    }

    /// Reads the names of its certificates again (one of its files was replaced).
    pub fn refresh(&self) {
        self.resolver.refresh();
    }

    /// The configuration for a client offering `alpn` (`None`: no ALPN extension).
    pub fn config_for<'p>(
        &self,
        alpn: Option<impl Iterator<Item = &'p [u8]>>,
    ) -> Arc<ServerConfig> {
        let ours = &self.config.alpn_protocols;
        if ours.is_empty() {
            return self.config.clone();
        }
        match alpn {
            Some(mut offered) => {
                if offered.any(|p| ours.iter().any(|o| o == p)) {
                    self.config.clone()
                } else {
                    self.no_alpn.clone()
                }
            }
            None => self.config.clone(),
        }
    }
}

/// Picks a certificate by the client's SNI: an exact name, else a wildcard one covering it,
/// else (without `strict-sni`) the bind's first certificate. Its files can be replaced at run
/// time (`commit ssl cert`): the names are then read again ([`Resolver::refresh`]).
#[derive(Debug)]
struct Resolver {
    /// The certificates in load order, each with its `crt-list` SNI filters.
    slots: Vec<(Arc<CertFile>, Vec<String>)>,
    names: ArcSwap<Names>,
    strict: bool,
}

/// The names the certificates answer to: slot numbers by exact name, and by the parent of a
/// wildcard (`*.example.test` under `example.test`).
#[derive(Debug, Default)]
struct Names {
    exact: HashMap<String, Vec<usize>>,
    wild: HashMap<String, Vec<usize>>,
}

impl Names {
    fn of(slots: &[(Arc<CertFile>, Vec<String>)]) -> Names {
        let mut n = Names::default();
        for (i, (file, filters)) in slots.iter().enumerate() {
            let (pos, neg): (Vec<&String>, Vec<&String>) =
                filters.iter().partition(|n| !n.starts_with('!'));
            let names: Vec<String> = if pos.is_empty() {
                file.current().names.clone()
            } else {
                pos.iter().map(|n| n.to_ascii_lowercase()).collect()
            };
            for name in names {
                if neg.iter().any(|x| x[1..].eq_ignore_ascii_case(&name)) {
                    continue;
                }
                match name.strip_prefix("*.") {
                    Some(rest) => n.wild.entry(rest.to_string()).or_default().push(i),
                    None => n.exact.entry(name).or_default().push(i),
                }
            }
        }
        n
    }
}

impl Resolver {
    fn new(slots: Vec<(Arc<CertFile>, Vec<String>)>, strict: bool) -> Resolver {
        let names = ArcSwap::from_pointee(Names::of(&slots));
        Resolver {
            slots,
            names,
            strict,
        }
    }

    /// Reads the certificates' names again, after one of its files was replaced.
    fn refresh(&self) {
        self.names.store(Arc::new(Names::of(&self.slots)));
    }

    /// The certificate for `sni`, preferring one whose key signs with a scheme the client
    /// offers (an ECDSA and an RSA certificate for one name).
    fn pick(
        &self,
        sni: Option<&str>,
        schemes: &[tokio_rustls::rustls::SignatureScheme],
    ) -> Option<usize> {
        let choose = |list: &Vec<usize>| {
            list.iter()
                .copied()
                .find(|&i| {
                    schemes.is_empty()
                        || self.slots[i]
                            .0
                            .current()
                            .key
                            .key
                            .choose_scheme(schemes)
                            .is_some()
                })
                .or_else(|| list.first().copied())
        };
        let names = self.names.load();
        if let Some(name) = sni.map(str::to_ascii_lowercase) {
            if let Some(i) = names.exact.get(&name).and_then(choose) {
                return Some(i);
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(i) = names.wild.get(parent).and_then(choose) {
                    return Some(i);
                }
            }
        }
        (!self.strict && !self.slots.is_empty()).then_some(0)
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name(), hello.signature_schemes())
            .map(|i| self.slots[i].0.current().key.clone())
    }
}

/// HAProxy's default `tune.ssl.cachesize`.
const CACHE_SIZE: usize = 20_000;

impl BindTls {
    /// What HAProxy finds wrong with these settings once the configuration is read, before
    /// loading anything: the problem, and what follows the bind's location in its message
    /// (`no SSL certificate specified`, ` (use 'crt')`).
    pub fn problem(&self) -> Option<(String, &'static str)> {
        if self.certs.is_empty() {
            return Some(("no SSL certificate specified".into(), " (use 'crt')"));
        }
        if self.tuning.versions().is_empty() {
            return Some(("all SSL/TLS versions are disabled".into(), ""));
        }
        if self.verify != ClientAuth::None && self.ca_file.is_none() {
            return Some(("verify is enabled but no CA file specified".into(), ""));
        }
        if let Err(list) = filter(self.tuning.ciphers.as_deref()) {
            return Some((format!("unable to set SSL cipher list to '{list}'"), ""));
        }
        if let Err(list) = filter(self.tuning.ciphersuites.as_deref()) {
            return Some((
                format!("unable to set TLS 1.3 cipher suites to '{list}'"),
                "",
            ));
        }
        None
    }

    /// Builds the listener's configuration, loading its certificates; `bind` names the line
    /// in errors (`'bind :443' in section 'frontend'`). Returns it with the warnings building
    /// gave. Settings with a [`BindTls::problem`] are refused.
    pub fn build(&self, bind: &str) -> Result<(Acceptor, Vec<String>), String> {
        if let Some((p, _)) = self.problem() {
            return Err(format!("{bind} : {p}."));
        }
        let mut warnings = Vec::new();
        let provider = Arc::new(crypto::ring::default_provider());
        let mut certs = Vec::new();
        let mut filters = Vec::new();
        for source in &self.certs {
            match source {
                CertSource::Crt(c) => {
                    let loaded = load_crt(c, &provider).map_err(|e| format!("{bind} : {e}"))?;
                    filters.extend(loaded.iter().map(|_| Vec::new()));
                    certs.extend(loaded);
                }
                CertSource::List(list) => {
                    let (loaded, f) = load_crt_list(
                        list,
                        self.crt_base.as_deref(),
                        &provider,
                        bind,
                        &mut warnings,
                    )?;
                    certs.extend(loaded);
                    filters.extend(f);
                }
            }
        }
        if certs.is_empty() {
            return Err(format!(
                "{bind} : no certificate found in the 'crt' directories and 'crt-list' files."
            ));
        }
        let versions = self.tuning.versions();
        let suites = self.tuning.suites(&provider, &versions, bind)?;
        let provider = CryptoProvider {
            cipher_suites: suites,
            ..(*provider).clone()
        };
        let provider = Arc::new(provider);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("{bind} : {e}"))?;
        let builder = match self.verify {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let Some(ca) = &self.ca_file else {
                    return Err(format!(
                        "{bind} : verify is enabled but no CA file specified."
                    ));
                };
                let mut roots = RootCertStore::empty();
                add_roots(&mut roots, ca).map_err(|e| {
                    format!("{bind} : unable to load CA file '{}' : {e}.", ca.display())
                })?;
                let mut v =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                if let Some(crl) = &self.crl_file {
                    let crls = load_crls(crl).map_err(|e| {
                        format!(
                            "{bind} : unable to load CRL file '{}' : {e}.",
                            crl.display()
                        )
                    })?;
                    v = v.with_crls(crls);
                }
                if auth == ClientAuth::Optional {
                    v = v.allow_unauthenticated();
                }
                let v = v.build().map_err(|e| format!("{bind} : {e}"))?;
                builder.with_client_cert_verifier(v)
            }
        };
        let slots = certs.into_iter().zip(filters).collect();
        let resolver = Arc::new(Resolver::new(slots, self.strict_sni));
        let mut config = builder.with_cert_resolver(resolver.clone());
        config.alpn_protocols = self.alpn.clone();
        config.ignore_client_order = !self.prefer_client_ciphers;
        // `tune.ssl.cachesize 0`: no server-side cache, as in HAProxy
        config.session_storage = match self.cache_size {
            Some(0) => Arc::new(tokio_rustls::rustls::server::NoServerSessionStorage {}),
            n => ServerSessionMemoryCache::new(n.unwrap_or(CACHE_SIZE)),
        };
        if !self.no_tickets {
            config.ticketer = crypto::ring::Ticketer::new().map_err(|e| format!("{bind} : {e}"))?;
        }
        let mut no_alpn = config.clone();
        no_alpn.alpn_protocols.clear();
        Ok((
            Acceptor {
                config: Arc::new(config),
                no_alpn: Arc::new(no_alpn),
                resolver,
            },
            warnings,
        ))
    }
}

/// The protocol versions and cipher suites a TLS end allows: `ssl-min-ver`, `ssl-max-ver`,
/// `no-*`, `force-*`, `ciphers`, `ciphersuites`, on `bind` and `server` lines alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsTuning {
    /// `ssl-min-ver`.
    pub min_ver: Option<TlsVersion>,
    /// `ssl-max-ver`.
    pub max_ver: Option<TlsVersion>,
    /// `no-<version>`.
    pub disabled: Vec<TlsVersion>,
    /// `force-<version>`.
    pub forced: Option<TlsVersion>,
    /// `ciphers`.
    pub ciphers: Option<String>,
    /// `ciphersuites`.
    pub ciphersuites: Option<String>,
}

impl TlsTuning {
    /// Reads the tuning keyword at `words[i]` (`ssl-min-ver <v>`, `ssl-max-ver <v>`,
    /// `no-<v>`, `force-<v>`, `ciphers <list>`, `ciphersuites <list>`): `Some(n)` words used,
    /// `None` when it is not one of them. Shared by `bind`, `server` and the global defaults.
    pub fn keyword(&mut self, words: &[String], i: usize) -> Result<Option<usize>, String> {
        let kw = words[i].as_str();
        let val = || {
            words
                .get(i + 1)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("'{kw}' : missing argument"))
        };
        let version = |v: &str| {
            TlsVersion::parse(v).ok_or_else(|| format!("'{v}' : unknown ssl/tls version"))
        };
        match kw {
            "ssl-min-ver" => self.min_ver = Some(version(val()?)?),
            "ssl-max-ver" => self.max_ver = Some(version(val()?)?),
            "ciphers" => self.ciphers = Some(val()?.to_string()),
            "ciphersuites" => self.ciphersuites = Some(val()?.to_string()),
            _ => {
                let (no, v) = match (kw.strip_prefix("no-"), kw.strip_prefix("force-")) {
                    (Some(v), _) => (true, v),
                    (_, Some(v)) => (false, v),
                    _ => return Ok(None),
                };
                let Some(v) = TlsVersion::from_keyword(v) else {
                    return Ok(None);
                };
                if no {
                    self.disabled.push(v);
                } else {
                    self.forced = Some(v);
                }
                return Ok(Some(1));
            }
        }
        Ok(Some(2))
    }

    /// The versions left by `ssl-min-ver`, `ssl-max-ver`, `no-*` and `force-*`, of the two
    /// rustls speaks.
    pub fn versions(&self) -> Vec<&'static SupportedProtocolVersion> {
        let mut out = Vec::new();
        for (v, rv) in [
            (TlsVersion::Tls12, &version::TLS12),
            (TlsVersion::Tls13, &version::TLS13),
        ] {
            let on = match self.forced {
                Some(f) => f == v,
                None => {
                    self.min_ver.map_or(true, |m| m <= v)
                        && self.max_ver.map_or(true, |m| m >= v)
                        && !self.disabled.contains(&v)
                }
            };
            if on {
                out.push(rv);
            }
        }
        out
    }

    /// The provider's suites that `ciphers` (TLS 1.2) and `ciphersuites` (TLS 1.3) leave;
    /// `label` starts error messages.
    pub fn suites(
        &self,
        provider: &CryptoProvider,
        versions: &[&'static SupportedProtocolVersion],
        label: &str,
    ) -> Result<Vec<SupportedCipherSuite>, String> {
        let bind = label;
        let v12 = filter(self.ciphers.as_deref()).map_err(|l| format!("{bind} : {l}"))?;
        let v13 = filter(self.ciphersuites.as_deref()).map_err(|l| format!("{bind} : {l}"))?;
        let mut out: Vec<SupportedCipherSuite> = Vec::new();
        // the named ones in the list's order, then (unset, or with rules) the provider's others
        for (sel, is13) in [(&v13, true), (&v12, false)] {
            let of_version =
                |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_)) == is13;
            let start = out.len();
            if let Some(sel) = sel {
                for n in &sel.named {
                    if let Some(s) = provider
                        .cipher_suites
                        .iter()
                        .find(|s| of_version(s) && super::facts::suite_named(n) == Some(s.suite()))
                    {
                        if !out[start..].contains(s) {
                            out.push(*s);
                        }
                    }
                }
            }
            if sel.as_ref().map_or(true, |s| s.rest) {
                for s in provider.cipher_suites.iter().filter(|s| of_version(s)) {
                    if !out[start..].contains(s) {
                        out.push(*s);
                    }
                }
            }
        }
        let usable = out
            .iter()
            .any(|s| versions.iter().any(|v| s.version().version == v.version));
        if !usable {
            return Err(format!(
                "{bind} : none of the cipher suites left by 'ciphers'/'ciphersuites' is one harp supports ({}).",
                super::facts::suite_names().join(":")
            ));
        }
        Ok(out)
    }
}

/// OpenSSL's cipher-list keywords (groups of ciphers), which harp does not evaluate.
const KEYWORDS: &[&str] = &[
    "DEFAULT",
    "ALL",
    "COMPLEMENTOFALL",
    "COMPLEMENTOFDEFAULT",
    "HIGH",
    "MEDIUM",
    "LOW",
    "SECLEVEL",
    "aNULL",
    "eNULL",
    "NULL",
    "kRSA",
    "RSA",
    "aRSA",
    "kDHE",
    "kEDH",
    "DH",
    "DHE",
    "EDH",
    "ADH",
    "kEECDH",
    "kECDHE",
    "ECDH",
    "ECDHE",
    "EECDH",
    "AECDH",
    "aECDSA",
    "ECDSA",
    "aDSS",
    "DSS",
    "TLSv1.2",
    "TLSv1.0",
    "SSLv3",
    "AES",
    "AES128",
    "AES256",
    "AESGCM",
    "AESCCM",
    "CHACHA20",
    "ARIA",
    "CAMELLIA",
    "3DES",
    "DES",
    "RC4",
    "SHA1",
    "SHA",
    "SHA256",
    "SHA384",
    "PSK",
    "kPSK",
    "SUITEB128",
    "SUITEB128ONLY",
    "SUITEB192",
    "CBC",
];

/// What an OpenSSL cipher list asks of the suites rustls has.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Selection {
    /// The suites it names that rustls has, in its order.
    pub(super) named: Vec<String>,
    /// It also takes groups or rules (`HIGH`, `ECDHE+AESGCM`, `!aNULL`, `@SECLEVEL=1`) harp does
    /// not evaluate: the provider's other suites follow the named ones.
    pub(super) rest: bool,
}

/// Reads a cipher list (`None`: unset, the provider's suites). A list whose every word is
/// unknown to OpenSSL too (`FOO`) is refused, given back; one naming only ciphers rustls lacks
/// (`AES128-SHA`) selects none of its version.
pub(super) fn filter(list: Option<&str>) -> Result<Option<Selection>, String> {
    let Some(list) = list else { return Ok(None) };
    let mut named = Vec::new();
    let (mut rules, mut foreign) = (false, false);
    for tok in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        let tok = tok.strip_prefix('+').unwrap_or(tok);
        let is_name = |t: &str| {
            t.contains(['-', '_'])
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
        };
        if tok.starts_with(['!', '-', '@']) || tok.contains(['+', '@', '=']) {
            rules = true;
        } else if super::facts::suite_named(tok).is_some() {
            named.push(tok.to_string());
        } else if KEYWORDS.contains(&tok) {
            rules = true;
        } else if is_name(tok) {
            // a cipher OpenSSL knows and rustls does not have (CBC, DHE, RSA key exchange...)
            foreign = true;
        }
    }
    if named.is_empty() && !rules && !foreign {
        return Err(list.to_string());
    }
    Ok(Some(Selection { named, rest: rules }))
}

/// `path` under `base` when it is relative (`crt-base`, `ca-base`): absolute paths prevail.
pub fn in_base(base: Option<&std::path::Path>, path: &str) -> PathBuf {
    match base {
        Some(b) if !path.starts_with('/') => b.join(path),
        _ => PathBuf::from(path),
    }
}

/// The SNI filters of each certificate a `crt-list` loads.
type Filters = Vec<Vec<String>>;

/// A `crt-list` file: `<crt> [[<options>]] [<sni filter> ...]` per line, `#` comments. Per-line
/// options are not applied (warned): the bind's settings hold for every certificate.
fn load_crt_list(
    path: &std::path::Path,
    crt_base: Option<&std::path::Path>,
    provider: &CryptoProvider,
    bind: &str,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Arc<CertFile>>, Filters), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let e = e.to_string();
        let e = e.split(" (os error").next().unwrap_or("");
        format!(
            "{bind} : 'crt-list' : cannot open file '{}' : {e}",
            path.display()
        )
    })?;
    let mut certs = Vec::new();
    let mut filters = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (crt, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut rest = rest.trim();
        if let Some(r) = rest.strip_prefix('[') {
            let Some((opts, after)) = r.split_once(']') else {
                return Err(format!(
                    "{bind} : crt-list '{}' line {} : missing ']'.",
                    path.display(),
                    n + 1
                ));
            };
            if !opts.trim().is_empty() {
                warnings.push(format!(
                    "crt-list '{}' line {} : per-certificate options '[{}]' are not supported by harp; the bind's settings apply.",
                    path.display(),
                    n + 1,
                    opts.trim()
                ));
            }
            rest = after.trim();
        }
        let mut file = in_base(crt_base, crt);
        if file.is_relative() && !file.exists() {
            if let Some(dir) = path.parent() {
                file = dir.join(crt);
            }
        }
        let f: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
        for c in load_crt(&file, provider).map_err(|e| format!("{bind} : {e}"))? {
            certs.push(c);
            filters.push(f.clone());
        }
    }
    Ok((certs, filters))
}
