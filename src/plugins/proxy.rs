//! processEvent's event as a lazy proxy: the plugin gets a Lua table that
//! stands for the event and fills itself from the Rust event on first
//! access, and what the plugin changed comes back as a patch
//! ([`Edit`]) against the event, not as a rebuilt event. A plugin that reads
//! two fields and sets one property converts three values, not the event.
//!
//! Each JSON object of the event becomes, when first reached, a proxy: an
//! empty table with the shared, protected metatable made here. `__index`
//! converts the field asked for (an object becomes another proxy, an array
//! is converted whole, as before) and stores it in the table, so later
//! reads are plain table reads; `__newindex` stores the write. Either way
//! the key is recorded as *taken*, in Rust, per proxy: a taken key missing
//! from the table was deleted, and an untaken one still has its event value.
//! On return, the patch is the table's own entries compared with the event,
//! plus the taken keys now missing.
//!
//! What a plugin sees is the same as with a plain table. The functions that
//! look at a table's raw contents are made to know proxies: `next`, `pairs`
//! (`__pairs`) and `setmetatable` first turn the proxy into the plain table
//! it stands for (it is *materialized*: filled and stripped of its
//! metatable); `rawget` and `rawset` act like indexing; `getmetatable`
//! returns nil, as for any table without one; and conversions to JSON
//! (`json.encode`, `meta.cache:set`, `console.log`, a returned table)
//! read a proxy as the object it stands for ([`read`]). The metatable is
//! reachable from no Lua value (`__metatable` also guards it).
//!
//! A proxy points into the event lent to the call, so it must not outlive
//! it: at the end of every call (or when the call is abandoned), the call's
//! proxies are emptied and forgotten. One kept past its call (in
//! `meta.global`, say) raises an error on any use instead of showing
//! another event's data; a materialized one is a plain table and stays
//! readable. Numbers the plugin never touches keep their exact JSON value,
//! where a conversion used to turn integers beyond a Lua integer into floats.
//!
//! The metamethods are C functions on the raw Lua stack, as in
//! [`super::convert`]. Lua raises errors (out of memory, a dead proxy) with
//! a longjmp, so these functions hold nothing that needs dropping across a
//! Lua call, and update the Rust records only after the Lua side succeeded.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, c_void};

use mlua::{Lua, LuaSerdeExt, Table, ffi};
use serde_json::{Map, Value as Json};

use super::convert::{self, Marks};

mod patch;
#[cfg(test)]
mod tests;

pub use patch::Edit;
use patch::finish_call;
pub(super) use patch::{Returned, read};

/// Reads back what processEvent returned and ends the call's proxies, in
/// one pass over the stack.
pub(super) fn finish(proxies: &Proxies, value: mlua::Value) -> mlua::Result<Result<Returned, String>> {
    let arena = proxies.arena;
    // SAFETY: the arena records are those of the call, whose event is still
    // borrowed; the stack is emptied before returning.
    unsafe {
        let mut out = Err(String::new());
        proxies.lua.exec_raw::<()>(value, |state| {
            ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&ARRAY_KEY));
            ffi::lua_insert(state, 1);
            out = finish_call(state, arena);
            // A conversion that failed deep down leaves its walk on the stack.
            ffi::lua_settop(state, 0);
            clear(state, &mut *arena);
        })?;
        Ok(out)
    }
}

// Registry keys: the proxies' metatable, the arena, the table that keeps
// this call's proxies alive (so their addresses stay theirs until the end),
// and mlua's array metatable (reached without a call into mlua).
static META_KEY: u8 = 1;
static ARENA_KEY: u8 = 2;
static LIVE_KEY: u8 = 3;
static ARRAY_KEY: u8 = 4;

fn key(k: &'static u8) -> *const c_void {
    (k as *const u8).cast()
}

