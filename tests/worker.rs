//! The async side through `phs serve`: onEvent on written events (also
//! after the ingesting instance is gone), exportEvents with RetryError,
//! runEveryMinute on a test tick, and a job scheduled with runIn.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::embedded::{cli, post, wait_for_events};
use crate::util::eventually::{eventually, eventually_blocking};
use crate::util::server::{start, wait_healthy};
use crate::util::{fresh_postgres_db, phs, redis_url, stderr, unique};

/// A local HTTP endpoint that records each request body and answers with
/// the given statuses in order (then 200).
#[derive(Clone, Default)]
struct Collector {
    seen: Arc<Mutex<Vec<(u16, Value)>>>,
}

impl Collector {
    async fn start(statuses: Vec<u16>) -> (Collector, String) {
        let c = Collector::default();
        let (seen, statuses) = (c.seen.clone(), Arc::new(statuses));
        let app = axum::Router::new().fallback(move |body: String| {
            let (seen, statuses) = (seen.clone(), statuses.clone());
            async move {
                let mut seen = seen.lock().unwrap();
                let status = statuses.get(seen.len()).copied().unwrap_or(200);
                seen.push((status, serde_json::from_str(&body).unwrap_or(Value::String(body))));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (c, format!("http://{addr}"))
    }

    fn requests(&self) -> Vec<(u16, Value)> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the requests seen, or panics after `secs`.
    async fn wait(&self, secs: u64, what: &str, done: impl Fn(&[(u16, Value)]) -> bool) -> Vec<(u16, Value)> {
        eventually(Duration::from_secs(secs), what, async || {
            let seen = self.requests();
            if done(&seen) { Ok(seen) } else { Err(format!("requests: {seen:?}")) }
        })
        .await
    }
}

/// Waits until the job queue holds no job: nothing is left that could deliver an event again.
async fn queue_empties(store: &dyn phs::store::JobQueue) {
    eventually(Duration::from_secs(30), "the job queue to empty", async || {
        let pending = store.pending_jobs(None).await.unwrap();
        (pending == 0).then_some(()).ok_or_else(|| format!("{pending} jobs pending"))
    })
    .await
}

fn write_plugin(dir: &std::path::Path, name: &str, config: Value, code: &str) -> String {
    let plugin = dir.join(name);
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(plugin.join("plugin.json"), json!({"name": name, "config": config}).to_string()).unwrap();
    std::fs::write(plugin.join("index.lua"), code).unwrap();
    plugin.display().to_string()
}

const ON_EVENT: &str = r#"
function onEvent(event, meta)
  if event.event == "bad" then error("cannot handle " .. event.event) end
  if event.event == "flaky" and not meta.global.failed_once then
    meta.global.failed_once = true
    error(RetryError("not yet"))
  end
  fetch(meta.config.url, {method = "POST", body = json.encode({
    uuid = event.uuid, event = event.event, team_id = event.team_id,
    distinct_id = event.distinct_id, hello = event.properties.hello,
  })})
end"#;

/// Installs and enables the onEvent plugin above for the team, reporting to a new collector.
async fn watcher(d: &std::path::Path, token: &str) -> Collector {
    let (collector, url) = Collector::start(vec![]).await;
    let plugin = write_plugin(d, "watcher", json!([{"key": "url", "type": "string", "required": true}]), ON_EVENT);
    cli(d, &["plugins", "install", &plugin]);
    cli(d, &["plugins", "config", "watcher", "--team", token, "--set", &format!("url={url}/seen")]);
    cli(d, &["plugins", "enable", "watcher", "--team", token]);
    collector
}

async fn send(capture: &str, token: &str, events: &[&str]) {
    let batch: Vec<Value> = events.iter().map(|e| json!({"event": e, "distinct_id": "u1"})).collect();
    let body = json!({"api_key": token, "batch": batch});
    let (code, reply) =
        post(&format!("http://{capture}/batch/"), "application/json", body.to_string().into_bytes()).await;
    assert_eq!(code, 200, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_event_sees_every_written_event_after_processing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    cli(&d, &["plugins", "install", "lua-plugins/hello-world"]);
    cli(&d, &["plugins", "enable", "Hello World", "--team", &token]);
    let collector = watcher(&d, &token).await;

    let mut server =
        start(&[("PHS_DATA_DIR", d.display().to_string()), ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into())]);
    wait_healthy(&mut server);
    send(&server.capture, &token, &["a", "flaky", "b"]).await;
    let stored = wait_for_events(&d, 3);
    // The RetryError of `flaky` costs one 3 s wait before the second attempt.
    let seen = collector.wait(30, "onEvent saw 3 events", |s| s.len() >= 3).await;
    // Once the queue holds no job, nothing is left that could deliver an event again.
    let store = phs::store::connect(&crate::util::store_settings(None, &d)).await.unwrap();
    queue_empties(store.as_ref()).await;
    assert_eq!(collector.requests().len(), 3, "an event reached onEvent twice: {seen:?}");

    let mut stored_uuids: Vec<&str> = stored.iter().map(|e| e["uuid"].as_str().unwrap()).collect();
    let mut seen_uuids: Vec<&str> = seen.iter().map(|(_, b)| b["uuid"].as_str().unwrap()).collect();
    stored_uuids.sort();
    seen_uuids.sort();
    assert_eq!(seen_uuids, stored_uuids, "onEvent saw other events than those stored");
    for (_, body) in &seen {
        assert_eq!(body["hello"], "world", "onEvent sees the event after processEvent: {body}");
        assert_eq!((body["team_id"].as_i64(), body["distinct_id"].as_str()), (Some(1), Some("u1")));
    }
    assert!(seen.iter().any(|(_, b)| b["event"] == "flaky"));
    for e in &stored {
        assert_eq!(e["properties"]["$plugins_deferred"], json!(["watcher (2)"]), "{e}");
    }

    // Other errors are not retried: they are logged and stored on the plugin config.
    send(&server.capture, &token, &["bad"]).await;
    let error = eventually_blocking(Duration::from_secs(20), "the onEvent error stored", || {
        let list: Value = serde_json::from_str(&cli(&d, &["plugins", "list", "--json"])).unwrap();
        let error =
            list["configs"].as_array().unwrap().iter().find(|c| c["plugin"] == "watcher").unwrap()["error"].clone();
        if error["message"].is_string() { Ok(error) } else { Err(list) }
    });
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("onEvent failed") && message.contains("cannot handle bad"), "{message}");
    assert_eq!(error["event"]["event"], "bad", "the error keeps the event: {error}");
    assert_eq!(collector.requests().len(), 3, "the failing event reached the endpoint");
    // Log entries are written in batches: wait for the error's.
    let logs = eventually_blocking(Duration::from_secs(10), "the error's log entry", || {
        let logs = cli(&d, &["plugins", "logs", "2"]);
        if logs.contains("cannot handle bad") { Ok(logs) } else { Err(logs) }
    });
    assert!(logs.contains("onEvent asked to retry (not yet); attempt 2 of 3 in 3 s"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_by_an_ingestion_only_instance_reach_on_event_on_an_async_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let collector = watcher(&d, &token).await;
    let env = [("PHS_DATA_DIR", d.display().to_string()), ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into())];

    // An instance that only ingests queues the events durably and is killed.
    let mut ingest_only = start(&[env[0].clone(), env[1].clone(), ("PLUGIN_SERVER_MODE", "ingestion".into())]);
    wait_healthy(&mut ingest_only);
    send(&ingest_only.capture, &token, &["one", "two"]).await;
    wait_for_events(&d, 2);
    // The written events wait in the job queue: queued, and nobody on this instance takes them.
    let store = phs::store::connect(&crate::util::store_settings(None, &d)).await.unwrap();
    eventually(Duration::from_secs(30), "the events queued for onEvent", async || {
        let pending = store.pending_jobs(None).await.unwrap();
        (pending > 0).then_some(()).ok_or("no job queued")
    })
    .await;
    ingest_only.child.kill().unwrap();
    ingest_only.child.wait().unwrap();
    assert!(collector.requests().is_empty(), "an ingestion-only instance ran onEvent");

    // An async-only instance runs onEvent for them: nothing is lost in between.
    let mut server = start(&[env[0].clone(), env[1].clone(), ("PLUGIN_SERVER_MODE", "async".into())]);
    wait_healthy(&mut server);
    let seen = collector.wait(30, "onEvent saw the 2 queued events", |s| s.len() >= 2).await;
    let mut names: Vec<&str> = seen.iter().map(|(_, b)| b["event"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["one", "two"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_events_retried_after_retry_error_delivers_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    // The first delivery is refused as rate limited; the retry 6 s later succeeds.
    let (collector, url) = Collector::start(vec![429]).await;
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    cli(&d, &["plugins", "install", "lua-plugins/webhook-exporter"]);
    cli(
        &d,
        &[
            "plugins",
            "config",
            "Webhook Exporter",
            "--team",
            &token,
            "--set",
            &format!("url={url}/hook"),
            "--set",
            "exportEventsBufferSeconds=1",
            "--set",
            "exportEventsToIgnore=skipped",
        ],
    );
    cli(&d, &["plugins", "enable", "Webhook Exporter", "--team", &token]);
    let mut server =
        start(&[("PHS_DATA_DIR", d.display().to_string()), ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".into())]);
    wait_healthy(&mut server);
    send(&server.capture, &token, &["e1", "e2", "skipped", "e3", "e4"]).await;
    let stored = wait_for_events(&d, 5);

    let seen = collector.wait(40, "the batch was accepted", |s| s.iter().any(|(status, _)| *status == 200)).await;
    // Once the queue holds no job, nothing is left that could export the batch again.
    let store = phs::store::connect(&crate::util::store_settings(None, &d)).await.unwrap();
    queue_empties(store.as_ref()).await;
    let seen_after = collector.requests();
    assert_eq!(seen_after.len(), seen.len(), "more requests after the batch was accepted: {seen_after:?}");
    let uuids = |status: u16| -> Vec<String> {
        let mut u: Vec<String> = seen_after
            .iter()
            .filter(|(s, _)| *s == status)
            .flat_map(|(_, b)| b["batch"].as_array().unwrap().iter().map(|e| e["uuid"].as_str().unwrap().to_string()))
            .collect();
        u.sort();
        u
    };
    let mut expected: Vec<String> =
        stored.iter().filter(|e| e["event"] != "skipped").map(|e| e["uuid"].as_str().unwrap().to_string()).collect();
    expected.sort();
    assert_eq!(expected.len(), 4);
    assert_eq!(uuids(200), expected, "every exported event was accepted exactly once");
    assert_eq!(uuids(429), expected, "the refused batch held the same events");
    let logs = cli(&d, &["plugins", "logs", "1"]);
    assert!(logs.contains("retry 1 of 3 of 4 events in 6 s"), "{logs}");
}

/// runEveryMinute on a 300 ms test tick captures events, and schedules a job
/// with runIn that runs a second later; the queue-latency plugin measures.
fn tasks_and_jobs_run(env: Vec<(&'static str, String)>) {
    let d = std::path::PathBuf::from(&env.iter().find(|(k, _)| *k == "PHS_DATA_DIR").unwrap().1);
    let run = |args: &[&str]| crate::util::phs_ok(&env, args);
    let token = run(&["teams", "create", "clock"]).trim().to_string();
    let ticker = write_plugin(
        &d,
        "ticker",
        json!([]),
        r#"jobs = {
             later = function(payload, meta)
               posthog.capture("from job", {distinct_id = "jobs", n = payload.n, since_tick = os.now() - payload.at})
             end,
           }
           function setupPlugin(meta) meta.global.ready = true end
           function runEveryMinute(meta)
             assert(meta.global.ready, "runEveryMinute ran before setupPlugin")
             -- meta.global, not meta.cache: the test Redis is shared with other runs.
             meta.global.ticks = (meta.global.ticks or 0) + 1
             local n = meta.global.ticks
             posthog.capture("tick", {distinct_id = "ticker", n = n})
             if n == 1 then meta.jobs.later({n = 42, at = os.now()}):runIn(1, "second") end
           end"#,
    );
    run(&["plugins", "install", &ticker]);
    run(&["plugins", "enable", "ticker", "--team", &token]);
    run(&["plugins", "install", "lua-plugins/queue-latency"]);
    run(&["plugins", "enable", "Queue Latency", "--team", &token]);

    let mut all = env.clone();
    all.push(("PHS_SCHEDULE_TICK_MS", "300".into()));
    all.push(("PHS_SCHEDULE_LOCK_KEY", unique("phs_test_schedule")));
    let mut server = start(&all.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>());
    wait_healthy(&mut server);
    let rows = eventually_blocking(Duration::from_secs(40), "the tasks and jobs to run", || {
        let out = run(&["events", "list", "--json", "--limit", "100000", "--team", "1"]);
        let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let count = |name: &str| rows.iter().filter(|r| r["event"] == name).count();
        if count("tick") >= 3 && count("from job") >= 1 && count("latency test") >= 1 {
            Ok(rows)
        } else {
            Err(format!("{rows:?}"))
        }
    });
    let ticks: Vec<i64> =
        rows.iter().filter(|r| r["event"] == "tick").map(|r| r["properties"]["n"].as_i64().unwrap()).collect();
    let mut sorted = ticks.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ticks.len(), "a tick ran twice: {ticks:?}");
    let job: Vec<&Value> = rows.iter().filter(|r| r["event"] == "from job").collect();
    assert_eq!(job.len(), 1, "the job ran more than once: {job:?}");
    assert_eq!(job[0]["properties"]["n"], 42);
    let waited = job[0]["properties"]["since_tick"].as_f64().unwrap();
    assert!(waited >= 0.99, "the job ran {waited} s after it was scheduled, before its runIn(1, \"second\")");
    let latency = rows.iter().find(|r| r["event"] == "latency test").unwrap();
    let ms = latency["properties"]["latency_ms"].as_i64().expect("latency_ms set by processEvent");
    assert!((0..30_000).contains(&ms), "latency_ms = {ms}");
}

#[test]
fn tasks_and_jobs_run_embedded() {
    let dir = tempfile::tempdir().unwrap();
    tasks_and_jobs_run(vec![("PHS_DATA_DIR", dir.path().display().to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_jobs_run_on_postgres_and_redis() {
    let db = fresh_postgres_db().await;
    let dir = tempfile::tempdir().unwrap();
    let env =
        vec![("PHS_DATA_DIR", dir.path().display().to_string()), ("DATABASE_URL", db), ("REDIS_URL", redis_url())];
    let migrated = phs().arg("migrate").envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    tokio::task::spawn_blocking(move || tasks_and_jobs_run(env)).await.unwrap();
}

fn exporter(d: &std::path::Path, token: &str, url: &str, bytes: &str, seconds: &str) {
    cli(d, &["plugins", "install", "lua-plugins/webhook-exporter"]);
    let set = |kv: String| ["--set".to_string(), kv];
    let mut args: Vec<String> = ["plugins", "config", "Webhook Exporter", "--team", token].map(String::from).to_vec();
    args.extend(set(format!("url={url}/hook")));
    args.extend(set(format!("exportEventsBufferBytes={bytes}")));
    args.extend(set(format!("exportEventsBufferSeconds={seconds}")));
    cli(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    cli(d, &["plugins", "enable", "Webhook Exporter", "--team", token]);
}

/// A server whose one team exports to a new collector with these buffer settings.
async fn exporting_server(
    bytes: &str,
    seconds: &str,
) -> (tempfile::TempDir, Collector, crate::util::server::Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (collector, url) = Collector::start(vec![]).await;
    let token = cli(&d, &["teams", "create", "exports"]).trim().to_string();
    exporter(&d, &token, &url, bytes, seconds);
    let mut server =
        start(&[("PHS_DATA_DIR", d.display().to_string()), ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".to_string())]);
    wait_healthy(&mut server);
    (dir, collector, server, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_buffers_flush_when_full_and_on_shutdown() {
    // A 1-byte buffer is full with its first event: each batch goes out at once, not after 600 s.
    let (_dir, collector, server, token) = exporting_server("1", "600").await;
    send(&server.capture, &token, &["a1", "a2", "a3"]).await;
    collector.wait(20, "the full buffer was exported", |s| !s.is_empty()).await;
    send(&server.capture, &token, &["b1"]).await;
    let seen = collector.wait(20, "the second batch was exported", |s| s.len() >= 2).await;
    let names = |b: &Value| -> Vec<String> {
        b["batch"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&seen[0].1), ["a1", "a2", "a3"]);
    assert_eq!(names(&seen[1].1), ["b1"]);
    drop(server);

    // A buffer that is neither full nor old is exported when the server stops.
    let (dir, collector, server, token) = exporting_server("104857600", "600").await;
    send(&server.capture, &token, &["c1", "c2"]).await;
    wait_for_events(dir.path(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await; // the job worker claims the batch into the buffer
    assert!(collector.requests().is_empty(), "exported before it was full or old");
    let ok = std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");
    let seen = collector.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(names(&seen[0].1), ["c1", "c2"]);
}
