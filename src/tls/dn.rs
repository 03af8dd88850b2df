//! Distinguished names as HAProxy prints them (`ssl_c_s_dn`, `ssl_f_s_dn`...): OpenSSL's
//! one-line form, `/C=FR/O=Example/CN=www.example.test`, read from a certificate's raw DER
//! name (the contents of its `SEQUENCE`, as webpki hands it out).

/// Short names OpenSSL prints for the attributes certificates use; any other is printed as
/// its dotted OID, as OpenSSL prints an attribute it has no name for.
const SHORT_NAMES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x04], "SN"),
    (&[0x55, 0x04, 0x05], "serialNumber"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x09], "street"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (&[0x55, 0x04, 0x0c], "title"),
    (&[0x55, 0x04, 0x2a], "GN"),
    (&[0x55, 0x04, 0x2e], "dnQualifier"),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
        "emailAddress",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        "UID",
    ),
];

/// One DER element: its tag, its contents, and what follows it.
pub(crate) fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A dotted OID (`2.5.4.99`).
fn dotted(oid: &[u8]) -> String {
    let mut out = String::new();
    let mut v: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        v = v << 7 | u64::from(b & 0x7f);
        if b & 0x80 != 0 {
            continue;
        }
        if out.is_empty() && i < oid.len() {
            let (a, b) = if v < 80 {
                (v / 40, v % 40)
            } else {
                (2, v - 80)
            };
            out = format!("{a}.{b}");
        } else {
            out.push_str(&format!(".{v}"));
        }
        v = 0;
    }
    out
}

/// The name's attributes in order: (short name, value as text).
pub(crate) fn attributes(name: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = name;
    while let Some((0x31, set, next)) = element(rest) {
        let mut atvs = set;
        while let Some((0x30, atv, more)) = element(atvs) {
            if let Some((0x06, oid, value)) = element(atv) {
                let key = SHORT_NAMES
                    .iter()
                    .find(|(o, _)| *o == oid)
                    .map_or_else(|| dotted(oid), |(_, n)| n.to_string());
                let text = match element(value) {
                    // BMPString: UTF-16
                    Some((0x1e, v, _)) => String::from_utf16_lossy(
                        &v.chunks(2)
                            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                            .collect::<Vec<_>>(),
                    ),
                    Some((_, v, _)) => String::from_utf8_lossy(v).into_owned(),
                    None => String::new(),
                };
                out.push((key, text));
            }
            atvs = more;
        }
        rest = next;
    }
    out
}

/// OpenSSL's one-line form of a raw DER name: `/C=FR/CN=www.example.test`.
pub fn one_line(name: &[u8]) -> String {
    attributes(name)
        .into_iter()
        .map(|(k, v)| format!("/{k}={v}"))
        .collect()
}

/// The name's last common name (the one OpenSSL and HAProxy take as the certificate's CN).
pub(crate) fn common_name(name: &[u8]) -> Option<String> {
    attributes(name)
        .into_iter()
        .filter(|(k, _)| k == "CN")
        .map(|(_, v)| v)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SET { SEQUENCE { OID, UTF8String } } for each pair.
    fn name(parts: &[(&[u8], &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (oid, v) in parts {
            let mut atv = vec![0x06, oid.len() as u8];
            atv.extend_from_slice(oid);
            atv.extend_from_slice(&[0x0c, v.len() as u8]);
            atv.extend_from_slice(v.as_bytes());
            let mut seq = vec![0x30, atv.len() as u8];
            seq.extend(atv);
            out.extend_from_slice(&[0x31, seq.len() as u8]);
            out.extend(seq);
        }
        out
    }

    #[test]
    fn names_print_as_openssl_one_line() {
        let n = name(&[
            (&[0x55, 0x04, 0x06], "FR"),
            (&[0x55, 0x04, 0x0a], "Example"),
            (&[0x55, 0x04, 0x03], "www.example.test"),
        ]);
        assert_eq!(one_line(&n), "/C=FR/O=Example/CN=www.example.test");
        assert_eq!(common_name(&n).as_deref(), Some("www.example.test"));
    }

    #[test]
    fn unknown_attributes_print_as_dotted_oids() {
        let n = name(&[(&[0x55, 0x04, 0x63], "x")]);
        assert_eq!(one_line(&n), "/2.5.4.99=x");
        assert_eq!(common_name(&n), None);
    }

    #[test]
    fn truncated_names_stop_quietly() {
        let n = name(&[(&[0x55, 0x04, 0x03], "abc")]);
        for cut in 0..n.len() {
            let _ = one_line(&n[..cut]);
        }
    }
}
