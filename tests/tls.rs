//! TLS on `bind ... ssl` end to end: the real binary ending TLS from a real rustls client and
//! forwarding the decrypted bytes to plain servers on 127.0.0.1. Certificates are made by the
//! test (rcgen): a CA, server certificates for two names and a wildcard, a client certificate.
//! What HAProxy 2.6 does was watched first: `%ft` with `~`, OpenSSL's cipher names, the SNI
//! choosing the certificate (the first `crt` by default), the fixed line of a failed
//! handshake, `close_notify` before the FIN, the counters and the `-c` messages.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{cli, free_port, stat_field, write_file, Harp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A test CA and what it signed, written as PEM files in a directory.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "Test CA");
        p.distinguished_name
            .push(DnType::OrganizationName, "Harp Test");
        let ca = p.self_signed(&ca_key).expect("ca");
        Pki { ca, ca_key }
    }

    /// A certificate for `cn` (also its one SAN unless `client`), its key in the same PEM
    /// file, as HAProxy's `crt` wants it.
    fn issue(&self, dir: &Path, file: &str, cn: &str, client: bool) -> String {
        let key = KeyPair::generate().expect("key");
        let sans = if client { vec![] } else { vec![cn.to_string()] };
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "Harp Test");
        if client {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).expect("sign");
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        write_file(dir, file, &pem).display().to_string()
    }

    /// A server certificate for `cn` with serial `serial`, as PEM text (certificate, then key).
    fn pem_with_serial(&self, cn: &str, serial: &[u8]) -> String {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec![cn.to_string()]).expect("params");
        p.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).expect("sign");
        format!("{}{}", cert.pem(), key.serialize_pem())
    }

    fn ca_file(&self, dir: &Path) -> String {
        write_file(dir, "ca.pem", &self.ca.pem())
            .display()
            .to_string()
    }
}

/// A client configuration trusting the test CA, offering `alpn`, showing `cert` (a PEM file
/// with the key) if given.
fn client_config(pki: &Pki, alpn: &[&str], cert: Option<&str>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.der().clone()).expect("root");
    let b = ClientConfig::builder().with_root_certificates(roots);
    let mut c = match cert {
        Some(path) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .expect("pem")
                .map(|c| c.expect("cert"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(path).expect("key");
            b.with_client_auth_cert(chain, key).expect("client cert")
        }
        None => b.with_no_client_auth(),
    };
    c.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Arc::new(c)
}

/// A client configuration that takes any server certificate (the test looks at which one was
/// served, whatever the name): harp's own `verify none` configuration.
fn any_cert_config() -> Arc<ClientConfig> {
    harp::tls::client_config(harp::tls::Verify::None, false, None, "ca-file").expect("config")
}

/// A TLS connection to 127.0.0.1:`port` naming `sni`.
fn tls_connect(
    cfg: Arc<ClientConfig>,
    port: u16,
    sni: &str,
) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from(sni.to_string()).expect("name");
    let conn = ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// The served certificate's CN, read from its DER (the test's certificates put it last).
fn served_cn(s: &StreamOwned<ClientConnection, TcpStream>) -> String {
    let der = s.conn.peer_certificates().expect("certs")[0].to_vec();
    // a CN attribute: OID 2.5.4.3 then a UTF8String
    let at = der
        .windows(5)
        .rposition(|w| w == [0x06, 0x03, 0x55, 0x04, 0x03])
        .expect("cn");
    let len = der[at + 6] as usize;
    String::from_utf8_lossy(&der[at + 7..at + 7 + len]).into_owned()
}

/// The message of the first line the sink receives that contains `needle` (what follows
/// the syslog header's `harp[<pid>]: `).
fn line_with(sink: &UdpSocket, needle: &str) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sink
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no log line with {needle:?} ({e})"));
        let l = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
        let msg = l.split_once("]: ").map_or(&*l, |(_, m)| m);
        if msg.contains(needle) {
            return msg.to_string();
        }
    }
}

