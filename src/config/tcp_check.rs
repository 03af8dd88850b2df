//! `tcp-check` rules, and the protocol checks HAProxy builds from such rules (`option
//! redis-check`, `smtpchk`, `pgsql-check`, `mysql-check`, `ldap-check`, `ssl-hello-chk`): what a
//! health check sends and what it expects, step by step. The health module runs them.

use std::net::IpAddr;

/// The statuses a rule may end a check with (`ok-status`, `error-status`, `tout-status`), with
/// HAProxy's names; the health module maps them to its check statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    /// `L4OK`
    L4Ok,
    /// `L4TOUT`
    L4Tout,
    /// `L4CON`
    L4Con,
    /// `L6OK`
    L6Ok,
    /// `L6TOUT`
    L6Tout,
    /// `L6RSP`
    L6Rsp,
    /// `L7OK`
    L7Ok,
    /// `L7OKC`
    L7OkC,
    /// `L7TOUT`
    L7Tout,
    /// `L7RSP`
    L7Rsp,
    /// `L7STS`
    L7Sts,
}

/// One `tcp-check` line (a `comment` applies to the rule after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpCheckRule {
    /// `tcp-check connect ...`: (re)connect.
    Connect(ConnectRule),
    /// `tcp-check send <data>` / `send-binary <hex>`.
    Send {
        /// The bytes.
        data: Vec<u8>,
        /// `comment <msg>`.
        comment: Option<String>,
    },
    /// `tcp-check expect ...`.
    Expect(Box<ExpectRule>),
    /// `tcp-check comment <msg>`: the next rule's comment.
    Comment(String),
}

/// `tcp-check connect` options harp honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectRule {
    /// `port <n>`: else the check's port.
    pub port: Option<u16>,
    /// `addr <ip>`: else the check's address.
    pub addr: Option<IpAddr>,
    /// `send-proxy`: a PROXY protocol header first.
    pub send_proxy: bool,
    /// `default`: the server's own check settings (its PROXY header, `check-ssl`).
    pub default: bool,
    /// `linger`: close with a FIN rather than a reset.
    pub linger: bool,
    /// `ssl`: TLS over this connection, with the server's verification settings.
    pub ssl: bool,
    /// `sni <name>`: the name sent (and verified) instead of the check's.
    pub sni: Option<String>,
    /// `alpn <proto>,...`.
    pub alpn: Vec<Vec<u8>>,
    /// `comment <msg>`.
    pub comment: Option<String>,
}

/// `tcp-check expect` with its options and HAProxy's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectRule {
    /// `!`: the check fails when the pattern is found.
    pub negate: bool,
    /// What is looked for.
    pub matcher: Matcher,
    /// `min-recv <n>`: wait for that many bytes before judging (unless the peer closes).
    pub min_recv: Option<usize>,
    /// `ok-status` (default L7OK).
    pub ok_status: RuleStatus,
    /// `error-status` (default L7RSP).
    pub error_status: RuleStatus,
    /// `tout-status` (default L7TOUT).
    pub tout_status: RuleStatus,
    /// `on-success`: the check's info when this rule ends a passing check.
    pub on_success: Option<Message>,
    /// `on-error`: the check's info when this rule fails.
    pub on_error: Option<Message>,
    /// The check's code is read from the first three bytes of the response (smtpchk's
    /// `status-code res.payload(0,3)`).
    pub code_from_payload: bool,
    /// `comment <msg>`.
    pub comment: Option<String>,
}

impl ExpectRule {
    fn new(matcher: Matcher) -> ExpectRule {
        ExpectRule {
            negate: false,
            matcher,
            min_recv: None,
            ok_status: RuleStatus::L7Ok,
            error_status: RuleStatus::L7Rsp,
            tout_status: RuleStatus::L7Tout,
            on_success: None,
            on_error: None,
            code_from_payload: false,
            comment: None,
        }
    }
}

/// What an expect rule looks for in the bytes received since the last send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `string <text>`: found anywhere.
    String(String),
    /// `binary <hex>`: these bytes, found anywhere.
    Binary(Vec<u8>),
    /// `rstring <regex>`: matched against the bytes.
    Rstring(Pattern),
    /// `rbinary <regex>`: matched against the bytes written in upper-case hex, as HAProxy does.
    Rbinary(Pattern),
    /// A protocol check's own parser.
    Custom(CustomCheck),
}

