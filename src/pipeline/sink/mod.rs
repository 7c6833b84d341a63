//! Where processed events go: ClickHouse in production, SQLite when
//! embedded, optionally also the Kafka topics PostHog's ClickHouse consumes
//! (several sinks at once through `fanout`); and the dead-letter queue for
//! messages that cannot be ingested (a table of the local log, or a topic).

pub mod clickhouse;
pub mod dlq_topic;
pub mod fanout;
pub mod rows;
pub mod sqlite;
pub mod topics;

use async_trait::async_trait;

use crate::error::PipeError;

pub use self::rows::{DistinctIdRow, GroupRow, PersonRow, SinkBatch};
use crate::wire::EventRow;
use crate::wire::Message;

/// The events store the settings choose: ClickHouse with CLICKHOUSE_HOST,
/// else SQLite in PHS_DATA_DIR. One choice for `phs serve` and `phs events list`.
pub async fn events_store(settings: &crate::config::StoreSettings) -> Result<std::sync::Arc<dyn EventSink>, PipeError> {
    Ok(match crate::clickhouse::client(&settings.clickhouse) {
        Some(client) => std::sync::Arc::new(clickhouse::ClickHouseEvents::new(client)),
        None => std::sync::Arc::new(sqlite::SqliteEvents::open(&settings.data_dir).await?),
    })
}

#[async_trait]
pub trait EventSink: Send + Sync {
    /// Writes a batch durably; re-writing an event with the same uuid (or a
    /// person row with the same version) replaces it, so a redelivered batch
    /// does not duplicate anything. A sink may ignore what it does not mirror
    /// (the embedded one keeps persons in the relational store only).
    async fn write(&self, batch: &SinkBatch) -> Result<(), PipeError>;
    /// Whether it keeps copies of persons, which must follow the relational
    /// store's (see `persons::resync`).
    fn mirrors_persons(&self) -> bool {
        false
    }
    /// The latest events, newest first, for `phs events list`.
    async fn latest(&self, filter: &EventFilter) -> Result<Vec<EventRow>, PipeError>;
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub team_id: Option<i64>,
    pub distinct_id: Option<String>,
    pub event: Option<String>,
    pub limit: i64,
}

/// A message that cannot be ingested, kept with why and where it failed.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub message: &'a Message,
    /// A stable label, e.g. `malformed_data`, `unknown_token`.
    pub reason: &'a str,
    pub detail: String,
    /// The stage that refused it, e.g. `normalize`, `team`.
    pub stage: &'a str,
    pub team_id: Option<i64>,
}

#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    async fn send(&self, letters: &[DeadLetter<'_>]) -> Result<(), PipeError>;
}
