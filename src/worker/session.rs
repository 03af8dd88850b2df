//! One client session: pick a server, queue under `maxconn`, connect with retries and
//! redispatch, forward both directions, then account and write the tcplog line.

use std::cell::Cell;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};

use super::balance::{Client, Pick};
use super::forward::{self, Accounts, Dir, Fault, Side, Timers};
use super::inspect::with_counters;
use super::inspect::{self, Inspected, SessEnv, Waited};
use super::runtime::Rt;
use super::sockopt;
use super::tcplog;
use super::tls::{accept, handshake, Accepted, HandshakeError, TlsConn};
use super::Ctx;
use crate::config::{BalanceAlgo, LogTarget};
use crate::logging::targets::{ERR, INFO};
use crate::model::{KillCause, Proxy, ProxyCounters, QueueOf, Server, ServerCounters, Ticket};
use crate::proxy_protocol::Parsed;
use crate::rules::fetch::StreamInfo;
use crate::rules::logformat::{Facts, LogFormat};
use crate::rules::vars::SessVars;
use crate::rules::Env as _;
use crate::rules::{Phase, Verdict};
use crate::stick::Counters;
use crate::sys::{self, Interest};
use crate::tls::TlsFacts;

/// Releases everything a session holds, also when its task is dropped by a hard stop.
struct Guard {
    ctx: Rc<Ctx>,
    fe: Arc<Proxy>,
    be: Option<Arc<Proxy>>,
    srv: Option<Arc<Server>>,
    /// The session's sockets and how each is closed.
    socks: Vec<(TcpStream, Close)>,
    /// Both directions ended on their own: no poll can still be in flight on `socks`, so the
    /// wake-up `shutdown(2)` calls are skipped (two syscalls per session).
    quiet: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // each way wakes any poll still in flight on the socket, so the kernel lets it go
        let wake = |s: &TcpStream| {
            let _ = s.shutdown(Shutdown::Both);
        };
        for (s, how) in &self.socks {
            match how {
                Close::Fin if !self.quiet => wake(s),
                Close::Fin => {}
                Close::Reset => {
                    if sys::reset(s).is_err() {
                        wake(s);
                    }
                }
                Close::FinReset => {
                    wake(s);
                    let _ = sys::reset(s);
                }
                // in repair mode a disconnect sends nothing, and it wakes any poll still in
                // flight (which would keep the socket open past its close)
                Close::Silent => {
                    let _ = sys::reset(s);
                }
            }
        }
        if let Some(s) = self.srv.take() {
            release_slot(self.be.as_ref().unwrap_or(&self.fe), &s);
        }
        if let Some(b) = &self.be {
            b.counters.session_ended();
        }
        self.fe.counters.session_ended();
        self.ctx.reg.counters.conn_ended();
        self.ctx.active.set(self.ctx.active.get() - 1);
    }
}

/// How a session socket is closed. HAProxy's rule (`FD_LINGER_RISK`): a socket whose peer has
/// not sent its FIN is reset rather than left lingering when it is a server connection, or a
/// client one of a frontend with `option nolinger`, so aborted sessions leave no FIN_WAIT or
/// TIME_WAIT sockets behind (ephemeral ports on the server side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// A plain close: FIN.
    Fin,
    /// A reset only: the server side, which HAProxy closes silently.
    Reset,
    /// The client side under `option nolinger`, or the server side of a killed session: HAProxy
    /// shuts its write side first (the peer reads an end of stream), then the close resets it.
    FinReset,
    /// `silent-drop`: the socket is in TCP_REPAIR mode, its close sends nothing.
    Silent,
}

impl Close {
    /// A client dropped by `silent-drop`: silent when the socket could be put in repair mode,
    /// else reset with the TTL the rule gives (1 by default: the reset dies on the way).
    fn dropped(client: &TcpStream, rst_ttl: Option<u8>) -> Close {
        let v6 = client.peer_addr().is_ok_and(|a| a.is_ipv6());
        if sys::silent_drop(client, v6, rst_ttl) {
            Close::Silent
        } else {
            Close::Reset
        }
    }

    /// The server side, whose FIN was read or not, of a session killed under it or not (HAProxy
    /// shuts a killed session's server side first: a FIN, then the reset).
    fn server(fin_read: bool, killed: bool) -> Close {
        match (fin_read, killed) {
            (true, _) => Close::Fin,
            (false, true) => Close::FinReset,
            (false, false) => Close::Reset,
        }
    }

    /// The client side, whose FIN was read or not, of a frontend with `option nolinger` or not.
    fn client(fin_read: bool, nolinger: bool) -> Close {
        if fin_read || !nolinger {
            Close::Fin
        } else {
            Close::FinReset
        }
    }
}

/// Why no server connection was made.
enum NoConn {
    NoServer,
    /// Waited past `timeout queue`, in this server's queue or the backend's.
    QueueTimeout(Option<Arc<Server>>),
    /// This server's queue was at its `maxqueue`.
    QueueFull(Arc<Server>),
    /// The last server tried refused (HAProxy's log names it).
    Refused(Arc<Server>),
    /// The last server tried did not answer within `timeout connect`.
    Timeout(Arc<Server>),
    /// The backend's `tcp-request content` rules ended it (termination state given).
    Denied([u8; 2]),
}

fn take_slot(be: &Proxy, s: &Server) -> bool {
    let Some(cur) = super::reserve(&s.counters.cur_sess, s.slot_limit(be)) else {
        return false;
    };
    s.counters.max_sess.fetch_max(cur, Ordering::Relaxed);
    true
}

/// Gives back a server connection slot taken by [`take_slot`]. As in HAProxy, a queued
/// connection that can use it gets it at once: the oldest waiting in this server's own queue or
/// in the backend's (when the server serves it), and only that one is woken.
fn release_slot(be: &Proxy, s: &Arc<Server>) {
    s.counters.session_ended();
    if nobody_waits(be, s) {
        return;
    }
    // take the slot back for the oldest waiter, unless another connection was quicker; a
    // stopped server keeps it free (its waiters go elsewhere on the change's wake-up)
    hand_free_slot(be, s);
}

/// Hands a free slot of `s`, if it has one, to the oldest connection waiting for it: in its
/// own queue while it may take persistent clients (a draining server still serves those, as
/// HAProxy's `process_srv_queue` does), in the backend's only while the balancer may pick it.
/// Whether one got it.
fn hand_free_slot(be: &Proxy, s: &Arc<Server>) -> bool {
    s.may_persist()
        && be.queue.hand_over(s.key, serves_backend_queue(be, s), || {
            take_slot(be, s).then(|| s.clone())
        })
}

/// After a queued connection left with a slot: a balancing change may have opened more slots
/// than sessions free (a server UP, a higher `maxconn`), so the next waiter gets the next one
/// at once rather than on its own late look. Each waiter served this way passes on again,
/// until the free slots or the waiters run out.
fn pass_on(be: &Proxy) {
    let r = Ordering::Relaxed;
    if be.counters.queue_cur.load(r) == 0
        && be
            .servers()
            .iter()
            .all(|s| s.counters.queue_cur.load(r) == 0)
    {
        return;
    }
    for s in be.servers().iter() {
        if s.has_free_slot(be) && hand_free_slot(be, s) {
            return;
        }
    }
}

/// Whether a slot freed on `s` may go to the backend's queue, as HAProxy's `process_srv_queue`
/// decides: an active server's may; a backup's only while no active server is usable, and only
/// the first backup's unless `option allbackups` (the servers the balancer picks from).
fn serves_backend_queue(be: &Proxy, s: &Server) -> bool {
    // a server the balancer skips (draining, down) takes nobody from the backend's queue
    if !s.is_usable() {
        return false;
    }
    if !s.params.backup {
        return true;
    }
    let servers = be.servers();
    if servers.iter().any(|o| !o.params.backup && o.is_usable()) {
        return false;
    }
    be.config.allbackups
        || servers
            .iter()
            .find(|o| o.params.backup && o.is_usable())
            .is_some_and(|o| o.key == s.key)
}

/// Whether no connection waits in the backend's queue nor in `s`'s (two atomic loads: the usual
/// path takes no lock). Sequentially consistent, as [`ServerCounters::session_ended`].
fn nobody_waits(be: &Proxy, s: &Server) -> bool {
    let o = Ordering::SeqCst;
    be.counters.queue_cur.load(o) == 0 && s.counters.queue_cur.load(o) == 0
}

