//! The embedded database: the same tables as Postgres in one SQLite file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use crate::store::rows::TeamRow;

use crate::store::model::{DEFAULT_ORGANIZATION, NewTeam, Team};
use crate::store::{Result, Store, StoreError, TeamStore};

mod plugins;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its directory.
    pub async fn open(path: &Path) -> Result<Self> {
        let connect_err =
            |source| StoreError::Connect { backend: "sqlite", location: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| connect_err(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(connect_err)?
            .create_if_missing(true)
            // WAL lets readers (phs events list, phs top) run beside the writer;
            // NORMAL sync is durable across process crashes in WAL mode.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await.map_err(connect_err)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

const TEAM_COLUMNS: &str = "id, uuid, organization_id, name, api_token, anonymize_ips, created_at";

#[async_trait]
impl TeamStore for SqliteStore {
    async fn create_team(&self, team: NewTeam) -> Result<Team> {
        // BEGIN IMMEDIATE takes the write lock up front, so two creators cannot
        // both see "no organization" and create one each.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::query("begin team creation"))?;
        let org: Option<String> = sqlx::query_scalar("SELECT id FROM posthog_organization ORDER BY created_at, id LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query("find the default organization"))?;
        let org = match org {
            Some(id) => id,
            None => {
                let id = Uuid::now_v7().to_string();
                sqlx::query("INSERT INTO posthog_organization (id, name) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(DEFAULT_ORGANIZATION)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("create the default organization"))?;
                id
            }
        };
        let row: TeamRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO posthog_team (uuid, organization_id, api_token, name, anonymize_ips) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {TEAM_COLUMNS}"
        )))
        .bind(Uuid::now_v7().to_string())
        .bind(org)
        .bind(team.token())
        .bind(&team.name)
        .bind(team.anonymize_ips)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::query("insert the team"))?;
        tx.commit().await.map_err(StoreError::query("commit team creation"))?;
        row.try_into()
    }

    async fn list_teams(&self) -> Result<Vec<Team>> {
        let rows: Vec<TeamRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TEAM_COLUMNS} FROM posthog_team ORDER BY id")))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("list teams"))?;
        rows.into_iter().map(Team::try_from).collect()
    }

    async fn team_by_token(&self, api_token: &str) -> Result<Option<Team>> {
        let row: Option<TeamRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TEAM_COLUMNS} FROM posthog_team WHERE api_token = $1")))
                .bind(api_token)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::query("find a team by token"))?;
        row.map(Team::try_from).transpose()
    }

    async fn team_by_id(&self, id: i64) -> Result<Option<Team>> {
        let row: Option<TeamRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {TEAM_COLUMNS} FROM posthog_team WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("find a team by id"))?;
        row.map(Team::try_from).transpose()
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::query("ping sqlite"))?;
        Ok(())
    }
}
