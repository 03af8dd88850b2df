//! What `show ssl cert <file>` prints of a certificate, as HAProxy (OpenSSL) prints it: serial in
//! hex, validity dates in OpenSSL's `Dec  8 01:19:58 2026 GMT` form, DNS names, key algorithm and
//! size (`RSA2048`, `EC256`), SHA-1 fingerprint, subject and issuer, read from the DER with a
//! small walker (webpki keeps these fields to itself).

use tokio_rustls::rustls::pki_types::CertificateDer;

use super::dn::{element, one_line};

/// The printable facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertInfo {
    /// Serial number, uppercase hex with no separators.
    pub serial: String,
    /// `notBefore`, OpenSSL's form.
    pub not_before: String,
    /// `notAfter`, OpenSSL's form.
    pub not_after: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// `RSA2048`, `EC256`...
    pub algorithm: String,
    /// SHA-1 of the DER, uppercase hex.
    pub sha1: String,
    /// Subject, one-line.
    pub subject: String,
    /// Issuer, one-line.
    pub issuer: String,
    /// The serial's bytes (`ssl_c_serial`).
    pub serial_bytes: Vec<u8>,
    /// `notBefore` as the certificate writes it (`YYMMDDhhmmssZ`, `ssl_c_notbefore`).
    pub not_before_raw: String,
    /// `notAfter` as written.
    pub not_after_raw: String,
    /// X.509 version, from 1 (`ssl_c_version`).
    pub version: i64,
    /// The key's algorithm, OpenSSL's short name (`rsaEncryption`, `id-ecPublicKey`).
    pub key_alg: String,
    /// The signature's algorithm, OpenSSL's short name (`RSA-SHA256`, `ecdsa-with-SHA256`).
    pub sig_alg: String,
    /// SHA-1 of the DER, raw (`ssl_c_sha1`).
    pub sha1_bytes: Vec<u8>,
}

/// OpenSSL's short names of the algorithms certificates use.
const ALG_NAMES: &[(&[u8], &str)] = &[
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        "rsaEncryption",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        "RSA-SHA1",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a],
        "RSASSA-PSS",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        "RSA-SHA256",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        "RSA-SHA384",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        "RSA-SHA512",
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
        "id-ecPublicKey",
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        "ecdsa-with-SHA256",
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        "ecdsa-with-SHA384",
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        "ecdsa-with-SHA512",
    ),
    (&[0x2b, 0x65, 0x70], "ED25519"),
];

