//! Differential tests: each plugin runs on the proxy and on the eager
//! conversion it replaced (`process_event_eager`, in a state of its own),
//! and the results must be the same. Then what only the proxy has: the
//! patch it returns, proxies kept past their call, the sandbox, the limits.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::plugins::{CallError, Context, Edit, Limits, Manifest, PluginSource, PluginVm, ProcessOutcome, Processed};

fn limits() -> Limits {
    Limits { memory: 8 * 1024 * 1024, process_event: Duration::from_millis(500), ..Limits::default() }
}

fn vm(code: &str) -> PluginVm {
    let manifest = Manifest::parse(r#"{"name": "proxied"}"#).unwrap();
    let source = PluginSource::new(manifest, BTreeMap::from([("index.lua".to_string(), code.to_string())])).unwrap();
    PluginVm::load(&source, Context::in_memory(Default::default()), limits()).unwrap()
}

/// A plugin whose processEvent body is `body`.
fn plugin(body: &str) -> String {
    format!("function processEvent(event, meta)\n{body}\nend")
}

fn event() -> Json {
    json!({
        "event": "$pageview",
        "distinct_id": "user-1",
        "team_id": 2,
        "uuid": "0190b5a1-2d3e-7f00-8000-000000000001",
        "properties": {
            "$browser": "Firefox",
            "$screen_width": 1920,
            "ratio": 1.5,
            "whole_float": 2.0,
            "negative_zero": -0.0,
            "big": i64::MAX,
            "flag": true,
            "nothing": null,
            "list": [1, "two", {"three": 3}, [], {}],
            "empty_list": [],
            "empty_object": {},
            "nested": {"a": {"b": {"c": "deep"}}},
            "unicode": "héllo wörld ✓ 日本 🎉",
            "ключ": "значение",
            "1": "string one",
        },
        "$set": {"email": "a@example.com"},
    })
}

/// An outcome both paths can be compared on: errors by their first line
/// (the tracebacks may differ by a metamethod's frame).
#[derive(Debug, PartialEq)]
enum Seen {
    Event(Json),
    Dropped,
    Failed(String),
}

fn seen(r: Result<ProcessOutcome, CallError>) -> Seen {
    match r {
        Ok(ProcessOutcome::Event(e)) => Seen::Event(e),
        Ok(ProcessOutcome::Dropped) => Seen::Dropped,
        Err(CallError::Plugin { message }) | Err(CallError::BadReturn(message)) => {
            Seen::Failed(message.lines().next().unwrap_or_default().to_string())
        }
        Err(other) => Seen::Failed(other.to_string()),
    }
}

/// Runs `code` on both paths, `calls` times on the same states, and
/// returns the proxy's last outcome after checking the eager one matches.
async fn same_n(code: &str, input: &Json, calls: usize) -> Seen {
    let (proxied, eager) = (vm(code), vm(code));
    let mut last = Seen::Dropped;
    for i in 0..calls {
        let p = seen(proxied.process_event(input).await);
        let e = seen(eager.process_event_eager(input).await);
        assert_eq!(p, e, "call {i} of\n{code}");
        last = p;
    }
    last
}

async fn same(body: &str) -> Seen {
    same_n(&plugin(body), &event(), 2).await
}

fn event_of(s: Seen) -> Json {
    match s {
        Seen::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn reading_a_few_fields() {
    let out = event_of(
        same(
            "event.properties.seen = event.event .. ' by ' .. event.distinct_id .. ' ' .. \
             event.properties['$browser'] .. ' ' .. tostring(event.missing) .. ' ' .. tostring(event.properties.nothing)
             return event",
        )
        .await,
    );
    assert_eq!(out["properties"]["seen"], "$pageview by user-1 Firefox nil userdata: (nil)");
    assert_eq!(out["properties"]["list"], event()["properties"]["list"]);
}

#[tokio::test]
async fn setting_and_deleting_fields() {
    let out = event_of(
        same(
            "event.added = {1, 2, {x = 'y'}}
             event.distinct_id = nil
             event.properties.flag = nil
             event.properties['$browser'] = 'Chrome'
             event.properties.big = nil
             event.properties.big = 'back'
             local d = event['$set'] d.email = nil d.name = 'Ann'
             event.uuid = event.uuid
             return event",
        )
        .await,
    );
    assert_eq!(out["added"], json!([1, 2, {"x": "y"}]));
    assert!(out.get("distinct_id").is_none());
    assert!(out["properties"].get("flag").is_none());
    assert_eq!(out["properties"]["big"], "back");
    assert_eq!(out["$set"], json!({"name": "Ann"}));
    // Deleting a field read before, then reading it again.
    same("local e = event.event event.event = nil assert(event.event == nil and rawget(event, 'event') == nil) return event")
        .await;
    // Deleting a field never read, then reading it.
    same("event.uuid = nil assert(event.uuid == nil) event.properties.ratio = nil return event").await;
}

#[tokio::test]
async fn replacing_properties() {
    same("event.properties = {a = 1, b = {c = {}}} return event").await;
    same("event.properties = nil return event").await;
    // Hello World's own idiom: the same table back in its place.
    same("event.properties = event.properties or {} event.properties.hello = 'world' return event").await;
    same("local p = event.properties event.properties = {} p.lost = true return event").await;
    same("local p = event.properties event.properties = nil event.properties = p p.kept = true return event").await;
}

#[tokio::test]
async fn iterating_with_pairs_and_next() {
    // Iteration order is Lua's (the string hash seed is random per state),
    // so the keys are sorted before they are compared.
    let out = event_of(
        same(
            "local keys, pkeys = {}, {}
             for k, v in pairs(event) do keys[#keys + 1] = k .. '=' .. type(v) end
             for k, v in pairs(event.properties) do pkeys[#pkeys + 1] = k end
             table.sort(keys) table.sort(pkeys)
             event.properties.keys = table.concat(keys, ',')
             event.properties.pkeys = table.concat(pkeys, ',')
             return event",
        )
        .await,
    );
    assert_eq!(
        out["properties"]["keys"],
        "$set=table,distinct_id=string,event=string,properties=table,team_id=number,uuid=string"
    );
    same(
        "local n = 0 local k = next(event) while k do n = n + 1 k = next(event, k) end
         event.properties.n = n event.properties.empty = next(event.properties.empty_object) == nil
         return event",
    )
    .await;
    // Changing existing fields while iterating is allowed in Lua.
    same(
        "for k, v in pairs(event.properties) do
           if type(v) == 'number' then event.properties[k] = v * 2 end
           if type(v) == 'boolean' then event.properties[k] = nil end
         end
         return event",
    )
    .await;
    // Iterating after some reads and writes, then changing more.
    same(
        "local b = event.properties['$browser'] event.properties.new = 1 event.properties.ratio = nil
         local n = 0 for _ in pairs(event.properties) do n = n + 1 end
         event.properties.count = n event.properties.flag = 'x'
         return event",
    )
    .await;
    same("local n = 0 for i, v in ipairs(event.properties.list) do n = n + i end event.n = n return event").await;
}

#[tokio::test]
async fn copying_the_event_into_a_new_table() {
    same(
        "local copy = {} for k, v in pairs(event) do copy[k] = v end
         copy.properties.copied = true
         return copy",
    )
    .await;
    same(
        "local function deep(t)
           if type(t) ~= 'table' then return t end
           local c = {} for k, v in pairs(t) do c[k] = deep(v) end return c
         end
         local c = deep(event) c.properties.deep = true event.properties.original = true
         return c",
    )
    .await;
    // json round trip as a copy.
    same("local c = json.decode(json.encode(event)) c.properties.viajson = true return c").await;
}

#[tokio::test]
async fn returning_other_things() {
    same("return {event = 'new', properties = {}}").await;
    same("return {}").await;
    same("return nil").await;
    same("return event.properties").await;
    same("return event.properties.list").await;
    same("return 'x'").await;
    same("return json.null").await;
    same("return {f = function() end}").await;
    same("event.properties.bad = function() end return event").await;
    same("event.properties.bad = '\\xff' return event").await;
    same("event['\\xff'] = 1 return event").await;
    same("event.self = event return event").await;
    same("event.properties.loop = event.properties return event").await;
    same("error('boom')").await;
    same("event.properties.x = 1 error('after a change')").await;
}

#[tokio::test]
async fn nested_tables() {
    same(
        "event.properties.nested.a.b.c = 'changed'
         event.properties.nested.a.b.d = {e = {f = 1}}
         event.properties.wrapped = {inner = event.properties.nested.a}
         event.alias = event['$set']
         event['$set'].later = true
         return event",
    )
    .await;
    same("local a = event.properties.nested.a event.properties.nested = nil a.orphan = true return event").await;
    same("event.properties.nested.a = event.properties.nested.a.b return event").await;
}

#[tokio::test]
async fn numbers_keep_their_kind() {
    let out = event_of(
        same(
            "local p = event.properties
             p.int_copy, p.float_copy, p.whole_copy = p['$screen_width'], p.ratio, p.whole_float
             p.int_as_float = p['$screen_width'] + 0.0
             p.float_as_int = math.tointeger(p.whole_float)
             p.sum = p['$screen_width'] + 1 p.half = p['$screen_width'] / 2 p.floor = p['$screen_width'] // 7
             p.big_plus = p.big - 1 p.nan = 0/0 p.inf = 1/0 p.nz = p.negative_zero
             p.math_type = math.type(p.ratio) .. math.type(p['$screen_width'])
             return event",
        )
        .await,
    );
    let p = &out["properties"];
    assert_eq!(p["int_copy"], json!(1920));
    assert!(p["int_as_float"].is_f64() && p["whole_copy"].is_f64());
    assert_eq!(p["float_as_int"], json!(2));
    assert!(p["nan"].is_null() && p["inf"].is_null());
    assert_eq!(p["math_type"], "floatinteger");
    // Writing the same number back keeps it; writing it as another kind changes it.
    same("event.properties['$screen_width'] = 1920.0 event.properties.whole_float = 2 return event").await;
    same("event.properties['$screen_width'] = 1920 event.properties.ratio = 1.5 return event").await;
}

/// The one deliberate difference: a number beyond a Lua integer that the
/// plugin does not change keeps its exact value (it used to come back as
/// the float Lua saw).
#[tokio::test]
async fn unchanged_big_numbers_stay_exact() {
    let input = json!({"event": "e", "properties": {"huge": u64::MAX}, "other": u64::MAX, "third": u64::MAX});
    let big =
        vm(&plugin("event.properties.x = 1 event.other = event.other event.third = event.third / 2 return event"));
    let ProcessOutcome::Event(out) = big.process_event(&input).await.unwrap() else { panic!() };
    assert_eq!(out["properties"]["huge"], json!(u64::MAX));
    assert_eq!(out["other"], json!(u64::MAX));
    assert_eq!(out["third"], json!(u64::MAX as f64 / 2.0));
}

#[tokio::test]
async fn arrays_objects_and_empty_tables() {
    same("table.insert(event.properties.list, 'four') event.properties.list[3].three = 'III' return event").await;
    same("event.properties.empty_list[1] = 'now one' event.properties.empty_object.x = 1 return event").await;
    same("event.properties.is = tostring(json.is_array(event.properties.list)) .. tostring(json.is_array(event.properties)) return event").await;
    // An object emptied and given a sequence becomes an array, as before.
    same("event.properties.empty_object[1] = 'a' event.properties.empty_object[2] = 'b' return event").await;
    same("event.properties.nested.a = nil event.properties.nested[1] = true return event").await;
    same("event[1] = 'first' event[2] = 'second' event.properties[1] = 'one' return event").await;
    same("event.properties.n = #event + #event.properties + #event.properties.list + rawlen(event) return event").await;
    same("table.insert(event, 'x') table.insert(event.properties, 'y') return event").await;
    same("event.properties.empty_list = {} event.properties.t = {} return event").await;
    same("return {properties = event.properties.empty_object, list = event.properties.empty_list}").await;
    same("event.properties['1'] = nil event.properties[1] = 'int one' return event").await;
}

#[tokio::test]
async fn unicode_keys_and_values() {
    same(
        "local p = event.properties
         p['ключ'] = p['ключ'] .. '!' p['新しい'] = p.unicode p.len = #p.unicode p.ulen = utf8.len(p.unicode)
         p.upper = p.unicode:upper() p['🎉'] = {['ü'] = 'ß'}
         return event",
    )
    .await;
    same("event.properties.unicode = nil event.properties['ключ'] = nil return event").await;
}

#[tokio::test]
async fn raw_functions_and_metatables() {
    same(
        "local p = event.properties
         p.a = tostring(rawget(event, 'event')) .. tostring(rawget(p, 'missing')) .. tostring(rawget(p, 'ratio'))
         rawset(p, 'b', 1) rawset(p, '$browser', nil) rawset(event, 'distinct_id', 'raw')
         p.mt = tostring(getmetatable(event)) .. tostring(getmetatable(p)) .. type(event) .. type(p)
         p.eq = rawequal(event.properties, p) and event.properties == p
         return event",
    )
    .await;
    // A plugin's own metatable on the event works as on a plain table.
    same(
        "setmetatable(event.properties, {__index = function(_, k) return 'default ' .. k end})
         event.properties.got = event.properties.anything
         event.got = getmetatable(event.properties) ~= nil
         return event",
    )
    .await;
    same("setmetatable(event, {}) event.x = 1 return event").await;
    same("local ok, e = pcall(setmetatable, event, {__gc = print}) event.refused = not ok return event").await;
    same("event[nil] = 1 return event").await;
    same("event[0/0] = 1 return event").await;
    same("rawset(event, nil, 1) return event").await;
    same("load('x = event', 'chunk', 't', event)() return event").await;
    same("event.properties.s = select('#', table.unpack(event.properties.list)) return event").await;
}

#[tokio::test]
async fn host_functions_see_the_whole_event() {
    same(
        "event.properties.encoded = json.encode(event.properties.nested)
         event.properties.all = #json.encode(event)
         meta.cache:set('e', event) event.properties.cached = meta.cache:get('e').properties['$browser']
         return event",
    )
    .await;
    same("event.properties.ratio = nil event.properties.new = 1 event.properties.j = json.encode(event) return event")
        .await;
    same("local s = string.gsub('$browser ratio', '%S+', event.properties) event.properties.g = s return event").await;
}

#[tokio::test]
async fn a_plugin_with_state_across_calls() {
    // meta.global keeping copies of values (not the event) works as before.
    same_n(
        &plugin(
            "local last = meta.global.last
             meta.global.last = {event = event.event, width = event.properties['$screen_width']}
             meta.global.count = (meta.global.count or 0) + 1
             event.properties.last = last event.properties.count = meta.global.count
             return event",
        ),
        &event(),
        3,
    )
    .await;
}

/// The patch holds only what changed: a plugin that reads a few fields
/// neither builds nor returns the rest.
#[tokio::test]
async fn the_patch_holds_only_the_changes() {
    let hello = vm(&plugin("local _ = event.event .. event.uuid event.properties.hello = 'world' return event"));
    let input = event();
    let Json::Object(map) = &input else { panic!() };
    let Processed::Kept(edit) = hello.process(map).await.unwrap() else { panic!() };
    let Edit::Patch(_) = &edit else { panic!("expected a patch: {edit:?}") };
    let mut out = map.clone();
    edit.apply(&mut out);
    let mut expected = map.clone();
    expected["properties"]["hello"] = json!("world");
    assert_eq!(out, expected);

    let unchanged = vm(&plugin("local _ = event.properties.nested.a.b.c return event"));
    let Processed::Kept(edit) = unchanged.process(map).await.unwrap() else { panic!() };
    assert_eq!(edit, Edit::none());
    // The runner's team_id check reads through the edit.
    assert_eq!(edit.get(map, "team_id"), Some(&json!(2)));
    let changes = vm(&plugin("event.team_id = 3 return event"));
    let Processed::Kept(edit) = changes.process(map).await.unwrap() else { panic!() };
    assert_eq!(edit.get(map, "team_id"), Some(&json!(3)));
}

/// An event kept past its call (in meta.global) fails loudly when used
/// later: it never shows the next event's data, and the state goes on.
#[tokio::test]
async fn an_event_kept_past_its_call_is_dead() {
    let vm = vm(&plugin(
        "if meta.global.kept then
           local k = meta.global.kept
           local what = event.properties.what
           if what == 'index' then return k.event end
           if what == 'properties' then return k.properties end
           if what == 'write' then k.x = 1 end
           if what == 'pairs' then for _ in pairs(k) do end end
           if what == 'next' then next(k) end
           if what == 'len' then return #k end
           if what == 'encode' then json.encode(k) end
           if what == 'return' then return k end
           if what == 'assign' then event.properties.old = k end
           if what == 'setmetatable' then setmetatable(k, {}) end
           if what == 'copy' then event.properties.copy = meta.global.copy return event end
           if what == 'getmetatable' then event.properties.mt = tostring(getmetatable(k)) return event end
         end
         meta.global.kept = event
         meta.global.copy = json.decode(json.encode(event.properties))
         return event",
    ));
    let first = json!({"event": "first", "properties": {"secret": "team data", "what": "none"}});
    vm.process_event(&first).await.unwrap();
    for what in ["index", "properties", "write", "pairs", "next", "len", "encode", "return", "assign", "setmetatable"] {
        let next = json!({"event": "second", "properties": {"what": what}});
        let err = vm.process_event(&next).await.unwrap_err();
        assert!(err.to_string().contains("earlier processEvent call"), "{what}: {err}");
        assert!(!err.to_string().contains("second") && !err.to_string().contains("team data"), "{what}: {err}");
    }
    // Copies made during the call stay usable; getmetatable answers nil.
    let next = json!({"event": "third", "properties": {"what": "copy"}});
    let ProcessOutcome::Event(out) = vm.process_event(&next).await.unwrap() else { panic!() };
    assert_eq!(out["properties"]["copy"], json!({"secret": "team data", "what": "none"}));
    let next = json!({"event": "fourth", "properties": {"what": "getmetatable"}});
    let ProcessOutcome::Event(out) = vm.process_event(&next).await.unwrap() else { panic!() };
    assert_eq!(out["properties"]["mt"], "nil");
}

/// The proxies' metatable and functions are out of the plugin's reach.
#[tokio::test]
async fn the_proxy_is_sealed() {
    let out = event_of(
        same(
            "local p = event.properties
             local mt = getmetatable(p)
             local ok = pcall(function() return debug.getmetatable(p) end)
             event.properties.sealed = mt == nil and not ok and debug == nil
             local f = pairs(p)
             event.properties.pairs_next = f == next
             return event",
        )
        .await,
    );
    assert_eq!(out["properties"]["sealed"], true);
}

#[tokio::test]
async fn limits_still_hold() {
    let bomb =
        vm(&plugin("for i = 1, 1e8 do event.properties['k' .. i] = string.rep('x', 100000) .. i end return event"));
    let err = bomb.process_event(&event()).await.unwrap_err();
    assert!(matches!(err, CallError::MemoryLimit(_)), "{err:?}");
    let spin = vm(&plugin("while true do local _ = event.properties.ratio end"));
    assert!(matches!(spin.process_event(&event()).await.unwrap_err(), CallError::TimeLimit(_)));
    // Iterating a large event many times stays within the time limit's reach.
    let big: serde_json::Map<String, Json> = (0..5000).map(|i| (format!("p{i}"), json!(i))).collect();
    let input = json!({"event": "e", "properties": big});
    let loops = vm(&plugin("while true do for k, v in pairs(event.properties) do end end"));
    assert!(matches!(loops.process_event(&input).await.unwrap_err(), CallError::TimeLimit(_)));
    // A state that hit a limit serves the next event.
    let fine = vm(&plugin(
        "if event.event == 'bomb' then local t = {} for i = 1, 1e9 do t[i] = {i} end end event.properties.ok = true return event",
    ));
    let _ = fine.process_event(&json!({"event": "bomb", "properties": {}})).await;
    let ProcessOutcome::Event(out) = fine.process_event(&event()).await.unwrap() else { panic!() };
    assert_eq!(out["properties"]["ok"], true);
}

/// Large objects (indexed records and taken sets) behave like small ones.
#[tokio::test]
async fn large_events() {
    let props: serde_json::Map<String, Json> =
        (0..300).map(|i| (format!("p{i}"), json!({"i": i, "s": format!("v{i}")}))).collect();
    let input = json!({"event": "e", "properties": props});
    same_n(
        &plugin(
            "for i = 0, 299, 3 do event.properties['p' .. i].i = -i end
             for i = 1, 299, 3 do event.properties['p' .. i] = nil end
             for i = 0, 299, 7 do event.properties['n' .. i] = event.properties['p' .. i] end
             return event",
        ),
        &input,
        2,
    )
    .await;
    same_n(
        &plugin("local n = 0 for k, v in pairs(event.properties) do n = n + v.i end event.n = n return event"),
        &input,
        1,
    )
    .await;
}

/// The event returned or encoded many times over is refused, as a table
/// shared many times over is: reading a proxy back copies its untouched
/// entries, and those copies count towards the conversion's bound.
#[tokio::test]
async fn a_proxy_shared_many_times_over_is_bounded() {
    let fat: serde_json::Map<String, Json> = (0..100).map(|i| (format!("p{i}"), json!("x".repeat(1000)))).collect();
    let input = json!({"event": "e", "properties": fat});
    // 2^20 copies of a 100 kB object, if nothing stopped it.
    let doubled = "local t = event.properties for i = 1, 20 do t = {t, t} end";
    let returned = vm(&plugin(&format!("{doubled} event.copies = t return event")));
    let err = returned.process_event(&input).await.unwrap_err();
    assert!(matches!(&err, CallError::BadReturn(m) if m.contains("too large")), "{err:?}");
    let encoded = vm(&plugin(&format!("{doubled} event.text = json.encode(t) return event")));
    let err = encoded.process_event(&input).await.unwrap_err();
    assert!(err.to_string().contains("too large"), "{err:?}");
    // Once, it is an ordinary event.
    let once = vm(&plugin("event.copy = {event.properties} return event"));
    let ProcessOutcome::Event(out) = once.process_event(&input).await.unwrap() else { panic!("dropped") };
    assert_eq!(out["copy"][0]["p7"], input["properties"]["p7"]);
}
