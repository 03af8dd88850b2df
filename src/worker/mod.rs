//! The data plane: `nbthread` worker threads, each pinned to a CPU and running its own
//! single-threaded io_uring runtime ([`ring`]); SO_REUSEPORT listeners per worker, marked with
//! the worker's CPU so that a connection is served where its SYN was processed (`steer`);
//! balancing; connect with retries; and forwarding that copies small messages through one buffer
//! per worker and splices streams through pooled pipes, with io_uring POLL_ADD readiness.
//!
//! TLS (`bind ... ssl`, `server ... ssl`) is rustls driven by hand on the same non-blocking
//! sockets (`tls`): decrypted bytes are copied through the worker's buffer, never spliced.
//!
//! Nothing crosses threads on the hot path: each worker has its own pipes, copy buffer, balancer
//! state and log sockets; shared state is the model's atomics.
//!
//! I/O model: every socket is a plain non-blocking std socket. Syscalls (accept4, connect,
//! splice, read/write) are made inline; only when one would block does the task wait, through an
//! io_uring `POLL_ADD` op. No `IORING_OP_SPLICE` (the kernel punts it to io-wq threads) and no
//! io_uring accept/read ops: an in-flight op holds a reference on its file, so a listener or
//! socket would outlive its close; readiness ops are always completed by `shutdown(2)` or removed
//! (`POLL_REMOVE`) first.
//! The runtime is reached only through `runtime::Rt` (block_on, spawn, ready, sleep, timeout).
//! Two implementations: [`ring::Ring`] (ours, the default) and `runtime::Uring`
//! (tokio-uring, selected with the hidden `HARP_RUNTIME=tokio-uring` for A/B comparisons, and
//! used automatically on kernels without io_uring `EXT_ARG`).

mod balance;
mod forward;
mod inspect;
mod listener;
mod ring;
mod runtime;
mod session;
mod sockopt;
mod steer;
mod tcplog;
mod tls;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::Ring;
use runtime::{Kind, Rt, Uring};
use steer::{Steering, Watchdog};

use crate::model::{Proxy, Registry};
use crate::sys::{self, Interest};

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A listener could not be opened.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A worker thread could not be spawned.
    #[error("cannot start worker thread: {0}")]
    Spawn(std::io::Error),
    /// The kernel refuses io_uring, which every worker runs on.
    #[error(
        "io_uring is not available ({0}): harp's workers need it; check the \
         kernel.io_uring_disabled sysctl, the container's seccomp profile, and RLIMIT_MEMLOCK \
         on kernels before 5.12"
    )]
    NoUring(std::io::Error),
    /// A worker thread died before its runtime was up (e.g. its ring could not be set up).
    #[error("worker {0} could not start its io_uring runtime (see the message above)")]
    Start(usize),
}

/// What a session needs to know of the listener that accepted it.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The listener's name (its `name`, else its number in the frontend) where a PROXY
    /// header may be read: `accept-proxy`, or an `expect-proxy layer4` rule.
    pub proxied: Option<Arc<str>>,
    /// `accept-proxy`.
    pub accept_proxy: bool,
    /// `ssl`: the TLS configuration its connections are handshaken with.
    pub tls: Option<crate::tls::Acceptor>,
    /// The listener's name, as logs show it (`fe/1: SSL handshake failure`).
    pub name: Arc<str>,
}

/// How long `start` waits for every worker's runtime to come up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Stop levels sent to workers.
const RUN: u8 = 0;
const GRACEFUL: u8 = 1;
const HARD: u8 = 2;

/// Running workers.
#[derive(Debug)]
pub struct Workers {
    stop: tokio::sync::watch::Sender<u8>,
    threads: Vec<JoinHandle<()>>,
    bound: Vec<(String, SocketAddr)>,
    /// Watches connection steering by CPU while it is on.
    watchdog: Option<Watchdog>,
}

