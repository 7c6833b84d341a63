//! Reading a Kafka topic for replay: partitions assigned by hand and seeked
//! to, in a consumer group of replay's own that never commits, so the
//! server's group and its offsets are untouched. The librdkafka consumer
//! blocks, so it runs on a thread of its own and hands batches over a channel.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::{Reader, Selected, Selector, Start};
use crate::config::KafkaSettings;
use crate::replay::ReplayError;

/// Broker calls that should answer at once; past this the broker is unreachable.
const TIMEOUT: Duration = Duration::from_secs(5);
const BATCH: usize = 1000;

pub struct KafkaReader {
    rx: mpsc::Receiver<Result<Vec<Selected>, ReplayError>>,
    total: Option<u64>,
}

/// The partitions to read: from which offset to which (inclusive; None: follow).
type Plan = Vec<(i32, i64, Option<i64>)>;

pub async fn open(settings: &KafkaSettings, topic: &str, selector: &Selector) -> Result<KafkaReader, ReplayError> {
    let Some(mut config) = crate::kafka::client_config(settings) else {
        return Err(ReplayError::Usage("replaying a Kafka topic needs KAFKA_HOSTS".into()));
    };
    config
        .set("group.id", format!("phs-replay-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false");
    let hosts = settings.kafka_hosts.as_ref().map(|h| h.to_string()).unwrap_or_default();
    let topic = settings.topic(topic);
    let until = selector.end.until;
    let selector = selector.clone();
    let (tx, rx) = mpsc::channel(4);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("replay-kafka".into())
        .spawn(move || {
            let consumer: BaseConsumer = match config.create() {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(ReplayError::Failed(format!("cannot create a Kafka consumer: {e}"))));
                    return;
                }
            };
            let plan = match plan(&consumer, &hosts, &topic, &selector) {
                Ok(p) => p,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let total = plan.iter().map(|(_, from, to)| to.map(|to| (to - from + 1).max(0) as u64)).sum();
            if ready_tx.send(Ok(total)).is_err() {
                return;
            }
            read(&consumer, &topic, plan, selector.end.until, &tx);
        })
        .map_err(|e| ReplayError::Failed(format!("cannot start the Kafka reader: {e}")))?;
    let total = ready_rx.await.map_err(|_| ReplayError::Failed("the Kafka reader stopped".into()))??;
    let total = if until.is_some() { None } else { total };
    Ok(KafkaReader { rx, total })
}

/// Checks the topic and partitions, and turns the start and end into offsets.
fn plan(consumer: &BaseConsumer, hosts: &str, topic: &str, selector: &Selector) -> Result<Plan, ReplayError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| ReplayError::Failed(format!("cannot reach the Kafka broker at {hosts}: {e}")))?;
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(ReplayError::Usage(format!("the broker has no topic `{topic}`")));
    };
    if meta.error().is_some() || meta.partitions().is_empty() {
        return Err(ReplayError::Usage(format!("the broker has no topic `{topic}`")));
    }
    let mut all: Vec<i32> = meta.partitions().iter().map(|p| p.id()).collect();
    all.sort_unstable();
    if let Some(p) = selector.partitions.iter().find(|p| !all.contains(p)) {
        return Err(ReplayError::Usage(format!(
            "topic `{topic}` has no partition {p} (its partitions are 0 to {})",
            all.len() - 1
        )));
    }
    let chosen: Vec<i32> = if selector.partitions.is_empty() { all } else { selector.partitions.clone() };
    let unreachable =
        |e: rdkafka::error::KafkaError| ReplayError::Failed(format!("reading `{topic}` from {hosts}: {e}"));
    let by_time = match selector.start {
        Start::Time(t) => {
            let mut list = TopicPartitionList::new();
            for &p in &chosen {
                list.add_partition_offset(topic, p, Offset::Offset(t.timestamp_millis())).map_err(unreachable)?;
            }
            let found = consumer.offsets_for_times(list, TIMEOUT).map_err(unreachable)?;
            found.elements().iter().map(|e| (e.partition(), e.offset())).collect::<HashMap<_, _>>()
        }
        _ => HashMap::new(),
    };
    let mut plan = Vec::new();
    for p in chosen {
        let (low, high) = consumer.fetch_watermarks(topic, p, TIMEOUT).map_err(unreachable)?;
        let from = match selector.start {
            Start::Beginning => low,
            Start::Offset(n) if n < low => {
                return Err(ReplayError::Usage(format!(
                    "offset {n} is older than what partition {p} of `{topic}` retains (it starts at {low})"
                )));
            }
            Start::Offset(n) if n > high => {
                return Err(ReplayError::Usage(format!(
                    "offset {n} is past the end of partition {p} of `{topic}` (its next offset is {high})"
                )));
            }
            Start::Offset(n) => n,
            Start::Time(_) => match by_time.get(&p) {
                Some(Offset::Offset(o)) => *o,
                _ => high,
            },
        };
        let to = match (selector.end.offset, selector.end.follow) {
            (Some(to), _) => Some(to.min(high - 1)),
            (None, true) => None,
            (None, false) => Some(high - 1),
        };
        if let Some(asked) = selector.end.offset
            && asked < from
            && let Start::Offset(_) = selector.start
        {
            return Err(ReplayError::Usage(format!("--to-offset {asked} is before --from-offset {from}")));
        }
        if to.is_none_or(|to| to >= from) {
            plan.push((p, from, to));
        }
    }
    Ok(plan)
}

