//! Timers: one ordered map per worker keyed by (deadline, sequence number). Insert and cancel are
//! O(log n); the loop fires everything due once per iteration and sleeps in `io_uring_enter` until
//! the earliest deadline. A timer is registered only when its future is first polled and is
//! removed when the future is dropped, so a readiness wait that completes first costs one insert
//! and one remove.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::super::runtime::Elapsed;

type Key = (Instant, u64);

/// A worker's pending timers.
#[derive(Default)]
pub(super) struct Timers {
    map: RefCell<BTreeMap<Key, Waker>>,
    seq: Cell<u64>,
}

impl Timers {
    fn insert(&self, at: Instant, w: Waker) -> Key {
        let seq = self.seq.get();
        self.seq.set(seq.wrapping_add(1));
        let key = (at, seq);
        self.map.borrow_mut().insert(key, w);
        key
    }

    /// Refreshes the waker of a pending timer; `false` when it already fired.
    fn update(&self, key: Key, w: &Waker) -> bool {
        match self.map.borrow_mut().get_mut(&key) {
            Some(old) => {
                if !old.will_wake(w) {
                    old.clone_from(w);
                }
                true
            }
            None => false,
        }
    }

    fn cancel(&self, key: Key) {
        // the waker is dropped after the borrow ends
        let w = self.map.borrow_mut().remove(&key);
        drop(w);
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.map.borrow().first_key_value().map(|(k, _)| k.0)
    }

    /// Wakes every timer due at `now`; returns how many.
    pub(super) fn fire(&self, now: Instant) -> usize {
        let mut n = 0;
        loop {
            let due = {
                let mut m = self.map.borrow_mut();
                match m.first_entry() {
                    Some(e) if e.key().0 <= now => Some(e.remove()),
                    _ => None,
                }
            };
            match due {
                Some(w) => {
                    w.wake();
                    n += 1;
                }
                None => return n,
            }
        }
    }

    /// Pending timers.
    pub(super) fn len(&self) -> usize {
        self.map.borrow().len()
    }
}

/// A sleep on the current worker's timers (see [`super::Ring`]).
pub(crate) struct Sleep {
    at: Instant,
    key: Option<Key>,
}

impl Sleep {
    /// Completes at `at`.
    pub(crate) fn until(at: Instant) -> Sleep {
        Sleep { at, key: None }
    }

    /// Completes after `d`.
    pub(crate) fn new(d: Duration) -> Sleep {
        let now = Instant::now();
        Sleep::until(
            now.checked_add(d)
                .unwrap_or(now + Duration::from_secs(86400 * 365)),
        )
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.key {
            None => {
                if Instant::now() >= self.at {
                    return Poll::Ready(());
                }
                let at = self.at;
                let key = super::with_core(|c| c.timers.insert(at, cx.waker().clone()));
                self.key = Some(key);
                Poll::Pending
            }
            Some(key) => {
                if super::with_core(|c| c.timers.update(key, cx.waker())) {
                    Poll::Pending
                } else {
                    self.key = None;
                    Poll::Ready(())
                }
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            super::try_with_core(|c| c.timers.cancel(key));
        }
    }
}

/// Runs `f` for at most `d`.
pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, Elapsed> {
    let mut f = pin!(f);
    let mut sleep = Sleep::new(d);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
