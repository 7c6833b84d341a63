//! Retention of the embedded local logs (ingestion and overflow), which
//! would otherwise grow forever: a periodic sweep deletes the oldest
//! messages once they are older than `PHS_LOG_RETENTION_HOURS` or the file
//! holds more than `PHS_LOG_RETENTION_BYTES`, but only messages that every
//! consumer in `consumer_offsets` has committed, so nothing waiting to be
//! ingested is ever lost. A log no consumer has committed in keeps
//! everything. The newest message always stays, so the log keeps its end
//! offset and `phs replay` can name where the retained log starts.
//!
//! Dead letters go by age too (each is a failure someone should look at,
//! so they are kept as long as the log's messages), and past
//! `PHS_DEAD_LETTER_RETENTION_COUNT` the oldest go: a client sending only
//! malformed events must not fill the disk with their copies.
//!
//! Deletes go in transactions of [`BATCH`] messages from the front of the
//! log, so an append (capture's 200) waits at most one such transaction.
//! Freed pages go to SQLite's free list and are reused by later appends: a
//! log is a queue, so the file stops growing at about its retained size and
//! needs no vacuum (which would rewrite the file while holding the write lock).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::local_log::LocalLog;
use crate::error::PipeError;

/// Messages deleted per transaction. Measured on 200,000 messages of 1 KiB
/// (a debug build, 2 shared cores): the sweep took 3 s, and appends made
/// meanwhile waited at most 14-60 ms, against 7 ms without it.
pub const BATCH: i64 = 1000;

/// The pause between two batches.
const PAUSE: Duration = Duration::from_millis(5);

/// How often the logs are swept in `phs serve`.
pub const EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Messages appended longer ago go (None: no age limit).
    pub max_age: Option<Duration>,
    /// Past this many used bytes in the file, the oldest messages go (None: no size limit).
    pub max_bytes: Option<u64>,
    /// Past this many dead letters, the oldest go (None: no count limit).
    pub max_dead_letters: Option<u64>,
    pub every: Duration,
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub messages: u64,
    /// Bytes of keys and payloads removed.
    pub bytes: u64,
    pub dead_letters: u64,
}

