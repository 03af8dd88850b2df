//! One Runtime API connection: HAProxy's protocol on any byte stream.
//!
//! By default one line is read, its `;`-separated commands run, each reply followed by an empty
//! line, then the connection closes. `prompt` switches to interactive mode (`> ` prompt, idle
//! timeout = `stats timeout`) until `quit` or EOF. Lines are bounded; reads and writes time out,
//! so a client that never reads or never writes only ever holds its own task.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::commands::{Executor, SessionState};
use super::parse;
use crate::config::AccessLevel;

/// Longest accepted command line (bytes, newline excluded).
pub const MAX_LINE: usize = 64 * 1024;

/// The reply to a line longer than [`MAX_LINE`] (the connection then closes).
pub const TOO_LONG: &str = "The command is too big for the buffer size. Please change tune.bufsize in the configuration to use a bigger command.\n";

/// Session limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Idle time allowed while waiting for a line, and for each write to complete.
    pub timeout: Duration,
    /// Longest line.
    pub max_line: usize,
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    async fn next(&mut self, max: usize) -> std::io::Result<Line> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                if pos > max {
                    return Ok(Line::TooLong);
                }
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Text(line));
            }
            if self.buf.len() > max {
                return Ok(Line::TooLong);
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(Line::Eof);
                }
                return Ok(Line::Text(std::mem::take(&mut self.buf)));
            }
            let mut chunk = [0u8; 8192];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                self.eof = true;
            } else {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// The line before HAProxy's payload marker (a last word `<<`), when it ends with one.
fn payload_head(line: &str) -> Option<&str> {
    let head = line.trim_end().strip_suffix("<<")?;
    (head.is_empty() || head.ends_with([' ', '\t'])).then_some(head)
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8], limits: &Limits) -> bool {
    if data.is_empty() {
        return true;
    }
    matches!(
        tokio::time::timeout(limits.timeout, w.write_all(data)).await,
        Ok(Ok(()))
    )
}

/// The ring and `-n` of a `show events <ring> -w` the session may run.
fn events_to_follow(
    c: &parse::AdminCommand,
    st: &SessionState,
) -> Option<(Arc<crate::logging::ring::Ring>, bool)> {
    let parse::AdminCommand::ShowEvents(args) = c else {
        return None;
    };
    match super::commands::events_args(args) {
        Ok(Some(ev)) if ev.wait && st.level >= AccessLevel::Operator => {
            Some((ev.ring, ev.new_only))
        }
        _ => None,
    }
}

/// Sends `ring`'s lines from `cursor` on as they come, until the client sends a byte or
/// closes; `false` when the client stopped reading.
async fn follow<R, W>(
    ring: &crate::logging::ring::Ring,
    mut cursor: u64,
    reader: &mut LineReader<R>,
    wr: &mut W,
    limits: &Limits,
) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !reader.buf.is_empty() || reader.eof {
        return true;
    }
    loop {
        let notified = ring.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (lines, lost, _) = ring.read(cursor, 256);
        cursor += lost;
        if let Some((last, _)) = lines.last() {
            cursor = last + 1;
            let mut chunk = String::new();
            for (_, l) in &lines {
                chunk.push_str(l);
                chunk.push('\n');
            }
            if !send(wr, chunk.as_bytes(), limits).await {
                return false;
            }
            continue;
        }
        let mut key = [0u8; 1];
        tokio::select! {
            _ = &mut notified => {}
            _ = reader.inner.read(&mut key) => return true,
        }
    }
}

