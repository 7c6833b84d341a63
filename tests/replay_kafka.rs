//! `phs replay` in production: the Kafka consumption topic read with replay's
//! own assignment while `phs serve` consumes it (the server's group offsets
//! stay where they were), partitions, offsets and times; a dry run that
//! reads Postgres and Redis but writes nothing to them, to ClickHouse or to
//! any topic; re-ingest keeping uuids so ClickHouse collapses the copies;
//! and the broker's bad answers as one clear line.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use phs::store::Store;
use phs::wire::Producer;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::replay::{parse, step};
use crate::util::embedded::plugin_dir;
use crate::util::production::{Deployment, capture_message};
use crate::util::server::{start, wait_healthy};
use crate::util::{phs_with, redis_url};

/// Reads a real storage key and a real cache key, and writes both.
const MARKER: &str = r#"
function processEvent(event, meta)
  event.properties = event.properties or {}
  event.properties.prior = meta.storage.get("prior")
  event.properties.cached = meta.cache:get("pre")
  meta.storage.set("seen:" .. event.distinct_id, true)
  meta.cache:set("last", event.distinct_id)
  if event.distinct_id:sub(-2) == "-0" then posthog.capture("from replay", {}) end
  return event
end
"#;

struct Kafka {
    d: Deployment,
    /// Before every distinct id: Redis is shared by every test, and plugin ids repeat.
    ids: String,
    token: String,
    uuids: HashSet<String>,
    config: i64,
    plugin: i64,
    team: i64,
}

impl Kafka {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.d.env.clone();
        env.push(("REDIS_URL", redis_url()));
        env
    }

    fn replay(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut all = vec!["replay"];
        all.extend_from_slice(args);
        phs_with(&self.env(), &all)
    }

    fn topic(&self) -> String {
        self.d.settings.kafka.topic(&self.d.settings.kafka.kafka_consumption_topic)
    }

    fn consumer(&self, group: &str) -> BaseConsumer {
        let mut config = phs::kafka::client_config(&self.d.settings.kafka).unwrap();
        config.set("group.id", group);
        config.create().unwrap()
    }

    /// (low, high) of every partition of the consumption topic.
    fn watermarks(&self) -> Vec<(i64, i64)> {
        let c = self.consumer("watermarks");
        (0..8).map(|p| c.fetch_watermarks(&self.topic(), p, Duration::from_secs(5)).unwrap()).collect()
    }

    /// The server group's committed offset of every partition.
    fn committed(&self) -> Vec<Offset> {
        let c = self.consumer(&self.d.settings.kafka.kafka_consumer_group);
        let mut list = TopicPartitionList::new();
        for p in 0..8 {
            list.add_partition(&self.topic(), p);
        }
        let got = c.committed_offsets(list, Duration::from_secs(5)).unwrap();
        got.elements().iter().map(|e| e.offset()).collect()
    }
}

