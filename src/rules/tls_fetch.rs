//! The `ssl_fc_*`, `ssl_c_*` and `ssl_f_*` sample fetches: what the client connection's TLS
//! handshake settled (`bind ... ssl`), as HAProxy's fetches of the same names return it.

use super::fetch::Sample;
use super::pattern::{Method, Value};
use crate::tls::TlsFacts;

/// One TLS fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFetch {
    /// `ssl_fc`: the connection is TLS (false for plain TCP).
    Fc,
    /// `ssl_fc_sni`: the server name the client sent.
    FcSni,
    /// `ssl_fc_has_sni`.
    FcHasSni,
    /// `ssl_fc_protocol`: `TLSv1.3`...
    FcProtocol,
    /// `ssl_fc_cipher`: OpenSSL's name of the cipher.
    FcCipher,
    /// `ssl_fc_alpn`.
    FcAlpn,
    /// `ssl_fc_use_keysize`, `ssl_fc_alg_keysize`.
    FcKeysize,
    /// `ssl_fc_is_resumed`.
    FcIsResumed,
    /// `ssl_c_used`: the client showed a certificate.
    CUsed,
    /// `ssl_c_verify`, `ssl_c_err`, `ssl_c_ca_err`: 0, as rustls ends a handshake whose
    /// certificate does not verify.
    CVerify,
    /// `ssl_c_s_dn`.
    CSubject,
    /// `ssl_c_i_dn`.
    CIssuer,
    /// `ssl_f_s_dn`: the subject of the certificate served.
    FSubject,
    /// `ssl_c_der`: the client certificate, DER.
    CDer,
    /// `ssl_c_serial`: its serial, binary.
    CSerial,
    /// `ssl_c_sha1`: its SHA-1, binary.
    CSha1,
    /// `ssl_c_notbefore`: as written (`YYMMDDhhmmssZ`).
    CNotBefore,
    /// `ssl_c_notafter`.
    CNotAfter,
    /// `ssl_c_version`: its X.509 version.
    CVersion,
    /// `ssl_c_key_alg`: OpenSSL's short name of its key's algorithm.
    CKeyAlg,
    /// `ssl_c_sig_alg`: of its signature's.
    CSigAlg,
}

/// The fetches by name.
pub const NAMES: &[(&str, TlsFetch)] = &[
    ("ssl_fc", TlsFetch::Fc),
    ("ssl_fc_sni", TlsFetch::FcSni),
    ("ssl_fc_has_sni", TlsFetch::FcHasSni),
    ("ssl_fc_protocol", TlsFetch::FcProtocol),
    ("ssl_fc_cipher", TlsFetch::FcCipher),
    ("ssl_fc_alpn", TlsFetch::FcAlpn),
    ("ssl_fc_use_keysize", TlsFetch::FcKeysize),
    ("ssl_fc_alg_keysize", TlsFetch::FcKeysize),
    ("ssl_fc_is_resumed", TlsFetch::FcIsResumed),
    ("ssl_c_used", TlsFetch::CUsed),
    ("ssl_c_verify", TlsFetch::CVerify),
    ("ssl_c_err", TlsFetch::CVerify),
    ("ssl_c_ca_err", TlsFetch::CVerify),
    ("ssl_c_s_dn", TlsFetch::CSubject),
    ("ssl_c_i_dn", TlsFetch::CIssuer),
    ("ssl_f_s_dn", TlsFetch::FSubject),
    ("ssl_c_der", TlsFetch::CDer),
    ("ssl_c_serial", TlsFetch::CSerial),
    ("ssl_c_sha1", TlsFetch::CSha1),
    ("ssl_c_notbefore", TlsFetch::CNotBefore),
    ("ssl_c_notafter", TlsFetch::CNotAfter),
    ("ssl_c_version", TlsFetch::CVersion),
    ("ssl_c_key_alg", TlsFetch::CKeyAlg),
    ("ssl_c_sig_alg", TlsFetch::CSigAlg),
];

impl TlsFetch {
    /// The fetch named `name`.
    pub fn named(name: &str) -> Option<TlsFetch> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// Its name, for messages.
    pub fn keyword(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("ssl_fc", |(n, _)| n)
    }

    /// The match method an ACL uses without `-m`.
    pub fn method(self) -> Method {
        match self {
            TlsFetch::Fc | TlsFetch::FcHasSni | TlsFetch::FcIsResumed | TlsFetch::CUsed => {
                Method::Bool
            }
            TlsFetch::FcKeysize | TlsFetch::CVerify | TlsFetch::CVersion => Method::Int,
            TlsFetch::CDer | TlsFetch::CSerial | TlsFetch::CSha1 => Method::Bin,
            _ => Method::Str,
        }
    }

