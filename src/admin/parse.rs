//! Runtime API line parsing: a line → `;`-separated commands → words → [`AdminCommand`].
//!
//! Only the shape of a command is checked here; values that HAProxy validates after looking the
//! server up (state names, weights, addresses) stay raw so errors come out in HAProxy's order.

use super::patterns::Kind;

/// Output format of `show stat` / `show info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// CSV (`show stat`) or `Name: value` lines (`show info`).
    #[default]
    Plain,
    /// `typed`: one `F.iid.sid.idx.name.1:TAG:type:value` line per field.
    Typed,
    /// `json`.
    Json,
}

/// `show stat <iid|name> <type> <sid>`: restricts the dump to one proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFilter {
    /// Proxy name or numeric id as typed.
    pub proxy: String,
    /// Bit mask: 1 frontend, 2 backend, 4 server; -1 all.
    pub types: i64,
    /// Server id, -1 all.
    pub sid: i64,
}

/// What an `ssl cert` command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslVerb {
    /// `show ssl cert`.
    Show,
    /// `set ssl cert`.
    Set,
    /// `commit ssl cert`.
    Commit,
    /// `abort ssl cert`.
    Abort,
}

/// What an `acl` or `map` command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatOp {
    /// `show acl|map`.
    Show,
    /// `add acl|map`.
    Add,
    /// `set map` (ACL entries have no value to set).
    Set,
    /// `del acl|map`.
    Del,
    /// `clear acl|map`.
    Clear,
    /// `get acl|map`.
    Get,
    /// `prepare acl|map`: a new version.
    Prepare,
    /// `commit acl|map @<ver>`.
    Commit,
}

impl PatOp {
    fn parse(verb: &str, kind: Kind) -> Option<PatOp> {
        Some(match verb {
            "show" => PatOp::Show,
            "add" => PatOp::Add,
            "set" if kind == Kind::Map => PatOp::Set,
            "del" => PatOp::Del,
            "clear" => PatOp::Clear,
            "get" => PatOp::Get,
            "prepare" => PatOp::Prepare,
            "commit" => PatOp::Commit,
            _ => return None,
        })
    }
}

/// `set server <b>/<s> <what> ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetServer {
    /// `state <word>`.
    State(String),
    /// `health <word>`.
    Health(String),
    /// `agent <word>`.
    Agent(String),
    /// `weight <w>`.
    Weight(String),
    /// `addr <ip> [port <p>]`.
    Addr {
        /// The address as typed (may be empty).
        addr: String,
        /// The port word after `port`, if any.
        port: Option<String>,
    },
    /// `agent-addr <ip> [port <p>]`.
    AgentAddr {
        /// The address as typed (may be empty).
        addr: String,
        /// The port word after `port`, if any.
        port: Option<String>,
    },
    /// `agent-port <p>`.
    AgentPort(String),
    /// `agent-send <string>`.
    AgentSend(String),
    /// Anything else (reply: usage).
    Other,
}

