//! One established session with a peer, either side having connected: table definitions
//! and updates both ways, acknowledgements, the resync lesson (learning it, or teaching
//! it), heartbeats. The socket is driven without blocking in either direction, so that two
//! peers teaching each other large tables never wait on each other's full buffers.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

use super::shared::{update_of, Peer, Section, HEARTBEAT, RECONNECT_TIMEOUT};
use super::update::{Dict, Update};
use super::wire::{self, Define, Frame, Parsed};

/// Bytes queued for the peer past which no more updates are prepared until they leave.
const OUT_HIGH: usize = 64 * 1024;
/// Updates prepared per table and round (HAProxy's `tune.peers.max-updates-at-once`).
const BATCH: usize = 200;

/// What a table looks like from this session.
#[derive(Debug, Default, Clone)]
struct TableCursor {
    /// Our last change sent (or acknowledged in an earlier session).
    last_pushed: u64,
    /// The last update id received from the peer for this table, and the last we acked.
    last_get: u32,
    last_acked: u32,
    /// The teaching walk's position and end, when a lesson is under way.
    teach: Option<(u64, u64)>,
}

/// Why a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The peer closed, went silent, or the socket failed.
    Lost,
    /// Another session with the same peer replaced it.
    Replaced,
    /// The peer broke the protocol.
    Protocol,
    /// The peer sent a message larger than a buffer.
    TooLarge,
    /// harp is stopping.
    Stopping,
}

/// How a session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// With a peer (either side connected): lessons when asked, updates both ways.
    Peer,
    /// This process is stopping and teaches the process replacing it everything, then
    /// goes on sending its local changes (its last sessions end meanwhile) until told to
    /// finish (`stop`), as HAProxy's stopping process does.
    HandOver,
}

/// Runs a session until it ends. `pending` holds bytes read past the handshake.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    sec: Arc<Section>,
    peer: Arc<Peer>,
    id: u64,
    stream: TcpStream,
    pending: Vec<u8>,
    kill: oneshot::Receiver<()>,
    mut stop: watch::Receiver<bool>,
    mode: Mode,
) -> End {
    let mut s = Session::new(&sec, &peer, id, mode);
    s.inbuf = pending;
    let mut kill = kill;
    let mut changed = sec.changed.clone();
    changed.mark_changed();
    // something goes at once (a heartbeat when nothing else does): HAProxy's liveness
    // timer carries over from the session before, and may be nearly run out
    let mut next_heartbeat = tokio::time::Instant::now();
    let mut rx_deadline = tokio::time::Instant::now() + RECONNECT_TIMEOUT;
    // a hand-over told to finish: until when it may still send what is left
    let mut finishing: Option<tokio::time::Instant> = None;
    let end = loop {
        if let Err(e) = s.handle_input() {
            break e;
        }
        s.produce();
        s.publish();
        if let Some(until) = finishing {
            let done = s.confirmed && s.out.is_empty() && s.caught_up();
            if done || tokio::time::Instant::now() >= until {
                break End::Stopping;
            }
        }
        if !s.out.is_empty() {
            next_heartbeat = tokio::time::Instant::now() + HEARTBEAT;
        }
        let want_write = !s.out.is_empty();
        let finish_by = finishing.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            _ = &mut kill => break End::Replaced,
            _ = stop.changed(), if finishing.is_none() => {
                if mode != Mode::HandOver {
                    break End::Stopping;
                }
                // the last local changes still go, a moment at most
                finishing = Some(tokio::time::Instant::now() + std::time::Duration::from_secs(2));
            }
            _ = tokio::time::sleep_until(finish_by), if finishing.is_some() => {}
            r = stream.readable() => {
                if r.is_err() {
                    break End::Lost;
                }
                match read_some(&stream, &mut s.inbuf) {
                    Ok(0) => break End::Lost,
                    Ok(_) => rx_deadline = tokio::time::Instant::now() + RECONNECT_TIMEOUT,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break End::Lost,
                }
            }
            r = stream.writable(), if want_write => {
                if r.is_err() {
                    break End::Lost;
                }
                match stream.try_write(&s.out) {
                    Ok(n) => { s.out.drain(..n); }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break End::Lost,
                }
            }
            r = changed.changed() => {
                if r.is_err() {
                    break End::Stopping;
                }
            }
            _ = tokio::time::sleep_until(next_heartbeat) => {
                s.out.extend_from_slice(&[wire::CLASS_CONTROL, wire::CTRL_HEARTBEAT]);
                peer.state().tx_hbt += 1;
                next_heartbeat = tokio::time::Instant::now() + HEARTBEAT;
            }
            _ = tokio::time::sleep_until(rx_deadline) => break End::Lost,
        }
    };
    let why = match end {
        End::Protocol => Some(wire::ERR_PROTO),
        End::TooLarge => Some(wire::ERR_SIZE),
        _ => None,
    };
    if let Some(code) = why {
        // tell it why, as HAProxy does, after what was queued
        use tokio::io::AsyncWriteExt;
        s.out.extend_from_slice(&[wire::CLASS_ERROR, code]);
        let mut stream = stream;
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            stream.write_all(&s.out),
        )
        .await;
        if code == wire::ERR_PROTO {
            peer.state().proto_err += 1;
        }
    }
    sec.lesson_over(id, None);
    tracing::debug!(section = %sec.name, peer = %peer.name, ?end, "peer session ended");
    end
}

