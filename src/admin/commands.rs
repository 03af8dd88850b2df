//! Executes parsed Runtime API commands against the model, replying in HAProxy's words.
//!
//! Every state change goes through [`Registry::apply`] with [`Cause::Cli`], so the CLI produces
//! the same events and log lines as checks and Lua.

use std::net::IpAddr;
use std::sync::Arc;

use super::help;
use super::parse::{AdminCommand, PatOp, SetServer};
use super::patterns;
use super::render::{self, StatOptions};
use super::table;
use super::vars;
use super::InfoHook;
use crate::config::AccessLevel;
use crate::model::{AdminAction, Cause, Command, ForcedHealth, Registry, Server};

/// Per-connection state a command may read or change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    /// Current level (starts at the socket's level; `operator`/`user` lower it).
    pub level: AccessLevel,
    /// Interactive mode (`prompt`).
    pub interactive: bool,
    /// `experimental-mode on`: experimental commands (`set var`) may run.
    pub experimental: bool,
}

/// What the session must do after a command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Text to send (each line ends with `\n`; the session adds the blank terminator line).
    pub text: String,
    /// Close the connection after sending (`quit`).
    pub close: bool,
}

impl Reply {
    fn text(t: impl Into<String>) -> Reply {
        Reply {
            text: t.into(),
            close: false,
        }
    }

    /// A one-line message (adds the newline).
    fn line(t: impl AsRef<str>) -> Reply {
        let t = t.as_ref();
        if t.is_empty() {
            Reply::default()
        } else {
            Reply::text(format!("{t}\n"))
        }
    }
}

const PERMISSION_DENIED: &str = "Permission denied\n";

/// Runs commands for sessions; shared by every connection.
pub struct Executor {
    reg: Arc<Registry>,
    info: InfoHook,
    /// The open `set ssl cert` transaction (one at a time, process-wide, as in HAProxy).
    ssl_tx: std::sync::Mutex<Option<super::ssl::CertTx>>,
}

/// A Runtime API connection as counted in `show info` (`CumConns`, `CumReq`, `Jobs`), for as
/// long as it is open.
pub struct CliConnection<'a>(&'a Registry);

impl Drop for CliConnection<'_> {
    fn drop(&mut self) {
        let g = &self.0.counters;
        g.cli_conns
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Executor {
    /// Counts a Runtime API connection, as HAProxy counts its CLI sessions: in the cumulated
    /// connections and streams, and among the jobs while it is open.
    pub fn count_connection(&self) -> CliConnection<'_> {
        let g = &self.reg.counters;
        let r = std::sync::atomic::Ordering::Relaxed;
        g.cum_conns.fetch_add(1, r);
        g.cum_req.fetch_add(1, r);
        g.cli_conns.fetch_add(1, r);
        CliConnection(&self.reg)
    }

    /// An executor over the registry, with `show info` extras from `info`.
    pub fn new(reg: Arc<Registry>, info: InfoHook) -> Executor {
        Executor {
            reg,
            info,
            ssl_tx: std::sync::Mutex::new(None),
        }
    }

    fn find(&self, path: &str) -> Result<Arc<Server>, Reply> {
        if path.is_empty() {
            return Err(Reply::line("Require 'backend/server'."));
        }
        self.reg
            .find_server(path)
            .map_err(|e| Reply::line(e.to_string()))
    }

    fn apply(&self, cmd: Command) -> Reply {
        match self.reg.apply(cmd) {
            Ok(o) => Reply::line(o.message),
            Err(e) => Reply::line(e.0),
        }
    }

    /// Starts a command another module registered (Lua's `core.register_cli`) when `cmd` names
    /// one: its reply comes on the receiver. Any level may run them, as in HAProxy.
    pub fn extension_call(
        &self,
        cmd: &AdminCommand,
    ) -> Option<tokio::sync::oneshot::Receiver<String>> {
        match cmd {
            AdminCommand::Unknown(words) => self.info.call(words),
            _ => None,
        }
    }

    /// Runs one command for a session.
    pub fn execute(&self, cmd: AdminCommand, st: &mut SessionState) -> Reply {
        match run(self, cmd, st) {
            Ok(r) | Err(r) => r,
        }
    }
}

