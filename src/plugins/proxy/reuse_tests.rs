//! What a call leaves behind in a state's proxy machinery: nothing that
//! grows with the number of calls. A state serves every event of its shard
//! (10,000 in one capture batch), so a record, a live-table slot or a taken
//! key kept per call would make each call slower than the one before.

use mlua::{Lua, Table};
use serde_json::{Map, Value as Json, json};

use super::{LIVE_KEY, Proxies, key};
use crate::plugins::Limits;
use crate::plugins::sandbox;

/// A bare state with proxies bound to `code`'s hooks table.
fn state(code: &str) -> (Lua, Proxies) {
    let (lua, _deadline) = sandbox::new_state(&Limits::default()).unwrap();
    let mut proxies = super::install(&lua).unwrap();
    let hooks: Table = lua.load(code).eval().unwrap();
    let handler = lua.create_function(|_, e: mlua::Value| Ok(e)).unwrap();
    proxies.bind(&hooks, &lua.create_table().unwrap(), &handler).unwrap();
    (lua, proxies)
}

/// Entries in the table that keeps the current call's proxies alive.
fn live_entries(lua: &Lua) -> usize {
    let mut n = 0;
    // SAFETY: reads the registry's live table and counts its entries; the
    // stack is left empty.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            mlua::ffi::lua_rawgetp(state, mlua::ffi::LUA_REGISTRYINDEX, key(&LIVE_KEY));
            mlua::ffi::lua_pushnil(state);
            while mlua::ffi::lua_next(state, 1) != 0 {
                n += 1;
                mlua::ffi::lua_settop(state, 2);
            }
            mlua::ffi::lua_settop(state, 0);
        })
        .unwrap();
    }
    n
}

#[test]
fn ten_thousand_calls_leave_nothing_behind() {
    let (lua, proxies) = state(
        "return {processEvent = function(e)
           local p = e.properties
           p.seen = p.nested.inner.value .. e.distinct_id
           for k, v in pairs(e['$set']) do p[k] = v end
           return e
         end}",
    );
    let mut peak = 0;
    for i in 0..10_000 {
        let Json::Object(event): Json = json!({
            "event": "bulk",
            "distinct_id": format!("user-{i}"),
            "properties": {"nested": {"inner": {"value": "v"}}, "a": i},
            "$set": {"email": format!("{i}@example.com")},
        }) else {
            unreachable!("an object")
        };
        super::lend(&proxies, &event, usize::MAX);
        proxies.process().unwrap().call::<()>(()).unwrap();
        let edit = match proxies.returned() {
            Some(Ok(super::Returned::Event(edit))) => edit,
            _ => panic!("call {i} returned no event"),
        };
        super::end(&proxies);
        // SAFETY: the arena belongs to this state, and no call is under way.
        let arena = unsafe { &*proxies.arena };
        assert_eq!(arena.used, 0, "call {i} left proxies in use");
        assert!(arena.index.is_empty(), "call {i} left proxies indexed");
        peak = peak.max(arena.recs.len());
        assert_eq!(live_entries(&lua), 0, "call {i} left proxies alive");
        let mut out: Map<String, Json> = event.clone();
        edit.apply(&mut out);
        assert_eq!(out["properties"]["seen"], json!(format!("vuser-{i}")));
    }
    // One record per object a call reached (the event, properties, nested,
    // inner, $set), kept for its allocation: not one per call.
    assert!(peak <= 5, "{peak} records kept");
}