/// Reads the planned ranges until each partition is done, sending batches.
fn read(
    consumer: &BaseConsumer,
    topic: &str,
    plan: Plan,
    until: Option<DateTime<Utc>>,
    tx: &mpsc::Sender<Result<Vec<Selected>, ReplayError>>,
) {
    let mut list = TopicPartitionList::new();
    for &(p, from, _) in &plan {
        if let Err(e) = list.add_partition_offset(topic, p, Offset::Offset(from)) {
            let _ = tx.blocking_send(Err(ReplayError::Failed(format!("assigning partition {p}: {e}"))));
            return;
        }
    }
    if let Err(e) = consumer.assign(&list) {
        let _ = tx.blocking_send(Err(ReplayError::Failed(format!("assigning the partitions of `{topic}`: {e}"))));
        return;
    }
    let mut open: HashMap<i32, Option<i64>> = plan.iter().map(|&(p, _, to)| (p, to)).collect();
    let mut batch = Vec::new();
    while !open.is_empty() {
        let polled = consumer.poll(Duration::from_millis(100));
        let m = match polled {
            None => {
                if !batch.is_empty() && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                    return;
                }
                if tx.is_closed() {
                    return;
                }
                // A range that ends on an offset never delivered (a transaction
                // marker, a compacted message) ends once the position passes it.
                if let Ok(positions) = consumer.position() {
                    for e in positions.elements() {
                        if let (Offset::Offset(next), Some(Some(to))) = (e.offset(), open.get(&e.partition()))
                            && next > *to
                        {
                            open.remove(&e.partition());
                        }
                    }
                }
                continue;
            }
            Some(Err(e)) => {
                let _ = tx.blocking_send(Err(ReplayError::Failed(format!("reading `{topic}`: {e}"))));
                return;
            }
            Some(Ok(m)) => m,
        };
        let Some(to) = open.get(&m.partition()).copied() else { continue };
        let time = m.timestamp().to_millis().and_then(DateTime::<Utc>::from_timestamp_millis);
        let past_time = until.is_some_and(|u| time.is_some_and(|t| t > u));
        if to.is_some_and(|to| m.offset() > to) || past_time {
            open.remove(&m.partition());
            continue;
        }
        let header = |name: &str| {
            m.headers()?
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let letter = header("reason").map(|reason| (reason, header("detail").unwrap_or_default()));
        batch.push(Selected {
            partition: m.partition(),
            offset: m.offset(),
            payload: m.payload().unwrap_or_default().to_vec(),
            time,
            letter,
        });
        if to == Some(m.offset()) {
            open.remove(&m.partition());
        }
        if batch.len() >= BATCH && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}

#[async_trait::async_trait]
impl Reader for KafkaReader {
    async fn next(&mut self) -> Result<Option<Vec<Selected>>, ReplayError> {
        self.rx.recv().await.transpose()
    }

    fn total(&self) -> Option<u64> {
        self.total
    }
}
