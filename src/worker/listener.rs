//! Listening sockets: one per worker per `bind`, with SO_REUSEPORT so the kernel spreads
//! connections over workers without a shared accept queue.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use super::{sockopt, WorkerError};
use crate::config::Keepalive;

/// Opens one non-blocking listener on `addr` (with SO_REUSEPORT when `reuseport`), its accepted
/// sockets getting keepalive `ka` from the first connection on.
pub(crate) fn open(
    addr: SocketAddr,
    backlog: u32,
    reuseport: bool,
    ka: &Keepalive,
) -> Result<TcpListener, WorkerError> {
    let err = |source| WorkerError::Bind {
        addr: addr.to_string(),
        source,
    };
    let s =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    if reuseport {
        s.set_reuse_port(true).map_err(err)?;
    }
    s.set_nonblocking(true).map_err(err)?;
    // accepted sockets inherit TCP_NODELAY from the listener: one setsockopt per bind instead
    // of one per connection
    s.set_nodelay(true).map_err(err)?;
    if let Err(e) = sockopt::keepalive(&s, ka) {
        // as HAProxy: connections are served, without keepalive
        tracing::warn!(%addr, error = %e, "client keepalive not set");
    }
    if addr.is_ipv6() {
        let _ = s.set_only_v6(true);
    }
    s.bind(&addr.into()).map_err(err)?;
    s.listen(backlog.clamp(1, i32::MAX as u32) as i32)
        .map_err(err)?;
    Ok(s.into())
}

/// Opens `n` listeners on `addr`, one per worker. A port 0 cannot use SO_REUSEPORT safely (the
/// kernel may hand out a port another reuseport socket of the same user already has), so it gets
/// one plain socket shared by every worker (`dup`).
pub(crate) fn open_group(
    addr: SocketAddr,
    backlog: u32,
    n: usize,
    ka: &Keepalive,
) -> Result<(SocketAddr, Vec<TcpListener>), WorkerError> {
    let shared = addr.port() == 0;
    let first = open(addr, backlog, !shared, ka)?;
    let err = |source| WorkerError::Bind {
        addr: addr.to_string(),
        source,
    };
    let real = first.local_addr().map_err(err)?;
    let mut v = Vec::with_capacity(n);
    for _ in 1..n {
        v.push(if shared {
            first.try_clone().map_err(err)?
        } else {
            open(real, backlog, true, ka)?
        });
    }
    v.insert(0, first);
    Ok((real, v))
}

/// `tune.rcvbuf.client` / `tune.sndbuf.client`: set on the listening sockets, whose accepted
/// connections inherit them (as HAProxy sets them on its receivers).
pub(crate) fn set_client_bufs(ls: &[TcpListener], bufs: &crate::config::SocketBufs) {
    for l in ls {
        let s = socket2::SockRef::from(l);
        if let Some(n) = bufs.rcv_client {
            let _ = s.set_recv_buffer_size(n as usize);
        }
        if let Some(n) = bufs.snd_client {
            let _ = s.set_send_buffer_size(n as usize);
        }
    }
}