/// The protocol checks that judge a response with code rather than a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomCheck {
    /// `mysql-check`: the server's greeting packet (its version, or its error).
    MysqlGreeting,
    /// `mysql-check user`: the answer to the login, an OK packet or an error packet.
    MysqlOk,
    /// `ldap-check`: the result code of the answer to an anonymous bind.
    LdapBind,
}

/// A compiled regular expression, compared by its text.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As written.
    pub text: String,
    /// Compiled.
    pub re: regex::bytes::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl Pattern {
    fn new(text: &str) -> Result<Pattern, String> {
        regex::bytes::Regex::new(text)
            .map(|re| Pattern {
                text: text.to_string(),
                re,
            })
            .map_err(|e| format!("failed to compile regex '{text}': {e}"))
    }
}

/// A check's info text from an `on-success` / `on-error` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Literal text.
    Text(String),
    /// The response from byte `from`, leading spaces trimmed when `ltrim`, cut at the first CR
    /// or LF when `cut_crlf` (HAProxy's `%[res.payload(from,0),ltrim(' '),cut_crlf]`).
    Payload {
        /// First byte.
        from: usize,
        /// Trim leading spaces.
        ltrim: bool,
        /// Stop at the first CR or LF.
        cut_crlf: bool,
    },
}

/// Parses the words after `tcp-check`.
pub fn parse_rule(words: &[String]) -> Result<TcpCheckRule, String> {
    let Some(action) = words.first().map(String::as_str) else {
        return Err(
            "'tcp-check' expects 'comment', 'connect', 'send', 'send-binary', 'expect', 'set-var' or 'unset-var'."
                .into(),
        );
    };
    let rest = &words[1..];
    match action {
        "connect" => parse_connect(rest).map(TcpCheckRule::Connect),
        "send" | "send-binary" => parse_send(action, rest),
        "send-lf" | "send-binary-lf" | "set-var" | "unset-var" => Err(format!(
            "'tcp-check {action}' is not supported by harp (it needs log-format expressions and variables)."
        )),
        "expect" => parse_expect(rest).map(|e| TcpCheckRule::Expect(Box::new(e))),
        "comment" => match rest {
            [c] => Ok(TcpCheckRule::Comment(c.clone())),
            _ => Err("'tcp-check comment' expects a string as argument.".into()),
        },
        other => Err(format!(
            "'tcp-check' expects 'comment', 'connect', 'send', 'send-binary', 'expect', 'set-var' or 'unset-var' but got '{other}' as argument."
        )),
    }
}

fn parse_connect(words: &[String]) -> Result<ConnectRule, String> {
    let mut r = ConnectRule::default();
    let mut i = 0;
    let value = |i: usize, what: &str| {
        words
            .get(i + 1)
            .map(String::as_str)
            .ok_or_else(|| format!("'tcp-check connect' : '{}' expects {what}.", words[i]))
    };
    while i < words.len() {
        match words[i].as_str() {
            "default" => r.default = true,
            "linger" => r.linger = true,
            "send-proxy" => r.send_proxy = true,
            "comment" => {
                r.comment = Some(value(i, "a string")?.to_string());
                i += 1;
            }
            "port" => {
                let v = value(i, "a port number")?;
                let port = v.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("'tcp-check connect' : invalid port '{v}' (harp takes a number from 1 to 65535 here).")
                })?;
                r.port = Some(port);
                i += 1;
            }
            "addr" => {
                let v = value(i, "an address")?;
                r.addr = Some(v.parse::<IpAddr>().map_err(|_| {
                    format!("'tcp-check connect' : invalid address '{v}'.")
                })?);
                i += 1;
            }
            "ssl" => r.ssl = true,
            "sni" => {
                r.sni = Some(value(i, "a server name")?.to_string());
                i += 1;
            }
            "alpn" => {
                let v = value(i, "a protocol list")?;
                if v.split(',').any(|p| p.is_empty() || p.len() > 255) {
                    return Err(format!("'tcp-check connect' : invalid 'alpn' list '{v}'."));
                }
                r.alpn = v.split(',').map(|p| p.as_bytes().to_vec()).collect();
                i += 1;
            }
            kw @ ("via-socks4" | "proto") => {
                return Err(format!(
                    "'tcp-check connect' : '{kw}' is not supported by harp."
                ))
            }
            other => {
                return Err(format!(
                    "'tcp-check connect' expects 'comment', 'port', 'addr', 'send-proxy', 'via-socks4', 'ssl', 'sni', 'alpn', 'proto', 'linger' or 'default' but got '{other}' as argument."
                ))
            }
        }
        i += 1;
    }
    Ok(r)
}

