//! Zero-copy forwarding: non-blocking splice(2) socket → pipe → socket, pipes pooled per worker.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::Ordering;

use super::{finish, Dir, Fault, ShortReads, Timers};
use crate::model::GlobalCounters;
use crate::sys::{self, Interest, Pipe};
use crate::worker::runtime::Rt;

/// Requested pipe capacity (F_SETPIPE_SZ) unless `tune.pipesize` says otherwise: the kernel
/// default is 64 KiB, and 1 MiB is the most an unprivileged process may ask by default
/// (`fs.pipe-max-size`). Pipes serve streaming directions only (small messages are copied). With
/// 1 MiB pipes a bulk stream costs 0.81-0.92x the CPU per GB of 256 KiB ones at the same Gbit/s
/// (larger splices, fewer trips through tcp_sendmsg; perf/README.md, session of 2026-11-25 02:47).
pub(crate) const PIPE_SIZE: usize = 1024 * 1024;

/// A worker's pool of empty pipes.
#[derive(Debug)]
pub(crate) struct PipePool {
    free: RefCell<Vec<Pipe>>,
    /// Capacity asked for each new pipe (each pipe knows what it got).
    size: usize,
    /// `maxpipes`: pipes in use process-wide beyond which a direction copies instead.
    max: Option<u64>,
}

impl PipePool {
    /// A pool of pipes of `size` bytes (`tune.pipesize`, else [`PIPE_SIZE`]); `max`: global
    /// `maxpipes`.
    pub(crate) fn new(size: Option<u32>, max: Option<u32>) -> PipePool {
        PipePool {
            free: RefCell::new(Vec::new()),
            size: size.map_or(PIPE_SIZE, |n| n as usize),
            // HAProxy: 0 means its default (no limit here)
            max: max.filter(|m| *m > 0).map(u64::from),
        }
    }

    fn take(&self, gc: &GlobalCounters) -> io::Result<Pipe> {
        if self
            .max
            .is_some_and(|m| gc.pipes_used.load(Ordering::Relaxed) >= m)
        {
            // HAProxy's `maxpipes`: past it, sessions forward by copying
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
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

    /// Returns an empty pipe to the pool (a non-empty one is just closed, and so is one the
    /// kernel made smaller than asked: an unprivileged user over `fs.pipe-user-pages-soft` gets
    /// 8 KiB pipes, which should not outlive the burst that caused them).
    fn put(&self, p: Pipe, empty: bool, gc: &GlobalCounters) {
        let mut f = self.free.borrow_mut();
        if empty && p.cap >= self.size && f.len() < 1024 {
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

/// Splices `dir` until EOF (then half-closes `to`); `short`: the direction's short-read state;
/// `wait_first`: wait for readability before the first splice. `Fault::Fallback` when splice(2)
/// refuses the fds or no pipe can be had; nothing is in flight then.
pub(super) async fn pump_splice<R: Rt>(
    dir: &Dir<'_>,
    timers: &Timers,
    pool: &PipePool,
    gc: &GlobalCounters,
    short: &mut ShortReads,
    wait_first: bool,
) -> Result<(), Fault> {
    let mut lease = PipeLease {
        pipe: None,
        pool,
        gc,
        inpipe: 0,
    };
    let (fs, ts) = (dir.from_side, dir.to_side());
    let mut eof = false;
    let mut read_err: Option<io::Error> = None;
    let mut first = true;
    if wait_first {
        timers.wait::<R>(dir.from, Interest::Read, fs).await?;
    }
    let mut drained = false;
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
        // bytes in the pipe stay within its capacity: a full pipe is not a drained socket
        if !eof && !drained && lease.inpipe < pipe.cap {
            let asked = pipe.cap - lease.inpipe;
            match sys::splice_in(dir.from, pipe, asked) {
                Ok(0) => {
                    eof = true;
                    timers.saw_fin(fs);
                }
                Ok(n) => {
                    lease.inpipe += n;
                    drained = short.drained(n, asked);
                    timers.touch(fs);
                    // a server's short answer is often followed at once by its FIN: retried
                    // before the splice out, a FIN found there leaves with the data
                    if short.retry_now() && lease.inpipe < pipe.cap {
                        let asked = pipe.cap - lease.inpipe;
                        let r = sys::splice_in(dir.from, pipe, asked);
                        let (m, end) = short.after_retry(r, asked, &mut drained);
                        lease.inpipe += m;
                        if let Some(end) = end {
                            eof = true;
                            match end {
                                Ok(()) => timers.saw_fin(fs),
                                Err(e) => read_err = Some(e),
                            }
                        }
                    }
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
            // the source is over: the FIN follows at once and can carry the data
            let out = sys::splice_out(pipe, dir.to, lease.inpipe, eof && read_err.is_none());
            match out {
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
