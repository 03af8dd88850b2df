//! The certificate choice by SNI, the cipher lists and the settings' problems, on certificates
//! made here (rcgen) and written to a temporary directory.

use std::path::{Path, PathBuf};

use super::acceptor::{filter, Selection};
use super::{BindTls, CertSource, ClientAuth, TlsVersion};

/// A self-signed certificate for `names` (the first is the CN) with its key, one PEM file.
fn cert(dir: &Path, file: &str, names: &[&str]) -> PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let c = p.self_signed(&key).expect("sign");
    let path = dir.join(file);
    std::fs::write(&path, format!("{}{}", c.pem(), key.serialize_pem())).expect("write");
    path
}

fn bind(certs: Vec<CertSource>, strict: bool) -> super::Acceptor {
    let t = BindTls {
        enabled: true,
        certs,
        strict_sni: strict,
        ..BindTls::default()
    };
    t.build("'bind :443'").expect("build").0
}

fn subject_for(a: &super::Acceptor, sni: Option<&str>) -> Option<String> {
    a.pick(sni, &[])
        .and_then(|i| a.subject(i))
        .map(|s| s.to_string())
}

#[test]
fn the_sni_picks_exact_names_then_one_label_wildcards_then_the_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let www = cert(dir.path(), "www.pem", &["www.example.test"]);
    let wild = cert(dir.path(), "wild.pem", &["*.example.test"]);
    let a = bind(vec![CertSource::Crt(wild), CertSource::Crt(www)], false);
    let got = |sni| subject_for(&a, sni);
    assert_eq!(
        got(Some("www.example.test")).as_deref(),
        Some("/CN=www.example.test")
    );
    assert_eq!(
        got(Some("WWW.EXAMPLE.TEST")).as_deref(),
        Some("/CN=www.example.test")
    );
    assert_eq!(
        got(Some("foo.example.test")).as_deref(),
        Some("/CN=*.example.test")
    );
    // a wildcard covers one label; anything else gets the first certificate
    assert_eq!(
        got(Some("a.b.example.test")).as_deref(),
        Some("/CN=*.example.test")
    );
    assert_eq!(got(None).as_deref(), Some("/CN=*.example.test"));
}

#[test]
fn strict_sni_has_no_default_and_lists_keep_their_place() {
    let dir = tempfile::tempdir().expect("tmp");
    let www = cert(dir.path(), "www.pem", &["www.example.test"]);
    let other = cert(dir.path(), "other.pem", &["other.example.test"]);
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!(
            "# certificates\n{} alias.test !other.example.test\n",
            other.display()
        ),
    )
    .expect("write");
    let a = bind(
        vec![CertSource::List(list.clone()), CertSource::Crt(www.clone())],
        true,
    );
    assert_eq!(subject_for(&a, None), None);
    assert_eq!(subject_for(&a, Some("nope.test")), None);
    // a list's filters replace the certificate's own names
    assert_eq!(
        subject_for(&a, Some("alias.test")).as_deref(),
        Some("/CN=other.example.test")
    );
    assert_eq!(subject_for(&a, Some("other.example.test")), None);
    // the first loaded is the default, whichever keyword brought it
    let a = bind(vec![CertSource::List(list), CertSource::Crt(www)], false);
    assert_eq!(
        subject_for(&a, None).as_deref(),
        Some("/CN=other.example.test")
    );
}

#[test]
fn cipher_lists_name_suites_or_rules_and_garbage_is_refused() {
    let sel = |named: &[&str], rest| {
        Ok(Some(Selection {
            named: named.iter().map(|s| s.to_string()).collect(),
            rest,
        }))
    };
    assert_eq!(filter(None), Ok(None));
    assert_eq!(filter(Some("FOO")), Err("FOO".to_string()));
    assert_eq!(filter(Some("HIGH:!aNULL:!MD5")), sel(&[], true));
    assert_eq!(filter(Some("DEFAULT@SECLEVEL=1")), sel(&[], true));
    assert_eq!(
        filter(Some("ECDHE-RSA-AES128-GCM-SHA256:HIGH")),
        sel(&["ECDHE-RSA-AES128-GCM-SHA256"], true)
    );
    // CBC ciphers rustls lacks: none of that version, no error
    assert_eq!(filter(Some("AES128-SHA:AES256-SHA")), sel(&[], false));
}

#[test]
fn settings_haproxy_refuses_after_parsing_are_named() {
    let t = BindTls {
        enabled: true,
        ..BindTls::default()
    };
    assert_eq!(
        t.problem(),
        Some(("no SSL certificate specified".into(), " (use 'crt')"))
    );
    let t = BindTls {
        certs: vec![CertSource::Crt("x.pem".into())],
        tuning: super::TlsTuning {
            min_ver: Some(TlsVersion::Tls13),
            max_ver: Some(TlsVersion::Tls12),
            ..super::TlsTuning::default()
        },
        ..BindTls::default()
    };
    assert_eq!(
        t.problem().map(|p| p.0),
        Some("all SSL/TLS versions are disabled".into())
    );
    let t = BindTls {
        certs: vec![CertSource::Crt("x.pem".into())],
        verify: ClientAuth::Optional,
        ..BindTls::default()
    };
    assert_eq!(
        t.problem().map(|p| p.0),
        Some("verify is enabled but no CA file specified".into())
    );
}