/// Sends `data` through `s` to an echo, reading the echo at the same time (its buffers are far
/// smaller than the data), after skipping `skip` bytes the echo says first; what came back.
fn echo_bulk(mut s: StreamOwned<ClientConnection, TcpStream>, data: &[u8], skip: usize) -> Vec<u8> {
    let mut back = Vec::with_capacity(data.len() + skip);
    let mut off = 0;
    let mut buf = vec![0u8; 65536];
    s.sock.set_nonblocking(true).expect("nonblocking");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while back.len() < data.len() + skip {
        assert!(
            std::time::Instant::now() < deadline,
            "stalled at {}",
            back.len()
        );
        if off < data.len() {
            let end = (off + 16384).min(data.len());
            s.conn.writer().write_all(&data[off..end]).expect("queue");
            off = end;
        }
        while s.conn.wants_write() {
            match s.conn.write_tls(&mut s.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        match s.conn.read_tls(&mut s.sock) {
            Ok(0) => panic!("closed after {} bytes", back.len()),
            Ok(_) => {
                s.conn.process_new_packets().expect("tls");
                while let Ok(n) = s.conn.reader().read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    back.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    back.split_off(skip)
}

/// What a session's client wrote, echoed back through the TLS connection.
fn round_trip(s: &mut StreamOwned<ClientConnection, TcpStream>, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).expect("send");
    s.flush().expect("flush");
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).expect("echo");
    got
}

#[test]
fn tls_clients_reach_plain_servers_with_the_certificate_their_sni_names() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let other = pki.issue(dir.path(), "other.pem", "other.example.test", false);
    let wild = pki.issue(dir.path(), "wild.pem", "*.example.test", false);
    let up = common::echo_upstream();
    let port = free_port();
    let (sink, addr) = common::udp_sink();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www} crt {other} crt {wild} alpn h2,http/1.1\n\
         \x20   log {addr} local0\n    option dontlognull\n\
         \x20   log-format \"%ft %b/%s %sslv %sslc sni=%[ssl_fc_sni] alpn=%[ssl_fc_alpn] ssl=%[ssl_fc] cert=%[ssl_f_s_dn] %B\"\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let _h = Harp::start(&config, port, &[]);
    let cfg = client_config(&pki, &["h2"], None);
    let mut s = tls_connect(cfg.clone(), port, "www.example.test").expect("tls");
    assert_eq!(served_cn(&s), "www.example.test");
    assert_eq!(s.conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(round_trip(&mut s, b"hello\n"), b"hello\n");
    s.conn.send_close_notify();
    let _ = s.flush();
    drop(s);
    let line = line_with(&sink, "sni=www.example.test");
    assert!(
        line.starts_with("fe~ be/s1 TLSv1.3 TLS_AES_256_GCM_SHA384 sni=www.example.test alpn=h2 ssl=1 cert=/CN=www.example.test/O=Harp Test 6"),
        "{line}"
    );
    // the SNI picks the certificate, exact names before wildcard ones; one label only
    for (sni, cn) in [
        ("other.example.test", "other.example.test"),
        ("OTHER.example.test", "other.example.test"),
        ("foo.example.test", "*.example.test"),
        ("a.b.example.test", "www.example.test"),
        ("unknown.test", "www.example.test"),
    ] {
        let mut s = tls_connect(any_cert_config(), port, sni).expect("tls");
        assert_eq!(served_cn(&s), cn, "for {sni}");
        assert_eq!(round_trip(&mut s, b"x"), b"x");
    }
    // a 4 MiB transfer both ways arrives byte for byte
    let s = tls_connect(client_config(&pki, &[], None), port, "www.example.test").expect("tls");
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    assert!(echo_bulk(s, &data, 0) == data, "the echoed bytes differ");
}

#[test]
fn rules_read_the_decrypted_request_and_route_by_sni() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "wild.pem", "*.example.test", false);
    let (a, b) = (
        common::named_upstream("alpha"),
        common::named_upstream("beta"),
    );
    let port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www}\n\
         \x20   tcp-request inspect-delay 5s\n\
         \x20   tcp-request content reject if {{ req.payload(0,4) -m str QUIT }}\n\
         \x20   tcp-request content accept if {{ req.len ge 4 }}\n\
         \x20   use_backend be_b if {{ ssl_fc_sni -i beta.example.test }}\n\
         \x20   default_backend be_a\n\
         backend be_a\n    server s1 127.0.0.1:{a}\n\
         backend be_b\n    server s1 127.0.0.1:{b}\n"
    );
    let _h = Harp::start(&config, port, &[]);
    let cfg = client_config(&pki, &[], None);
    let ask = |sni: &str, msg: &[u8]| {
        let mut s = tls_connect(cfg.clone(), port, sni).expect("tls");
        s.write_all(msg).expect("send");
        s.flush().expect("flush");
        let mut got = Vec::new();
        let r = s.read_to_end(&mut got);
        (String::from_utf8_lossy(&got).into_owned(), r)
    };
    let (got, r) = ask("www.example.test", b"PING\n");
    assert_eq!(got, "alpha\n");
    assert!(r.is_ok(), "a clean close_notify ends it: {r:?}");
    assert_eq!(ask("beta.example.test", b"PING\n").0, "beta\n");
    // the rules read the plaintext: a QUIT request is rejected, nothing reaches a server
    assert_eq!(ask("www.example.test", b"QUIT\n").0, "");
}

