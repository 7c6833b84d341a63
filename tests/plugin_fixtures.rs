//! `phs plugins test` runs fixtures through the server's own plugin runner
//! and the worker's retry rules: what a fixture shows is what `phs serve`
//! does, including the rules a plugin's own code would not show.

use serde_json::{Value, json};

use crate::util::{phs, stderr, stdout};

fn plugin(code: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("plugin.json"),
        r#"{"name": "rules", "config": [{"key": "url", "type": "string"}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("index.lua"), code).unwrap();
    dir
}

fn events(dir: &tempfile::TempDir, events: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut cmd = phs();
    cmd.args(["plugins", "test"]).arg(dir.path());
    for e in events {
        cmd.args(["--event", e]);
    }
    let out = cmd.output().unwrap();
    let lines = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (out.status.code(), lines, stderr(&out))
}

/// The runner reverts a changed team_id and counts it as a failure; the
/// plugin's bare return value would have looked fine.
#[test]
fn a_changed_team_id_is_the_runners_error() {
    let dir = plugin("function processEvent(e) e.team_id = 99 return e end");
    let (code, lines, err) = events(&dir, &[r#"{"event": "e", "properties": {}}"#]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(lines[0]["result"], "error", "{lines:?}");
    assert!(lines[0]["error"].as_str().unwrap().contains("changed team_id"), "{lines:?}");
}

/// A failed setupPlugin is tried again on the next event, as the server
/// does (up to 5 times), and the event passes the chain without the
/// runner's `$plugins_*` bookkeeping in the result.
#[test]
fn a_failed_setup_is_tried_again_on_the_next_event() {
    let dir = plugin(
        r#"local setups = 0
           function setupPlugin() setups = setups + 1 if setups == 1 then error("not yet") end end
           function processEvent(e) e.properties.setups = setups return e end"#,
    );
    let (code, lines, err) =
        events(&dir, &[r#"{"event": "a", "properties": {}}"#, r#"{"event": "b", "properties": {}}"#]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(lines[0]["result"], "error", "{lines:?}");
    assert!(lines[0]["error"].as_str().unwrap().contains("setupPlugin failed (attempt 1 of 5)"), "{lines:?}");
    assert_eq!(lines[1], json!({"result": "event", "event": {"event": "b", "properties": {"setups": 2}}}));
}

/// onEvent's RetryError gets the worker's 3 attempts and its log entries,
/// with the 3 s and 6 s waits skipped.
#[test]
fn on_event_retries_are_the_workers_without_the_waits() {
    let dir = plugin(
        r#"local calls = 0
           function onEvent(e, meta)
             calls = calls + 1
             fetch(meta.config.url .. "/seen/" .. calls)
             error(RetryError("busy"))
           end"#,
    );
    let fixture = json!({
        "config": {"url": "{{http}}"},
        "http": [{"status": 200}],
        "run": ["onEvent"],
        "events": [{"event": "e", "properties": {}}],
        "expected_error": "onEvent failed after 3 attempts: RetryError: busy",
        "expected_requests": [{"path": "/seen/1"}, {"path": "/seen/2"}, {"path": "/seen/3"}],
    });
    std::fs::write(dir.path().join("tests/retries.json"), fixture.to_string()).unwrap();
    let started = std::time::Instant::now();
    let out = phs().args(["plugins", "test", "--json"]).arg(dir.path()).output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the waits were slept: {:?}", started.elapsed());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let logs: Vec<&str> = report["logs"].as_array().unwrap().iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(logs.contains(&"onEvent asked to retry (busy); attempt 2 of 3 in 3 s"), "{logs:?}");
    assert!(logs.contains(&"onEvent asked to retry (busy); attempt 3 of 3 in 6 s"), "{logs:?}");
}
