//! Pattern lists the Runtime API may change while the workers match against them (HAProxy's
//! pattern references): `add acl`, `del acl`, `clear acl` on an ACL's file or `#<id>`, and
//! `add map`, `set map`... on a map's, seen by the next connection, with no lock on the
//! workers' side (they load a snapshot). A map's list holds a value beside each key.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

use super::pattern::{Method, Patterns, Value};

/// Where the entry handles `show acl` prints (`0x...`, HAProxy prints addresses) come from:
/// unique in the process, never reused.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(0x55d0_0000_1000);

fn handle() -> u64 {
    NEXT_HANDLE.fetch_add(0x40, Ordering::Relaxed)
}

/// Creation order of every list of the process (ACLs' and maps' alike): HAProxy numbers its
/// references in the order the configuration made them.
static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

/// One entry as given: a key (an ACL's pattern) and, in a two-column file, its value.
pub type Pair = (String, Option<String>);

/// What a map's lookups return: its converter's output type (`map_str` gives text,
/// `map_str_int` an integer, `map_str_ip` an address, `map_str_key` the key matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Text (`map`, `map_<match>`, `map_<match>_str`).
    Str,
    /// A signed integer (`map_<match>_int`).
    Int,
    /// An IPv4 or IPv6 address (`map_<match>_ip`).
    Ip,
    /// The key that matched (`map_<match>_key`).
    Key,
}

impl Out {
    /// A value as HAProxy's `map_parse_*` reads it: an integer must be whole (an empty one is
    /// 0), an address IPv4 or IPv6; `None` when it cannot.
    pub fn parse(self, key: &str, text: &str) -> Option<Value> {
        Some(match self {
            Out::Str => Value::Str(text.as_bytes().to_vec()),
            Out::Key => Value::Str(key.as_bytes().to_vec()),
            Out::Int => Value::Int(read_int64(text)?),
            Out::Ip => Value::Ip(text.parse::<IpAddr>().ok()?),
        })
    }
}

/// HAProxy's `map_parse_int`: `read_int64` (a sign, digits, clamped) must read the whole
/// text; an empty one is 0.
fn read_int64(text: &str) -> Option<i64> {
    let (v, used) = super::pattern::read_int64(text.as_bytes());
    (used == text.len()).then_some(v)
}

/// The type name `get map` prints for a value (HAProxy's `smp_to_type`).
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Int(_) | Value::Bool(_) => "sint",
        Value::Ip(IpAddr::V4(_)) => "ipv4",
        Value::Ip(IpAddr::V6(_)) => "ipv6",
        Value::Str(_) => "str",
        Value::Bin(_) => "bin",
    }
}

/// Reads a two-column pattern file as HAProxy does: `#` lines and empty lines skipped,
/// leading blanks stripped, the key up to the first blank, the value the rest of the line
/// without its trailing blanks. Each pair comes with its line number.
pub fn read_pairs(text: &str) -> Vec<(usize, String, String)> {
    let blank = |c: char| c == ' ' || c == '\t';
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        // a carriage return ends the line, as HAProxy reads it
        let line = line.split('\r').next().unwrap_or_default();
        let l = line.trim_start_matches(blank);
        if l.is_empty() {
            continue;
        }
        let (key, rest) = match l.find(blank) {
            Some(i) => (&l[..i], &l[i..]),
            None => (l, ""),
        };
        let value = rest.trim_start_matches(blank).trim_end_matches(blank);
        out.push((n + 1, key.to_string(), value.to_string()));
    }
    out
}

/// A change of a pattern list, as HAProxy 3.2's PAT_REF event family names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatEvent {
    /// An entry was added (`add acl`, `Patref:add`).
    Add,
    /// Entries were deleted (`del acl`, `Patref:del`).
    Del,
    /// An entry's value was set (`Patref:set`: an ACL entry has none, but HAProxy publishes).
    Set,
    /// A prepared version replaced the list (`Patref:commit`).
    Commit,
    /// The list was emptied (`clear acl`, `Patref:purge`).
    Clear,
}

impl PatEvent {
    /// The name scripts receive (`"PAT_REF_ADD"`).
    pub fn name(self) -> &'static str {
        match self {
            PatEvent::Add => "PAT_REF_ADD",
            PatEvent::Del => "PAT_REF_DEL",
            PatEvent::Set => "PAT_REF_SET",
            PatEvent::Commit => "PAT_REF_COMMIT",
            PatEvent::Clear => "PAT_REF_CLEAR",
        }
    }
}

