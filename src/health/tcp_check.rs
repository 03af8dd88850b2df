//! Runs `tcp-check` rules (and the protocol checks made of them) against one server: connect,
//! send, expect, step by step, with HAProxy's statuses and info texts (`tcpcheck.c`).
//!
//! The bytes an expect rule judges are those received since the last send, as HAProxy resets its
//! check buffer before each send. The final status comes from the last rule run: an expect rule
//! gives its `ok-status` and `on-success` text, an explicit connect `L4OK (tcp-check)`.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::probe::{close_silently, open, result, strerror, ProbeSpec, TCPCHK_CONNECT_STEP};
use super::stream::CheckStream;
use crate::config::tcp_check::{
    ConnectRule, CustomCheck, ExpectRule, Matcher, Message, RuleStatus, TcpCheckRule,
};
use crate::model::{CheckResult, CheckStatus};

/// HAProxy's check buffer (`tune.chksize`, 16 KiB): a response that fills it without matching
/// is judged as it stands.
const CHECK_BUF: usize = 16 * 1024;

fn status(s: RuleStatus) -> CheckStatus {
    match s {
        RuleStatus::L4Ok => CheckStatus::L4Ok,
        RuleStatus::L4Tout => CheckStatus::L4Tout,
        RuleStatus::L4Con => CheckStatus::L4Con,
        RuleStatus::L6Ok => CheckStatus::L6Ok,
        RuleStatus::L6Tout => CheckStatus::L6Tout,
        RuleStatus::L6Rsp => CheckStatus::L6Rsp,
        RuleStatus::L7Ok => CheckStatus::L7Ok,
        RuleStatus::L7OkC => CheckStatus::L7OkC,
        RuleStatus::L7Tout => CheckStatus::L7Tout,
        RuleStatus::L7Rsp => CheckStatus::L7Rsp,
        RuleStatus::L7Sts => CheckStatus::L7Sts,
    }
}

/// What the last rule run leaves as the check's outcome when every rule passed.
enum Last<'a> {
    None,
    Connect,
    Send,
    Expect(&'a ExpectRule, Option<String>, Option<i32>),
}

