//! The embedded files after an unclean stop: `phs serve` checks them before
//! it opens them, says what a crash left, and turns a damaged file into a
//! working one without losing what is still readable.
//!
//! A marker (`PHS_DATA_DIR/serve-running`) is written when serve starts and
//! removed when it stops cleanly; finding it at start means the last serve
//! was killed, crashed, or stopped on a fatal error (a damaged page among
//! them), and only then are the files checked: `PRAGMA quick_check` reads
//! every page, seconds for a multi-GiB file, too slow for every start.
//!
//! Per file (events store, ingestion and overflow logs):
//! - its write-ahead log is read first ([`wal`]): SQLite replays the
//!   frames up to the last valid commit and silently drops the rest, so
//!   what it will drop is logged;
//! - an intact file is left as it is;
//! - a damaged one (quick_check fails, or SQLite calls it corrupt or not a
//!   database) is rebuilt: a fresh file gets the schema, every row that can
//!   still be read is copied into it with its rowid (offsets, dead-letter
//!   ids, the AUTOINCREMENT sequence), the damaged file is moved aside as
//!   `NAME.damaged-TIMESTAMP` (never deleted), and the fresh one takes its
//!   place. What could not be read is logged as rowid ranges and, for the
//!   ingestion log, split into messages already ingested and acknowledged
//!   ones that were not (lost unless `sqlite3 .recover` finds them in the
//!   kept file); the events store's gap comes with the `phs replay
//!   --reingest` command that writes those events again from the log.
//!
//! Figures go to the log and to `phs_embedded_recovery_total{file,what}`.

pub mod copy;
pub mod wal;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use self::copy::TableCopy;
use self::wal::WalScan;
use super::MigrateError;
use super::files::{EmbeddedFile, open_at};
use crate::error::damaged_file;

/// Present while a `phs serve` runs on the data directory, or after one that did not stop cleanly.
pub const MARKER: &str = "serve-running";

/// How far before the last event stored ahead of a gap the re-ingest hint
/// starts: the log is selected by append time, and an event may have waited
/// in the log this long before it was written.
const HINT_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// What the check found in one file.
#[derive(Debug)]
pub struct Checked {
    pub file: EmbeddedFile,
    /// Its write-ahead log before SQLite replayed it, if it had one.
    pub wal: Option<WalScan>,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    Intact,
    /// Rebuilt from what was readable; the damaged file was moved to `kept`.
    Recovered {
        damage: String,
        kept: PathBuf,
        tables: Vec<TableCopy>,
    },
}

