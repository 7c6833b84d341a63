//! ClickHouse migrations: the SQL files in migrations/clickhouse, applied in
//! order and recorded in `{database}.phs_migrations`.

use super::{MigrateError, Mode, State, Step};
use crate::config::ClickHouseSettings;

/// (version, name, SQL) of every ClickHouse migration, embedded in the binary.
const MIGRATIONS: &[(u32, &str, &str)] =
    &[(1, "events persons", include_str!("../../migrations/clickhouse/0001_events_persons.sql"))];

const TARGET: &str = "clickhouse";

pub async fn run(settings: &ClickHouseSettings, mode: Mode) -> Result<Vec<Step>, MigrateError> {
    let Some(host) = &settings.clickhouse_host else { return Ok(Vec::new()) };
    let db = &settings.clickhouse_database;
    let server = crate::clickhouse::server_client(settings, host.url(settings.clickhouse_secure));
    let fail = |what: &str, e: clickhouse::error::Error| MigrateError::new(TARGET, format!("{what}: {e}"));

    let db_exists: u8 = server
        .query("SELECT count() > 0 FROM system.databases WHERE name = ?")
        .bind(db)
        .fetch_one()
        .await
        .map_err(|e| fail("list databases", e))?;
    let applied: Vec<u32> = if db_exists == 1 && table_exists(&server, db, "phs_migrations").await? {
        server
            .query(&format!("SELECT version FROM {db}.phs_migrations"))
            .fetch_all()
            .await
            .map_err(|e| fail("read applied migrations", e))?
    } else {
        Vec::new()
    };

    if mode == Mode::Apply {
        server
            .query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .execute()
            .await
            .map_err(|e| fail("create database", e))?;
        server
            .query(&format!(
                "CREATE TABLE IF NOT EXISTS {db}.phs_migrations (version UInt32, name String, applied_at DateTime) \
                 ENGINE = MergeTree ORDER BY version"
            ))
            .execute()
            .await
            .map_err(|e| fail("create phs_migrations", e))?;
    }

    let mut steps = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let label = format!("{version:04} {name}");
        let state = if applied.contains(version) {
            State::Done
        } else if mode == Mode::Check {
            State::Pending
        } else {
            for statement in statements(sql, db) {
                server.query(&statement).execute().await.map_err(|e| fail(&format!("migration {label}"), e))?;
            }
            server
                .query(&format!("INSERT INTO {db}.phs_migrations (version, name, applied_at) VALUES (?, ?, now())"))
                .bind(version)
                .bind(name)
                .execute()
                .await
                .map_err(|e| fail("record migration", e))?;
            State::Applied
        };
        steps.push(Step { target: TARGET, name: label, state });
    }
    Ok(steps)
}

async fn table_exists(server: &clickhouse::Client, db: &str, table: &str) -> Result<bool, MigrateError> {
    let n: u64 = server
        .query("SELECT count() FROM system.tables WHERE database = ? AND name = ?")
        .bind(db)
        .bind(table)
        .fetch_one()
        .await
        .map_err(|e| MigrateError::new(TARGET, format!("list tables: {e}")))?;
    Ok(n > 0)
}

/// Splits a migration file at lines holding only `;` and fills in the database.
/// ClickHouse's HTTP interface takes one statement per request.
fn statements(sql: &str, db: &str) -> Vec<String> {
    sql.split("\n;")
        .map(|chunk| chunk.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n"))
        .map(|s| s.trim().trim_end_matches(';').trim().replace("{database}", db))
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_statements_and_drops_comments() {
        let parts = super::statements(
            "-- c\nCREATE TABLE {database}.a (x UInt8)\n;\nCREATE TABLE {database}.b (y UInt8)\n",
            "d",
        );
        assert_eq!(parts, vec!["CREATE TABLE d.a (x UInt8)", "CREATE TABLE d.b (y UInt8)"]);
        let all = super::statements(super::MIGRATIONS[0].2, "db");
        assert_eq!(all.len(), 5, "{all:#?}");
        assert!(all.iter().all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS db.")));
    }
}
