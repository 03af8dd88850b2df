//! Thin wrappers over the syscalls the data plane needs: pipes, splice, CPU affinity and the
//! io_uring POLL_ADD readiness op, thread scheduling priority. Everything here is safe Rust over
//! rustix / tokio-uring's public op API (an in-flight poll holds its own kernel reference on the
//! file, so closing the fd early cannot corrupt memory), except `sched_setscheduler`, which
//! rustix lacks.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use io_uring::{cqueue, opcode, types};
use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio_uring::{OneshotOutputTransform, UnsubmittedOneshot};

/// A pipe used as the in-kernel buffer of one forwarding direction.
#[derive(Debug)]
pub struct Pipe {
    /// Read end.
    pub rd: OwnedFd,
    /// Write end.
    pub wr: OwnedFd,
    /// Bytes the pipe holds at most, as the kernel granted them: what was asked, or less when
    /// the resize was refused (above `fs.pipe-max-size`, or an unprivileged user over
    /// `fs.pipe-user-pages-soft`, who may even get 8 KiB pipes).
    pub cap: usize,
}

/// The kernel's default pipe capacity, assumed when it cannot be read back.
const DEFAULT_PIPE_CAP: usize = 64 * 1024;

impl Pipe {
    /// Creates a non-blocking close-on-exec pipe and tries to size it to `size` bytes (a failure
    /// to resize keeps the kernel's size, which still works).
    pub fn new(size: usize) -> io::Result<Pipe> {
        let (rd, wr) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        let _ = rustix::pipe::fcntl_setpipe_size(&wr, size);
        let cap = rustix::pipe::fcntl_getpipe_size(&wr).unwrap_or(DEFAULT_PIPE_CAP);
        Ok(Pipe { rd, wr, cap })
    }
}

fn splice_flags() -> SpliceFlags {
    SpliceFlags::NONBLOCK | SpliceFlags::MOVE
}

/// Moves up to `len` bytes from socket `from` into `pipe` without blocking. `Ok(0)` is EOF.
pub fn splice_in(from: impl AsFd, pipe: &Pipe, len: usize) -> io::Result<usize> {
    Ok(rustix::pipe::splice(
        from,
        None,
        &pipe.wr,
        None,
        len,
        splice_flags(),
    )?)
}

/// Moves up to `len` bytes out of `pipe` into socket `to` without blocking. `more`
/// (`SPLICE_F_MORE`): hold the data back (corked) so that the FIN of a half-close following at
/// once rides in its segment.
pub fn splice_out(pipe: &Pipe, to: impl AsFd, len: usize, more: bool) -> io::Result<usize> {
    let flags = if more {
        splice_flags() | SpliceFlags::MORE
    } else {
        splice_flags()
    };
    Ok(rustix::pipe::splice(&pipe.rd, None, to, None, len, flags)?)
}

/// Aborts a TCP connection: a reset goes to the peer at once (no FIN, unsent data dropped) and
/// the socket is freed of its connection (no FIN_WAIT or TIME_WAIT), as a close with SO_LINGER 0
/// would, but without closing the fd: `connect(AF_UNSPEC)` also wakes every poll still waiting
/// on the socket (it reports a hang-up), so nothing in flight keeps it alive. Does nothing to a
/// connection already over.
pub fn reset(sock: impl AsFd) -> io::Result<()> {
    Ok(rustix::net::connect_unspec(sock)?)
}

