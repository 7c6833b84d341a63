//! The embedded events store: `PHS_DATA_DIR/events.sqlite3`, queryable with
//! `phs events list` (or sqlite3). Keyed by uuid, so redelivery replaces
//! rather than duplicates, as ReplacingMergeTree does in ClickHouse. Each
//! event keeps its person (id, properties, created_at) as ClickHouse's
//! events table does.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqlitePool, SqliteSynchronous};

use super::{EventFilter, EventRow, EventSink, SinkBatch};
use crate::error::{ErrorKind, PipeError};
use crate::migrate::files::{EmbeddedFile, open};
use crate::wire::EventPerson;

#[derive(Clone)]
pub struct SqliteEvents {
    pool: SqlitePool,
}

impl SqliteEvents {
    /// Opens `dir`'s events file with its schema (migrations/sqlite-events) up to date.
    pub async fn open(dir: &Path) -> Result<Self, PipeError> {
        // FULL, as the log: the batch's offset is committed (FULL) right after this write, so a write
        // that a power cut could still roll back would leave an acknowledged event neither stored nor
        // read again. One fsync per batch.
        let pool = open(EmbeddedFile::Events, dir, SqliteSynchronous::Full, 4)
            .await
            .map_err(|e| PipeError::new(ErrorKind::Fatal, "open the events store", e))?;
        Ok(SqliteEvents { pool })
    }
}

/// Times are stored as fixed-width RFC 3339 with microseconds, so text order is time order.
fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[async_trait]
impl EventSink for SqliteEvents {
    async fn write(&self, batch: &SinkBatch) -> Result<(), PipeError> {
        let mut tx = self.pool.begin().await.map_err(PipeError::sqlx("begin an events write"))?;
        for r in &batch.events {
            sqlx::query(
                "INSERT OR REPLACE INTO events (uuid, team_id, event, distinct_id, properties, timestamp, created_at, \
                   elements_chain, person_id, person_properties, person_created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&r.uuid)
            .bind(r.team_id)
            .bind(&r.event)
            .bind(&r.distinct_id)
            .bind(r.properties_json())
            .bind(ts(&r.timestamp))
            .bind(ts(&r.created_at))
            .bind(&r.elements_chain)
            .bind(r.person.as_ref().map(|p| p.uuid.to_string()))
            .bind(r.person.as_ref().map(|p| p.properties.text().to_string()))
            .bind(r.person.as_ref().map(|p| ts(&p.created_at)))
            .execute(&mut *tx)
            .await
            .map_err(PipeError::sqlx("write events"))?;
        }
        tx.commit().await.map_err(PipeError::sqlx("commit events"))
    }

    async fn latest(&self, f: &EventFilter) -> Result<Vec<EventRow>, PipeError> {
        let rows: Vec<StoredEvent> = sqlx::query_as(
            "SELECT uuid, team_id, event, distinct_id, properties, timestamp, created_at, elements_chain, \
               person_id, person_properties, person_created_at FROM events \
             WHERE ($1 IS NULL OR team_id = $1) AND ($2 IS NULL OR distinct_id = $2) AND ($3 IS NULL OR event = $3) \
             ORDER BY timestamp DESC, uuid LIMIT $4",
        )
        .bind(f.team_id)
        .bind(&f.distinct_id)
        .bind(&f.event)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(PipeError::sqlx("read events"))?;
        let parse = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|r| EventRow {
                person: r.person_id.as_deref().and_then(|id| uuid::Uuid::parse_str(id).ok()).map(|uuid| EventPerson {
                    uuid,
                    properties: crate::wire::SharedJson::new(
                        r.person_properties.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default(),
                    ),
                    created_at: r.person_created_at.as_deref().map(parse).unwrap_or_default(),
                }),
                uuid: r.uuid,
                team_id: r.team_id,
                event: r.event,
                distinct_id: r.distinct_id,
                properties: serde_json::from_str(&r.properties).unwrap_or_default(),
                timestamp: parse(&r.timestamp),
                created_at: parse(&r.created_at),
                elements_chain: r.elements_chain,
                groups: Default::default(),
            })
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct StoredEvent {
    uuid: String,
    team_id: i64,
    event: String,
    distinct_id: String,
    properties: String,
    timestamp: String,
    created_at: String,
    elements_chain: String,
    person_id: Option<String>,
    person_properties: Option<String>,
    person_created_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_from_before_person_columns_gets_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("events.sqlite3").display());
        let pool = SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TABLE events (uuid TEXT PRIMARY KEY, team_id INTEGER NOT NULL, event TEXT NOT NULL, \
             distinct_id TEXT NOT NULL, properties TEXT NOT NULL, timestamp TEXT NOT NULL, created_at TEXT NOT NULL, \
             elements_chain TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let events = SqliteEvents::open(dir.path()).await.unwrap();
        let mut row = crate::pipeline::prepare::prepare(
            serde_json::json!({"event": "e", "distinct_id": "d", "uuid": uuid::Uuid::now_v7().to_string()})
                .as_object()
                .unwrap()
                .clone(),
            1,
            false,
            Utc::now(),
        );
        let person = EventPerson {
            uuid: uuid::Uuid::now_v7(),
            properties: crate::wire::SharedJson::new(serde_json::json!({"plan": "pro"})),
            created_at: DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z").unwrap().with_timezone(&Utc),
        };
        row.person = Some(person.clone());
        events.write(&SinkBatch { events: vec![row], ..Default::default() }).await.unwrap();
        let read = events.latest(&EventFilter { team_id: None, distinct_id: None, event: None, limit: 10 }).await;
        let stored = read.unwrap().remove(0).person.expect("the person is stored");
        assert_eq!(
            (stored.uuid, &stored.properties, stored.created_at),
            (person.uuid, &person.properties, person.created_at)
        );
    }
}
