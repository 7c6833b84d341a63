//! The capture endpoint (CAPTURE_ADDR): PostHog's capture API (`/e`,
//! `/capture`, `/batch`, `/i/v0/e`, with or without a trailing slash) so
//! the real SDKs can send to phs. A request is answered 200 only once its
//! events are durably appended; unknown tokens get 401, bad bodies 400,
//! bodies or events over the limits 413. A hostile request gets a 4xx, never
//! a 5xx: only an unavailable store or log answers 503 (the SDK retries those).

mod body;
pub mod parse;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

pub use parse::CaptureError;

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
    // The handler reads the body itself, to its limit ([`body::read`]); gzip bodies are bounded in
    // the parser after inflating.
    r.layer(DefaultBodyLimit::disable()).layer(axum::middleware::map_response(close_when_too_large)).with_state(state)
}

/// A body refused for its size may not have been read to its end (past
/// [`body::DRAIN_BYTES`]), so the server drops the connection after
/// answering: saying so keeps the client from sending its next request on a
/// connection about to close (it would fail unanswered).
async fn close_when_too_large(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// The client's address: the first X-Forwarded-For entry when it is an IP
/// address (anything else there is not stored as `$ip`), else the peer's.
fn client_ip(forwarded_for: Option<&str>, peer: SocketAddr) -> String {
    forwarded_for
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .unwrap_or(peer.ip())
        .to_string()
}

fn reply(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(json!({"status": code.as_u16(), "error": message}))).into_response()
}

async fn capture(
    State(s): State<CaptureState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = match body::read(body, parse::MAX_BODY_BYTES).await {
        body::Read::Body(b) => b,
        body::Read::TooLarge => return reply(StatusCode::PAYLOAD_TOO_LARGE, &CaptureError::TooLarge.to_string()),
        body::Read::Failed(e) => return reply(StatusCode::BAD_REQUEST, &format!("cannot read the request body: {e}")),
    };
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let ip = client_ip(header("x-forwarded-for"), peer);
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
        Err(e) if e.too_large() => return reply(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
        Err(e) if e.unauthorized() => return reply(StatusCode::UNAUTHORIZED, &e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ip_address_in_x_forwarded_for_is_taken() {
        let peer: SocketAddr = "10.1.1.1:5000".parse().unwrap();
        assert_eq!(client_ip(Some(" 203.0.113.9 , 10.0.0.1"), peer), "203.0.113.9");
        assert_eq!(client_ip(Some("2001:db8::1"), peer), "2001:db8::1");
        assert_eq!(client_ip(Some("not-an-ip, 1.2.3.4"), peer), "10.1.1.1");
        assert_eq!(client_ip(None, peer), "10.1.1.1");
    }
}
