//! The ingestion pipeline: source -> normalize -> team -> plugins -> prepare
//! -> sink, then commit.
//!
//! A batch is read from the source, each message goes through the stages,
//! the surviving rows are written to the sink, messages that cannot be
//! ingested go to the dead-letter queue, and only then is the batch's last
//! offset committed: at-least-once, never at-most-once. A failed write is
//! retried with backoff before anything is committed, so a sink outage
//! pauses consumption instead of losing events.
//!
//! Today the embedded path runs end to end (local log -> SQLite events).
//! Persons, groups, Kafka as a source, ClickHouse as a sink, ordering per
//! distinct_id across workers and overflow handling are the next steps.

pub mod capture;
pub mod normalize;
pub mod persons;
pub mod plugins;
pub mod prepare;
pub mod sink;
pub mod source;
pub mod team;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use self::plugins::{Outcome, PluginRunner};
use self::sink::{DeadLetter, DeadLetterQueue, EventSink, SinkBatch};
use self::source::Source;
use self::team::TeamCache;
use crate::metrics::{self, Stage, WorkerStats};

/// Messages read per batch.
pub const BATCH: usize = 500;

pub struct Pipeline {
    /// Shared with the capture endpoint, which checks tokens against the same cache.
    pub teams: Arc<TeamCache>,
    pub plugins: Arc<PluginRunner>,
    pub persons: Arc<persons::Persons>,
    pub sink: Arc<dyn EventSink>,
    pub dlq: Arc<dyn DeadLetterQueue>,
    worker: Arc<WorkerStats>,
}

impl Pipeline {
    pub fn new(
        teams: Arc<TeamCache>,
        plugins: Arc<PluginRunner>,
        persons: Arc<persons::Persons>,
        sink: Arc<dyn EventSink>,
        dlq: Arc<dyn DeadLetterQueue>,
    ) -> Self {
        Pipeline { teams, plugins, persons, sink, dlq, worker: metrics::global().worker(0) }
    }

    /// Consumes until `stop` is cancelled, finishing the batch in hand.
    pub async fn run(&self, mut source: Box<dyn Source>, stop: CancellationToken) {
        if let Some(positions) = source.positions() {
            metrics::global().set_positions(positions);
        }
        let w = &self.worker;
        while !stop.is_cancelled() {
            let batch = tokio::select! {
                b = w.timed(Stage::Poll, source.poll(BATCH, Duration::from_millis(200))) => b,
                _ = stop.cancelled() => break,
            };
            let messages = match batch {
                Ok(m) if m.is_empty() => continue,
                Ok(m) => {
                    w.begin_batch(m.len());
                    m
                }
                Err(err) => {
                    tracing::warn!(%err, "reading the source failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // A dependency failing mid-batch (the database, for team lookups)
            // retries the whole batch: nothing is written or committed until it passes.
            let Some((batch, letters)) = self.retry(&stop, "processing a batch", || self.process(&messages)).await
            else {
                return;
            };
            // Written and dead-lettered before the commit; each retried until it succeeds or we stop.
            let (partition, offset) = messages.last().map(|m| (m.partition, m.offset)).expect("non-empty batch");
            let done =
                w.timed(Stage::Write, self.retry(&stop, "write events", || self.sink.write(&batch))).await.is_some()
                    && w.timed(Stage::DeadLetters, self.retry(&stop, "write dead letters", || self.dlq.send(&letters)))
                        .await
                        .is_some()
                    && w.timed(Stage::Commit, self.retry(&stop, "commit", || source.commit(partition, offset)))
                        .await
                        .is_some();
            w.end_batch();
            if done {
                let m = metrics::global();
                m.events_out.add(batch.events.len() as u64);
                letters.iter().for_each(|l| m.dead_letter(l.reason));
            } else {
                break;
            }
        }
    }

    /// Runs the stages on a batch: the rows to write and the dead letters.
    async fn process<'m>(
        &self,
        messages: &'m [source::Message],
    ) -> Result<(SinkBatch, Vec<DeadLetter<'m>>), crate::store::StoreError> {
        let mut batch = SinkBatch::default();
        let mut letters = Vec::new();
        for m in messages {
            let w = &self.worker;
            let decoded = match w.timed_sync(Stage::Normalize, || normalize::decode(&m.payload)) {
                Ok(d) => d,
                Err(e) => {
                    letters.push(DeadLetter {
                        message: m,
                        reason: e.reason(),
                        detail: e.to_string(),
                        stage: "normalize",
                        team_id: None,
                    });
                    continue;
                }
            };
            let Some(team) = w.timed(Stage::Team, self.teams.by_token(&decoded.token)).await? else {
                letters.push(DeadLetter {
                    message: m,
                    reason: "unknown_token",
                    detail: format!("no team has the API token `{}`", decoded.token),
                    stage: "team",
                    team_id: None,
                });
                continue;
            };
            let mut event = decoded.event;
            if team.anonymize_ips {
                event.insert("ip".into(), serde_json::Value::Null);
            }
            match w.timed(Stage::Plugins, self.plugins.process(team.id, event)).await {
                Outcome::Event(e) => {
                    let mut row = prepare::prepare(e, team.id, team.anonymize_ips, chrono::Utc::now());
                    w.timed(Stage::Persons, self.persons.process(&mut row)).await?.into_batch(&mut batch);
                    batch.events.push(row);
                }
                Outcome::Dropped { by } => {
                    metrics::global().dropped("plugin", 1);
                    tracing::debug!(plugin = %by, "event dropped by a plugin")
                }
            }
        }
        Ok((batch, letters))
    }

    /// Retries `op` with backoff (100 ms doubling to 10 s) until it succeeds
    /// or `stop` is cancelled; None when stopped first.
    async fn retry<T, F, Fut, E>(&self, stop: &CancellationToken, what: &str, mut op: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut delay = Duration::from_millis(100);
        loop {
            match op().await {
                Ok(v) => return Some(v),
                Err(err) => tracing::warn!(%err, retry_in_ms = delay.as_millis() as u64, "{what} failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return None,
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
}
