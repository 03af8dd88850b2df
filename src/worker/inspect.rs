//! A proxy's `tcp-request` and `use_backend` rules applied to one session: what the rule
//! engine ([`crate::rules`]) may read of it, and the reading of the request's first bytes while
//! `tcp-request content` rules wait for them. The bytes read here are sent to the server first,
//! as those read with a PROXY header are.

use std::cell::{Cell, OnceCell};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::runtime::Rt;
use super::tls::TlsConn;
use crate::model::{OpState, Proxy, Registry, Server};
use crate::rules::fetch::StreamInfo;
use crate::rules::vars::{Got, Scope, SessVars, SetCond, VarName};
use crate::rules::{Env, Phase, ProxyStat, Rules, ServerStat, Value, Verdict, MAX_CONTENT};
use crate::stick::fetch::TableRead;
use crate::stick::{Counters, DataType, Key, KeySample, Table};
use crate::sys::Interest;
use crate::tls::TlsFacts;

/// One session as the rules see it.
pub(crate) struct SessEnv<'a> {
    reg: &'a Registry,
    client: &'a TcpStream,
    src: SocketAddr,
    /// The address a PROXY header named as the destination.
    fronted_dst: Option<SocketAddr>,
    /// The socket's own address, read once if a rule asks.
    dst: OnceCell<Option<SocketAddr>>,
    content: Option<&'a [u8]>,
    fin: bool,
    /// The session's stick counters (`track-sc*`).
    sc: &'a Cell<Counters>,
    /// The session's variables.
    vars: &'a Cell<SessVars>,
    /// Its stream, once there is one.
    stream: Option<StreamInfo<'a>>,
    /// Its TLS session (`bind ... ssl`), once the handshake is done.
    tls: Option<&'a TlsFacts>,
    /// Why the connection failed before it was a session (`fc_err_str`).
    conn_err: Option<&'static str>,
}

impl<'a> SessEnv<'a> {
    /// Rules that see no content (`connection`, `session`): final from the start.
    pub(crate) fn new(
        reg: &'a Registry,
        client: &'a TcpStream,
        src: SocketAddr,
        fronted_dst: Option<SocketAddr>,
        sc: &'a Cell<Counters>,
        vars: &'a Cell<SessVars>,
        tls: Option<&'a TlsFacts>,
    ) -> SessEnv<'a> {
        SessEnv {
            reg,
            client,
            src,
            fronted_dst,
            dst: OnceCell::new(),
            content: None,
            fin: true,
            sc,
            vars,
            stream: None,
            tls,
            conn_err: None,
        }
    }

    /// The same connection, failed for `why` (`fc_err`, `fc_err_str` in `error-log-format`).
    pub(crate) fn failed(self, why: &'static str) -> SessEnv<'a> {
        SessEnv {
            conn_err: Some(why),
            ..self
        }
    }

    /// The stream's unique id, if something built it already.
    pub(crate) fn built_unique_id(&self) -> Option<String> {
        self.with_vars(|s| s.unique_id())
    }

    /// The same session once its stream exists (content rules, backend choice, logs).
    pub(crate) fn in_stream(self, stream: StreamInfo<'a>) -> SessEnv<'a> {
        SessEnv {
            stream: Some(stream),
            ..self
        }
    }

    /// The same session with `content` received so far, `fin` once it will not grow.
    fn with_content<'b>(&'b self, content: &'b [u8], fin: bool) -> SessEnv<'b> {
        SessEnv {
            reg: self.reg,
            client: self.client,
            src: self.src,
            fronted_dst: self.fronted_dst,
            // a destination read already is not read again
            dst: self.dst.clone(),
            content: Some(content),
            fin,
            sc: self.sc,
            vars: self.vars,
            stream: self.stream,
            tls: self.tls,
            conn_err: self.conn_err,
        }
    }

    /// The stick table of the proxy `name` (a proxy's table is named after it).
    fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.reg.table(name)
    }

    /// A proxy by name, the backend one first (a frontend and a backend may share a name).
    fn proxy(&self, name: &str, front: bool) -> Option<&'a Arc<Proxy>> {
        if front {
            self.reg.frontend(name)
        } else {
            self.reg.backend(name).or_else(|| self.reg.frontend(name))
        }
    }
}

impl SessEnv<'_> {
    /// Runs `f` on the session's variables (taken out of their cell meanwhile).
    fn with_vars<T>(&self, f: impl FnOnce(&mut SessVars) -> T) -> T {
        let mut v = self.vars.take();
        let r = f(&mut v);
        self.vars.set(v);
        r
    }
}

