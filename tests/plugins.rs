//! The Lua runtime against hostile and broken plugins, and `phs plugins`
//! new/test as a user runs them. Each hostile plugin must be stopped with a
//! clear error while other plugin configs go on working.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use phs::cache::Cache;
use phs::plugins::logs::{LogSource, MemoryLog};
use phs::plugins::{CallError, Limits, Manifest, PluginSource, PluginVm, ProcessOutcome};
use serde_json::json;

use crate::util::plugins::{ctx, source};
use crate::util::{phs, stderr, stdout};

fn memory_cache() -> Arc<dyn Cache> {
    Arc::new(phs::cache::memory::MemoryCache::default())
}

fn vm(code: &str) -> PluginVm {
    PluginVm::load(&source(code), ctx(1, memory_cache(), Arc::new(MemoryLog::default())), limits()).unwrap()
}

fn limits() -> Limits {
    Limits {
        memory: 16 * 1024 * 1024,
        process_event: Duration::from_millis(200),
        process_event_wall: Duration::from_secs(2),
        on_event: Duration::from_millis(500),
        task_cpu: Duration::from_secs(2),
        task: Duration::from_secs(2),
    }
}

fn event() -> serde_json::Value {
    json!({"event": "e", "distinct_id": "d", "properties": {"a": 1}})
}

async fn outcome(code: &str) -> Result<ProcessOutcome, CallError> {
    vm(&format!("function processEvent(event, meta)\n{code}\nreturn event\nend")).process_event(&event()).await
}

/// Tells whether a call failed the expected way.
type ErrorCheck = fn(&CallError) -> bool;

#[tokio::test]
async fn hostile_plugins_are_contained() {
    let well_behaved = vm("function processEvent(e) e.properties.ok = true return e end");
    let cases: &[(&str, &str, ErrorCheck)] = &[
        ("infinite loop", "while true do end", |e| matches!(e, CallError::TimeLimit(_))),
        ("loop hidden in pcall", "while true do pcall(function() while true do end end) end", |e| {
            matches!(e, CallError::TimeLimit(_))
        }),
        ("loop in a coroutine", "coroutine.wrap(function() while true do end end)()", |e| {
            matches!(e, CallError::TimeLimit(_))
        }),
        ("table memory bomb", "local t = {} for i = 1, 1e9 do t[i] = {i} end", |e| {
            matches!(e, CallError::MemoryLimit(_) | CallError::TimeLimit(_))
        }),
        ("string.rep bomb", "local s = string.rep('x', 1e9)", |e| {
            matches!(e, CallError::MemoryLimit(_)) || e.to_string().contains("too large")
        }),
        ("concat bomb", "local s = 'x' while true do s = s .. s end", |e| matches!(e, CallError::MemoryLimit(_))),
        // On a loaded machine the deadline may come before the overflow: contained either way.
        ("deep recursion", "local function f(n) return f(n + 1) + 1 end f(1)", |e| {
            matches!(e, CallError::MemoryLimit(_) | CallError::TimeLimit(_)) || e.to_string().contains("stack overflow")
        }),
        ("io", "io.open('/etc/passwd')", |e| e.to_string().contains("io")),
        ("os.execute", "os.execute('touch /tmp/phs-pwned')", |e| e.to_string().contains("execute")),
        ("os.getenv", "local h = os.getenv('HOME')", |e| e.to_string().contains("getenv")),
        ("require a system module", "require('os')", |e| e.to_string().contains("module 'os' not found")),
        ("debug library", "debug.getinfo(1)", |e| e.to_string().contains("debug")),
        ("dofile", "dofile('/etc/passwd')", |e| e.to_string().contains("dofile")),
        ("string.dump", "load(string.dump(function() end))", |e| e.to_string().contains("dump")),
        ("binary chunk", "assert(load('\\27Lua\\84\\0'))", |e| e.to_string().contains("binary")),
        ("full collectgarbage", "collectgarbage('stop')", |e| e.to_string().contains("not available")),
        // lstrlib's C matcher would backtrack for ever; ours stops at the deadline.
        ("catastrophic pattern", "string.find(string.rep('a', 20000), string.rep('a*', 40) .. 'b')", |e| {
            matches!(e, CallError::TimeLimit(_))
        }),
        (
            "catastrophic pattern in pcall",
            "while true do pcall(string.match, ('a'):rep(20000), ('a-'):rep(40) .. 'b') end",
            |e| matches!(e, CallError::TimeLimit(_)),
        ),
        ("catastrophic method call", "local s = ('a'):rep(5000) s:gsub(('.-'):rep(30) .. 'b', '')", |e| {
            matches!(e, CallError::TimeLimit(_))
        }),
        // Finalizers run with hooks off: one that loops would hang the state.
        ("looping __gc", "setmetatable({}, {__gc = function() while true do end end})", |e| {
            e.to_string().contains("__gc")
        }),
        (
            "__gc on a userdata's metatable",
            "local ok, err = pcall(error, RetryError('x')) local mt = getmetatable(err) mt.__gc = function() while true do end end",
            |e| !e.is_limit(),
        ),
        ("cache TTL of math.huge", "meta.cache:set('k', 1, math.huge)", |e| e.to_string().contains("TTL")),
        ("cache TTL of NaN", "meta.cache:expire('k', 0/0)", |e| e.to_string().contains("TTL")),
    ];
    for (name, code, expected) in cases {
        let started = std::time::Instant::now();
        let err = match outcome(code).await {
            Err(e) => e,
            Ok(_) => panic!("{name}: the plugin was not stopped"),
        };
        assert!(expected(&err), "{name}: unexpected error: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{name}: took {:?}", started.elapsed());
        // Others keep working in between.
        match well_behaved.process_event(&event()).await {
            Ok(ProcessOutcome::Event(e)) => assert_eq!(e["properties"]["ok"], true),
            _ => panic!("{name}: the well-behaved plugin stopped working"),
        }
    }
    assert!(!std::path::Path::new("/tmp/phs-pwned").exists());
}

