//! JSON values between Rust and Lua: events, and everything else a plugin
//! exchanges with phs (config, cache and storage values, json.encode/decode,
//! console arguments). Hand-written rather than through mlua's serde
//! support: building the table directly is about 3x faster, and the
//! conversion is most of the cost of a processEvent call.
//!
//! JSON arrays become tables with mlua's array metatable (so an empty array
//! stays an array on the way back); JSON null becomes `mlua::Value::NULL`.
//! Back from Lua, a table is an array when it has the array metatable or a
//! non-empty sequence part and no other keys, otherwise an object; NaN and
//! infinities become null. An event proxy ([`super::proxy`]) converts to
//! the object it stands for.

use std::ffi::c_int;
use std::sync::Arc;

use mlua::{Lua, LuaSerdeExt, Value, ffi};
use serde_json::{Map, Number, Value as Json};

use super::proxy;
use super::sandbox::Deadline;

/// Nesting deeper than this is refused: a cyclic or absurd table from a
/// plugin must not overflow the stack.
const MAX_DEPTH: usize = 128;

/// What a conversion from Lua tells tables apart by: the stack slots of the
/// array metatable and of the event proxies' metatable (nil in a state
/// without proxies), and the proxies of the call under way.
#[derive(Clone, Copy)]
pub(super) struct Marks {
    pub array_mt: c_int,
    pub proxy_mt: c_int,
    pub proxies: *mut proxy::Arena,
}

/// A value back from Lua is refused once it grows past this many bytes
/// (string bytes plus [`NODE_BYTES`] per value: about its JSON size). The
/// conversion runs in Rust, where the CPU hook never fires, and a table
/// referenced twice is converted twice, so `t = {t, t}` sixty times over
/// would otherwise take 2^60 steps and all the memory there is. The bound is
/// a quarter of a state's default memory limit: far above any honest cache,
/// storage or log value, and reached within about 0.2 s in a debug build.
pub const MAX_VALUE_BYTES: usize = 8 * 1024 * 1024;

/// What one value (a number, a table, a key) counts, besides its strings.
const NODE_BYTES: usize = 8;

/// Steps of a conversion between two looks at the clock.
const STEPS_PER_CHECK: u32 = 1024;

/// What a conversion from Lua may still spend: bytes (see
/// [`MAX_VALUE_BYTES`]), and the time of the call under way, if one is.
/// The conversion runs in Rust, where the CPU hook never fires: a value
/// well within the bytes (a million small tables, `console.log` of a table
/// shared at every level) takes tens of milliseconds to walk, which a call
/// under the main pipeline's budget must not spend uncut.
pub(super) struct Allowance {
    bytes: usize,
    /// The state's deadline; only an armed one (a call under way) cuts.
    deadline: Option<Arc<Deadline>>,
    steps: u32,
}

impl Allowance {
    pub(super) fn new(bytes: usize, deadline: Option<Arc<Deadline>>) -> Self {
        Allowance { bytes, deadline, steps: 0 }
    }

    /// `bytes`, and the time of the call `lua` runs now, if any.
    fn of(lua: &Lua, bytes: usize) -> Self {
        Allowance::new(bytes, Deadline::of(lua))
    }
}

// Both directions work on the raw Lua stack inside one `exec_raw` (one lock
// and one protected call per value) rather than through mlua's per-operation
// API, which locks and checks on every push; for an event that is the
// difference between about 2.5 and under 1 µs each way. The array metatable
// is passed in as the first stack slot.

