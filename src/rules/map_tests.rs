//! The map converters, map files and dynamic `use_backend` names, checked against what HAProxy
//! 2.6 answered for the same files (`get map`, `show map`, routing).

use std::net::SocketAddr;

use super::convert::Conv;
use super::fetch::Env;
use super::patref::{self, read_pairs, Target};
use super::pattern::Value;
use super::*;

/// A session whose client comes from `src` and whose request holds `content`.
struct Sess {
    src: SocketAddr,
    content: Vec<u8>,
}

impl Env for Sess {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        "127.0.0.1:443".parse().ok()
    }
    fn content(&self) -> Option<&[u8]> {
        Some(&self.content)
    }
    fn is_final(&self) -> bool {
        true
    }
    fn proxy_stat(&self, _: &str, _: ProxyStat) -> Option<i64> {
        None
    }
    fn server_stat(&self, _: &str, _: &str, _: ServerStat) -> Option<i64> {
        None
    }
}

fn sess(src: &str) -> Sess {
    Sess {
        src: src.parse().expect("test address"),
        content: Vec::new(),
    }
}

/// A map file in a fresh directory, and its path.
fn map_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("m.map");
    std::fs::write(&f, text).expect("write");
    let f = f.display().to_string();
    (dir, f)
}

fn conv(word: &str) -> Conv {
    Conv::parse(word, "fe", &("h.cfg".to_string(), 7)).expect(word)
}

fn apply(c: &Conv, v: Value) -> Option<Value> {
    c.apply(v, &sess("192.0.2.1:1"))
}

fn s(t: &str) -> Value {
    Value::Str(t.as_bytes().to_vec())
}

#[test]
fn map_files_read_as_haproxy_reads_them() {
    let pairs =
        read_pairs("# c\nexample.com  be_a\n  api.example.com\tbe_b  \r\nfoo\n\n \n/x/ 1 2\n");
    let got: Vec<(usize, &str, &str)> = pairs
        .iter()
        .map(|(n, k, v)| (*n, k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "example.com", "be_a"),
            (3, "api.example.com", "be_b"),
            (4, "foo", ""),
            (7, "/x/", "1 2"),
        ]
    );
}

#[test]
fn each_match_finds_what_haproxy_finds() {
    let (_d, f) = map_file("example.com be_a\napi.example.com be_b\n/static/ st\n/ root\n");
    let exact = conv(&format!("map({f})"));
    assert_eq!(apply(&exact, s("api.example.com")), Some(s("be_b")));
    assert_eq!(apply(&exact, s("nope")), None, "no default: no sample");
    let dflt = conv(&format!("map_str({f},be_default)"));
    assert_eq!(apply(&dflt, s("nope")), Some(s("be_default")));
    // a case-sensitive prefix tree gives the longest prefix, wherever it is in the file
    let beg = conv(&format!("map_beg({f})"));
    assert_eq!(apply(&beg, s("/static/app.js")), Some(s("st")));
    assert_eq!(apply(&beg, s("/index")), Some(s("root")));
    // a list: the first key in file order that matches, not the longest
    let end = conv(&format!("map_end({f})"));
    assert_eq!(apply(&end, s("www.api.example.com")), Some(s("be_a")));
    let dom = conv(&format!("map_dom({f})"));
    assert_eq!(apply(&dom, s("x.example.com")), Some(s("be_a")));
    assert_eq!(apply(&dom, s("xexample.com")), None);
    let dir = conv(&format!("map_dir({f})"));
    assert_eq!(apply(&dir, s("/a/static/b")), Some(s("st")));
    let sub = conv(&format!("map_sub({f})"));
    assert_eq!(apply(&sub, s("see api.example.com here")), Some(s("be_a")));
    let key = conv(&format!("map_end_key({f})"));
    assert_eq!(
        apply(&key, s("www.api.example.com")),
        Some(s("example.com"))
    );
}

#[test]
fn addresses_integers_and_typed_outputs() {
    let (_d, f) = map_file("10.0.0.0/8 1\n10.1.0.0/16 2\n2001:db8::/32 6\n");
    let ip = conv(&format!("map_ip_int({f},0)"));
    assert_eq!(
        apply(&ip, Value::Ip("10.1.2.3".parse().unwrap())),
        Some(Value::Int(2))
    );
    assert_eq!(
        apply(&ip, Value::Ip("10.9.2.3".parse().unwrap())),
        Some(Value::Int(1))
    );
    assert_eq!(
        apply(&ip, s("2001:db8::1")),
        Some(Value::Int(6)),
        "text is cast"
    );
    assert_eq!(
        apply(&ip, Value::Ip("192.0.2.1".parse().unwrap())),
        Some(Value::Int(0))
    );
    let (_d2, g) = map_file("80 http\n443 https\n1000:2000 high\n");
    let int = conv(&format!("map_int({g})"));
    assert_eq!(apply(&int, Value::Int(443)), Some(s("https")));
    assert_eq!(apply(&int, s("1500")), Some(s("high")));
    let (_d3, h) = map_file("a 192.0.2.9\nb ::1\n");
    let to_ip = conv(&format!("map_str_ip({h},127.0.0.1)"));
    assert_eq!(
        apply(&to_ip, s("b")),
        Some(Value::Ip("::1".parse().unwrap()))
    );
    assert_eq!(
        apply(&to_ip, s("z")),
        Some(Value::Ip("127.0.0.1".parse().unwrap()))
    );
}

