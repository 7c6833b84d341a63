//! The embedded files beside the database, each with a schema of its own in
//! migrations/: the events store (migrations/sqlite-events) when ClickHouse
//! is not configured, and the ingestion and overflow logs
//! (migrations/sqlite-log) when Kafka is not. Their owners open them through
//! [`open`], which brings the schema up to date; `phs migrate` reports and
//! applies the same steps through [`steps`].

use std::path::{Path, PathBuf};

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteSynchronous;

use super::{MigrateError, Mode, Step};

static EVENTS: Migrator = sqlx::migrate!("migrations/sqlite-events");
static LOG: Migrator = sqlx::migrate!("migrations/sqlite-log");

/// An embedded file in PHS_DATA_DIR other than the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedFile {
    Events,
    IngestionLog,
    OverflowLog,
}

impl EmbeddedFile {
    /// Its file name, which is also its target in `phs migrate`'s steps.
    pub fn name(self) -> &'static str {
        match self {
            EmbeddedFile::Events => "events.sqlite3",
            EmbeddedFile::IngestionLog => "ingestion-log.sqlite3",
            EmbeddedFile::OverflowLog => "overflow-log.sqlite3",
        }
    }

    pub fn path(self, data_dir: &Path) -> PathBuf {
        data_dir.join(self.name())
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            EmbeddedFile::Events => &EVENTS,
            EmbeddedFile::IngestionLog | EmbeddedFile::OverflowLog => &LOG,
        }
    }
}

/// Opens `file` in `data_dir` (creating it) with its schema up to date.
pub async fn open(
    file: EmbeddedFile,
    data_dir: &Path,
    sync: SqliteSynchronous,
    max_connections: u32,
) -> Result<SqlitePool, MigrateError> {
    open_at(file, &file.path(data_dir), sync, max_connections).await
}

/// Opens `file`'s schema at another path (a file being recovered, see [`super::recover`]).
pub(super) async fn open_at(
    file: EmbeddedFile,
    path: &Path,
    sync: SqliteSynchronous,
    max_connections: u32,
) -> Result<SqlitePool, MigrateError> {
    let pool = crate::store::sqlite::open_pool(path, sync, max_connections)
        .await
        .map_err(|e| MigrateError::new(file.name(), e))?;
    migrate(file, &pool, Mode::Apply).await?;
    Ok(pool)
}

/// Checks or applies `file`'s migrations, for `phs migrate`.
pub async fn steps(file: EmbeddedFile, data_dir: &Path, mode: Mode) -> Result<Vec<Step>, MigrateError> {
    let pool = crate::store::sqlite::open_pool(&file.path(data_dir), SqliteSynchronous::Normal, 1)
        .await
        .map_err(|e| MigrateError::new(file.name(), e))?;
    let steps = migrate(file, &pool, mode).await;
    pool.close().await;
    steps
}

async fn migrate(file: EmbeddedFile, pool: &SqlitePool, mode: Mode) -> Result<Vec<Step>, MigrateError> {
    if file == EmbeddedFile::Events && mode == Mode::Apply {
        adopt_person_columns(pool).await.map_err(|e| MigrateError::new(file.name(), e))?;
    }
    super::sql::migrate(file.name(), file.migrator(), pool, mode).await
}

