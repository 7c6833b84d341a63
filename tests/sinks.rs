//! The production parts one by one, against the real ClickHouse 18.16 and
//! Kafka-protocol broker: the ClickHouse sink, the ClickHouse Kafka topics,
//! the dead-letter topic and the Kafka source's per-partition commits.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use phs::config::StoreSettings;
use phs::migrate::{self, Mode, TopicLayout};
use phs::pipeline::sink::clickhouse::ClickHouseEvents;
use phs::pipeline::sink::topics::ClickHouseTopics;
use phs::pipeline::sink::{DistinctIdRow, EventFilter, EventSink, GroupRow, PersonRow, SinkBatch};
use phs::pipeline::source::Source;
use phs::pipeline::source::kafka::KafkaSource;
use phs::pipeline::source::producer::KafkaProducer;
use phs::wire::{EventPerson, EventRow};
use phs::wire::{Message, Producer, highest_offsets};
use serde_json::{Value, json};

use crate::util::production::{Consumed, consume};
use crate::util::{clickhouse_host, kafka_hosts, unique};

/// Settings for a fresh ClickHouse database and/or Kafka prefix (SQLite for the rest).
pub fn production_settings(dir: &std::path::Path, clickhouse: bool, kafka: bool) -> StoreSettings {
    use clap::Parser;
    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        s: StoreSettings,
    }
    let mut args = vec!["x".to_string(), "--data-dir".into(), dir.display().to_string()];
    if clickhouse {
        args.extend(["--clickhouse-host".into(), clickhouse_host(), "--clickhouse-database".into(), unique("phs_t")]);
    }
    if kafka {
        args.extend([
            "--kafka-hosts".into(),
            kafka_hosts(),
            "--kafka-prefix".into(),
            format!("{}_", unique("t")),
            "--kafka-consumer-group".into(),
            unique("g"),
        ]);
    }
    P::try_parse_from(args).expect("settings parse").s
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn event(uuid: &str, team_id: i64, name: &str, distinct_id: &str, ts: &str) -> EventRow {
    EventRow {
        uuid: uuid.into(),
        team_id,
        event: name.into(),
        distinct_id: distinct_id.into(),
        properties: json!({"n": name}).as_object().cloned().unwrap(),
        timestamp: at(ts),
        created_at: at("2024-05-02T00:00:00Z"),
        elements_chain: String::new(),
        person: None,
        groups: Default::default(),
    }
}

/// A batch with every kind of row: three events (one with person and group
/// columns), a person in two versions, its distinct id and a group.
fn batch() -> (SinkBatch, uuid::Uuid) {
    let person = uuid::Uuid::now_v7();
    let mut signed_up =
        event("00000000-0000-0000-0000-000000000001", 7, "signed_up", "d1", "2024-05-01T10:00:00.123456Z");
    signed_up.person = Some(EventPerson {
        uuid: person,
        properties: phs::wire::SharedJson::new(json!({"email": "a@b.c"})),
        created_at: at("2024-04-01T00:00:00.5Z"),
    });
    signed_up.groups[0] = Some(json!({"name": "acme"}));
    let person_row = |version, email: &str| PersonRow {
        uuid: person,
        team_id: 7,
        properties: json!({"email": email}),
        created_at: at("2024-04-01T00:00:00.5Z"),
        is_identified: true,
        is_deleted: false,
        version,
    };
    let batch = SinkBatch {
        events: vec![
            signed_up,
            event("00000000-0000-0000-0000-000000000002", 7, "pageview", "d2", "2024-05-01T11:00:00Z"),
            event("00000000-0000-0000-0000-000000000003", 8, "pageview", "d1", "2024-05-01T09:00:00Z"),
        ],
        persons: vec![person_row(0, "old@b.c"), person_row(1, "a@b.c")],
        distinct_ids: vec![DistinctIdRow {
            team_id: 7,
            distinct_id: "d1".into(),
            person_uuid: person,
            is_deleted: false,
            version: 0,
        }],
        groups: vec![GroupRow {
            team_id: 7,
            group_type_index: 0,
            group_key: "acme".into(),
            properties: json!({"name": "acme"}),
            created_at: at("2024-04-02T00:00:00Z"),
            version: 1,
        }],
    };
    (batch, person)
}

