//! The admin HTTP listener every `phs serve` opens (ADMIN_ADDR): liveness at
//! `/_health` and readiness at `/_ready`, each 200 or 503 with a JSON body
//! saying why; `/metrics` in Prometheus text format; `/_snapshot`, the JSON
//! that `phs top` reads.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::health::{self, Check, Probe};
use crate::metrics::{self, report::Identity};

/// What the admin listener can look at.
#[derive(Clone)]
pub struct AdminState {
    pub probes: Arc<Vec<Arc<dyn Probe>>>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub mode: &'static str,
    /// HEALTHCHECK_MAX_STALE_SECONDS.
    pub max_stale: Duration,
    /// PHS_HEALTH_MAX_BATCH_SECONDS.
    pub max_batch: Duration,
    pub identity: Arc<Identity>,
}

/// The body of /_health and /_ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// `ok`, `degraded` (live, but a dependency is unreachable: 200) or `error` (503).
    pub status: String,
    /// Why the check failed or is degraded; absent when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per-dependency results (readiness only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    pub version: String,
    pub mode: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/_health", get(health))
        .route("/_ready", get(ready))
        .route("/metrics", get(prometheus))
        .route("/_snapshot", get(snapshot))
        .with_state(state)
}

/// Liveness: the process answers, ingestion is not stale while events wait,
/// and no worker is stuck on a batch; degraded (still 200) while a dependency is unreachable.
async fn health(State(s): State<AdminState>) -> Response {
    let (live, reason) = liveness(&s);
    let mut r = report(&s, Vec::new(), reason);
    if live && r.reason.is_some() {
        r.status = "degraded".into();
    }
    respond(r)
}

/// Whether the instance is live, and why not or why it is degraded: an unreachable dependency
/// is named whether or not something that needs it has failed for long enough to fail liveness.
fn liveness(s: &AdminState) -> (bool, Option<String>) {
    let m = metrics::global();
    let (failed, degraded) = (m.liveness(s.max_stale, s.max_batch), m.degraded(s.max_batch));
    let live = failed.is_none();
    let reason = match (failed, degraded) {
        // The unreachable service first: it is the cause of what fails, and `phs top` shows the start.
        (Some(f), Some(d)) => Some(format!("{d}; {f}")),
        (f, d) => f.or(d),
    };
    (live, reason)
}

async fn prometheus() -> Response {
    let body = metrics::global().prometheus().await;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn snapshot(State(s): State<AdminState>) -> Response {
    let (live, reason) = liveness(&s);
    let mut report = metrics::global().report(&s.identity, None).await;
    // `phs top` shows the reason beside the status: UNHEALTHY, or HEALTHY but degraded.
    (report.healthy, report.reason) = (live, reason);
    Json(report).into_response()
}

/// Readiness: every store this instance depends on answers within 2 s.
async fn ready(State(s): State<AdminState>) -> Response {
    let checks = health::check_all(&s.probes, Duration::from_secs(2)).await;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} ({}): {}", c.name, c.backend, c.error.as_deref().unwrap_or("failed")))
        .collect();
    let reason = (!failed.is_empty()).then(|| failed.join("; "));
    respond(report(&s, checks, reason))
}

fn report(s: &AdminState, checks: Vec<Check>, reason: Option<String>) -> Report {
    Report {
        status: if reason.is_none() { "ok" } else { "error" }.into(),
        reason,
        checks,
        version: env!("CARGO_PKG_VERSION").into(),
        mode: s.mode.into(),
        started_at: s.started_at,
    }
}

fn respond(r: Report) -> Response {
    let code = if r.status == "error" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(r)).into_response()
}
