//! Plugins misbehaving inside a running `phs serve` (embedded): hostile code
//! is stopped per call while other configs and teams keep working, and a
//! config that keeps failing is disabled automatically until re-enabled.

use serde_json::{Value, json};

use crate::util::embedded::plugin_dir;
use crate::util::embedded::{cli, post, wait_for_events};
use crate::util::eventually::eventually_blocking;
use crate::util::plugins::{HOSTILE, HOSTILE_ATTACKS};
use crate::util::server::{start, wait_healthy};

fn by_event<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["event"] == name).unwrap_or_else(|| panic!("no stored `{name}` event in {rows:?}"))
}

const NEIGHBOUR: &str = r#"
    function processEvent(event, meta)
      meta.cache:set("secret", "team B's secret")
      meta.storage:set("secret", "team B's stored secret")
      event.properties.neighbour = "ok"
      return event
    end"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_in_a_running_server_leave_others_working() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let hostile_team = cli(&d, &["teams", "create", "hostile"]).trim().to_string();
    let other_team = cli(&d, &["teams", "create", "neighbour"]).trim().to_string();
    let hostile = plugin_dir(&d, "hostile", json!([]), HOSTILE);
    let neighbour = plugin_dir(&d, "neighbour", json!([]), NEIGHBOUR);
    cli(&d, &["plugins", "install", hostile.to_str().unwrap()]);
    cli(&d, &["plugins", "install", neighbour.to_str().unwrap()]);
    cli(&d, &["plugins", "install", "lua-plugins/hello-world"]);
    for (plugin, team) in [("hostile", &hostile_team), ("Hello World", &hostile_team), ("neighbour", &other_team)] {
        cli(&d, &["plugins", "enable", plugin, "--team", team]);
    }

    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch/", server.capture);
    // Limits (spin, bomb, rep) are not hit three calls in a row, which would disable the plugin.
    let attacks = HOSTILE_ATTACKS;
    // Team B first, so its cache and storage hold the secret when team A tries to read it.
    let b = json!({"api_key": other_team, "batch": [{"event": "b1", "distinct_id": "u"}]});
    assert_eq!(post(&url, "application/json", b.to_string().into_bytes()).await.0, 200);
    wait_for_events(&d, 1);
    let batch: Vec<Value> = attacks.iter().map(|a| json!({"event": a, "distinct_id": "attacker"})).collect();
    let a = json!({"api_key": hostile_team, "batch": batch});
    assert_eq!(post(&url, "application/json", a.to_string().into_bytes()).await.0, 200);
    let b = json!({"api_key": other_team, "batch": [{"event": "b2", "distinct_id": "u"}]});
    assert_eq!(post(&url, "application/json", b.to_string().into_bytes()).await.0, 200);

    let rows = wait_for_events(&d, attacks.len() + 2);
    for attack in attacks {
        let p = &by_event(&rows, attack)["properties"];
        // Each event passes on: the hostile plugin failed, Hello World after it still ran.
        assert_eq!(p["hello"], "world", "{attack}: {p}");
        let failed = !matches!(attack, "steal" | "plain" | "flood");
        let expected = if failed { json!(["hostile (1)"]) } else { json!([]) };
        assert_eq!(p["$plugins_failed"], expected, "{attack}: {p}");
    }
    let steal = &by_event(&rows, "steal")["properties"];
    assert_eq!(steal.get("stolen"), None, "team A read team B's cache: {steal}");
    assert_eq!(steal["storage"], "none", "team A read team B's storage");
    for e in ["b1", "b2"] {
        assert_eq!(by_event(&rows, e)["properties"]["neighbour"], "ok", "team B's plugin stopped working");
    }
    assert!(!std::path::Path::new("/tmp/phs-hostile-serve").exists());

    // The flood was capped: one window's worth of console entries, no more.
    // Log entries are written in batches: wait until the window's worth is there.
    let cap = phs::plugins::api::LOGS_PER_SECOND as usize;
    let console = |logs: &str| logs.lines().filter(|l| l.contains("CONSOLE")).count();
    let logs =
        eventually_blocking(std::time::Duration::from_secs(10), "the flood's and the limits' log entries", || {
            let logs = cli(&d, &["plugins", "logs", "1"]);
            let all = console(&logs) >= cap && logs.contains("time limit") && logs.contains("memory limit");
            if all { Ok(logs) } else { Err(logs) }
        });
    assert!(console(&logs) <= cap, "{} console entries stored", console(&logs));
    let health = crate::util::phs().args(["healthcheck", "--admin-addr", &server.addr]).output().unwrap();
    assert!(health.status.success(), "the server is unhealthy after the attacks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_failing_too_often_is_disabled_until_enabled_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let team = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let flaky = plugin_dir(
        &d,
        "flaky",
        json!([]),
        "function processEvent(e) if e.properties.n % 4 ~= 0 then error('flaky ' .. e.properties.n) end return e end",
    );
    cli(&d, &["plugins", "install", flaky.to_str().unwrap()]);
    cli(&d, &["plugins", "install", "lua-plugins/hello-world"]);
    cli(&d, &["plugins", "enable", "flaky", "--team", &team]);
    cli(&d, &["plugins", "enable", "Hello World", "--team", &team]);

    let env = [
        ("PHS_DATA_DIR", d.display().to_string()),
        ("PHS_PLUGIN_DISABLE_MIN_CALLS", "20".into()),
        ("PHS_PLUGIN_DISABLE_ERROR_RATE", "0.6".into()),
    ];
    let mut server = start(&env);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch/", server.capture);
    let batch: Vec<Value> =
        (1..=40).map(|n| json!({"event": "e", "distinct_id": "u", "properties": {"n": n}})).collect();
    let body = json!({"api_key": team, "batch": batch});
    assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);
    let rows = wait_for_events(&d, 40);

    // 3 of 4 calls fail (75% >= 60%): the first failure from the 20th call on
    // (n = 21) disables it; the rest skip it.
    let failed = |n: i64| {
        let e = rows.iter().find(|r| r["properties"]["n"] == n).unwrap();
        assert_eq!(e["properties"]["hello"], "world", "the other plugin kept working");
        e["properties"]["$plugins_failed"].as_array().unwrap().len()
    };
    assert_eq!(failed(19), 1);
    assert_eq!(failed(20), 0, "n = 20 succeeds");
    assert_eq!(failed(21), 1);
    assert_eq!(failed(22), 0, "disabled after its 21st call");
    assert_eq!(failed(40), 0);

    let listed: Value = serde_json::from_str(&cli(&d, &["plugins", "list", "--json"])).unwrap();
    let config = listed["configs"].as_array().unwrap().iter().find(|c| c["plugin"] == "flaky").unwrap();
    assert_eq!(config["enabled"], false);
    let reason = config["error"]["message"].as_str().unwrap();
    assert!(reason.contains("disabled automatically") && reason.contains("16 of 21 calls failed"), "{reason}");
    let text = cli(&d, &["plugins", "list"]);
    assert!(text.lines().any(|l| l.contains("flaky") && l.contains("disabled") && l.contains("16 of 21")), "{text}");

    cli(&d, &["plugins", "enable", "flaky", "--team", &team]);
    let listed: Value = serde_json::from_str(&cli(&d, &["plugins", "list", "--json"])).unwrap();
    let config = listed["configs"].as_array().unwrap().iter().find(|c| c["plugin"] == "flaky").unwrap();
    assert_eq!((&config["enabled"], &config["error"]), (&json!(true), &Value::Null));
}