/// A deployment with team `shop`, the Marker plugin, a real storage value
/// and cache value it reads, and 40 events on the topic.
async fn kafka() -> Kafka {
    let d = Deployment::new().await;
    let token = d.cli(&["teams", "create", "shop"]).trim().to_string();
    let dir = plugin_dir(d.dir.path(), "Marker", json!([]), MARKER);
    d.cli(&["plugins", "install", dir.to_str().unwrap()]);
    d.cli(&["plugins", "enable", "Marker", "--team", "shop"]);
    let store: std::sync::Arc<dyn Store> = phs::store::connect(&d.settings).await.unwrap();
    let team = store.team_by_token(&token).await.unwrap().unwrap().id;
    let config = store.list_plugin_configs(Some(team)).await.unwrap()[0].clone();
    store.storage_set(config.id, "prior", "\"from postgres\"").await.unwrap();
    let redis = redis::Client::open(redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let pre = format!("@plugin/{}/{team}/pre", config.plugin_id);
    let _: () = redis::AsyncCommands::set(&mut conn, &pre, "\"from redis\"").await.unwrap();
    let ids = crate::util::unique("d");
    let mut uuids = HashSet::new();
    let messages: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            let (key, bytes, uuid) = capture_message(&token, "view", &format!("{ids}-{i}"));
            uuids.insert(uuid);
            (key, bytes)
        })
        .collect();
    d.producer().append(&messages).await.unwrap();
    Kafka { d, ids, token, uuids, config: config.id, plugin: config.plugin_id, team }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reads_postgres_and_redis_and_writes_nowhere() {
    let k = kafka().await;
    let ends_before = k.watermarks();
    let (code, out, err) = k.replay(&["--from-beginning", "--json", "--side-effects"]);
    assert_eq!(code, Some(0), "{err}");
    let (reports, summary) = parse(&out);
    assert_eq!(reports.len(), 40);
    assert_eq!(summary["read"], 40);
    let got: HashSet<String> = reports.iter().map(|r| r["uuid"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, k.uuids);
    let marker = step(&reports[0], "Marker");
    let changes = marker["changes"].as_array().unwrap();
    let after = |path: &str| changes.iter().find(|c| c["path"] == path).map(|c| c["after"].clone());
    assert_eq!(after("properties.prior"), Some(json!("from postgres")), "storage reads see Postgres: {marker}");
    assert_eq!(after("properties.cached"), Some(json!("from redis")), "cache reads see Redis: {marker}");
    assert_eq!(summary["side_effects"]["storage"], 40);
    assert_eq!(summary["side_effects"]["captures"], 1);

    // Nothing reached Postgres, Redis, ClickHouse or a topic.
    let store = phs::store::connect(&k.d.settings).await.unwrap();
    let seen = format!("seen:{}-1", k.ids);
    assert_eq!(store.storage_get(k.config, &seen).await.unwrap(), None, "no storage row was written");
    let redis = redis::Client::open(redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let last: Option<String> =
        redis::AsyncCommands::get(&mut conn, format!("@plugin/{}/{}/last", k.plugin, k.team)).await.unwrap();
    assert!(!last.unwrap_or_default().contains(&k.ids), "no cache key was written");
    assert_eq!(k.watermarks(), ends_before, "posthog.capture produced nothing");
    let client = phs::clickhouse::client(&k.d.settings.clickhouse).unwrap();
    let rows: u64 = client.query("SELECT count() FROM events").fetch_one().await.unwrap();
    assert_eq!(rows, 0, "a dry run stores no event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_the_topic_while_the_server_consumes_and_leaves_its_offsets() {
    let k = kafka().await;
    let mut server = start(&k.env());
    wait_healthy(&mut server);
    k.d.wait_for_events(41);
    let committed = crate::util::eventually::eventually_blocking(
        Duration::from_secs(30),
        "the server's commits of all 41 events",
        || {
            let c = k.committed();
            let marks = k.watermarks();
            let caught_up = c.iter().zip(&marks).all(|(o, (_, high))| match o {
                Offset::Offset(o) => o == high,
                _ => *high == 0,
            });
            if caught_up { Ok(c) } else { Err(format!("{c:?} of {marks:?}")) }
        },
    );

    // The 40 events and the one Marker captured while the server ran it on the first.
    let marks = k.watermarks();
    let total: usize = marks.iter().map(|(low, high)| (high - low) as usize).sum();
    assert_eq!(total, 41);
    let (code, out, err) = k.replay(&["--from-beginning", "--json", "--offline"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(parse(&out).0.len(), total);
    let (p0, p1) = ((marks[0].1 - marks[0].0) as usize, (marks[1].1 - marks[1].0) as usize);
    let (code, out, err) = k.replay(&["--from-beginning", "--partition", "0", "--partition", "1", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let (reports, _) = parse(&out);
    assert_eq!(reports.len(), p0 + p1, "partitions 0 and 1 only");
    assert!(reports.iter().all(|r| r["partition"] == 0 || r["partition"] == 1));
    let busy = (0..8).max_by_key(|p| marks[*p as usize].1).unwrap();
    let high = marks[busy as usize].1;
    let (code, out, err) = k.replay(&["--from-offset", "1", "--partition", &busy.to_string(), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let (reports, _) = parse(&out);
    assert_eq!(reports.len() as i64, high - 1, "offsets 1 to the end of partition {busy}");
    assert_eq!(reports[0]["offset"], 1);
    let (code, out, _) = k.replay(&["--from-timestamp", "-1h", "--json", "--offline"]);
    assert_eq!(code, Some(0));
    assert_eq!(parse(&out).0.len(), total, "by time, from an hour ago");
    let (code, out, _) = k.replay(&["--from-timestamp", "2099-01-01T00:00:00Z", "--json", "--offline"]);
    assert_eq!(code, Some(0));
    assert!(parse(&out).0.is_empty(), "nothing from the future");

    assert_eq!(k.committed(), committed, "replay never moves the server group's offsets");
    // The server still owns its partitions and ingests.
    let more: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| {
            let (key, bytes, _) = capture_message(&k.token, "after", &format!("late{i}"));
            (key, bytes)
        })
        .collect();
    k.d.producer().append(&more).await.unwrap();
    k.d.wait_for_events(total + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_on_kafka_keeps_uuids_so_clickhouse_collapses_the_copies() {
    let k = kafka().await;
    for round in 0..2 {
        // --event: the capture Marker makes on the first event is left out of the second round.
        let (code, out, err) = k.replay(&["--from-beginning", "--event", "view", "--reingest", "--yes"]);
        assert_eq!(code, Some(0), "round {round}: {err}");
        assert!(out.contains("40 re-ingested"), "{out}");
    }
    let client = phs::clickhouse::client(&k.d.settings.clickhouse).unwrap();
    let _: () = client.query("OPTIMIZE TABLE events FINAL").execute().await.unwrap();
    let uuids: Vec<String> =
        client.query("SELECT uuid FROM events FINAL WHERE event = 'view'").fetch_all().await.unwrap();
    assert_eq!(uuids.len(), 40, "one row per uuid after ClickHouse collapses the copies");
    assert_eq!(uuids.into_iter().collect::<HashSet<_>>(), k.uuids);
    let store = phs::store::connect(&k.d.settings).await.unwrap();
    let seen = format!("seen:{}-1", k.ids);
    assert!(store.storage_get(k.config, &seen).await.unwrap().is_some(), "re-ingest runs plugins for real");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_kafka_selections_are_one_clear_line() {
    let k = kafka().await;
    for (args, code, says) in [
        (vec!["--from-beginning", "--partition", "99"], 2, "has no partition 99"),
        (vec!["--from-offset", "99999", "--partition", "0"], 2, "past the end of partition 0"),
        (vec!["--from-beginning", "--topic", "no_such_topic"], 2, "no topic"),
        (vec!["--dead-letters", "--from-beginning"], 2, "--topic"),
    ] {
        let (got, _, err) = k.replay(&args);
        assert_eq!(got, Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say `{says}`: {err}");
    }
    let started = Instant::now();
    let mut env = k.env();
    env.retain(|(key, _)| *key != "KAFKA_HOSTS");
    let down = crate::util::ClosedPort::new();
    env.push(("KAFKA_HOSTS", format!("127.0.0.1:{}", down.port)));
    let (got, _, err) = phs_with(&env, &["replay", "--from-beginning"]);
    assert_eq!(got, Some(1), "an unreachable broker is a failure, not a usage error: {err}");
    assert!(err.contains("cannot reach the Kafka broker"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "it gives up within seconds: {:?}", started.elapsed());
}
