use std::net::{IpAddr, SocketAddr};

use super::hello::{self, sample_client_hello, Hello};
use super::patref;
use super::pattern::{parse_net, Method, Patterns, Value};
use super::*;

/// A session as the rules see it.
struct Fake {
    src: SocketAddr,
    content: Option<Vec<u8>>,
    fin: bool,
    nbsrv: i64,
}

impl Fake {
    fn new(src: &str) -> Fake {
        Fake {
            src: src.parse().expect("test address"),
            content: Some(Vec::new()),
            fin: false,
            nbsrv: 2,
        }
    }
}

impl Env for Fake {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        "127.0.0.1:443".parse().ok()
    }
    fn content(&self) -> Option<&[u8]> {
        self.content.as_deref()
    }
    fn is_final(&self) -> bool {
        self.fin
    }
    fn proxy_stat(&self, proxy: &str, what: ProxyStat) -> Option<i64> {
        match (proxy, what) {
            ("be", ProxyStat::Nbsrv) => Some(self.nbsrv),
            ("be", _) => Some(0),
            _ => None,
        }
    }
    fn server_stat(&self, _: &str, server: &str, _: ServerStat) -> Option<i64> {
        (server == "up").then_some(1)
    }
}

fn w(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn sni_is_read_from_a_whole_hello_and_waited_for_in_a_partial_one() {
    let rec = sample_client_hello("api.example.com");
    assert_eq!(hello::sni(&rec), Hello::Found(&b"api.example.com"[..]));
    for cut in [0, 1, 5, 40, rec.len() - 1] {
        assert_eq!(hello::sni(&rec[..cut]), Hello::Short, "cut at {cut}");
    }
    assert_eq!(hello::sni(b"GET / HTTP/1.1\r\n"), Hello::Absent);
    assert_eq!(hello::hello_type(&rec), Hello::Found(1));
    assert_eq!(hello::hello_type(b"SSH-2.0"), Hello::Absent);
    // a declared length past the record is not a hello, whatever follows
    let mut bad = rec.clone();
    bad[3] = 0;
    bad[4] = 10;
    assert_eq!(hello::sni(&bad), Hello::Absent);
}

#[test]
fn sni_of_random_bytes_never_panics() {
    let mut x: u32 = 12345;
    for len in 0..400 {
        let mut buf: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect();
        if let Some(b) = buf.first_mut() {
            *b = 0x16;
        }
        let _ = hello::sni(&buf);
        let _ = hello::hello_type(&buf);
    }
}

#[test]
fn int_ranges_and_operators() {
    let mut p = Patterns::new(Method::Int, false);
    p.add_all(&w("ge 10 lt 3 eq 5:6")).expect("valid ranges");
    let m = |i| p.matches(&Value::Int(i));
    assert!(m(10) && m(1000) && m(2) && !m(3) && !m(4));
    // an operator applies to every value after it
    assert!(m(5) && m(6));
    let mut q = Patterns::new(Method::Int, false);
    q.add_all(&w("80 443 8000:8080")).expect("valid");
    assert!(q.matches(&Value::Int(443)) && q.matches(&Value::Int(8042)));
    assert!(!q.matches(&Value::Int(81)));
    assert!(Patterns::new(Method::Int, false)
        .add_all(&w("abc"))
        .is_err());
}

#[test]
fn networks_match_both_address_families() {
    let mut p = Patterns::new(Method::Ip, false);
    p.add_all(&w("10.0.0.0/8 192.168.1.0/255.255.255.0 ::1"))
        .expect("valid");
    let m = |s: &str| p.matches(&Value::Ip(s.parse().expect("address")));
    assert!(m("10.1.2.3") && m("192.168.1.77") && m("::1"));
    assert!(
        m("::ffff:10.9.9.9"),
        "an IPv4 pattern matches a mapped address"
    );
    assert!(!m("11.0.0.1") && !m("192.168.2.1") && !m("::2"));
    assert!(parse_net("10.0.0.0/33").is_err());
    assert!(parse_net("10.0.0.0/255.0.255.0").is_err());
    assert!(parse_net("example.com").is_err());
}

#[test]
fn string_methods_and_case() {
    let sni = |method, icase, pat: &str, v: &str| {
        let mut p = Patterns::new(method, icase);
        p.add(pat).expect("valid pattern");
        p.matches(&Value::Str(v.as_bytes().to_vec()))
    };
    assert!(sni(Method::Str, false, "a.example.com", "a.example.com"));
    assert!(!sni(Method::Str, false, "a.example.com", "A.example.com"));
    assert!(sni(Method::Str, true, "A.EXAMPLE.com", "a.Example.com"));
    assert!(sni(Method::End, false, ".example.com", "x.example.com"));
    assert!(sni(Method::Beg, false, "api.", "api.example.com"));
    assert!(sni(Method::Sub, false, "ample", "api.example.com"));
    assert!(sni(Method::Dom, false, "example", "api.example.com"));
    assert!(!sni(Method::Dom, false, "exam", "api.example.com"));
    assert!(sni(Method::Reg, true, "^API\\.", "api.example.com"));
    assert!(sni(Method::Len, false, "15", "api.example.com"));
    let mut b = Patterns::new(Method::Bin, false);
    b.add("474554").expect("hex");
    assert!(b.matches(&Value::Bin(b"GET".to_vec())));
    assert!(b.add("47455").is_err());
}

fn rules(lines: &[&str]) -> Rules {
    let mut r = Rules::default();
    for l in lines {
        let words = w(l);
        match words[0].as_str() {
            "acl" => {
                r.parse_acl(&words[1..], "fe").expect("valid acl");
            }
            "tcp-request" => {
                r.parse_tcp_request(&words, "fe", "frontend", true)
                    .expect("valid rule");
            }
            "use_backend" => {
                r.parse_use_backend(&words, "fe")
                    .expect("valid use_backend");
            }
            _ => panic!("unexpected line {l}"),
        }
    }
    r
}

#[test]
fn content_rules_wait_for_the_hello_then_route_by_name() {
    let r = rules(&[
        "tcp-request inspect-delay 5s",
        "tcp-request content accept if { req.ssl_hello_type 1 }",
        "tcp-request content reject if WAIT_END",
        "acl api req.ssl_sni -i api.example.com",
        "use_backend be_api if api",
        "use_backend be_other if { req.ssl_sni -m end .example.com }",
    ]);
    let hello = sample_client_hello("API.example.com");
    let mut env = Fake::new("10.0.0.1:5000");
    env.content = Some(hello[..3].to_vec());
    assert_eq!(r.run(Phase::Content, &env), Verdict::Wait);
    env.content = Some(hello.clone());
    assert_eq!(r.run(Phase::Content, &env), Verdict::Accept);
    env.fin = true;
    assert_eq!(r.backend(&env).as_deref(), Some("be_api"));
    env.content = Some(sample_client_hello("www.example.com"));
    assert_eq!(r.backend(&env).as_deref(), Some("be_other"));
    env.content = Some(sample_client_hello("example.org"));
    assert_eq!(r.backend(&env), None);
    // not TLS: nothing matches until the delay is over, then WAIT_END rejects
    env.content = Some(b"SSH-2.0-x\r\n".to_vec());
    env.fin = false;
    assert_eq!(r.run(Phase::Content, &env), Verdict::Wait);
    env.fin = true;
    assert_eq!(r.run(Phase::Content, &env), Verdict::Reject);
}

#[test]
fn conditions_combine_and_or_not_unless() {
    let r = rules(&[
        "acl lan src 10.0.0.0/8",
        "acl web dst_port 80 443",
        "acl has_srv nbsrv(be) ge 1",
        "tcp-request connection reject if !lan web || { src 192.0.2.1 }",
        "tcp-request session reject unless has_srv",
    ]);
    let env = Fake::new("10.1.1.1:1000");
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Accept);
    let env = Fake::new("172.16.0.1:1000");
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Reject);
    let env = Fake::new("192.0.2.1:1000");
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Reject);
    let mut env = Fake::new("10.1.1.1:1000");
    assert_eq!(r.run(Phase::Session, &env), Verdict::Accept);
    env.nbsrv = 0;
    assert_eq!(r.run(Phase::Session, &env), Verdict::Reject);
}

