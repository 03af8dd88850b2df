//! Connections waiting for a server slot (`maxconn`), in arrival order, shared by all workers.
//!
//! HAProxy serves its queues oldest first and hands a freed slot over directly: the session
//! that frees it gives it to the oldest connection waiting in the backend queue (any server
//! will do) or in that server's own queue (a hash bound the client to it), whichever came
//! first, and wakes that one alone. Tickets from one counter per backend give that order
//! across both kinds of queue; each queue also counts its departures, which the log reports as
//! the queue positions (`%sq/%bq`). Waking one waiter per freed slot, not all of them, keeps
//! the cost of a slot constant however many connections wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

/// Which queue a connection waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueOf {
    /// The backend's: any server with a free slot will do.
    Backend,
    /// One server's (its key): a hash bound the client to it.
    Server(usize),
}

/// A place in a [`WaitQueue`], given back with [`WaitQueue::leave`].
#[derive(Debug)]
pub struct Ticket {
    no: u64,
    queue: QueueOf,
}

impl Ticket {
    /// The queue this ticket waits in.
    pub fn queue(&self) -> QueueOf {
        self.queue
    }
}

#[derive(Debug)]
struct Waiter<S> {
    queue: QueueOf,
    /// The queue's departures when it arrived (for its logged position).
    at: u64,
    /// A slot handed over to it, not claimed yet.
    offer: Option<S>,
    /// Its task, woken when a slot is handed over.
    waker: Option<Waker>,
}

impl<S> Waiter<S> {
    /// Whether a free slot on server `srv` is for this waiter: it has none yet and waits for
    /// that server, or for any (`backend`: the server serves the backend's queue).
    fn wants(&self, srv: usize, backend: bool) -> bool {
        self.offer.is_none()
            && match self.queue {
                QueueOf::Backend => backend,
                QueueOf::Server(k) => k == srv,
            }
    }
}

#[derive(Debug)]
struct Inner<S> {
    next: u64,
    /// Waiting connections by ticket number, oldest first.
    waiting: BTreeMap<u64, Waiter<S>>,
    /// Departures with a slot, per queue (HAProxy's queue `idx`).
    served: HashMap<QueueOf, u64>,
}

/// A backend's waiting connections; `S` is what a handed-over slot carries (the server). The
/// lock is only taken by connections that found every server full and by sessions that free
/// a slot while some wait, never on the usual path.
#[derive(Debug)]
pub struct WaitQueue<S> {
    inner: Mutex<Inner<S>>,
}

impl<S> Default for WaitQueue<S> {
    fn default() -> Self {
        WaitQueue {
            inner: Mutex::new(Inner {
                next: 0,
                waiting: BTreeMap::new(),
                served: HashMap::new(),
            }),
        }
    }
}

impl<S> WaitQueue<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins `queue` behind everyone already waiting.
    pub fn enter(&self, queue: QueueOf) -> Ticket {
        let mut q = self.lock();
        let no = q.next;
        q.next += 1;
        let at = q.served.get(&queue).copied().unwrap_or(0);
        q.waiting.insert(
            no,
            Waiter {
                queue,
                at,
                offer: None,
                waker: None,
            },
        );
        Ticket { no, queue }
    }

    /// Whether the holder of `t` may take a free slot on server `srv` now: nobody who came
    /// earlier still waits for it (`backend`: the server serves the backend's queue).
    pub fn may_take(&self, t: &Ticket, srv: usize, backend: bool) -> bool {
        let q = self.lock();
        !q.waiting.range(..t.no).any(|(_, w)| w.wants(srv, backend))
    }

    /// Whether a connection not queued yet may take a free slot on server `srv` now: nobody
    /// waits for it.
    pub fn may_take_new(&self, srv: usize, backend: bool) -> bool {
        let q = self.lock();
        !q.waiting.values().any(|w| w.wants(srv, backend))
    }

    /// Hands a slot of server `srv` to the oldest connection waiting for it (in `srv`'s own
    /// queue, or in the backend's when `backend`: the server serves it) and wakes that one.
    /// `slot` takes the slot, under the queue's lock, once such a connection is found; a
    /// connection that joins the queue meanwhile sees the slot taken or free, never lost in
    /// between. Whether a connection got it.
    pub fn hand_over(&self, srv: usize, backend: bool, slot: impl FnOnce() -> Option<S>) -> bool {
        let waker = {
            let mut q = self.lock();
            let Some(w) = q.waiting.values_mut().find(|w| w.wants(srv, backend)) else {
                return false;
            };
            let Some(s) = slot() else {
                return false;
            };
            w.offer = Some(s);
            w.waker.take()
        };
        // woken out of the lock: the task may run on another thread at once
        if let Some(k) = waker {
            k.wake();
        }
        true
    }

    /// A slot handed over to `t` and not claimed yet, claimed now.
    pub fn take_offer(&self, t: &Ticket) -> Option<S> {
        self.lock().waiting.get_mut(&t.no)?.offer.take()
    }

    /// A slot handed over to `t`, or `Pending` (the task is woken when one is).
    pub fn poll_offer(&self, t: &Ticket, cx: &mut Context<'_>) -> Poll<S> {
        let mut q = self.lock();
        let Some(w) = q.waiting.get_mut(&t.no) else {
            return Poll::Pending;
        };
        if let Some(s) = w.offer.take() {
            return Poll::Ready(s);
        }
        match &w.waker {
            Some(k) if k.will_wake(cx.waker()) => {}
            _ => w.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Leaves the queue, with a slot (`served`) or without (timeout, abort). Returns the
    /// position to log, as HAProxy counts it (1 plus the connections that left the same queue
    /// with a slot while this one waited), and a slot handed over but not claimed, which the
    /// caller must give back.
    pub fn leave(&self, t: Ticket, served: bool) -> (u64, Option<S>) {
        let mut q = self.lock();
        let Some(w) = q.waiting.remove(&t.no) else {
            return (0, None);
        };
        let now = q.served.entry(w.queue).or_insert(0);
        let pos = *now - w.at + 1;
        if served {
            *now += 1;
        }
        (pos, w.offer)
    }

    /// Whether nobody waits (tests: the workers read the lock-free `qcur` counters instead).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.lock().waiting.is_empty()
    }
}

#[cfg(test)]
mod tests;
