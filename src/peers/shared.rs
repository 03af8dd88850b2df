//! What the sessions of one `peers` section share: its tables, its remote peers (each with
//! at most one live session and what it acknowledged), and whether this process still has
//! to learn the tables from a peer (the resync after a start).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::update::{Update, WireValue};
use super::wire::{key_wire, wire_id, Define};
use crate::stick::data::{FreqCtr, Stored};
use crate::stick::{DataType, Key, Schema, Table};

/// How long a start waits for a peer to teach it before it stops waiting (HAProxy's
/// `PEER_RESYNC_TIMEOUT`).
pub const RESYNC_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after a connection attempt the next one may start (`PEER_RECONNECT_TIMEOUT`),
/// and how long a session lives without hearing from its peer.
pub const RECONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle session says it is alive (`PEER_HEARTBEAT_TIMEOUT`).
pub const HEARTBEAT: Duration = Duration::from_secs(3);

/// One shared table.
pub struct SharedTable {
    /// The table.
    pub table: Arc<Table>,
    /// How it is defined to peers (its id is its place in the section, from 1).
    pub define: Define,
}

impl SharedTable {
    /// Describes `table` as HAProxy defines it to peers, with id `id`, named `name` there.
    pub fn new(table: Arc<Table>, id: u64, name: &str) -> SharedTable {
        let c = &table.config;
        let (key_type, key_size) = key_wire(c.key);
        let mut data = 0u64;
        let mut params = Vec::new();
        for (t, period) in c.schema.types() {
            let w = wire_id(*t);
            data |= 1u64 << w;
            if t.is_rate() {
                params.push((u64::from(w), vec![*period]));
            }
        }
        let define = Define {
            id,
            name: name.as_bytes().to_vec(),
            key_type,
            key_size,
            data,
            expire: Some(c.expire.map_or(0, |d| d.as_millis() as u64)),
            params,
        };
        SharedTable { table, define }
    }

    /// Whether a peer's definition describes this table (same name, key type and size).
    pub fn matches(&self, d: &Define) -> bool {
        d.name == self.define.name
            && d.key_type == self.define.key_type
            && d.key_size == self.define.key_size
    }
}

/// The update message values of an entry, in the table's type order.
pub fn values_of(values: &[Stored], schema: &Schema, now: u64) -> Vec<(u32, WireValue)> {
    schema
        .types()
        .iter()
        .zip(values)
        .map(|((t, _), v)| {
            let w = match v {
                Stored::Count(n) if *t == DataType::ServerId => {
                    // a signed int, sign-extended as HAProxy's intencode((int)v) does
                    WireValue::Int(i64::from(*n as u32 as i32) as u64)
                }
                Stored::Count(n) => WireValue::Int(*n),
                Stored::Rate(f, _) => {
                    let (tick, curr, prev) = f.parts();
                    WireValue::Freq {
                        age: u64::from(now.saturating_sub(tick) as u32),
                        curr,
                        prev,
                    }
                }
                Stored::Text(s) => WireValue::Text(s.as_ref().map(|s| s.to_string())),
            };
            (wire_id(*t), w)
        })
        .collect()
}

/// Applies the values of a received update to an entry: the types both sides store.
pub fn apply(values: &mut [Stored], schema: &Schema, now: u64, got: &[(u32, WireValue)]) {
    for (w, v) in got {
        let Some(t) = super::wire::type_of_wire(*w) else {
            continue;
        };
        let Some(slot) = schema.slot(t).and_then(|i| values.get_mut(i)) else {
            continue;
        };
        match (slot, v) {
            (Stored::Count(c), WireValue::Int(n)) => {
                *c = if t.is_wide() { *n } else { *n as u32 as u64 };
            }
            (Stored::Rate(f, _), WireValue::Freq { age, curr, prev }) => {
                *f = FreqCtr::from_parts(now.saturating_sub(*age), *curr, *prev);
            }
            (Stored::Text(s), WireValue::Text(name)) => {
                *s = name.as_deref().map(Arc::from);
            }
            _ => {}
        }
    }
}

