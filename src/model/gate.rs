//! Wake-ups for accept loops held back by a connection limit or a paused frontend.
//!
//! An accept loop that may not accept (a `maxconn` reached, its frontend paused) must resume as
//! soon as that changes, as HAProxy re-enables its listeners from the session that frees a slot,
//! and must not spin meanwhile. The thread that frees the slot or resumes the frontend is any
//! worker, the Runtime API's or the Lua thread: it calls [`Gate::open`]. The hot path pays one
//! fence and one load when nobody waits; the Notify's lock is taken only when a loop is held.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Where accept loops wait for a limit to lift (see the module doc).
#[derive(Debug, Default)]
pub struct Gate {
    waiting: AtomicUsize,
    notify: Notify,
}

impl Gate {
    /// Wakes every loop waiting now; call it after the change that may let them accept (a slot
    /// released, a limit raised, a frontend resumed or stopped).
    pub fn open(&self) {
        // pairs with the fence in `wait_while`: either this load sees the waiter, or the waiter's
        // re-check sees the change made before this call
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Waits until [`open`](Self::open) is called, unless `held()` is already false, or
    /// `also` completes first (a stop). `held` is re-checked after the wait is registered, so
    /// a change made by another thread just before cannot be missed.
    pub async fn wait_while(&self, held: impl Fn() -> bool, also: impl Future<Output = ()>) {
        let mut notified = pin!(self.notify.notified());
        notified.as_mut().enable();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _counted = Waiting(&self.waiting);
        fence(Ordering::SeqCst);
        if !held() {
            return;
        }
        tokio::select! {
            _ = notified => {}
            _ = also => {}
        }
    }
}

/// Counts a waiter out however its wait ends (dropped with its task included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    }

    #[test]
    fn not_held_returns_at_once() {
        let g = Gate::default();
        rt().block_on(g.wait_while(|| false, std::future::pending()));
        assert_eq!(g.waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn another_thread_opening_wakes_the_waiter() {
        // many rounds, so that a lost wake-up between the re-check and the wait would show
        let g = Arc::new(Gate::default());
        let held = Arc::new(AtomicBool::new(true));
        for _ in 0..2000 {
            held.store(true, Ordering::Relaxed);
            let (g2, h2) = (g.clone(), held.clone());
            let opener = std::thread::spawn(move || {
                h2.store(false, Ordering::Relaxed);
                g2.open();
            });
            let h = held.clone();
            rt().block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    g.wait_while(move || h.load(Ordering::Relaxed), std::future::pending()),
                )
                .await
                .expect("a wake-up was lost");
            });
            opener.join().expect("opener");
        }
        assert_eq!(g.waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_other_future_ends_the_wait() {
        let g = Gate::default();
        rt().block_on(g.wait_while(|| true, async {}));
        assert_eq!(g.waiting.load(Ordering::Relaxed), 0);
    }
}
