//! A live proxy (frontend, backend or listen) and its server list snapshot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::server::Server;
use crate::config::ProxyConfig;

/// Traffic counters of a proxy (frontend and backend sides share the struct).
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Current sessions (`scur`).
    pub cur_sess: AtomicU64,
    /// Highest `cur_sess` (`smax`).
    pub max_sess: AtomicU64,
    /// Sessions ever (`stot`).
    pub tot_sess: AtomicU64,
    /// Bytes client→server (`bin`).
    pub bytes_in: AtomicU64,
    /// Session log lines written for the frontend (`%lc`).
    pub log_count: AtomicU64,
    /// Bytes server→client (`bout`).
    pub bytes_out: AtomicU64,
    /// Connections a `tcp-request connection` rule rejected (`dcon`).
    pub denied: AtomicU64,
    /// Sessions a `tcp-request session` rule rejected (`dses`).
    pub denied_sess: AtomicU64,
    /// Requests a `tcp-request content` rule rejected (`dreq`).
    pub denied_req: AtomicU64,
    /// Connections accepted, sessions or not (`conn_tot`; `stot` counts sessions).
    pub cum_conn: AtomicU64,
    /// TLS handshakes completed on the frontend's `ssl` listeners (`ssl_sess`).
    pub ssl_sess: AtomicU64,
    /// TLS handshakes failed there, timeouts aside (`ssl_failed_handshake`).
    pub ssl_failed_handshake: AtomicU64,
    /// Connection errors (`econ`, backend).
    pub econ: AtomicU64,
    /// Response errors (`eresp`, backend): a server connection failed mid-session.
    pub eresp: AtomicU64,
    /// Retries (`wretr`).
    pub wretr: AtomicU64,
    /// Redispatches (`wredis`).
    pub wredis: AtomicU64,
    /// Balancer picks (`lbtot`).
    pub lbtot: AtomicU64,
    /// Client aborts.
    pub cli_abrt: AtomicU64,
    /// Server aborts.
    pub srv_abrt: AtomicU64,
    /// Connections waiting in the backend queue (`qcur`).
    pub queue_cur: AtomicU64,
    /// Highest `queue_cur` (`qmax`).
    pub queue_max: AtomicU64,
    /// Times the backend lost its last server (`chkdown` on BACKEND).
    pub chkdown: AtomicU64,
    /// Sessions per second on the backend side (`rate`, `rate_max` of a BACKEND row).
    pub sess_rate: super::Rate,
    /// Connections accepted per second (`conn_rate`, `conn_rate_max`; frontend).
    pub conn_rate: super::Rate,
    /// Where the frontend's accept loops wait while its `maxconn` is reached or it is paused;
    /// opened when a session ends, the limit changes, or the frontend resumes or stops.
    pub accept_gate: super::Gate,
}

impl ProxyCounters {
    /// Records a session start, keeping `smax`.
    pub fn session_started(&self) {
        super::count_session_start(&self.cur_sess, &self.max_sess, &self.tot_sess);
    }

    /// `clear counters`: the maxima; `all`: every cumulated counter too (never the current
    /// sessions or queue, which are live state), but not the backend's `chkdown`, which
    /// HAProxy keeps in the proxy, outside the counters it clears.
    pub fn clear(&self, all: bool) {
        let z = |c: &AtomicU64| c.store(0, Ordering::Relaxed);
        z(&self.max_sess);
        z(&self.queue_max);
        self.sess_rate.clear_max();
        self.conn_rate.clear_max();
        if all {
            for c in [
                &self.tot_sess,
                &self.bytes_in,
                &self.bytes_out,
                &self.denied,
                &self.denied_sess,
                &self.denied_req,
                &self.cum_conn,
                &self.econ,
                &self.eresp,
                &self.wretr,
                &self.wredis,
                &self.lbtot,
                &self.cli_abrt,
                &self.srv_abrt,
            ] {
                z(c);
            }
        }
    }

