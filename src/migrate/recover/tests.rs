//! Damaged log files made on purpose (a page overwritten, the file cut,
//! its header destroyed) and what the start-up check makes of them.

use std::io::{Seek, SeekFrom, Write};

use sqlx::SqlitePool;

use super::*;
use crate::migrate::files::open;

const ROWS: i64 = 2000;
const PAGE: u64 = 4096;

/// A closed ingestion log of [`ROWS`] messages (offsets 1..=ROWS, 200-byte
/// payloads), committed up to `ROWS / 2`; the pages holding the log's rows.
async fn log_file(dir: &Path) -> Vec<u64> {
    let pool = open(EmbeddedFile::IngestionLog, dir, SqliteSynchronous::Normal, 1).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 1..=ROWS {
        sqlx::query("INSERT INTO log (key, payload) VALUES ($1, $2)")
            .bind(format!("k{i}"))
            .bind(format!("{i:0>200}").into_bytes())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO consumer_offsets VALUES ('pipeline', $1)").bind(ROWS / 2).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let leaves: Vec<i64> =
        sqlx::query_scalar("SELECT pageno FROM dbstat WHERE name = 'log' AND pagetype = 'leaf' ORDER BY pageno")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert!(!EmbeddedFile::IngestionLog.path(dir).with_extension("sqlite3-wal").exists(), "closed cleanly");
    leaves.into_iter().map(|p| p as u64).collect()
}

fn overwrite_page(path: &Path, page: u64) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((page - 1) * PAGE)).unwrap();
    f.write_all(&[0xa5; PAGE as usize]).unwrap();
}

async fn start(dir: &Path) -> Vec<Checked> {
    std::fs::write(dir.join(MARKER), "killed").unwrap();
    at_serve_start(dir, &[EmbeddedFile::IngestionLog]).await.unwrap()
}

async fn reopened(dir: &Path) -> SqlitePool {
    open(EmbeddedFile::IngestionLog, dir, SqliteSynchronous::Normal, 1).await.unwrap()
}

fn recovered(checked: &[Checked]) -> (&PathBuf, &[TableCopy]) {
    match &checked[0].outcome {
        Outcome::Recovered { kept, tables, .. } => (kept, tables),
        other => panic!("not recovered: {other:?}"),
    }
}

fn log_table(tables: &[TableCopy]) -> &TableCopy {
    tables.iter().find(|t| t.table == "log").unwrap()
}

#[tokio::test]
async fn a_damaged_leaf_costs_its_rows_only_and_the_rest_keeps_offsets_sequence_and_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let leaves = log_file(dir.path()).await;
    overwrite_page(&EmbeddedFile::IngestionLog.path(dir.path()), leaves[leaves.len() / 2]);

    let checked = start(dir.path()).await;
    let (kept, tables) = recovered(&checked);
    assert!(kept.exists(), "the damaged file is kept");
    let log = log_table(tables);
    let lost = log.skipped_at_most(Some(ROWS)).unwrap();
    assert!(lost > 0 && lost <= 25, "one page of ~17 rows: {log:?}");
    assert_eq!(log.rows + lost, ROWS as u64, "every row is recovered or named: {log:?}");

    let pool = reopened(dir.path()).await;
    let check: String = sqlx::query_scalar("PRAGMA quick_check").fetch_one(&pool).await.unwrap();
    assert_eq!(check, "ok");
    let offsets: Vec<i64> =
        sqlx::query_scalar("SELECT offset FROM log ORDER BY offset").fetch_all(&pool).await.unwrap();
    let skipped = |o: i64| log.skipped.iter().any(|&(a, b)| a <= o && o <= b);
    assert_eq!(offsets, (1..=ROWS).filter(|o| !skipped(*o)).collect::<Vec<_>>(), "offsets are kept");
    let payload: Vec<u8> =
        sqlx::query_scalar("SELECT payload FROM log WHERE offset = 7").fetch_one(&pool).await.unwrap();
    assert_eq!(payload, format!("{:0>200}", 7).into_bytes());
    let committed: i64 = sqlx::query_scalar("SELECT committed FROM consumer_offsets").fetch_one(&pool).await.unwrap();
    assert_eq!(committed, ROWS / 2);
    sqlx::query("INSERT INTO log (key, payload) VALUES ('new', x'00')").execute(&pool).await.unwrap();
    let next: i64 = sqlx::query_scalar("SELECT max(offset) FROM log").fetch_one(&pool).await.unwrap();
    assert_eq!(next, ROWS + 1, "the sequence goes on from the damaged file's");
}

#[tokio::test]
async fn a_file_cut_short_keeps_what_is_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    log_file(dir.path()).await;
    let path = EmbeddedFile::IngestionLog.path(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2 + 1000).unwrap();

    let checked = start(dir.path()).await;
    let log = log_table(recovered(&checked).1);
    assert!(log.rows > 0 && !log.skipped.is_empty(), "{log:?}");
    assert_eq!(log.rows + log.skipped_at_most(Some(ROWS)).unwrap(), ROWS as u64, "{log:?}");
}

#[tokio::test]
async fn a_file_that_is_no_database_is_replaced_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    log_file(dir.path()).await;
    overwrite_page(&EmbeddedFile::IngestionLog.path(dir.path()), 1);

    let checked = start(dir.path()).await;
    let (kept, tables) = recovered(&checked);
    assert!(kept.exists());
    assert_eq!(log_table(tables).skipped, vec![(1, i64::MAX)], "nothing readable, and said so");
    let pool = reopened(dir.path()).await;
    sqlx::query("INSERT INTO log (key, payload) VALUES ('new', x'00')").execute(&pool).await.unwrap();
}

#[tokio::test]
async fn files_are_checked_only_after_an_unclean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let leaves = log_file(dir.path()).await;
    overwrite_page(&EmbeddedFile::IngestionLog.path(dir.path()), leaves[3]);
    let clean = at_serve_start(dir.path(), &[EmbeddedFile::IngestionLog]).await.unwrap();
    assert!(clean.is_empty(), "no marker: the last serve stopped cleanly");
    assert!(dir.path().join(MARKER).exists(), "this run is marked");
    let intact_elsewhere = tempfile::tempdir().unwrap();
    log_file(intact_elsewhere.path()).await;
    let checked = start(intact_elsewhere.path()).await;
    assert!(matches!(checked[0].outcome, Outcome::Intact), "{checked:?}");
    stopped_cleanly(intact_elsewhere.path());
    assert!(!intact_elsewhere.path().join(MARKER).exists());
}
