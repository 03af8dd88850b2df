//! Runtime API command lines → [`AdminCommand`]s, split as HAProxy's CLI splits them: `;`
//! separates commands, spaces/tabs separate words, `\` escapes the next character.

use crate::config::AccessLevel;

/// HAProxy's `MAX_CLI_ARGS`: extra words are ignored (kept bounded so a garbage line stays cheap).
pub const MAX_WORDS: usize = 64;

/// One parsed Runtime API command. Argument errors HAProxy detects before looking anything up
/// are already resolved here into [`AdminCommand::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `help [words...]`.
    Help(Vec<String>),
    /// `prompt`: toggles interactive mode.
    Prompt,
    /// `quit`.
    Quit,
    /// `show info [typed|json]`.
    ShowInfo(Format),
    /// `show stat ...`.
    ShowStat(StatQuery),
    /// `show servers state [backend]`.
    ShowServersState(Option<String>),
    /// `show backend`.
    ShowBackend,
    /// `show cli level`.
    ShowCliLevel,
    /// `show version`.
    ShowVersion,
    /// `get weight <b>/<s>`.
    GetWeight(String),
    /// `set weight <b>/<s> <w>` and `set server <b>/<s> weight <w>`.
    SetWeight {
        /// `backend/server`.
        server: String,
        /// The weight as typed.
        weight: String,
    },
    /// `set server <b>/<s> state ready|drain|maint`.
    SetState {
        /// `backend/server`.
        server: String,
        /// The state word.
        state: String,
    },
    /// `set server <b>/<s> health up|stopping|down`.
    SetHealth {
        /// `backend/server`.
        server: String,
        /// The health word.
        health: String,
    },
    /// `set server <b>/<s> agent up|down`.
    SetAgent {
        /// `backend/server`.
        server: String,
        /// The agent word.
        agent: String,
    },
    /// `set server <b>/<s> addr <ip> [port <p>]`.
    SetAddr {
        /// `backend/server`.
        server: String,
        /// The address as typed (empty when missing).
        addr: String,
        /// The port as typed.
        port: Option<String>,
    },
    /// `set maxconn server <b>/<s> <n>`.
    SetMaxconn {
        /// `backend/server`.
        server: String,
        /// The value as typed (empty when missing).
        value: String,
    },
    /// `enable server` (`true`) / `disable server` (`false`).
    EnableServer(String, bool),
    /// `enable health` / `disable health`.
    EnableHealth(String, bool),
    /// `enable agent` / `disable agent`.
    EnableAgent(String, bool),
    /// `add server <b>/<s> <addr> [keywords]`.
    AddServer {
        /// `backend/server`.
        server: String,
        /// The remaining words (address first).
        args: Vec<String>,
    },
    /// `add server help`.
    AddServerHelp,
    /// `del server <b>/<s>`.
    DelServer(String),
    /// `shutdown sessions server <b>/<s>`.
    ShutdownSessions(String),
    /// `operator` / `user`: lower the session level.
    Lower(AccessLevel),
    /// `echo <text>`.
    Echo(String),
    /// An argument error to print as is.
    Error(String),
    /// Not a known command: reply with close matches (HAProxy's `Unknown command`).
    Unknown(Vec<String>),
    /// An empty command (nothing to do, no reply).
    Empty,
}

/// Output format of `show info` / `show stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `Name: value` lines / CSV.
    #[default]
    Plain,
    /// `typed`.
    Typed,
    /// `json`.
    Json,
}

/// Arguments of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatQuery {
    /// Output format.
    pub format: Format,
    /// Proxy filter: `None` = all, else an iid or a name (`-1` = all).
    pub proxy: Option<String>,
    /// Type mask: 1 frontend, 2 backend, 4 server.
    pub types: u32,
    /// Server id filter (`None` = all).
    pub sid: Option<u32>,
    /// `up`: only servers that are up.
    pub up_only: bool,
    /// `no-maint`: skip servers in maintenance.
    pub no_maint: bool,
}

impl Default for StatQuery {
    fn default() -> Self {
        StatQuery {
            format: Format::Plain,
            proxy: None,
            types: 7,
            sid: None,
            up_only: false,
            no_maint: false,
        }
    }
}

impl AdminCommand {
    /// The level a session needs to run this command (HAProxy checks it in each handler).
    pub fn level(&self) -> AccessLevel {
        use AdminCommand::*;
        match self {
            SetWeight { .. }
            | SetState { .. }
            | SetHealth { .. }
            | SetAgent { .. }
            | SetAddr { .. }
            | SetMaxconn { .. }
            | EnableServer(..)
            | EnableHealth(..)
            | EnableAgent(..)
            | AddServer { .. }
            | DelServer(_)
            | ShutdownSessions(_) => AccessLevel::Admin,
            _ => AccessLevel::User,
        }
    }
}

