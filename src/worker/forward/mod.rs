//! Moving bytes one direction at a time, without blocking: copied through the worker's buffer
//! (`copy.rs`) while messages are small, spliced socket → pipe → socket (`splice.rs`) once the
//! direction streams (`option splice-auto`, see [`Streamer`]); or one way throughout
//! (`option splice-request|response`, `no option splice-auto`). When a syscall would block, the
//! task waits for readiness through the runtime (io_uring POLL_ADD).
//!
//! A direction ends on EOF from its source, or when its source stays idle past its timeout:
//! whatever sits in the pipe is delivered, then the destination's write side is shut
//! (half-close), and the other direction keeps running.

mod copy;
mod splice;
mod timers;
mod tls;

use std::cell::Cell;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(crate) use copy::CopyBuf;
pub(crate) use splice::PipePool;
use timers::Shut;
pub(crate) use timers::Timers;

use super::runtime::Rt;
use crate::config::SpliceMode;
use crate::model::{GlobalCounters, ProxyCounters, ServerCounters};
use crate::sys;

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

    /// Whether the last `drained` asked for an immediate retry.
    fn retry_now(&self) -> bool {
        self.retried
    }

    /// A read said EAGAIN: if it was the retry after a short read, stop retrying.
    fn would_block(&mut self) {
        if self.retried {
            self.retry = false;
        }
        self.retried = false;
    }

    /// Sorts what the retry after a short read (asked for `asked` bytes) found, the same way for
    /// copying and splicing: the bytes it added, and `Some` when it ended the stream (EOF, or
    /// the error to report once the data is out). Updates `drained`.
    fn after_retry(
        &mut self,
        r: io::Result<usize>,
        asked: usize,
        drained: &mut bool,
    ) -> (usize, Option<io::Result<()>>) {
        match r {
            Ok(0) => (0, Some(Ok(()))),
            Ok(m) => {
                *drained = self.drained(m, asked);
                (m, None)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.would_block();
                *drained = true;
                (0, None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => (0, None),
            Err(e) => (0, Some(Err(e))),
        }
    }
}

/// How long [`Streamer`] adds up a direction's bytes before starting over.
const STREAM_WINDOW: Duration = Duration::from_millis(50);

/// Bytes within one [`STREAM_WINDOW`] that make a direction a stream (5 MB/s): far above
/// request/response traffic of small messages, reached within a few milliseconds by any bulk
/// transfer whatever size its writes are.
const STREAM_BYTES: usize = 256 * 1024;

/// Decides when a copied direction (`option splice-auto`) carries bulk data and should splice
/// instead. Small messages answer sooner copied (a read and a write, no pipe or page references:
/// rr p50 1.6x lower), bulk data costs less CPU spliced. Like HAProxy's streamer flags it looks at
/// the traffic, not at one read: a read filling [`SMALL_READ`] (all a copied direction reads at
/// once), or enough bytes within a short window, since a peer writing 8 KiB at a time never gives
/// a large read. Both were chosen against the 100 x 64 MiB echo test (`make test-heavy`), which
/// runs this VM close to its TCP memory limit: copying a stream, or 64 KiB reads before the
/// switch, stalled sessions there for seconds (kernel drops, RTO back-off); reads of at most
/// 16 KiB pass like splicing from the first byte (perf/README.md, session of 2026-11-25).
#[derive(Debug)]
struct Streamer {
    since: Instant,
    bytes: usize,
}

impl Streamer {
    fn new(now: Instant) -> Streamer {
        Streamer {
            since: now,
            bytes: 0,
        }
    }

    /// A read brought `n` bytes at `now`, `full`: it filled the buffer. Whether the direction
    /// streams.
    fn read(&mut self, n: usize, full: bool, now: Instant) -> bool {
        if now.duration_since(self.since) > STREAM_WINDOW {
            self.since = now;
            self.bytes = 0;
        }
        self.bytes += n;
        full || self.bytes >= STREAM_BYTES
    }
}

/// How a copied direction stopped without a fault.
#[derive(Debug, PartialEq, Eq)]
enum Copied {
    /// EOF forwarded: the direction is over.
    Done,
    /// The direction streams ([`Streamer`]): splice from now on; nothing is in flight.
    /// `drained`: the last read took all the socket had (wait before splicing).
    Streams { drained: bool },
}

/// Which end of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The client connection.
    Client = 0,
    /// The server connection.
    Server = 1,
}

impl Side {
    /// The other end of the session.
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Why a direction stopped early.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The side stayed idle past its timeout.
    Timeout(Side),
    /// The side failed (reset, ...).
    Io(Side, io::Error),
    /// splice(2) refused these fds or no pipe could be had: copy instead.
    Fallback,
}