#[test]
fn bad_maps_say_where() {
    let (_d, f) = map_file("a 1\nb two\n");
    let err = Conv::parse(&format!("map_str_int({f})"), "fe", &("h.cfg".into(), 3))
        .expect_err("a value that is not an integer");
    assert_eq!(
        err,
        format!("invalid args in converter 'map_str_int' : unable to parse 'two' at line 2 of file '{f}'")
    );
    let err =
        Conv::parse("map(/nonexistent/x.map)", "fe", &("h.cfg".into(), 3)).expect_err("no file");
    assert!(
        err.contains("failed to open pattern file </nonexistent/x.map>"),
        "{err}"
    );
    assert!(
        Conv::parse("map_str_ip(x,nope)", "fe", &("h.cfg".into(), 3))
            .expect_err("bad default")
            .contains("cannot parse default ip <nope>")
    );
    assert!(Conv::parse("map", "fe", &("h.cfg".into(), 3))
        .expect_err("no file")
        .contains("missing arg 1"));
    assert!(Conv::parse("map()", "fe", &("h.cfg".into(), 3))
        .expect_err("no file")
        .ends_with("failed to open pattern file <>"));
    assert!(Conv::parse("map_str_int(x,zz)", "fe", &("h.cfg".into(), 3))
        .expect_err("bad default")
        .contains(
            "invalid arg 2 in converter 'map_str_int' : failed to parse 'zz' as type 'integer'"
        ));
    assert!(Conv::parse("map_foo(x)", "fe", &("h.cfg".into(), 3))
        .expect_err("no such match")
        .contains("unknown converter 'map_foo'"));
}

#[test]
fn runtime_changes_reach_lookups_and_get_map() {
    let (_d, f) = map_file("example.com 1\nfoo\n");
    let c = conv(&format!("map_str_int({f},-1)"));
    // an empty value is 0 for an integer map, as HAProxy's read_int64 reads it
    assert_eq!(apply(&c, s("foo")), Some(Value::Int(0)));
    let Conv::Map(m) = &c else {
        panic!("a map converter")
    };
    let group = vec![m.list.clone()];
    assert_eq!(
        patref::group_add(&group, &[("k1", Some("x"))]),
        Err("unable to parse 'x'".to_string())
    );
    patref::group_add(&group, &[("k1", Some("5"))]).expect("an integer");
    assert_eq!(apply(&c, s("k1")), Some(Value::Int(5)));
    patref::group_set(&group, Target::Key("k1"), "7").expect("set");
    assert_eq!(apply(&c, s("k1")), Some(Value::Int(7)));
    assert_eq!(
        patref::group_set(&group, Target::Key("nokey"), "7"),
        Err("entry not found".to_string())
    );
    assert_eq!(
        patref::group_set(&group, Target::Handle(1), "7"),
        Err("key or pattern not found".to_string())
    );
    assert_eq!(
        m.list.lookup_line(true, "k1"),
        "type=str, case=sensitive, found=yes, idx=tree, key=\"k1\", value=\"7\", type=\"sint\""
    );
    assert_eq!(
        m.list.lookup_line(true, "zz"),
        "type=str, case=sensitive, found=no"
    );
    assert!(patref::group_remove(&group, Target::Key("k1")));
    assert_eq!(apply(&c, s("k1")), Some(Value::Int(-1)));
}

#[test]
fn a_dynamic_use_backend_builds_its_name_from_a_map() {
    let (_d, f) = map_file("192.0.2.0/24 api\n");
    let mut r = Rules::default();
    let line: Vec<String> = format!("use_backend be_%[src,map_ip({f},default)]")
        .split_whitespace()
        .map(String::from)
        .collect();
    r.parse_use_backend(&line, "fe").expect("valid");
    assert_eq!(r.backend(&sess("192.0.2.7:1")).as_deref(), Some("be_api"));
    assert_eq!(
        r.backend(&sess("198.51.100.7:1")).as_deref(),
        Some("be_default")
    );
    // the map's list is one of the proxy's pattern lists (`show map` lists it)
    assert_eq!(r.pattern_refs().len(), 1);
    assert!(r.pattern_refs()[0].is_map);
    let no_sample: Vec<String> = ["use_backend", "%[req.ssl_sni]"].map(String::from).to_vec();
    let mut r = Rules::default();
    r.parse_use_backend(&no_sample, "fe").expect("valid");
    // no sample: nothing (HAProxy compiles names without `M`), a name no backend has
    assert_eq!(r.backend(&sess("192.0.2.7:1")).as_deref(), Some(""));
}

