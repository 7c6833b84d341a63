//! The Kafka topics PostHog's ClickHouse consumes (clickhouse_events_json,
//! clickhouse_person, clickhouse_person_distinct_id, clickhouse_groups), in
//! the JSON shape the Node plugin server produced, so phs can take its place
//! in an existing PostHog deployment (PHS_KAFKA_CLICKHOUSE_TOPICS). Times use
//! ClickHouse's format, `YYYY-MM-DD HH:MM:SS.ffffff` in UTC; JSON columns
//! are JSON strings; booleans are 0/1.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{EventFilter, EventRow, EventSink, SinkBatch};
use crate::error::PipeError;
use crate::pipeline::source::producer::{KafkaProducer, Record};
use crate::wire::json_text;
use crate::wire::stored::{clickhouse_time, event_json};

pub struct ClickHouseTopics {
    producer: KafkaProducer,
    events: String,
    person: String,
    distinct_id: String,
    groups: String,
}

impl ClickHouseTopics {
    pub fn new(producer: KafkaProducer) -> Self {
        ClickHouseTopics {
            events: producer.topic(crate::kafka::CLICKHOUSE_EVENTS_TOPIC),
            person: producer.topic("clickhouse_person"),
            distinct_id: producer.topic("clickhouse_person_distinct_id"),
            groups: producer.topic("clickhouse_groups"),
            producer,
        }
    }

    /// Produces `(key, JSON)` messages to `topic` and waits for their delivery.
    async fn send(&self, topic: &str, messages: Vec<(String, Value)>) -> Result<(), PipeError> {
        if messages.is_empty() {
            return Ok(());
        }
        let bytes: Vec<(String, Vec<u8>)> =
            messages.into_iter().map(|(k, v)| (k, serde_json::to_vec(&v).expect("JSON values serialize"))).collect();
        let records: Vec<Record> =
            bytes.iter().map(|(k, p)| Record { key: Some(k), payload: p, headers: Vec::new() }).collect();
        self.producer
            .send(topic, &records)
            .await
            .map_err(|e| PipeError::new(e.kind, "produce to the ClickHouse topics", e))
    }
}

#[async_trait]
impl EventSink for ClickHouseTopics {
    fn mirrors_persons(&self) -> bool {
        true
    }

    async fn write(&self, batch: &SinkBatch) -> Result<(), PipeError> {
        let persons = batch.persons.iter().map(|p| {
            let v = json!({
                "id": p.uuid.to_string(), "created_at": clickhouse_time(&p.created_at),
                "properties": json_text(&p.properties), "team_id": p.team_id,
                "is_identified": i32::from(p.is_identified), "is_deleted": i32::from(p.is_deleted), "version": p.version,
            });
            (p.uuid.to_string(), v)
        });
        self.send(&self.person, persons.collect()).await?;
        let ids = batch.distinct_ids.iter().map(|d| {
            let v = json!({
                "distinct_id": d.distinct_id, "person_id": d.person_uuid.to_string(), "team_id": d.team_id,
                "version": d.version, "is_deleted": i32::from(d.is_deleted),
            });
            (format!("{}:{}", d.team_id, d.distinct_id), v)
        });
        self.send(&self.distinct_id, ids.collect()).await?;
        let groups = batch.groups.iter().map(|g| {
            let v = json!({
                "group_type_index": g.group_type_index, "group_key": g.group_key, "team_id": g.team_id,
                "group_properties": json_text(&g.properties), "created_at": clickhouse_time(&g.created_at),
                "version": g.version,
            });
            (format!("{}:{}:{}", g.team_id, g.group_type_index, g.group_key), v)
        });
        self.send(&self.groups, groups.collect()).await?;
        self.send(&self.events, batch.events.iter().map(|r| (r.uuid.clone(), event_json(r))).collect()).await
    }

    /// The topics are write-only: `phs events list` reads the sink before this one.
    async fn latest(&self, _filter: &EventFilter) -> Result<Vec<EventRow>, PipeError> {
        Ok(Vec::new())
    }
}
