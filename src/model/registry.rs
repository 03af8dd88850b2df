//! The registry: every proxy and server, and the single writer that changes them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use slab::Slab;

use super::proxy::Proxy;
use super::server::Server;
use super::state::AdminFlags;
use crate::config::{Config, Global, MailersConfig};
use crate::events::EventBus;

/// Process-wide counters (`show info`).
#[derive(Debug, Default)]
pub struct GlobalCounters {
    /// Current client connections.
    pub cur_conns: AtomicU64,
    /// Connections ever accepted, Runtime API ones included (`CumConns`, as HAProxy counts).
    pub cum_conns: AtomicU64,
    /// Streams ever started, as HAProxy counts them (`CumReq`): client sessions past any PROXY
    /// header, and Runtime API connections.
    pub cum_req: AtomicU64,
    /// Connections accepted on `ssl` listeners, handshakes failed or not (`CumSslConns`).
    pub cum_ssl_conns: AtomicU64,
    /// TLS connections open now, to clients and to servers (`CurrSslConns`).
    pub cur_ssl_conns: AtomicU64,
    /// Runtime API connections open now (each is one of HAProxy's `Jobs`).
    pub cli_conns: AtomicU64,
    /// Times a connection was refused by the global maxconn.
    pub maxconn_reached: AtomicU64,
    /// Bytes sent to clients.
    pub bytes_out: AtomicU64,
    /// Bytes sent to clients with splice.
    pub spliced_out: AtomicU64,
    /// Pipes in use by workers.
    pub pipes_used: AtomicU64,
    /// Pipes pooled, free.
    pub pipes_free: AtomicU64,
    /// Connections accepted per second (`ConnRate`, `MaxConnRate`; also `SessRate`: in TCP a
    /// connection is a session).
    pub conn_rate: super::Rate,
    /// Where accept loops wait while the global `maxconn` is reached; opened when a
    /// connection ends or the limit changes.
    pub accept_gate: super::Gate,
}

impl GlobalCounters {
    /// Records a client connection's end (and lets an accept loop held by the global
    /// `maxconn` go on).
    pub fn conn_ended(&self) {
        self.cur_conns.fetch_sub(1, Ordering::AcqRel);
        self.accept_gate.open();
    }
}

/// Why a `backend/server` lookup failed, with HAProxy's Runtime API wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No `/` in the argument.
    #[error("Require 'backend/server'.")]
    Syntax,
    /// Unknown backend.
    #[error("No such backend.")]
    NoBackend,
    /// Unknown server.
    #[error("No such server.")]
    NoServer,
}

/// Proxies and servers. Reads are lock-free (atomics and snapshots); every change goes through
/// [`Registry::apply`](super::Command), serialised by one lock that readers never take.
pub struct Registry {
    proxies: Vec<Arc<Proxy>>,
    /// The tables of `peers` sections (`table` lines), named `<section>/<name>`.
    peers_tables: Vec<Arc<crate::stick::Table>>,
    pub(super) writer: Mutex<Slab<Arc<Server>>>,
    bus: Arc<EventBus>,
    /// The configuration harp started with.
    pub config: Arc<Config>,
    /// Process counters.
    pub counters: GlobalCounters,
    /// Set when a stop was requested (`show info` `Stopping`).
    pub stopping: AtomicBool,
    /// Start instant, for uptime.
    pub started: Instant,
    /// Start time, unix seconds.
    pub start_time: i64,
    /// The process connection limit at start (`Hard_maxconn`): `global maxconn`, or derived
    /// from `ulimit -n`.
    hard_maxconn: u64,
    /// The limit now (`Maxconn`; `set maxconn global` lowers it, never above the start's).
    maxconn: AtomicU64,
    /// The fds planned for, as HAProxy counts them (`Maxsock`).
    maxsock: u64,
    /// The process-wide rate limits now, by [`RateLimit`] (0 = none; `set rate-limit` changes
    /// them).
    rate_limits: [AtomicU64; 4],
    /// Woken when a rate limit changes, so that listeners held by the old one look again at
    /// once (HAProxy's `dequeue_all_listeners`).
    pub rate_limit_changed: tokio::sync::Notify,
    /// The `proc.*` variables: set by rules, the global `set-var`, `set var` on the Runtime
    /// API; read by `var()` and Lua's `core.get_var`.
    pub vars: crate::rules::vars::ProcVars,
    /// Sockets for what the control side logs to `log` targets (server state changes, health
    /// checks, Lua's `core.log`); never used by a worker, rare enough for a lock.
    logs: Mutex<crate::logging::targets::LogSockets>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("proxies", &self.proxies.len())
            .finish()
    }
}

