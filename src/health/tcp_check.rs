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

/// Runs `rules` (an implicit connect first unless the first rule is a connect). `spec.proto`:
/// the rules are a protocol check's (`option redis-check`...), whose failures HAProxy reports
/// without the step texts it gives user `tcp-check` rules.
pub(super) async fn run(spec: &ProbeSpec, rules: &[TcpCheckRule]) -> CheckResult {
    let start = Instant::now();
    let user = !spec.proto;
    let mut stream: Option<CheckStream> = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut last = Last::None;
    let mut connected_at = start;
    let mut comment: Option<&str> = None;
    // `connect ... linger`: the connection ends with a FIN rather than a reset
    let mut linger = false;
    let first_is_connect = matches!(
        rules
            .iter()
            .find(|r| !matches!(r, TcpCheckRule::Comment(_))),
        Some(TcpCheckRule::Connect(_))
    );
    // HAProxy's suffix for the implicit connection, user rules only
    let initial = |info: Option<String>| -> Option<String> {
        if !user {
            return info;
        }
        Some(format!("{}{TCPCHK_CONNECT_STEP}", info.unwrap_or_default()))
    };
    if !first_is_connect {
        match connect(spec, spec.addr, spec.proxy, start).await {
            Ok(s) => stream = Some(CheckStream::Plain(s)),
            Err((st, e)) => return result(st, start, initial(e), None),
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
                    let info = initial(Some("SSL handshake failure".into()));
                    return result(CheckStatus::L6Rsp, start, info, None);
                }
                Err(_) => return result(CheckStatus::L6Tout, start, initial(None), None),
            }
        }
    }
    let mut step = 0;
    for rule in rules {
        // HAProxy numbers a comment as a step of its own, and gives its text to the next rule
        step += 1;
        if let TcpCheckRule::Comment(c) = rule {
            comment = Some(c);
            continue;
        }
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
                // `default`: the server's own settings (its PROXY header, `check-ssl`)
                let header = if c.default {
                    spec.proxy
                } else {
                    c.send_proxy
                        .then_some(spec.proxy.unwrap_or(crate::config::ProxyProtocol::V1))
                };
                let at = where_(step, &connect_what(c), c.comment.as_deref().or(note));
                // each connect has its own `timeout connect`, as in HAProxy
                let began = Instant::now();
                match connect(spec, addr, header, began).await {
                    Ok(s) => stream = Some(CheckStream::Plain(s)),
                    Err((st, e)) => {
                        let info = if user {
                            Some(format!("{}{at}", e.unwrap_or_default()))
                        } else {
                            e
                        };
                        return result(st, start, info, None);
                    }
                }
                connected_at = Instant::now();
                linger = c.linger;
                // `default` takes the server's `check-ssl`; `ssl` asks for TLS here, with its
                // own `sni` and `alpn` if given
                let tls = match (c.default, c.ssl) {
                    (true, _) => spec.tls.clone(),
                    (false, true) => {
                        use tokio_rustls::rustls::pki_types::ServerName;
                        let sni = c.sni.clone().and_then(|n| ServerName::try_from(n).ok());
                        // a rule's name is sent and, when verifying, checked
                        let base = match (sni, &spec.rule_tls, &spec.tls) {
                            (Some(name), Some(r), _) => Some(super::CheckTls {
                                config: r.named.clone(),
                                name,
                            }),
                            (None, _, Some(t)) => Some(t.clone()),
                            (None, Some(r), None) => Some(super::CheckTls {
                                config: r.unnamed.clone(),
                                name: ServerName::IpAddress(addr.ip().into()),
                            }),
                            (Some(name), None, Some(t)) => Some(super::CheckTls {
                                config: t.config.clone(),
                                name,
                            }),
                            (_, None, None) => None,
                        };
                        base.map(|mut t| {
                            if !c.alpn.is_empty() {
                                let mut cfg = (*t.config).clone();
                                cfg.alpn_protocols = c.alpn.clone();
                                t.config = std::sync::Arc::new(cfg);
                            }
                            t
                        })
                    }
                    (false, false) => None,
                };
                if let (Some(tls), Some(CheckStream::Plain(s))) =
                    (&tls, tls.is_some().then(|| stream.take()).flatten())
                {
                    let deadline = spec.connect_deadline(began).max(connected_at);
                    match tokio::time::timeout_at(deadline.into(), CheckStream::handshake(s, tls))
                        .await
                    {
                        Ok(Ok(t)) => stream = Some(t),
                        Ok(Err(_)) => {
                            let info = if user {
                                format!("SSL handshake failure{at}")
                            } else {
                                "SSL handshake failure".into()
                            };
                            return result(CheckStatus::L6Rsp, start, Some(info), None);
                        }
                        Err(_) => {
                            return result(CheckStatus::L6Tout, start, user.then_some(at), None)
                        }
                    }
                }
                last = Last::Connect;
            }
            TcpCheckRule::Send { data, comment: c } => {
                let at = where_(step, " (send)", c.as_deref().or(note));
                let at = |e: String| if user { format!("{e}{at}") } else { e };
                let Some(s) = stream.as_mut() else {
                    return result(CheckStatus::SockErr, start, Some(at(String::new())), None);
                };
                // HAProxy empties its check buffer before each send
                buf.clear();
                eof = false;
                let deadline = spec.read_deadline(start, connected_at);
                let w = async {
                    s.write_all(data).await?;
                    s.flush().await
                };
                match tokio::time::timeout_at(deadline.into(), w).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return result(CheckStatus::L7Rsp, start, Some(at(strerror(&e))), None)
                    }
                    Err(_) => {
                        let info = user.then(|| at(String::new()));
                        return result(CheckStatus::L7Tout, start, info, None);
                    }
                }
                last = Last::Send;
            }
            TcpCheckRule::Expect(e) => {
                let note = e.comment.as_deref().or(note);
                let last_rule = std::ptr::eq(
                    rule,
                    rules
                        .iter()
                        .rev()
                        .find(|r| !matches!(r, TcpCheckRule::Comment(_)))
                        .unwrap_or(rule),
                );
                let Some(s) = stream.as_mut() else {
                    let at = where_(step, &expect_what(e), note);
                    return result(CheckStatus::SockErr, start, user.then_some(at), None);
                };
                let deadline = spec.read_deadline(start, connected_at);
                loop {
                    let ctx = Judging {
                        step,
                        note,
                        user,
                        last_rule,
                    };
                    match judge(e, &buf, eof, &ctx) {
                        Verdict::More => {}
                        Verdict::Pass(info, code) => {
                            last = Last::Expect(e, info, code);
                            break;
                        }
                        Verdict::Fail(st, info, code) => {
                            if let Some(s) = stream.take() {
                                close_silently(s.into_tcp());
                            }
                            return result(st, start, info, code);
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    let room = CHECK_BUF.saturating_sub(buf.len()).min(chunk.len());
                    match tokio::time::timeout_at(deadline.into(), s.read(&mut chunk[..room])).await
                    {
                        Ok(Ok(0)) => eof = true,
                        Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                        // a reset ends the response too
                        Ok(Err(_)) => eof = true,
                        Err(_) => {
                            let at = where_(step, &expect_what(e), note);
                            if let Some(s) = stream.take() {
                                close_silently(s.into_tcp());
                            }
                            return result(status(e.tout_status), start, user.then_some(at), None);
                        }
                    }
                }
            }
        }
    }
    if let Some(mut s) = stream.take() {
        if linger {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), s.shutdown()).await;
            drop(s);
        } else {
            close_silently(s.into_tcp());
        }
    }
    let tcpchk = || user.then(|| "(tcp-check)".to_string());
    match last {
        Last::Expect(e, info, code) => result(status(e.ok_status), start, info, code),
        Last::Connect => result(CheckStatus::L4Ok, start, tcpchk(), None),
        Last::Send => result(CheckStatus::L7Ok, start, tcpchk(), None),
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
    Fail(CheckStatus, Option<String>, Option<i32>),
}

