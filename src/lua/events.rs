//! The event framework: `core.event_sub`, `Server:event_sub`, `EventSub:unsub`, routing of bus
//! events to subscriptions and the per-subscription runner (strict order, one at a time, pause
//! past 100 queued events as HAProxy does, with every lost event counted).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mlua::{Function, Lua, MultiValue, Table, UserData, UserDataMethods, Value};
use tokio::sync::Notify;

use super::engine::{ctx, Ctx};
use super::objects::LServer;
use super::{runner, SubStat};
use crate::events::{EventData, EventMask, EventType, ServerEvent};
use crate::model::{AdminFlags, CheckReport, Server};
use crate::rules::patref::{PatEvent, PatRef};

/// HAProxy pauses a subscription with more unconsumed events than this.
const MAX_BACKLOG: usize = 100;

/// An event waiting for a subscription's callback.
pub(crate) enum Queued {
    /// A SERVER event from the bus.
    Server(Arc<ServerEvent>),
    /// A change of the pattern list a `Patref:event_sub` watches, and when (HAProxy passes
    /// no data: the callback gets `(event, sub, when)`).
    PatRef(PatEvent, i64),
}

/// One Lua subscription.
pub(crate) struct LuaSub {
    pub mask: EventMask,
    pub server: Option<Arc<Server>>,
    pub func: Function,
    pub queue: RefCell<VecDeque<Queued>>,
    pub paused: Cell<bool>,
    pub active: Cell<bool>,
    /// The subscribed server was deleted: end once the queue is drained (as HAProxy does).
    pub ending: Cell<bool>,
    pub notify: Notify,
    pub stat: Arc<SubStat>,
    /// Set by `unsub`: a pattern list's watcher for this subscription then lets go.
    pub gone: Arc<AtomicBool>,
}

/// The `EventSub` object handed to scripts.
pub(crate) struct EventSub(pub Rc<LuaSub>);

impl UserData for EventSub {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("unsub", |_, this, ()| {
            unsub(&this.0);
            Ok(())
        });
    }
}

fn unsub(s: &Rc<LuaSub>) {
    s.active.set(false);
    s.gone.store(true, Ordering::Relaxed);
    s.queue.borrow_mut().clear();
    s.notify.notify_one();
    if let Ok(c) = ctx() {
        c.subs.borrow_mut().retain(|x| !Rc::ptr_eq(x, s));
    }
}

/// Lua's own type name (`type(v)`), as `luaL_typename` prints it in argument errors.
pub(crate) fn lua_type(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// Parses `event_types` with HAProxy's error texts.
fn parse_types(v: &Value) -> mlua::Result<EventMask> {
    let t = match v {
        Value::Table(t) => t,
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "bad argument #1 to 'event_sub' (table of strings expected, got {})",
                lua_type(other)
            )))
        }
    };
    let mut mask = EventMask::empty();
    for v in t.clone().sequence_values::<Value>() {
        if let Value::String(s) = v? {
            let name = s.to_str()?.to_string();
            mask.add_name(&name).map_err(mlua::Error::RuntimeError)?;
        }
    }
    if mask.is_empty() {
        return Err(mlua::Error::RuntimeError(
            "event_sub: no valid event types were provided".into(),
        ));
    }
    Ok(mask)
}

fn type_names(v: &Value) -> String {
    let mut names = Vec::new();
    if let Value::Table(t) = v {
        for s in t.clone().sequence_values::<String>().flatten() {
            names.push(s);
        }
    }
    names.join(",")
}

/// `core.event_sub(types, fn)` / `Server:event_sub(types, fn)`.
pub(crate) fn subscribe(
    lua: &Lua,
    types: Value,
    func: Value,
    server: Option<Arc<Server>>,
) -> mlua::Result<Value> {
    subscribe_to(lua, types, func, server, None)
}

/// `Patref:event_sub(types, fn)`: the PAT_REF events of the list `head` leads (a file's
/// first list), named `name` in `show info`.
pub(crate) fn subscribe_patref(
    lua: &Lua,
    types: Value,
    func: Value,
    head: &Arc<PatRef>,
    name: &str,
) -> mlua::Result<Value> {
    subscribe_to(lua, types, func, None, Some((head, name)))
}

