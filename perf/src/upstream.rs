//! The backend every comparison forwards to: an epoll server (one event loop per thread, one
//! SO_REUSEPORT listener per thread and address) that echoes, discards, answers fixed-size
//! responses or streams bytes. Event-driven rather than thread-per-connection so that accepting
//! 20,000 connections a second costs the shared CPUs as little as possible.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use socket2::{Domain, Socket, Type};

/// What the upstream does with the bytes of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Send every byte back (connrate and rr with equal request and response sizes, throughput both ways).
    Echo,
    /// Read and discard (throughput one way, client to server).
    Sink,
    /// For every `req` bytes read, answer `size` bytes (rr with different request/response sizes).
    Fixed,
    /// Ignore input and stream bytes to the client forever (throughput server to client).
    Source,
    /// Answer one request of `req` bytes with `size` bytes, then close: HTTP/1.0 `Connection:
    /// close` style, the server closes first (connrate `--close server`), so TIME_WAIT lands on
    /// the accepting side instead of making every connect() search a crowded port range.
    Once,
}

/// One listening address and the mode its connections get.
#[derive(Clone, Debug)]
pub struct Listen {
    /// Address to bind (loopback only).
    pub addr: SocketAddr,
    /// Behaviour of connections accepted there.
    pub mode: Mode,
}

/// Sizes for the `fixed` mode; `size` is also the chunk written by `source`.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Bytes that make up one request in `fixed` mode.
    pub req: usize,
    /// Bytes answered per request in `fixed` mode.
    pub size: usize,
}

/// Parses `[mode@]127.0.0.1:PORT[,...]` or bare ports, so one upstream process can serve the
/// echo and the sink backends of a comparison at once.
pub fn parse_listen(list: &str, default: Mode) -> Result<Vec<Listen>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (mode, addr) = match item.split_once('@') {
            Some((m, a)) => {
                let mode = <Mode as clap::ValueEnum>::from_str(m, true)
                    .map_err(|e| anyhow::anyhow!("bad mode {m:?}: {e}"))?;
                (mode, a)
            }
            None => (default, item),
        };
        let addr = if addr.chars().all(|c| c.is_ascii_digit()) {
            format!("127.0.0.1:{addr}")
        } else {
            addr.to_string()
        };
        out.push(Listen {
            addr: crate::net::loopback_addr(&addr)?,
            mode,
        });
    }
    if out.is_empty() {
        bail!("no listen address given");
    }
    Ok(out)
}

/// A running upstream; stopping (or dropping) it ends every event loop within ~100 ms.
pub struct Upstream {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
}

impl Upstream {
    /// Binds every address once per thread (SO_REUSEPORT) and starts the event loops. A port of 0
    /// is resolved by the first bind and reused by the other threads.
    pub fn start(listens: &[Listen], sizes: Sizes, threads: usize) -> Result<Self> {
        let threads = threads.clamp(1, 64);
        let mut addrs: Vec<SocketAddr> = listens.iter().map(|l| l.addr).collect();
        let mut per_thread: Vec<Vec<(TcpListener, Mode)>> = Vec::new();
        for _ in 0..threads {
            let mut ls = Vec::new();
            for (i, l) in listens.iter().enumerate() {
                let tl = bind_reuseport(addrs[i])?;
                addrs[i] = tl.local_addr()?;
                ls.push((tl, l.mode));
            }
            per_thread.push(ls);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for (n, ls) in per_thread.into_iter().enumerate() {
            let stop = stop.clone();
            let h = std::thread::Builder::new()
                .name(format!("upstream-{n}"))
                .spawn(move || {
                    if let Err(e) = event_loop(ls, sizes, &stop) {
                        eprintln!("harp-perf upstream: event loop failed: {e:#}");
                    }
                })
                .context("spawn upstream thread")?;
            handles.push(h);
        }
        Ok(Self {
            stop,
            threads: handles,
            addrs,
        })
    }

    /// The bound addresses, in the order given (ports resolved).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Blocks until the process is killed; the upstream has no other way to end from the CLI.
    pub fn wait(mut self) {
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

fn bind_reuseport(addr: SocketAddr) -> Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())
        .with_context(|| format!("bind {addr}"))?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Owned epoll instance; closes its fd on drop.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> Result<Self> {
        // SAFETY: epoll_create1 takes a flag and returns a new fd or -1; no pointers involved.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("epoll_create1");
        }
        Ok(Self(fd))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid, initialised epoll_event living across the call; self.0 is an
        // epoll fd we own and `fd` is an open socket owned by the caller.
        let r = unsafe { libc::epoll_ctl(self.0, op, fd, &mut ev) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> std::io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: the pointer and length describe a live, writable slice of epoll_event; the
        // kernel writes at most `max` entries.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), max, timeout_ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: self.0 is an fd this struct created and nobody else closes.
        unsafe { libc::close(self.0) };
    }
}

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;
/// Tokens below this are listeners; connections get CONN_BASE + their id.
const CONN_BASE: u64 = 1 << 32;
/// Stop reading a connection while this much output waits (the client is not reading).
const MAX_PENDING: usize = 4 << 20;

struct Conn {
    stream: TcpStream,
    mode: Mode,
    out: Vec<u8>,
    out_pos: usize,
    req_acc: usize,
    eof: bool,
    interest: u32,
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Writes queued output; Ok(true) when everything went out.
    fn flush(&mut self) -> std::io::Result<bool> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(true)
    }