#[tokio::test]
async fn clickhouse_sink_writes_every_row_kind_and_collapses_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let s = production_settings(dir.path(), true, false);
    migrate::run(&s, Mode::Apply, crate::util::LAYOUT).await.unwrap();
    let client = phs::clickhouse::client(&s.clickhouse).unwrap();
    let sink = ClickHouseEvents::new(client.clone());
    let (batch, person) = batch();
    // Written twice, as after a crash between the write and the commit.
    sink.write(&batch).await.unwrap();
    sink.write(&batch).await.unwrap();

    let all = sink.latest(&EventFilter { limit: 100, ..Default::default() }).await.unwrap();
    let uuids: Vec<&str> = all.iter().map(|r| &r.uuid[35..]).collect();
    assert_eq!(uuids, vec!["2", "1", "3"], "once each, newest first");
    let signed_up = &all[1];
    assert_eq!(signed_up, &batch.events[0], "the row reads back as written, microseconds included");
    assert_eq!(all[0].person, None);

    let filtered = |f: EventFilter| {
        let sink = sink.clone();
        async move {
            let rows = sink.latest(&f).await.unwrap();
            rows.into_iter().map(|r| r.uuid[35..].to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(filtered(EventFilter { team_id: Some(7), limit: 100, ..Default::default() }).await, ["2", "1"]);
    assert_eq!(
        filtered(EventFilter { distinct_id: Some("d1".into()), limit: 100, ..Default::default() }).await,
        ["1", "3"]
    );
    assert_eq!(
        filtered(EventFilter { event: Some("pageview".into()), limit: 100, ..Default::default() }).await,
        ["2", "3"]
    );
    assert_eq!(filtered(EventFilter { limit: 1, ..Default::default() }).await, ["2"]);

    let count = |sql: &'static str| {
        let client = client.clone();
        async move { client.query(sql).fetch_one::<u64>().await.unwrap() }
    };
    assert_eq!(count("SELECT count() FROM events FINAL").await, 3);
    assert_eq!(count("SELECT count() FROM person FINAL").await, 1, "one person, its latest version");
    let (props, version): (String, u64) = client
        .query("SELECT properties, version FROM person FINAL WHERE id = ?")
        .bind(person.to_string())
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((serde_json::from_str::<Value>(&props).unwrap(), version), (json!({"email": "a@b.c"}), 1));
    let owner: String = client
        .query("SELECT person_id FROM person_distinct_id2 FINAL WHERE team_id = 7 AND distinct_id = 'd1'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(owner, person.to_string());
    let group: String = client
        .query("SELECT group_properties FROM groups FINAL WHERE team_id = 7 AND group_key = 'acme'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&group).unwrap(), json!({"name": "acme"}));
}

fn json_of(messages: &[Consumed]) -> Vec<Value> {
    messages.iter().map(|m| serde_json::from_slice(&m.payload).unwrap()).collect()
}

#[tokio::test]
async fn clickhouse_topics_carry_the_original_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = production_settings(dir.path(), false, true);
    migrate::run(&s, Mode::Apply, crate::util::LAYOUT).await.unwrap();
    let sink = ClickHouseTopics::new(KafkaProducer::new(&s.kafka).unwrap());
    let (batch, person) = batch();
    sink.write(&batch).await.unwrap();

    let events = consume(&s, &s.kafka.topic("clickhouse_events_json"), 3).await;
    let first = events.iter().find(|m| m.key.as_deref() == Some(&batch.events[0].uuid)).expect("keyed by uuid");
    let e: Value = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(e["timestamp"], "2024-05-01 10:00:00.123456");
    assert_eq!(e["created_at"], "2024-05-02 00:00:00.000000");
    assert_eq!(e["person_created_at"], "2024-04-01 00:00:00.500000");
    assert_eq!(e["person_id"], person.to_string());
    assert_eq!(e["team_id"], 7);
    assert_eq!(e["person_mode"], "full");
    assert_eq!(serde_json::from_str::<Value>(e["properties"].as_str().unwrap()).unwrap(), json!({"n": "signed_up"}));
    assert_eq!(
        serde_json::from_str::<Value>(e["group0_properties"].as_str().unwrap()).unwrap(),
        json!({"name": "acme"})
    );
    assert!(e.get("group1_properties").is_none());

    let persons = json_of(&consume(&s, &s.kafka.topic("clickhouse_person"), 2).await);
    let versions: BTreeSet<i64> = persons.iter().map(|p| p["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, BTreeSet::from([0, 1]));
    let p = &persons[0];
    assert_eq!(
        (p["id"].as_str(), p["is_identified"].as_i64(), p["is_deleted"].as_i64()),
        (Some(&*person.to_string()), Some(1), Some(0))
    );
    assert_eq!(p["created_at"], "2024-04-01 00:00:00.500000");
    assert!(p["properties"].is_string(), "properties are a JSON string: {p}");

    let ids = json_of(&consume(&s, &s.kafka.topic("clickhouse_person_distinct_id"), 1).await);
    assert_eq!(
        ids[0],
        json!({"distinct_id": "d1", "person_id": person.to_string(), "team_id": 7, "version": 0, "is_deleted": 0})
    );
    let groups = json_of(&consume(&s, &s.kafka.topic("clickhouse_groups"), 1).await);
    assert_eq!(
        groups[0],
        json!({"group_type_index": 0, "group_key": "acme", "team_id": 7, "group_properties": "{\"name\":\"acme\"}",
               "created_at": "2024-04-02 00:00:00.000000", "version": 1})
    );
}

/// Polls `source` until `n` messages arrived.
async fn read(source: &mut KafkaSource, n: usize) -> Vec<Message> {
    let mut got = Vec::new();
    crate::util::eventually::eventually(Duration::from_secs(30), &format!("{n} messages"), async || {
        got.extend(source.poll(n - got.len(), Duration::from_millis(500)).await.unwrap());
        (got.len() >= n).then_some(()).ok_or_else(|| format!("{} messages", got.len()))
    })
    .await;
    got
}

/// A Kafka batch spans partitions; committing it must cover every one of
/// them, so a new consumer in the group resumes after all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_commits_every_partition_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = production_settings(dir.path(), false, true);
    migrate::run(&s, Mode::Apply, TopicLayout { partitions: 4, replication: 1 }).await.unwrap();
    let producer = KafkaProducer::new(&s.kafka).unwrap();
    let messages = |from: usize, to: usize| -> Vec<(String, Vec<u8>)> {
        (from..to).map(|i| (format!("key{i}"), format!("m{i}").into_bytes())).collect()
    };
    producer.append(&messages(0, 40)).await.unwrap();

    let mut first = KafkaSource::new(&s.kafka).unwrap();
    let got = read(&mut first, 40).await;
    assert_eq!(got.len(), 40);
    let pos = highest_offsets(&got);
    assert!(pos.len() > 1, "40 keys should land on several of the 4 partitions: {pos:?}");
    first.commit(&pos).await.unwrap();
    // The lag report (phs top) sees the commit on every partition: nothing left behind.
    let report = first.positions().expect("Kafka reports positions").positions().await.unwrap();
    assert_eq!(report.len(), 4, "{report:?}");
    assert_eq!(report.iter().map(|p| p.end).sum::<i64>(), 40, "{report:?}");
    assert!(report.iter().all(|p| p.committed == p.end), "{report:?}");
    drop(first);

    producer.append(&messages(40, 50)).await.unwrap();
    let mut second = KafkaSource::new(&s.kafka).unwrap();
    let got = read(&mut second, 10).await;
    let names: BTreeSet<String> = got.iter().map(|m| String::from_utf8(m.payload.clone()).unwrap()).collect();
    assert_eq!(names, (40..50).map(|i| format!("m{i}")).collect(), "only what came after the commit");
    // Nothing more: an extra poll finds nothing re-delivered.
    assert!(second.poll(100, Duration::from_secs(2)).await.unwrap().is_empty());
    // Not committed: the next reader gets the same ten again (at-least-once).
    drop(second);
    let mut third = KafkaSource::new(&s.kafka).unwrap();
    assert_eq!(read(&mut third, 10).await.len(), 10);
}