/// What a worker forwards with: its pipes and its copy buffer.
#[derive(Debug)]
pub(crate) struct Buffers {
    /// Pooled pipes for splicing.
    pub pipes: PipePool,
    /// The buffer bytes are copied through when not spliced.
    pub copy: CopyBuf,
}

impl Buffers {
    /// Pipes of `pipesize` bytes (`tune.pipesize`), at most `maxpipes` in use process-wide,
    /// none made yet.
    pub(crate) fn new(pipesize: Option<u32>, maxpipes: Option<u32>) -> Buffers {
        Buffers {
            pipes: PipePool::new(pipesize, maxpipes),
            copy: CopyBuf::default(),
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
        self.from_side.other()
    }
}

/// Forwards `dir` until EOF (then half-closes `to`) or a fault, moving bytes as `mode` says.
///
/// When `from` stays idle past its timeout, the direction ends as on EOF, as HAProxy ends it in
/// TCP mode (a read timeout shuts only that channel): `to` gets a FIN and the other direction
/// goes on until its own end, e.g. a client still sending after `timeout server` expired, or a
/// server still answering after `timeout client`. A write that waits past the destination's
/// timeout is a fault and ends the session.
pub(crate) async fn pump<R: Rt>(
    dir: &Dir<'_>,
    timers: &Timers,
    bufs: &Buffers,
    mode: SpliceMode,
    gc: &GlobalCounters,
) -> Result<(), Fault> {
    match pump_to_end::<R>(dir, timers, bufs, mode, gc).await {
        // only a read waits on `from`: nothing is in flight (reads wait with empty pipes and
        // buffers), so the FIN can go at once
        Err(Fault::Timeout(s)) if s == dir.from_side => {
            timers.read_timed_out(s);
            shut_to(dir, timers);
            Ok(())
        }
        // the server was reset on purpose (`option nolinger`): its reads fail, the end of the
        // session follows to the client
        Err(Fault::Io(Side::Server, _))
            if dir.from_side == Side::Server && timers.server_was_reset() =>
        {
            shut_to(dir, timers);
            Ok(())
        }
        r => r,
    }
}

/// [`pump`] up to EOF or the first fault, a read timeout included.
async fn pump_to_end<R: Rt>(
    dir: &Dir<'_>,
    timers: &Timers,
    bufs: &Buffers,
    mode: SpliceMode,
    gc: &GlobalCounters,
) -> Result<(), Fault> {
    // the server has not seen the request yet: reading now would only say EAGAIN
    let mut wait_first = dir.from_side == Side::Server;
    // what the copy phase learnt about short reads holds for the splice phase too
    let mut short = ShortReads::new(dir.from_side);
    // copying first (`splice-auto`: until the direction streams; `no option splice-auto`: to
    // the end). The later phases are boxed: a direction that never streams (every idle one)
    // then holds only this phase's state, not room for all three side by side.
    if mode != SpliceMode::Always {
        let streamer = (mode == SpliceMode::Auto).then(|| Streamer::new(Instant::now()));
        let copy = &bufs.copy;
        match copy::pump_copy::<R>(dir, timers, copy, &mut short, wait_first, streamer).await? {
            Copied::Done => return Ok(()),
            // the last read was written out: nothing in flight (only a streamer says so:
            // `no option splice-auto` copies to the end above)
            Copied::Streams { drained } => {
                debug_assert_eq!(mode, SpliceMode::Auto);
                wait_first = drained;
            }
        }
    }
    let pipes = &bufs.pipes;
    match Box::pin(splice::pump_splice::<R>(
        dir, timers, pipes, gc, &mut short, wait_first,
    ))
    .await
    {
        // nothing in flight, and any first wait already done
        Err(Fault::Fallback) => wait_first = false,
        other => return other,
    }
    Box::pin(copy::pump_copy::<R>(
        dir, timers, &bufs.copy, &mut short, wait_first, None,
    ))
    .await
    .map(|_| ())
}

/// The TLS layers of a direction's ends, if they speak TLS.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TlsEnds<'a> {
    /// The source's.
    pub from: Option<&'a crate::worker::tls::TlsConn>,
    /// The destination's.
    pub to: Option<&'a crate::worker::tls::TlsConn>,
}

