//! Regression tests for the inputs and failures that used to stop ingestion
//! for every team while `/_health` stayed green, each through a running
//! `phs serve`: poison events are stored made safe or dead-lettered and the
//! events after them flow on; a batch that keeps failing turns `/_health`
//! 503 and back to 200 once it passes; a dead pipeline stops the server with
//! its reason; SIGTERM's drain is bounded.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::embedded::{cli, post, wait_for_events};
use crate::util::eventually::eventually;
use crate::util::production::{Deployment, capture_message};
use crate::util::server::wait_exit;
use crate::util::server::{Server, sigterm, start, wait_healthy};
use crate::util::{clickhouse_host, phs_ok, unique};

/// `/_health`'s status and body.
async fn health(server: &Server) -> (u16, Value) {
    let r = reqwest::get(format!("http://{}/_health", server.addr)).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Sends one valid event for `token` through capture, which must accept it.
async fn send_one(server: &Server, token: &str, event: &str) {
    let body = json!({"api_key": token, "batch": [{"event": event, "distinct_id": "d"}]});
    let url = format!("http://{}/batch/", server.capture);
    assert_eq!(post(&url, "application/json", body.to_string().into_bytes()).await.0, 200, "capture refused `{event}`");
}

/// Polls `/_health` until it answers `code`, within `within`; its body.
async fn health_becomes(server: &Server, code: u16, within: Duration) -> Value {
    health_until(server, code, "", within).await
}

/// Polls `/_health` until it answers `code` with `reason` in its body, within `within`; its body.
async fn health_until(server: &Server, code: u16, reason: &str, within: Duration) -> Value {
    eventually(within, &format!("/_health to answer {code} with {reason:?}"), async || {
        let (got, body) = health(server).await;
        if got == code && body.to_string().contains(reason) { Ok(body) } else { Err(format!("{got} ({body})")) }
    })
    .await
}

fn by_event<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["event"] == name).unwrap_or_else(|| panic!("no stored `{name}` event in {rows:?}"))
}

/// The events that used to poison a partition, sent through capture.
fn poison_batch(token: &str) -> Value {
    json!({"api_key": token, "batch": [
        {"event": "huge_offset", "distinct_id": "p1", "offset": 1_000_000_000_000_000_000i64},
        {"event": "negative_offset", "distinct_id": "p1", "offset": -1_000_000_000_000_000_000i64},
        {"event": "skewed", "distinct_id": "p1", "timestamp": "9999-12-31T23:59:59Z", "sent_at": "0001-01-01T00:00:00Z"},
        {"event": "nul\u{0}name", "distinct_id": "a\u{0}b", "properties": {"k\u{0}": "v\u{0}", "$set": {"n\u{0}": "x\u{0}"}}},
        {"event": "after", "distinct_id": "p2"},
    ]})
}

/// Sends [`poison_batch`] through capture; when it was sent.
async fn send_poison(server: &Server, token: &str) -> chrono::DateTime<chrono::Utc> {
    let before = chrono::Utc::now();
    let url = format!("http://{}/batch/", server.capture);
    let (code, _) = post(&url, "application/json", poison_batch(token).to_string().into_bytes()).await;
    assert_eq!(code, 200);
    before
}

/// Messages straight into the topic or log, past capture's checks: a uuid that is not one, then a valid event.
fn past_capture(token: &str) -> Vec<(String, Vec<u8>)> {
    let (key, bad, _) = capture_message(token, "bad_uuid", "p3");
    let mut m: Value = serde_json::from_slice(&bad).unwrap();
    m["uuid"] = json!("not-a-uuid");
    let (key2, last, _) = capture_message(token, "last", "p3");
    vec![(key, serde_json::to_vec(&m).unwrap()), (key2, last)]
}

