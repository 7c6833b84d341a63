//! Differential tests: every case runs through Lua's own (unbounded C)
//! functions and through ours in the same state, and the results, error
//! messages included, must be identical. Then the budget: hostile patterns
//! stop at the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{Lua, Value};

use super::super::sandbox::{self, Deadline};

/// Compares `string.X(...)` with `rs.X(...)` under pcall, serialising all
/// results (gmatch: every iteration) so they compare as text.
const COMPARE: &str = r##"
local REPL_ERROR = {code = 7}
local REPLS = {
  ["<tbl>"] = {a = "A", b = false, ["1"] = "one", [1] = "int-one", x = 3, ab = {}},
  ["<fn>"] = function(...) return select("#", ...) .. ":" .. table.concat({...}, "|") end,
  ["<nil>"] = function() return nil end,
  ["<false>"] = function() return false end,
  ["<bad>"] = function() return {} end,
  ["<err>"] = function() error(REPL_ERROR) end,
  ["<num>"] = function() return 42.5 end,
}
local function ser(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" then return math.type(v) .. ":" .. tostring(v) end
  return type(v) .. ":" .. tostring(v)
end
local function gm(gmatch, s, p, init)
  local out = {}
  for a, b, c in gmatch(s, p, init) do
    out[#out + 1] = ser(a) .. "/" .. ser(b) .. "/" .. ser(c)
    if #out > 40 then break end
  end
  return table.concat(out, ";")
end
local function run(f, ...)
  local r = table.pack(pcall(f, ...))
  local out = {}
  for i = 1, r.n do out[i] = ser(r[i]) end
  return table.concat(out, ", ")
end
function compare(fname, s, p, a3, a4)
  if fname == "gsub" and REPLS[a3] then a3 = REPLS[a3] end
  local c_f, r_f = string[fname], rs[fname]
  if fname == "gmatch" then
    c_f = function(...) return gm(string.gmatch, ...) end
    r_f = function(...) return gm(rs.gmatch, ...) end
  end
  -- Lua names a function called through pcall by its global path; ours always 'find'.
  local a, b = run(c_f, s, p, a3, a4):gsub("'string%.", "'"), run(r_f, s, p, a3, a4)
  if a ~= b then return fname .. "(" .. ser(s) .. ", " .. ser(p) .. ", " .. ser(a3) .. ", " .. ser(a4) .. "): C " .. a .. "  vs  ours " .. b end
end
"##;

fn state() -> (Lua, Arc<Deadline>) {
    let lua = Lua::new();
    let deadline = Arc::new(Deadline::new());
    let rs = lua.create_table().unwrap();
    super::install(&lua, &rs, deadline.clone(), usize::MAX).unwrap();
    lua.globals().set("rs", rs).unwrap();
    lua.load(COMPARE).exec().unwrap();
    (lua, deadline)
}

fn compare(lua: &Lua, f: &str, s: &[u8], p: &[u8], a3: Value, a4: Value) -> Option<String> {
    let cmp: mlua::Function = lua.globals().get("compare").unwrap();
    let (s, p) = (lua.create_string(s).unwrap(), lua.create_string(p).unwrap());
    cmp.call::<Option<String>>((f, s, p, a3, a4)).unwrap()
}

fn text(lua: &Lua, s: &str) -> Value {
    Value::String(lua.create_string(s).unwrap())
}

#[test]
fn a_table_of_cases_matches_lua() {
    let (lua, _) = state();
    let patterns: &[&str] = &[
        "",
        "a",
        "^a",
        "a$",
        "^$",
        "^",
        "$",
        "a*",
        "a+",
        "a-",
        "a?",
        ".",
        ".-b",
        "(a)(b)",
        "()a()",
        "(a*(.)%w(%s*))",
        "%d+",
        "%a+",
        "[%a_][%w_]*",
        "[^%s]+",
        "[a-c]+",
        "[]]",
        "[^]]",
        "[a-]",
        "[-a]",
        "[%]]",
        "%bxy",
        "%b()",
        "%b",
        "%bx",
        "%f[%w]%w+",
        "%f[%W]",
        "%f[%a]",
        "%f",
        "%fx",
        "(a)%1",
        "(.)%1",
        "()%1",
        "%0",
        "(a",
        "a)",
        "%",
        "[a",
        "[^",
        "[%",
        "(()",
        "%w+@%w+%.%a+",
        "^(%w+)=(%w*)$",
        "(h)(e)(l)(l)(o)",
        "%s*$",
        "x*$",
        "^x*",
        "%.",
        "%%",
        "%z",
        "%g+",
        "%c",
        "%p+",
        "%x+",
        "%u%l+",
        "[%d%.]+",
        "(%d+)%.(%d+)",
        "a.-a",
        "(a-)b",
        "^(a?)b",
        ".*",
        "(.*)x",
        "%[",
        "[%w-]+",
        "[a-c-e]",
        "%1",
        "(%1)",
        "(a)(%2)",
    ];
    let subjects: &[&str] = &[
        "",
        "a",
        "aaa",
        "ab",
        "hello world",
        "(foo(bar))baz",
        "xaybx",
        "key=value",
        "a=",
        "  trim  ",
        "12.5 and 3.75",
        "user@example.com",
        "THE (quick) fox",
        "a\0b",
        "x]y-z",
        "aa bb aa",
        "hello",
        "%d",
        "^$",
    ];
    let mut failures = Vec::new();
    for p in patterns {
        for s in subjects {
            for f in ["find", "match", "gmatch"] {
                failures.extend(compare(&lua, f, s.as_bytes(), p.as_bytes(), Value::Nil, Value::Nil));
            }
            for init in [-2i64, 0, 2, 30] {
                failures.extend(compare(&lua, "find", s.as_bytes(), p.as_bytes(), Value::Integer(init), Value::Nil));
                failures.extend(compare(&lua, "match", s.as_bytes(), p.as_bytes(), Value::Integer(init), Value::Nil));
                failures.extend(compare(&lua, "gmatch", s.as_bytes(), p.as_bytes(), Value::Integer(init), Value::Nil));
            }
            failures.extend(compare(&lua, "find", s.as_bytes(), p.as_bytes(), Value::Integer(1), Value::Boolean(true)));
            for r in [
                "[%0]", "<%1>", "%2", "%%", "%", "%x", "", "<tbl>", "<fn>", "<nil>", "<false>", "<bad>", "<err>",
                "<num>",
            ] {
                failures.extend(compare(&lua, "gsub", s.as_bytes(), p.as_bytes(), text(&lua, r), Value::Nil));
            }
            failures.extend(compare(&lua, "gsub", s.as_bytes(), p.as_bytes(), text(&lua, "-"), Value::Integer(1)));
        }
    }
    // Arguments: numbers as strings, integer conversions, missing values.
    let odd: &[(&str, Value, Value, Value, Value)] = &[
        ("find", Value::Integer(12345), text(&lua, "3"), Value::Nil, Value::Nil),
        ("find", Value::Number(1.5), text(&lua, "%."), Value::Nil, Value::Nil),
        ("find", text(&lua, "abc"), Value::Integer(2), Value::Nil, Value::Nil),
        ("find", text(&lua, "abc"), text(&lua, "b"), Value::Number(2.0), Value::Nil),
        ("find", text(&lua, "abc"), text(&lua, "b"), Value::Number(1.5), Value::Nil),
        ("find", text(&lua, "abc"), text(&lua, "b"), text(&lua, "2"), Value::Nil),
        ("find", text(&lua, "abc"), text(&lua, "b"), text(&lua, "x"), Value::Nil),
        ("find", text(&lua, "abc"), text(&lua, "b"), Value::Boolean(true), Value::Nil),
        ("find", text(&lua, "abc"), text(&lua, "b"), Value::Integer(i64::MIN), Value::Nil),
        ("find", text(&lua, "abc"), text(&lua, "b"), Value::Integer(i64::MAX), Value::Nil),
        ("find", Value::Nil, text(&lua, "b"), Value::Nil, Value::Nil),
        ("find", Value::Boolean(true), text(&lua, "b"), Value::Nil, Value::Nil),
        ("match", text(&lua, "abc"), Value::Nil, Value::Nil, Value::Nil),
        ("gsub", Value::Integer(123), text(&lua, "x"), text(&lua, "y"), Value::Nil),
        ("gsub", Value::Integer(123), text(&lua, "2"), Value::Integer(9), Value::Nil),
        ("gsub", text(&lua, "abc"), text(&lua, "b"), Value::Nil, Value::Nil),
        ("gsub", text(&lua, "abc"), text(&lua, "b"), Value::Boolean(true), Value::Nil),
        ("gsub", text(&lua, "abc"), text(&lua, ""), text(&lua, "-"), Value::Nil),
        ("gsub", text(&lua, "abc"), text(&lua, "%w"), text(&lua, "-"), Value::Integer(-1)),
        ("gsub", text(&lua, "abc"), text(&lua, "%w"), text(&lua, "-"), Value::Number(2.0)),
        ("gsub", text(&lua, "abc"), text(&lua, "%w"), text(&lua, "-"), Value::Number(2.5)),
        ("gsub", text(&lua, "abc"), text(&lua, "%w"), text(&lua, "-"), text(&lua, "n")),
        ("gmatch", text(&lua, "abc"), text(&lua, "%w"), Value::Number(0.5), Value::Nil),
    ];
    let cmp: mlua::Function = lua.globals().get("compare").unwrap();
    for (f, s, p, a3, a4) in odd {
        failures.extend(cmp.call::<Option<String>>((*f, s.clone(), p.clone(), a3.clone(), a4.clone())).unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} differences, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(15)].join("\n")
    );
}

/// A small deterministic generator (64-bit LCG), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() % items.len()]
    }
}

