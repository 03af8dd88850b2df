//! The state both directions of a session share: each side's inactivity timer, which timeout
//! applies to it (`timeout client|server`, or `-fin` once only one direction is left on it), and
//! how each side ended (FIN read, timed out, reset on purpose).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::{Fault, Side};
use crate::sys::Interest;
use crate::worker::runtime::Rt;

/// What ending one direction does to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shut {
    /// Half-close it: `shutdown(SHUT_WR)`, a FIN.
    Fin,
    /// Reset it: backend `option nolinger` on the server side.
    Reset,
    /// Nothing now: its own direction is over after its FIN, so the session ends and closing
    /// it sends the same FIN (one syscall per session saved).
    AtClose,
}

/// Inactivity tracking of both sides, shared by the two directions of a session: a side is idle
/// only when nothing was read from or written to it for its whole timeout.
#[derive(Debug)]
pub(crate) struct Timers {
    last: [Cell<Instant>; 2],
    normal: [Option<Duration>; 2],
    fin: [Option<Duration>; 2],
    /// The side sent its FIN, or its reading stopped at its timeout.
    half_closed: [Cell<bool>; 2],
    /// The side was sent a FIN (or a reset).
    shut: [Cell<bool>; 2],
    eof_read: [Cell<bool>; 2],
    first_timeout: Cell<Option<Side>>,
    server_nolinger: bool,
    server_reset: Cell<bool>,
    /// Bumped whenever a side's timeout may have changed ([`Timers::limit`]), so that a wait
    /// armed with the longer one looks again.
    changes: Cell<u32>,
    /// The session task's waker, left by a wait that watches for `changes`.
    waiter: RefCell<Option<Waker>>,
}

impl Timers {
    /// `normal`: client/server timeouts (or `timeout tunnel` for both); `fin`: client-fin and
    /// server-fin, used once that side has sent its FIN or been sent one.
    pub(crate) fn new(normal: [Option<Duration>; 2], fin: [Option<Duration>; 2]) -> Timers {
        let now = Instant::now();
        Timers {
            last: [Cell::new(now), Cell::new(now)],
            normal,
            fin,
            half_closed: [Cell::new(false), Cell::new(false)],
            shut: [Cell::new(false), Cell::new(false)],
            eof_read: [Cell::new(false), Cell::new(false)],
            first_timeout: Cell::new(None),
            server_nolinger: false,
            server_reset: Cell::new(false),
            changes: Cell::new(0),
            waiter: RefCell::new(None),
        }
    }

    /// The backend's `option nolinger`: HAProxy then forwards the end of the client's direction
    /// (its FIN, or its timeout) to the server as a reset instead of a FIN, which ends the whole
    /// session.
    pub(crate) fn with_server_nolinger(mut self, on: bool) -> Timers {
        self.server_nolinger = on;
        self
    }

    /// Whether `s`'s FIN was read (whether or not the data before it reached the other side):
    /// HAProxy closes such a socket gracefully, one whose FIN never came with a reset.
    pub(crate) fn fin_read(&self, s: Side) -> bool {
        self.eof_read[s as usize].get()
    }

    /// A read from `s` found its FIN.
    pub(super) fn saw_fin(&self, s: Side) {
        self.eof_read[s as usize].set(true);
    }

    /// The first side whose reading stopped at its timeout, if any: the log's termination state
    /// (`cD`, `sD`) even when the session then ended normally.
    pub(crate) fn first_timeout(&self) -> Option<Side> {
        self.first_timeout.get()
    }

    /// `s` stayed idle past its timeout while its direction waited to read it: like HAProxy, stop
    /// reading it and count it half-closed (its `-fin` timeout applies from now on).
    pub(super) fn read_timed_out(&self, s: Side) {
        if self.first_timeout.get().is_none() {
            // both sides expired together (equal timeouts, both quiet, the client's direction
            // still open): HAProxy looks at the client's side first
            let client_open = !self.half_closed[Side::Client as usize].get();
            let first = if s == Side::Server && client_open && self.expired(Side::Client) {
                Side::Client
            } else {
                s
            };
            self.first_timeout.set(Some(first));
        }
        self.half_closed[s as usize].set(true);
        if self.fin[s as usize].is_some() {
            // its `-fin` timeout counts from now, as in `direction_over`
            self.touch(s);
        }
        self.changed();
    }