/// Counts a session that got no server connection (`econ`) on the backend and on the server it
/// was given to, if any.
fn failed_connection(be: &Proxy, srv: Option<&Server>) {
    be.counters.econ.fetch_add(1, Ordering::Relaxed);
    if let Some(s) = srv {
        s.counters.econ.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether `s`'s own queue is at its `maxqueue` (0: no limit).
fn server_queue_full(s: &Server) -> bool {
    let max = u64::from(s.params.maxqueue);
    max > 0 && s.counters.queue_cur.load(Ordering::Relaxed) >= max
}

/// A connection's place in a queue: counted in the queue's `qcur` and holding its ticket
/// ([`Proxy::queue`]) until it leaves, with a slot or without; also when the waiting task is
/// dropped (a hard stop), so that no ticket stays behind to hold later waiters back and no slot
/// handed over to it stays taken.
struct Place<'a> {
    be: &'a Proxy,
    ticket: Option<Ticket>,
    /// The server whose own queue this is, `None` for the backend's.
    on: Option<Arc<Server>>,
}

impl<'a> Place<'a> {
    /// Joins the backend's queue or `on`'s own.
    fn enter(be: &'a Proxy, on: Option<Arc<Server>>) -> Place<'a> {
        let (cur, max) = match &on {
            Some(s) => (&s.counters.queue_cur, &s.counters.queue_max),
            None => (&be.counters.queue_cur, &be.counters.queue_max),
        };
        // counted before the ticket exists and before the next look at the slots, so that a
        // session freeing a slot meanwhile either sees a waiter or leaves the slot free
        let q = cur.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(q, Ordering::Relaxed);
        let which = on
            .as_ref()
            .map_or(QueueOf::Backend, |s| QueueOf::Server(s.key));
        Place {
            be,
            ticket: Some(be.queue.enter(which)),
            on,
        }
    }

    /// A slot handed over to this place; pending until one is (the task is woken then).
    async fn handed(&self) -> Arc<Server> {
        match &self.ticket {
            Some(t) => std::future::poll_fn(|cx| self.be.queue.poll_offer(t, cx)).await,
            None => std::future::pending().await,
        }
    }

    /// A slot handed over to this place and not claimed yet, claimed now.
    fn take_offer(&self) -> Option<Arc<Server>> {
        self.ticket
            .as_ref()
            .and_then(|t| self.be.queue.take_offer(t))
    }

    /// Leaves the queue; `served`: with a slot. Returns the position HAProxy logs.
    fn leave(mut self, served: bool) -> u64 {
        self.leave_now(served)
    }

    fn leave_now(&mut self, served: bool) -> u64 {
        let Some(t) = self.ticket.take() else {
            return 0;
        };
        let cur = match &self.on {
            Some(s) => &s.counters.queue_cur,
            None => &self.be.counters.queue_cur,
        };
        cur.fetch_sub(1, Ordering::SeqCst);
        let (pos, unclaimed) = self.be.queue.leave(t, served);
        // handed over as it took a slot itself or gave up: the next waiter's now
        if let Some(s) = unclaimed {
            release_slot(self.be, &s);
        }
        pos
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.leave_now(false);
    }
}

/// What getting a session a server took, as the log line reports it.
struct Tries {
    /// When the connection was accepted.
    t0: Instant,
    /// When a server was given (ms since accept, HAProxy's `t_queue`; -1: never, as when a
    /// queue was full).
    tw: i64,
    /// Connection retries.
    retries: u32,
    /// Whether a retry moved to another server (`+` before the retries in the log).
    redispatched: bool,
    /// Positions in the server's and the backend's queues (0: not queued).
    queue_pos: [u64; 2],
}

impl Tries {
    fn new(t0: Instant) -> Tries {
        Tries {
            t0,
            tw: -1,
            retries: 0,
            redispatched: false,
            queue_pos: [0; 2],
        }
    }
}

/// Picks a server with a free slot, waiting in the backend queue up to `budget` when all are full
/// (or in a server's own queue when a hash binds the client to a full server). Queued
/// connections are served in arrival order, as HAProxy's queues are ([`Proxy::queue`]): a
/// newcomer does not take a slot while others wait, and a session that frees a slot hands it
/// to the oldest waiter that can use it. A balancing change wakes every waiter to look again;
/// a slow poll stays as a safety net. Adds the queue positions HAProxy logs (server queue,
/// backend queue) and the time queued to `tries`. `direct`: the server a stick table named.
async fn acquire<R: Rt>(
    ctx: &Ctx,
    be: &Proxy,
    client: Client,
    exclude: Option<&Arc<Server>>,
    direct: Option<&Arc<Server>>,
    budget: Option<Duration>,
    tries: &mut Tries,
) -> Result<Arc<Server>, NoConn> {
    let start = Instant::now();
    // where the connection waits, and its place there
    let mut queued: Option<Place<'_>> = None;
    // registered for the wake-up of a balancing change, only once the connection has to wait
    let mut changed: Option<std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>>> = None;
    let mut nap = Duration::from_millis(10);
    let res = loop {
        // the server a stick table named, while it may take the session (it waits in that
        // server's queue, as a hashed client does), else the balancer's choice
        let persist = direct.filter(|s| s.may_persist());
        // a slot handed over is for a server the balancer may pick, or for the one the
        // table names while it may still take persistent clients (draining, say)
        let fits = |s: &Arc<Server>| {
            s.is_usable() || direct.is_some_and(|d| Arc::ptr_eq(d, s) && s.may_persist())
        };
        let hashing = persist.is_some() || client.hashed(be);
        let pick = match persist {
            Some(s) => Pick::Server(s.clone()),
            None => ctx.lb.borrow_mut().pick(be, client, exclude),
        };
        // nobody who came earlier waits for this server (or for any server)
        let first = |s: &Server| match queued.as_ref().and_then(|p| p.ticket.as_ref()) {
            Some(t) => be.queue.may_take(t, s.key, serves_backend_queue(be, s)),
            None => {
                nobody_waits(be, s) || be.queue.may_take_new(s.key, serves_backend_queue(be, s))
            }
        };
        let wait_on = match pick {
            Pick::Server(s) if first(&s) && take_slot(be, &s) => break Ok(s),
            Pick::NoServer => break Err(NoConn::NoServer),
            Pick::Server(s) if hashing => Some(s),
            _ => None,
        };
        let want = wait_on
            .as_ref()
            .map_or(QueueOf::Backend, |s| QueueOf::Server(s.key));
        let same = queued
            .as_ref()
            .and_then(|p| p.ticket.as_ref())
            .is_some_and(|t| t.queue() == want);
        if !same {
            // a server's `maxqueue`: one more would be too many, the connection is refused
            if let Some(s) = wait_on.as_ref().filter(|s| server_queue_full(s)) {
                break Err(NoConn::QueueFull(s.clone()));
            }
            if let Some(p) = queued.take() {
                p.leave(false);
            }
            queued = Some(Place::enter(be, wait_on));
            // look once more: a slot freed before the connection was counted went to nobody
            continue;
        }
        let mut wait = nap;
        if let Some(b) = budget {
            let spent = start.elapsed();
            if spent >= b {
                // a slot handed over at the last moment is still served
                match queued.as_ref().and_then(Place::take_offer) {
                    Some(s) if fits(&s) => break Ok(s),
                    Some(s) => release_slot(be, &s),
                    None => {}
                }
                let on = queued.as_ref().and_then(|p| p.on.clone());
                break Err(NoConn::QueueTimeout(on));
            }
            wait = wait.min(b - spent);
        }
        let Some(f) = changed.as_mut() else {
            let mut f = Box::pin(be.rebalanced.notified());
            f.as_mut().enable();
            changed = Some(f);
            // look once more: a change before the registration woke nobody
            continue;
        };
        let Some(place) = queued.as_ref() else {
            continue;
        };
        tokio::select! {
            s = place.handed() => {
                if fits(&s) {
                    break Ok(s);
                }
                // its server went down since: give the slot up and wait on
                release_slot(be, &s);
            }
            _ = f.as_mut() => {
                // registered again before the next look: that look is the one after it
                f.set(be.rebalanced.notified());
                f.as_mut().enable();
            }
            _ = R::sleep(wait) => nap = (nap * 2).min(Duration::from_millis(200)),
        }
    };
    // HAProxy's `t_queue`: set when a server is given or a queue is left, never when no
    // server could be had
    let left_queue = queued.is_some();
    if let Some(p) = queued {
        let i = if p.on.is_some() { 0 } else { 1 };
        tries.queue_pos[i] += p.leave(res.is_ok());
        if res.is_ok() {
            pass_on(be);
        }
    }
    if res.is_ok() || left_queue {
        tries.tw = tries.t0.elapsed().as_millis() as i64;
    }
    res
}

/// Connects without blocking the worker, bounded by `timeout connect`, with the backend's
/// server-side keepalive (`option srvtcpka`), from `source` when the server or backend sets one.
async fn connect<R: Rt>(
    addr: SocketAddr,
    be: &Proxy,
    o: &ConnectOpts<'_>,
) -> io::Result<TcpStream> {
    let (source, bufs) = (o.source, o.bufs);
    let timeout = be.config.timeouts.connect;
    let ty = Type::STREAM.nonblocking().cloexec();
    let s = Socket::new(Domain::for_address(addr), ty, Some(Protocol::TCP))?;
    s.set_nodelay(true)?;
    // `tune.rcvbuf.server` / `tune.sndbuf.server`
    if let Some(n) = bufs.rcv_server {
        let _ = s.set_recv_buffer_size(n as usize);
    }
    if let Some(n) = bufs.snd_server {
        let _ = s.set_send_buffer_size(n as usize);
    }
    if let Some(src) = source {
        crate::sys::bind_source(&s, src.addr, src.interface.as_deref())?;
    }
    if let Some(t) = o.user_timeout {
        let _ = s.set_tcp_user_timeout(Some(t));
    }
    if let Err(e) = sockopt::keepalive(&s, &be.config.srv_ka) {
        // as HAProxy: the connection goes on without keepalive
        tracing::debug!(error = %e, "server keepalive not set");
    }
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            // on loopback the handshake usually completed inside connect(2): one poll(2) is
            // cheaper than an io_uring round trip
            let now = crate::sys::ready_now(&s, Interest::Write)?;
            let revents = if now != 0 {
                now
            } else {
                let wait = R::ready(s.as_raw_fd(), Interest::Write);
                match timeout {
                    Some(t) => R::timeout(t, wait)
                        .await
                        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??,
                    None => wait.await?,
                }
            };
            // writable without error or hang-up: connected, no SO_ERROR syscall needed;
            // otherwise SO_ERROR tells how the connect ended (refused, unreachable...)
            let bad = (libc::POLLERR | libc::POLLHUP) as u32;
            if revents & bad != 0 || revents & libc::POLLOUT as u32 == 0 {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
            }
        }
        Err(e) => return Err(e),
    }
    Ok(s.into())
}