#[test]
fn generated_cases_match_lua() {
    let (lua, _) = state();
    let tokens: &[&str] = &[
        "a", "b", "c", ".", "%a", "%d", "%s", "%w", "%p", "%A", "%S", "[ab]", "[^a]", "[a-c]", "[%d%s]", "[]]", "*",
        "+", "-", "?", "(", ")", "()", "%b()", "%bab", "%f[%w]", "%f[%W]", "%f[a]", "%1", "%2", "$", "^", "x", " ",
        "1", "%%", "%.", "[", "%", "]", "(a)", "(%w+)",
    ];
    let alphabet = b"aabbc1 ()x]%.$^\0";
    let inits = [0i64, 1, 2, 3, -1, -2, -5, 9, 100, -100];
    let repls = ["%0", "<%1>", "%2-%1", "%%", "%", "r", "<tbl>", "<fn>", "<nil>", "<bad>", "<err>"];
    let mut rng = Rng(0x5eed);
    let mut failures = Vec::new();
    for _ in 0..6000 {
        let mut p = String::new();
        for _ in 0..rng.next() % 7 {
            p.push_str(rng.pick::<&str>(tokens));
        }
        let s: Vec<u8> = (0..rng.next() % 14).map(|_| *rng.pick(alphabet)).collect();
        let init = match rng.next() % 3 {
            0 => Value::Nil,
            _ => Value::Integer(*rng.pick(&inits)),
        };
        let f = *rng.pick(&["find", "match", "gmatch", "gsub", "find"]);
        let (a3, a4) = match f {
            "gsub" => {
                let n = match rng.next() % 3 {
                    0 => Value::Integer((rng.next() % 4) as i64),
                    _ => Value::Nil,
                };
                (text(&lua, rng.pick::<&str>(&repls)), n)
            }
            "find" if rng.next() % 4 == 0 => (init.clone(), Value::Boolean(true)),
            _ => (init, Value::Nil),
        };
        failures.extend(compare(&lua, f, &s, p.as_bytes(), a3, a4));
    }
    assert!(
        failures.is_empty(),
        "{} differences, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(15)].join("\n")
    );
}

