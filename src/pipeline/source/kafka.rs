//! The production source: KAFKA_CONSUMPTION_TOPIC (with KAFKA_PREFIX) read
//! in the consumer group KAFKA_CONSUMER_GROUP. Auto-commit is off; offsets
//! move only through [`Source::commit`], after the sinks hold everything
//! before them. Instances in one group share the partitions; when a
//! rebalance takes a partition away, its offsets are not committed by the
//! old owner and the new owner re-reads from the last commit (at-least-once;
//! the uuid keeps ClickHouse from counting a re-read event twice).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientContext, Message as _, Offset, TopicPartitionList};
use tokio::time::Instant;

use super::Source;
use crate::config::KafkaSettings;
use crate::error::PipeError;
use crate::wire::{Message, PartitionPosition, Positions};

/// After the first message of a batch, how long to wait for more before
/// handing a partial batch on: bounds the added latency.
const FILL_WINDOW: Duration = Duration::from_millis(50);

/// Logs every rebalance, so an operator (or a test) sees which instance owns what.
pub struct RebalanceLog;

impl ClientContext for RebalanceLog {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        crate::kafka::log_client_error(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::log_client_message(level, fac, log_message);
    }
}

impl ConsumerContext for RebalanceLog {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &TopicPartitionList| list.elements().iter().map(|e| e.partition()).collect::<Vec<_>>();
        // The overflow consumer (a group of its own) logs here too: the topic tells them apart.
        let topic =
            |list: &TopicPartitionList| list.elements().first().map(|e| e.topic().to_string()).unwrap_or_default();
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(topic = %topic(list), partitions = ?partitions(list), "kafka partitions assigned")
            }
            Rebalance::Revoke(list) => {
                tracing::info!(topic = %topic(list), partitions = ?partitions(list), "kafka partitions revoked")
            }
            Rebalance::Error(err) => tracing::warn!(%err, "kafka rebalance failed"),
        }
    }
}

pub struct KafkaSource {
    consumer: Arc<StreamConsumer<RebalanceLog>>,
    topic: String,
}

impl KafkaSource {
    /// Joins the consumer group and subscribes to the consumption topic; an
    /// error when KAFKA_HOSTS is unset.
    pub fn new(settings: &KafkaSettings) -> Result<Self, PipeError> {
        Self::subscribe(settings, &settings.kafka_consumption_topic, &settings.kafka_consumer_group)
    }

    /// The overflow topic's consumer, in a group of its own (see [`crate::pipeline::overflow`]).
    pub fn overflow(settings: &KafkaSettings) -> Result<Self, PipeError> {
        Self::subscribe(settings, &settings.overflow_topic(), &format!("{}-overflow", settings.kafka_consumer_group))
    }

    /// The async side's consumer of the stored-events topic `topic`, in the
    /// group KAFKA_CONSUMER_GROUP`-{group}` (see `crate::worker::stream`).
    pub fn stored_events(settings: &KafkaSettings, topic: &str, group: &str) -> Result<Self, PipeError> {
        Self::subscribe(settings, topic, &format!("{}-{group}", settings.kafka_consumer_group))
    }

    /// `topic` is before KAFKA_PREFIX.
    fn subscribe(settings: &KafkaSettings, topic: &str, group: &str) -> Result<Self, PipeError> {
        let mut config = crate::kafka::client_config(settings)
            .ok_or_else(|| PipeError::transient("create the Kafka consumer", "KAFKA_HOSTS is not set"))?;
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // A crashed instance's partitions go to the others after this long.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "2000");
        let consumer: StreamConsumer<RebalanceLog> = config
            .create_with_context(RebalanceLog)
            .map_err(|e| PipeError::transient("create the Kafka consumer", e))?;
        let topic = settings.topic(topic);
        consumer.subscribe(&[&topic]).map_err(|e| PipeError::transient("subscribe to the topic", e))?;
        Ok(KafkaSource { consumer: Arc::new(consumer), topic })
    }
}