#[test]
fn integers_read_as_haproxy_reads_them() {
    use super::pattern::read_int64;
    assert_eq!(read_int64(b"+5"), (5, 2));
    assert_eq!(read_int64(b"-5x"), (-5, 2));
    assert_eq!(read_int64(b"99999999999999999999"), (i64::MAX, 20));
    assert_eq!(read_int64(b"-9223372036854775808"), (i64::MIN, 20));
    assert_eq!(read_int64(b"-99999999999999999999"), (i64::MIN, 21));
    assert_eq!(read_int64(b" 5"), (0, 0), "no blank is skipped");
    let (_d, f) = map_file("a +5\nb 99999999999999999999\nc\n");
    let c = conv(&format!("map_str_int({f})"));
    assert_eq!(apply(&c, s("a")), Some(Value::Int(5)));
    assert_eq!(apply(&c, s("b")), Some(Value::Int(i64::MAX)));
    assert_eq!(apply(&c, s("c")), Some(Value::Int(0)));
}

#[test]
fn arguments_are_counted_and_lines_end_at_a_carriage_return() {
    let (_d, f) = map_file("k1 v1\r\nk2\tv 2 \rjunk\n");
    let c = conv(&format!("map({f})"));
    assert_eq!(apply(&c, s("k1")), Some(s("v1")));
    assert_eq!(apply(&c, s("k2")), Some(s("v 2")));
    let err = Conv::parse(&format!("map({f},a,b)"), "fe", &("h.cfg".into(), 3))
        .expect_err("three arguments");
    assert!(
        err.contains("end of arguments expected at position 3"),
        "{err}"
    );
    let err = Conv::parse(&format!("map_str_key({f},x)"), "fe", &("h.cfg".into(), 3))
        .expect_err("the key converters take no default");
    assert!(
        err.contains("end of arguments expected at position 2"),
        "{err}"
    );
}

#[test]
fn uses_that_store_alike_share_one_expression() {
    let (_d, f) = map_file("80 a\n8080 b\n");
    let mut r = Rules::default();
    for conv in ["map_sub", "map_end", "map_str", "map_str_key", "map_int"] {
        let line: Vec<String> = format!("use_backend %[req.ssl_sni,{conv}({f})]")
            .split_whitespace()
            .map(String::from)
            .collect();
        r.parse_use_backend(&line, "fe").expect("valid");
    }
    patref::assign_ids(r.pattern_refs().into_iter());
    let groups = patref::groups(r.pattern_refs().into_iter());
    assert_eq!(groups.len(), 1);
    // sub and end share one (a list of strings), str and str_key one (a tree), int its own
    let kinds: Vec<String> = patref::expressions(&groups[0])
        .iter()
        .map(|l| format!("{:?}", l.method()))
        .collect();
    assert_eq!(kinds, ["Sub", "Str", "Int"]);
    assert!(patref::list_line(&groups[0]).ends_with("entry_cnt=6"));
    // `get map` casts the text as each expression's sample is cast
    assert_eq!(
        groups[0][4].lookup_line(true, "80"),
        "type=int, case=sensitive, found=yes, idx=list, key=\"80\", value=\"a\", type=\"str\""
    );
    assert_eq!(
        groups[0][4].lookup_line(true, "+80x"),
        "type=int, case=sensitive, found=yes, idx=list, key=\"80\", value=\"a\", type=\"str\""
    );
}

#[test]
fn byte_converters_take_addresses_and_integers_as_binary() {
    let env = sess("127.0.0.1:1");
    let sample = |expr: &str| match Fetch::parse(expr, "fe").expect(expr).sample(&env) {
        super::fetch::Sample::Val { v, .. } => Some(v),
        _ => None,
    };
    assert_eq!(sample("src,hex"), Some(s("7F000001")));
    assert_eq!(sample("dst_port,hex"), Some(s("00000000000001BB")));
    assert_eq!(sample("src,base64"), Some(s("fwAAAQ==")));
    assert_eq!(sample("src,bytes(1,2)"), Some(Value::Bin(vec![0, 0])));
}

#[test]
fn map_regm_fills_its_value_with_the_groups() {
    // the values HAProxy 2.6 logged for the same file and inputs
    let (_d, f) = map_file("^/api/([a-z0-9]+)$ be_\\1\n^/([a-z]+)/(.*) \\2-\\1\n");
    let c = conv(&format!("map_regm({f},none)"));
    assert_eq!(apply(&c, s("/api/v2")), Some(s("be_v2")));
    assert_eq!(apply(&c, s("/img/a/b")), Some(s("a/b-img")));
    assert_eq!(apply(&c, s("nothing")), Some(s("none")));
}