/// Where an expect rule is judged: its step, comment, whether the rules are a user's, and
/// whether it is the last rule (a protocol check's custom rule reports only there).
struct Judging<'a> {
    step: usize,
    note: Option<&'a str>,
    user: bool,
    last_rule: bool,
}

/// Judges what was received so far: pass, fail, or wait for more.
fn judge(e: &ExpectRule, buf: &[u8], eof: bool, j: &Judging<'_>) -> Verdict {
    let complete = eof || buf.len() >= CHECK_BUF;
    if eof && buf.is_empty() {
        // HAProxy's `tcpcheck_eval_recv`: the peer closed without a byte
        let mut info = format!("TCPCHK got an empty response at step {}", j.step);
        if let Some(c) = j.note {
            info.push_str(&format!(" comment: '{c}'"));
        }
        return Verdict::Fail(status(e.error_status), Some(info), None);
    }
    if let Matcher::Custom(c) = e.matcher {
        return custom(c, buf, complete, j.last_rule);
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
        let info = match &e.on_success {
            Some(m) => Some(text(m, buf)),
            None => j.user.then(|| "(tcp-check)".to_string()),
        };
        return Verdict::Pass(info, code);
    }
    let info = match &e.on_error {
        Some(m) => Some(text(m, buf)),
        // a protocol check's rule without a text reports none
        None if !j.user => None,
        None => {
            let mut s = String::from(if found {
                "TCPCHK matched unwanted content"
            } else {
                "TCPCHK did not match content"
            });
            let step = j.step;
            match &e.matcher {
                Matcher::String(p) => s.push_str(&format!(" '{p}' at step {step}")),
                Matcher::Binary(_) => s.push_str(&format!(" (binary) at step {step}")),
                Matcher::Rstring(_) => s.push_str(&format!(" (regex) at step {step}")),
                Matcher::Rbinary(_) => s.push_str(&format!(" (binary regex) at step {step}")),
                Matcher::Custom(_) => s.push_str(&format!(" (custom function) at step {step}")),
            }
            if let Some(c) = j.note {
                s.push_str(&format!(" comment: {c}"));
            }
            Some(s)
        }
    };
    Verdict::Fail(status(e.error_status), info, code)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// An `on-success` / `on-error` text for the bytes received (a C string in HAProxy: it ends at
/// the first NUL).
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
            if let Some(i) = b
                .iter()
                .position(|&c| c == 0 || (*cut_crlf && (c == b'\r' || c == b'\n')))
            {
                b = &b[..i];
            }
            String::from_utf8_lossy(b).into_owned()
        }
    }
}

