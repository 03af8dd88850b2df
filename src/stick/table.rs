//! One live stick table: its entries under one lock, their expiry, the purge of the oldest
//! unused ones when it is full, and the session-side handle ([`Tracked`]) that counts in an
//! entry while a session tracks it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::data::{DataType, Schema, Stored};
use super::key::{Key, KeyType};

/// A `stick-table` line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// `type`.
    pub key: KeyType,
    /// `size`: the most entries it holds.
    pub size: u64,
    /// `expire`: how long an unused entry lives after its last use (`None`: for ever).
    pub expire: Option<Duration>,
    /// `nopurge`: when full, refuse new entries rather than drop the oldest unused ones.
    pub nopurge: bool,
    /// `store`.
    pub schema: Schema,
    /// `peers <section>`: the peers section the table is shared with.
    pub peers: Option<String>,
}

/// One entry.
#[derive(Debug)]
pub struct Entry {
    /// Sessions tracking it now (it neither expires nor is purged meanwhile).
    pub refs: u32,
    /// When it was last touched (ms clock): it expires `expire` later, and a full table
    /// purges the least recently touched first.
    pub touched: u64,
    /// The `touched` it is queued under for expiry (`None`: not queued, it is in use).
    queued: Option<u64>,
    /// Its place in the change log of a table shared with peers (0: not there).
    upd: u64,
    /// Whether its last change was made here (peers are sent those) rather than learned.
    local: bool,
    /// The stored values, in the table's schema order.
    pub values: Vec<Stored>,
}

impl Entry {
    /// The value of `t` at `now` (a rate read over its period); `None` when not stored.
    pub fn get(&self, schema: &Schema, t: DataType, now: u64) -> Option<u64> {
        Some(match self.values.get(schema.slot(t)?)? {
            Stored::Count(v) => *v,
            Stored::Rate(f, p) => f.read(*p, now),
            Stored::Text(_) => return None,
        })
    }

    /// Adds `n` to `t` (a counter) or counts `n` events (a rate); nothing when not stored.
    pub fn add(&mut self, schema: &Schema, t: DataType, n: u64, now: u64) {
        let Some(v) = schema.slot(t).and_then(|i| self.values.get_mut(i)) else {
            return;
        };
        match v {
            // HAProxy's 32-bit counters wrap; the byte counts are 64-bit
            Stored::Count(c) if t.is_wide() => *c = c.wrapping_add(n),
            Stored::Count(c) => *c = (*c as u32).wrapping_add(n as u32) as u64,
            Stored::Rate(f, p) => f.add(n, *p, now),
            Stored::Text(_) => {}
        }
    }

    /// Sets `t` (a counter or tag) to `v`; a rate's current period to `v` events.
    pub fn set(&mut self, schema: &Schema, t: DataType, v: u64, now: u64) {
        let Some(slot) = schema.slot(t).and_then(|i| self.values.get_mut(i)) else {
            return;
        };
        match slot {
            Stored::Count(c) => *c = if t.is_wide() { v } else { v as u32 as u64 },
            Stored::Rate(f, p) => {
                *f = Default::default();
                f.add(v, *p, now);
            }
            Stored::Text(_) => {}
        }
    }

    /// The text of `t` (`server_key`): `None` when not stored or not set.
    pub fn text(&self, schema: &Schema, t: DataType) -> Option<&std::sync::Arc<str>> {
        match self.values.get(schema.slot(t)?)? {
            Stored::Text(s) => s.as_ref(),
            _ => None,
        }
    }

    /// Sets the text of `t` (`server_key`); nothing when not stored.
    pub fn set_text(&mut self, schema: &Schema, t: DataType, v: std::sync::Arc<str>) {
        if let Some(Stored::Text(s)) = schema.slot(t).and_then(|i| self.values.get_mut(i)) {
            *s = Some(v);
        }
    }
}

