//! A live server: identity, configuration, and the atomics every thread reads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use arc_swap::ArcSwap;

use super::check::{CheckReport, CheckStatus, Health};
use super::state::{AdminFlags, OpState};
use crate::config::ServerParams;

/// Traffic counters of a server, updated by workers with relaxed atomics.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Current sessions (`scur`).
    pub cur_sess: AtomicU64,
    /// Highest `cur_sess` seen (`smax`).
    pub max_sess: AtomicU64,
    /// Sessions ever (`stot`).
    pub tot_sess: AtomicU64,
    /// Times the balancer picked it (`lbtot`).
    pub lbtot: AtomicU64,
    /// TLS handshakes with it completed (`ssl_sess`, an `ssl` server).
    pub ssl_sess: AtomicU64,
    /// TLS handshakes with it failed (`ssl_failed_handshake`), each a failed connection.
    pub ssl_failed_handshake: AtomicU64,
    /// Bytes from client to server (`bin`).
    pub bytes_in: AtomicU64,
    /// Bytes from server to client (`bout`).
    pub bytes_out: AtomicU64,
    /// Connection errors (`econ`).
    pub econ: AtomicU64,
    /// Response errors (`eresp`).
    pub eresp: AtomicU64,
    /// Retries (`wretr`).
    pub wretr: AtomicU64,
    /// Redispatches (`wredis`).
    pub wredis: AtomicU64,
    /// Client aborts (`cli_abrt`).
    pub cli_abrt: AtomicU64,
    /// Server aborts (`srv_abrt`).
    pub srv_abrt: AtomicU64,
    /// Connections waiting in this server's queue (`qcur`).
    pub queue_cur: AtomicU64,
    /// Highest `queue_cur` seen (`qmax`).
    pub queue_max: AtomicU64,
    /// Failed checks (`chkfail`).
    pub chkfail: AtomicU64,
    /// UP→DOWN transitions (`chkdown`).
    pub chkdown: AtomicU64,
    /// Times `observe` reached `error-limit` (`hanafail`).
    pub hanafail: AtomicU64,
    /// Seconds spent DOWN, closed periods only (`downtime`).
    pub downtime: AtomicU64,
    /// Bytes forwarded with splice (both ways).
    pub spliced: AtomicU64,
    /// Sessions (connection attempts) per second (`rate`, `rate_max`).
    pub sess_rate: super::Rate,
}

impl ServerCounters {
    /// Records a session start, keeping `smax`.
    pub fn session_started(&self) {
        super::count_session_start(&self.cur_sess, &self.max_sess, &self.tot_sess);
    }

    /// `clear counters`: the maxima; `all`: every cumulated counter too (never the current
    /// sessions or queue, which are live state), but not `downtime`, which HAProxy keeps in
    /// the server, outside the counters it clears.
    pub fn clear(&self, all: bool) {
        let z = |c: &AtomicU64| c.store(0, Ordering::Relaxed);
        z(&self.max_sess);
        z(&self.queue_max);
        self.sess_rate.clear_max();
        if all {
            for c in [
                &self.tot_sess,
                &self.lbtot,
                &self.bytes_in,
                &self.bytes_out,
                &self.econ,
                &self.eresp,
                &self.wretr,
                &self.wredis,
                &self.cli_abrt,
                &self.srv_abrt,
                &self.chkfail,
                &self.chkdown,
                &self.hanafail,
                &self.spliced,
            ] {
                z(c);
            }
        }
    }