#[test]
fn failed_handshakes_get_haproxys_line_and_counters() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let up = common::echo_upstream();
    let (port, strict, api) = (free_port(), free_port(), free_port());
    let (sink, addr) = common::udp_sink();
    let config = format!(
        "global\n    stats socket ipv4@127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www}\n\
         \x20   bind 127.0.0.1:{strict} ssl crt {www} strict-sni name picky\n\
         \x20   log {addr} local0\n    option tcplog\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let mut h = Harp::start(&config, port, &[]);
    h.wait_port(strict);
    // the two readiness probes connected and closed: failed handshakes too, as in HAProxy
    let failed = || -> u64 {
        stat_field(api, "fe,FRONTEND,", "ssl_failed_handshake")
            .parse()
            .expect("n")
    };
    assert!(common::wait_until(Duration::from_secs(10), || failed() == 2));
    let base = 2;
    // plain text where TLS is expected
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let local = c.local_addr().expect("addr").port();
    c.write_all(b"hello\n").expect("send");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let line = line_with(&sink, &format!(":{local} "));
    assert!(
        line.ends_with("] fe/1: SSL handshake failure"),
        "HAProxy's fixed line: {line}"
    );
    // `strict-sni` and a name the bind has no certificate for
    let cfg = client_config(&pki, &[], None);
    assert!(tls_connect(cfg.clone(), strict, "nope.example.test").is_err());
    let line = line_with(&sink, "fe/picky:");
    assert!(line.ends_with("fe/picky: SSL handshake failure"), "{line}");
    // one that closes at once
    drop(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    let line = line_with(&sink, "during SSL handshake");
    assert!(
        line.ends_with("fe/1: Connection closed during SSL handshake"),
        "{line}"
    );
    // and a good one, logged as a session of `fe~`, counted while it lives
    let cur_ssl = || -> String {
        cli(api, "show info")
            .lines()
            .find_map(|l| l.strip_prefix("CurrSslConns: ").map(str::to_string))
            .unwrap_or_default()
    };
    let mut s = tls_connect(cfg, strict, "www.example.test").expect("tls");
    assert_eq!(round_trip(&mut s, b"ok"), b"ok");
    assert_eq!(cur_ssl(), "1");
    drop(s);
    assert!(common::wait_until(Duration::from_secs(10), || cur_ssl() == "0"));
    let line = line_with(&sink, " fe~ be/s1 ");
    assert!(line.contains(" fe~ be/s1 "), "{line}");
    assert_eq!(failed() - base, 3);
    let ok: u64 = stat_field(api, "fe,FRONTEND,", "ssl_sess")
        .parse()
        .expect("n");
    assert!(ok >= 1);
    let info = cli(api, "show info");
    let cum = info
        .lines()
        .find_map(|l| l.strip_prefix("CumSslConns: "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("CumSslConns");
    assert!(cum >= 4, "{info}");
}

#[test]
fn the_servers_end_reaches_the_client_as_close_notify_and_the_clients_as_a_fin() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    // a server that reads until the client's end, then answers how much it got and closes
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            let mut got = Vec::new();
            let _ = c.read_to_end(&mut got);
            let _ = c.write_all(format!("got {}\n", got.len()).as_bytes());
        }
    });
    let port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let _h = Harp::start(&config, port, &[]);
    let mut s = tls_connect(client_config(&pki, &[], None), port, "www.example.test").expect("tls");
    s.write_all(b"12345").expect("send");
    // the client's close_notify is the server's end of stream; the answer still comes back
    s.conn.send_close_notify();
    s.flush().expect("flush");
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    assert_eq!(String::from_utf8_lossy(&got), "got 5\n");
    assert!(r.is_ok(), "ended by close_notify, not a bare FIN: {r:?}");
}

#[test]
fn client_certificates_are_asked_for_checked_and_shown() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let client = pki.issue(dir.path(), "client.pem", "client1", true);
    let ca = pki.ca_file(dir.path());
    let up = common::echo_upstream();
    let port = free_port();
    let (sink, addr) = common::udp_sink();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www} verify required ca-file {ca}\n\
         \x20   log {addr} local0\n    option dontlognull\n\
         \x20   log-format \"used=%[ssl_c_used] verify=%[ssl_c_verify] s=%[ssl_c_s_dn] i=%[ssl_c_i_dn] v=%[ssl_c_version] k=%[ssl_c_key_alg] a=%[ssl_c_sig_alg] nb=%[ssl_c_notbefore] na=%[ssl_c_notafter] sha1=%[ssl_c_sha1,hex]\"\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let _h = Harp::start(&config, port, &[]);
    // without a certificate: refused (TLS 1.3 clients learn it at their first read)
    let refused =
        tls_connect(client_config(&pki, &[], None), port, "www.example.test").and_then(|mut s| {
            s.write_all(b"x")?;
            s.flush()?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)
        });
    assert!(refused.is_err());
    let mut s = tls_connect(
        client_config(&pki, &[], Some(&client)),
        port,
        "www.example.test",
    )
    .expect("tls");
    assert_eq!(round_trip(&mut s, b"hi"), b"hi");
    drop(s);
    let der = CertificateDer::pem_file_iter(&client)
        .expect("pem")
        .next()
        .expect("one")
        .expect("cert");
    let sha1: String = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let line = line_with(&sink, "used=1");
    assert_eq!(
        line,
        format!(
            "used=1 verify=0 s=/CN=client1/O=Harp Test i=/CN=Test CA/O=Harp Test v=3 \
             k=id-ecPublicKey a=ecdsa-with-SHA256 nb=240101000000Z na=491231000000Z sha1={sha1}"
        )
    );
}

