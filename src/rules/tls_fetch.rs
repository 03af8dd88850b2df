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
            TlsFetch::FcKeysize | TlsFetch::CVerify => Method::Int,
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