    /// Records a session end (and lets an accept loop held by `maxconn` go on).
    pub fn session_ended(&self) {
        self.cur_sess.fetch_sub(1, Ordering::Relaxed);
        self.accept_gate.open();
    }
}

/// A proxy. Proxies are fixed at start-up; their server lists change at runtime.
#[derive(Debug)]
pub struct Proxy {
    /// Index in the registry's proxy list.
    pub index: usize,
    /// Unique id (`iid` in stats, `proxy_uuid` in events).
    pub uuid: u32,
    /// Section name.
    pub name: Arc<str>,
    /// The section's configuration (its `servers` field reflects start-up only).
    pub config: Arc<ProxyConfig>,
    /// Counters.
    pub counters: ProxyCounters,
    servers: ArcSwap<Vec<Arc<Server>>>,
    /// Bumped on every change that can alter a balancing decision (state, weight, server list);
    /// workers rebuild their per-thread balancer state when it moves.
    generation: AtomicU64,
    /// Whether the backend had a usable server after the last change (for the "has no server
    /// available!" alert, which HAProxy prints once per loss).
    pub(super) had_usable: AtomicBool,
    /// Frontend paused (`disable frontend`, `Proxy:pause()`): its listeners refuse connections.
    pub paused: AtomicBool,
    /// Frontend stopped for good (`shutdown frontend`, `Proxy:stop()`).
    pub stopped: AtomicBool,
    /// Duplicates of the frontend's listening sockets (one per `bind` and worker): what
    /// pausing, resuming and stopping act on, at once for every worker, while the workers keep
    /// their own.
    pub(super) listening: Mutex<Vec<Listening>>,
    /// Frontend `maxconn` set at runtime (`set maxconn frontend`; `u64::MAX`: the config's).
    maxconn_override: AtomicU64,
    /// `fullconn`, or HAProxy's default: a tenth of the `maxconn` of the frontends that lead
    /// here (at least 1); set once every proxy exists.
    fullconn: AtomicU64,
    /// Next revision id per server name, so a re-added name gets a new `rid`.
    pub(super) rids: Mutex<HashMap<String, u32>>,
    /// Queued connections (all servers at `maxconn`) also wait on this: a balancing change (a
    /// server UP, a weight or maxconn change) may open slots no session freed, so it wakes them
    /// all to look again. Rare; a freed slot is handed over through [`Proxy::queue`] instead.
    pub rebalanced: tokio::sync::Notify,
    /// Who waits for a slot, in arrival order; a session that frees a slot hands it to the
    /// oldest that can use it.
    pub queue: super::WaitQueue<Arc<Server>>,
    /// Its stick table (`stick-table`), which sessions of any proxy may track keys in.
    pub table: Option<Arc<crate::stick::Table>>,
}

/// One of a frontend's listening sockets, as the frontend holds it.
#[derive(Debug)]
pub(super) struct Listening {
    /// A duplicate of the worker's socket.
    pub(super) sock: std::os::fd::OwnedFd,
    /// Where it listens (its port, also when the `bind` said 0).
    pub(super) addr: SocketAddr,
    /// The `bind` said port 0: the socket gives its port back when paused, and takes it again
    /// on resume.
    pub(super) ephemeral: bool,
    /// Its `listen()` backlog.
    pub(super) backlog: i32,
}

impl Proxy {
    pub(super) fn new(index: usize, uuid: u32, config: Arc<ProxyConfig>) -> Proxy {
        // a `disabled` frontend is never bound: HAProxy calls it shut down
        let disabled = config.disabled;
        let table = config
            .stick_table
            .as_ref()
            .map(|(t, _)| crate::stick::Table::new(config.name.as_str().into(), t.clone()));
        Proxy {
            index,
            uuid,
            name: config.name.as_str().into(),
            config,
            counters: ProxyCounters::default(),
            servers: ArcSwap::from_pointee(Vec::new()),
            generation: AtomicU64::new(0),
            had_usable: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            stopped: AtomicBool::new(disabled),
            listening: Mutex::new(Vec::new()),
            maxconn_override: AtomicU64::new(u64::MAX),
            fullconn: AtomicU64::new(0),
            rids: Mutex::new(HashMap::new()),
            rebalanced: tokio::sync::Notify::new(),
            queue: super::WaitQueue::default(),
            table,
        }
    }