/// How a server connection is opened, from the server's and the process's settings.
struct ConnectOpts<'a> {
    /// `source` (the server's, else the backend's).
    source: Option<&'a crate::config::SourceAddr>,
    /// `tune.rcvbuf.server` / `tune.sndbuf.server`.
    bufs: &'a crate::config::SocketBufs,
    /// The server's `tcp-ut`.
    user_timeout: Option<Duration>,
}

/// Runs `px`'s `tcp-request content` rules on the request (read into `early`); the
/// termination state when they end the session, counting a rejection on the frontend `fe`
/// (where HAProxy counts it, a backend's rules included). A `silent-drop` also says how the
/// client is to be closed (`client_close`), and counts on a backend whose rules dropped it.
async fn content_rules<R: Rt>(
    env: &SessEnv<'_>,
    fe: &Proxy,
    px: &Proxy,
    (client, tls): (&TcpStream, Option<&TlsConn>),
    early: &mut Vec<u8>,
    client_close: &mut Close,
) -> Option<[u8; 2]> {
    match inspect::content::<R>(&px.config.rules, env, (client, tls), early).await {
        Inspected::Accept => None,
        Inspected::Reject => {
            fe.counters.denied_req.fetch_add(1, Ordering::Relaxed);
            Some(*b"PR")
        }
        Inspected::Drop(ttl) => {
            fe.counters.denied_req.fetch_add(1, Ordering::Relaxed);
            if !std::ptr::eq(fe, px) {
                px.counters.denied_req.fetch_add(1, Ordering::Relaxed);
            }
            *client_close = Close::dropped(client, ttl);
            Some(*b"PR")
        }
        Inspected::Aborted => Some(*b"CR"),
    }
}