/// Builds the update of one entry.
pub fn update_of(
    seq: u64,
    key: &Key,
    values: &[Stored],
    schema: &Schema,
    now: u64,
    life: Option<u64>,
) -> Update {
    Update {
        id: Some(seq as u32),
        expire: life.map(|l| l.min(u64::from(u32::MAX)) as u32),
        key: key.clone(),
        values: values_of(values, schema, now),
    }
}

/// A remote peer's session status, as `show peers` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Never tried.
    None,
    /// Connecting.
    Connecting,
    /// Connected, hello sent.
    Handshake,
    /// Established.
    Established,
    /// The peer answered this status code.
    Refused(u32),
}

/// What the section knows of one remote peer across its sessions.
#[derive(Debug)]
pub struct PeerState {
    /// The live session's number (0: none).
    pub session: u64,
    /// Ends the live session when sent to (or dropped).
    pub kill: Option<tokio::sync::oneshot::Sender<()>>,
    /// Per table, the last of our changes the peer acknowledged: where a new session's
    /// pushes start.
    pub acked: Vec<u64>,
    /// When a new connection may be tried.
    pub reconnect_at: Instant,
    /// How the last session went.
    pub status: Status,
    /// The peer ended its teaching with a partial resync: not asked again.
    pub not_up_to_date: bool,
    /// Sessions started (`new_conn`).
    pub new_conn: u64,
    /// Sessions replaced by another one with the same peer (`coll`).
    pub collisions: u64,
    /// Heartbeats sent and received.
    pub tx_hbt: u64,
    /// Heartbeats received.
    pub rx_hbt: u64,
    /// Protocol errors seen.
    pub proto_err: u64,
    /// When the last hello was answered, either way.
    pub last_hdshk: Option<Instant>,
    /// The live session's view of each table (for `show peers`).
    pub cursors: Vec<CursorView>,
}

/// What `show peers` prints of a table in a session.
#[derive(Debug, Clone, Copy, Default)]
pub struct CursorView {
    /// The peer's id for the table (0: not defined by it).
    pub remote_id: u64,
    /// The types the peer stores (its definition's bits).
    pub remote_data: u64,
    /// The last update id acknowledged to the peer.
    pub last_acked: u32,
    /// Our last change sent.
    pub last_pushed: u64,
    /// The last update id received.
    pub last_get: u32,
}

/// One remote peer.
pub struct Peer {
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    state: Mutex<PeerState>,
}

impl Peer {
    /// A peer not met yet.
    pub fn new(name: &str, addr: SocketAddr, tables: usize) -> Peer {
        Peer {
            name: name.to_string(),
            addr,
            state: Mutex::new(PeerState {
                session: 0,
                kill: None,
                acked: vec![0; tables],
                reconnect_at: Instant::now(),
                status: Status::None,
                not_up_to_date: false,
                new_conn: 0,
                collisions: 0,
                tx_hbt: 0,
                rx_hbt: 0,
                proto_err: 0,
                last_hdshk: None,
                cursors: vec![CursorView::default(); tables],
            }),
        }
    }

    /// Its state.
    pub fn state(&self) -> MutexGuard<'_, PeerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where this process is in learning the tables after its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// To learn from the process this one replaces (it connects to our own address and
    /// teaches), until the deadline; then from a remote peer.
    WantedLocal {
        /// When to stop waiting for the old process.
        until: Instant,
    },
    /// To learn from the first peer up to date, until the deadline.
    Wanted {
        /// When to stop waiting for a teacher.
        until: Instant,
    },
    /// A session is learning it (its number).
    Assigned(u64),
    /// Learnt, or no peer taught in time.
    Done,
}

