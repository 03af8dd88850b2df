//! HAProxy 3.2's `core.get_patref(name)` and its Patref class over the ACLs' pattern lists:
//! `get_name`, `is_map`, `add`, `add_bulk`, `del`, `purge`, `prepare`/`commit`/`giveup`,
//! `set`, `ref[key]` and `event_sub`. A change is the same as the Runtime API's (`add acl`...):
//! every expression using the file sees it at its next connection, and PAT_REF events fire.

use std::cell::Cell;
use std::sync::Arc;

use mlua::{
    AnyUserData, FromLuaMulti, Function, Lua, MetaMethod, MultiValue, UserData, UserDataFields,
    UserDataMethods, Value,
};

use super::engine::ctx;
use crate::rules::patref::{self, PatEvent, PatRef, Target};

/// A Patref object: the lists of one file, and the version a script prepares.
pub(crate) struct LPatref {
    name: String,
    group: Vec<Arc<PatRef>>,
    /// The version `prepare()` made and no `commit()`/`giveup()` ended yet: the script's
    /// changes go there (the Runtime API's `@<ver>` commands see it too).
    prepared: Cell<Option<u32>>,
}

/// `core.get_patref(name)`: the pattern list loaded from file `name` (or `#<id>`), or nil.
pub(crate) fn get(lua: &Lua, name: &str) -> mlua::Result<Value> {
    match ctx()?.reg.pattern_list(name) {
        None => Ok(Value::Nil),
        Some(group) => lua
            .create_userdata(LPatref {
                name: group[0]
                    .file
                    .clone()
                    .unwrap_or_else(|| format!("#{}", group[0].id())),
                group,
                prepared: Cell::new(None),
            })
            .map(Value::UserData),
    }
}

fn fail(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

impl LPatref {
    /// Whether its entries carry values (a map's file, or an ACL's under `-M`).
    fn two_column(&self) -> bool {
        self.group.iter().any(|r| r.two_column)
    }

    /// Adds entries, to the prepared version if there is one (checked all the same).
    fn add_pairs(&self, pairs: &[(&str, Option<&str>)]) -> mlua::Result<()> {
        let ver = self.prepared.get().map(|v| v.to_string());
        let to = patref::group_add_versioned(&self.group, ver.as_deref(), pairs).map_err(fail)?;
        if to == patref::AddedTo::Current {
            for _ in pairs {
                self.group[0].fire(PatEvent::Add);
            }
        }
        Ok(())
    }

    /// The entries the script sees: its prepared version's, else the current ones.
    fn entries(&self) -> Vec<patref::Entry> {
        match self.prepared.get() {
            Some(v) => patref::entries_at(&self.group, v),
            None => self.group[0].entries(),
        }
    }

    /// The value of the first entry of `key` (`Some(None)`: present, without a value).
    fn get(&self, key: &str) -> Option<Option<String>> {
        self.entries()
            .into_iter()
            .find(|e| e.text == key)
            .map(|e| e.value)
    }
}

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
            let (key, value): (String, Option<String>) = FromLuaMulti::from_lua_multi(args, lua)?;
            let value = value.as_deref().filter(|_| this.two_column());
            this.add_pairs(&[(key.as_str(), value)])?;
            Ok(Value::Boolean(true))
        }
        "add_bulk" => {
            let t: mlua::Table = FromLuaMulti::from_lua_multi(args, lua)?;
            let text = |v: Value, at: i32| -> mlua::Result<String> {
                match v {
                    Value::String(s) => Ok(s.to_str()?.to_string()),
                    other => Err(fail(format!(
                        "bad argument #{at} to 'add_bulk' (string expected, got {})",
                        super::events::lua_type(&other)
                    ))),
                }
            };
            // a map's table is key = value; an ACL's an array of keys
            let two = this.two_column();
            let mut pairs = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                pairs.push(if two {
                    (text(k, -2)?, Some(text(v, -1)?))
                } else {
                    (text(v, -1)?, None)
                });
            }
            // as HAProxy's bulk load: what came before a bad entry stays
            for (k, v) in &pairs {
                this.add_pairs(&[(k.as_str(), v.as_deref())])?;
            }
            Ok(Value::Boolean(true))
        }
        "commit" => {
            let Some(ver) = this.prepared.take() else {
                return Err(fail("Nothing to do"));
            };
            // each list switches in one step: no connection sees it empty or half built
            if !patref::group_commit(&this.group, ver) {
                return Err(fail("Commit failed"));
            }
            this.group[0].fire(PatEvent::Commit);
            Ok(Value::Boolean(true))
        }
        "set" => {
            let (key, value, force): (String, String, Option<bool>) =
                FromLuaMulti::from_lua_multi(args, lua)?;
            // a missing key is added when forced, else "entry not found"
            if this.get(&key).is_none() {
                if force == Some(true) {
                    let v = Some(value.as_str()).filter(|_| this.two_column());
                    this.add_pairs(&[(key.as_str(), v)])?;
                    return Ok(Value::Boolean(true));
                }
                return Err(fail("entry not found"));
            }
            if let Some(ver) = this.prepared.get() {
                for r in &this.group {
                    r.check(&key, Some(&value)).map_err(fail)?;
                }
                patref::with_version(&this.group, ver, |list| {
                    for e in list
                        .iter_mut()
                        .filter(|e| e.text == key && e.value.is_some())
                    {
                        e.value = Some(value.clone());
                    }
                });
                return Ok(Value::Boolean(true));
            }
            // an ACL entry has no value: HAProxy succeeds all the same (and publishes)
            if this.two_column() {
                match patref::group_set(&this.group, Target::Key(&key), &value) {
                    Ok(()) => {}
                    // deleted meanwhile (by the Runtime API): as if it had been missing
                    Err(_) if force == Some(true) && this.get(&key).is_none() => {
                        this.add_pairs(&[(key.as_str(), Some(value.as_str()))])?;
                        return Ok(Value::Boolean(true));
                    }
                    Err(e) => return Err(fail(e)),
                }
            }
            this.group[0].fire(PatEvent::Set);
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
        m.add_method("is_map", |_, this, ()| {
            Ok(this.group.iter().any(|r| r.is_map))
        });
        m.add_method("prepare", |_, this, ()| {
            // a new version starts empty, as HAProxy's new generation does
            this.prepared.set(Some(patref::group_prepare(&this.group)));
            Ok(())
        });
        m.add_method("giveup", |_, this, ()| {
            if let Some(ver) = this.prepared.take() {
                patref::group_clear_at(&this.group, ver);
            }
            Ok(())
        });
        m.add_method("purge", |_, this, ()| {
            // every version, the prepared ones included
            patref::group_purge(&this.group);
            this.group[0].fire(PatEvent::Clear);
            Ok(true)
        });
        m.add_method("del", |_, this, key: String| {
            if let Some(ver) = this.prepared.get() {
                let removed = patref::with_version(&this.group, ver, |list| {
                    let before = list.len();
                    list.retain(|e| e.text != key);
                    list.len() != before
                });
                return Ok(removed.unwrap_or(false));
            }
            let removed = patref::group_remove(&this.group, Target::Key(&key));
            if removed {
                this.group[0].fire(PatEvent::Del);
            }
            Ok(removed)
        });
        // `ref[key]`: the first entry's value, true for an entry without one, else nil
        m.add_meta_method(MetaMethod::Index, |lua, this, key: String| {
            Ok(match this.get(&key) {
                None => Value::Nil,
                Some(None) => Value::Boolean(true),
                Some(Some(v)) => Value::String(lua.create_string(&v)?),
            })
        });
    }
}
