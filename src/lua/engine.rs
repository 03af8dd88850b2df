//! The Lua thread: state set-up, script loading, init phase, tasks and the event pump.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Value};
use tokio::sync::Notify;

use super::events::LuaSub;
use super::{runner, Shared};
use crate::config::LuaTune;
use crate::model::Registry;

/// Where the engine is in HAProxy's phases; `register_task` defers tasks until `Running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Running script bodies.
    Body,
    /// Running `register_init` functions.
    Init,
    /// Normal operation.
    Running,
}

/// Everything the Lua-facing functions need, owned by the Lua thread.
pub(crate) struct Ctx {
    pub lua: Lua,
    pub reg: Arc<Registry>,
    pub shared: Arc<Shared>,
    pub tune: LuaTune,
    pub phase: Cell<Phase>,
    /// `register_init` functions with the `core.thread` value of the script that registered them.
    pub inits: RefCell<Vec<(Function, i64)>>,
    pub pending_tasks: RefCell<Vec<(Function, MultiValue)>>,
    pub subs: RefCell<Vec<Rc<LuaSub>>>,
    pub next_sub: Cell<u64>,
    /// Woken by `Queue:alarm()`/`push` for `core.wait()`.
    pub wake: Rc<Notify>,
    pub http: RefCell<Option<reqwest::Client>>,
    /// Lua wrappers raising plain string errors, by name (`server.event_sub`, `http.get`...).
    pub wrapped: RefCell<std::collections::HashMap<&'static str, Function>>,
    /// Runtime API commands registered by scripts (`core.register_cli`): path and function.
    pub cli: RefCell<Vec<(Vec<String>, Function)>>,
    /// Where pattern lists report their changes for `Patref:event_sub` (subscription id,
    /// event, time), from whichever thread made them.
    pub patref_tx: crossbeam_channel::Sender<(u64, crate::rules::patref::PatEvent, i64)>,
    /// Drained by the event pump.
    pub patref_rx: crossbeam_channel::Receiver<(u64, crate::rules::patref::PatEvent, i64)>,
    /// Wakes the event pump (bus events and pattern list changes).
    pub pump_wake: Arc<Notify>,
}

thread_local! {
    static CTX: RefCell<Option<Rc<Ctx>>> = const { RefCell::new(None) };
}

/// The engine context of the current (Lua) thread.
pub(crate) fn ctx() -> mlua::Result<Rc<Ctx>> {
    CTX.with(|c| c.borrow().clone())
        .ok_or_else(|| mlua::Error::RuntimeError("harp Lua engine not running".into()))
}

/// A fresh Lua state with the standard libraries HAProxy opens (including `debug`).
pub(crate) fn new_state() -> Lua {
    // SAFETY: `debug` is the only extra library over `ALL_SAFE`; HAProxy opens it for scripts,
    // which are trusted operator configuration. No C modules are loaded by harp itself.
    unsafe { Lua::unsafe_new_with(StdLib::ALL_SAFE | StdLib::DEBUG, LuaOptions::default()) }
}

/// Reads and compiles one script; errors read `file:line: message` (or `file: cannot open`).
pub(crate) fn compile(lua: &Lua, file: &Path) -> Result<Function, String> {
    let name = file.display().to_string();
    let src = std::fs::read(file).map_err(|e| format!("{name}: cannot open file: {e}"))?;
    lua.load(src)
        .set_name(format!("@{name}"))
        .into_function()
        .map_err(|e| clean_error(&e))
}

/// `harp -c`: compile without running.
pub(crate) fn compile_only(file: &Path) -> Result<(), String> {
    let lua = new_state();
    compile(&lua, file).map(|_| ())
}

/// A wrapper made by `raising::wrap`, for object fields that must raise plain errors.
pub(crate) fn wrapped(name: &str) -> mlua::Result<Function> {
    ctx()?
        .wrapped
        .borrow()
        .get(name)
        .cloned()
        .ok_or_else(|| mlua::Error::RuntimeError(format!("{name}: not available")))
}

/// An mlua error as one readable message (syntax errors without mlua's decoration).
pub(crate) fn clean_error(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { traceback, cause } => {
            format!("{}\n{traceback}", clean_error(cause))
        }
        mlua::Error::MemoryError(m) => format!("not enough memory: {m}"),
        other => other.to_string(),
    }
}

fn setup(reg: &Arc<Registry>, shared: &Arc<Shared>) -> Result<Rc<Ctx>, String> {
    let lua = new_state();
    let g = reg.global();
    if g.lua.maxmem > 0 {
        lua.set_memory_limit(g.lua.maxmem as usize)
            .map_err(|e| format!("tune.lua.maxmem: {e}"))?;
    }
    // bounded: a script that never lets its callbacks run cannot grow it without end
    let (patref_tx, patref_rx) = crossbeam_channel::bounded(4096);
    let ctx = Rc::new(Ctx {
        lua: lua.clone(),
        reg: reg.clone(),
        shared: shared.clone(),
        tune: g.lua.clone(),
        phase: Cell::new(Phase::Body),
        inits: RefCell::new(Vec::new()),
        pending_tasks: RefCell::new(Vec::new()),
        subs: RefCell::new(Vec::new()),
        next_sub: Cell::new(1),
        wake: Rc::new(Notify::new()),
        http: RefCell::new(None),
        wrapped: RefCell::new(std::collections::HashMap::new()),
        cli: RefCell::new(Vec::new()),
        patref_tx,
        patref_rx,
        pump_wake: Arc::new(Notify::new()),
    });
    CTX.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    let e = |e: mlua::Error| clean_error(&e);
    // lua-prepend-path
    let package: mlua::Table = lua.globals().get("package").map_err(e)?;
    for p in &g.lua_prepend_paths {
        let key = if p.cpath { "cpath" } else { "path" };
        let cur: String = package.get(key).map_err(e)?;
        package.set(key, format!("{};{}", p.path, cur)).map_err(e)?;
    }
    super::core_api::install(&lua, reg).map_err(e)?;
    super::map::install(&lua).map_err(e)?;
    Ok(ctx)
}

