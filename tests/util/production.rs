//! A production deployment of its own for one test: a fresh Postgres
//! database, ClickHouse database, topic prefix and consumer group, migrated
//! with `phs migrate`; and a reader that collects a topic in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use phs::config::StoreSettings;
use phs::pipeline::source::producer::KafkaProducer;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

use std::collections::{HashMap, HashSet};

use super::eventually::eventually;

use phs::config::StoreSettings as Settings;
use rdkafka::message::Headers;
use serde_json::json;

use super::{clickhouse_host, fresh_postgres_db, kafka_hosts, unique};

pub struct Deployment {
    pub env: Vec<(&'static str, String)>,
    pub settings: StoreSettings,
    pub dir: tempfile::TempDir,
}

impl Deployment {
    /// A migrated deployment of its own (8 partitions, `phs migrate`'s default).
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// Like [`Deployment::new`], with some settings replaced or added (a
    /// service reached through a proxy, REDIS_URL) before it is migrated.
    pub async fn with(overrides: &[(&'static str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![
            ("DATABASE_URL", fresh_postgres_db().await),
            ("CLICKHOUSE_HOST", clickhouse_host()),
            ("CLICKHOUSE_DATABASE", unique("phs_t")),
            ("KAFKA_HOSTS", kafka_hosts()),
            ("KAFKA_PREFIX", format!("{}_", unique("t"))),
            ("KAFKA_CONSUMER_GROUP", unique("g")),
            ("PHS_DATA_DIR", dir.path().display().to_string()),
        ];
        for (key, value) in overrides {
            env.retain(|(k, _)| k != key);
            env.push((key, value.clone()));
        }
        let settings = {
            use clap::Parser;
            #[derive(Parser)]
            struct P {
                #[command(flatten)]
                s: StoreSettings,
            }
            let args = env.iter().flat_map(|(k, v)| [format!("--{}", k.to_lowercase().replace('_', "-")), v.clone()]);
            let args: Vec<String> =
                std::iter::once("x".to_string()).chain(args).map(|a| a.replace("--phs-", "--")).collect();
            P::try_parse_from(args).expect("settings parse").s
        };
        let d = Deployment { env, settings, dir };
        d.cli(&["migrate"]);
        d
    }

    /// The uuids in ClickHouse (after FINAL) once they include all of `expected`,
    /// and how many rows FINAL returns (one per uuid when redelivery collapsed).
    pub async fn wait_for_uuids(&self, expected: &HashSet<String>) -> (HashSet<String>, usize) {
        let client = phs::clickhouse::client(&self.settings.clickhouse).unwrap();
        let all = format!("all {} events in ClickHouse", expected.len());
        eventually(Duration::from_secs(90), &all, || async {
            let rows: Vec<String> = client.query("SELECT uuid FROM events FINAL").fetch_all().await.unwrap();
            let stored: HashSet<String> = rows.iter().cloned().collect();
            if expected.is_subset(&stored) {
                return Ok((stored, rows.len()));
            }
            let missing = expected.difference(&stored).count();
            Err(format!("{missing} of {} events missing from ClickHouse", expected.len()))
        })
        .await
    }

    /// `phs ARGS` against this deployment, which must succeed: its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        super::phs_ok(&self.env, args)
    }

    pub fn producer(&self) -> KafkaProducer {
        KafkaProducer::new(&self.settings.kafka).unwrap()
    }

    /// Collects every message of `topic` (prefixed) from the start, in the
    /// background, into the returned list, until the list is dropped.
    pub fn read_topic(&self, topic: &str) -> TopicReader {
        let mut config = phs::kafka::client_config(&self.settings.kafka).unwrap();
        config.set("group.id", unique("reader")).set("auto.offset.reset", "earliest");
        let consumer: StreamConsumer = config.create().unwrap();
        consumer.subscribe(&[&self.settings.kafka.topic(topic)]).unwrap();
        let got: Arc<Mutex<Vec<Read>>> = Arc::default();
        let sink = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await else { continue };
                let headers = m
                    .headers()
                    .map(|h| {
                        use rdkafka::message::Headers;
                        h.iter()
                            .map(|h| {
                                (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                sink.lock().unwrap().push(Read { payload: m.payload().unwrap_or_default().to_vec(), headers });
            }
        });
        TopicReader { got, task }
    }
}

/// One message read from a topic: its payload and headers.
#[derive(Clone)]
pub struct Read {
    pub payload: Vec<u8>,
    pub headers: std::collections::HashMap<String, String>,
}

pub struct TopicReader {
    got: Arc<Mutex<Vec<Read>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TopicReader {
    /// The messages read so far.
    pub fn read(&self) -> Vec<Read> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for TopicReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A message in the capture format, as produced straight to the topic.
pub fn capture_message(token: &str, event: &str, distinct_id: &str) -> (String, Vec<u8>, String) {
    let uuid = uuid::Uuid::now_v7().to_string();
    let m = json!({"uuid": uuid, "distinct_id": distinct_id, "ip": "10.0.0.1", "site_url": "http://x",
                   "data": json!({"event": event, "properties": {"direct": true}}).to_string(), "token": token,
                   "now": "2024-05-01T12:00:00Z", "sent_at": null});
    (format!("{token}:{distinct_id}"), m.to_string().into_bytes(), uuid)
}

/// A message read back from a topic.
pub struct Consumed {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Reads `n` messages from `topic` from the start.
pub async fn consume(s: &Settings, topic: &str, n: usize) -> Vec<Consumed> {
    let mut config = phs::kafka::client_config(&s.kafka).unwrap();
    config.set("group.id", unique("reader")).set("auto.offset.reset", "earliest");
    let consumer: StreamConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages on {topic} after 30 s", out.len()))
            .unwrap();
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Consumed {
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    out
}
