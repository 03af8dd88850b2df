//! `ring` sections at run time: in-memory buffers of log lines (`log ring@<name>`), read by
//! `show events <name>` and sent on to each ring's TCP servers, one line and a newline at a
//! time, as HAProxy 2.6 sends them. A worker's write takes the ring's lock for a copy and
//! never waits on a server: a slow or absent server only misses the lines that fell out of
//! the buffer meanwhile (counted as dropped).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::config::{LogFormat, RingConfig};

/// One ring.
pub struct Ring {
    /// Its name.
    pub name: String,
    /// What `show events` says it is.
    pub description: String,
    /// How lines are framed in it.
    pub format: LogFormat,
    maxlen: usize,
    size: usize,
    inner: Mutex<Inner>,
    /// Woken at every line, for the servers' senders.
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct Inner {
    /// Lines by number, oldest first.
    lines: VecDeque<(u64, Box<str>)>,
    /// Their bytes (each counts its newline).
    bytes: usize,
    /// The next line's number.
    next: u64,
    /// Lines a server never got (they left the buffer first).
    dropped: u64,
}

/// HAProxy's built-in ring (`show events buf0`), there without configuration.
const BUF0: &str = "buf0";

static RINGS: OnceLock<Vec<Arc<Ring>>> = OnceLock::new();

impl Ring {
    fn new(c: &RingConfig) -> Ring {
        Ring {
            name: c.name.clone(),
            description: c.description.clone().unwrap_or_else(|| c.name.clone()),
            format: c.format,
            maxlen: c.maxlen.unwrap_or(c.size).min(c.size),
            size: c.size,
            inner: Mutex::new(Inner::default()),
            notify: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a framed line (cut to `maxlen`), the oldest ones leaving to make room.
    pub fn write(&self, line: &str) {
        let mut end = line.len().min(self.maxlen);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let line: Box<str> = line[..end].into();
        {
            let mut i = self.lock();
            i.bytes += line.len() + 1;
            let n = i.next;
            i.next += 1;
            i.lines.push_back((n, line));
            while i.bytes > self.size && i.lines.len() > 1 {
                if let Some((_, old)) = i.lines.pop_front() {
                    i.bytes -= old.len() + 1;
                }
            }
        }
        self.notify.notify_waiters();
    }

    /// Up to `max` lines numbered `from` or later, how many before them (from `from` on)
    /// already left the buffer, and the number the next line written will have. Found by
    /// position: the lock is held for the copy of those lines only.
    pub fn read(&self, from: u64, max: usize) -> (Vec<(u64, Box<str>)>, u64, u64) {
        let i = self.lock();
        let first = i.lines.front().map_or(i.next, |(n, _)| *n);
        let lost = first.saturating_sub(from);
        let start = (from.max(first) - first) as usize;
        let v = if start < i.lines.len() {
            i.lines.range(start..).take(max).cloned().collect()
        } else {
            Vec::new()
        };
        (v, lost, i.next)
    }

    /// Resolves at the next line written (enable it before reading, so as to miss none).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// The number the next line will have.
    pub fn next(&self) -> u64 {
        self.lock().next
    }

    /// Lines servers missed.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn count_dropped(&self, n: u64) {
        self.lock().dropped += n;
    }

    /// Every line held up to now, each followed by a newline (`show events <name>`), and the
    /// number of the next line; read a batch at a time, so that no worker waits long.
    pub fn dump(&self) -> (String, u64) {
        let mut out = String::new();
        let (mut from, end) = (0, self.next());
        while from < end {
            // lines that left meanwhile are simply not shown
            let (lines, _, _) = self.read(from, 256);
            let Some((last, _)) = lines.last() else { break };
            from = last + 1;
            for (n, l) in &lines {
                if *n < end {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        (out, end)
    }
}

/// Makes the rings of `configs` (and `buf0`); once per process, later calls are ignored.
pub fn install(configs: &[RingConfig]) {
    let mut v: Vec<Arc<Ring>> = Vec::new();
    if !configs.iter().any(|c| c.name == BUF0) {
        let mut buf0 = RingConfig::new(BUF0, Default::default());
        buf0.description = Some("in-memory ring buffer".into());
        buf0.size = 1 << 20;
        v.push(Arc::new(Ring::new(&buf0)));
    }
    v.extend(configs.iter().map(|c| Arc::new(Ring::new(c))));
    let _ = RINGS.set(v);
}

/// The ring named `name`.
pub fn find(name: &str) -> Option<Arc<Ring>> {
    RINGS.get()?.iter().find(|r| r.name == name).cloned()
}

/// Every ring, `buf0` first, then in the configuration's order.
pub fn all() -> Vec<Arc<Ring>> {
    RINGS.get().cloned().unwrap_or_default()
}

/// The senders of every ring's servers, on their own thread; stopped on drop.
pub struct Forwarders {
    /// Each sender's ring and progress.
    senders: Vec<(Arc<Ring>, Arc<Progress>)>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A sender's progress, for the last flush at stop.
#[derive(Default)]
struct Progress {
    /// The number of the next line to send.
    sent: std::sync::atomic::AtomicU64,
    /// Whether it has a connection.
    connected: std::sync::atomic::AtomicBool,
}

/// One server of a ring, to send to.
struct Job {
    ring: Arc<Ring>,
    addr: std::net::SocketAddr,
    connect_timeout: Duration,
    write_timeout: Duration,
    progress: Arc<Progress>,
}

/// Starts sending each ring's lines to its servers (`None` when no ring has a server).
pub fn start_forwarders(configs: &[RingConfig]) -> std::io::Result<Option<Forwarders>> {
    let mut jobs = Vec::new();
    for c in configs {
        let Some(ring) = find(&c.name) else { continue };
        for (_, addr) in &c.servers {
            jobs.push(Job {
                ring: ring.clone(),
                addr: *addr,
                connect_timeout: c.timeout_connect,
                write_timeout: c.timeout_server,
                progress: Arc::new(Progress::default()),
            });
        }
    }
    if jobs.is_empty() {
        return Ok(None);
    }
    let senders = jobs
        .iter()
        .map(|j| (j.ring.clone(), j.progress.clone()))
        .collect();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("harp-rings".into())
        .spawn(move || {
            rt.block_on(async move {
                let tasks: Vec<_> = jobs
                    .into_iter()
                    .map(|j| tokio::spawn(forward(j, stop_rx.clone())))
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
            })
        })?;
    Ok(Some(Forwarders {
        senders,
        stop,
        thread: Mutex::new(Some(thread)),
    }))
}

impl Forwarders {
    /// Gives the connected senders half a second to send what was logged so far, then
    /// stops them and waits for their thread (once: later calls return at once).
    pub fn stop(&self) {
        use std::sync::atomic::Ordering;
        let Some(h) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let until: Vec<u64> = self.senders.iter().map(|(r, _)| r.next()).collect();
        let end = std::time::Instant::now() + Duration::from_millis(500);
        while std::time::Instant::now() < end
            && self.senders.iter().zip(&until).any(|((_, p), u)| {
                p.connected.load(Ordering::Relaxed) && p.sent.load(Ordering::Relaxed) < *u
            })
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.stop.send(true);
        let _ = h.join();
    }
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the server closed its side (a FIN already received): a peek that finds the end.
fn closed_by_peer(stream: &tokio::net::TcpStream) -> bool {
    use rustix::net::RecvFlags;
    let mut one = [0u8; 1];
    matches!(
        rustix::net::recv(stream, &mut one, RecvFlags::PEEK | RecvFlags::DONTWAIT),
        Ok(0)
    )
}

/// Sends a ring's lines to one server, from the oldest held at start, reconnecting (a
/// second after a failure or a close by the server) and going on where it stopped: a batch
/// the server did not take goes again on the next connection.
async fn forward(job: Job, mut stop: tokio::sync::watch::Receiver<bool>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Job {
        ring,
        addr,
        connect_timeout,
        write_timeout,
        progress,
    } = job;
    let mut cursor = 0u64;
    loop {
        let conn = tokio::select! {
            c = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)) => c,
            _ = stop.changed() => return,
        };
        if let Ok(Ok(mut stream)) = conn {
            progress.connected.store(true, Ordering::Relaxed);
            loop {
                let notified = ring.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let (lines, lost, _) = ring.read(cursor, 256);
                if lost > 0 {
                    ring.count_dropped(lost);
                    cursor += lost;
                }
                if lines.is_empty() {
                    // idle: a server that closes is noticed now, not by the next batch,
                    // which would be lost in the dead socket
                    let mut scrap = [0u8; 512];
                    tokio::select! {
                        // a close already there is seen before new lines are
                        biased;
                        r = stream.read(&mut scrap) => match r {
                            Ok(n) if n > 0 => continue,
                            _ => break,
                        },
                        _ = &mut notified => {
                            // a millisecond gathers a burst of lines into one batch
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            continue;
                        }
                        _ = stop.changed() => return,
                    }
                }
                if closed_by_peer(&stream) {
                    // the server went away meanwhile: this batch goes to the next connection
                    break;
                }
                let mut out = Vec::new();
                let mut next = cursor;
                for (n, l) in &lines {
                    out.extend_from_slice(l.as_bytes());
                    out.push(b'\n');
                    next = n + 1;
                }
                let sent = tokio::select! {
                    r = tokio::time::timeout(write_timeout, stream.write_all(&out)) => matches!(r, Ok(Ok(()))),
                    _ = stop.changed() => return,
                };
                if !sent {
                    break;
                }
                cursor = next;
                progress.sent.store(cursor, Ordering::Relaxed);
            }
            progress.connected.store(false, Ordering::Relaxed);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(size: usize) -> Ring {
        let mut c = RingConfig::new("r", Default::default());
        c.size = size;
        Ring::new(&c)
    }

    #[test]
    fn lines_are_read_by_number_and_the_oldest_leave_first() {
        let r = ring(100);
        for i in 0..20 {
            r.write(&format!("line {i:02}"));
        }
        // 7 bytes a line and its newline: the last 12 fit in 100
        let (lines, lost, next) = r.read(0, 100);
        assert_eq!(next, 20);
        assert_eq!(lost, 8);
        assert_eq!(lines.len(), 12);
        assert_eq!(&*lines[0].1, "line 08");
        let (lines, lost, _) = r.read(15, 2);
        assert_eq!((lost, lines.len(), lines[0].0), (0, 2, 15));
        assert!(r.read(20, 10).0.is_empty());
        let (dump, end) = r.dump();
        assert_eq!(end, 20);
        assert!(dump.starts_with("line 08\n") && dump.ends_with("line 19\n"));
    }

    #[test]
    fn maxlen_cuts_at_a_character_boundary() {
        let mut c = RingConfig::new("r", Default::default());
        c.maxlen = Some(5);
        let r = Ring::new(&c);
        r.write("abcdé");
        assert_eq!(&*r.read(0, 1).0[0].1, "abcd");
    }
}