/// Proxies of a state's current call: one record per proxy table.
#[derive(Default)]
pub(crate) struct Arena {
    /// Records in use are `recs[..used]`; the rest are kept for their allocations.
    recs: Vec<Rec>,
    used: usize,
    /// Table address -> record, once there are too many for a linear search.
    index: HashMap<usize, usize>,
}

/// One proxy: its table, the event object it stands for, and the keys of
/// that object whose event value it no longer uses.
struct Rec {
    /// Null once materialized.
    table: *const c_void,
    source: *const Map<String, Json>,
    taken: Taken,
}

/// Records beyond this many are also indexed by address.
const LINEAR: usize = 16;

impl Arena {
    fn find(&self, table: *const c_void) -> Option<usize> {
        if self.used > LINEAR {
            return self.index.get(&(table as usize)).copied();
        }
        self.recs.get(..self.used)?.iter().rposition(|r| r.table == table)
    }

    fn add(&mut self, table: *const c_void, source: &Map<String, Json>) {
        let rec = Rec { table, source, taken: Taken::default() };
        match self.recs.get_mut(self.used) {
            Some(slot) => {
                slot.table = rec.table;
                slot.source = rec.source;
                slot.taken.clear();
            }
            None => self.recs.push(rec),
        }
        self.used += 1;
        if self.used == LINEAR + 1 {
            self.index = self.recs.iter().take(self.used).enumerate().map(|(i, r)| (r.table as usize, i)).collect();
        } else if self.used > LINEAR + 1 {
            self.index.insert(table as usize, self.used - 1);
        }
    }

    /// A materialized proxy is a plain table: no record answers for it.
    fn forget(&mut self, r: usize) {
        if let Some(rec) = self.recs.get_mut(r) {
            self.index.remove(&(rec.table as usize));
            rec.table = std::ptr::null();
        }
    }

    fn reset(&mut self) {
        self.used = 0;
        self.index.clear();
    }

    fn rec(&mut self, r: usize) -> &mut Rec {
        // `r` always comes from `find` or `add` on this arena.
        &mut self.recs[r]
    }
}

/// Keys (by the address of the event's own key string, which names one
/// key of one object) that a proxy took. Few, so a list; a set beside it
/// once there are more.
#[derive(Default)]
struct Taken {
    list: Vec<*const String>,
    set: HashSet<usize>,
}

const SMALL: usize = 8;

impl Taken {
    fn contains(&self, k: *const String) -> bool {
        if self.list.len() <= SMALL { self.list.contains(&k) } else { self.set.contains(&(k as usize)) }
    }

    /// Only for a key not yet taken.
    fn insert(&mut self, k: *const String) {
        self.list.push(k);
        if self.list.len() == SMALL + 1 {
            self.set = self.list.iter().map(|&p| p as usize).collect();
        } else if self.list.len() > SMALL + 1 {
            self.set.insert(k as usize);
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.set.clear();
    }
}

/// A state's proxy machinery; owns the arena the state's C functions use.
pub struct Proxies {
    arena: *mut Arena,
    lua: Lua,
}

// SAFETY: the arena is only touched by calls into the state, which the
// VM's mutex serializes (a shared `&Proxies` exists only under its guard),
// from whichever thread holds it.
unsafe impl Send for Proxies {}
unsafe impl Sync for Proxies {}

impl Drop for Proxies {
    fn drop(&mut self) {
        // SAFETY: after this, conversions in the state find no arena and
        // treat any proxy as dead; nothing else holds the pointer.
        unsafe {
            let _ = self.lua.exec_raw::<()>((), |state| {
                ffi::lua_pushnil(state);
                ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key(&ARENA_KEY));
            });
            drop(Box::from_raw(self.arena));
        }
    }
}

/// The upvalues of every C function here.
const UP_ARENA: c_int = ffi::lua_upvalueindex(1);
const UP_META: c_int = ffi::lua_upvalueindex(2);
const UP_ARRAY: c_int = ffi::lua_upvalueindex(3);

