//! The production database: PostHog's Postgres tables through sqlx.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use url::Url;
use uuid::Uuid;

use crate::store::model::{DEFAULT_ORGANIZATION, NewTeam, Team};
use crate::store::rows::TeamRow;
use crate::store::{Result, Store, StoreError, TeamStore};
use crate::config::redact;

mod plugins;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &Url) -> Result<Self> {
        let connect_err = |source| StoreError::Connect { backend: "postgres", location: redact(url), source };
        let options: PgConnectOptions = url.as_str().parse().map_err(connect_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

const TEAM_COLUMNS: &str = "id::bigint AS id, uuid::text AS uuid, organization_id::text AS organization_id, \
                            name, api_token, anonymize_ips, created_at";

#[async_trait]
impl TeamStore for PgStore {
    async fn create_team(&self, team: NewTeam) -> Result<Team> {
        let mut tx = self.pool.begin().await.map_err(StoreError::query("begin team creation"))?;
        // Serialises the find-or-create of the default organization across instances.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('phs:default-organization'))")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("lock the default organization"))?;
        let org: Option<Uuid> = sqlx::query_scalar("SELECT id FROM posthog_organization ORDER BY created_at, id LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query("find the default organization"))?;
        let org = match org {
            Some(id) => id,
            None => {
                let id = Uuid::now_v7();
                sqlx::query("INSERT INTO posthog_organization (id, name) VALUES ($1, $2)")
                    .bind(id)
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
        .bind(Uuid::now_v7())
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
            .bind(i32::try_from(id).map_err(|_| StoreError::Invalid(format!("team id {id} is out of range")))?)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("find a team by id"))?;
        row.map(Team::try_from).transpose()
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::query("ping postgres"))?;
        Ok(())
    }
}
