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
mod reuse_tests;
#[cfg(test)]
mod tests;

pub use patch::Edit;
pub(super) use patch::{Returned, read};

// Registry keys: the proxies' metatable, the arena, and the table that
// keeps this call's proxies alive (so their addresses stay theirs until the
// end). The C functions have them as upvalues too, which is faster.
static META_KEY: u8 = 1;
static ARENA_KEY: u8 = 2;
static LIVE_KEY: u8 = 3;

fn key(k: &'static u8) -> *const c_void {
    (k as *const u8).cast()
}

/// Proxies of a state's current call: one record per proxy table.
#[derive(Default)]
pub(crate) struct Arena {
    /// The event lent to the call under way, until its proxy is made.
    lent: Option<*const Map<String, Json>>,
    /// What processEvent returned, read back before the call's end.
    returned: Option<Result<Returned, String>>,
    /// The bytes that read-back may convert (see [`convert::MAX_VALUE_BYTES`]).
    budget: usize,
    /// The state's deadline, which the read-back checks too ([`convert::Allowance`]).
    deadline: Option<std::sync::Arc<super::sandbox::Deadline>>,
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

    /// Forgets the call's proxies (not what it returned).
    fn reset(&mut self) {
        self.lent = None;
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
    /// `root()` and `finish(returned)`, until [`Proxies::bind`] puts them in `process`.
    root: mlua::Function,
    finish: mlua::Function,
    /// `process()`: runs the hooks table's processEvent on the lent event
    /// and reads back what it returned (see [`Proxies::bind`]).
    process: Option<mlua::Function>,
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
const UP_LIVE: c_int = ffi::lua_upvalueindex(4);

/// Makes the metatable and replaces `next`, `pairs`' iteration, `rawget`,
/// `rawset`, `getmetatable` and `setmetatable` with proxy-aware versions:
/// before any plugin code runs, so none can keep the originals.
pub fn install(lua: &Lua) -> mlua::Result<Proxies> {
    let deadline = super::sandbox::Deadline::of(lua);
    let arena = Box::into_raw(Box::new(Arena { deadline, ..Arena::default() }));
    // SAFETY: every push is within the slots checked for; the stack is
    // left with the functions returned.
    let (unproxy, root, finish): (mlua::Function, mlua::Function, mlua::Function) = unsafe {
        lua.exec_raw(lua.array_metatable(), |state| {
            ffi::lua_checkstack(state, 10);
            ffi::lua_createtable(state, 0, 6);
            ffi::lua_createtable(state, 8, 0);
            // 1: the array metatable, 2: the proxies', 3: the live table.
            let closure = |state, f: ffi::lua_CFunction| {
                ffi::lua_pushlightuserdata(state, arena.cast());
                ffi::lua_pushvalue(state, 2);
                ffi::lua_pushvalue(state, 1);
                ffi::lua_pushvalue(state, 3);
                ffi::lua_pushcclosure(state, f, 4);
            };
            ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_GLOBALS);
            // Metamethods go into the metatable (2), the rest into the globals (4).
            for (slot, name, f) in [
                (2, c"__index", index as ffi::lua_CFunction),
                (2, c"__newindex", newindex),
                (2, c"__len", len),
                (2, c"__pairs", pairs),
                (4, c"next", next),
                (4, c"rawget", rawget),
                (4, c"rawset", rawset),
                (4, c"getmetatable", getmetatable),
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
            ffi::lua_pushvalue(state, 3);
            ffi::lua_rawsetp(state, ffi::LUA_REGISTRYINDEX, key(&LIVE_KEY));
            ffi::lua_settop(state, 3);
            for f in [unproxy as ffi::lua_CFunction, root, finish] {
                closure(state, f);
            }
            ffi::lua_rotate(state, 1, 3);
            ffi::lua_settop(state, 3);
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
    Ok(Proxies { arena, lua: lua.clone(), root, finish, process: None })
}

impl Proxies {
    /// Makes the function that runs processEvent on a lent event: the hooks
    /// table's `processEvent`, called with `meta` under `xpcall` with
    /// `handler` (an error is raised again as it comes out of it).
    pub fn bind(&mut self, hooks: &Table, meta: &Table, handler: &mlua::Function) -> mlua::Result<()> {
        // Everything a processEvent call needs happens in here, so the call
        // is one call into mlua: no references to make and drop for the
        // hook, the proxy, meta or the returned value. The functions are
        // captured now, so a plugin replacing its globals cannot change them.
        let g = self.lua.globals();
        let process = self
            .lua
            .load(
                r#"local xpcall, error, type, rawget, hooks, meta, handler, root, finish = ...
                   return function()
                     local f = rawget(hooks, "processEvent")
                     if type(f) ~= "function" then return end
                     local ok, result = xpcall(f, handler, root(), meta)
                     if not ok then error(result, 0) end
                     finish(result)
                   end"#,
            )
            .set_name("=phs:call")
            .call::<mlua::Function>((
                self.lua.named_registry_value::<mlua::Function>(super::sandbox::RAW_XPCALL)?,
                g.raw_get::<mlua::Function>("error")?,
                g.raw_get::<mlua::Function>("type")?,
                g.raw_get::<mlua::Function>("rawget")?,
                hooks,
                meta,
                handler,
                &self.root,
                &self.finish,
            ))?;
        self.process = Some(process);
        Ok(())
    }

    /// The function to call (with no arguments) for processEvent on the
    /// lent event, once bound.
    pub(super) fn process(&self) -> Option<&mlua::Function> {
        self.process.as_ref()
    }

    /// What the call returned; None when there was no processEvent to call.
    pub(super) fn returned(&self) -> Option<Result<Returned, String>> {
        // SAFETY: the arena belongs to this state, and the call is over.
        unsafe { (*self.arena).returned.take() }
    }
}

/// Lends `event` to the next call of [`Proxies::process`]: it must stay
/// borrowed, unchanged, until [`end`]. What the call returns may convert
/// up to `budget` bytes.
pub(super) fn lend(proxies: &Proxies, event: &Map<String, Json>, budget: usize) {
    end(proxies);
    // SAFETY: the arena belongs to this state, and no call is under way.
    unsafe {
        (*proxies.arena).lent = Some(event);
        (*proxies.arena).budget = budget;
    }
}

/// Ends a call: its proxies are emptied and forgotten, so one that escaped
/// raises an error when used. Runs also when the call is abandoned; after
/// a call that returned, which ends itself, there is little left to do.
pub(super) fn end(proxies: &Proxies) {
    let arena = proxies.arena;
    // SAFETY: the arena belongs to this state.
    unsafe {
        if (*arena).used > 0 {
            let _ = proxies.lua.exec_raw::<()>((), |state| {
                ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&META_KEY));
                ffi::lua_rawgetp(state, ffi::LUA_REGISTRYINDEX, key(&LIVE_KEY));
                clear(state, &mut *arena, 1, 2);
            });
        }
        // Forgetting is what keeps a proxy from reading freed memory, so it
        // happens even if emptying the tables failed.
        (*arena).reset();
    }
}

/// Empties and forgets the call's proxies; leaves the stack as it was.
/// `meta` and `live`: where the metatable and the live table are.
unsafe fn clear(state: *mut ffi::lua_State, arena: &mut Arena, meta: c_int, live: c_int) {
    // SAFETY: clearing existing fields during a traversal is allowed and
    // allocates nothing; the live table holds only tables.
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            arena.reset();
            return;
        }
        let base = ffi::lua_gettop(state);
        let t = base + 1;
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
            ffi::lua_settop(state, base);
            ffi::lua_pushnil(state);
            ffi::lua_rawseti(state, live, i);
        }
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
unsafe fn new_proxy(state: *mut ffi::lua_State, arena: &mut Arena, source: &Map<String, Json>) {
    unsafe {
        // Room for the few fields a plugin typically touches, so the first
        // ones do not each grow the table.
        ffi::lua_createtable(state, 0, source.len().min(4) as c_int);
        ffi::lua_pushvalue(state, UP_META);
        ffi::lua_setmetatable(state, -2);
        ffi::lua_pushvalue(state, -1);
        ffi::lua_rawseti(state, UP_LIVE, arena.used as ffi::lua_Integer + 1);
        arena.add(ffi::lua_topointer(state, -1), source);
    }
}

/// Pushes an event value as the plugin sees it: objects as proxies.
unsafe fn push_value(state: *mut ffi::lua_State, arena: &mut Arena, v: &Json) {
    unsafe {
        match v {
            Json::Object(m) => new_proxy(state, arena, m),
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

pub(super) const DEAD: &std::ffi::CStr =
    c"this event (or a table in it) came from an earlier processEvent call: an event \
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
unsafe fn source_entry<'a>(state: *mut ffi::lua_State, rec: &Rec, k: c_int) -> Option<(&'a String, &'a Json)> {
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
        ffi::lua_pushvalue(state, UP_LIVE);
        ffi::lua_pushcclosure(state, next, 4);
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

/// `root()`: the lent event's proxy (nil when no event is lent).
unsafe extern "C-unwind" fn root(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        let arena = arena(state);
        match arena.lent.take() {
            Some(event) => new_proxy(state, arena, &*event),
            None => ffi::lua_pushnil(state),
        }
        1
    }
}

/// `finish(returned)`: reads back what processEvent returned, into the
/// arena, and ends the call's proxies. Raises no Lua error (the read-back
/// allocates nothing in Lua), so the Rust values it builds are never
/// skipped over by one.
unsafe extern "C-unwind" fn finish(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        ffi::lua_settop(state, 1);
        let arena = arena(state);
        let marks = Marks { array_mt: UP_ARRAY, proxy_mt: UP_META, proxies: arena };
        let mut left = convert::Allowance::new(arena.budget, arena.deadline.clone());
        let returned = patch::returned(state, 1, marks, &mut left);
        arena.returned = Some(returned);
        // A conversion that failed deep down leaves its walk on the stack.
        ffi::lua_settop(state, 0);
        clear(state, arena, UP_META, UP_LIVE);
        0
    }
}