    /// The sample for a connection whose TLS session is `tls` (`None`: plain TCP).
    pub fn sample(self, tls: Option<&TlsFacts>) -> Sample {
        let val = |v: Value| Sample::Val {
            v,
            may_change: false,
        };
        let text = |s: Option<&str>| match s.filter(|s| !s.is_empty()) {
            Some(s) => val(Value::Str(s.as_bytes().to_vec())),
            None => Sample::None,
        };
        let Some(t) = tls else {
            // plain TCP: `ssl_fc` says so, the others have nothing to say
            return match self {
                TlsFetch::Fc => val(Value::Bool(false)),
                _ => Sample::None,
            };
        };
        match self {
            TlsFetch::Fc => val(Value::Bool(true)),
            TlsFetch::FcSni => text(t.sni.as_deref()),
            TlsFetch::FcHasSni => val(Value::Bool(t.sni.is_some())),
            TlsFetch::FcProtocol => text(Some(t.version)),
            TlsFetch::FcCipher => text(Some(t.cipher)),
            TlsFetch::FcAlpn => match &t.alpn {
                Some(a) => val(Value::Str(a.to_vec())),
                None => Sample::None,
            },
            TlsFetch::FcKeysize => val(Value::Int(t.keysize)),
            TlsFetch::FcIsResumed => val(Value::Bool(t.resumed)),
            TlsFetch::CUsed => val(Value::Bool(t.client_cert.is_some())),
            TlsFetch::CVerify => val(Value::Int(0)),
            TlsFetch::CSubject => text(t.client_cert.as_ref().map(|(s, _)| &**s)),
            TlsFetch::CIssuer => text(t.client_cert.as_ref().map(|(_, i)| &**i)),
            TlsFetch::FSubject => text(t.frontend_subject.as_deref()),
            TlsFetch::CDer => match &t.client_der {
                Some(d) => val(Value::Bin(d.to_vec())),
                None => Sample::None,
            },
            f => {
                let info = t.client_der.as_ref().and_then(|d| {
                    crate::tls::describe(&tokio_rustls::rustls::pki_types::CertificateDer::from(
                        d.as_ref(),
                    ))
                });
                let Some(i) = info else { return Sample::None };
                match f {
                    TlsFetch::CSerial => val(Value::Bin(i.serial_bytes)),
                    TlsFetch::CSha1 => val(Value::Bin(i.sha1_bytes)),
                    TlsFetch::CNotBefore => text(Some(&i.not_before_raw)),
                    TlsFetch::CNotAfter => text(Some(&i.not_after_raw)),
                    TlsFetch::CVersion => val(Value::Int(i.version)),
                    TlsFetch::CKeyAlg => text(Some(&i.key_alg)),
                    _ => text(Some(&i.sig_alg)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TlsFacts {
        TlsFacts {
            sni: Some("WWW.Example.Test".into()),
            version: "TLSv1.3",
            cipher: "TLS_AES_256_GCM_SHA384",
            keysize: 256,
            alpn: Some(b"h2".to_vec().into()),
            resumed: false,
            client_cert: None,
            client_cn: None,
            client_der: None,
            frontend_subject: Some("/CN=www.example.test".into()),
        }
    }

    fn text(s: Sample) -> Option<String> {
        match s {
            Sample::Val {
                v: Value::Str(b), ..
            } => Some(String::from_utf8(b).unwrap()),
            _ => None,
        }
    }

    #[test]
    fn a_tls_session_answers_as_haproxy() {
        let f = facts();
        assert_eq!(
            text(TlsFetch::FcSni.sample(Some(&f))).as_deref(),
            Some("WWW.Example.Test"),
            "the name as sent"
        );
        assert_eq!(
            text(TlsFetch::FcProtocol.sample(Some(&f))).as_deref(),
            Some("TLSv1.3")
        );
        assert_eq!(
            text(TlsFetch::FcAlpn.sample(Some(&f))).as_deref(),
            Some("h2")
        );
        assert_eq!(TlsFetch::CSubject.sample(Some(&f)), Sample::None);
        assert!(matches!(
            TlsFetch::CUsed.sample(Some(&f)),
            Sample::Val {
                v: Value::Bool(false),
                ..
            }
        ));
    }

    #[test]
    fn plain_tcp_is_not_tls_and_has_nothing_else() {
        assert!(matches!(
            TlsFetch::Fc.sample(None),
            Sample::Val {
                v: Value::Bool(false),
                ..
            }
        ));
        assert_eq!(TlsFetch::FcSni.sample(None), Sample::None);
    }
}
