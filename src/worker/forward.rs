//! Moving bytes one direction at a time: non-blocking splice(2) socket → pipe → socket with io_uring
//! POLL_ADD readiness, or an owned-buffer copy loop when splicing is off or impossible.
//!
//! A direction ends on EOF from its source: whatever sits in the pipe is delivered, then the
//! destination's write side is shut (half-close), and the other direction keeps running.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::runtime::Rt;
use crate::model::{GlobalCounters, ProxyCounters, ServerCounters};
use crate::sys::{self, Interest, Pipe};

/// Requested pipe capacity (F_SETPIPE_SZ) unless `tune.pipesize` says otherwise; the kernel
/// default is 64 KiB.
pub(crate) const PIPE_SIZE: usize = 256 * 1024;
/// Per-direction buffer of the copy fallback (it runs when fds are scarce, i.e. under many
/// connections, so it stays small).
const COPY_BUF: usize = 32 * 1024;
/// A read shorter than this (and shorter than asked for) most likely took everything the socket
/// had: the peer sent a small message and is waiting for the answer, so the next read would only
/// say EAGAIN. Wait for readiness instead of trying (one syscall less per request). Bulk
/// transfers read more than this per call and keep retrying at once.
const SMALL_READ: usize = 16 * 1024;

/// When a short read does NOT mean "drained": a server's short answer is often followed at once
/// by its FIN (close after response), which an immediate retry picks up without another poll
/// round trip. So the server side starts by retrying, and stops for the rest of the session the
/// first time the retry only says EAGAIN (a persistent connection: retries would cost one
/// syscall per request). The client side never retries.
#[derive(Debug)]
struct ShortReads {
    retry: bool,
    retried: bool,
}

impl ShortReads {
    fn new(s: Side) -> ShortReads {
        ShortReads {
            retry: s == Side::Server,
            retried: false,
        }
    }

    /// Whether a read of `n` bytes (asked for up to `asked`) drained the socket.
    fn drained(&mut self, n: usize, asked: usize) -> bool {
        let short = n < SMALL_READ.min(asked);
        self.retried = short && self.retry;
        short && !self.retry
    }

    /// A read said EAGAIN: if it was the retry after a short read, stop retrying.
    fn would_block(&mut self) {
        if self.retried {
            self.retry = false;
        }
        self.retried = false;
    }
}

/// Which end of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client connection.
    Client = 0,
    /// The server connection.
    Server = 1,
}

/// Why a direction stopped early.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The side stayed idle past its timeout.
    Timeout(Side),
    /// The side failed (reset, ...).
    Io(Side, io::Error),
    /// splice(2) refused these fds: use the copy loop instead.
    Fallback,
}

/// Inactivity tracking of both sides, shared by the two directions of a session: a side is idle
/// only when nothing was read from or written to it for its whole timeout.
#[derive(Debug)]
pub(crate) struct Timers {
    last: [Cell<Instant>; 2],
    normal: [Option<Duration>; 2],
    fin: [Option<Duration>; 2],
    half_closed: [Cell<bool>; 2],
}

impl Timers {
    /// `normal`: client/server timeouts (or `timeout tunnel` for both); `fin`: client-fin and
    /// server-fin, used once that side has sent its FIN.
    pub(crate) fn new(normal: [Option<Duration>; 2], fin: [Option<Duration>; 2]) -> Timers {
        let now = Instant::now();
        Timers {
            last: [Cell::new(now), Cell::new(now)],
            normal,
            fin,
            half_closed: [Cell::new(false), Cell::new(false)],
        }
    }

    fn touch(&self, s: Side) {
        self.last[s as usize].set(Instant::now());
    }

    fn limit(&self, s: Side) -> Option<Duration> {
        let i = s as usize;
        if self.half_closed[i].get() {
            self.fin[i].or(self.normal[i])
        } else {
            self.normal[i]
        }
    }

