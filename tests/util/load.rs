//! A steady load for fault tests, and what a test reads of the server
//! process while it runs: one sender posts a small SDK batch at a fixed pace
//! and keeps going through refusals and timeouts (a client retrying later),
//! recording which uuids were acknowledged; the CPU time and resident
//! memory of a process come from /proc.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Load {
    acked: Arc<Mutex<HashSet<String>>>,
    sent: Arc<Mutex<HashSet<String>>>,
    /// Requests that got no 200 (refused, failed or timed out).
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// What a load run left: the uuids acknowledged with 200, all uuids sent, and the requests refused.
pub struct Outcome {
    pub acked: HashSet<String>,
    pub sent: HashSet<String>,
    pub failed: u64,
}

/// Posts `per_batch` events to `url` (`/batch`) every `pace`, each request bounded by 10 s.
pub fn steady(url: &str, token: &str, per_batch: usize, pace: Duration) -> Load {
    let (acked, sent) = (Arc::new(Mutex::new(HashSet::new())), Arc::new(Mutex::new(HashSet::new())));
    let (failed, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let task = {
        let (url, token) = (url.to_string(), token.to_string());
        let (acked, sent, failed, stop) = (acked.clone(), sent.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let mut seq = 0;
            while !stop.load(Ordering::SeqCst) {
                let (body, uuids) = sdk_batch(&token, per_batch, &mut seq);
                sent.lock().unwrap().extend(uuids.iter().cloned());
                match client.post(&url).header("content-type", "application/json").body(body).send().await {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(uuids),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(pace).await;
            }
        })
    };
    Load { acked, sent, failed, stop, task }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} acknowledged of {} sent, {} requests failed", self.acked.len(), self.sent.len(), self.failed)
    }
}

impl Load {
    pub fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops after the request in flight.
    pub async fn stop(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        let acked = self.acked.lock().unwrap().clone();
        let sent = self.sent.lock().unwrap().clone();
        Outcome { acked, sent, failed: self.failed.load(Ordering::Relaxed) }
    }
}

/// An SDK `/batch` body of `n` events for `token`, spread over 7 distinct ids, each with
/// a fresh uuid (`seq` counts on across calls): the body and the uuids.
pub fn sdk_batch(token: &str, n: usize, seq: &mut u64) -> (String, Vec<String>) {
    let events: Vec<serde_json::Value> = (0..n)
        .map(|_| {
            *seq += 1;
            serde_json::json!({"event": "tick", "distinct_id": format!("u{}", *seq % 7),
                               "uuid": uuid::Uuid::now_v7().to_string()})
        })
        .collect();
    let uuids = events.iter().map(|e| e["uuid"].as_str().unwrap().to_string()).collect();
    (serde_json::json!({"api_key": token, "batch": events}).to_string(), uuids)
}

/// CPU time (user + system) the process has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name, in parentheses, may hold spaces: fields are counted after its end.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

fn clock_ticks() -> u64 {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(100)
}

/// Resident memory of the process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Resident memory of the process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    rss_kib(pid) as f64 / 1024.0
}
