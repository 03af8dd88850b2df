//! One agent check run (`agent-check`): connect to the agent, send `agent-send` if any, read
//! one line. The model reads the line; this only fetches it, bounded as HAProxy bounds checks
//! (`inter` for the whole, `timeout connect`/`timeout check` when both are set).

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::probe::{close_silently, open, result, strerror, ProbeSpec};
use crate::model::agent::{first_line, AgentReply};
use crate::model::{CheckResult, CheckStatus};

/// The most an agent may send before its line ends (HAProxy's check buffer).
const MAX_LINE: usize = 16 * 1024;

/// Asks the agent at `spec.addr`; returns its reply and how long it took, in ms.
pub(super) async fn ask(spec: &ProbeSpec, send: Option<&str>) -> (AgentReply, i64) {
    let start = Instant::now();
    let reply = exchange(spec, send, start).await;
    (reply, start.elapsed().as_millis() as i64)
}

async fn exchange(spec: &ProbeSpec, send: Option<&str>, start: Instant) -> AgentReply {
    let failed = |status, info: Option<String>| {
        AgentReply::Failed(CheckResult {
            agent: true,
            ..result(status, start, info, None)
        })
    };
    let connect = tokio::time::timeout_at(
        spec.connect_deadline(start).into(),
        open(spec.addr, spec.source.as_ref()),
    )
    .await;
    let mut stream = match connect {
        // an agent check's rules are not `tcp-check` ones: no step in these texts
        Err(_) => return failed(CheckStatus::L4Tout, None),
        Ok(Err(e)) => return failed(CheckStatus::L4Con, Some(strerror(&e))),
        Ok(Ok(s)) => s,
    };
    let deadline = spec.read_deadline(start, Instant::now());
    let reply = async {
        if let Some(text) = send.filter(|t| !t.is_empty()) {
            if let Err(e) = stream.write_all(text.as_bytes()).await {
                return failed(CheckStatus::SockErr, Some(strerror(&e)));
            }
        }
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(line) = first_line(&buf) {
                return AgentReply::Line(line);
            }
            if buf.len() >= MAX_LINE {
                return AgentReply::Incomplete;
            }
            match stream.read(&mut chunk).await {
                // the rules of an agent check: send (1), expect (2)
                Ok(0) if buf.is_empty() => {
                    return failed(
                        CheckStatus::L7Rsp,
                        Some("TCPCHK got an empty response at step 2".into()),
                    )
                }
                Ok(0) => return AgentReply::Incomplete,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // a network error counts only when nothing came before it
                Err(e) if buf.is_empty() => {
                    return failed(CheckStatus::SockErr, Some(strerror(&e)))
                }
                Err(_) => return AgentReply::Incomplete,
            }
        }
    };
    let reply = match tokio::time::timeout_at(deadline.into(), reply).await {
        Ok(r) => r,
        Err(_) => failed(CheckStatus::L7Tout, None),
    };
    close_silently(stream);
    reply
}
