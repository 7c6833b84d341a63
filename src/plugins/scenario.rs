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
//!   `jobs` runs every queued job, ignoring their delays, until none is left;
//!   a RetryError in onEvent or exportEvents is retried at once, with the
//!   server's attempt counts (3 attempts of onEvent, 3 retries of exportEvents);
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

use super::fixtures::{Fixture, FixtureError, Outcome, Report};
use super::logs::MemoryLog;
use super::{CallError, Context, Limits, PluginSource, PluginVm, ProcessOutcome};
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
pub async fn check(source: &PluginSource, name: &str, f: &Fixture, limits: Limits) -> Result<Report, FixtureError> {
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
    let logs = Arc::new(MemoryLog::default());
    let jobs = Arc::new(crate::store::memory::MemoryJobs::default());
    let captured = Arc::new(Captured::default());
    let ctx = Context {
        team_id: 1,
        plugin_id: 1,
        plugin_config_id: 1,
        config: source.manifest.validate_config(&config)?,
        cache: Arc::new(crate::cache::memory::MemoryCache::default()),
        storage: Arc::new(crate::store::memory::MemoryStorage::default()),
        jobs: jobs.clone(),
        logs: logs.clone(),
        capture: Some(super::api::Capture {
            producer: captured.clone(),
            token: "phc_fixture".into(),
            plugin_name: source.manifest.name.clone(),
        }),
        fetch: super::fetch::FetchPolicy { allow_private: base.is_some(), ..Default::default() },
        attachments: Vec::new(),
        geoip: None,
    };
    let vm = PluginVm::load(source, ctx, limits)?;
    let mut events: Vec<Value> = f.event.iter().cloned().chain(f.events.iter().flatten().cloned()).collect();
    let steps: Vec<String> = match &f.run {
        Some(r) => r.clone(),
        None => ["processEvent", "onEvent", "exportEvents"]
            .iter()
            .filter(|s| **s == "processEvent" || vm.has(s))
            .map(|s| s.to_string())
            .collect(),
    };
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    match vm.setup().await {
        Err(e) => errors.push(format!("setupPlugin: {e}")),
        Ok(()) => {
            for step in &steps {
                run_step(&vm, step, &mut events, &mut outcomes, &mut errors, &jobs, &config).await;
            }
        }
    }
    let _ = vm.teardown().await;

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
    Ok(Report { name: name.to_string(), passed: differences.is_empty(), outcome, differences, logs: logs.take() })
}

async fn run_step(
    vm: &PluginVm,
    step: &str,
    events: &mut Vec<Value>,
    outcomes: &mut Vec<Outcome>,
    errors: &mut Vec<String>,
    jobs: &crate::store::memory::MemoryJobs,
    config: &BTreeMap<String, String>,
) {
    match step {
        "processEvent" => {
            let mut kept = Vec::new();
            for e in events.iter() {
                outcomes.push(match vm.process_event(e).await {
                    Ok(ProcessOutcome::Event(out)) => {
                        kept.push(out.clone());
                        Outcome::Event { event: out }
                    }
                    Ok(ProcessOutcome::Dropped) => Outcome::Dropped,
                    Err(err) => {
                        errors.push(format!("processEvent: {err}"));
                        kept.push(e.clone());
                        Outcome::Error { error: err.to_string(), limit: err.is_limit() }
                    }
                });
            }
            *events = kept;
        }
        "onEvent" => {
            for e in events.iter() {
                let r = retried(crate::worker::events::ON_EVENT_ATTEMPTS, || vm.on_event(e)).await;
                errors.extend(r.err().map(|err| format!("onEvent: {err}")));
            }
        }
        "exportEvents" => {
            let cfg = Value::Object(config.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect());
            let limits = crate::worker::events::ExportLimits::from_config(&cfg);
            let batch: Vec<Value> = events
                .iter()
                .filter(|e| !limits.ignore.contains(e.get("event").and_then(Value::as_str).unwrap_or_default()))
                .cloned()
                .collect();
            if !batch.is_empty() {
                let attempts = crate::worker::events::EXPORT_RETRIES as u32 + 1;
                let r = retried(attempts, || vm.export_events(&batch)).await;
                errors.extend(r.err().map(|err| format!("exportEvents: {err}")));
            }
        }
        "jobs" => {
            let far = chrono::Utc::now() + chrono::Duration::days(365 * 200);
            for _ in 0..100 {
                let due = jobs.claim_jobs(far, std::time::Duration::from_secs(3600), 100).await.unwrap_or_default();
                if due.is_empty() {
                    break;
                }
                for job in due {
                    if let Err(err) = vm.run_job(&job.spec.name, &job.spec.payload).await {
                        errors.push(format!("job {}: {err}", job.spec.name));
                    }
                    let _ = jobs.finish_job(job.id).await;
                }
            }
        }
        task => {
            if let Err(err) = vm.run_task(task).await {
                errors.push(format!("{task}: {err}"));
            }
        }
    }
}

/// Calls `f` until it succeeds, fails otherwise than with RetryError, or
/// has been tried `attempts` times.
async fn retried<F, Fut>(attempts: u32, mut f: F) -> Result<(), CallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), CallError>>,
{
    let mut last = Ok(());
    for _ in 0..attempts {
        last = f().await;
        if !matches!(last, Err(CallError::Retry(_))) {
            return last;
        }
    }
    last
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
