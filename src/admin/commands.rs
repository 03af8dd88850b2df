//! Executes parsed Runtime API commands against the model. Every change goes through
//! `Registry::apply` with `Cause::Cli`, so events and log lines are those of any other source.

use std::net::IpAddr;
use std::sync::Arc;

use super::parse::AdminCommand;
use super::{help, render, InfoHook};
use crate::config::AccessLevel;
use crate::model::{AdminAction, Cause, Command, ForcedHealth, Registry, Server};

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on.
    Continue,
    /// Toggle interactive mode.
    TogglePrompt,
    /// Close the connection.
    Quit,
}

/// The per-connection state commands read and change.
#[derive(Debug, Clone, Copy)]
pub struct SessionCtx {
    /// Current access level (lowered by `operator`/`user`).
    pub level: AccessLevel,
}

/// Keywords `add server` accepts (HAProxy's list, restricted to what harp's parser supports).
const ADD_SERVER_KEYWORDS: &[&str] = &[
    "backup",
    "disabled",
    "id",
    "maxconn",
    "maxqueue",
    "no-backup",
    "on-marked-down",
    "slowstart",
    "weight",
    "addr",
    "check",
    "rise",
    "fall",
    "inter",
    "fastinter",
    "downinter",
    "port",
];

/// Runs one command; returns the reply text (each line ending with `\n`, possibly empty) and
/// what to do next.
pub fn execute(
    reg: &Registry,
    info: &InfoHook,
    ctx: &mut SessionCtx,
    cmd: AdminCommand,
) -> (String, Next) {
    use AdminCommand as C;
    if cmd.level() > ctx.level {
        return ("Permission denied\n".into(), Next::Continue);
    }
    let reply = match cmd {
        C::Empty => String::new(),
        C::Help(words) => help::help(&words),
        C::Unknown(words) => help::unknown(&words),
        C::Prompt => return (String::new(), Next::TogglePrompt),
        C::Quit => return (String::new(), Next::Quit),
        C::Lower(l) => {
            if l > ctx.level {
                "Permission denied\n".into()
            } else {
                ctx.level = l;
                String::new()
            }
        }
        C::Echo(t) => format!("{t}\n"),
        C::ShowCliLevel => format!(
            "{}\n",
            match ctx.level {
                AccessLevel::User => "user",
                AccessLevel::Operator => "operator",
                AccessLevel::Admin => "admin",
            }
        ),
        C::ShowVersion => format!("{}\n", env!("CARGO_PKG_VERSION")),
        C::ShowInfo(f) => render::show_info(reg, info(), f),
        C::ShowStat(q) => render::show_stat(reg, &q).unwrap_or_else(|e| format!("{e}\n")),
        C::ShowServersState(b) => {
            render::servers_state(reg, b.as_deref()).unwrap_or_else(|e| format!("{e}\n"))
        }
        C::ShowBackend => render::show_backend(reg),
        C::Error(e) => format!("{e}\n"),
        C::GetWeight(s) => match find(reg, &s) {
            Ok(s) => format!("{} (initial {})\n", s.uweight(), s.iweight()),
            Err(e) => e,
        },
        C::SetWeight { server, weight } => {
            with_server(reg, &server, |s| Command::SetWeight { server: s, weight })
        }
        C::SetState { server, state } => {
            let action = match state.as_str() {
                "ready" => Some(AdminAction::Ready),
                "drain" => Some(AdminAction::Drain),
                "maint" => Some(AdminAction::Maint),
                _ => None,
            };
            match (find(reg, &server), action) {
                (Err(e), _) => e,
                (Ok(_), None) => {
                    "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into()
                }
                (Ok(s), Some(action)) => apply(
                    reg,
                    Command::SetAdmin {
                        server: s,
                        action,
                        cause: Cause::Cli,
                    },
                ),
            }
        }
        C::SetHealth { server, health } => {
            let h = match health.as_str() {
                "up" => Some(ForcedHealth::Up),
                "stopping" => Some(ForcedHealth::Stopping),
                "down" => Some(ForcedHealth::Down),
                _ => None,
            };
            match (find(reg, &server), h) {
                (Err(e), _) => e,
                (Ok(_), None) => {
                    "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n".into()
                }
                (Ok(s), Some(health)) => apply(
                    reg,
                    Command::SetHealth {
                        server: s,
                        health,
                        cause: Cause::Cli,
                    },
                ),
            }
        }
        // harp has no agent checks: HAProxy's reply for a server without one.
        C::SetAgent { server, .. } => match find(reg, &server) {
            Ok(_) => "agent checks are not enabled on this server.\n".into(),
            Err(e) => e,
        },
        C::EnableAgent(server, on) => match find(reg, &server) {
            Ok(_) if on => "Agent was not configured on this server, cannot enable.\n".into(),
            Ok(_) => String::new(),
            Err(e) => e,
        },
        C::SetAddr { server, addr, port } => match find(reg, &server) {
            Err(e) => e,
            Ok(s) => set_addr(reg, s, &server, &addr, port.as_deref()),
        },
        C::SetMaxconn { server, value } => match find(reg, &server) {
            Err(e) => e,
            Ok(s) => match value.parse::<u32>() {
                Ok(v) if v <= i32::MAX as u32 => apply(
                    reg,
                    Command::SetMaxconn {
                        server: s,
                        maxconn: v,
                    },
                ),
                _ => "'set maxconn server' expects an integer parameter.\n".into(),
            },
        },
        C::EnableServer(server, on) => with_server(reg, &server, |s| Command::SetAdmin {
            server: s,
            action: if on {
                AdminAction::Ready
            } else {
                AdminAction::Maint
            },
            cause: Cause::Cli,
        }),
        C::EnableHealth(server, on) => with_server(reg, &server, |s| Command::SetCheckEnabled {
            server: s,
            enabled: on,
        }),
        C::AddServerHelp => {
            let mut o = String::from("List of keywords supported for dynamic server:\n");
            for k in ADD_SERVER_KEYWORDS {
                o.push_str(k);
                o.push('\n');
            }
            o
        }
        C::AddServer { server, args } => add_server(reg, &server, &args),
        C::DelServer(server) => with_server(reg, &server, |s| Command::DelServer { server: s }),
        C::ShutdownSessions(server) => {
            with_server(reg, &server, |s| Command::ShutdownSessions { server: s })
        }
    };
    (reply, Next::Continue)
}