/// HAProxy's `proxy_adjust_all_maxconn`: a backend without `fullconn` gets a tenth (rounded
/// up, at least 1) of the `maxconn` of the frontends leading to it ([`leads_to`]); a frontend
/// without `maxconn` counts the global one.
fn set_fullconns(proxies: &[Arc<Proxy>], global_maxconn: u64) {
    // HAProxy skips disabled proxies on both sides (a disabled backend keeps 0)
    for be in proxies.iter().filter(|p| p.config.cap.backend) {
        if be.config.disabled {
            be.set_fullconn(0);
            continue;
        }
        if let Some(f) = be.config.fullconn.filter(|f| *f > 0) {
            be.set_fullconn(u64::from(f));
            continue;
        }
        let total: u64 = proxies
            .iter()
            .filter(|fe| fe.config.cap.frontend && !fe.config.disabled)
            .filter(|fe| leads_to(&fe.config, be))
            .map(|fe| match fe.config.maxconn {
                0 => global_maxconn,
                m => u64::from(m),
            })
            .sum();
        be.set_fullconn(total.div_ceil(10).max(1));
    }
}

/// Whether the frontend `fe` sends sessions to backend `be`: its `default_backend` (itself for
/// a `listen` without one) or one of its `use_backend` rules, as HAProxy counts them.
fn leads_to(fe: &crate::config::ProxyConfig, be: &Proxy) -> bool {
    let default = match &fe.default_backend {
        Some(name) => **name == *be.name,
        None => be.config.cap.frontend && fe.name == *be.name,
    };
    // a dynamic name cannot be known before a session builds it
    default
        || fe
            .rules
            .switching
            .iter()
            .any(|r| r.dynamic.is_none() && *r.backend == *be.name)
}

/// HAProxy's process-wide rate limits (`set rate-limit <which> global`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// `maxconnrate`: connections accepted per second (the listeners obey it).
    Connections = 0,
    /// `maxsessrate`: sessions per second (a connection is a session in TCP; obeyed too).
    Sessions = 1,
    /// `maxsslrate`: harp does not pace TLS handshakes, so it only shows in `show info`.
    SslSessions = 2,
    /// `http-compression`, in bytes/s: harp compresses nothing; shown only.
    Compression = 3,
}

/// The server `track [<backend>/]<server>`, written in proxy `px`, names (deleted ones are
/// gone), or HAProxy's reason why there is none.
pub(super) fn find_tracked(
    proxies: &[Arc<Proxy>],
    px: &str,
    t: &str,
) -> Result<Arc<Server>, String> {
    let (be, name) = t.rsplit_once('/').unwrap_or((px, t));
    let p = proxies
        .iter()
        .find(|p| p.is_backend() && &*p.name == be)
        .ok_or_else(|| format!("unable to find required proxy '{be}' for tracking."))?;
    let found = p
        .servers()
        .iter()
        .find(|s| &*s.name == name && !s.deleted())
        .cloned();
    found.ok_or_else(|| format!("unable to find required server '{name}' for tracking."))
}

