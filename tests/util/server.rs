//! `phs serve` as a child process for a test: started on port 0 with the
//! test's settings (the kernel picks the ports, the server names them in
//! PHS_READY_FILE, so no two tests race for a free port), waited on until
//! healthy, stopped with signals; and SDK-style batches streamed at it.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::eventually::eventually_blocking;
use super::phs;

pub struct Server {
    pub child: Child,
    /// Admin address, as bound; empty when the server exited before listening.
    pub addr: String,
    /// Capture endpoint address, as bound; empty when it has none (PLUGIN_SERVER_MODE=async).
    pub capture: String,
    /// Where the server's stderr goes: a file, never a pipe nobody reads,
    /// which would block a server that logs a lot once it filled.
    pub log: std::path::PathBuf,
    /// Its PHS_READY_FILE.
    pub ready: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test shows what its server said: the log file goes away with the test.
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let status = self.child.try_wait().ok().flatten();
            eprintln!("phs serve (exited: {status:?}), last lines of its log:");
            for line in tail.iter().rev() {
                eprintln!("    {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `phs serve` and returns once it listens (or has exited: see [`wait_exit`]).
pub fn start(envs: &[(&str, String)]) -> Server {
    spawn(envs, None)
}

/// Like [`start`], with the server's log in `log`, which outlives the server.
pub fn start_logged(envs: &[(&str, String)], log: &std::path::Path) -> Server {
    spawn(envs, Some(log.to_path_buf()))
}

fn spawn(envs: &[(&str, String)], log: Option<std::path::PathBuf>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log = log.unwrap_or_else(|| dir.path().join("serve.log"));
    let ready = dir.path().join("ready");
    let stderr: Stdio = std::fs::File::create(&log).unwrap().into();
    let child = phs()
        .arg("serve")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("CAPTURE_ADDR", "127.0.0.1:0")
        .env("PHS_READY_FILE", &ready)
        // Its own error-rate counts in a shared Redis, unless the test names the key for a cluster.
        .env("PHS_ERROR_RATE_KEY", super::unique("error-rate"))
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut server = Server { child, addr: String::new(), capture: String::new(), log, ready, _dir: dir };
    let listening = eventually_blocking(Duration::from_secs(60), "phs serve to write its ready file", || {
        if let Ok(text) = std::fs::read_to_string(&server.ready) {
            return Ok(Some(text));
        }
        match server.child.try_wait().unwrap() {
            Some(_) => Ok(None),
            None => Err(server.log_text()),
        }
    });
    for line in listening.iter().flat_map(|text| text.lines()) {
        match line.split_once('=') {
            Some(("ADMIN_ADDR", a)) => server.addr = a.to_string(),
            Some(("CAPTURE_ADDR", a)) => server.capture = a.to_string(),
            _ => panic!("unexpected line in the ready file: {line:?}"),
        }
    }
    server
}

pub fn healthcheck(addr: &str, extra: &[&str]) -> std::process::Output {
    phs().args(["healthcheck", "--admin-addr", addr]).args(extra).output().unwrap()
}

/// Polls until `phs healthcheck` passes, or panics with the server's stderr.
pub fn wait_healthy(server: &mut Server) {
    eventually_blocking(Duration::from_secs(30), "phs serve to become healthy", || {
        let check = healthcheck(&server.addr, &[]);
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("phs serve exited with {status}: {}", server.log_text());
        }
        check.status.success().then_some(()).ok_or_else(|| super::stderr(&check))
    });
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
            let mut seq = 0;
            for _ in 0..10_000 {
                let (body, uuids) = super::load::sdk_batch(&token, 25, &mut seq);
                sent.lock().unwrap().extend(uuids.iter().cloned());
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

/// Waits for the server to exit (after a signal, or by itself): its status.
pub fn wait_exit(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    eventually_blocking(within, "phs serve to exit", || server.child.try_wait().unwrap())
}

/// Waits up to `within` for the instance's `/metrics` to hold the line
/// `line`; fails with the last text seen. For counters set after a commit,
/// which can come after the events it covers are visible.
pub async fn wait_for_metric(addr: &str, line: &str, within: Duration) {
    super::eventually::eventually(within, line, || async {
        let metrics = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
        metrics.lines().any(|l| l == line).then_some(()).ok_or_else(|| format!("\n{metrics}"))
    })
    .await;
}
