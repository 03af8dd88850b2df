//! HAProxy's Lua Map class: `Map.new(file[, method])` loads a map file while the scripts start
//! (their bodies and init functions, as HAProxy allows), `map:lookup(key)` gives the value of
//! the key that matches or nil, `map:slookup(key)` the value or "". `Map._str`, `Map._beg`...
//! (and the older names without the underscore) number the match methods as HAProxy does.

use std::sync::Arc;

use mlua::{Function, IntoLuaMulti, Lua, MultiValue, UserData, UserDataMethods, Value};

use super::engine::{ctx, Phase};
use crate::rules::map::{cast_for, load_text_map};
use crate::rules::patref::PatRef;
use crate::rules::pattern::{Method, Value as Sample};

/// HAProxy's `pat_match_names`, in the order that numbers them.
const METHODS: [&str; 14] = [
    "found", "bool", "int", "ip", "bin", "len", "str", "beg", "sub", "dir", "dom", "end", "reg",
    "regm",
];

/// A Map object.
struct LMap(Arc<PatRef>);

impl UserData for LMap {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("lookup", |lua, this, key: Value| {
            Ok(match lookup(lua, this, key)? {
                Some(v) => Value::String(lua.create_string(&v)?),
                None => Value::Nil,
            })
        });
        m.add_method("slookup", |lua, this, key: Value| {
            let v = lookup(lua, this, key)?.unwrap_or_default();
            Ok(Value::String(lua.create_string(&v)?))
        });
    }
}

/// The value `key` finds (an integer map takes an integer, the others text).
fn lookup(lua: &Lua, map: &LMap, key: Value) -> mlua::Result<Option<Vec<u8>>> {
    let sample = if map.0.method() == Method::Int {
        Sample::Int(mlua::FromLua::from_lua(key, lua)?)
    } else {
        let s: mlua::String = mlua::FromLua::from_lua(key, lua)?;
        Sample::Str(s.as_bytes().to_vec())
    };
    let Some(sample) = cast_for(map.0.method(), sample) else {
        return Ok(None);
    };
    Ok(map.0.lookup(&sample).map(|v| match v {
        Sample::Str(s) | Sample::Bin(s) => s,
        other => other.to_text().into_bytes(),
    }))
}

/// `Map.new`'s work: `(true, map)` or `(false, message)`; the wrapper raises the message at
/// the caller's line, as HAProxy's `luaL_where(L, 1)` places it.
fn new(lua: &Lua, (file, method): (Value, Option<Value>)) -> mlua::Result<MultiValue> {
    let fail = |m: String| (false, m).into_lua_multi(lua);
    let Value::String(file) = file else {
        return fail("'new' needs at least 1 argument.".into());
    };
    let file = file.to_str()?.to_string();
    let index = match method {
        None | Some(Value::Nil) => 6,
        Some(Value::Integer(i)) => i,
        Some(Value::Number(n)) => n as i64,
        Some(_) => return fail("'new' needs a valid match method.".into()),
    };
    let Some(name) = usize::try_from(index).ok().and_then(|i| METHODS.get(i)) else {
        return fail("'new' needs a valid match method.".into());
    };
    let method = match *name {
        "found" | "bool" | "bin" | "len" | "regm" => None,
        n => Method::parse(n),
    };
    let Some(method) = method else {
        return fail("'new' doesn't support this match mode.".into());
    };
    if ctx()?.phase.get() == Phase::Running {
        return fail("'new': map: cannot load map at runtime.".into());
    }
    match load_text_map(&file, method, &("lua".to_string(), 0)) {
        Ok(list) => (true, LMap(list)).into_lua_multi(lua),
        Err(e) => fail(format!("'new': {e}.")),
    }
}

/// Raises the message at the caller's position (`error(m, 2)`).
const WRAPPER: &str = r#"
local raw = ...
return function(...)
  local ok, r = raw(...)
  if ok then return r end
  error(r, 2)
end
"#;

/// Installs the global `Map` class.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let class = lua.create_table()?;
    for (i, name) in METHODS.iter().enumerate() {
        class.set(*name, i)?;
        class.set(format!("_{name}"), i)?;
    }
    let raw = lua.create_function(new)?;
    let wrapped: Function = lua.load(WRAPPER).set_name("=[harp]").call(raw)?;
    class.set("new", wrapped)?;
    lua.globals().set("Map", class)
}
