//! The event bus: a fan-out of bounded crossbeam queues, one per subscriber.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::ServerEvent;

/// Called after an event was queued for a subscriber, so that a consumer sleeping on an async
/// runtime can be woken without polling. Must not block.
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// One consumer's queue and its loss counter.
pub struct Subscription {
    name: String,
    tx: Sender<Arc<ServerEvent>>,
    rx: Receiver<Arc<ServerEvent>>,
    dropped: AtomicU64,
    /// Second (counted from the bus's epoch, plus one so 0 means "never") of the last
    /// "queue full" warning.
    last_warn: AtomicU64,
    /// "queue full" warnings logged (for tests: at most one per second).
    warnings: AtomicU64,
    waker: Option<Waker>,
}

impl Subscription {
    /// The consumer's end of the queue.
    pub fn receiver(&self) -> &Receiver<Arc<ServerEvent>> {
        &self.rx
    }

    /// Events lost because this consumer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The name given at subscription, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues `ev`; on a full queue counts the drop and warns at most once per second. `sec` is
    /// the publish time in whole seconds since the bus's epoch, plus one: the drop path reads no
    /// clock of its own (it used to read the wall clock per dropped event, 117 ns each).
    fn offer(&self, ev: &Arc<ServerEvent>, sec: u64) {
        match self.tx.try_send(ev.clone()) {
            Ok(()) => {
                if let Some(w) = &self.waker {
                    w();
                }
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let last = self.last_warn.load(Ordering::Relaxed);
                if sec > last
                    && self
                        .last_warn
                        .compare_exchange(last, sec, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    self.warnings.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(subscriber = %self.name, dropped = n, "event queue full, dropping events");
                }
            }
        }
    }
}

/// Carries SERVER events from the model to every subscriber.
pub struct EventBus {
    subs: ArcSwap<Vec<Arc<Subscription>>>,
    // Serialises subscribe/unsubscribe only (never taken by publish).
    edit: Mutex<()>,
    published: AtomicU64,
    /// Origin of the per-second warning buckets.
    epoch: Instant,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            subs: ArcSwap::default(),
            edit: Mutex::new(()),
            published: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a consumer with a queue of `capacity` events. `waker` is called after each queued
    /// event (keep it cheap and non-blocking).
    pub fn subscribe(
        &self,
        name: &str,
        capacity: usize,
        waker: Option<Waker>,
    ) -> Arc<Subscription> {
        let (tx, rx) = bounded(capacity.max(1));
        let sub = Arc::new(Subscription {
            name: name.to_string(),
            tx,
            rx,
            dropped: AtomicU64::new(0),
            last_warn: AtomicU64::new(0),
            warnings: AtomicU64::new(0),
            waker,
        });
        let _g = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        let mut v = (**self.subs.load()).clone();
        v.push(sub.clone());
        self.subs.store(Arc::new(v));
        sub
    }

    /// Removes a consumer.
    pub fn unsubscribe(&self, sub: &Arc<Subscription>) {
        let _g = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        let v: Vec<_> = self
            .subs
            .load()
            .iter()
            .filter(|s| !Arc::ptr_eq(s, sub))
            .cloned()
            .collect();
        self.subs.store(Arc::new(v));
    }

    /// Queues `ev` for every subscriber; never blocks. Stamps `ev.published` with the one clock
    /// read of the whole publish (only when someone listens), which also dates any drop.
    pub fn publish(&self, mut ev: ServerEvent) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let subs = self.subs.load();
        if subs.is_empty() {
            return;
        }
        let now = Instant::now();
        ev.published = Some(now);
        let sec = now.saturating_duration_since(self.epoch).as_secs() + 1;
        let ev = Arc::new(ev);
        for s in subs.iter() {
            s.offer(&ev, sec);
        }
    }

    /// Events published since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Events dropped, summed over current subscribers.
    pub fn dropped(&self) -> u64 {
        self.subs.load().iter().map(|s| s.dropped()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    #[test]
    fn publish_stamps_the_event_once_for_every_subscriber() {
        let bus = EventBus::new();
        let (a, b) = (bus.subscribe("a", 4, None), bus.subscribe("b", 4, None));
        let before = Instant::now();
        bus.publish(ServerEvent::sample(EventType::ServerDown, 0));
        let (ea, eb) = (
            a.receiver().try_recv().unwrap(),
            b.receiver().try_recv().unwrap(),
        );
        let t = ea.published.expect("stamped");
        assert!(t >= before && t <= Instant::now());
        assert_eq!(eb.published, Some(t));
    }

    #[test]
    fn drops_are_counted_exactly_and_warned_once_per_second() {
        let bus = EventBus::new();
        let sub = bus.subscribe("full", 1, None);
        let e = Arc::new(ServerEvent::sample(EventType::ServerDown, 0));
        sub.offer(&e, 1);
        for _ in 0..5000 {
            sub.offer(&e, 1);
        }
        assert_eq!(
            (sub.dropped(), sub.warnings.load(Ordering::Relaxed)),
            (5000, 1)
        );
        for _ in 0..3000 {
            sub.offer(&e, 2);
        }
        sub.offer(&e, 4);
        assert_eq!(
            (sub.dropped(), sub.warnings.load(Ordering::Relaxed)),
            (8001, 3)
        );
        // A late publisher with an older second never warns twice.
        sub.offer(&e, 3);
        assert_eq!(sub.warnings.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn storm_through_publish_counts_every_drop() {
        let bus = EventBus::new();
        let sub = bus.subscribe("small", 10, None);
        let t = Instant::now();
        for _ in 0..100_000 {
            bus.publish(ServerEvent::sample(EventType::ServerDown, 0));
        }
        let secs = t.elapsed().as_secs() + 1;
        assert_eq!(bus.published(), 100_000);
        assert_eq!((sub.receiver().len() as u64, sub.dropped()), (10, 99_990));
        let w = sub.warnings.load(Ordering::Relaxed);
        assert!(w >= 1 && w <= secs + 1, "{w} warnings in {secs} s");
    }
}
