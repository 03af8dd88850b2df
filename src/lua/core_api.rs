//! The `core` table: registration, logging, time, yielding helpers, queues, and the object
//! tables (`core.proxies`, `core.backends`, `core.frontends`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Function, Lua, MultiValue, Table, UserData, UserDataMethods, Value};
use tokio::sync::Notify;

use super::engine::{ctx, Phase};
use super::objects::LProxy;
use super::runner::{self, DONE_MARKER};
use crate::model::Registry;

/// `core.queue()`.
struct Queue(Rc<QueueInner>);

struct QueueInner {
    items: RefCell<VecDeque<Value>>,
    notify: Notify,
}

impl UserData for Queue {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("push", |_, this, v: Value| {
            this.0.items.borrow_mut().push_back(v);
            this.0.notify.notify_one();
            if let Ok(c) = ctx() {
                c.wake.notify_one();
            }
            Ok(true)
        });
        m.add_method("pop", |_, this, ()| {
            Ok(this.0.items.borrow_mut().pop_front().unwrap_or(Value::Nil))
        });
        m.add_method("size", |_, this, ()| Ok(this.0.items.borrow().len()));
        m.add_method("alarm", |_, _this, ()| Ok(true));
        m.add_async_method("pop_wait", |_, this, ()| {
            let q = this.0.clone();
            async move {
                loop {
                    let v = q.items.borrow_mut().pop_front();
                    if let Some(v) = v {
                        return Ok(v);
                    }
                    q.notify.notified().await;
                }
            }
        });
    }
}

/// `core.concat()`.
struct Concat(String);

impl UserData for Concat {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method_mut("add", |_, this, s: mlua::String| {
            this.0.push_str(&s.to_string_lossy());
            Ok(())
        });
        m.add_method("dump", |_, this, ()| Ok(this.0.clone()));
    }
}

fn proxies_table(lua: &Lua, reg: &Registry, want: Option<bool>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for p in reg.proxies() {
        let keep = match want {
            None => true,
            Some(true) => p.is_backend(),
            Some(false) => p.is_frontend(),
        };
        if keep {
            t.set(&*p.name, LProxy(p.clone()))?;
        }
    }
    Ok(t)
}

fn unsupported(lua: &Lua, core: &Table, name: &'static str) -> mlua::Result<()> {
    core.set(
        name,
        lua.create_function(move |_, args: MultiValue| {
            let what = match args.front() {
                Some(Value::String(s)) => s.to_string_lossy(),
                _ => String::new(),
            };
            crate::logging::warning(&format!(
                "Lua: core.{name}('{what}') is accepted but has no effect in harp yet."
            ));
            Ok(())
        })?,
    )
}

fn log_fn(lua: &Lua, level: Option<i64>) -> mlua::Result<Function> {
    lua.create_function(move |_, args: MultiValue| {
        let c = ctx()?;
        let mut it = args.into_iter();
        let lvl = match level {
            Some(l) => l,
            None => match it.next() {
                Some(Value::Integer(i)) => i,
                Some(Value::Number(n)) => n as i64,
                _ => {
                    return Err(mlua::Error::RuntimeError(
                        "bad argument #1 to 'log' (integer expected)".into(),
                    ))
                }
            },
        };
        let msg = match it.next() {
            Some(Value::String(s)) => s.to_string_lossy(),
            Some(Value::Integer(i)) => i.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Boolean(b)) => b.to_string(),
            _ => String::new(),
        };
        let g = c.reg.global();
        let loggers = c.tune.log_loggers && !g.logs.is_empty();
        super::log::emit(c.tune.log_stderr, loggers, lvl, &msg);
        if loggers && lvl >= 0 {
            // as HAProxy from a task or an init function: the global `log` targets
            c.reg.log_global(lvl.clamp(0, 7) as u8, &msg);
        }
        Ok(())
    })
}

/// `core.tokenize`'s arguments with `luaL_checkstring`'s and `hlua_checkboolean`'s messages.
fn tokenize_args(args: &MultiValue) -> mlua::Result<(Vec<u8>, Vec<u8>, bool)> {
    let string = |n: usize| match args.get(n - 1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(i)) => Ok(i.to_string().into_bytes()),
        Some(Value::Number(x)) => Ok(x.to_string().into_bytes()),
        other => Err(mlua::Error::RuntimeError(format!(
            "bad argument #{n} to 'tokenize' (string expected, got {})",
            other.map_or("no value", super::events::lua_type)
        ))),
    };
    let (s, sep) = (string(1)?, string(2)?);
    // HAProxy reads the third argument only when exactly three are given
    let noblank = match (args.len(), args.get(2)) {
        (3, Some(Value::Boolean(b))) => *b,
        (3, _) => {
            return Err(mlua::Error::RuntimeError(
                "bad argument #3 to 'tokenize' (boolean expected)".into(),
            ))
        }
        _ => false,
    };
    Ok((s, sep, noblank))
}

