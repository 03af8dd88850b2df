//! Plain string errors. An `Err` returned by a Rust function reaches Lua as an mlua error
//! object whose text reads `runtime error: ...` plus a traceback; HAProxy's C functions raise
//! plain strings (`'NOPE' event type is unknown`). Functions whose errors scripts may catch with
//! `pcall` are therefore exposed through a small Lua wrapper: the Rust side returns
//! `(true, values...)` or `(false, message)` and the wrapper calls `error(message, 0)`.

use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Value};

const WRAPPER: &str = r#"
local raw = ...
local pack, unpack, raise = table.pack, table.unpack, error
return function(...)
  local r = pack(raw(...))
  if r[1] then
    return unpack(r, 2, r.n)
  end
  raise(r[2], 0)
end
"#;

/// Wraps `raw` (returning `(ok, ...)`) into a function that raises plain string errors.
pub(crate) fn wrap(lua: &Lua, raw: Function) -> mlua::Result<Function> {
    lua.load(WRAPPER).set_name("=[harp]").call(raw)
}

/// `Ok(v)` → `(true, v)`; a runtime error → `(false, message)`; other errors propagate.
pub(crate) fn outcome(lua: &Lua, r: mlua::Result<Value>) -> mlua::Result<MultiValue> {
    match r {
        Ok(v) => (true, v).into_lua_multi(lua),
        Err(mlua::Error::RuntimeError(m)) => (false, m).into_lua_multi(lua),
        Err(e) => Err(e),
    }
}
