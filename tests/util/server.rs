//! `phs serve` as a child process for a test: started on free ports with
//! the test's settings, waited on until healthy, stopped with signals; and
//! SDK-style batches streamed at it.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, phs};

pub struct Server {
    pub child: Child,
    /// Admin address.
    pub addr: String,
    /// Capture endpoint address.
    pub capture: String,
    /// Where the server's stderr goes: a file, never a pipe nobody reads,
    /// which would block a server that logs a lot once it filled.
    pub log: std::path::PathBuf,
    _log_dir: Option<tempfile::TempDir>,
}

impl Server {
    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(envs: &[(&str, String)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    spawn(envs, log, Some(dir))
}

/// Like [`start`], with the server's log in `log`, which outlives the server.
pub fn start_logged(envs: &[(&str, String)], log: &std::path::Path) -> Server {
    spawn(envs, log.to_path_buf(), None)
}

fn spawn(envs: &[(&str, String)], log: std::path::PathBuf, log_dir: Option<tempfile::TempDir>) -> Server {
    let stderr: Stdio = std::fs::File::create(&log).unwrap().into();
    let addr = format!("127.0.0.1:{}", free_port());
    let capture = format!("127.0.0.1:{}", free_port());
    let child = phs()
        .arg("serve")
        .env("ADMIN_ADDR", &addr)
        .env("CAPTURE_ADDR", &capture)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    Server { child, addr, capture, log, _log_dir: log_dir }
}

pub fn healthcheck(addr: &str, extra: &[&str]) -> std::process::Output {
    phs().args(["healthcheck", "--admin-addr", addr]).args(extra).output().unwrap()
}

/// Polls until `phs healthcheck` passes, or panics with the server's stderr.
pub fn wait_healthy(server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if healthcheck(&server.addr, &[]).status.success() {
            return;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("phs serve exited with {status}: {}", server.log_text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("phs serve did not become healthy within 30 s");
}

pub fn sigterm(child: &Child) {
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

/// SDK-style batches streamed to a capture endpoint by two senders until it stops answering.
pub struct Stream {
    acked: Arc<Mutex<HashSet<String>>>,
    sent: Arc<Mutex<HashSet<String>>>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

pub fn stream_batches(url: &str, token: &str) -> Stream {
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let sent = Arc::new(Mutex::new(HashSet::new()));
    let mut senders = Vec::new();
    for _ in 0..2 {
        let (url, token, acked, sent) = (url.to_string(), token.to_string(), acked.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..10_000 {
                let events: Vec<serde_json::Value> = (0..25)
                    .map(|i| serde_json::json!({"event": "tick", "distinct_id": format!("u{}", i % 7), "uuid": uuid::Uuid::now_v7().to_string()}))
                    .collect();
                let uuids: Vec<String> = events.iter().map(|e| e["uuid"].as_str().unwrap().to_string()).collect();
                sent.lock().unwrap().extend(uuids.iter().cloned());
                let body = serde_json::json!({"api_key": token, "batch": events}).to_string();
                match client.post(&url).header("content-type", "application/json").body(body).send().await {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(uuids),
                    _ => return,
                }
            }
        }));
    }
    Stream { acked, sent, senders }
}

impl Stream {
    /// Waits for the senders to give up: (uuids acknowledged with 200, uuids sent).
    pub async fn finish(self) -> (HashSet<String>, HashSet<String>) {
        for s in self.senders {
            s.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        let sent = self.sent.lock().unwrap().clone();
        (acked, sent)
    }
}

pub fn wait_exit(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "phs serve did not stop within {within:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