/// A table's entries, and the queue that finds the ones to expire or purge first.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Key, Box<Entry>>,
    /// For a table shared with peers, every entry by its last change, oldest first
    /// (HAProxy's update tree): what a peer is sent next, and what a resync walks.
    log: BTreeMap<u64, Key>,
    /// The last change's number.
    seq: u64,
    /// `(touched, key)` of the unused entries, oldest first. Lazy, as HAProxy's expiration
    /// tree: an entry touched since it was queued is queued again at its new time when its
    /// old one comes up.
    queue: BinaryHeap<Reverse<(u64, Key)>>,
}

/// A live stick table, shared by every worker.
#[derive(Debug)]
pub struct Table {
    /// Its name: the proxy it is declared in.
    pub name: Arc<str>,
    /// Its settings.
    pub config: TableConfig,
    entries: Mutex<Entries>,
    /// The last change's number, readable without the lock (peers look at it often).
    last_seq: std::sync::atomic::AtomicU64,
    /// Set when a peers section shares the table: told of every local change (a `Notify`
    /// holds one permit, so a burst of changes costs the workers an atomic each).
    sync: OnceLock<Arc<tokio::sync::Notify>>,
}

/// Milliseconds on the monotonic clock all tables share. It starts far from zero, as
/// HAProxy's `now_ms` is, so that a fresh rate (its period anchored at 0) starts its first
/// period at its first event.
pub fn now_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + (1 << 33)
}

impl Table {
    /// An empty table.
    pub fn new(name: Arc<str>, config: TableConfig) -> Arc<Table> {
        Arc::new(Table {
            name,
            config,
            entries: Mutex::new(Entries::default()),
            last_seq: std::sync::atomic::AtomicU64::new(0),
            sync: OnceLock::new(),
        })
    }

    /// Shares the table with a peers section: from now on its changes are logged, and
    /// `notify` is told of each local one. Once only (a table has one `peers`).
    pub fn share(&self, notify: Arc<tokio::sync::Notify>) {
        let _ = self.sync.set(notify);
    }

