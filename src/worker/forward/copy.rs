//! Forwarding by copy through the worker's buffer: small messages under `option splice-auto`
//! (a read and a write cost the same syscalls as two splices, without pipes and page
//! references), everything when splicing is off (`no option splice-auto`) or impossible.

use std::cell::RefCell;
use std::io::{self, Read};

use rustix::io::Errno;
use rustix::net::SendFlags;

use super::{finish, Copied, Dir, Fault, ShortReads, Streamer, Timers, SMALL_READ};
use crate::sys::Interest;
use crate::worker::runtime::Rt;

/// Size of a worker's copy buffer: the most one read takes.
const COPY_BUF: usize = 64 * 1024;

/// A worker's copy buffer, shared by all its sessions: a message read into it is written out
/// before the task awaits anything, so no session holds it across a wait. What the destination
/// does not take at once moves to a buffer of the session's own (rare: small messages fit in an
/// idle socket's send buffer).
#[derive(Debug)]
pub(crate) struct CopyBuf {
    pub(super) buf: RefCell<Box<[u8]>>,
}

impl Default for CopyBuf {
    fn default() -> CopyBuf {
        CopyBuf {
            buf: RefCell::new(vec![0u8; COPY_BUF].into_boxed_slice()),
        }
    }
}

/// Copies `dir` until EOF (then half-closes `to`), or with a `streamer` until it says the
/// direction streams (the last read written out); `short`: the direction's short-read state;
/// `wait_first`: wait for readability before the first read.
pub(super) async fn pump_copy<R: Rt>(
    dir: &Dir<'_>,
    timers: &Timers,
    shared: &CopyBuf,
    short: &mut ShortReads,
    wait_first: bool,
    mut streamer: Option<Streamer>,
) -> Result<Copied, Fault> {
    let fs = dir.from_side;
    let mut drained = wait_first;
    loop {
        if drained {
            timers.wait::<R>(dir.from, Interest::Read, fs).await?;
        }
        // read and write without awaiting while the shared buffer is borrowed
        let (rest, end, streams) = {
            let mut buf = shared.buf.borrow_mut();
            // while a streamer watches, read message-sized pieces: a full one means bulk data
            let lim = streamer.as_ref().map_or(buf.len(), |_| SMALL_READ);
            let mut n = match (&*dir.from).read(&mut buf[..lim]) {
                Ok(0) => {
                    finish(dir, timers);
                    return Ok(Copied::Done);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    short.would_block();
                    drained = true;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    drained = false;
                    continue;
                }
                Err(e) => return Err(Fault::Io(fs, e)),
            };
            drained = short.drained(n, lim);
            let now = timers.touch(fs);
            // A server's short answer is often followed at once by its FIN (close after the
            // response), which `ShortReads` retries for anyway: retried before the write, a FIN
            // found there leaves with the data in one segment, and the client wakes once.
            let mut end = None;
            if short.retry_now() && n < lim {
                let r = (&*dir.from).read(&mut buf[n..lim]);
                let (m, e) = short.after_retry(r, lim - n, &mut drained);
                n += m;
                end = e;
            }
            let streams = streamer.as_mut().is_some_and(|s| s.read(n, n == lim, now));
            let last = matches!(end, Some(Ok(())));
            if last {
                timers.saw_fin(fs);
            }
            let sent = write_now(dir, timers, &buf[..n], last)?;
            ((sent < n).then(|| buf[sent..n].to_vec()), end, streams)
        };
        if let Some(rest) = rest {
            write_rest::<R>(dir, timers, &rest).await?;
        }
        match end {
            Some(Ok(())) => {
                finish(dir, timers);
                return Ok(Copied::Done);
            }
            Some(Err(e)) => return Err(Fault::Io(fs, e)),
            None if streams => return Ok(Copied::Streams { drained }),
            None => {}
        }
    }
}

/// Writes what `to` takes without waiting; returns how much that was. `last`: the source said
/// EOF after this data, and the half-close follows at once: `MSG_MORE` holds the data back so
/// that the FIN rides in its segment (shutdown/close pushes it out).
pub(super) fn write_now(
    dir: &Dir<'_>,
    timers: &Timers,
    data: &[u8],
    last: bool,
) -> Result<usize, Fault> {
    let flags = if last {
        SendFlags::NOSIGNAL | SendFlags::MORE
    } else {
        SendFlags::NOSIGNAL
    };
    let mut off = 0;
    while off < data.len() {
        match rustix::net::send(dir.to, &data[off..], flags) {
            Ok(m) => {
                off += m;
                dir.delivered(m, false);
                timers.touch(dir.to_side());
            }
            Err(Errno::AGAIN) => break,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Fault::Io(dir.to_side(), e.into())),
        }
    }
    Ok(off)
}

/// Writes all of `data`, waiting for `to` to drain as needed.
pub(super) async fn write_rest<R: Rt>(
    dir: &Dir<'_>,
    timers: &Timers,
    data: &[u8],
) -> Result<(), Fault> {
    let mut off = 0;
    while off < data.len() {
        timers
            .wait::<R>(dir.to, Interest::Write, dir.to_side())
            .await?;
        off += write_now(dir, timers, &data[off..], false)?;
    }
    Ok(())
}