/// Who hears of a list's changes (the Lua engine's `Patref:event_sub`): called on the thread
/// that made the change, so it must only queue; it returns false once its subscription is gone
/// (it is then dropped).
pub type Watcher = Arc<dyn Fn(PatEvent) -> bool + Send + Sync>;

/// One entry: its handle, its text as given and, in a two-column list, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `show acl <acl>`'s first column, `del acl <acl> #<handle>`.
    pub handle: u64,
    /// The pattern (a map's key) as written.
    pub text: String,
    /// A map's value as written (`None` in a one-column list).
    pub value: Option<String>,
    /// The id of its pattern in the workers' [`Patterns`] (0 for a version kept aside).
    pid: u64,
}

/// A list of patterns one ACL expression matches, from a file (`-f`) or from its own line.
pub struct PatRef {
    /// HAProxy's `#<id>`, set once the whole configuration is read (files share one).
    id: OnceLock<u32>,
    /// Creation order in the process (ids follow it).
    seq: AtomicU32,
    /// Made by a map converter (`show map` lists it) rather than an ACL (`show acl`).
    pub is_map: bool,
    /// A map converter's output, checked on each value (`None`: an ACL's list, whose values,
    /// under `-M`, are kept but never read).
    out: Option<Out>,
    /// Read from a two-column file: its entries carry values.
    pub two_column: bool,
    /// The `-f` file, `None` for an `acl` line's own values.
    pub file: Option<String>,
    /// HAProxy's description (`acl 'src' file 'x.cfg' line 3`, `pattern loaded from file ...`).
    pub display: String,
    /// Where the ACL using it was written (`file`, `line`).
    pub used_at: (String, usize),
    /// The entries, in order, parallel to the compiled patterns; the writers' lock.
    entries: Mutex<Vec<Entry>>,
    /// What the workers match against.
    live: ArcSwap<Patterns>,
    /// Told of each change of the list (kept on the first list of a file's group).
    watchers: Mutex<Vec<Watcher>>,
    /// The writers' lock of its group (the lists of one file change together), given out
    /// with the ids.
    writer: OnceLock<Arc<Mutex<()>>>,
    /// The versions of its group (kept on the group's first list): `prepare map` makes one,
    /// `add map @<ver>` fills it, `commit map @<ver>` makes it the current one.
    versions: Mutex<Versions>,
}

/// HAProxy's generations of a pattern reference: the current one (what lookups see) and
/// those prepared and not yet committed, with their entries.
#[derive(Debug, Default)]
struct Versions {
    /// `curr_ver`.
    curr: u32,
    /// `next_ver`: the last one prepared.
    next: u32,
    /// Prepared versions' entries, by version.
    pending: Vec<(u32, Vec<Entry>)>,
}

impl Versions {
    /// Whether `ver` is past the current one and not past the last prepared (wrapping, as
    /// HAProxy's unsigned arithmetic).
    fn prepared(&self, ver: u32) -> bool {
        ver.wrapping_sub(self.curr.wrapping_add(1)) < self.next.wrapping_sub(self.curr)
    }
}

impl std::fmt::Debug for PatRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatRef")
            .field("id", &self.id())
            .field("file", &self.file)
            .field("display", &self.display)
            // never waits: formatting under the entries lock must not deadlock
            .field("entries", &self.entries.try_lock().map(|e| e.len()).ok())
            .finish()
    }
}

impl PatRef {
    /// An ACL's list holding `pats`, whose texts are `texts` (same order).
    pub(super) fn new(
        file: Option<String>,
        display: String,
        used_at: (String, usize),
        pats: Patterns,
        texts: Vec<String>,
    ) -> PatRef {
        let entries = texts.into_iter().map(|t| (t, None)).collect();
        PatRef::build(file, display, used_at, pats, entries, None)
    }

    /// An ACL's list read from a two-column file (`-M`): its patterns are the keys, the values
    /// are kept for the Runtime API.
    pub(super) fn new_two_column(
        file: String,
        display: String,
        used_at: (String, usize),
        method: Method,
        ignore_case: bool,
        pairs: Vec<(usize, String, String)>,
    ) -> Result<PatRef, String> {
        let mut pats = Patterns::new(method, ignore_case);
        let mut entries = Vec::new();
        for (n, k, v) in pairs {
            pats.add(&k)
                .map_err(|e| format!("{e} at line {n} of file '{file}'"))?;
            entries.push((k, Some(v)));
        }
        let mut r = PatRef::build(Some(file), display, used_at, pats, entries, None);
        r.two_column = true;
        Ok(r)
    }