fn read_some(stream: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match stream.try_read(&mut chunk) {
            Ok(0) if total == 0 => return Ok(0),
            Ok(0) => return Ok(total),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                total += n;
                if buf.len() > 1 << 20 {
                    return Ok(total);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && total > 0 => return Ok(total),
            Err(e) => return Err(e),
        }
    }
}

struct Session<'a> {
    sec: &'a Section,
    peer: &'a Peer,
    id: u64,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    tables: Vec<TableCursor>,
    /// The peer's table definitions by its ids, with our table's index.
    remote: HashMap<u64, (Define, usize)>,
    /// The peer's current table (its id), set by a definition or a switch.
    current: Option<u64>,
    /// The last table we sent a definition for (ours, by index).
    last_defined: Option<usize>,
    /// We asked this peer for a lesson and it has not ended.
    learning: bool,
    /// The peer asked us for a lesson and it is under way.
    teaching: bool,
    /// Confirmations owed for lessons received.
    confirms: u32,
    mode: Mode,
    /// In a hand-over, the lesson was confirmed.
    confirmed: bool,
    dict_tx: Dict,
    dict_rx: Dict,
}

impl<'a> Session<'a> {
    fn new(sec: &'a Section, peer: &'a Peer, id: u64, mode: Mode) -> Session<'a> {
        let acked = peer.state().acked.clone();
        let tables = acked
            .iter()
            .map(|a| TableCursor {
                last_pushed: *a,
                ..Default::default()
            })
            .collect();
        let mut s = Session {
            sec,
            peer,
            id,
            inbuf: Vec::new(),
            out: Vec::new(),
            tables,
            remote: HashMap::new(),
            current: None,
            last_defined: None,
            learning: false,
            teaching: false,
            confirms: 0,
            mode,
            confirmed: false,
            dict_tx: Dict::default(),
            dict_rx: Dict::default(),
        };
        if mode == Mode::HandOver {
            // the lesson starts unasked, as HAProxy's old process gives it
            s.start_lesson();
        }
        s
    }

    /// Asks this session's peer for the lesson when this process still wants one and no
    /// other session gives it (checked at every turn: the wish comes back when a lesson
    /// fails or the old process never came).
    fn maybe_learn(&mut self) {
        if self.mode != Mode::Peer || self.learning {
            return;
        }
        let up_to_date = !self.peer.state().not_up_to_date;
        if self.sec.assign(self.id, self.peer, up_to_date) {
            self.learning = true;
            // the old process teaches unasked; a remote peer is asked
            if !std::ptr::eq(self.peer, &*self.sec.local_peer) {
                self.out
                    .extend_from_slice(&[wire::CLASS_CONTROL, wire::CTRL_RESYNC_REQ]);
            }
        }
    }

    /// Whether every local change was queued for the peer.
    fn caught_up(&self) -> bool {
        self.tables
            .iter()
            .zip(&self.sec.tables)
            .all(|(c, t)| c.last_pushed >= t.table.last_change())
    }

    /// Starts teaching every entry of every table.
    fn start_lesson(&mut self) {
        let ends: Vec<u64> = self
            .sec
            .tables
            .iter()
            .map(|t| t.table.last_change())
            .collect();
        for (c, end) in self.tables.iter_mut().zip(ends) {
            c.teach = Some((0, end));
        }
        self.teaching = true;
    }

    /// Shows the tables' cursors to `show peers`.
    fn publish(&self) {
        let mut st = self.peer.state();
        for (i, (c, v)) in self.tables.iter().zip(st.cursors.iter_mut()).enumerate() {
            let remote = self.remote.iter().find(|(_, (_, idx))| *idx == i);
            v.remote_id = remote.map_or(0, |(id, _)| *id);
            v.remote_data = remote.map_or(0, |(_, (d, _))| d.data);
            v.last_acked = c.last_acked;
            v.last_pushed = c.last_pushed;
            v.last_get = c.last_get;
        }
    }

    /// Handles every whole message received.
    fn handle_input(&mut self) -> Result<(), End> {
        let mut used = 0;
        let buf = std::mem::take(&mut self.inbuf);
        let r = loop {
            match wire::parse_frame(&buf[used..]) {
                Ok(Parsed::Partial) => break Ok(()),
                Ok(Parsed::TooLarge) => break Err(End::TooLarge),
                Err(_) => break Err(End::Protocol),
                Ok(Parsed::Frame(f, n)) => {
                    used += n;
                    if let Err(e) = self.handle(&f) {
                        break Err(e);
                    }
                }
            }
        };
        self.inbuf = buf;
        self.inbuf.drain(..used);
        r
    }

    fn handle(&mut self, f: &Frame<'_>) -> Result<(), End> {
        match (f.class, f.kind) {
            (wire::CLASS_CONTROL, wire::CTRL_RESYNC_REQ) => self.start_lesson(),
            (wire::CLASS_CONTROL, k @ (wire::CTRL_RESYNC_FINISHED | wire::CTRL_RESYNC_PARTIAL)) => {
                if self.learning {
                    self.learning = false;
                    let complete = k == wire::CTRL_RESYNC_FINISHED;
                    if !complete {
                        self.peer.state().not_up_to_date = true;
                    }
                    self.sec.lesson_over(self.id, Some(complete));
                }
                self.confirms += 1;
            }
            (wire::CLASS_CONTROL, wire::CTRL_RESYNC_CONFIRM) => self.confirmed = true,
            (wire::CLASS_CONTROL, wire::CTRL_HEARTBEAT) => self.peer.state().rx_hbt += 1,
            (wire::CLASS_RESERVED, _) => return Err(End::Protocol),
            (wire::CLASS_TABLE, wire::STKT_DEFINE) => {
                let d = Define::decode(f.body).map_err(|_| End::Protocol)?;
                self.remote.retain(|id, _| *id != d.id);
                self.current = None;
                if let Some(i) = self.sec.tables.iter().position(|t| t.matches(&d)) {
                    // one id per table of ours: an older definition of it goes
                    self.remote.retain(|_, (_, idx)| *idx != i);
                    let id = d.id;
                    self.remote.insert(id, (d, i));
                    self.current = Some(id);
                }
            }
            (wire::CLASS_TABLE, wire::STKT_SWITCH) => {
                let id = wire::Reader::new(f.body)
                    .varint()
                    .map_err(|_| End::Protocol)?;
                self.current = self.remote.contains_key(&id).then_some(id);
            }
            (
                wire::CLASS_TABLE,
                k @ (wire::STKT_UPDATE
                | wire::STKT_INCUPDATE
                | wire::STKT_UPDATE_TIMED
                | wire::STKT_INCUPDATE_TIMED),
            ) => {
                let Some((def, idx)) = self.current.and_then(|c| self.remote.get(&c)) else {
                    return Ok(());
                };
                let idx = *idx;
                let st = &self.sec.tables[idx];
                let u = Update::decode(k, f.body, def, st.table.config.key, &mut self.dict_rx)
                    .map_err(|_| End::Protocol)?;
                let c = &mut self.tables[idx];
                c.last_get = u.id.unwrap_or_else(|| c.last_get.wrapping_add(1));
                st.table
                    .learn(&u.key, u.expire.map(u64::from), |en, schema, now| {
                        super::shared::apply(&mut en.values, schema, now, &u.values)
                    });
            }
            (wire::CLASS_TABLE, wire::STKT_ACK) => {
                if self.teaching {
                    return Ok(());
                }
                let mut r = wire::Reader::new(f.body);
                let table = r.varint().map_err(|_| End::Protocol)?;
                let upd = r.u32().map_err(|_| End::Protocol)?;
                let Some(i) = (table as usize)
                    .checked_sub(1)
                    .filter(|i| *i < self.tables.len())
                else {
                    return Ok(());
                };
                let last = self.sec.tables[i].table.last_change();
                // our numbers are 64-bit: the acked one is the latest with these low bits
                let mut seq = (last & !0xffff_ffff) | u64::from(upd);
                if seq > last {
                    seq = seq.saturating_sub(1 << 32);
                }
                self.peer.state().acked[i] = seq;
            }
            // errors and unknown messages are ignored, as HAProxy does
            _ => {}
        }
        Ok(())
    }

    /// Queues what is owed to the peer: acknowledgements, the lesson, local changes, the end
    /// of the lesson and confirmations, while the output stays under its high mark.
    fn produce(&mut self) {
        self.maybe_learn();
        for (i, c) in self.tables.iter_mut().enumerate() {
            if c.last_get != c.last_acked {
                if let Some((rid, _)) = self.remote.iter().find(|(_, (_, idx))| *idx == i) {
                    let mut b = Vec::new();
                    wire::put_varint(&mut b, *rid);
                    b.extend_from_slice(&c.last_get.to_be_bytes());
                    self.out
                        .extend(wire::frame(wire::CLASS_TABLE, wire::STKT_ACK, &b));
                }
                c.last_acked = c.last_get;
            }
        }
        if self.teaching {
            for i in 0..self.tables.len() {
                while let Some((from, end)) = self.tables[i].teach {
                    if self.out.len() >= OUT_HIGH {
                        return;
                    }
                    let next = self.push(i, from, Some(end), true);
                    if next >= end || next == from {
                        self.tables[i].teach = None;
                        let c = &mut self.tables[i];
                        c.last_pushed = c.last_pushed.max(end);
                    } else {
                        self.tables[i].teach = Some((next, end));
                    }
                }
            }
            let k = if self.sec.resync_done() {
                wire::CTRL_RESYNC_FINISHED
            } else {
                wire::CTRL_RESYNC_PARTIAL
            };
            self.out.extend_from_slice(&[wire::CLASS_CONTROL, k]);
            self.teaching = false;
        }
        if !self.learning {
            for i in 0..self.tables.len() {
                loop {
                    if self.out.len() >= OUT_HIGH {
                        return;
                    }
                    let from = self.tables[i].last_pushed;
                    if from >= self.sec.tables[i].table.last_change() {
                        break;
                    }
                    let next = self.push(i, from, None, false);
                    self.tables[i].last_pushed = next;
                    if next == from {
                        break;
                    }
                }
            }
        }
        while self.confirms > 0 {
            self.out
                .extend_from_slice(&[wire::CLASS_CONTROL, wire::CTRL_RESYNC_CONFIRM]);
            self.confirms -= 1;
        }
    }

    /// Queues the updates of table `i` changed after `from` (up to `end` when given): every
    /// entry with its remaining life when `lesson`, else the local changes. Returns the last
    /// change looked at.
    fn push(&mut self, i: usize, from: u64, end: Option<u64>, lesson: bool) -> u64 {
        let st = &self.sec.tables[i];
        let mut updates = Vec::new();
        let key_type = st.table.config.key;
        let timed = lesson && st.table.config.expire.is_some();
        let last = st
            .table
            .changes(from, BATCH, lesson, |seq, key, en, schema, now, life| {
                if end.is_some_and(|e| seq > e) {
                    return;
                }
                updates.push(update_of(
                    seq,
                    key,
                    &en.values,
                    schema,
                    now,
                    timed.then_some(life),
                ));
            });
        let last = end.map_or(last, |e| last.min(e));
        if updates.is_empty() {
            return last;
        }
        if self.last_defined != Some(i) {
            let body = st.define.encode();
            self.out
                .extend(wire::frame(wire::CLASS_TABLE, wire::STKT_DEFINE, &body));
            self.last_defined = Some(i);
        }
        let mut prev: Option<u32> = None;
        for u in updates {
            let id = u.id.unwrap_or(0);
            // the id goes when it is not the previous one plus one, as HAProxy sends it
            let with_id = lesson || prev.map_or(true, |p| p.wrapping_add(1) != id);
            let (kind, body) = u.encode(key_type, with_id, &mut self.dict_tx);
            self.out.extend(wire::frame(wire::CLASS_TABLE, kind, &body));
            prev = Some(id);
        }
        last
    }
}