fn assert_made_safe(rows: &[Value], before: chrono::DateTime<chrono::Utc>) {
    for name in ["huge_offset", "negative_offset", "skewed"] {
        let t: chrono::DateTime<chrono::Utc> = by_event(rows, name)["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(t >= before - chrono::Duration::seconds(5), "{name}'s out-of-range time should become now: {t}");
    }
    let nul = by_event(rows, "nul\u{FFFD}name");
    assert_eq!(nul["distinct_id"], "a\u{FFFD}b");
    assert_eq!(nul["properties"]["k\u{FFFD}"], "v\u{FFFD}");
    by_event(rows, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_poison_events_are_made_safe_or_dead_lettered_and_the_rest_flows() {
    use phs::pipeline::source::local_log::LocalLog;
    use phs::wire::Producer;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    let before = send_poison(&server, &token).await;
    let log = LocalLog::open(&d).await.unwrap();
    log.append(&past_capture(&token)).await.unwrap();

    let rows = wait_for_events(&d, 6);
    assert_made_safe(&rows, before);
    by_event(&rows, "last");
    assert!(rows.iter().all(|r| r["event"] != "bad_uuid"), "{rows:?}");
    let person = cli(&d, &["persons", "show", "a\u{FFFD}b", "--team", &token, "--json"]);
    let person: Value = serde_json::from_str(&person).unwrap();
    assert_eq!(person["properties"]["n\u{FFFD}"], "x\u{FFFD}");
    assert_eq!(log.dead_letter_counts().await.unwrap(), vec![("invalid_uuid".to_string(), 1)]);
    assert_eq!(health(&server).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_poison_events_are_made_safe_or_dead_lettered_and_the_rest_flows() {
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "shop"]).trim().to_string();
    let mut server = start(&d.env);
    wait_healthy(&mut server);
    let before = send_poison(&server, &token).await;
    use phs::wire::Producer;
    d.producer().append(&past_capture(&token)).await.unwrap();

    let rows = d.wait_for_events(6);
    assert_made_safe(&rows, before);
    by_event(&rows, "last");
    // Postgres holds the person under the made-safe id (a NUL used to fail the read-ahead forever).
    let person: Value =
        serde_json::from_str(&d.cli(&["persons", "show", "a\u{FFFD}b", "--team", &token, "--json"])).unwrap();
    assert_eq!(person["properties"]["n\u{FFFD}"], "x\u{FFFD}");
    let letters =
        crate::util::production::consume(&d.settings, &d.settings.kafka.topic("events_plugin_ingestion_dlq"), 1).await;
    assert_eq!(letters[0].headers["reason"], "invalid_uuid");
    assert_eq!(health(&server).await.0, 200);
}

/// Forwards `port` to ClickHouse once started: until then, ClickHouse is "down".
async fn clickhouse_proxy(port: u16) -> tokio::task::JoinHandle<()> {
    let target = clickhouse_host().trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

/// An embedded server whose events go to ClickHouse through `port`, where nothing listens yet.
/// Also returns the team's token and the settings that reach ClickHouse through `port`.
fn with_clickhouse_down(
    dir: &std::path::Path,
    port: u16,
    extra: &[(&'static str, String)],
) -> (Server, String, Vec<(&'static str, String)>) {
    let database = unique("phs_t");
    let real = [
        ("PHS_DATA_DIR", dir.display().to_string()),
        ("CLICKHOUSE_HOST", clickhouse_host()),
        ("CLICKHOUSE_DATABASE", database.clone()),
    ];
    phs_ok(&real, &["migrate"]);
    let token = phs_ok(&real, &["teams", "create", "shop"]).trim().to_string();
    let mut env = vec![
        ("PHS_DATA_DIR", dir.display().to_string()),
        ("CLICKHOUSE_HOST", format!("127.0.0.1:{port}")),
        ("CLICKHOUSE_DATABASE", database),
    ];
    let through_port = env.clone();
    env.extend(extra.iter().cloned());
    (start(&env), token, through_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_keeps_failing_turns_health_503_until_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut down = crate::util::ClosedPort::new();
    let (mut server, token, env) =
        with_clickhouse_down(dir.path(), down.port, &[("PHS_HEALTH_MAX_BATCH_SECONDS", "2".into())]);
    wait_healthy(&mut server);
    // Capture accepts while the sink is down: the local log holds the event.
    send_one(&server, &token, "waiting").await;
    let report = health_until(&server, 503, "failing to write events", Duration::from_secs(30)).await;
    assert!(report["reason"].as_str().unwrap().contains("network error"), "the error is named: {report}");

    let _proxy = clickhouse_proxy(down.release()).await;
    health_becomes(&server, 200, Duration::from_secs(30)).await;
    let stored = phs_ok(&env, &["events", "list", "--json"]);
    assert!(stored.contains("\"waiting\""), "the retried batch is stored once ClickHouse answers: {stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_pipeline_stops_the_server_with_its_reason() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let token = cli(&d, &["teams", "create", "shop"]).trim().to_string();
    let mut server = start(&[("PHS_DATA_DIR", d.display().to_string())]);
    wait_healthy(&mut server);
    // A table gone under a running server: no retry can fix that.
    let url = format!("sqlite://{}", d.join("events.sqlite3").display());
    let mut events = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("DROP TABLE events").execute(&mut events).await.unwrap();
    send_one(&server, &token, "e").await;
    let status = wait_exit(&mut server, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "a fatal pipeline failure exits non-zero");
    let log = server.log_text();
    assert!(log.contains("task `pipeline` failed") && log.contains("no such table"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_within_its_bound_and_a_second_one_exits_at_once() {
    // The batch in hand cannot be written (ClickHouse down): the drain waits for it...
    for second_signal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let down = crate::util::ClosedPort::new();
        let (mut server, token, _) =
            with_clickhouse_down(dir.path(), down.port, &[("PHS_SHUTDOWN_TIMEOUT_SECONDS", "4".into())]);
        wait_healthy(&mut server);
        send_one(&server, &token, "e").await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let sent = Instant::now();
        sigterm(&server.child);
        if second_signal {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(server.child.try_wait().unwrap().is_none(), "the first SIGTERM drains, it does not exit at once");
            sigterm(&server.child);
        }
        let status = wait_exit(&mut server, Duration::from_secs(10));
        let took = sent.elapsed();
        assert_eq!(status.code(), Some(1), "an unfinished drain exits 1");
        if second_signal {
            assert!(took < Duration::from_secs(3), "a second SIGTERM exits at once, took {took:?}");
        } else {
            assert!(took >= Duration::from_secs(3), "...up to PHS_SHUTDOWN_TIMEOUT_SECONDS, took {took:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_batch_turns_health_503_within_its_bound_and_back() {
    use sqlx::Connection;
    let db = crate::util::fresh_postgres_db().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.clone()), ("PHS_DATA_DIR", dir.path().display().to_string())];
    phs_ok(&env, &["migrate"]);
    let token = phs_ok(&env, &["teams", "create", "shop"]).trim().to_string();
    let mut envs = env.to_vec();
    envs.push(("PHS_HEALTH_MAX_BATCH_SECONDS", "2".into()));
    let mut server = start(&envs);
    wait_healthy(&mut server);
    // A lock that never errors: the batch waits in the persons stage without failing.
    let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("LOCK TABLE posthog_person IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
    send_one(&server, &token, "e").await;
    health_until(&server, 503, "stuck processing a batch, in stage `persons`", Duration::from_secs(30)).await;
    tx.rollback().await.unwrap();
    health_becomes(&server, 200, Duration::from_secs(30)).await;
}
