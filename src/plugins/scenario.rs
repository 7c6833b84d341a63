//! Fixtures for the async hooks, run by `phs plugins test` with no external
//! service: onEvent, exportEvents, runEvery* tasks and jobs.
//!
//! A fixture becomes a scenario when it has any of these keys:
//! - `"http": [{"status": 429, "body": ...}, ...]`: a local HTTP responder
//!   answers requests with these replies in order (the last one repeats);
//!   `{{http}}` in config values becomes its base URL, and `fetch` may reach it;
//! - `"run": ["processEvent", "onEvent", "exportEvents", "runEveryMinute",
//!   "runEveryHour", "runEveryDay", "jobs"]`: the steps, in order (default:
//!   processEvent, then onEvent and exportEvents when the plugin has them).
//!   `jobs` runs every queued job, ignoring their delays, until none is left.
//!   Each step runs as the server's worker runs it ([`super::delivery`]),
//!   with its waits skipped: a RetryError in onEvent is retried at once (3
//!   attempts in all), and one in exportEvents queues a retry job that the
//!   step runs at once (3 retries), so the attempts are the server's;
//! - `"expected_requests": [{"method", "path", "headers", "body"}]`: the
//!   requests the responder received, in order (header names in lower case,
//!   `body` parsed as JSON when it is);
//! - `"expected_captures": [{"event", "distinct_id", "properties"}]`: the
//!   events sent with `posthog.capture`, in order.
//!
//! Expected requests and captures match when every key they give matches
//! (extra keys are ignored, arrays must have the same length), so volatile
//! fields like timestamps can be left out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::PluginSource;
use super::delivery::{self, ExportLimits, Waits};
use super::fixtures::rig::Rig;
use super::fixtures::{Fixture, FixtureError, Outcome, Report, RunOptions};
use super::logs::{LogLevel, LogSource};
use super::runner::Loaded;
use crate::error::PipeError;
use crate::store::JobQueue;
use crate::wire::Producer;

/// One reply of the fixture's HTTP responder.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpReply {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub body: Option<Value>,
}

fn ok() -> u16 {
    200
}

type Seen = Arc<Mutex<Vec<Value>>>;

/// Starts the responder on loopback; returns its base URL and the requests it saw.
async fn responder(replies: Vec<HttpReply>) -> Result<(String, Seen), std::io::Error> {
    let seen: Seen = Arc::default();
    let (log, replies) = (seen.clone(), Arc::new(replies));
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method, uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let (log, replies) = (log.clone(), replies.clone());
            async move {
                let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
                let n = {
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    let headers: serde_json::Map<String, Value> = headers
                        .iter()
                        .map(|(k, v)| {
                            (k.as_str().to_string(), Value::String(v.to_str().unwrap_or_default().to_string()))
                        })
                        .collect();
                    log.push(json!({"method": method.as_str(), "path": uri.path(), "headers": headers, "body": body}));
                    log.len()
                };
                let reply =
                    replies.get(n - 1).or(replies.last()).cloned().unwrap_or(HttpReply { status: 200, body: None });
                let text = match reply.body {
                    Some(Value::String(s)) => s,
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                (axum::http::StatusCode::from_u16(reply.status).unwrap_or(axum::http::StatusCode::OK), text)
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}"), seen))
}

/// Collects what `posthog.capture` sends.
#[derive(Default)]
struct Captured(Mutex<Vec<Value>>);

#[async_trait]
impl Producer for Captured {
    async fn append(&self, messages: &[(String, Vec<u8>)]) -> Result<(), PipeError> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (_, payload) in messages {
            let message: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
            let data = message.get("data").and_then(Value::as_str).and_then(|d| serde_json::from_str(d).ok());
            held.push(data.unwrap_or(message));
        }
        Ok(())
    }
}

pub fn is_scenario(f: &Fixture) -> bool {
    f.http.is_some() || f.run.is_some() || f.expected_requests.is_some() || f.expected_captures.is_some()
}

const STEPS: &[&str] =
    &["processEvent", "onEvent", "exportEvents", "runEveryMinute", "runEveryHour", "runEveryDay", "jobs"];

/// Checks a scenario's keys when fixtures are loaded.
pub fn validate(f: &Fixture) -> Result<(), String> {
    if let Some(step) = f.run.iter().flatten().find(|s| !STEPS.contains(&s.as_str())) {
        return Err(format!("unknown step `{step}` in `run`; steps are {}", STEPS.join(", ")));
    }
    if f.expected.is_none()
        && f.expected_error.is_none()
        && f.expected_requests.is_none()
        && f.expected_captures.is_none()
    {
        return Err(
            "give at least one of `expected`, `expected_error`, `expected_requests`, `expected_captures`".into()
        );
    }
    if f.expected.is_some() && f.expected_error.is_some() {
        return Err("give only one of `expected` and `expected_error`".into());
    }
    Ok(())
}