#[test]
fn acl_lines_of_one_name_add_up_even_after_use() {
    let r = rules(&[
        "acl bad src 192.0.2.1",
        "tcp-request connection reject if bad",
        "acl bad src 198.51.100.0/24",
    ]);
    let env = Fake::new("198.51.100.7:1");
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Reject);
}

#[test]
fn bad_lines_say_what_is_wrong() {
    let mut r = Rules::default();
    let err = |r: &mut Rules, line: &str| {
        let words = w(line);
        match words[0].as_str() {
            "acl" => r.parse_acl(&words[1..], "fe").map(|_| ()),
            "use_backend" => r.parse_use_backend(&words, "fe").map(|_| ()),
            _ => r
                .parse_tcp_request(&words, "fe", "frontend", true)
                .map(|_| ()),
        }
        .expect_err(line)
    };
    assert!(err(&mut r, "use_backend b if nope").contains("no such ACL : 'nope'"));
    assert!(err(&mut r, "acl x srcc 1.2.3.4").contains("did you mean 'src'"));
    assert!(err(&mut r, "acl x src 1.2.3.400").contains("not a valid IPv4 or IPv6 address"));
    assert!(err(&mut r, "acl x dst_port -q 1").contains("is not a valid ACL option"));
    assert!(err(&mut r, "acl x src -m foo 1").contains("unknown matching method 'foo'"));
    assert!(err(&mut r, "acl x src -f /nonexistent/harp").contains("failed to open pattern file"));
    assert!(err(&mut r, "tcp-request content set-dst src").contains("not supported by harp"));
    assert_eq!(
        err(&mut r, "tcp-request content set-var(txn.a-b,ifexists) src"),
        "invalid syntax at char '-b,ifexists)'"
    );
    assert_eq!(
        err(&mut r, "tcp-request content set-var(txn.x,bogus) src"),
        "unknown condition \"bogus\""
    );
    assert_eq!(
        err(&mut r, "tcp-request content set-var(txn.x)"),
        "missing fetch method"
    );
    assert!(err(&mut r, "tcp-request content set-var int(1)")
        .starts_with("invalid or incomplete action 'set-var'. Expects"));
    assert!(err(&mut r, "tcp-request content set-var(txn.x int(1)")
        .starts_with("incomplete argument after action 'set-var(txn.x'."));
    assert_eq!(
        err(&mut r, "tcp-request connection set-var(sess.x) req.len"),
        "fetch method 'set-var(sess.x)' extracts information from 'request buffer', none of which is available here"
    );
    assert_eq!(
        err(&mut r, "tcp-request content unset-var(txn.x) int(1)"),
        "'tcp-request content unset-var(txn.x)' only accepts 'if' or 'unless', in frontend 'fe' (got 'int(1)')"
    );
    assert!(err(&mut r, "tcp-request content unset-var(txn.x,ifexists)")
        .starts_with("unset-var does not expect parameters"));
    // capture: HAProxy 2.6.12's messages
    let len = "'tcp-request content capture' : a positive 'len' argument is mandatory";
    assert_eq!(err(&mut r, "tcp-request content capture req.len"), len);
    assert_eq!(err(&mut r, "tcp-request content capture req.len id 0"), len);
    assert_eq!(
        err(&mut r, "tcp-request content capture req.len len x"),
        "'tcp-request content capture' : length must be > 0"
    );
    assert_eq!(
        err(&mut r, "tcp-request connection capture src len 3"),
        "'capture src' is not allowed in 'tcp-request connection' rules in frontend 'fe'"
    );
    assert_eq!(
        err(&mut r, "tcp-request content set-var-fmt(txn.x) %[bogus]"),
        "failed to parse sample expression <bogus]> : unknown fetch method 'bogus'"
    );
    assert!(err(&mut r, "tcp-request content track-sc3 src").contains("invalid stick counter '3'"));
    assert!(err(&mut r, "tcp-request connection track-sc0 req.ssl_sni")
        .contains("none of which is available here"));
    assert!(err(&mut r, "tcp-request content sc-inc-gpc0(9)").contains("invalid stick counter"));
    assert!(err(&mut r, "acl x sc_conn_rate(5) gt 1").contains("invalid stick counter '5'"));
    assert!(
        err(&mut r, "tcp-request content accept if { src 1.2.3.4").contains("missing closing '}'")
    );
    assert!(err(&mut r, "tcp-request content accept when x").contains("expects 'if' or 'unless'"));
    assert!(err(&mut r, "use_backend %[nope]")
        .contains("failed to parse sample expression <nope]> : unknown fetch method 'nope'"));
    assert!(err(&mut r, "use_backend be_%[src").contains("missing ']' after 'src'"));
    let words = w("tcp-request connection reject");
    assert!(r
        .parse_tcp_request(&words, "be", "backend", false)
        .expect_err("backend")
        .contains("is not a frontend"));
    // no pattern: a warning, not an error; `--` silences it
    assert!(r.parse_acl(&w("x src"), "fe").expect("parses").is_some());
    assert!(r.parse_acl(&w("y src --"), "fe").expect("parses").is_none());
}

