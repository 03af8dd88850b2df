//! One Runtime API connection: reads bounded lines, runs their `;`-separated commands, ends each
//! reply with an empty line (`\n> ` in interactive mode), closes after one line unless `prompt`.
//! Every read and write has a deadline (`stats timeout`), so a silent or non-reading client only
//! holds its own task.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::commands::{execute, Next, SessionCtx};
use super::parse::{parse, split_line};
use super::InfoHook;
use crate::config::AccessLevel;
use crate::model::Registry;

/// Longest accepted command line; longer input gets an error and the connection closes.
pub const MAX_LINE: usize = 64 * 1024;

/// Most concurrent sessions; extra connections are closed at once.
pub const MAX_SESSIONS: usize = 4096;

/// What every session shares.
pub struct Shared {
    /// The model.
    pub reg: Arc<Registry>,
    /// Extra `show info` lines.
    pub info: InfoHook,
    /// Idle and write timeout.
    pub timeout: Duration,
    /// Live sessions.
    pub sessions: AtomicUsize,
}

/// Decrements the session count when a session ends, however it ends.
pub struct SessionGuard(pub Arc<Shared>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reserves a session slot, or `None` when [`MAX_SESSIONS`] are live.
pub fn admit(shared: &Arc<Shared>) -> Option<SessionGuard> {
    let n = shared.sessions.fetch_add(1, Ordering::Relaxed);
    let g = SessionGuard(shared.clone());
    if n >= MAX_SESSIONS {
        return None;
    }
    Some(g)
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, data: &[u8], t: Duration) -> bool {
    matches!(tokio::time::timeout(t, s.write_all(data)).await, Ok(Ok(())))
}

/// Serves one connection until it closes, quits, times out or misbehaves.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: Arc<Shared>,
    level: AccessLevel,
) {
    let t = shared.timeout;
    let mut ctx = SessionCtx { level };
    let mut interactive = false;
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    let mut eof = false;
    loop {
        // Read until a full line is buffered (or EOF).
        let line = loop {
            if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let rest = buf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut buf, rest);
                line.pop();
                break Some(line);
            }
            if buf.len() > MAX_LINE {
                let _ = send(&mut stream, b"Command line too long.\n\n", t).await;
                return;
            }
            if eof {
                break if buf.is_empty() {
                    None
                } else {
                    Some(std::mem::take(&mut buf))
                };
            }
            match tokio::time::timeout(t, stream.read(&mut chunk)).await {
                Ok(Ok(0)) => eof = true,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let Some(line) = line else { return };
        let mut out = String::new();
        let mut quit = false;
        let cmds = split_line(&line);
        if cmds.iter().all(|c| c.is_empty()) {
            if interactive && !send(&mut stream, b"\n> ", t).await {
                return;
            }
            if interactive && !eof {
                continue;
            }
            let _ = tokio::time::timeout(t, stream.shutdown()).await;
            return;
        }
        for words in cmds.into_iter().filter(|c| !c.is_empty()) {
            let (reply, next) = execute(&shared.reg, &shared.info, &mut ctx, parse(&words));
            out.push_str(&reply);
            match next {
                Next::Continue => {}
                Next::TogglePrompt => interactive = !interactive,
                Next::Quit => {
                    quit = true;
                    break;
                }
            }
            out.push_str(if interactive { "\n> " } else { "\n" });
        }
        if !out.is_empty() && !send(&mut stream, out.as_bytes(), t).await {
            return;
        }
        if quit || !interactive || eof {
            let _ = tokio::time::timeout(t, stream.shutdown()).await;
            return;
        }
    }
}
