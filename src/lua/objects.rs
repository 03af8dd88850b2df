//! `Proxy` and `Server` objects. They hold `Arc`s to the live model, read its atomics, and send
//! every change through `Registry::apply` with cause "changed from Lua script", like the CLI.
//! Methods on a deleted server return nil.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mlua::{Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::engine::ctx;
use crate::model::{AdminAction, Cause, Command, ForcedHealth, OpState, Proxy, Server};

/// A Server object.
#[derive(Clone)]
pub(crate) struct LServer(pub Arc<Server>);

/// A Proxy object.
#[derive(Clone)]
pub(crate) struct LProxy(pub Arc<Proxy>);

/// Sends a command; `Some(text)` carries the refusal (what setters return to Lua).
fn apply(cmd: Command) -> mlua::Result<Option<String>> {
    let c = ctx()?;
    Ok(c.reg.apply(cmd).err().map(|e| e.0))
}

fn proxy_of(s: &Server) -> Option<Arc<Proxy>> {
    ctx().ok()?.reg.proxy_at(s.proxy_index).cloned()
}

/// `get_stats()` / `show stat`-like status word.
fn status_word(s: &Server) -> &'static str {
    let a = s.admin();
    if a.maint() {
        "MAINT"
    } else if a.drain() {
        "DRAIN"
    } else {
        match s.op_state() {
            OpState::Stopped => "DOWN",
            OpState::Stopping => "NOLB",
            // as `show stat`: a server without health check is "no check" while up
            OpState::Starting | OpState::Running if !s.params.check => "no check",
            OpState::Starting | OpState::Running => "UP",
        }
    }
}

fn server_stats(lua: &Lua, s: &Server) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let c = &s.counters;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    t.set("pxname", &*s.proxy_name)?;
    t.set("svname", &*s.name)?;
    t.set("status", status_word(s))?;
    t.set("weight", s.effective_weight())?;
    t.set("scur", g(&c.cur_sess))?;
    t.set("smax", g(&c.max_sess))?;
    t.set("stot", g(&c.tot_sess))?;
    t.set("slim", s.maxconn())?;
    t.set("qcur", g(&c.queue_cur))?;
    t.set("qmax", g(&c.queue_max))?;
    t.set("bin", g(&c.bytes_in))?;
    t.set("bout", g(&c.bytes_out))?;
    t.set("econ", g(&c.econ))?;
    t.set("eresp", g(&c.eresp))?;
    t.set("wretr", g(&c.wretr))?;
    t.set("wredis", g(&c.wredis))?;
    t.set("chkfail", g(&c.chkfail))?;
    t.set("chkdown", g(&c.chkdown))?;
    t.set("downtime", g(&c.downtime))?;
    t.set("lbtot", g(&c.lbtot))?;
    t.set("act", if s.params.backup { 0 } else { 1 })?;
    t.set("bck", if s.params.backup { 1 } else { 0 })?;
    t.set("iid", s.proxy_uuid)?;
    t.set("sid", s.puid)?;
    t.set(
        "lastchg",
        (crate::model::unix_now() as u64).saturating_sub(s.last_change()),
    )?;
    let cs = s.check_state();
    if cs.configured {
        t.set("check_status", cs.status().short())?;
    }
    Ok(t)
}

macro_rules! live {
    ($this:expr) => {
        if $this.0.deleted() {
            return Ok(Value::Nil);
        }
    };
}