fn parse_send(action: &str, words: &[String]) -> Result<TcpCheckRule, String> {
    let (data, comment) = match words {
        [d] => (d, None),
        [d, c, text] if c == "comment" => (d, Some(text.clone())),
        [] => {
            return Err(format!(
                "'tcp-check {action}' expects a {} as argument.",
                if action == "send" {
                    "string"
                } else {
                    "binary string"
                }
            ))
        }
        _ => {
            return Err(format!(
                "'tcp-check {action}' expects only 'comment <string>' after its data."
            ))
        }
    };
    let data = if action == "send" {
        data.as_bytes().to_vec()
    } else {
        hex(data).ok_or_else(|| {
            format!("'tcp-check {action}' : '{data}' is not a valid binary string.")
        })?
    };
    Ok(TcpCheckRule::Send { data, comment })
}

fn parse_expect(words: &[String]) -> Result<ExpectRule, String> {
    let mut i = 0;
    let mut negate = false;
    let mut opts: Vec<(&str, &str)> = Vec::new();
    let value = |i: usize| {
        words
            .get(i + 1)
            .map(String::as_str)
            .ok_or_else(|| format!("'tcp-check expect' : '{}' expects an argument.", words[i]))
    };
    let matcher = loop {
        let Some(w) = words.get(i).map(String::as_str) else {
            return Err("'tcp-check expect' expects 'string', 'rstring', 'binary' or 'rbinary' followed by a pattern.".into());
        };
        match w {
            "!" => negate = !negate,
            "min-recv" | "comment" | "ok-status" | "error-status" | "tout-status" | "on-success"
            | "on-error" => {
                opts.push((w, value(i)?));
                i += 1;
            }
            "status-code" => {
                return Err("'tcp-check expect' : 'status-code' is not supported by harp (it needs sample expressions).".into())
            }
            w if w.starts_with('!') && w.len() > 1 => {
                // `!rstring` written as one word, as HAProxy accepts it
                negate = !negate;
                let typ = &w[1..];
                let Some(pat) = words.get(i + 1) else {
                    return Err(format!("'tcp-check expect' : '{typ}' expects a pattern."));
                };
                i += 2;
                break pattern(typ, pat)?;
            }
            "string" | "rstring" | "binary" | "rbinary" => {
                let Some(pat) = words.get(i + 1) else {
                    return Err(format!("'tcp-check expect' : '{w}' expects a pattern."));
                };
                i += 2;
                break pattern(w, pat)?;
            }
            "string-lf" | "binary-lf" => {
                return Err(format!("'tcp-check expect' : '{w}' is not supported by harp (it needs log-format expressions)."))
            }
            other => {
                return Err(format!("'tcp-check expect' expects 'min-recv', 'comment', 'ok-status', 'error-status', 'tout-status', 'on-success', 'on-error', 'status-code', '!' or a pattern type ('string', 'rstring', 'binary', 'rbinary') but got '{other}' as argument."))
            }
        }
        i += 1;
    };
    // options may follow the pattern too
    while i < words.len() {
        let w = words[i].as_str();
        match w {
            "min-recv" | "comment" | "ok-status" | "error-status" | "tout-status"
            | "on-success" | "on-error" => {
                opts.push((w, value(i)?));
                i += 2;
            }
            other => {
                return Err(format!(
                    "'tcp-check expect' : unexpected argument '{other}' after the pattern."
                ))
            }
        }
    }
    let mut e = ExpectRule::new(matcher);
    e.negate = negate;
    for (k, v) in opts {
        match k {
            "min-recv" => {
                e.min_recv = Some(v.parse::<usize>().map_err(|_| {
                    format!("'tcp-check expect' : 'min-recv' expects an integer, got '{v}'.")
                })?)
            }
            "comment" => e.comment = Some(v.to_string()),
            "ok-status" => {
                e.ok_status = status(v, &["L7OK", "L7OKC", "L6OK", "L4OK"], k)?;
            }
            "error-status" => {
                e.error_status = status(v, &["L7RSP", "L7STS", "L6RSP", "L4CON"], k)?;
            }
            "tout-status" => e.tout_status = status(v, &["L7TOUT", "L6TOUT", "L4TOUT"], k)?,
            "on-success" => e.on_success = Some(message(v, k)?),
            _ => e.on_error = Some(message(v, k)?),
        }
    }
    Ok(e)
}

