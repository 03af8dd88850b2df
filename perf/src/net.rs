//! Small blocking-socket helpers shared by the load scenarios. Every call is bounded by a deadline
//! so that a proxy which stalls or never forwards makes a run fail fast instead of hanging.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How long one blocking socket call may wait before the caller re-checks its deadline; short so
/// that threads notice the end of a run quickly, long enough not to cost CPU.
pub const POLL_SLICE: Duration = Duration::from_millis(100);

/// Parses "10s", "250ms", "2m", "1.5" (seconds) so every duration on the command line reads the
/// same way as in the scripts' environment knobs.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 0.000_001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad duration {s:?} (use 10s, 250ms, 2m)"))?;
    if !v.is_finite() || v < 0.0 || v * mult > 86_400.0 {
        bail!("duration {s:?} out of range");
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Refuses anything but loopback: this tool generates heavy load and must never point at a
/// machine it does not own.
pub fn loopback_addr(s: &str) -> Result<SocketAddr> {
    let addr: SocketAddr = s
        .trim()
        .parse()
        .with_context(|| format!("bad address {s:?} (want 127.0.0.1:PORT)"))?;
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address; harp-perf only talks to 127.0.0.1 / ::1");
    }
    Ok(addr)
}

/// Connects with a timeout and sets the options every scenario wants: no Nagle delay (small
/// request/response messages) and short I/O timeouts so loops can watch their deadline.
pub fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(POLL_SLICE))?;
    s.set_write_timeout(Some(POLL_SLICE))?;
    Ok(s)
}

/// Connect for the connection-rate loop, with as few syscalls as possible: a blocking connect
/// bounded by SO_SNDTIMEO (Linux applies it to connect) instead of connect_timeout's
/// non-blocking connect + poll + fcntl dance, and no TCP_NODELAY (one small write per
/// connection is never held back by Nagle). Keeps the client's cost per connection low so it
/// does not cap the proxies it measures.
pub fn connect_lean(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_write_timeout(Some(timeout))?;
    s.set_read_timeout(Some(POLL_SLICE))?;
    s.connect(&addr.into())?;
    Ok(s.into())
}

/// True for the errors a socket timeout produces; those mean "check the deadline and retry".
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Writes the whole buffer or fails once `deadline` passes.
pub fn write_all_until(s: &mut impl Write, mut buf: &[u8], deadline: Instant) -> Result<()> {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => bail!("peer closed while writing"),
            Ok(n) => buf = &buf[n..],
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= deadline {
                    bail!("write timed out");
                }
            }
            Err(e) => return Err(anyhow!(e).context("write")),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes or fails once `deadline` passes or the peer closes.
pub fn read_exact_until(s: &mut impl Read, buf: &mut [u8], deadline: Instant) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => bail!("peer closed after {got} of {} bytes", buf.len()),
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= deadline {
                    bail!("read timed out after {got} of {} bytes", buf.len());
                }
            }
            Err(e) => return Err(anyhow!(e).context("read")),
        }
    }
    Ok(())
}

/// Waits for the peer's FIN; any further data is an error (the peer answered too much).
pub fn read_eof_until(s: &mut impl Read, deadline: Instant) -> Result<()> {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Ok(()),
            Ok(n) => bail!("{n} unexpected bytes after the response"),
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= deadline {
                    bail!("server did not close");
                }
            }
            Err(e) => return Err(anyhow!(e).context("read")),
        }
    }
}

/// Asks the kernel for a port that is free right now, for scripts that must write a proxy config
/// before starting it.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts connections on `addr`, so a script knows a proxy is up without
/// sleeping a fixed time.
pub fn wait_port(addr: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("nothing listens on {addr} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("1.5").ok(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn only_loopback() {
        assert!(loopback_addr("127.0.0.1:80").is_ok());
        assert!(loopback_addr("[::1]:80").is_ok());
        assert!(loopback_addr("10.0.0.1:80").is_err());
    }
}