#[test]
fn pattern_files_skip_comments_and_blanks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("block.lst");
    std::fs::write(&f, "# blocked\n\n  192.0.2.0/24  \n198.51.100.9\n").expect("write");
    let r = rules(&[
        &format!("acl blocked src -f {}", f.display()),
        "tcp-request connection reject if blocked",
    ]);
    assert_eq!(
        r.run(Phase::Connection, &Fake::new("192.0.2.200:1")),
        Verdict::Reject
    );
    assert_eq!(
        r.run(Phase::Connection, &Fake::new("198.51.100.9:1")),
        Verdict::Reject
    );
    assert_eq!(
        r.run(Phase::Connection, &Fake::new("198.51.100.8:1")),
        Verdict::Accept
    );
}

#[test]
fn content_fetches_cannot_match_before_content_and_warn() {
    let mut r = Rules::default();
    let warn = r
        .parse_tcp_request(
            &w("tcp-request connection reject if { req.len gt 0 }"),
            "fe",
            "frontend",
            true,
        )
        .expect("parses");
    assert_eq!(
        warn,
        ["anonymous acl will never match in 'tcp-request connection' because it uses keyword 'req.len' which is incompatible with 'frontend tcp-request connection rule'"]
    );
    let mut env = Fake::new("10.0.0.1:1");
    env.content = None;
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Accept);
    // a second inspect-delay is ignored with HAProxy's warning
    let mut c = Rules::default();
    let d = |r: &mut Rules, t: &str| {
        r.parse_tcp_request(
            &w(&format!("tcp-request inspect-delay {t}")),
            "fe",
            "frontend",
            true,
        )
        .expect("parses")
    };
    assert!(d(&mut c, "2s").is_empty());
    assert_eq!(
        d(&mut c, "5s"),
        ["ignoring tcp-request inspect-delay (was already defined) in frontend 'fe'"]
    );
    assert_eq!(c.inspect_delay, Some(Duration::from_secs(2)));
}