/// Runs `rules` (an implicit connect first unless the first rule is a connect).
pub(super) async fn run(spec: &ProbeSpec, rules: &[TcpCheckRule]) -> CheckResult {
    let start = Instant::now();
    let mut stream: Option<CheckStream> = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut last = Last::None;
    let mut connected_at = start;
    let mut comment: Option<&str> = None;
    let first_is_connect = matches!(
        rules
            .iter()
            .find(|r| !matches!(r, TcpCheckRule::Comment(_))),
        Some(TcpCheckRule::Connect(_))
    );
    if !first_is_connect {
        match connect(spec, spec.addr, spec.proxy, start).await {
            Ok(s) => stream = Some(CheckStream::Plain(s)),
            Err((st, e)) => {
                let mut info = e.unwrap_or_default();
                info.push_str(TCPCHK_CONNECT_STEP);
                return result(st, start, Some(info), None);
            }
        }
        connected_at = Instant::now();
        // `check-ssl` ciphers the implicit connection, as in HAProxy
        if let (Some(tls), Some(CheckStream::Plain(s))) =
            (&spec.tls, spec.tls.as_ref().and_then(|_| stream.take()))
        {
            let deadline = spec.read_deadline(start, connected_at);
            match tokio::time::timeout_at(deadline.into(), CheckStream::handshake(s, tls)).await {
                Ok(Ok(t)) => stream = Some(t),
                Ok(Err(_)) => {
                    let info = format!("SSL handshake failure{TCPCHK_CONNECT_STEP}");
                    return result(CheckStatus::L6Rsp, start, Some(info), None);
                }
                Err(_) => {
                    let info = TCPCHK_CONNECT_STEP.to_string();
                    return result(CheckStatus::L6Tout, start, Some(info), None);
                }
            }
        }
    }
    let mut step = 0;
    for rule in rules {
        if let TcpCheckRule::Comment(c) = rule {
            comment = Some(c);
            continue;
        }
        step += 1;
        let note = comment.take();
        match rule {
            TcpCheckRule::Comment(_) => {}
            TcpCheckRule::Connect(c) => {
                if let Some(s) = stream.take() {
                    close_silently(s.into_tcp());
                }
                buf.clear();
                eof = false;
                let addr = SocketAddr::new(
                    c.addr.unwrap_or(spec.addr.ip()),
                    c.port.unwrap_or(spec.addr.port()),
                );
                let header = c
                    .send_proxy
                    .then_some(spec.proxy.unwrap_or(crate::config::ProxyProtocol::V1));
                let at = where_(step, &connect_what(c), c.comment.as_deref().or(note));
                match connect(spec, addr, header, start).await {
                    Ok(s) => stream = Some(CheckStream::Plain(s)),
                    Err((st, e)) => {
                        return result(
                            st,
                            start,
                            Some(format!("{}{at}", e.unwrap_or_default())),
                            None,
                        )
                    }
                }
                connected_at = Instant::now();
                last = Last::Connect;
            }
            TcpCheckRule::Send { data, comment: c } => {
                let at = where_(step, " (send)", c.as_deref().or(note));
                let Some(s) = stream.as_mut() else {
                    return result(CheckStatus::SockErr, start, Some(at), None);
                };
                // HAProxy empties its check buffer before each send
                buf.clear();
                eof = false;
                let deadline = spec.read_deadline(start, connected_at);
                match tokio::time::timeout_at(deadline.into(), s.write_all(data)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return result(
                            CheckStatus::L7Rsp,
                            start,
                            Some(format!("{}{at}", strerror(&e))),
                            None,
                        )
                    }
                    Err(_) => return result(CheckStatus::L7Tout, start, Some(at), None),
                }
                last = Last::Send;
            }
            TcpCheckRule::Expect(e) => {
                let note = e.comment.as_deref().or(note);
                let Some(s) = stream.as_mut() else {
                    let at = where_(step, &expect_what(e), note);
                    return result(CheckStatus::SockErr, start, Some(at), None);
                };
                let deadline = spec.read_deadline(start, connected_at);
                loop {
                    match judge(e, &buf, eof, step, note) {
                        Verdict::More => {}
                        Verdict::Pass(info, code) => {
                            last = Last::Expect(e, info, code);
                            break;
                        }
                        Verdict::Fail(st, info, code) => {
                            if let Some(s) = stream.take() {
                                close_silently(s.into_tcp());
                            }
                            return result(st, start, Some(info), code);
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    let room = CHECK_BUF.saturating_sub(buf.len()).min(chunk.len());
                    match tokio::time::timeout_at(deadline.into(), s.read(&mut chunk[..room])).await
                    {
                        Ok(Ok(0)) => eof = true,
                        Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                        // a reset with nothing to judge is the end of the response too
                        Ok(Err(_)) => eof = true,
                        Err(_) => {
                            let at = where_(step, &expect_what(e), note);
                            if let Some(s) = stream.take() {
                                close_silently(s.into_tcp());
                            }
                            return result(status(e.tout_status), start, Some(at), None);
                        }
                    }
                }
            }
        }
    }
    if let Some(s) = stream.take() {
        close_silently(s.into_tcp());
    }
    match last {
        Last::Expect(e, info, code) => result(status(e.ok_status), start, info, code),
        Last::Connect => result(CheckStatus::L4Ok, start, Some("(tcp-check)".into()), None),
        Last::Send => result(CheckStatus::L7Ok, start, Some("(tcp-check)".into()), None),
        Last::None => result(CheckStatus::L4Ok, start, None, None),
    }
}

/// Connects within the check's connect deadline and sends a PROXY header when asked: the
/// stream, or the status and the error text.
async fn connect(
    spec: &ProbeSpec,
    addr: SocketAddr,
    header: Option<crate::config::ProxyProtocol>,
    start: Instant,
) -> Result<TcpStream, (CheckStatus, Option<String>)> {
    let c = tokio::time::timeout_at(
        spec.connect_deadline(start).into(),
        open(addr, spec.source.as_ref()),
    )
    .await;
    let mut s = match c {
        Err(_) => return Err((CheckStatus::L4Tout, None)),
        Ok(Err(e)) => return Err((CheckStatus::L4Con, Some(strerror(&e)))),
        Ok(Ok(s)) => s,
    };
    if let (Some(v), Ok(local)) = (header, s.local_addr()) {
        let h = crate::proxy_protocol::check_header(v, local, addr);
        if let Err(e) = s.write_all(&h).await {
            return Err((CheckStatus::SockErr, Some(strerror(&e))));
        }
    }
    Ok(s)
}

fn connect_what(c: &ConnectRule) -> String {
    match c.port {
        Some(p) => format!(" (connect port {p})"),
        None => " (connect)".into(),
    }
}

fn expect_what(e: &ExpectRule) -> String {
    match &e.matcher {
        Matcher::String(s) => format!(" (expect string '{s}')"),
        Matcher::Binary(b) => format!(" (expect binary '{}')", upper_hex(b)),
        Matcher::Rstring(_) => " (expect regex)".into(),
        Matcher::Rbinary(_) => " (expect binary regex)".into(),
        Matcher::Custom(_) => " (expect custom function)".into(),
    }
}

/// HAProxy's ` at step N of tcp-check (what)[ comment: 'c']` suffix.
fn where_(step: usize, what: &str, comment: Option<&str>) -> String {
    let mut s = format!(" at step {step} of tcp-check{what}");
    if let Some(c) = comment {
        s.push_str(&format!(" comment: '{c}'"));
    }
    s
}

fn upper_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

enum Verdict {
    More,
    Pass(Option<String>, Option<i32>),
    Fail(CheckStatus, String, Option<i32>),
}

/// Judges what was received so far: pass, fail, or wait for more.
fn judge(e: &ExpectRule, buf: &[u8], eof: bool, step: usize, note: Option<&str>) -> Verdict {
    let complete = eof || buf.len() >= CHECK_BUF;
    if let Matcher::Custom(c) = e.matcher {
        return custom(c, e, buf, complete);
    }
    if e.min_recv.is_some_and(|m| buf.len() < m) && !complete {
        return Verdict::More;
    }
    let found = match &e.matcher {
        Matcher::String(s) => contains(buf, s.as_bytes()),
        Matcher::Binary(b) => contains(buf, b),
        Matcher::Rstring(p) => p.re.is_match(buf),
        Matcher::Rbinary(p) => p.re.is_match(upper_hex(buf).as_bytes()),
        Matcher::Custom(_) => false,
    };
    // HAProxy waits for more on a mismatch only without `min-recv`: with it, the bytes it asked
    // for are conclusive
    if !found && !complete && e.min_recv.is_none() {
        return Verdict::More;
    }
    let code = e
        .code_from_payload
        .then(|| std::str::from_utf8(buf.get(..3)?).ok()?.parse::<i32>().ok())
        .flatten();
    if found != e.negate {
        let info = e.on_success.as_ref().map(|m| text(m, buf));
        return Verdict::Pass(info, code);
    }
    let info = match &e.on_error {
        Some(m) => text(m, buf),
        None => {
            let mut s = String::from(if found {
                "TCPCHK matched unwanted content"
            } else {
                "TCPCHK did not match content"
            });
            match &e.matcher {
                Matcher::String(p) => s.push_str(&format!(" '{p}' at step {step}")),
                Matcher::Binary(_) => s.push_str(&format!(" (binary) at step {step}")),
                _ => s.push_str(&format!(" (regex) at step {step}")),
            }
            if let Some(c) = note {
                s.push_str(&format!(" comment: '{c}'"));
            }
            s
        }
    };
    Verdict::Fail(status(e.error_status), info, code)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// An `on-success` / `on-error` text for the bytes received.
fn text(m: &Message, buf: &[u8]) -> String {
    match m {
        Message::Text(t) => t.clone(),
        Message::Payload {
            from,
            ltrim,
            cut_crlf,
        } => {
            let mut b = buf.get(*from..).unwrap_or_default();
            if *ltrim {
                while let [b' ', rest @ ..] = b {
                    b = rest;
                }
            }
            if *cut_crlf {
                if let Some(i) = b.iter().position(|&c| c == b'\r' || c == b'\n') {
                    b = &b[..i];
                }
            }
            String::from_utf8_lossy(b).into_owned()
        }
    }
}

/// The protocol checks judged by code, with HAProxy's texts.
fn custom(c: CustomCheck, e: &ExpectRule, buf: &[u8], complete: bool) -> Verdict {
    match c {
        CustomCheck::MysqlGreeting => mysql_greeting(e, buf, complete),
        CustomCheck::MysqlOk => mysql_ok(e, buf, complete),
        CustomCheck::LdapBind => ldap_bind(e, buf, complete),
    }
}

/// A MySQL server's first packet: 3-byte length, sequence, then either an error packet (0xff,
/// code, text) or the greeting (protocol version, then the server version string).
fn mysql_greeting(e: &ExpectRule, buf: &[u8], complete: bool) -> Verdict {
    let fail = |info: &str| Verdict::Fail(status(e.error_status), info.to_string(), None);
    if buf.len() < 5 {
        return if complete {
            fail("Received an incomplete MySQL packet")
        } else {
            Verdict::More
        };
    }
    let len = usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16;
    if buf.len() < 4 + len && !complete {
        return Verdict::More;
    }
    let body = &buf[4..(4 + len).min(buf.len())];
    match body.first() {
        Some(0xff) => {
            // error packet: code (2 bytes), then the message (4.1 adds a '#' and a 5-byte state)
            let msg = body.get(3..).unwrap_or_default();
            let msg = match msg.first() {
                Some(b'#') => msg.get(6..).unwrap_or_default(),
                _ => msg,
            };
            fail(&String::from_utf8_lossy(msg))
        }
        Some(_) => {
            let version = body.get(1..).unwrap_or_default();
            let end = version
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(version.len());
            Verdict::Pass(
                Some(String::from_utf8_lossy(&version[..end]).into_owned()),
                None,
            )
        }
        None => fail("Received an incomplete MySQL packet"),
    }
}

/// The server's answer to the login: the first packet after the greeting is an OK packet (0x00)
/// or an error packet (0xff: its message is the check's info).
fn mysql_ok(e: &ExpectRule, buf: &[u8], complete: bool) -> Verdict {
    let fail = |info: &str| Verdict::Fail(status(e.error_status), info.to_string(), None);
    if buf.len() < 5 {
        return if complete {
            fail("Received an incomplete MySQL packet")
        } else {
            Verdict::More
        };
    }
    let len = usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16;
    if buf.len() < 4 + len && !complete {
        return Verdict::More;
    }
    let body = &buf[4..(4 + len).min(buf.len())];
    match body.first() {
        Some(0x00) => Verdict::Pass(None, None),
        Some(0xff) => {
            let msg = body.get(3..).unwrap_or_default();
            let msg = match msg.first() {
                Some(b'#') => msg.get(6..).unwrap_or_default(),
                _ => msg,
            };
            fail(&String::from_utf8_lossy(msg))
        }
        _ => fail("Received an unexpected MySQL packet"),
    }
}

/// The answer to an anonymous LDAP bind: a BER sequence holding the message id and a bind
/// response whose result code (0 = success) is judged.
fn ldap_bind(e: &ExpectRule, buf: &[u8], complete: bool) -> Verdict {
    let fail = |info: &str| Verdict::Fail(status(e.error_status), info.to_string(), None);
    // sequence, its length (short or long form), then the message id
    let Some((&tag, rest)) = buf.split_first() else {
        return if complete {
            fail("Not LDAPv3 protocol")
        } else {
            Verdict::More
        };
    };
    if tag != 0x30 {
        return fail("Not LDAPv3 protocol");
    }
    let Some(after_len) = skip_len(rest) else {
        return if complete {
            fail("Not LDAPv3 protocol")
        } else {
            Verdict::More
        };
    };
    // message id: 02 01 xx
    let Some(after_id) = after_len
        .get(3..)
        .filter(|_| after_len.first() == Some(&0x02))
    else {
        return if complete {
            fail("Not LDAPv3 protocol")
        } else {
            Verdict::More
        };
    };
    // bind response: 61 <len> 0a 01 <result code>
    if after_id.first().is_some_and(|&t| t != 0x61) {
        return fail("Not LDAPv3 protocol");
    }
    let Some(resp) = after_id.get(1..).and_then(skip_len) else {
        return if complete {
            fail("Not LDAPv3 protocol")
        } else {
            Verdict::More
        };
    };
    match resp {
        [0x0a, 0x01, 0, ..] => Verdict::Pass(Some("Success".into()), None),
        [0x0a, 0x01, _, ..] => fail("See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9"),
        _ if !complete && resp.len() < 3 => Verdict::More,
        _ => fail("Not LDAPv3 protocol"),
    }
}

/// Skips a BER length (short or long form), `None` when incomplete.
fn skip_len(b: &[u8]) -> Option<&[u8]> {
    let (&first, rest) = b.split_first()?;
    if first & 0x80 == 0 {
        return Some(rest);
    }
    let n = usize::from(first & 0x7f);
    rest.get(n..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tcp_check::{ldap_check, mysql_check, parse_rule, smtp_check};

    fn rule(s: &str) -> ExpectRule {
        let words: Vec<String> = s.split_whitespace().map(String::from).collect();
        match parse_rule(&words) {
            Ok(TcpCheckRule::Expect(e)) => *e,
            other => panic!("{other:?}"),
        }
    }

    fn verdict(e: &ExpectRule, buf: &[u8], eof: bool) -> String {
        match judge(e, buf, eof, 2, None) {
            Verdict::More => "more".into(),
            Verdict::Pass(i, c) => format!("pass {i:?} {c:?}"),
            Verdict::Fail(s, i, _) => format!("fail {} {i}", s.short()),
        }
    }

    #[test]
    fn expect_waits_then_judges_as_haproxy() {
        let e = rule("expect string role:master");
        assert_eq!(verdict(&e, b"$10\r\nrole:sla", false), "more");
        assert_eq!(
            verdict(&e, b"# Replication\r\nrole:master\r\n", false),
            "pass None None"
        );
        assert_eq!(
            verdict(&e, b"role:slave\r\n", true),
            "fail L7RSP TCPCHK did not match content 'role:master' at step 2"
        );
        let n = rule("expect ! string -ERR");
        assert_eq!(verdict(&n, b"+OK", false), "more");
        assert_eq!(verdict(&n, b"+OK", true), "pass None None");
        assert_eq!(
            verdict(&n, b"-ERR x", false),
            "fail L7RSP TCPCHK matched unwanted content '-ERR' at step 2"
        );
        let r = rule("expect rbinary ^1[56]");
        assert_eq!(verdict(&r, &[0x16, 3, 3], false), "pass None None");
        let m = rule("expect min-recv 4 rstring ^2");
        assert_eq!(verdict(&m, b"22", false), "more");
    }

    #[test]
    fn smtp_replies_give_haproxy_texts_and_codes() {
        let rules = smtp_check("HELO localhost");
        let TcpCheckRule::Expect(ok) = &rules[1] else {
            panic!()
        };
        assert_eq!(
            verdict(ok, b"554 5.7.1 go away\r\n", false),
            "fail L7STS 5.7.1 go away"
        );
        let TcpCheckRule::Expect(last) = &rules[4] else {
            panic!()
        };
        assert_eq!(
            verdict(last, b"250 mail.example.com\r\n", false),
            "pass Some(\"mail.example.com\") Some(250)"
        );
    }

    #[test]
    fn mysql_and_ldap_answers() {
        let TcpCheckRule::Expect(my) = &mysql_check()[0] else {
            panic!()
        };
        let mut greeting = vec![0x4a, 0, 0, 0, 0x0a];
        greeting.extend_from_slice(b"8.0.36\0rest");
        greeting.resize(4 + 0x4a, 0);
        assert_eq!(verdict(my, &greeting, false), "pass Some(\"8.0.36\") None");
        let mut err = vec![0x17, 0, 0, 0, 0xff, 0x6a, 0x04];
        err.extend_from_slice(b"Host 'x' is blocked");
        err[0] = (err.len() - 4) as u8;
        assert_eq!(verdict(my, &err, false), "fail L7STS Host 'x' is blocked");
        let TcpCheckRule::Expect(ld) = &ldap_check()[1] else {
            panic!()
        };
        let ok = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert_eq!(verdict(ld, &ok, false), "pass Some(\"Success\") None");
        let mut denied = ok;
        denied[9] = 49;
        assert!(verdict(ld, &denied, false).starts_with("fail L7STS See RFC"));
        assert_eq!(verdict(ld, &ok[..6], false), "more");
        assert_eq!(
            verdict(ld, b"HTTP/1.1", false),
            "fail L7STS Not LDAPv3 protocol"
        );
    }
}
