//! Commands: every state change, whatever its source, and the one function that applies them.
//!
//! [`Registry::apply`] takes the writer lock, changes atomics, then publishes events in HAProxy's
//! order (SERVER_ADMIN → SERVER_UP/SERVER_DOWN → SERVER_STATE) and prints HAProxy's log lines.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::check::{CheckReport, CheckResult};
use super::proxy::Proxy;
use super::registry::Registry;
use super::server::Server;
use super::state::{AdminFlags, Cause, OpState};
use crate::config::ServerConfig;
use crate::events::{AdminChange, EventData, EventType, ServerEvent, StateChange};
use crate::logging::{
    self,
    targets::{ALERT, EMERG, NOTICE},
};

/// `set server <b>/<s> state ...` (and `enable/disable server`, Lua `set_maint/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// Enter forced maintenance.
    Maint,
    /// Enter forced drain.
    Drain,
    /// Leave forced maintenance and drain.
    Ready,
}

/// `set server <b>/<s> health ...` (and Lua `check_force_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedHealth {
    /// Force UP (health = rise + fall - 1).
    Up,
    /// Force soft-stop (no new connections).
    Stopping,
    /// Force DOWN (health = 0).
    Down,
}

/// A change to apply to the model.
#[derive(Debug, Clone)]
pub enum Command {
    /// Change admin flags.
    SetAdmin {
        /// Target.
        server: Arc<Server>,
        /// What to do.
        action: AdminAction,
        /// Who asked.
        cause: Cause,
    },
    /// Force the operational health.
    SetHealth {
        /// Target.
        server: Arc<Server>,
        /// What to force.
        health: ForcedHealth,
        /// Who asked.
        cause: Cause,
    },
    /// Change the user weight from a text such as `"50"` or `"50%"`.
    SetWeight {
        /// Target.
        server: Arc<Server>,
        /// The weight as typed.
        weight: String,
    },
    /// Change the address (and optionally the port).
    SetAddr {
        /// Target.
        server: Arc<Server>,
        /// New IP.
        ip: IpAddr,
        /// New port, if given.
        port: Option<u16>,
        /// Who asked.
        cause: Cause,
    },
    /// A run-time resolution of the server's name (`resolvers`): `Ok(ip)` moves the server
    /// there and ends a resolution maintenance; `Err(status)` puts it into one.
    Resolved {
        /// Target.
        server: Arc<Server>,
        /// The address, or why there is none.
        outcome: Result<IpAddr, super::DnsStatus>,
        /// Who answered (`<resolvers>/<nameserver>`).
        by: String,
    },
    /// Change `maxconn`.
    SetMaxconn {
        /// Target.
        server: Arc<Server>,
        /// New limit (0 = none).
        maxconn: u32,
    },
    /// `enable health` / `disable health`.
    SetCheckEnabled {
        /// Target.
        server: Arc<Server>,
        /// On or off.
        enabled: bool,
    },
    /// A health check finished.
    CheckDone {
        /// Target.
        server: Arc<Server>,
        /// What it saw.
        result: CheckResult,
    },
    /// `add server`.
    AddServer {
        /// Backend name.
        backend: String,
        /// Parsed server line (boxed: the other commands are small).
        config: Box<ServerConfig>,
    },
    /// `del server`.
    DelServer {
        /// Target.
        server: Arc<Server>,
    },
    /// `shutdown sessions server`.
    ShutdownSessions {
        /// Target.
        server: Arc<Server>,
    },
    /// Periodic housekeeping: ends finished slowstart ramps.
    Tick,
    /// An agent check finished (`agent-check`).
    AgentDone {
        /// Target.
        server: Arc<Server>,
        /// What the agent said.
        reply: super::agent::AgentReply,
        /// How long the check took, in ms.
        duration_ms: i64,
    },
    /// `enable agent` / `disable agent` (Lua `agent_enable/agent_disable`).
    SetAgentEnabled {
        /// Target.
        server: Arc<Server>,
        /// On or off.
        enabled: bool,
    },
    /// `set server <b>/<s> agent up|down` (Lua `agent_force_up/down`).
    SetAgentHealth {
        /// Target.
        server: Arc<Server>,
        /// Up (health at its top) or down (0).
        up: bool,
        /// Who asked.
        cause: Cause,
    },
    /// `set server <b>/<s> agent-addr|agent-port|agent-send`: where the agent check goes and
    /// what it sends (each `None` stays as it is).
    SetAgentTarget {
        /// Target.
        server: Arc<Server>,
        /// New agent address.
        addr: Option<IpAddr>,
        /// New agent port.
        port: Option<u16>,
        /// New string to send.
        send: Option<String>,
    },
    /// `observe layer4` saw `errors` consecutive connection failures (`error-limit`): the
    /// server's `on-error` applies, as HAProxy's health analyze does.
    PassiveErrors {
        /// Target.
        server: Arc<Server>,
        /// The consecutive errors counted.
        errors: u32,
    },
}

