//! HAProxy 3.2's `core.get_patref(name)` and its Patref class over the ACLs' pattern lists:
//! `get_name`, `is_map`, `add`, `add_bulk`, `del`, `purge`, `prepare`/`commit`/`giveup`,
//! `set`, `ref[key]` and `event_sub`. A change is the same as the Runtime API's (`add acl`...):
//! every expression using the file sees it at its next connection, and PAT_REF events fire.

use std::cell::RefCell;
use std::sync::Arc;

use mlua::{
    AnyUserData, FromLuaMulti, Function, Lua, MetaMethod, MultiValue, UserData, UserDataFields,
    UserDataMethods, Value,
};

use super::engine::ctx;
use crate::rules::patref::{self, PatEvent, PatRef};

/// A Patref object: the lists of one file, and the version a script prepares.
pub(crate) struct LPatref {
    name: String,
    group: Vec<Arc<PatRef>>,
    /// `prepare()`d and not yet committed: the entries of the next version.
    staged: RefCell<Option<Vec<String>>>,
}

/// `core.get_patref(name)`: the pattern list loaded from file `name` (or `#<id>`), or nil.
pub(crate) fn get(lua: &Lua, name: &str) -> mlua::Result<Value> {
    match ctx()?.reg.acl_list(name) {
        None => Ok(Value::Nil),
        Some(group) => lua
            .create_userdata(LPatref {
                name: group[0]
                    .file
                    .clone()
                    .unwrap_or_else(|| format!("#{}", group[0].id())),
                group,
                staged: RefCell::new(None),
            })
            .map(Value::UserData),
    }
}

fn fail(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

impl LPatref {
    /// Adds `keys` now (one PAT_REF_ADD each, as HAProxy's loads publish), or to the prepared
    /// version; all or none.
    fn add_keys(&self, keys: &[&str]) -> mlua::Result<()> {
        if let Some(next) = self.staged.borrow_mut().as_mut() {
            patref::group_check(&self.group, keys).map_err(fail)?;
            next.extend(keys.iter().map(|k| k.to_string()));
            return Ok(());
        }
        patref::group_add(&self.group, keys).map_err(fail)?;
        for _ in keys {
            self.group[0].fire(PatEvent::Add);
        }
        Ok(())
    }

    /// Whether the current (or prepared) version holds `key`.
    fn holds(&self, key: &str) -> bool {
        match self.staged.borrow().as_ref() {
            Some(next) => next.iter().any(|k| k == key),
            None => self.group[0].entries().iter().any(|e| e.text == key),
        }
    }
}

/// The methods that can fail, by their key in the engine's wrapped functions: they raise
/// plain strings (`'x' is not a valid IPv4 or IPv6 address`), as HAProxy's do.
const RAISING: [(&str, &str); 5] = [
    ("add", "patref.add"),
    ("add_bulk", "patref.add_bulk"),
    ("commit", "patref.commit"),
    ("set", "patref.set"),
    ("event_sub", "patref.event_sub"),
];

/// The raw functions behind [`RAISING`], `(self, args...)` returning `(ok, ...)`.
pub(crate) fn raw_methods(lua: &Lua) -> mlua::Result<Vec<(&'static str, Function)>> {
    let mut v = Vec::new();
    for (name, key) in RAISING {
        let f = lua.create_function(move |lua, (ud, args): (AnyUserData, MultiValue)| {
            let this = ud.borrow::<LPatref>()?;
            let r = call(lua, &this, name, args);
            super::raising::outcome(lua, r)
        })?;
        v.push((key, f));
    }
    Ok(v)
}

/// One of [`RAISING`]'s methods.
fn call(lua: &Lua, this: &LPatref, name: &str, args: MultiValue) -> mlua::Result<Value> {
    match name {
        "add" => {
            let (key, _value): (String, Option<String>) = FromLuaMulti::from_lua_multi(args, lua)?;
            this.add_keys(&[key.as_str()])?;
            Ok(Value::Boolean(true))
        }
        "add_bulk" => {
            let t: mlua::Table = FromLuaMulti::from_lua_multi(args, lua)?;
            let mut keys = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                match pair?.1 {
                    Value::String(s) => keys.push(s.to_str()?.to_string()),
                    other => {
                        return Err(fail(format!(
                            "bad argument #-1 to 'add_bulk' (string expected, got {})",
                            super::events::lua_type(&other)
                        )))
                    }
                }
            }
            // as HAProxy's bulk load: what came before a bad entry stays
            for k in &keys {
                this.add_keys(&[k.as_str()])?;
            }
            Ok(Value::Boolean(true))
        }
        "commit" => {
            let Some(next) = this.staged.borrow().clone() else {
                return Err(fail("Nothing to do"));
            };
            // each list switches in one step: no connection sees it empty or half built
            patref::group_replace(&this.group, &next).map_err(fail)?;
            this.staged.borrow_mut().take();
            this.group[0].fire(PatEvent::Commit);
            Ok(Value::Boolean(true))
        }
        "set" => {
            let (key, _value, force): (String, String, Option<bool>) =
                FromLuaMulti::from_lua_multi(args, lua)?;
            // an ACL entry has no value to change: HAProxy succeeds on an existing key, and
            // adds a missing one when forced
            if !this.holds(&key) {
                if force == Some(true) {
                    this.add_keys(&[key.as_str()])?;
                    return Ok(Value::Boolean(true));
                }
                return Err(fail("entry not found"));
            }
            if this.staged.borrow().is_none() {
                this.group[0].fire(PatEvent::Set);
            }
            Ok(Value::Boolean(true))
        }
        _ => {
            let (types, func): (Value, Value) = FromLuaMulti::from_lua_multi(args, lua)?;
            super::events::subscribe_patref(lua, types, func, &this.group[0], &this.name)
        }
    }
}

impl UserData for LPatref {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        for (name, key) in RAISING {
            f.add_field_method_get(name, move |_, _this| super::engine::wrapped(key));
        }
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("get_name", |_, this, ()| Ok(this.name.clone()));
        m.add_method("is_map", |_, _, ()| Ok(false));
        m.add_method("prepare", |_, this, ()| {
            // a new version starts empty, as HAProxy's new generation does
            *this.staged.borrow_mut() = Some(Vec::new());
            Ok(())
        });
        m.add_method("giveup", |_, this, ()| {
            this.staged.borrow_mut().take();
            Ok(())
        });
        m.add_method("purge", |_, this, ()| {
            // every version, the prepared one included
            if let Some(next) = this.staged.borrow_mut().as_mut() {
                next.clear();
            }
            patref::group_clear(&this.group);
            this.group[0].fire(PatEvent::Clear);
            Ok(true)
        });
        m.add_method("del", |_, this, key: String| {
            if let Some(next) = this.staged.borrow_mut().as_mut() {
                let before = next.len();
                next.retain(|k| *k != key);
                return Ok(next.len() != before);
            }
            let removed = patref::group_remove_text(&this.group, &key);
            if removed {
                this.group[0].fire(PatEvent::Del);
            }
            Ok(removed)
        });
        // `ref[key]`: true when the list holds the key (an ACL entry has no value)
        m.add_meta_method(MetaMethod::Index, |_, this, key: String| {
            Ok(if this.holds(&key) {
                Value::Boolean(true)
            } else {
                Value::Nil
            })
        });
    }
}
