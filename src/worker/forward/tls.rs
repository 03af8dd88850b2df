//! Forwarding where a side speaks TLS: decrypted bytes are copied through the worker's buffer
//! (no splicing: the kernel never sees the plaintext), written to the other side in the clear
//! or encrypted. A direction's end is passed on as HAProxy does: a FIN (with or without
//! `close_notify`) from a TLS side is a FIN to the other; an end towards a TLS side sends
//! `close_notify`, then the FIN.

use std::io::{self, Read};

use super::copy::{write_now, CopyBuf};
use super::{shut_to_tls, Dir, Fault, Side, Timers, TlsEnds};
use crate::sys::Interest;
use crate::worker::runtime::Rt;
use crate::worker::tls::TlsConn;

/// What one read of the source gave.
enum Got {
    /// Bytes; `rest`: what the destination did not take at once (plain destinations).
    Data { rest: Option<Vec<u8>> },
    /// The source's end.
    End,
    /// Nothing now: wait for the source.
    Wait,
}

/// Forwards `dir` to its end (then half-closes the destination) or a fault.
pub(super) async fn pump_tls<R: Rt>(
    dir: &Dir<'_>,
    ends: TlsEnds<'_>,
    timers: &Timers,
    shared: &CopyBuf,
) -> Result<(), Fault> {
    let fs = dir.from_side;
    loop {
        let got = {
            let mut buf = shared.buf.borrow_mut();
            read_once(dir, ends, timers, &mut buf)?
        };
        match got {
            Got::Wait => timers.wait::<R>(dir.from, Interest::Read, fs).await?,
            Got::End => {
                timers.saw_fin(fs);
                if let Some(t) = ends.to {
                    t.close_notify();
                    flush::<R>(t, dir, timers).await?;
                }
                shut_to_tls(dir, timers, ends.to);
                return Ok(());
            }
            Got::Data { rest } => {
                if let Some(t) = ends.to {
                    flush::<R>(t, dir, timers).await?;
                } else if let Some(rest) = rest {
                    super::copy::write_rest::<R>(dir, timers, &rest).await?;
                }
            }
        }
    }
}

/// One read from the source, written on (queued in rustls, or sent as far as the socket
/// takes it) before the shared buffer is let go.
fn read_once(
    dir: &Dir<'_>,
    ends: TlsEnds<'_>,
    timers: &Timers,
    buf: &mut [u8],
) -> Result<Got, Fault> {
    let fs = dir.from_side;
    let r = match ends.from {
        Some(t) => t.read_plain(dir.from, buf),
        None => match (&*dir.from).read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        },
    };
    let n = match r {
        Ok(Some(0)) => return Ok(Got::End),
        Ok(Some(n)) => n,
        Ok(None) => return Ok(Got::Wait),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Got::Data { rest: None }),
        Err(e) => return Err(Fault::Io(fs, e)),
    };
    timers.touch(fs);
    match ends.to {
        Some(t) => {
            t.write_plain(&buf[..n])
                .map_err(|e| Fault::Io(dir.to_side(), e))?;
            dir.delivered(n, false);
            Ok(Got::Data { rest: None })
        }
        None => {
            let sent = write_now(dir, timers, &buf[..n], false)?;
            Ok(Got::Data {
                rest: (sent < n).then(|| buf[sent..n].to_vec()),
            })
        }
    }
}

/// Sends everything rustls holds for the destination, waiting for it to drain.
async fn flush<R: Rt>(t: &TlsConn, dir: &Dir<'_>, timers: &Timers) -> Result<(), Fault> {
    let side: Side = dir.to_side();
    loop {
        match t.flush_now(dir.to) {
            Ok((done, sent)) => {
                if sent > 0 {
                    timers.touch(side);
                }
                if done {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fault::Io(side, e)),
        }
        timers.wait::<R>(dir.to, Interest::Write, side).await?;
    }
}
