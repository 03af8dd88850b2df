//! Listening sockets: one per worker per `bind`, with SO_REUSEPORT so the kernel spreads
//! connections over workers without a shared accept queue.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use super::WorkerError;

/// Opens one non-blocking SO_REUSEPORT listener on `addr`.
pub(crate) fn open(addr: SocketAddr, backlog: u32) -> Result<TcpListener, WorkerError> {
    let err = |source| WorkerError::Bind {
        addr: addr.to_string(),
        source,
    };
    let s =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.set_reuse_port(true).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    if addr.is_ipv6() {
        let _ = s.set_only_v6(true);
    }
    s.bind(&addr.into()).map_err(err)?;
    s.listen(backlog.clamp(1, i32::MAX as u32) as i32)
        .map_err(err)?;
    Ok(s.into())
}

/// Opens `n` listeners on `addr`; a port 0 is resolved by the first so all share one port.
pub(crate) fn open_group(
    addr: SocketAddr,
    backlog: u32,
    n: usize,
) -> Result<(SocketAddr, Vec<TcpListener>), WorkerError> {
    let first = open(addr, backlog)?;
    let real = first.local_addr().map_err(|source| WorkerError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let mut v = vec![first];
    for _ in 1..n {
        v.push(open(real, backlog)?);
    }
    Ok((real, v))
}