    /// Records a session end. Sequentially consistent: a session that frees a slot then looks
    /// for queued connections, and a connection that joins a queue then looks for a free slot,
    /// must not both miss the other.
    pub fn session_ended(&self) {
        self.cur_sess.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Health-check state of a server; written by the model only, read for stats and Lua.
#[derive(Debug, Clone)]
pub struct CheckState {
    /// `check` was configured (the server has a check at all).
    pub configured: bool,
    /// Checks currently run (`enable/disable health`; off for a new dynamic server).
    pub enabled: bool,
    /// Health counter.
    pub health: Health,
    /// Last report, if any check ran.
    pub last: Option<CheckReport>,
}

impl CheckState {
    /// Last status, `INI` when configured but not run, `UNK` without a check.
    pub fn status(&self) -> CheckStatus {
        match (&self.last, self.configured) {
            (Some(r), _) => r.result.status,
            (None, true) => CheckStatus::Ini,
            (None, false) => CheckStatus::Ini,
        }
    }

    /// HAProxy's `srv_check_state` flags (0x02 configured, 0x04 enabled).
    pub fn flags(&self) -> u32 {
        let mut f = 0;
        if self.configured {
            f |= 0x02;
            if self.enabled {
                f |= 0x04;
            }
        }
        f
    }
}

/// Why a server's sessions are closed under them: HAProxy's termination state in the log
/// (`K-` or `D-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillCause {
    /// `shutdown sessions server` (or a hard stop): `K`.
    Admin,
    /// `on-marked-down shutdown-sessions` as the server went down: `D`.
    Down,
    /// `on-marked-up shutdown-backup-sessions` on another server that came up, this one a
    /// backup: `U`.
    Up,
}

/// A server of a backend. Shared as `Arc<Server>` by the registry, workers, checks and Lua
/// objects; after `del server` it stays readable with `deleted() == true`.
#[derive(Debug)]
pub struct Server {
    /// Stable key in the registry's slab while the server exists.
    pub key: usize,
    /// Server name, unique in its backend.
    pub name: Arc<str>,
    /// Proxy-unique id.
    pub puid: u32,
    /// Revision id: distinguishes servers that reuse a name/puid after a delete.
    pub rid: u32,
    /// Index of its backend in the registry's proxy list.
    pub proxy_index: usize,
    /// Its backend's name.
    pub proxy_name: Arc<str>,
    /// Its backend's uuid.
    pub proxy_uuid: u32,
    /// Added at runtime (`add server`).
    pub dynamic: bool,
    /// Configuration (static parts: check settings, backup, slowstart...).
    pub params: ServerParams,
    /// Counters.
    pub counters: ServerCounters,
    addr: ArcSwap<SocketAddr>,
    op_state: AtomicU8,
    admin: AtomicU8,
    uweight: AtomicU32,
    iweight: AtomicU32,
    maxconn: AtomicU32,
    /// `minconn` (equal to `maxconn` for a static limit).
    minconn: AtomicU32,
    deleted: AtomicBool,
    /// Unix seconds of the last state change.
    last_change: AtomicU64,
    /// When the current STARTING (slowstart) period began, as ms since `epoch`.
    starting_since_ms: AtomicU64,
    epoch: Instant,
    /// Bumped by `shutdown sessions server` or `on-marked-down shutdown-sessions`, with why;
    /// workers watch it to close this server's sessions.
    kill: tokio::sync::watch::Sender<(u64, KillCause)>,
    pub(super) check: Mutex<CheckState>,
    /// The agent check (`agent-check`), apart from the health check as in HAProxy.
    pub(super) agent: Mutex<super::agent::AgentState>,
    /// `track`: the server whose state this one takes (set once every server exists).
    tracked: OnceLock<Arc<Server>>,
    /// The servers tracking this one, newest first (HAProxy's `trackers` list).
    trackers: Mutex<Vec<Weak<Server>>>,
    /// Consecutive connection failures seen by `observe layer4` (workers count them).
    passive_errors: AtomicU32,
    /// Times `error-limit` was reached since the check thread last looked: the workers only
    /// count, the check thread acts, so no worker ever waits.
    passive_alarms: AtomicU32,
    /// The error count of the last of those times.
    passive_last: AtomicU32,
    /// `ssl`: the TLS client configurations its connections use, built at first use.
    tls: OnceLock<Option<Arc<crate::tls::ServerTls>>>,
}

impl Server {
    /// `ssl`: the TLS configurations of its connections (`None` for a plain server), built
    /// once; `default_verify` is the global `ssl-server-verify`. The configuration check loaded
    /// every file already: should one fail now, the connections verify against no CA, so they
    /// fail, and say why once.
    pub fn tls_client(&self, default_verify: bool) -> Option<Arc<crate::tls::ServerTls>> {
        self.tls
            .get_or_init(|| {
                let p = &self.params;
                if !p.ssl {
                    return None;
                }
                match crate::tls::ServerTls::new(p, default_verify) {
                    Ok(t) => Some(Arc::new(t)),
                    Err(e) => {
                        crate::logging::alert(&format!(
                            "Server {}/{}: ssl: {e}.",
                            self.proxy_name, self.name
                        ));
                        crate::tls::ServerTls::failing().ok().map(Arc::new)
                    }
                }
            })
            .clone()
    }

