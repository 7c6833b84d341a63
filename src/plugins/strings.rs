//! `string.find`, `string.match`, `string.gmatch` and `string.gsub` for
//! plugin states, on the budgeted matcher in [`super::pattern`] instead of
//! lstrlib's C matcher, which the time-limit hook cannot interrupt.
//!
//! The Rust functions answer in a small protocol that a Lua wrapper turns
//! into Lua's behaviour: `true, results...` on success, `false, message` for
//! an error Lua raises at the caller's position (bad arguments, malformed
//! patterns: `error(message, 2)` gives the same `file:line:` prefix that
//! lstrlib's `luaL_error` does), and `nil, value` for an error to raise as
//! it is (one raised by a gsub replacement function, so error tables and
//! `RetryError` pass through untouched). Running out of time is a Rust error
//! ([`TimeLimitExceeded`]), and the deadline is tripped by then, so `pcall`
//! raises it again like the hook's.
//!
//! Known differences from lstrlib, all in error messages: argument errors
//! always name the function by its `string` field (`'find'`; Lua names it
//! as the call site does: `'find'`, a local's name, or `'string.find'` under
//! pcall) and count arguments as `string.find(s, p)` does, also for method
//! calls (`s:find(nil)`, where Lua says `#1`); and when the plugin calls
//! one of these in a tail call (`return s:find(p)`), the `file:line:`
//! prefix names the caller's caller, because the Lua wrapper's frame
//! replaces the caller's, where lstrlib's C frame does not.

use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::pattern::{Capture, MatchError, Matcher, no_specials, start_index};
use super::sandbox::{Deadline, TimeLimitExceeded};

/// How a call failed, before it is put into the protocol above.
enum Fail {
    /// Raise `message` at the caller's position.
    Msg(String),
    /// Raise this value as it is.
    Raise(Value),
    /// The deadline passed.
    Budget,
    Lua(mlua::Error),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Lua(e)
    }
}

impl From<MatchError> for Fail {
    fn from(e: MatchError) -> Self {
        match e {
            MatchError::Pattern(m) => Fail::Msg(m),
            MatchError::OutOfBudget => Fail::Budget,
        }
    }
}

type Reply = Result<MultiValue, Fail>;

/// Replaces the four functions in `string` (a state's string table, which is
/// also what string methods resolve to). `memory` caps what `gsub` builds
/// outside Lua's allocator, which does not see Rust's buffer.
pub fn install(lua: &Lua, string: &Table, deadline: Arc<Deadline>, memory: usize) -> mlua::Result<()> {
    // The raw pcall, taken before any plugin code runs, so gsub can catch a
    // replacement function's error value without losing it.
    let raw_pcall: Function = lua.globals().raw_get("pcall")?;
    let d = deadline.clone();
    let find = lua.create_function(move |lua, args: MultiValue| reply(lua, &d, find_aux(lua, &d, &args, true)))?;
    let d = deadline.clone();
    let matcher = lua.create_function(move |lua, args: MultiValue| reply(lua, &d, find_aux(lua, &d, &args, false)))?;
    let d = deadline.clone();
    let gmatch = lua.create_function(move |lua, args: MultiValue| reply(lua, &d, gmatch(lua, &d, &args)))?;
    let d = deadline.clone();
    let gsub =
        lua.create_function(move |lua, args: MultiValue| reply(lua, &d, gsub(lua, &d, &raw_pcall, memory, &args)))?;
    // string.rep does its work in one C call, and a loop of a few large ones (27 MiB in 27 calls took
    // 160-190 ms) runs fewer instructions than the hook counts between checks: each call checks first.
    let d = deadline;
    let in_time = lua.create_function(move |_, ()| d.check())?;
    lua.load(
        r#"local string, find, match, gmatch, gsub, in_time = ...
           local error, rep = error, string.rep
           -- Called in tail position, so level 2 is the caller of string.find.
           local function check(ok, ...)
             if ok then return ... end
             if ok == false then error((...), 2) end
             error((...), 0)
           end
           -- Called from the wrapper, so the caller is one level further up.
           local function check3(ok, ...)
             if ok then return ... end
             if ok == false then error((...), 3) end
             error((...), 0)
           end
           string.find = function(...) return check(find(...)) end
           string.match = function(...) return check(match(...)) end
           string.gsub = function(...) return check(gsub(...)) end
           string.gmatch = function(...)
             local next_match = check3(gmatch(...))
             return function() return check(next_match()) end
           end
           -- Not a tail call, so an argument error still names 'rep'.
           string.rep = function(...) in_time() return (rep(...)) end"#,
    )
    .set_name("=phs:strings")
    .call::<()>((string.clone(), find, matcher, gmatch, gsub, in_time))
}