    /// Waits for readiness of `fd` (belonging to side `s`), failing once `s` was idle too long.
    async fn wait<R: Rt>(&self, fd: &TcpStream, interest: Interest, s: Side) -> Result<(), Fault> {
        let raw = fd.as_raw_fd();
        loop {
            let Some(limit) = self.limit(s) else {
                return R::ready(raw, interest)
                    .await
                    .map(|_| ())
                    .map_err(|e| Fault::Io(s, e));
            };
            let deadline = self.last[s as usize].get() + limit;
            let now = Instant::now();
            if now >= deadline {
                return Err(Fault::Timeout(s));
            }
            if let Ok(r) = R::timeout(deadline - now, R::ready(raw, interest)).await {
                return r.map(|_| ()).map_err(|e| Fault::Io(s, e));
            }
        }
    }
}

/// Where a session's byte counts go: the frontend, backend (unless the same `listen` proxy),
/// server and process counters.
#[derive(Debug)]
pub(crate) struct Accounts<'a> {
    /// Frontend counters.
    pub fe: &'a ProxyCounters,
    /// Backend counters, `None` for a `listen` proxy (already `fe`).
    pub be: Option<&'a ProxyCounters>,
    /// Server counters.
    pub srv: &'a ServerCounters,
    /// Process counters.
    pub global: &'a GlobalCounters,
}

impl Accounts<'_> {
    fn add(&self, from: Side, bytes: u64, spliced: u64) {
        let r = Ordering::Relaxed;
        let px = std::iter::once(self.fe).chain(self.be);
        match from {
            Side::Client => {
                for c in px {
                    c.bytes_in.fetch_add(bytes, r);
                }
                self.srv.bytes_in.fetch_add(bytes, r);
            }
            Side::Server => {
                for c in px {
                    c.bytes_out.fetch_add(bytes, r);
                }
                self.srv.bytes_out.fetch_add(bytes, r);
                self.global.bytes_out.fetch_add(bytes, r);
                self.global.spliced_out.fetch_add(spliced, r);
            }
        }
        self.srv.spliced.fetch_add(spliced, r);
    }
}

/// Counters are published every this many bytes (and at the end), so stats move during long
/// transfers without an atomic per splice.
const FLUSH_EVERY: u64 = 1 << 20;

/// One direction of a session and its byte counts.
#[derive(Debug)]
pub(crate) struct Dir<'a> {
    /// Source socket.
    pub from: &'a TcpStream,
    /// Destination socket.
    pub to: &'a TcpStream,
    /// Which side `from` is.
    pub from_side: Side,
    /// Bytes delivered to `to`.
    pub bytes: Cell<u64>,
    /// Of which through a pipe.
    pub spliced: Cell<u64>,
    /// Where counts are published.
    pub acct: &'a Accounts<'a>,
    /// (bytes, spliced) already published.
    pub flushed: Cell<(u64, u64)>,
}

impl Dir<'_> {
    fn delivered(&self, n: usize, spliced: bool) {
        self.bytes.set(self.bytes.get() + n as u64);
        if spliced {
            self.spliced.set(self.spliced.get() + n as u64);
        }
        if self.bytes.get() - self.flushed.get().0 >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Publishes the counts not yet published.
    pub(crate) fn flush(&self) {
        let (b, s) = self.flushed.get();
        let (nb, ns) = (self.bytes.get(), self.spliced.get());
        if nb > b {
            self.acct.add(self.from_side, nb - b, ns - s);
            self.flushed.set((nb, ns));
        }
    }
}