/// Waits for a hard stop of the worker.
async fn hard_stop(ctx: &Ctx) {
    let mut rx = ctx.stop.clone();
    loop {
        if *rx.borrow_and_update() >= 2 {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits for `shutdown sessions` (or `on-marked-down shutdown-sessions`) on `srv`; says which.
async fn killed(srv: &Server) -> KillCause {
    let mut rx = srv.kill_watch();
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
    let (_, cause) = *rx.borrow_and_update();
    cause
}

/// Runs one accepted client connection to its end. The accept loop already counted it in the
/// global and frontend `cur` counters and in the worker's active sessions (this task's guard
/// gives them back).
pub(crate) async fn run<R: Rt>(
    ctx: Rc<Ctx>,
    fe: Arc<Proxy>,
    client: TcpStream,
    peer: SocketAddr,
    entry: Arc<super::Entry>,
) {
    let accepted = SystemTime::now();
    // the session's clock (in `tries`: one copy of it in the session's state)
    let mut tries = Tries::new(Instant::now());
    // TCP_NODELAY is set on the listener and inherited by accepted sockets (Linux copies it)
    let mut g = Guard {
        ctx: ctx.clone(),
        fe: fe.clone(),
        be: None,
        srv: None,
        socks: Vec::new(),
        quiet: false,
    };
    let rules = &fe.config.rules;
    // the entries its `track-sc*` rules track, given back when the session ends
    // (a Cell, not a RefCell: no borrow flag in every session's state)
    let sc = Cell::new(Counters::default());
    // its variables (`set-var`), 16 bytes until one is set
    let vars = Cell::new(SessVars::default());
    // `tcp-request connection` rules: on the connection as it came, before any PROXY header;
    // a rejected one is reset, counted in `dcon` and not as a session, and not logged
    let mut read_header = entry.accept_proxy;
    if !rules.connection.is_empty() {
        let env = SessEnv::new(&ctx.reg, &client, peer, None, &sc, &vars, None);
        let (verdict, expect_proxy) = rules.run_connection(&env);
        match verdict {
            Verdict::Reject => {
                fe.counters.denied.fetch_add(1, Ordering::Relaxed);
                fe.counters.tot_sess.fetch_sub(1, Ordering::Relaxed);
                g.socks.push((client, Close::Reset));
                return;
            }
            // `silent-drop`: HAProxy counts it in `dreq`, whatever the phase
            Verdict::Drop(ttl) => {
                fe.counters.denied_req.fetch_add(1, Ordering::Relaxed);
                fe.counters.tot_sess.fetch_sub(1, Ordering::Relaxed);
                let close = Close::dropped(&client, ttl);
                g.socks.push((client, close));
                return;
            }
            _ => {}
        }
        // `expect-proxy layer4`: this connection starts with a PROXY header
        read_header |= expect_proxy;
    }
    // behind a load balancer speaking the PROXY protocol (`accept-proxy`): the client's
    // address is the one it names, and the bytes read past its header go to the server first
    let mut fronted = Fronted::default();
    if let Some(bind) = entry.proxied.clone().filter(|_| read_header) {
        let wait = fe
            .config
            .timeouts
            .client
            .unwrap_or(Duration::from_secs(3600));
        let mut got = 0;
        match read_proxy_header::<R>(&client, &mut got, Instant::now() + wait).await {
            Ok(f) => fronted = f,
            Err(why) => {
                // as HAProxy: logged as a connection that never became a session, closed (a
                // reset when it sent something), nothing reaches a server
                // (HAProxy logs it only where it logs sessions, `option tcplog`, and not for a
                // connection that sent nothing under `option dontlognull`)
                let null = got == 0 && fe.config.dontlognull;
                let logs = fe.config.session_log.is_some() || fe.config.error_log.is_some();
                if logs && !null && has_logs(&ctx, &fe) {
                    embryonic_line(
                        &ctx,
                        &fe,
                        &client,
                        peer,
                        accepted,
                        &tries,
                        &bind,
                        why,
                        Facts::default(),
                        &sc,
                        &vars,
                    );
                }
                // not a session for HAProxy's `stot` either (a connection all the same)
                fe.counters.tot_sess.fetch_sub(1, Ordering::Relaxed);
                let close = if got > 0 { Close::Reset } else { Close::Fin };
                g.socks.push((client, close));
                return;
            }
        }
    }
    // `bind ... ssl`: the handshake, after the connection rules and any PROXY header, before
    // the session rules (which may read `ssl_fc_sni`), bounded by `timeout client` as in HAProxy
    // (one box: a plain session keeps 8 bytes for it)
    let mut tls: Option<Box<Accepted>> = None;
    if let Some(acceptor) = &entry.tls {
        ctx.reg
            .counters
            .cum_ssl_conns
            .fetch_add(1, Ordering::Relaxed);
        let wait = fe
            .config
            .timeouts
            .client
            .unwrap_or(Duration::from_secs(3600));
        // (bytes read past a PROXY header are the start of the ClientHello)
        let early = std::mem::take(&mut fronted.early);
        let max = u64::from(ctx.reg.global().maxsslconn);
        let open = ctx.reg.counters.cur_ssl_conns.load(Ordering::Relaxed);
        let outcome = if max > 0 && open >= max {
            // `maxsslconn`: no handshake at all
            Err(HandshakeError::TooMany)
        } else {
            // (boxed: its state, 5 KB with rustls' hello reader, is not kept in every session's)
            Box::pin(accept::<R>(acceptor, &client, early, Instant::now() + wait)).await
        };
        match outcome {
            Ok(mut a) => {
                fe.counters.ssl_sess.fetch_add(1, Ordering::Relaxed);
                a.tls.count_in(&ctx.reg);
                tls = Some(a);
            }
            Err(why) => {
                // as HAProxy: a connection that never became a session, logged (where sessions
                // are) with the fixed embryonic line or `error-log-format`; a timeout is not
                // a failed handshake for its counter, and a client that sent nothing is "null"
                if !matches!(why, HandshakeError::Timeout | HandshakeError::TooMany) {
                    fe.counters
                        .ssl_failed_handshake
                        .fetch_add(1, Ordering::Relaxed);
                }
                let null = fe.config.dontlognull
                    && matches!(why, HandshakeError::Closed | HandshakeError::Timeout);
                // (past `maxsslconn` HAProxy makes no connection it could log: nor does harp)
                let logs = (fe.config.session_log.is_some() || fe.config.error_log.is_some())
                    && why != HandshakeError::TooMany;
                if logs && !null && has_logs(&ctx, &fe) {
                    let facts = Facts {
                        ssl_listener: true,
                        ..Facts::default()
                    };
                    embryonic_line(
                        &ctx,
                        &fe,
                        &client,
                        peer,
                        accepted,
                        &tries,
                        &entry.name,
                        why.text(),
                        facts,
                        &sc,
                        &vars,
                    );
                }
                fe.counters.tot_sess.fetch_sub(1, Ordering::Relaxed);
                g.socks.push((client, Close::Fin));
                return;
            }
        }
    }
    let peer = fronted.addrs.map_or(peer, |(src, _)| src);
    // (the rules' view of the session lives in blocks, not in the session's state while it
    // forwards)
    // replaced once a server session ran; until then the client's FIN was never read (or a
    // content rule dropped it silently)
    let mut client_close = Close::client(false, fe.config.nolinger);
    // the stream's number (`%rt`)
    let req_id: u64;
    // its line was logged when the server connection was made
    let mut logged = false;
    let (denied, be) = {
        let env = SessEnv::new(
            &ctx.reg,
            &client,
            peer,
            fronted.addrs.map(|(_, d)| d),
            &sc,
            &vars,
            tls.as_deref().map(|a| &a.facts),
        );
        // `tcp-request session` rules: with the addresses a PROXY header gave; a rejected
        // session is closed, counted in `dses`, not logged (a dropped one in `dreq`)
        let verdict = match rules.session.is_empty() {
            true => Verdict::Accept,
            false => rules.run(Phase::Session, &env),
        };
        let close = match verdict {
            Verdict::Reject => {
                fe.counters.denied_sess.fetch_add(1, Ordering::Relaxed);
                Some(Close::Fin)
            }
            Verdict::Drop(ttl) => {
                fe.counters.denied_req.fetch_add(1, Ordering::Relaxed);
                Some(Close::dropped(&client, ttl))
            }
            _ => None,
        };
        if let Some(close) = close {
            fe.counters.tot_sess.fetch_sub(1, Ordering::Relaxed);
            g.socks.push((client, close));
            return;
        }
        // a session now: its connection and session trackers count it (content ones never)
        with_counters(&sc, |c| c.session_started());
        // a stream from here on, as HAProxy counts them (`CumReq`)
        req_id = ctx.reg.counters.cum_req.fetch_add(1, Ordering::Relaxed);
        // its variables' `txn` and `req` scopes exist from here on
        let mut v = vars.take();
        v.start_stream();
        vars.set(v);
        let env = env.in_stream(stream_info(&fe, &fe.name, accepted, req_id));
        // a frontend that logs without a format: HAProxy's line at accept
        if fe.config.session_log.is_none() && has_logs(&ctx, &fe) {
            if let Some(to) = env.dst() {
                let line = format!(
                    "Connect from {} to {} ({}/TCP)",
                    tcplog::addr(peer),
                    tcplog::addr(to),
                    fe.name
                );
                log_line(&ctx, &fe, &line, INFO);
            }
        }
        // the frontend's content rules, then its `use_backend` rules (the log then names the
        // frontend as the backend, as HAProxy's does when no backend was reached)
        let mut denied = None;
        if !rules.content.is_empty() {
            denied = content_rules::<R>(
                &env,
                &fe,
                &fe,
                (&client, tls.as_deref().map(|a| &a.tls)),
                &mut fronted.early,
                &mut client_close,
            )
            .await;
        }
        match denied {
            Some(_) => (denied, None),
            None => (None, inspect::backend(&ctx.reg, &fe, &env, &fronted.early)),
        }
    };
    let mut tc: i64 = -1;
    // when the server connection was made, ms since accept (`%Td` counts from it)
    let mut connected: i64 = -1;
    let mut bytes_out = 0u64;
    // bytes received from the client, once forwarded (`option dontlognull` logs no session
    // without any)
    let mut bytes_in: Option<u64> = None;
    // the server the session was given to, connected or not (the log names it)
    let mut tried: Option<Arc<Server>> = None;
    let ts: [u8; 2];
    match be.clone() {
        None => ts = denied.unwrap_or(*b"SC"),
        Some(be) => {
            be.counters.sess_rate.hit();
            // a `listen` section has one set of counters for both roles: count the session once
            let own = Arc::ptr_eq(&fe, &be);
            if !own {
                be.counters.session_started();
                g.be = Some(be.clone());
            }
            // the backend's own content rules, once the session reached it
            let mut denied = None;
            if !own && !be.config.rules.content.is_empty() {
                let env = SessEnv::new(
                    &ctx.reg,
                    &client,
                    peer,
                    fronted.addrs.map(|(_, d)| d),
                    &sc,
                    &vars,
                    tls.as_deref().map(|a| &a.facts),
                )
                .in_stream(stream_info(&fe, &be.name, accepted, req_id));
                denied = content_rules::<R>(
                    &env,
                    &fe,
                    &be,
                    (&client, tls.as_deref().map(|a| &a.tls)),
                    &mut fronted.early,
                    &mut client_close,
                )
                .await;
            }
            let r = match denied {
                Some(t) => Err(NoConn::Denied(t)),
                None => {
                    // `stick` rules: a client the table knows goes back to its server, and
                    // the server reached is stored (in a block: nothing of it is kept while
                    // the session forwards)
                    let sticking = (!be.config.rules.sticking.is_empty()).then(|| {
                        let env = SessEnv::new(
                            &ctx.reg,
                            &client,
                            peer,
                            fronted.addrs.map(|(_, d)| d),
                            &sc,
                            &vars,
                            tls.as_deref().map(|a| &a.facts),
                        )
                        .in_stream(stream_info(&fe, &be.name, accepted, req_id));
                        inspect::sticking(&be, &env, &fronted.early)
                    });
                    // `use-server` first, as HAProxy's server rules run before its stick
                    // matches: a server it names and that runs takes the session directly
                    let forced = (!be.config.rules.server_rules.is_empty())
                        .then(|| {
                            let env = SessEnv::new(
                                &ctx.reg,
                                &client,
                                peer,
                                fronted.addrs.map(|(_, d)| d),
                                &sc,
                                &vars,
                                tls.as_deref().map(|a| &a.facts),
                            )
                            .in_stream(stream_info(&fe, &be.name, accepted, req_id));
                            inspect::use_server(&be, &env, &fronted.early)
                        })
                        .flatten();
                    // HAProxy's order: `use-server`, then `persist rdp-cookie`, then the stick
                    // match
                    let sticky = forced
                        .or_else(|| super::balance::rdp_persist(&be, &fronted.early))
                        .or_else(|| sticking.as_ref().and_then(|s| s.server.clone()));
                    let who = Client::new(&be, peer.ip(), &fronted.early);
                    // a server connection is asked for: HAProxy drops the `req` variables
                    // and its request/response ones are `res` from here on
                    let mut v = vars.take();
                    v.to_response();
                    vars.set(v);
                    // what a connection to an `ssl` server opens with: its PROXY header (with
                    // the stream's unique id if asked), and the SNI its `sni` expression gives
                    let hello = |s: &Server| {
                        let env = SessEnv::new(
                            &ctx.reg,
                            &client,
                            peer,
                            fronted.addrs.map(|(_, d)| d),
                            &sc,
                            &vars,
                            tls.as_deref().map(|a| &a.facts),
                        )
                        .in_stream(stream_info(&fe, &be.name, accepted, req_id));
                        let sni = s.params.sni.as_ref().and_then(|f| match f.sample(&env) {
                            crate::rules::fetch::Sample::Val { v, .. } => Some(v.to_text()),
                            _ => None,
                        });
                        let v2 =
                            s.params.proxy_protocol() == Some(crate::config::ProxyProtocol::V2);
                        let uid = (v2 && s.params.pp2_unique_id)
                            .then(|| env.unique_id().unwrap_or_default());
                        let header = proxy_header(
                            s,
                            (&client, tls.as_deref().map(|a| &a.facts)),
                            peer,
                            &fronted,
                            uid,
                        )
                        .unwrap_or_default();
                        (header, sni.filter(|n| !n.is_empty()))
                    };
                    let r = establish::<R>(&ctx, &be, who, sticky, &mut tries, &hello).await;
                    if let (Some(st), Ok((srv, ..))) = (sticking, &r) {
                        st.store(srv);
                    }
                    r
                }
            };
            match r {
                Err(nc) => {
                    ts = match nc {
                        NoConn::NoServer => *b"SC",
                        NoConn::QueueTimeout(on) => {
                            // HAProxy counts it a failed connection, of the server it waited
                            // for too
                            failed_connection(&be, on.as_deref());
                            tried = on;
                            *b"sQ"
                        }
                        NoConn::QueueFull(srv) => {
                            failed_connection(&be, Some(&srv));
                            tried = Some(srv);
                            // never queued: no queue time, as HAProxy logs it
                            tries.tw = -1;
                            *b"SQ"
                        }
                        NoConn::Refused(srv) => {
                            tried = Some(srv);
                            *b"SC"
                        }
                        NoConn::Timeout(srv) => {
                            tried = Some(srv);
                            *b"sC"
                        }
                        NoConn::Denied(t) => t,
                    };
                }
                Ok((srv, server, server_tls, connect_ms)) => {
                    tc = connect_ms;
                    connected = tries.t0.elapsed().as_millis() as i64;
                    // a format with nothing of the session's end (no bytes, timers, counts
                    // or state), or `option logasap`: logged now, as HAProxy's
                    // `back_establish` does
                    // (in a block: nothing of it is kept while the session forwards)
                    {
                        let asap = fe.config.logasap;
                        let early = fe.config.session_log.as_ref();
                        if let Some(format) = early.filter(|f| asap || !f.waits_for_end()) {
                            if has_logs(&ctx, &fe) {
                                let facts = Facts {
                                    client: Some(peer),
                                    frontend_addr: fronted.addrs.map(|(_, d)| d).or_else(|| {
                                        needs_fi(format, &fe)
                                            .then(|| client.local_addr().ok())
                                            .flatten()
                                    }),
                                    backend_src: needs_bi(format, &fe)
                                        .then(|| server.local_addr().ok())
                                        .flatten(),
                                    server_addr: Some(srv.addr()),
                                    accepted: Some(accepted),
                                    frontend: &fe.name,
                                    backend: &be.name,
                                    server: &srv.name,
                                    tw: tries.tw,
                                    tc,
                                    connected,
                                    tt: connected,
                                    ts: *b"--",
                                    // this session counted everywhere, as HAProxy's are then
                                    conns: [
                                        ctx.reg.counters.cur_conns.load(Ordering::Relaxed),
                                        fe.counters.cur_sess.load(Ordering::Relaxed),
                                        be.counters.cur_sess.load(Ordering::Relaxed),
                                        srv.counters.cur_sess.load(Ordering::Relaxed),
                                    ],
                                    retries: tries.retries,
                                    redispatched: tries.redispatched,
                                    queues: tries.queue_pos,
                                    req_id,
                                    logasap: asap,
                                    req_caps: req_captures(&fe, &vars),
                                    ssl_listener: entry.tls.is_some(),
                                    tls: tls.as_deref().map(|a| &a.facts),
                                    ..Facts::default()
                                };
                                let env = SessEnv::new(
                                    &ctx.reg,
                                    &client,
                                    peer,
                                    fronted.addrs.map(|(_, d)| d),
                                    &sc,
                                    &vars,
                                    tls.as_deref().map(|a| &a.facts),
                                )
                                .in_stream(stream_info(&fe, &be.name, accepted, req_id));
                                if emit_line(&ctx, &fe, format, facts, &env, true) {
                                    logged = true;
                                }
                            }
                        }
                    }
                    g.srv = Some(srv.clone());
                    // `proxy-v2-options unique-id`: the stream's id, built now if nothing
                    // asked for it before (the log line reuses it); nothing of it (nor of the
                    // sending) is kept while the session forwards
                    let failed = {
                        let uid = {
                            let v2 = srv.params.proxy_protocol()
                                == Some(crate::config::ProxyProtocol::V2);
                            (v2 && srv.params.pp2_unique_id)
                                .then(|| {
                                    SessEnv::new(
                                        &ctx.reg,
                                        &client,
                                        peer,
                                        fronted.addrs.map(|(_, d)| d),
                                        &sc,
                                        &vars,
                                        tls.as_deref().map(|a| &a.facts),
                                    )
                                    .in_stream(stream_info(&fe, &be.name, accepted, req_id))
                                    .unique_id()
                                    // no format: HAProxy's empty id, a TLV of length 0
                                    .or_else(|| Some(Vec::new()))
                                })
                                .flatten()
                        };
                        send_first::<R>(
                            &srv,
                            (&client, tls.as_deref().map(|a| &a.facts)),
                            peer,
                            &fronted,
                            (&server, server_tls.as_deref()),
                            uid,
                        )
                        .await
                        .err()
                    };
                    if let Some(e) = failed {
                        // a failed connection, as in HAProxy, where the send is part of it
                        tracing::debug!(server = %srv.name, error = %e, "PROXY header not sent");
                        failed_connection(&be, Some(&srv));
                        ts = *b"SC";
                        g.socks.push((server, Close::Reset));
                    } else {
                        // the client bytes that came with a PROXY header count as forwarded
                        let early = fronted.early.len() as u64;
                        count_client_bytes(&fe, Some(&be), Some(&srv), early);
                        let Forwarded {
                            res: r,
                            bytes_out: bout,
                            bytes_in: bin,
                            fins,
                            timed_out,
                        } = match (tls.as_deref().map(|a| &a.tls), server_tls.as_deref()) {
                            (None, None) => {
                                forward_both::<R, _>(&ctx, &fe, &be, &srv, &client, &server, Clear)
                                    .await
                            }
                            // boxed: plain sessions keep no room for TLS sessions' state
                            (client_tls, server_tls) => {
                                let tls = Ciphered {
                                    client: client_tls,
                                    server: server_tls,
                                };
                                Box::pin(forward_both::<R, _>(
                                    &ctx, &fe, &be, &srv, &client, &server, tls,
                                ))
                                .await
                            }
                        };
                        bytes_out = bout;
                        bytes_in = Some(bin + early);
                        client_close = Close::client(fins[0], fe.config.nolinger);
                        if let Err(End::Fault(Fault::Io(side, e))) = &r {
                            tracing::debug!(?side, error = %e, "session fault");
                        }
                        g.quiet = r.is_ok();
                        let close = Close::server(fins[1], matches!(r, Err(End::Killed(_))));
                        ts = termination(timed_out, r, &be.counters, &srv.counters);
                        g.socks.push((server, close));
                    }
                }
            }
        }
    }
    let bytes_in = match bytes_in {
        Some(n) => n,
        None => {
            // no server session ran: count what the client sent all the same
            let srv = g.srv.as_deref().or(tried.as_deref());
            unforwarded_client_bytes(&fe, be.as_deref(), srv, &client, &fronted.early)
        }
    };
    // what the session moved, counted in the entries it tracks
    // (still tracked while the line is logged, as in HAProxy: `%[sc0_conn_cur]` reads them)
    let tracked = sc.take();
    tracked.add_bytes(bytes_in, bytes_out);
    sc.set(tracked);
    let null = fe.config.dontlognull && bytes_in == 0;
    let format = fe.config.session_log.as_ref().filter(|_| !null && !logged);
    if let Some(format) = format.filter(|_| has_logs(&ctx, &fe)) {
        let srv = g.srv.as_ref().or(tried.as_ref());
        let srv_name = srv.map(|s| s.name.clone());
        let facts = Facts {
            client: Some(peer),
            frontend_addr: fronted.addrs.map(|(_, d)| d).or_else(|| {
                needs_fi(format, &fe)
                    .then(|| client.local_addr().ok())
                    .flatten()
            }),
            // (read from the server socket, kept until the session's guard drops)
            backend_src: match g.socks.last() {
                Some((s, _)) if connected >= 0 && needs_bi(format, &fe) => s.local_addr().ok(),
                _ => None,
            },
            server_addr: srv.map(|s| s.addr()),
            accepted: Some(accepted),
            frontend: &fe.name,
            // no backend reached: HAProxy's stream still has the frontend as its backend
            backend: be.as_ref().map_or(&*fe.name, |b| &*b.name),
            server: srv_name.as_deref().unwrap_or("<NOSRV>"),
            th: 0,
            tw: tries.tw,
            tc,
            connected,
            tt: tries.t0.elapsed().as_millis() as i64,
            bytes_out,
            bytes_in,
            ts,
            // as in HAProxy's line, the process and frontend counts still include this
            // session, the backend and server counts ("still active") no longer do
            conns: [
                ctx.reg.counters.cur_conns.load(Ordering::Relaxed),
                fe.counters.cur_sess.load(Ordering::Relaxed),
                be.as_ref().map_or(0, |b| others(&b.counters.cur_sess)),
                match (&g.srv, &tried) {
                    (Some(s), _) => others(&s.counters.cur_sess),
                    // no slot held (a server queue timed out, connects failed)
                    (None, Some(s)) => s.counters.cur_sess.load(Ordering::Relaxed),
                    (None, None) => 0,
                },
            ],
            retries: tries.retries,
            redispatched: tries.redispatched,
            queues: tries.queue_pos,
            req_id,
            log_count: 0,
            unique_id: None,
            // HAProxy marks them on every line of a logasap proxy, early or not
            logasap: fe.config.logasap,
            req_caps: req_captures(&fe, &vars),
            ssl_listener: entry.tls.is_some(),
            tls: tls.as_deref().map(|a| &a.facts),
        };
        let env = SessEnv::new(
            &ctx.reg,
            &client,
            peer,
            fronted.addrs.map(|(_, d)| d),
            &sc,
            &vars,
            tls.as_deref().map(|a| &a.facts),
        )
        .in_stream(stream_info(
            &fe,
            be.as_ref().map_or(&*fe.name, |b| &*b.name),
            accepted,
            req_id,
        ));
        emit_line(&ctx, &fe, format, facts, &env, true);
    }
    // a TLS client is told the end (`close_notify`, if not sent already) before its FIN
    if let Some(t) = tls
        .as_deref()
        .map(|a| &a.tls)
        .filter(|_| matches!(client_close, Close::Fin | Close::FinReset))
    {
        t.close_notify();
        let _ = t.flush_now(&client);
    }
    g.socks.push((client, client_close));
}

/// The line of a connection that never became a session (a broken PROXY header, a failed TLS
/// handshake): `error-log-format` rendered as HAProxy renders that session (`PR`, no server, the
/// frontend as backend, no timers but the total), else HAProxy's fixed text
/// `<ip>:<port> [<accept date>] <frontend>/<listener>: <why>`. `base`: facts the cause adds
/// (a TLS listener's `~`).
#[allow(clippy::too_many_arguments)]
fn embryonic_line(
    ctx: &Ctx,
    fe: &Proxy,
    client: &TcpStream,
    peer: SocketAddr,
    accepted: SystemTime,
    tries: &Tries,
    bind: &str,
    why: &'static str,
    base: Facts<'_>,
    sc: &Cell<Counters>,
    vars: &Cell<SessVars>,
) {
    match &fe.config.error_log {
        Some(format) => {
            let facts = Facts {
                client: Some(peer),
                frontend_addr: client.local_addr().ok(),
                accepted: Some(accepted),
                frontend: &fe.name,
                backend: &fe.name,
                server: "<NOSRV>",
                tw: -1,
                tc: -1,
                connected: -1,
                tt: tries.t0.elapsed().as_millis() as i64,
                ts: *b"PR",
                conns: [
                    ctx.reg.counters.cur_conns.load(Ordering::Relaxed),
                    fe.counters.cur_sess.load(Ordering::Relaxed),
                    0,
                    0,
                ],
                // HAProxy takes a stream number for the line it builds
                req_id: ctx.reg.counters.cum_req.fetch_add(1, Ordering::Relaxed),
                ..base
            };
            let env = SessEnv::new(&ctx.reg, client, peer, None, sc, vars, None).failed(why);
            emit_line(ctx, fe, format, facts, &env, false);
        }
        None => {
            let line = tcplog::embryonic(peer, accepted, &fe.name, bind, why);
            // a session that never was: an error, `err` if asked
            log_line(ctx, fe, &line, level_of(fe, true));
        }
    }
}

/// How much of a request HAProxy's buffer takes in before a server connection exists:
/// `tune.bufsize` less `tune.maxrewrite` (16,384 - 1,024 by default; watched: 15,360 of 40,000
/// bytes counted).
const REQUEST_BUFFER: u64 = 15_360;

/// The client bytes of a session that reached no server, counted in `bin` of the frontend, the
/// backend and the server it was given to, as HAProxy counts the request it had read into its
/// buffer: what came with a PROXY header plus what waits unread in the socket, up to
/// [`REQUEST_BUFFER`]. Also what `option dontlognull` judges such a session by.
fn unforwarded_client_bytes(
    fe: &Proxy,
    be: Option<&Proxy>,
    srv: Option<&Server>,
    client: &TcpStream,
    early: &[u8],
) -> u64 {
    let n = (early.len() as u64 + sys::unread_bytes(client)).min(REQUEST_BUFFER);
    count_client_bytes(fe, be, srv, n);
    n
}

/// Adds `n` client bytes to `bin` of the frontend, the backend (once for a `listen` section)
/// and the server.
fn count_client_bytes(fe: &Proxy, be: Option<&Proxy>, srv: Option<&Server>, n: u64) {
    if n == 0 {
        return;
    }
    let r = Ordering::Relaxed;
    fe.counters.bytes_in.fetch_add(n, r);
    if let Some(be) = be.filter(|be| !std::ptr::eq(*be, fe)) {
        be.counters.bytes_in.fetch_add(n, r);
    }
    if let Some(s) = srv {
        s.counters.bytes_in.fetch_add(n, r);
    }
}

/// Whether the frontend logs anywhere (its own `log` lines, or `log global` with global ones).
fn has_logs(ctx: &Ctx, fe: &Proxy) -> bool {
    fe.config.logs.iter().any(|t| match t {
        LogTarget::Global => !ctx.reg.config.global.logs.is_empty(),
        _ => true,
    })
}

/// The stream a session's rules and log lines see: the frontend, the backend named so far,
/// when it was accepted, its number and its unique-id format.
fn stream_info<'a>(
    fe: &'a Proxy,
    backend: &'a str,
    accepted: SystemTime,
    id: u64,
) -> StreamInfo<'a> {
    StreamInfo {
        frontend: &fe.name,
        backend,
        accepted,
        id,
        unique_id_format: fe.config.unique_id.as_deref(),
    }
}

/// Whether a line of `format` shows the address the client reached (`%fi`), its own or
/// through the unique id it prints.
fn needs_fi(format: &LogFormat, fe: &Proxy) -> bool {
    format.reads_frontend_addr()
        || (format.prints_unique_id()
            && fe
                .config
                .unique_id
                .as_ref()
                .is_some_and(|u| u.reads_frontend_addr()))
}

/// The same for where harp connected to the server from (`%bi`).
fn needs_bi(format: &LogFormat, fe: &Proxy) -> bool {
    format.reads_backend_src()
        || (format.prints_unique_id()
            && fe
                .config
                .unique_id
                .as_ref()
                .is_some_and(|u| u.reads_backend_src()))
}

/// The frontend's capture slots and what the session captured in each (`%hr`): none when it
/// declares no capture.
fn req_captures(fe: &Proxy, vars: &Cell<SessVars>) -> Vec<Option<Vec<u8>>> {
    let n = fe.config.rules.captures.len();
    if n == 0 {
        return Vec::new();
    }
    let v = vars.take();
    let mut caps = v.captures();
    vars.set(v);
    caps.resize(n, None);
    caps
}

/// Renders a session's line and sends it; an empty line is not sent, nor counted (`%lc`).
/// Returns whether it was logged (`option dontlog-normal` skips a session that did not fail:
/// HAProxy then logs it again at its end, should it fail by then). `stream`: it is a stream's
/// line (an embryonic one has no unique id).
fn emit_line(
    ctx: &Ctx,
    fe: &Proxy,
    format: &LogFormat,
    mut facts: Facts,
    env: &SessEnv,
    stream: bool,
) -> bool {
    let error = facts.is_error();
    // `option dontlog-normal`: only failed sessions
    if fe.config.dontlog_normal && !error {
        return false;
    }
    facts.log_count = fe.counters.log_count.load(Ordering::Relaxed);
    // `%ID`: the stream's unique id: the one a rule built, else built now, as HAProxy does
    let id = match &fe.config.unique_id {
        Some(u) if stream && format.prints_unique_id() => Some(
            env.built_unique_id()
                .unwrap_or_else(|| crate::rules::logformat::cap_unique_id(u.render(&facts, env))),
        ),
        _ => None,
    };
    let facts = Facts {
        unique_id: id.as_deref(),
        ..facts
    };
    let line = format.render(&facts, env);
    if !line.is_empty() {
        fe.counters.log_count.fetch_add(1, Ordering::Relaxed);
        log_line(ctx, fe, &line, level_of(fe, error));
    }
    true
}

/// The syslog level of a session's line: `err` for a failed one under `option
/// log-separate-errors`, else `info`.
fn level_of(fe: &Proxy, error: bool) -> u8 {
    if error && fe.config.log_separate_errors {
        ERR
    } else {
        INFO
    }
}

/// Sends a log line to the frontend's `log` targets.
fn log_line(ctx: &Ctx, fe: &Proxy, line: &str, level: u8) {
    let global = &ctx.reg.config.global.logs;
    let mut targets: Vec<&LogTarget> = Vec::new();
    for t in &fe.config.logs {
        match t {
            LogTarget::Global => targets.extend(global.iter()),
            t => targets.push(t),
        }
    }
    if !targets.is_empty() {
        ctx.logs
            .borrow_mut()
            .send(&targets, level, ctx.reg.log_tag(fe), line);
    }
}

/// What the load balancer in front said in its PROXY protocol header (`accept-proxy`).
#[derive(Default)]
struct Fronted {
    /// The client's address and the one it reached, when the header named them.
    addrs: Option<(SocketAddr, SocketAddr)>,
    /// Client bytes read past the header: the server gets them before anything else.
    early: Vec<u8>,
}

/// Reads the PROXY protocol header (v1 or v2) a connection starts with, until `deadline`,
/// counting the bytes read in `got`; HAProxy's log message when there is none or it is broken.
async fn read_proxy_header<R: Rt>(
    client: &TcpStream,
    got: &mut usize,
    deadline: Instant,
) -> Result<Fronted, &'static str> {
    let mut buf = Vec::new();
    loop {
        match crate::proxy_protocol::parse(&buf) {
            Parsed::Header { len, addrs } => {
                let early = buf.split_off(len);
                return Ok(Fronted { addrs, early });
            }
            Parsed::Invalid(why) => return Err(why),
            Parsed::Need(_) => {}
        }
        let max = crate::proxy_protocol::MAX_LEN;
        match inspect::read_more::<R>((client, None), &mut buf, max, deadline).await {
            Waited::More => *got = buf.len(),
            Waited::End if buf.is_empty() => {
                return Err("Connection closed while waiting for PROXY protocol header")
            }
            Waited::End => return Err("Truncated PROXY protocol header received"),
            Waited::Late => return Err("Timeout while waiting for PROXY protocol header"),
            Waited::Failed => {
                return Err("Connection error while waiting for PROXY protocol header")
            }
        }
    }
}

