//! Connections waiting for a server slot (`maxconn`), in arrival order, shared by all workers.
//!
//! HAProxy serves its queues oldest first: a freed slot goes to the oldest connection waiting in
//! the backend queue (any server will do) or in that server's own queue (a hash bound the client
//! to it), whichever came first. Tickets from one counter per backend give that order across
//! both kinds of queue; each queue also counts its departures, which the log reports as the
//! queue positions (`%sq/%bq`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

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

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Waiting tickets: their queue and that queue's departures when they arrived.
    waiting: BTreeMap<u64, (QueueOf, u64)>,
    /// Departures with a slot, per queue (HAProxy's queue `idx`).
    served: HashMap<QueueOf, u64>,
}

/// A backend's waiting connections. The lock is only taken by connections that found every
/// server full, never on the usual path.
#[derive(Debug, Default)]
pub struct WaitQueue {
    inner: Mutex<Inner>,
}

impl WaitQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins `queue` behind everyone already waiting.
    pub fn enter(&self, queue: QueueOf) -> Ticket {
        let mut q = self.lock();
        let no = q.next;
        q.next += 1;
        let served = q.served.get(&queue).copied().unwrap_or(0);
        q.waiting.insert(no, (queue, served));
        Ticket { no, queue }
    }

    /// Whether the holder of `t` may take a free slot on server `srv` now: nobody who came
    /// earlier waits for any server (the backend queue) or for `srv` itself.
    pub fn may_take(&self, t: &Ticket, srv: usize) -> bool {
        let q = self.lock();
        !q.waiting
            .range(..t.no)
            .any(|(_, (qu, _))| *qu == QueueOf::Backend || *qu == QueueOf::Server(srv))
    }

    /// Whether a connection not queued yet may take a free slot on server `srv` now: nobody
    /// waits for any server (the backend queue) or for `srv` itself.
    pub fn may_take_new(&self, srv: usize) -> bool {
        let q = self.lock();
        !q.waiting
            .values()
            .any(|(qu, _)| *qu == QueueOf::Backend || *qu == QueueOf::Server(srv))
    }

    /// Leaves the queue, with a slot (`served`) or without (timeout, abort). Returns the
    /// position to log, as HAProxy counts it: 1 plus the connections that left the same queue
    /// with a slot while this one waited.
    pub fn leave(&self, t: Ticket, served: bool) -> u64 {
        let mut q = self.lock();
        let Some((queue, at)) = q.waiting.remove(&t.no) else {
            return 0;
        };
        let now = q.served.entry(queue).or_insert(0);
        let pos = *now - at + 1;
        if served {
            *now += 1;
        }
        pos
    }

    /// Whether nobody waits (tests: the workers read the lock-free `qcur` counters instead).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.lock().waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_waiter_goes_first_whatever_its_queue() {
        let w = WaitQueue::default();
        let b = w.enter(QueueOf::Backend);
        let s1 = w.enter(QueueOf::Server(1));
        let c = w.enter(QueueOf::Backend);
        // a slot on server 1: only the oldest may have it
        assert!(w.may_take(&b, 1));
        assert!(!w.may_take(&s1, 1) && !w.may_take(&c, 1));
        assert_eq!(w.leave(b, true), 1);
        assert!(w.may_take(&s1, 1));
        assert!(!w.may_take(&c, 1), "server 1's own waiter came first");
        // ... but a slot on server 2 is not for the one waiting for server 1
        assert!(w.may_take(&c, 2));
        assert_eq!(w.leave(s1, true), 1);
        assert_eq!(
            w.leave(c, true),
            2,
            "one left the backend queue while it waited"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn a_newcomer_waits_behind_the_queues_it_would_jump() {
        let w = WaitQueue::default();
        assert!(w.may_take_new(1));
        let s2 = w.enter(QueueOf::Server(2));
        assert!(w.may_take_new(1), "server 2's queue is not in its way");
        assert!(!w.may_take_new(2));
        let b = w.enter(QueueOf::Backend);
        assert!(!w.may_take_new(1));
        w.leave(s2, true);
        w.leave(b, true);
        assert!(w.may_take_new(2));
    }

    #[test]
    fn positions_count_departures_with_a_slot_only() {
        let w = WaitQueue::default();
        let a = w.enter(QueueOf::Backend);
        let b = w.enter(QueueOf::Backend);
        assert_eq!(w.leave(a, false), 1, "a timeout: nobody left before it");
        let c = w.enter(QueueOf::Backend);
        assert_eq!(w.leave(b, true), 1);
        assert_eq!(w.leave(c, true), 2);
    }
}