/// Runs a scenario and compares what happened with what it expects.
pub async fn check(source: &PluginSource, name: &str, f: &Fixture, opts: &RunOptions) -> Result<Report, FixtureError> {
    let (base, seen) = match &f.http {
        Some(replies) => {
            let (b, s) = responder(replies.clone()).await.map_err(|e| FixtureError::Invalid {
                path: name.to_string(),
                message: format!("cannot start the HTTP responder: {e}"),
            })?;
            (Some(b), s)
        }
        None => (None, Seen::default()),
    };
    let config: BTreeMap<String, String> = f
        .config
        .iter()
        .map(|(k, v)| (k.clone(), base.as_ref().map_or_else(|| v.clone(), |b| v.replace("{{http}}", b))))
        .collect();
    let captured = Arc::new(Captured::default());
    let mut options = opts.runner();
    options.fetch.allow_private |= base.is_some();
    let rig = Rig::new(source, &config, options, Some(captured.clone()));
    let plugin = rig.plugin().await?;
    let mut events: Vec<Value> = f.event.iter().cloned().chain(f.events.iter().flatten().cloned()).collect();
    let steps: Vec<String> = match &f.run {
        Some(r) => r.clone(),
        None => ["processEvent", "onEvent", "exportEvents"]
            .iter()
            .filter(|s| **s == "processEvent" || plugin.vm().has(s))
            .map(|s| s.to_string())
            .collect(),
    };
    let mut outcomes = Vec::new();
    for step in &steps {
        run_step(&rig, &plugin, step, &mut events, &mut outcomes).await;
    }
    let logs = rig.finish(&plugin).await;
    let errors = rig.errors();

    let mut differences = Vec::new();
    match (&f.expected_error, &f.expected) {
        (Some(want), _) => {
            if !errors.iter().any(|e| e.contains(want.as_str())) {
                differences.push(format!("expected an error containing {want:?}, got {errors:?}"));
            }
        }
        (None, expected) => {
            differences.extend(errors.iter().map(|e| format!("error: {e}")));
            if let Some(want) = expected {
                let want: Vec<Value> = match want {
                    Value::Array(a) if f.events.is_some() => a.clone(),
                    other => vec![other.clone()],
                };
                let got: Vec<Value> = outcomes
                    .iter()
                    .map(|o| match o {
                        Outcome::Event { event } => event.clone(),
                        _ => Value::Null,
                    })
                    .collect();
                differences.extend(super::fixtures::diff("", &Value::Array(want), &Value::Array(got)));
            }
        }
    }
    let requests = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(want) = &f.expected_requests {
        differences.extend(subset("requests", &Value::Array(want.clone()), &Value::Array(requests.clone())));
    }
    let captures = captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(want) = &f.expected_captures {
        differences.extend(subset("captures", &Value::Array(want.clone()), &Value::Array(captures.clone())));
    }
    let outcome = Outcome::Scenario { results: outcomes, requests, captures };
    Ok(Report { name: name.to_string(), passed: differences.is_empty(), outcome, differences, logs })
}

/// Runs one step; what fails is stored on the config, as on the server.
async fn run_step(rig: &Rig, p: &Loaded, step: &str, events: &mut Vec<Value>, outcomes: &mut Vec<Outcome>) {
    match step {
        "processEvent" => {
            let mut kept = Vec::new();
            for e in events.iter() {
                let outcome = rig.process(p, e).await;
                match &outcome {
                    Outcome::Event { event } => kept.push(event.clone()),
                    Outcome::Dropped => {}
                    _ => kept.push(e.clone()),
                }
                outcomes.push(outcome);
            }
            *events = kept;
        }
        "onEvent" => {
            if let Err(stopped) = delivery::on_event(&rig.runner, p, 0, events, Waits::Skipped).await {
                let note = format!("onEvent stopped after {} events: {}", stopped.handled, stopped.reason);
                rig.runner.log(p, LogSource::System, LogLevel::Error, note);
            }
        }
        "exportEvents" => {
            let limits = ExportLimits::from_config(&p.config().config);
            let batch: Vec<Value> = events.iter().filter(|e| limits.exports(e)).cloned().collect();
            if !batch.is_empty() {
                delivery::export(&rig.runner, rig.jobs.as_ref(), p, batch, 0).await;
                run_jobs(rig, p, |name| name == delivery::EXPORT_RETRY_JOB).await;
            }
        }
        "jobs" => run_jobs(rig, p, |_| true).await,
        task => delivery::run_task(&rig.runner, p, task).await,
    }
}

/// Runs the queued jobs `which` picks, their delays ignored, until none is
/// left (at most 100 rounds: a job may queue another).
async fn run_jobs(rig: &Rig, p: &Loaded, which: impl Fn(&str) -> bool) {
    let far = chrono::Utc::now() + chrono::Duration::days(365 * 200);
    for _ in 0..100 {
        // No lease: the jobs left alone stay claimable by a later step.
        let due = rig.jobs.claim_jobs(far, std::time::Duration::ZERO, 100).await.unwrap_or_default();
        let picked: Vec<_> = due.into_iter().filter(|j| which(&j.spec.name)).collect();
        if picked.is_empty() {
            break;
        }
        for job in picked {
            delivery::run_job(&rig.runner, rig.jobs.as_ref(), p, &job.spec).await;
            let _ = rig.jobs.finish_job(job.id).await;
        }
    }
}

/// Differences where `got` does not match `want` on the keys `want` gives.
fn subset(path: &str, want: &Value, got: &Value) -> Vec<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .flat_map(|(k, wv)| match g.get(k) {
                Some(gv) => subset(&format!("{path}.{k}"), wv, gv),
                None => vec![format!("- {path}.{k}: expected {wv}, missing")],
            })
            .collect(),
        (Value::Array(w), Value::Array(g)) if w.len() != g.len() => {
            vec![format!("~ {path}: expected {} items, got {}: {got}", w.len(), g.len())]
        }
        (Value::Array(w), Value::Array(g)) => {
            w.iter().zip(g).enumerate().flat_map(|(i, (wv, gv))| subset(&format!("{path}[{i}]"), wv, gv)).collect()
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Vec::new(),
        (w, g) if w == g => Vec::new(),
        (w, g) => vec![format!("~ {path}: expected {w}, got {g}")],
    }
}