/// The short name of the AlgorithmIdentifier `alg` (its contents).
fn alg_name(alg: &[u8]) -> String {
    match element(alg) {
        Some((0x06, oid, _)) => ALG_NAMES
            .iter()
            .find(|(o, _)| *o == oid)
            .map_or_else(|| "UNDEF".to_string(), |(_, n)| n.to_string()),
        _ => "UNDEF".into(),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ` (GeneralizedTime) as OpenSSL prints it.
fn openssl_time(tag: u8, v: &[u8]) -> String {
    let s = std::str::from_utf8(v).unwrap_or("");
    // (`get`: a date of other characters than digits must not panic on a char boundary)
    let (year, rest) = match (tag, s.get(..2), s.get(..4)) {
        (0x17, Some(yy), _) if s.len() >= 12 => {
            let yy: u32 = yy.parse().unwrap_or(0);
            (
                if yy < 50 { 2000 + yy } else { 1900 + yy },
                s.get(2..).unwrap_or(""),
            )
        }
        (0x18, _, Some(yyyy)) if s.len() >= 14 => {
            (yyyy.parse().unwrap_or(0), s.get(4..).unwrap_or(""))
        }
        _ => return s.to_string(),
    };
    let num = |r: std::ops::Range<usize>| rest.get(r).and_then(|x| x.parse::<u32>().ok());
    match (num(0..2), num(2..4), num(4..6), num(6..8), num(8..10)) {
        (Some(mo), Some(d), Some(h), Some(mi), Some(se)) if (1..=12).contains(&mo) => format!(
            "{} {d:>2} {h:02}:{mi:02}:{se:02} {year} GMT",
            MONTHS[(mo - 1) as usize]
        ),
        _ => s.to_string(),
    }
}

/// A validity date as HAProxy's `ssl_c_notbefore|notafter` give it: `YYMMDDhhmmssZ`, for years
/// 2000 to 2049 in a UTCTime and 20xx in a GeneralizedTime (its century dropped); empty (no
/// sample) for any other, as HAProxy's `ssl_sock_get_time` refuses them.
fn haproxy_time(tag: u8, v: &[u8]) -> String {
    match tag {
        0x17 if v.len() >= 10 && v[0] < b'5' => String::from_utf8_lossy(v).into_owned(),
        0x18 if v.len() >= 12 && v.starts_with(b"20") => {
            String::from_utf8_lossy(&v[2..]).into_owned()
        }
        _ => String::new(),
    }
}

/// The key's algorithm and size from a SubjectPublicKeyInfo's contents.
fn algorithm(spki: &[u8]) -> String {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    // with or without its outer SEQUENCE
    let spki = match element(spki) {
        Some((0x30, inner, [])) if matches!(element(inner), Some((0x30, _, _))) => inner,
        _ => spki,
    };
    let Some((0x30, alg, rest)) = element(spki) else {
        return "unknown".into();
    };
    let Some((0x06, oid, params)) = element(alg) else {
        return "unknown".into();
    };
    match oid {
        RSA => {
            // BIT STRING { 0 unused bits, RSAPublicKey { modulus, exponent } }
            let bits = element(rest)
                .filter(|(t, _, _)| *t == 0x03)
                .and_then(|(_, b, _)| b.get(1..))
                .and_then(|k| element(k))
                .and_then(|(_, seq, _)| element(seq))
                .map(|(_, modulus, _)| {
                    let m = match modulus.iter().position(|&b| b != 0) {
                        Some(i) => &modulus[i..],
                        None => &[][..],
                    };
                    (m.len() * 8)
                        .saturating_sub(m.first().map_or(8, |b| b.leading_zeros() as usize))
                })
                .unwrap_or(0);
            format!("RSA{bits}")
        }
        EC => match element(params) {
            Some((0x06, P256, _)) => "EC256".into(),
            Some((0x06, P384, _)) => "EC384".into(),
            Some((0x06, P521, _)) => "EC521".into(),
            _ => "EC".into(),
        },
        ED25519 => "ED25519".into(),
        _ => "unknown".into(),
    }
}

/// Uppercase hex.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Reads a certificate; `None` when its DER is not one.
pub fn describe(cert: &CertificateDer<'_>) -> Option<CertInfo> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    // Certificate { TBSCertificate { [0] version?, serial, signature, issuer, validity, ... } }
    let (_, outer, _) = element(cert.as_ref())?;
    let (_, tbs, _) = element(outer)?;
    let mut rest = tbs;
    let mut version = 1;
    if let Some((0xa0, v, after)) = element(rest) {
        version = element(v).map_or(0, |(_, n, _)| {
            n.iter().fold(0i64, |a, b| a << 8 | i64::from(*b))
        }) + 1;
        rest = after;
    }
    let (_, _serial, after) = element(rest)?;
    let (_, sig, after) = element(after)?;
    let (_, _issuer, after) = element(after)?;
    let (_, validity, _) = element(after)?;
    let (t1, nb, after) = element(validity)?;
    let (t2, na, _) = element(after)?;
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
    let spki = ee.subject_public_key_info();
    let spki = spki.as_ref();
    let spki = match element(spki) {
        Some((0x30, inner, [])) if matches!(element(inner), Some((0x30, _, _))) => inner,
        _ => spki,
    };
    let key_alg = element(spki).map_or_else(|| "UNDEF".to_string(), |(_, a, _)| alg_name(a));
    Some(CertInfo {
        serial_bytes: ee.serial().to_vec(),
        not_before_raw: haproxy_time(t1, nb),
        not_after_raw: haproxy_time(t2, na),
        version,
        key_alg,
        sig_alg: alg_name(sig),
        sha1_bytes: digest.as_ref().to_vec(),
        serial: hex(ee.serial()),
        not_before: openssl_time(t1, nb),
        not_after: openssl_time(t2, na),
        dns_names: ee.valid_dns_names().map(str::to_string).collect(),
        algorithm: algorithm(ee.subject_public_key_info().as_ref()),
        sha1: hex(digest.as_ref()),
        subject: one_line(ee.subject()),
        issuer: one_line(ee.issuer()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_openssl_prints_them() {
        assert_eq!(
            openssl_time(0x17, b"261208011958Z"),
            "Dec  8 01:19:58 2026 GMT"
        );
        assert_eq!(
            openssl_time(0x18, b"20501231235959Z"),
            "Dec 31 23:59:59 2050 GMT"
        );
        assert_eq!(openssl_time(0x17, b"bad"), "bad");
    }

    #[test]
    fn a_certificate_reads_as_haproxy_shows_it() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(vec![
            "www.example.test".to_string(),
            "alt.www.example.test".to_string(),
        ])
        .expect("params");
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc]));
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "www.example.test");
        let c = p.self_signed(&key).expect("cert");
        let info = describe(c.der()).expect("describe");
        assert_eq!(info.serial, "0ABC");
        assert_eq!(info.algorithm, "EC256");
        assert_eq!(info.dns_names, ["www.example.test", "alt.www.example.test"]);
        assert_eq!(info.subject, "/CN=www.example.test");
        assert_eq!(info.sha1.len(), 40);
        assert_eq!(info.version, 3);
        assert_eq!(info.key_alg, "id-ecPublicKey");
        assert_eq!(info.sig_alg, "ecdsa-with-SHA256");
        assert_eq!(info.serial_bytes, [0x0a, 0xbc]);
        assert!(info.not_before.ends_with(" GMT"), "{}", info.not_before);
    }
}