/// Installs the global `core` table.
/// HAProxy 2.9's `core.get_var(name)`: a `proc.` variable's value (`nil` when unset);
/// integers and booleans as integers, addresses as text.
fn get_var(lua: &Lua, reg: &Registry, args: mlua::MultiValue) -> mlua::Result<Value> {
    use crate::rules::vars::{Got, Scope, VarName};
    if args.len() != 1 {
        return Err(mlua::Error::RuntimeError(
            "'get_var' needs 1 arguments".into(),
        ));
    }
    let name = match args.into_iter().next() {
        Some(Value::String(s)) => s.to_str()?.to_string(),
        Some(Value::Integer(i)) => i.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "bad argument #1 to 'get_var' (string expected, got {})",
                other.as_ref().map_or("no value", super::events::lua_type)
            )))
        }
    };
    if !name.starts_with("proc.") {
        return Err(mlua::Error::RuntimeError(
            "'get_var': Only 'proc.' scope allowed to be retrieved in 'core.get_var()'.".into(),
        ));
    }
    let v = match VarName::parse(&name) {
        Ok(n) if n.scope == Scope::Proc => reg.vars.get(&n),
        _ => Got::Unset,
    };
    Ok(match v {
        Got::Val(crate::rules::Value::Int(i)) => Value::Integer(i),
        Got::Val(crate::rules::Value::Bool(b)) => Value::Integer(i64::from(b)),
        Got::Val(crate::rules::Value::Ip(ip)) => Value::String(lua.create_string(ip.to_string())?),
        Got::Val(crate::rules::Value::Str(s) | crate::rules::Value::Bin(s)) => {
            Value::String(lua.create_string(&s)?)
        }
        _ => Value::Nil,
    })
}

