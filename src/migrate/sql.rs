//! Relational migrations through sqlx's migrator, embedded in the binary.

use std::ops::Deref;
use std::path::Path;

use sqlx::Acquire;
use sqlx::migrate::{Migrate, Migrator};

use super::{MigrateError, Mode, State, Step};
use crate::store::{postgres::PgStore, sqlite::SqliteStore};

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

pub async fn postgres(url: &url::Url, mode: Mode) -> Result<Vec<Step>, MigrateError> {
    let store = PgStore::connect(url).await.map_err(|e| MigrateError::new("postgres", e))?;
    migrate("postgres", &POSTGRES, store.pool(), mode).await
}

pub async fn sqlite(path: &Path, mode: Mode) -> Result<Vec<Step>, MigrateError> {
    let store = SqliteStore::open(path).await.map_err(|e| MigrateError::new("sqlite", e))?;
    migrate("sqlite", &SQLITE, store.pool(), mode).await
}

/// One implementation for both backends and every embedded file: sqlx's
/// `Migrate` trait hides the dialect.
pub(super) async fn migrate<'a, A>(
    target: &'static str,
    migrator: &Migrator,
    pool: A,
    mode: Mode,
) -> Result<Vec<Step>, MigrateError>
where
    A: Acquire<'a> + Copy,
    <A::Connection as Deref>::Target: Migrate,
{
    let applied_before = applied_versions(target, pool, mode).await?;
    if mode == Mode::Apply {
        migrator.run(pool).await.map_err(|e| MigrateError::new(target, e))?;
    }
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| Step {
            target,
            name: format!("{:04} {}", m.version, m.description),
            state: match (applied_before.contains(&m.version), mode) {
                (true, _) => State::Done,
                (false, Mode::Apply) => State::Applied,
                (false, Mode::Check) => State::Pending,
            },
        })
        .collect())
}

async fn applied_versions<'a, A>(target: &'static str, pool: A, mode: Mode) -> Result<Vec<i64>, MigrateError>
where
    A: Acquire<'a>,
    <A::Connection as Deref>::Target: Migrate,
{
    let mut conn = pool.acquire().await.map_err(|e| MigrateError::new(target, e))?;
    if mode == Mode::Check {
        // A check must not create sqlx's bookkeeping table; on a database that
        // has never been migrated, listing fails and nothing is applied yet.
        return Ok(match conn.list_applied_migrations("_sqlx_migrations").await {
            Ok(applied) => applied.into_iter().map(|m| m.version).collect(),
            Err(_) => Vec::new(),
        });
    }
    conn.ensure_migrations_table("_sqlx_migrations").await.map_err(|e| MigrateError::new(target, e))?;
    let applied = conn.list_applied_migrations("_sqlx_migrations").await.map_err(|e| MigrateError::new(target, e))?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}