#[test]
fn a_miss_holds_the_suite_as_haproxy_does() {
    // [MISS, FAIL] is a miss: the rule waits rather than letting a later one decide on a
    // partial request
    let r = rules(&[
        "tcp-request inspect-delay 1s",
        "tcp-request content reject if { req.len lt 3 } { req.len gt 100 }",
        "tcp-request content reject if { req.len lt 3 }",
    ]);
    let mut env = Fake::new("10.0.0.1:1");
    env.content = Some(b"ab".to_vec());
    assert_eq!(r.run(Phase::Content, &env), Verdict::Wait);
    env.content = Some(b"abcd".to_vec());
    env.fin = true;
    assert_eq!(r.run(Phase::Content, &env), Verdict::Accept);
}

#[test]
fn conditions_are_as_lenient_as_haproxy_s() {
    let r = rules(&[
        "acl lan src 10.0.0.0/8",
        "use_backend a if lan || !",
        "use_backend b unless",
    ]);
    let mut env = Fake::new("192.0.2.1:1");
    env.fin = true;
    assert_eq!(
        r.backend(&env).as_deref(),
        Some("b"),
        "a bare 'unless' always holds"
    );
    let env = Fake::new("10.0.0.1:1");
    assert_eq!(r.backend(&env).as_deref(), Some("a"));
    let mut ops = Patterns::new(Method::Int, false);
    assert_eq!(
        ops.add_all(&w("ge 10 gt 10 le 10 lt 10 eq 5"))
            .expect("valid"),
        ["10:", "11:", ":10", ":9", "5"],
        "stored as HAProxy stores them"
    );
    let mut p = Patterns::new(Method::Int, false);
    p.add_all(&w("8000-8080 gt 9000:9001"))
        .expect("ranges with '-' and after an operator");
    assert!(p.matches(&Value::Int(8042)) && p.matches(&Value::Int(9001)));
    assert!(!p.matches(&Value::Int(9002)));
    assert!(Patterns::new(Method::Int, false)
        .add_all(&w("9:x"))
        .expect_err("bad")
        .contains("is not a valid number range"));
    let mut dom = Patterns::new(Method::Dom, false);
    dom.add("example").expect("valid");
    assert!(dom.matches(&Value::Str(b"example:443".to_vec())));
    assert!(Fetch::parse("req.ssl_sni,json", "fe")
        .expect_err("converter")
        .contains("unknown converter 'json'"));
    assert!(Fetch::parse("req.payload(4294967296,18446744073709551615)", "fe").is_err());
}