/// [`pump`] for a direction with TLS on one end or both: decrypted bytes are copied, never
/// spliced; the same ends on timeouts and resets.
pub(crate) async fn pump_tls<R: Rt>(
    dir: &Dir<'_>,
    ends: TlsEnds<'_>,
    timers: &Timers,
    bufs: &Buffers,
) -> Result<(), Fault> {
    match tls::pump_tls::<R>(dir, ends, timers, &bufs.copy).await {
        Err(Fault::Timeout(s)) if s == dir.from_side => {
            timers.read_timed_out(s);
            shut_to_tls(dir, timers, ends.to);
            Ok(())
        }
        Err(Fault::Io(Side::Server, _))
            if dir.from_side == Side::Server && timers.server_was_reset() =>
        {
            shut_to_tls(dir, timers, ends.to);
            Ok(())
        }
        r => r,
    }
}

/// `from` said EOF: forward it as a half-close of `to`.
fn finish(dir: &Dir<'_>, timers: &Timers) {
    timers.saw_fin(dir.from_side);
    shut_to(dir, timers);
}

/// `from` is over: half-close `to` (or reset it, or leave its FIN to the close).
fn shut_to(dir: &Dir<'_>, timers: &Timers) {
    shut_to_tls(dir, timers, None);
}

/// [`shut_to`]; a TLS `to` is told with `close_notify` first, if its socket takes it now.
fn shut_to_tls(dir: &Dir<'_>, timers: &Timers, to_tls: Option<&crate::worker::tls::TlsConn>) {
    let shut = timers.direction_over(dir.from_side);
    if let (Some(t), Shut::Fin) = (to_tls, &shut) {
        t.close_notify();
        let _ = t.flush_now(dir.to);
    }
    match shut {
        Shut::Fin => {
            let _ = dir.to.shutdown(Shutdown::Write);
        }
        Shut::Reset => {
            let _ = sys::reset(dir.to);
        }
        Shut::AtClose => {}
    }
}

#[cfg(test)]
mod tests {
    use super::splice::PIPE_SIZE;
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
    fn a_retry_finds_the_fin_more_data_or_nothing() {
        let mut s = ShortReads::new(Side::Server);
        let mut drained = false;
        assert!(!s.drained(100, PIPE_SIZE) && s.retry_now());
        let (m, end) = s.after_retry(Ok(0), 1000, &mut drained);
        assert!(m == 0 && matches!(end, Some(Ok(()))));
        let (m, end) = s.after_retry(Ok(10), 1000, &mut drained);
        assert!(m == 10 && end.is_none() && !drained, "still retrying");
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let (_, end) = s.after_retry(Err(reset), 1000, &mut drained);
        assert!(matches!(end, Some(Err(_))));
        let eagain = io::Error::from(io::ErrorKind::WouldBlock);
        let (m, end) = s.after_retry(Err(eagain), 1000, &mut drained);
        assert!(m == 0 && end.is_none() && drained);
        assert!(
            s.drained(100, PIPE_SIZE),
            "a retry found nothing: no more retries"
        );
    }

    #[test]
    fn small_messages_do_not_stream() {
        let t0 = Instant::now();
        let mut s = Streamer::new(t0);
        // 100-byte requests, 20,000 a second for a second: far below the stream rate
        for i in 0..20_000u32 {
            let at = t0 + Duration::from_micros(50 * u64::from(i));
            assert!(!s.read(100, false, at), "request {i}");
        }
    }

    #[test]
    fn a_stream_of_small_writes_streams() {
        let t0 = Instant::now();
        let mut s = Streamer::new(t0);
        // 8 KiB reads 100 us apart (80 MB/s): a stream within 32 reads
        let n = (0..100u32)
            .position(|i| s.read(8192, false, t0 + Duration::from_micros(100 * u64::from(i))))
            .map(|i| i + 1);
        assert_eq!(n, Some(STREAM_BYTES / 8192));
    }

    #[test]
    fn a_full_read_streams_at_once() {
        let t0 = Instant::now();
        assert!(Streamer::new(t0).read(SMALL_READ, true, t0));
    }

    #[test]
    fn bytes_count_within_the_window_only() {
        let t0 = Instant::now();
        let mut s = Streamer::new(t0);
        let half = STREAM_BYTES / 2;
        assert!(!s.read(half, false, t0));
        // the window is over: the count starts again
        let later = t0 + STREAM_WINDOW + Duration::from_millis(1);
        assert!(!s.read(half, false, later));
        assert!(s.read(half, false, later + Duration::from_millis(1)));
    }

    #[test]
    fn eagain_without_a_short_read_keeps_retrying() {
        let mut s = ShortReads::new(Side::Server);
        s.would_block(); // e.g. the first read after a readiness wake found nothing
        assert!(!s.drained(100, PIPE_SIZE));
    }
}
