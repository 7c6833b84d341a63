//! Slow teams: a processEvent (or setupPlugin) that runs past
//! PHS_SLOW_LANE_MS in the main pipeline is cut, and its event and the team's next ones go to the
//! overflow lane, which runs them with the full limits; the other teams'
//! events stay in the main pipeline. Every event is stored once and
//! processed by its plugin, the slow plugin is not blamed (still enabled,
//! no error), and the operator sees the switch in the plugin's log and
//! the overflow count. The throughput this buys next to hostile plugins
//! is `scripts/bench hostile`.

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::eventually::eventually_blocking;
use crate::util::server::{start, wait_for_metric, wait_healthy};

/// Answers every request after 400 ms (past the budget, well within the
/// limits): its address, and how many requests it has read.
fn slow_server() -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if line.starts_with("GET ") {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    line.clear();
                }
                std::thread::sleep(Duration::from_millis(400));
                let _ = (&conn).write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nanswered");
            });
        }
    });
    (format!("http://{addr}/rates"), seen)
}

const SLOW: &str = r#"
    function processEvent(event, meta)
      event.properties.answer = fetch(meta.config.url).body
      return event
    end"#;

/// Slow only once: its setupPlugin fetches.
const SLOW_SETUP: &str = r#"
    function setupPlugin(meta)
      meta.global.answer = fetch(meta.config.url).body
    end
    function processEvent(event, meta)
      event.properties.answer = meta.global.answer
      return event
    end"#;

const FAST: &str = r#"
    function processEvent(event, meta)
      event.properties.fast = true
      return event
    end"#;

const SLOW_EVENTS: usize = 10;
const FAST_EVENTS: usize = 200;

