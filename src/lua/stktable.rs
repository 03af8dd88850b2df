//! HAProxy's StickTable class (`Proxy.stktable`): `info()`, `lookup(key)` and `dump([filter])`
//! over a proxy's live stick table, with the tables and error strings of its hlua_fcn.c.

use std::sync::Arc;

use mlua::{Lua, Table as LuaTable, UserData, UserDataMethods, Value};

use crate::model::Proxy;
use crate::stick::filter::{Filter, Op};
use crate::stick::table::{Dumped, Entry, Shown};
use crate::stick::{DataType, Key, KeySample, KeyType, Schema, Table};

/// A StickTable object.
pub(crate) struct LStickTable(Arc<Table>);

/// `Proxy.stktable`: the proxy's table, or nil when it declares none.
pub(crate) fn of(lua: &Lua, p: &Proxy) -> mlua::Result<Value> {
    match &p.table {
        None => Ok(Value::Nil),
        Some(t) => lua
            .create_userdata(LStickTable(t.clone()))
            .map(Value::UserData),
    }
}

/// HAProxy's key size: 4 for ip and integer, 16 for ipv6, the string's bytes with its NUL.
fn key_size(k: KeyType) -> usize {
    match k {
        KeyType::Ip | KeyType::Integer => 4,
        KeyType::Ipv6 => 16,
        KeyType::String(n) => n + 1,
        KeyType::Binary(n) => n,
    }
}

/// Sets each stored type's value of `d` in `t`.
fn values(t: &LuaTable, d: &Dumped) -> mlua::Result<()> {
    for (ty, _, v) in &d.values {
        match v {
            Shown::Num(n) => t.set(ty.name(), *n)?,
            Shown::Text(s) => t.set(ty.name(), s.as_str())?,
        }
    }
    Ok(())
}

/// `(nil, message)`, the convention of HAProxy's `hlua_error`.
fn fail(msg: String) -> mlua::Result<(Value, Option<String>)> {
    Ok((Value::Nil, Some(msg)))
}

fn filters(t: &Table, arg: Value) -> Result<Vec<Filter>, String> {
    let list = match arg {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(l) => l,
        _ => return Err("filter table expected".into()),
    };
    let mut out = Vec::new();
    for pair in list.pairs::<Value, Value>() {
        let (_, entry) = pair.map_err(|e| e.to_string())?;
        let n = out.len() + 1;
        if out.len() >= 4 {
            return Err("Filter table too large (len > 4)".into());
        }
        let Value::Table(e) = entry else {
            return Err(format!(
                "Filter table entry must be a triplet: {{\"data_col\", \"op\", val}} (entry #{n})"
            ));
        };
        if e.raw_len() != 3 {
            return Err(format!(
                "Filter table entry must be a triplet: {{\"data_col\", \"op\", val}} (entry #{n})"
            ));
        }
        let col = match e.raw_get::<Value>(1).map_err(|e| e.to_string())? {
            Value::String(s) => s.to_string_lossy().to_string(),
            _ => {
                return Err(format!(
                    "Filter table data column must be string (entry #{n})"
                ))
            }
        };
        let ty = match DataType::by_name(&col) {
            Ok(Some(ty)) if t.config.schema.has(ty) => ty,
            _ => {
                return Err(format!(
                    "Filter table data column not present in stick table (entry #{n})"
                ))
            }
        };
        let op = match e.raw_get::<Value>(2).map_err(|e| e.to_string())? {
            Value::String(s) => s.to_string_lossy().to_string(),
            _ => return Err(format!("Filter table operator must be string (entry #{n})")),
        };
        let Some(op) = Op::parse(&op) else {
            return Err(format!("Unknown operator in filter table (entry #{n})"));
        };
        // lua_tointeger: a number or a numeric string, else 0
        let value = match e.raw_get::<Value>(3).map_err(|e| e.to_string())? {
            Value::Integer(i) => i,
            Value::Number(f) if f.fract() == 0.0 => f as i64,
            Value::String(s) => s
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
            _ => 0,
        };
        out.push(Filter { ty, op, value });
    }
    Ok(out)
}

impl UserData for LStickTable {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("info", |lua, this, ()| {
            let t = &this.0;
            let info = lua.create_table()?;
            info.set("type", t.config.key.name())?;
            info.set("length", key_size(t.config.key))?;
            info.set("size", t.config.size)?;
            info.set("used", t.used())?;
            info.set("nopurge", t.config.nopurge)?;
            info.set(
                "expire",
                t.config.expire.map_or(0, |d| d.as_millis() as i64),
            )?;
            let data = lua.create_table()?;
            for (ty, period) in t.config.schema.types() {
                data.set(ty.name(), if ty.is_rate() { *period as i64 } else { -1 })?;
            }
            info.set("data", data)?;
            Ok(info)
        });
        m.add_method("lookup", |lua, this, key: mlua::String| {
            let t = &this.0;
            let Some(key) = t.config.key.key(&KeySample::Bytes(&key.as_bytes())) else {
                return Ok(Value::Nil);
            };
            let Some(d) = t.dump(|k, _, _, _| *k == key).pop() else {
                return Ok(Value::Nil);
            };
            let out = lua.create_table()?;
            out.set("use", d.refs)?;
            out.set("expire", d.exp)?;
            values(&out, &d)?;
            Ok(Value::Table(out))
        });
        m.add_method("dump", |lua, this, filter: Value| {
            let t = &this.0;
            let fs = match filters(t, filter) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            let keep =
                |_: &Key, en: &Entry, s: &Schema, now: u64| fs.iter().all(|f| f.keeps(en, s, now));
            let out = lua.create_table()?;
            for d in t.dump(keep) {
                let row = lua.create_table()?;
                values(&row, &d)?;
                match &d.raw {
                    Key::Int(i) => out.set(*i, row)?,
                    Key::Bytes(_) if matches!(t.config.key, KeyType::Binary(_)) => {
                        return fail("Unsupported stick table key type".into())
                    }
                    Key::Bytes(b) => out.set(lua.create_string(b)?, row)?,
                    _ => out.set(d.key.as_str(), row)?,
                }
            }
            Ok((Value::Table(out), None))
        });
    }
}
