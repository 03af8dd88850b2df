//! HAProxy 3.2's `core.get_patref(name)` and its Patref class over the ACLs' pattern lists:
//! `get_name`, `is_map`, `add`, `add_bulk`, `del`, `purge`, `prepare`/`commit`/`giveup`,
//! `set`, `ref[key]` and `event_sub`. A change is the same as the Runtime API's (`add acl`...):
//! every expression using the file sees it at its next connection, and PAT_REF events fire.

use std::cell::RefCell;
use std::sync::Arc;

use mlua::{Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value};

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
    let c = ctx()?;
    let groups = patref::groups(
        c.reg
            .proxies()
            .iter()
            .flat_map(|p| p.config.rules.acls.refs()),
    );
    match patref::find(groups, name) {
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
    /// Checks `key` against every expression using the list (HAProxy's parser message).
    fn check(&self, key: &str) -> mlua::Result<()> {
        match self.group.iter().find_map(|r| r.check(key).err()) {
            Some(e) => Err(fail(e)),
            None => Ok(()),
        }
    }

    /// Adds `key` now, or to the prepared version.
    fn add_one(&self, key: &str, events: bool) -> mlua::Result<()> {
        self.check(key)?;
        if let Some(next) = self.staged.borrow_mut().as_mut() {
            next.push(key.to_string());
            return Ok(());
        }
        for r in &self.group {
            r.add(key).map_err(fail)?;
        }
        if events {
            self.group[0].fire(PatEvent::Add);
        }
        Ok(())
    }
}

impl UserData for LPatref {
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
        m.add_method("commit", |_, this, ()| {
            let Some(next) = this.staged.borrow_mut().take() else {
                return Err(fail("Nothing to do"));
            };
            for r in &this.group {
                r.clear();
                for key in &next {
                    r.add(key).map_err(fail)?;
                }
            }
            this.group[0].fire(PatEvent::Commit);
            Ok(true)
        });
        m.add_method("purge", |_, this, ()| {
            for r in &this.group {
                r.clear();
            }
            this.group[0].fire(PatEvent::Clear);
            Ok(true)
        });
        m.add_method("add", |_, this, (key, _value): (String, Option<String>)| {
            this.add_one(&key, true)?;
            Ok(true)
        });
        m.add_method("add_bulk", |_, this, t: mlua::Table| {
            // HAProxy loads a bulk without an event per entry
            for v in t.sequence_values::<String>() {
                this.add_one(&v?, false)?;
            }
            Ok(true)
        });
        m.add_method("del", |_, this, key: String| {
            if let Some(next) = this.staged.borrow_mut().as_mut() {
                let before = next.len();
                next.retain(|k| *k != key);
                return Ok(next.len() != before);
            }
            let removed = this
                .group
                .iter()
                .map(|r| r.remove_text(&key))
                .collect::<Vec<_>>()
                .contains(&true);
            if removed {
                this.group[0].fire(PatEvent::Del);
            }
            Ok(removed)
        });
        m.add_method("set", |_, _, _: MultiValue| -> mlua::Result<bool> {
            Err(fail(
                "Patref:set() changes a map entry's value; harp has ACL pattern lists only",
            ))
        });
        m.add_method("event_sub", |lua, this, (types, func): (Value, Value)| {
            super::events::subscribe_patref(lua, types, func, &this.group[0], &this.name)
        });
        // `ref[key]`: true when the list holds the key (an ACL entry has no value)
        m.add_meta_method(MetaMethod::Index, |_, this, key: String| {
            let held = match this.staged.borrow().as_ref() {
                Some(next) => next.contains(&key),
                None => this.group[0].entries().iter().any(|e| e.text == key),
            };
            Ok(if held {
                Value::Boolean(true)
            } else {
                Value::Nil
            })
        });
    }
}