/// What `show events <sink> [-w] [-n]` asks, read as HAProxy reads it: the sink first,
/// then only `-w`, `-n`, `-nw`, `-wn` (and 3.2's `-0`). `Ok(None)`: no sink (the list);
/// `Err`: the reply that refuses it.
pub(crate) struct EventsArgs {
    /// The ring.
    pub ring: std::sync::Arc<crate::logging::ring::Ring>,
    /// `-w`: follow it.
    pub wait: bool,
    /// `-n`: none of the lines held.
    pub new_only: bool,
}

pub(crate) fn events_args(args: &[String]) -> Result<Option<EventsArgs>, &'static str> {
    let Some(sink) = args.first() else {
        return Ok(None);
    };
    let ring = match crate::logging::ring::find(sink) {
        Some(r) => r,
        None if sink == "stdout" || sink == "stderr" => {
            return Err("Nothing to report for this sink")
        }
        // HAProxy's message has no newline of its own: only the terminator follows
        None => return Err("No such event sink"),
    };
    let (mut wait, mut new_only) = (false, false);
    for a in &args[1..] {
        match a.as_str() {
            "-w" => wait = true,
            "-n" => new_only = true,
            "-nw" | "-wn" => (wait, new_only) = (true, true),
            "-0" => {}
            _ => return Err("unknown option"),
        }
    }
    Ok(Some(EventsArgs {
        ring,
        wait,
        new_only,
    }))
}

/// `show events`: the sinks (any level), or a ring's lines (operator and up); `-n` shows
/// none of those held. `-w` (follow) is the session's own (`session::follow`).
fn show_events(args: &[String], st: &SessionState) -> Result<Reply, Reply> {
    use crate::logging::ring;
    let ev = match events_args(args) {
        Err(msg) => return Ok(Reply::text(msg)),
        Ok(Some(ev)) => ev,
        Ok(None) => {
            let mut out = String::from(
                "Supported events sinks are listed below. Add -w(wait), -n(new). Any key to stop\n",
            );
            out.push_str("    stdout     : type=fd, 0 dropped, standard output (fd#1)\n");
            out.push_str("    stderr     : type=fd, 0 dropped, standard output (fd#2)\n");
            for r in ring::all() {
                out.push_str(&format!(
                    "    {:<10} : type=buffer, {} dropped, {}\n",
                    r.name,
                    r.dropped(),
                    r.description
                ));
            }
            return Ok(Reply::text(out));
        }
    };
    need(st, AccessLevel::Operator)?;
    Ok(Reply::text(if ev.new_only {
        String::new()
    } else {
        ev.ring.dump().0
    }))
}

fn need(st: &SessionState, level: AccessLevel) -> Result<(), Reply> {
    if st.level >= level {
        Ok(())
    } else {
        Err(Reply::text(PERMISSION_DENIED))
    }
}

