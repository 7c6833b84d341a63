//! The Kafka producer: capture's [`Producer`] in production, and the one
//! client through which the dead-letter topic and the ClickHouse topics are
//! written. Every call waits for the delivery report of each message it
//! sent (acks=all), so Ok means the brokers hold them all.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::KafkaSettings;
use crate::error::{ErrorKind, PipeError};
use crate::wire::Producer;

/// One message to produce.
pub struct Record<'a> {
    /// None lets the partitioner spread the messages.
    pub key: Option<&'a str>,
    pub payload: &'a [u8],
    pub headers: Vec<(&'a str, Vec<u8>)>,
}

#[derive(Clone)]
pub struct KafkaProducer {
    producer: FutureProducer<crate::kafka::QuietErrors>,
    settings: KafkaSettings,
}

impl KafkaProducer {
    /// A producer for the configured brokers; an error when KAFKA_HOSTS is unset.
    pub fn new(settings: &KafkaSettings) -> Result<Self, PipeError> {
        let mut config = crate::kafka::client_config(settings)
            .ok_or_else(|| PipeError::transient("create the Kafka producer", "KAFKA_HOSTS is not set"))?;
        config
            .set("acks", "all")
            // A short linger by default: an SDK request's latency matters more
            // than batching here, and the pipeline's sinks produce whole batches at once anyway.
            .set("linger.ms", settings.kafka_flush_frequency_ms.to_string())
            .set("batch.num.messages", settings.kafka_producer_max_queue_size.to_string())
            .set("batch.size", settings.kafka_max_message_batch_size.min(i32::MAX as u64).to_string())
            // An event over the 1 MB limit must reach the pipeline, which
            // dead-letters it with a reason, rather than fail the SDK request.
            .set("message.max.bytes", (16 * 1024 * 1024).to_string())
            // A broker that stays down surfaces as an error within bounded time.
            .set("message.timeout.ms", "30000");
        let producer = config
            .create_with_context(crate::kafka::QuietErrors)
            .map_err(|e| PipeError::transient("create the Kafka producer", e))?;
        Ok(KafkaProducer { producer, settings: settings.clone() })
    }

    /// A topic name with KAFKA_PREFIX.
    pub fn topic(&self, name: &str) -> String {
        self.settings.topic(name)
    }

    /// Produces keyed messages to `topic` (with its prefix), waiting for every delivery report.
    pub async fn append_to(&self, topic: &str, messages: &[(String, Vec<u8>)]) -> Result<(), PipeError> {
        let records: Vec<Record> =
            messages.iter().map(|(k, p)| Record { key: Some(k), payload: p, headers: Vec::new() }).collect();
        self.send(topic, &records).await
    }

    /// Produces `records` to `topic` and waits for every delivery report.
    pub async fn send(&self, topic: &str, records: &[Record<'_>]) -> Result<(), PipeError> {
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header { key: k, value: Some(v) });
            }
            let mut record = FutureRecord::to(topic).payload(r.payload).headers(headers);
            if let Some(key) = r.key {
                record = record.key(key);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    // librdkafka's local queue is full: wait for deliveries to drain it.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((e, _)) => return Err(PipeError::new(kafka_kind(&e), "produce to Kafka", e)),
                }
            }
        }
        for result in join_all(pending).await {
            match result {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(PipeError::new(kafka_kind(&e), "deliver to Kafka", e)),
                Err(_) => return Err(PipeError::transient("deliver to Kafka", "the producer was dropped")),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    /// Appends to the consumption topic, keyed by `token:distinct_id` so one
    /// person's events stay in order on one partition.
    async fn append(&self, messages: &[(String, Vec<u8>)]) -> Result<(), PipeError> {
        self.append_to(&self.topic(&self.settings.kafka_consumption_topic), messages).await
    }
}

/// A message the broker refuses for its size or shape is the data's fault;
/// everything else (brokers down, timeouts, leaders moving) may pass.
pub fn kafka_kind(e: &KafkaError) -> ErrorKind {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(C::MessageSizeTooLarge | C::InvalidMessage | C::InvalidMessageSize | C::InvalidRecord) => ErrorKind::Data,
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::UnknownTopic,
        ) => ErrorKind::Fatal,
        _ => ErrorKind::Transient,
    }
}
