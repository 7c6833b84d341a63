//! `phs serve` in production: KAFKA_HOSTS + CLICKHOUSE_HOST + DATABASE_URL,
//! each test with a fresh Postgres database, ClickHouse database, topic
//! prefix and consumer group. SDK requests and messages produced straight
//! to the topic end up as ClickHouse rows, poison goes to the DLQ topic,
//! kill -9 loses nothing acknowledged, and two instances share the work.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use phs::wire::Producer;
use serde_json::{Value, json};

use crate::util::eventually::{eventually, eventually_blocking};
use crate::util::production::Deployment;
use crate::util::production::capture_message;
use crate::util::production::consume;
use crate::util::server::wait_exit;
use crate::util::server::{Server, sigterm, start, start_logged, wait_healthy};
use crate::util::{phs, stderr};

impl Deployment {
    /// `phs events list --json` (read from ClickHouse) once it shows `n` events.
    pub(crate) fn wait_for_events(&self, n: usize) -> Vec<Value> {
        eventually_blocking(Duration::from_secs(60), &format!("{n} events in ClickHouse"), || {
            let out = self.cli(&["events", "list", "--json", "--limit", "100000"]);
            let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            if rows.len() >= n { Ok(rows) } else { Err(format!("only {} of {n} events in ClickHouse", rows.len())) }
        })
    }
}

async fn post(url: &str, body: &Value) -> u16 {
    let r = reqwest::Client::new().post(url).header("content-type", "application/json").body(body.to_string());
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_requests_and_topic_messages_land_in_clickhouse_and_poison_in_the_dlq_topic() {
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "shop"]).trim().to_string();
    let mut server = start(&d.env);
    wait_healthy(&mut server);

    let batch = json!({"api_key": token, "batch": [
        {"event": "$identify", "distinct_id": "user@x", "timestamp": "2024-05-01T10:00:00.123456Z",
         "properties": {"$anon_distinct_id": "anon1", "$set": {"email": "user@x"}}},
        {"event": "signed_up", "distinct_id": "user@x", "properties": {"plan": "pro"}},
    ]});
    assert_eq!(post(&format!("http://{}/batch/", server.capture), &batch).await, 200);

    let (key, direct, direct_uuid) = capture_message(&token, "direct", "anon1");
    let (_, unknown, _) = capture_message("phc_unknown", "x", "d");
    let poison: Vec<Vec<u8>> = vec![b"{not json".to_vec(), vec![0xff, 0xfe, 0x00], unknown];
    let mut messages = vec![(key, direct)];
    messages.extend(poison.iter().map(|p| ("k".to_string(), p.clone())));
    d.producer().append(&messages).await.unwrap();

    let rows = d.wait_for_events(3);
    let names: BTreeSet<&str> = rows.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["$identify", "signed_up", "direct"]), "{rows:?}");
    let find = |name: &str| rows.iter().find(|r| r["event"] == name).unwrap();
    assert_eq!(find("$identify")["timestamp"], "2024-05-01T10:00:00.123456Z");
    assert_eq!(find("signed_up")["properties"]["plan"], "pro");
    assert_eq!(find("signed_up")["properties"]["$ip"], "127.0.0.1");
    assert_eq!(find("direct")["uuid"], direct_uuid.as_str());
    let person = find("signed_up")["person"]["uuid"].as_str().expect("the person columns are filled").to_string();
    assert_eq!(find("$identify")["person"]["properties"]["email"], "user@x");

    // The persons stage's rows reach ClickHouse too: both ids end on one person.
    let client = phs::clickhouse::client(&d.settings.clickhouse).unwrap();
    eventually(Duration::from_secs(30), &format!("both distinct ids on {person} in ClickHouse"), || async {
        let owners: Vec<(String, String)> = client
            .query("SELECT distinct_id, person_id FROM person_distinct_id2 FINAL WHERE is_deleted = 0 ORDER BY distinct_id")
            .fetch_all()
            .await
            .unwrap();
        let both = owners == [("anon1".to_string(), person.clone()), ("user@x".to_string(), person.clone())];
        both.then_some(()).ok_or_else(|| format!("distinct ids in ClickHouse: {owners:?}"))
    })
    .await;
    let props: String = client
        .query("SELECT properties FROM person FINAL WHERE id = ? AND is_deleted = 0")
        .bind(person.as_str())
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&props).unwrap()["email"], "user@x");

    // Poison went to the DLQ topic, bytes unchanged, with reason and stage in headers.
    let letters = consume(&d.settings, &d.settings.kafka.topic("events_plugin_ingestion_dlq"), 3).await;
    let mut got: Vec<(String, String, Vec<u8>)> =
        letters.iter().map(|m| (m.headers["reason"].clone(), m.headers["stage"].clone(), m.payload.clone())).collect();
    got.sort();
    let mut want = vec![
        ("invalid_utf8".to_string(), "normalize".to_string(), poison[1].clone()),
        ("malformed_message".to_string(), "normalize".to_string(), poison[0].clone()),
        ("unknown_token".to_string(), "team".to_string(), poison[2].clone()),
    ];
    want.sort();
    assert_eq!(got, want);
    assert!(letters.iter().all(|m| m.headers.contains_key("offset") && m.headers.contains_key("detail")));

    // SIGTERM: the server stops within a bounded time, cleanly.
    sigterm(&server.child);
    assert!(wait_exit(&mut server, Duration::from_secs(15)).success());
}

