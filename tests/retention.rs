//! Retention of the embedded local log: old or surplus messages go once
//! every consumer has committed them, uncommitted ones stay whatever their
//! age, and a running server keeps ingesting while the sweep deletes.

use std::time::Duration;

use phs::pipeline::source::Source;
use phs::pipeline::source::local_log::LocalLog;
use phs::pipeline::source::retention::{Retention, Swept, used_bytes};
use phs::wire::Producer;
use tokio_util::sync::CancellationToken;

use crate::util::eventually::eventually;

const WEEK: Duration = Duration::from_secs(168 * 3600);

async fn log_with(dir: &std::path::Path, n: usize, payload_bytes: usize) -> LocalLog {
    let log = LocalLog::open(dir).await.unwrap();
    let messages: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("k{i}"), vec![b'x'; payload_bytes])).collect();
    log.append(&messages).await.unwrap();
    log
}

/// Moves the append time of the messages up to `offset` back to 2020.
async fn age(dir: &std::path::Path, offset: i64) {
    let url = format!("sqlite://{}", dir.join("ingestion-log.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE log SET appended_at = '2020-01-01T00:00:00.000Z' WHERE offset <= $1")
        .bind(offset)
        .execute(&pool)
        .await
        .unwrap();
}

async fn commit(log: &LocalLog, consumer: &str, offset: i64) {
    log.consumer(consumer).await.unwrap().commit(&[(0, offset)]).await.unwrap();
}

fn by_age() -> Retention {
    Retention { max_age: Some(WEEK), max_bytes: None, max_dead_letters: None, every: Duration::from_secs(60) }
}

#[tokio::test]
async fn old_messages_go_once_every_consumer_committed_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 10, 100).await;
    age(dir.path(), 8).await;
    let stop = CancellationToken::new();

    // No consumer has committed anything: nothing goes, however old.
    assert_eq!(by_age().sweep(&log, &stop).await.unwrap(), Swept::default());
    assert_eq!(log.retained().await.unwrap(), Some((1, 10)));

    // Two consumers: the one further behind decides.
    commit(&log, "a", 5).await;
    commit(&log, "b", 3).await;
    let swept = by_age().sweep(&log, &stop).await.unwrap();
    assert_eq!(swept.messages, 3);
    assert_eq!(log.retained().await.unwrap(), Some((4, 10)));

    // Old but not committed by "a" (6..8) stays; young and committed (9) would stay too.
    commit(&log, "b", 10).await;
    assert_eq!(by_age().sweep(&log, &stop).await.unwrap().messages, 2);
    assert_eq!(log.retained().await.unwrap(), Some((6, 10)));
    commit(&log, "a", 9).await;
    assert_eq!(by_age().sweep(&log, &stop).await.unwrap().messages, 3, "6..8 are old and now committed");
    assert_eq!(log.retained().await.unwrap(), Some((9, 10)), "9 is committed but young");
    // The consumers read on from where they were.
    let mut a = log.consumer("a").await.unwrap();
    let next = a.poll(10, Duration::from_millis(10)).await.unwrap();
    assert_eq!(next.iter().map(|m| m.offset).collect::<Vec<_>>(), [10]);
}

#[tokio::test]
async fn the_byte_limit_removes_the_oldest_committed_messages_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 200, 10 * 1024).await;
    let before = used_bytes(&log).await.unwrap();
    assert!(before > 2_000_000, "{before}");
    let stop = CancellationToken::new();
    let half = Retention {
        max_age: None,
        max_bytes: Some(before / 2),
        max_dead_letters: None,
        every: Duration::from_secs(60),
    };

    // Committed up to 50: the limit cannot be met without uncommitted messages, which stay.
    commit(&log, "phs-ingestion", 50).await;
    assert_eq!(half.sweep(&log, &stop).await.unwrap().messages, 50);
    assert_eq!(log.retained().await.unwrap(), Some((51, 200)));

    // Everything committed: about half goes, oldest first.
    commit(&log, "phs-ingestion", 200).await;
    let swept = half.sweep(&log, &stop).await.unwrap();
    // Row sizes undercount the pages a 10 KiB payload fills, so somewhat more than half goes.
    assert!((30..=80).contains(&swept.messages), "{swept:?}");
    assert!(used_bytes(&log).await.unwrap() <= before / 2 + 64 * 1024);
    let (first, last) = log.retained().await.unwrap().unwrap();
    assert_eq!((first, last), (51 + swept.messages as i64, 200));

    // A limit nothing meets still keeps the newest message, and the log its end.
    let tiny = Retention { max_bytes: Some(1), ..half };
    tiny.sweep(&log, &stop).await.unwrap();
    assert_eq!(log.retained().await.unwrap(), Some((200, 200)));
    assert_eq!(log.end_offset().await.unwrap(), 200);

    // Freed pages are reused: appending as much again does not grow the file.
    let file = dir.path().join("ingestion-log.sqlite3");
    let size = std::fs::metadata(&file).unwrap().len();
    let messages: Vec<(String, Vec<u8>)> = (0..100).map(|i| (format!("n{i}"), vec![b'y'; 10 * 1024])).collect();
    log.append(&messages).await.unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() <= size, "the file grew although its free list had room");
}

