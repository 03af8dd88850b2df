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
    let b = w.enter(QueueOf::Backend);
    let s1 = w.enter(QueueOf::Server(1));
    let c = w.enter(QueueOf::Backend);
    // a slot on server 1: only the oldest may have it
    assert!(w.may_take(&b, 1, true));
    assert!(!w.may_take(&s1, 1, true) && !w.may_take(&c, 1, true));
    assert_eq!(w.leave(b, true).0, 1);
    assert!(w.may_take(&s1, 1, true));
    assert!(!w.may_take(&c, 1, true), "server 1's own waiter came first");
    // ... but a slot on server 2 is not for the one waiting for server 1
    assert!(w.may_take(&c, 2, true));
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
    assert!(w.may_take_new(1, true));
    let s2 = w.enter(QueueOf::Server(2));
    assert!(
        w.may_take_new(1, true),
        "server 2's queue is not in its way"
    );
    assert!(!w.may_take_new(2, true));
    let b = w.enter(QueueOf::Backend);
    assert!(!w.may_take_new(1, true));
    w.leave(s2, true);
    w.leave(b, true);
    assert!(w.may_take_new(2, true));
}

#[test]
fn positions_count_departures_with_a_slot_only() {
    let w = WaitQueue::<()>::default();
    let a = w.enter(QueueOf::Backend);
    let b = w.enter(QueueOf::Backend);
    assert_eq!(w.leave(a, false).0, 1, "a timeout: nobody left before it");
    let c = w.enter(QueueOf::Backend);
    assert_eq!(w.leave(b, true).0, 1);
    assert_eq!(w.leave(c, true).0, 2);
}

#[test]
fn a_freed_slot_wakes_the_oldest_waiter_that_can_use_it_and_no_other() {
    let q = WaitQueue::default();
    let s2 = q.enter(QueueOf::Server(2));
    let b1 = q.enter(QueueOf::Backend);
    let b2 = q.enter(QueueOf::Backend);
    let (n2, w2) = waker();
    let (nb1, wb1) = waker();
    let (nb2, wb2) = waker();
    for (t, w) in [(&s2, &w2), (&b1, &wb1), (&b2, &wb2)] {
        assert_eq!(poll(&q, t, w), Poll::Pending);
    }
    // a slot on server 1: the server-2 waiter cannot use it, the oldest backend waiter gets it
    assert!(q.hand_over(1, true, || Some("s1")));
    assert_eq!(nb1.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        n2.0.load(Ordering::SeqCst) + nb2.0.load(Ordering::SeqCst),
        0
    );
    // a second one goes to the next waiter, not again to the one not yet run
    assert!(q.hand_over(1, true, || Some("s1 again")));
    assert_eq!(nb2.0.load(Ordering::SeqCst), 1);
    assert_eq!(poll(&q, &b1, &wb1), Poll::Ready("s1"));
    assert_eq!(poll(&q, &b2, &wb2), Poll::Ready("s1 again"));
    assert_eq!(q.leave(b1, true), (1, None));
    assert_eq!(q.leave(b2, true), (2, None), "b1 left with a slot first");
    // nobody else can use server 1: the slot is not taken
    let mut taken = false;
    assert!(!q.hand_over(1, true, || {
        taken = true;
        Some("s1")
    }));
    assert!(!taken, "a slot nobody waits for stays free");
    assert!(q.hand_over(2, true, || Some("s2")));
    assert_eq!(n2.0.load(Ordering::SeqCst), 1);
}

#[test]
fn a_waiter_holding_a_slot_no_longer_holds_younger_ones_back() {
    let q = WaitQueue::default();
    let a = q.enter(QueueOf::Backend);
    let b = q.enter(QueueOf::Backend);
    assert!(!q.may_take(&b, 1, true));
    assert!(q.hand_over(1, true, || Some("s1")));
    assert!(q.may_take(&b, 1, true), "a's turn is served");
    assert!(!q.may_take_new(1, true), "b still waits");
    // a leaves without claiming it (it took another slot itself): the slot comes back
    assert_eq!(q.leave(a, true), (1, Some("s1")));
    assert_eq!(q.leave(b, false), (2, None));
}

#[test]
fn a_server_not_serving_the_backend_queue_serves_its_own_only() {
    // a backup server while active ones are up (HAProxy's `process_srv_queue`)
    let q = WaitQueue::default();
    let b = q.enter(QueueOf::Backend);
    let own = q.enter(QueueOf::Server(3));
    assert!(q.may_take(&own, 3, false), "b does not wait for server 3");
    assert!(!q.may_take(&own, 3, true));
    assert!(q.may_take_new(1, false));
    assert!(q.hand_over(3, false, || Some("s3")));
    let (_, w) = waker();
    assert_eq!(poll(&q, &b, &w), Poll::Pending);
    assert_eq!(q.take_offer(&own), Some("s3"));
    assert_eq!(q.take_offer(&own), None, "claimed once");
    assert_eq!(q.leave(own, true).1, None);
    assert!(
        !q.hand_over(3, false, || Some("s3")),
        "nobody else waits for it"
    );
    assert!(q.hand_over(3, true, || Some("s3")));
    assert_eq!(q.leave(b, false).1, Some("s3"));
}

#[test]
fn a_waker_is_stored_once_per_task_and_replaced_for_another() {
    let q = WaitQueue::default();
    let t = q.enter(QueueOf::Backend);
    let (first, w1) = waker();
    let (second, w2) = waker();
    assert_eq!(poll(&q, &t, &w1), Poll::Pending);
    assert_eq!(poll(&q, &t, &w2), Poll::Pending);
    assert!(q.hand_over(7, true, || Some("s7")));
    assert_eq!(first.0.load(Ordering::SeqCst), 0);
    assert_eq!(second.0.load(Ordering::SeqCst), 1);
}