    /// Builds a server in its start-up state (`disabled` → CMAINT + FMAINT; dynamic → FMAINT,
    /// check off).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        key: usize,
        name: &str,
        addr: SocketAddr,
        params: ServerParams,
        puid: u32,
        rid: u32,
        proxy_index: usize,
        proxy_name: Arc<str>,
        proxy_uuid: u32,
        dynamic: bool,
    ) -> Server {
        let mut admin = 0;
        if params.disabled {
            // as HAProxy: the configuration's mark, and the forced maintenance that
            // `set server state ready` (or `enable server`) lifts
            admin |= AdminFlags::CMAINT | AdminFlags::FMAINT;
        }
        if dynamic {
            admin |= AdminFlags::FMAINT;
        }
        if params.unresolved {
            // `init-addr none`: no address until its name resolves
            admin |= AdminFlags::RMAINT;
        }
        let health = Health {
            cur: params.rise,
            rise: params.rise,
            fall: params.fall,
        };
        let check = CheckState {
            configured: params.check,
            enabled: params.check && !dynamic,
            health,
            last: None,
        };
        // HAProxy's agent: rise 1, fall 1, starting good
        let agent = super::agent::AgentState {
            check: CheckState {
                configured: params.agent_check,
                enabled: params.agent_check && !dynamic,
                health: Health {
                    cur: 1,
                    rise: 1,
                    fall: 1,
                },
                last: None,
            },
            // `addr` moves the agent too, unless `agent-addr` says where it is
            addr: params.agent_addr.or(params.check_addr),
            port: params.agent_port.unwrap_or(0),
            send: params.agent_send.clone(),
        };
        let op = if admin & AdminFlags::MAINT != 0 {
            OpState::Stopped
        } else {
            OpState::Running
        };
        Server {
            key,
            name: name.into(),
            puid,
            rid,
            proxy_index,
            proxy_name,
            proxy_uuid,
            dynamic,
            counters: ServerCounters::default(),
            addr: ArcSwap::from_pointee(addr),
            op_state: AtomicU8::new(op as u8),
            admin: AtomicU8::new(admin),
            uweight: AtomicU32::new(params.weight),
            iweight: AtomicU32::new(params.weight),
            maxconn: AtomicU32::new(params.maxconn),
            // unset (or above `maxconn`): a static limit
            minconn: AtomicU32::new(match params.minconn {
                m if m == 0 || m > params.maxconn => params.maxconn,
                m => m,
            }),
            deleted: AtomicBool::new(false),
            last_change: AtomicU64::new(super::unix_now() as u64),
            starting_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            kill: tokio::sync::watch::channel((0, KillCause::Admin)).0,
            check: Mutex::new(check),
            agent: Mutex::new(agent),
            tracked: OnceLock::new(),
            tls: OnceLock::new(),
            trackers: Mutex::new(Vec::new()),
            passive_errors: AtomicU32::new(0),
            passive_alarms: AtomicU32::new(0),
            passive_last: AtomicU32::new(0),
            params,
        }
    }

    /// `observe layer4`: a connection attempt's outcome, from a worker. A success clears the
    /// count of consecutive failures; the failure that reaches `error-limit` raises the alarm
    /// that [`Server::take_passive_alarm`] hands to the check thread, and starts a new count
    /// (HAProxy's `health_adjust`). Only atomics: a worker never waits here.
    pub fn observe_connect(&self, ok: bool) {
        if !self.params.observe_layer4 {
            return;
        }
        if ok {
            if self.passive_errors.load(Ordering::Relaxed) != 0 {
                self.passive_errors.store(0, Ordering::Relaxed);
            }
            return;
        }
        let n = self.passive_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.params.error_limit {
            self.passive_errors.store(0, Ordering::Relaxed);
            self.passive_last.store(n, Ordering::Relaxed);
            self.passive_alarms.fetch_add(1, Ordering::Release);
        }
    }

    /// How many times `error-limit` was reached since the last call, and the error count of
    /// the last time, if it was (each one counts in HAProxy: `hanafail`, a failed check).
    pub fn take_passive_alarm(&self) -> Option<(u32, u32)> {
        match self.passive_alarms.swap(0, Ordering::Acquire) {
            0 => None,
            n => Some((n, self.passive_last.load(Ordering::Relaxed))),
        }
    }

    /// A passed check: the consecutive errors `observe` counted start again (HAProxy clears
    /// them when a check succeeds).
    pub(super) fn clear_passive_errors(&self) {
        if self.passive_errors.load(Ordering::Relaxed) != 0 {
            self.passive_errors.store(0, Ordering::Relaxed);
        }
    }

    /// Where to connect now.
    pub fn addr(&self) -> SocketAddr {
        **self.addr.load()
    }

    pub(super) fn set_addr(&self, a: SocketAddr) {
        self.addr.store(Arc::new(a));
    }

