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

    /// Up to `max` lines numbered `from` or later, and how many before them (from `from`
    /// on) already left the buffer.
    pub fn read(&self, from: u64, max: usize) -> (Vec<(u64, Box<str>)>, u64) {
        let i = self.lock();
        let first = i.lines.front().map_or(i.next, |(n, _)| *n);
        let lost = first.saturating_sub(from);
        let v = i
            .lines
            .iter()
            .filter(|(n, _)| *n >= from)
            .take(max)
            .cloned()
            .collect();
        (v, lost)
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

    /// Every line held, each followed by a newline (`show events <name>`).
    pub fn dump(&self) -> String {
        let i = self.lock();
        let mut out = String::with_capacity(i.bytes);
        for (_, l) in &i.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
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
    /// Each sender's ring and the number of the next line it sends.
    cursors: Vec<(Arc<Ring>, Arc<std::sync::atomic::AtomicU64>)>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Starts sending each ring's lines to its servers (`None` when no ring has a server).
pub fn start_forwarders(configs: &[RingConfig]) -> std::io::Result<Option<Forwarders>> {
    let mut jobs = Vec::new();
    let mut cursors = Vec::new();
    for c in configs {
        let Some(ring) = find(&c.name) else { continue };
        for (_, addr) in &c.servers {
            let cursor = Arc::new(std::sync::atomic::AtomicU64::new(0));
            cursors.push((ring.clone(), cursor.clone()));
            jobs.push((
                ring.clone(),
                *addr,
                c.timeout_connect,
                c.timeout_server,
                cursor,
            ));
        }
    }
    if jobs.is_empty() {
        return Ok(None);
    }
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
                    .map(|(r, a, tc, ts, cur)| {
                        tokio::spawn(forward(r, a, tc, ts, cur, stop_rx.clone()))
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
            })
        })?;
    Ok(Some(Forwarders {
        cursors,
        stop,
        thread: Mutex::new(Some(thread)),
    }))
}

impl Forwarders {
    /// Gives the senders half a second to send what was logged so far, then stops them
    /// and waits for their thread.
    pub fn stop(&self) {
        use std::sync::atomic::Ordering;
        let until: Vec<u64> = self.cursors.iter().map(|(r, _)| r.next()).collect();
        let end = std::time::Instant::now() + Duration::from_millis(500);
        while std::time::Instant::now() < end
            && self
                .cursors
                .iter()
                .zip(&until)
                .any(|((_, c), u)| c.load(Ordering::Relaxed) < *u)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.stop.send(true);
        if let Some(h) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `ring`'s lines to one server, from the oldest held at start, reconnecting (a
/// second after a failure) and going on where it stopped.
async fn forward(
    ring: Arc<Ring>,
    addr: std::net::SocketAddr,
    connect_timeout: Duration,
    write_timeout: Duration,
    sent_up_to: Arc<std::sync::atomic::AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::AsyncWriteExt;
    let mut cursor = 0u64;
    loop {
        let conn = tokio::select! {
            c = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)) => c,
            _ = stop.changed() => return,
        };
        let Ok(Ok(mut stream)) = conn else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = stop.changed() => return,
            }
        };
        loop {
            let notified = ring.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (lines, lost) = ring.read(cursor, 256);
            if lost > 0 {
                ring.count_dropped(lost);
                cursor += lost;
            }
            if lines.is_empty() {
                tokio::select! {
                    _ = &mut notified => continue,
                    _ = stop.changed() => return,
                }
            }
            let mut out = Vec::new();
            for (n, l) in &lines {
                out.extend_from_slice(l.as_bytes());
                out.push(b'\n');
                cursor = n + 1;
            }
            let sent = tokio::select! {
                r = tokio::time::timeout(write_timeout, stream.write_all(&out)) => matches!(r, Ok(Ok(()))),
                _ = stop.changed() => return,
            };
            sent_up_to.store(cursor, std::sync::atomic::Ordering::Relaxed);
            if !sent {
                // those lines went nowhere: the next connection goes on after them
                break;
            }
        }
    }
}