/// A pattern of type `typ` (`string`, `rstring`, `binary`, `rbinary`).
fn pattern(typ: &str, pat: &str) -> Result<Matcher, String> {
    Ok(match typ {
        "string" => Matcher::String(pat.to_string()),
        "rstring" => Matcher::Rstring(Pattern::new(pat)?),
        "binary" => Matcher::Binary(hex(pat).ok_or_else(|| {
            format!("'tcp-check expect' : '{pat}' is not a valid binary string.")
        })?),
        "rbinary" => Matcher::Rbinary(Pattern::new(pat)?),
        other => {
            return Err(format!(
                "'tcp-check expect' : '{other}' is not a pattern type ('string', 'rstring', 'binary', 'rbinary')."
            ))
        }
    })
}

fn status(v: &str, allowed: &[&str], kw: &str) -> Result<RuleStatus, String> {
    if !allowed.contains(&v) {
        return Err(format!(
            "'tcp-check expect' : '{kw}' expects {} but got '{v}'.",
            allowed.join(", ")
        ));
    }
    Ok(match v {
        "L4OK" => RuleStatus::L4Ok,
        "L4TOUT" => RuleStatus::L4Tout,
        "L4CON" => RuleStatus::L4Con,
        "L6OK" => RuleStatus::L6Ok,
        "L6TOUT" => RuleStatus::L6Tout,
        "L6RSP" => RuleStatus::L6Rsp,
        "L7OK" => RuleStatus::L7Ok,
        "L7OKC" => RuleStatus::L7OkC,
        "L7TOUT" => RuleStatus::L7Tout,
        "L7RSP" => RuleStatus::L7Rsp,
        _ => RuleStatus::L7Sts,
    })
}

fn message(v: &str, kw: &str) -> Result<Message, String> {
    if v.contains("%[") || v.contains("%{") {
        return Err(format!(
            "'tcp-check expect' : '{kw}' with log-format expressions is not supported by harp (plain text only)."
        ));
    }
    Ok(Message::Text(v.to_string()))
}

/// `1a2B..` → bytes; `None` when not an even run of hex digits.
fn hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn expect(m: Matcher) -> ExpectRule {
    ExpectRule::new(m)
}

fn builtin_re(text: &str) -> Pattern {
    // the built-in patterns below are valid: a failure would be a harp bug caught by the tests
    Pattern::new(text).unwrap_or_else(|e| panic!("built-in check pattern: {e}"))
}

/// The rules of `option redis-check`: PING, `+PONG` expected.
pub fn redis_check() -> Vec<TcpCheckRule> {
    let mut e = expect(Matcher::String("+PONG\r\n".into()));
    e.error_status = RuleStatus::L7Sts;
    e.on_error = Some(Message::Payload {
        from: 0,
        ltrim: false,
        cut_crlf: true,
    });
    e.on_success = Some(Message::Text("Redis server is ok".into()));
    vec![
        TcpCheckRule::Send {
            data: b"*1\r\n$4\r\nPING\r\n".to_vec(),
            comment: None,
        },
        TcpCheckRule::Expect(Box::new(e)),
    ]
}

/// The rules of `option smtpchk [HELO|EHLO <domain>]`: a 2xx greeting, the command, a 2xx reply.
pub fn smtp_check(cmd: &str) -> Vec<TcpCheckRule> {
    let payload = |from: usize, ltrim: bool| Message::Payload {
        from,
        ltrim,
        cut_crlf: true,
    };
    let mut form = expect(Matcher::Rstring(builtin_re("^[0-9]{3}[ \r]")));
    form.min_recv = Some(4);
    form.on_error = Some(payload(0, false));
    let mut greeting = expect(Matcher::Rstring(builtin_re("^2[0-9]{2}[ \r]")));
    greeting.min_recv = Some(4);
    greeting.error_status = RuleStatus::L7Sts;
    greeting.code_from_payload = true;
    greeting.on_error = Some(payload(4, true));
    // the reply to HELO/EHLO may be a multi-line one ("250-...")
    let mut reply = expect(Matcher::Rstring(builtin_re("^2[0-9]{2}[- \r]")));
    reply.min_recv = Some(4);
    reply.error_status = RuleStatus::L7Sts;
    reply.code_from_payload = true;
    reply.on_error = Some(payload(4, true));
    reply.on_success = Some(payload(4, true));
    vec![
        default_linger(),
        TcpCheckRule::Expect(Box::new(form)),
        TcpCheckRule::Expect(Box::new(greeting)),
        TcpCheckRule::Send {
            data: format!("{cmd}\r\n").into_bytes(),
            comment: None,
        },
        TcpCheckRule::Expect(Box::new(reply)),
    ]
}