    /// Operational state.
    pub fn op_state(&self) -> OpState {
        OpState::from_u8(self.op_state.load(Ordering::Acquire))
    }

    pub(super) fn set_op_state(&self, s: OpState) {
        if s == OpState::Starting {
            self.starting_since_ms
                .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        self.op_state.store(s as u8, Ordering::Release);
    }

    /// Administrative flags.
    pub fn admin(&self) -> AdminFlags {
        AdminFlags(self.admin.load(Ordering::Acquire))
    }

    pub(super) fn set_admin(&self, f: AdminFlags) {
        self.admin.store(f.0, Ordering::Release);
    }

    /// User weight (`set weight`), 0..=256.
    pub fn uweight(&self) -> u32 {
        self.uweight.load(Ordering::Relaxed)
    }

    pub(super) fn set_uweight(&self, w: u32) {
        self.uweight.store(w, Ordering::Relaxed);
    }

    /// Initial (configured) weight.
    pub fn iweight(&self) -> u32 {
        self.iweight.load(Ordering::Relaxed)
    }

    /// The user weight, 0 when draining: what the static algorithms (`static-rr`, map-based
    /// hashing) balance on, since HAProxy ramps a slow start only for the dynamic ones.
    pub fn static_weight(&self) -> u32 {
        if self.admin().drain() {
            0
        } else {
            self.uweight()
        }
    }

    /// Weight the dynamic algorithms use now: the user weight, ramped during slowstart, 0 when
    /// draining.
    pub fn effective_weight(&self) -> u32 {
        let w = self.static_weight();
        if let (true, Some((el, total))) = (w > 0, self.slowstart_progress()) {
            if el < total {
                return ((w as u64 * el / total.max(1)) as u32).max(1).min(w);
            }
        }
        w
    }

    /// Whether the slowstart ramp of a STARTING server is over (the model then makes it RUNNING).
    pub fn slowstart_done(&self) -> bool {
        matches!(self.slowstart_progress(), Some((el, total)) if el >= total)
    }

    /// Whether the server is STARTING with a `slowstart` ramp (its weight and limit grow).
    fn ramping(&self) -> bool {
        self.params.slowstart.is_some() && self.op_state() == OpState::Starting
    }

    /// How far the slowstart ramp has gone, while the server ramps: (elapsed, whole) in ms.
    fn slowstart_progress(&self) -> Option<(u64, u64)> {
        let ss = self.params.slowstart.filter(|_| self.ramping())?;
        let since = self.starting_since_ms.load(Ordering::Relaxed);
        let el = (self.epoch.elapsed().as_millis() as u64).saturating_sub(since);
        Some((el, ss.as_millis() as u64))
    }

    /// Connection limit (0 = none).
    pub fn maxconn(&self) -> u32 {
        self.maxconn.load(Ordering::Relaxed)
    }

    pub(super) fn set_maxconn(&self, v: u32) {
        // HAProxy's `server_parse_maxconn_change_request`: a static limit stays static
        if self.minconn.load(Ordering::Relaxed) == self.maxconn.load(Ordering::Relaxed) {
            self.minconn.store(v, Ordering::Relaxed);
        }
        self.maxconn.store(v, Ordering::Relaxed);
    }

    /// Whether a client a stick table sends here may come: HAProxy's persistence test (not
    /// stopped, not in maintenance), so a draining server keeps its persistent clients.
    pub fn may_persist(&self) -> bool {
        self.op_state() != OpState::Stopped && !self.admin().maint() && !self.deleted()
    }

    /// Whether the balancer may pick it: running (or starting), not in maintenance, with a
    /// weight (a draining server has none), not deleted.
    pub fn is_usable(&self) -> bool {
        matches!(self.op_state(), OpState::Running | OpState::Starting)
            && !self.admin().maint()
            && self.effective_weight() > 0
            && !self.deleted()
    }

    /// HAProxy's `srv_dynamic_maxconn`: the limit now (0 = none). With a `minconn` below
    /// `maxconn`, it grows from `minconn` to `maxconn` as the backend's connections
    /// (`beconn`) reach its `fullconn`; during a slowstart it ramps up with the weight (never
    /// below 1).
    pub fn dynamic_maxconn(&self, beconn: u64, fullconn: u64) -> u64 {
        let maxconn = u64::from(self.maxconn());
        if maxconn == 0 {
            return 0;
        }
        let minconn = u64::from(self.minconn.load(Ordering::Relaxed));
        let mut max = if beconn >= fullconn || minconn == maxconn {
            maxconn
        } else {
            minconn.max(beconn * maxconn / fullconn.max(1)).max(1)
        };
        if let Some((el, total)) = self.slowstart_progress() {
            if el < total {
                max = (max * (100 * el / total.max(1)) / 100).max(1);
            }
        }
        max
    }

    /// Whether the server has a free connection slot under its limit now (see
    /// [`Server::dynamic_maxconn`]; `be` is its backend). Sequentially consistent, as
    /// [`ServerCounters::session_ended`]: a connection that just joined a queue looks here.
    pub fn has_free_slot(&self, be: &super::Proxy) -> bool {
        let m = self.slot_limit(be);
        m == 0 || self.counters.cur_sess.load(Ordering::SeqCst) < m
    }

    /// The limit a new connection to this server must stay under now (0 = none).
    pub fn slot_limit(&self, be: &super::Proxy) -> u64 {
        // no limit, or a static one off a ramp: the backend's busy counters need not be read
        let maxconn = self.maxconn();
        if maxconn == 0 {
            return 0;
        }
        if self.minconn.load(Ordering::Relaxed) == maxconn && !self.ramping() {
            return u64::from(maxconn);
        }
        self.dynamic_maxconn(be.counters.cur_sess.load(Ordering::Relaxed), be.fullconn())
    }

    /// Removed by `del server`; Lua methods then return nil.
    pub fn deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub(super) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    /// Unix seconds of the last state change.
    pub fn last_change(&self) -> u64 {
        self.last_change.load(Ordering::Relaxed)
    }

    pub(super) fn touch(&self) {
        self.last_change
            .store(super::unix_now() as u64, Ordering::Relaxed);
    }

    /// A copy of the health-check state.
    pub fn check_state(&self) -> CheckState {
        self.check.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// HAProxy's agent condition for going up: no enabled agent check, or one whose health
    /// reached its rise.
    pub(super) fn agent_agrees(&self) -> bool {
        let a = self.agent.lock().unwrap_or_else(|e| e.into_inner());
        !a.check.enabled || a.check.health.cur >= a.check.health.rise
    }

    /// `track`: the server whose state this one takes.
    pub fn tracked(&self) -> Option<&Arc<Server>> {
        self.tracked.get()
    }

    /// The servers tracking this one (deleted ones left out), newest first.
    pub fn trackers(&self) -> Vec<Arc<Server>> {
        let t = self.trackers.lock().unwrap_or_else(|e| e.into_inner());
        t.iter()
            .filter_map(Weak::upgrade)
            .filter(|s| !s.deleted())
            .collect()
    }

    /// Whether a server ever tracked this one: HAProxy then refuses to delete it
    /// (SRV_F_NON_PURGEABLE, never cleared).
    pub fn is_tracked(&self) -> bool {
        !self
            .trackers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Makes `this` track `target` (once; a second call changes nothing).
    pub(super) fn track(this: &Arc<Server>, target: &Arc<Server>) {
        if this.tracked.set(target.clone()).is_ok() {
            let mut t = target.trackers.lock().unwrap_or_else(|e| e.into_inner());
            t.insert(0, Arc::downgrade(this));
        }
    }

    /// The end of the tracking chain, when this server tracks one: its checks say how this
    /// one is, as `show stat` reads them.
    pub fn track_ref(&self) -> Option<Arc<Server>> {
        let mut at = self.tracked()?.clone();
        // a chain is loop-free (checked with the configuration); bounded all the same
        for _ in 0..64 {
            match at.tracked() {
                Some(next) => at = next.clone(),
                None => break,
            }
        }
        Some(at)
    }

    /// Whether the agent check runs (`agent-check`, not `disable agent`d): no copy of its
    /// state, for the check thread's scan of every server.
    pub fn agent_enabled(&self) -> bool {
        self.agent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check
            .enabled
    }

    /// A copy of the agent check's state.
    pub fn agent_state(&self) -> super::agent::AgentState {
        self.agent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A receiver that changes when `shutdown sessions server` (or `on-marked-down
    /// shutdown-sessions`) asks this server's sessions to close; the value says why.
    pub fn kill_watch(&self) -> tokio::sync::watch::Receiver<(u64, KillCause)> {
        self.kill.subscribe()
    }

    pub(super) fn kill_sessions(&self, cause: KillCause) {
        self.kill.send_modify(|(n, c)| {
            *n += 1;
            *c = cause;
        });
    }

    /// `"ip:port"` as Lua `get_addr()` and `show stat` print it.
    pub fn addr_text(&self) -> String {
        self.addr().to_string()
    }
}
