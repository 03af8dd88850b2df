//! TCP keepalive on one side of a proxy's sessions (`option clitcpka|srvtcpka|tcpka`,
//! `*tcpka-idle|-intvl|-cnt`). Set on the listener for the client side (accepted sockets inherit
//! it: no syscall per connection) and on each new server socket for the server side.

use std::io;

use socket2::{SockRef, TcpKeepalive};

use crate::config::Keepalive;

/// Applies `ka` to `sock`; nothing is done (no syscall) when keepalive is off.
pub(crate) fn keepalive<'s>(sock: impl Into<SockRef<'s>>, ka: &Keepalive) -> io::Result<()> {
    if !ka.on {
        return Ok(());
    }
    let mut p = TcpKeepalive::new();
    if let Some(t) = ka.idle {
        p = p.with_time(t);
    }
    if let Some(t) = ka.intvl {
        p = p.with_interval(t);
    }
    if let Some(n) = ka.cnt {
        p = p.with_retries(n);
    }
    sock.into().set_tcp_keepalive(&p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn accepted_sockets_inherit_the_listeners_keepalive() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let ka = Keepalive {
            on: true,
            idle: Some(Duration::from_secs(7)),
            intvl: Some(Duration::from_secs(3)),
            cnt: Some(4),
        };
        keepalive(&l, &ka).unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        let s = SockRef::from(&a);
        assert!(s.keepalive().unwrap());
        assert_eq!(s.keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(s.keepalive_interval().unwrap(), Duration::from_secs(3));
        assert_eq!(s.keepalive_retries().unwrap(), 4);
    }

    #[test]
    fn nothing_asked_nothing_set() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        keepalive(&l, &Keepalive::default()).unwrap();
        assert!(!SockRef::from(&l).keepalive().unwrap());
    }
}