/// Body of the Lua thread.
pub(crate) fn thread_main(
    reg: Arc<Registry>,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    ready: Sender<Result<(), String>>,
) {
    runner::set_long_run_priority(reg.global().lua.priority);
    runner::set_max_cpu(reg.global().lua.max_cpu);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(runner::restore_priority)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot build Lua runtime: {e}")));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let ctx = match setup(&reg, &shared) {
            Ok(c) => c,
            Err(m) => {
                let _ = ready.send(Err(m));
                return;
            }
        };
        // Subscribe before any script runs so that nothing published during init is missed.
        let bus_wake = ctx.pump_wake.clone();
        let w = bus_wake.clone();
        let bus_sub = reg
            .bus()
            .subscribe("lua", 65536, Some(Box::new(move || w.notify_one())));
        if let Err(m) = load_all(&ctx).await {
            reg.bus().unsubscribe(&bus_sub);
            let _ = ready.send(Err(m));
            CTX.with(|c| *c.borrow_mut() = None);
            return;
        }
        ctx.phase.set(Phase::Running);
        let _ = ready.send(Ok(()));
        let tasks: Vec<_> = ctx.pending_tasks.borrow_mut().drain(..).collect();
        for (f, args) in tasks {
            runner::spawn_task(f, args);
        }
        // the Runtime API's calls of commands scripts registered (`core.register_cli`)
        let (cli_tx, cli_rx) = tokio::sync::mpsc::unbounded_channel();
        *shared.cli_calls.lock().unwrap_or_else(|e| e.into_inner()) = Some(cli_tx);
        let cli = tokio::task::spawn_local(super::cli::serve(ctx.clone(), cli_rx));
        let pump_sub = bus_sub.clone();
        let pump_ctx = ctx.clone();
        let pump = tokio::task::spawn_local(async move {
            loop {
                while let Ok(ev) = pump_sub.receiver().try_recv() {
                    super::events::route(&pump_ctx, ev);
                }
                while let Ok((sub, ev, when)) = pump_ctx.patref_rx.try_recv() {
                    super::events::route_patref(&pump_ctx, sub, ev, when);
                }
                pump_ctx
                    .shared
                    .bus_dropped
                    .store(pump_sub.dropped(), Ordering::Relaxed);
                bus_wake.notified().await;
            }
        });
        stop.notified().await;
        shared
            .cli_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        cli.abort();
        pump.abort();
        reg.bus().unsubscribe(&bus_sub);
        for s in ctx.subs.borrow().iter() {
            s.active.set(false);
            // pattern lists' watchers let go of this engine's subscriptions
            s.gone.store(true, std::sync::atomic::Ordering::Relaxed);
            s.notify.notify_one();
        }
        ctx.subs.borrow_mut().clear();
        CTX.with(|c| *c.borrow_mut() = None);
    });
    drop(local);
    rt.shutdown_background();
}

/// Loads every script (body), then runs every `register_init` function, in order.
async fn load_all(ctx: &Rc<Ctx>) -> Result<(), String> {
    let lua = ctx.lua.clone();
    let core: mlua::Table = lua.globals().get("core").map_err(|e| clean_error(&e))?;
    for load in &ctx.reg.global().lua_loads {
        let f = compile(&lua, &load.file)?;
        core.set("thread", if load.per_thread { 1 } else { 0 })
            .map_err(|e| clean_error(&e))?;
        let mut args = MultiValue::new();
        for a in &load.args {
            args.push_back(Value::String(
                lua.create_string(a).map_err(|e| clean_error(&e))?,
            ));
        }
        runner::run(f, args, "body")
            .await
            .map_err(|m| format!("Lua: {m} (loaded by {})", load.location))?;
    }
    core.set("thread", 0).map_err(|e| clean_error(&e))?;
    ctx.phase.set(Phase::Init);
    loop {
        let next = {
            let mut v = ctx.inits.borrow_mut();
            if v.is_empty() {
                None
            } else {
                Some(v.remove(0))
            }
        };
        let Some((f, thread)) = next else { break };
        core.set("thread", thread).map_err(|e| clean_error(&e))?;
        runner::run(f, MultiValue::new(), "init")
            .await
            .map_err(|m| format!("Lua init: {m}"))?;
    }
    core.set("thread", 0).map_err(|e| clean_error(&e))?;
    runner::update_memory(ctx);
    Ok(())
}