pub fn to_lua(lua: &Lua, v: &Json) -> mlua::Result<Value> {
    match v {
        Json::Array(_) | Json::Object(_) => {}
        Json::String(s) => return Ok(Value::String(lua.create_string(s)?)),
        scalar => return Ok(scalar_to_lua(scalar)),
    }
    let mut too_deep = false;
    // SAFETY: push_json keeps to the stack slots it checks for, and leaves
    // exactly one value (the table) once the metatable slot is removed.
    let out: Value = unsafe {
        lua.exec_raw(lua.array_metatable(), |state| {
            too_deep = !push_json(state, v, 0, 1);
            ffi::lua_remove(state, 1);
        })?
    };
    if too_deep {
        return Err(mlua::Error::runtime(format!("value nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(out)
}

fn scalar_to_lua(v: &Json) -> Value {
    match v {
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        _ => Value::NULL,
    }
}

/// Pushes one value; false when it was cut off for nesting too deep. Arrays
/// get the metatable at stack index `array_mt` (an absolute index or an upvalue).
pub(super) unsafe fn push_json(state: *mut ffi::lua_State, v: &Json, depth: usize, array_mt: c_int) -> bool {
    unsafe {
        if depth > MAX_DEPTH || ffi::lua_checkstack(state, 3) == 0 {
            ffi::lua_pushnil(state);
            return false;
        }
        match v {
            Json::Null => ffi::lua_pushlightuserdata(state, std::ptr::null_mut()),
            Json::Bool(b) => ffi::lua_pushboolean(state, *b as c_int),
            Json::Number(n) => match n.as_i64() {
                Some(i) => ffi::lua_pushinteger(state, i),
                None => ffi::lua_pushnumber(state, n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => {
                ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
            }
            Json::Array(a) => {
                ffi::lua_createtable(state, a.len().min(c_int::MAX as usize) as c_int, 0);
                for (i, x) in a.iter().enumerate() {
                    if !push_json(state, x, depth + 1, array_mt) {
                        return false;
                    }
                    ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
                }
                ffi::lua_pushvalue(state, array_mt);
                ffi::lua_setmetatable(state, -2);
            }
            Json::Object(o) => {
                ffi::lua_createtable(state, 0, o.len().min(c_int::MAX as usize) as c_int);
                for (k, x) in o {
                    ffi::lua_pushlstring(state, k.as_ptr().cast(), k.len());
                    if !push_json(state, x, depth + 1, array_mt) {
                        ffi::lua_pop(state, 1);
                        return false;
                    }
                    ffi::lua_rawset(state, -3);
                }
            }
        }
        true
    }
}

pub fn from_lua(lua: &Lua, v: Value) -> mlua::Result<Json> {
    from_lua_within(lua, v, MAX_VALUE_BYTES)
}

/// [`from_lua`], refusing a value larger than `budget` bytes (see [`MAX_VALUE_BYTES`]).
pub fn from_lua_within(lua: &Lua, v: Value, budget: usize) -> mlua::Result<Json> {
    let t = match v {
        Value::Table(t) => t,
        Value::Nil => return Ok(Json::Null),
        Value::LightUserData(ud) if ud == mlua::LightUserData(std::ptr::null_mut()) => return Ok(Json::Null),
        Value::Boolean(b) => return Ok(Json::Bool(b)),
        Value::Integer(i) => return Ok(Json::Number(i.into())),
        Value::Number(n) => return Ok(Number::from_f64(n).map(Json::Number).unwrap_or(Json::Null)),
        Value::String(s) => return Ok(Json::String(s.to_str()?.to_string())),
        other => return Err(mlua::Error::runtime(format!("a {} cannot be converted to JSON", other.type_name()))),
    };
    let mut out = Err(String::new());
    let mut left = Allowance::of(lua, budget);
    // SAFETY: read_value only reads; lua_next walks keys it never converts in
    // place; the stack is emptied before returning.
    unsafe {
        lua.exec_raw::<()>((lua.array_metatable(), t), |state| {
            let marks = proxy::marks(state, 1);
            out = read_value(state, 2, 0, marks, &mut left);
            ffi::lua_settop(state, 0);
        })?;
    }
    out.map_err(mlua::Error::runtime)
}

/// Takes `n` bytes from the allowance, or says the value is too large, or
/// that the call ran out of time (which trips its deadline: the call fails
/// at its limit or budget however the plugin handles the error).
pub(super) fn spend(left: &mut Allowance, n: usize) -> Result<(), String> {
    left.bytes = left
        .bytes
        .checked_sub(n)
        .ok_or_else(|| "value too large to convert (a table shared many times over?)".to_string())?;
    left.steps = left.steps.wrapping_add(1);
    if left.steps % STEPS_PER_CHECK == 0
        && let Some(limit) = left.deadline.as_ref().and_then(|d| d.exceeded())
    {
        return Err(format!("the call ran out of its {} ms while its value was converted", limit.as_millis()));
    }
    Ok(())
}

/// A copy of an event's value, paid for from the budget as if it had been
/// read from Lua: a proxy read back whole copies its untouched entries, and
/// `{e, e, e, ...}` of one event must not cost more than the same of tables.
pub(super) fn clone_within(v: &Json, left: &mut Allowance) -> Result<Json, String> {
    spend(left, NODE_BYTES)?;
    Ok(match v {
        Json::String(s) => {
            spend(left, s.len())?;
            Json::String(s.clone())
        }
        Json::Array(a) => Json::Array(a.iter().map(|x| clone_within(x, left)).collect::<Result<_, _>>()?),
        Json::Object(o) => {
            let mut map = Map::new();
            for (k, x) in o {
                spend(left, k.len())?;
                map.insert(k.clone(), clone_within(x, left)?);
            }
            Json::Object(map)
        }
        scalar => scalar.clone(),
    })
}

/// The value at `idx` as JSON, paying for it from `left` (see [`MAX_VALUE_BYTES`]).
pub(super) unsafe fn read_value(
    state: *mut ffi::lua_State,
    idx: c_int,
    depth: usize,
    marks: Marks,
    left: &mut Allowance,
) -> Result<Json, String> {
    unsafe {
        spend(left, NODE_BYTES)?;
        Ok(match ffi::lua_type(state, idx) {
            ffi::LUA_TNIL => Json::Null,
            ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(state, idx).is_null() => Json::Null,
            ffi::LUA_TBOOLEAN => Json::Bool(ffi::lua_toboolean(state, idx) != 0),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(state, idx) != 0 => {
                Json::Number(ffi::lua_tointeger(state, idx).into())
            }
            ffi::LUA_TNUMBER => Number::from_f64(ffi::lua_tonumber(state, idx)).map(Json::Number).unwrap_or(Json::Null),
            ffi::LUA_TSTRING => Json::String(read_string(state, idx, left)?),
            ffi::LUA_TTABLE => read_table(state, idx, depth, marks, left)?,
            t => {
                let name = std::ffi::CStr::from_ptr(ffi::lua_typename(state, t)).to_string_lossy();
                return Err(format!("a {name} cannot be converted to JSON"));
            }
        })
    }
}

/// A string value (the caller checked its type, so lua_tolstring does not convert in place).
pub(super) unsafe fn read_string(
    state: *mut ffi::lua_State,
    idx: c_int,
    left: &mut Allowance,
) -> Result<String, String> {
    unsafe {
        let s = read_str(state, idx)?;
        spend(left, s.len())?;
        Ok(s.to_string())
    }
}

/// A string value, borrowed: valid while the string stays on the stack.
pub(super) unsafe fn read_str<'a>(state: *mut ffi::lua_State, idx: c_int) -> Result<&'a str, String> {
    unsafe {
        let mut len = 0;
        let ptr = ffi::lua_tolstring(state, idx, &mut len);
        let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
        std::str::from_utf8(bytes).map_err(|_| "a string is not valid UTF-8 text".to_string())
    }
}

/// Refuses a table nested `depth` deep past [`MAX_DEPTH`] (a cycle, most
/// likely) or past what the Lua stack can take for walking it.
pub(super) unsafe fn room(state: *mut ffi::lua_State, depth: usize) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err(format!("value nested deeper than {MAX_DEPTH} levels (a cycle?)"));
    }
    // SAFETY: lua_checkstack only grows the stack of a valid state.
    if unsafe { ffi::lua_checkstack(state, 4) } == 0 {
        return Err("value nested too deep for the Lua stack".into());
    }
    Ok(())
}

/// A table is an array when it has the array metatable, or a non-empty
/// sequence part and no other keys; otherwise an object, its sequence part
/// under string keys.
unsafe fn read_table(
    state: *mut ffi::lua_State,
    idx: c_int,
    depth: usize,
    marks: Marks,
    left: &mut Allowance,
) -> Result<Json, String> {
    unsafe {
        room(state, depth)?;
        let mut marked_array = false;
        if ffi::lua_getmetatable(state, idx) != 0 {
            marked_array = ffi::lua_rawequal(state, -1, marks.array_mt) != 0;
            let proxied = !marked_array && ffi::lua_rawequal(state, -1, marks.proxy_mt) != 0;
            ffi::lua_pop(state, 1);
            if proxied {
                return proxy::read(state, idx, depth, marks, left);
            }
        }
        let len = ffi::lua_rawlen(state, idx) as i64;
        let mut map = Map::new();
        if marked_array {
            return Ok(Json::Array(read_items(state, idx, len, depth, marks, left)?));
        }
        read_entries(state, idx, len, depth, marks, &mut map, left)?;
        finish_table(state, idx, len, depth, marks, map, left)
    }
}

/// Adds a table's entries outside its sequence part `1..=len` to `map`:
/// integer and float keys as their decimal text, other non-string keys skipped.
pub(super) unsafe fn read_entries(
    state: *mut ffi::lua_State,
    idx: c_int,
    len: i64,
    depth: usize,
    marks: Marks,
    map: &mut Map<String, Json>,
    left: &mut Allowance,
) -> Result<(), String> {
    unsafe {
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, idx) != 0 {
            let key = match ffi::lua_type(state, -2) {
                ffi::LUA_TNUMBER if ffi::lua_isinteger(state, -2) != 0 => {
                    let i = ffi::lua_tointeger(state, -2);
                    (i < 1 || i > len).then(|| i.to_string())
                }
                ffi::LUA_TNUMBER => Some(ffi::lua_tonumber(state, -2).to_string()),
                ffi::LUA_TSTRING => Some(read_string(state, -2, left)?),
                _ => None,
            };
            if let Some(key) = key {
                let top = ffi::lua_gettop(state);
                map.insert(key, read_value(state, top, depth + 1, marks, left)?);
            }
            ffi::lua_pop(state, 1);
        }
        Ok(())
    }
}

/// The table from its entries outside the sequence part (`map`) and its
/// sequence part `1..=len`: an array when there is nothing else.
pub(super) unsafe fn finish_table(
    state: *mut ffi::lua_State,
    idx: c_int,
    len: i64,
    depth: usize,
    marks: Marks,
    mut map: Map<String, Json>,
    left: &mut Allowance,
) -> Result<Json, String> {
    unsafe {
        let items = read_items(state, idx, len, depth, marks, left)?;
        if len > 0 && map.is_empty() {
            return Ok(Json::Array(items));
        }
        for (i, v) in items.into_iter().enumerate() {
            map.insert((i + 1).to_string(), v);
        }
        Ok(Json::Object(map))
    }
}

unsafe fn read_items(
    state: *mut ffi::lua_State,
    idx: c_int,
    len: i64,
    depth: usize,
    marks: Marks,
    left: &mut Allowance,
) -> Result<Vec<Json>, String> {
    unsafe {
        let mut out = Vec::with_capacity(len as usize);
        for i in 1..=len {
            ffi::lua_rawgeti(state, idx, i);
            let top = ffi::lua_gettop(state);
            out.push(read_value(state, top, depth + 1, marks, left)?);
            ffi::lua_pop(state, 1);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_json() {
        let lua = Lua::new();
        for v in [
            json!({"a": 1, "b": [1, 2, {"c": null}], "d": [], "e": {}, "f": 1.5, "g": "x", "h": true}),
            json!([]),
            json!({"deep": {"er": {"est": [[1], [2]]}}}),
        ] {
            let back = from_lua(&lua, to_lua(&lua, &v).unwrap()).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn lua_made_values() {
        let lua = Lua::new();
        let v: Value =
            lua.load("return {list = {1, 2, 3}, map = {x = 1}, empty = {}, mixed = {1, y = 2}}").eval().unwrap();
        let j = from_lua(&lua, v).unwrap();
        assert_eq!(j["list"], json!([1, 2, 3]));
        assert_eq!(j["map"], json!({"x": 1}));
        assert_eq!(j["empty"], json!({}));
        assert_eq!(j["mixed"], json!({"1": 1, "y": 2}));
        let cyclic: Value = lua.load("local t = {} t.self = t return t").eval().unwrap();
        assert!(from_lua(&lua, cyclic).unwrap_err().to_string().contains("deeper"));
        let f: Value = lua.load("return {f = function() end}").eval().unwrap();
        assert!(from_lua(&lua, f).unwrap_err().to_string().contains("function"));
    }

    /// A table shared at every level is 2^60 values as JSON: refused at once.
    #[test]
    fn shared_tables_cannot_make_a_conversion_exponential() {
        let lua = Lua::new();
        let v: Value = lua.load("local t = {'x'} for i = 1, 60 do t = {t, t} end return t").eval().unwrap();
        let started = std::time::Instant::now();
        assert!(from_lua(&lua, v).unwrap_err().to_string().contains("too large"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
        let s: Value = lua.load("return {string.rep('x', 1000)}").eval().unwrap();
        assert!(from_lua_within(&lua, s.clone(), 100).is_err());
        assert!(from_lua_within(&lua, s, 2000).is_ok());
    }
}
