//! The embedded events store: `PHS_DATA_DIR/events.sqlite3`, queryable with
//! `phs events list` (or sqlite3). Keyed by uuid, so redelivery replaces
//! rather than duplicates, as ReplacingMergeTree does in ClickHouse.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::{EventFilter, EventRow, EventSink, SinkBatch, SinkError};

fn err(context: &'static str) -> impl FnOnce(sqlx::Error) -> SinkError {
    move |e| SinkError { context, source: Box::new(e) }
}

#[derive(Clone)]
pub struct SqliteEvents {
    pool: SqlitePool,
}

impl SqliteEvents {
    pub async fn open(dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SinkError { context: "create the data directory", source: Box::new(e) })?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", dir.join("events.sqlite3").display()))
            .map_err(err("open the events store"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(err("open the events store"))?;
        for ddl in [
            "CREATE TABLE IF NOT EXISTS events (\
               uuid TEXT PRIMARY KEY, team_id INTEGER NOT NULL, event TEXT NOT NULL, distinct_id TEXT NOT NULL, \
               properties TEXT NOT NULL, timestamp TEXT NOT NULL, created_at TEXT NOT NULL, elements_chain TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS events_team_time ON events (team_id, timestamp)",
        ] {
            sqlx::query(ddl).execute(&pool).await.map_err(err("create the events table"))?;
        }
        Ok(SqliteEvents { pool })
    }
}

/// Times are stored as fixed-width RFC 3339 with microseconds, so text order is time order.
fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[async_trait]
impl EventSink for SqliteEvents {
    async fn write(&self, batch: &SinkBatch) -> Result<(), SinkError> {
        let mut tx = self.pool.begin().await.map_err(err("begin an events write"))?;
        for r in &batch.events {
            sqlx::query(
                "INSERT OR REPLACE INTO events (uuid, team_id, event, distinct_id, properties, timestamp, created_at, elements_chain) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&r.uuid)
            .bind(r.team_id)
            .bind(&r.event)
            .bind(&r.distinct_id)
            .bind(r.properties.to_string())
            .bind(ts(&r.timestamp))
            .bind(ts(&r.created_at))
            .bind(&r.elements_chain)
            .execute(&mut *tx)
            .await
            .map_err(err("write events"))?;
        }
        tx.commit().await.map_err(err("commit events"))
    }

    async fn latest(&self, f: &EventFilter) -> Result<Vec<EventRow>, SinkError> {
        let rows: Vec<(String, i64, String, String, String, String, String, String)> = sqlx::query_as(
            "SELECT uuid, team_id, event, distinct_id, properties, timestamp, created_at, elements_chain FROM events \
             WHERE ($1 IS NULL OR team_id = $1) AND ($2 IS NULL OR distinct_id = $2) AND ($3 IS NULL OR event = $3) \
             ORDER BY timestamp DESC, uuid LIMIT $4",
        )
        .bind(f.team_id)
        .bind(&f.distinct_id)
        .bind(&f.event)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(err("read events"))?;
        let parse = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|(uuid, team_id, event, distinct_id, properties, timestamp, created_at, elements_chain)| EventRow {
                uuid,
                team_id,
                event,
                distinct_id,
                properties: serde_json::from_str(&properties).unwrap_or_default(),
                timestamp: parse(&timestamp),
                created_at: parse(&created_at),
                elements_chain,
                person: None,
                groups: Default::default(),
            })
            .collect())
    }
}