#[async_trait]
impl Source for KafkaSource {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, PipeError> {
        let mut batch = Vec::new();
        let mut deadline = Instant::now() + wait;
        while batch.len() < max {
            // A message librdkafka already holds is taken without arming a timer:
            // that costs more than the rest of reading it.
            let ready = match self.consumer.recv().now_or_never() {
                Some(r) => r,
                None => match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                    Err(_) => break,
                    Ok(r) => r,
                },
            };
            let m = match ready {
                Ok(m) => m,
                Err(e) if batch.is_empty() => return Err(PipeError::transient("read the consumption topic", e)),
                // Hand on what was read; the error shows again on the next poll if it lasts.
                Err(_) => break,
            };
            if batch.is_empty() {
                deadline = deadline.min(Instant::now() + FILL_WINDOW);
            }
            // A message without payload becomes an empty one, which the pipeline dead-letters.
            batch.push(Message {
                partition: m.partition(),
                offset: m.offset(),
                payload: m.payload().unwrap_or_default().to_vec(),
            });
        }
        Ok(batch)
    }

    fn positions(&self) -> Option<Arc<dyn Positions>> {
        Some(Arc::new(KafkaPositions { consumer: self.consumer.clone(), topic: self.topic.clone() }))
    }

    async fn commit(&self, positions: &[(i32, i64)]) -> Result<(), PipeError> {
        let owned = self.consumer.assignment().map_err(|e| PipeError::transient("read the partition assignment", e))?;
        let mut offsets = TopicPartitionList::new();
        for &(partition, offset) in positions {
            if owned.find_partition(&self.topic, partition).is_some() {
                offsets
                    .add_partition_offset(&self.topic, partition, Offset::Offset(offset + 1))
                    .map_err(|e| PipeError::transient("build the offsets to commit", e))?;
            } else {
                tracing::info!(partition, offset, "partition no longer assigned; not committing it");
            }
        }
        if offsets.count() == 0 {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        // A synchronous commit blocks on the broker's answer: keep it off the async workers.
        let committed = tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
            .await
            .map_err(|e| PipeError::transient("commit offsets", e))?;
        match committed {
            Err(e) if membership_lost(&e) => {
                // The group went on without this member (its session timed out while the
                // broker was out of reach): no retry of this commit can pass, and retrying
                // forever kept the consumer from polling, which is how it rejoins. The batch
                // is written; whoever owns its partitions now (this instance once it has
                // rejoined) reads them again from the last commit, and the uuids collapse the copies.
                tracing::warn!(err = %e, "the consumer group dropped this member; not committing, the batch is read again");
                Ok(())
            }
            other => other.map_err(|e| PipeError::transient("commit offsets", e)),
        }
    }
}

/// Whether a commit failed because the group no longer counts this member in (or in this generation).
fn membership_lost(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::UnknownMemberId | C::IllegalGeneration | C::RebalanceInProgress | C::FencedInstanceId)
    )
}

/// Committed offsets and high watermarks of the partitions this instance
/// owns, both in Kafka's "next offset" terms, so `end - committed` is the lag.
struct KafkaPositions {
    consumer: Arc<StreamConsumer<RebalanceLog>>,
    topic: String,
}

#[async_trait]
impl Positions for KafkaPositions {
    async fn positions(&self) -> Result<Vec<PartitionPosition>, PipeError> {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        // Both calls ask the broker and block: keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let committed = consumer.committed(timeout)?;
            let mut out = Vec::new();
            for e in committed.elements_for_topic(&topic) {
                let (_, end) = consumer.fetch_watermarks(&topic, e.partition(), timeout)?;
                let committed = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                out.push(PartitionPosition { topic: topic.clone(), partition: e.partition(), committed, end });
            }
            Ok(out)
        })
        .await
        .map_err(|e| PipeError::transient("read the consumer positions", e))?
        .map_err(|e: rdkafka::error::KafkaError| PipeError::transient("read the consumer positions", e))
    }
}