/// `harp -c -f <config>`: (exit code, stderr).
fn check(config: &str, dir: &Path) -> (i32, String) {
    let cfg = write_file(dir, "t.cfg", config);
    let out = Command::new(env!("CARGO_BIN_EXE_harp"))
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .expect("run harp -c");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn harp_c_reports_tls_mistakes_as_haproxy_does() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let cert_only = {
        let text = std::fs::read_to_string(&www).expect("read");
        let end = text.find("-----END CERTIFICATE-----").expect("cert") + 26;
        write_file(dir.path(), "certonly.pem", &text[..end])
            .display()
            .to_string()
    };
    let garbage = write_file(dir.path(), "garbage.pem", "not a certificate\n")
        .display()
        .to_string();
    let conf = |bind: &str| {
        format!(
            "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 2s\n    timeout server 2s\n\
             frontend fe\n    bind 127.0.0.1:20801 {bind}\n    default_backend be\n\
             backend be\n    server s1 127.0.0.1:20850\n"
        )
    };
    let t = dir.path().display().to_string();
    for (bind, want) in [
        ("ssl".to_string(), format!("Proxy 'fe': no SSL certificate specified for bind '127.0.0.1:20801' at [{t}/t.cfg:7] (use 'crt').")),
        ("ssl crt /nonexistent.pem".into(), "t.cfg:7] : 'bind 127.0.0.1:20801' in section 'frontend' : unable to stat SSL certificate from file '/nonexistent.pem' : No such file or directory.".into()),
        (format!("ssl crt {cert_only}"), format!("'bind 127.0.0.1:20801' in section 'frontend' : No Private Key found in '{cert_only}.key'.")),
        (format!("ssl crt {garbage}"), format!("'bind 127.0.0.1:20801' in section 'frontend' : unable to load certificate from file '{garbage}'.")),
        (format!("ssl crt {www} ssl-min-ver TLSv1.9"), "'bind 127.0.0.1:20801' in section 'frontend' : 'TLSv1.9' : unknown ssl/tls version".into()),
        (format!("ssl crt {www} ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2"), format!("Proxy 'fe': all SSL/TLS versions are disabled for bind '127.0.0.1:20801' at [{t}/t.cfg:7].")),
        (format!("ssl crt {www} verify required"), format!("Proxy 'fe': verify is enabled but no CA file specified for bind '127.0.0.1:20801' at [{t}/t.cfg:7].")),
        (format!("ssl crt {www} ciphers FOO"), format!("Proxy 'fe': unable to set SSL cipher list to 'FOO' for bind '127.0.0.1:20801' at [{t}/t.cfg:7].")),
        (format!("ssl crt {www} alpn"), "'alpn' : missing the comma-delimited ALPN protocol suite".into()),
        ("ssl crt-list /nonexistent.list".into(), "'crt-list' : cannot open file '/nonexistent.list' : No such file or directory".into()),
    ] {
        let (code, err) = check(&conf(&bind), dir.path());
        assert_ne!(code, 0, "{bind}");
        assert!(err.contains(&want), "{bind}:\nwant {want}\ngot {err}");
    }
    let (code, err) = check(
        &conf(&format!("ssl crt {www} alpn h2 ciphers HIGH:!aNULL")),
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
}

/// A rustls server configuration serving `cert` (a PEM file, certificate then key).
fn server_config(cert: &str) -> Arc<tokio_rustls::rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("pem")
        .map(|c| c.expect("cert"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(cert).expect("key");
    Arc::new(
        tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config"),
    )
}

/// A TLS server on 127.0.0.1 with `cert` (PEM with key): each connection gets
/// `sni=<name or ->` then its bytes back, until it closes.
fn tls_upstream(cert: &str) -> u16 {
    use tokio_rustls::rustls::ServerConnection;
    let cfg = server_config(cert);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { break };
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let Ok(conn) = ServerConnection::new(cfg) else {
                    return;
                };
                let mut s = StreamOwned::new(conn, c);
                while s.conn.is_handshaking() {
                    if s.conn.complete_io(&mut s.sock).is_err() {
                        return;
                    }
                }
                let sni = s.conn.server_name().unwrap_or("-").to_string();
                let _ = s.write_all(format!("sni={sni} ").as_bytes());
                let _ = s.flush();
                let mut b = vec![0u8; 65536];
                loop {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&b[..n]).and_then(|_| s.flush()).is_err() {
                                break;
                            }
                        }
                    }
                }
                s.conn.send_close_notify();
                let _ = s.flush();
            });
        }
    });
    port
}

/// Writes `msg`, half-closes, reads to the end.
fn plain_ask(port: u16, msg: &[u8]) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(msg).expect("send");
    c.shutdown(std::net::Shutdown::Write).ok();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn ssl_servers_are_reached_over_tls_with_the_sni_the_server_line_gives() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let ca = pki.ca_file(dir.path());
    let up = tls_upstream(&www);
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen named\n    bind 127.0.0.1:{p1}\n\
         \x20   server s1 127.0.0.1:{up} ssl verify required ca-file {ca} sni str(www.example.test)\n\
         listen bare\n    bind 127.0.0.1:{p2}\n    server s1 127.0.0.1:{up} ssl verify none\n\
         listen reencrypt\n    bind 127.0.0.1:{p3} ssl crt {www}\n\
         \x20   server s1 127.0.0.1:{up} ssl ca-file {ca} sni ssl_fc_sni\n"
    );
    let mut h = Harp::start(&config, p1, &[]);
    h.wait_port(p2);
    h.wait_port(p3);
    assert_eq!(plain_ask(p1, b"hello"), "sni=www.example.test hello");
    // no `sni`: none is sent (HAProxy's default), and the chain alone is verified
    assert_eq!(plain_ask(p2, b"x"), "sni=- x");
    // TLS on both sides, the client's name passed on
    let mut s = tls_connect(client_config(&pki, &[], None), p3, "www.example.test").expect("tls");
    s.write_all(b"both").expect("send");
    s.flush().expect("flush");
    let mut got = vec![0u8; "sni=www.example.test both".len()];
    s.read_exact(&mut got).expect("reply");
    assert_eq!(String::from_utf8_lossy(&got), "sni=www.example.test both");
}