/// A successful command's reply text (empty for most), as the Runtime API prints it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Message for the operator (e.g. `New server registered.`), without trailing newline.
    pub message: String,
    /// The server created by `AddServer`.
    pub server: Option<Arc<Server>>,
}

impl Outcome {
    fn msg(m: impl Into<String>) -> Self {
        Outcome {
            message: m.into(),
            server: None,
        }
    }
}

/// Why a command was refused, with HAProxy's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, ApplyError> {
    Err(ApplyError(m.into()))
}

impl Registry {
    /// Applies one change. All sources (checks, Runtime API, Lua) come through here, so they
    /// behave alike and publish the same events.
    pub fn apply(&self, cmd: Command) -> Result<Outcome, ApplyError> {
        let mut slab = self.lock();
        match cmd {
            Command::SetAdmin {
                server,
                action,
                cause,
            } => {
                if server.deleted() {
                    return err("No such server.");
                }
                let old = server.admin();
                let new = match action {
                    AdminAction::Maint => AdminFlags(old.0 | AdminFlags::FMAINT),
                    AdminAction::Drain => AdminFlags(old.0 | AdminFlags::FDRAIN),
                    AdminAction::Ready => {
                        AdminFlags(old.0 & !(AdminFlags::FMAINT | AdminFlags::FDRAIN))
                    }
                };
                self.change(&server, None, Some(new), cause, None);
                Ok(Outcome::default())
            }
            Command::SetHealth {
                server,
                health,
                cause,
            } => {
                if server.deleted() {
                    return err("No such server.");
                }
                let target = {
                    let mut c = server.check.lock().unwrap_or_else(|e| e.into_inner());
                    match health {
                        ForcedHealth::Up => {
                            c.health.cur = c.health.rise + c.health.fall - 1;
                            self.up_state(&server)
                        }
                        ForcedHealth::Stopping => OpState::Stopping,
                        ForcedHealth::Down => {
                            c.health.cur = 0;
                            OpState::Stopped
                        }
                    }
                };
                self.change(&server, Some(target), None, cause, None);
                Ok(Outcome::default())
            }
            Command::SetWeight { server, weight } => self.set_weight(&server, &weight),
            Command::SetAddr {
                server,
                ip,
                port,
                cause,
            } => {
                let old = server.addr();
                let new = SocketAddr::new(ip, port.unwrap_or(old.port()));
                if old == new {
                    return Ok(Outcome::msg("no need to change the addr, port"));
                }
                server.set_addr(new);
                self.publish(&server, EventType::ServerInetAddr, EventData::None);
                let by = match cause {
                    Cause::Lua => "Lua script",
                    _ => "stats socket command",
                };
                let mut m = String::new();
                if old.ip() != new.ip() {
                    m = format!("IP changed from '{}' to '{}'", old.ip(), new.ip());
                }
                if old.port() != new.port() {
                    if !m.is_empty() {
                        m.push_str(", ");
                    }
                    m.push_str(&format!(
                        "port changed from '{}' to '{}'",
                        old.port(),
                        new.port()
                    ));
                }
                m.push_str(&format!(" by '{by}'"));
                Ok(Outcome::msg(m))
            }
            Command::Resolved {
                server,
                outcome,
                by,
            } => {
                if server.deleted() {
                    return err("No such server.");
                }
                let old = server.admin();
                match outcome {
                    Ok(ip) => {
                        let was = server.addr();
                        let id = self
                            .proxy_at(server.proxy_index)
                            .map(|p| format!("{}/{}", p.name, server.name));
                        if was.ip() != ip {
                            server.set_addr(SocketAddr::new(ip, was.port()));
                            self.publish(&server, EventType::ServerInetAddr, EventData::None);
                            let from = if was.ip().is_unspecified() {
                                "(none)".to_string()
                            } else {
                                was.ip().to_string()
                            };
                            if let Some(id) = &id {
                                logging::warning(&format!(
                                    "{id} changed its IP from {from} to {ip} by {by}."
                                ));
                            }
                            self.bump(&server);
                        }
                        if old.has(AdminFlags::RMAINT) {
                            let new = AdminFlags(old.0 & !AdminFlags::RMAINT);
                            self.change(
                                &server,
                                None,
                                Some(new),
                                Cause::Dns(super::DnsStatus::Valid),
                                None,
                            );
                            if let (Some(id), false) = (&id, new.maint()) {
                                logging::warning(&format!(
                                    "Server {id} administratively READY thanks to valid DNS answer."
                                ));
                            }
                        }
                    }
                    Err(status) => {
                        if !old.has(AdminFlags::RMAINT) {
                            let new = AdminFlags(old.0 | AdminFlags::RMAINT);
                            self.change(&server, None, Some(new), Cause::Dns(status), None);
                        }
                    }
                }
                Ok(Outcome::default())
            }
            Command::SetMaxconn { server, maxconn } => {
                server.set_maxconn(maxconn);
                self.bump(&server);
                Ok(Outcome::default())
            }
            Command::SetCheckEnabled { server, enabled } => {
                let mut c = server.check.lock().unwrap_or_else(|e| e.into_inner());
                if enabled && !c.configured {
                    return err("Health check was not configured on this server, cannot enable.");
                }
                c.enabled = enabled;
                Ok(Outcome::default())
            }
            Command::CheckDone { server, result } => {
                self.check_done(&server, result);
                Ok(Outcome::default())
            }
            Command::AddServer { backend, config } => self.add_server(&mut slab, &backend, *config),
            Command::DelServer { server } => self.del_server(&mut slab, &server),
            Command::ShutdownSessions { server } => {
                server.kill_sessions(super::KillCause::Admin);
                Ok(Outcome::default())
            }
            Command::PassiveErrors { server, errors } => {
                self.passive_errors(&server, errors);
                Ok(Outcome::default())
            }
            Command::AgentDone {
                server,
                reply,
                duration_ms,
            } => {
                self.agent_done(&server, reply, duration_ms);
                Ok(Outcome::default())
            }
            Command::SetAgentEnabled { server, enabled } => {
                let mut a = server.agent.lock().unwrap_or_else(|e| e.into_inner());
                if enabled && !a.check.configured {
                    return err("Agent was not configured on this server, cannot enable.");
                }
                a.check.enabled = enabled;
                Ok(Outcome::default())
            }
            Command::SetAgentHealth { server, up, cause } => {
                if server.deleted() {
                    return err("No such server.");
                }
                {
                    let mut a = server.agent.lock().unwrap_or_else(|e| e.into_inner());
                    if !a.check.enabled {
                        return err("agent checks are not enabled on this server.");
                    }
                    let h = &mut a.check.health;
                    h.cur = if up { h.rise + h.fall - 1 } else { 0 };
                }
                let target = if up {
                    self.up_state(&server)
                } else {
                    OpState::Stopped
                };
                self.change(&server, Some(target), None, cause, None);
                Ok(Outcome::default())
            }
            Command::SetAgentTarget {
                server,
                addr,
                port,
                send,
            } => {
                let mut a = server.agent.lock().unwrap_or_else(|e| e.into_inner());
                if !a.check.enabled {
                    return err("agent checks are not enabled on this server.");
                }
                if addr.is_some() {
                    a.addr = addr;
                }
                if let Some(p) = port {
                    a.port = p;
                }
                if send.is_some() {
                    a.send = send;
                }
                Ok(Outcome::default())
            }
            Command::Tick => {
                for p in self.proxies() {
                    for s in p.servers().iter() {
                        if s.slowstart_done() {
                            self.change(s, Some(OpState::Running), None, Cause::Check, None);
                        }
                    }
                }
                Ok(Outcome::default())
            }
        }
    }