#[test]
fn server_state_fetches() {
    let r = rules(&[
        "acl up srv_is_up(be/up)",
        "acl gone srv_is_up(be/down)",
        "use_backend a if gone",
        "use_backend b if up",
    ]);
    let mut env = Fake::new("10.0.0.1:1");
    env.fin = true;
    assert_eq!(r.backend(&env).as_deref(), Some("b"));
}

#[test]
fn pattern_lists_get_haproxy_ids_and_change_at_runtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("b.lst");
    std::fs::write(&f, "192.0.2.1\n").expect("write");
    let f = f.display().to_string();
    let mut r = Rules::default();
    r.acls.set_site("h.cfg", 3);
    r.parse_acl(&w(&format!("a src -f {f}")), "fe")
        .expect("valid");
    r.acls.set_site("h.cfg", 4);
    r.parse_tcp_request(
        &w(&format!(
            "tcp-request connection reject if a || {{ src -f {f} 10.0.0.1 }}"
        )),
        "fe",
        "frontend",
        true,
    )
    .expect("valid");
    patref::assign_ids(r.acls.refs().into_iter());
    let groups = patref::groups(r.acls.refs().into_iter());
    let lines: Vec<String> = groups.iter().map(|g| patref::list_line(g)).collect();
    assert_eq!(
        lines,
        [
            format!("0 ({f}) pattern loaded from file '{f}' used by acl at file 'h.cfg' line 3, by acl at file 'h.cfg' line 4. curr_ver=0 next_ver=0 entry_cnt=1"),
            "1 () acl 'src' file 'h.cfg' line 3. curr_ver=0 next_ver=0 entry_cnt=0".to_string(),
            "2 () acl 'src' file 'h.cfg' line 4. curr_ver=0 next_ver=0 entry_cnt=1".to_string(),
        ]
    );
    let env = Fake::new("198.51.100.1:1");
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Accept);
    patref::group_add(
        &groups[0],
        &[("198.51.100.0/24", None), ("198.51.100.0/24", None)],
    )
    .expect("valid");
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Reject);
    assert!(patref::group_add(&groups[0], &[("203.0.113.1", None), ("nonsense", None)]).is_err());
    assert_eq!(groups[0][1].len(), 3, "all or none");
    // a handle deletes that one entry from every list of the file, the duplicate stays
    let first = groups[0][0].entries()[1].handle;
    assert!(patref::group_remove(
        &groups[0],
        patref::Target::Handle(first)
    ));
    assert_eq!(groups[0][1].entries().len(), 2);
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Reject);
    assert!(patref::group_remove(
        &groups[0],
        patref::Target::Key("198.51.100.0/24")
    ));
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Accept);
    patref::group_replace(&groups[0], &[("198.51.100.1".to_string(), None)]).expect("valid");
    assert_eq!(r.run(Phase::Connection, &env), Verdict::Reject);
    assert_eq!(
        groups[2][0].lookup_line(false, "10.0.0.1"),
        "type=ip, case=sensitive, match=yes, idx=tree, pattern=\"10.0.0.1\""
    );
    patref::group_clear(&groups[2]);
    assert_eq!(
        groups[2][0].lookup_line(false, "10.0.0.1"),
        "type=ip, case=sensitive, match=no"
    );
}

