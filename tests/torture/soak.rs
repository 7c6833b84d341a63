//! The soak (issue 16): a steady load for PHS_SOAK_SECS (45 s in CI, 30
//! minutes in `scripts/torture`) at PHS_SOAK_RATE events/s, embedded log
//! with persons on Postgres, events in ClickHouse, the torture plugin, and
//! malformed messages that become dead letters. The server's memory, open
//! files and sockets stay flat, and its local log and dead-letter table stay
//! within their retention; every event is stored.

use std::time::{Duration, Instant};

use super::load::{self, Receiver, Target};
use crate::util::production::Deployment;
use crate::util::server::{start, wait_healthy};

const RETAIN_BYTES: u64 = 4 << 20;
const RETAIN_LETTERS: i64 = 2_000;
/// Malformed messages written every sample (2 s).
const POISON_PER_SAMPLE: usize = 150;

struct Sample {
    at: f64,
    rss_kib: u64,
    fds: usize,
    sockets: usize,
    log_used: u64,
    letters: i64,
}

/// (open files, of which sockets).
fn fds(pid: u32) -> (usize, usize) {
    let links: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect();
    let sockets = links.iter().filter(|l| l.to_string_lossy().starts_with("socket:")).count();
    (links.len(), sockets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_load_leaves_memory_files_and_the_log_flat() {
    let secs = load::env_or("PHS_SOAK_SECS", 45) as u64;
    let rate = load::env_or("PHS_SOAK_RATE", 400);
    let d = Deployment::new().await;
    // The local log as the source (Kafka out), so its retention is part of the soak.
    let mut env: Vec<(&'static str, String)> = d.env.iter().filter(|(k, _)| !k.starts_with("KAFKA")).cloned().collect();
    env.extend([
        ("PHS_PLUGIN_FETCH_ALLOW_PRIVATE", "true".to_string()),
        ("PHS_LOG_RETENTION_BYTES", RETAIN_BYTES.to_string()),
        ("PHS_DEAD_LETTER_RETENTION_COUNT", RETAIN_LETTERS.to_string()),
        ("PHS_LOG_RETENTION_SWEEP_MS", "2000".to_string()),
    ]);
    let cli = |args: &[&str]| crate::util::phs_ok(&env, args);
    let token = cli(&["teams", "create", "soak"]).trim().to_string();
    let (receiver, url) = Receiver::start().await;
    super::install(&cli, d.dir.path(), &token, &url);
    let mut server = start(&env);
    wait_healthy(&mut server);
    let pid = server.child.id();

    let events = rate * secs as usize;
    let profile = load::Profile { events, rate, kills: 0 };
    let capture = std::sync::Arc::new(std::sync::Mutex::new(server.capture.clone()));
    let sender = tokio::spawn({
        let (target, token) = (Target::Capture(capture), token.clone());
        async move { load::send_all(target, token, &profile).await }
    });

    // Malformed messages straight into the log, as a broken producer would write them: dead letters.
    let log_url = format!("sqlite://{}", d.dir.path().join("ingestion-log.sqlite3").display());
    let log = sqlx::SqlitePool::connect(&log_url).await.unwrap();
    let start_at = Instant::now();
    let mut samples = Vec::new();
    let mut poison = 0;
    while start_at.elapsed() < Duration::from_secs(secs) {
        for _ in 0..POISON_PER_SAMPLE {
            sqlx::query("INSERT INTO log (key, payload) VALUES ('bad', $1)")
                .bind(format!("{{not json {poison}").into_bytes())
                .execute(&log)
                .await
                .unwrap();
            poison += 1;
        }
        let (fds, sockets) = fds(pid);
        let read = |q: &'static str| {
            let log = log.clone();
            async move { sqlx::query_scalar::<_, i64>(q).fetch_one(&log).await.unwrap() }
        };
        let used =
            (read("PRAGMA page_count").await - read("PRAGMA freelist_count").await) * read("PRAGMA page_size").await;
        let letters = read("SELECT count(*) FROM dead_letters").await;
        samples.push(Sample {
            at: start_at.elapsed().as_secs_f64(),
            rss_kib: crate::util::load::rss_kib(pid),
            fds,
            sockets,
            log_used: used as u64,
            letters,
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    sender.await.unwrap();
    assert!(server.child.try_wait().unwrap().is_none(), "phs serve exited during the soak");

    for s in samples.iter().step_by((samples.len() / 12).max(1)) {
        eprintln!(
            "soak t={:6.0}s rss={:7} KiB fds={:4} sockets={:4} log_used={:6} KiB dead_letters={}",
            s.at,
            s.rss_kib,
            s.fds,
            s.sockets,
            s.log_used / 1024,
            s.letters
        );
    }
    // Warm-up: the first fifth (caches fill, pools open) is left out.
    let warm = &samples[samples.len() / 5..];
    let (first, second) = warm.split_at(warm.len() / 2);
    let peak = |s: &[Sample]| s.iter().map(|s| s.rss_kib).max().unwrap();
    let (rss_start, rss_peak, rss_end) = (warm[0].rss_kib, peak(warm), warm.last().unwrap().rss_kib);
    eprintln!(
        "soak: {events} events at {rate}/s, {poison} malformed; RSS start {rss_start} KiB, peak {rss_peak} KiB, end {rss_end} KiB"
    );
    assert!(
        peak(second) <= peak(first) * 5 / 4 + 32 * 1024,
        "RSS grows: {} KiB then {} KiB",
        peak(first),
        peak(second)
    );
    let most = |f: fn(&Sample) -> usize, s: &[Sample]| s.iter().map(f).max().unwrap();
    assert!(most(|s| s.fds, second) <= most(|s| s.fds, first) + 8, "open files grow");
    assert!(most(|s| s.sockets, second) <= most(|s| s.sockets, first) + 4, "connections grow");
    let letters = samples.iter().map(|s| s.letters).max().unwrap();
    // Retention sweeps every 2 s, and the malformed messages keep coming meanwhile: allow two sweeps' worth.
    let between_sweeps = 2 * POISON_PER_SAMPLE as i64;
    assert!(letters <= RETAIN_LETTERS + between_sweeps, "dead letters past their retention: {letters}");
    let used = samples.iter().map(|s| s.log_used).max().unwrap();
    assert!(used <= RETAIN_BYTES + (8 << 20), "the log's used bytes past their retention: {used}");
    assert!(samples.last().unwrap().letters >= RETAIN_LETTERS / 2, "the malformed messages were dead-lettered");

    let stored = super::checks::clickhouse_events(&d, events).await;
    assert!(stored.rows >= events as u64);
    super::checks::hooks_saw_everything(&receiver, events).await;
    drop(server);
}
