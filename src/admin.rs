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
    /// `ok` or `error`.
    pub status: String,
    /// Why the check failed; absent when it passed.
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
/// and no worker is stuck on a batch.
async fn health(State(s): State<AdminState>) -> Response {
    respond(report(&s, Vec::new(), metrics::global().liveness(s.max_stale, s.max_batch)))
}

async fn prometheus() -> Response {
    let body = metrics::global().prometheus().await;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn snapshot(State(s): State<AdminState>) -> Response {
    let m = metrics::global();
    Json(m.report(&s.identity, m.liveness(s.max_stale, s.max_batch)).await).into_response()
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
    let code = if r.reason.is_none() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(r)).into_response()
}
