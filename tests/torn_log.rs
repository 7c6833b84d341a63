//! The embedded files after `kill -9` mid-ingestion, then torn on purpose:
//! the ingestion log's write-ahead log cut at several points, the log file
//! itself cut short, a page of it overwritten, its header destroyed. Each
//! time `phs serve` must start, say what it recovered and what it skipped,
//! and store every acknowledged event (capture answered 200) that is still
//! readable: in the damaged log (as SQLite reads it, row by row, on a copy)
//! or already in the events store. Whatever acknowledged event is missing
//! must be one the server reported as unreadable.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use phs::wire::Producer;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::util::embedded::cli;
use crate::util::eventually::eventually;
use crate::util::server::{Server, start_logged, stream_batches, wait_healthy};

const LOG: &str = "ingestion-log.sqlite3";
const PAGE: u64 = 4096;

/// A data directory whose server was killed with SIGKILL while two senders streamed batches at it.
struct Killed {
    dir: tempfile::TempDir,
    acked: HashSet<String>,
    /// Messages the test put straight into the log, which become dead letters (bad uuids).
    dead: usize,
}

async fn ingest_and_kill() -> Killed {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = cli(d, &["teams", "create", "torn"]).trim().to_string();
    let mut server = start_logged(&[("PHS_DATA_DIR", d.display().to_string())], &d.join("first.log"));
    wait_healthy(&mut server);
    let log = phs::pipeline::source::local_log::LocalLog::open(d).await.unwrap();
    let bad: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| {
            let m = serde_json::json!({"uuid": format!("bad-{i}"), "distinct_id": "d", "ip": null, "site_url": "s",
                "data": r#"{"event": "e"}"#, "token": token, "now": "2024-01-01T00:00:00Z", "sent_at": null});
            ("bad".to_string(), m.to_string().into_bytes())
        })
        .collect();
    log.append(&bad).await.unwrap();
    drop(log);
    let stream = stream_batches(&format!("http://{}/batch/", server.capture), &token);
    // Long enough for the WAL to be checkpointed into the file at least once (1,000 pages).
    tokio::time::sleep(Duration::from_secs(8)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (acked, _) = stream.finish().await;
    assert!(acked.len() > 1000, "only {} events acknowledged before the kill", acked.len());
    Killed { dir, acked, dead: bad.len() }
}

/// A copy of the killed directory's files, to damage without touching the original.
fn copy_of(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    to
}

async fn connect(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new().filename(path).pragma("writable_schema", "ON").connect().await.unwrap()
}

/// Folds the log's WAL into its file, as SQLite's own checkpoints do while serve runs.
async fn checkpoint(dir: &Path) {
    let mut c = connect(&dir.join(LOG)).await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

/// What can still be read of `dir`, on a scratch copy (reading replays and
/// removes the WAL): the uuids of the messages of the ingestion log and of
/// the overflow log (where hot keys' events wait, already committed on the
/// ingestion log), read one offset at a time, and the events store's uuids.
async fn readable(dir: &Path, up_to: i64) -> HashSet<String> {
    let scratch = copy_of(dir);
    let mut out = HashSet::new();
    for file in [LOG, "overflow-log.sqlite3"] {
        if !scratch.path().join(file).exists() {
            continue;
        }
        let mut log = connect(&scratch.path().join(file)).await;
        for offset in 1..=up_to {
            let row: Result<Option<Vec<u8>>, _> = sqlx::query_scalar("SELECT payload FROM log WHERE offset = ?1")
                .bind(offset)
                .fetch_optional(&mut log)
                .await;
            if let Ok(Some(p)) = row
                && let Ok(m) = serde_json::from_slice::<serde_json::Value>(&p)
                && let Some(uuid) = m["uuid"].as_str()
            {
                out.insert(uuid.to_string());
            }
        }
    }
    out.extend(stored(scratch.path()).await);
    out
}

async fn stored(dir: &Path) -> HashSet<String> {
    let mut c = connect(&dir.join("events.sqlite3")).await;
    let uuids: Vec<String> = sqlx::query_scalar("SELECT uuid FROM events").fetch_all(&mut c).await.unwrap_or_default();
    let _ = c.close().await;
    uuids.into_iter().collect()
}

async fn dead_letters(dir: &Path) -> i64 {
    let mut c = connect(&dir.join(LOG)).await;
    let n = sqlx::query_scalar("SELECT count(*) FROM dead_letters").fetch_one(&mut c).await.unwrap();
    let _ = c.close().await;
    n
}

fn restart(dir: &Path, log: &str) -> Server {
    let mut server = start_logged(&[("PHS_DATA_DIR", dir.display().to_string())], &dir.join(log));
    wait_healthy(&mut server);
    server
}

/// Restarts on `dir` and waits until every acknowledged event of `expected` is stored; what the server logged.
async fn restart_and_expect(dir: &Path, killed: &Killed, expected: &HashSet<String>, what: &str) -> (Server, String) {
    let server = restart(dir, "after.log");
    let want: HashSet<&String> = killed.acked.iter().filter(|u| expected.contains(*u)).collect();
    eventually(Duration::from_secs(60), &format!("{what}: the readable acknowledged events stored"), async || {
        let have = stored(dir).await;
        let missing = want.iter().filter(|u| !have.contains(**u)).count();
        if missing == 0 { Ok(()) } else { Err(format!("{missing} of {} missing", want.len())) }
    })
    .await;
    let text = server.log_text();
    assert!(text.contains("did not stop cleanly"), "{what}: the unclean stop is reported: {text}");
    (server, text)
}

/// The number a `key=N` field of the log line holding `marker` says.
fn field(log: &str, marker: &str, key: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(marker) && l.contains(&format!("{key}=")))?;
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

async fn metric(server: &Server, series: &str) -> Option<u64> {
    let text = reqwest::get(format!("http://{}/metrics", server.addr)).await.unwrap().text().await.unwrap();
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The log's leaf pages, read from a scratch copy.
async fn leaf_pages(dir: &Path) -> Vec<u64> {
    let scratch = copy_of(dir);
    let mut c = connect(&scratch.path().join(LOG)).await;
    let pages: Vec<i64> =
        sqlx::query_scalar("SELECT pageno FROM dbstat WHERE name = 'log' AND pagetype = 'leaf' ORDER BY pageno")
            .fetch_all(&mut c)
            .await
            .unwrap();
    pages.into_iter().map(|p| p as u64).collect()
}

/// Something done to the log file.
type Damage = Box<dyn Fn(&Path)>;

fn overwrite_page(path: &Path, page: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start((page - 1) * PAGE)).unwrap();
    f.write_all(&[0x5a; PAGE as usize]).unwrap();
}

fn cut(path: &Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn kept_files(dir: &Path) -> Vec<PathBuf> {
    let all = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    all.filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{LOG}.damaged-"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_acknowledged_event_is_stored_and_the_files_are_checked() {
    let killed = ingest_and_kill().await;
    let d = killed.dir.path();
    assert!(d.join("serve-running").exists(), "a killed serve leaves its marker");
    let (mut server, log) = restart_and_expect(d, &killed, &killed.acked, "kill -9").await;
    assert!(log.contains("intact"), "{log}");
    assert!(kept_files(d).is_empty(), "nothing is moved aside");
    assert_eq!(dead_letters(d).await, killed.dead as i64);
    // A clean stop removes the marker, so the next start checks nothing.
    crate::util::server::sigterm(&server.child);
    crate::util::server::wait_exit(&mut server, Duration::from_secs(30));
    assert!(!d.join("serve-running").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_wal_cut_at_any_point_loses_only_what_it_no_longer_holds() {
    let killed = ingest_and_kill().await;
    let wal_len = std::fs::metadata(killed.dir.path().join(format!("{LOG}-wal"))).map(|m| m.len()).unwrap_or(0);
    assert!(wal_len > 32 + 2 * (PAGE + 24), "the kill left a write-ahead log ({wal_len} bytes)");
    let frame = PAGE + 24;
    // Mid-frame near the end, on a frame boundary in the middle, inside the header.
    for at in [wal_len - frame / 2, 32 + (wal_len - 32) / frame / 2 * frame, 20] {
        let copy = copy_of(killed.dir.path());
        let d = copy.path();
        cut(&d.join(format!("{LOG}-wal")), at);
        let expected = readable(d, killed.acked.len() as i64 + 1000).await;
        let (_server, log) = restart_and_expect(d, &killed, &expected, &format!("WAL cut at {at}")).await;
        // A cut among frames of an older generation (the log restarts at its head after a checkpoint) drops nothing.
        let reported = log.contains("drops the rest") || log.contains("write-ahead log is whole");
        assert!(reported, "WAL cut at {at}: the write-ahead log is reported: {log}");
        if at < 32 {
            assert!(log.contains("bad_header=true"), "a cut header is named: {log}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_short_or_with_a_damaged_page_is_rebuilt_from_what_is_readable() {
    let killed = ingest_and_kill().await;
    checkpoint(killed.dir.path()).await;
    let len = std::fs::metadata(killed.dir.path().join(LOG)).unwrap().len();
    let leaves = leaf_pages(killed.dir.path()).await;
    assert!(leaves.len() > 20, "{} leaves", leaves.len());
    let cases: Vec<(String, Damage)> = vec![
        ("cut at three quarters, mid-page".into(), Box::new(move |p: &Path| cut(p, len / 4 * 3 + 1234))),
        ("cut at half, on a page boundary".into(), Box::new(move |p: &Path| cut(p, len / 2 / PAGE * PAGE))),
        (format!("leaf page {} overwritten", leaves[leaves.len() / 2]), {
            let page = leaves[leaves.len() / 2];
            Box::new(move |p: &Path| overwrite_page(p, page))
        }),
        ("the header page overwritten".into(), Box::new(|p: &Path| overwrite_page(p, 1))),
    ];
    for (what, damage) in cases {
        let copy = copy_of(killed.dir.path());
        let d = copy.path();
        damage(&d.join(LOG));
        let expected = readable(d, killed.acked.len() as i64 + 1000).await;
        let lost = killed.acked.iter().filter(|u| !expected.contains(*u)).count() as u64;

        let (server, log) = restart_and_expect(d, &killed, &expected, &what).await;
        assert!(log.contains("the file is damaged"), "{what}: {log}");
        assert_eq!(kept_files(d).len(), 1, "{what}: the damaged file is kept");
        // The count, or "unknown" when the log's end could not be read either (everything from the start is named).
        let reported = field(&log, "table=log", "acknowledged_not_ingested");
        let unknown = log.contains("acknowledged_not_ingested=unknown");
        assert!(
            unknown || lost <= reported.unwrap_or(0),
            "{what}: {lost} acknowledged events gone, {reported:?} reported: {log}"
        );
        let rebuilt = r#"phs_embedded_recovery_total{file="ingestion-log.sqlite3",what="files_rebuilt"}"#;
        assert_eq!(metric(&server, rebuilt).await, Some(1), "{what}");
        eprintln!("{what}: {} acknowledged, {lost} unreadable (reported at most {reported:?})", killed.acked.len());
    }
}