fn reply(lua: &Lua, deadline: &Deadline, r: Reply) -> mlua::Result<MultiValue> {
    match r {
        Ok(mut values) => {
            values.push_front(Value::Boolean(true));
            Ok(values)
        }
        Err(Fail::Msg(m)) => Ok(MultiValue::from_iter([Value::Boolean(false), Value::String(lua.create_string(m)?)])),
        Err(Fail::Raise(v)) => Ok(MultiValue::from_iter([Value::Nil, v])),
        Err(Fail::Budget) => Err(mlua::Error::external(TimeLimitExceeded(deadline.limit()))),
        Err(Fail::Lua(e)) => Err(e),
    }
}

/// The budget of one call: go on while the running call's deadline has not
/// passed. `exceeded` also trips the deadline, which makes pcall re-raise.
fn budget(deadline: &Deadline) -> impl FnMut() -> bool + '_ {
    || deadline.exceeded().is_none()
}

/// `string.find` (`find`) and `string.match`, as lstrlib's `str_find_aux`.
fn find_aux(lua: &Lua, deadline: &Deadline, args: &MultiValue, find: bool) -> Reply {
    let name = if find { "find" } else { "match" };
    let s = check_string(lua, args, 1, name)?;
    let p = check_string(lua, args, 2, name)?;
    let (src, pat) = (s.as_bytes(), p.as_bytes());
    let init = start_index(opt_integer(lua, args, 3, name, 1)?, src.len()) - 1;
    if init > src.len() {
        return Ok(MultiValue::from_iter([Value::Nil]));
    }
    if find && (truthy(arg(args, 4)) || no_specials(&pat)) {
        return Ok(match memchr::memmem::find(&src[init..], &pat) {
            Some(i) => {
                let start = init + i;
                MultiValue::from_iter([int(start + 1), int(start + pat.len())])
            }
            None => MultiValue::from_iter([Value::Nil]),
        });
    }
    let (anchor, pat) = strip_anchor(&pat);
    let mut m = Matcher::new(&src, pat, budget(deadline));
    let mut s1 = init;
    loop {
        if let Some(e) = m.match_at(s1)? {
            let mut out = MultiValue::new();
            if find {
                out.push_back(int(s1 + 1));
                out.push_back(int(e));
            }
            for c in m.captures(s1, e, !find)? {
                out.push_back(capture_value(lua, &src, c)?);
            }
            return Ok(out);
        }
        s1 += 1;
        if anchor || s1 > src.len() {
            return Ok(MultiValue::from_iter([Value::Nil]));
        }
    }
}

/// Where a gmatch iteration stands: the next start and the end of the last
/// match (an empty match right after it does not count, as in Lua 5.4).
struct Cursor {
    next: usize,
    last_match: Option<usize>,
}

fn gmatch(lua: &Lua, deadline: &Arc<Deadline>, args: &MultiValue) -> Reply {
    let s = check_string(lua, args, 1, "gmatch")?;
    let p = check_string(lua, args, 2, "gmatch")?;
    let len = s.as_bytes().len();
    // Past the end: the iteration finds nothing (not even an empty match).
    let init = (start_index(opt_integer(lua, args, 3, "gmatch", 1)?, len) - 1).min(len + 1);
    let cursor = Mutex::new(Cursor { next: init, last_match: None });
    let deadline = deadline.clone();
    let next = lua.create_function(move |lua, ()| {
        let r = (|| -> Reply {
            let (src, pat) = (s.as_bytes(), p.as_bytes());
            let mut cur = cursor.lock().unwrap_or_else(|p| p.into_inner());
            // gmatch does not anchor: a leading `^` is an ordinary character.
            let mut m = Matcher::new(&src, &pat, budget(&deadline));
            for start in cur.next..=src.len() {
                if let Some(e) = m.match_at(start)?
                    && Some(e) != cur.last_match
                {
                    cur.next = e;
                    cur.last_match = Some(e);
                    let caps = m.captures(start, e, true)?;
                    return caps.into_iter().map(|c| capture_value(lua, &src, c).map_err(Fail::Lua)).collect();
                }
            }
            cur.next = src.len() + 1;
            Ok(MultiValue::new())
        })();
        reply(lua, &deadline, r)
    })?;
    Ok(MultiValue::from_iter([Value::Function(next)]))
}

