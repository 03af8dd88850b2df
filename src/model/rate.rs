//! Events per second as HAProxy reports them in `show stat` (`rate`, `conn_rate`) and `show info`
//! (`ConnRate`, `SessRate`): its `freq_ctr`, the current second's count plus the previous second's
//! weighted by the part of it still inside a sliding one-second window, and the highest value
//! seen (`*_max`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Milliseconds since the first call, on the monotonic clock shared by every counter.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A per-second event rate, updated by any thread without a lock.
#[derive(Debug, Default)]
pub struct Rate {
    /// The second `curr` counts (ms clock / 1000).
    sec: AtomicU64,
    curr: AtomicU64,
    prev: AtomicU64,
    max: AtomicU64,
}

impl Rate {
    /// Counts one event now, and keeps the maximum rate.
    pub fn hit(&self) {
        let now = now_ms();
        self.rotate(now / 1000);
        self.curr.fetch_add(1, Ordering::Relaxed);
        // a steady rate seldom beats its maximum: a load, not a shared write, per event
        let r = self.read_at(now);
        if r > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(r, Ordering::Relaxed);
        }
    }

    /// The rate now.
    pub fn read(&self) -> u64 {
        self.read_at(now_ms())
    }

    /// The highest rate seen.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// Forgets the highest rate (`clear counters`).
    pub fn clear_max(&self) {
        self.max.store(0, Ordering::Relaxed);
    }

    /// Moves to second `s` if the counter is still on an older one: the thread that wins the
    /// switch carries the count over (a race loses at most the events counted meanwhile).
    fn rotate(&self, s: u64) {
        let old = self.sec.load(Ordering::Relaxed);
        if s > old
            && self
                .sec
                .compare_exchange(old, s, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let c = self.curr.swap(0, Ordering::AcqRel);
            self.prev
                .store(if s == old + 1 { c } else { 0 }, Ordering::Relaxed);
        }
    }

    /// HAProxy's `next_event_delay`: how long until one more event fits under `limit` per
    /// second (zero when one fits now), as the sliding window lets older events out.
    pub fn next_event_delay(&self, limit: u64) -> Duration {
        if limit == 0 {
            return Duration::ZERO;
        }
        let total = self.total_at(now_ms());
        let room = limit * 1000;
        if total < room {
            return Duration::ZERO;
        }
        Duration::from_millis(((total - room) / limit).max(1))
    }

    fn read_at(&self, now: u64) -> u64 {
        self.total_at(now) / 1000
    }

    /// The events in the one-second window that ends at `now`, in thousandths: the current
    /// second's count, plus the previous second's weighted by its share of the window.
    fn total_at(&self, now: u64) -> u64 {
        let (s, ms) = (now / 1000, now % 1000);
        let sec = self.sec.load(Ordering::Relaxed);
        let (curr, prev) = (
            self.curr.load(Ordering::Relaxed),
            self.prev.load(Ordering::Relaxed),
        );
        if s == sec {
            curr * 1000 + prev * (1000 - ms)
        } else if s == sec + 1 {
            curr * (1000 - ms)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_second_fades_out_of_the_window() {
        let r = Rate::default();
        r.rotate(10);
        r.curr.store(100, Ordering::Relaxed);
        assert_eq!(r.read_at(10_500), 100);
        // one second on: last second's 100 weigh by the part still in the window
        r.rotate(11);
        assert_eq!(r.read_at(11_000), 100);
        assert_eq!(r.read_at(11_250), 75);
        r.curr.store(10, Ordering::Relaxed);
        assert_eq!(r.read_at(11_500), 60);
        // nothing for two seconds: nothing left
        assert_eq!(r.read_at(13_100), 0);
        r.rotate(13);
        assert_eq!(r.read_at(13_100), 0, "a gap of a second empties the window");
    }

    #[test]
    fn the_next_event_waits_for_the_window_to_slide() {
        let r = Rate::default();
        assert_eq!(r.next_event_delay(10), Duration::ZERO);
        for _ in 0..10 {
            r.hit();
        }
        let d = r.next_event_delay(10);
        assert!(d >= Duration::from_millis(1), "{d:?}");
        assert!(d <= Duration::from_millis(1000), "{d:?}");
        assert_eq!(r.next_event_delay(11), Duration::ZERO);
        assert_eq!(r.next_event_delay(0), Duration::ZERO);
    }

    #[test]
    fn hits_count_and_keep_the_maximum() {
        let r = Rate::default();
        for _ in 0..5 {
            r.hit();
        }
        assert!(r.read() >= 4, "{}", r.read());
        assert!(r.max() >= 4);
    }
}