    /// A map converter's list: `pairs` (line, key, value) matched with `method`, each value
    /// read as `out` (HAProxy's `unable to parse` otherwise, with the line).
    pub(super) fn new_map(
        file: String,
        display: String,
        used_at: (String, usize),
        method: Method,
        out: Out,
        pairs: Vec<(usize, String, String)>,
    ) -> Result<PatRef, String> {
        let mut pats = Patterns::new(method, false);
        let mut entries = Vec::new();
        for (n, k, v) in pairs {
            push_pair(&mut pats, Some(out), &k, Some(&v))
                .map_err(|e| format!("{e} at line {n} of file '{file}'"))?;
            entries.push((k, Some(v)));
        }
        let mut r = PatRef::build(Some(file), display, used_at, pats, entries, Some(out));
        r.is_map = true;
        r.two_column = true;
        Ok(r)
    }

    fn build(
        file: Option<String>,
        display: String,
        used_at: (String, usize),
        pats: Patterns,
        entries: Vec<Pair>,
        out: Option<Out>,
    ) -> PatRef {
        // `pats` was filled with these entries in order, from empty: ids 0, 1, 2...
        let entries = entries
            .into_iter()
            .zip(0u64..)
            .map(|((text, value), pid)| Entry {
                handle: handle(),
                text,
                value,
                pid,
            })
            .collect();
        PatRef {
            id: OnceLock::new(),
            seq: AtomicU32::new(NEXT_SEQ.fetch_add(1, Ordering::Relaxed)),
            is_map: false,
            out,
            two_column: false,
            file,
            display,
            used_at,
            entries: Mutex::new(entries),
            live: ArcSwap::from_pointee(pats),
            watchers: Mutex::new(Vec::new()),
            versions: Mutex::new(Versions::default()),
            writer: OnceLock::new(),
        }
    }