#[test]
fn a_failed_server_handshake_is_a_failed_connection_and_a_failed_check() {
    let up = common::echo_upstream();
    let (port, api, ready) = (free_port(), free_port(), free_port());
    let (sink, addr) = common::udp_sink();
    // the readiness probe goes to a listener of its own: only the test's session reaches be
    let config = format!(
        "global\n    stats socket ipv4@127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         listen ready\n    bind 127.0.0.1:{ready}\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    log {addr} local0\n    option tcplog\n\
         \x20   option dontlognull\n    default_backend be\n\
         backend be\n    retries 1\n    server s1 127.0.0.1:{up} ssl verify none\n\
         backend chk\n    server c1 127.0.0.1:{up} ssl verify none check inter 100ms fall 1\n"
    );
    let _h = Harp::start(&config, ready, &[]);
    assert_eq!(plain_ask(port, b"hi"), "");
    let line = line_with(&sink, " be/s1 ");
    assert!(line.contains(" SC "), "a connection error: {line}");
    assert!(
        line.ends_with(" 0/0") && line.contains("/1 0/0"),
        "one retry: {line}"
    );
    // one failed connection, of two attempts, each a failed handshake
    assert_eq!(stat_field(api, "be,s1,", "econ"), "1");
    assert_eq!(stat_field(api, "be,s1,", "ssl_failed_handshake"), "2");
    // its checks speak TLS too, and fail at layer 6
    assert!(common::wait_until(Duration::from_secs(10), || {
        stat_field(api, "chk,c1,", "status") == "DOWN"
    }));
    assert_eq!(stat_field(api, "chk,c1,", "check_status"), "L6RSP");
}

#[test]
fn harp_c_wants_a_ca_file_or_verify_none_for_ssl_servers() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = |global: &str, srv: &str| {
        format!(
            "global\n{global}defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 2s\n    timeout server 2s\n\
             frontend fe\n    bind 127.0.0.1:20801\n    default_backend be\n\
             backend be\n    server s1 127.0.0.1:20850 {srv}\n"
        )
    };
    let t = dir.path().display().to_string();
    let (code, err) = check(&conf("", "ssl"), dir.path());
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("[ALERT] config : [{t}/t.cfg:11] : 'server be/s1' : verify is enabled by default but no CA file specified. If you're running on a LAN")),
        "{err}"
    );
    let (code, err) = check(&conf("", "ssl ca-file /nonexistent"), dir.path());
    assert_ne!(code, 0);
    assert!(
        err.contains("'server be/s1' : Couldn't open the ca-file '/nonexistent' (No such file or directory)."),
        "{err}"
    );
    assert_eq!(
        check(&conf("    ssl-server-verify none\n", "ssl"), dir.path()).0,
        0
    );
    assert_eq!(
        check(
            &conf("", "ssl verify none sni str(www.example.test) alpn h2"),
            dir.path()
        )
        .0,
        0
    );
}

#[test]
fn a_proxy_header_and_the_client_hello_may_share_a_segment() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let up = common::echo_upstream();
    let port = free_port();
    let (sink, addr) = common::udp_sink();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 5s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} accept-proxy ssl crt {www}\n\
         \x20   log {addr} local0\n    option dontlognull\n    log-format \"%ci:%cp sni=%[ssl_fc_sni]\"\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let _h = Harp::start(&config, port, &[]);
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let name = ServerName::try_from("WWW.example.test".to_string()).expect("name");
    let mut conn = ClientConnection::new(client_config(&pki, &[], None), name).expect("client");
    // the load balancer's header and the client's first flight in one write
    let mut first = b"PROXY TCP4 192.0.2.7 127.0.0.1 4321 443\r\n".to_vec();
    conn.write_tls(&mut first).expect("hello");
    (&tcp).write_all(&first).expect("send");
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).expect("handshake");
    }
    assert_eq!(round_trip(&mut s, b"ping"), b"ping");
    drop(s);
    // the client named by the header, the name as the client wrote it
    assert_eq!(
        line_with(&sink, "192.0.2.7"),
        "192.0.2.7:4321 sni=WWW.example.test"
    );
}

#[test]
fn alpn_without_a_common_protocol_goes_on_without_and_strict_sni_says_unrecognized_name() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let up = common::echo_upstream();
    let port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www} alpn h2,http/1.1 strict-sni\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let _h = Harp::start(&config, port, &[]);
    let mut s = tls_connect(
        client_config(&pki, &["acme-tls/1"], None),
        port,
        "www.example.test",
    )
    .expect("served, as HAProxy serves it");
    assert_eq!(s.conn.alpn_protocol(), None);
    assert_eq!(round_trip(&mut s, b"x"), b"x");
    let Err(err) = tls_connect(any_cert_config(), port, "nope.example.test") else {
        panic!("strict-sni served an unknown name");
    };
    assert!(
        format!("{err:?}").contains("UnrecognisedName")
            || format!("{err:?}").contains("UnrecognizedName"),
        "{err:?}"
    );
}