    /// Whether `s` has been idle for its whole timeout by now.
    fn expired(&self, s: Side) -> bool {
        self.limit(s)
            .is_some_and(|l| Instant::now() >= self.last[s as usize].get() + l)
    }

    /// The direction from `from` is over (FIN or timeout): what to do to the other side, which
    /// from now on has only one direction left (its `-fin` timeout, if any, applies, counted
    /// from now).
    pub(super) fn direction_over(&self, from: Side) -> Shut {
        let to = from.other();
        let (f, t) = (from as usize, to as usize);
        self.half_closed[f].set(true);
        self.shut[t].set(true);
        if self.fin[t].is_some() {
            // HAProxy arms the `-fin` timeout from here; without one, the side keeps the
            // deadline it had (both sides quiet: both end at their timeout, not one after the
            // other)
            self.touch(to);
        }
        self.changed();
        if to == Side::Server && self.server_nolinger {
            // the reset also wakes the other direction's poll on the server: its read fails and
            // `pump` ends it
            self.server_reset.set(true);
            Shut::Reset
        } else if self.half_closed[t].get() && self.eof_read[t].get() {
            Shut::AtClose
        } else {
            // a side that stopped at its timeout may be closed with a reset, which HAProxy
            // precedes with this FIN
            Shut::Fin
        }
    }

    /// Whether the server was reset on purpose (`option nolinger`): its reads now fail.
    pub(super) fn server_was_reset(&self) -> bool {
        self.server_reset.get()
    }

    /// Records activity on `s` now, and returns now.
    pub(super) fn touch(&self, s: Side) -> Instant {
        let now = Instant::now();
        self.last[s as usize].set(now);
        now
    }

    /// Whether `s` has only one direction left (it sent or was sent a FIN).
    fn one_way(&self, s: Side) -> bool {
        self.half_closed[s as usize].get() || self.shut[s as usize].get()
    }

    /// As in HAProxy, a side's `-fin` timeout applies once it sent its FIN (or went quiet past
    /// its timeout) and once it was sent one: either way only one direction is left on it.
    fn limit(&self, s: Side) -> Option<Duration> {
        let i = s as usize;
        if self.one_way(s) {
            self.fin[i].or(self.normal[i])
        } else {
            self.normal[i]
        }
    }