/// `phs serve` sweeps while capture appends and the pipeline reads: every
/// acknowledged event is stored, and replay names where the log now starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_keeps_ingesting_while_retention_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let token = crate::util::embedded::cli(dir.path(), &["teams", "create", "kept"]).trim().to_string();
    let envs = [
        ("PHS_DATA_DIR", data.clone()),
        ("PHS_LOG_RETENTION_BYTES", "1".to_string()),
        ("PHS_LOG_RETENTION_SWEEP_MS", "20".to_string()),
    ];
    let mut server = tokio::task::spawn_blocking(move || crate::util::server::start(&envs)).await.unwrap();
    let url = format!("http://{}/batch/", server.capture);
    let stream = crate::util::server::stream_batches(&url, &token);
    let log = LocalLog::open(dir.path()).await.unwrap();
    eventually(Duration::from_secs(30), "retention to remove messages while events stream in", async || {
        match log.retained().await.unwrap() {
            Some((first, _)) if first > 3000 => Ok(()),
            other => Err(format!("retained {other:?}")),
        }
    })
    .await;
    crate::util::server::sigterm(&server.child);
    let (acked, _) = stream.finish().await;
    let status = tokio::task::spawn_blocking(move || {
        let status = crate::util::server::wait_exit(&mut server, Duration::from_secs(30));
        (status, server.log_text())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{}", status.1);
    assert!(status.1.contains("local log retention"), "{}", status.1);
    // What was appended after the drain's last batch is ingested on the next start.
    let envs = [("PHS_DATA_DIR", data.clone())];
    let again = tokio::task::spawn_blocking(move || crate::util::server::start(&envs)).await.unwrap();
    let stored = crate::util::embedded::wait_for_events(dir.path(), acked.len());
    let uuids: std::collections::HashSet<String> =
        stored.iter().map(|e| e["uuid"].as_str().unwrap().to_string()).collect();
    assert!(acked.iter().all(|u| uuids.contains(u)), "{} acknowledged, {} stored", acked.len(), uuids.len());
    drop(again);

    let (first, _) = log.retained().await.unwrap().unwrap();
    let (code, _, err) = crate::util::phs_with(&[("PHS_DATA_DIR", data)], &["replay", "--from-offset", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("older than the retained local log, which starts at offset {first}")), "{err}");
}

/// Dead letters go past their count (oldest first) or their age, so a
/// client that sends only malformed events cannot fill the disk with them.
#[tokio::test]
async fn dead_letters_past_the_count_or_the_age_go_oldest_first() {
    use phs::pipeline::sink::{DeadLetter, DeadLetterQueue};
    use phs::pipeline::source::local_log::Table;
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 1, 10).await;
    let message = phs::wire::Message { partition: 0, offset: 1, payload: b"{not json".to_vec() };
    let letter = DeadLetter {
        message: &message,
        reason: "malformed_message",
        detail: String::new(),
        stage: "normalize",
        team_id: None,
    };
    for _ in 0..25 {
        log.send(&vec![letter.clone(); 100]).await.unwrap();
    }
    let stop = CancellationToken::new();
    let capped =
        Retention { max_age: None, max_bytes: None, max_dead_letters: Some(1_000), every: Duration::from_secs(60) };
    assert_eq!(capped.sweep(&log, &stop).await.unwrap().dead_letters, 1_500);
    assert_eq!(log.range(Table::DeadLetters).await.unwrap(), Some((1_501, 2_500)), "the newest 1,000 stay");
    assert_eq!(capped.sweep(&log, &stop).await.unwrap().dead_letters, 0);

    // By age: the letters older than a week go, the young ones stay.
    let url = format!("sqlite://{}", dir.path().join("ingestion-log.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE dead_letters SET failed_at = '2020-01-01T00:00:00.000Z' WHERE id <= 1600")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(by_age().sweep(&log, &stop).await.unwrap().dead_letters, 100);
    assert_eq!(log.range(Table::DeadLetters).await.unwrap(), Some((1_601, 2_500)));
}