/// Streams SDK batches into a fresh deployment for 2.5 s, stops the server
/// with `stop`, restarts it, and waits until ClickHouse holds every
/// acknowledged event: (the deployment, the restarted server, the uuids
/// stored after FINAL, the rows FINAL returned, the uuids sent).
async fn stream_stop_restart(stop: fn(&mut Server)) -> (Deployment, Server, HashSet<String>, usize, HashSet<String>) {
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "shop"]).trim().to_string();
    let mut server = start(&d.env);
    wait_healthy(&mut server);
    let url = format!("http://{}/batch", server.capture);
    let stream = crate::util::server::stream_batches(&url, &token);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop(&mut server);
    let (acked, sent) = stream.finish().await;
    assert!(acked.len() >= 100, "acknowledged only {}", acked.len());
    let mut server = start(&d.env);
    wait_healthy(&mut server);
    let (stored, final_rows) = d.wait_for_uuids(&acked).await;
    assert!(stored.is_subset(&sent), "ClickHouse holds events nobody sent");
    (d, server, stored, final_rows, sent)
}

/// kill -9 while SDK batches stream in; after a restart, ClickHouse holds
/// every acknowledged event, once per uuid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_stores_every_acknowledged_event_once() {
    let (_d, _server, stored, final_rows, _) = stream_stop_restart(|s| {
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    })
    .await;
    assert_eq!(final_rows, stored.len(), "an event is stored twice after FINAL");
}

/// SIGTERM mid-stream drains: the batch in hand is written and committed, so
/// after a restart ClickHouse holds every acknowledged event once, even
/// before its merges could collapse a redelivered copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_then_restart_stores_every_acknowledged_event_once_without_merges() {
    let (d, mut server, stored, _, _) = stream_stop_restart(|s| {
        sigterm(&s.child);
        assert!(wait_exit(s, Duration::from_secs(30)).success(), "the drain ends cleanly");
    })
    .await;
    let client = phs::clickhouse::client(&d.settings.clickhouse).unwrap();
    let rows: u64 = client.query("SELECT count() FROM events").fetch_one().await.unwrap();
    assert_eq!(rows as usize, stored.len(), "rows without FINAL: a batch was written twice");
    sigterm(&server.child);
    assert!(wait_exit(&mut server, Duration::from_secs(30)).success());
}

/// The partitions of the consumption topic a server's log says it owns now
/// (its last assignment; the overflow consumer's are on another topic).
fn assigned(log: &Path) -> Option<BTreeSet<i32>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text.lines().rev().find(|l| l.contains("kafka partitions assigned") && !l.contains("_overflow"))?;
    let list = line.split("partitions=[").nth(1)?.split(']').next()?;
    Some(list.split(',').filter_map(|p| p.trim().parse().ok()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_share_the_partitions_and_store_everything_once() {
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "shop"]).trim().to_string();
    let (log_a, log_b) = (d.dir.path().join("a.log"), d.dir.path().join("b.log"));
    let mut a = start_logged(&d.env, &log_a);
    let mut b = start_logged(&d.env, &log_b);
    wait_healthy(&mut a);
    wait_healthy(&mut b);

    // Wait until the group settled with both members owning a share.
    let split = "the group to split the 8 partitions between both instances";
    eventually_blocking(Duration::from_secs(90), split, || {
        if let (Some(pa), Some(pb)) = (assigned(&log_a), assigned(&log_b))
            && !pa.is_empty()
            && !pb.is_empty()
            && pa.is_disjoint(&pb)
            && pa.union(&pb).count() == 8
        {
            return Ok(());
        }
        Err(format!("{:?} / {:?}", assigned(&log_a), assigned(&log_b)))
    });

    let producer = d.producer();
    let mut expected = HashSet::new();
    let produce = |round: usize, expected: &mut HashSet<String>| {
        let messages: Vec<(String, Vec<u8>)> = (0..50)
            .map(|i| {
                let (key, bytes, uuid) = capture_message(&token, "shared", &format!("u{round}_{i}"));
                expected.insert(uuid);
                (key, bytes)
            })
            .collect();
        let producer = producer.clone();
        async move { producer.append(&messages).await.unwrap() }
    };
    for round in 0..8 {
        produce(round, &mut expected).await;
    }
    let (stored, final_rows) = d.wait_for_uuids(&expected).await;
    assert_eq!(stored, expected);
    assert_eq!(final_rows, 400, "every event once");

    // One instance leaves (SIGTERM) while events keep coming: the other takes over its partitions.
    sigterm(&a.child);
    for round in 8..12 {
        produce(round, &mut expected).await;
    }
    assert!(wait_exit(&mut a, Duration::from_secs(20)).success());
    let (stored, final_rows) = d.wait_for_uuids(&expected).await;
    assert_eq!(stored, expected);
    assert_eq!(final_rows, 600, "every event once across the rebalance");
    assert_eq!(assigned(&log_b).map(|p| p.len()), Some(8), "the remaining instance owns every partition");

    sigterm(&b.child);
    assert!(wait_exit(&mut b, Duration::from_secs(20)).success());
}

