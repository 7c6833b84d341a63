//! The capture endpoint (CAPTURE_ADDR): PostHog's capture API (`/e`,
//! `/capture`, `/batch`, `/i/v0/e`, with or without a trailing slash) so
//! the real SDKs can send to phs. A request is answered 200 only once its
//! events are durably appended; unknown tokens get 401, bad bodies 400.

pub mod parse;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

pub use parse::{CaptureError, CapturedEvent};

use super::team::TeamCache;
use crate::wire::Producer;

#[derive(Clone)]
pub struct CaptureState {
    pub producer: Arc<dyn Producer>,
    pub teams: Arc<TeamCache>,
}

pub fn router(state: CaptureState) -> Router {
    let mut r = Router::new();
    for path in ["/e", "/capture", "/batch", "/i/v0/e", "/track", "/engage"] {
        r = r.route(path, any(capture)).route(&format!("{path}/"), any(capture));
    }
    r.with_state(state)
}

fn reply(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(json!({"status": code.as_u16(), "error": message}))).into_response()
}

async fn capture(
    State(s): State<CaptureState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let ip = header("x-forwarded-for")
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| peer.ip().to_string());
    let site_url = header("origin")
        .map(String::from)
        .unwrap_or_else(|| format!("http://{}", header("host").unwrap_or("localhost")));
    let req = parse::Request {
        query: uri.query().unwrap_or(""),
        content_type: header("content-type"),
        body: &body,
        ip: Some(ip),
        site_url,
        now: chrono::Utc::now(),
    };
    let events = match parse::parse(&req) {
        Ok(e) => e,
        Err(e) => return reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    for e in &events {
        match s.teams.by_token(&e.token).await {
            Ok(Some(_)) => {}
            Ok(None) => return reply(StatusCode::UNAUTHORIZED, &format!("unknown API token `{}`", e.token)),
            Err(err) => return reply(StatusCode::SERVICE_UNAVAILABLE, &format!("cannot check the API token: {err}")),
        }
    }
    let messages: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (format!("{}:{}", e.token, e.distinct_id), serde_json::to_vec(e).expect("captured events serialize")))
        .collect();
    match s.producer.append(&messages).await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": 1}))).into_response(),
        Err(err) => reply(StatusCode::SERVICE_UNAVAILABLE, &format!("events not accepted, retry: {err}")),
    }
}