/// One parsed Runtime API command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `show acl [<acl>]`, `add acl`, `del acl`, `clear acl`, `get acl` and the same for
    /// `map` (and `set map`): the words after `acl`/`map`, and the payload (`add map <map> <<`
    /// then `<key> <value>` lines up to an empty one).
    Patterns(Kind, PatOp, Vec<String>, Option<String>),
    /// `show table`, `clear table`, `set table`: the words after `table`.
    Table(super::table::TableOp, Vec<String>),
    /// `help [<command words>]`.
    Help(Vec<String>),
    /// `prompt`: toggle interactive mode.
    Prompt,
    /// `quit`.
    Quit,
    /// `echo <text>`.
    Echo(String),
    /// `show info [typed|json]`.
    ShowInfo(Format),
    /// `show stat [...]`.
    ShowStat {
        /// Optional proxy/type/sid filter.
        filter: Option<StatFilter>,
        /// Output format.
        format: Format,
        /// `up`: only servers that are up.
        up: bool,
        /// `no-maint`: hide servers in maintenance.
        no_maint: bool,
    },
    /// `show servers state [<backend>]`.
    ShowServersState(Option<String>),
    /// `show backend`.
    ShowBackend,
    /// `show version`.
    ShowVersion,
    /// `show events [<sink>] [-w] [-n]`: the words after `events`.
    ShowEvents(Vec<String>),
    /// `clear counters [all]`.
    ClearCounters(bool),
    /// `show cli level`.
    ShowCliLevel,
    /// `operator` / `user`: lower the session's level.
    SetLevel(crate::config::AccessLevel),
    /// `get weight <b>/<s>`.
    GetWeight(String),
    /// `set weight <b>/<s> <w>` (deprecated form).
    SetWeight(String, String),
    /// `set server <b>/<s> ...`.
    SetServer(String, SetServer),
    /// `set maxconn server <b>/<s> <n>`.
    SetMaxconnServer(String, String),
    /// `set maxconn frontend <fe> <n>` (words as given; empty when missing).
    SetMaxconnFrontend(String, String),
    /// `set maxconn global <n>`.
    SetMaxconnGlobal(String),
    /// `set maxconn <other>`.
    SetMaxconnOther,
    /// `set rate-limit <what> <scope> <value>` (words as given; empty when missing).
    SetRateLimit(String, String, String),
    /// `enable server` / `disable server`.
    EnableServer(String, bool),
    /// `enable health` / `disable health`.
    EnableHealth(String, bool),
    /// `enable agent` / `disable agent`.
    EnableAgent(String, bool),
    /// `add server help`.
    AddServerHelp,
    /// `add server <b>/<s> <words...>`.
    AddServer(String, Vec<String>),
    /// `del server <b>/<s>`.
    DelServer(String),
    /// `shutdown sessions server <b>/<s>`.
    ShutdownSessions(String),
    /// `enable frontend <fe>` / `disable frontend <fe>`.
    EnableFrontend(String, bool),
    /// `shutdown frontend <fe>`.
    ShutdownFrontend(String),
    /// `get var <name>`: all the words.
    GetVar(Vec<String>),
    /// `set var <name> ...` (experimental mode): all the words.
    SetVar(Vec<String>),
    /// `experimental-mode [on|off]`.
    ExperimentalMode(Option<String>),
    /// `show|set|commit|abort ssl cert ...`: the verb, the words after `cert`, the payload.
    SslCert(SslVerb, Vec<String>, Option<String>),
    /// Not a command harp knows; carries the words for the "maybe" list.
    Unknown(Vec<String>),
}

/// Splits a line into commands on unescaped `;` (`\;` stays a literal `;`).
pub fn split_commands(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&';') => {
                cur.push('\\');
                cur.push(';');
                chars.next();
            }
            ';' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Splits one command into words on blanks; a backslash escapes the next character.
pub fn split_words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    has = true;
                }
            }
            ' ' | '\t' | '\r' | '\n' => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

fn arg(w: &[String], i: usize) -> String {
    w.get(i).cloned().unwrap_or_default()
}

fn format_of(words: &[String]) -> Format {
    if words.iter().any(|w| w == "json") {
        Format::Json
    } else if words.iter().any(|w| w == "typed") {
        Format::Typed
    } else {
        Format::Plain
    }
}