/// What one worker owns; lives on its thread only.
pub(crate) struct Ctx {
    reg: Arc<Registry>,
    bufs: forward::Buffers,
    lb: RefCell<balance::Balancers>,
    logs: RefCell<crate::logging::targets::LogSockets>,
    stop: tokio::sync::watch::Receiver<u8>,
    active: Cell<usize>,
    /// Accept loops still running: a stopping worker waits for them, so that each serves what
    /// its listener had queued before the worker's runtime (and the loop with it) is dropped.
    accepting: Cell<usize>,
    /// This worker's index, and whether its listeners were marked with its CPU.
    index: usize,
    steered: bool,
    steer: Arc<Steering>,
}

/// Starts `nbthread` workers listening on every frontend `bind`.
pub fn start(reg: Arc<Registry>) -> Result<Workers, WorkerError> {
    let allowed = sys::allowed_cpus();
    let cpus = sys::usable_cpus();
    let n = reg.nbthread();
    // `ssl` servers' TLS settings are built here, files read, not by a worker on its first
    // connection (a server added later at run time builds its own then)
    let verify = reg.global().ssl_server_verify;
    for p in reg.proxies().iter() {
        for s in p.servers().iter() {
            let _ = s.tls_client(verify);
        }
    }
    let mut per_worker: Vec<Vec<Listening>> = (0..n).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for fe in reg
        .proxies()
        .iter()
        // a statistics page (the only proxy in mode http) is served by the admin thread
        .filter(|p| {
            p.is_frontend() && !p.config.disabled && p.config.mode != crate::config::ProxyMode::Http
        })
    {
        let backlog = fe
            .config
            .backlog
            .unwrap_or(if fe.config.maxconn > 0 {
                fe.config.maxconn
            } else {
                1024
            })
            .max(1024);
        let ids = listener_ids(&fe.config.binds);
        for (b, id) in fe.config.binds.iter().zip(ids) {
            let (real, ls) = listener::open_group(b.addr, backlog, n, &fe.config.cli_ka)?;
            listener::set_client_bufs(&ls, &reg.global().bufs);
            // HAProxy names a listener by its `name`, else by its number
            // the name is kept where a PROXY header may be read: `accept-proxy`, or a
            // `tcp-request connection expect-proxy layer4` rule of the frontend
            let may_read = b.accept_proxy || fe.config.rules.expects_proxy();
            let proxied: Option<Arc<str>> =
                may_read.then(|| b.name.clone().unwrap_or_else(|| id.to_string()).into());
            let entry = Arc::new(Entry {
                proxied,
                accept_proxy: b.accept_proxy,
                tls: b.tls.clone(),
                name: b.name.clone().unwrap_or_else(|| id.to_string()).into(),
            });
            bound.push((fe.name.to_string(), real));
            // the frontend keeps a duplicate of each, to pause, resume or stop them all at once
            let backlog = backlog.clamp(1, i32::MAX as u32) as i32;
            for l in &ls {
                match l.try_clone() {
                    Ok(d) => fe.add_listener(d.into(), real, b.addr.port() == 0, backlog),
                    Err(e) => {
                        tracing::warn!(frontend = %fe.name, error = %e, "cannot keep a listener handle")
                    }
                }
            }
            for (i, l) in ls.into_iter().enumerate() {
                per_worker[i].push((fe.clone(), l, entry.clone()));
            }
        }
    }
    let (tx, _) = tokio::sync::watch::channel(RUN);
    let kind = runtime::choose()?;
    // steering by CPU needs workers pinned one per CPU, and two of them to choose from
    let steer = Steering::new(n, reg.global().incoming_cpu && n > 1 && n <= allowed.len());
    let mut threads = Vec::new();
    let mut started = Vec::new();
    for (i, listeners) in per_worker.into_iter().enumerate() {
        let reg = reg.clone();
        let steer = steer.clone();
        let rx = tx.subscribe();
        let (up_tx, up_rx) = std::sync::mpsc::sync_channel::<()>(1);
        started.push(up_rx);
        // worker i on the i-th CPU the process may use (taskset/cgroup cpusets respected)
        let pin = if n <= cpus {
            allowed.get(i).copied()
        } else {
            None
        };
        let h = std::thread::Builder::new()
            .name(format!("harp-worker-{i}"))
            .spawn(move || {
                let mut pinned = None;
                if let Some(cpu) = pin {
                    match sys::pin_current_thread(cpu) {
                        Ok(()) => pinned = Some(cpu),
                        Err(e) => tracing::debug!(cpu, error = %e, "cannot pin worker"),
                    }
                }
                if let Some(cpu) = pinned {
                    steer.register(i, cpu);
                }
                let steered = pinned.is_some_and(|cpu| steer.on() && mark_all(&listeners, cpu));
                let w = WorkerArgs {
                    reg,
                    listeners,
                    stop: rx,
                    up: up_tx,
                    index: i,
                    steered,
                    steer,
                };
                match kind {
                    Kind::Ring => worker_main::<Ring>(w),
                    Kind::TokioUring => worker_main::<Uring>(w),
                }
            })
            .map_err(WorkerError::Spawn)?;
        threads.push(h);
    }
    let mut workers = Workers {
        stop: tx,
        threads,
        bound,
        watchdog: None,
    };
    // A worker whose runtime cannot start drops its sender while unwinding: fail the start
    // instead of running with listeners nobody accepts on.
    let deadline = Instant::now() + START_TIMEOUT;
    for (i, up) in started.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if up.recv_timeout(left).is_err() {
            workers.stop(false);
            workers.wait();
            return Err(WorkerError::Start(i));
        }
    }
    // every worker registered its CPU before saying it is up
    if steer.on() && steer.any_registered() {
        match Watchdog::start(steer.clone()) {
            Ok(w) => workers.watchdog = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the steering watchdog: not steering");
                steer.switch_off();
            }
        }
    }
    Ok(workers)
}