proptest::proptest! {
    /// The hashed networks and strings answer as the ordered list does, through adds and
    /// removals.
    #[test]
    fn hashed_patterns_agree_with_the_list(
        nets in proptest::collection::vec((proptest::num::u32::ANY, 0u8..=32, proptest::bool::ANY), 1..40),
        probes in proptest::collection::vec(proptest::num::u32::ANY, 1..40),
        remove in proptest::collection::vec(0usize..40, 0..10),
    ) {
        let mut p = Patterns::new(Method::Ip, false);
        let mut s = Patterns::new(Method::Str, true);
        for (a, bits, v6) in &nets {
            let addr = std::net::Ipv4Addr::from(*a);
            let text = if *v6 {
                format!("{}/{}", addr.to_ipv6_mapped(), u32::from(*bits) + 96)
            } else {
                format!("{addr}/{bits}")
            };
            p.add(&text).expect("valid network");
            s.add(&format!("Host{}.Example", a % 50)).expect("valid string");
        }
        // by id: patterns are numbered in the order they were added (a gone one is a no-op)
        for i in remove {
            p.remove((i % nets.len()) as u64);
            s.remove((i % nets.len()) as u64);
        }
        for a in probes.iter().chain(nets.iter().map(|n| &n.0)) {
            for ip in [IpAddr::V4((*a).into()), IpAddr::V6(std::net::Ipv4Addr::from(*a).to_ipv6_mapped())] {
                let v = Value::Ip(ip);
                proptest::prop_assert_eq!(p.matches(&v), p.matching(&v).next().is_some(), "{}", ip);
            }
            let v = Value::Str(format!("hOST{}.example", a % 60).into_bytes());
            proptest::prop_assert_eq!(s.matches(&v), s.matching(&v).next().is_some());
        }
    }
}

#[test]
fn expect_proxy_goes_on_to_the_next_rules() {
    let r = rules(&[
        "tcp-request connection expect-proxy layer4 if { src 10.0.0.0/8 }",
        "tcp-request connection reject if { src 10.9.0.0/16 }",
    ]);
    assert!(r.expects_proxy());
    assert_eq!(
        r.run_connection(&Fake::new("10.1.1.1:1")),
        (Verdict::Accept, true)
    );
    assert_eq!(
        r.run_connection(&Fake::new("10.9.1.1:1")),
        (Verdict::Reject, true)
    );
    assert_eq!(
        r.run_connection(&Fake::new("192.0.2.1:1")),
        (Verdict::Accept, false)
    );
    let mut bad = Rules::default();
    let e = bad
        .parse_tcp_request(
            &w("tcp-request connection expect-proxy layer7"),
            "fe",
            "frontend",
            true,
        )
        .expect_err("layer4 only");
    assert!(e.contains("only supports 'layer4'"), "{e}");
    assert!(bad
        .parse_tcp_request(
            &w("tcp-request content expect-proxy layer4"),
            "fe",
            "frontend",
            true
        )
        .is_err());
}

