//! Fuzz target: JSON into a sandboxed Lua state and back through the public
//! conversion entry points (`plugins::convert::to_lua`/`from_lua`), which
//! every event, config, cache and storage value crosses. The event
//! conversion may become a lazy proxy; these two stay the contract.
//!
//! Invariants beyond "no panic" (the conversion works on the raw Lua stack
//! in unsafe code, so this target runs under AddressSanitizer):
//! - round trip: what comes back equals what went in, where the conversion
//!   defines it: integers beyond i64 come back as the nearest float (Lua
//!   has no wider integer); a value over the nesting or memory limit may be
//!   refused with an error, never cut silently;
//! - the state stays usable across every input of a run (one state, as a
//!   plugin config keeps one: a stack slot or a reference left behind per
//!   conversion would overflow it or grow its memory), and Lua code sees
//!   as many entries as the JSON has.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use mlua::Lua;
use phs::plugins::convert::{from_lua, to_lua};
use phs::plugins::sandbox::{Limits, new_state};
use serde_json::{Number, Value};

thread_local! {
    /// One state for every input: what one conversion leaves behind shows up in the next.
    static LUA: RefCell<(Lua, mlua::Function, u32)> = RefCell::new({
        let (lua, _deadline) = new_state(&Limits::default()).expect("a sandboxed state");
        let count = lua
            .load("return function(v) if type(v) ~= 'table' then return 1 end local n = 0 for _ in pairs(v) do n = n + 1 end return n end")
            .eval::<mlua::Function>()
            .expect("the probe compiles");
        (lua, count, 0)
    });
}

/// The value as it comes back: integers beyond i64 as floats.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_some() => {
            n.as_f64().and_then(Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), canonical(v))).collect()),
        other => other.clone(),
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(input) else { return };
    LUA.with(|cell| {
        let (lua, count, calls) = &mut *cell.borrow_mut();
        let lua_value = match to_lua(lua, &json) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("deeper") || msg.contains("memory"), "refused for another reason: {msg}");
                return;
            }
        };
        let n: i64 = count.call(lua_value.clone()).expect("Lua reads the converted value");
        let expected = match &json {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 1,
        };
        assert_eq!(n as usize, expected, "Lua sees another number of entries");
        let back = from_lua(lua, lua_value).expect("a converted value converts back");
        assert_eq!(back, canonical(&json), "the round trip changed the value");

        *calls += 1;
        if *calls % 256 == 0 {
            lua.gc_collect().expect("a full collection");
            lua.gc_collect().expect("a full collection");
            // What is left after collecting is the state's own (well under 1 MiB), not the inputs'.
            assert!(lua.used_memory() <= 4 << 20, "memory grows: {} bytes", lua.used_memory());
        }
    });
});