/// The frontend's listener numbers, as HAProxy 2.6 assigns them (watched): a bind's `id`;
/// else the first number not taken from a counter that every bind moves on by one (an `id 2`
/// first gives 2, 3, 4; an `id 5` second gives 1, 5, 3).
fn listener_ids(binds: &[crate::config::BindConfig]) -> Vec<u32> {
    let mut taken: std::collections::HashSet<u32> = binds.iter().filter_map(|b| b.id).collect();
    let mut next = 1;
    binds
        .iter()
        .map(|b| match b.id {
            Some(id) => {
                next += 1;
                id
            }
            None => {
                while taken.contains(&next) {
                    next += 1;
                }
                taken.insert(next);
                next += 1;
                next - 1
            }
        })
        .collect()
}

/// One worker's listening socket of a frontend; the listener's name for the log where a
/// connection may start with a PROXY protocol header; whether every one does (`accept-proxy`;
/// else only those an `expect-proxy layer4` rule picks).
type Listening = (Arc<Proxy>, TcpListener, Arc<Entry>);

/// Marks a worker's listeners with its CPU; all or none (a listener left marked by a partial
/// failure would never be unmarked).
fn mark_all(listeners: &[Listening], cpu: usize) -> bool {
    if listeners
        .iter()
        .all(|(_, l, ..)| steer::mark(l, Some(cpu)).is_ok())
    {
        return true;
    }
    for (_, l, ..) in listeners {
        let _ = steer::mark(l, None);
    }
    false
}

/// What a worker thread starts with.
struct WorkerArgs {
    reg: Arc<Registry>,
    listeners: Vec<Listening>,
    stop: tokio::sync::watch::Receiver<u8>,
    up: std::sync::mpsc::SyncSender<()>,
    index: usize,
    steered: bool,
    steer: Arc<Steering>,
}

