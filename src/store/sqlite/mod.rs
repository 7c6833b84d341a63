//! The embedded database: the same tables as Postgres in one SQLite file.
//! The queries themselves are shared with Postgres in [`crate::store::sql`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::store::{Result, StoreError};

mod busy;

pub struct SqliteStore {
    pool: SqlitePool,
}

/// How long a write waits for another connection's write to end before it
/// fails as busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating it and its directory if needed) an embedded SQLite file the way every one
/// of phs's is opened: WAL, so readers (phs events list, phs top) run beside
/// the writer; [`BUSY_TIMEOUT`], waited out in short steps (`busy.rs`); foreign keys on. `sync` is NORMAL where a
/// process crash is the concern (durable in WAL mode) and FULL where an
/// acknowledged write must survive power loss.
pub async fn open_pool(
    path: &Path,
    sync: SqliteSynchronous,
    max_connections: u32,
) -> std::result::Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .after_connect(|conn, _| Box::pin(busy::install(conn)))
        .connect_with(options)
        .await
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its directory.
    pub async fn open(path: &Path) -> Result<Self> {
        let connect_err =
            |source| StoreError::Connect { backend: "sqlite", location: path.display().to_string(), source };
        let pool = open_pool(path, SqliteSynchronous::Normal, 8).await.map_err(connect_err)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// What the shared queries need to know about SQLite, whose columns hold
/// text: no casts are needed.
mod dialect {
    use sqlx::{Sqlite, SqlitePool, Transaction};

    use crate::store::{Result, StoreError};

    pub type DB = Sqlite;

    pub const BIGINT: &str = "";
    pub const TEXT: &str = "";
    pub const JSONB: &str = "";
    pub const UUID: &str = "";
    pub const TIMESTAMPTZ: &str = "";
    pub const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    /// Not needed: SQLite's single writer makes a claiming UPDATE atomic.
    pub const SKIP_LOCKED: &str = "";

    /// A FROM item `ids` with the strings of a JSON array bound as text in
    /// column `column`.
    pub fn json_strings(param: &str, column: &str) -> String {
        format!("(SELECT value AS {column} FROM json_each({param})) AS ids")
    }

    /// A FROM item `v` with one row per object of the JSON array bound at
    /// `param`; the types are Postgres's and not needed here (an object
    /// comes out as its JSON text, which is how SQLite stores JSON).
    pub fn json_records(param: &str, columns: &[(&str, &str)]) -> String {
        let cols: Vec<String> =
            columns.iter().map(|(name, _)| format!("json_extract(value, '$.{name}') AS {name}")).collect();
        format!("(SELECT {} FROM json_each({param})) AS v", cols.join(", "))
    }

    /// BEGIN IMMEDIATE takes the database's write lock up front, which is
    /// what serialises find-or-create steps here (the key is not needed).
    pub async fn begin_exclusive(pool: &SqlitePool, _key: &str) -> Result<Transaction<'static, Sqlite>> {
        pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::query("begin a transaction"))
    }
}

crate::store::sql::impl_sql_store!(SqliteStore, "sqlite", dialect);