    /// The current servers, in id order; a cheap lock-free snapshot.
    pub fn servers(&self) -> Arc<Vec<Arc<Server>>> {
        self.servers.load_full()
    }

    pub(super) fn set_servers(&self, v: Vec<Arc<Server>>) {
        self.servers.store(Arc::new(v));
        self.bump();
    }

    /// A server by name.
    pub fn server(&self, name: &str) -> Option<Arc<Server>> {
        self.servers
            .load()
            .iter()
            .find(|s| &*s.name == name)
            .cloned()
    }

    /// The balancing generation (see the field doc).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks balancing state stale.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.rebalanced.notify_waiters();
    }

    /// Active (non-backup) servers usable for balancing (`get_srv_act`, `act` in stats).
    pub fn srv_act(&self) -> usize {
        self.servers
            .load()
            .iter()
            .filter(|s| !s.params.backup && s.is_usable())
            .count()
    }

    /// Backup servers usable for balancing (`get_srv_bck`, `bck` in stats).
    pub fn srv_bck(&self) -> usize {
        self.servers
            .load()
            .iter()
            .filter(|s| s.params.backup && s.is_usable())
            .count()
    }

    /// Is a frontend (`frontend` or `listen`).
    pub fn is_frontend(&self) -> bool {
        self.config.cap.frontend
    }

    /// Is a backend (`backend` or `listen`).
    pub fn is_backend(&self) -> bool {
        self.config.cap.backend
    }

    /// Lua's `get_cap()`.
    pub fn cap_name(&self) -> &'static str {
        match (self.config.cap.frontend, self.config.cap.backend) {
            (true, true) => "proxy",
            (true, false) => "frontend",
            _ => "backend",
        }
    }

    /// The backend load at which its servers reach their full `maxconn` (`fullconn`).
    pub fn fullconn(&self) -> u64 {
        self.fullconn.load(Ordering::Relaxed)
    }

    pub(super) fn set_fullconn(&self, v: u64) {
        self.fullconn.store(v, Ordering::Relaxed);
    }

    /// The frontend's own connection limit: `None` when it has none (`maxconn` 0 or unset in
    /// the config: only the global limit applies); `Some(0)` after `set maxconn frontend <fe>
    /// 0`, which, as in HAProxy, accepts nothing until the limit is raised.
    pub fn maxconn(&self) -> Option<u32> {
        match self.maxconn_override.load(Ordering::Relaxed) {
            u64::MAX => (self.config.maxconn > 0).then_some(self.config.maxconn),
            v => Some(v as u32),
        }
    }

    /// Registers one of the frontend's listening sockets (a duplicate), the address it listens
    /// on and its backlog. A frontend paused or stopped before its workers opened it (by a Lua
    /// script at start-up, say) gets the socket in that state at once.
    pub fn add_listener(
        &self,
        sock: std::os::fd::OwnedFd,
        addr: SocketAddr,
        ephemeral: bool,
        backlog: i32,
    ) {
        let mut l = self.listening.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped.load(Ordering::Acquire) {
            crate::sys::stop_listening_for_good(&sock);
            return;
        }
        if self.paused.load(Ordering::Acquire) {
            let _ = crate::sys::stop_listening(&sock);
        }
        l.push(Listening {
            sock,
            addr,
            ephemeral,
            backlog,
        });
    }

    /// Drops the frontend's handles on its listeners (the process stops): each closes with
    /// the last worker holding it, as if the frontend never had them.
    pub fn forget_listeners(&self) {
        self.listening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `set maxconn frontend`: the frontend's limit from now on (0 accepts nothing);
    /// connections over it stay in the kernel's backlog until sessions end.
    pub fn set_maxconn(&self, v: u32) {
        self.maxconn_override.store(u64::from(v), Ordering::Relaxed);
        self.counters.accept_gate.open();
    }
}