/// Parses one command's words. An empty list is not a command (callers skip it).
pub fn parse_words(w: &[String]) -> AdminCommand {
    let s: Vec<&str> = w.iter().map(|x| x.as_str()).collect();
    let unknown = || AdminCommand::Unknown(w.to_vec());
    match s.as_slice() {
        ["help", rest @ ..] => AdminCommand::Help(rest.iter().map(|x| x.to_string()).collect()),
        ["prompt", ..] => AdminCommand::Prompt,
        ["quit", ..] => AdminCommand::Quit,
        ["echo", rest @ ..] => AdminCommand::Echo(rest.join(" ")),
        ["operator", ..] => AdminCommand::SetLevel(crate::config::AccessLevel::Operator),
        ["user", ..] => AdminCommand::SetLevel(crate::config::AccessLevel::User),
        ["show", "info", ..] => AdminCommand::ShowInfo(format_of(&w[2..])),
        ["show", "table", ..] => AdminCommand::Table(super::table::TableOp::Show, w[2..].to_vec()),
        ["clear", "table", ..] => {
            AdminCommand::Table(super::table::TableOp::Clear, w[2..].to_vec())
        }
        ["set", "table", ..] => AdminCommand::Table(super::table::TableOp::Set, w[2..].to_vec()),
        [verb, kind @ ("acl" | "map"), ..] => {
            let kind = if *kind == "acl" { Kind::Acl } else { Kind::Map };
            match PatOp::parse(verb, kind) {
                Some(op) => AdminCommand::Patterns(kind, op, w[2..].to_vec(), None),
                None => unknown(),
            }
        }
        ["show", "stat", ..] => {
            let mut at = 2;
            let mut filter = None;
            if w.len() >= 5 {
                filter = Some(StatFilter {
                    proxy: arg(w, 2),
                    types: arg(w, 3).parse().unwrap_or(0),
                    sid: arg(w, 4).parse().unwrap_or(0),
                });
                at = 5;
            }
            let rest = &w[at.min(w.len())..];
            AdminCommand::ShowStat {
                filter,
                format: format_of(rest),
                up: rest.iter().any(|x| x == "up"),
                no_maint: rest.iter().any(|x| x == "no-maint"),
            }
        }
        ["show", "servers", "state"] => AdminCommand::ShowServersState(None),
        ["show", "servers", "state", b, ..] => AdminCommand::ShowServersState(Some(b.to_string())),
        ["show", "backend", ..] => AdminCommand::ShowBackend,
        ["show", "version", ..] => AdminCommand::ShowVersion,
        ["show", "events", rest @ ..] => {
            AdminCommand::ShowEvents(rest.iter().map(|s| s.to_string()).collect())
        }
        ["clear", "counters", "all", ..] => AdminCommand::ClearCounters(true),
        ["clear", "counters", ..] => AdminCommand::ClearCounters(false),
        ["show", "cli", "level", ..] => AdminCommand::ShowCliLevel,
        ["get", "weight", ..] => AdminCommand::GetWeight(arg(w, 2)),
        ["get", "var", ..] => AdminCommand::GetVar(w.to_vec()),
        [verb @ ("show" | "set" | "commit" | "abort"), "ssl", "cert", rest @ ..] => {
            let verb = match *verb {
                "show" => SslVerb::Show,
                "set" => SslVerb::Set,
                "commit" => SslVerb::Commit,
                _ => SslVerb::Abort,
            };
            AdminCommand::SslCert(verb, rest.iter().map(|s| s.to_string()).collect(), None)
        }
        ["set", "var", ..] => AdminCommand::SetVar(w.to_vec()),
        ["experimental-mode", rest @ ..] => {
            AdminCommand::ExperimentalMode(rest.first().map(|s| s.to_string()))
        }
        ["set", "weight", ..] => AdminCommand::SetWeight(arg(w, 2), arg(w, 3)),
        ["set", "server", ..] => {
            let what = match s.get(3).copied().unwrap_or("") {
                "state" => SetServer::State(arg(w, 4)),
                "health" => SetServer::Health(arg(w, 4)),
                "agent" => SetServer::Agent(arg(w, 4)),
                "weight" => SetServer::Weight(arg(w, 4)),
                "addr" => SetServer::Addr {
                    addr: arg(w, 4),
                    port: if s.get(5) == Some(&"port") {
                        Some(arg(w, 6))
                    } else {
                        None
                    },
                },
                "agent-addr" => SetServer::AgentAddr {
                    addr: arg(w, 4),
                    port: if s.get(5) == Some(&"port") {
                        Some(arg(w, 6))
                    } else {
                        None
                    },
                },
                "agent-port" => SetServer::AgentPort(arg(w, 4)),
                "agent-send" => SetServer::AgentSend(arg(w, 4)),
                _ => SetServer::Other,
            };
            AdminCommand::SetServer(arg(w, 2), what)
        }
        ["set", "maxconn", "server", ..] => AdminCommand::SetMaxconnServer(arg(w, 3), arg(w, 4)),
        ["set", "maxconn", "frontend", ..] => {
            AdminCommand::SetMaxconnFrontend(arg(w, 3), arg(w, 4))
        }
        ["set", "maxconn", "global", ..] => AdminCommand::SetMaxconnGlobal(arg(w, 3)),
        ["set", "maxconn", ..] => AdminCommand::SetMaxconnOther,
        ["set", "rate-limit", ..] => AdminCommand::SetRateLimit(arg(w, 2), arg(w, 3), arg(w, 4)),
        [verb @ ("enable" | "disable"), what, ..] => {
            let on = *verb == "enable";
            let target = arg(w, 2);
            match *what {
                "server" => AdminCommand::EnableServer(target, on),
                "health" => AdminCommand::EnableHealth(target, on),
                "agent" => AdminCommand::EnableAgent(target, on),
                "frontend" => AdminCommand::EnableFrontend(target, on),
                _ => unknown(),
            }
        }
        ["add", "server", "help", ..] => AdminCommand::AddServerHelp,
        ["add", "server", ..] => AdminCommand::AddServer(arg(w, 2), w[3.min(w.len())..].to_vec()),
        ["del", "server", ..] => AdminCommand::DelServer(arg(w, 2)),
        ["shutdown", "sessions", "server", ..] => AdminCommand::ShutdownSessions(arg(w, 3)),
        ["shutdown", "frontend", ..] => AdminCommand::ShutdownFrontend(arg(w, 2)),
        _ => unknown(),
    }
}