fn subscribe_to(
    lua: &Lua,
    types: Value,
    func: Value,
    server: Option<Arc<Server>>,
    patref: Option<(&Arc<PatRef>, &str)>,
) -> mlua::Result<Value> {
    let mask = parse_types(&types)?;
    let func = match func {
        Value::Function(f) => f,
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "bad argument #2 to 'event_sub' (function expected, got {})",
                lua_type(&other)
            )))
        }
    };
    let c = ctx()?;
    let id = c.next_sub.get();
    c.next_sub.set(id + 1);
    let whence = lua
        .inspect_stack(1)
        .map(|d| {
            let src = d.source();
            format!(
                "{}:{}",
                src.short_src.as_deref().unwrap_or("?"),
                d.curr_line()
            )
        })
        .unwrap_or_default();
    let target = match (&server, patref) {
        (Some(s), _) => format!(" {}/{}", s.proxy_name, s.name),
        (None, Some((_, name))) => format!(" {name}"),
        (None, None) => String::new(),
    };
    let stat = Arc::new(SubStat {
        id,
        desc: format!("{}{} at {}", type_names(&types), target, whence),
        lost: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    c.shared
        .subs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(stat.clone());
    let gone = Arc::new(AtomicBool::new(false));
    if let Some((head, _)) = patref {
        // a SERVER type on a pattern list's subscription never fires, as in HAProxy
        let tx = c.patref_tx.clone();
        let wake = c.pump_wake.clone();
        let (gone, stat, shared) = (gone.clone(), stat.clone(), c.shared.clone());
        head.watch(Arc::new(move |ev| {
            if gone.load(Ordering::Relaxed) {
                return false;
            }
            match tx.try_send((id, ev, crate::model::unix_now())) {
                Ok(()) => wake.notify_one(),
                // the engine is gone
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => return false,
                Err(crossbeam_channel::TrySendError::Full(_)) => {
                    // the Lua thread is behind (a script changing lists in a loop): counted
                    stat.lost.fetch_add(1, Ordering::Relaxed);
                    shared.sub_lost.fetch_add(1, Ordering::Relaxed);
                }
            }
            true
        }));
    }
    let mask = if patref.is_some() {
        mask.only_pat_ref()
    } else {
        mask
    };
    let sub = Rc::new(LuaSub {
        mask,
        server,
        func,
        queue: RefCell::new(VecDeque::new()),
        paused: Cell::new(false),
        active: Cell::new(true),
        ending: Cell::new(false),
        notify: Notify::new(),
        stat,
        gone,
    });
    c.subs.borrow_mut().push(sub.clone());
    tokio::task::spawn_local(sub_runner(sub.clone()));
    lua.create_userdata(EventSub(sub)).map(Value::UserData)
}

fn matches_server(sub: &LuaSub, ev: &ServerEvent) -> bool {
    match (&sub.server, &ev.reference) {
        (None, _) => true,
        (Some(s), Some(r)) => Arc::ptr_eq(s, r),
        (Some(s), None) => s.proxy_uuid == ev.proxy_uuid && s.puid == ev.puid && s.rid == ev.rid,
    }
}

/// Queues one bus event for every matching subscription.
pub(crate) fn route(ctx: &Ctx, ev: Arc<ServerEvent>) {
    // Routing never runs Lua, so the list cannot change under this borrow.
    let subs = ctx.subs.borrow();
    for s in subs.iter() {
        if !s.active.get() || !matches_server(s, &ev) {
            continue;
        }
        if ev.kind == EventType::ServerDel && s.server.is_some() {
            s.ending.set(true);
            s.notify.notify_one();
        }
        if !s.mask.contains(ev.kind) {
            continue;
        }
        enqueue(ctx, s, Queued::Server(ev.clone()));
    }
}

/// Queues one event for `s`, pausing it past HAProxy's backlog (the loss counted).
fn enqueue(ctx: &Ctx, s: &LuaSub, ev: Queued) {
    if s.paused.get() {
        s.stat.lost.fetch_add(1, Ordering::Relaxed);
        ctx.shared.sub_lost.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let n = {
        let mut q = s.queue.borrow_mut();
        q.push_back(ev);
        q.len()
    };
    if n > MAX_BACKLOG {
        s.paused.set(true);
        crate::logging::warning(&format!(
            "Lua event_hdl: pausing the subscription because the handler fails to keep up the pace ({n} unconsumed events) from {}.",
            s.stat.desc
        ));
    }
    s.notify.notify_one();
}

/// Queues a pattern list's change for the `Patref:event_sub` subscription `id` (gone ones
/// are skipped), when it selected that type.
pub(crate) fn route_patref(ctx: &Ctx, id: u64, ev: PatEvent, when: i64) {
    let subs = ctx.subs.borrow();
    if let Some(s) = subs.iter().find(|s| s.stat.id == id && s.active.get()) {
        if s.mask.has_name(ev.name()) {
            enqueue(ctx, s, Queued::PatRef(ev, when));
        }
    }
}

/// Drains one subscription's queue: strictly in order, one callback at a time.
async fn sub_runner(sub: Rc<LuaSub>) {
    loop {
        if !sub.active.get() {
            return;
        }
        let next = sub.queue.borrow_mut().pop_front();
        let ev = match next {
            Some(Queued::Server(ev)) => ev,
            Some(Queued::PatRef(kind, when)) => {
                match patref_args(&sub, kind, when) {
                    Ok(args) => {
                        sub.stat.delivered.fetch_add(1, Ordering::Relaxed);
                        if let Err(m) =
                            runner::run_event(sub.func.clone(), args, "event", None).await
                        {
                            crate::logging::alert(&format!("Lua event_hdl: {m}."));
                        }
                    }
                    Err(e) => crate::logging::alert(&format!("Lua event_hdl: {e}.")),
                }
                continue;
            }
            None => {
                if sub.ending.get() {
                    unsub(&sub);
                    return;
                }
                sub.paused.set(false);
                sub.notify.notified().await;
                continue;
            }
        };
        let args = match event_args(&sub, &ev) {
            Ok(a) => a,
            Err(e) => {
                crate::logging::alert(&format!("Lua event_hdl: {e}."));
                continue;
            }
        };
        sub.stat.delivered.fetch_add(1, Ordering::Relaxed);
        if let Err(m) = runner::run_event(sub.func.clone(), args, "event", ev.published).await {
            crate::logging::alert(&format!("Lua event_hdl: {m}."));
        }
    }
}

/// A PAT_REF callback's arguments: HAProxy pushes no event data, so `(event, sub, when)`.
fn patref_args(sub: &Rc<LuaSub>, kind: PatEvent, when: i64) -> mlua::Result<MultiValue> {
    let c = ctx()?;
    let lua = &c.lua;
    let ud = lua.create_userdata(EventSub(sub.clone()))?;
    Ok(MultiValue::from_vec(vec![
        Value::String(lua.create_string(kind.name())?),
        Value::UserData(ud),
        Value::Integer(when),
    ]))
}

fn event_args(sub: &Rc<LuaSub>, ev: &ServerEvent) -> mlua::Result<MultiValue> {
    let c = ctx()?;
    let lua = &c.lua;
    let data = event_table(lua, ev)?;
    let ud = lua.create_userdata(EventSub(sub.clone()))?;
    Ok(MultiValue::from_vec(vec![
        Value::String(lua.create_string(ev.kind.name())?),
        Value::Table(data),
        Value::UserData(ud),
        Value::Integer(ev.when),
    ]))
}

fn flags_table(lua: &Lua, f: AdminFlags) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, v) in f.named() {
        t.set(k, v)?;
    }
    Ok(t)
}

