//! Pattern lists the Runtime API may change while the workers match against them (HAProxy's
//! pattern references): `add acl`, `del acl`, `clear acl` on an ACL's file or `#<id>`, seen by
//! the next connection, with no lock on the workers' side (they load a snapshot).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

use super::pattern::{Method, Patterns, Value};

/// Where the entry handles `show acl` prints (`0x...`, HAProxy prints addresses) come from:
/// unique in the process, never reused.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(0x55d0_0000_1000);

fn handle() -> u64 {
    NEXT_HANDLE.fetch_add(0x40, Ordering::Relaxed)
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

/// One entry: its handle and its text as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `show acl <acl>`'s first column, `del acl <acl> #<handle>`.
    pub handle: u64,
    /// The pattern as written.
    pub text: String,
}

/// A list of patterns one ACL expression matches, from a file (`-f`) or from its own line.
pub struct PatRef {
    /// HAProxy's `#<id>`, set once the whole configuration is read (files share one).
    id: OnceLock<u32>,
    /// Creation order within its proxy (ids follow it).
    pub(super) seq: u32,
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
    /// A reference holding `pats`, whose texts are `texts` (same order).
    pub(super) fn new(
        seq: u32,
        file: Option<String>,
        display: String,
        used_at: (String, usize),
        pats: Patterns,
        texts: Vec<String>,
    ) -> PatRef {
        let entries = texts
            .into_iter()
            .map(|text| Entry {
                handle: handle(),
                text,
            })
            .collect();
        PatRef {
            id: OnceLock::new(),
            seq,
            file,
            display,
            used_at,
            entries: Mutex::new(entries),
            live: ArcSwap::from_pointee(pats),
            watchers: Mutex::new(Vec::new()),
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

    /// Its match method.
    pub fn method(&self) -> Method {
        self.live.load().method
    }

    /// Whether it ignores case (`-i`).
    pub fn ignore_case(&self) -> bool {
        self.live.load().ignore_case
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

    /// Whether `text` would compile as one of its patterns (HAProxy's message if not).
    pub fn check(&self, text: &str) -> Result<(), String> {
        let mut p = Patterns::new(self.method(), self.ignore_case());
        p.add(text)
    }

    /// Appends `texts` as patterns, all or none, seen by the workers at once.
    fn extend(&self, texts: &[&str]) -> Result<(), String> {
        let mut entries = self.lock();
        let mut pats = Patterns::clone(&self.live.load());
        for t in texts {
            pats.add(t)?;
        }
        entries.extend(texts.iter().map(|t| Entry {
            handle: handle(),
            text: t.to_string(),
        }));
        self.live.store(Arc::new(pats));
        Ok(())
    }

    /// Replaces every pattern with `texts`, in one step for the workers.
    fn replace(&self, texts: &[String]) -> Result<(), String> {
        let mut entries = self.lock();
        let old = self.live.load();
        let mut pats = Patterns::new(old.method, old.ignore_case);
        for t in texts {
            pats.add(t)?;
        }
        *entries = texts
            .iter()
            .map(|t| Entry {
                handle: handle(),
                text: t.clone(),
            })
            .collect();
        self.live.store(Arc::new(pats));
        Ok(())
    }

    /// Removes the entries `gone` picks (by position and entry); whether there were any.
    fn remove_where(&self, gone: impl Fn(usize, &Entry) -> bool) -> bool {
        let mut entries = self.lock();
        let mut pats = Patterns::clone(&self.live.load());
        let mut removed = false;
        // from the end, so that positions before stay valid
        for i in (0..entries.len()).rev() {
            if gone(i, &entries[i]) {
                entries.remove(i);
                pats.remove(i);
                removed = true;
            }
        }
        if removed {
            self.live.store(Arc::new(pats));
        }
        removed
    }

    /// HAProxy's `get acl` line for `value`: the method, the case, and the entry it matches.
    pub fn lookup_line(&self, value: &str) -> String {
        let entries = self.lock();
        let pats = self.live.load();
        let m = pats.method;
        let case = if pats.ignore_case {
            "insensitive"
        } else {
            "sensitive"
        };
        let head = format!("type={}, case={case}, ", method_name(m));
        if matches!(m, Method::Found | Method::Bool) {
            return format!("{head}match=no");
        }
        let sample = Value::Str(value.as_bytes().to_vec());
        match pats.best_match(&sample).and_then(|i| entries.get(i)) {
            None => format!("{head}match=no"),
            Some(e) => {
                let tree = match m {
                    Method::Ip => true,
                    Method::Str | Method::Beg => !pats.ignore_case,
                    _ => false,
                };
                let idx = if tree { "tree" } else { "list" };
                format!("{head}match=yes, idx={idx}, pattern=\"{}\"", e.text)
            }
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
        Method::Reg => "reg",
        Method::Len => "len",
        Method::Bin => "bin",
    }
}

/// The references of every proxy, grouped by id (a file used by several ACLs is one group),
/// in id order: what `show acl` lists and what `#<id>` or a file name designates.
pub fn groups<'a>(all: impl Iterator<Item = &'a Arc<PatRef>>) -> Vec<Vec<Arc<PatRef>>> {
    let mut by_id: std::collections::BTreeMap<u32, Vec<Arc<PatRef>>> = Default::default();
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
            let all: Vec<String> = same
                .iter()
                .flat_map(|r| r.entries().into_iter().map(|e| e.text))
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

/// Whether every list of `group` takes each of `texts` (HAProxy's parser message if not).
pub fn group_check<T: AsRef<str>>(group: &[Arc<PatRef>], texts: &[T]) -> Result<(), String> {
    for r in group {
        for t in texts {
            r.check(t.as_ref())?;
        }
    }
    Ok(())
}

/// Adds `texts` to every list of `group` (checked against each first: all or none).
pub fn group_add(group: &[Arc<PatRef>], texts: &[&str]) -> Result<(), String> {
    group_check(group, texts)?;
    locked(group, || group.iter().try_for_each(|r| r.extend(texts)))
}

/// Removes the entries whose text is `text` from every list; whether there were any.
pub fn group_remove_text(group: &[Arc<PatRef>], text: &str) -> bool {
    locked(group, || {
        group
            .iter()
            .map(|r| r.remove_where(|_, e| e.text == text))
            .collect::<Vec<_>>()
            .contains(&true)
    })
}

/// Removes the entry `handle` names (a handle of the first list, as `show acl` prints them)
/// from every list, at the same position; whether it was there.
pub fn group_remove_handle(group: &[Arc<PatRef>], handle: u64) -> bool {
    locked(group, || {
        let Some(pos) = group
            .first()
            .and_then(|r| r.lock().iter().position(|e| e.handle == handle))
        else {
            return false;
        };
        for r in group {
            r.remove_where(|i, _| i == pos);
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

/// Replaces every list of `group` with `texts`, each in one step (checked first).
pub fn group_replace(group: &[Arc<PatRef>], texts: &[String]) -> Result<(), String> {
    group_check(group, texts)?;
    locked(group, || group.iter().try_for_each(|r| r.replace(texts)))
}

/// `show acl`'s line for a group: `<id> (<file>) <description>. curr_ver=0 next_ver=0
/// entry_cnt=<n>` (HAProxy 3.2; each further use of a file is named after the first).
pub fn list_line(group: &[Arc<PatRef>]) -> String {
    let Some(first) = group.first() else {
        return String::new();
    };
    let mut desc = first.display.clone();
    for other in &group[1..] {
        desc.push_str(&format!(
            ", by acl at file '{}' line {}",
            other.used_at.0, other.used_at.1
        ));
    }
    // HAProxy counts an entry once per expression that indexes it
    let count: usize = group.iter().map(|r| r.len()).sum();
    format!(
        "{} ({}) {desc}. curr_ver=0 next_ver=0 entry_cnt={count}",
        first.id(),
        first.file.as_deref().unwrap_or("")
    )
}