/// Makes the metatable and replaces `next`, `pairs`' iteration, `rawget`,
/// `rawset`, `getmetatable` and `setmetatable` with proxy-aware versions.
pub fn install(lua: &Lua) -> mlua::Result<Proxies> {
    let arena = Box::into_raw(Box::new(Arena::default()));
    let proxies = Proxies { arena, lua: lua.clone() };
    // SAFETY: every push is within the slots checked for; the stack is
    // left with the one function returned.
    let unproxy: mlua::Function = unsafe {
        lua.exec_raw(lua.array_metatable(), |state| {
            ffi::lua_checkstack(state, 8);
            ffi::lua_createtable(state, 0, 6);
            let closure = |state, f: ffi::lua_CFunction| {
                ffi::lua_pushlightuserdata(state, arena.cast());
                ffi::lua_pushvalue(state, 2);
                ffi::lua_pushvalue(state, 1);
                ffi::lua_pushcclosure(state, f, 3);
            };
            ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_GLOBALS);
            // Metamethods go into the metatable (2), the rest into the globals (3).
            for (slot, name, f) in [
                (2, c"__index", index as ffi::lua_CFunction),
                (2, c"__newindex", newindex),
                (2, c"__len", len),
                (2, c"__pairs", pairs),
                (3, c"next", next),
                (3, c"rawget", rawget),
                (3, c"rawset", rawset),
                (3, c"getmetatable", getmetatable),
            ] {
                closure(state, f);
                ffi::lua_setfield(state, slot, name.as_ptr());
            }
            ffi::lua_pushboolean(state, 0);
            ffi::lua_setfield(state, 2, c"__metatable".as_ptr());
            ffi::lua_pushvalue(state, 2);
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key(&META_KEY));
            ffi::lua_pushlightuserdata(state, arena.cast());
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key(&ARENA_KEY));
            ffi::lua_createtable(state, 8, 0);
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key(&LIVE_KEY));
            ffi::lua_pushvalue(state, 1);
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key(&ARRAY_KEY));
            ffi::lua_settop(state, 2);
            closure(state, unproxy);
            ffi::lua_replace(state, 1);
            ffi::lua_settop(state, 1);
        })?
    };
    // The sandbox's setmetatable (which refuses __gc) stays underneath.
    let g = lua.globals();
    let wrapped: mlua::Function = lua
        .load(
            r#"local set, unproxy = ...
               return function(t, mt) unproxy(t) return set(t, mt) end"#,
        )
        .set_name("=phs:proxy")
        .call((g.raw_get::<mlua::Function>("setmetatable")?, unproxy))?;
    g.raw_set("setmetatable", wrapped)?;
    Ok(proxies)
}

/// Starts a call: the hook named `hook` in `hooks` (None when there is no
/// such function), and the event's proxy to pass it. The event must stay
/// borrowed, unchanged, until [`end`] or [`finish`].
pub(super) fn begin(
    proxies: &Proxies,
    hooks: &Table,
    hook: &std::ffi::CStr,
    event: &Map<String, Json>,
) -> mlua::Result<Option<(mlua::Function, Table)>> {
    let arena = proxies.arena;
    // One call into mlua for both, as each such call takes its lock and
    // makes references. SAFETY: the arena belongs to this state; the stack
    // is left with the function and the proxy, or nothing.
    unsafe {
        if (*arena).used != 0 {
            end(proxies);
        }
        let (func, root): (Option<mlua::Function>, Option<Table>) = proxies.lua.exec_raw(hooks, |state| {
            // Raw, as a metatable on the globals must not run plugin code here.
            ffi::lua_pushstring(state, hook.as_ptr());
            if ffi::lua_rawget(state, 1) != ffi::LUA_TFUNCTION {
                ffi::lua_settop(state, 0);
                return;
            }
            ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&META_KEY));
            new_proxy(state, &mut *arena, 3, event);
            ffi::lua_remove(state, 3);
            ffi::lua_remove(state, 1);
        })?;
        Ok(func.zip(root))
    }
}