fn worker_main<R: Rt>(w: WorkerArgs) {
    let WorkerArgs {
        reg,
        listeners,
        stop,
        up,
        index,
        steered,
        steer,
    } = w;
    let hard_after = reg.global().hard_stop_after;
    let pipesize = reg.global().pipesize;
    let maxpipes = reg.global().maxpipes;
    R::block_on(async move {
        let _ = up.send(());
        let ctx = Rc::new(Ctx {
            reg,
            bufs: forward::Buffers::new(pipesize, maxpipes),
            lb: RefCell::new(balance::Balancers::default()),
            logs: RefCell::new(crate::logging::targets::LogSockets::default()),
            stop,
            active: Cell::new(0),
            accepting: Cell::new(0),
            index,
            steered,
            steer,
        });
        for (fe, l, entry) in listeners {
            ctx.accepting.set(ctx.accepting.get() + 1);
            R::spawn(accept_loop::<R>(ctx.clone(), fe, l, entry));
        }
        let mut rx = ctx.stop.clone();
        while *rx.borrow_and_update() == RUN {
            if rx.changed().await.is_err() {
                break;
            }
        }
        // the frontends' handles on the listeners must not keep them open past their workers
        for p in ctx.reg.proxies() {
            p.forget_listeners();
        }
        // graceful: let the accept loops serve what their listeners queued, then the sessions
        // end, bounded by hard-stop-after (ending the runtime before would drop a loop, and
        // reset its queue, on a worker without sessions)
        let deadline = hard_after.map(|d| Instant::now() + d);
        while ctx.accepting.get() > 0
            && *rx.borrow() < HARD
            && deadline.map_or(true, |d| Instant::now() < d)
        {
            R::sleep(Duration::from_millis(1)).await;
        }
        while ctx.active.get() > 0
            && *rx.borrow() < HARD
            && deadline.map_or(true, |d| Instant::now() < d)
        {
            tokio::select! {
                _ = R::sleep(Duration::from_millis(10)) => {}
                _ = rx.changed() => {}
            }
        }
        tracing::debug!(
            sessions = ctx.active.get(),
            pipes = ctx.bufs.pipes.free_count(),
            "worker stopping"
        );
        // remaining sessions are dropped with the runtime; their guards close the sockets
        ctx.bufs.pipes.clear(&ctx.reg.counters);
    });
}

