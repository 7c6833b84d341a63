//! The embedded ingestion log: an append-only SQLite table with offsets
//! (`PHS_DATA_DIR/ingestion-log.sqlite3`), standing in for the Kafka topic.
//! Capture appends to it; the pipeline reads it through [`Source`] and
//! commits a consumer offset per consumer name, so a restart resumes where
//! the last committed batch ended and nothing is lost or skipped.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqliteSynchronous};

use super::Source;
use crate::error::{ErrorKind, PipeError};
use crate::migrate::files::EmbeddedFile;
use crate::pipeline::sink::{DeadLetter, DeadLetterQueue};
use crate::wire::{Message, PartitionPosition, Positions, Producer};

/// The log file, shared by the capture side and the consumer.
#[derive(Clone)]
pub struct LocalLog {
    /// Also used by [`super::retention`].
    pub(super) pool: SqlitePool,
}

impl LocalLog {
    pub async fn open(dir: &Path) -> Result<Self, PipeError> {
        Self::open_file(dir, EmbeddedFile::IngestionLog).await
    }

    /// The embedded overflow topic (see [`crate::pipeline::overflow`]).
    pub async fn open_overflow(dir: &Path) -> Result<Self, PipeError> {
        Self::open_file(dir, EmbeddedFile::OverflowLog).await
    }

    /// Opens the file with its schema (migrations/sqlite-log) up to date.
    async fn open_file(dir: &Path, file: EmbeddedFile) -> Result<Self, PipeError> {
        // FULL: an append acknowledged to an SDK must survive power loss, not just a crash.
        let pool = crate::migrate::files::open(file, dir, SqliteSynchronous::Full, 4)
            .await
            .map_err(|e| PipeError::new(ErrorKind::Fatal, "open the ingestion log", e))?;
        Ok(LocalLog { pool })
    }

    /// The offset of the last message appended (0 when empty).
    pub async fn end_offset(&self) -> Result<i64, PipeError> {
        sqlx::query_scalar("SELECT coalesce(max(offset), 0) FROM log")
            .fetch_one(&self.pool)
            .await
            .map_err(PipeError::sqlx("read the log end"))
    }

    /// The last committed offset of a consumer (0 when it never committed).
    pub async fn committed(&self, consumer: &str) -> Result<i64, PipeError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT committed FROM consumer_offsets WHERE consumer = $1")
            .bind(consumer)
            .fetch_optional(&self.pool)
            .await
            .map_err(PipeError::sqlx("read the committed offset"))?;
        Ok(v.unwrap_or(0))
    }

    /// A reader for `consumer`, starting after its committed offset.
    pub async fn consumer(&self, consumer: &str) -> Result<LocalLogSource, PipeError> {
        let position = self.committed(consumer).await?;
        Ok(LocalLogSource { log: self.clone(), consumer: consumer.to_string(), position })
    }
}

#[async_trait]
impl Producer for LocalLog {
    async fn append(&self, messages: &[(String, Vec<u8>)]) -> Result<(), PipeError> {
        let mut tx = self.pool.begin().await.map_err(PipeError::sqlx("begin an append"))?;
        for (key, payload) in messages {
            sqlx::query("INSERT INTO log (key, payload) VALUES ($1, $2)")
                .bind(key)
                .bind(payload)
                .execute(&mut *tx)
                .await
                .map_err(PipeError::sqlx("append to the ingestion log"))?;
        }
        tx.commit().await.map_err(PipeError::sqlx("commit an append"))
    }
}