impl UserData for LServer {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("name", |_, this| Ok(this.0.name.to_string()));
        f.add_field_method_get("puid", |_, this| Ok(this.0.puid));
        // a field holding a wrapper so that errors reach scripts as plain strings
        f.add_field_method_get("event_sub", |_, _this| {
            super::engine::wrapped("server.event_sub")
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get_name", |lua, this, ()| {
            live!(this);
            lua.create_string(&*this.0.name).map(Value::String)
        });
        m.add_method("get_puid", |_, this, ()| {
            live!(this);
            Ok(Value::Integer(this.0.puid.into()))
        });
        m.add_method("get_rid", |_, this, ()| {
            live!(this);
            Ok(Value::Integer(this.0.rid.into()))
        });
        m.add_method("is_draining", |_, this, ()| {
            live!(this);
            Ok(Value::Boolean(this.0.admin().drain()))
        });
        m.add_method("is_backup", |_, this, ()| {
            live!(this);
            Ok(Value::Boolean(this.0.params.backup))
        });
        m.add_method("is_dynamic", |_, this, ()| {
            live!(this);
            Ok(Value::Boolean(this.0.dynamic))
        });
        m.add_method("get_cur_sess", |_, this, ()| {
            live!(this);
            Ok(Value::Integer(
                this.0.counters.cur_sess.load(Ordering::Relaxed) as i64,
            ))
        });
        m.add_method("get_pend_conn", |_, this, ()| {
            live!(this);
            Ok(Value::Integer(
                this.0.counters.queue_cur.load(Ordering::Relaxed) as i64,
            ))
        });
        m.add_method("get_weight", |_, this, ()| {
            live!(this);
            Ok(Value::Integer(this.0.uweight().into()))
        });
        m.add_method("set_weight", |lua, this, w: String| {
            live!(this);
            let r = apply(Command::SetWeight {
                server: this.0.clone(),
                weight: w,
            })?;
            opt_str(lua, r)
        });
        m.add_method("get_maxconn", |_, this, ()| {
            live!(this);
            Ok(Value::Integer(this.0.maxconn().into()))
        });
        m.add_method("set_maxconn", |lua, this, v: String| {
            live!(this);
            let Ok(maxconn) = v.trim().parse::<u32>() else {
                return opt_str(lua, Some("Integer value expected.".into()));
            };
            let r = apply(Command::SetMaxconn {
                server: this.0.clone(),
                maxconn,
            })?;
            opt_str(lua, r)
        });
        m.add_method("get_addr", |lua, this, ()| {
            live!(this);
            // HAProxy prints IPv6 without brackets: "::1:80"
            let a = this.0.addr();
            lua.create_string(format!("{}:{}", a.ip(), a.port()))
                .map(Value::String)
        });
        m.add_method(
            "set_addr",
            |lua, this, (addr, port): (String, Option<Value>)| {
                live!(this);
                let Ok(ip) = addr.parse() else {
                    return opt_str(lua, Some(format!("Invalid addr '{addr}'")));
                };
                let port = match port {
                    None | Some(Value::Nil) => None,
                    Some(Value::Integer(p)) => u16::try_from(p).ok(),
                    Some(Value::String(s)) => s.to_str()?.parse::<u16>().ok(),
                    Some(Value::Number(n)) => u16::try_from(n as i64).ok(),
                    Some(_) => None,
                };
                let r = apply(Command::SetAddr {
                    server: this.0.clone(),
                    ip,
                    port,
                    cause: Cause::Lua,
                })?;
                opt_str(lua, r)
            },
        );
        m.add_method("get_stats", |lua, this, ()| {
            live!(this);
            server_stats(lua, &this.0).map(Value::Table)
        });
        m.add_method("get_proxy", |lua, this, ()| {
            live!(this);
            match proxy_of(&this.0) {
                Some(p) => lua.create_userdata(LProxy(p)).map(Value::UserData),
                None => Ok(Value::Nil),
            }
        });
        m.add_method("shut_sess", |_, this, ()| {
            live!(this);
            apply(Command::ShutdownSessions {
                server: this.0.clone(),
            })?;
            Ok(Value::Nil)
        });
        for (name, action) in [
            ("set_drain", AdminAction::Drain),
            ("set_maint", AdminAction::Maint),
            ("set_ready", AdminAction::Ready),
        ] {
            m.add_method(name, move |_, this, ()| {
                live!(this);
                apply(Command::SetAdmin {
                    server: this.0.clone(),
                    action,
                    cause: Cause::Lua,
                })?;
                Ok(Value::Nil)
            });
        }
        for (name, enabled) in [("check_enable", true), ("check_disable", false)] {
            m.add_method(name, move |_, this, ()| {
                live!(this);
                apply(Command::SetCheckEnabled {
                    server: this.0.clone(),
                    enabled,
                })?;
                Ok(Value::Nil)
            });
        }
        for (name, health) in [
            ("check_force_up", ForcedHealth::Up),
            ("check_force_nolb", ForcedHealth::Stopping),
            ("check_force_down", ForcedHealth::Down),
        ] {
            m.add_method(name, move |_, this, ()| {
                live!(this);
                // HAProxy forces nothing on a tracking server
                if this.0.tracked().is_none() {
                    apply(Command::SetHealth {
                        server: this.0.clone(),
                        health,
                        cause: Cause::Lua,
                    })?;
                }
                Ok(Value::Nil)
            });
        }
        // as in HAProxy, each does nothing to a server whose agent is not configured
        // (enable) or not enabled (force)
        for (name, enabled) in [("agent_enable", true), ("agent_disable", false)] {
            m.add_method(name, move |_, this, ()| {
                live!(this);
                apply(Command::SetAgentEnabled {
                    server: this.0.clone(),
                    enabled,
                })?;
                Ok(Value::Nil)
            });
        }
        for (name, up) in [("agent_force_up", true), ("agent_force_down", false)] {
            m.add_method(name, move |_, this, ()| {
                live!(this);
                apply(Command::SetAgentHealth {
                    server: this.0.clone(),
                    up,
                    cause: Cause::Lua,
                })?;
                Ok(Value::Nil)
            });
        }
        m.add_method("tracking", |lua, this, ()| {
            live!(this);
            match this.0.tracked() {
                Some(t) => lua.create_userdata(LServer(t.clone())).map(Value::UserData),
                None => Ok(Value::Nil),
            }
        });
        m.add_method("get_trackers", |lua, this, ()| {
            live!(this);
            let t = lua.create_table()?;
            for (i, s) in this.0.trackers().into_iter().enumerate() {
                t.set(i + 1, LServer(s))?;
            }
            Ok(Value::Table(t))
        });
        m.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("Server {}/{}", this.0.proxy_name, this.0.name))
        });
    }
}

