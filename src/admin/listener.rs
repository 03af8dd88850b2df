//! Opening `stats socket`s (TCP and unix, with mode/owner) and accepting on the admin thread.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Semaphore};

use super::commands::Executor;
use super::session::{self, Limits};
use super::AdminError;
use crate::config::{AccessLevel, Address, StatsSocket};

/// Most admin connections served at once; extra ones are closed at accept.
pub const MAX_CONNS: usize = 4096;

/// A bound, not yet served, socket.
pub enum Bound {
    /// TCP.
    Tcp(std::net::TcpListener, AccessLevel),
    /// Unix stream socket, with its path (removed at stop).
    Unix(std::os::unix::net::UnixListener, AccessLevel, PathBuf),
}

fn bind_err(addr: &Address, source: std::io::Error) -> AdminError {
    AdminError::Bind {
        addr: addr.to_string(),
        source,
    }
}

/// Looks a user or group name up in `/etc/passwd` or `/etc/group` (numeric ids pass through).
fn lookup_id(db: &str, name: &str) -> std::io::Result<u32> {
    if let Ok(v) = name.parse::<u32>() {
        return Ok(v);
    }
    let text = std::fs::read_to_string(db)?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (n == name).then_some(id)
        })
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("unknown name '{name}' in {db}"),
            )
        })
}

fn bind_unix(path: &Path, s: &StatsSocket) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    // A stale socket from a previous run is replaced, as HAProxy does; any other file is kept.
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if md.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    if let Some(mode) = s.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let uid = s
        .user
        .as_deref()
        .map(|u| lookup_id("/etc/passwd", u))
        .transpose()?;
    let gid = s
        .group
        .as_deref()
        .map(|g| lookup_id("/etc/group", g))
        .transpose()?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid)?;
    }
    Ok(l)
}

/// A TCP stats socket, bound as HAProxy binds its listeners (`SO_REUSEADDR` and
/// `SO_REUSEPORT`): a process replacing this one (`-sf`) binds it before this one lets go.
fn bind_tcp(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Binds every socket now, so errors reach the caller before anything runs.
pub fn bind_all(sockets: &[StatsSocket]) -> Result<Vec<Bound>, AdminError> {
    let mut out = Vec::new();
    for s in sockets {
        let b = match &s.addr {
            Address::Tcp(a) => {
                let l = bind_tcp(*a).map_err(|e| bind_err(&s.addr, e))?;
                Bound::Tcp(l, s.level)
            }
            Address::Unix(p) => {
                let l = bind_unix(p, s).map_err(|e| bind_err(&s.addr, e))?;
                l.set_nonblocking(true).map_err(|e| bind_err(&s.addr, e))?;
                Bound::Unix(l, s.level, p.clone())
            }
        };
        out.push(b);
    }
    Ok(out)
}

/// A listener the admin thread accepts Runtime API connections on (TCP or unix).
trait AdminListener: Send + 'static {
    /// One accepted connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection.
    fn next(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl AdminListener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn next(&self) -> std::io::Result<Self::Stream> {
        let (sock, _) = self.accept().await?;
        // replies are written whole: do not let Nagle hold their last segment
        let _ = sock.set_nodelay(true);
        Ok(sock)
    }
}

impl AdminListener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn next(&self) -> std::io::Result<Self::Stream> {
        Ok(self.accept().await?.0)
    }
}

/// Accepts on `l` forever, one task per connection; beyond [`MAX_CONNS`] connections at once,
/// new ones are closed at accept.
async fn accept_loop<L: AdminListener>(
    l: L,
    exec: Arc<Executor>,
    level: AccessLevel,
    limits: Limits,
    permits: Arc<Semaphore>,
) {
    loop {
        let Ok(sock) = l.next().await else {
            // EMFILE and the like: let connections close before trying again
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let exec = exec.clone();
        tokio::spawn(async move {
            let counted = exec.count_connection();
            session::serve(sock, exec.clone(), level, limits).await;
            drop(counted);
            drop(permit);
        });
    }
}

/// Runs every accept loop until `stop` turns true. Called on the admin thread's runtime.
pub async fn serve_all(
    bound: Vec<Bound>,
    exec: Arc<Executor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNS));
    let mut loops = tokio::task::JoinSet::new();
    for b in bound {
        let (exec, permits) = (exec.clone(), permits.clone());
        let registered = match b {
            Bound::Tcp(l, level) => tokio::net::TcpListener::from_std(l)
                .map(|l| loops.spawn(accept_loop(l, exec, level, limits, permits))),
            Bound::Unix(l, level, _) => tokio::net::UnixListener::from_std(l)
                .map(|l| loops.spawn(accept_loop(l, exec, level, limits, permits))),
        };
        if let Err(e) = registered {
            tracing::error!(error = %e, "stats socket: cannot register listener");
        }
    }
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    loops.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_resolve() {
        assert_eq!(lookup_id("/etc/passwd", "0").unwrap(), 0);
        assert_eq!(lookup_id("/etc/passwd", "root").unwrap(), 0);
        assert_eq!(lookup_id("/etc/group", "root").unwrap(), 0);
        assert!(lookup_id("/etc/group", "no-such-group-harp").is_err());
    }
}