#[async_trait]
impl DeadLetterQueue for LocalLog {
    async fn send(&self, letters: &[DeadLetter<'_>]) -> Result<(), PipeError> {
        let mut tx = self.pool.begin().await.map_err(PipeError::sqlx("begin a dead-letter write"))?;
        for l in letters {
            sqlx::query(
                "INSERT INTO dead_letters (source_offset, reason, detail, stage, team_id, payload) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(l.message.offset)
            .bind(l.reason)
            .bind(&l.detail)
            .bind(l.stage)
            .bind(l.team_id)
            .bind(&l.message.payload)
            .execute(&mut *tx)
            .await
            .map_err(PipeError::sqlx("write a dead letter"))?;
        }
        tx.commit().await.map_err(PipeError::sqlx("commit dead letters"))
    }
}

impl LocalLog {
    /// Dead letters by reason, for tests and `phs top`.
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, i64)>, PipeError> {
        sqlx::query_as("SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason")
            .fetch_all(&self.pool)
            .await
            .map_err(PipeError::sqlx("count dead letters"))
    }
}

pub struct LocalLogSource {
    log: LocalLog,
    consumer: String,
    /// The offset of the last message handed out.
    position: i64,
}

#[async_trait]
impl Source for LocalLogSource {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, PipeError> {
        let deadline = Instant::now() + wait;
        loop {
            let rows: Vec<(i64, Vec<u8>)> =
                sqlx::query_as("SELECT offset, payload FROM log WHERE offset > $1 ORDER BY offset LIMIT $2")
                    .bind(self.position)
                    .bind(max as i64)
                    .fetch_all(&self.log.pool)
                    .await
                    .map_err(PipeError::sqlx("read the ingestion log"))?;
            if let Some((last, _)) = rows.last() {
                self.position = *last;
                return Ok(rows
                    .into_iter()
                    .map(|(offset, payload)| Message { partition: 0, offset, payload })
                    .collect());
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            // Polling keeps the log a plain table any process can append to
            // (capture may run in another process); 20 ms bounds the added latency.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn commit(&self, positions: &[(i32, i64)]) -> Result<(), PipeError> {
        // The log has one partition (0).
        let Some(offset) = positions.iter().map(|(_, o)| *o).max() else { return Ok(()) };
        sqlx::query(
            "INSERT INTO consumer_offsets (consumer, committed) VALUES ($1, $2) \
             ON CONFLICT (consumer) DO UPDATE SET committed = max(committed, excluded.committed)",
        )
        .bind(&self.consumer)
        .bind(offset)
        .execute(&self.log.pool)
        .await
        .map_err(PipeError::sqlx("commit the consumer offset"))?;
        Ok(())
    }

    fn positions(&self) -> Option<std::sync::Arc<dyn Positions>> {
        Some(std::sync::Arc::new(LocalLogPositions { log: self.log.clone(), consumer: self.consumer.clone() }))
    }
}

/// The topic name the local log reports its one partition under.
pub const TOPIC: &str = "local-log";

struct LocalLogPositions {
    log: LocalLog,
    consumer: String,
}

#[async_trait]
impl Positions for LocalLogPositions {
    async fn positions(&self) -> Result<Vec<PartitionPosition>, PipeError> {
        let committed = self.log.committed(&self.consumer).await?;
        let end = self.log.end_offset().await?;
        Ok(vec![PartitionPosition { topic: TOPIC.into(), partition: 0, committed, end }])
    }
}

/// The two tables of the file that `phs replay` reads by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The messages, by offset.
    Log,
    /// The dead letters, by id.
    DeadLetters,
}

impl Table {
    /// (range, first at a time, rows) queries; the rows have the same
    /// columns for both, a message's reason and detail being NULL.
    fn queries(self) -> [&'static str; 3] {
        match self {
            Table::Log => [
                "SELECT min(offset), max(offset) FROM log",
                "SELECT min(offset) FROM log WHERE appended_at >= $1",
                "SELECT offset AS position, payload, appended_at AS stored_at, NULL AS reason, NULL AS detail \
                 FROM log WHERE offset >= $1 AND offset <= $2 ORDER BY offset LIMIT $3",
            ],
            Table::DeadLetters => [
                "SELECT min(id), max(id) FROM dead_letters",
                "SELECT min(id) FROM dead_letters WHERE failed_at >= $1",
                "SELECT id AS position, payload, failed_at AS stored_at, reason, detail \
                 FROM dead_letters WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT $3",
            ],
        }
    }
}

/// A row as `phs replay` reads it.
#[derive(sqlx::FromRow)]
pub struct Stored {
    /// The message's offset, or the dead letter's id.
    pub position: i64,
    pub payload: Vec<u8>,
    /// When it was appended or dead-lettered (RFC 3339, as SQLite wrote it).
    pub stored_at: String,
    /// A dead letter's reason (NULL for a message).
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// Reading by position, for `phs replay`: never moves a consumer's offset.
impl LocalLog {
    /// The first and last offsets still in the log (None when empty).
    pub async fn retained(&self) -> Result<Option<(i64, i64)>, PipeError> {
        self.range(Table::Log).await
    }

    /// The first and last positions in `table` (None when it is empty).
    pub async fn range(&self, table: Table) -> Result<Option<(i64, i64)>, PipeError> {
        let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(table.queries()[0])
            .fetch_one(&self.pool)
            .await
            .map_err(PipeError::sqlx("read the log's range"))?;
        Ok(first.zip(last))
    }

    /// The first position in `table` stored at or after `at` (RFC 3339), if any.
    pub async fn first_at(&self, table: Table, at: &str) -> Result<Option<i64>, PipeError> {
        sqlx::query_scalar(table.queries()[1])
            .bind(at)
            .fetch_one(&self.pool)
            .await
            .map_err(PipeError::sqlx("find a position by time"))
    }

    /// Up to `limit` rows of `table` with positions in `from..=to`, in order.
    pub async fn read(&self, table: Table, from: i64, to: i64, limit: usize) -> Result<Vec<Stored>, PipeError> {
        sqlx::query_as(table.queries()[2])
            .bind(from)
            .bind(to)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(PipeError::sqlx("read the ingestion log"))
    }

    /// Removes dead letters that were ingested again (`phs replay --reingest`).
    pub async fn remove_dead_letters(&self, ids: &[i64]) -> Result<(), PipeError> {
        let mut tx = self.pool.begin().await.map_err(PipeError::sqlx("begin removing dead letters"))?;
        for id in ids {
            sqlx::query("DELETE FROM dead_letters WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(PipeError::sqlx("remove a dead letter"))?;
        }
        tx.commit().await.map_err(PipeError::sqlx("commit removing dead letters"))
    }
}