/// One running `peers` section.
pub struct Section {
    /// Its name.
    pub name: String,
    /// This process's name in it.
    pub local: String,
    /// Its tables, by id - 1.
    pub tables: Vec<SharedTable>,
    /// The other peers.
    pub peers: Vec<Arc<Peer>>,
    /// The local peer, as the process this one replaces (or replaced by) is met: it
    /// connects to our address under our own name.
    pub local_peer: Arc<Peer>,
    /// Told of every local table change.
    pub changed: tokio::sync::watch::Receiver<()>,
    resync: Mutex<Resync>,
    next_session: Mutex<u64>,
    /// When the section started (`show peers` prints it).
    pub started: std::time::SystemTime,
    /// Where the local peer listens.
    pub listen: Option<SocketAddr>,
    /// Every peer's name, the local one too, in line order.
    pub names: Vec<String>,
}

impl Section {
    /// A section, its tables already shared with `changed`'s sender; `old_process`: this
    /// process replaces another one, which is to teach it the tables first.
    pub fn new(
        name: &str,
        local: &str,
        tables: Vec<SharedTable>,
        peers: Vec<Arc<Peer>>,
        changed: tokio::sync::watch::Receiver<()>,
        listen: Option<SocketAddr>,
        old_process: bool,
    ) -> Section {
        let until = Instant::now() + RESYNC_TIMEOUT;
        let resync = if old_process && listen.is_some() {
            Resync::WantedLocal { until }
        } else if peers.is_empty() {
            Resync::Done
        } else {
            Resync::Wanted { until }
        };
        let local_addr = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let local_peer = Arc::new(Peer::new(local, local_addr, tables.len()));
        Section {
            name: name.to_string(),
            local: local.to_string(),
            tables,
            peers,
            local_peer,
            changed,
            resync: Mutex::new(resync),
            next_session: Mutex::new(0),
            started: std::time::SystemTime::now(),
            listen,
            names: Vec::new(),
        }
    }

    /// A new session number.
    pub fn session_id(&self) -> u64 {
        let mut n = self.next_session.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }

    /// The peer named `name` (the local one too).
    pub fn peer(&self, name: &str) -> Option<&Arc<Peer>> {
        if name == self.local {
            return Some(&self.local_peer);
        }
        self.peers.iter().find(|p| p.name == name)
    }

    fn resync(&self) -> MutexGuard<'_, Resync> {
        self.resync.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resync state now.
    pub fn resync_state(&self) -> Resync {
        *self.resync()
    }

    /// Moves past the waits that timed out: the old process's lesson, then the peers'.
    fn expire(&self, r: &mut Resync) {
        let now = Instant::now();
        match *r {
            Resync::WantedLocal { until } if now >= until => {
                *r = if self.peers.is_empty() {
                    Resync::Done
                } else {
                    Resync::Wanted {
                        until: now + RESYNC_TIMEOUT,
                    }
                };
            }
            Resync::Wanted { until } if now >= until => *r = Resync::Done,
            _ => {}
        }
    }

    /// Whether this process has learnt (or given up learning) the tables.
    pub fn resync_done(&self) -> bool {
        let mut r = self.resync();
        self.expire(&mut r);
        *r == Resync::Done
    }

    /// Asks session `session` with `peer` (up to date or not) to be the teacher: whether it
    /// is. Only the old process teaches while it is awaited; then the first peer up to date.
    pub fn assign(&self, session: u64, peer: &Peer, up_to_date: bool) -> bool {
        let mut r = self.resync();
        self.expire(&mut r);
        let local = std::ptr::eq(peer, &*self.local_peer);
        if local {
            if matches!(*r, Resync::WantedLocal { .. }) {
                *r = Resync::Assigned(session);
                return true;
            }
            return false;
        }
        match *r {
            Resync::Wanted { .. } if up_to_date => {
                *r = Resync::Assigned(session);
                true
            }
            _ => false,
        }
    }

    /// Session `session` ended its lesson: `complete` (finished) or partial, or it died
    /// (`None`): another peer is asked within the resync timeout.
    pub fn lesson_over(&self, session: u64, complete: Option<bool>) {
        let mut r = self.resync();
        if *r != Resync::Assigned(session) {
            return;
        }
        *r = match complete {
            Some(true) => Resync::Done,
            _ if self.peers.is_empty() => Resync::Done,
            _ => Resync::Wanted {
                until: Instant::now() + RESYNC_TIMEOUT,
            },
        };
    }
}