/// Splits one input line into commands and words (bounded at [`MAX_WORDS`] per command).
pub fn split_line(line: &[u8]) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(line);
    let mut cmds = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            ' ' | '\t' | '\r' => {
                if in_word {
                    push_word(&mut words, &mut cur);
                    in_word = false;
                }
            }
            ';' => {
                if in_word {
                    push_word(&mut words, &mut cur);
                    in_word = false;
                }
                cmds.push(std::mem::take(&mut words));
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        push_word(&mut words, &mut cur);
    }
    cmds.push(words);
    cmds
}

fn push_word(words: &mut Vec<String>, cur: &mut String) {
    let w = std::mem::take(cur);
    if words.len() < MAX_WORDS {
        words.push(w);
    }
}

fn arg(words: &[String], i: usize) -> String {
    words.get(i).cloned().unwrap_or_default()
}

/// Parses one command's words.
pub fn parse(words: &[String]) -> AdminCommand {
    use AdminCommand as C;
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let unknown = || C::Unknown(words.to_vec());
    match w.as_slice() {
        [] => C::Empty,
        ["help", rest @ ..] => C::Help(rest.iter().map(|s| s.to_string()).collect()),
        ["prompt", ..] => C::Prompt,
        ["quit", ..] => C::Quit,
        ["operator", ..] => C::Lower(AccessLevel::Operator),
        ["user", ..] => C::Lower(AccessLevel::User),
        ["echo", rest @ ..] => C::Echo(rest.join(" ")),
        ["show", "info", rest @ ..] => C::ShowInfo(format_of(rest)),
        ["show", "stat", rest @ ..] => parse_show_stat(rest),
        ["show", "servers", "state", rest @ ..] => {
            C::ShowServersState(rest.first().map(|s| s.to_string()))
        }
        ["show", "backend", ..] => C::ShowBackend,
        ["show", "cli", "level", ..] => C::ShowCliLevel,
        ["show", "version", ..] => C::ShowVersion,
        ["get", "weight", ..] => C::GetWeight(arg(words, 2)),
        ["set", "weight", ..] => {
            if w.len() < 4 {
                C::Error("Require 'backend/server' and 'weight' or 'weight%'.".into())
            } else {
                C::SetWeight {
                    server: arg(words, 2),
                    weight: arg(words, 3),
                }
            }
        }
        ["set", "maxconn", "server", ..] => C::SetMaxconn {
            server: arg(words, 3),
            value: arg(words, 4),
        },
        ["set", "server", ..] => parse_set_server(words),
        ["enable", what @ ("server" | "health" | "agent"), ..]
        | ["disable", what @ ("server" | "health" | "agent"), ..] => {
            let on = w[0] == "enable";
            let s = arg(words, 2);
            match *what {
                "server" => C::EnableServer(s, on),
                "health" => C::EnableHealth(s, on),
                _ => C::EnableAgent(s, on),
            }
        }
        ["add", "server", "help", ..] => C::AddServerHelp,
        ["add", "server", ..] => C::AddServer {
            server: arg(words, 2),
            args: words.iter().skip(3).cloned().collect(),
        },
        ["del", "server", ..] => C::DelServer(arg(words, 2)),
        ["shutdown", "sessions", "server", ..] => C::ShutdownSessions(arg(words, 3)),
        _ => unknown(),
    }
}

fn format_of(rest: &[&str]) -> Format {
    let mut f = Format::Plain;
    for w in rest {
        match *w {
            "typed" => f = Format::Typed,
            "json" => f = Format::Json,
            _ => {}
        }
    }
    f
}

fn parse_show_stat(rest: &[&str]) -> AdminCommand {
    let mut q = StatQuery::default();
    let mut i = 0;
    // `show stat <iid|name> <type> <sid>`: the three positional words come first.
    if rest.len() >= 3 && !is_stat_option(rest[0]) {
        q.proxy = match rest[0] {
            "-1" => None,
            p => Some(p.to_string()),
        };
        q.types = match rest[1].parse::<i64>() {
            Ok(-1) => 7,
            Ok(t) if t >= 0 => (t as u32) & 7,
            _ => return AdminCommand::Error("Invalid type.".into()),
        };
        q.sid = match rest[2].parse::<i64>() {
            Ok(-1) => None,
            Ok(s) if s >= 0 => Some(s as u32),
            _ => return AdminCommand::Error("Invalid server id.".into()),
        };
        i = 3;
    }
    for w in &rest[i..] {
        match *w {
            "typed" => q.format = Format::Typed,
            "json" => q.format = Format::Json,
            "up" => q.up_only = true,
            "no-maint" => q.no_maint = true,
            _ => {}
        }
    }
    AdminCommand::ShowStat(q)
}

fn is_stat_option(w: &str) -> bool {
    matches!(w, "typed" | "json" | "up" | "no-maint" | "desc")
}

