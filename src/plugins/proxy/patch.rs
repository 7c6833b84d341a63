//! Reading proxies back: a proxy converted to the JSON object it stands for
//! ([`read`]), and what processEvent returned as an [`Edit`] of the event
//! it was lent ([`returned`]).

use std::ffi::c_int;

use mlua::ffi;
use serde_json::{Map, Value as Json};

use super::{Arena, Rec, is_proxy};
use crate::plugins::convert::{self, Marks};

/// What processEvent made of the event it was lent: a new event, or
/// changes to apply to the one it was given.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// The plugin returned another table; this is the whole event.
    Replace(Map<String, Json>),
    /// The plugin returned the event it was given, with these changes.
    Patch(Patch),
}

/// Changes to one object, one per key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch(Vec<(String, Change)>);

#[derive(Debug, Clone, PartialEq)]
enum Change {
    Set(Json),
    Remove,
    /// Changes inside the object already under this key.
    Inner(Patch),
}

impl Edit {
    /// The event unchanged.
    pub fn none() -> Edit {
        Edit::Patch(Patch::default())
    }

    pub fn apply(self, event: &mut Map<String, Json>) {
        match self {
            Edit::Replace(m) => *event = m,
            Edit::Patch(p) => p.apply(event),
        }
    }

    /// The top-level value under `key` once applied to `event`. For an
    /// object changed inside, the object before the changes.
    pub fn get<'a>(&'a self, event: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
        match self {
            Edit::Replace(m) => m.get(key),
            Edit::Patch(Patch(changes)) => match changes.iter().find(|(k, _)| k == key) {
                Some((_, Change::Set(v))) => Some(v),
                Some((_, Change::Remove)) => None,
                Some((_, Change::Inner(_))) | None => event.get(key),
            },
        }
    }
}

impl Patch {
    fn apply(self, object: &mut Map<String, Json>) {
        for (k, change) in self.0 {
            match change {
                Change::Set(v) => {
                    object.insert(k, v);
                }
                Change::Remove => {
                    object.remove(&k);
                }
                Change::Inner(p) => {
                    // An inner patch is only made for an object under that key.
                    if let Some(Json::Object(inner)) = object.get_mut(&k) {
                        p.apply(inner);
                    }
                }
            }
        }
    }
}

/// What processEvent returned, read back.
pub(crate) enum Returned {
    /// An event: the one it was given (changed or not), or a new one.
    Event(Edit),
    /// Nil: the event is dropped.
    Nil,
    /// Some other value, which is not an event.
    Other(Json),
}

/// What processEvent returned, the value at `idx`; what it converts is paid
/// for from `left`, as any value read from Lua is ([`convert::MAX_VALUE_BYTES`]).
pub(super) unsafe fn returned(
    state: *mut ffi::lua_State,
    idx: c_int,
    marks: Marks,
    left: &mut convert::Allowance,
) -> Result<Returned, String> {
    unsafe {
        if ffi::lua_type(state, idx) == ffi::LUA_TNIL {
            return Ok(Returned::Nil);
        }
        let arena: &Arena = &*marks.proxies;
        let root = ffi::lua_type(state, idx) == ffi::LUA_TTABLE
            && is_proxy(state, idx, marks.proxy_mt)
            && arena.find(ffi::lua_topointer(state, idx)) == Some(0);
        if !root {
            return convert::read_value(state, idx, 0, marks, left).map(event_or_other);
        }
        match patch(state, idx, 0, 0, marks, left)? {
            Some(p) => Ok(Returned::Event(Edit::Patch(p))),
            None => read(state, idx, 0, marks, left).map(event_or_other),
        }
    }
}

fn event_or_other(j: Json) -> Returned {
    match j {
        Json::Object(m) => Returned::Event(Edit::Replace(m)),
        other => Returned::Other(other),
    }
}

/// The changes of the proxy at `idx` (record `r`) against its object, or
/// None when it holds keys that are not strings: then only a whole
/// conversion gives today's array-or-object answer.
unsafe fn patch(
    state: *mut ffi::lua_State,
    idx: c_int,
    depth: usize,
    r: usize,
    marks: Marks,
    left: &mut convert::Allowance,
) -> Result<Option<Patch>, String> {
    unsafe {
        convert::room(state, depth)?;
        let arena: &Arena = &*marks.proxies;
        let rec: &Rec = &arena.recs[r];
        let source = &*rec.source;
        let mut changes = Vec::new();
        // Taken keys found in the table; fewer than taken means some were deleted.
        let mut present = 0;
        let base = ffi::lua_gettop(state);
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, idx) != 0 {
            if ffi::lua_type(state, -2) != ffi::LUA_TSTRING {
                ffi::lua_settop(state, base);
                return Ok(None);
            }
            let key = convert::read_str(state, -2)?;
            let top = ffi::lua_gettop(state);
            match source.get_key_value(key) {
                Some((k, old)) => {
                    if rec.taken.contains(k) {
                        present += 1;
                    }
                    if let Some(change) = change(state, top, old, depth, marks, left)? {
                        changes.push((k.clone(), change));
                    }
                }
                None => {
                    convert::spend(left, key.len())?;
                    changes
                        .push((key.to_string(), Change::Set(convert::read_value(state, top, depth + 1, marks, left)?)));
                }
            }
            ffi::lua_pop(state, 1);
        }
        if present < rec.taken.list.len() {
            // Some taken keys are gone: deleted. Which ones takes a second
            // walk; pushing the keys to look them up could raise (memory).
            let mut seen = std::collections::HashSet::new();
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, idx) != 0 {
                let found = convert::read_str(state, -2).ok().and_then(|k| source.get_key_value(k));
                if let Some((k, _)) = found {
                    seen.insert(k as *const String);
                }
                ffi::lua_pop(state, 1);
            }
            for &k in rec.taken.list.iter().filter(|k| !seen.contains(k)) {
                changes.push(((*k).clone(), Change::Remove));
            }
        }
        Ok(Some(Patch(changes)))
    }
}

