//! Storage: what Postgres holds in production (teams, persons, plugins) behind
//! small traits, with one implementation per backend: [`postgres`] for
//! production and [`sqlite`] for the embedded default.
//!
//! Business rules live above these traits and are written once; a backend
//! only turns calls into SQL. Later an in-memory overlay (for `phs replay`
//! dry runs) can wrap any `Store` the same way.

mod error;
pub mod model;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{DatabaseBackend, StoreSettings};

pub use error::{ErrorKind, StoreError};
pub use model::{NewTeam, Team};

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
pub trait Store: TeamStore {
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