/// The raw `Server:event_sub(types, fn)` behind the wrapper: `(true, sub|nil)` or `(false, msg)`.
pub(crate) fn raw_server_event_sub(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(
        |lua, (ud, types, func): (mlua::AnyUserData, Value, Value)| {
            let srv = ud.borrow::<LServer>()?.0.clone();
            if srv.deleted() {
                return super::raising::outcome(lua, Ok(Value::Nil));
            }
            let r = super::events::subscribe(lua, types, func, Some(srv));
            super::raising::outcome(lua, r)
        },
    )
}

fn opt_str(lua: &Lua, r: Option<String>) -> mlua::Result<Value> {
    match r {
        Some(s) => lua.create_string(s).map(Value::String),
        None => Ok(Value::Nil),
    }
}

/// A table name→Server of the proxy's current servers (built on each access, so servers added
/// at runtime appear).
fn servers_table(lua: &Lua, p: &Proxy) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for s in p.servers().iter() {
        t.set(&*s.name, LServer(s.clone()))?;
    }
    Ok(t)
}

fn host_name() -> String {
    crate::sys::hostname().unwrap_or_else(|| "localhost".into())
}

fn mailers_table(lua: &Lua, p: &Proxy) -> mlua::Result<Value> {
    let ea = &p.config.email_alert;
    let Some(name) = &ea.mailers else {
        return Ok(Value::Nil);
    };
    let c = ctx()?;
    let t = lua.create_table()?;
    t.set("track_server_health", p.config.log_health_checks)?;
    t.set("log_level", ea.level)?;
    let ms = lua.create_table()?;
    if let Some(m) = c.reg.mailers(name) {
        for (n, a) in &m.mailers {
            ms.set(n.as_str(), a.to_string())?;
        }
        t.set("mailservers_timeout", m.timeout_mail.as_millis() as i64)?;
    }
    t.set("mailservers", ms)?;
    t.set(
        "smtp_hostname",
        ea.myhostname.clone().unwrap_or_else(host_name),
    )?;
    if let Some(f) = &ea.from {
        t.set("smtp_from", f.as_str())?;
    }
    if let Some(to) = &ea.to {
        t.set("smtp_to", to.as_str())?;
    }
    Ok(Value::Table(t))
}

