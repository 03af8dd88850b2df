//! Certificate files as HAProxy reads them for `crt`: one PEM file holding the certificate,
//! its chain and its private key (or the key beside it in `<file>.key`), or a directory of
//! such files; and the names a certificate answers to for SNI (its DNS SANs and its CN).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;

/// A loaded certificate: what rustls serves, the names it answers to, its subject.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// Chain and signing key.
    pub key: Arc<CertifiedKey>,
    /// Lowercase DNS names (`*.example.test` kept as written) from the SANs and the CN.
    pub names: Vec<String>,
    /// The subject, one-line (`ssl_f_s_dn`).
    pub subject: String,
}

/// A certificate file a bind serves: what it holds now, replaced whole by the Runtime API's
/// `commit ssl cert` (new handshakes take the new one; sessions going on keep theirs).
#[derive(Debug)]
pub struct CertFile {
    /// The path, as the configuration (or the directory scan) names it.
    pub path: String,
    current: ArcSwap<Loaded>,
}

impl CertFile {
    fn new(path: String, loaded: Loaded) -> Arc<CertFile> {
        Arc::new(CertFile {
            path,
            current: ArcSwap::from_pointee(loaded),
        })
    }

    /// What it holds now.
    pub(crate) fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    /// Its chain, first the leaf (`show ssl cert`).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.load().key.cert.clone()
    }

    /// Replaces what it holds by `chain` and `key` (a PEM payload's); the error is HAProxy's
    /// text when they do not go together.
    pub fn replace(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), String> {
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        let loaded = certified(chain, key, &provider).map_err(|_| {
            format!(
                "inconsistencies between private key and certificate loaded '{}'.",
                self.path
            )
        })?;
        self.current.store(Arc::new(loaded));
        Ok(())
    }
}

/// Files of a `crt` directory that are not certificates: HAProxy's side files.
const SIDE_FILES: &[&str] = &["key", "ocsp", "issuer", "sctl", "dh"];

/// Loads `crt <path>`: the file, or every certificate file of the directory in name order.
pub(crate) fn load_crt(
    path: &Path,
    provider: &CryptoProvider,
) -> Result<Vec<Arc<CertFile>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "unable to stat SSL certificate from file '{}' : {}.",
            path.display(),
            os_text(&e)
        )
    })?;
    if !meta.is_dir() {
        return Ok(vec![CertFile::new(
            path.display().to_string(),
            load_file(path, provider)?,
        )]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| {
            format!(
                "unable to scan directory '{}' : {}.",
                path.display(),
                os_text(&e)
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            !SIDE_FILES.contains(&ext)
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            Ok(CertFile::new(
                f.display().to_string(),
                load_file(f, provider)?,
            ))
        })
        .collect()
}

/// An OS error as `strerror` words it, without Rust's "(os error N)".
fn os_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The certificates and the key of one PEM file (the key may be in `<file>.key`).
pub fn load_chain(
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "unable to stat SSL certificate from file '{shown}' : {}.",
            os_text(&e)
        )
    })?;
    let unloadable = || format!("unable to load certificate from file '{shown}'.");
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| unloadable())?;
    if certs.is_empty() {
        return Err(unloadable());
    }
    let key = match PrivateKeyDer::from_pem_slice(&text) {
        Ok(k) => k,
        Err(_) => {
            let mut side = path.as_os_str().to_owned();
            side.push(".key");
            let side = PathBuf::from(side);
            let none = || format!("No Private Key found in '{}'.", side.display());
            match std::fs::read(&side) {
                Ok(t) => PrivateKeyDer::from_pem_slice(&t).map_err(|_| none())?,
                Err(_) => return Err(none()),
            }
        }
    };
    Ok((certs, key))
}

/// One certificate file, ready to serve.
fn load_file(path: &Path, provider: &CryptoProvider) -> Result<Loaded, String> {
    let (certs, key) = load_chain(path)?;
    let shown = path.display();
    certified(certs, key, provider).map_err(|e| match e {
        Unfit::Key(e) => format!("unable to load SSL private key from PEM file '{shown}': {e}."),
        Unfit::Mismatch => format!(
            "inconsistencies between private key and certificate loaded from PEM file '{shown}'."
        ),
        Unfit::Cert => format!("unable to load certificate from file '{shown}'."),
    })
}

/// Why a chain and a key cannot be served.
enum Unfit {
    /// The key does not load.
    Key(tokio_rustls::rustls::Error),
    /// It is not the certificate's.
    Mismatch,
    /// The certificate does not parse.
    Cert,
}

/// A chain and its key, ready to serve.
fn certified(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<Loaded, Unfit> {
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(Unfit::Key)?;
    let ck = CertifiedKey::new(certs, signing);
    if let Err(e) = ck.keys_match() {
        if !matches!(
            e,
            tokio_rustls::rustls::Error::InconsistentKeys(
                tokio_rustls::rustls::InconsistentKeys::Unknown
            )
        ) {
            return Err(Unfit::Mismatch);
        }
    }
    let (names, subject) = ck.cert.first().and_then(names_of).ok_or(Unfit::Cert)?;
    Ok(Loaded {
        key: Arc::new(ck),
        names,
        subject,
    })
}

/// A certificate's DNS names (SANs, then the CN if not among them), lowercase, and its subject.
pub(crate) fn names_of(cert: &CertificateDer<'_>) -> Option<(Vec<String>, String)> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    let mut names: Vec<String> = ee.valid_dns_names().map(str::to_ascii_lowercase).collect();
    if let Some(cn) = super::dn::common_name(ee.subject()) {
        let cn = cn.to_ascii_lowercase();
        if !names.contains(&cn) {
            names.push(cn);
        }
    }
    Some((names, super::dn::one_line(ee.subject())))
}

/// Adds the certificates of the PEM file `path` to `roots` (a `ca-file`); the error is the
/// reason alone, for the caller to place.
pub(crate) fn add_roots(
    roots: &mut tokio_rustls::rustls::RootCertStore,
    path: &Path,
) -> Result<(), String> {
    for c in CertificateDer::pem_file_iter(path).map_err(|e| e.to_string())? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The revocation lists of the PEM file `path` (a `crl-file`); the error is the reason alone.
pub(crate) fn load_crls(
    path: &Path,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateRevocationListDer<'static>>, String> {
    tokio_rustls::rustls::pki_types::CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// A certificate's common name.
pub(crate) fn common_name_of(cert: &CertificateDer<'_>) -> Option<String> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    super::dn::common_name(ee.subject())
}

/// A certificate's subject and issuer, one-line (`ssl_c_s_dn`, `ssl_c_i_dn`).
pub(crate) fn subject_issuer(cert: &CertificateDer<'_>) -> Option<(String, String)> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    Some((
        super::dn::one_line(ee.subject()),
        super::dn::one_line(ee.issuer()),
    ))
}