impl Retention {
    /// From the settings (0 turns a limit off; None when both are off), with
    /// the test-only variable `PHS_LOG_RETENTION_SWEEP_MS` (not a flag, so it
    /// stays out of `--help`) for tests that cannot wait a minute.
    pub fn for_serve(hours: u64, bytes: u64, dead_letters: u64) -> Result<Option<Retention>, String> {
        let every = match std::env::var("PHS_LOG_RETENTION_SWEEP_MS") {
            Ok(v) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms >= 10)
                .map(Duration::from_millis)
                .ok_or_else(|| format!("PHS_LOG_RETENTION_SWEEP_MS={v}: expected milliseconds, at least 10"))?,
            Err(_) => EVERY,
        };
        let max_age = (hours > 0).then(|| Duration::from_secs(hours.saturating_mul(3600)));
        let max_bytes = (bytes > 0).then_some(bytes);
        let max_dead_letters = (dead_letters > 0).then_some(dead_letters);
        let any = max_age.is_some() || max_bytes.is_some() || max_dead_letters.is_some();
        Ok(any.then_some(Retention { max_age, max_bytes, max_dead_letters, every }))
    }

    /// Sweeps each log every [`Retention::every`] until `stop`; a failed
    /// sweep is logged and tried again next time (the log only grows meanwhile).
    pub async fn run(self, logs: Vec<(&'static str, LocalLog)>, stop: CancellationToken) {
        loop {
            for (name, log) in &logs {
                match self.sweep(log, &stop).await {
                    Ok(s) if s.messages > 0 || s.dead_letters > 0 => {
                        tracing::info!(
                            log = name,
                            messages = s.messages,
                            bytes = s.bytes,
                            dead_letters = s.dead_letters,
                            "local log retention"
                        )
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(log = name, %err, "local log retention failed; trying again later"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Deletes what the limits allow from the front of the log, in batches,
    /// then the dead letters past their age or count.
    pub async fn sweep(&self, log: &LocalLog, stop: &CancellationToken) -> Result<Swept, PipeError> {
        let mut swept = self.sweep_log(log, stop).await?;
        swept.dead_letters = self.sweep_dead_letters(log, stop).await?;
        Ok(swept)
    }

    async fn sweep_dead_letters(&self, log: &LocalLog, stop: &CancellationToken) -> Result<u64, PipeError> {
        let pool = &log.pool;
        let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as("SELECT min(id), max(id) FROM dead_letters")
            .fetch_one(pool)
            .await
            .map_err(PipeError::sqlx("read the dead letters' range"))?;
        let (Some(first), Some(last)) = (first, last) else { return Ok(0) };
        // Ids only grow, so the newest `max` letters are those above `last - max`.
        let over_count = self.max_dead_letters.map_or(first - 1, |max| last - max as i64);
        let cutoff = self.cutoff().unwrap_or_default();
        let mut deleted = 0;
        let mut from = first;
        while from <= last && !stop.is_cancelled() {
            let to = (from + BATCH - 1).min(last);
            let gone =
                sqlx::query("DELETE FROM dead_letters WHERE id BETWEEN $1 AND $2 AND (id <= $3 OR failed_at < $4)")
                    .bind(from)
                    .bind(to)
                    .bind(over_count)
                    .bind(&cutoff)
                    .execute(pool)
                    .await
                    .map_err(PipeError::sqlx("delete retained-out dead letters"))?
                    .rows_affected();
            deleted += gone;
            // Past the count limit and the old ones, nothing further can go: letters are in time order.
            if gone == 0 && to > over_count {
                break;
            }
            from = to + 1;
            tokio::time::sleep(PAUSE).await;
        }
        Ok(deleted)
    }

    /// Messages and letters appended before this go, in appended_at's own
    /// format (text order is time order).
    fn cutoff(&self) -> Option<String> {
        self.max_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
            .map(|age| (chrono::Utc::now() - age).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    }

    async fn sweep_log(&self, log: &LocalLog, stop: &CancellationToken) -> Result<Swept, PipeError> {
        let pool = &log.pool;
        let (floor, last): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT (SELECT min(committed) FROM consumer_offsets), (SELECT max(offset) FROM log)")
                .fetch_one(pool)
                .await
                .map_err(PipeError::sqlx("read the committed offsets"))?;
        let (Some(floor), Some(last)) = (floor, last) else { return Ok(Swept::default()) };
        let limit = floor.min(last - 1);
        let cutoff = self.cutoff();
        let mut to_free = match self.max_bytes {
            Some(max) => used_bytes(log).await?.saturating_sub(max) as i64,
            None => 0,
        };
        let mut swept = Swept::default();
        while !stop.is_cancelled() {
            let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                "SELECT offset, appended_at, length(key) + length(payload) FROM log \
                 WHERE offset <= $1 ORDER BY offset LIMIT $2",
            )
            .bind(limit)
            .bind(BATCH)
            .fetch_all(pool)
            .await
            .map_err(PipeError::sqlx("read the log's oldest messages"))?;
            let mut end = None;
            for (offset, appended_at, size) in &rows {
                let old = cutoff.as_ref().is_some_and(|c| appended_at < c);
                if !old && to_free <= 0 {
                    break;
                }
                to_free -= size;
                swept.messages += 1;
                swept.bytes += *size as u64;
                end = Some(*offset);
            }
            let Some(end) = end else { break };
            sqlx::query("DELETE FROM log WHERE offset <= $1")
                .bind(end)
                .execute(pool)
                .await
                .map_err(PipeError::sqlx("delete retained-out messages"))?;
            if rows.last().map(|r| r.0) != Some(end) || (rows.len() as i64) < BATCH {
                break;
            }
            // SQLite's write lock is not fair: a pause lets waiting appends take it.
            tokio::time::sleep(PAUSE).await;
        }
        Ok(swept)
    }
}

/// Bytes the file's pages hold now (its size less the free list), WAL included.
pub async fn used_bytes(log: &LocalLog) -> Result<u64, PipeError> {
    let read = |pragma: &'static str| async move {
        sqlx::query_scalar::<_, i64>(pragma).fetch_one(&log.pool).await.map_err(PipeError::sqlx("read the log's size"))
    };
    let (pages, free, size) =
        (read("PRAGMA page_count").await?, read("PRAGMA freelist_count").await?, read("PRAGMA page_size").await?);
    Ok(((pages - free).max(0) * size) as u64)
}