pub(crate) fn install(lua: &Lua, reg: &Arc<Registry>) -> mlua::Result<()> {
    let core = lua.create_table()?;
    for (name, v) in [
        ("emerg", 0),
        ("alert", 1),
        ("crit", 2),
        ("err", 3),
        ("warning", 4),
        ("notice", 5),
        ("info", 6),
        ("debug", 7),
        ("silent", -1),
    ] {
        core.set(name, v)?;
    }
    core.set("thread", 0)?;
    core.set("proxies", proxies_table(lua, reg, None)?)?;
    core.set("backends", proxies_table(lua, reg, Some(true))?)?;
    core.set("frontends", proxies_table(lua, reg, Some(false))?)?;

    core.set("log", log_fn(lua, None)?)?;
    core.set("Debug", log_fn(lua, Some(7))?)?;
    core.set("Info", log_fn(lua, Some(6))?)?;
    core.set("Warning", log_fn(lua, Some(4))?)?;
    core.set("Alert", log_fn(lua, Some(1))?)?;

    // harp only: microseconds from the bus publishing the event being handled to now (nil
    // outside an event callback), for measuring event-to-callback latency without touching
    // the event tables HAProxy defines.
    core.set(
        "harp_event_age_us",
        lua.create_function(|_, ()| Ok(runner::event_age_us()))?,
    )?;
    core.set(
        "register_cli",
        super::raising::wrap(
            lua,
            lua.create_function(|lua, args: MultiValue| {
                let r = super::cli::check_args(&args)
                    .and_then(|(path, usage, f)| super::cli::register(path, usage, f))
                    .map(|()| Value::Nil);
                super::raising::outcome(lua, r)
            })?,
        )?,
    )?;
    core.set(
        "register_init",
        lua.create_function(|lua, f: Function| {
            let c = ctx()?;
            if c.phase.get() != Phase::Body {
                return Err(mlua::Error::RuntimeError(
                    "register_init: not allowed outside of the script body".into(),
                ));
            }
            let core: Table = lua.globals().get("core")?;
            let thread: i64 = core.get("thread").unwrap_or(0);
            c.inits.borrow_mut().push((f, thread));
            Ok(())
        })?,
    )?;
    core.set(
        "register_task",
        lua.create_function(|_, (f, args): (Function, MultiValue)| {
            if args.len() > 4 {
                return Err(mlua::Error::RuntimeError(
                    "'register_task' accepts at most 4 arguments after the function".into(),
                ));
            }
            let c = ctx()?;
            if c.phase.get() == Phase::Running {
                runner::spawn_task(f, args);
            } else {
                c.pending_tasks.borrow_mut().push((f, args));
            }
            Ok(())
        })?,
    )?;
    for name in [
        "register_action",
        "register_fetches",
        "register_converters",
        "register_service",
        "register_filter",
    ] {
        unsupported(lua, &core, name)?;
    }
    let raw_sub = lua.create_function(|lua, (types, func): (Value, Value)| {
        let r = super::events::subscribe(lua, types, func, None);
        super::raising::outcome(lua, r)
    })?;
    core.set("event_sub", super::raising::wrap(lua, raw_sub)?)?;
    let c = ctx()?;
    let mut w = c.wrapped.borrow_mut();
    let srv_sub = super::objects::raw_server_event_sub(lua)?;
    w.insert("server.event_sub", super::raising::wrap(lua, srv_sub)?);
    for (key, f) in super::httpclient::raw_methods(lua)? {
        w.insert(key, super::raising::wrap(lua, f)?);
    }
    for (key, f) in super::patref::raw_methods(lua)? {
        w.insert(key, super::raising::wrap(lua, f)?);
    }
    drop(w);
    core.set(
        "now",
        lua.create_function(|lua, ()| {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let t = lua.create_table()?;
            t.set("sec", d.as_secs())?;
            t.set("usec", d.subsec_micros())?;
            Ok(t)
        })?,
    )?;
    core.set(
        "done",
        lua.create_function(|_, _v: MultiValue| -> mlua::Result<()> {
            Err(mlua::Error::RuntimeError(DONE_MARKER.into()))
        })?,
    )?;
    core.set(
        "concat",
        lua.create_function(|_, ()| Ok(Concat(String::new())))?,
    )?;
    core.set(
        "queue",
        lua.create_function(|_, ()| {
            Ok(Queue(Rc::new(QueueInner {
                items: RefCell::new(VecDeque::new()),
                notify: Notify::new(),
            })))
        })?,
    )?;
    core.set(
        "sleep",
        lua.create_async_function(|_, s: f64| async move {
            tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await;
            Ok(())
        })?,
    )?;
    core.set(
        "msleep",
        lua.create_async_function(|_, ms: f64| async move {
            tokio::time::sleep(Duration::from_secs_f64(ms.max(0.0) / 1000.0)).await;
            Ok(())
        })?,
    )?;
    core.set(
        "yield",
        lua.create_async_function(|_, ()| async move {
            tokio::task::yield_now().await;
            Ok(())
        })?,
    )?;
    core.set(
        "wait",
        lua.create_async_function(|_, ms: Option<f64>| async move {
            let c = ctx()?;
            let wake = c.wake.clone();
            drop(c);
            match ms {
                Some(ms) => {
                    let _ = tokio::time::timeout(
                        Duration::from_secs_f64(ms.max(0.0) / 1000.0),
                        wake.notified(),
                    )
                    .await;
                }
                None => wake.notified().await,
            }
            Ok(())
        })?,
    )?;
    core.set(
        "get_info",
        lua.create_function(|lua, ()| {
            let c = ctx()?;
            let t = lua.create_table()?;
            let r = &c.reg;
            t.set("Name", "harp")?;
            t.set("Version", env!("CARGO_PKG_VERSION"))?;
            t.set("Pid", std::process::id())?;
            t.set("Uptime_sec", r.started.elapsed().as_secs())?;
            t.set("CurrConns", r.counters.cur_conns.load(Ordering::Relaxed))?;
            t.set("CumConns", r.counters.cum_conns.load(Ordering::Relaxed))?;
            t.set("Stopping", r.stopping.load(Ordering::Relaxed) as u8)?;
            t.set("Nbthread", r.global().nbthread.unwrap_or(1))?;
            Ok(t)
        })?,
    )?;
    // `core.tokenize(str, separators[, noblank])`: HAProxy's splitter, on any byte of
    // `separators`; empty fields are kept unless `noblank` is true.
    let raw_tokenize = lua.create_function(|lua, args: MultiValue| {
        let r = tokenize_args(&args).and_then(|(s, sep, noblank)| {
            let t = lua.create_table()?;
            let fields = s.split(|b| sep.contains(b));
            for f in fields.filter(|f| !noblank || !f.is_empty()) {
                t.push(lua.create_string(f)?)?;
            }
            Ok(Value::Table(t))
        });
        super::raising::outcome(lua, r)
    })?;
    core.set("tokenize", super::raising::wrap(lua, raw_tokenize)?)?;
    // HAProxy 3.2's `core.get_patref(name)`: an ACL file's pattern list as a Patref object,
    // nil when no ACL loaded that file (harp has no map files)
    let raw_patref = lua.create_function(|lua, args: MultiValue| {
        let r = match args.front() {
            Some(Value::String(s)) => super::patref::get(lua, &s.to_str()?),
            Some(Value::Integer(i)) => super::patref::get(lua, &i.to_string()),
            Some(Value::Number(n)) => super::patref::get(lua, &n.to_string()),
            other => Err(mlua::Error::RuntimeError(format!(
                "bad argument #1 to 'get_patref' (string expected, got {})",
                other.map_or("no value", super::events::lua_type)
            ))),
        };
        super::raising::outcome(lua, r)
    })?;
    core.set("get_patref", super::raising::wrap(lua, raw_patref)?)?;
    let r = reg.clone();
    let raw_get_var = lua.create_function(move |lua, args: mlua::MultiValue| {
        super::raising::outcome(lua, get_var(lua, &r, args))
    })?;
    core.set("get_var", super::raising::wrap(lua, raw_get_var)?)?;
    core.set(
        "disable_legacy_mailers",
        lua.create_function(|_, ()| Ok(()))?,
    )?;
    core.set(
        "use_native_mailers_config",
        lua.create_function(|_, ()| Ok(()))?,
    )?;
    core.set(
        "tcp",
        lua.create_function(|_, ()| Ok(super::socket::Socket::new()))?,
    )?;
    core.set(
        "httpclient",
        lua.create_function(|_, ()| Ok(super::httpclient::HttpClient))?,
    )?;
    lua.globals().set("core", core)?;
    Ok(())
}