fn gsub(lua: &Lua, deadline: &Deadline, raw_pcall: &Function, memory: usize, args: &MultiValue) -> Reply {
    let s = check_string(lua, args, 1, "gsub")?;
    let p = check_string(lua, args, 2, "gsub")?;
    let (src, pat) = (s.as_bytes(), p.as_bytes());
    let repl = arg(args, 3).cloned().unwrap_or(Value::Nil);
    let max = opt_integer(lua, args, 4, "gsub", src.len() as i64 + 1)?;
    let repl = match repl {
        Value::String(r) => Replacement::Text(r),
        n @ (Value::Integer(_) | Value::Number(_)) => {
            Replacement::Text(lua.coerce_string(n)?.expect("a number converts to a string"))
        }
        Value::Table(t) => Replacement::Table(t),
        Value::Function(f) => Replacement::Function(f),
        _ => return Err(Fail::Msg(bad_argument(3, "gsub", "string/function/table", arg(args, 3)))),
    };
    let (anchor, pat) = strip_anchor(&pat);
    let mut m = Matcher::new(&src, pat, budget(deadline));
    let mut out = Vec::new();
    let (mut pos, mut n, mut changed, mut last_match) = (0usize, 0i64, false, None);
    while n < max {
        match m.match_at(pos)? {
            Some(e) if Some(e) != last_match => {
                n += 1;
                changed |= add_value(lua, &m, &src, pos, e, &repl, raw_pcall, &mut out)?;
                pos = e;
                last_match = Some(e);
            }
            _ if pos < src.len() => {
                out.push(src[pos]);
                pos += 1;
            }
            _ => break,
        }
        if out.len() > memory {
            return Err(Fail::Lua(mlua::Error::MemoryError("not enough memory".into())));
        }
        if anchor {
            break;
        }
    }
    let result = if changed {
        out.extend_from_slice(&src[pos..]);
        Value::String(lua.create_string(&out)?)
    } else {
        // Unchanged: the subject itself (a number already converted, as
        // luaL_checklstring converts it in place).
        Value::String(s.clone())
    };
    Ok(MultiValue::from_iter([result, Value::Integer(n)]))
}

enum Replacement {
    Text(mlua::String),
    Table(Table),
    Function(Function),
}

/// Appends the replacement of the match `s..e`; false when the match stays
/// as it was (a function or table gave nil or false).
#[allow(clippy::too_many_arguments)]
fn add_value<B: FnMut() -> bool>(
    lua: &Lua,
    m: &Matcher<'_, B>,
    src: &[u8],
    s: usize,
    e: usize,
    repl: &Replacement,
    raw_pcall: &Function,
    out: &mut Vec<u8>,
) -> Result<bool, Fail> {
    let value = match repl {
        Replacement::Text(r) => {
            add_text(m, src, s, e, &r.as_bytes(), out)?;
            return Ok(true);
        }
        Replacement::Table(t) => t.get::<Value>(capture_value(lua, src, m.capture(0, s, e)?)?)?,
        Replacement::Function(f) => {
            let mut call = MultiValue::from_iter([Value::Function(f.clone())]);
            for c in m.captures(s, e, true)? {
                call.push_back(capture_value(lua, src, c)?);
            }
            let mut r = raw_pcall.call::<MultiValue>(call)?.into_iter();
            let ok = r.next().is_some_and(|v| truthy(Some(&v)));
            let first = r.next().unwrap_or(Value::Nil);
            if !ok {
                return Err(Fail::Raise(first));
            }
            first
        }
    };
    match value {
        Value::Nil | Value::Boolean(false) => {
            out.extend_from_slice(&src[s..e]);
            Ok(false)
        }
        Value::String(r) => {
            out.extend_from_slice(&r.as_bytes());
            Ok(true)
        }
        n @ (Value::Integer(_) | Value::Number(_)) => {
            out.extend_from_slice(&lua.coerce_string(n)?.expect("a number converts to a string").as_bytes());
            Ok(true)
        }
        other => Err(Fail::Msg(format!("invalid replacement value (a {})", type_name(Some(&other))))),
    }
}