    /// A side's timeout may have changed: wake the session task so that its waits look again.
    fn changed(&self) {
        self.changes.set(self.changes.get().wrapping_add(1));
        let w = self.waiter.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Resolves once [`Timers::changes`] moved from `seen`.
    fn change_after(&self, seen: u32) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.changes.get() != seen {
                Poll::Ready(())
            } else {
                *self.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    /// Waits for readiness of `fd` (belonging to side `s`), failing once `s` was idle too long.
    pub(super) async fn wait<R: Rt>(
        &self,
        fd: &TcpStream,
        interest: Interest,
        s: Side,
    ) -> Result<(), Fault> {
        let raw = fd.as_raw_fd();
        loop {
            let seen = self.changes.get();
            let deadline = self.limit(s).map(|l| self.last[s as usize].get() + l);
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Fault::Timeout(s));
            }
            let once = async {
                match deadline {
                    None => Some(R::ready(raw, interest).await),
                    Some(d) => R::timeout(d - now, R::ready(raw, interest)).await.ok(),
                }
            };
            // a `-fin` timeout may start to apply meanwhile, when the other direction ends:
            // only then is it worth watching (sessions without `-fin` timeouts never do)
            let got = if self.fin[s as usize].is_some() && !self.one_way(s) {
                tokio::select! {
                    got = once => got,
                    () = self.change_after(seen) => None,
                }
            } else {
                once.await
            };
            // `None`: the timer fired (activity may have moved the deadline) or the timeout
            // changed; look again
            if let Some(r) = got {
                return r.map(|_| ()).map_err(|e| Fault::Io(s, e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(10);
    const FIN: Duration = Duration::from_millis(300);

    fn timers() -> Timers {
        Timers::new([Some(S), Some(S)], [Some(FIN), None])
    }

    #[test]
    fn a_fin_timeout_applies_once_one_direction_is_left_either_way() {
        let t = timers();
        assert_eq!(t.limit(Side::Client), Some(S));
        // the server's direction ends: the client was sent a FIN
        assert_eq!(t.direction_over(Side::Server), Shut::Fin);
        assert_eq!(t.limit(Side::Client), Some(FIN));
        // no server-fin: the server keeps its timeout
        assert_eq!(t.limit(Side::Server), Some(S));
        let t = timers();
        // the client went quiet past its timeout: it has one direction left too
        t.read_timed_out(Side::Client);
        assert_eq!(t.limit(Side::Client), Some(FIN));
        assert_eq!(t.first_timeout(), Some(Side::Client));
    }

    #[test]
    fn the_last_fin_is_left_to_the_close_unless_the_side_timed_out() {
        let t = timers();
        t.saw_fin(Side::Server);
        assert_eq!(t.direction_over(Side::Server), Shut::Fin);
        t.saw_fin(Side::Client);
        assert_eq!(t.direction_over(Side::Client), Shut::AtClose);
        // a server that timed out gets its FIN now (its close will be a reset)
        let t = timers();
        t.read_timed_out(Side::Server);
        assert_eq!(t.direction_over(Side::Server), Shut::Fin);
        t.saw_fin(Side::Client);
        assert_eq!(t.direction_over(Side::Client), Shut::Fin);
    }

    #[test]
    fn a_tie_between_both_timeouts_goes_to_the_client() {
        let t = Timers::new([Some(Duration::ZERO), Some(Duration::ZERO)], [None, None]);
        t.read_timed_out(Side::Server);
        assert_eq!(t.first_timeout(), Some(Side::Client));
        let t = timers();
        t.read_timed_out(Side::Server);
        assert_eq!(t.first_timeout(), Some(Side::Server));
        // a client whose direction is over (its FIN) cannot time out reading any more
        let t = Timers::new([Some(Duration::ZERO), Some(Duration::ZERO)], [None, None]);
        t.saw_fin(Side::Client);
        assert_eq!(t.direction_over(Side::Client), Shut::Fin);
        t.read_timed_out(Side::Server);
        assert_eq!(t.first_timeout(), Some(Side::Server));
    }

    #[test]
    fn a_fin_timeout_counts_from_the_fin_and_nothing_else_moves() {
        // no server-fin: the server keeps its deadline (both quiet sides end together)
        let t = timers();
        let before = t.last[Side::Server as usize].get();
        std::thread::sleep(Duration::from_millis(2));
        t.direction_over(Side::Client);
        assert_eq!(t.last[Side::Server as usize].get(), before);
        // client-fin: counted from the server's FIN sent to the client
        let before = t.last[Side::Client as usize].get();
        t.direction_over(Side::Server);
        assert!(t.last[Side::Client as usize].get() > before);
    }

    #[test]
    fn backend_nolinger_resets_the_server_instead() {
        let t = timers().with_server_nolinger(true);
        assert!(!t.server_was_reset());
        assert_eq!(t.direction_over(Side::Client), Shut::Reset);
        assert!(t.server_was_reset());
        // the client side is never reset by it
        let t = timers().with_server_nolinger(true);
        assert_eq!(t.direction_over(Side::Server), Shut::Fin);
    }

    #[test]
    fn a_change_wakes_the_waiter() {
        let t = timers();
        let seen = t.changes.get();
        let mut f = std::pin::pin!(t.change_after(seen));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert!(t.waiter.borrow().is_some());
        t.direction_over(Side::Server);
        assert!(t.waiter.borrow().is_none());
        assert!(f.as_mut().poll(&mut cx).is_ready());
    }
}