impl Env for SessEnv<'_> {
    fn tls(&self) -> Option<&TlsFacts> {
        self.tls
    }

    fn conn_error(&self) -> Option<&str> {
        self.conn_err
    }

    fn stream(&self) -> Option<StreamInfo<'_>> {
        self.stream
    }

    fn var(&self, name: &VarName) -> Got {
        match name.scope {
            Scope::Proc => self.reg.vars.get(name),
            Scope::Check => Got::Unavailable,
            _ => self.with_vars(|v| v.get(name)),
        }
    }

    fn set_var(&self, name: &VarName, value: Value, conds: &[SetCond]) -> bool {
        match name.scope {
            Scope::Proc => self.reg.vars.set(name, value, conds),
            Scope::Check => false,
            _ => self.with_vars(|v| v.set(name, value, conds)),
        }
    }

    fn unique_id(&self) -> Option<Vec<u8>> {
        if let Some(id) = self.with_vars(|s| s.unique_id()) {
            return Some(id.into_bytes());
        }
        let format = self.stream?.unique_id_format?;
        let id = format.render(&crate::rules::logformat::Facts::from_env(self), self);
        let id = crate::rules::logformat::cap_unique_id(id);
        self.with_vars(|s| s.set_unique_id(id.clone()));
        Some(id.into_bytes())
    }

    fn capture(&self, slot: usize, v: Vec<u8>) {
        self.with_vars(|s| s.capture(slot, v));
    }

    fn captured(&self, slot: usize) -> Option<Vec<u8>> {
        self.with_vars(|s| s.captured(slot))
    }

    fn unset_var(&self, name: &VarName) -> bool {
        match name.scope {
            Scope::Proc => {
                self.reg.vars.unset(name);
                true
            }
            Scope::Check => false,
            _ => self.with_vars(|v| v.unset(name)),
        }
    }

    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }

    fn dst(&self) -> Option<SocketAddr> {
        *self
            .dst
            .get_or_init(|| self.fronted_dst.or_else(|| self.client.local_addr().ok()))
    }

    fn content(&self) -> Option<&[u8]> {
        self.content
    }

    fn is_final(&self) -> bool {
        self.fin
    }

    fn proxy_stat(&self, name: &str, what: ProxyStat) -> Option<i64> {
        let px = self.proxy(name, what == ProxyStat::FeConn)?;
        let cur = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as i64;
        if !px.is_backend() && what != ProxyStat::FeConn {
            // the proxy a frontend's rule reads by default: no servers, no backend side
            return Some(0);
        }
        Some(match what {
            ProxyStat::FeConn | ProxyStat::BeConn => cur(&px.counters.cur_sess),
            ProxyStat::Nbsrv => usable_servers(px),
            ProxyStat::Queue => {
                cur(&px.counters.queue_cur)
                    + px.servers()
                        .iter()
                        .map(|s| cur(&s.counters.queue_cur))
                        .sum::<i64>()
            }
            ProxyStat::Connslots => {
                let mut slots = 0;
                // HAProxy skips the stopped servers only
                for s in px
                    .servers()
                    .iter()
                    .filter(|s| s.op_state() != OpState::Stopped)
                {
                    let (maxconn, maxqueue) = (s.maxconn(), s.params.maxqueue);
                    if maxconn == 0 || maxqueue == 0 {
                        return Some(-1);
                    }
                    slots += i64::from(maxconn) - cur(&s.counters.cur_sess) + i64::from(maxqueue)
                        - cur(&s.counters.queue_cur);
                }
                slots
            }
        })
    }

    fn stick(&self, fetch: &crate::stick::fetch::Fetch) -> Option<i64> {
        with_counters(self.sc, |c| {
            fetch.value(c, Some(self.src.ip()), &|n| self.table(n))
        })
    }

    fn track(&self, slot: usize, table: &str, key: &Value) {
        let Some(t) = self.table(table) else {
            return;
        };
        if let Some(k) = t.config.key.key(&key_sample(key)) {
            with_counters(self.sc, |c| c.track(slot, &t, k));
        }
    }

    fn table_read(&self, table: &str, key: &Value, what: TableRead) -> Option<i64> {
        let t = self.table(table)?;
        let k = t.config.key.key(&key_sample(key))?;
        crate::stick::fetch::table_read(&t, &k, what)
    }

    fn inc_gpc(&self, slot: usize, which: u8) {
        with_counters(self.sc, |c| c.inc_gpc(slot, which));
    }

    fn set_gpt0(&self, slot: usize, value: u64) {
        with_counters(self.sc, |c| c.set_gpt0(slot, value));
    }

    fn server_stat(&self, backend: &str, server: &str, what: ServerStat) -> Option<i64> {
        let s = self.reg.backend(backend)?.server(server)?;
        Some(match what {
            ServerStat::IsUp => i64::from(s.op_state() != OpState::Stopped && !s.admin().maint()),
            ServerStat::Conn => s.counters.cur_sess.load(Ordering::Relaxed) as i64,
        })
    }
}