/// A server that reads a PROXY v2 header and answers the hex of what follows its addresses
/// (the TLVs), then closes.
fn pp2_upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            std::thread::spawn(move || {
                let mut h = vec![0u8; 16];
                if c.read_exact(&mut h).is_err() {
                    return;
                }
                let len = usize::from(u16::from_be_bytes([h[14], h[15]]));
                let mut rest = vec![0u8; len];
                if c.read_exact(&mut rest).is_err() {
                    return;
                }
                // IPv4: 12 bytes of addresses and ports, then the TLVs
                let hex: String = rest[12..].iter().map(|b| format!("{b:02x}")).collect();
                let _ = c.write_all(format!("{hex}\n").as_bytes());
            });
        }
    });
    port
}

#[test]
fn proxy_v2_headers_carry_the_clients_tls_as_haproxy_sends_it() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let client = pki.issue(dir.path(), "client.pem", "client1", true);
    let ca = pki.ca_file(dir.path());
    let up = pp2_upstream();
    let (port, plain) = (free_port(), free_port());
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen tls\n    bind 127.0.0.1:{port} ssl crt {www} alpn h2 verify optional ca-file {ca}\n\
         \x20   server s1 127.0.0.1:{up} send-proxy-v2 proxy-v2-options ssl,cert-cn,ssl-cipher,authority\n\
         listen clear\n    bind 127.0.0.1:{plain}\n\
         \x20   server s1 127.0.0.1:{up} send-proxy-v2 proxy-v2-options ssl,authority\n"
    );
    let mut h = Harp::start(&config, port, &[]);
    h.wait_port(plain);
    let mut s = tls_connect(
        client_config(&pki, &["h2"], Some(&client)),
        port,
        "www.example.test",
    )
    .expect("tls");
    s.write_all(b"x").expect("send");
    s.flush().expect("flush");
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    let hex = |s: &str| -> String { s.bytes().map(|b| format!("{b:02x}")).collect() };
    // a TLV of hex value `v`
    let tlv = |t: u8, v: &str| format!("{t:02x}{:04x}{}", v.len() / 2, v);
    let ssl_value = format!(
        "07{}{}{}{}",
        "00000000",
        tlv(0x21, &hex("TLSv1.3")),
        tlv(0x22, &hex("client1")),
        tlv(0x23, &hex("TLS_AES_256_GCM_SHA384"))
    );
    let want = format!(
        "{}{}{}\n",
        tlv(0x01, &hex("h2")),
        tlv(0x02, &hex("www.example.test")),
        tlv(0x20, &ssl_value)
    );
    assert_eq!(got, want);
    // a client in the clear: the SSL TLV's flags only, no authority
    let mut c = TcpStream::connect(("127.0.0.1", plain)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(b"x").expect("send");
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    assert_eq!(got, "2000050000000000\n");
}

