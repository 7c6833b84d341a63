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
//! infinities become null.

use mlua::{Lua, LuaSerdeExt, Table, Value};
use serde_json::{Map, Number, Value as Json};

/// Nesting deeper than this is refused: a cyclic or absurd table from a
/// plugin must not overflow the stack.
const MAX_DEPTH: usize = 128;

pub fn to_lua(lua: &Lua, v: &Json) -> mlua::Result<Value> {
    Ok(match v {
        Json::Null => Value::NULL,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, x) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, x)?)?;
            }
            t.set_metatable(Some(lua.array_metatable()))?;
            Value::Table(t)
        }
        Json::Object(o) => {
            let t = lua.create_table_with_capacity(0, o.len())?;
            for (k, x) in o {
                t.raw_set(k.as_str(), to_lua(lua, x)?)?;
            }
            Value::Table(t)
        }
    })
}

pub fn from_lua(lua: &Lua, v: Value) -> mlua::Result<Json> {
    convert(lua, v, 0)
}

fn convert(lua: &Lua, v: Value, depth: usize) -> mlua::Result<Json> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime(format!("value nested deeper than {MAX_DEPTH} levels (a cycle?)")));
    }
    Ok(match v {
        Value::Nil => Json::Null,
        Value::LightUserData(ud) if ud == mlua::LightUserData(std::ptr::null_mut()) => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Integer(i) => Json::Number(i.into()),
        Value::Number(n) => Number::from_f64(n).map(Json::Number).unwrap_or(Json::Null),
        Value::String(s) => Json::String(s.to_str()?.to_string()),
        Value::Table(t) => table(lua, t, depth)?,
        other => return Err(mlua::Error::runtime(format!("a {} cannot be converted to JSON", other.type_name()))),
    })
}

fn table(lua: &Lua, t: Table, depth: usize) -> mlua::Result<Json> {
    let len = t.raw_len();
    let marked_array = t.metatable().is_some_and(|m| m == lua.array_metatable());
    let mut map = Map::new();
    let mut extra_keys = false;
    if !marked_array {
        t.for_each::<Value, Value>(|k, v| {
            let key = match k {
                Value::Integer(i) if i >= 1 && (i as usize) <= len => return Ok(()),
                Value::String(s) => s.to_str()?.to_string(),
                Value::Integer(i) => i.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Ok(()),
            };
            extra_keys = true;
            map.insert(key, convert(lua, v, depth + 1)?);
            Ok(())
        })?;
    }
    if marked_array || (len > 0 && !extra_keys) {
        let mut out = Vec::with_capacity(len);
        for i in 1..=len {
            out.push(convert(lua, t.raw_get(i)?, depth + 1)?);
        }
        return Ok(Json::Array(out));
    }
    // A mixed table: its sequence part joins the object under string keys.
    for i in 1..=len {
        map.insert(i.to_string(), convert(lua, t.raw_get(i)?, depth + 1)?);
    }
    Ok(Json::Object(map))
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
}