#[tokio::test]
async fn a_cpu_bound_setup_is_stopped_by_the_cpu_limit_not_the_wall_limit() {
    let limits = Limits { task_cpu: Duration::from_millis(300), task: Duration::from_secs(30), ..limits() };
    let code = "function setupPlugin() while true do end end function processEvent(e) return e end";
    let vm = PluginVm::load(&source(code), ctx(1, memory_cache(), Arc::new(MemoryLog::default())), limits).unwrap();
    let started = std::time::Instant::now();
    let err = vm.setup().await.expect_err("the loop is stopped");
    assert_eq!(err, CallError::TimeLimit(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_state_recovers_after_hitting_a_limit() {
    let vm = vm(r#"
        function processEvent(event, meta)
          if event.event == "bomb" then local t = {} for i = 1, 1e9 do t[i] = {i} end end
          if event.event == "spin" then while true do end end
          event.properties.survived = true
          return event
        end"#);
    for kind in ["bomb", "spin"] {
        let err = vm.process_event(&json!({"event": kind, "properties": {}})).await.expect_err("limit");
        assert!(err.is_limit(), "{kind}: {err:?}");
        match vm.process_event(&event()).await {
            Ok(ProcessOutcome::Event(e)) => assert_eq!(e["properties"]["survived"], true),
            other => panic!("after {kind}: {:?}", other.err()),
        }
    }
}

#[tokio::test]
async fn plugin_errors_carry_file_line_and_traceback() {
    let vm =
        vm("local function helper(e)\n  error('boom: ' .. e.event)\nend\nfunction processEvent(e)\n  helper(e)\nend");
    let err = vm.process_event(&event()).await.expect_err("error");
    let msg = err.to_string();
    assert!(msg.contains("index.lua:2: boom: e"), "{msg}");
    assert!(msg.contains("stack traceback") && msg.contains("index.lua:5"), "{msg}");
}

#[tokio::test]
async fn returns_drops_and_bad_returns() {
    assert!(matches!(outcome("do return nil end").await, Ok(ProcessOutcome::Dropped)));
    let err = vm("function processEvent(e) return 'x' end").process_event(&event()).await.err().unwrap();
    assert!(matches!(err, CallError::BadReturn(_)) && err.to_string().contains("string"), "{err}");
    // No processEvent: the event passes unchanged.
    match vm("function setupPlugin(meta) end").process_event(&event()).await {
        Ok(ProcessOutcome::Event(e)) => assert_eq!(e, event()),
        other => panic!("{:?}", other.err()),
    }
}

#[tokio::test]
async fn capabilities_are_detected() {
    let vm = vm(r#"
        function processEvent(e) return e end
        function runEveryMinute(meta) end
        function teardownPlugin(meta) end
        jobs = { sync = function(payload, meta) end, notify = function() end, not_a_job = 1 }"#);
    let caps = vm.capabilities();
    assert_eq!(caps.methods, vec!["teardownPlugin", "processEvent"]);
    assert_eq!(caps.scheduled_tasks, vec!["runEveryMinute"]);
    assert_eq!(caps.jobs, vec!["notify", "sync"]);
    // The module form: the main file returns its hooks.
    let module = PluginVm::load(
        &source("return { processEvent = function(e) e.m = 1 return e end }"),
        ctx(1, memory_cache(), Arc::new(MemoryLog::default())),
        limits(),
    )
    .unwrap();
    assert_eq!(module.capabilities().methods, vec!["processEvent"]);
}

async fn cache_isolation_across_teams(cache: Arc<dyn Cache>) {
    let code = r#"
        function processEvent(event, meta)
          if event.event == "write" then meta.cache:set("secret", {team = event.properties.team}) end
          event.properties.seen = meta.cache:get("secret", "nothing")
          event.properties.n = meta.cache:incr("counter")
          return event
        end"#;
    let logs = Arc::new(MemoryLog::default());
    let team_a =
        PluginVm::load(&source(code), ctx(crate::util::unique_id(), cache.clone(), logs.clone()), limits()).unwrap();
    let team_b = PluginVm::load(&source(code), ctx(crate::util::unique_id(), cache.clone(), logs), limits()).unwrap();
    let write = json!({"event": "write", "properties": {"team": "a"}});
    let read = json!({"event": "read", "properties": {}});
    let ProcessOutcome::Event(a) = team_a.process_event(&write).await.unwrap() else { panic!() };
    assert_eq!(a["properties"]["seen"]["team"], "a");
    let ProcessOutcome::Event(b) = team_b.process_event(&read).await.unwrap() else { panic!() };
    assert_eq!(b["properties"]["seen"], "nothing", "team B read team A's cache key");
    assert_eq!(b["properties"]["n"], 1, "counters are per team");
    let ProcessOutcome::Event(a2) = team_a.process_event(&read).await.unwrap() else { panic!() };
    assert_eq!(a2["properties"]["n"], 2);
}

#[tokio::test]
async fn cache_is_per_team_in_memory() {
    cache_isolation_across_teams(memory_cache()).await;
}

#[tokio::test]
async fn cache_is_per_team_in_redis() {
    let url = url::Url::parse(&crate::util::redis_url()).unwrap();
    cache_isolation_across_teams(phs::cache::connect(Some(&url)).await.unwrap()).await;
}

#[tokio::test]
async fn globals_are_per_plugin_config() {
    let code = "counter = (counter or 0)\nfunction processEvent(e, meta)\n counter = counter + 1\n meta.global.n = (meta.global.n or 0) + 1\n e.properties.c = counter\n e.properties.g = meta.global.n\n return e\nend";
    let a = vm(code);
    let b = vm(code);
    for _ in 0..3 {
        a.process_event(&event()).await.unwrap();
    }
    let ProcessOutcome::Event(e) = b.process_event(&event()).await.unwrap() else { panic!() };
    assert_eq!((e["properties"]["c"].as_i64(), e["properties"]["g"].as_i64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn log_flooding_is_capped_and_reported() {
    let logs = Arc::new(MemoryLog::default());
    let code = "function processEvent(e) for i = 1, 10000 do console.log('spam', i, {k = i}) end return e end";
    // A generous deadline: 10,000 calls in a debug build on a busy machine can take a while.
    let generous = Limits { process_event: Duration::from_secs(5), ..limits() };
    let vm = PluginVm::load(&source(code), ctx(1, memory_cache(), logs.clone()), generous).unwrap();
    vm.process_event(&event()).await.unwrap();
    let entries = logs.take();
    // A window's worth, and a note said at the first one dropped.
    assert_eq!(entries.len(), phs::plugins::api::LOGS_PER_SECOND as usize + 1, "{}", entries.len());
    assert_eq!(entries[0].message, r#"spam 1 {"k":1}"#);
    let note = entries.last().unwrap();
    assert!(
        note.source == LogSource::System && note.message.contains("the rest of this second's are dropped"),
        "{note:?}"
    );
    // The next window starts with a note of how many were dropped.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    vm.process_event(&event()).await.unwrap();
    let next = logs.take();
    assert!(next[0].message.contains("9900 console entries were dropped"), "{:?}", next[0]);
}

#[tokio::test]
async fn require_loads_only_the_plugins_own_files() {
    let manifest = Manifest::parse(r#"{"name": "multi"}"#).unwrap();
    let files = BTreeMap::from([
        (
            "index.lua".to_string(),
            "local util = require('lib.util')\nfunction processEvent(e) e.x = util.twice(21) return e end".to_string(),
        ),
        ("lib/util.lua".to_string(), "return { twice = function(n) return n * 2 end }".to_string()),
    ]);
    let vm = PluginVm::load(
        &PluginSource::new(manifest, files).unwrap(),
        ctx(1, memory_cache(), Arc::new(MemoryLog::default())),
        limits(),
    )
    .unwrap();
    let ProcessOutcome::Event(e) = vm.process_event(&event()).await.unwrap() else { panic!() };
    assert_eq!(e["x"], 42);
}

#[test]
fn plugins_new_scaffolds_a_plugin_whose_fixtures_pass() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("my-plugin");
    let out = phs().args(["plugins", "new", "my-plugin", "--dir"]).arg(&target).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("plugin.json")).unwrap()).unwrap();
    assert_eq!(manifest["name"], "my-plugin");

    let out = phs().args(["plugins", "test"]).arg(&target).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("3 of 3 fixtures passed"), "{}", stdout(&out));

    // Again into the same place: refused, nothing overwritten.
    let out = phs().args(["plugins", "new", "my-plugin", "--dir"]).arg(&target).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plugins_test_shows_a_readable_diff_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p");
    assert!(phs().args(["plugins", "new", "p", "--dir"]).arg(&target).status().unwrap().success());
    let index = target.join("index.lua");
    let code = std::fs::read_to_string(&index)
        .unwrap()
        .replace("event.properties.hello = meta.global.greeting", "event.properties.hello = 'bye'");
    std::fs::write(&index, code).unwrap();
    let out = phs().args(["plugins", "test"]).arg(&target).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("FAIL adds_greeting"), "{text}");
    assert!(text.contains(r#"~ properties.hello: expected "world", got "bye""#), "{text}");
}

#[test]
fn plugins_test_with_events_prints_json_lines() {
    let out = phs()
        .args(["plugins", "test", "lua-plugins/hello-world", "--config", "drop_event=gone"])
        .args(["--event", r#"{"event": "kept", "properties": {}}"#, "--event", r#"{"event": "gone"}"#])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["result"], "event");
    assert_eq!(lines[0]["event"]["properties"]["hello"], "world");
    assert_eq!(lines[1]["result"], "dropped");
}

#[test]
fn plugins_test_exit_codes_for_broken_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let write = |files: &[(&str, &str)]| {
        let d = tempfile::tempdir_in(dir.path()).unwrap().keep();
        for (name, content) in files {
            std::fs::write(d.join(name), content).unwrap();
        }
        d
    };
    // Syntax error: an invalid plugin, exit 2, naming file and line.
    let broken =
        write(&[("plugin.json", r#"{"name": "b"}"#), ("index.lua", "function processEvent(e)\n  return e +\nend")]);
    let out = phs().args(["plugins", "test"]).arg(&broken).args(["--event", "{}"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("index.lua:3"), "{}", stderr(&out));
    // Not JSON plugin.json: exit 2.
    let bad_manifest = write(&[("plugin.json", "{"), ("index.lua", "")]);
    let out = phs().args(["plugins", "test"]).arg(&bad_manifest).args(["--event", "{}"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("plugin.json"), "{}", stderr(&out));
    // A plugin that hits a limit: exit 1 with the error as JSON.
    let spin =
        write(&[("plugin.json", r#"{"name": "s"}"#), ("index.lua", "function processEvent(e) while true do end end")]);
    let out = phs().args(["plugins", "test"]).arg(&spin).args(["--event", "{}"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!((line["result"].as_str(), line["limit"].as_bool()), (Some("error"), Some(true)));
}

#[test]
fn every_bundled_plugin_passes_its_fixtures() {
    let mut tested = 0;
    for entry in std::fs::read_dir("lua-plugins").unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("plugin.json").exists() {
            continue;
        }
        let out = phs().args(["plugins", "test"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}: {}{}", dir.display(), stdout(&out), stderr(&out));
        tested += 1;
    }
    assert!(tested >= 1, "no bundled plugins found");
}

/// install, config, enable, order, list, remove through the CLI, on one backend.
fn manage_plugins_via_cli(env: &[(&str, String)]) {
    let run = |args: &[&str]| crate::util::phs_with(env, args);
    let (code, team, err) = run(&["teams", "create", "shop"]);
    assert_eq!(code, Some(0), "{err}");
    let team = team.trim().to_string();

    let (code, id, err) = run(&["plugins", "install", "lua-plugins/hello-world"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("setupPlugin, processEvent"), "{err}");
    let id = id.trim().to_string();

    // A config key the schema does not have is a usage error; a valid one is stored.
    let (code, _, err) = run(&["plugins", "config", &id, "--team", &team, "--set", "colour=red"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("colour"), "{err}");
    let (code, out, err) = run(&["plugins", "config", "Hello World", "--team", &team, "--set", "greeting=hi"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["greeting"], "hi");

    let (code, _, err) = run(&["plugins", "enable", "Hello World", "--team", &team]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["plugins", "list", "--team", &team, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["configs"][0]["enabled"], true);
    assert_eq!(listed["configs"][0]["config"]["greeting"], "hi");
    assert_eq!(listed["plugins"][0]["capabilities"]["methods"], serde_json::json!(["setupPlugin", "processEvent"]));

    let (code, _, err) = run(&["plugins", "disable", &id, "--team", &team]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(&["plugins", "order", "--team", &team]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Hello World (disabled)"), "{out}");

    let (code, _, err) = run(&["plugins", "enable", "nope", "--team", &team]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no installed plugin `nope`"), "{err}");
    let (code, _, err) = run(&["plugins", "remove", &id]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run(&["plugins", "list", "--json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["plugins"], serde_json::json!([]));
}

#[test]
fn manage_plugins_embedded() {
    let dir = tempfile::tempdir().unwrap();
    manage_plugins_via_cli(&[("PHS_DATA_DIR", dir.path().display().to_string())]);
}

#[tokio::test]
async fn manage_plugins_postgres() {
    let db = crate::util::fresh_postgres_db().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db), ("PHS_DATA_DIR", dir.path().display().to_string())];
    let out = phs().arg("migrate").envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    tokio::task::spawn_blocking(move || manage_plugins_via_cli(&env)).await.unwrap();
}

#[test]
fn sequence_fixtures_share_one_state() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("tests")).unwrap();
    std::fs::write(p.join("plugin.json"), r#"{"name": "counter"}"#).unwrap();
    std::fs::write(
        p.join("index.lua"),
        "function processEvent(e, meta)\n  e.n = meta.utils.cursor.increment('n')\n  return e\nend",
    )
    .unwrap();
    std::fs::write(
        p.join("tests/counts.json"),
        r#"{"events": [{"event": "a"}, {"event": "b"}], "expected": [{"event": "a", "n": 1}, {"event": "b", "n": 2}]}"#,
    )
    .unwrap();
    let out = phs().args(["plugins", "test"]).arg(p).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    std::fs::write(
        p.join("tests/counts.json"),
        r#"{"events": [{"event": "a"}, {"event": "b"}], "expected": [{"event": "a", "n": 1}, {"event": "b", "n": 1}]}"#,
    )
    .unwrap();
    let out = phs().args(["plugins", "test"]).arg(p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("event 2: ~ n: expected 1, got 2"), "{}", stdout(&out));

    std::fs::write(p.join("tests/counts.json"), r#"{"events": [{"event": "a"}], "expected": []}"#).unwrap();
    let out = phs().args(["plugins", "test"]).arg(p).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("must be an array of 1"), "{}", stderr(&out));
}

#[tokio::test]
async fn json_helpers_tell_arrays_and_null() {
    let vm = vm(r#"
        function processEvent(e)
          e.kinds = { json.is_array(e.list), json.is_array(e.properties), json.is_array("x") }
          e.was_null = e.nothing == json.null
          e.made_null = json.null
          return e
        end"#);
    let input = json!({"event": "e", "list": [], "properties": {}, "nothing": null});
    let ProcessOutcome::Event(out) = vm.process_event(&input).await.unwrap() else { panic!() };
    assert_eq!(out["kinds"], json!([true, false, false]));
    assert_eq!(out["was_null"], true);
    assert!(out["made_null"].is_null() && out.as_object().unwrap().contains_key("made_null"));
}

#[test]
fn plugins_reload_embedded_needs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = phs().args(["plugins", "reload"]).env("PHS_DATA_DIR", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("within 2 s"), "{}", stderr(&out));
}

#[tokio::test]
async fn plugins_reload_publishes_on_the_redis_channel() {
    use futures_util::StreamExt;
    let url = crate::util::redis_url();
    let channel = crate::util::unique("reload");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&channel).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = phs()
        .args(["plugins", "reload", "--channel", &channel])
        .env("REDIS_URL", &url)
        .env("PHS_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 subscribers"), "{}", stderr(&out));
    let msg = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next()).await.unwrap().unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "reload");
}

/// A local HTTP server for fetch tests: `/json` answers JSON, `/big` 2 MiB, `/echo` the request.
async fn http_server() -> String {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route("/json", get(|| async { axum::Json(json!({"rate": 1.08, "currency": "EUR"})) }))
        .route("/big", get(|| async { "x".repeat(2 * 1024 * 1024) }))
        .route(
            "/echo",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                format!("{}|{}", headers.get("x-test").and_then(|v| v.to_str().ok()).unwrap_or(""), body)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn fetch_vm(code: &str, allow_private: bool) -> PluginVm {
    let mut c = ctx(1, memory_cache(), Arc::new(MemoryLog::default()));
    c.fetch = phs::plugins::fetch::FetchPolicy { allow_private, max_response_bytes: 1024 * 1024, ..Default::default() };
    PluginVm::load(&source(code), c, limits()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reaches_http_within_limits() {
    let base = http_server().await;
    let code = r#"
        function processEvent(e)
          local r = fetch(e.properties.url .. "/json")
          e.properties.status = r.status
          e.properties.rate = r:json().rate
          local echo = fetch(e.properties.url .. "/echo", {method = "POST", headers = {["x-test"] = "hi"}, body = "payload"})
          e.properties.echo = echo.body
          return e
        end"#;
    let vm = fetch_vm(code, true);
    let ProcessOutcome::Event(out) =
        vm.process_event(&json!({"event": "e", "properties": {"url": base}})).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(out["properties"]["status"], 200);
    assert_eq!(out["properties"]["rate"], 1.08);
    assert_eq!(out["properties"]["echo"], "hi|payload");

    // Over the size cap: an error, not a huge string in the plugin's memory.
    let big = fetch_vm("function processEvent(e) fetch(e.properties.url .. '/big') return e end", true);
    let err = big.process_event(&json!({"event": "e", "properties": {"url": base}})).await.unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_refuses_internal_addresses_and_other_schemes() {
    let base = http_server().await;
    let vm = fetch_vm("function processEvent(e) fetch(e.properties.url) return e end", false);
    for url in [
        format!("{base}/json"),
        "http://localhost:1/".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let err = vm.process_event(&json!({"event": "e", "properties": {"url": url}})).await.unwrap_err();
        assert!(err.to_string().contains("private or loopback"), "{url}: {err}");
    }
    let err = vm.process_event(&json!({"event": "e", "properties": {"url": "file:///etc/passwd"}})).await.unwrap_err();
    assert!(err.to_string().contains("only http and https"), "{err}");
}

/// A new team named `name` with a plugin of `code` installed, configured and enabled for it.
async fn team_with_plugin(
    tmp: &tempfile::TempDir,
    store: &Arc<dyn phs::store::Store>,
    name: &str,
    code: &str,
) -> (phs::store::Team, phs::store::PluginConfig) {
    use phs::plugins::registry;
    let dir = crate::util::embedded::plugin_dir(tmp.path(), &crate::util::unique(name), json!([]), code);
    let plugin = registry::install(store.as_ref(), &dir).await.unwrap();
    let new_team = phs::store::NewTeam { name: name.into(), anonymize_ips: false, api_token: None };
    let team = store.create_team(new_team).await.unwrap();
    let config = registry::configure(store.as_ref(), &team, &plugin, &[]).await.unwrap();
    registry::enable(store.as_ref(), &team, &plugin).await.unwrap();
    (team, config)
}

/// A config failing on two instances that share a Redis is disabled once
/// their summed calls pass the policy, although neither saw enough calls
/// to judge alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_rate_is_judged_across_instances() {
    use phs::plugins::error_rate::ErrorRatePolicy;
    use phs::plugins::runner::{Backends, PluginRunner, RunnerOptions};
    let tmp = tempfile::tempdir().unwrap();
    let store = crate::util::postgres_store(&tmp).await;
    let code = "function processEvent(event, meta)\n  error('always')\nend";
    let (team, config) = team_with_plugin(&tmp, &store, "failing", code).await;
    let url = url::Url::parse(&crate::util::redis_url()).unwrap();
    // Each instance alone sees 60 of the 100 calls the policy needs.
    let options = RunnerOptions {
        auto_disable: ErrorRatePolicy { rate: 0.5, min_calls: 100, window: Duration::from_secs(86_400) },
        error_rate_key: Some(crate::util::unique("error-rate")),
        ..RunnerOptions::default()
    };
    let mut runners = Vec::new();
    for _ in 0..2 {
        let cache = phs::cache::connect(Some(&url)).await.unwrap();
        let runner = PluginRunner::new(Backends::of(store.clone(), cache), None, options.clone(), uuid::Uuid::now_v7());
        for _ in 0..60 {
            runner.process(team.id, event().as_object().unwrap().clone()).await;
        }
        runners.push(runner);
    }
    let enabled =
        async || store.list_plugin_configs(Some(team.id)).await.unwrap().iter().any(|c| c.id == config.id && c.enabled);
    assert!(enabled().await, "neither instance judged alone");
    runners[0].share_error_rates_once().await;
    assert!(enabled().await, "60 calls shared so far");
    runners[1].share_error_rates_once().await;
    let after = store.list_plugin_configs(Some(team.id)).await.unwrap();
    let c = after.iter().find(|c| c.id == config.id).unwrap();
    assert!(!c.enabled, "disabled on the summed counts");
    let reason = c.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
    assert!(reason.contains("120 of 120 calls failed across instances"), "{reason}");
}

/// A loop of quick `meta.cache` calls that outlasts processEvent's wall
/// time is the plugin's time limit, not an outage: only a call that itself
/// waits for half the wall time marks its service as unreachable (which
/// makes the batch wait and retry, and must not be a plugin's to trigger).
#[tokio::test]
async fn a_loop_of_quick_cache_calls_is_a_time_limit_not_an_outage() {
    let url = url::Url::parse(&crate::util::redis_url()).unwrap();
    let cache = phs::cache::connect(Some(&url)).await.unwrap();
    let limits = Limits {
        process_event: Duration::from_millis(500),
        process_event_wall: Duration::from_millis(300),
        ..limits()
    };
    let code = "function processEvent(e, meta)\n while true do meta.cache:get('k') end\nend";
    let vm = PluginVm::load(&source(code), ctx(1, cache, Arc::new(MemoryLog::default())), limits).unwrap();
    match vm.process_event(&event()).await {
        Err(CallError::TimeLimit(_)) => {}
        other => panic!("expected the time limit, got {other:?}"),
    }
}

/// The plugin store of a runner, whose list of configs fails (as a database that went away does)
/// while `failing` is set.
struct FlakyConfigs {
    inner: Arc<dyn phs::store::Store>,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl phs::store::PluginStore for FlakyConfigs {
    async fn install_plugin(&self, plugin: &phs::store::NewPlugin) -> phs::store::Result<phs::store::Plugin> {
        self.inner.install_plugin(plugin).await
    }
    async fn list_plugins(&self) -> phs::store::Result<Vec<phs::store::Plugin>> {
        self.inner.list_plugins().await
    }
    async fn plugin_files(&self, plugin_id: i64) -> phs::store::Result<Vec<(String, String)>> {
        self.inner.plugin_files(plugin_id).await
    }
    async fn remove_plugin(&self, plugin_id: i64) -> phs::store::Result<bool> {
        self.inner.remove_plugin(plugin_id).await
    }
    async fn plugin_config(&self, team_id: i64, plugin_id: i64) -> phs::store::Result<phs::store::PluginConfig> {
        self.inner.plugin_config(team_id, plugin_id).await
    }
    async fn update_plugin_config(
        &self,
        id: i64,
        update: &phs::store::PluginConfigUpdate,
    ) -> phs::store::Result<phs::store::PluginConfig> {
        self.inner.update_plugin_config(id, update).await
    }
    async fn list_plugin_configs(&self, team_id: Option<i64>) -> phs::store::Result<Vec<phs::store::PluginConfig>> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(phs::store::StoreError::Unavailable("the database went away".into()));
        }
        self.inner.list_plugin_configs(team_id).await
    }
    async fn set_plugin_attachment(
        &self,
        config: &phs::store::PluginConfig,
        attachment: &phs::store::PluginAttachment,
    ) -> phs::store::Result<()> {
        self.inner.set_plugin_attachment(config, attachment).await
    }
    async fn plugin_attachments(&self, plugin_config_id: i64) -> phs::store::Result<Vec<phs::store::PluginAttachment>> {
        self.inner.plugin_attachments(plugin_config_id).await
    }
    async fn append_plugin_logs(&self, entries: &[phs::store::PluginLog]) -> phs::store::Result<()> {
        self.inner.append_plugin_logs(entries).await
    }
    async fn plugin_logs(
        &self,
        plugin_config_id: i64,
        after: Option<chrono::DateTime<chrono::Utc>>,
        limit: i64,
    ) -> phs::store::Result<Vec<phs::store::PluginLog>> {
        self.inner.plugin_logs(plugin_config_id, after, limit).await
    }
}

/// A team's plugin list that cannot be read (the store is down for a while) never lets its
/// events on without their plugins: a first read that fails makes the event wait (the batch
/// is retried), and a later read that fails keeps the list read before.
#[tokio::test]
async fn events_wait_for_a_plugin_list_that_cannot_be_read() {
    use phs::plugins::runner::{Backends, Outcome, PluginRunner, RunnerOptions};
    use std::sync::atomic::Ordering;
    let tmp = tempfile::tempdir().unwrap();
    let store = crate::util::postgres_store(&tmp).await;
    let code = "function processEvent(event)\n  event.properties.marked = true\n  return event\nend";
    let (team, _) = team_with_plugin(&tmp, &store, "marker", code).await;
    let flaky = Arc::new(FlakyConfigs { inner: store.clone(), failing: true.into() });
    let backends = Backends { plugins: flaky.clone(), ..Backends::of(store.clone(), memory_cache()) };
    let runner = PluginRunner::new(backends, None, RunnerOptions::default(), uuid::Uuid::now_v7());
    let marked = async || match runner.process(team.id, event().as_object().unwrap().clone()).await {
        Outcome::Event(e) => Ok(e["properties"]["marked"] == json!(true)),
        Outcome::Unavailable { error, .. } => Err(error),
        Outcome::Dropped { by } | Outcome::Slow { by } => panic!("dropped or cut by {by}"),
    };

    let first = marked().await;
    assert!(first.as_ref().is_err_and(|e| e.contains("went away")), "the first read failed: {first:?}");
    flaky.failing.store(false, Ordering::SeqCst);
    assert_eq!(marked().await, Ok(true), "read once the store answers");

    // Past the list's refresh period, every read fails: the list read before stays in use.
    flaky.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..20 {
        assert_eq!(marked().await, Ok(true), "the list read before stays in use");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A plugin that catches a `meta.cache` outage and then fails in its own words is not the
/// plugin's failure: the call is an outage (its batch waits and retries), so the event is never
/// let past the plugin because Redis was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_catches_a_cache_outage_and_fails_waits_for_the_cache() {
    use crate::util::fault_proxy::{FaultProxy, Mode};
    let redis = url::Url::parse(&crate::util::redis_url()).unwrap();
    let proxy =
        FaultProxy::start(&format!("{}:{}", redis.host_str().unwrap(), redis.port_or_known_default().unwrap())).await;
    let url = url::Url::parse(&format!("redis://127.0.0.1:{}", proxy.port)).unwrap();
    let cache = phs::cache::connect(Some(&url)).await.unwrap();
    let code = "function processEvent(e, meta)\n  local ok, err = pcall(meta.cache.get, 'k')\n  \
                if not ok then error('the cache failed: ' .. tostring(err)) end\n  return e\nend";
    let vm = PluginVm::load(&source(code), ctx(1, cache, Arc::new(MemoryLog::default())), limits()).unwrap();
    assert!(vm.process_event(&event()).await.is_ok(), "the cache answers");
    proxy.set(Mode::Down);
    proxy.wait_refusing().await;
    match vm.process_event(&event()).await {
        Err(CallError::Unavailable(_)) => {}
        other => panic!("expected an outage, got {other:?}"),
    }
}

/// Every request of a server's plugins goes through one client: a second and third request to
/// the same host reuse the first one's connection (no new TCP connection, no new TLS setup).
#[tokio::test]
async fn fetch_reuses_connections_across_requests() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let policy = phs::plugins::fetch::FetchPolicy { allow_private: true, ..Default::default() };
    let copy = policy.clone();
    let url = format!("http://{addr}/hook");
    for p in [&policy, &copy, &policy] {
        let reply = phs::plugins::fetch::fetch(p, &url, Default::default()).await.unwrap();
        assert_eq!(reply["body"], "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "three requests, one connection");
}