    /// The state a server enters when it comes up: STARTING with slowstart, else RUNNING.
    pub(super) fn up_state(&self, s: &Server) -> OpState {
        // HAProxy's `srv_set_running` leaves a running or starting server as it is
        if matches!(s.op_state(), OpState::Running | OpState::Starting) {
            return s.op_state();
        }
        if s.params.slowstart.is_some() {
            OpState::Starting
        } else {
            OpState::Running
        }
    }

    pub(super) fn bump(&self, s: &Server) {
        if let Some(p) = self.proxy_at(s.proxy_index) {
            p.bump();
        }
    }

    fn event(
        &self,
        s: &Arc<Server>,
        kind: EventType,
        data: EventData,
        with_ref: bool,
    ) -> ServerEvent {
        ServerEvent {
            kind,
            when: super::unix_now(),
            name: s.name.clone(),
            puid: s.puid,
            rid: s.rid,
            proxy_name: s.proxy_name.clone(),
            proxy_uuid: s.proxy_uuid,
            reference: if with_ref { Some(s.clone()) } else { None },
            data,
            published: None,
        }
    }

    pub(super) fn publish(&self, s: &Arc<Server>, kind: EventType, data: EventData) {
        self.bus().publish(self.event(s, kind, data, true));
    }

    /// Core transition: optionally new operational state and/or admin flags, events in HAProxy
    /// order, log lines. `desired` is the operational state the health would give; maintenance
    /// forces STOPPED whatever it is.
    pub(super) fn change(
        &self,
        s: &Arc<Server>,
        desired: Option<OpState>,
        new_admin: Option<AdminFlags>,
        cause: Cause,
        check: Option<CheckReport>,
    ) {
        let old_admin = s.admin();
        let old_op = s.op_state();
        let admin = new_admin.unwrap_or(old_admin);
        let admin_changed = admin != old_admin;
        let leaving_maint = old_admin.maint() && !admin.maint();
        let mut op = desired.unwrap_or(old_op);
        if admin.maint() {
            op = OpState::Stopped;
            if !old_admin.maint() {
                // HAProxy: maintenance pauses checks and resets the health to 0.
                let mut c = s.check.lock().unwrap_or_else(|e| e.into_inner());
                if c.enabled {
                    c.health.cur = 0;
                }
            }
        } else if leaving_maint {
            // HAProxy: leaving maintenance starts the server OK and lets checks decide.
            let mut c = s.check.lock().unwrap_or_else(|e| e.into_inner());
            if c.enabled {
                c.health.cur = c.health.rise;
            }
            if (c.health.cur >= c.health.rise || !c.enabled) && s.agent_agrees() {
                // a tracker follows what it tracks: down stays down, stopping stops
                op = match s.tracked().map(|t| t.op_state()) {
                    Some(OpState::Stopped) => OpState::Stopped,
                    Some(OpState::Stopping) => OpState::Stopping,
                    _ => self.up_state(s),
                };
            }
        }
        if !admin_changed && op == old_op {
            return;
        }
        if admin_changed {
            s.set_admin(admin);
        }
        if op != old_op {
            s.set_op_state(op);
            s.touch();
            if old_op.is_up() && !op.is_up() {
                s.counters.chkdown.fetch_add(1, Ordering::Relaxed);
                if s.params.shutdown_on_down {
                    s.kill_sessions(super::KillCause::Down);
                }
            }
        }
        // an active server of some weight going up (a check, leaving maintenance, the end of
        // its slow start): HAProxy's `srv_shutdown_backup_streams` closes the backups'
        // sessions to make way; drain plays no part there
        let up = |op: OpState, admin: AdminFlags| {
            matches!(op, OpState::Running | OpState::Starting) && !admin.maint()
        };
        let went_up = up(op, admin) && !up(old_op, old_admin);
        let started = old_op == OpState::Starting && op == OpState::Running && !admin.maint();
        if s.params.shutdown_backup_on_up
            && !s.params.backup
            && s.uweight() > 0
            && (went_up || started)
        {
            if let Some(p) = self.proxy_at(s.proxy_index) {
                for b in p.servers().iter().filter(|b| b.params.backup) {
                    b.kill_sessions(super::KillCause::Up);
                }
            }
        }
        self.bump(s);
        if admin_changed {
            let data = EventData::Admin(AdminChange {
                cause: String::new(),
                old_admin,
                new_admin: admin,
                requeued: 0,
            });
            self.publish(s, EventType::ServerAdmin, data);
        }
        if op != old_op {
            if old_op.is_up() && !op.is_up() {
                self.publish(s, EventType::ServerDown, EventData::None);
            } else if !old_op.is_up() && op.is_up() {
                self.publish(s, EventType::ServerUp, EventData::None);
            }
            let is_admin = admin_changed;
            let data = EventData::State(StateChange {
                admin: is_admin,
                check: if is_admin { None } else { check.clone() },
                cause: if is_admin {
                    String::new()
                } else {
                    cause.text().to_string()
                },
                old_state: old_op,
                new_state: op,
                requeued: 0,
            });
            self.publish(s, EventType::ServerState, data);
        }
        self.log_change(s, old_op, op, old_admin, admin, cause, check.as_ref());
        self.propagate(s, old_op != op, admin_changed, cause);
    }

