//! Connection steering by CPU. Each pinned worker marks its listeners with SO_INCOMING_CPU = its
//! CPU, and the kernel (6.1+) then hands a new connection to the listener of the CPU that
//! processed its SYN instead of hashing it over the SO_REUSEPORT group: the CPU where the
//! client's packets are handled (the NIC queue's CPU, or the client's own on loopback) also runs
//! the session, so sockets stay in that CPU's cache and wake-ups stay local. Measured on
//! loopback (same-run A/B): 1.09x conn/s, from the namespace rig 1.1-1.3x with less CPU per
//! connection in client, proxy and upstream alike (perf/README.md, session of 2026-11-25 02:47).
//!
//! The risk is a machine whose SYNs are processed on some CPUs only (a single-queue NIC without
//! RPS, IRQs on a subset of the CPUs): the workers of the other CPUs would get no connection. A
//! watchdog thread samples the workers' CPUs once per second (`/proc/stat`: the softirq work of
//! those SYNs counts too) and their accepts, and switches steering off until the next start,
//! back to hashing, when a worker's CPU stays saturated while another worker whose CPU has room
//! gets far less than its share of the connections.
//! `tune.listener.incoming-cpu off` never steers.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the watchdog samples the workers.
const PERIOD: Duration = Duration::from_secs(1);

/// One-sided samples in a row that switch steering off (a short burst from one client does not).
const STREAK: u32 = 3;

/// Steering state shared by the workers and the watchdog.
#[derive(Debug)]
pub(crate) struct Steering {
    on: AtomicBool,
    slots: Box<[Slot]>,
}

/// One worker's figures, on its own cache line: the worker writes, the watchdog reads.
#[derive(Debug)]
#[repr(align(64))]
struct Slot {
    /// Connections the worker accepted so far.
    accepts: AtomicU64,
    /// The CPU the worker is pinned to, -1 until it registered.
    cpu: AtomicI32,
}

impl Steering {
    /// Steering for `workers` workers; `on` = `tune.listener.incoming-cpu on` (the default).
    pub(crate) fn new(workers: usize, on: bool) -> Arc<Steering> {
        Arc::new(Steering {
            on: AtomicBool::new(on),
            slots: (0..workers)
                .map(|_| Slot {
                    accepts: AtomicU64::new(0),
                    cpu: AtomicI32::new(-1),
                })
                .collect(),
        })
    }

    /// Whether listeners should still carry their worker's CPU.
    pub(crate) fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Records that worker `i` runs pinned to `cpu`, so the watchdog watches that CPU.
    pub(crate) fn register(&self, i: usize, cpu: usize) {
        if let Some(s) = self.slots.get(i) {
            s.cpu
                .store(i32::try_from(cpu).unwrap_or(-1), Ordering::Relaxed);
        }
    }

    /// Counts one connection accepted by worker `i`.
    pub(crate) fn accepted(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            s.accepts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Turns steering off; workers unmark their listeners at their next accept.
    pub(crate) fn switch_off(&self) {
        self.on.store(false, Ordering::Relaxed);
    }

    /// Whether some worker registered its CPU (else there is nothing to watch).
    pub(crate) fn any_registered(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.cpu.load(Ordering::Relaxed) >= 0)
    }