    /// Handles readiness; Ok(false) means the connection is finished and must be dropped.
    fn service(&mut self, buf: &mut [u8], sizes: Sizes, chunk: &[u8]) -> std::io::Result<bool> {
        if !self.flush()? {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        if self.mode == Mode::Source {
            for _ in 0..16 {
                match self.stream.write(chunk) {
                    Ok(0) => return Ok(false),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(true);
        }
        // Bounded so that one busy connection cannot starve the others on this loop.
        for _ in 0..16 {
            let n = match self.stream.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match self.mode {
                Mode::Sink | Mode::Source => {}
                Mode::Echo => self.out.extend_from_slice(&buf[..n]),
                Mode::Once => {
                    self.req_acc += n;
                    if self.req_acc >= sizes.req.max(1) && !self.eof {
                        self.out.resize(sizes.size, b'r');
                        // Close once the answer is out (an exact-size request leaves nothing
                        // unread, so the close is a FIN, not a reset).
                        self.eof = true;
                    }
                }
                Mode::Fixed => {
                    self.req_acc += n;
                    let req = sizes.req.max(1);
                    while self.req_acc >= req && self.pending() < MAX_PENDING {
                        self.req_acc -= req;
                        let start = self.out.len();
                        self.out.resize(start + sizes.size, b'r');
                    }
                }
            }
            if self.pending() > 0 && !self.flush()? {
                break;
            }
        }
        if self.eof && self.pending() == 0 {
            return Ok(false);
        }
        Ok(true)
    }

    fn wanted_interest(&self) -> u32 {
        if self.pending() > 0 || self.mode == Mode::Source {
            OUT
        } else {
            IN
        }
    }
}

fn event_loop(listeners: Vec<(TcpListener, Mode)>, sizes: Sizes, stop: &AtomicBool) -> Result<()> {
    let ep = Epoll::new()?;
    for (i, (l, _)) in listeners.iter().enumerate() {
        ep.ctl(libc::EPOLL_CTL_ADD, l.as_raw_fd(), IN, i as u64)
            .context("register listener")?;
    }
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_id: u64 = 0;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 256 * 1024];
    let chunk = vec![b's'; sizes.size.clamp(1, 1 << 20)];
    while !stop.load(Ordering::Relaxed) {
        let n = ep.wait(&mut events, 100).context("epoll_wait")?;
        for ev in events.iter().take(n) {
            let token = ev.u64;
            if token < CONN_BASE {
                let Some((l, mode)) = listeners.get(token as usize) else {
                    continue;
                };
                for _ in 0..64 {
                    match l.accept() {
                        Ok((s, _)) => {
                            if s.set_nonblocking(true).is_err() {
                                continue;
                            }
                            let _ = s.set_nodelay(true);
                            let id = CONN_BASE + next_id;
                            next_id = next_id.wrapping_add(1) % (u64::MAX - CONN_BASE);
                            let c = Conn {
                                stream: s,
                                mode: *mode,
                                out: Vec::new(),
                                out_pos: 0,
                                req_acc: 0,
                                eof: false,
                                interest: 0,
                            };
                            let want = c.wanted_interest();
                            if ep
                                .ctl(libc::EPOLL_CTL_ADD, c.stream.as_raw_fd(), want, id)
                                .is_ok()
                            {
                                conns.insert(
                                    id,
                                    Conn {
                                        interest: want,
                                        ..c
                                    },
                                );
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            // EMFILE and friends: back off instead of spinning on a level-
                            // triggered listener that stays readable.
                            std::thread::sleep(Duration::from_millis(10));
                            break;
                        }
                    }
                }
                continue;
            }
            let Some(c) = conns.get_mut(&token) else {
                continue;
            };
            let keep = matches!(c.service(&mut buf, sizes, &chunk), Ok(true));
            if keep {
                let want = c.wanted_interest();
                if want != c.interest {
                    if ep
                        .ctl(libc::EPOLL_CTL_MOD, c.stream.as_raw_fd(), want, token)
                        .is_err()
                    {
                        conns.remove(&token);
                        continue;
                    }
                    c.interest = want;
                }
            } else {
                let _ = ep.ctl(libc::EPOLL_CTL_DEL, c.stream.as_raw_fd(), 0, token);
                conns.remove(&token);
            }
        }
    }
    Ok(())
}
