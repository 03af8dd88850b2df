//! Opens `stats socket`s: TCP (`ipv4@`/`ipv6@`/`ip:port`) or unix paths with `mode`, `user` and
//! `group` applied. Binding happens on the caller's thread so start-up errors are reported.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::AdminError;
use crate::config::{AccessLevel, Address, StatsSocket};

/// A bound, non-blocking listener waiting to be handed to the admin runtime.
#[derive(Debug)]
pub enum Bound {
    /// TCP.
    Tcp(std::net::TcpListener, AccessLevel),
    /// Unix stream socket (the path is removed on stop).
    Unix(std::os::unix::net::UnixListener, PathBuf, AccessLevel),
}

/// Binds one `stats socket` line.
pub fn bind(sock: &StatsSocket) -> Result<Bound, AdminError> {
    let fail = |source: std::io::Error| AdminError::Bind {
        addr: sock.addr.to_string(),
        source,
    };
    match &sock.addr {
        Address::Tcp(a) => {
            let l = tcp_listener(*a).map_err(fail)?;
            Ok(Bound::Tcp(l, sock.level))
        }
        Address::Unix(path) => {
            remove_stale(path);
            let l = std::os::unix::net::UnixListener::bind(path).map_err(fail)?;
            l.set_nonblocking(true).map_err(fail)?;
            if let Some(mode) = sock.mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(fail)?;
            }
            if sock.user.is_some() || sock.group.is_some() {
                let uid = sock
                    .user
                    .as_deref()
                    .map(|u| lookup_id("/etc/passwd", u))
                    .transpose()
                    .map_err(fail)?;
                let gid = sock
                    .group
                    .as_deref()
                    .map(|g| lookup_id("/etc/group", g))
                    .transpose()
                    .map_err(fail)?;
                std::os::unix::fs::chown(path, uid, gid).map_err(fail)?;
            }
            Ok(Bound::Unix(l, path.clone(), sock.level))
        }
    }
}

/// A non-blocking TCP listener with a backlog large enough for bursts of admin connections.
fn tcp_listener(a: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(a), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if a.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&a.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Removes a leftover socket file from a previous run (never a regular file).
fn remove_stale(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A numeric id, or a name looked up in `/etc/passwd` or `/etc/group` (third field).
fn lookup_id(db: &str, name: &str) -> std::io::Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let text = std::fs::read_to_string(db)?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2).and_then(|id| id.parse().ok()))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("unknown user or group '{name}'"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_resolve() {
        assert_eq!(lookup_id("/etc/passwd", "0").unwrap(), 0);
        assert_eq!(lookup_id("/etc/passwd", "root").unwrap(), 0);
        assert_eq!(lookup_id("/etc/group", "root").unwrap(), 0);
        assert!(lookup_id("/etc/passwd", "no-such-user-harp").is_err());
    }

    #[test]
    fn unix_socket_gets_mode_and_stale_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let sock = StatsSocket {
            addr: Address::Unix(path.clone()),
            level: AccessLevel::Admin,
            mode: Some(0o600),
            user: None,
            group: None,
            location: Default::default(),
        };
        let b = bind(&sock).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(b);
        // The file is left behind; binding again replaces it.
        assert!(bind(&sock).is_ok());
    }
}