/// The rules of `option pgsql-check user <name>`: a startup message, then an error (its text
/// reported) or an authentication-ok answer.
pub fn pgsql_check(user: &str) -> Vec<TcpCheckRule> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes()); // protocol 3.0
    body.extend_from_slice(b"user\0");
    body.extend_from_slice(user.as_bytes());
    body.extend_from_slice(b"\0\0");
    let mut data = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    data.extend_from_slice(&body);
    let mut not_error = expect(Matcher::Rstring(builtin_re("^E")));
    not_error.negate = true;
    not_error.min_recv = Some(5);
    not_error.on_error = Some(Message::Payload {
        from: 6,
        ltrim: false,
        cut_crlf: false,
    });
    // authentication ok, or any authentication request (md5, SCRAM...): a PostgreSQL server
    let mut auth_ok = expect(Matcher::Rbinary(builtin_re(
        "^52000000(08|0A|0C)000000(00|02|03|04|05|06)",
    )));
    auth_ok.min_recv = Some(9);
    auth_ok.error_status = RuleStatus::L7Sts;
    auth_ok.on_success = Some(Message::Text("PostgreSQL server is ok".into()));
    auth_ok.on_error = Some(Message::Text("PostgreSQL unknown error".into()));
    vec![
        default_linger(),
        TcpCheckRule::Send {
            data,
            comment: None,
        },
        TcpCheckRule::Expect(Box::new(not_error)),
        TcpCheckRule::Expect(Box::new(auth_ok)),
    ]
}

/// The rules of `option mysql-check` (without `user`): the server's greeting packet.
pub fn mysql_check() -> Vec<TcpCheckRule> {
    vec![
        default_linger(),
        TcpCheckRule::Expect(Box::new(expect(Matcher::Custom(
            CustomCheck::MysqlGreeting,
        )))),
    ]
}

/// `tcp-check connect default linger`, which HAProxy's smtp, pgsql and mysql checks start with:
/// the server's own check settings, and a FIN at the end rather than a reset.
fn default_linger() -> TcpCheckRule {
    TcpCheckRule::Connect(ConnectRule {
        default: true,
        linger: true,
        ..ConnectRule::default()
    })
}

/// The rules of `option mysql-check user <name> [post-41|pre-41]`: the greeting, then a login
/// without password as `user` (HAProxy's packet: client flags, max packet size, charset, the
/// name) followed by a QUIT, then the server's OK or error packet.
pub fn mysql_login_check(user: &str, post41: bool) -> Vec<TcpCheckRule> {
    let mut body = Vec::new();
    if post41 {
        // client capabilities, max packet, utf8, 23 zero bytes (HAProxy's mysql41 packet)
        body.extend_from_slice(&[0x00, 0x82, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x21]);
        body.extend_from_slice(&[0u8; 23]);
    } else {
        // client capabilities, max packet (HAProxy's mysql40 packet)
        body.extend_from_slice(&[0x00, 0x80, 0x00, 0x00, 0x01]);
    }
    body.extend_from_slice(user.as_bytes());
    body.push(0);
    body.push(0); // filler
    let len = body.len() as u32;
    let mut data = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, 1];
    data.extend_from_slice(&body);
    data.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x01]); // COM_QUIT
                                                             // sent at once, as HAProxy does: the greeting and the answer then arrive one after the other
    vec![
        default_linger(),
        TcpCheckRule::Send {
            data,
            comment: None,
        },
        TcpCheckRule::Expect(Box::new(expect(Matcher::Custom(
            CustomCheck::MysqlGreeting,
        )))),
        TcpCheckRule::Expect(Box::new(expect(Matcher::Custom(CustomCheck::MysqlOk)))),
    ]
}

/// The rules of `option ldap-check`: an anonymous LDAPv3 bind, its result code judged.
pub fn ldap_check() -> Vec<TcpCheckRule> {
    let mut ber = expect(Matcher::Rbinary(builtin_re("^30")));
    ber.min_recv = Some(14);
    ber.on_error = Some(Message::Text("Not LDAPv3 protocol".into()));
    vec![
        TcpCheckRule::Send {
            data: vec![
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
            ],
            comment: None,
        },
        TcpCheckRule::Expect(Box::new(ber)),
        TcpCheckRule::Expect(Box::new(expect(Matcher::Custom(CustomCheck::LdapBind)))),
    ]
}

