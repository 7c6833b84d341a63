//! Observability end to end: `/metrics`, `/_snapshot` through `phs top
//! --once --json`, `phs healthcheck` following a stalled pipeline, StatsD,
//! heartbeats in Redis, and `phs top` in a real terminal (tmux).

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::eventually::eventually_blocking;
use crate::util::server::{Server, start, wait_healthy};
use crate::util::{fresh_postgres_db, phs, redis_url, stderr, stdout, unique};

fn cli(envs: &[(&str, String)], args: &[&str]) -> String {
    crate::util::phs_ok(envs, args).trim().to_string()
}

/// A plugin whose processEvent always throws.
fn failing_plugin(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("broken-plugin");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("plugin.json"), r#"{"name": "Broken", "main": "index.lua", "config": []}"#).unwrap();
    std::fs::write(
        p.join("index.lua"),
        "local function explode(event)\n  error('boom on ' .. event.event)\nend\n\nfunction processEvent(event, meta)\n  explode(event)\n  return event\nend\n",
    )
    .unwrap();
    p
}

async fn send(server: &Server, token: &str, n: usize) {
    let batch: Vec<Value> =
        (0..n).map(|i| json!({"event": "clicked", "distinct_id": format!("u{}", i % 50)})).collect();
    let r = reqwest::Client::new()
        .post(format!("http://{}/batch/", server.capture))
        .json(&json!({"api_key": token, "batch": batch}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn top_once(server: &str) -> (Output, Value) {
    let out = phs().args(["top", "--once", "--json", "--server", server]).output().unwrap();
    let snapshot = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("phs top --once --json printed no JSON ({e}): {}", stderr(&out)));
    (out, snapshot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_once_json_reports_lag_busy_ratio_and_a_failing_plugins_errors() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("PHS_DATA_DIR", dir.path().display().to_string())];
    let token = cli(&env, &["teams", "create", "shop"]);
    let plugin = failing_plugin(dir.path());
    cli(&env, &["plugins", "install", plugin.to_str().unwrap()]);
    cli(&env, &["plugins", "enable", "Broken", "--team", &token]);
    // The plugin must keep failing on every event: no automatic disabling here.
    let mut serve_env = env.to_vec();
    serve_env.push(("PHS_PLUGIN_DISABLE_MIN_CALLS", "1000000".into()));
    let mut server = start(&serve_env);
    wait_healthy(&mut server);

    send(&server, &token, 3000).await;
    let (mut max_lag, mut max_busy, mut error) = (0, 0.0f64, None);
    let last = eventually_blocking(Duration::from_secs(90), "the instance to catch up", || {
        let (out, snap) = top_once(&server.addr);
        assert!(out.status.success(), "the instance should stay healthy: {snap}");
        let i = &snap["instances"][0];
        assert_eq!(i["status"], "healthy", "{i}");
        let r = &i["report"];
        let part = &r["partitions"][0];
        assert_eq!((part["topic"].as_str(), part["partition"].as_i64()), (Some("local-log"), Some(0)), "{r}");
        max_lag = max_lag.max(part["lag"].as_i64().unwrap());
        max_busy = max_busy.max(r["workers"][0]["busy_ratio"].as_f64().unwrap());
        if error.is_none() {
            error = r["errors"].as_array().unwrap().first().cloned();
        }
        if part["lag"] == 0 && part["end"].as_i64().unwrap() >= 3000 && error.is_some() && max_busy > 0.0 {
            return Ok(r.clone());
        }
        Err(r.clone())
    });
    assert!(max_lag > 0, "3000 events at once never showed as lag");
    assert!(max_busy > 0.0 && max_busy <= 1.0, "busy ratio {max_busy}");
    let error = error.unwrap();
    assert_eq!(error["plugin"], "Broken");
    assert!(error["message"].as_str().unwrap().contains("boom on clicked"), "{error}");
    assert!(error["traceback"].as_str().unwrap().contains("explode"), "the traceback names the function: {error}");
    assert_eq!(error["event"]["event"], "clicked");
    let row = &last["plugins"][0];
    assert_eq!((row["plugin"].as_str(), row["calls_total"].as_u64()), (Some("Broken"), Some(3000)), "{row}");
    assert_eq!(row["errors_total"], 3000);
    assert_eq!(row["state"], "degraded");
    assert!(row["memory_bytes"].as_u64().unwrap() > 0, "{row}");
    assert_eq!(last["events_in_total"], 3000);
    assert_eq!(last["events_out_total"], 3000, "a failing plugin keeps the event");

    // The same story in Prometheus format.
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr)).await.unwrap().text().await.unwrap();
    let value = |series: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series}:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("phs_events_in_total "), 3000.0);
    assert_eq!(value("phs_events_out_total "), 3000.0);
    assert_eq!(value(r#"phs_consumer_lag{topic="local-log",partition="0"}"#), 0.0);
    assert_eq!(value(r#"phs_consumer_log_end_offset{topic="local-log",partition="0"}"#), 3000.0);
    assert!(metrics.contains(r#"plugin="Broken"} 3000"#), "plugin series per config:\n{metrics}");
    assert_eq!(value(r#"phs_stage_duration_seconds_count{stage="plugins"}"#), 3000.0);
    assert!(value(r#"phs_batch_size_count"#) >= 1.0);
    assert_eq!(value(r#"phs_batch_size_sum"#), 3000.0, "every message read is in a batch");
    assert!(metrics.contains("phs_worker_busy_ratio{worker=\"0\"}"));

    // A message that is not JSON, put straight into the log, is dead-lettered and counted by reason.
    let log = dir.path().join("ingestion-log.sqlite3");
    let mut conn =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", log.display())).await.unwrap();
    sqlx::query("INSERT INTO log (key, payload) VALUES ('bad', x'7b6e6f74')").execute(&mut conn).await.unwrap();
    let r = eventually_blocking(Duration::from_secs(20), "the bad message to be dead-lettered", || {
        let (_, snap) = top_once(&server.addr);
        let r = snap["instances"][0]["report"].clone();
        if r["dead_letters"] != json!([]) { Ok(r) } else { Err(r) }
    });
    assert_eq!(r["dead_letters"], json!([{"name": "malformed_message", "value": 1}]), "{r}");
    assert_eq!(r["dropped"], json!([{"name": "malformed_message", "value": 1}]), "{r}");
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("phs_dead_letters_total{reason=\"malformed_message\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_fails_while_ingestion_stalls_with_lag_and_recovers() {
    use sqlx::Connection;
    let db = fresh_postgres_db().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.clone()), ("PHS_DATA_DIR", dir.path().display().to_string())];
    cli(&env, &["migrate"]);
    let token = cli(&env, &["teams", "create", "shop"]);
    let mut envs = env.to_vec();
    envs.push(("HEALTHCHECK_MAX_STALE_SECONDS", "2".into()));
    let mut server = start(&envs);
    wait_healthy(&mut server);
    let check = || phs().args(["healthcheck", "--admin-addr", &server.addr]).output().unwrap();

    // Hold the persons table: the pipeline blocks in the persons stage with the batch in hand.
    let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("LOCK TABLE posthog_person IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
    send(&server, &token, 20).await;
    let failing = eventually_blocking(Duration::from_secs(30), "healthcheck to fail during the stall", || {
        let out = check();
        if out.status.code() == Some(1) {
            return Ok(stderr(&out));
        }
        assert!(out.status.success(), "{}", stderr(&out));
        Err("healthcheck passes")
    });
    assert!(failing.contains("events wait") || failing.contains("stuck in stage `persons`"), "{failing}");
    let (_, snap) = top_once(&server.addr);
    assert_eq!(snap["instances"][0]["status"], "unhealthy", "{snap}");

    tx.rollback().await.unwrap();
    eventually_blocking(Duration::from_secs(30), "healthcheck to pass after the stall ended", || {
        let out = check();
        out.status.success().then_some(()).ok_or_else(|| stderr(&out))
    });
    // The sampler reads positions once a second: the caught-up lag shows shortly after.
    let snap = eventually_blocking(Duration::from_secs(10), "lag 0 after recovery", || {
        let (_, snap) = top_once(&server.addr);
        if snap["instances"][0]["report"]["partitions"][0]["lag"] == 0 { Ok(snap) } else { Err(snap) }
    });
    assert_eq!(snap["instances"][0]["status"], "healthy", "{snap}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statsd_receives_counters_with_the_prefix() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let port = socket.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let env = [("PHS_DATA_DIR", dir.path().display().to_string())];
    let token = cli(&env, &["teams", "create", "shop"]);
    let mut server = start(&[
        ("PHS_DATA_DIR", dir.path().display().to_string()),
        ("STATSD_HOST", "127.0.0.1".into()),
        ("STATSD_PORT", port.to_string()),
        ("STATSD_PREFIX", "phs_test.".into()),
    ]);
    wait_healthy(&mut server);
    send(&server, &token, 7).await;
    let (mut seen, mut events_in) = (String::new(), 0);
    eventually_blocking(Duration::from_secs(20), "phs_test.events_in adding to 7", || {
        if events_in >= 7 {
            return Ok(());
        }
        let mut buf = [0u8; 2048];
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("phs_test.events_in:").and_then(|v| v.strip_suffix("|c")) {
                    events_in += v.parse::<u64>().unwrap();
                }
            }
            seen.push_str(&text);
            seen.push('\n');
        }
        Err(format!("received:\n{seen}"))
    });
    assert_eq!(events_in, 7, "{seen}");
    assert!(seen.contains("phs_test.consumer_lag.local-log.0:"), "lag gauge: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_let_healthcheck_all_and_top_find_every_instance() {
    // A Redis database of its own, so instances of other tests are not discovered.
    let db_index = 1 + rand::random::<u32>() % 15;
    let url = format!("{}/{db_index}", redis_url().trim_end_matches('/'));
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await.unwrap();

    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start(&[("REDIS_URL", url.clone()), ("PHS_DATA_DIR", d1.path().display().to_string())]);
    let mut b = start(&[("REDIS_URL", url.clone()), ("PHS_DATA_DIR", d2.path().display().to_string())]);
    wait_healthy(&mut a);
    wait_healthy(&mut b);
    let all = || phs().args(["healthcheck", "--all", "--json"]).env("REDIS_URL", &url).output().unwrap();
    let report: Value = eventually_blocking(Duration::from_secs(15), "two heartbeats", || {
        let out = all();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if v["instances"].as_array().is_some_and(|l| l.len() == 2) {
            assert!(out.status.success(), "{}", stderr(&out));
            return Ok(v);
        }
        Err(format!("{v} {}", stderr(&out)))
    });
    let mut addrs: Vec<&str> =
        report["instances"].as_array().unwrap().iter().map(|i| i["admin_addr"].as_str().unwrap()).collect();
    addrs.sort();
    let mut expected = vec![a.addr.as_str(), b.addr.as_str()];
    expected.sort();
    assert_eq!(addrs, expected);

    let out = phs().args(["top", "--once", "--json"]).env("REDIS_URL", &url).output().unwrap();
    let snap: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snap["instances"].as_array().unwrap().len(), 2, "{snap}");

    // Without REDIS_URL, --all says what it needs.
    let out = phs().args(["healthcheck", "--all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("REDIS_URL"), "{}", stderr(&out));

    // A stopped instance is reported down and fails --all until its heartbeat expires.
    let _ = b.child.kill();
    let _ = b.child.wait();
    let out = all();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("{}: not healthy: no answer", b.addr)), "{}", stderr(&out));
}

/// Without Redis, a peers file names the instances: embedded ones here.
#[test]
fn a_peers_file_lets_healthcheck_all_and_top_find_instances_without_redis() {
    let (d1, d2, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start(&[("PHS_DATA_DIR", d1.path().display().to_string())]);
    let mut b = start(&[("PHS_DATA_DIR", d2.path().display().to_string())]);
    wait_healthy(&mut a);
    wait_healthy(&mut b);
    let peers = tmp.path().join("peers");
    std::fs::write(&peers, format!("# the cluster\n{}\n\nhttp://{}/   # the second\n", a.addr, b.addr)).unwrap();
    let out = phs().args(["healthcheck", "--all", "--json"]).env("PHS_PEERS_FILE", &peers).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let addrs: Vec<&str> =
        report["instances"].as_array().unwrap().iter().map(|i| i["admin_addr"].as_str().unwrap()).collect();
    assert_eq!(addrs, [a.addr.clone(), format!("http://{}/", b.addr)]);

    let out = phs().args(["top", "--once", "--json", "--peers"]).arg(&peers).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let snap: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snap["instances"].as_array().unwrap().len(), 2, "{snap}");

    // A listed instance that is down fails --all, naming it; an empty or missing file is an error.
    let _ = b.child.kill();
    let _ = b.child.wait();
    let out = phs().args(["healthcheck", "--all", "--peers"]).arg(&peers).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("http://{}/: not healthy: no answer", b.addr)), "{}", stderr(&out));
    std::fs::write(&peers, "# nobody\n").unwrap();
    let out = phs().args(["healthcheck", "--all", "--peers"]).arg(&peers).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("lists no instance"), "{}", stderr(&out));
    let out = phs().args(["top", "--once", "--peers", "/nonexistent/peers"]).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("cannot read the peers file"), "{}", stderr(&out));
}

#[test]
fn healthcheck_deps_reports_each_service_with_its_latency() {
    let down = crate::util::ClosedPort::new();
    let out = phs()
        .args(["healthcheck", "--deps", "--json", "--admin-addr", &format!("127.0.0.1:{}", down.port)])
        .env("DATABASE_URL", crate::util::postgres_admin_url())
        .env("REDIS_URL", redis_url())
        .env("CLICKHOUSE_HOST", crate::util::clickhouse_host())
        .env("KAFKA_HOSTS", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "nothing at the admin address and no Kafka: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let deps = v["dependencies"].as_array().unwrap();
    let by = |backend: &str| deps.iter().find(|d| d["backend"] == backend).unwrap_or_else(|| panic!("{backend}: {v}"));
    for ok in ["postgres", "redis", "clickhouse"] {
        assert_eq!(by(ok)["ok"], true, "{v}");
        assert!(by(ok)["latency_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(by("kafka")["ok"], false, "{v}");
    assert!(stderr(&out).contains("ingestion log (kafka): FAILED"), "{}", stderr(&out));
}

fn tmux(args: &[&str]) -> Output {
    Command::new("tmux").args(args).output().unwrap_or_else(|e| {
        panic!("tmux is needed for the terminal test and could not run ({e}); scripts/test installs it")
    })
}

/// Waits until the pane shows `needle`; returns the screen.
fn wait_for_screen(session: &str, needle: &str) -> String {
    eventually_blocking(Duration::from_secs(20), &format!("`{needle}` on the screen"), || {
        let screen = stdout(&tmux(&["capture-pane", "-p", "-t", session]));
        if screen.contains(needle) { Ok(screen.clone()) } else { Err(format!("the screen:\n{screen}")) }
    })
}

struct Session(String);
impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}

#[test]
fn top_runs_in_a_real_terminal_and_answers_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&[("PHS_DATA_DIR", dir.path().display().to_string())]);
    wait_healthy(&mut server);
    let session = Session(unique("phs_top"));
    let command = format!("{} top --server {} --interval 0.5", env!("CARGO_BIN_EXE_phs"), server.addr);
    let out = tmux(&["new-session", "-d", "-s", &session.0, "-x", "120", "-y", "40", &command]);
    assert!(out.status.success(), "tmux new-session: {}", stderr(&out));
    let screen = wait_for_screen(&session.0, "healthy");
    assert!(screen.contains("Consumer lag") && screen.contains("local-log/0"), "{screen}");
    assert!(screen.contains("q quit"), "the footer lists the keys: {screen}");

    tmux(&["send-keys", "-t", &session.0, "?"]);
    wait_for_screen(&session.0, "this help");
    // `?` again closes it (Escape followed at once by a key reads as Alt+key in a terminal).
    tmux(&["send-keys", "-t", &session.0, "?"]);
    tmux(&["send-keys", "-t", &session.0, "f"]);
    wait_for_screen(&session.0, "FROZEN");

    // The instance goes away: shown as down, with its last values; back when it restarts.
    let addr = server.addr.clone();
    drop(server);
    tmux(&["send-keys", "-t", &session.0, "f"]);
    let screen = wait_for_screen(&session.0, "DOWN");
    assert!(screen.contains("(last seen)") && screen.contains("local-log/0"), "{screen}");
    let mut again = start(&[("PHS_DATA_DIR", dir.path().display().to_string()), ("ADMIN_ADDR", addr.clone())]);
    assert_eq!(again.addr, addr, "restarted on the address top watches");
    wait_healthy(&mut again);
    eventually_blocking(Duration::from_secs(20), "the restarted instance shown up", || {
        let screen = stdout(&tmux(&["capture-pane", "-p", "-t", &session.0]));
        if screen.contains("DOWN") { Err(screen) } else { Ok(()) }
    });
    wait_for_screen(&session.0, "healthy");

    tmux(&["send-keys", "-t", &session.0, "q"]);
    eventually_blocking(Duration::from_secs(10), "phs top to quit on q", || {
        !tmux(&["has-session", "-t", &session.0]).status.success()
    });
}

#[test]
fn top_without_a_terminal_says_so_and_exits_2() {
    let out = phs().args(["top", "--server", "127.0.0.1:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs a terminal") && stderr(&out).contains("--once --json"), "{}", stderr(&out));
    let out = phs().args(["top", "--once", "--json", "--server", "127.0.0.1:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "an instance that is down fails --once");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["instances"][0]["status"], "down");
}
