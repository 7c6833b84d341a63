//! Storage: what Postgres holds in production (teams, persons, plugins) behind
//! small traits, with one implementation per backend: [`postgres`] for
//! production and [`sqlite`] for the embedded default.
//!
//! Business rules live above these traits and are written once; a backend
//! only turns calls into SQL. Later an in-memory overlay (for `phs replay`
//! dry runs) can wrap any `Store` the same way.

pub mod definitions;
mod error;
pub mod memory;
pub mod model;
pub mod postgres;
mod rows;
mod sql;
mod sql_definitions;
mod sql_jobs;
mod sql_locks;
mod sql_persons;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{DatabaseBackend, StoreSettings};

pub use definitions::DefinitionStore;
pub use error::{ErrorKind, StoreError};
pub use model::{
    Group, NewPlugin, NewTeam, Person, Plugin, PluginAttachment, PluginConfig, PluginConfigUpdate, PluginLog, Team,
};

pub type Result<T> = std::result::Result<T, StoreError>;

/// Teams (PostHog projects) and their API tokens.
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// Creates a team in the default organization, creating that one if needed.
    async fn create_team(&self, team: NewTeam) -> Result<Team>;
    async fn list_teams(&self) -> Result<Vec<Team>>;
    async fn team_by_token(&self, api_token: &str) -> Result<Option<Team>>;
    async fn team_by_id(&self, id: i64) -> Result<Option<Team>>;
}

/// Everything the pipeline keeps in the relational database.
#[async_trait]
pub trait Store: TeamStore + PluginStore + PluginStorage + PersonStore + JobQueue + DefinitionStore + Locks {
    /// `postgres` or `sqlite`, for logs and health reports.
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
}

/// Opens the configured database. It does not migrate: `phs migrate` does
/// that in production, and the embedded default migrates on open in
/// [`crate::migrate`].
pub async fn connect(settings: &StoreSettings) -> Result<Arc<dyn Store>> {
    Ok(match settings.database() {
        DatabaseBackend::Postgres(url) => Arc::new(postgres::PgStore::connect(&url).await?),
        DatabaseBackend::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(&path).await?),
    })
}

/// Installed plugins, their per-team configs and their log entries.
#[async_trait]
pub trait PluginStore: Send + Sync {
    /// Creates the plugin, or replaces code, schema and capabilities of the one with the same name.
    async fn install_plugin(&self, plugin: &NewPlugin) -> Result<Plugin>;
    async fn list_plugins(&self) -> Result<Vec<Plugin>>;
    /// (filename, text) of every file of the plugin.
    async fn plugin_files(&self, plugin_id: i64) -> Result<Vec<(String, String)>>;
    /// Removes the plugin with its configs, storage and logs; false when there was none.
    async fn remove_plugin(&self, plugin_id: i64) -> Result<bool>;

    /// The team's config of the plugin, created disabled and last in order if missing.
    async fn plugin_config(&self, team_id: i64, plugin_id: i64) -> Result<PluginConfig>;
    async fn update_plugin_config(&self, id: i64, update: &PluginConfigUpdate) -> Result<PluginConfig>;
    /// Configs of one team, or of all, by team then order.
    async fn list_plugin_configs(&self, team_id: Option<i64>) -> Result<Vec<PluginConfig>>;

    /// Stores the attachment of a config field, replacing the one with the same key.
    async fn set_plugin_attachment(&self, config: &PluginConfig, attachment: &PluginAttachment) -> Result<()>;
    /// A config's attachments, by key.
    async fn plugin_attachments(&self, plugin_config_id: i64) -> Result<Vec<PluginAttachment>>;

    async fn append_plugin_logs(&self, entries: &[PluginLog]) -> Result<()>;
    /// Entries of a config after `after` (all when None), oldest first, at most `limit`.
    async fn plugin_logs(
        &self,
        plugin_config_id: i64,
        after: Option<chrono::DateTime<chrono::Utc>>,
        limit: i64,
    ) -> Result<Vec<PluginLog>>;
}

/// A plugin config's persistent key-value storage (`meta.storage`,
/// `utils.cursor`): posthog_pluginstorage in the database, or
/// [`memory::MemoryStorage`] where there is none (`phs plugins test`, and the
/// overlay of replay dry runs).
#[async_trait]
pub trait PluginStorage: Send + Sync {
    async fn storage_get(&self, plugin_config_id: i64, key: &str) -> Result<Option<String>>;
    async fn storage_set(&self, plugin_config_id: i64, key: &str, value: &str) -> Result<()>;
    async fn storage_del(&self, plugin_config_id: i64, key: &str) -> Result<bool>;
    /// Sets the value only if the key is absent; true when it was set.
    async fn storage_set_if_absent(&self, plugin_config_id: i64, key: &str, value: &str) -> Result<bool>;
    /// Atomically adds `by` to an integer value (absent counts as 0) and returns the result.
    async fn storage_incr(&self, plugin_config_id: i64, key: &str, by: i64) -> Result<i64>;
}