/// Sets an integer socket option no wrapper crate offers; whether the kernel took it.
fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> bool {
    // SAFETY: `fd` is an open socket for the duration of the call (the callers hold it); the
    // option value is a c_int that lives on the stack past the call, and its size is passed
    // with it.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// Prepares a client connection for HAProxy's `silent-drop`: with no `rst_ttl`, puts it in
/// TCP_REPAIR mode so that closing it sends nothing at all (needs CAP_NET_ADMIN); else, or
/// when that is refused, sets the TTL (hop limit) of what it sends next to `rst_ttl` (1 by
/// default) so that the reset the close sends dies before the client. Whether it is silent.
pub fn silent_drop(sock: &impl AsRawFd, ipv6: bool, rst_ttl: Option<u8>) -> bool {
    let fd = sock.as_raw_fd();
    let set = |level, name, v| set_int_option(fd, level, name, v);
    // what came in is acknowledged at once, or the client would send it again to a socket
    // that is gone and draw a reset from the kernel (HAProxy does the same)
    set(libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1);
    if rst_ttl.is_none() && set(libc::IPPROTO_TCP, libc::TCP_REPAIR, 1) {
        return true;
    }
    let ttl = libc::c_int::from(rst_ttl.unwrap_or(1));
    if ipv6 {
        set(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, ttl);
    } else {
        set(libc::IPPROTO_IP, libc::IP_TTL, ttl);
    }
    false
}

/// Stops a listening socket taking connections, as HAProxy pauses a listener: new ones are
/// refused and those the kernel had queued are reset; [`listen_again`] resumes it on the same
/// address. Wakes a poll registered on it.
pub fn stop_listening(sock: impl AsFd) -> io::Result<()> {
    Ok(rustix::net::shutdown(sock, rustix::net::Shutdown::Read)?)
}

/// Closes a listening socket for good, whoever else holds it: new connections are refused,
/// queued ones reset, a poll registered on it wakes (a frontend stopped, a worker stopping).
pub fn stop_listening_for_good(sock: impl AsFd) {
    let _ = rustix::net::shutdown(sock, rustix::net::Shutdown::ReadWrite);
}

/// Puts a socket stopped by [`stop_listening`] back to listening with `backlog`. One that was
/// bound to port 0 gave its port back when it stopped: `rebind` names the address it had, to
/// bind it to again first (refused if someone took the port meanwhile).
pub fn listen_again(
    sock: impl AsFd,
    rebind: Option<std::net::SocketAddr>,
    backlog: i32,
) -> io::Result<()> {
    if let Some(addr) = rebind {
        match rustix::net::bind(&sock, &addr) {
            // bound already: another handle on the same socket did it
            Err(rustix::io::Errno::INVAL) | Ok(()) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rustix::net::listen(sock, backlog)?)
}

/// Bytes received on a socket and not read yet (`FIONREAD`), 0 when it cannot be asked.
pub fn unread_bytes(sock: impl AsFd) -> u64 {
    rustix::io::ioctl_fionread(sock).unwrap_or(0)
}

/// This machine's host name (what HAProxy's `node` and email alerts default to), `None` when
/// it cannot be read or is empty.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The process's open-file limit (`ulimit -n`), which bounds its connections: the derived
/// global `maxconn` and `show info`'s `Ulimit-n` read it. 1024 when it cannot be read.
pub fn nofile_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
}

/// Sets the open-file limit (`ulimit-n`): the soft limit, and the hard one too when it is lower
/// (which needs privileges, as in HAProxy).
pub fn set_nofile_limit(n: u64) -> io::Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    let hard = match cur.maximum {
        Some(h) if h >= n => Some(h),
        _ => Some(n),
    };
    let asked = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(n),
            maximum: hard,
        },
    );
    if let Err(e) = asked {
        // as HAProxy: at least up to the hard limit, then say it fell short
        if let Some(max) = cur.maximum {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(max),
                    maximum: Some(max),
                },
            );
        }
        return Err(io::Error::from(e));
    }
    Ok(())
}

/// Binds an outgoing socket to a `source` address before its connect (and to a device with
/// `interface`). A port-0 source picks its port at connect time (IP_BIND_ADDRESS_NO_PORT, as
/// HAProxy does), so many connections from one address do not exhaust ports at bind time.
pub fn bind_source(
    s: &socket2::Socket,
    addr: std::net::SocketAddr,
    interface: Option<&str>,
) -> io::Result<()> {
    if let Some(dev) = interface {
        s.bind_device(Some(dev.as_bytes()))?;
    }
    if addr.port() == 0 && addr.is_ipv4() {
        // best effort: an old kernel without it binds a port at once
        let _ = set_int_option(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            1,
        );
    } else {
        s.set_reuse_address(true)?;
    }
    s.bind(&addr.into())
}