/// Ends a call: its proxies are emptied and forgotten, so one that escaped
/// raises an error when used. Runs also when the call is abandoned; after
/// [`finish`], which ends the call itself, there is nothing left to do.
pub(super) fn end(proxies: &Proxies) {
    let arena = proxies.arena;
    // SAFETY: the arena belongs to this state.
    unsafe {
        if (*arena).used == 0 {
            return;
        }
        // Forgetting is what keeps a proxy from reading freed memory, so it
        // happens even if emptying the tables failed.
        let _ = proxies.lua.exec_raw::<()>((), |state| clear(state, &mut *arena));
        (*arena).reset();
    }
}

/// Empties and forgets the call's proxies; leaves the stack as it was.
unsafe fn clear(state: *mut ffi::lua_State, arena: &mut Arena) {
    // SAFETY: clearing existing fields during a traversal is allowed and
    // allocates nothing; the live table holds only tables.
    unsafe {
        if ffi::lua_checkstack(state, 6) == 0 {
            arena.reset();
            return;
        }
        let base = ffi::lua_gettop(state);
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&META_KEY));
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&LIVE_KEY));
        let (meta, live, t) = (base + 1, base + 2, base + 3);
        for i in 1..=arena.used as ffi::lua_Integer {
            ffi::lua_rawgeti(state, live, i);
            if is_proxy(state, t, meta) {
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, t) != 0 {
                    ffi::lua_pop(state, 1);
                    ffi::lua_pushvalue(state, -1);
                    ffi::lua_pushnil(state);
                    ffi::lua_rawset(state, t);
                }
            }
            ffi::lua_settop(state, live);
            ffi::lua_pushnil(state);
            ffi::lua_rawseti(state, live, i);
        }
        ffi::lua_settop(state, base);
        arena.reset();
    }
}

/// The marks conversions from Lua need, with the proxies' metatable pushed
/// (nil in a state without proxies).
pub(super) unsafe fn marks(state: *mut ffi::lua_State, array_mt: c_int) -> Marks {
    unsafe {
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&META_KEY));
        let proxy_mt = ffi::lua_gettop(state);
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&ARENA_KEY));
        let proxies = ffi::lua_touserdata(state, -1).cast::<Arena>();
        ffi::lua_pop(state, 1);
        Marks { array_mt, proxy_mt, proxies }
    }
}

/// Whether the table at `idx` has the metatable at `meta`.
unsafe fn is_proxy(state: *mut ffi::lua_State, idx: c_int, meta: c_int) -> bool {
    unsafe {
        if ffi::lua_getmetatable(state, idx) == 0 {
            return false;
        }
        let same = ffi::lua_rawequal(state, -1, meta) != 0;
        ffi::lua_pop(state, 1);
        same
    }
}

/// Pushes a new proxy for `source`, kept alive until the call ends.
unsafe fn new_proxy(state: *mut ffi::lua_State, arena: &mut Arena, meta: c_int, source: &Map<String, Json>) {
    unsafe {
        ffi::lua_createtable(state, 0, 0);
        ffi::lua_pushvalue(state, meta);
        ffi::lua_setmetatable(state, -2);
        ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&LIVE_KEY));
        ffi::lua_pushvalue(state, -2);
        ffi::lua_rawseti(state, -2, arena.used as ffi::lua_Integer + 1);
        ffi::lua_pop(state, 1);
        arena.add(ffi::lua_topointer(state, -1), source);
    }
}

/// Pushes an event value as the plugin sees it: objects as proxies.
unsafe fn push_value(state: *mut ffi::lua_State, arena: &mut Arena, v: &Json) {
    unsafe {
        match v {
            Json::Object(m) => new_proxy(state, arena, UP_META, m),
            other => {
                if !convert::push_json(state, other, 0, UP_ARRAY) {
                    raise(state, c"value nested too deeply to convert");
                }
            }
        }
    }
}