/// The protocol checks judged by code, with HAProxy's texts.
fn custom(c: CustomCheck, buf: &[u8], complete: bool, last: bool) -> Verdict {
    match c {
        CustomCheck::MysqlGreeting => mysql_packet(buf, 0, complete, last),
        CustomCheck::MysqlOk => {
            // the answer follows the greeting in the same buffer
            let greeting = buf.get(..3).map_or(0, |h| {
                usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16
            });
            mysql_packet(buf, 4 + greeting, complete, last)
        }
        CustomCheck::LdapBind => ldap_bind(buf),
    }
}

/// A MySQL packet at `offset` (HAProxy's `tcpcheck_mysql_expect_packet`): an error packet
/// (0xff) fails as L7STS with its number as the code and its text (the SQL state kept) as the
/// info; anything else passes, as the last rule with the server version of the greeting.
fn mysql_packet(buf: &[u8], offset: usize, complete: bool, last: bool) -> Verdict {
    let truncated = || {
        if complete {
            Verdict::Fail(CheckStatus::L7Rsp, None, None)
        } else {
            Verdict::More
        }
    };
    let Some(h) = buf.get(offset..offset + 4) else {
        return truncated();
    };
    let plen = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    if buf.len() < offset + plen + 4 {
        return truncated();
    }
    if buf.get(offset + 4) == Some(&0xff) {
        let err = buf
            .get(offset + 5..offset + 7)
            .map_or(0, |b| i32::from(b[0]) | i32::from(b[1]) << 8);
        let desc = buf.get(offset + 7..).unwrap_or_default();
        let end = desc.iter().position(|&c| c == 0).unwrap_or(desc.len());
        let info = String::from_utf8_lossy(&desc[..end]).into_owned();
        return Verdict::Fail(CheckStatus::L7Sts, Some(info), Some(err));
    }
    if !last {
        return Verdict::Pass(None, None);
    }
    // the server version: the greeting's NUL-terminated string after its protocol byte
    let v = buf.get(5..).unwrap_or_default();
    let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
    Verdict::Pass(Some(String::from_utf8_lossy(&v[..end]).into_owned()), None)
}

