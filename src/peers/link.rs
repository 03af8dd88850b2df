//! Making sessions: the hello and status lines on connections this process opens to each
//! remote peer (again 5 s after each attempt) and on those it accepts, and the hand-over
//! when a new session with a peer replaces the one before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use super::session::{self, End, Mode};
use super::shared::{Peer, Section, Status, RECONNECT_TIMEOUT};
use super::wire;

/// How long a hello or its status may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection to a peer may take (HAProxy's peers `timeout connect`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads one line (`\n`, an optional `\r` before it dropped) off `stream`, keeping what
/// follows in `buf`.
async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(pos) = buf.iter().position(|c| *c == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
        if buf.len() > 4096 {
            return None;
        }
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Connects to `addr`, sends `hello` (`connected` is told once the connection is made)
/// and reads the status line: the stream, the bytes read past the line, the line.
async fn dial(
    addr: std::net::SocketAddr,
    hello: &str,
    connected: impl FnOnce(),
) -> Option<(TcpStream, Vec<u8>, String)> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = stream.set_nodelay(true);
    connected();
    stream.write_all(hello.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let line = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_line(&mut stream, &mut buf))
        .await
        .ok()??;
    Some((stream, buf, line))
}

/// A small random delay in 50..2050 ms, as HAProxy waits before reconnecting after a
/// collision, so that two peers do not keep replacing each other's sessions.
fn collision_delay() -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    Duration::from_millis(50 + h.finish() % 2000)
}

/// Makes `peer`'s new session the live one, ending the one before: its number and the
/// receiver that tells it when it is replaced in turn.
fn take_over(sec: &Section, peer: &Peer) -> (u64, oneshot::Receiver<()>) {
    let id = sec.session_id();
    let (tx, rx) = oneshot::channel();
    let mut st = peer.state();
    if let Some(old) = st.kill.replace(tx) {
        let _ = old.send(());
        st.collisions += 1;
        st.reconnect_at = Instant::now() + collision_delay();
    }
    st.session = id;
    st.status = Status::Established;
    st.last_hdshk = Some(Instant::now());
    (id, rx)
}

/// Runs session `taken` (from [`take_over`]) with `peer` on `stream` until it ends, and
/// records its end.
#[allow(clippy::too_many_arguments)]
async fn serve(
    sec: &Arc<Section>,
    peer: &Arc<Peer>,
    taken: (u64, oneshot::Receiver<()>),
    stream: TcpStream,
    pending: Vec<u8>,
    stop: watch::Receiver<bool>,
    mode: Mode,
) -> End {
    let (id, kill) = taken;
    let end = session::run(
        sec.clone(),
        peer.clone(),
        id,
        stream,
        pending,
        kill,
        stop,
        mode,
    )
    .await;
    session_over(peer, id, &end);
    end
}

/// Records the end of session `id`.
fn session_over(peer: &Peer, id: u64, end: &End) {
    let mut st = peer.state();
    if st.session == id {
        st.session = 0;
        st.kill = None;
    }
    if *end == End::Replaced {
        st.reconnect_at = st.reconnect_at.max(Instant::now() + collision_delay());
    }
}

/// Keeps a session open to `peer`: connects when there is none and the reconnect time has
/// come, sends the hello, and runs the session when the peer answers 200.
pub async fn connect_loop(sec: Arc<Section>, peer: Arc<Peer>, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = {
            let st = peer.state();
            if st.session != 0 {
                Some(Duration::from_millis(100))
            } else {
                st.reconnect_at.checked_duration_since(Instant::now())
            }
        };
        if let Some(w) = wait.filter(|w| !w.is_zero()) {
            tokio::select! {
                _ = tokio::time::sleep(w.min(Duration::from_millis(500))) => continue,
                _ = stop.changed() => return,
            }
        }
        {
            let mut st = peer.state();
            st.reconnect_at = Instant::now() + RECONNECT_TIMEOUT;
            st.status = Status::Connecting;
            st.new_conn += 1;
        }
        let hello = wire::hello(&peer.name, &sec.local);
        let got = tokio::select! {
            g = dial(peer.addr, &hello, || peer.state().status = Status::Handshake) => g,
            _ = stop.changed() => return,
        };
        let Some((stream, buf, line)) = got else {
            continue;
        };
        let code: u32 = line.trim().parse().unwrap_or(wire::STATUS_ERR_PROTO);
        if code != wire::STATUS_OK {
            tracing::debug!(peer = %peer.name, code, "peer refused the session");
            let mut st = peer.state();
            st.status = Status::Refused(code);
            st.last_hdshk = Some(Instant::now());
            continue;
        }
        // the newest session wins, an incoming one made meanwhile included, as in HAProxy
        let taken = take_over(&sec, &peer);
        let end = serve(&sec, &peer, taken, stream, buf, stop.clone(), Mode::Peer).await;
        if end == End::Stopping {
            return;
        }
    }
}