/// Persons, their distinct ids, and groups: posthog_person,
/// posthog_persondistinctid, posthog_group and posthog_grouptypemapping.
///
/// Concurrency is optimistic: a write that changes an existing person or
/// group names the version it read, and fails with [`StoreError::Conflict`]
/// when another writer got there first, as does taking a distinct id that
/// someone else just took. The caller re-reads and redoes its decision; the
/// identity rules themselves live in `pipeline::persons`, above this trait.
#[async_trait]
pub trait PersonStore: Send + Sync {
    async fn person_by_distinct_id(&self, team_id: i64, distinct_id: &str) -> Result<Option<Person>>;
    /// The persons of many (team, distinct id) pairs in one query, keyed by
    /// the pair (absent ids have no person). One query for every team of a
    /// batch: a batch spread over thousands of teams made a query per team.
    async fn persons_by_distinct_ids(
        &self,
        ids: &[(i64, &str)],
    ) -> Result<std::collections::HashMap<(i64, String), Person>>;
    /// The person's distinct ids with their versions, oldest first.
    async fn distinct_ids_of(&self, person_id: i64) -> Result<Vec<(String, i64)>>;
    /// In one transaction, all or nothing: creates the new persons, updates
    /// the changed ones (each only if still at the version read) and adds
    /// the distinct ids. Conflict when a version moved, a uuid or distinct id
    /// is taken, or a person an id is added to is gone. Returns the created
    /// persons.
    async fn write_persons(&self, writes: &PersonWrites) -> Result<Vec<Person>>;
    /// In one transaction: writes `target`'s merged fields, moves every
    /// distinct id of `source` to `target` (each version + 1) and deletes
    /// `source`. Both versions are checked. Returns the updated target and
    /// the moved ids with their new versions.
    async fn merge_persons(
        &self,
        target: &Person,
        source: &Person,
        merged: &MergedPerson,
    ) -> Result<(Person, Vec<(String, i64)>)>;

    /// The person of a uuid, if it still exists.
    async fn person_by_uuid(&self, team_id: i64, uuid: uuid::Uuid) -> Result<Option<Person>>;

    /// Records, before they are written, persons whose rows the analytic
    /// sinks must get; returns the mark to clear once they have them. A mark
    /// left behind (the process died between the two) is found by
    /// [`PersonStore::stale_resyncs`] and copied again from the stored state.
    async fn mark_resync(&self, entries: &[ResyncEntry]) -> Result<i64>;
    async fn clear_resyncs(&self, marks: &[i64]) -> Result<()>;
    /// Up to `limit` marks made before `before` (milliseconds since the epoch), oldest first.
    async fn stale_resyncs(&self, before_ms: i64, limit: i64) -> Result<Vec<(i64, Vec<ResyncEntry>)>>;

    /// The index (0-4) of a group type, assigned on first use; None when the
    /// team already has 5 types.
    async fn group_type_index(&self, team_id: i64, group_type: &str) -> Result<Option<i32>>;
    async fn group(&self, team_id: i64, group_type_index: i32, group_key: &str) -> Result<Option<Group>>;
    /// Inserts a new group (`expected_version` None) or updates one still at
    /// `expected_version`; returns what was stored. Conflict otherwise.
    async fn write_group(&self, group: &Group, expected_version: Option<i64>) -> Result<Group>;
}

pub use model::{Job, MergedPerson, NewDistinctId, NewJob, NewPerson, PersonUpdate, PersonWrites, ResyncEntry};

/// Locks that expire unless extended, shared by every instance of the
/// database: the schedule lock of a deployment without Redis.
#[async_trait]
pub trait Locks: Send + Sync {
    /// Takes `key` for `owner` when it is free or expired, or extends it when
    /// `owner` holds it, for `ttl`; true when `owner` holds it afterwards.
    async fn lock(&self, key: &str, owner: &str, ttl: std::time::Duration) -> Result<bool>;
    /// Releases `key` if `owner` holds it; true when it did.
    async fn unlock(&self, key: &str, owner: &str) -> Result<bool>;
}

/// The durable queue of plugin jobs (phs_plugin_job): what plugins enqueue
/// with `meta.jobs`, exportEvents retries, and the written events waiting
/// for onEvent/exportEvents. Delivery is at least once: a job stays until
/// [`JobQueue::finish_job`], and a claim only leases it, so a worker that
/// dies mid-job leaves it to be claimed again when the lease ends.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Adds jobs atomically: all or none.
    async fn enqueue_jobs(&self, jobs: &[NewJob]) -> Result<()>;
    /// Leases up to `limit` jobs due at `now` (oldest first) for `lease`;
    /// instances claiming at once never get the same job.
    async fn claim_jobs(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<Job>>;
    /// Pushes the leases of jobs still being handled to `lease` from `now`
    /// (the worker's heartbeat), so no other worker claims them meanwhile.
    async fn extend_leases(
        &self,
        ids: &[i64],
        now: chrono::DateTime<chrono::Utc>,
        lease: std::time::Duration,
    ) -> Result<()>;
    /// Removes a job that was handled (or given up on).
    async fn finish_job(&self, id: i64) -> Result<()>;
    /// Jobs waiting or running, of one plugin config or of all.
    async fn pending_jobs(&self, plugin_config_id: Option<i64>) -> Result<i64>;
}