    /// `track`: what changed on `s` reaches the servers tracking it, depth first, newest
    /// first, after `s`'s own events and lines (HAProxy's recursion in `srv_set_*` and
    /// `srv_set_admin_flag`): maintenance and drain as IMAINT/IDRAIN, with the same cause;
    /// DOWN, UP and stopping as they are (a tracker in maintenance stays there).
    fn propagate(&self, s: &Arc<Server>, op_changed: bool, admin_changed: bool, cause: Cause) {
        if !op_changed && !admin_changed {
            return;
        }
        let (op, admin) = (s.op_state(), s.admin());
        for t in s.trackers() {
            if admin_changed {
                let mut n = t.admin().0 & !(AdminFlags::IMAINT | AdminFlags::IDRAIN);
                if admin.maint() {
                    n |= AdminFlags::IMAINT;
                }
                if admin.drain() {
                    n |= AdminFlags::IDRAIN;
                }
                if n != t.admin().0 {
                    self.change(&t, None, Some(AdminFlags(n)), cause, None);
                }
            }
            // HAProxy passes on DOWN/UP/stopping from `srv_set_*`, not from an admin change
            // (the inherited flags above carry those)
            if op_changed && !admin_changed && !t.admin().maint() {
                let want = match op {
                    OpState::Stopped => OpState::Stopped,
                    OpState::Stopping => OpState::Stopping,
                    OpState::Running | OpState::Starting => self.up_state(&t),
                };
                self.change(&t, Some(want), None, Cause::Track, None);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn log_change(
        &self,
        s: &Server,
        old_op: OpState,
        op: OpState,
        old_admin: AdminFlags,
        admin: AdminFlags,
        cause: Cause,
        check: Option<&CheckReport>,
    ) {
        let Some(p) = self.proxy_at(s.proxy_index) else {
            return;
        };
        let id = format!("{}/{}", p.name, s.name);
        // HAProxy names a backup server so in every such line
        let who = if s.params.backup {
            "Backup Server"
        } else {
            "Server"
        };
        let (act, bck) = (p.srv_act(), p.srv_bck());
        let sess = s.counters.cur_sess.load(Ordering::Relaxed);
        let queued = s.counters.queue_cur.load(Ordering::Relaxed);
        let on_backup = if act == 0 && bck > 0 {
            " Running on backup."
        } else {
            ""
        };
        let left = format!(
            "{act} active and {bck} backup servers left.{on_backup} {sess} sessions active, 0 requeued, {queued} remaining in queue."
        );
        let online = format!("{act} active and {bck} backup servers online.{on_backup} 0 sessions requeued, {queued} total in queue.");
        let why = match (check, cause) {
            // HAProxy gives a tracker no check reason (its own agent's included)
            (Some(r), _) if !p.config.log_health_checks && s.tracked().is_none() => check_reason(r),
            (None, Cause::Cli | Cause::Lua) => format!(", {}", cause.text()),
            _ => String::new(),
        };
        let entering_maint = !old_admin.maint() && admin.maint();
        // `track`: HAProxy names the tracked server in a tracker's lines, unless the change
        // was forced on the tracker itself
        let via = s
            .tracked()
            .map(|t| format!(" via {}/{}", t.proxy_name, t.name))
            .unwrap_or_default();
        let via_unless = |flag: u8| if admin.has(flag) { "" } else { via.as_str() };
        let leaving_maint = old_admin.maint() && !admin.maint();
        // (severity for the proxy's log targets, the line; stderr adds a prefix of its own)
        let said = if entering_maint {
            if old_op.is_up() {
                // HAProxy: `notice` for a server that was stopping (or draining) anyway
                let was_stopping = old_op == OpState::Stopping || old_admin.drain();
                let severity = if was_stopping { NOTICE } else { ALERT };
                let why = match cause {
                    Cause::Dns(st) if admin.has(AdminFlags::RMAINT) => format!(" ({})", st.text()),
                    _ => String::new(),
                };
                let v = via_unless(AdminFlags::FMAINT);
                Some((
                    severity,
                    format!("{who} {id} is going DOWN for maintenance{why}{v}. {left}"),
                ))
            } else {
                let why = match cause {
                    Cause::Dns(st) if admin.has(AdminFlags::RMAINT) => format!(" ({})", st.text()),
                    _ => String::new(),
                };
                let v = via_unless(AdminFlags::FMAINT);
                Some((
                    NOTICE,
                    format!("{who} {id} was DOWN and now enters maintenance{why}{v}."),
                ))
            }
        } else if leaving_maint {
            // HAProxy's "%s/%s": DOWN or UP, then DRAIN or READY
            let st = format!(
                "{}/{}",
                if op.is_up() { "UP" } else { "DOWN" },
                if admin.drain() { "DRAIN" } else { "READY" }
            );
            let line = match (cause, &s.params.fqdn) {
                // HAProxy's line for a server whose name resolves again
                (Cause::Dns(_), Some(fqdn)) => format!(
                    "{who} {id} ('{fqdn}') is {}/{} (resolves again).",
                    if op.is_up() { "UP" } else { "DOWN" },
                    if admin.drain() { "DRAIN" } else { "READY" }
                ),
                _ if old_admin.has(AdminFlags::FMAINT) => {
                    format!("{who} {id} is {st} (leaving forced maintenance).")
                }
                _ => format!("{who} {id} is {st} (leaving maintenance)."),
            };
            Some((NOTICE, line))
        } else if !old_admin.drain() && admin.drain() && !admin.maint() {
            let v = via_unless(AdminFlags::FDRAIN);
            Some((
                NOTICE,
                format!("{who} {id} enters drain state{v}. {online}"),
            ))
        } else if old_admin.drain() && !admin.drain() && !admin.maint() {
            let st = if op.is_up() { "UP" } else { "DOWN" };
            let line = if old_admin.has(AdminFlags::FDRAIN) {
                format!("{who} {id} is {st} (leaving forced drain).")
            } else {
                format!("{who} {id} is {st} (leaving drain){via}.")
            };
            Some((NOTICE, line))
        } else if old_admin.maint() && admin.maint() && old_admin != admin {
            // still in maintenance after one of its flags went: HAProxy says which is left
            let gone = |f: u8| old_admin.has(f) && !admin.has(f);
            if gone(AdminFlags::FMAINT) {
                Some((
                    NOTICE,
                    format!(
                        "{who} {id} is leaving forced maintenance but remains in maintenance{via}."
                    ),
                ))
            } else if gone(AdminFlags::RMAINT) {
                let fqdn = s.params.fqdn.as_deref().unwrap_or("");
                Some((
                    NOTICE,
                    format!(
                        "{who} {id} ('{fqdn}') resolves again but remains in maintenance{via}."
                    ),
                ))
            } else if gone(AdminFlags::IMAINT) {
                Some((NOTICE, format!("{who} {id} remains in forced maintenance.")))
            } else {
                None
            }
        } else if !admin.maint()
            && old_admin.drain()
            && admin.drain()
            && (old_admin.0 & AdminFlags::DRAIN) != (admin.0 & AdminFlags::DRAIN)
        {
            // still draining after a drain flag changed
            let line = if old_admin.has(AdminFlags::FDRAIN) && !admin.has(AdminFlags::FDRAIN) {
                format!("{who} {id} remains in drain mode{via}.")
            } else {
                format!("{who} {id} remains in forced drain mode.")
            };
            Some((NOTICE, line))
        } else if old_op.is_up() && !op.is_up() {
            let was_stopping = old_op == OpState::Stopping || old_admin.drain();
            let severity = if was_stopping { NOTICE } else { ALERT };
            Some((severity, format!("{who} {id} is DOWN{why}{via}. {left}")))
        } else if !old_op.is_up() && op.is_up() {
            Some((NOTICE, format!("{who} {id} is UP{why}{via}. {online}")))
        } else if op == OpState::Stopping && old_op != op {
            Some((NOTICE, format!("{who} {id} is stopping{why}{via}. {left}")))
        } else {
            None
        };
        if let Some((severity, line)) = said {
            // HAProxy 3.2 marks on stderr what a CLI command brought up
            let up_by_cli = cause == Cause::Cli && !old_op.is_up() && op.is_up() && !leaving_maint;
            let prefix = if up_by_cli { "CLI : " } else { "" };
            logging::warning(&format!("{prefix}{line}"));
            self.log_to(p, severity, &line);
        }
        let usable = act + bck > 0;
        let had = p.had_usable.swap(usable, Ordering::Relaxed);
        if had && !usable {
            p.counters.chkdown.fetch_add(1, Ordering::Relaxed);
            self.no_server_left(p);
        }
    }

    fn check_done(&self, s: &Arc<Server>, result: CheckResult) {
        if s.deleted() {
            return;
        }
        let outcome = result.status.outcome();
        let passed = !matches!(outcome, super::check::CheckOutcome::Failed);
        if passed {
            s.clear_passive_errors();
        }
        let (report, transition, changed, counted) = {
            let mut c = s.check.lock().unwrap_or_else(|e| e.into_inner());
            // Checks are paused in maintenance (HAProxy CHK_ST_PAUSED): a result still in
            // flight when the server entered it is dropped.
            if !c.enabled || s.admin().maint() {
                return;
            }
            let before = c.health;
            let prev_status = c.last.as_ref().map(|r| r.result.status);
            let up = s.op_state().is_up() || s.admin().maint();
            let tr = c.health.apply(passed, up);
            let report = CheckReport {
                result: result.clone(),
                outcome,
                health: c.health,
            };
            let changed = before != c.health || prev_status != Some(result.status);
            c.last = Some(report.clone());
            // HAProxy counts a failed check (`chkfail`) only while the health is above 0.
            (report, tr, changed, !passed && before.cur > 0)
        };
        if counted {
            s.counters.chkfail.fetch_add(1, Ordering::Relaxed);
        }
        if changed {
            self.check_reported(s, &report);
        }
        if s.admin().maint() {
            return;
        }
        match transition {
            // HAProxy's `check_notify_success`: an enabled agent must agree too
            Some(true) if !s.agent_agrees() => {}
            Some(true) => self.change(s, Some(self.up_state(s)), None, Cause::Check, Some(report)),
            Some(false) => self.change(s, Some(OpState::Stopped), None, Cause::Check, Some(report)),
            None => {}
        }
    }

    /// A health or agent check result with a new status or health: the SERVER_CHECK event,
    /// and with `option log-health-checks` HAProxy's `Health|Agent check for server ...` line
    /// (`DRAIN` instead of `UP` for a server of weight 0).
    pub(super) fn check_reported(&self, s: &Arc<Server>, report: &CheckReport) {
        self.publish(s, EventType::ServerCheck, EventData::Check(report.clone()));
        let Some(p) = self.proxy_at(s.proxy_index) else {
            return;
        };
        if !p.config.log_health_checks {
            return;
        }
        let verdict = match report.outcome {
            super::check::CheckOutcome::Failed => "failed",
            _ => "succeeded",
        };
        let mut status = report.health.status_text();
        if s.uweight() == 0 && report.health.cur >= report.health.rise {
            status = status.replace(" UP", " DRAIN");
        }
        let line = format!(
            "{} check for {}server {}/{} {verdict}{}, status: {status}.",
            if report.result.agent {
                "Agent"
            } else {
                "Health"
            },
            if s.params.backup { "backup " } else { "" },
            p.name,
            s.name,
            check_reason(report),
        );
        logging::warning(&line);
        self.log_to(p, NOTICE, &line);
    }

    /// HAProxy's `__health_adjust` once `error-limit` is reached: `hanafail` counts it;
    /// `fail-check` is one failed check with status HANA, `sudden-death` the same from at most
    /// one step above DOWN, `mark-down` from the last step (DOWN at once); `fastinter` only
    /// speeds the next check (the check thread does that). Without active checks nothing
    /// else happens, as in HAProxy.
    fn passive_errors(&self, s: &Arc<Server>, errors: u32) {
        use crate::config::OnError;
        if s.deleted() {
            return;
        }
        s.counters.hanafail.fetch_add(1, Ordering::Relaxed);
        if s.params.on_error == OnError::FastInter {
            return;
        }
        {
            let mut c = s.check.lock().unwrap_or_else(|e| e.into_inner());
            if !c.enabled || s.admin().maint() {
                return;
            }
            let h = &mut c.health;
            match s.params.on_error {
                OnError::SuddenDeath if h.cur > h.rise => h.cur = h.rise + 1,
                OnError::MarkDown => h.cur = h.rise,
                _ => {}
            }
        }
        self.check_done(
            s,
            CheckResult {
                status: super::check::CheckStatus::Hana,
                duration_ms: -1,
                info: Some(format!(
                    "Detected {errors} consecutive errors, last one was: L4 unsuccessful connection"
                )),
                code: None,
                agent: false,
            },
        );
    }

    /// HAProxy's alert when a backend loses its last usable server: `[ALERT]` on stderr and an
    /// `emerg` line to the proxy's log targets (`proxy` for a `listen` section).
    fn no_server_left(&self, p: &Proxy) {
        let kind = if p.config.cap.frontend {
            "proxy"
        } else {
            "backend"
        };
        logging::alert(&format!("{kind} '{}' has no server available!", p.name));
        self.log_to(
            p,
            EMERG,
            &format!("{kind} {} has no server available!", p.name),
        );
    }

    pub(super) fn set_weight(&self, s: &Arc<Server>, text: &str) -> Result<Outcome, ApplyError> {
        let p = self
            .proxy_at(s.proxy_index)
            .ok_or_else(|| ApplyError("No such backend.".into()))?;
        let w = super::weight::parse_weight(s.iweight(), text).map_err(|e| ApplyError(e.into()))?;
        if !p.config.lb_is_dynamic() && w != 0 && w != s.iweight() {
            return err(
                "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.",
            );
        }
        s.set_uweight(w);
        p.bump();
        let usable = p.srv_act() + p.srv_bck() > 0;
        let had = p.had_usable.swap(usable, Ordering::Relaxed);
        if had && !usable {
            self.no_server_left(p);
        }
        Ok(Outcome::default())
    }

    fn add_server(
        &self,
        slab: &mut slab::Slab<Arc<Server>>,
        backend: &str,
        config: ServerConfig,
    ) -> Result<Outcome, ApplyError> {
        let p = self
            .backend(backend)
            .ok_or_else(|| ApplyError("No such backend.".into()))?;
        if !p.config.lb_is_dynamic() {
            return err("Backend must use a dynamic load balancing to support dynamic servers.");
        }
        let servers = p.servers();
        if servers.iter().any(|s| *s.name == *config.name) {
            logging::alert(&format!(
                "CLI : 'server {}/{}' : Already exists a server with the same name in backend.",
                p.name, config.name
            ));
            return err("Already exists a server with the same name in backend.");
        }
        let puid = match config.params.id {
            Some(id) if servers.iter().any(|s| s.puid == id) => {
                return err(format!(
                    "'server {}/{}' : custom id {} already used",
                    p.name, config.name, id
                ));
            }
            Some(id) => id,
            None => (1..)
                .find(|i| !servers.iter().any(|s| s.puid == *i))
                .unwrap_or(1),
        };
        // `track`: what it names must exist, be configured (not dynamic) and be checked
        let tracked =
            match config.params.track.as_deref() {
                None => None,
                Some(t) => Some(self.track_target(&p.name, t).map_err(|m| {
                    ApplyError(format!("'server {}/{}' : {m}", p.name, config.name))
                })?),
            };
        let rid = {
            let mut rids = p.rids.lock().unwrap_or_else(|e| e.into_inner());
            let r = rids.entry(config.name.clone()).or_insert(0);
            let rid = *r;
            *r += 1;
            rid
        };
        let entry = slab.vacant_entry();
        let srv = Arc::new(Server::new(
            entry.key(),
            &config.name,
            config.addr,
            config.params.clone(),
            puid,
            rid,
            p.index,
            p.name.clone(),
            p.uuid,
            true,
        ));
        entry.insert(srv.clone());
        if let Some(t) = &tracked {
            Server::track(&srv, t);
        }
        let mut v: Vec<_> = servers.iter().cloned().collect();
        v.push(srv.clone());
        v.sort_by_key(|s| s.puid);
        p.set_servers(v);
        self.publish(&srv, EventType::ServerAdd, EventData::None);
        logging::notice(&format!(
            "CLI : 'server {}/{}' : New server registered.",
            p.name, config.name
        ));
        Ok(Outcome {
            message: "New server registered.".into(),
            server: Some(srv),
        })
    }

    /// The server a dynamic server's `track` names, or HAProxy's reason why not.
    fn track_target(&self, px: &str, t: &str) -> Result<Arc<Server>, String> {
        let s = super::registry::find_tracked(self.proxies(), px, t)?;
        let (be, name) = (&s.proxy_name, &s.name);
        if s.dynamic {
            return Err(format!(
                "unable to use {be}/{name} for tracking as it is a dynamic server."
            ));
        }
        if !s.params.check && !s.params.agent_check && s.tracked().is_none() {
            return Err(format!(
                "unable to use {be}/{name} for tracking as it does not have any check nor agent enabled."
            ));
        }
        Ok(s)
    }

    fn del_server(
        &self,
        slab: &mut slab::Slab<Arc<Server>>,
        s: &Arc<Server>,
    ) -> Result<Outcome, ApplyError> {
        if s.deleted() {
            return err("No such server.");
        }
        // tracked by another server, or named by a fixed `use-server` rule of its backend
        let named = self.proxy_at(s.proxy_index).is_some_and(|p| {
            p.config
                .rules
                .server_rules
                .iter()
                .any(|r| r.dynamic.is_none() && *r.server == *s.name)
        });
        if s.is_tracked() || named {
            return err("This server cannot be removed at runtime due to other configuration elements pointing to it.");
        }
        if !s.admin().maint() {
            return err("Only servers in maintenance mode can be deleted.");
        }
        if s.counters.cur_sess.load(Ordering::Relaxed) > 0
            || s.counters.queue_cur.load(Ordering::Relaxed) > 0
        {
            return err("Server still has connections attached to it, cannot remove it.");
        }
        let p = self
            .proxy_at(s.proxy_index)
            .ok_or_else(|| ApplyError("No such backend.".into()))?;
        let v: Vec<_> = p
            .servers()
            .iter()
            .filter(|x| !Arc::ptr_eq(x, s))
            .cloned()
            .collect();
        p.set_servers(v);
        if slab.contains(s.key) && Arc::ptr_eq(&slab[s.key], s) {
            slab.remove(s.key);
        }
        s.mark_deleted();
        self.bus()
            .publish(self.event(s, EventType::ServerDel, EventData::None, false));
        logging::notice("CLI : Server deleted.");
        Ok(Outcome::msg("Server deleted."))
    }
}

fn check_reason(r: &CheckReport) -> String {
    let mut m = format!(", reason: {}", r.result.status.desc());
    // HAProxy prints a code for every status past layer 5-7 data analysis (0 when the check
    // set none, as a tcp-check does)
    if r.result.status.has_code() {
        m.push_str(&format!(", code: {}", r.result.code.unwrap_or(0)));
    }
    if let Some(info) = &r.result.info {
        m.push_str(&format!(", info: \"{info}\""));
    }
    // a health analyze result has no duration, and HAProxy prints none
    if r.result.duration_ms >= 0 {
        m.push_str(&format!(", check duration: {}ms", r.result.duration_ms));
    }
    m
}

#[cfg(test)]
mod health_fix_tests {
    use super::*;
    use crate::model::check::CheckStatus;

    fn refused() -> CheckResult {
        CheckResult {
            status: CheckStatus::L4Con,
            duration_ms: 0,
            info: Some("Connection refused".into()),
            code: None,
            agent: false,
        }
    }

    #[test]
    fn chkfail_counts_only_while_health_is_above_zero() {
        let (reg, _sub) = super::super::tests::reference_registry();
        let w1 = reg.find_server("test/webserver1").unwrap();
        for _ in 0..3 {
            reg.apply(Command::CheckDone {
                server: w1.clone(),
                result: refused(),
            })
            .unwrap();
        }
        assert_eq!(w1.counters.chkfail.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn maintenance_pauses_checks_and_zeroes_health() {
        let (reg, sub) = super::super::tests::reference_registry();
        let w1 = reg.find_server("test/webserver1").unwrap();
        reg.apply(Command::SetAdmin {
            server: w1.clone(),
            action: AdminAction::Maint,
            cause: super::super::state::Cause::Cli,
        })
        .unwrap();
        assert_eq!(w1.check_state().health.cur, 0);
        let _ = sub.receiver().try_iter().count();
        reg.apply(Command::CheckDone {
            server: w1.clone(),
            result: refused(),
        })
        .unwrap();
        assert_eq!(
            sub.receiver().try_iter().count(),
            0,
            "no SERVER_CHECK in maint"
        );
        assert!(w1.check_state().last.is_none());
    }
}