/// The answer to an anonymous LDAP bind (HAProxy's `tcpcheck_ldap_expect_bindrsp`, after the
/// `^30` rule made sure 14 bytes arrived): message id 1, a bindResponse, its result code (0 =
/// success) as the check's code.
fn ldap_bind(buf: &[u8]) -> Verdict {
    let not_ldap = || {
        Verdict::Fail(
            CheckStatus::L7Rsp,
            Some("Not LDAPv3 protocol".to_string()),
            None,
        )
    };
    let at = |i: usize| buf.get(i).copied().unwrap_or(0);
    let mut msglen = if at(1) & 0x80 != 0 {
        usize::from(at(1) & 0x7f)
    } else {
        0
    };
    if msglen > 2 || buf.get(2 + msglen..6 + msglen) != Some(&[0x02, 0x01, 0x01, 0x61][..]) {
        return not_ldap();
    }
    if at(msglen + 6) & 0x80 != 0 {
        msglen += usize::from(at(msglen + 6) & 0x7f);
    }
    if msglen > 4 || buf.get(7 + msglen..9 + msglen) != Some(&[0x0a, 0x01][..]) {
        return not_ldap();
    }
    // the result code must have arrived (a short answer and a close are not a success)
    if buf.len() <= msglen + 9 {
        return not_ldap();
    }
    let code = i32::from(at(msglen + 9));
    if code != 0 {
        return Verdict::Fail(
            CheckStatus::L7Sts,
            Some("See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9".into()),
            Some(code),
        );
    }
    Verdict::Pass(Some("Success".into()), None)
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

    /// The verdict on `buf` for a rule at step 2, as user rules (`user`) or a protocol check's.
    fn judged(e: &ExpectRule, buf: &[u8], eof: bool, user: bool) -> String {
        let j = Judging {
            step: 2,
            note: None,
            user,
            last_rule: true,
        };
        match judge(e, buf, eof, &j) {
            Verdict::More => "more".into(),
            Verdict::Pass(i, c) => format!("pass {i:?} {c:?}"),
            Verdict::Fail(s, i, c) => format!("fail {} {i:?} {c:?}", s.short()),
        }
    }

    fn verdict(e: &ExpectRule, buf: &[u8], eof: bool) -> String {
        judged(e, buf, eof, true)
    }

    #[test]
    fn expect_waits_then_judges_as_haproxy() {
        let e = rule("expect string role:master");
        assert_eq!(verdict(&e, b"$10\r\nrole:sla", false), "more");
        assert_eq!(
            verdict(&e, b"# Replication\r\nrole:master\r\n", false),
            "pass Some(\"(tcp-check)\") None"
        );
        assert_eq!(
            verdict(&e, b"role:slave\r\n", true),
            "fail L7RSP Some(\"TCPCHK did not match content 'role:master' at step 2\") None"
        );
        assert_eq!(
            verdict(&e, b"", true),
            "fail L7RSP Some(\"TCPCHK got an empty response at step 2\") None"
        );
        let n = rule("expect !string -ERR");
        assert_eq!(verdict(&n, b"+OK", false), "more");
        assert_eq!(verdict(&n, b"+OK", true), "pass Some(\"(tcp-check)\") None");
        assert_eq!(
            verdict(&n, b"-ERR x", false),
            "fail L7RSP Some(\"TCPCHK matched unwanted content '-ERR' at step 2\") None"
        );
        let r = rule("expect rbinary ^1[56]");
        assert_eq!(
            verdict(&r, &[0x16, 3, 3], false),
            "pass Some(\"(tcp-check)\") None"
        );
        assert_eq!(
            verdict(&r, &[0x48], true),
            "fail L7RSP Some(\"TCPCHK did not match content (binary regex) at step 2\") None"
        );
        // a protocol check's rule without texts reports none
        assert_eq!(judged(&r, &[0x48], true, false), "fail L7RSP None None");
        let m = rule("expect min-recv 4 rstring ^2");
        assert_eq!(verdict(&m, b"22", false), "more");
    }

    #[test]
    fn smtp_replies_give_haproxy_texts_and_codes() {
        let rules = smtp_check("HELO localhost");
        let TcpCheckRule::Expect(greeting) = &rules[2] else {
            panic!()
        };
        assert_eq!(
            judged(greeting, b"554 5.7.1 go away\r\n", false, false),
            "fail L7STS Some(\"5.7.1 go away\") Some(554)"
        );
        let TcpCheckRule::Expect(reply) = &rules[4] else {
            panic!()
        };
        assert_eq!(
            judged(
                reply,
                b"250-mail.example.com\r\n250 8BITMIME\r\n",
                false,
                false
            ),
            "pass Some(\"mail.example.com\") Some(250)"
        );
    }

    #[test]
    fn mysql_and_ldap_answers() {
        let TcpCheckRule::Expect(my) = &mysql_check()[1] else {
            panic!()
        };
        let mut greeting = vec![0x4a, 0, 0, 0, 0x0a];
        greeting.extend_from_slice(b"8.0.36\0rest");
        greeting.resize(4 + 0x4a, 0);
        assert_eq!(
            judged(my, &greeting, false, false),
            "pass Some(\"8.0.36\") None"
        );
        let mut err = vec![0x17, 0, 0, 0, 0xff, 0x6a, 0x04];
        err.extend_from_slice(b"#HY000Host 'x' is blocked");
        err[0] = (err.len() - 4) as u8;
        assert_eq!(
            judged(my, &err, false, false),
            "fail L7STS Some(\"#HY000Host 'x' is blocked\") Some(1130)"
        );
        let TcpCheckRule::Expect(ld) = &ldap_check()[2] else {
            panic!()
        };
        let ok = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert_eq!(judged(ld, &ok, false, false), "pass Some(\"Success\") None");
        let mut denied = ok;
        denied[9] = 49;
        assert!(judged(ld, &denied, false, false).starts_with("fail L7STS Some(\"See RFC"));
        assert!(judged(ld, &denied, false, false).ends_with("Some(49)"));
        let mut bad = ok;
        bad[5] = 0x62;
        assert_eq!(
            judged(ld, &bad, false, false),
            "fail L7RSP Some(\"Not LDAPv3 protocol\") None"
        );
    }
}