#[test]
fn forced_ids_are_kept_and_skipped() {
    let mut r = Rules::default();
    r.acls.set_site("h.cfg", 1);
    for line in [
        "a src -u 1 192.0.2.1",
        "b src 192.0.2.2",
        "c src -u 1 192.0.2.3",
    ] {
        r.parse_acl(&w(line), "fe").expect("valid");
    }
    patref::assign_ids(r.acls.refs().into_iter());
    let ids: Vec<u32> = r.acls.refs().iter().map(|p| p.id()).collect();
    assert_eq!(ids, [1, 0, 1]);
    let groups = patref::groups(r.acls.refs().into_iter());
    assert_eq!(groups[1].len(), 2, "one -u id, one group");
    assert!(r.parse_acl(&w("d src -u x 1.2.3.4"), "fe").is_err());
}

#[test]
fn lists_of_one_forced_id_hold_every_line_s_values() {
    let mut r = Rules::default();
    for line in ["a src -u 3 192.0.2.1", "b src -u 3 192.0.2.2"] {
        r.parse_acl(&w(line), "fe").expect("valid");
    }
    patref::assign_ids(r.acls.refs().into_iter());
    let g = &patref::groups(r.acls.refs().into_iter())[0];
    let texts = |i: usize| -> Vec<String> { g[i].entries().into_iter().map(|e| e.text).collect() };
    assert_eq!(texts(0), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(texts(1), texts(0));
    let h = g[0].entries()[0].handle;
    assert!(patref::group_remove(g, patref::Target::Handle(h)));
    assert_eq!(texts(1), ["192.0.2.2"]);
}

#[test]
fn negative_ranges_read_back_as_stored() {
    let mut p = Patterns::new(Method::Int, false);
    let stored = p.add_all(&w("ge -5 lt -1")).expect("valid");
    assert_eq!(stored, ["-5:", ":-2"]);
    let mut q = Patterns::new(Method::Int, false);
    for t in &stored {
        q.add(t).expect("a stored text parses back");
    }
    q.add("-3").expect("a negative value");
    q.add("-9--7").expect("a range of negatives");
    assert!(q.matches(&Value::Int(-8)) && q.matches(&Value::Int(7)) && q.matches(&Value::Int(-6)));
}

#[test]
fn a_condition_short_of_data_starts_the_rules_over_a_key_resumes_at_its_rule() {
    let r = rules(&[
        "tcp-request content accept if { always_false }",
        "tcp-request content reject if { req.payload(0,4) -m bin 41414141 }",
    ]);
    let mut env = Fake::new("127.0.0.1:1");
    env.content = Some(b"AA".to_vec());
    let mut at = 0;
    assert_eq!(r.run_from(Phase::Content, &env, &mut at).0, Verdict::Wait);
    assert_eq!(at, 0, "HAProxy re-evaluates from the first rule");
    let t = rules(&[
        "tcp-request content accept if { always_false }",
        "tcp-request content track-sc0 req.payload(0,4)",
    ]);
    let mut at = 0;
    assert_eq!(t.run_from(Phase::Content, &env, &mut at).0, Verdict::Wait);
    assert_eq!(at, 1, "a track-sc waiting for its key resumes there");
}

#[test]
fn converters_change_the_sample_and_its_match_method() {
    let r = rules(&[
        "use_backend api if { req.ssl_sni,lower -m str api.example.com }",
        "use_backend lan if { src,ipmask(24) 10.1.2.0 }",
        "use_backend long if { req.ssl_sni,length gt 20 }",
    ]);
    let mut env = Fake::new("127.0.0.1:1");
    env.content = Some(sample_client_hello("API.Example.COM"));
    env.fin = true;
    assert_eq!(r.backend(&env).as_deref(), Some("api"));
    let mut env = Fake::new("10.1.2.77:1");
    env.content = Some(sample_client_hello("a-rather-long-name.example.com"));
    env.fin = true;
    assert_eq!(r.backend(&env).as_deref(), Some("lan"));
    let mut env = Fake::new("10.9.9.9:1");
    env.content = Some(sample_client_hello("a-rather-long-name.example.com"));
    env.fin = true;
    assert_eq!(r.backend(&env).as_deref(), Some("long"));
    let mut bad = Rules::default();
    let e = bad
        .parse_acl(&w("x src,nope 1.2.3.4"), "fe")
        .expect_err("unknown converter");
    assert!(e.contains("unknown converter 'nope'"), "{e}");
    let e = bad
        .parse_acl(&w("x src,ipmask(33) 1.2.3.4"), "fe")
        .expect_err("bad mask");
    assert!(e.contains("invalid IPv4 mask '33'"), "{e}");
    assert!(bad
        .parse_acl(&w("x src,ipmask(255.255.0.0) 1.2.0.0"), "fe")
        .is_ok());
    // a table converter names its table (an empty argument: the proxy's own)
    let e = bad
        .parse_acl(&w("x src,in_table"), "fe")
        .expect_err("no table");
    assert!(e.contains("missing arg 1"), "{e}");
    assert!(bad.parse_acl(&w("x src,in_table()"), "fe").is_ok());
    // raw bytes as text stop at a NUL, as HAProxy casts them
    let r = rules(&["use_backend three if { req.payload(0,5),length eq 3 }"]);
    let mut env = Fake::new("127.0.0.1:1");
    env.content = Some(b"abc\0de".to_vec());
    env.fin = true;
    assert_eq!(r.backend(&env).as_deref(), Some("three"));
}

#[test]
fn silent_drop_reads_its_ttl_as_strtoul_and_converter_lists_skip_empty_commas() {
    let mut r = Rules::default();
    let mut ttl = |v: &str| {
        r.parse_tcp_request(
            &w(&format!("tcp-request connection silent-drop rst-ttl {v}")),
            "fe",
            "frontend",
            true,
        )
        .map(|_| ())
    };
    assert!(ttl("0x20").is_ok() && ttl("010").is_ok() && ttl("255").is_ok());
    assert!(ttl("256")
        .unwrap_err()
        .contains("valid rst-ttl values are [1-255]"));
    assert!(ttl("0")
        .unwrap_err()
        .contains("valid rst-ttl values are [1-255]"));
    assert!(ttl("12x")
        .unwrap_err()
        .contains("invalid character starting at 'x'"));
    let actions: Vec<_> = r.connection.iter().map(|x| x.action.clone()).collect();
    assert_eq!(
        actions,
        [
            Action::SilentDrop { rst_ttl: Some(32) },
            Action::SilentDrop { rst_ttl: Some(8) },
            Action::SilentDrop { rst_ttl: Some(255) },
        ]
    );
    assert!(Fetch::parse("src,,ipmask(8),", "fe").is_ok());
}

#[test]
fn sc_set_gpt0_takes_an_integer_or_a_sample_expression() {
    let mut r = Rules::default();
    let mut parse = |line: &str, phase_ok: bool| {
        let words = w(line);
        let res = r.parse_tcp_request(&words, "fe", "frontend", true);
        assert_eq!(res.is_ok(), phase_ok, "{line}: {res:?}");
    };
    parse("tcp-request connection sc-set-gpt0(0) 42", true);
    parse("tcp-request connection sc-set-gpt0(1) -1", true);
    parse("tcp-request connection sc-set-gpt0(0) src_port", true);
    parse(
        "tcp-request content sc-set-gpt0(0) req.len if { always_true }",
        true,
    );
    parse("tcp-request connection sc-set-gpt0(0) req.len", false);
    parse("tcp-request connection sc-set-gpt0(0) nope", false);
    let values: Vec<_> = r
        .connection
        .iter()
        .map(|x| match &x.action {
            Action::SetGpt0 { value, .. } => value.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        [
            GptValue::Int(42),
            GptValue::Int(-1),
            GptValue::Expr(Fetch::SrcPort)
        ]
    );
    assert!(
        r.content[0].cond.is_some(),
        "the condition after the expression"
    );
}