/// Each part follows its own setting: the local log with ClickHouse events,
/// and Kafka with SQLite events plus the ClickHouse topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_deployments_ingest_end_to_end() {
    let d = Deployment::new().await;
    let keep = |names: &[&str]| -> Vec<(&'static str, String)> {
        d.env.iter().filter(|(k, _)| names.contains(k)).cloned().collect()
    };
    let cli = crate::util::phs_ok;
    let send_and_list = |env: Vec<(&'static str, String)>, event: &'static str| async move {
        let token = cli(&env, &["teams", "create", event]).trim().to_string();
        let mut server = start(&env);
        wait_healthy(&mut server);
        let body = json!({"token": token, "event": event, "distinct_id": "u"});
        assert_eq!(post(&format!("http://{}/e", server.capture), &body).await, 200);
        let listed = eventually_blocking(Duration::from_secs(60), &format!("{event} listed"), || {
            let listed = cli(&env, &["events", "list", "--json", "--event", event]);
            (listed.lines().count() == 1).then(|| listed.clone()).ok_or(listed)
        });
        // The server is handed back alive: sinks after the listed one may still be writing.
        (serde_json::from_str::<Value>(listed.trim()).unwrap(), server)
    };

    // The local log and SQLite teams, with events in ClickHouse.
    let log_dir = tempfile::tempdir().unwrap();
    let mut env = keep(&["CLICKHOUSE_HOST", "CLICKHOUSE_DATABASE"]);
    env.push(("PHS_DATA_DIR", log_dir.path().display().to_string()));
    send_and_list(env, "via_log").await;
    assert!(!log_dir.path().join("events.sqlite3").exists(), "events went to SQLite, not ClickHouse");
    let client = phs::clickhouse::client(&d.settings.clickhouse).unwrap();
    let n: u64 = client.query("SELECT count() FROM events FINAL WHERE event = 'via_log'").fetch_one().await.unwrap();
    assert_eq!(n, 1);

    // Kafka with events in SQLite, and the ClickHouse topics on.
    let mut env = keep(&["DATABASE_URL", "KAFKA_HOSTS", "KAFKA_PREFIX", "KAFKA_CONSUMER_GROUP", "PHS_DATA_DIR"]);
    env.push(("PHS_KAFKA_CLICKHOUSE_TOPICS", "true".into()));
    let (row, _server) = send_and_list(env, "via_kafka").await;
    assert!(d.dir.path().join("events.sqlite3").exists());
    let topic = consume(&d.settings, &d.settings.kafka.topic("clickhouse_events_json"), 1).await;
    let produced: Value = serde_json::from_slice(&topic[0].payload).unwrap();
    assert_eq!((&produced["uuid"], &produced["event"]), (&row["uuid"], &json!("via_kafka")));

    // The topics need Kafka: without it serve refuses to start, naming the setting.
    let out = phs()
        .arg("serve")
        .env("PHS_DATA_DIR", log_dir.path())
        .env("PHS_KAFKA_CLICKHOUSE_TOPICS", "true")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("CAPTURE_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("PHS_KAFKA_CLICKHOUSE_TOPICS needs KAFKA_HOSTS"), "{}", stderr(&out));
}