fn run(x: &Executor, cmd: AdminCommand, st: &mut SessionState) -> Result<Reply, Reply> {
    use AccessLevel::{Admin, Operator};
    Ok(match cmd {
        AdminCommand::Help(words) => {
            let mut extra = x.info.usages();
            // experimental commands are listed once the mode is on, as in HAProxy
            if st.experimental && st.level >= Operator {
                extra.push((
                    vec!["set".into(), "var".into()],
                    "set var <name> [fmt|expr] {<fmt>|<expr>}: set variable from an expression or a format".into(),
                ));
            }
            Reply::text(help::help(st.level, &words, &extra))
        }
        AdminCommand::Prompt => {
            st.interactive = !st.interactive;
            Reply::default()
        }
        AdminCommand::Quit => Reply {
            text: String::new(),
            close: true,
        },
        AdminCommand::Echo(t) => Reply::text(format!("{t}\n")),
        AdminCommand::SetLevel(l) => {
            need(st, l)?;
            st.level = l;
            Reply::default()
        }
        AdminCommand::ExperimentalMode(arg) => {
            need(st, Admin)?;
            match arg.as_deref() {
                None => Reply::line(if st.experimental {
                    "experimental-mode is ON"
                } else {
                    "experimental-mode is OFF"
                }),
                Some("on") => {
                    st.experimental = true;
                    Reply::default()
                }
                // anything but `on` turns it off, silently, as in HAProxy
                Some(_) => {
                    st.experimental = false;
                    Reply::default()
                }
            }
        }
        AdminCommand::SslCert(verb, args, payload) => {
            use super::parse::SslVerb;
            need(
                st,
                if verb == SslVerb::Show {
                    Operator
                } else {
                    AccessLevel::Admin
                },
            )?;
            let mut tx = x.ssl_tx.lock().unwrap_or_else(|e| e.into_inner());
            Reply::text(match verb {
                SslVerb::Show => super::ssl::show(&x.reg, &tx, &args),
                SslVerb::Set => super::ssl::set(&x.reg, &mut tx, &args, payload.as_deref()),
                SslVerb::Commit => super::ssl::commit(&x.reg, &mut tx, &args),
                SslVerb::Abort => super::ssl::abort(&mut tx, &args),
            })
        }
        AdminCommand::GetVar(words) => {
            need(st, Operator)?;
            Reply::text(vars::get(&x.reg, &words))
        }
        AdminCommand::SetVar(words) => {
            if !st.experimental {
                return Err(Reply::text(
                    "This command is restricted to experimental mode only.\n",
                ));
            }
            need(st, Operator)?;
            Reply::text(vars::set(&x.reg, &words))
        }
        AdminCommand::ShowCliLevel => Reply::line(match st.level {
            AccessLevel::Admin => "admin",
            AccessLevel::Operator => "operator",
            AccessLevel::User => "user",
        }),
        AdminCommand::ShowInfo(format) => {
            let extra = x.info.info();
            Reply::text(render::show_info(&x.reg, &extra, format))
        }
        AdminCommand::ShowStat {
            filter,
            format,
            up,
            no_maint,
        } => {
            let o = StatOptions {
                filter,
                format,
                up,
                no_maint,
            };
            match render::show_stat(&x.reg, &o) {
                Ok(t) => Reply::text(t),
                Err(e) => Reply::line(e),
            }
        }
        AdminCommand::ShowServersState(b) => match render::servers_state(&x.reg, b.as_deref()) {
            Ok(t) => Reply::text(t),
            Err(e) => Reply::line(e),
        },
        AdminCommand::ShowBackend => Reply::text(render::show_backend(&x.reg)),
        AdminCommand::ShowVersion => Reply::line(env!("CARGO_PKG_VERSION")),
        AdminCommand::ShowEvents(args) => show_events(&args, st)?,
        AdminCommand::Table(op, args) => Reply::text(table::run(&x.reg, op, &args, st.level)),
        AdminCommand::Patterns(kind, op, args, payload) => match op {
            PatOp::Show => Reply::text(patterns::show(&x.reg, kind, &args)),
            PatOp::Get => Reply::text(patterns::get(&x.reg, kind, &args)),
            PatOp::Add => {
                need(st, AccessLevel::Operator)?;
                Reply::line(patterns::add(&x.reg, kind, &args, payload.as_deref()))
            }
            PatOp::Set => {
                need(st, AccessLevel::Operator)?;
                Reply::line(patterns::set(&x.reg, &args))
            }
            PatOp::Del => {
                need(st, AccessLevel::Operator)?;
                Reply::line(patterns::del(&x.reg, kind, &args))
            }
            PatOp::Clear => {
                need(st, AccessLevel::Operator)?;
                Reply::line(patterns::clear(&x.reg, kind, &args))
            }
            PatOp::Prepare => {
                need(st, AccessLevel::Operator)?;
                Reply::text(patterns::prepare(&x.reg, kind, &args))
            }
            PatOp::Commit => {
                need(st, AccessLevel::Operator)?;
                Reply::line(patterns::commit(&x.reg, kind, &args))
            }
        },
        AdminCommand::ClearCounters(all) => {
            // as HAProxy: the maxima need `operator`, everything `admin`
            need(st, if all { Admin } else { Operator })?;
            x.reg.clear_counters(all);
            Reply::default()
        }
        AdminCommand::GetWeight(path) => {
            let s = x.find(&path)?;
            Reply::line(format!("{} (initial {})", s.uweight(), s.iweight()))
        }
        AdminCommand::SetWeight(path, w) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            let weight = w;
            x.apply(Command::SetWeight { server: s, weight })
        }
        AdminCommand::SetServer(path, what) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            set_server(x, s, what)
        }
        AdminCommand::SetMaxconnServer(path, v) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            let n = crate::model::parse_maxconn(&v).map_err(Reply::line)?;
            x.apply(Command::SetMaxconn {
                server: s,
                maxconn: n,
            })
        }
        // HAProxy's `cli_parse_set_maxconn_frontend|global`: values read as `atoi` reads them
        AdminCommand::SetMaxconnFrontend(name, v) => {
            need(st, Admin)?;
            let fe = find_frontend(x, &name)?;
            if v.is_empty() {
                return Ok(Reply::line("Integer value expected."));
            }
            // 0 is a limit too: the frontend then accepts nothing until it is raised
            match u32::try_from(atoi(&v)) {
                Ok(n) => {
                    fe.set_maxconn(n);
                    Reply::default()
                }
                Err(_) => Reply::line("Value out of range."),
            }
        }
        AdminCommand::SetMaxconnGlobal(v) => {
            need(st, Admin)?;
            if v.is_empty() {
                return Ok(Reply::line("Expects an integer value."));
            }
            match x.reg.set_maxconn(atoi(&v)) {
                Ok(()) => Reply::default(),
                Err(e) => Reply::line(e),
            }
        }
        // HAProxy's `cli_parse_disable|enable|shutdown_frontend` (2.6's replies, watched)
        AdminCommand::EnableFrontend(name, on) => {
            need(st, Admin)?;
            let fe = find_frontend(x, &name)?;
            let done = if on {
                x.reg.resume_frontend(&fe)
            } else {
                x.reg.pause_frontend(&fe)
            };
            Reply::line(done.err().unwrap_or_default())
        }
        AdminCommand::ShutdownFrontend(name) => {
            need(st, Admin)?;
            let fe = find_frontend(x, &name)?;
            Reply::line(x.reg.stop_frontend(&fe).err().unwrap_or_default())
        }
        // HAProxy's `cli_parse_set_ratelimit`; harp has no TLS sessions nor compression to
        // limit, so those two limits only show in `show info`
        AdminCommand::SetRateLimit(what, scope, v) => {
            need(st, Admin)?;
            use crate::model::RateLimit;
            let which = match (what.as_str(), scope.as_str()) {
                ("connections", "global") => RateLimit::Connections,
                ("sessions", "global") => RateLimit::Sessions,
                ("ssl-sessions", "global") => RateLimit::SslSessions,
                ("http-compression", "global") => RateLimit::Compression,
                _ => {
                    return Ok(Reply::text(
                        "'set rate-limit' only supports :\n\
                         \x20  - 'connections global' to set the per-process maximum connection rate\n\
                         \x20  - 'sessions global' to set the per-process maximum session rate\n\
                         \x20  - 'ssl-sessions global' to set the per-process maximum SSL session rate\n\
                         \x20  - 'http-compression global' to set the per-process maximum compression speed in kB/s\n",
                    ))
                }
            };
            if v.is_empty() {
                return Ok(Reply::line("Expects an integer value."));
            }
            let n = atoi(&v);
            if n < 0 {
                return Ok(Reply::line("Value out of range."));
            }
            x.reg.set_rate_limit(which, n as u64);
            Reply::default()
        }
        AdminCommand::SetMaxconnOther => {
            need(st, Admin)?;
            Reply::line("'set maxconn' only supports 'frontend', 'server', and 'global'.")
        }
        AdminCommand::EnableServer(path, on) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            x.apply(Command::SetAdmin {
                server: s,
                action: if on {
                    AdminAction::Ready
                } else {
                    AdminAction::Maint
                },
                cause: Cause::Cli,
            })
        }
        AdminCommand::EnableHealth(path, on) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            x.apply(Command::SetCheckEnabled {
                server: s,
                enabled: on,
            })
        }
        AdminCommand::EnableAgent(path, on) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            x.apply(Command::SetAgentEnabled {
                server: s,
                enabled: on,
            })
        }
        AdminCommand::AddServerHelp => {
            need(st, Admin)?;
            Reply::text(help::add_server_help())
        }
        AdminCommand::AddServer(path, words) => {
            need(st, Admin)?;
            add_server(x, &path, &words)
        }
        AdminCommand::DelServer(path) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            x.apply(Command::DelServer { server: s })
        }
        AdminCommand::ShutdownSessions(path) => {
            need(st, Admin)?;
            let s = x.find(&path)?;
            x.apply(Command::ShutdownSessions { server: s })
        }
        AdminCommand::Unknown(words) => {
            Reply::text(help::unknown(st.level, &words, &x.info.usages()))
        }
    })
}

