//! The event bus: a fan-out of bounded crossbeam queues, one per subscriber.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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
    last_warn: AtomicU64,
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

    fn offer(&self, ev: &Arc<ServerEvent>) {
        match self.tx.try_send(ev.clone()) {
            Ok(()) => {
                if let Some(w) = &self.waker {
                    w();
                }
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let last = self.last_warn.load(Ordering::Relaxed);
                if now > last
                    && self
                        .last_warn
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(subscriber = %self.name, dropped = n, "event queue full, dropping events");
                }
            }
        }
    }
}

/// Carries SERVER events from the model to every subscriber.
#[derive(Default)]
pub struct EventBus {
    subs: ArcSwap<Vec<Arc<Subscription>>>,
    // Serialises subscribe/unsubscribe only (never taken by publish).
    edit: Mutex<()>,
    published: AtomicU64,
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

    /// Queues `ev` for every subscriber; never blocks.
    pub fn publish(&self, ev: ServerEvent) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let subs = self.subs.load();
        if subs.is_empty() {
            return;
        }
        let ev = Arc::new(ev);
        for s in subs.iter() {
            s.offer(&ev);
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