#[test]
fn a_certificate_is_replaced_at_run_time_through_the_runtime_api() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = write_file(
        dir.path(),
        "www.pem",
        &pki.pem_with_serial("www.example.test", &[0x12, 0x34]),
    )
    .display()
    .to_string();
    let other = pki.issue(dir.path(), "other.pem", "other.example.test", false);
    let up = common::echo_upstream();
    let (port, api) = (free_port(), free_port());
    let config = format!(
        "global\n    stats socket ipv4@127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www} crt {other}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let mut h = Harp::start(&config, port, &[]);
    h.wait_port(api);
    let run = |cmd: &str| common::socat(api, cmd);
    // the files, by name
    assert_eq!(
        run("show ssl cert"),
        format!("# filename\n{other}\n{www}\n\n")
    );
    let shown = run(&format!("show ssl cert {www}"));
    assert!(
        shown.starts_with(&format!(
            "Filename: {www}\nStatus: Used\nSerial: 1234\nnotBefore: "
        )),
        "{shown}"
    );
    assert!(shown.contains("\nSubject Alternative Name: DNS:www.example.test\nAlgorithm: EC256\nSHA1 FingerPrint: "), "{shown}");
    assert!(
        shown.ends_with("\nSubject: /CN=www.example.test\nIssuer: /CN=Test CA/O=Harp Test\nOCSP Response Key: \n\n"),
        "{shown}"
    );
    // a renewed certificate, in one transaction
    let renewed = pki.pem_with_serial("www.example.test", &[0x0a, 0xbc]);
    assert_eq!(
        run(&format!("set ssl cert {www} <<\n{renewed}")),
        format!("Transaction created for certificate {www}!\n\n")
    );
    assert_eq!(
        run("show ssl cert"),
        format!("# transaction\n*{www}\n# filename\n{other}\n{www}\n\n")
    );
    let pending = run(&format!("show ssl cert *{www}"));
    assert!(
        pending.starts_with(&format!("Filename: *{www}\nStatus: Unused\nSerial: 0ABC\n")),
        "{pending}"
    );
    // still the old one until the commit
    let serial_served = || {
        let s = tls_connect(any_cert_config(), port, "www.example.test").expect("tls");
        let der = s.conn.peer_certificates().expect("certs")[0].to_vec();
        der.windows(4).any(|w| w == [0x02, 0x02, 0x0a, 0xbc])
    };
    assert!(!serial_served());
    assert_eq!(
        run(&format!("commit ssl cert {www}")),
        format!("Committing {www}.\nSuccess!\n\n")
    );
    assert!(serial_served(), "the renewed certificate is served");
    assert_eq!(
        run(&format!("abort ssl cert {www}")),
        "No ongoing transaction!\n\n"
    );
    assert_eq!(
        run(&format!("commit ssl cert {www}")),
        format!("No ongoing transaction! !\nCan't commit {www}!\n\n")
    );
    // HAProxy's errors, the socket usable after each
    assert_eq!(
        run("set ssl cert /nonexistent.pem <<\nx\n"),
        "Can't replace a certificate which is not referenced by the configuration!\nCan't update /nonexistent.pem!\n\n"
    );
    assert_eq!(
        run(&format!("set ssl cert {www} <<\nnot a pem\n")),
        format!("unable to load certificate from file '{www}'.\nCan't load the payload\nCan't update {www}!\n\n")
    );
    let cert_only = &renewed[..renewed.find("-----BEGIN PRIVATE KEY").expect("key")];
    assert_eq!(
        run(&format!(
            "set ssl cert {www} <<\n{}\n",
            cert_only.trim_end()
        )),
        format!("Transaction created for certificate {www}!\n\n")
    );
    assert_eq!(
        run(&format!("commit ssl cert {other}")),
        format!("The ongoing transaction is about '{www}' but you are trying to set '{other}'\nCan't commit {other}!\n\n")
    );
    assert_eq!(
        run(&format!("commit ssl cert {www}")),
        format!("The transaction must contain at least a certificate and a private key!\nCan't commit {www}!\n\n")
    );
    assert_eq!(
        run(&format!("abort ssl cert {www}")),
        format!("Transaction aborted for certificate '{www}'!\n\n")
    );
    assert_eq!(
        run(&format!(
            "show ssl cert {dir}/nope.pem",
            dir = dir.path().display()
        )),
        "Can't display the certificate: Not found or the certificate is a bundle!\n\n"
    );
    assert_eq!(
        run("commit ssl cert"),
        "'commit ssl cert expects a filename\n\n"
    );
    // with a transaction open, a `set` for any file updates it (HAProxy 2.6)
    assert_eq!(
        run(&format!("set ssl cert {www} <<\n{renewed}")),
        format!("Transaction created for certificate {www}!\n\n")
    );
    assert_eq!(
        run(&format!("set ssl cert /nonexistent.pem <<\n{renewed}")),
        format!("Transaction updated for certificate {www}!\n\n")
    );
    assert_eq!(
        run(&format!("abort ssl cert {www}")),
        format!("Transaction aborted for certificate '{www}'!\n\n")
    );
}

#[test]
fn error_log_format_names_the_connection_error() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let up = common::echo_upstream();
    let (port, ready) = (free_port(), free_port());
    let (sink, addr) = common::udp_sink();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen ready\n    bind 127.0.0.1:{ready}\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www}\n    log {addr} local0\n\
         \x20   log-format \"ok %ft %[fc_err] %[fc_err_str]\"\n\
         \x20   error-log-format \"err %ft %b/%s %[fc_err] %[fc_err_str]\"\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let _h = Harp::start(&config, ready, &[]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(b"hello\n").expect("send");
    let _ = c.read_to_end(&mut Vec::new());
    assert_eq!(
        line_with(&sink, "err "),
        "err fe~ fe/<NOSRV> 34 SSL handshake failure"
    );
    let mut s = tls_connect(client_config(&pki, &[], None), port, "www.example.test").expect("tls");
    assert_eq!(round_trip(&mut s, b"x"), b"x");
    drop(s);
    assert_eq!(line_with(&sink, "ok "), "ok fe~ 0 Success");
}

#[test]
fn tcp_check_rules_may_speak_tls() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let ca = pki.ca_file(dir.path());
    let (tls_up, plain_up) = (tls_upstream(&www), common::echo_upstream());
    let (port, api) = (free_port(), free_port());
    let config = format!(
        "global\n    stats socket ipv4@127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n    timeout check 2s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    option tcp-check\n\
         \x20   tcp-check connect ssl sni check.example.test\n\
         \x20   tcp-check send PING\\r\\n\n\
         \x20   tcp-check expect string sni=check.example.test\n\
         \x20   server good 127.0.0.1:{tls_up} check inter 200ms verify none\n\
         \x20   server plain 127.0.0.1:{plain_up} check inter 200ms fall 1 verify none\n\
         \x20   server strict 127.0.0.1:{tls_up} check inter 200ms fall 1 verify required ca-file {ca}\n"
    );
    let mut h = Harp::start(&config, port, &[]);
    h.wait_port(api);
    // TLS with the rule's SNI: the expectation is met
    assert!(common::wait_until(Duration::from_secs(10), || {
        stat_field(api, "be,good,", "check_status") == "L7OK"
    }));
    // a server in the clear fails the handshake, at layer 6
    assert!(common::wait_until(Duration::from_secs(10), || {
        stat_field(api, "be,plain,", "check_status") == "L6RSP"
    }));
    assert_eq!(stat_field(api, "be,plain,", "status"), "DOWN");
    // verifying: the rule's name is the one the certificate must carry
    assert!(common::wait_until(Duration::from_secs(10), || {
        stat_field(api, "be,strict,", "check_status") == "L6RSP"
    }));
}