/// Starts the server connection with what must come before the forwarding: the PROXY protocol
/// header of the client's connection (`peer` to the address it reached) when the server has
/// `send-proxy` or `send-proxy-v2`, then the client bytes read with a header of the load
/// balancer in front.
async fn send_first<R: Rt>(
    srv: &Server,
    client: (&TcpStream, Option<&TlsFacts>),
    peer: SocketAddr,
    fronted: &Fronted,
    (server, tls): (&TcpStream, Option<&TlsConn>),
    unique_id: Option<Vec<u8>>,
) -> io::Result<()> {
    // an `ssl` server had its header before the handshake: the bytes go encrypted
    if let Some(t) = tls {
        if fronted.early.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(3600);
        return Box::pin(super::tls::send_all::<R>(
            t,
            server,
            &fronted.early,
            deadline,
        ))
        .await;
    }
    let mut first = proxy_header(srv, client, peer, fronted, unique_id)?;
    first.extend_from_slice(&fronted.early);
    write_clear::<R>(server, &first, None).await
}

/// Writes all of `data` to a fresh server connection in the clear (its send buffer takes these
/// few bytes at once; wait if it does not), waiting until `deadline` at most when one is given.
async fn write_clear<R: Rt>(
    sock: &TcpStream,
    data: &[u8],
    deadline: Option<Instant>,
) -> io::Result<()> {
    let mut sent = 0;
    while sent < data.len() {
        match (&*sock).write(&data[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let ready = R::ready(sock.as_raw_fd(), Interest::Write);
                match deadline {
                    None => ready.await?,
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        R::timeout(left, ready)
                            .await
                            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??
                    }
                };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The PROXY protocol header `srv` wants (`send-proxy`, `send-proxy-v2`; empty without),
/// naming the client `peer` and the address it reached.
fn proxy_header(
    srv: &Server,
    (client, tls): (&TcpStream, Option<&TlsFacts>),
    peer: SocketAddr,
    fronted: &Fronted,
    unique_id: Option<Vec<u8>>,
) -> io::Result<Vec<u8>> {
    use crate::proxy_protocol::{SslTlv, Tlvs};
    Ok(match srv.params.proxy_protocol() {
        Some(v) => {
            let dst = match fronted.addrs {
                Some((_, dst)) => dst,
                None => client.local_addr()?,
            };
            let o = srv.params.pp2_tls;
            let tlvs = Tlvs {
                alpn: tls.and_then(|t| t.alpn.as_deref()),
                authority: tls
                    .and_then(|t| t.sni.as_deref())
                    .filter(|_| o.authority)
                    .map(str::as_bytes),
                unique_id: unique_id.as_deref(),
                ssl: o.ssl.then(|| SslTlv {
                    version: tls.map(|t| t.version),
                    cert: tls.is_some_and(|t| t.client_cert.is_some()),
                    cert_conn: tls.is_some_and(|t| t.client_cert.is_some() && !t.resumed),
                    cn: tls
                        .and_then(|t| t.client_cn.as_deref())
                        .filter(|_| o.cert_cn),
                    cipher: tls.map(|t| t.cipher).filter(|_| o.cipher),
                }),
            };
            crate::proxy_protocol::header_with(v, peer, dst, &tlvs)
        }
        None => Vec::new(),
    })
}

/// The log's termination state of a session that reached its server, counted as HAProxy counts
/// it: the first error only (a side that went quiet past its timeout wins even if the session
/// then ended otherwise); a timeout or an error is an abort of its side (`cli_abrt`,
/// `srv_abrt`), a server error also a response error (`eresp`).
fn termination(
    timed_out: Option<Side>,
    r: Result<(), End>,
    be: &ProxyCounters,
    srv: &ServerCounters,
) -> [u8; 2] {
    let (state, aborted) = match (timed_out, r) {
        (Some(side), _) | (None, Err(End::Fault(Fault::Timeout(side)))) => (
            if side == Side::Client { *b"cD" } else { *b"sD" },
            Some(side),
        ),
        (None, Ok(())) => (*b"--", None),
        // HAProxy leaves the session state blank for these
        (None, Err(End::Killed(KillCause::Admin))) => (*b"K-", None),
        (None, Err(End::Killed(KillCause::Down))) => (*b"D-", None),
        (None, Err(End::Killed(KillCause::Up))) => (*b"U-", None),
        (None, Err(End::Fault(Fault::Io(Side::Client, _) | Fault::Fallback))) => {
            (*b"CD", Some(Side::Client))
        }
        (None, Err(End::Fault(Fault::Io(Side::Server, _)))) => {
            be.eresp.fetch_add(1, Ordering::Relaxed);
            srv.eresp.fetch_add(1, Ordering::Relaxed);
            (*b"SD", Some(Side::Server))
        }
    };
    match aborted {
        Some(Side::Client) => {
            be.cli_abrt.fetch_add(1, Ordering::Relaxed);
            srv.cli_abrt.fetch_add(1, Ordering::Relaxed);
        }
        Some(Side::Server) => {
            be.srv_abrt.fetch_add(1, Ordering::Relaxed);
            srv.srv_abrt.fetch_add(1, Ordering::Relaxed);
        }
        None => {}
    }
    state
}

/// A session count without the session being logged, which it includes until the guard drops.
fn others(count: &std::sync::atomic::AtomicU64) -> u64 {
    count.load(Ordering::Relaxed).saturating_sub(1)
}

/// Connects to a server, retrying `retries` times and, with `option redispatch`, moving to
/// another server as HAProxy does (`stream_choose_redispatch`): at once when the failed server
/// is no longer usable, or when the backend has more than one usable active server and a
/// balancing algorithm that does not hash (any other server does), else on the retries its
/// interval names (by default the last). After a refused connect, a retry on the same server
/// first waits HAProxy's turn-around delay of min(`timeout connect`, 1 s); after a connect
/// timeout it does not. `sticky`: the server a stick table names for the client, tried first.
async fn establish<R: Rt>(
    ctx: &Ctx,
    be: &Arc<Proxy>,
    client: Client,
    sticky: Option<Arc<Server>>,
    tries: &mut Tries,
    hello: TlsHello<'_>,
) -> Result<(Arc<Server>, TcpStream, Option<Box<TlsConn>>, i64), NoConn> {
    let to = &be.config.timeouts;
    let budget = to.queue.or(to.connect);
    let max_retries = if be.config.conn_retries_off {
        0
    } else {
        be.config.retries
    };
    // the server of the last attempt; its slot is still held when the retry stays on it
    let mut last: Option<Held<'_>> = None;
    // set once the server named directly was too full to queue on: the balancer picks from
    // then on (HAProxy clears SF_DIRECT without counting a redispatch)
    let undirected = std::cell::Cell::new(false);
    // the server a stick table named, which a retry stays on while it takes persistent clients
    let is_sticky = |s: &Arc<Server>| {
        !undirected.get()
            && sticky
                .as_ref()
                .is_some_and(|d| Arc::ptr_eq(d, s) && s.may_persist())
    };
    let mut redispatch = false;
    loop {
        let srv = match last.take() {
            // a retry on the same server keeps its slot, as in HAProxy
            Some(h) if !redispatch && (h.srv().is_usable() || is_sticky(h.srv())) => h,
            prev => {
                let left = prev.map(Held::release);
                let exclude = left.as_ref().filter(|_| redispatch);
                // a redispatch leaves the server a stick table named for good, as HAProxy's
                // (clearing SF_DIRECT) does
                let mut direct = sticky
                    .as_ref()
                    .filter(|_| exclude.is_none() && !tries.redispatched && !undirected.get());
                // a server named directly whose queue is full: with `option redispatch` the
                // balancer picks instead (HAProxy's srv_redispatch_connect on SRV_STATUS_FULL)
                let full_redispatch = direct.is_some() && be.config.redispatch;
                let s = match acquire::<R>(ctx, be, client, exclude, direct, budget, tries).await {
                    Err(NoConn::QueueFull(_)) if full_redispatch => {
                        direct = None;
                        undirected.set(true);
                        acquire::<R>(ctx, be, client, exclude, None, budget, tries).await?
                    }
                    r => r?,
                };
                // a server the table named was not chosen by the balancer: no `lbtot`
                if !direct.is_some_and(|d| Arc::ptr_eq(d, &s)) {
                    s.counters.lbtot.fetch_add(1, Ordering::Relaxed);
                    be.counters.lbtot.fetch_add(1, Ordering::Relaxed);
                }
                // HAProxy counts a redispatch on the server left behind
                if let Some(l) = left.as_ref().filter(|l| redispatch && !Arc::ptr_eq(l, &s)) {
                    tries.redispatched = true;
                    l.counters.wredis.fetch_add(1, Ordering::Relaxed);
                    be.counters.wredis.fetch_add(1, Ordering::Relaxed);
                }
                Held::new(be, s)
            }
        };
        if tries.tw < 0 {
            tries.tw = tries.t0.elapsed().as_millis() as i64;
        }
        let t = Instant::now();
        // a server's `stot` counts connection attempts, as in HAProxy
        srv.srv().counters.tot_sess.fetch_add(1, Ordering::Relaxed);
        srv.srv().counters.sess_rate.hit();
        let source = srv
            .srv()
            .params
            .source
            .as_ref()
            .or(be.config.source.as_ref());
        let opts = ConnectOpts {
            source,
            bufs: &ctx.reg.global().bufs,
            user_timeout: srv.srv().params.tcp_ut,
        };
        let attempt = match connect::<R>(srv.srv().addr(), be, &opts).await {
            // `ssl`: the handshake is part of the connection, as in HAProxy (a failed one is
            // retried), within the same `timeout connect`
            Ok(sock) if srv.srv().params.ssl => {
                let limit = be
                    .config
                    .timeouts
                    .connect
                    .unwrap_or(Duration::from_secs(3600));
                let c = &srv.srv().counters;
                // (boxed, as the client side's: only TLS sessions hold its state)
                match Box::pin(open_tls::<R>(ctx, srv.srv(), &sock, hello, t + limit)).await {
                    Ok(tls) => {
                        c.ssl_sess.fetch_add(1, Ordering::Relaxed);
                        Ok((sock, Some(tls)))
                    }
                    Err(e) => {
                        c.ssl_failed_handshake.fetch_add(1, Ordering::Relaxed);
                        Err(e)
                    }
                }
            }
            Ok(sock) => Ok((sock, None)),
            Err(e) => Err(e),
        };
        srv.srv().observe_connect(attempt.is_ok());
        match attempt {
            Ok((sock, tls)) => return Ok((srv.keep(), sock, tls, t.elapsed().as_millis() as i64)),
            Err(e) => {
                tracing::debug!(server = %srv.srv().name, error = %e, "connect failed");
                let timed_out = e.kind() == io::ErrorKind::TimedOut;
                if tries.retries >= max_retries {
                    let srv = srv.release();
                    // `econ` counts sessions that gave up, not attempts
                    failed_connection(be, Some(&srv));
                    return Err(if timed_out {
                        NoConn::Timeout(srv)
                    } else {
                        NoConn::Refused(srv)
                    });
                }
                tries.retries += 1;
                // a server named by a stick table or `use-server` (HAProxy's SF_DIRECT) keeps
                // the session until the redispatch interval says otherwise
                let direct = !tries.redispatched
                    && !undirected.get()
                    && sticky.as_ref().is_some_and(|d| Arc::ptr_eq(d, srv.srv()));
                redispatch = redispatch_now(be, srv.srv(), tries.retries, direct);
                if !redispatch {
                    srv.srv().counters.wretr.fetch_add(1, Ordering::Relaxed);
                    be.counters.wretr.fetch_add(1, Ordering::Relaxed);
                }
                // a refused server likely refuses again at once: pause before trying it again
                if !timed_out && (!redispatch || be.srv_act() <= 1) {
                    let pause = to
                        .connect
                        .unwrap_or(Duration::from_secs(1))
                        .min(Duration::from_secs(1));
                    R::sleep(pause).await;
                }
                last = Some(srv);
            }
        }
    }
}

/// What the connection to an `ssl` server opens with, for the server chosen: the PROXY header
/// to send before the handshake (empty without `send-proxy`), and the name to send as SNI.
type TlsHello<'h> = &'h dyn Fn(&Server) -> (Vec<u8>, Option<String>);

/// Opens TLS on a new connection to `srv`: its PROXY header in the clear first, then the
/// handshake, until `deadline`.
async fn open_tls<R: Rt>(
    ctx: &Ctx,
    srv: &Server,
    sock: &TcpStream,
    hello: TlsHello<'_>,
    deadline: Instant,
) -> io::Result<Box<TlsConn>> {
    use tokio_rustls::rustls::pki_types::ServerName;
    // past `maxsslconn`, before anything is sent
    let max = u64::from(ctx.reg.global().maxsslconn);
    if max > 0 && ctx.reg.counters.cur_ssl_conns.load(Ordering::Relaxed) >= max {
        return Err(io::Error::other(HandshakeError::TooMany.text()));
    }
    let (header, sni) = hello(srv);
    write_clear::<R>(sock, &header, Some(deadline)).await?;
    let Some(configs) = srv.tls_client(ctx.reg.global().ssl_server_verify) else {
        return Err(io::Error::other("no TLS configuration"));
    };
    let named = sni.and_then(|s| ServerName::try_from(s).ok());
    let (config, name) = match named {
        Some(n) => (configs.named.clone(), n),
        // no SNI: rustls sends none for an address, and the chain alone is verified
        None => (
            configs.unnamed.clone(),
            ServerName::IpAddress(srv.addr().ip().into()),
        ),
    };
    let mut tls = Box::new(TlsConn::connect(config, name)?);
    handshake::<R>(&tls, sock, deadline)
        .await
        .map_err(HandshakeError::into_io)?;
    tls.count_in(&ctx.reg);
    Ok(tls)
}

/// A server slot held while connecting: given back when dropped (a failed attempt that moves
/// on, or a task dropped by a hard stop), kept by the session once connected.
struct Held<'a> {
    be: &'a Proxy,
    srv: Arc<Server>,
    /// Still to be given back on drop.
    held: bool,
}

impl<'a> Held<'a> {
    fn new(be: &'a Proxy, srv: Arc<Server>) -> Held<'a> {
        Held {
            be,
            srv,
            held: true,
        }
    }

    fn srv(&self) -> &Arc<Server> {
        &self.srv
    }

    /// The server, its slot now the session's.
    fn keep(mut self) -> Arc<Server> {
        self.held = false;
        self.srv.clone()
    }

    /// Gives the slot back (to the oldest waiter that can use it); the server stays named.
    fn release(self) -> Arc<Server> {
        self.srv.clone()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.held {
            release_slot(self.be, &self.srv);
        }
    }
}

/// Whether retry number `retry` (from 1) after `srv` failed goes to another server, as
/// HAProxy's `stream_choose_redispatch`: a server down (or starting, or in maintenance)
/// at once, else on the `redispatch` interval, else at once when other servers are active,
/// the balancing does not hash and the server was not named directly (`direct`).
fn redispatch_now(be: &Proxy, srv: &Server, retry: u32, direct: bool) -> bool {
    let c = &be.config;
    if !c.redispatch {
        return false;
    }
    let (retry, max) = (i64::from(retry), i64::from(c.retries));
    let after = i64::from(c.redispatch_after);
    // negative: the Nth retry before the last one, and every as many after it
    let every = if after > 0 { after } else { max + 1 + after };
    let hashes = matches!(
        c.balance,
        BalanceAlgo::Source | BalanceAlgo::Random | BalanceAlgo::RdpCookie
    );
    let not_running = matches!(
        srv.op_state(),
        crate::model::OpState::Stopped | crate::model::OpState::Starting
    ) || srv.admin().maint()
        || srv.deleted();
    not_running || (every > 0 && retry % every == 0) || (!direct && !hashes && be.srv_act() > 1)
}

enum End {
    Fault(Fault),
    /// Closed under it: by the Runtime API or a hard stop, or as its server went down.
    Killed(KillCause),
}

/// How a session's two directions are moved: in the clear ([`Clear`], which holds nothing), or
/// with TLS on an end ([`Ciphered`]).
trait Pumps {
    /// Forwards both directions to their ends.
    async fn both<R: Rt>(
        &self,
        c2s: &Dir<'_>,
        s2c: &Dir<'_>,
        timers: &Timers,
        ctx: &Ctx,
        splice: crate::config::Splice,
    ) -> Result<((), ()), Fault>;
}

/// Both ends in the clear: copied or spliced.
struct Clear;

impl Pumps for Clear {
    async fn both<R: Rt>(
        &self,
        c2s: &Dir<'_>,
        s2c: &Dir<'_>,
        timers: &Timers,
        ctx: &Ctx,
        splice: crate::config::Splice,
    ) -> Result<((), ()), Fault> {
        tokio::try_join!(
            forward::pump::<R>(c2s, timers, &ctx.bufs, splice.request, &ctx.reg.counters),
            forward::pump::<R>(s2c, timers, &ctx.bufs, splice.response, &ctx.reg.counters),
        )
    }
}

/// TLS on the client's end, the server's, or both.
struct Ciphered<'a> {
    client: Option<&'a TlsConn>,
    server: Option<&'a TlsConn>,
}

impl Pumps for Ciphered<'_> {
    async fn both<R: Rt>(
        &self,
        c2s: &Dir<'_>,
        s2c: &Dir<'_>,
        timers: &Timers,
        ctx: &Ctx,
        _splice: crate::config::Splice,
    ) -> Result<((), ()), Fault> {
        let up = forward::TlsEnds {
            from: self.client,
            to: self.server,
        };
        let down = forward::TlsEnds {
            from: self.server,
            to: self.client,
        };
        tokio::try_join!(
            forward::pump_tls::<R>(c2s, up, timers, &ctx.bufs),
            forward::pump_tls::<R>(s2c, down, timers, &ctx.bufs),
        )
    }
}

/// How the forwarding of a session ended: what the log line and the closing need.
struct Forwarded {
    /// Both directions ended on their own, or why not.
    res: Result<(), End>,
    /// Bytes sent to the client.
    bytes_out: u64,
    /// Bytes received from the client.
    bytes_in: u64,
    /// Whether the client's and the server's FIN were read (how each socket is closed).
    fins: [bool; 2],
    /// The first side that went quiet past its timeout (the termination state).
    timed_out: Option<Side>,
}

/// Forwards both directions until both ended, one failed, the server's sessions were shut down or
/// the worker stops hard.
async fn forward_both<R: Rt, P: Pumps>(
    ctx: &Ctx,
    fe: &Proxy,
    be: &Proxy,
    srv: &Server,
    client: &TcpStream,
    server: &TcpStream,
    pumps: P,
) -> Forwarded {
    let (ft, bt) = (&fe.config.timeouts, &be.config.timeouts);
    let normal = match bt.tunnel {
        Some(t) => [Some(t), Some(t)],
        None => [ft.client, bt.server],
    };
    let timers = Timers::new(normal, [ft.client_fin, bt.server_fin])
        .with_server_nolinger(be.config.nolinger);
    let splice = fe.config.splice.with_backend(be.config.splice);
    let acct = Accounts {
        fe: &fe.counters,
        be: (!std::ptr::eq(fe, be)).then_some(&be.counters),
        srv: &srv.counters,
        global: &ctx.reg.counters,
    };
    let dir = |from, to, from_side| Dir {
        from,
        to,
        from_side,
        bytes: Cell::new(0),
        spliced: Cell::new(0),
        acct: &acct,
        flushed: Cell::new((0, 0)),
    };
    let c2s = dir(client, server, Side::Client);
    let s2c = dir(server, client, Side::Server);
    let res = {
        // pinned where they are: a future moved into `select!` would keep a second, dead copy
        // of itself in this one's state, which every idle session holds (4.6 KB, not 2.1)
        let both = std::pin::pin!(pumps.both::<R>(&c2s, &s2c, &timers, ctx, splice));
        let killed = std::pin::pin!(killed(srv));
        let stopped = std::pin::pin!(hard_stop(ctx));
        tokio::select! {
            r = both => r.map(|_| ()).map_err(End::Fault),
            cause = killed => Err(End::Killed(cause)),
            _ = stopped => Err(End::Killed(KillCause::Admin)),
        }
    };
    c2s.flush();
    s2c.flush();
    let fins = [timers.fin_read(Side::Client), timers.fin_read(Side::Server)];
    Forwarded {
        res,
        bytes_out: s2c.bytes.get(),
        bytes_in: c2s.bytes.get(),
        fins,
        timed_out: timers.first_timeout(),
    }
}