    /// Adds a watcher of this list's changes.
    pub fn watch(&self, w: Watcher) {
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w);
    }

    /// Tells the watchers of a change (once per change of a group: call it on its first list).
    pub fn fire(&self, ev: PatEvent) {
        let ws: Vec<Watcher> = self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let gone: Vec<Watcher> = ws.into_iter().filter(|w| !w(ev)).collect();
        if !gone.is_empty() {
            self.watchers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|w| !gone.iter().any(|g| Arc::ptr_eq(g, w)));
        }
    }

    /// Its creation order in the process.
    pub fn seq(&self) -> u32 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Orders it after every list made so far: HAProxy reads a dynamic `use_backend` name
    /// once the whole configuration is parsed, so the map files it alone uses come last (and
    /// its use is named last in `show map`).
    pub fn made_late(&self) {
        self.seq
            .store(NEXT_SEQ.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Its `#<id>` (0 before ids are given out).
    pub fn id(&self) -> u32 {
        self.id.get().copied().unwrap_or(0)
    }

    /// Gives it its id (once).
    pub(super) fn set_id(&self, id: u32) {
        let _ = self.id.set(id);
    }

    /// `-u <id>`: the id is the operator's, set before the others are given out.
    pub(super) fn force_id(&self, id: u32) {
        let _ = self.id.set(id);
    }

    /// Whether `v` matches one of its patterns.
    pub fn matches(&self, v: &Value) -> bool {
        self.live.load().matches(v)
    }

    /// A map's value for `v` (its key's, the first of the longest where HAProxy keeps a
    /// tree); `None` when no key matches.
    pub fn lookup(&self, v: &Value) -> Option<Value> {
        let pats = self.live.load();
        pats.best_match(v).and_then(|i| pats.value(i).cloned())
    }

    /// `map_regm`'s value for `v`: the first regex that matches, its value a template whose
    /// `\1`.. take the match's groups (HAProxy's `exp_replace`); `None` when none matches or
    /// the template is malformed (no sample).
    pub fn lookup_regm(&self, v: &Value) -> Option<Value> {
        let pats = self.live.load();
        let i = pats.best_match(v)?;
        let Some(Value::Str(template)) = pats.value(i) else {
            return None;
        };
        let with = super::convert::text::replacement(&String::from_utf8_lossy(template))?;
        let text = match v {
            Value::Str(s) | Value::Bin(s) => s.clone(),
            other => other.to_text().into_bytes(),
        };
        let caps = pats.regex_of(i)?.captures(&text)?;
        let mut out = Vec::new();
        caps.expand(&with, &mut out);
        Some(Value::Str(out))
    }

    /// Its match method.
    pub fn method(&self) -> Method {
        self.live.load().method
    }

    /// Whether it ignores case (`-i`).
    pub fn ignore_case(&self) -> bool {
        self.live.load().ignore_case
    }

    /// A map converter's output type (`None` for an ACL's list).
    pub fn out(&self) -> Option<Out> {
        self.out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entries, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` would compile as one of its patterns and `value` read as its values
    /// (HAProxy's message if not).
    pub fn check(&self, key: &str, value: Option<&str>) -> Result<(), String> {
        let mut p = Patterns::new(self.method(), self.ignore_case());
        push_pair(&mut p, self.out, key, value).map(|_| ())
    }

    /// Appends `pairs`, all or none, seen by the workers at once.
    fn extend(&self, pairs: &[(&str, Option<&str>)]) -> Result<(), String> {
        let mut entries = self.lock();
        let mut pats = Patterns::clone(&self.live.load());
        let mut added = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let pid = push_pair(&mut pats, self.out, k, *v)?;
            added.push(Entry {
                handle: handle(),
                text: k.to_string(),
                value: v.map(str::to_string),
                pid,
            });
        }
        entries.extend(added);
        self.live.store(Arc::new(pats));
        Ok(())
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, Versions> {
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces every entry with `entries` (their handles kept), in one step for the
    /// workers.
    fn replace_entries(&self, entries: &[Entry]) -> Result<(), String> {
        let mut current = self.lock();
        let old = self.live.load();
        let mut pats = Patterns::new(old.method, old.ignore_case);
        let mut kept = Vec::with_capacity(entries.len());
        for e in entries {
            let pid = push_pair(&mut pats, self.out, &e.text, e.value.as_deref())?;
            kept.push(Entry { pid, ..e.clone() });
        }
        *current = kept;
        self.live.store(Arc::new(pats));
        Ok(())
    }

    /// Replaces every entry with `pairs`, in one step for the workers.
    fn replace(&self, pairs: &[Pair]) -> Result<(), String> {
        let entries: Vec<Entry> = pairs
            .iter()
            .map(|(k, v)| Entry {
                handle: handle(),
                text: k.clone(),
                value: v.clone(),
                pid: 0,
            })
            .collect();
        self.replace_entries(&entries)
    }

    /// Sets the value of the entries at `positions` (checked by the caller).
    fn set_values(&self, positions: &[usize], value: &str) {
        let mut entries = self.lock();
        let mut pats = Patterns::clone(&self.live.load());
        for &i in positions {
            let Some(e) = entries.get_mut(i) else {
                continue;
            };
            if let Some(v) = self.out.and_then(|o| o.parse(&e.text, value)) {
                pats.set_value(e.pid, v);
            }
            e.value = Some(value.to_string());
        }
        self.live.store(Arc::new(pats));
    }

    /// Removes the entries `gone` picks (by position and entry); whether there were any.
    fn remove_where(&self, gone: impl Fn(usize, &Entry) -> bool) -> bool {
        let mut entries = self.lock();
        let mut pats = Patterns::clone(&self.live.load());
        let mut removed = false;
        // from the end, so that positions before stay valid
        for i in (0..entries.len()).rev() {
            if gone(i, &entries[i]) {
                pats.remove(entries.remove(i).pid);
                removed = true;
            }
        }
        if removed {
            self.live.store(Arc::new(pats));
        }
        removed
    }

    /// HAProxy's `get acl` / `get map` line for `value`: the method, the case, and the entry
    /// it matches (worded for `get map` when `as_map`, then with the value and its type).
    pub fn lookup_line(&self, as_map: bool, value: &str) -> String {
        let entries = self.lock();
        let pats = self.live.load();
        let m = pats.method;
        let case = if pats.ignore_case {
            "insensitive"
        } else {
            "sensitive"
        };
        let head = format!("type={}, case={case}, ", method_name(m));
        let no = if as_map { "found=no" } else { "match=no" };
        if matches!(m, Method::Found | Method::Bool) {
            return format!("{head}{no}");
        }
        // the text is cast as the expression's sample would be (an integer, an address)
        let Some(sample) = super::map::cast_for(m, Value::Str(value.as_bytes().to_vec())) else {
            return format!("{head}{no}");
        };
        match pats
            .best_match(&sample)
            .and_then(|i| Some((i, entries.iter().find(|e| e.pid == i)?)))
        {
            None => format!("{head}{no}"),
            Some((i, e)) => {
                let tree = match m {
                    Method::Ip => true,
                    Method::Str | Method::Beg => !pats.ignore_case,
                    _ => false,
                };
                let idx = if tree { "tree" } else { "list" };
                if !as_map {
                    return format!("{head}match=yes, idx={idx}, pattern=\"{}\"", e.text);
                }
                let shown = match (pats.value(i), &e.value) {
                    (Some(v), Some(text)) => {
                        format!("value=\"{text}\", type=\"{}\"", type_name(v))
                    }
                    _ => "value=none".to_string(),
                };
                format!("{head}found=yes, idx={idx}, key=\"{}\", {shown}", e.text)
            }
        }
    }
}

/// Adds one entry to `pats`: its key as a pattern and, for a map converter's list, its value
/// read as `out` (the value first, as HAProxy's `pat_ref_push`).
fn push_pair(
    pats: &mut Patterns,
    out: Option<Out>,
    key: &str,
    value: Option<&str>,
) -> Result<u64, String> {
    match out {
        None => pats.add(key),
        Some(o) => {
            let text = value.unwrap_or("");
            let v = o
                .parse(key, text)
                .ok_or_else(|| format!("unable to parse '{text}'"))?;
            pats.add_with(key, v)
        }
    }
}

/// The name HAProxy's `get acl` gives a match method.
fn method_name(m: Method) -> &'static str {
    match m {
        Method::Found => "found",
        Method::Bool => "bool",
        Method::Int => "int",
        Method::Ip => "ip",
        Method::Str => "str",
        Method::Beg => "beg",
        Method::End => "end",
        Method::Sub => "sub",
        Method::Dom => "dom",
        Method::Dir => "dir",
        Method::Reg => "reg",
        Method::Len => "len",
        Method::Bin => "bin",
    }
}

/// The references of every proxy, grouped by id (a file used by several ACLs is one group),
/// in id order: what `show acl` lists and what `#<id>` or a file name designates.
pub fn groups<'a>(all: impl Iterator<Item = &'a Arc<PatRef>>) -> Vec<Vec<Arc<PatRef>>> {
    let mut by_id: std::collections::BTreeMap<u32, Vec<Arc<PatRef>>> = Default::default();
    let mut all: Vec<&Arc<PatRef>> = all.collect();
    // each group's uses in the order they were made, whichever proxy they are in
    all.sort_by_key(|r| r.seq());
    for r in all {
        by_id.entry(r.id()).or_default().push(r.clone());
    }
    by_id.into_values().collect()
}

/// The group `name` designates: `#<id>`, or the file the lists were loaded from.
pub fn find(groups: Vec<Vec<Arc<PatRef>>>, name: &str) -> Option<Vec<Arc<PatRef>>> {
    match name.strip_prefix('#') {
        // as HAProxy's strtol: a bare '#' is id 0
        Some(id) => {
            let id: u32 = if id.is_empty() { 0 } else { id.parse().ok()? };
            groups.into_iter().find(|g| g[0].id() == id)
        }
        None => groups
            .into_iter()
            .find(|g| g[0].file.as_deref() == Some(name)),
    }
}

/// Gives out ids in creation order (`refs` in the order the configuration made them), one per
/// file however many ACLs use it, as HAProxy's `pattern_finalize_config` does.
pub fn assign_ids<'a>(refs: impl Iterator<Item = &'a Arc<PatRef>>) {
    let refs: Vec<&Arc<PatRef>> = refs.collect();
    // `-u <id>` ids first: the others skip them, and lists sharing one change together
    let forced: Vec<u32> = refs.iter().filter_map(|r| r.id.get().copied()).collect();
    let mut locks: Vec<(u32, Arc<Mutex<()>>)> = Vec::new();
    for r in refs.iter().filter(|r| r.id.get().is_some()) {
        let id = r.id();
        let lock = match locks.iter().find(|(i, _)| *i == id) {
            Some((_, l)) => l.clone(),
            None => {
                let l = Arc::new(Mutex::new(()));
                locks.push((id, l.clone()));
                l
            }
        };
        let _ = r.writer.set(lock);
    }
    // lists sharing a `-u` id are one reference in HAProxy: each holds every line's values
    for (id, _) in &locks {
        let same: Vec<&&Arc<PatRef>> = refs.iter().filter(|r| r.id() == *id).collect();
        if same.len() > 1 {
            let all: Vec<Pair> = same
                .iter()
                .flat_map(|r| r.entries().into_iter().map(|e| (e.text, e.value)))
                .collect();
            for r in same {
                let _ = r.replace(&all);
            }
        }
    }
    let mut files: Vec<(&str, u32, Arc<Mutex<()>>)> = Vec::new();
    let mut next = 0;
    for r in refs {
        if r.id.get().is_some() {
            continue;
        }
        while forced.contains(&next) {
            next += 1;
        }
        if let Some(f) = r.file.as_deref() {
            if let Some((_, id, lock)) = files.iter().find(|(n, ..)| *n == f) {
                r.set_id(*id);
                let _ = r.writer.set(lock.clone());
                continue;
            }
            let lock = Arc::new(Mutex::new(()));
            let _ = r.writer.set(lock.clone());
            files.push((f, next, lock));
        } else {
            let _ = r.writer.set(Arc::new(Mutex::new(())));
        }
        r.set_id(next);
        next += 1;
    }
}

/// Runs `f` holding the writers' lock of `group`, so that its lists change together (every
/// list has one once ids are given out; before that, nothing runs concurrently).
fn locked<R>(group: &[Arc<PatRef>], f: impl FnOnce() -> R) -> R {
    match group.first().and_then(|r| r.writer.get()) {
        Some(lock) => {
            let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
            f()
        }
        None => f(),
    }
}

/// Whether every list of `group` takes each of `pairs` (HAProxy's parser message if not).
pub fn group_check(group: &[Arc<PatRef>], pairs: &[(&str, Option<&str>)]) -> Result<(), String> {
    for r in group {
        for (k, v) in pairs {
            r.check(k, *v)?;
        }
    }
    Ok(())
}

/// Adds `pairs` to every list of `group` (checked against each first: all or none).
pub fn group_add(group: &[Arc<PatRef>], pairs: &[(&str, Option<&str>)]) -> Result<(), String> {
    group_check(group, pairs)?;
    locked(group, || group.iter().try_for_each(|r| r.extend(pairs)))
}

/// Which entry `set map`, `del map`... designate: `#0x<handle>` (as `show map` prints them)
/// or a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// An entry's handle.
    Handle(u64),
    /// Every entry of this key.
    Key(&'a str),
}

impl<'a> Target<'a> {
    /// Reads HAProxy's `#0x<hex>` or a key; `None` for a malformed handle.
    pub fn parse(word: &'a str) -> Option<Target<'a>> {
        match word.strip_prefix("#0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok().map(Target::Handle),
            None => Some(Target::Key(word)),
        }
    }

    /// The positions it designates in `entries`.
    fn positions(self, entries: &[Entry]) -> Vec<usize> {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| match self {
                Target::Handle(h) => e.handle == h,
                Target::Key(k) => e.text == k,
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// `set map`: gives every entry `target` designates the value `value`, in every list of
/// `group` (checked against each first). HAProxy's messages: `unable to parse '<v>'`,
/// `entry not found` for a key, `key or pattern not found` for a handle.
pub fn group_set(group: &[Arc<PatRef>], target: Target<'_>, value: &str) -> Result<(), String> {
    locked(group, || {
        let Some(first) = group.first() else {
            return Err("entry not found".to_string());
        };
        let positions = target.positions(&first.lock());
        if positions.is_empty() {
            return Err(match target {
                Target::Handle(_) => "key or pattern not found".to_string(),
                Target::Key(_) => "entry not found".to_string(),
            });
        }
        for r in group {
            if let Some(o) = r.out {
                o.parse("", value)
                    .ok_or_else(|| format!("unable to parse '{value}'"))?;
            }
        }
        for r in group {
            r.set_values(&positions, value);
        }
        Ok(())
    })
}

/// Removes the entries `target` designates from every list (a handle is one of the first
/// list's, the same position in the others); whether there were any.
pub fn group_remove(group: &[Arc<PatRef>], target: Target<'_>) -> bool {
    locked(group, || {
        let Some(first) = group.first() else {
            return false;
        };
        let positions = target.positions(&first.lock());
        if positions.is_empty() {
            return false;
        }
        for r in group {
            r.remove_where(|i, _| positions.contains(&i));
        }
        true
    })
}

/// Empties every list of `group`.
pub fn group_clear(group: &[Arc<PatRef>]) {
    locked(group, || {
        for r in group {
            let _ = r.replace(&[]);
        }
    })
}

/// Replaces every list of `group` with `pairs`, each in one step (checked first).
pub fn group_replace(group: &[Arc<PatRef>], pairs: &[Pair]) -> Result<(), String> {
    let view: Vec<(&str, Option<&str>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    group_check(group, &view)?;
    locked(group, || group.iter().try_for_each(|r| r.replace(pairs)))
}

/// How HAProxy stores a method's patterns (its index and parse functions): lists that agree
/// on it, on `-i` and on how values are read share one expression there.
fn storage(m: Method) -> u8 {
    match m {
        Method::Found | Method::Bool => 0,
        Method::Str => 1,
        Method::Beg => 2,
        Method::Sub | Method::End | Method::Dir | Method::Dom => 3,
        Method::Reg => 4,
        Method::Int | Method::Len => 5,
        Method::Ip => 6,
        Method::Bin => 7,
    }
}

/// The lists of `group` HAProxy would hold as distinct expressions (`pattern_new_expr`
/// shares one between uses that store patterns alike and read values alike): `get acl|map`
/// prints a line for each, `entry_cnt` counts each one's entries.
pub fn expressions(group: &[Arc<PatRef>]) -> Vec<&Arc<PatRef>> {
    // `map_*_key` reads its values as text, as `map_*` does
    let values = |r: &PatRef| match r.out {
        Some(Out::Key) => Some(Out::Str),
        o => o,
    };
    let mut out: Vec<&Arc<PatRef>> = Vec::new();
    for r in group {
        let same = |o: &&Arc<PatRef>| {
            storage(o.method()) == storage(r.method())
                && o.ignore_case() == r.ignore_case()
                && values(o) == values(r)
                && o.file.is_some()
                && o.file == r.file
        };
        if !out.iter().any(same) {
            out.push(r);
        }
    }
    out
}

/// `show acl`'s (`show map`'s) line for a group: `<id> (<file>) <description>. curr_ver=0
/// next_ver=0 entry_cnt=<n>` (HAProxy 3.2; each further use of a file is named after the
/// first).
pub fn list_line(group: &[Arc<PatRef>]) -> String {
    let Some(first) = group.first() else {
        return String::new();
    };
    let mut desc = first.display.clone();
    for other in &group[1..] {
        desc.push_str(&format!(
            ", by {} at file '{}' line {}",
            if other.is_map { "map" } else { "acl" },
            other.used_at.0,
            other.used_at.1
        ));
    }
    // HAProxy counts an entry once per expression that indexes it
    // (a version kept aside is indexed already in HAProxy: its entries count too)
    let count: usize = expressions(group).iter().map(|r| r.len()).sum();
    let (curr, next, pending) = {
        let v = first.versions();
        let pending: usize = v.pending.iter().map(|(_, e)| e.len()).sum();
        (v.curr, v.next, pending)
    };
    format!(
        "{} ({}) {desc}. curr_ver={} next_ver={} entry_cnt={}",
        first.id(),
        first.file.as_deref().unwrap_or(""),
        curr,
        next,
        count + pending * expressions(group).len(),
    )
}

/// Which version a command names: `@<ver>` (HAProxy reads its leading digits) or the current
/// one.
pub fn version_of(group: &[Arc<PatRef>], ver: Option<&str>) -> u32 {
    match ver {
        Some(v) => parse_version(v),
        None => group.first().map_or(0, |r| r.versions().curr),
    }
}

/// Whether `ver` is `group`'s current version.
pub fn is_current(group: &[Arc<PatRef>], ver: u32) -> bool {
    group.first().is_some_and(|r| r.versions().curr == ver)
}

/// Whether `@<ver>` is past the last version prepared (what `add` then refuses; the add
/// itself decides again under the lock).
pub fn in_future(group: &[Arc<PatRef>], ver: Option<&str>) -> bool {
    group.first().is_some_and(|r| {
        let v = r.versions();
        ver.is_some_and(|s| (parse_version(s).wrapping_sub(v.next) as i32) > 0)
    })
}

/// `prepare acl|map`: a new, empty version; its number.
pub fn group_prepare(group: &[Arc<PatRef>]) -> u32 {
    let Some(first) = group.first() else {
        return 0;
    };
    let mut v = first.versions();
    v.next = v.next.wrapping_add(1);
    let ver = v.next;
    v.pending.retain(|(n, _)| *n != ver);
    v.pending.push((ver, Vec::new()));
    ver
}

/// The entries of version `ver`: the current ones, a prepared version's, or none.
pub fn entries_at(group: &[Arc<PatRef>], ver: u32) -> Vec<Entry> {
    let Some(first) = group.first() else {
        return Vec::new();
    };
    if is_current(group, ver) {
        return first.entries();
    }
    let v = first.versions();
    v.pending
        .iter()
        .find(|(n, _)| *n == ver)
        .map(|(_, e)| e.clone())
        .unwrap_or_default()
}

/// Where `add acl|map [@<ver>]` put its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddedTo {
    /// The current version: seen by the next connection (and announced).
    Current,
    /// Another version, kept aside: a prepared one until its commit, an older one until the
    /// next commit drops it.
    Other,
    /// Nothing: the version is past the last prepared one.
    Future,
}

/// `add acl|map [@<ver>]`: adds `pairs` (checked against every list first) to the current
/// entries or to version `ver`, deciding which under the group's writers' lock, so that a
/// commit cannot come in between.
pub fn group_add_versioned(
    group: &[Arc<PatRef>],
    ver: Option<&str>,
    pairs: &[(&str, Option<&str>)],
) -> Result<AddedTo, String> {
    group_check(group, pairs)?;
    let Some(first) = group.first() else {
        return Ok(AddedTo::Current);
    };
    locked(group, || {
        let mut v = first.versions();
        let at = ver.map_or(v.curr, parse_version);
        if (at.wrapping_sub(v.next) as i32) > 0 {
            return Ok(AddedTo::Future);
        }
        if at == v.curr {
            drop(v);
            group.iter().try_for_each(|r| r.extend(pairs))?;
            return Ok(AddedTo::Current);
        }
        let new = pairs.iter().map(|(k, val)| Entry {
            handle: handle(),
            text: k.to_string(),
            value: val.map(str::to_string),
            pid: 0,
        });
        match v.pending.iter_mut().find(|(n, _)| *n == at) {
            Some((_, list)) => list.extend(new),
            None => v.pending.push((at, new.collect())),
        }
        Ok(AddedTo::Other)
    })
}

/// A version number as HAProxy's `str2uic` reads it: its leading digits, wrapping.
fn parse_version(v: &str) -> u32 {
    v.bytes().take_while(u8::is_ascii_digit).fold(0u32, |n, d| {
        n.wrapping_mul(10).wrapping_add(u32::from(d - b'0'))
    })
}

/// Runs `f` on the entries of version `ver` kept aside (not the current one), under the
/// group's writers' lock; `None` when there is no such version.
pub fn with_version<R>(
    group: &[Arc<PatRef>],
    ver: u32,
    f: impl FnOnce(&mut Vec<Entry>) -> R,
) -> Option<R> {
    let first = group.first()?;
    locked(group, || {
        let mut v = first.versions();
        if v.curr == ver {
            return None;
        }
        v.pending
            .iter_mut()
            .find(|(n, _)| *n == ver)
            .map(|(_, e)| f(e))
    })
}

/// Empties every version: the current entries and those kept aside (Lua's `purge`).
pub fn group_purge(group: &[Arc<PatRef>]) {
    group_clear(group);
    if let Some(first) = group.first() {
        for (_, e) in first.versions().pending.iter_mut() {
            e.clear();
        }
    }
}

/// `clear acl|map @<ver>` for a version that is not the current one.
pub fn group_clear_at(group: &[Arc<PatRef>], ver: u32) {
    with_version(group, ver, |list| list.clear());
}

/// `commit acl|map @<ver>`: the prepared version becomes the current one for every list of
/// `group` at once (each in one step for the workers), and the older ones are dropped;
/// `false` when `ver` is not a prepared version (HAProxy's "out of range").
pub fn group_commit(group: &[Arc<PatRef>], ver: u32) -> bool {
    let Some(first) = group.first() else {
        return false;
    };
    locked(group, || {
        let mut v = first.versions();
        if !v.prepared(ver) {
            return false;
        }
        let entries = v
            .pending
            .iter()
            .find(|(n, _)| *n == ver)
            .map(|(_, e)| e.clone())
            .unwrap_or_default();
        // the entries were checked when added; a list that still refuses one keeps its own
        for r in group {
            let _ = r.replace_entries(&entries);
        }
        v.curr = ver;
        // it and the versions older than it go (wrapping, as HAProxy's purge range)
        v.pending
            .retain(|(n, _)| n.wrapping_sub(ver.wrapping_add(1)) < u32::MAX / 2);
        true
    })
}