    /// Logs a change of `key`'s entry (for a shared table), made here when `local`.
    fn log_change(&self, e: &mut Entries, key: &Key, local: bool) {
        if self.sync.get().is_none() {
            return;
        }
        e.seq += 1;
        let seq = e.seq;
        self.last_seq
            .store(seq, std::sync::atomic::Ordering::Release);
        let Some(en) = e.map.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut en.upd, seq);
        en.local = local;
        if old != 0 {
            e.log.remove(&old);
        }
        e.log.insert(seq, key.clone());
    }

    /// Tells the peers of a local change (after the lock is released).
    fn announce(&self) {
        if let Some(n) = self.sync.get() {
            n.notify_one();
        }
    }

    /// Removes an entry and its change log item.
    fn remove(e: &mut Entries, key: &Key) {
        if let Some(en) = e.map.remove(key) {
            if en.upd != 0 {
                e.log.remove(&en.upd);
            }
        }
    }

    /// The number of the last change (0: none yet).
    pub fn last_change(&self) -> u64 {
        self.last_seq.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Walks at most `max` live entries changed after change `after`, in change order
    /// (only the local changes unless `all`), giving each its change number; returns the
    /// number of the last change looked at (`after` when none). It looks at `4 * max`
    /// changes at most, so that the lock the workers wait on is held briefly even behind
    /// many learnt entries (the caller calls again from where it stopped).
    pub fn changes(
        &self,
        after: u64,
        max: usize,
        all: bool,
        mut f: impl FnMut(u64, &Key, &Entry, &Schema, u64, u64),
    ) -> u64 {
        let now = now_ms();
        let mut e = self.lock();
        self.sweep(&mut e, now);
        let mut last = after;
        let mut sent = 0;
        let mut looked = 0;
        let mut walk = e.log.range(after + 1..);
        let exhausted = loop {
            if sent >= max || looked >= 4 * max.max(1) {
                break false;
            }
            let Some((seq, key)) = walk.next() else {
                break true;
            };
            looked += 1;
            last = *seq;
            let Some(en) = e.map.get(key) else { continue };
            if !all && !en.local {
                continue;
            }
            f(
                *seq,
                key,
                en,
                &self.config.schema,
                now,
                self.remaining(en, now),
            );
            sent += 1;
        };
        // to the end of the log: changes of entries gone since count as looked at too
        if exhausted {
            last = last.max(e.seq);
        }
        last
    }

    /// Applies what a peer sent for `key`: makes the entry when missing (as room allows),
    /// runs `f` on it, and sets it to expire `life` ms from now (the table's `expire` when
    /// `None`). Not a local change: peers are not sent it back.
    pub fn learn(&self, key: &Key, life: Option<u64>, f: impl FnOnce(&mut Entry, &Schema, u64)) {
        let now = now_ms();
        let mut e = self.lock();
        self.sweep(&mut e, now);
        if !e.map.contains_key(key) {
            if !self.make_room(&mut e, now) {
                return;
            }
            let fresh = Entry {
                refs: 0,
                touched: now,
                queued: None,
                upd: 0,
                local: false,
                values: self.config.schema.fresh(),
            };
            e.map.insert(key.clone(), Box::new(fresh));
        }
        let x = self.expire_ms().unwrap_or(0);
        let touched = match life {
            Some(l) => (now + l).saturating_sub(x),
            None => now,
        };
        let Some(en) = e.map.get_mut(key) else {
            return;
        };
        f(en, &self.config.schema, now);
        en.touched = touched;
        if en.refs == 0 && en.queued.is_none() {
            en.queued = Some(touched);
            e.queue.push(Reverse((touched, key.clone())));
        }
        self.log_change(&mut e, key, false);
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // a panic while holding it leaves counters, nothing inconsistent
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expire_ms(&self) -> Option<u64> {
        self.config.expire.map(|d| d.as_millis() as u64)
    }

    /// Whether `en` has expired at `now` (never while in use, never without `expire`).
    fn expired(&self, en: &Entry, now: u64) -> bool {
        en.refs == 0 && self.expire_ms().is_some_and(|x| en.touched + x <= now)
    }

    /// Milliseconds before `en` expires (0: expired, in use past its date, or no `expire`).
    pub fn remaining(&self, en: &Entry, now: u64) -> u64 {
        self.expire_ms()
            .map_or(0, |x| (en.touched + x).saturating_sub(now))
    }

    /// The entries held, expired ones not swept yet included (HAProxy's `current`).
    pub fn used(&self) -> u64 {
        let now = now_ms();
        let mut e = self.lock();
        self.sweep(&mut e, now);
        e.map.len() as u64
    }

    /// Touches `key`'s entry at `now`, queueing it if it is unused and not queued.
    fn touch(e: &mut Entries, key: &Key, now: u64) {
        if let Some(en) = e.map.get_mut(key) {
            en.touched = now;
            if en.refs == 0 && en.queued.is_none() {
                en.queued = Some(now);
                e.queue.push(Reverse((now, key.clone())));
            }
        }
    }

    /// Takes the oldest queued entry off the queue when `due` says so: `Some(key)` when it is
    /// unused and was not touched since it was queued (it may go), `None` when the queue is
    /// empty or its head is not due. Entries in use leave the queue (their release queues
    /// them again); entries touched since are queued again at their new time.
    fn pop_oldest(e: &mut Entries, due: impl Fn(u64) -> bool) -> Option<Option<Key>> {
        let Reverse((at, _)) = e.queue.peek()?;
        if !due(*at) {
            return None;
        }
        let Reverse((at, key)) = e.queue.pop()?;
        let Some(en) = e.map.get_mut(&key) else {
            return Some(None);
        };
        if en.queued != Some(at) {
            // queued again meanwhile (cleared and made anew): that later item stands
            return Some(None);
        }
        if en.refs > 0 {
            en.queued = None;
            return Some(None);
        }
        if en.touched != at {
            en.queued = Some(en.touched);
            e.queue.push(Reverse((en.touched, key)));
            return Some(None);
        }
        Some(Some(key))
    }

    /// Drops the expired unused entries: the ones queued before `now - expire`.
    fn sweep(&self, e: &mut Entries, now: u64) {
        let Some(x) = self.expire_ms() else {
            return;
        };
        while let Some(next) = Self::pop_oldest(e, |at| at + x <= now) {
            if let Some(k) = next {
                Self::remove(e, &k);
            }
        }
    }

    /// Makes room for one entry in a full table: drops the expired ones, then (unless
    /// `nopurge`) up to `size / 256 + 1` of the least recently touched unused ones, as
    /// HAProxy's `stktable_trash_oldest`. Whether there is room.
    fn make_room(&self, e: &mut Entries, now: u64) -> bool {
        let size = self.config.size as usize;
        if e.map.len() < size {
            return true;
        }
        self.sweep(e, now);
        if e.map.len() < size {
            return true;
        }
        if self.config.nopurge {
            return false;
        }
        let mut batch = size / 256 + 1;
        while batch > 0 {
            match Self::pop_oldest(e, |_| true) {
                None => break,
                Some(None) => {}
                Some(Some(k)) => {
                    Self::remove(e, &k);
                    batch -= 1;
                }
            }
        }
        e.map.len() < size
    }

    /// Runs `f` on the entry of `key`, made when missing and `create` (`None` when it is
    /// missing, or the table is full and cannot purge). A made or found entry is touched
    /// (its expiry pushed back), as HAProxy's `stktable_touch_local` does.
    pub fn with_entry<T>(
        &self,
        key: &Key,
        create: bool,
        f: impl FnOnce(&mut Entry, &Schema, u64) -> T,
    ) -> Option<T> {
        let now = now_ms();
        let mut e = self.lock();
        self.sweep(&mut e, now);
        if !e.map.contains_key(key) {
            if !create || !self.make_room(&mut e, now) {
                return None;
            }
            let fresh = Entry {
                refs: 0,
                touched: now,
                queued: None,
                upd: 0,
                local: true,
                values: self.config.schema.fresh(),
            };
            e.map.insert(key.clone(), Box::new(fresh));
        }
        let r = {
            let entry = e.map.get_mut(key)?;
            f(entry, &self.config.schema, now)
        };
        Self::touch(&mut e, key, now);
        self.log_change(&mut e, key, true);
        drop(e);
        self.announce();
        Some(r)
    }

    /// Reads `key`'s entry without making it or touching it (`None`: absent or expired).
    pub fn peek<T>(&self, key: &Key, f: impl FnOnce(&Entry, &Schema, u64) -> T) -> Option<T> {
        let now = now_ms();
        let e = self.lock();
        let entry = e.map.get(key).filter(|en| !self.expired(en, now))?;
        Some(f(entry, &self.config.schema, now))
    }

    /// Starts tracking `key` for a session (`track-sc*`): makes the entry if needed, counts a
    /// connection in `conn_cnt`, `conn_cur` and `conn_rate`, and holds the entry until the
    /// handle drops. `None` when the table is full of entries in use.
    pub fn track(self: &Arc<Self>, key: Key) -> Option<Tracked> {
        self.with_entry(&key, true, |en, s, now| {
            en.refs += 1;
            en.add(s, DataType::ConnCnt, 1, now);
            en.add(s, DataType::ConnCur, 1, now);
            en.add(s, DataType::ConnRate, 1, now);
        })?;
        Some(Tracked {
            table: self.clone(),
            key,
        })
    }

    /// Ends a session's hold on `key`'s entry: `conn_cur` goes down, and only then (as in
    /// HAProxy, where only that update touches it) the expiry is pushed back. An unused entry
    /// goes back in the expiry queue.
    fn release(&self, key: &Key) {
        let now = now_ms();
        let schema = &self.config.schema;
        let mut e = self.lock();
        let Some(en) = e.map.get_mut(key) else {
            return;
        };
        en.refs = en.refs.saturating_sub(1);
        if let Some(cur) = en.get(schema, DataType::ConnCur, now) {
            en.set(schema, DataType::ConnCur, cur.saturating_sub(1), now);
            en.touched = now;
        }
        if en.refs == 0 && en.queued.is_none() {
            en.queued = Some(en.touched);
            let at = en.touched;
            e.queue.push(Reverse((at, key.clone())));
        }
        self.log_change(&mut e, key, true);
        drop(e);
        self.announce();
    }

    /// Every live entry `keep` selects, in key order (HAProxy walks its key tree):
    /// `(address, key, refs, ms to expiry, values at now)`, for `show table` and Lua.
    pub fn dump(&self, mut keep: impl FnMut(&Key, &Entry, &Schema, u64) -> bool) -> Vec<Dumped> {
        let now = now_ms();
        let mut e = self.lock();
        self.sweep(&mut e, now);
        let schema = &self.config.schema;
        let mut v: Vec<Dumped> = e
            .map
            .iter()
            .filter(|(k, en)| keep(k, en, schema, now))
            .map(|(k, en)| Dumped {
                addr: &**en as *const Entry as usize,
                key: k.show(self.config.key),
                raw: k.clone(),
                refs: en.refs,
                exp: self.remaining(en, now),
                values: schema
                    .types()
                    .iter()
                    .map(|(t, p)| (*t, *p, shown(en, schema, *t, now)))
                    .collect(),
            })
            .collect();
        drop(e);
        v.sort_by(|a, b| a.raw.cmp(&b.raw));
        v
    }

    /// Removes the unused entries `select` selects (`clear table`); entries in use stay.
    pub fn clear(&self, mut select: impl FnMut(&Key, &Entry, &Schema, u64) -> bool) {
        let now = now_ms();
        let mut e = self.lock();
        let schema = &self.config.schema;
        let Entries {
            map, queue, log, ..
        } = &mut *e;
        map.retain(|k, en| en.refs > 0 || !select(k, en, schema, now));
        // the queue and log items of the entries gone go too
        queue.retain(|Reverse((at, k))| map.get(k).is_some_and(|en| en.queued == Some(*at)));
        log.retain(|seq, k| map.get(k).is_some_and(|en| en.upd == *seq));
    }
}

/// A value as `show table` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A number (counters, rates, `server_id`).
    Num(i64),
    /// A server's name (`server_key`; `-` when none).
    Text(String),
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Num(n) => write!(f, "{n}"),
            Shown::Text(s) => f.write_str(s),
        }
    }
}