fn parse_set_server(words: &[String]) -> AdminCommand {
    use AdminCommand as C;
    let server = arg(words, 2);
    let what = arg(words, 3);
    let val = arg(words, 4);
    match what.as_str() {
        "state" => C::SetState { server, state: val },
        "health" => C::SetHealth {
            server,
            health: val,
        },
        "agent" => C::SetAgent { server, agent: val },
        "weight" => C::SetWeight {
            server,
            weight: val,
        },
        "addr" => {
            let port = if words.get(5).map(String::as_str) == Some("port") {
                Some(arg(words, 6))
            } else {
                None
            };
            C::SetAddr {
                server,
                addr: val,
                port,
            }
        }
        _ => C::Error(
            "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | \
             agent-send | check-addr | check-port | fqdn | health | ssl | state | weight"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> AdminCommand {
        parse(&split_line(line.as_bytes())[0])
    }

    #[test]
    fn splits_commands_words_and_escapes() {
        let c = split_line(b"show info; get weight a/b ;echo a\\;b\\ c");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], vec!["show", "info"]);
        assert_eq!(c[1], vec!["get", "weight", "a/b"]);
        assert_eq!(c[2], vec!["echo", "a;b c"]);
        assert_eq!(split_line(b"  \t ")[0], Vec::<String>::new());
        let many = "x ".repeat(1000);
        assert_eq!(split_line(many.as_bytes())[0].len(), MAX_WORDS);
    }

    #[test]
    fn table() {
        use AdminCommand as C;
        let cases: Vec<(&str, AdminCommand)> = vec![
            ("", C::Empty),
            ("help", C::Help(vec![])),
            ("show info typed", C::ShowInfo(Format::Typed)),
            ("show info", C::ShowInfo(Format::Plain)),
            ("show servers state", C::ShowServersState(None)),
            (
                "show servers state b",
                C::ShowServersState(Some("b".into())),
            ),
            ("show backend", C::ShowBackend),
            ("get weight b/s", C::GetWeight("b/s".into())),
            ("get weight", C::GetWeight(String::new())),
            (
                "set weight b/s 10%",
                C::SetWeight {
                    server: "b/s".into(),
                    weight: "10%".into(),
                },
            ),
            (
                "set weight b/s",
                C::Error("Require 'backend/server' and 'weight' or 'weight%'.".into()),
            ),
            (
                "set server b/s state maint",
                C::SetState {
                    server: "b/s".into(),
                    state: "maint".into(),
                },
            ),
            (
                "set server b/s health",
                C::SetHealth {
                    server: "b/s".into(),
                    health: String::new(),
                },
            ),
            (
                "set server b/s addr 1.2.3.4 port 80",
                C::SetAddr {
                    server: "b/s".into(),
                    addr: "1.2.3.4".into(),
                    port: Some("80".into()),
                },
            ),
            ("enable server b/s", C::EnableServer("b/s".into(), true)),
            ("disable health b/s", C::EnableHealth("b/s".into(), false)),
            ("disable agent b/s", C::EnableAgent("b/s".into(), false)),
            ("add server help", C::AddServerHelp),
            (
                "add server b/s 127.0.0.1:80 weight 3",
                C::AddServer {
                    server: "b/s".into(),
                    args: vec!["127.0.0.1:80".into(), "weight".into(), "3".into()],
                },
            ),
            ("del server b/s", C::DelServer("b/s".into())),
            (
                "shutdown sessions server b/s",
                C::ShutdownSessions("b/s".into()),
            ),
            ("operator", C::Lower(AccessLevel::Operator)),
            ("echo hello  world", C::Echo("hello world".into())),
            ("frobnicate", C::Unknown(vec!["frobnicate".into()])),
            (
                "show nothing",
                C::Unknown(vec!["show".into(), "nothing".into()]),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(p(line), want, "{line}");
        }
        assert!(
            matches!(p("set server b/s bogus"), C::Error(e) if e.starts_with("usage: set server"))
        );
    }

    #[test]
    fn show_stat_filters() {
        let AdminCommand::ShowStat(q) = p("show stat 3 4 -1 typed up") else {
            panic!()
        };
        assert_eq!(q.proxy.as_deref(), Some("3"));
        assert_eq!(
            (q.types, q.sid, q.format, q.up_only),
            (4, None, Format::Typed, true)
        );
        let AdminCommand::ShowStat(q) = p("show stat json no-maint") else {
            panic!()
        };
        assert_eq!((q.types, q.format, q.no_maint), (7, Format::Json, true));
        assert!(matches!(p("show stat x y z"), AdminCommand::Error(_)));
    }

    #[test]
    fn levels() {
        assert_eq!(p("show stat").level(), AccessLevel::User);
        assert_eq!(p("set server a/b state maint").level(), AccessLevel::Admin);
        assert_eq!(p("add server a/b 1.2.3.4:5").level(), AccessLevel::Admin);
    }
}