unsafe fn arena<'a>(state: *mut ffi::lua_State) -> &'a mut Arena {
    // SAFETY: the upvalue is the state's arena, alive as long as the state's Proxies.
    unsafe { &mut *ffi::lua_touserdata(state, UP_ARENA).cast::<Arena>() }
}

/// The record of the proxy at `idx`; raises for a proxy of an earlier call.
unsafe fn live(state: *mut ffi::lua_State, arena: &Arena, idx: c_int) -> usize {
    unsafe {
        match arena.find(ffi::lua_topointer(state, idx)) {
            Some(r) => r,
            None => raise(state, DEAD),
        }
    }
}

pub(super) const DEAD: &std::ffi::CStr = c"this event (or a table in it) came from an earlier processEvent call: an event \
can only be used during the call that received it; copy the values to keep instead";

/// Raises a Lua error at the plugin's line; never returns.
unsafe fn raise(state: *mut ffi::lua_State, message: &std::ffi::CStr) -> ! {
    unsafe {
        ffi::luaL_where(state, 1);
        ffi::lua_pushstring(state, message.as_ptr());
        ffi::lua_concat(state, 2);
        ffi::lua_error(state)
    }
}

/// The event's key and value for the string key at `k`, when the proxy's
/// object has it.
unsafe fn source_entry<'a>(
    state: *mut ffi::lua_State,
    rec: &Rec,
    k: c_int,
) -> Option<(&'a String, &'a Json)> {
    unsafe {
        if ffi::lua_type(state, k) != ffi::LUA_TSTRING {
            return None;
        }
        let key = convert::read_str(state, k).ok()?;
        (*rec.source).get_key_value(key)
    }
}

/// `t[k]` for a proxy whose table lacks `k`: the event's value, stored in
/// the table (nil when the object has no such key, or the plugin deleted it).
unsafe fn fill(state: *mut ffi::lua_State, arena: &mut Arena, r: usize, t: c_int, k: c_int) -> c_int {
    unsafe {
        let Some((key, value)) = source_entry(state, arena.rec(r), k) else {
            ffi::lua_pushnil(state);
            return 1;
        };
        if arena.rec(r).taken.contains(key) {
            ffi::lua_pushnil(state);
            return 1;
        }
        push_value(state, arena, value);
        ffi::lua_pushvalue(state, k);
        ffi::lua_pushvalue(state, -2);
        ffi::lua_rawset(state, t);
        arena.rec(r).taken.insert(key);
        1
    }
}

/// `t[k] = v` (at 1, 2, 3) for a proxy: stored in the table, and the key
/// taken. `assignment`: for `t[k] = v` in Lua, rather than `rawset`.
unsafe fn store(state: *mut ffi::lua_State, arena: &mut Arena, r: usize, assignment: bool) {
    unsafe {
        // Lua's own errors for these keys, with the plugin's line as a plain
        // table's assignment would have it (lua_rawset raises them without
        // one, as `rawset` does).
        match ffi::lua_type(state, 2) {
            ffi::LUA_TNIL if assignment => raise(state, c"table index is nil"),
            ffi::LUA_TNUMBER if assignment && ffi::lua_tonumber(state, 2).is_nan() => {
                raise(state, c"table index is NaN")
            }
            _ => {}
        }
        let untaken = source_entry(state, arena.rec(r), 2).map(|(k, _)| k as *const String);
        let untaken = untaken.filter(|&k| !arena.rec(r).taken.contains(k));
        ffi::lua_settop(state, 3);
        ffi::lua_rawset(state, 1);
        if let Some(k) = untaken {
            arena.rec(r).taken.insert(k);
        }
    }
}