/// HAProxy's `cli_find_frontend`: the frontend a command names, or its refusal.
fn find_frontend(x: &Executor, name: &str) -> Result<Arc<crate::model::Proxy>, Reply> {
    if name.is_empty() {
        return Err(Reply::line("A frontend name is expected."));
    }
    x.reg
        .frontend(name)
        .cloned()
        .ok_or_else(|| Reply::line("No such frontend."))
}

/// glibc's `atoi`, `(int)strtol(text, NULL, 10)`: leading blanks, a sign, digits up to the
/// first other byte, 0 when none, and a value past 32 bits keeps its low 32 (so
/// `3000000000` reads negative and `4294967296` reads 0, as HAProxy reads them).
fn atoi(text: &str) -> i64 {
    i64::from(crate::model::strtol(text).0.unwrap_or(0) as i32)
}

fn set_server(x: &Executor, s: Arc<Server>, what: SetServer) -> Reply {
    match what {
        SetServer::Weight(weight) => x.apply(Command::SetWeight { server: s, weight }),
        SetServer::State(w) => {
            let action = match w.as_str() {
                "ready" => AdminAction::Ready,
                "drain" => AdminAction::Drain,
                "maint" => AdminAction::Maint,
                _ => {
                    return Reply::line(
                        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.",
                    )
                }
            };
            x.apply(Command::SetAdmin {
                server: s,
                action,
                cause: Cause::Cli,
            })
        }
        SetServer::Health(w) => {
            if s.tracked().is_some() {
                return Reply::line("cannot change health on a tracking server.");
            }
            let health = match w.as_str() {
                "up" => ForcedHealth::Up,
                "stopping" => ForcedHealth::Stopping,
                "down" => ForcedHealth::Down,
                _ => {
                    return Reply::line(
                        "'set server <srv> health' expects 'up', 'stopping', or 'down'.",
                    )
                }
            };
            x.apply(Command::SetHealth {
                server: s,
                health,
                cause: Cause::Cli,
            })
        }
        SetServer::Agent(w) => {
            if !s.agent_enabled() {
                return Reply::line("agent checks are not enabled on this server.");
            }
            let up = match w.as_str() {
                "up" => true,
                "down" => false,
                _ => return Reply::line("'set server <srv> agent' expects 'up' or 'down'."),
            };
            x.apply(Command::SetAgentHealth {
                server: s,
                up,
                cause: Cause::Cli,
            })
        }
        SetServer::AgentAddr { addr, port } => {
            if addr.is_empty() {
                return Reply::line(
                    "set server <b>/<s> agent-addr requires an address and optionally a port.",
                );
            }
            agent_target(x, s, Some(&addr), port.as_deref())
        }
        SetServer::AgentPort(port) => {
            if port.is_empty() {
                return Reply::line("set server <b>/<s> agent-port requires a port.");
            }
            agent_target(x, s, None, Some(&port))
        }
        SetServer::AgentSend(text) => x.apply(Command::SetAgentTarget {
            server: s,
            addr: None,
            port: None,
            send: Some(text),
        }),
        SetServer::Addr { addr, port } => {
            if addr.is_empty() {
                return Reply::line(
                    "set server <b>/<s> addr requires an address and optionally a port.",
                );
            }
            let ip: IpAddr = match addr.parse() {
                Ok(ip) => ip,
                Err(_) => return Reply::line(format!("Invalid addr '{addr}'")),
            };
            let port = match port {
                None => None,
                Some(p) => match p.parse::<u32>() {
                    Ok(v) if (1..=65535).contains(&v) => Some(v as u16),
                    Ok(_) => return Reply::line("provided port is out of range"),
                    Err(_) => return Reply::line("provided port is not an integer"),
                },
            };
            x.apply(Command::SetAddr {
                server: s,
                ip,
                port,
                cause: Cause::Cli,
            })
        }
        SetServer::Other => Reply::line(
            "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight",
        ),
    }
}