/// Team A's plugins hit every path that used to escape the limits; team C's
/// setupPlugin spins.
const ESCAPES: &str = r#"
    function processEvent(event, meta)
      if event.event == "pattern" then string.find(string.rep("a", 20000), string.rep("a*", 40) .. "b") end
      if event.event == "gc" then setmetatable({}, {__gc = function() while true do end end}) end
      if event.event == "ttl" then meta.cache:set("k", 1, math.huge) end
      return event
    end"#;

const SPINNING_SETUP: &str = "function setupPlugin() while true do end end function processEvent(e) return e end";

/// Posts `n` events named `name` for `token` in batches, then returns how
/// long it took until all of them were stored.
async fn ingest(url: &str, d: &std::path::Path, token: &str, name: &str, n: usize) -> std::time::Duration {
    let started = std::time::Instant::now();
    for chunk in 0..n / 100 {
        let batch: Vec<Value> =
            (0..100).map(|i| json!({"event": name, "distinct_id": format!("u{}", (chunk * 100 + i) % 50)})).collect();
        let body = json!({"api_key": token, "batch": batch});
        assert_eq!(post(url, "application/json", body.to_string().into_bytes()).await.0, 200);
    }
    let limit = (n + 10).to_string();
    eventually_blocking(std::time::Duration::from_secs(40), &format!("{n} `{name}` events stored"), || {
        let out = cli(d, &["events", "list", "--event", name, "--limit", &limit, "--json"]);
        let stored = out.lines().count();
        (stored >= n).then_some(()).ok_or_else(|| format!("{name}: only {stored} stored"))
    });
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_from_the_limits_are_stopped_while_another_team_keeps_ingesting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let a = cli(&d, &["teams", "create", "escapes"]).trim().to_string();
    let b = cli(&d, &["teams", "create", "neighbour"]).trim().to_string();
    let c = cli(&d, &["teams", "create", "spinning setup"]).trim().to_string();
    for (name, code) in [("escapes", ESCAPES), ("neighbour", NEIGHBOUR), ("spinner", SPINNING_SETUP)] {
        cli(&d, &["plugins", "install", plugin_dir(&d, name, json!([]), code).to_str().unwrap()]);
    }
    for (plugin, team) in [("escapes", &a), ("neighbour", &b), ("spinner", &c)] {
        cli(&d, &["plugins", "enable", plugin, "--team", team]);
    }
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch/", server.capture);

    const N: usize = 4000;
    let baseline = ingest(&url, &d, &b, "before", N).await;
    let attacks: Vec<Value> =
        ["pattern", "gc", "ttl", "plain"].iter().map(|e| json!({"event": e, "distinct_id": "x"})).collect();
    let body = json!({"api_key": a, "batch": attacks});
    assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);
    let body = json!({"api_key": c, "batch": [{"event": "setup", "distinct_id": "x"}]});
    assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);
    let during = ingest(&url, &d, &b, "during", N).await;
    let ratio = baseline.as_secs_f64() / during.as_secs_f64();
    eprintln!("team B: {N} events in {baseline:?} alone, {during:?} next to the attacks ({:.0}%)", ratio * 100.0);
    // A stall, not a speed: the ratio is measured by `scripts/bench hostile`, and with the whole suite on
    // two cores a healthy run has measured 49%; a team held up behind the attacks would be far below.
    assert!(ratio >= 0.25, "team B's throughput fell to {:.0}% ({baseline:?} -> {during:?})", ratio * 100.0);

    // Every attack failed its own call, and the events still passed on.
    let rows = wait_for_events(&d, 2 * N + 5);
    for attack in ["pattern", "gc", "ttl"] {
        assert_eq!(by_event(&rows, attack)["properties"]["$plugins_failed"], json!(["escapes (1)"]), "{attack}");
    }
    assert_eq!(by_event(&rows, "plain")["properties"]["$plugins_failed"], json!([]));
    assert_eq!(by_event(&rows, "setup")["properties"]["$plugins_failed"], json!(["spinner (3)"]));
    assert_eq!(by_event(&rows, "during")["properties"]["neighbour"], "ok");
    // Log entries are written in batches: wait for every attack's.
    let expected = ["time limit of 500 ms", "__gc", "TTL"];
    eventually_blocking(std::time::Duration::from_secs(10), &format!("{expected:?} in the logs"), || {
        let logs = cli(&d, &["plugins", "logs", "1"]);
        if expected.iter().all(|e| logs.contains(e)) { Ok(()) } else { Err(logs) }
    });
    let logs = cli(&d, &["plugins", "logs", "3"]);
    assert!(logs.contains("setupPlugin failed (attempt 1 of 5): plugin exceeded its time limit of 2000 ms"), "{logs}");
    let health = crate::util::phs().args(["healthcheck", "--admin-addr", &server.addr]).output().unwrap();
    assert!(health.status.success(), "the server is unhealthy after the attacks");
}