/// Accepts peers' connections, checks their hello and runs their sessions.
pub async fn accept_loop(sec: Arc<Section>, listener: TcpListener, stop: watch::Receiver<bool>) {
    let mut stop_accept = stop.clone();
    let hellos = Arc::new(tokio::sync::Semaphore::new(3 * (sec.peers.len() + 1) + 2));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop_accept.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            // out of fds and the like: try again shortly rather than spin
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        // hellos under way are few (HAProxy's peers frontend has a small maxconn): more
        // connections are closed at once, so that idle ones cannot take the fds
        let Ok(permit) = hellos.clone().try_acquire_owned() else {
            continue;
        };
        let (sec, stop) = (sec.clone(), stop.clone());
        tokio::spawn(async move {
            incoming(sec, stream, stop, permit).await;
        });
    }
}

/// Checks a hello: the peer it comes from, or the status code to refuse it with.
fn check_hello(sec: &Section, lines: &[String]) -> Result<Arc<Peer>, u32> {
    wire::check_version(&lines[0])?;
    if lines[1] != sec.local {
        return Err(wire::STATUS_ERR_HOST);
    }
    let name = wire::sender_name(&lines[2])?;
    sec.peer(name).cloned().ok_or(wire::STATUS_ERR_PEER)
}

async fn incoming(
    sec: Arc<Section>,
    mut stream: TcpStream,
    stop: watch::Receiver<bool>,
    hello_permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut buf = Vec::new();
    let mut lines = Vec::new();
    let hello = async {
        for _ in 0..3 {
            let l = read_line(&mut stream, &mut buf).await?;
            // a wrong first line is answered at once, as HAProxy checks each line as it comes
            lines.push(l);
            if lines.len() == 1 && wire::check_version(&lines[0]).is_err() {
                break;
            }
            if lines.len() == 2 && lines[1] != sec.local {
                break;
            }
        }
        Some(())
    };
    if tokio::time::timeout(HANDSHAKE_TIMEOUT, hello)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        return;
    }
    while lines.len() < 3 {
        lines.push(String::new());
    }
    let peer = match check_hello(&sec, &lines) {
        Ok(p) => p,
        Err(code) => {
            tracing::debug!(section = %sec.name, ?lines, code, "peer hello refused");
            let _ = stream.write_all(format!("{code}\n").as_bytes()).await;
            return;
        }
    };
    drop(hello_permit);
    let taken = take_over(&sec, &peer);
    if stream
        .write_all(format!("{}\n", wire::STATUS_OK).as_bytes())
        .await
        .is_err()
    {
        session_over(&peer, taken.0, &End::Lost);
        return;
    }
    serve(&sec, &peer, taken, stream, buf, stop, Mode::Peer).await;
}

/// Teaches the process replacing this one every entry: connects to our own address (which
/// that process listens on now), under our own name, as HAProxy's stopping process does,
/// then sends it the local changes until `finish` (this process's last sessions ended).
/// Gives up connecting after [`RECONNECT_TIMEOUT`].
pub async fn hand_over(sec: Arc<Section>, finish: watch::Receiver<bool>) {
    let Some(addr) = sec.listen else {
        return;
    };
    let deadline = Instant::now() + RECONNECT_TIMEOUT;
    let peer = sec.local_peer.clone();
    while Instant::now() < deadline {
        let hello = wire::hello(&sec.local, &sec.local);
        match tokio::time::timeout_at(deadline.into(), dial(addr, &hello, || {})).await {
            Ok(Some((stream, buf, line))) if line.trim() == "200" => {
                let taken = take_over(&sec, &peer);
                let end = serve(
                    &sec,
                    &peer,
                    taken,
                    stream,
                    buf,
                    finish.clone(),
                    Mode::HandOver,
                )
                .await;
                tracing::debug!(section = %sec.name, ?end, "tables handed over");
                return;
            }
            // nobody there yet (or busy): try again shortly
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
