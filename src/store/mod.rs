//! Storage: what Postgres holds in production (teams, persons, plugins) behind
//! small traits, with one implementation per backend: [`postgres`] for
//! production and [`sqlite`] for the embedded default.
//!
//! Business rules live above these traits and are written once; a backend
//! only turns calls into SQL. Later an in-memory overlay (for `phs replay`
//! dry runs) can wrap any `Store` the same way.

mod error;
pub mod memory;
pub mod model;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{DatabaseBackend, StoreSettings};

pub use error::{ErrorKind, StoreError};
pub use model::{NewPlugin, NewTeam, Plugin, PluginConfig, PluginConfigUpdate, PluginLog, Team};

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
pub trait Store: TeamStore + PluginStore + PluginStorage {
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