/// `t`'s value in `en` as `show table` prints it: `server_id` signed, `server_key` a name.
fn shown(en: &Entry, schema: &Schema, t: DataType, now: u64) -> Shown {
    match t {
        DataType::ServerKey => {
            Shown::Text(en.text(schema, t).map_or("-".into(), |s| s.to_string()))
        }
        DataType::ServerId => {
            Shown::Num(i64::from(en.get(schema, t, now).unwrap_or(0) as u32 as i32))
        }
        _ => Shown::Num(en.get(schema, t, now).unwrap_or(0) as i64),
    }
}

/// An entry as `show table` prints it.
#[derive(Debug, Clone)]
pub struct Dumped {
    /// Where the entry lives (HAProxy prints its pointer; so does harp).
    pub addr: usize,
    /// The key, printed.
    pub key: String,
    /// The key itself.
    pub raw: Key,
    /// Sessions using it.
    pub refs: u32,
    /// Milliseconds before it expires (0: never).
    pub exp: u64,
    /// Each stored type, its period (0 for counters) and value.
    pub values: Vec<(DataType, u64, Shown)>,
}

/// A session's hold on one entry (a `track-sc*` counter): what its counts go to. Dropped at
/// the session's end: `conn_cur` goes down and the entry may expire again.
#[derive(Debug)]
pub struct Tracked {
    table: Arc<Table>,
    key: Key,
}

impl Tracked {
    /// The table it tracks in.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Runs `f` on the entry (kept alive by this hold, so present).
    pub fn update<T>(&self, f: impl FnOnce(&mut Entry, &Schema, u64) -> T) -> Option<T> {
        self.table.with_entry(&self.key, true, f)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.table.release(&self.key);
    }
}