/// The rules of `option ssl-hello-chk`: a TLS ClientHello, and a TLS handshake or alert record
/// back (`^1[56]` in hex) for a Layer6 pass.
pub fn ssl_hello_check() -> Vec<TcpCheckRule> {
    let mut e = expect(Matcher::Rbinary(builtin_re("^1[56]")));
    e.min_recv = Some(5);
    e.ok_status = RuleStatus::L6Ok;
    e.error_status = RuleStatus::L6Rsp;
    e.tout_status = RuleStatus::L6Tout;
    vec![
        TcpCheckRule::Send {
            data: client_hello(),
            comment: None,
        },
        TcpCheckRule::Expect(Box::new(e)),
    ]
}

/// A TLS 1.2 ClientHello offering common ECDHE/RSA suites: any TLS server answers it with a
/// handshake record, or at worst an alert, either of which passes the check.
fn client_hello() -> Vec<u8> {
    let suites: [u16; 8] = [
        0xc02f, 0xc030, 0xc02b, 0xc02c, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let mut hello = Vec::new();
    hello.extend_from_slice(&[0x03, 0x03]); // client version TLS 1.2
    hello.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11))); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        hello.extend_from_slice(&s.to_be_bytes());
    }
    hello.extend_from_slice(&[0x01, 0x00]); // compression: null
                                            // extensions: supported groups (x25519, P-256), EC point formats, signature algorithms
    let ext: Vec<u8> = [
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17][..],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00][..],
        &[
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x01, 0x04, 0x03, 0x08, 0x04,
        ][..],
    ]
    .concat();
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = vec![0x01]; // ClientHello
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn rules_parse_with_haproxy_defaults() {
        let TcpCheckRule::Expect(e) = parse_rule(&w("expect string +PONG")).unwrap() else {
            panic!()
        };
        assert_eq!(e.matcher, Matcher::String("+PONG".into()));
        assert_eq!(
            (e.ok_status, e.error_status, e.tout_status),
            (RuleStatus::L7Ok, RuleStatus::L7Rsp, RuleStatus::L7Tout)
        );
        let TcpCheckRule::Expect(e) =
            parse_rule(&w("expect min-recv 4 error-status L7STS ! rstring ^5")).unwrap()
        else {
            panic!()
        };
        assert!(e.negate && e.min_recv == Some(4) && e.error_status == RuleStatus::L7Sts);
        assert_eq!(
            parse_rule(&w("send-binary 50494e470d0a")).unwrap(),
            TcpCheckRule::Send {
                data: b"PING\r\n".to_vec(),
                comment: None
            }
        );
        assert_eq!(
            parse_rule(&w("connect port 6379 send-proxy")).unwrap(),
            TcpCheckRule::Connect(ConnectRule {
                port: Some(6379),
                send_proxy: true,
                ..ConnectRule::default()
            })
        );
    }

    #[test]
    fn refusals_say_why() {
        let e = |s: &str| parse_rule(&w(s)).unwrap_err();
        assert!(e("connect proto h2").contains("not supported by harp"));
        let Ok(TcpCheckRule::Connect(c)) =
            parse_rule(&w("connect port 6380 ssl sni r.test alpn h2"))
        else {
            panic!("connect ssl parses")
        };
        assert!(c.ssl && c.sni.as_deref() == Some("r.test") && c.alpn == vec![b"h2".to_vec()]);
        assert!(e("send-lf %[var(x)]").contains("not supported by harp"));
        assert!(e("expect rstring (").contains("failed to compile regex"));
        assert!(e("send-binary 5g").contains("not a valid binary string"));
        assert!(e("expect error-status L7OK string x").contains("expects L7RSP"));
        assert!(e("frob").contains("but got 'frob'"));
    }

    #[test]
    fn built_in_rule_sets_build() {
        assert_eq!(redis_check().len(), 2);
        assert_eq!(smtp_check("HELO localhost").len(), 5);
        let pg = pgsql_check("postgres");
        let TcpCheckRule::Send { data, .. } = &pg[1] else {
            panic!()
        };
        assert_eq!(
            u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize,
            data.len()
        );
        assert_eq!(ssl_hello_check()[0], ssl_hello_check()[0]);
        let TcpCheckRule::Send { data, .. } = &ssl_hello_check()[0] else {
            panic!()
        };
        // record length and handshake length agree with the bytes
        assert_eq!(
            u16::from_be_bytes([data[3], data[4]]) as usize,
            data.len() - 5
        );
        assert_eq!(mysql_check().len(), 2);
        assert_eq!(ldap_check().len(), 3);
    }
}