/// Serves one connection until it ends. Never panics on client input.
pub async fn serve<S>(stream: S, exec: Arc<Executor>, level: AccessLevel, limits: Limits)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut reader = LineReader {
        inner: rd,
        buf: Vec::new(),
        eof: false,
    };
    let mut st = SessionState {
        level,
        interactive: false,
        experimental: false,
    };
    loop {
        let line = match tokio::time::timeout(limits.timeout, reader.next(limits.max_line)).await {
            Ok(Ok(l)) => l,
            Ok(Err(_)) | Err(_) => break,
        };
        let bytes = match line {
            Line::Eof => break,
            Line::TooLong => {
                let _ = send(&mut wr, format!("{TOO_LONG}\n").as_bytes(), &limits).await;
                let _ = wr.shutdown().await;
                // Swallow what the client is still sending (bounded) so closing does not reset
                // the connection before it read the reply.
                let mut sink = [0u8; 8192];
                let mut left = 4 * limits.max_line + 1024 * 1024;
                let drain = async {
                    while left > 0 {
                        match reader.inner.read(&mut sink).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => left = left.saturating_sub(n),
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
                return;
            }
            Line::Text(b) => b,
        };
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        // `<command> <<`: the lines up to an empty one are the last command's payload
        let mut payload = None;
        if let Some(head) = payload_head(&text) {
            text = head.to_string();
            let mut lines = Vec::new();
            let mut size = 0;
            // up to an empty line or the end of input; a payload too big, or a client that
            // stops sending, runs nothing (the command needs all of it)
            let complete = loop {
                match tokio::time::timeout(limits.timeout, reader.next(limits.max_line)).await {
                    Ok(Ok(Line::Text(l))) if !l.is_empty() => {
                        size += l.len() + 1;
                        if size > 16 * limits.max_line {
                            break false;
                        }
                        lines.push(String::from_utf8_lossy(&l).into_owned());
                    }
                    Ok(Ok(Line::Text(_))) => break true,
                    // no empty line before the end: HAProxy runs nothing and says nothing
                    Ok(Ok(Line::Eof)) => return,
                    Ok(Ok(Line::TooLong)) => break false,
                    Ok(Err(_)) | Err(_) => return,
                }
            };
            if !complete {
                let _ = send(&mut wr, format!("{TOO_LONG}\n").as_bytes(), &limits).await;
                let _ = tokio::time::timeout(limits.timeout, wr.shutdown()).await;
                return;
            }
            payload = Some(lines.join("\n"));
        }
        let mut out = String::new();
        let mut close = false;
        let mut ran = false;
        let cmds = parse::split_commands(&text);
        let last = cmds.len().saturating_sub(1);
        for (n, cmd) in cmds.iter().enumerate() {
            let Some(mut c) = parse::parse_command(cmd) else {
                continue;
            };
            if n == last {
                match (&mut c, payload.take()) {
                    (parse::AdminCommand::Patterns(_, _, _, p), Some(data))
                    | (parse::AdminCommand::SslCert(_, _, p), Some(data)) => *p = Some(data),
                    _ => {}
                }
            }
            ran = true;
            // a command a Lua script registered: its reply, or nothing once the CLI timeout
            // passed (the script's error, if any, is logged by the Lua thread)
            if let Some(rx) = exec.extension_call(&c) {
                if let Ok(Ok(text)) = tokio::time::timeout(limits.timeout, rx).await {
                    out.push_str(&text);
                }
                out.push_str(if st.interactive { "\n> " } else { "\n" });
                continue;
            }
            // `show events <ring> -w`: its lines, then the new ones as they come, until the
            // client sends anything or closes ("Any key to stop")
            if let Some((ring, new_only)) = events_to_follow(&c, &st) {
                // what is held (read a batch at a time), then what comes after it
                let cursor = if new_only {
                    ring.next()
                } else {
                    let (held, end) = ring.dump();
                    out.push_str(&held);
                    end
                };
                if !send(&mut wr, out.as_bytes(), &limits).await {
                    return;
                }
                out.clear();
                if !follow(&ring, cursor, &mut reader, &mut wr, &limits).await {
                    return;
                }
                out.push_str(if st.interactive { "\n> " } else { "\n" });
                continue;
            }
            let reply = exec.execute(c, &mut st);
            if reply.close {
                close = true;
                break;
            }
            out.push_str(&reply.text);
            // HAProxy's post-command prompt: LF alone, or LF + "> " in interactive mode.
            out.push_str(if st.interactive { "\n> " } else { "\n" });
        }
        if !ran && !close {
            out.push_str(if st.interactive { "\n> " } else { "\n" });
        }
        if !send(&mut wr, out.as_bytes(), &limits).await {
            return;
        }
        // Non-interactive sessions end once the request buffer is empty (pipelined lines
        // already received still run, as in HAProxy).
        if close || (!st.interactive && reader.buf.is_empty()) {
            break;
        }
    }
    let _ = tokio::time::timeout(limits.timeout, wr.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::InfoHook;

    fn exec() -> Arc<Executor> {
        let (reg, _sub) = crate::testutil::reference_registry();
        let hook: InfoHook = Arc::new(Vec::new);
        Arc::new(Executor::new(reg, hook))
    }

    async fn talk(input: &[u8], level: AccessLevel) -> String {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let limits = Limits {
            timeout: Duration::from_secs(5),
            max_line: 1024,
        };
        let task = tokio::spawn(serve(server, exec(), level, limits));
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        task.await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn one_line_several_commands() {
        let out = talk(b"echo a;echo b\n", AccessLevel::Admin).await;
        assert_eq!(out, "a\n\nb\n\n");
    }

    #[tokio::test]
    async fn prompt_mode() {
        let out = talk(
            b"prompt\necho hi\n\nshow cli level\nquit\necho no\n",
            AccessLevel::Admin,
        )
        .await;
        assert_eq!(out, "\n> hi\n\n> \n> admin\n\n> ");
    }

    #[tokio::test]
    async fn a_payload_ends_at_an_empty_line_and_a_huge_one_runs_nothing() {
        // the reference registry has no map: the command runs and says so, and the line
        // after the payload is a command again
        let out = talk(
            b"prompt\nadd map nosuch.map <<\nk v\n\necho after\n",
            AccessLevel::Admin,
        )
        .await;
        assert_eq!(
            out,
            "\n> Unknown map identifier. Please use #<id> or <file>.\n\n> after\n\n> "
        );
        assert_eq!(payload_head("add map m <<"), Some("add map m "));
        assert_eq!(payload_head("echo a<<"), None);
        let mut big = b"add map nosuch.map <<\n".to_vec();
        for _ in 0..2000 {
            big.extend_from_slice(b"0123456789 0123456789\n");
        }
        let out = talk(&big, AccessLevel::Admin).await;
        assert_eq!(out, format!("{TOO_LONG}\n"));
    }

    #[tokio::test]
    async fn too_long_line_closes() {
        let big = vec![b'a'; 5000];
        let out = talk(&big, AccessLevel::Admin).await;
        assert_eq!(out, format!("{TOO_LONG}\n"));
    }

    #[tokio::test]
    async fn unterminated_last_line_runs() {
        let out = talk(b"echo x", AccessLevel::User).await;
        assert_eq!(out, "x\n\n");
    }

    #[tokio::test]
    async fn user_level_cannot_change() {
        let out = talk(
            b"set server test/webserver1 state maint\n",
            AccessLevel::User,
        )
        .await;
        assert_eq!(out, "Permission denied\n\n");
        let out = talk(b"operator\n", AccessLevel::User).await;
        assert_eq!(out, "Permission denied\n\n");
        let out = talk(b"user;show cli level\n", AccessLevel::Admin).await;
        assert_eq!(out, "\nuser\n\n");
    }
}