/// A sample as a stick-table key sees it.
fn key_sample(v: &Value) -> KeySample<'_> {
    match v {
        Value::Bool(b) => KeySample::Int(i64::from(*b)),
        Value::Int(i) => KeySample::Int(*i),
        Value::Ip(a) => KeySample::Ip(*a),
        Value::Str(b) | Value::Bin(b) => KeySample::Bytes(b),
    }
}

/// HAProxy's `be_usable_srv`: the usable active servers, else the backup ones (only the first
/// one counts without `option allbackups`); none in a disabled backend.
fn usable_servers(be: &Proxy) -> i64 {
    if be.config.disabled {
        return 0;
    }
    match (be.srv_act(), be.srv_bck()) {
        (0, 0) => 0,
        (0, b) if be.config.allbackups => b as i64,
        (0, _) => 1,
        (a, _) => a as i64,
    }
}

/// Runs `f` on the session's stick counters, taken out of their cell and put back (nothing
/// in `f` reaches the cell again).
pub(crate) fn with_counters<T>(sc: &Cell<Counters>, f: impl FnOnce(&mut Counters) -> T) -> T {
    let mut c = sc.take();
    let r = f(&mut c);
    sc.set(c);
    r
}

/// How the content rules ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inspected {
    /// Go on to the backend.
    Accept,
    /// A `reject` rule matched.
    Reject,
    /// A `silent-drop` rule matched (its `rst-ttl`).
    Drop(Option<u8>),
    /// The client's connection failed while the rules waited.
    Aborted,
}

/// Runs `rules`' `tcp-request content` rules, reading the request into `buf` while a condition
/// needs more of it, until `inspect-delay` runs out, the buffer is full or the client shuts its
/// side (then the rules decide on what they have, as HAProxy's do).
pub(crate) async fn content<R: Rt>(
    rules: &Rules,
    env: &SessEnv<'_>,
    client: (&TcpStream, Option<&TlsConn>),
    buf: &mut Vec<u8>,
) -> Inspected {
    let deadline = Instant::now() + rules.inspect_delay.unwrap_or(Duration::ZERO);
    let mut eof = false;
    // the rule a wait resumes at: the actions before it are not done again
    let mut at = 0;
    loop {
        let fin = eof || buf.len() >= MAX_CONTENT || Instant::now() >= deadline;
        match rules
            .run_from(Phase::Content, &env.with_content(buf, fin), &mut at)
            .0
        {
            Verdict::Accept => return Inspected::Accept,
            Verdict::Reject => return Inspected::Reject,
            Verdict::Drop(ttl) => return Inspected::Drop(ttl),
            // the rules never wait on final content: a condition that still lacks bytes fails
            Verdict::Wait if fin => return Inspected::Accept,
            Verdict::Wait => {}
        }
        match read_more::<R>(client, buf, MAX_CONTENT, deadline).await {
            Waited::More | Waited::Late => {}
            Waited::End => eof = true,
            Waited::Failed => return Inspected::Aborted,
        }
    }
}

/// What waiting for more of a connection's first bytes gave.
pub(crate) enum Waited {
    /// Bytes.
    More,
    /// The client's end of stream.
    End,
    /// Nothing before the deadline.
    Late,
    /// The connection failed.
    Failed,
}

/// Appends what the client sends next to `buf` (held to about `max` bytes), waiting until
/// `deadline`: the content rules' reads and the PROXY header's.
pub(crate) async fn read_more<R: Rt>(
    (client, tls): (&TcpStream, Option<&TlsConn>),
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Waited {
    loop {
        match read_some((client, tls), buf, max) {
            Ok(0) => return Waited::End,
            Ok(_) => return Waited::More,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let wait = deadline.saturating_duration_since(Instant::now());
                match R::timeout(wait, R::ready(client.as_raw_fd(), Interest::Read)).await {
                    Err(_) => return Waited::Late,
                    Ok(Err(_)) => return Waited::Failed,
                    Ok(Ok(_)) => {}
                }
            }
            Err(_) => return Waited::Failed,
        }
    }
}