/// `track`: links every tracking server to the one it names (the configuration checked that
/// it exists), then gives trackers the maintenance and drain of what they track, as HAProxy's
/// `srv_compute_all_admin_states` does at start-up (no log line, no event).
fn link_tracks(proxies: &[Arc<Proxy>]) {
    for p in proxies {
        for s in p.servers().iter() {
            if let Some(Ok(target)) = s
                .params
                .track
                .as_deref()
                .map(|t| find_tracked(proxies, &p.name, t))
            {
                Server::track(s, &target);
            }
        }
    }
    // HAProxy's `srv_set_admin_flag` recursion: a tracker passes on only what it did not
    // have already (a `disabled` tracker keeps its own maintenance to itself)
    fn inherit(s: &Server, maint: bool, drain: bool) {
        for t in s.trackers() {
            let before = t.admin();
            let (m, d) = (maint && !before.maint(), drain && !before.drain());
            let mut n = before.0;
            if m {
                n |= AdminFlags::IMAINT;
                t.set_op_state(super::OpState::Stopped);
            }
            if d {
                n |= AdminFlags::IDRAIN;
            }
            t.set_admin(AdminFlags(n));
            if m || d {
                inherit(&t, m, d);
            }
        }
    }
    for p in proxies {
        for s in p.servers().iter().filter(|s| s.tracked().is_none()) {
            let a = s.admin();
            inherit(s, a.maint() || a.has(AdminFlags::CMAINT), a.drain());
        }
    }
}

impl Registry {
    /// Builds the live model from a validated configuration. Servers start as HAProxy starts them:
    /// RUNNING with health = rise (checks then decide), or in maintenance when `disabled`.
    pub fn new(config: Config, bus: Arc<EventBus>) -> Arc<Registry> {
        let mut slab = Slab::new();
        let mut proxies = Vec::new();
        let mut next_uuid = 1;
        for (index, pc) in config.proxies.iter().enumerate() {
            let uuid = pc.id.unwrap_or_else(|| {
                while config.proxies.iter().any(|p| p.id == Some(next_uuid)) {
                    next_uuid += 1;
                }
                next_uuid += 1;
                next_uuid - 1
            });
            let proxy = Proxy::new(index, uuid, Arc::new(pc.clone()));
            let mut servers = Vec::new();
            let mut next_puid = 1;
            for sc in &pc.servers {
                let puid = sc.params.id.unwrap_or_else(|| {
                    while pc.servers.iter().any(|s| s.params.id == Some(next_puid)) {
                        next_puid += 1;
                    }
                    next_puid += 1;
                    next_puid - 1
                });
                let entry = slab.vacant_entry();
                let srv = Arc::new(Server::new(
                    entry.key(),
                    &sc.name,
                    sc.addr,
                    sc.params.clone(),
                    puid,
                    0,
                    index,
                    proxy.name.clone(),
                    uuid,
                    false,
                ));
                entry.insert(srv.clone());
                servers.push(srv);
            }
            servers.sort_by_key(|s| s.puid);
            proxy.set_servers(servers);
            proxy
                .had_usable
                .store(proxy.srv_act() + proxy.srv_bck() > 0, Ordering::Relaxed);
            proxies.push(Arc::new(proxy));
        }
        link_tracks(&proxies);
        for p in &proxies {
            p.had_usable
                .store(p.srv_act() + p.srv_bck() > 0, Ordering::Relaxed);
        }
        let threads = nbthread(&config.global) as u64;
        let g = &config.global;
        let rates = [g.maxconnrate, g.maxsessrate, g.maxsslrate, 0].map(u64::from);
        let listeners: usize = config
            .proxies
            .iter()
            .filter(|p| p.cap.frontend && !p.disabled)
            .map(|p| p.binds.len())
            .sum::<usize>()
            + config.global.stats_sockets.len();
        let checks = config
            .proxies
            .iter()
            .flat_map(|p| &p.servers)
            .filter(|s| s.params.check)
            .count();
        let (hard_maxconn, maxsock) = fd_plan(
            crate::sys::nofile_limit(),
            threads,
            (listeners + checks) as u64,
            config.global.maxconn.map(u64::from),
        );
        set_fullconns(&proxies, hard_maxconn);
        // the `proc.*` variables the global section set
        let vars = crate::rules::vars::ProcVars::default();
        for (name, v) in &config.global.proc_vars {
            match v {
                Some(v) => {
                    vars.set(name, v.clone(), &[]);
                }
                None => vars.declare(name),
            }
        }
        let peers_tables = config
            .peers
            .iter()
            .flat_map(|s| {
                s.tables
                    .iter()
                    .map(|t| crate::stick::Table::new(s.table_name(t).into(), t.config.clone()))
            })
            .collect();
        Arc::new(Registry {
            proxies,
            peers_tables,
            writer: Mutex::new(slab),
            bus,
            config: Arc::new(config),
            counters: GlobalCounters::default(),
            stopping: AtomicBool::new(false),
            started: Instant::now(),
            start_time: super::unix_now(),
            logs: Mutex::new(Default::default()),
            hard_maxconn,
            maxconn: AtomicU64::new(hard_maxconn),
            maxsock,
            rate_limits: rates.map(AtomicU64::new),
            rate_limit_changed: tokio::sync::Notify::new(),
            vars,
        })
    }