#[test]
fn crt_base_and_ca_base_hold_relative_paths() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    pki.issue(dir.path(), "www.pem", "www.example.test", false);
    pki.ca_file(dir.path());
    let up = common::echo_upstream();
    let port = free_port();
    let d = dir.path().display();
    let config = format!(
        "global\n    crt-base {d}\n    ca-base {d}\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt www.pem verify optional ca-file ca.pem\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up} ssl verify required ca-file ca.pem\n"
    );
    // (the server line's ca-file comes from ca-base too: the configuration loads)
    let _h = Harp::start(&config, port, &[]);
    let mut s = tls_connect(client_config(&pki, &[], None), port, "www.example.test").expect("tls");
    s.write_all(b"x").expect("send");
    s.flush().expect("flush");
}

#[test]
fn maxsslconn_refuses_tls_connections_past_it() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let up = common::echo_upstream();
    let (port, ready, api) = (free_port(), free_port(), free_port());
    let (_sink, addr) = common::udp_sink();
    let config = format!(
        "global\n    maxsslconn 1\n    stats socket ipv4@127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen ready\n    bind 127.0.0.1:{ready}\n\
         frontend fe\n    bind 127.0.0.1:{port} ssl crt {www}\n    log {addr} local0\n    option tcplog\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{up}\n"
    );
    let mut h = Harp::start(&config, ready, &[]);
    h.wait_port(api);
    let info = cli(api, "show info");
    assert!(info.contains("\nMaxSslConns: 1\n"), "{info}");
    let cfg = client_config(&pki, &[], None);
    let mut first = tls_connect(cfg.clone(), port, "www.example.test").expect("tls");
    assert_eq!(round_trip(&mut first, b"a"), b"a");
    // the second is refused while the first is open
    let refused = tls_connect(cfg.clone(), port, "www.example.test").and_then(|mut s| {
        s.write_all(b"b")?;
        s.flush()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
    });
    assert!(refused.is_err());
    drop(first);
    // once it is gone, new ones are taken again
    assert!(common::wait_until(Duration::from_secs(10), || {
        tls_connect(cfg.clone(), port, "www.example.test")
            .map(|mut s| round_trip(&mut s, b"c") == b"c")
            .unwrap_or(false)
    }));
}

/// A TLS server answering `<version> <suite>` of each connection (rustls' names), then closing.
fn tls_reporting_upstream(cert: &str) -> u16 {
    use tokio_rustls::rustls::ServerConnection;
    let cfg = server_config(cert);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { break };
            let Ok(conn) = ServerConnection::new(cfg.clone()) else {
                continue;
            };
            let mut s = StreamOwned::new(conn, c);
            while s.conn.is_handshaking() {
                if s.conn.complete_io(&mut s.sock).is_err() {
                    break;
                }
            }
            let said = format!(
                "{:?} {:?}\n",
                s.conn.protocol_version(),
                s.conn.negotiated_cipher_suite().map(|c| c.suite())
            );
            let _ = s.write_all(said.as_bytes());
            s.conn.send_close_notify();
            let _ = s.flush();
            // what the client sent is read before closing: unread bytes would make the close a
            // reset, which takes the answer with it
            let _ = s.sock.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read_to_end(&mut Vec::new());
        }
    });
    port
}

#[test]
fn server_lines_choose_versions_and_ciphers() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let up = tls_reporting_upstream(&www);
    let (p1, p2) = (free_port(), free_port());
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen v13\n    bind 127.0.0.1:{p1}\n\
         \x20   server s1 127.0.0.1:{up} ssl verify none ssl-min-ver TLSv1.3 ciphersuites TLS_CHACHA20_POLY1305_SHA256\n\
         listen v12\n    bind 127.0.0.1:{p2}\n\
         \x20   server s1 127.0.0.1:{up} ssl verify none force-tlsv12 ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n"
    );
    let mut h = Harp::start(&config, p1, &[]);
    h.wait_port(p2);
    assert_eq!(
        plain_ask(p1, b"x"),
        "Some(TLSv1_3) Some(TLS13_CHACHA20_POLY1305_SHA256)\n"
    );
    assert_eq!(
        plain_ask(p2, b"x"),
        "Some(TLSv1_2) Some(TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)\n"
    );
}

#[test]
fn ssl_default_server_options_apply_to_server_lines() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let www = pki.issue(dir.path(), "www.pem", "www.example.test", false);
    let up = tls_reporting_upstream(&www);
    let port = free_port();
    let config = format!(
        "global\n    ssl-default-server-options ssl-max-ver TLSv1.2\n\
         \x20   ssl-default-server-ciphers ECDHE-ECDSA-AES256-GCM-SHA384\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen l\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{up} ssl verify none\n"
    );
    let _h = Harp::start(&config, port, &[]);
    assert_eq!(
        plain_ask(port, b"x"),
        "Some(TLSv1_2) Some(TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)\n"
    );
}