fn check_table(lua: &Lua, r: &CheckReport) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    if let Some(n) = r.outcome.lua_name() {
        t.set("result", n)?;
    }
    t.set("agent", r.result.agent)?;
    t.set("duration", r.result.duration_ms)?;
    let reason = lua.create_table()?;
    reason.set("short", r.result.status.short())?;
    reason.set("desc", r.result.status.desc())?;
    if r.result.status.has_code() {
        // HAProxy's `check->code`: 0 when the check set none (a tcp-check)
        reason.set("code", r.result.code.unwrap_or(0))?;
    }
    t.set("reason", reason)?;
    let h = lua.create_table()?;
    h.set("cur", r.health.cur)?;
    h.set("rise", r.health.rise)?;
    h.set("fall", r.health.fall)?;
    t.set("health", h)?;
    Ok(t)
}

/// The ServerEvent table (`event_data`) exactly as HAProxy 3.2 builds it.
pub(crate) fn event_table(lua: &Lua, ev: &ServerEvent) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("name", &*ev.name)?;
    t.set("puid", ev.puid)?;
    t.set("rid", ev.rid)?;
    t.set("proxy_name", &*ev.proxy_name)?;
    t.set("proxy_uuid", ev.proxy_uuid)?;
    // Kept even if the server was deleted since: its methods then return nil (as HAProxy,
    // which holds a reference on the server while the event is pending).
    if let Some(r) = &ev.reference {
        t.set("reference", LServer(r.clone()))?;
    }
    match &ev.data {
        EventData::None => {}
        EventData::State(s) => {
            let st = lua.create_table()?;
            st.set("admin", s.admin)?;
            if let Some(c) = &s.check {
                st.set("check", check_table(lua, c)?)?;
            }
            st.set("cause", s.cause.as_str())?;
            st.set("old_state", s.old_state.name())?;
            st.set("new_state", s.new_state.name())?;
            st.set("requeued", s.requeued)?;
            t.set("state", st)?;
        }
        EventData::Admin(a) => {
            let at = lua.create_table()?;
            at.set("cause", a.cause.as_str())?;
            at.set("old_admin", flags_table(lua, a.old_admin)?)?;
            at.set("new_admin", flags_table(lua, a.new_admin)?)?;
            at.set("requeued", a.requeued)?;
            t.set("admin", at)?;
        }
        EventData::Check(r) => {
            t.set("check", check_table(lua, r)?)?;
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(lua: &Lua, src: &str) -> mlua::Result<EventMask> {
        let v: Value = lua.load(src).eval()?;
        parse_types(&v)
    }

    #[test]
    fn event_type_names_and_errors_match_haproxy() {
        let lua = Lua::new();
        assert_eq!(types(&lua, r#"{"SERVER"}"#).unwrap(), EventMask::SERVER);
        let m = types(&lua, r#"{"SERVER_DOWN", "SERVER_UP"}"#).unwrap();
        assert!(m.contains(EventType::ServerDown) && !m.contains(EventType::ServerAdd));
        let err = |src: &str| match types(&lua, src) {
            Err(mlua::Error::RuntimeError(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(err(r#"{"NOPE"}"#), "'NOPE' event type is unknown");
        // "NONE" is in HAProxy's name table but maps to no family: unknown too
        assert_eq!(err(r#"{"NONE"}"#), "'NONE' event type is unknown");
        // 3.2's PAT_REF family loads (and fires only for a Patref's own subscriptions)
        assert_eq!(types(&lua, r#"{"PAT_REF"}"#).unwrap(), EventMask::PAT_REF);
        let m = types(&lua, r#"{"PAT_REF_ADD", "PAT_REF_COMMIT", "SERVER_UP"}"#).unwrap();
        assert!(m.contains(EventType::ServerUp) && !m.contains(EventType::ServerDown));
        assert_eq!(
            err(r#"{"PAT_REF_NOPE"}"#),
            "'PAT_REF_NOPE' event type is unknown"
        );
        assert_eq!(err("{}"), "event_sub: no valid event types were provided");
        assert_eq!(
            err("42"),
            "bad argument #1 to 'event_sub' (table of strings expected, got number)"
        );
    }
}