/// Checks (after an unclean stop) and recovers `files` in `data_dir`, then
/// writes the marker for this run. For `phs serve` only, before it opens them.
pub async fn at_serve_start(data_dir: &Path, files: &[EmbeddedFile]) -> Result<Vec<Checked>, MigrateError> {
    let marker = data_dir.join(MARKER);
    let mut checked = Vec::new();
    if marker.exists() {
        tracing::warn!(
            dir = %data_dir.display(),
            "the last phs serve on this data directory did not stop cleanly (killed, crashed or stopped on an error): \
             checking its embedded files"
        );
        for &file in files {
            if file.path(data_dir).exists() {
                checked.push(check(file, data_dir).await?);
            }
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| MigrateError::new("data directory", e))?;
    let note = format!("pid {} since {}\n", std::process::id(), chrono::Utc::now().to_rfc3339());
    std::fs::write(&marker, note).map_err(|e| MigrateError::new("data directory", e))?;
    Ok(checked)
}

/// Removes the marker: `phs serve` stopped cleanly, nothing to check next time.
pub fn stopped_cleanly(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(MARKER));
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

async fn check(file: EmbeddedFile, data_dir: &Path) -> Result<Checked, MigrateError> {
    let path = file.path(data_dir);
    let name = file.name();
    let wal = wal::scan(&sibling(&path, "-wal")).map_err(|e| MigrateError::new(name, e))?;
    if let Some(w) = &wal {
        report_wal(name, w);
    }
    let started = Instant::now();
    let outcome = match integrity(&path).await {
        Ok(None) => {
            tracing::info!(file = name, took_ms = started.elapsed().as_millis() as u64, "intact (quick_check)");
            Outcome::Intact
        }
        Ok(Some(damage)) => {
            tracing::error!(file = name, %damage, "the file is damaged: copying its readable rows into a new file");
            recover(file, &path, damage).await?
        }
        Err(e) => return Err(MigrateError::new(name, format!("cannot check the file: {e}"))),
    };
    Ok(Checked { file, wal, outcome })
}

fn report_wal(name: &'static str, w: &WalScan) {
    let m = crate::metrics::global();
    if w.drops_anything() {
        let dropped = w.uncommitted_frames + w.damaged_frames;
        m.recovery(name, "wal_frames_dropped", dropped);
        tracing::warn!(
            file = name,
            replayed_transactions = w.commits,
            uncommitted_frames = w.uncommitted_frames,
            damaged_frames = w.damaged_frames,
            cut_bytes = w.partial_bytes,
            bad_header = w.bad_header,
            "SQLite replays the write-ahead log up to its last valid commit and drops the rest: uncommitted frames \
             and a cut frame are a write the stop interrupted, never acknowledged (capture answers 200 after the \
             commit is on disk); damaged frames, or a bad header, lose whatever they held"
        );
    } else {
        tracing::info!(file = name, replayed_transactions = w.commits, "the write-ahead log is whole");
    }
}

/// None when intact, else what is wrong; Err when the file cannot be checked at all.
async fn integrity(path: &Path) -> Result<Option<String>, sqlx::Error> {
    let options = SqliteConnectOptions::new().filename(path).foreign_keys(false).busy_timeout(Duration::from_secs(10));
    let mut conn = match options.connect().await {
        Ok(c) => c,
        Err(e) if damaged_file(&e) => return Ok(Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let found: Result<Vec<String>, sqlx::Error> =
        sqlx::query_scalar("PRAGMA quick_check(20)").fetch_all(&mut conn).await;
    let _ = conn.close().await;
    match found {
        Ok(lines) if lines == ["ok"] => Ok(None),
        Ok(lines) => Ok(Some(lines.join("; "))),
        Err(e) if damaged_file(&e) => Ok(Some(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Rebuilds `path` from its readable rows; the damaged file is kept beside it.
async fn recover(file: EmbeddedFile, path: &Path, damage: String) -> Result<Outcome, MigrateError> {
    let name = file.name();
    let fail = |e: &dyn std::fmt::Display| MigrateError::new(name, format!("recovering the damaged file: {e}"));
    let fresh = sibling(path, ".recovering");
    for leftover in [fresh.clone(), sibling(&fresh, "-wal"), sibling(&fresh, "-shm")] {
        let _ = std::fs::remove_file(leftover);
    }
    // Durability comes from the fsync before the rename, not from each copying statement.
    let pool = open_at(file, &fresh, SqliteSynchronous::Off, 1).await?;
    let mut conn = pool.acquire().await.map_err(|e| fail(&e))?;
    let tables = copy_all(&mut conn, path).await.map_err(|e| fail(&e))?;
    if file != EmbeddedFile::Events {
        report_log(name, &mut conn, &tables).await;
    } else {
        report_events(&mut conn, &tables).await;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).await.map_err(|e| fail(&e))?;
    drop(conn);
    pool.close().await;
    std::fs::File::open(&fresh).and_then(|f| f.sync_all()).map_err(|e| fail(&e))?;

    let kept = sibling(path, &format!(".damaged-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    let moves = || -> std::io::Result<()> {
        std::fs::rename(path, &kept)?;
        for suffix in ["-wal", "-shm"] {
            if sibling(path, suffix).exists() {
                std::fs::rename(sibling(path, suffix), sibling(&kept, suffix))?;
            }
        }
        std::fs::rename(&fresh, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    moves().map_err(|e| fail(&e))?;
    let m = crate::metrics::global();
    m.recovery(name, "files_rebuilt", 1);
    m.recovery(name, "rows_recovered", tables.iter().map(|t| t.rows).sum());
    tracing::warn!(
        file = name,
        kept = %kept.display(),
        "the damaged file is kept: `sqlite3 {} .recover` may find rows phs could not read",
        kept.display()
    );
    Ok(Outcome::Recovered { damage, kept, tables })
}

/// Copies every table of the fresh file's schema from the damaged file, attached as `old`.
async fn copy_all(conn: &mut SqliteConnection, damaged: &Path) -> Result<Vec<TableCopy>, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    // Without it SQLite refuses a file shorter than its header says (cut short) before reading a row;
    // with it, it reads what is there. Nothing here writes a schema.
    sqlx::query("PRAGMA writable_schema = ON").execute(&mut *conn).await?;
    let attached =
        sqlx::query("ATTACH DATABASE ?1 AS old").bind(damaged.display().to_string()).execute(&mut *conn).await;
    let schema_readable = match attached {
        Ok(_) => sqlx::query("SELECT count(*) FROM old.sqlite_schema").execute(&mut *conn).await.is_ok(),
        Err(_) => false,
    };
    let mut out = Vec::new();
    for table in tables {
        // (name, type, pk) of the fresh table; the rowid's alias is copied as the rowid.
        let columns: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, type, pk FROM pragma_table_info(?1, 'main')")
                .bind(&table)
                .fetch_all(&mut *conn)
                .await?;
        let keys = columns.iter().filter(|c| c.2 > 0).count();
        let old: Option<Vec<String>> = match schema_readable {
            true => sqlx::query_scalar("SELECT name FROM pragma_table_info(?1, 'old')")
                .bind(&table)
                .fetch_all(&mut *conn)
                .await
                .ok(),
            false => None,
        };
        let Some(old) = old else {
            out.push(TableCopy { table, rows: 0, skipped: vec![(1, i64::MAX)] });
            continue;
        };
        let shared: Vec<String> = columns
            .iter()
            .filter(|(name, ty, pk)| {
                !(keys == 1 && *pk == 1 && ty.eq_ignore_ascii_case("INTEGER")) && old.contains(name)
            })
            .map(|c| c.0.clone())
            .collect();
        let copied = if old.is_empty() {
            TableCopy { table, ..Default::default() }
        } else {
            copy::table(conn, &table, &shared).await
        };
        out.push(copied);
    }
    if schema_readable {
        // Offsets and ids stay unique across the recovery: the sequence never goes back.
        let seqs: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, seq FROM old.sqlite_sequence").fetch_all(&mut *conn).await.unwrap_or_default();
        for (name, seq) in seqs {
            let moved = sqlx::query("UPDATE main.sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1")
                .bind(&name)
                .bind(seq)
                .execute(&mut *conn)
                .await?;
            if moved.rows_affected() == 0 {
                sqlx::query("INSERT INTO main.sqlite_sequence (name, seq) VALUES (?1, ?2)")
                    .bind(&name)
                    .bind(seq)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        sqlx::query("DETACH DATABASE old").execute(&mut *conn).await?;
    }
    Ok(out)
}

fn ranges(skipped: &[(i64, i64)]) -> String {
    let one = |&(a, b): &(i64, i64)| match (a, b) {
        (a, b) if a == b => a.to_string(),
        (a, i64::MAX) => format!("{a}.."),
        (a, b) => format!("{a}..{b}"),
    };
    skipped.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// A log file's tables: how many unreadable messages were already ingested
/// (below every consumer's committed offset) and how many acknowledged ones were not.
async fn report_log(name: &'static str, conn: &mut SqliteConnection, tables: &[TableCopy]) {
    let committed: Option<i64> =
        sqlx::query_scalar("SELECT min(committed) FROM consumer_offsets").fetch_one(&mut *conn).await.ok().flatten();
    let end: Option<i64> = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'log'")
        .fetch_optional(&mut *conn)
        .await
        .ok()
        .flatten();
    let m = crate::metrics::global();
    let said =
        |n: Option<u64>| n.map_or_else(|| "unknown: every row from the range's start".to_string(), |n| n.to_string());
    for t in tables {
        let lost = t.skipped_at_most(end);
        m.recovery(name, "rows_skipped", lost.unwrap_or(0));
        if t.skipped.is_empty() {
            tracing::info!(file = name, table = %t.table, rows = t.rows, "every row recovered");
            continue;
        }
        let offsets = t.table == "log";
        let (ingested, not_ingested) = match (offsets, committed) {
            (true, Some(c)) => {
                let part = |lo, hi| TableCopy { skipped: clip(&t.skipped, lo, hi), ..Default::default() };
                (part(i64::MIN, c).skipped_at_most(end), part(c.saturating_add(1), i64::MAX).skipped_at_most(end))
            }
            _ => (Some(0), lost),
        };
        if offsets {
            m.recovery(name, "unreadable_not_ingested", not_ingested.unwrap_or(0));
        }
        tracing::error!(
            file = name,
            table = %t.table,
            rows = t.rows,
            unreadable = %ranges(&t.skipped),
            at_most = %said(lost),
            already_ingested = %said(ingested),
            acknowledged_not_ingested = %said(not_ingested),
            "rows recovered; these rowids could not be read{}",
            match t.table.as_str() {
                "consumer_offsets" => ": a consumer without its offset reads the log from its start again (at least once)",
                "log" if not_ingested != Some(0) => {
                    ": acknowledged events that were not yet ingested are lost unless `sqlite3 .recover` finds them in the kept file"
                }
                _ => "",
            }
        );
    }
}

/// The events store: the gap's neighbours' write times bound the `phs replay --reingest` that restores it.
async fn report_events(conn: &mut SqliteConnection, tables: &[TableCopy]) {
    let m = crate::metrics::global();
    for t in tables {
        m.recovery(EmbeddedFile::Events.name(), "rows_skipped", t.skipped_at_most(None).unwrap_or(0));
        for &(a, b) in &t.skipped {
            let before: Option<String> = sqlx::query_scalar("SELECT max(created_at) FROM events WHERE rowid < ?1")
                .bind(a)
                .fetch_one(&mut *conn)
                .await
                .ok()
                .flatten();
            let after: Option<String> = sqlx::query_scalar("SELECT min(created_at) FROM events WHERE rowid > ?1")
                .bind(b)
                .fetch_one(&mut *conn)
                .await
                .ok()
                .flatten();
            let from = before
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| (t - HINT_MARGIN).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            let command = match (&from, &after) {
                (Some(f), Some(u)) => format!("phs replay --from-timestamp {f} --until {u} --reingest"),
                (Some(f), None) => format!("phs replay --from-timestamp {f} --reingest"),
                (None, Some(u)) => format!("phs replay --from-beginning --until {u} --reingest"),
                (None, None) => "phs replay --from-beginning --reingest".to_string(),
            };
            tracing::error!(
                file = EmbeddedFile::Events.name(),
                rows = t.rows,
                unreadable = %ranges(&[(a, b)]),
                stored_before = before.as_deref().unwrap_or("-"),
                stored_after = after.as_deref().unwrap_or("-"),
                "stored events could not be read; those the ingestion log still holds are written again (under their \
                 uuids, replacing what is there) by `{command}`"
            );
        }
    }
}

/// The parts of `ranges` within `lo..=hi`.
fn clip(ranges: &[(i64, i64)], lo: i64, hi: i64) -> Vec<(i64, i64)> {
    ranges.iter().map(|&(a, b)| (a.max(lo), b.min(hi))).filter(|(a, b)| a <= b).collect()
}

#[cfg(test)]
mod tests;
