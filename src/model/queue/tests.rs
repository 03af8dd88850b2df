use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::*;

/// Counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waker() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count::default());
    (c.clone(), Waker::from(c))
}

/// Polls `t` for a slot once with `w`.
fn poll(q: &WaitQueue<&'static str>, t: &Ticket, w: &Waker) -> Poll<&'static str> {
    q.poll_offer(t, &mut Context::from_waker(w))
}

#[test]
fn the_oldest_waiter_goes_first_whatever_its_queue() {
    let w = WaitQueue::<()>::default();
    let b = w.enter(QueueOf::Backend, None);
    let s1 = w.enter(QueueOf::Server(1), None);
    let c = w.enter(QueueOf::Backend, None);
    // a slot on server 1: only the oldest may have it
    assert!(w.may_take(&b, 1));
    assert!(!w.may_take(&s1, 1) && !w.may_take(&c, 1));
    assert_eq!(w.leave(b, true).0, 1);
    assert!(w.may_take(&s1, 1));
    assert!(!w.may_take(&c, 1), "server 1's own waiter came first");
    // ... but a slot on server 2 is not for the one waiting for server 1
    assert!(w.may_take(&c, 2));
    assert_eq!(w.leave(s1, true).0, 1);
    assert_eq!(
        w.leave(c, true).0,
        2,
        "one left the backend queue while it waited"
    );
    assert!(w.is_empty());
}

#[test]
fn a_newcomer_waits_behind_the_queues_it_would_jump() {
    let w = WaitQueue::<()>::default();
    assert!(w.may_take_new(1));
    let s2 = w.enter(QueueOf::Server(2), None);
    assert!(w.may_take_new(1), "server 2's queue is not in its way");
    assert!(!w.may_take_new(2));
    let b = w.enter(QueueOf::Backend, None);
    assert!(!w.may_take_new(1));
    w.leave(s2, true);
    w.leave(b, true);
    assert!(w.may_take_new(2));
}

#[test]
fn positions_count_departures_with_a_slot_only() {
    let w = WaitQueue::<()>::default();
    let a = w.enter(QueueOf::Backend, None);
    let b = w.enter(QueueOf::Backend, None);
    assert_eq!(w.leave(a, false).0, 1, "a timeout: nobody left before it");
    let c = w.enter(QueueOf::Backend, None);
    assert_eq!(w.leave(b, true).0, 1);
    assert_eq!(w.leave(c, true).0, 2);
}

#[test]
fn a_freed_slot_wakes_the_oldest_waiter_that_can_use_it_and_no_other() {
    let q = WaitQueue::default();
    let s2 = q.enter(QueueOf::Server(2), None);
    let b1 = q.enter(QueueOf::Backend, None);
    let b2 = q.enter(QueueOf::Backend, None);
    let (n2, w2) = waker();
    let (nb1, wb1) = waker();
    let (nb2, wb2) = waker();
    for (t, w) in [(&s2, &w2), (&b1, &wb1), (&b2, &wb2)] {
        assert_eq!(poll(&q, t, w), Poll::Pending);
    }
    // a slot on server 1: the server-2 waiter cannot use it, the oldest backend waiter gets it
    assert!(q.hand_over(1, || Some("s1")));
    assert_eq!(nb1.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        n2.0.load(Ordering::SeqCst) + nb2.0.load(Ordering::SeqCst),
        0
    );
    // a second one goes to the next waiter, not again to the one not yet run
    assert!(q.hand_over(1, || Some("s1 again")));
    assert_eq!(nb2.0.load(Ordering::SeqCst), 1);
    assert_eq!(poll(&q, &b1, &wb1), Poll::Ready("s1"));
    assert_eq!(poll(&q, &b2, &wb2), Poll::Ready("s1 again"));
    assert_eq!(q.leave(b1, true), (1, None));
    assert_eq!(q.leave(b2, true), (2, None), "b1 left with a slot first");
    // nobody else can use server 1: the slot is not taken
    let mut taken = false;
    assert!(!q.hand_over(1, || {
        taken = true;
        Some("s1")
    }));
    assert!(!taken, "a slot nobody waits for stays free");
    assert!(q.hand_over(2, || Some("s2")));
    assert_eq!(n2.0.load(Ordering::SeqCst), 1);
}

#[test]
fn a_waiter_holding_a_slot_no_longer_holds_younger_ones_back() {
    let q = WaitQueue::default();
    let a = q.enter(QueueOf::Backend, None);
    let b = q.enter(QueueOf::Backend, None);
    assert!(!q.may_take(&b, 1));
    assert!(q.hand_over(1, || Some("s1")));
    assert!(q.may_take(&b, 1), "a's turn is served");
    assert!(!q.may_take_new(1), "b still waits");
    // a leaves without claiming it (it took another slot itself): the slot comes back
    assert_eq!(q.leave(a, true), (1, Some("s1")));
    assert_eq!(q.leave(b, false), (2, None));
}

#[test]
fn a_redispatched_connection_is_not_handed_the_server_it_left() {
    let q = WaitQueue::default();
    let r = q.enter(QueueOf::Backend, Some(1));
    let n = q.enter(QueueOf::Backend, None);
    assert!(q.may_take(&n, 1), "r does not want server 1");
    assert!(!q.may_take(&n, 2));
    assert!(q.hand_over(1, || Some("s1")));
    let (_, w) = waker();
    assert_eq!(poll(&q, &r, &w), Poll::Pending);
    assert_eq!(poll(&q, &n, &w), Poll::Ready("s1"));
    assert_eq!(q.leave(r, false).1, None);
    assert_eq!(q.leave(n, true).1, None, "claimed: nothing to give back");
}

#[test]
fn a_waker_is_stored_once_per_task_and_replaced_for_another() {
    let q = WaitQueue::default();
    let t = q.enter(QueueOf::Backend, None);
    let (first, w1) = waker();
    let (second, w2) = waker();
    assert_eq!(poll(&q, &t, &w1), Poll::Pending);
    assert_eq!(poll(&q, &t, &w2), Poll::Pending);
    assert!(q.hand_over(7, || Some("s7")));
    assert_eq!(first.0.load(Ordering::SeqCst), 0);
    assert_eq!(second.0.load(Ordering::SeqCst), 1);
}