/// Runs a slow team (one person, SLOW_EVENTS events, its plugin `slow`
/// fetching from [`slow_server`]) beside a fast one on a `phs serve` with
/// `env`, which should count `rerouted` events sent to the overflow lane:
/// returns the requests the slow server read.
async fn slow_team_beside_a_fast_one(env: Vec<(&'static str, String)>, slow: &str, rerouted: usize) -> usize {
    let cli = |args: &[&str]| crate::util::phs_ok(&env, args);
    let plugins = tempfile::tempdir().unwrap();
    let (url, requests) = slow_server();
    let mut tokens = Vec::new();
    for (name, code) in [("slow", slow), ("fast", FAST)] {
        let token = cli(&["teams", "create", name]).trim().to_string();
        let schema = json!([{"key": "url", "type": "string"}]);
        let dir = crate::util::embedded::plugin_dir(plugins.path(), name, schema, code);
        cli(&["plugins", "install", dir.to_str().unwrap()]);
        cli(&["plugins", "config", name, "--team", &token, "--set", &format!("url={url}")]);
        cli(&["plugins", "enable", name, "--team", &token]);
        tokens.push(token);
    }
    let mut server_env = env.clone();
    server_env.push(("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into()));
    let mut server = start(&server_env);
    wait_healthy(&mut server);

    let url = format!("http://{}/batch", server.capture);
    let slow: Vec<Value> =
        (0..SLOW_EVENTS).map(|i| json!({"event": "slow", "distinct_id": "s", "properties": {"i": i}})).collect();
    let fast: Vec<Value> =
        (0..FAST_EVENTS).map(|i| json!({"event": "fast", "distinct_id": format!("f{}", i % 20)})).collect();
    for (token, batch) in tokens.iter().zip([slow, fast]) {
        let body = json!({"api_key": token, "batch": batch}).to_string().into_bytes();
        let (code, reply) = crate::util::embedded::post(&url, "application/json", body).await;
        assert_eq!(code, 200, "{reply}");
    }

    let all = SLOW_EVENTS + FAST_EVENTS;
    let rows = eventually_blocking(Duration::from_secs(60), "every event stored", || {
        let out = cli(&["events", "list", "--json", "--limit", "1000"]);
        let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if rows.len() >= all { Ok(rows) } else { Err(format!("only {} of {all} events stored", rows.len())) }
    });
    let uuids: std::collections::HashSet<&str> = rows.iter().map(|r| r["uuid"].as_str().unwrap()).collect();
    assert_eq!((rows.len(), uuids.len()), (all, all), "every event stored once");
    for r in &rows {
        let p = &r["properties"];
        match r["event"].as_str() {
            Some("slow") => assert_eq!(p["answer"], "answered", "the slow plugin ran to its end: {r}"),
            _ => assert_eq!(p["fast"], true, "{r}"),
        }
        assert_eq!(p["$plugins_failed"], json!([]), "{r}");
    }
    // Not the plugin's fault: still enabled, no error on the config.
    let listed: Value = serde_json::from_str(&cli(&["plugins", "list", "--json"])).unwrap();
    for c in listed["configs"].as_array().unwrap() {
        assert_eq!((c["enabled"].clone(), c["error"].clone()), (json!(true), Value::Null), "{c}");
    }
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr)).await.unwrap().text().await.unwrap();
    let slow_teams = if rerouted > 0 { 1 } else { 0 };
    assert!(metrics.lines().any(|l| l == format!("phs_slow_lane_teams {slow_teams}")), "{metrics}");
    let counted = format!("phs_events_overflowed_total {rerouted}");
    wait_for_metric(&server.addr, &counted, Duration::from_secs(30)).await;
    requests.load(Ordering::SeqCst)
}

/// The slow team's first call is cut, the team marked slow, and its events
/// run in the overflow lane: one request more than it has events, each
/// answered there, and every one of its events counted as rerouted.
async fn cut_and_rerouted(env: Vec<(&'static str, String)>) {
    let requests = slow_team_beside_a_fast_one(env.clone(), SLOW, SLOW_EVENTS).await;
    assert_eq!(
        requests,
        SLOW_EVENTS + 1,
        "one call cut in the main pipeline, then each event once in the overflow lane"
    );
    let logs = crate::util::phs_ok(&env, &["plugins", "logs", "1", "--level", "warn"]);
    assert!(logs.contains("budget of 50 ms") && logs.contains("overflow lane"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_slow_team_runs_in_the_overflow_lane() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("PHS_DATA_DIR", dir.path().display().to_string())];
    cut_and_rerouted(env).await;
    assert!(dir.path().join("overflow-log.sqlite3").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_a_slow_team_runs_in_the_overflow_topic() {
    let d = crate::util::production::Deployment::new().await;
    cut_and_rerouted(d.env.clone()).await;
    let overflow = d.settings.kafka.topic("events_plugin_ingestion_overflow");
    let rerouted = crate::util::production::consume(&d.settings, &overflow, SLOW_EVENTS).await;
    assert_eq!(rerouted.len(), SLOW_EVENTS);
    let ids: Vec<Value> =
        rerouted.iter().map(|m| serde_json::from_slice::<Value>(&m.payload).unwrap()["distinct_id"].clone()).collect();
    assert!(ids.iter().all(|id| id == "s"), "only the slow team's events: {ids:?}");
}

/// PHS_SLOW_LANE_MS=0: every call runs to its end in the main pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_without_a_slow_lane_every_call_runs_in_the_main_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("PHS_DATA_DIR", dir.path().display().to_string()), ("PHS_SLOW_LANE_MS", "0".into())];
    assert_eq!(slow_team_beside_a_fast_one(env, SLOW, 0).await, SLOW_EVENTS);
}

/// A setupPlugin past the budget is cut as a processEvent is: its team's
/// events run in the overflow lane, where setup runs again, to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_slow_setup_is_cut_and_runs_again_in_the_overflow_lane() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("PHS_DATA_DIR", dir.path().display().to_string())];
    let requests = slow_team_beside_a_fast_one(env.clone(), SLOW_SETUP, SLOW_EVENTS).await;
    assert_eq!(requests, 2, "the cut setup, then one setup that ran to its end");
    let logs = crate::util::phs_ok(&env, &["plugins", "logs", "1", "--level", "warn"]);
    assert!(logs.contains("setupPlugin was cut") && logs.contains("budget of 50 ms"), "{logs}");
}
