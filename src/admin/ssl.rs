//! `show ssl cert`, `set ssl cert <file> <<`, `commit ssl cert <file>`, `abort ssl cert <file>`:
//! replacing a bind's certificate without a restart, in one transaction at a time, as HAProxy
//! does it (what ACME tools' HAProxy hooks drive). Replies are HAProxy 2.6's, watched on a real
//! one, quirks included (`No ongoing transaction! !`, a `set` for another file updating the open
//! transaction).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::model::Registry;
use crate::tls::{CertFile, CertInfo};

/// The open transaction: a certificate file's new contents, not yet served.
#[derive(Debug)]
pub struct CertTx {
    /// The file it replaces.
    path: String,
    /// The payload's certificates, the leaf first.
    chain: Vec<CertificateDer<'static>>,
    /// Its key, if it had one (checked at commit, as HAProxy checks it).
    key: Option<PrivateKeyDer<'static>>,
}

/// Every loaded instance of every certificate file, by path (sorted, as HAProxy lists them).
fn files(reg: &Registry) -> BTreeMap<String, Vec<Arc<CertFile>>> {
    let mut out: BTreeMap<String, Vec<Arc<CertFile>>> = BTreeMap::new();
    for p in reg.proxies().iter() {
        for b in &p.config.binds {
            let Some(a) = &b.tls else { continue };
            // a `bind a,b` line shares one acceptor: count its files once
            if p.config
                .binds
                .iter()
                .take_while(|x| !std::ptr::eq(*x, b))
                .any(|x| x.tls.as_ref() == Some(a))
            {
                continue;
            }
            for f in a.files() {
                out.entry(f.path.clone()).or_default().push(f.clone());
            }
        }
    }
    out
}

/// `show ssl cert [[*]<file>]`.
pub fn show(reg: &Registry, tx: &Option<CertTx>, args: &[String]) -> String {
    let Some(name) = args.first() else {
        let mut out = String::new();
        if let Some(t) = tx {
            out.push_str(&format!("# transaction\n*{}\n", t.path));
        }
        out.push_str("# filename\n");
        for path in files(reg).keys() {
            out.push_str(path);
            out.push('\n');
        }
        return out;
    };
    let missing = "Can't display the certificate: Not found or the certificate is a bundle!\n";
    let (chain, used) = match name.strip_prefix('*') {
        Some(path) => match tx.as_ref().filter(|t| t.path == path) {
            Some(t) => (t.chain.clone(), false),
            None => return missing.into(),
        },
        None => match files(reg)
            .get(name.as_str())
            .and_then(|v| v.first().cloned())
        {
            Some(f) => (f.chain(), true),
            None => return missing.into(),
        },
    };
    details(name, used, &chain).unwrap_or_else(|| missing.into())
}

/// HAProxy's detail block of a certificate file.
fn details(name: &str, used: bool, chain: &[CertificateDer<'_>]) -> Option<String> {
    let leaf: CertInfo = crate::tls::describe(chain.first()?)?;
    let mut out = format!(
        "Filename: {name}\nStatus: {}\nSerial: {}\nnotBefore: {}\nnotAfter: {}\n",
        if used { "Used" } else { "Unused" },
        leaf.serial,
        leaf.not_before,
        leaf.not_after
    );
    if !leaf.dns_names.is_empty() {
        let sans: Vec<String> = leaf.dns_names.iter().map(|n| format!("DNS:{n}")).collect();
        out.push_str(&format!("Subject Alternative Name: {}\n", sans.join(", ")));
    }
    out.push_str(&format!(
        "Algorithm: {}\nSHA1 FingerPrint: {}\nSubject: {}\nIssuer: {}\n",
        leaf.algorithm, leaf.sha1, leaf.subject, leaf.issuer
    ));
    for c in &chain[1..] {
        if let Some(i) = crate::tls::describe(c) {
            out.push_str(&format!(
                "Chain Subject: {}\nChain Issuer: {}\n",
                i.subject, i.issuer
            ));
        }
    }
    out.push_str("OCSP Response Key: \n");
    Some(out)
}

/// `set ssl cert <file> <<` with the new PEM (certificates, then or before the key).
pub fn set(
    reg: &Registry,
    tx: &mut Option<CertTx>,
    args: &[String],
    payload: Option<&str>,
) -> String {
    let usage = "'set ssl cert expects a filename and a certificate as a payload\n";
    let (Some(path), Some(payload)) = (args.first(), payload) else {
        return usage.into();
    };
    // (with a transaction open HAProxy 2.6 looks no file up: the payload updates it)
    if tx.is_none() && !files(reg).contains_key(path.as_str()) {
        return format!(
            "Can't replace a certificate which is not referenced by the configuration!\nCan't update {path}!\n"
        );
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(payload.as_bytes())
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() || crate::tls::describe(&chain[0]).is_none() {
        return format!(
            "unable to load certificate from file '{path}'.\nCan't load the payload\nCan't update {path}!\n"
        );
    }
    let key = PrivateKeyDer::from_pem_slice(payload.as_bytes()).ok();
    match tx {
        // (HAProxy 2.6 keeps the open transaction's file, whatever file this one names)
        Some(t) => {
            t.chain = chain;
            t.key = key;
            format!("Transaction updated for certificate {}!\n", t.path)
        }
        None => {
            *tx = Some(CertTx {
                path: path.clone(),
                chain,
                key,
            });
            format!("Transaction created for certificate {path}!\n")
        }
    }
}

/// `commit ssl cert <file>`: every instance of the file serves the new certificate from the next
/// handshake on; one `.` per instance, as HAProxy prints them.
pub fn commit(reg: &Registry, tx: &mut Option<CertTx>, args: &[String]) -> String {
    let Some(path) = args.first() else {
        return "'commit ssl cert expects a filename\n".into();
    };
    let Some(t) = tx.as_ref() else {
        return format!("No ongoing transaction! !\nCan't commit {path}!\n");
    };
    if &t.path != path {
        return format!(
            "The ongoing transaction is about '{}' but you are trying to set '{path}'\nCan't commit {path}!\n",
            t.path
        );
    }
    let Some(key) = t.key.as_ref().map(|k| k.clone_key()) else {
        return format!(
            "The transaction must contain at least a certificate and a private key!\nCan't commit {path}!\n"
        );
    };
    let instances = files(reg).remove(path.as_str()).unwrap_or_default();
    // the first instance checks the pair; the others take the same
    let mut dots = String::new();
    for f in &instances {
        if let Err(e) = f.replace(t.chain.clone(), key.clone_key()) {
            return format!("{e}\nCan't commit {path}!\n");
        }
        dots.push('.');
    }
    // the binds holding the file read its names again
    for p in reg.proxies().iter() {
        for b in &p.config.binds {
            if let Some(a) = &b.tls {
                if a.files()
                    .any(|f| instances.iter().any(|i| Arc::ptr_eq(f, i)))
                {
                    a.refresh();
                }
            }
        }
    }
    *tx = None;
    format!("Committing {path}{dots}\nSuccess!\n")
}

/// `abort ssl cert <file>`.
pub fn abort(tx: &mut Option<CertTx>, args: &[String]) -> String {
    let Some(path) = args.first() else {
        return "'abort ssl cert' expects a filename\n".into();
    };
    match tx.as_ref() {
        None => "No ongoing transaction!\n".into(),
        Some(t) if &t.path != path => format!(
            "The ongoing transaction is about '{}' but you are trying to abort a transaction for '{path}'\n",
            t.path
        ),
        Some(_) => {
            *tx = None;
            format!("Transaction aborted for certificate '{path}'!\n")
        }
    }
}