#[test]
fn errors_name_the_callers_line_as_lua_does() {
    let (lua, _) = state();
    let code = r#"
        local function at(f, ...)
          local ok, err = pcall(function(...) local r = f(...) return r end, ...)
          return err
        end
        local function gm(g) return pcall(function() for _ in g("a", "%") do end end) end
        return at(string.find, "a", "%"), at(rs.find, "a", "%"),
               at(string.gsub, "a", "a", "%"), at(rs.gsub, "a", "a", "%"),
               select(2, gm(string.gmatch)), select(2, gm(rs.gmatch)),
               at(string.match, "a", "(%1)"), at(rs.match, "a", "(%1)")"#;
    let r: Vec<String> = lua.load(code).eval::<mlua::Variadic<String>>().unwrap().to_vec();
    for pair in r.chunks(2) {
        assert_eq!(pair[0], pair[1]);
        // The prefix is the chunk's name and the line of the call.
        assert!(pair[0].contains("tests.rs:") && !pair[0].contains("phs:strings"), "{}", pair[0]);
    }
}

#[test]
fn methods_on_strings_use_ours() {
    let lua = sandbox::new_state(&Default::default()).unwrap().0;
    // The string metatable's __index is the string table, so methods resolve to ours.
    let same: bool =
        lua.load("return ('x').find == string.find and getmetatable('').__index == string").eval().unwrap();
    assert!(same);
    let r: (i64, i64, String) = lua
        .load("local s = 'key=value' local a, b = s:find('=', 1, true) return a, b, s:match('(%w+)$')")
        .eval()
        .unwrap();
    assert_eq!(r, (4, 4, "value".into()));
}