/// Reserves one slot in a counter bounded by `max` (0 = unbounded): the count with this slot,
/// or `None` when full. A compare-and-swap, so that a refused attempt never lifts the counter
/// above `max`, even for a moment: a free slot is never refused because of another thread's
/// attempt, and a connection that queued after such a refusal would have waited with a slot
/// free. Sequentially consistent, as [`crate::model::ServerCounters::session_ended`].
fn reserve(c: &std::sync::atomic::AtomicU64, max: u64) -> Option<u64> {
    if max == 0 {
        return Some(c.fetch_add(1, Ordering::SeqCst) + 1);
    }
    let mut cur = c.load(Ordering::SeqCst);
    loop {
        if cur >= max {
            return None;
        }
        match c.compare_exchange_weak(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return Some(cur + 1),
            Err(now) => cur = now,
        }
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Counts an accepted connection in the per-second rates (`show info` ConnRate, the frontend's
/// `conn_rate`), but for the places it took under a rate limit, already counted. In TCP a
/// connection is one session, so the session rates (`SessRate`, the frontend's `rate`) read
/// the same counters.
fn count_rates(gc: &crate::model::GlobalCounters, fe: &Proxy, taken: RateSlots) {
    if !taken.global {
        gc.conn_rate.hit();
    }
    if !taken.frontend {
        fe.counters.conn_rate.hit();
    }
}

/// The places under the rate limits one connection took before its `accept`, given back
/// when nothing was there to accept.
#[derive(Debug, Default, Clone, Copy)]
struct RateSlots {
    /// Under `maxconnrate` / `maxsessrate` (one counter: a connection is a session in TCP).
    global: bool,
    /// Under the frontend's `rate-limit sessions`.
    frontend: bool,
}

impl RateSlots {
    fn give_back(self, reg: &Registry, fe: &Proxy) {
        if self.global {
            reg.counters.conn_rate.unhit();
        }
        if self.frontend {
            fe.counters.conn_rate.unhit();
        }
    }
}

/// Takes the next connection's place under `maxconnrate`, `maxsessrate` and the frontend's
/// `rate-limit sessions`, as HAProxy's `listener_accept` checks them, or says how long to
/// wait when one is full. Taking is one step with counting, so workers side by side never
/// let more in than the limit. A few loads when no limit is set.
fn take_rate_slots(reg: &Registry, fe: &Proxy) -> Result<RateSlots, Duration> {
    let conns = reg.rate_limit(crate::model::RateLimit::Connections);
    let sess = reg.rate_limit(crate::model::RateLimit::Sessions);
    let fe_limit = u64::from(fe.config.rate_limit_sessions);
    let mut slots = RateSlots::default();
    if conns == 0 && sess == 0 && fe_limit == 0 {
        return Ok(slots);
    }
    // a limit raised at run time wakes the listeners (`Registry::set_rate_limit`)
    let wait = |d: Duration| d.clamp(Duration::from_millis(1), Duration::from_secs(1));
    let global = match (conns, sess) {
        (0, l) | (l, 0) => l,
        (c, s) => c.min(s),
    };
    let gc = &reg.counters;
    if global > 0 {
        if !gc.conn_rate.try_hit(global) {
            return Err(wait(gc.conn_rate.next_event_delay(global)));
        }
        slots.global = true;
    }
    if fe_limit > 0 {
        if !fe.counters.conn_rate.try_hit(fe_limit) {
            slots.give_back(reg, fe);
            return Err(wait(fe.counters.conn_rate.next_event_delay(fe_limit)));
        }
        slots.frontend = true;
    }
    Ok(slots)
}

/// Accepts on one listener until the worker stops; the global and frontend `maxconn` gates leave
/// excess connections in the kernel backlog, as HAProxy does, and so do the rate limits.
async fn accept_loop<R: Rt>(ctx: Rc<Ctx>, fe: Arc<Proxy>, l: TcpListener, entry: Arc<Entry>) {
    let spawn = |sock, peer| {
        // counted from now, not from its first run: a stopping worker waits for it even when
        // its accept loop ends before the session task is first polled
        ctx.active.set(ctx.active.get() + 1);
        R::spawn(session::run::<R>(
            ctx.clone(),
            fe.clone(),
            sock,
            peer,
            entry.clone(),
        ))
    };
    let _counted = Accepting(&ctx.accepting);
    let mut stop = ctx.stop.clone();
    let fd = l.as_raw_fd();
    let mut backoff = Duration::from_millis(10);
    let mut gated = false;
    let mut steered = ctx.steered;
    let gc = &ctx.reg.counters;
    loop {
        if *stop.borrow_and_update() != RUN || fe.stopped.load(Ordering::Relaxed) {
            break;
        }
        let slots = match take_rate_slots(&ctx.reg, &fe) {
            Ok(slots) => slots,
            Err(wait) => {
                tokio::select! {
                    _ = R::sleep(wait) => {}
                    _ = ctx.reg.rate_limit_changed.notified() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        let paused = fe.paused.load(Ordering::Relaxed);
        let got_global = !paused && reserve(&gc.cur_conns, ctx.reg.maxconn()).is_some();
        let fe_cur = got_global
            .then(|| match fe.maxconn() {
                Some(0) => None,
                limit => reserve(&fe.counters.cur_sess, limit.map_or(0, u64::from)),
            })
            .flatten();
        let Some(cur) = fe_cur else {
            slots.give_back(&ctx.reg, &fe);
            if got_global {
                // another worker may be held by this reservation, however brief
                gc.conn_ended();
            }
            if !paused && !gated {
                // counted once per episode, not once per re-check
                gc.maxconn_reached.fetch_add(1, Ordering::Relaxed);
            }
            gated = true;
            // wait, without polling, for what holds this loop back to change
            let fe_held = || {
                !fe.stopped.load(Ordering::Acquire)
                    && (fe.paused.load(Ordering::Acquire)
                        || match fe.maxconn() {
                            Some(0) => true,
                            Some(m) => fe.counters.cur_sess.load(Ordering::Relaxed) >= u64::from(m),
                            None => false,
                        })
            };
            let stopping = async {
                let _ = stop.changed().await;
            };
            if paused || got_global {
                fe.counters.accept_gate.wait_while(fe_held, stopping).await;
            } else {
                // a frontend stopped meanwhile ends the loop (its stop opens this gate too)
                let global_held = || {
                    let max = ctx.reg.maxconn();
                    !fe.stopped.load(Ordering::Acquire)
                        && max != 0
                        && gc.cur_conns.load(Ordering::Relaxed) >= max
                };
                gc.accept_gate.wait_while(global_held, stopping).await;
            }
            continue;
        };
        gated = false;
        let release = || {
            gc.conn_ended();
            fe.counters.session_ended();
            slots.give_back(&ctx.reg, &fe);
        };
        match sys::accept_nonblocking(&l) {
            Ok((sock, peer)) => {
                backoff = Duration::from_millis(10);
                if ctx.steer.on() {
                    // every worker counts while the watchdog watches: it compares shares
                    ctx.steer.accepted(ctx.index);
                } else if steered {
                    // the watchdog gave up steering: back to the kernel's hashing
                    let _ = steer::mark(&l, None);
                    steered = false;
                }
                gc.cum_conns.fetch_add(1, Ordering::Relaxed);
                count_rates(gc, &fe, slots);
                // the reservation above is the session's `cur` (its guard releases it), and the
                // count it made is the one `smax` may record
                fe.counters.tot_sess.fetch_add(1, Ordering::Relaxed);
                fe.counters.cum_conn.fetch_add(1, Ordering::Relaxed);
                fe.counters.max_sess.fetch_max(cur, Ordering::Relaxed);
                spawn(sock, peer);
            }
            Err(e) => {
                release();
                if e.kind() == io::ErrorKind::WouldBlock {
                    tokio::select! {
                        _ = R::ready(fd, Interest::Read) => {}
                        _ = stop.changed() => {}
                    }
                } else if is_fd_exhaustion(&e) {
                    if backoff == Duration::from_millis(10) {
                        tracing::warn!(frontend = %fe.name, error = %e, "accept failed, backing off");
                    }
                    tokio::select! {
                        _ = R::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                } else if !matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) {
                    tracing::debug!(frontend = %fe.name, error = %e, "accept error");
                    R::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    if *stop.borrow() == GRACEFUL {
        // serve what the kernel already accepted for us, so a graceful stop resets nobody
        while let Ok((sock, peer)) = sys::accept_nonblocking(&l) {
            gc.cur_conns.fetch_add(1, Ordering::AcqRel);
            gc.cum_conns.fetch_add(1, Ordering::Relaxed);
            count_rates(gc, &fe, RateSlots::default());
            fe.counters.session_started();
            fe.counters.cum_conn.fetch_add(1, Ordering::Relaxed);
            spawn(sock, peer);
        }
    }
    // stop listening at once (also wakes a poll still registered on it)
    sys::stop_listening_for_good(&l);
}

/// Counts an accept loop out of its worker's `accepting` however it ends (a panic included).
struct Accepting<'a>(&'a Cell<usize>);

impl Drop for Accepting<'_> {
    fn drop(&mut self) {
        debug_assert!(self.0.get() > 0);
        self.0.set(self.0.get().saturating_sub(1));
    }
}

impl Workers {
    /// Stops accepting. `graceful`: let sessions finish (bounded by `hard-stop-after`);
    /// otherwise close everything now.
    pub fn stop(&self, graceful: bool) {
        let level = if graceful { GRACEFUL } else { HARD };
        self.stop.send_if_modified(|v| {
            if *v < level {
                *v = level;
                true
            } else {
                false
            }
        });
    }

    /// Waits until every worker thread ended.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(w) = self.watchdog {
            w.stop();
        }
    }

    /// The addresses actually listened on, by frontend name (ports resolved when `bind :0`).
    pub fn bound(&self) -> &[(String, SocketAddr)] {
        &self.bound
    }
}

#[cfg(test)]
mod tests;