    /// The worker threads: `nbthread`, else one per CPU this process may use.
    pub fn nbthread(&self) -> usize {
        nbthread(&self.config.global)
    }

    /// The fds HAProxy would plan for (`Maxsock`, and its `Ulimit-n`).
    pub fn maxsock(&self) -> u64 {
        self.maxsock
    }

    /// The process connection limit now (`Maxconn`), which the listeners gate on.
    pub fn maxconn(&self) -> u64 {
        self.maxconn.load(Ordering::Relaxed)
    }

    /// The process connection limit at start (`Hard_maxconn`).
    pub fn hard_maxconn(&self) -> u64 {
        self.hard_maxconn
    }

    /// `set maxconn global`: 0 or less restores the start's limit (HAProxy's "unlimited");
    /// above it is refused.
    pub fn set_maxconn(&self, v: i64) -> Result<(), &'static str> {
        let v = match u64::try_from(v) {
            Ok(v) if v > self.hard_maxconn => return Err("Value out of range."),
            Ok(v) if v > 0 => v,
            _ => self.hard_maxconn,
        };
        self.maxconn.store(v, Ordering::Relaxed);
        self.counters.accept_gate.open();
        Ok(())
    }

    /// A process-wide rate limit now (0 = none): `show info`'s `ConnRateLimit`,
    /// `SessRateLimit`, `SslRateLimit`, `CompressBpsRateLim` (bytes/s).
    pub fn rate_limit(&self, which: RateLimit) -> u64 {
        self.rate_limits[which as usize].load(Ordering::Relaxed)
    }

    /// `set rate-limit <which> global <n>` (compression in kB/s, kept in bytes/s as HAProxy
    /// keeps it): listeners waiting on the old limit look again at once.
    pub fn set_rate_limit(&self, which: RateLimit, v: u64) {
        let v = match which {
            RateLimit::Compression => v.saturating_mul(1024),
            _ => v,
        };
        self.rate_limits[which as usize].store(v, Ordering::Relaxed);
        self.rate_limit_changed.notify_waiters();
    }

    /// `disable frontend` (Lua's `Proxy:pause()`): its listeners refuse new connections until
    /// [`resume_frontend`](Self::resume_frontend); sessions in progress go on. HAProxy 2.6's
    /// refusals and log lines (watched).
    pub fn pause_frontend(&self, fe: &Proxy) -> Result<(), &'static str> {
        if !fe.is_frontend() {
            return Ok(());
        }
        let socks = fe.listening.lock().unwrap_or_else(|e| e.into_inner());
        if fe.stopped.load(Ordering::Acquire) {
            return Err("Frontend was previously shut down, cannot disable.");
        }
        if fe.paused.swap(true, Ordering::AcqRel) {
            return Err("All sockets are already disabled.");
        }
        let mut failed = false;
        for l in socks.iter() {
            match crate::sys::stop_listening(&l.sock) {
                // not listening any more already (stopped by its worker at a process stop)
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
                Err(e) => {
                    failed = true;
                    self.frontend_warning(
                        fe,
                        &format!(
                            "Cannot pause {} {} on {}: {e}.",
                            fe.cap_name(),
                            fe.name,
                            l.addr
                        ),
                    );
                }
                Ok(()) => {}
            }
        }
        if failed {
            return Err("Failed to pause frontend, check logs for precise cause.");
        }
        self.frontend_warning(fe, &format!("Paused {} {}.", fe.cap_name(), fe.name));
        Ok(())
    }

    /// `enable frontend` (Lua's `Proxy:resume()`): its listeners listen again, on the ports
    /// they had.
    pub fn resume_frontend(&self, fe: &Proxy) -> Result<(), &'static str> {
        if !fe.is_frontend() {
            return Ok(());
        }
        let socks = fe.listening.lock().unwrap_or_else(|e| e.into_inner());
        if fe.stopped.load(Ordering::Acquire) {
            return Err("Frontend was previously shut down, cannot enable.");
        }
        if !fe.paused.load(Ordering::Acquire) {
            return Err("All sockets are already enabled.");
        }
        for l in socks.iter() {
            let rebind = l.ephemeral.then_some(l.addr);
            if let Err(e) = crate::sys::listen_again(&l.sock, rebind, l.backlog) {
                // the port went to someone else meanwhile: the frontend stays paused as a whole
                tracing::debug!(frontend = %fe.name, addr = %l.addr, error = %e, "cannot listen again");
                self.frontend_warning(
                    fe,
                    &format!(
                        "Port {} busy while trying to enable {} {}.",
                        l.addr.port(),
                        fe.cap_name(),
                        fe.name
                    ),
                );
                for l in socks.iter() {
                    let _ = crate::sys::stop_listening(&l.sock);
                }
                return Err(
                    "Failed to resume frontend, check logs for precise cause (port conflict?).",
                );
            }
        }
        fe.paused.store(false, Ordering::Release);
        fe.counters.accept_gate.open();
        self.frontend_warning(fe, &format!("Resumed {} {}.", fe.cap_name(), fe.name));
        Ok(())
    }

    /// `shutdown frontend` (Lua's `Proxy:stop()`): its listeners close for good; sessions in
    /// progress go on.
    pub fn stop_frontend(&self, fe: &Proxy) -> Result<(), &'static str> {
        if !fe.is_frontend() {
            return Ok(());
        }
        let mut socks = fe.listening.lock().unwrap_or_else(|e| e.into_inner());
        if fe.stopped.swap(true, Ordering::AcqRel) {
            return Err("Frontend was already shut down.");
        }
        for l in socks.drain(..) {
            crate::sys::stop_listening_for_good(&l.sock);
        }
        // a loop waiting on its paused or full frontend, or on the global maxconn, ends now
        fe.counters.accept_gate.open();
        self.counters.accept_gate.open();
        let conns = fe.counters.cum_conn.load(Ordering::Relaxed);
        let be = if fe.is_backend() {
            fe.counters.tot_sess.load(Ordering::Relaxed)
        } else {
            0
        };
        self.frontend_warning(
            fe,
            &format!(
                "Proxy {} stopped (cumulated conns: FE: {conns}, BE: {be}).",
                fe.name
            ),
        );
        Ok(())
    }

    /// A frontend's change of state, on stderr and to its `log` targets, as HAProxy reports it.
    fn frontend_warning(&self, fe: &Proxy, line: &str) {
        crate::logging::warning(line);
        self.log_to(fe, crate::logging::targets::WARNING, line);
    }

    /// `clear counters [all]` of the Runtime API: the maxima of every proxy, server and of the
    /// process (`MaxConnRate`); with `all`, the cumulated counters of proxies and servers too.
    pub fn clear_counters(&self, all: bool) {
        for p in &self.proxies {
            p.counters.clear(all);
            for s in p.servers().iter() {
                s.counters.clear(all);
            }
        }
        self.counters.conn_rate.clear_max();
    }

    /// Sends `line` of `severity` to the global `log` targets (Lua's `core.log` and friends).
    pub(crate) fn log_global(&self, severity: u8, line: &str) {
        let g = &self.config.global;
        if g.logs.is_empty() {
            return;
        }
        let targets: Vec<&crate::config::LogTarget> = g.logs.iter().collect();
        let tag = g
            .log_tag
            .as_deref()
            .unwrap_or_else(|| crate::logging::targets::default_tag());
        let mut l = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        l.send(&targets, severity, tag, line);
    }

    /// Proxy `p`'s syslog tag: its `log-tag`, the global one, or the program name.
    pub(crate) fn log_tag<'a>(&'a self, p: &'a Proxy) -> &'a str {
        p.config
            .log_tag
            .as_deref()
            .or(self.config.global.log_tag.as_deref())
            .unwrap_or_else(|| crate::logging::targets::default_tag())
    }

    /// Sends `line` of `severity` to proxy `p`'s `log` targets (`log global`: the global ones),
    /// as HAProxy's `send_log(proxy, ...)` does for server state changes.
    pub(crate) fn log_to(&self, p: &Proxy, severity: u8, line: &str) {
        let mut targets = Vec::new();
        for t in &p.config.logs {
            match t {
                crate::config::LogTarget::Global => targets.extend(self.config.global.logs.iter()),
                t => targets.push(t),
            }
        }
        if !targets.is_empty() {
            let mut l = self.logs.lock().unwrap_or_else(|e| e.into_inner());
            l.send(&targets, severity, self.log_tag(p), line);
        }
    }

    /// Every proxy in configuration order.
    pub fn proxies(&self) -> &[Arc<Proxy>] {
        &self.proxies
    }

    /// A proxy by index (as stored in `Server::proxy_index`).
    pub fn proxy_at(&self, index: usize) -> Option<&Arc<Proxy>> {
        self.proxies.get(index)
    }

    /// The pattern lists of every proxy, ACLs' and maps', grouped by id (a file's lists are
    /// one group), in id order: what `#<id>` or a file name designates to `add map`, `get
    /// acl`... and Lua's `core.get_patref`.
    pub fn pattern_lists(&self) -> Vec<Vec<Arc<crate::rules::patref::PatRef>>> {
        crate::rules::patref::groups(self.proxies().iter().flat_map(|p| p.config.pattern_refs()))
    }

    /// The groups an ACL uses: what `show acl` lists.
    pub fn acl_lists(&self) -> Vec<Vec<Arc<crate::rules::patref::PatRef>>> {
        let mut all = self.pattern_lists();
        all.retain(|g| g.iter().any(|r| !r.is_map));
        all
    }

    /// The groups a map converter uses: what `show map` lists.
    pub fn map_lists(&self) -> Vec<Vec<Arc<crate::rules::patref::PatRef>>> {
        let mut all = self.pattern_lists();
        all.retain(|g| g.iter().any(|r| r.is_map));
        all
    }

    /// The group of lists `name` designates (an ACL's or a map's): `#<id>`, or the file they
    /// were loaded from.
    pub fn pattern_list(&self, name: &str) -> Option<Vec<Arc<crate::rules::patref::PatRef>>> {
        crate::rules::patref::find(self.pattern_lists(), name)
    }

    /// A backend (or listen) by name.
    pub fn backend(&self, name: &str) -> Option<&Arc<Proxy>> {
        self.proxies
            .iter()
            .find(|p| p.is_backend() && &*p.name == name)
    }

    /// The stick table named `name`: a backend's, a frontend's, or a peers section's
    /// (`<section>/<name>`).
    pub fn table(&self, name: &str) -> Option<Arc<crate::stick::Table>> {
        let of = |p: &Arc<Proxy>| p.table.clone();
        self.backend(name)
            .and_then(of)
            .or_else(|| self.frontend(name).and_then(of))
            .or_else(|| self.peers_tables.iter().find(|t| &*t.name == name).cloned())
    }

    /// Every stick table: the proxies' in their order, then the peers sections'.
    pub fn tables(&self) -> Vec<Arc<crate::stick::Table>> {
        self.proxies
            .iter()
            .filter_map(|p| p.table.clone())
            .chain(self.peers_tables.iter().cloned())
            .collect()
    }

    /// A frontend (or listen) by name.
    pub fn frontend(&self, name: &str) -> Option<&Arc<Proxy>> {
        self.proxies
            .iter()
            .find(|p| p.is_frontend() && &*p.name == name)
    }

    /// Resolves `backend/server` as the Runtime API does.
    pub fn find_server(&self, path: &str) -> Result<Arc<Server>, LookupError> {
        let (b, s) = path.split_once('/').ok_or(LookupError::Syntax)?;
        let be = self.backend(b).ok_or(LookupError::NoBackend)?;
        be.server(s).ok_or(LookupError::NoServer)
    }

    /// Every live server, in proxy then id order.
    pub fn all_servers(&self) -> Vec<Arc<Server>> {
        self.proxies
            .iter()
            .flat_map(|p| p.servers().iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// The event bus servers publish on.
    pub fn bus(&self) -> &Arc<EventBus> {
        &self.bus
    }

    /// The `global` section.
    pub fn global(&self) -> &Global {
        &self.config.global
    }

    /// A `mailers` section by name.
    pub fn mailers(&self, name: &str) -> Option<&MailersConfig> {
        self.config.mailers.iter().find(|m| m.name == name)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Slab<Arc<Server>>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `nbthread`, else one thread per CPU this process may use (what the workers start).
fn nbthread(global: &crate::config::Global) -> usize {
    global
        .nbthread
        .unwrap_or_else(crate::sys::usable_cpus)
        .max(1)
}

/// HAProxy's fd accounting (`compute_ideal_maxconn` and `compute_ideal_maxsock`, splice pipes
/// left out; 2.6 and 3.2 agree): 20 fds kept, one per listener (binds of enabled frontends,
/// stats sockets) and per health-checked server (`fd_users`), three per thread; half the rest
/// of `nofile` is the derived `maxconn` (unless `maxconn` is set), and `Maxsock` what it all
/// adds up to. Returns `(maxconn, maxsock)`.
fn fd_plan(nofile: u64, threads: u64, fd_users: u64, maxconn: Option<u64>) -> (u64, u64) {
    let kept = 20 + fd_users + 3 * threads;
    let maxconn = maxconn.unwrap_or_else(|| (nofile.saturating_sub(kept) / 2).clamp(1, 1_000_000));
    (maxconn, kept + 2 * maxconn)
}

#[cfg(test)]
mod fd_plan_tests {
    /// HAProxy 2.6's `show info` Maxconn and Maxsock under `ulimit -n 20000`, config by config
    /// (threads, listeners + checked servers, global maxconn), and HAProxy 3.2's transcript.
    #[test]
    fn maxconn_and_maxsock_as_haproxy_plans_them() {
        for (threads, users, maxconn, want) in [
            (1, 2, None, (9987, 19999)),
            (2, 2, None, (9986, 20000)),
            (2, 3, None, (9985, 19999)),
            (2, 5, None, (9984, 19999)),
            (2, 6, None, (9984, 20000)),
            (1, 3, None, (9987, 20000)),
            (4, 2, None, (9983, 20000)),
            (2, 2, Some(500), (500, 1028)),
            (2, 6, Some(500), (500, 1032)),
            // the 3.2 transcript: 2 threads, a bind, the stats socket, one checked server
            (2, 3, None, (9985, 19999)),
        ] {
            assert_eq!(
                super::fd_plan(20_000, threads, users, maxconn),
                want,
                "{threads} {users} {maxconn:?}"
            );
        }
    }
}