/// Parses one command text (`parse_words(split_words(cmd))`).
pub fn parse_command(cmd: &str) -> Option<AdminCommand> {
    let w = split_words(cmd);
    if w.is_empty() {
        None
    } else {
        Some(parse_words(&w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccessLevel;

    fn p(s: &str) -> AdminCommand {
        parse_command(s).expect("a command")
    }

    #[test]
    fn splits_on_semicolons_and_blanks() {
        assert_eq!(split_commands("a;b c;;d"), ["a", "b c", "", "d"]);
        assert_eq!(split_commands(r"echo a\;b;x"), [r"echo a\;b", "x"]);
        assert_eq!(
            split_words("  set  server\tb/s  "),
            ["set", "server", "b/s"]
        );
        assert_eq!(split_words(r"echo a\;b a\ b"), ["echo", "a;b", "a b"]);
        assert!(parse_command("   ").is_none());
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, AdminCommand)> = vec![
            ("help", AdminCommand::Help(vec![])),
            ("help show", AdminCommand::Help(vec!["show".into()])),
            ("prompt", AdminCommand::Prompt),
            ("quit", AdminCommand::Quit),
            (
                "echo hello  world",
                AdminCommand::Echo("hello world".into()),
            ),
            ("operator", AdminCommand::SetLevel(AccessLevel::Operator)),
            ("user", AdminCommand::SetLevel(AccessLevel::User)),
            ("show info", AdminCommand::ShowInfo(Format::Plain)),
            ("show info typed", AdminCommand::ShowInfo(Format::Typed)),
            ("show info json", AdminCommand::ShowInfo(Format::Json)),
            (
                "show stat",
                AdminCommand::ShowStat {
                    filter: None,
                    format: Format::Plain,
                    up: false,
                    no_maint: false,
                },
            ),
            (
                "show stat test 4 -1 typed up",
                AdminCommand::ShowStat {
                    filter: Some(StatFilter {
                        proxy: "test".into(),
                        types: 4,
                        sid: -1,
                    }),
                    format: Format::Typed,
                    up: true,
                    no_maint: false,
                },
            ),
            (
                "show stat json no-maint",
                AdminCommand::ShowStat {
                    filter: None,
                    format: Format::Json,
                    up: false,
                    no_maint: true,
                },
            ),
            ("show servers state", AdminCommand::ShowServersState(None)),
            (
                "show servers state test",
                AdminCommand::ShowServersState(Some("test".into())),
            ),
            ("show backend", AdminCommand::ShowBackend),
            ("show version", AdminCommand::ShowVersion),
            ("clear counters", AdminCommand::ClearCounters(false)),
            ("clear counters all", AdminCommand::ClearCounters(true)),
            ("show cli level", AdminCommand::ShowCliLevel),
            ("get weight a/b", AdminCommand::GetWeight("a/b".into())),
            ("get weight", AdminCommand::GetWeight("".into())),
            (
                "set weight a/b 50%",
                AdminCommand::SetWeight("a/b".into(), "50%".into()),
            ),
            (
                "set server a/b state maint",
                AdminCommand::SetServer("a/b".into(), SetServer::State("maint".into())),
            ),
            (
                "set server a/b health",
                AdminCommand::SetServer("a/b".into(), SetServer::Health("".into())),
            ),
            (
                "set server a/b agent up",
                AdminCommand::SetServer("a/b".into(), SetServer::Agent("up".into())),
            ),
            (
                "set server a/b weight 7",
                AdminCommand::SetServer("a/b".into(), SetServer::Weight("7".into())),
            ),
            (
                "set server a/b addr 1.2.3.4 port 80",
                AdminCommand::SetServer(
                    "a/b".into(),
                    SetServer::Addr {
                        addr: "1.2.3.4".into(),
                        port: Some("80".into()),
                    },
                ),
            ),
            (
                "set server a/b addr",
                AdminCommand::SetServer(
                    "a/b".into(),
                    SetServer::Addr {
                        addr: "".into(),
                        port: None,
                    },
                ),
            ),
            (
                "set server a/b frob",
                AdminCommand::SetServer("a/b".into(), SetServer::Other),
            ),
            (
                "set maxconn server a/b 10",
                AdminCommand::SetMaxconnServer("a/b".into(), "10".into()),
            ),
            (
                "set maxconn frontend fe 10",
                AdminCommand::SetMaxconnFrontend("fe".into(), "10".into()),
            ),
            (
                "set maxconn global 7",
                AdminCommand::SetMaxconnGlobal("7".into()),
            ),
            ("set maxconn bogus 10", AdminCommand::SetMaxconnOther),
            (
                "enable server a/b",
                AdminCommand::EnableServer("a/b".into(), true),
            ),
            (
                "disable server a/b",
                AdminCommand::EnableServer("a/b".into(), false),
            ),
            (
                "enable health a/b",
                AdminCommand::EnableHealth("a/b".into(), true),
            ),
            (
                "disable agent a/b",
                AdminCommand::EnableAgent("a/b".into(), false),
            ),
            ("add server help", AdminCommand::AddServerHelp),
            (
                "add server a/b 127.0.0.1:80 weight 3",
                AdminCommand::AddServer(
                    "a/b".into(),
                    vec!["127.0.0.1:80".into(), "weight".into(), "3".into()],
                ),
            ),
            ("add server", AdminCommand::AddServer("".into(), vec![])),
            ("del server a/b", AdminCommand::DelServer("a/b".into())),
            (
                "shutdown sessions server a/b",
                AdminCommand::ShutdownSessions("a/b".into()),
            ),
            (
                "frobnicate x",
                AdminCommand::Unknown(vec!["frobnicate".into(), "x".into()]),
            ),
            (
                "enable frontend fe",
                AdminCommand::EnableFrontend("fe".into(), true),
            ),
            (
                "disable frontend",
                AdminCommand::EnableFrontend("".into(), false),
            ),
            (
                "shutdown frontend fe",
                AdminCommand::ShutdownFrontend("fe".into()),
            ),
            (
                "enable bogus fe",
                AdminCommand::Unknown(vec!["enable".into(), "bogus".into(), "fe".into()]),
            ),
            ("show", AdminCommand::Unknown(vec!["show".into()])),
        ];
        for (line, want) in cases {
            assert_eq!(p(line), want, "{line}");
        }
    }
}