impl Dir<'_> {
    fn to_side(&self) -> Side {
        match self.from_side {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// A worker's pool of empty pipes.
#[derive(Debug)]
pub(crate) struct PipePool {
    free: RefCell<Vec<Pipe>>,
    /// Capacity asked for each new pipe, and the most one splice moves into it.
    size: usize,
}

impl PipePool {
    /// A pool of pipes of `size` bytes (`tune.pipesize`, else [`PIPE_SIZE`]).
    pub(crate) fn new(size: Option<u32>) -> PipePool {
        PipePool {
            free: RefCell::new(Vec::new()),
            size: size.map_or(PIPE_SIZE, |n| n as usize),
        }
    }

    fn take(&self, gc: &GlobalCounters) -> io::Result<Pipe> {
        let p = match self.free.borrow_mut().pop() {
            Some(p) => {
                gc.pipes_free.fetch_sub(1, Ordering::Relaxed);
                p
            }
            None => Pipe::new(self.size)?,
        };
        gc.pipes_used.fetch_add(1, Ordering::Relaxed);
        Ok(p)
    }

    /// Returns an empty pipe to the pool (a non-empty one is just closed).
    fn put(&self, p: Pipe, empty: bool, gc: &GlobalCounters) {
        let mut f = self.free.borrow_mut();
        if empty && f.len() < 1024 {
            f.push(p);
            gc.pipes_free.fetch_add(1, Ordering::Relaxed);
        }
        gc.pipes_used.fetch_sub(1, Ordering::Relaxed);
    }

    /// Closes every pooled pipe (worker exit).
    pub(crate) fn clear(&self, gc: &GlobalCounters) {
        let mut f = self.free.borrow_mut();
        gc.pipes_free.fetch_sub(f.len() as u64, Ordering::Relaxed);
        f.clear();
    }

    /// Pipes kept for reuse.
    pub(crate) fn free_count(&self) -> usize {
        self.free.borrow().len()
    }
}

/// A pipe borrowed from the pool; given back (if empty) or closed when dropped, also when the
/// direction is cancelled mid-way by a kill or a hard stop.
struct PipeLease<'a> {
    pipe: Option<Pipe>,
    pool: &'a PipePool,
    gc: &'a GlobalCounters,
    inpipe: usize,
}

impl PipeLease<'_> {
    /// Makes sure the direction holds a pipe, taking one from the pool if it gave its pipe back
    /// while idle. `false` when no pipe can be had (EMFILE): the caller copies instead, which is
    /// safe because a direction without a pipe has nothing in flight.
    fn acquire(&mut self) -> bool {
        if self.pipe.is_none() {
            match self.pool.take(self.gc) {
                Ok(p) => self.pipe = Some(p),
                Err(_) => return false,
            }
        }
        true
    }

    /// Gives an empty pipe back to the pool before waiting for data, so that an idle connection
    /// holds two sockets and no pipe (HAProxy likewise keeps pipes only while data moves).
    fn release_if_empty(&mut self) {
        if self.inpipe == 0 {
            if let Some(p) = self.pipe.take() {
                self.pool.put(p, true, self.gc);
            }
        }
    }
}

impl Drop for PipeLease<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.pipe.take() {
            self.pool.put(p, self.inpipe == 0, self.gc);
        }
    }
}

/// Forwards `dir` until EOF (then half-closes `to`) or a fault.
pub(crate) async fn pump<R: Rt>(
    dir: &Dir<'_>,
    timers: &Timers,
    pipes: &PipePool,
    splice: bool,
    gc: &GlobalCounters,
) -> Result<(), Fault> {
    if splice {
        let mut lease = PipeLease {
            pipe: None,
            pool: pipes,
            gc,
            inpipe: 0,
        };
        let r = pump_splice::<R>(dir, timers, &mut lease).await;
        drop(lease);
        match r {
            Err(Fault::Fallback) => {}
            other => return other,
        }
    }
    pump_copy::<R>(dir, timers).await
}

/// `from` said EOF: forward it as a half-close of `to`. When the other direction is already over,
/// the session ends now and closing `to` sends the same FIN, so the `shutdown(2)` is skipped
/// (one syscall per session).
fn finish(dir: &Dir<'_>, timers: &Timers) {
    timers.half_closed[dir.from_side as usize].set(true);
    if !timers.half_closed[dir.to_side() as usize].get() {
        let _ = dir.to.shutdown(Shutdown::Write);
    }
}