/// CPU time the calling thread has used: Lua's `task-timeout` and `session-timeout` count it,
/// as HAProxy's Lua timer does, so that a Lua thread waiting for a CPU (it runs at
/// `tune.lua.nice` when it computes) is not charged for time it did not get.
pub fn thread_cpu_time() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    std::time::Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Accepts one connection already non-blocking and close-on-exec (one syscall: accept4).
pub fn accept_nonblocking(
    l: &std::net::TcpListener,
) -> io::Result<(std::net::TcpStream, std::net::SocketAddr)> {
    use rustix::net::{SocketAddrAny, SocketFlags};
    let (fd, addr) = rustix::net::acceptfrom_with(l, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
    let peer = match addr {
        Some(SocketAddrAny::V4(a)) => std::net::SocketAddr::V4(a),
        Some(SocketAddrAny::V6(a)) => std::net::SocketAddr::V6(a),
        _ => std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    Ok((std::net::TcpStream::from(fd), peer))
}

/// The CPUs this process may run on (its affinity mask), in order; empty if unknown.
pub fn allowed_cpus() -> Vec<usize> {
    match rustix::process::sched_getaffinity(None) {
        Ok(set) => (0..rustix::process::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// How many CPUs this process may run on: its affinity mask, else what the standard library
/// says; at least 1. The default worker count.
pub fn usable_cpus() -> usize {
    match allowed_cpus().len() {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Pins the calling thread to one CPU, so a worker keeps its caches and its share of the
/// SO_REUSEPORT spread.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = rustix::process::CpuSet::new();
    set.set(cpu);
    Ok(rustix::process::sched_setaffinity(None, &set)?)
}

/// Sets the calling thread's nice value (Linux: nice is per thread, and `setpriority` with
/// `who = 0` targets the caller only), so a helper thread such as the Lua engine yields the CPU
/// to the I/O workers. Raising priority (below 0) needs CAP_SYS_NICE.
pub fn set_current_thread_nice(nice: i32) -> io::Result<()> {
    Ok(rustix::process::setpriority_process(None, nice)?)
}

/// Puts the calling thread in SCHED_IDLE: it then runs only when no normal thread wants its CPU.
pub fn set_current_thread_sched_idle() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is an initialised sched_param living across
    // the call, and the kernel only reads it.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the calling thread back to SCHED_OTHER at nice 0 (undoes the two calls above). Leaving
/// SCHED_IDLE or lowering nice needs CAP_SYS_NICE (root has it); otherwise EPERM.
pub fn set_current_thread_normal() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is an initialised sched_param living across
    // the call, and the kernel only reads it.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    set_current_thread_nice(0)
}

/// Which readiness to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data (or EOF / error) to read.
    Read,
    /// Room to write (or error).
    Write,
}

/// Keeps nothing alive: the kernel holds its own reference to the polled file.
#[derive(Debug)]
pub struct PollData;

/// Turns the POLL_ADD completion into the revents mask or an error.
#[derive(Debug)]
pub struct PollTransform;

impl OneshotOutputTransform for PollTransform {
    type Output = io::Result<u32>;
    type StoredData = PollData;

    fn transform_oneshot_output(self, _data: PollData, cqe: cqueue::Entry) -> io::Result<u32> {
        let r = cqe.result();
        if r < 0 {
            Err(io::Error::from_raw_os_error(-r))
        } else {
            Ok(r as u32)
        }
    }
}

/// The poll(2) bits a readiness wait for `interest` asks for: errors and hang-ups always count as
/// ready, so the caller's next syscall reports them. Shared by both worker runtimes.
pub fn poll_mask(interest: Interest) -> u32 {
    (match interest {
        Interest::Read => libc::POLLIN | libc::POLLRDHUP,
        Interest::Write => libc::POLLOUT,
    } | libc::POLLERR
        | libc::POLLHUP) as u32
}

/// Waits, through the worker's io_uring, until `fd` is ready for `interest` (or has an error or
/// hang-up, which the next syscall then reports). Must run inside a tokio-uring runtime.
pub async fn poll_ready(fd: RawFd, interest: Interest) -> io::Result<u32> {
    let sqe = opcode::PollAdd::new(types::Fd(fd), poll_mask(interest)).build();
    UnsubmittedOneshot::new(PollData, PollTransform, sqe)
        .submit()
        .await
}

/// Readiness of `fd` right now, without waiting (one `poll(2)` with a zero timeout): the revents
/// mask, 0 when not ready. Cheaper than an io_uring round trip when the answer is usually "ready",
/// e.g. a loopback connect that the kernel completed inside `connect(2)`.
pub fn ready_now(fd: impl AsFd, interest: Interest) -> io::Result<u32> {
    use rustix::event::{PollFd, PollFlags};
    let want = match interest {
        Interest::Read => PollFlags::IN | PollFlags::RDHUP,
        Interest::Write => PollFlags::OUT,
    };
    let mut fds = [PollFd::new(&fd, want)];
    rustix::event::poll(&mut fds, 0)?;
    Ok(fds[0].revents().bits() as u32)
}

/// The raw fd of anything with one (for building SQEs).
pub fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {

    /// A listener paused and resumed takes connections on its port again, also one bound to
    /// port 0 (which gives its port back when it stops).
    #[test]
    fn a_stopped_listener_listens_again_on_its_port() {
        use std::net::{TcpListener, TcpStream};
        // an explicit port (one that was free a moment ago), then port 0
        let free = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        for port in [free, 0] {
            let l = TcpListener::bind(("127.0.0.1", port)).expect("bind");
            let addr = l.local_addr().expect("addr");
            stop_listening(&l).expect("stop");
            assert!(TcpStream::connect(addr).is_err(), "refused while stopped");
            listen_again(&l, (port == 0).then_some(addr), 16).expect("listen");
            assert_eq!(l.local_addr().expect("addr"), addr);
            TcpStream::connect(addr).expect("connect again");
        }
    }
    use super::*;

    #[test]
    fn pipe_is_non_blocking_and_sized() {
        let p = Pipe::new(256 * 1024).unwrap();
        let sz = rustix::pipe::fcntl_getpipe_size(&p.wr).unwrap();
        assert!(sz >= 64 * 1024);
        assert_eq!(p.cap, sz, "the capacity the kernel granted");
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        // nothing to read: would block rather than hang
        let e = splice_in(&a, &p, 1024).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn ready_now_reports_without_waiting() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(
            ready_now(&a, Interest::Read).unwrap() & libc::POLLIN as u32,
            0
        );
        assert_ne!(
            ready_now(&a, Interest::Write).unwrap() & libc::POLLOUT as u32,
            0
        );
        drop(b);
        assert_ne!(ready_now(&a, Interest::Read).unwrap(), 0);
    }

    /// A connected loopback pair, `a` non-blocking.
    fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Blocks in poll(2) on `fd` for `events` on another thread; returns its revents.
    fn poll_in_thread(fd: RawFd, events: i16) -> std::thread::JoinHandle<i16> {
        std::thread::spawn(move || {
            let mut p = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the fd outlives the call (joined before it is closed).
            let n = unsafe { libc::poll(&mut p, 1, 10_000) };
            if n == 1 {
                p.revents
            } else {
                0
            }
        })
    }

    #[test]
    fn reset_sends_rst_and_wakes_pollers() {
        use std::io::{Read, Write};
        let (a, mut b) = tcp_pair();
        // a reader waiting for data and a writer waiting for room (send buffer filled)
        let reader = poll_in_thread(a.as_raw_fd(), libc::POLLIN);
        socket2::SockRef::from(&a)
            .set_send_buffer_size(4096)
            .unwrap();
        let chunk = [7u8; 65536];
        // full once writes keep failing: loopback moves data into b's receive buffer meanwhile
        let mut refused = 0;
        while refused < 20 {
            if (&a).write(&chunk).is_ok() {
                refused = 0;
            } else {
                refused += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let writer = poll_in_thread(a.as_raw_fd(), libc::POLLOUT);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!writer.is_finished() && !reader.is_finished(), "both wait");
        reset(&a).unwrap();
        let hup = libc::POLLHUP;
        assert_ne!(reader.join().unwrap() & hup, 0, "the reader woke");
        assert_ne!(writer.join().unwrap() & hup, 0, "the writer woke");
        // the peer sees a reset, not an end of stream, once past the data already queued
        let mut buf = vec![0u8; 1 << 20];
        let end = loop {
            match b.read(&mut buf) {
                Ok(0) => break None,
                Ok(_) => continue,
                Err(e) => break Some(e.kind()),
            }
        };
        assert_eq!(end, Some(io::ErrorKind::ConnectionReset));
        assert!(reset(&a).is_ok(), "a second reset changes nothing");
    }

    #[test]
    fn a_thread_can_lower_its_own_priority_only() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let t = std::thread::spawn(|| {
            set_current_thread_nice(19).unwrap();
            let mine = rustix::process::getpriority_process(None).unwrap();
            set_current_thread_sched_idle().unwrap();
            // SAFETY: pid 0 is this thread; no pointer argument.
            let policy = unsafe { libc::sched_getscheduler(0) };
            (mine, policy)
        });
        assert_eq!(t.join().unwrap(), (19, libc::SCHED_IDLE));
        // The caller's own priority is untouched.
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }

    #[test]
    fn this_thread_can_be_pinned_to_an_allowed_cpu() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let me = std::thread::spawn(move || pin_current_thread(cpus[0]));
        me.join().unwrap().unwrap();
    }
}