/// Events files made before this schema moved into migrations/ have the
/// table and no record of it; 0001 is harmless there (IF NOT EXISTS), but
/// 0002 adds the person columns, which most such files already have, and
/// SQLite has no ADD COLUMN IF NOT EXISTS. So a file that has them gets
/// 0002 recorded as applied, as sqlx itself records it, and the migrator
/// adds them only where they are missing.
async fn adopt_person_columns(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    use sqlx::migrate::Migrate;
    let Some(persons) = EVENTS.iter().find(|m| m.version == 2 && m.migration_type.is_up_migration()) else {
        return Ok(());
    };
    let columns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pragma_table_info('events') \
         WHERE name IN ('person_id', 'person_properties', 'person_created_at')",
    )
    .fetch_one(pool)
    .await?;
    if columns < 3 {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    conn.ensure_migrations_table("_sqlx_migrations").await.map_err(sqlx::Error::from)?;
    sqlx::query(
        "INSERT OR IGNORE INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, TRUE, $3, 0)",
    )
    .bind(persons.version)
    .bind(persons.description.as_ref())
    .bind(persons.checksum.as_ref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::State;

    /// The events table as builds before migrations/sqlite-events left it, with or without the person columns.
    async fn legacy_events_file(dir: &Path, person_columns: bool) {
        let pool = crate::store::sqlite::open_pool(&EmbeddedFile::Events.path(dir), SqliteSynchronous::Normal, 1)
            .await
            .unwrap();
        let persons =
            if person_columns { ", person_id TEXT, person_properties TEXT, person_created_at TEXT" } else { "" };
        let ddl = format!(
            "CREATE TABLE events (uuid TEXT PRIMARY KEY, team_id INTEGER NOT NULL, event TEXT NOT NULL, \
             distinct_id TEXT NOT NULL, properties TEXT NOT NULL, timestamp TEXT NOT NULL, created_at TEXT NOT NULL, \
             elements_chain TEXT NOT NULL{persons})"
        );
        sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(&pool).await.unwrap();
        let values = if person_columns { ", NULL, NULL, NULL" } else { "" };
        let insert = format!("INSERT INTO events VALUES ('u1', 1, 'old', 'd', '{{}}', 't', 't', ''{values})");
        sqlx::query(sqlx::AssertSqlSafe(insert)).execute(&pool).await.unwrap();
        pool.close().await;
    }

    async fn columns_and_rows(pool: &SqlitePool) -> (Vec<String>, i64) {
        let columns = sqlx::query_scalar("SELECT name FROM pragma_table_info('events')").fetch_all(pool).await.unwrap();
        let rows = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.unwrap();
        (columns, rows)
    }

    const COLUMNS: [&str; 11] = [
        "uuid",
        "team_id",
        "event",
        "distinct_id",
        "properties",
        "timestamp",
        "created_at",
        "elements_chain",
        "person_id",
        "person_properties",
        "person_created_at",
    ];

    #[tokio::test]
    async fn a_fresh_events_file_gets_the_whole_schema_and_a_second_open_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open(EmbeddedFile::Events, dir.path(), SqliteSynchronous::Normal, 1).await.unwrap();
        assert_eq!(columns_and_rows(&pool).await, (COLUMNS.map(String::from).to_vec(), 0));
        pool.close().await;
        let again = steps(EmbeddedFile::Events, dir.path(), Mode::Check).await.unwrap();
        assert!(again.iter().all(|s| s.state == State::Done && s.target == "events.sqlite3"), "{again:?}");
        assert_eq!(again.len(), 2);
    }

    #[tokio::test]
    async fn an_unrecorded_events_file_with_its_person_columns_is_adopted_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        legacy_events_file(dir.path(), true).await;
        let pool = open(EmbeddedFile::Events, dir.path(), SqliteSynchronous::Normal, 1).await.unwrap();
        assert_eq!(columns_and_rows(&pool).await, (COLUMNS.map(String::from).to_vec(), 1), "the row is kept");
        pool.close().await;
        let after = steps(EmbeddedFile::Events, dir.path(), Mode::Check).await.unwrap();
        assert!(after.iter().all(|s| s.state == State::Done), "{after:?}");
    }

    #[tokio::test]
    async fn an_unrecorded_events_file_without_person_columns_gets_them() {
        let dir = tempfile::tempdir().unwrap();
        legacy_events_file(dir.path(), false).await;
        let before = steps(EmbeddedFile::Events, dir.path(), Mode::Check).await.unwrap();
        assert!(before.iter().all(|s| s.state == State::Pending), "--status reports the unrecorded schema: {before:?}");
        let pool = open(EmbeddedFile::Events, dir.path(), SqliteSynchronous::Normal, 1).await.unwrap();
        assert_eq!(columns_and_rows(&pool).await, (COLUMNS.map(String::from).to_vec(), 1), "the row is kept");
    }

    #[tokio::test]
    async fn an_unrecorded_log_file_keeps_its_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = EmbeddedFile::IngestionLog.path(dir.path());
        let pool = crate::store::sqlite::open_pool(&path, SqliteSynchronous::Normal, 1).await.unwrap();
        for ddl in [
            "CREATE TABLE log (offset INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, payload BLOB NOT NULL, \
             appended_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
            "CREATE TABLE consumer_offsets (consumer TEXT PRIMARY KEY, committed INTEGER NOT NULL)",
            "INSERT INTO log (key, payload) VALUES ('k', x'7b7d')",
        ] {
            sqlx::query(ddl).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let pool = open(EmbeddedFile::IngestionLog, dir.path(), SqliteSynchronous::Normal, 1).await.unwrap();
        let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM log").fetch_one(&pool).await.unwrap();
        let letters: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters").fetch_one(&pool).await.unwrap();
        assert_eq!((messages, letters), (1, 0), "the message is kept and the missing table created");
    }
}