async fn pump_splice<R: Rt>(
    dir: &Dir<'_>,
    timers: &Timers,
    lease: &mut PipeLease<'_>,
) -> Result<(), Fault> {
    let (fs, ts) = (dir.from_side, dir.to_side());
    let mut eof = false;
    let mut read_err: Option<io::Error> = None;
    let mut first = true;
    if fs == Side::Server {
        // the server has not seen the request yet: a splice now would only say EAGAIN
        timers.wait::<R>(dir.from, Interest::Read, fs).await?;
    }
    let mut drained = false;
    let mut short = ShortReads::new(fs);
    loop {
        let mut in_blocked = eof || drained;
        if !eof && !drained && !lease.acquire() {
            return Err(Fault::Fallback);
        }
        let Some(pipe) = lease.pipe.as_ref() else {
            // Only reachable after EOF with an empty pipe given back: nothing left to move.
            if let Some(e) = read_err {
                return Err(Fault::Io(fs, e));
            }
            finish(dir, timers);
            return Ok(());
        };
        if !eof && !drained {
            match sys::splice_in(dir.from, pipe, lease.pool.size) {
                Ok(0) => eof = true,
                Ok(n) => {
                    lease.inpipe += n;
                    drained = short.drained(n, lease.pool.size);
                    timers.touch(fs);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    short.would_block();
                    in_blocked = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if first && e.raw_os_error() == Some(libc::EINVAL) => {
                    return Err(Fault::Fallback)
                }
                Err(e) => {
                    read_err = Some(e);
                    eof = true;
                }
            }
            first = false;
        }
        if lease.inpipe > 0 {
            match sys::splice_out(pipe, dir.to, lease.inpipe) {
                Ok(n) => {
                    lease.inpipe -= n;
                    dir.delivered(n, true);
                    timers.touch(ts);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    timers.wait::<R>(dir.to, Interest::Write, ts).await?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fault::Io(ts, e)),
            }
            continue;
        }
        if eof {
            if let Some(e) = read_err {
                return Err(Fault::Io(fs, e));
            }
            finish(dir, timers);
            return Ok(());
        }
        if in_blocked {
            lease.release_if_empty();
            timers.wait::<R>(dir.from, Interest::Read, fs).await?;
            drained = false;
        }
    }
}

async fn pump_copy<R: Rt>(dir: &Dir<'_>, timers: &Timers) -> Result<(), Fault> {
    let (fs, ts) = (dir.from_side, dir.to_side());
    let mut buf = vec![0u8; COPY_BUF];
    let mut drained = false;
    let mut short = ShortReads::new(fs);
    loop {
        if drained {
            timers.wait::<R>(dir.from, Interest::Read, fs).await?;
        }
        let n = match (&*dir.from).read(&mut buf) {
            Ok(0) => {
                finish(dir, timers);
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                short.would_block();
                drained = true;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                drained = false;
                continue;
            }
            Err(e) => return Err(Fault::Io(fs, e)),
        };
        drained = short.drained(n, buf.len());
        timers.touch(fs);
        let mut off = 0;
        while off < n {
            match (&*dir.to).write(&buf[off..n]) {
                Ok(m) => {
                    off += m;
                    dir.delivered(m, false);
                    timers.touch(ts);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    timers.wait::<R>(dir.to, Interest::Write, ts).await?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fault::Io(ts, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_short_read_is_drained() {
        let mut s = ShortReads::new(Side::Client);
        assert!(s.drained(100, PIPE_SIZE));
        assert!(
            !s.drained(PIPE_SIZE, PIPE_SIZE),
            "a full read is bulk: retry at once"
        );
    }

    #[test]
    fn server_retries_until_a_retry_finds_nothing() {
        let mut s = ShortReads::new(Side::Server);
        // close-after-response: the retry finds the FIN, so keep retrying
        assert!(!s.drained(100, PIPE_SIZE));
        assert!(!s.drained(0, PIPE_SIZE));
        // persistent connection: the retry says EAGAIN once, short reads are drained from then on
        assert!(!s.drained(100, PIPE_SIZE));
        s.would_block();
        assert!(s.drained(100, PIPE_SIZE));
        assert!(s.drained(100, PIPE_SIZE));
    }

    #[test]
    fn eagain_without_a_short_read_keeps_retrying() {
        let mut s = ShortReads::new(Side::Server);
        s.would_block(); // e.g. the first read after a readiness wake found nothing
        assert!(!s.drained(100, PIPE_SIZE));
    }
}