/// A processEvent that runs out of time holds up its whole batch, other
/// teams' events included: after three in a row the config is disabled,
/// long before the error rate would notice, and the events flow on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_keeps_running_out_of_time_is_disabled_after_three_calls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let slow_team = cli(&d, &["teams", "create", "slow"]).trim().to_string();
    let other_team = cli(&d, &["teams", "create", "other"]).trim().to_string();
    let spinner = plugin_dir(&d, "spinner", json!([]), "function processEvent(e) while true do end end");
    cli(&d, &["plugins", "install", spinner.to_str().unwrap()]);
    cli(&d, &["plugins", "enable", "spinner", "--team", &slow_team]);
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch/", server.capture);
    // One request per event: each its own batch, so each call is its own time limit.
    for i in 0..8 {
        let body = json!({"api_key": slow_team, "batch": [{"event": format!("slow{i}"), "distinct_id": "s"}]});
        assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);
        let body = json!({"api_key": other_team, "batch": [{"event": format!("other{i}"), "distinct_id": "o"}]});
        assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200);
    }
    let rows = wait_for_events(&d, 16);
    let failed = rows.iter().filter(|r| r["properties"]["$plugins_failed"].as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(failed.count(), 3, "three calls ran out of time, then the config was off: {rows:?}");
    let listed: Value = serde_json::from_str(&cli(&d, &["plugins", "list", "--json"])).unwrap();
    let config = listed["configs"].as_array().unwrap().iter().find(|c| c["plugin"] == "spinner").unwrap();
    assert_eq!(config["enabled"], false);
    let reason = config["error"]["message"].as_str().unwrap();
    assert!(reason.contains("ran out of time 3 times in a row"), "{reason}");
}
