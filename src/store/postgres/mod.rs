//! The production database: PostHog's Postgres tables through sqlx. The
//! queries themselves are shared with SQLite in [`crate::store::sql`].

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use url::Url;

use crate::config::redact;
use crate::store::{Result, StoreError};

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

/// What the shared queries need to know about Postgres.
mod dialect {
    use sqlx::{PgPool, Postgres, Transaction};

    use crate::store::{Result, StoreError};

    pub type DB = Postgres;

    pub const BIGINT: &str = "::bigint";
    pub const TEXT: &str = "::text";
    pub const JSONB: &str = "::jsonb";
    pub const UUID: &str = "::uuid";
    pub const TIMESTAMPTZ: &str = "::timestamptz";
    pub const NOW: &str = "now()";
    /// Rows another instance is claiming are passed over, not waited for.
    pub const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

    /// A FROM item `ids` with the strings of a JSON array bound as text in
    /// column `column`. Joined (not `IN (SELECT ...)`), so a generic plan
    /// cannot compare every row of a team with every element: that form
    /// took 250 ms a batch once prepared statements went generic.
    pub fn json_strings(param: &str, column: &str) -> String {
        format!("jsonb_array_elements_text({param}::jsonb) AS ids({column})")
    }

    /// A FROM item `v` with one row per object of the JSON array bound at
    /// `param`; `columns` are (name, Postgres type) pairs.
    pub fn json_records(param: &str, columns: &[(&str, &str)]) -> String {
        let cols: Vec<String> = columns.iter().map(|(name, ty)| format!("{name} {ty}")).collect();
        format!("jsonb_to_recordset({param}::jsonb) AS v({})", cols.join(", "))
    }

    /// A transaction holding an advisory lock named `key` until it ends, so
    /// find-or-create steps do not race between instances.
    pub async fn begin_exclusive(pool: &PgPool, key: &str) -> Result<Transaction<'static, Postgres>> {
        let mut tx = pool.begin().await.map_err(StoreError::query("begin a transaction"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("take an advisory lock"))?;
        Ok(tx)
    }
}

crate::store::sql::impl_sql_store!(PgStore, "postgres", dialect);
