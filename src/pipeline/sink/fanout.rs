//! Several event sinks as one: ClickHouse (or SQLite) plus the ClickHouse
//! Kafka topics when PHS_KAFKA_CLICKHOUSE_TOPICS is on. A batch counts as
//! written only when every sink has it; a retry rewrites it to all of them,
//! which is harmless because every sink collapses rewrites by uuid/version.

use std::sync::Arc;

use async_trait::async_trait;

use super::{EventFilter, EventRow, EventSink, SinkBatch};
use crate::error::PipeError;

pub struct Fanout {
    /// The first one answers `latest`.
    sinks: Vec<Arc<dyn EventSink>>,
}

impl Fanout {
    /// Panics on an empty list: there is always a queryable sink first.
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> Self {
        assert!(!sinks.is_empty(), "a fanout needs at least one sink");
        Fanout { sinks }
    }
}

#[async_trait]
impl EventSink for Fanout {
    fn mirrors_persons(&self) -> bool {
        self.sinks.iter().any(|s| s.mirrors_persons())
    }

    async fn write(&self, batch: &SinkBatch) -> Result<(), PipeError> {
        for sink in &self.sinks {
            sink.write(batch).await?;
        }
        Ok(())
    }

    async fn latest(&self, filter: &EventFilter) -> Result<Vec<EventRow>, PipeError> {
        self.sinks[0].latest(filter).await
    }
}
