//! The TLS keywords of `bind` lines, also read from `ssl-default-bind-options` (HAProxy takes
//! the global defaults first, then the line's own keywords).

use std::path::PathBuf;

use crate::tls::{in_base, BindTls, CertSource, ClientAuth};

/// TLS keywords harp accepts and does not apply (OpenSSL-specific tuning); warned.
const IGNORED: &[&str] = &[
    "curves",
    "ecdhe",
    "sigalgs",
    "client-sigalgs",
    "npn",
    "ca-ignore-err",
    "crt-ignore-err",
    "tls-ticket-keys",
    "ca-verify-file",
];

/// Flag keywords harp accepts and does not apply; warned.
const IGNORED_FLAGS: &[&str] = &["allow-0rtt", "no-ca-names", "ssl-skip-self-issued-ca"];

/// Keywords needing what rustls does not do; refused.
const REFUSED: &[&str] = &["generate-certificates", "ca-sign-file", "ca-sign-pass"];

/// Reads the TLS keyword at `words[i]` into `t`: `Ok(Some(n))` when it was one (`n` words
/// used), `Ok(None)` when it is not a TLS keyword. `warn` receives what is accepted but not
/// applied.
pub(crate) fn bind_keyword(
    t: &mut BindTls,
    words: &[String],
    i: usize,
    warn: &mut dyn FnMut(String),
) -> Result<Option<usize>, String> {
    let kw = words[i].as_str();
    let val = || -> Result<&str, String> {
        words
            .get(i + 1)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("'{kw}' : missing argument"))
    };
    // versions and ciphers: the same keywords as on server lines
    if let Some(n) = t.tuning.keyword(words, i)? {
        return Ok(Some(n));
    }
    let used = match kw {
        "ssl" => {
            t.enabled = true;
            1
        }
        "crt" => {
            t.certs
                .push(CertSource::Crt(in_base(t.crt_base.as_deref(), val()?)));
            2
        }
        "crt-list" => {
            t.certs.push(CertSource::List(PathBuf::from(val()?)));
            2
        }
        "alpn" => {
            let v = val().map_err(|_| {
                "'alpn' : missing the comma-delimited ALPN protocol suite".to_string()
            })?;
            let mut list = Vec::new();
            for p in v.split(',') {
                if p.is_empty() || p.len() > 255 {
                    return Err(format!(
                        "'alpn' : protocol names must be 1 to 255 bytes long (got '{v}')"
                    ));
                }
                list.push(p.as_bytes().to_vec());
            }
            t.alpn = list;
            2
        }
        "verify" => {
            t.verify = match val()? {
                "none" => ClientAuth::None,
                "optional" => ClientAuth::Optional,
                "required" => ClientAuth::Required,
                o => {
                    return Err(format!(
                        "'verify' : unknown verify method '{o}', only 'none', 'optional', and 'required' are supported"
                    ))
                }
            };
            2
        }
        "ca-file" => {
            t.ca_file = Some(in_base(t.ca_base.as_deref(), val()?));
            2
        }
        "crl-file" => {
            t.crl_file = Some(in_base(t.ca_base.as_deref(), val()?));
            2
        }
        "strict-sni" => {
            t.strict_sni = true;
            1
        }
        "no-tls-tickets" => {
            t.no_tickets = true;
            1
        }
        "prefer-client-ciphers" => {
            t.prefer_client_ciphers = true;
            1
        }
        _ if IGNORED.contains(&kw) => {
            val()?;
            warn(format!(
                "bind option '{kw}' is not supported by harp's TLS (rustls); ignored."
            ));
            2
        }
        _ if IGNORED_FLAGS.contains(&kw) => {
            warn(format!(
                "bind option '{kw}' is not supported by harp's TLS (rustls); ignored."
            ));
            1
        }
        _ if REFUSED.contains(&kw) => {
            return Err(format!(
                "'{kw}' is not supported by harp (its TLS, rustls, signs no certificates)."
            ))
        }
        _ => return Ok(None),
    };
    Ok(Some(used))
}

/// `ssl-default-bind-options <keywords...>`: the TLS keywords every later `bind` starts from.
pub(crate) fn default_bind_options(
    t: &mut BindTls,
    words: &[String],
    warn: &mut dyn FnMut(String),
) -> Result<(), String> {
    let mut i = 0;
    while i < words.len() {
        match bind_keyword(t, words, i, warn)? {
            Some(n)
                if !matches!(
                    words[i].as_str(),
                    "ssl" | "crt" | "crt-list" | "ca-file" | "crl-file" | "verify"
                ) =>
            {
                i += n
            }
            _ => {
                return Err(format!(
                    "'ssl-default-bind-options' : unknown or unsupported option '{}'.",
                    words[i]
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsVersion;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn read(s: &str) -> Result<(BindTls, Vec<String>), String> {
        let mut t = BindTls::default();
        let mut warnings = Vec::new();
        let w = words(s);
        let mut i = 0;
        while i < w.len() {
            match bind_keyword(&mut t, &w, i, &mut |m| warnings.push(m))? {
                Some(n) => i += n,
                None => return Err(format!("not tls: {}", w[i])),
            }
        }
        Ok((t, warnings))
    }

    #[test]
    fn bind_keywords_fill_the_settings() {
        let (t, w) = read("ssl crt a.pem crt b.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2 no-tlsv13 verify optional ca-file ca.pem strict-sni curves X25519").unwrap();
        assert!(t.enabled && t.strict_sni);
        assert_eq!(
            t.certs,
            vec![
                CertSource::Crt(PathBuf::from("a.pem")),
                CertSource::Crt(PathBuf::from("b.pem"))
            ]
        );
        assert_eq!(t.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(t.tuning.min_ver, Some(TlsVersion::Tls12));
        assert_eq!(t.tuning.disabled, vec![TlsVersion::Tls13]);
        assert_eq!(t.verify, ClientAuth::Optional);
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn bad_values_say_what_is_possible() {
        let e = read("ssl-min-ver TLSv1.9").unwrap_err();
        assert_eq!(e, "'TLSv1.9' : unknown ssl/tls version");
        assert!(read("verify sometimes")
            .unwrap_err()
            .contains("unknown verify method"));
        assert!(read("crt").unwrap_err().contains("missing argument"));
        assert!(read("generate-certificates").is_err());
    }

    #[test]
    fn defaults_take_only_options() {
        let mut t = BindTls::default();
        default_bind_options(
            &mut t,
            &words("ssl-min-ver TLSv1.2 no-tls-tickets"),
            &mut |_| {},
        )
        .unwrap();
        assert!(t.no_tickets);
        assert!(default_bind_options(&mut t, &words("crt x.pem"), &mut |_| {}).is_err());
    }
}