/// `backend/server` lookup with HAProxy's error replies.
fn find(reg: &Registry, path: &str) -> Result<Arc<Server>, String> {
    if path.is_empty() {
        return Err("Require 'backend/server'.\n".into());
    }
    if let Some((b, _)) = path.split_once('/') {
        if reg.backend(b).is_some_and(|p| p.config.disabled) {
            return Err("Proxy is disabled.\n".into());
        }
    }
    reg.find_server(path).map_err(|e| format!("{e}\n"))
}

fn apply(reg: &Registry, cmd: Command) -> String {
    match reg.apply(cmd) {
        Ok(o) if o.message.is_empty() => String::new(),
        Ok(o) => format!("{}\n", o.message),
        Err(e) => format!("{e}\n"),
    }
}

fn with_server(reg: &Registry, path: &str, make: impl FnOnce(Arc<Server>) -> Command) -> String {
    match find(reg, path) {
        Ok(s) => apply(reg, make(s)),
        Err(e) => e,
    }
}

fn set_addr(reg: &Registry, s: Arc<Server>, path: &str, addr: &str, port: Option<&str>) -> String {
    if addr.is_empty() {
        return format!("set server {path} addr requires an address and optionally a port.\n");
    }
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return format!("Invalid addr '{addr}'\n");
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(v) if v > 0 => Some(v),
            _ => return format!("Invalid port '{p}'\n"),
        },
    };
    apply(
        reg,
        Command::SetAddr {
            server: s,
            ip,
            port,
            cause: Cause::Cli,
        },
    )
}

fn add_server(reg: &Registry, path: &str, args: &[String]) -> String {
    let Some((b, name)) = path.split_once('/').filter(|(_, n)| !n.is_empty()) else {
        return "Require 'backend/server'.\n".into();
    };
    let Some(p) = reg.backend(b) else {
        return "No such backend.\n".into();
    };
    if !p.config.balance.is_dynamic() {
        return "Backend must use a dynamic load balancing to support dynamic servers.\n".into();
    }
    let config = match crate::config::parse_server_args(name, args, &p.config.default_server) {
        Ok(c) => c,
        Err(e) => return format!("{e}\n"),
    };
    apply(
        reg,
        Command::AddServer {
            backend: b.to_string(),
            config,
        },
    )
}
