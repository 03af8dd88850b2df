//! CPU and memory of the proxy under test, read from /proc. A proxy may be several processes
//! (nginx: a master and its workers), so a pid counts together with its direct children.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Clock ticks per second for /proc/<pid>/stat times; asked from the system rather than assumed.
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions; it only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The text after the `(comm)` field of a stat line: comm may hold spaces and parentheses, so the
/// last ')' is the only safe split point.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

/// utime+stime of one process in ticks (fields 14 and 15 of stat; 12 and 13 after comm).
fn ticks_of(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f = stat_fields(&stat)?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Direct children of `pid`, found by scanning /proc (works without CONFIG_PROC_CHILDREN).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(child) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat_fields(&stat).and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()));
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Each given pid plus its direct children, deduplicated.
pub fn process_group(pids: &[u32]) -> Vec<u32> {
    let mut all = Vec::new();
    for &p in pids {
        all.push(p);
        all.extend(children_of(p));
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// CPU seconds (user + system) consumed so far by the pids and their children. Fails when none
/// of the pids exists, so a dead proxy is reported instead of silently measuring zero.
pub fn cpu_seconds(pids: &[u32]) -> Result<f64> {
    let mut total = 0u64;
    let mut seen = false;
    for p in process_group(pids) {
        if let Some(t) = ticks_of(p) {
            total += t;
            seen = true;
        }
    }
    if !seen {
        bail!("none of the processes {pids:?} exists");
    }
    Ok(total as f64 / clk_tck())
}

/// Resident memory in KiB of the pids and their children (VmRSS), for the memory comparison.
pub fn rss_kib(pids: &[u32]) -> Option<u64> {
    let mut total = 0;
    let mut seen = false;
    for p in process_group(pids) {
        let Ok(status) = fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("VmRSS:") {
                if let Some(kb) = v
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    total += kb;
                    seen = true;
                }
            }
        }
    }
    seen.then_some(total)
}

/// Whole-machine busy and total jiffies from the first line of /proc/stat.
fn machine_jiffies() -> Result<(u64, u64)> {
    let s = fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    let line = s.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        bail!("short /proc/stat cpu line");
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4]; // idle + iowait
    Ok((total - idle, total))
}

/// Fraction of all CPUs busy over `window` (0.0 - 1.0): the background load just before a run.
pub fn busy_fraction(window: Duration) -> Result<f64> {
    let (b0, t0) = machine_jiffies()?;
    std::thread::sleep(window);
    let (b1, t1) = machine_jiffies()?;
    if t1 <= t0 {
        return Ok(0.0);
    }
    Ok((b1 - b0) as f64 / (t1 - t0) as f64)
}

/// Waits (bounded by `max_wait`) until the machine is busier than `threshold` no longer, and
/// returns the last measured busy fraction: "wait for a quiet machine before each run".
pub fn wait_quiet(threshold: f64, max_wait: Duration) -> Result<f64> {
    let deadline = Instant::now() + max_wait;
    loop {
        let busy = busy_fraction(Duration::from_millis(500))?;
        if busy <= threshold || Instant::now() >= deadline {
            return Ok(busy);
        }
    }
}

/// Lifts the soft open-files limit to the hard limit: the upstream and the idle scenario hold
/// one fd per connection, thousands at a time.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit read just above; raising soft to hard needs no privilege.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_is_readable() {
        let me = std::process::id();
        assert!(cpu_seconds(&[me]).is_ok());
        assert!(rss_kib(&[me]).unwrap_or(0) > 0);
    }

    #[test]
    fn comm_with_spaces_parses() {
        let f = stat_fields("12 (a b) c) S 1 2 3").unwrap_or_default();
        assert_eq!(f.first().copied(), Some("S"));
        assert_eq!(f.get(1).copied(), Some("1"));
    }
}
