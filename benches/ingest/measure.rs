//! What the bench reads off phs and its stores: when every event is stored,
//! when each probe became visible, and the server's CPU, memory and stages.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use phs::config::StoreSettings;

/// How often the bench looks at the store: the bound on how late it sees an event.
pub const POLL: Duration = Duration::from_millis(50);

/// Where the stored events are: the embedded events file or ClickHouse.
#[derive(Clone)]
pub enum Events {
    Sqlite(sqlx::SqlitePool),
    ClickHouse(Box<clickhouse::Client>),
}

impl Events {
    pub async fn open(dir: &Path, production: Option<&StoreSettings>) -> Events {
        match production {
            Some(s) => {
                Events::ClickHouse(Box::new(phs::clickhouse::client(&s.clickhouse).expect("CLICKHOUSE_HOST is set")))
            }
            None => {
                let url = format!("sqlite://{}?mode=ro", dir.join("events.sqlite3").display());
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match sqlx::SqlitePool::connect(&url).await {
                        Ok(pool) => return Events::Sqlite(pool),
                        Err(e) => assert!(Instant::now() < deadline, "events.sqlite3 never appeared: {e}"),
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    async fn count(&self) -> u64 {
        match self {
            // No FINAL while waiting: a bench run redelivers nothing, and FINAL would slow ingestion down.
            Events::ClickHouse(c) => c.query("SELECT count() FROM events").fetch_one().await.unwrap_or(0),
            Events::Sqlite(p) => {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events").fetch_one(p).await.unwrap_or(0) as u64
            }
        }
    }

    /// The uuids among `uuids` that are stored.
    async fn stored_of(&self, uuids: &[String]) -> Vec<String> {
        let list = uuids.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(",");
        let sql = format!("SELECT uuid FROM events WHERE uuid IN ({list})");
        match self {
            Events::ClickHouse(c) => c.query(&sql).fetch_all().await.unwrap_or_default(),
            Events::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(p).await.unwrap_or_default(),
        }
    }

    /// (produced at in µs, processed at) of every stored event.
    async fn produced_and_processed(&self) -> Vec<(i64, chrono::DateTime<chrono::Utc>)> {
        match self {
            // 18.16 has visitParamExtractInt, not the JSON functions.
            Events::ClickHouse(c) => {
                let rows: Vec<(i64, i64)> = c
                    .query(
                        "SELECT visitParamExtractInt(properties, 'bench_produced_us'), created_at_us FROM events FINAL",
                    )
                    .fetch_all()
                    .await
                    .expect("read the stored events");
                rows.into_iter().map(|(p, c)| (p, chrono::DateTime::from_timestamp_micros(c).unwrap())).collect()
            }
            Events::Sqlite(pool) => {
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("SELECT json_extract(properties, '$.bench_produced_us'), created_at FROM events")
                        .fetch_all(pool)
                        .await
                        .unwrap();
                rows.into_iter()
                    .map(|(p, c)| (p, chrono::DateTime::parse_from_rfc3339(&c).unwrap().with_timezone(&chrono::Utc)))
                    .collect()
            }
        }
    }
}

pub type Stored = (chrono::DateTime<chrono::Utc>, Vec<(i64, chrono::DateTime<chrono::Utc>)>);

/// Waits until `n` events are stored: when the bench saw them all, and
/// (produced at, processed at) of each.
pub async fn wait_stored(events: &Events, n: usize) -> Stored {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let count = events.count().await;
        if count >= n as u64 {
            let done = chrono::Utc::now();
            return (done, events.produced_and_processed().await);
        }
        assert!(Instant::now() < deadline, "only {count} of {n} events stored after 30 minutes");
        tokio::time::sleep(POLL).await;
    }
}

/// Probe events, by uuid, with the time they were produced (µs since the
/// epoch) and, once the bench saw them in the store, the time it did.
#[derive(Clone, Default)]
pub struct Probes(Arc<Mutex<ProbeState>>);

#[derive(Default)]
struct ProbeState {
    pending: HashMap<String, i64>,
    seen: Vec<i64>,
}

impl Probes {
    pub fn sent(&self, uuid: String, produced_us: i64) {
        self.0.lock().unwrap().pending.insert(uuid, produced_us);
    }

    /// Looks for the pending probes every [`POLL`] while `producing` is set,
    /// then until none is pending, or for at most a minute more.
    pub async fn follow(&self, events: Events, producing: Arc<std::sync::atomic::AtomicBool>) {
        let mut stopped: Option<Instant> = None;
        loop {
            let pending: Vec<String> = self.0.lock().unwrap().pending.keys().take(500).cloned().collect();
            if !producing.load(std::sync::atomic::Ordering::Relaxed) {
                let since = *stopped.get_or_insert_with(Instant::now);
                if pending.is_empty() || since.elapsed() > Duration::from_secs(60) {
                    return;
                }
            }
            if !pending.is_empty() {
                let found = events.stored_of(&pending).await;
                let now = chrono::Utc::now().timestamp_micros();
                let mut state = self.0.lock().unwrap();
                for uuid in found {
                    if let Some(produced) = state.pending.remove(&uuid) {
                        state.seen.push(now - produced);
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Produce -> stored of the probes seen: (seen, never seen, p50, p99, max) in ms.
    pub fn latencies(&self) -> (usize, usize, f64, f64, f64) {
        let state = self.0.lock().unwrap();
        let mut lat = state.seen.clone();
        lat.sort_unstable();
        let q = |p: f64| lat.get(((lat.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
        (lat.len(), state.pending.len(), q(0.5), q(0.99), q(1.0))
    }
}

/// Peak resident memory of a process (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) a process has used so far: how much work
/// phs did, which a machine shared with other load does not inflate the way
/// it inflates wall-clock time.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name, in parentheses, may hold spaces: count from after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // The state is field 3 of the file and index 0 here: utime (14) and stime (15) are 11 and 12.
    let ticks = field(11) + field(12);
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// CPU seconds used so far by every process whose command name starts with
/// `prefix` (Postgres's backends, ClickHouse, the broker): what the services
/// beside phs cost on the same cores. Processes that ended are not counted.
pub fn cpu_seconds_of(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return f64::NAN };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end().starts_with(prefix))
        })
        .map(cpu_seconds)
        .filter(|s| s.is_finite())
        .sum()
}

/// The services the bench reports the CPU of, by command name.
pub const SERVICES: [&str; 3] = ["postgres", "clickhouse", "nisshi"];

/// Seconds phs spent in each pipeline stage (its `/metrics` histogram sums):
/// where the time went. Per-message stages overlap when keys run concurrently,
/// batches overlap (one is written while the next is processed), and `poll`
/// and `batch` include the overflow pipeline's waits on its empty topic.
pub async fn stage_seconds(admin: &str) -> Vec<(String, f64)> {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .expect("read phs's /metrics")
        .text()
        .await
        .expect("read phs's /metrics");
    text.lines()
        .filter_map(|l| l.strip_prefix("phs_stage_duration_seconds_sum{stage=\""))
        .filter_map(|l| {
            let (stage, rest) = l.split_once('"')?;
            Some((stage.to_string(), rest.trim_start_matches('}').trim().parse().ok()?))
        })
        .filter(|(_, secs)| *secs > 0.0)
        .collect()
}