/// One non-blocking read appended to `buf`, not past `max` (a synchronous function, so the
/// chunk is not kept in the session's state across a wait); decrypted when `tls`.
fn read_some(
    (client, tls): (&TcpStream, Option<&TlsConn>),
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let room = max.saturating_sub(buf.len()).clamp(1, chunk.len());
    let n = match tls {
        Some(t) => t
            .read_plain(client, &mut chunk[..room])?
            .ok_or(io::ErrorKind::WouldBlock)?,
        None => (&*client).read(&mut chunk[..room])?,
    };
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// What a backend's `stick` rules decided for a session: the server a stored key sends it to,
/// and the keys to store with the server it reaches.
#[derive(Default)]
pub(crate) struct Sticking {
    /// The server of the first `stick match|on` key the table holds, if it may serve (not
    /// stopped, not in maintenance: a draining server keeps its clients, as in HAProxy).
    pub(crate) server: Option<Arc<Server>>,
    /// `(table, key)` of the `stick store-request|on` rules, one per table.
    stores: Vec<(Arc<Table>, Key)>,
}

impl Sticking {
    /// Stores each key with `srv` (`server_id` and `server_key`), once the session reached it;
    /// nothing for a `non-stick` server.
    pub(crate) fn store(self, srv: &Server) {
        if srv.params.non_stick {
            return;
        }
        for (t, k) in self.stores {
            t.with_entry(&k, true, |en, s, now| {
                en.set(s, DataType::ServerId, u64::from(srv.puid), now);
                en.set_text(s, DataType::ServerKey, srv.name.clone());
            });
        }
    }
}

/// Runs `be`'s `stick` rules on the session (HAProxy's `process_sticking_rules`, on the final
/// request content): the first key found by a matching rule names the server, and the first
/// storing rule of each table gives the key to store.
pub(crate) fn sticking(be: &Proxy, env: &SessEnv<'_>, content: &[u8]) -> Sticking {
    let env = env.with_content(content, true);
    let rules = &be.config.rules;
    let mut out = Sticking::default();
    for r in &rules.sticking {
        if r.kind.stores() && out.stores.iter().any(|(t, _)| *t.name == *r.table) {
            continue;
        }
        if !rules.holds(r.cond.as_ref(), &env) {
            continue;
        }
        let Some(t) = env.table(&r.table) else {
            continue;
        };
        let key = match r.key.sample(&env) {
            crate::rules::Sample::Val { v, .. } => t.config.key.key(&key_sample(&v)),
            _ => None,
        };
        let Some(key) = key else {
            continue;
        };
        if r.kind.matches() {
            let stored = t.with_entry(&key, false, |en, s, now| {
                let name = en.text(s, DataType::ServerKey).cloned();
                let id = en.get(s, DataType::ServerId, now);
                (name, id)
            });
            if out.server.is_none() {
                if let Some((name, id)) = stored {
                    out.server = stored_server(be, name.as_deref(), id);
                }
            }
        }
        if r.kind.stores() {
            out.stores.push((t, key));
        }
    }
    out
}

/// Runs `be`'s `use-server` rules on the session (HAProxy's `process_server_rules`, on the
/// final request content): the server of the first rule that holds and whose server is not
/// stopped.
pub(crate) fn use_server(be: &Proxy, env: &SessEnv<'_>, content: &[u8]) -> Option<Arc<Server>> {
    let env = env.with_content(content, true);
    let servers = be.servers();
    be.config.rules.use_server(&env, |name| {
        match servers.iter().find(|s| &*s.name == name) {
            None => crate::rules::Named::Missing,
            Some(s) if s.may_persist() => crate::rules::Named::Usable(s.clone()),
            Some(_) => crate::rules::Named::Down,
        }
    })
}

/// The server of `be` a stored entry names (by name, else by id, as HAProxy's
/// `sticking_rule_find_target`: a server renamed but keeping its `id` keeps its clients) if it
/// may take the session.
fn stored_server(be: &Proxy, name: Option<&str>, id: Option<u64>) -> Option<Arc<Server>> {
    let servers = be.servers();
    let by_name = name.and_then(|n| servers.iter().find(|s| &*s.name == n));
    let s = by_name.or_else(|| {
        let id = id.filter(|i| *i > 0)?;
        servers.iter().find(|s| u64::from(s.puid) == id)
    })?;
    s.may_persist().then(|| s.clone())
}

/// The backend of the first `use_backend` rule that holds, else the `default_backend` (or the
/// proxy itself for a `listen`); `None` when there is none.
pub(crate) fn backend(
    reg: &Registry,
    fe: &Arc<Proxy>,
    env: &SessEnv<'_>,
    content: &[u8],
) -> Option<Arc<Proxy>> {
    let rules = &fe.config.rules;
    if !rules.switching.is_empty() {
        if let Some(b) = rules
            .backend(&env.with_content(content, true))
            .and_then(|name| reg.backend(&name))
        {
            return Some(b.clone());
        }
    }
    match &fe.config.default_backend {
        Some(b) => reg.backend(b).cloned(),
        None if fe.is_backend() => Some(fe.clone()),
        None => None,
    }
}
