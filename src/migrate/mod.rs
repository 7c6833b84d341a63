//! Schema migrations for every configured store: the relational database
//! (sqlx migrations in migrations/postgres or migrations/sqlite), the
//! embedded events store and logs ([`files`]: migrations/sqlite-events and
//! migrations/sqlite-log, one file each), ClickHouse (migrations/clickhouse,
//! tracked in a table of its own) and Kafka topics.
//!
//! Every step is idempotent, so `phs migrate` can run on each deploy and
//! twice in a row. A dry run reports what would change without changing it.

mod clickhouse;
pub mod files;
mod kafka;
pub mod recover;
mod sql;

use serde::Serialize;
use thiserror::Error;

use crate::config::{DatabaseBackend, StoreSettings};

/// One migration or topic and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `postgres`, `sqlite`, `clickhouse` or `kafka`.
    pub target: &'static str,
    /// e.g. `0001 posthog core` or a topic name.
    pub name: String,
    pub state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Already in place before this run.
    Done,
    /// Missing; a dry run or `--status` reports it.
    Pending,
    /// Put in place by this run.
    Applied,
}

#[derive(Debug, Error)]
pub enum MigrateError {
    #[error("{target}: {message}")]
    Failed { target: &'static str, message: String },
}

impl MigrateError {
    fn new(target: &'static str, e: impl std::fmt::Display) -> Self {
        MigrateError::Failed { target, message: format!("{e:#}") }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report only (`--status` and `--dry-run`).
    Check,
    Apply,
}

/// Kafka topic layout used when topics are created.
#[derive(Debug, Clone, Copy)]
pub struct TopicLayout {
    pub partitions: i32,
    pub replication: i32,
}

/// Migrates (or checks) every store the settings configure.
pub async fn run(settings: &StoreSettings, mode: Mode, topics: TopicLayout) -> Result<Vec<Step>, MigrateError> {
    let mut steps = database(settings, mode).await?;
    for file in embedded_files(settings) {
        steps.extend(files::steps(file, &settings.data_dir, mode).await?);
    }
    if settings.clickhouse.clickhouse_host.is_some() {
        steps.extend(clickhouse::run(&settings.clickhouse, mode).await?);
    }
    if settings.kafka.kafka_hosts.is_some() {
        steps.extend(kafka::run(&settings.kafka, mode, topics).await?);
    }
    Ok(steps)
}

/// The embedded files the settings put to use: the events store without
/// ClickHouse, the ingestion and overflow logs without Kafka.
fn embedded_files(settings: &StoreSettings) -> Vec<files::EmbeddedFile> {
    let mut in_use = Vec::new();
    if settings.clickhouse.clickhouse_host.is_none() {
        in_use.push(files::EmbeddedFile::Events);
    }
    if settings.kafka.kafka_hosts.is_none() {
        in_use.extend([files::EmbeddedFile::IngestionLog, files::EmbeddedFile::OverflowLog]);
    }
    in_use
}

/// Migrates (or checks) the relational database alone.
pub async fn database(settings: &StoreSettings, mode: Mode) -> Result<Vec<Step>, MigrateError> {
    match settings.database() {
        DatabaseBackend::Postgres(url) => sql::postgres(&url, mode).await,
        DatabaseBackend::Sqlite(path) => sql::sqlite(&path, mode).await,
    }
}

/// Checks the stores `phs serve` writes through a schema of phs's: the
/// production database and, when reachable, ClickHouse. (The Kafka topics are checked by
/// the broker itself: producing to a missing one fails with its name.) The
/// embedded files in use are checked, and recovered when damaged, if the
/// last serve did not stop cleanly ([`recover`]); serve opens them after this.
pub async fn check_for_serve(settings: &StoreSettings) -> Result<Vec<Step>, MigrateError> {
    let files = embedded_files(settings);
    if !files.is_empty() {
        recover::at_serve_start(&settings.data_dir, &files).await?;
    }
    let mut steps = match settings.database_url {
        Some(_) => database(settings, Mode::Check).await?,
        None => Vec::new(),
    };
    match clickhouse::run(&settings.clickhouse, Mode::Check).await {
        Ok(more) => steps.extend(more),
        // ClickHouse down is an outage, not a deploy mistake: serve starts, the
        // sink retries, and readiness says what is missing.
        Err(err) => tracing::warn!(%err, "cannot check the ClickHouse schema now; starting anyway"),
    }
    Ok(steps)
}

/// Brings the embedded database up to date; `phs serve` calls it so the
/// embedded default needs no separate migrate step.
pub async fn embedded(settings: &StoreSettings) -> Result<Vec<Step>, MigrateError> {
    match settings.database() {
        DatabaseBackend::Sqlite(path) => sql::sqlite(&path, Mode::Apply).await,
        DatabaseBackend::Postgres(_) => Ok(Vec::new()),
    }
}

/// Steps not yet in place.
pub fn pending(steps: &[Step]) -> impl Iterator<Item = &Step> {
    steps.iter().filter(|s| s.state == State::Pending)
}