/// HAProxy's `srv_update_agent_addr_port`: nothing changes unless every part is valid; its
/// complaints come back without a final period.
fn agent_target(x: &Executor, s: Arc<Server>, addr: Option<&str>, port: Option<&str>) -> Reply {
    if !s.agent_enabled() {
        return Reply::line("agent checks are not enabled on this server");
    }
    let addr = match addr.map(str::parse::<IpAddr>) {
        None => None,
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => return Reply::line(format!("invalid addr '{}'", addr.unwrap_or(""))),
    };
    let port = match port.map(|p| (p, p.trim().parse::<i64>())) {
        None => None,
        Some((_, Err(_))) => return Reply::line("provided port is not an integer"),
        Some((_, Ok(v))) => match u16::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => return Reply::line("provided port is invalid"),
        },
    };
    x.apply(Command::SetAgentTarget {
        server: s,
        addr,
        port,
        send: None,
    })
}

fn add_server(x: &Executor, path: &str, words: &[String]) -> Reply {
    let Some((b, name)) = path.split_once('/') else {
        return Reply::line("Require 'backend/server'.");
    };
    let Some(be) = x.reg.backend(b) else {
        return Reply::line("No such backend.");
    };
    if !be.config.lb_is_dynamic() {
        return Reply::line(
            "Backend must use a dynamic load balancing to support dynamic servers.",
        );
    }
    if name.is_empty() {
        return Reply::line("Require 'backend/server'.");
    }
    let config = match crate::config::parse_server_args(name, words, &be.config.default_server) {
        Ok(c) => c,
        Err(e) => return Reply::line(e),
    };
    let default_verify = x.reg.global().ssl_server_verify;
    if let Some(e) = crate::config::check_ssl_problem(&be.name, &config, default_verify)
        .or_else(|| crate::config::server_ssl_problem(&be.name, &config, default_verify))
    {
        return Reply::line(e);
    }
    x.apply(Command::AddServer {
        backend: b.to_string(),
        config: Box::new(config),
    })
}
