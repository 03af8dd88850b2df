//! The log-format parser and renderer against lines HAProxy printed.

use std::time::{Duration, SystemTime};

use super::fetch::{Env, ProxyStat, ServerStat};
use super::logformat::{Facts, LogFormat, Use, TCPLOG};

/// A session at 127.0.0.1:40000 that reached 127.0.0.1:8080.
struct Sess;

impl Env for Sess {
    fn src(&self) -> Option<std::net::SocketAddr> {
        "127.0.0.1:40000".parse().ok()
    }
    fn dst(&self) -> Option<std::net::SocketAddr> {
        "127.0.0.1:8080".parse().ok()
    }
    fn content(&self) -> Option<&[u8]> {
        None
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

fn facts() -> Facts<'static> {
    Facts {
        client: "127.0.0.1:40000".parse().ok(),
        frontend_addr: "127.0.0.1:8080".parse().ok(),
        backend_src: "127.0.0.1:51000".parse().ok(),
        server_addr: "127.0.0.1:9000".parse().ok(),
        accepted: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
        frontend: "fe",
        backend: "be",
        server: "s1",
        th: 0,
        tw: 0,
        tc: 1,
        connected: 1,
        tt: 25,
        bytes_out: 1234,
        bytes_in: 99,
        ts: *b"--",
        conns: [1, 1, 1, 1],
        retries: 0,
        redispatched: false,
        queues: [0, 0],
        req_id: 7,
        log_count: 3,
        unique_id: None,
        logasap: false,
        req_caps: Vec::new(),
        ssl_listener: false,
        tls: None,
    }
}

/// Whether this machine's local time is UTC at the facts' date (as CI's is): the dates these
/// tests expect are local times.
fn in_utc() -> bool {
    crate::logging::targets::utc_offset(facts().accepted.unwrap_or(SystemTime::UNIX_EPOCH)) == 0
}

fn render(fmt: &str) -> String {
    let f = LogFormat::parse(fmt, "fe", &(String::new(), 0), Use::Log).unwrap();
    f.render(&facts(), &Sess)
}

fn error(fmt: &str) -> String {
    LogFormat::parse(fmt, "fe", &(String::new(), 0), Use::Log).unwrap_err()
}

#[test]
fn the_tcplog_format_gives_haproxys_line() {
    if !in_utc() {
        return;
    }
    // HAProxy 2.6 logs a session that never queued with Tw = its queue time + 1 (a TCP
    // stream has no request time, -1, to subtract)
    assert_eq!(
        render(TCPLOG),
        "127.0.0.1:40000 [14/Nov/2023:22:13:20.123] fe be/s1 1/1/25 1234 -- 1/1/1/1/0 0/0"
    );
}

// The lines below are what HAProxy 2.6.12 logged for the same formats (frontend `fe`
// renamed, values of this session).

#[test]
fn flags_quote_escape_and_hex_as_haproxy() {
    assert_eq!(
        render(
            "%{+Q}o %{-Q}ci %f %{-Q}b %{+Q,-Q}s %{Q}ft %{+Q,+X}ci %{+X}Tt %{+X}B %{+X}fc %{+X}ts"
        ),
        "127.0.0.1 \"fe\" be s1 \"fe\" 7F000001 25 1234 1 --"
    );
    assert_eq!(
        render("%{+X}ci:%{+X}cp %{+X}ms %{+X}rt %{+X}lc"),
        "7F000001:9C40 7B 0007 0003"
    );
    assert_eq!(
        render("%{+Q}[src] %{+Q}[int(7)] %{+X}[int(255)]"),
        "\"127.0.0.1\" \"7\" 255"
    );
    assert_eq!(render("%{+Q}cp %{+Q}B %{+Q}ts"), "40000 1234 --");
    assert_eq!(
        render("%{+E}[str('a\"b]c')] %{+Q,+E}[str('a\"b')]"),
        "a\\\"b\\]c \"a\\\"b\""
    );
    assert_eq!(
        render("%bi:%bp %si:%sp %fi:%fp"),
        "127.0.0.1:51000 127.0.0.1:9000 127.0.0.1:8080"
    );
}

#[test]
fn text_percent_and_spaces_as_haproxy() {
    assert_eq!(
        render("E f=%{+E}f pct=%% lit=%( dash=%- us=%_x"),
        "E f=fe pct=% lit=( dash=- us=_x"
    );
    assert_eq!(
        render("P1 %(a)ci %ci:%cp%% 100%% x%ci-x %{+Q}o%ci %{-Q}o %ci"),
        "P1 (a)ci 127.0.0.1:40000% 100% x127.0.0.1-x \"127.0.0.1\" 127.0.0.1"
    );
    assert_eq!(
        render("   lead  two  three   %hr  %hs  x  %ci    trail   "),
        "lead two three x 127.0.0.1 trail "
    );
    // 2.6: an empty item still counts as written for the spacing
    assert_eq!(
        render("a %{-M}ID b %{-M}[str()] c %hr d %{-M}sslv e   %o   f"),
        "a  b  c d  e f"
    );
    assert_eq!(
        render("%U/%B %rt %lc %Td %Tw %ST %ID %{+Q}ID %tsc"),
        "99/1234 7 3 24 1 0 - \"\" ----"
    );
    assert_eq!(
        render("%[bin(4142)] %[bin(0041)] %[bin(4100)] %[bin(0041ff),hex]"),
        "AB - A 0041FF"
    );
}

#[test]
fn dates_are_never_quoted_and_mapped_addresses_stay_mapped() {
    if in_utc() {
        assert_eq!(
            render("%{+Q}o [%t] [%T]"),
            "[14/Nov/2023:22:13:20.123] [14/Nov/2023:22:13:20 +0000]"
        );
    }
    let f = LogFormat::parse("%ci %{+X}ci %cp", "fe", &(String::new(), 0), Use::Log).unwrap();
    let mut facts = facts();
    facts.client = "[::ffff:127.0.0.1]:52652".parse().ok();
    assert_eq!(
        f.render(&facts, &Sess),
        "::ffff:127.0.0.1 00000000000000000000FFFF7F000001 52652"
    );
}

#[test]
fn names_and_variables_print_nothing_for_a_missing_sample() {
    // HAProxy compiles them without `M`: `set-var-fmt(txn.f) "x%[var(txn.none)]y"` is `xy`
    let f = LogFormat::parse(
        "x%[var(txn.none)]y %{+M}[var(txn.none)]",
        "fe",
        &(String::new(), 0),
        Use::Text,
    )
    .unwrap();
    assert_eq!(f.render(&facts(), &Sess), "xy -");
}

#[test]
fn bad_formats_get_haproxys_messages() {
    let more = ". If you wanted to emit the '%' character verbatim, you need to use '%%'";
    assert_eq!(error("%Z"), format!("no such format variable 'Z'{more}"));
    assert_eq!(
        error("%ci %cix"),
        format!("no such format variable 'cix'{more}")
    );
    assert_eq!(
        error("a % b"),
        "unexpected variable name near ' ' at position 3 line : 'a % b'. Maybe you want to write a single '%', use the syntax '%%'"
    );
    assert_eq!(error("%ci%"), "truncated line after '%'");
    assert_eq!(error("%{+Q"), "truncated line after '+Q'");
    assert_eq!(error("%{"), "truncated line after ''");
    assert_eq!(
        error("%{+Q} x"),
        "parse argument modifier without variable name near '%{+Q}'"
    );
    assert_eq!(error("%[src,lower"), "missing ']' after 'src,lower'");
    assert_eq!(error("%[src ]"), "expected ']' after 'src', but found ' '");
    assert_eq!(
        error("%[foo] %ci"),
        "failed to parse sample expression <foo] %ci> : unknown fetch method 'foo'"
    );
    assert_eq!(
        error("%[]"),
        "failed to parse sample expression <]> : missing fetch method"
    );
    assert_eq!(
        error("%[req.len]"),
        "sample fetch <req.len]> may not be reliably used here because it needs 'request buffer' which is not available here"
    );
    assert_eq!(error("%r"), "format variable 'r' is reserved for HTTP mode");
    assert!(LogFormat::parse("%{+Z}ci %{Q}ci", "fe", &(String::new(), 0), Use::Log).is_ok());
}
