//! One live stick table: its entries under one lock, their expiry, the purge of the oldest
//! unused ones when it is full, and the session-side handle ([`Tracked`]) that counts in an
//! entry while a session tracks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
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
}

/// One entry.
#[derive(Debug)]
pub struct Entry {
    /// Sessions tracking it now (it neither expires nor is purged meanwhile).
    pub refs: u32,
    /// When it expires (ms clock; `None`: never).
    pub exp: Option<u64>,
    /// The stored values, in the table's schema order.
    pub values: Vec<Stored>,
}

impl Entry {
    /// The value of `t` at `now` (a rate read over its period); `None` when not stored.
    pub fn get(&self, schema: &Schema, t: DataType, now: u64) -> Option<u64> {
        Some(match self.values.get(schema.slot(t)?)? {
            Stored::Count(v) => *v,
            Stored::Rate(f, p) => f.read(*p, now),
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
        }
    }

    fn expired(&self, now: u64) -> bool {
        self.refs == 0 && self.exp.is_some_and(|e| e <= now)
    }
}

/// A table's entries.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Key, Box<Entry>>,
    /// When expired entries were last swept away.
    swept: u64,
}

/// A live stick table, shared by every worker.
#[derive(Debug)]
pub struct Table {
    /// Its name: the proxy it is declared in.
    pub name: Arc<str>,
    /// Its settings.
    pub config: TableConfig,
    entries: Mutex<Entries>,
}

/// Milliseconds since the first call, on the monotonic clock all tables share.
pub fn now_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // starts past zero, so that a fresh rate's window (tick 0) is over at once
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl Table {
    /// An empty table.
    pub fn new(name: Arc<str>, config: TableConfig) -> Arc<Table> {
        Arc::new(Table {
            name,
            config,
            entries: Mutex::new(Entries::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // a panic while holding it leaves counters, nothing inconsistent
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expiry(&self, now: u64) -> Option<u64> {
        self.config.expire.map(|d| now + d.as_millis() as u64)
    }

    /// The live entries (not expired).
    pub fn used(&self) -> u64 {
        let now = now_ms();
        let mut e = self.lock();
        Self::sweep(&mut e, now, true);
        e.map.len() as u64
    }

    /// Drops expired unused entries; at most once per 100 ms unless `force`.
    fn sweep(e: &mut Entries, now: u64, force: bool) {
        if !force && now < e.swept + 100 {
            return;
        }
        e.swept = now;
        e.map.retain(|_, en| !en.expired(now));
    }

    /// Makes room for one entry in a full table: drops the expired ones, then (unless
    /// `nopurge`) the unused ones that would expire first, `size / 256 + 1` at a time, as
    /// HAProxy's `stktable_trash_oldest` does. Whether there is room.
    fn make_room(&self, e: &mut Entries, now: u64) -> bool {
        let size = self.config.size as usize;
        if e.map.len() < size {
            return true;
        }
        Self::sweep(e, now, true);
        if e.map.len() < size {
            return true;
        }
        if self.config.nopurge {
            return false;
        }
        let mut unused: Vec<(u64, Key)> = e
            .map
            .iter()
            .filter(|(_, en)| en.refs == 0)
            .map(|(k, en)| (en.exp.unwrap_or(0), k.clone()))
            .collect();
        if unused.is_empty() {
            return false;
        }
        let batch = (size / 256 + 1).min(unused.len());
        unused.select_nth_unstable_by_key(batch - 1, |(exp, _)| *exp);
        for (_, k) in unused.into_iter().take(batch) {
            e.map.remove(&k);
        }
        true
    }

    /// Runs `f` on the entry of `key`, made when missing and `create` (`None` when it is
    /// missing, or the table is full and cannot purge). A made or found entry's expiry is
    /// pushed back, as HAProxy's touch does.
    pub fn with_entry<T>(
        &self,
        key: &Key,
        create: bool,
        f: impl FnOnce(&mut Entry, &Schema, u64) -> T,
    ) -> Option<T> {
        let now = now_ms();
        let mut e = self.lock();
        Self::sweep(&mut e, now, false);
        if !e.map.contains_key(key) {
            if !create || !self.make_room(&mut e, now) {
                return None;
            }
            let fresh = Entry {
                refs: 0,
                exp: None,
                values: self.config.schema.fresh(),
            };
            e.map.insert(key.clone(), Box::new(fresh));
        }
        let exp = self.expiry(now);
        let entry = e.map.get_mut(key)?;
        if entry.expired(now) {
            // gone already, only not swept yet: starts over
            entry.values = self.config.schema.fresh();
        }
        entry.exp = exp;
        Some(f(entry, &self.config.schema, now))
    }

    /// Reads `key`'s entry without making it or touching it (`None`: absent or expired).
    pub fn peek<T>(&self, key: &Key, f: impl FnOnce(&Entry, &Schema, u64) -> T) -> Option<T> {
        let now = now_ms();
        let e = self.lock();
        let entry = e.map.get(key).filter(|en| !en.expired(now))?;
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
    /// HAProxy, where only that update touches it) the expiry is pushed back.
    fn release(&self, key: &Key) {
        let now = now_ms();
        let exp = self.expiry(now);
        let schema = &self.config.schema;
        let mut e = self.lock();
        let Some(en) = e.map.get_mut(key) else {
            return;
        };
        en.refs = en.refs.saturating_sub(1);
        if let Some(cur) = en.get(schema, DataType::ConnCur, now) {
            en.set(schema, DataType::ConnCur, cur.saturating_sub(1), now);
            en.exp = exp;
        }
    }

    /// Every live entry `keep` selects, in key order (HAProxy walks its key tree):
    /// `(address, key, refs, ms to expiry, values at now)`, for `show table` and Lua.
    pub fn dump(&self, mut keep: impl FnMut(&Key, &Entry, &Schema, u64) -> bool) -> Vec<Dumped> {
        let now = now_ms();
        let mut e = self.lock();
        Self::sweep(&mut e, now, true);
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
                exp: en.exp.map_or(0, |x| x.saturating_sub(now)),
                values: schema
                    .types()
                    .iter()
                    .map(|(t, p)| (*t, *p, en.get(schema, *t, now).unwrap_or(0)))
                    .collect(),
            })
            .collect();
        drop(e);
        v.sort_by(|a, b| a.raw.cmp(&b.raw));
        v
    }

    /// Removes the unused entries `keep` selects (`clear table`); entries in use stay.
    pub fn clear(&self, mut select: impl FnMut(&Key, &Entry, &Schema, u64) -> bool) {
        let now = now_ms();
        let mut e = self.lock();
        let schema = &self.config.schema;
        e.map
            .retain(|k, en| en.refs > 0 || !select(k, en, schema, now) && !en.expired(now));
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
    pub values: Vec<(DataType, u64, u64)>,
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

    /// The value of `t` now; `None` when the table does not store it.
    pub fn get(&self, t: DataType) -> Option<u64> {
        self.table.peek(&self.key, |en, s, now| en.get(s, t, now))?
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.table.release(&self.key);
    }
}