fn proxy_stats(lua: &Lua, p: &Proxy) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let c = &p.counters;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    t.set("pxname", &*p.name)?;
    t.set("iid", p.uuid)?;
    t.set("scur", g(&c.cur_sess))?;
    t.set("smax", g(&c.max_sess))?;
    t.set("stot", g(&c.tot_sess))?;
    t.set("bin", g(&c.bytes_in))?;
    t.set("bout", g(&c.bytes_out))?;
    if p.is_backend() {
        t.set("svname", "BACKEND")?;
        let up = p.srv_act() + p.srv_bck() > 0;
        t.set("status", if up { "UP" } else { "DOWN" })?;
        t.set("act", p.srv_act())?;
        t.set("bck", p.srv_bck())?;
        t.set("econ", g(&c.econ))?;
        t.set("lbtot", g(&c.lbtot))?;
        t.set("qcur", g(&c.queue_cur))?;
        t.set("chkdown", g(&c.chkdown))?;
    } else {
        t.set("svname", "FRONTEND")?;
        let stopped = p.stopped.load(Ordering::Relaxed) || p.paused.load(Ordering::Relaxed);
        t.set("status", if stopped { "STOP" } else { "OPEN" })?;
        t.set("dreq", g(&c.denied_req))?;
        t.set("dcon", g(&c.denied))?;
        t.set("dses", g(&c.denied_sess))?;
    }
    Ok(t)
}

impl UserData for LProxy {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("name", |_, this| Ok(this.0.name.to_string()));
        f.add_field_method_get("uuid", |_, this| Ok(this.0.uuid));
        f.add_field_method_get("servers", |lua, this| servers_table(lua, &this.0));
        f.add_field_method_get("listeners", |lua, _this| lua.create_table());
        f.add_field_method_get("stktable", |lua, this| super::stktable::of(lua, &this.0));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get_name", |_, this, ()| Ok(this.0.name.to_string()));
        m.add_method("get_uuid", |_, this, ()| Ok(this.0.uuid));
        m.add_method("get_srv_act", |_, this, ()| Ok(this.0.srv_act()));
        m.add_method("get_srv_bck", |_, this, ()| Ok(this.0.srv_bck()));
        m.add_method("get_stats", |lua, this, ()| proxy_stats(lua, &this.0));
        m.add_method("get_cap", |_, this, ()| Ok(this.0.cap_name()));
        m.add_method("get_mode", |_, this, ()| Ok(this.0.config.mode.name()));
        m.add_method("get_mailers", |lua, this, ()| mailers_table(lua, &this.0));
        // as the Runtime API's `disable|enable|shutdown frontend`; a refusal is not an error
        m.add_method("pause", |_, this, ()| {
            let _ = ctx()?.reg.pause_frontend(&this.0);
            Ok(())
        });
        m.add_method("resume", |_, this, ()| {
            let _ = ctx()?.reg.resume_frontend(&this.0);
            Ok(())
        });
        m.add_method("stop", |_, this, ()| {
            let _ = ctx()?.reg.stop_frontend(&this.0);
            Ok(())
        });
        m.add_method("shut_bcksess", |_, this, ()| {
            for s in this.0.servers().iter() {
                if s.params.backup {
                    let _ = apply(Command::ShutdownSessions { server: s.clone() });
                }
            }
            Ok(())
        });
        m.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("Proxy {}", this.0.name))
        });
    }
}