/// A replacement string: `%0`-`%9` are captures, `%%` is `%`.
fn add_text<B: FnMut() -> bool>(
    m: &Matcher<'_, B>,
    src: &[u8],
    s: usize,
    e: usize,
    repl: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Fail> {
    let mut rest = repl;
    while let Some(i) = memchr::memchr(b'%', rest) {
        out.extend_from_slice(&rest[..i]);
        match rest.get(i + 1).copied().unwrap_or(0) {
            b'%' => out.push(b'%'),
            b'0' => out.extend_from_slice(&src[s..e]),
            d @ b'1'..=b'9' => match m.capture((d - b'1') as usize, s, e)? {
                Capture::Span(a, b) => out.extend_from_slice(&src[a..b]),
                Capture::Position(p) => out.extend_from_slice(p.to_string().as_bytes()),
            },
            _ => return Err(Fail::Msg("invalid use of '%' in replacement string".into())),
        }
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    Ok(())
}

fn strip_anchor(pat: &[u8]) -> (bool, &[u8]) {
    match pat.split_first() {
        Some((b'^', rest)) => (true, rest),
        _ => (false, pat),
    }
}

fn capture_value(lua: &Lua, src: &[u8], c: Capture) -> mlua::Result<Value> {
    Ok(match c {
        Capture::Span(a, b) => Value::String(lua.create_string(&src[a..b])?),
        Capture::Position(p) => int(p),
    })
}

fn int(n: usize) -> Value {
    Value::Integer(n as i64)
}

/// Argument `n` (1-based), None when absent.
fn arg(args: &MultiValue, n: usize) -> Option<&Value> {
    args.get(n - 1)
}

fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Nil) | Some(Value::Boolean(false)))
}

/// `luaL_checklstring`: a string, or a number converted to one.
fn check_string(lua: &Lua, args: &MultiValue, n: usize, name: &str) -> Result<mlua::String, Fail> {
    match arg(args, n) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            Ok(lua.coerce_string(v.clone())?.expect("a number converts to a string"))
        }
        other => Err(Fail::Msg(bad_argument(n, name, "string", other))),
    }
}

/// `luaL_optinteger`: absent or nil gives `default`; floats and numeric
/// strings must have an exact integer value.
fn opt_integer(lua: &Lua, args: &MultiValue, n: usize, name: &str, default: i64) -> Result<i64, Fail> {
    let v = match arg(args, n) {
        None | Some(Value::Nil) => return Ok(default),
        Some(Value::Integer(i)) => return Ok(*i),
        Some(v @ (Value::Number(_) | Value::String(_))) => v.clone(),
        other => return Err(Fail::Msg(bad_argument(n, name, "number", other))),
    };
    if lua.coerce_number(v.clone())?.is_none() {
        return Err(Fail::Msg(bad_argument(n, name, "number", Some(&v))));
    }
    lua.coerce_integer(v)?
        .ok_or_else(|| Fail::Msg(format!("bad argument #{n} to '{name}' (number has no integer representation)")))
}

fn bad_argument(n: usize, name: &str, expected: &str, got: Option<&Value>) -> String {
    format!("bad argument #{n} to '{name}' ({expected} expected, got {})", type_name(got))
}

/// `luaL_typename`.
fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::LightUserData(_) | Value::UserData(_) | Value::Error(_)) => "userdata",
        Some(v) => v.type_name(),
    }
}

#[cfg(test)]
mod tests;