/// Backtracking the C matcher would do for longer than anyone can wait.
const CATASTROPHIC: [&str; 4] = [
    r#"string.find(string.rep("a", 20000), string.rep("a*", 40) .. "b")"#,
    r#"string.match(string.rep("a", 20000), string.rep("a-", 40) .. "b")"#,
    r#"for _ in string.gmatch(string.rep("a", 5000), string.rep("a*", 30) .. "b") do end"#,
    r#"string.gsub(string.rep("a", 5000), string.rep(".-", 30) .. "b", "")"#,
];

#[test]
fn hostile_patterns_stop_at_the_deadline() {
    for code in CATASTROPHIC {
        let (lua, deadline) = sandbox::new_state(&Default::default()).unwrap();
        let limit = Duration::from_millis(100);
        deadline.arm(limit);
        let started = Instant::now();
        // Inside pcall in a loop: the tripped deadline makes pcall raise again.
        let err = lua.load(format!("while true do pcall(function() {code} end) end")).exec().unwrap_err();
        deadline.disarm();
        assert_eq!(sandbox::time_limit(&err), Some(limit), "{code}: {err}");
        assert!(started.elapsed() < Duration::from_secs(2), "{code}: took {:?}", started.elapsed());
    }
}

#[test]
fn gsub_output_is_bounded_by_the_memory_limit() {
    let limits = sandbox::Limits { memory: 4 * 1024 * 1024, ..Default::default() };
    let (lua, deadline) = sandbox::new_state(&limits).unwrap();
    deadline.arm(Duration::from_secs(5));
    let err = lua
        .load(r#"local s = string.rep("x", 100000) local r = string.rep("y", 1000) return s:gsub(".", r)"#)
        .exec()
        .unwrap_err();
    assert!(sandbox::is_memory_error(&err), "{err}");
}