/// How the value at `idx` differs from the event's `old`, if it does.
unsafe fn change(
    state: *mut ffi::lua_State,
    idx: c_int,
    old: &Json,
    depth: usize,
    marks: Marks,
    left: &mut convert::Allowance,
) -> Result<Option<Change>, String> {
    unsafe {
        if same_scalar(state, idx, old) {
            return Ok(None);
        }
        if let Json::Object(old) = old
            && ffi::lua_type(state, idx) == ffi::LUA_TTABLE
        {
            let proxied = is_proxy(state, idx, marks.proxy_mt);
            let arena: &Arena = &*marks.proxies;
            // The proxy made for this very object, still in its place.
            let here = proxied
                .then(|| arena.find(ffi::lua_topointer(state, idx)))
                .flatten()
                .filter(|&r| std::ptr::eq(arena.recs[r].source, old));
            if let Some(r) = here {
                return Ok(match patch(state, idx, depth + 1, r, marks, left)? {
                    Some(p) if p.0.is_empty() => None,
                    Some(p) => Some(Change::Inner(p)),
                    None => Some(Change::Set(read(state, idx, depth + 1, marks, left)?)),
                });
            }
        }
        Ok(Some(Change::Set(convert::read_value(state, idx, depth + 1, marks, left)?)))
    }
}

/// Whether the value at `idx` is the scalar the event's `old` was pushed
/// as: same type and value (an integer is not equal to a float here, as
/// a conversion would tell them apart too).
unsafe fn same_scalar(state: *mut ffi::lua_State, idx: c_int, old: &Json) -> bool {
    unsafe {
        match (ffi::lua_type(state, idx), old) {
            (ffi::LUA_TSTRING, Json::String(s)) => {
                let mut len = 0;
                let ptr = ffi::lua_tolstring(state, idx, &mut len);
                std::slice::from_raw_parts(ptr.cast::<u8>(), len) == s.as_bytes()
            }
            (ffi::LUA_TNUMBER, Json::Number(n)) => match n.as_i64() {
                Some(i) => ffi::lua_isinteger(state, idx) != 0 && ffi::lua_tointeger(state, idx) == i,
                None => {
                    ffi::lua_isinteger(state, idx) == 0
                        && n.as_f64().is_some_and(|f| f.to_bits() == ffi::lua_tonumber(state, idx).to_bits())
                }
            },
            (ffi::LUA_TBOOLEAN, Json::Bool(b)) => (ffi::lua_toboolean(state, idx) != 0) == *b,
            (ffi::LUA_TLIGHTUSERDATA, Json::Null) => ffi::lua_touserdata(state, idx).is_null(),
            _ => false,
        }
    }
}

/// The JSON object (or, by the usual rule, array) the proxy at `idx`
/// stands for: its object's untaken entries and the table's own. The
/// untaken entries are paid for from `left` as well: a plugin must not get
/// past the bound by returning (or encoding) one proxy many times over.
pub(crate) unsafe fn read(
    state: *mut ffi::lua_State,
    idx: c_int,
    depth: usize,
    marks: Marks,
    left: &mut convert::Allowance,
) -> Result<Json, String> {
    unsafe {
        let idx = ffi::lua_absindex(state, idx);
        let dead = || String::from_utf8_lossy(super::DEAD.to_bytes()).into_owned();
        if marks.proxies.is_null() {
            return Err(dead());
        }
        let arena: &Arena = &*marks.proxies;
        let Some(r) = arena.find(ffi::lua_topointer(state, idx)) else { return Err(dead()) };
        let rec = &arena.recs[r];
        let mut map = Map::new();
        for (k, v) in &*rec.source {
            if !rec.taken.contains(k) {
                convert::spend(left, k.len())?;
                map.insert(k.clone(), convert::clone_within(v, left)?);
            }
        }
        let len = ffi::lua_rawlen(state, idx) as i64;
        convert::read_entries(state, idx, len, depth, marks, &mut map, left)?;
        convert::finish_table(state, idx, len, depth, marks, map, left)
    }
}
