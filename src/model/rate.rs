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
    /// Where the period `curr` counts began (ms clock): HAProxy's `curr_tick`, moved on a
    /// second at a time, or to the first event after two idle periods.
    tick: AtomicU64,
    curr: AtomicU64,
    prev: AtomicU64,
    max: AtomicU64,
}

impl Rate {
    /// Counts one event now, and keeps the maximum rate.
    pub fn hit(&self) {
        let now = now_ms();
        self.rotate(now);
        self.curr.fetch_add(1, Ordering::Relaxed);
        self.note_max(now);
    }

    /// Counts one event now if it keeps the rate under `limit` per second (0: no limit):
    /// the check and the count are one step, so that listeners side by side never let more
    /// in than the limit (HAProxy's threads take their share the same way).
    pub fn try_hit(&self, limit: u64) -> bool {
        if limit == 0 {
            self.hit();
            return true;
        }
        loop {
            let now = now_ms();
            self.rotate(now);
            let c = self.curr.load(Ordering::Acquire);
            if self.total_at(now) >= limit * 1000 {
                return false;
            }
            if self
                .curr
                .compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.note_max(now);
                return true;
            }
        }
    }

    /// Gives back an event counted by [`Rate::try_hit`] that did not happen (nothing was
    /// waiting to be accepted).
    pub fn unhit(&self) {
        let _ = self
            .curr
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| c.checked_sub(1));
    }

    fn note_max(&self, now: u64) {
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

    /// HAProxy's `update_freq_ctr_period`: once the period is over, the next one starts a
    /// second later with this count as the previous one; after two idle periods or more, the
    /// window starts again now, with nothing before it. The thread that wins the switch
    /// carries the count over (a race loses at most the events counted meanwhile).
    fn rotate(&self, now: u64) {
        let old = self.tick.load(Ordering::Acquire);
        if now < old + 1000 {
            return;
        }
        let idle = now >= old + 2000;
        let new = if idle { now } else { old + 1000 };
        if self
            .tick
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let c = self.curr.swap(0, Ordering::AcqRel);
            self.prev.store(if idle { 0 } else { c }, Ordering::Release);
        }
    }

    /// HAProxy's `next_event_delay`: how long until one more event fits under `limit` per
    /// second (zero when one fits now), as the sliding window lets older events out.
    pub fn next_event_delay(&self, limit: u64) -> Duration {
        if limit == 0 {
            return Duration::ZERO;
        }
        let now = now_ms();
        self.rotate(now);
        let total = self.total_at(now);
        let room = limit * 1000;
        if total < room {
            return Duration::ZERO;
        }
        Duration::from_millis(((total - room) / limit).max(1))
    }

    fn read_at(&self, now: u64) -> u64 {
        self.total_at(now) / 1000
    }

    /// HAProxy's `freq_ctr_total` over one second, in thousandths: the current period's
    /// count, plus the previous period's weighted by its share of the window ending now.
    fn total_at(&self, now: u64) -> u64 {
        let tick = self.tick.load(Ordering::Acquire);
        let (curr, prev) = (
            self.curr.load(Ordering::Acquire),
            self.prev.load(Ordering::Acquire),
        );
        let end = tick + 1000;
        if now < end {
            // within the current period (a clock read just before a switch counts as in it)
            curr * 1000 + prev * (end - now.max(tick))
        } else if now < end + 1000 {
            // the period is over and nothing moved it on yet: it is the previous one now
            curr * (end + 1000 - now)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tick: u64, curr: u64, prev: u64) -> Rate {
        let r = Rate::default();
        r.tick.store(tick, Ordering::Relaxed);
        r.curr.store(curr, Ordering::Relaxed);
        r.prev.store(prev, Ordering::Relaxed);
        r
    }

    #[test]
    fn the_previous_period_fades_out_of_the_window() {
        let r = at(10_000, 100, 0);
        assert_eq!(r.read_at(10_500), 100);
        // a period on: its 100 weigh by the part still in the window
        assert_eq!(r.read_at(11_000), 100);
        assert_eq!(r.read_at(11_250), 75);
        r.rotate(11_250);
        assert_eq!(r.tick.load(Ordering::Relaxed), 11_000);
        assert_eq!(r.read_at(11_250), 75);
        r.curr.store(10, Ordering::Relaxed);
        assert_eq!(r.read_at(11_500), 60);
        // nothing for two periods: nothing left, and the next window starts at the next event
        assert_eq!(r.read_at(13_100), 0);
        r.rotate(13_100);
        assert_eq!(r.tick.load(Ordering::Relaxed), 13_100);
        assert_eq!(r.read_at(13_100), 0, "an idle gap empties the window");
    }

    #[test]
    fn a_burst_after_idleness_waits_a_whole_second() {
        // HAProxy's anchoring: the window starts with the burst, so 5 per second means the
        // 6th comes a second after the first, not at the next round second
        let r = at(0, 0, 0);
        let t = 40_990;
        r.rotate(t);
        r.curr.store(5, Ordering::Relaxed);
        assert_eq!(r.total_at(t + 20), 5000, "still the same period");
        assert!(r.total_at(t + 999) >= 5000);
        assert!(r.total_at(t + 1001) < 5000);
    }

    #[test]
    fn the_next_event_waits_for_the_window_to_slide() {
        let r = Rate::default();
        assert_eq!(r.next_event_delay(10), Duration::ZERO);
        for _ in 0..10 {
            assert!(r.try_hit(10));
        }
        assert!(!r.try_hit(10), "the 11th does not fit");
        let d = r.next_event_delay(10);
        assert!(d >= Duration::from_millis(1), "{d:?}");
        assert!(d <= Duration::from_millis(1000), "{d:?}");
        assert_eq!(r.next_event_delay(11), Duration::ZERO);
        assert_eq!(r.next_event_delay(0), Duration::ZERO);
        r.unhit();
        assert!(r.try_hit(10), "a slot given back is taken again");
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