    /// Every worker's CPU times and accepts now; `None` for a worker not registered (not
    /// pinned) or whose CPU `/proc/stat` does not show.
    fn read(&self) -> Vec<Option<Reading>> {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        self.slots
            .iter()
            .map(|s| {
                let cpu = usize::try_from(s.cpu.load(Ordering::Relaxed)).ok()?;
                let (busy, total) = cpu_times(&stat, cpu)?;
                Some(Reading {
                    busy,
                    total,
                    accepts: s.accepts.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}

/// One worker's counters at one instant: its CPU's busy and total time (clock ticks), and the
/// connections it accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    busy: u64,
    total: u64,
    accepts: u64,
}

impl Reading {
    /// (busy fraction of the CPU, accepts) between `before` and `self`.
    fn since(&self, before: &Reading) -> (f64, u64) {
        let total = self.total.saturating_sub(before.total);
        let busy = self.busy.saturating_sub(before.busy);
        let frac = if total == 0 {
            0.0
        } else {
            busy as f64 / total as f64
        };
        (frac, self.accepts.saturating_sub(before.accepts))
    }
}

/// Marks (`Some(cpu)`) or unmarks (`None`) a listener with the CPU whose SYNs it should get.
pub(crate) fn mark(l: &TcpListener, cpu: Option<usize>) -> io::Result<()> {
    // -1 (as the kernel reads the int) takes the socket out of CPU matching
    let v = cpu.map_or(u32::MAX, |c| c as u32);
    Ok(rustix::net::sockopt::set_socket_incoming_cpu(l, v)?)
}

/// (busy, total) clock ticks of `cpu` from the text of `/proc/stat`; idle and iowait are the
/// idle part, everything else (user, system, irq, softirq, steal...) is busy.
fn cpu_times(stat: &str, cpu: usize) -> Option<(u64, u64)> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Accepts per second below which a sample says nothing about the spread.
const MIN_ACCEPTS: u64 = 10;

/// Whether one second of figures looks like SYNs landing on some CPUs only: a worker's CPU busy
/// at least 90 % of the time while that worker took at least its fair share of the accepts, and
/// another worker's CPU busy at most half the time while it got less than a quarter of its fair
/// share (hashing would give it about its share). `busy`: busy fraction of each worker's CPU;
/// `accepts`: connections each worker accepted.
fn one_sided(busy: &[f64], accepts: &[u64]) -> bool {
    let n = busy.len() as u64;
    let total: u64 = accepts.iter().sum();
    if n < 2 || busy.len() != accepts.len() || total < MIN_ACCEPTS {
        return false;
    }
    let pairs = || busy.iter().zip(accepts);
    let saturated = pairs().any(|(&b, &a)| b >= 0.9 && a * n >= total);
    let starved = pairs().any(|(&b, &a)| b <= 0.5 && a * n * 4 < total);
    saturated && starved
}

/// The watchdog thread. It ends when [`Watchdog::stop`] is called or the `Watchdog` dropped, and
/// by itself once steering is off.
#[derive(Debug)]
pub(crate) struct Watchdog {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    /// Starts watching `steer`.
    pub(crate) fn start(steer: Arc<Steering>) -> io::Result<Watchdog> {
        let (stop, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("harp-steer".into())
            .spawn(move || watch(&steer, &rx))?;
        Ok(Watchdog { stop, thread })
    }

    /// Ends the thread and waits for it (at once: it sleeps on the channel).
    pub(crate) fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

fn watch(steer: &Steering, rx: &mpsc::Receiver<()>) {
    let mut prev = steer.read();
    let mut streak = 0;
    while steer.on() {
        match rx.recv_timeout(PERIOD) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let now = steer.read();
        // workers that are not pinned (or whose CPU cannot be read) are left out
        let (busy, accepts): (Vec<f64>, Vec<u64>) = now
            .iter()
            .zip(&prev)
            .filter_map(|(n, p)| Some(n.as_ref()?.since(p.as_ref()?)))
            .unzip();
        prev = now;
        streak = if one_sided(&busy, &accepts) {
            streak + 1
        } else {
            0
        };
        if streak >= STREAK {
            tracing::warn!(
                "new connections arrive on some CPUs only and saturate them while workers on \
                 other CPUs have room (few NIC queues, IRQs on a few CPUs?): spreading them by \
                 hash until harp restarts (tune.listener.incoming-cpu off never steers)"
            );
            steer.switch_off();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;
    use crate::worker::listener;
    use std::net::TcpStream;
    use std::time::Instant;

    /// Accepts what `l` has within a few seconds, until `total` connections were taken from
    /// `ls` altogether; returns how many each took.
    fn drain(ls: [&TcpListener; 2], total: usize) -> [usize; 2] {
        let mut got = [0, 0];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.iter().sum::<usize>() < total && Instant::now() < deadline {
            for (i, l) in ls.iter().enumerate() {
                while sys::accept_nonblocking(l).is_ok() {
                    got[i] += 1;
                }
            }
            std::thread::yield_now();
        }
        got
    }

    /// Linux 6.1 made SO_REUSEPORT groups honour SO_INCOMING_CPU.
    fn kernel_steers() -> bool {
        let u = rustix::system::uname();
        let rel = u.release().to_string_lossy();
        let mut v = rel
            .split(|c: char| !c.is_ascii_digit())
            .map(|x| x.parse::<u32>());
        matches!((v.next(), v.next()), (Some(Ok(a)), Some(Ok(b))) if (a, b) >= (6, 1))
    }

    #[test]
    fn the_kernel_gives_a_connection_to_the_listener_of_its_syn_cpu() {
        let cpus = sys::allowed_cpus();
        if cpus.len() < 2 || !kernel_steers() {
            return; // nothing to steer between, or a kernel that hashes anyway
        }
        let a = listener::open(
            "127.0.0.1:0".parse().unwrap(),
            128,
            true,
            &Default::default(),
        )
        .unwrap();
        let addr = a.local_addr().unwrap();
        let b = listener::open(addr, 128, true, &Default::default()).unwrap();
        if mark(&a, Some(cpus[0])).is_err() || mark(&b, Some(cpus[1])).is_err() {
            return; // SO_INCOMING_CPU unsupported (a sandboxed kernel)
        }
        for (cpu, want) in [(cpus[0], [20, 0]), (cpus[1], [0, 20])] {
            // on loopback the SYN is processed on the connecting thread's CPU
            let held = std::thread::spawn(move || {
                sys::pin_current_thread(cpu).unwrap();
                (0..20)
                    .map(|_| TcpStream::connect(addr).unwrap())
                    .collect::<Vec<_>>()
            })
            .join()
            .unwrap();
            assert_eq!(drain([&a, &b], 20), want, "client on CPU {cpu}");
            drop(held);
        }
        // unmarked, the group hashes again: both listeners still take connections
        mark(&a, None).unwrap();
        mark(&b, None).unwrap();
        let held: Vec<_> = (0..64).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let got = drain([&a, &b], 64);
        assert_eq!(got.iter().sum::<usize>(), 64);
        assert!(got[0] > 0 && got[1] > 0, "{got:?}");
        drop(held);
    }

    #[test]
    fn a_saturated_worker_and_a_starved_one_with_room_is_one_sided() {
        assert!(one_sided(&[0.97, 0.1], &[990, 10]));
        assert!(one_sided(&[0.2, 0.95, 0.4, 0.3], &[5, 950, 20, 25]));
        // IRQs on 2 CPUs of 4: two workers share the connections, two get none
        assert!(one_sided(&[0.95, 0.93, 0.05, 0.05], &[500, 480, 0, 0]));
        // few but heavy connections
        assert!(one_sided(&[1.0, 0.0], &[12, 0]));
    }

    #[test]
    fn balanced_light_or_everyone_busy_is_not() {
        // both busy: spreading would not help
        assert!(!one_sided(&[0.95, 0.9], &[990, 10]));
        // the busy worker does not get the connections (one long stream, say)
        assert!(!one_sided(&[0.99, 0.1], &[50, 60]));
        // not saturated
        assert!(!one_sided(&[0.8, 0.1], &[1000, 0]));
        // the worker with room gets its share already
        assert!(!one_sided(&[0.99, 0.3, 0.3], &[400, 300, 300]));
        // too few connections to tell
        assert!(!one_sided(&[0.99, 0.1], &[9, 0]));
        // one worker
        assert!(!one_sided(&[1.0], &[1000]));
        assert!(!one_sided(&[], &[]));
    }

    #[test]
    fn counts_and_cpu_times_are_read_per_worker() {
        let s = Steering::new(2, true);
        assert_eq!(s.read(), vec![None, None]);
        assert!(!s.any_registered());
        let cpu = sys::allowed_cpus().first().copied().unwrap_or(0);
        s.register(1, cpu);
        assert!(s.any_registered());
        s.accepted(1);
        s.accepted(1);
        s.accepted(7); // out of range: ignored
        let r = s.read();
        assert!(r[0].is_none());
        let r1 = r[1].unwrap();
        assert_eq!(r1.accepts, 2);
        assert!(r1.total >= r1.busy);
        assert!(s.on());
        s.switch_off();
        assert!(!s.on());
    }

    #[test]
    fn proc_stat_lines_give_busy_and_total() {
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\n\
                    cpu0 5 1 4 50 10 2 3 0 0 0\n\
                    cpu1 5 0 6 50 0 0 0 0 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(cpu_times(stat, 0), Some((15, 75)));
        assert_eq!(cpu_times(stat, 1), Some((11, 61)));
        assert_eq!(cpu_times(stat, 2), None);
        let a = Reading {
            busy: 15,
            total: 75,
            accepts: 10,
        };
        let b = Reading {
            busy: 105,
            total: 175,
            accepts: 510,
        };
        assert_eq!(b.since(&a), (0.9, 500));
        assert_eq!(a.since(&a), (0.0, 0));
    }

    #[test]
    fn watchdog_ends_when_stopped() {
        // the join returns: the thread left its sleep on the channel
        Watchdog::start(Steering::new(2, true)).unwrap().stop();
    }
}
