//! The Kafka topics PostHog's ClickHouse consumes (clickhouse_events_json,
//! clickhouse_person, clickhouse_person_distinct_id, clickhouse_groups), in
//! the JSON shape the Node plugin server produced, so phs can take its place
//! in an existing PostHog deployment (PHS_KAFKA_CLICKHOUSE_TOPICS). Times use
//! ClickHouse's format, `YYYY-MM-DD HH:MM:SS.ffffff` in UTC; JSON columns
//! are JSON strings; booleans are 0/1.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{EventFilter, EventRow, EventSink, SinkBatch};
use crate::error::PipeError;
use crate::pipeline::source::producer::{KafkaProducer, Record};
use crate::wire::json_text;

/// A time as ClickHouse's JSON input reads it.
pub fn clickhouse_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// An events row as `clickhouse_events_json` carries it (PostHog's RawClickHouseEvent).
pub fn event_json(r: &EventRow) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(r.uuid));
    m.insert("event".into(), json!(r.event));
    m.insert("properties".into(), json!(r.properties_json()));
    m.insert("timestamp".into(), json!(clickhouse_time(&r.timestamp)));
    m.insert("team_id".into(), json!(r.team_id));
    m.insert("distinct_id".into(), json!(r.distinct_id));
    m.insert("elements_chain".into(), json!(r.elements_chain));
    m.insert("created_at".into(), json!(clickhouse_time(&r.created_at)));
    if let Some(p) = &r.person {
        m.insert("person_id".into(), json!(p.uuid.to_string()));
        m.insert("person_created_at".into(), json!(clickhouse_time(&p.created_at)));
        m.insert("person_properties".into(), json!(p.properties.text()));
    }
    for (i, g) in r.groups.iter().enumerate() {
        if let Some(g) = g {
            m.insert(format!("group{i}_properties"), json!(json_text(g)));
        }
    }
    m.insert("person_mode".into(), json!(if r.person.is_some() { "full" } else { "propertyless" }));
    Value::Object(m)
}

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
            events: producer.topic("clickhouse_events_json"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_use_clickhouse_format_with_microseconds() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T10:00:00.123456Z").unwrap().with_timezone(&Utc);
        assert_eq!(clickhouse_time(&t), "2024-05-01 10:00:00.123456");
        let whole = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(clickhouse_time(&whole), "2024-05-01 10:00:00.000000");
    }
}