/// Turns the proxy at `idx` into the plain table it stands for.
unsafe fn materialize(state: *mut ffi::lua_State, arena: &mut Arena, idx: c_int) {
    unsafe {
        let idx = ffi::lua_absindex(state, idx);
        let r = live(state, arena, idx);
        let source = &*arena.rec(r).source;
        for (k, v) in source {
            if arena.rec(r).taken.contains(k) {
                continue;
            }
            ffi::lua_pushlstring(state, k.as_ptr().cast(), k.len());
            push_value(state, arena, v);
            ffi::lua_rawset(state, idx);
            arena.rec(r).taken.insert(k);
        }
        ffi::lua_pushnil(state);
        ffi::lua_setmetatable(state, idx);
        arena.forget(r);
    }
}

unsafe extern "C-unwind" fn index(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        let arena = arena(state);
        let r = live(state, arena, 1);
        fill(state, arena, r, 1, 2)
    }
}

unsafe extern "C-unwind" fn newindex(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        let arena = arena(state);
        let r = live(state, arena, 1);
        store(state, arena, r, true);
        0
    }
}

/// Only the plugin's own integer keys are in a sequence, and those are in
/// the table: its length is the raw one.
unsafe extern "C-unwind" fn len(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        live(state, arena(state), 1);
        ffi::lua_pushinteger(state, ffi::lua_rawlen(state, 1) as ffi::lua_Integer);
        1
    }
}

unsafe extern "C-unwind" fn pairs(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        materialize(state, arena(state), 1);
        ffi::lua_pushvalue(state, UP_ARENA);
        ffi::lua_pushvalue(state, UP_META);
        ffi::lua_pushvalue(state, UP_ARRAY);
        ffi::lua_pushcclosure(state, next, 3);
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushnil(state);
        3
    }
}

/// Lua's `next`, materializing a proxy first.
unsafe extern "C-unwind" fn next(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        ffi::lua_settop(state, 2);
        if is_proxy(state, 1, UP_META) {
            materialize(state, arena(state), 1);
        }
        if ffi::lua_next(state, 1) != 0 {
            return 2;
        }
        ffi::lua_pushnil(state);
        1
    }
}

/// Lua's `rawget`; on a proxy, what indexing it gives.
unsafe extern "C-unwind" fn rawget(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        ffi::luaL_checkany(state, 2);
        ffi::lua_settop(state, 2);
        if !is_proxy(state, 1, UP_META) {
            ffi::lua_rawget(state, 1);
            return 1;
        }
        let arena = arena(state);
        let r = live(state, arena, 1);
        ffi::lua_pushvalue(state, 2);
        if ffi::lua_rawget(state, 1) != ffi::LUA_TNIL {
            return 1;
        }
        ffi::lua_pop(state, 1);
        fill(state, arena, r, 1, 2)
    }
}

/// Lua's `rawset`; on a proxy, what assigning to it does.
unsafe extern "C-unwind" fn rawset(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
        ffi::luaL_checkany(state, 2);
        ffi::luaL_checkany(state, 3);
        ffi::lua_settop(state, 3);
        if is_proxy(state, 1, UP_META) {
            let arena = arena(state);
            let r = live(state, arena, 1);
            store(state, arena, r, false);
        } else {
            ffi::lua_rawset(state, 1);
        }
        1
    }
}

/// Lua's `getmetatable`; nil for a proxy, like the plain table it stands for.
unsafe extern "C-unwind" fn getmetatable(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        ffi::luaL_checkany(state, 1);
        if ffi::lua_getmetatable(state, 1) == 0 || ffi::lua_rawequal(state, -1, UP_META) != 0 {
            ffi::lua_pushnil(state);
            return 1;
        }
        ffi::luaL_getmetafield(state, 1, c"__metatable".as_ptr());
        1
    }
}

/// Materializes its argument if it is a proxy (before `setmetatable`).
unsafe extern "C-unwind" fn unproxy(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        if ffi::lua_type(state, 1) == ffi::LUA_TTABLE && is_proxy(state, 1, UP_META) {
            materialize(state, arena(state), 1);
        }
        0
    }
}
