//! Turns one capture request, as PostHog's SDKs send it, into messages in the
//! capture format the pipeline consumes (`{uuid, distinct_id, ip, site_url,
//! data, token, now, sent_at}`, `data` being the event as a JSON string).
//!
//! Accepted bodies: JSON (one event, an array, or `{api_key, batch: [...]}`),
//! form-encoded `data=` holding base64 or plain JSON, and gzip (detected by
//! its magic bytes, whatever the `compression` parameter says).
//!
//! Capture refuses here what the pipeline could only dead-letter silently,
//! so the sender learns why: events without a string name, uuids that are
//! not UUIDs, and events too large for one message. Distinct ids are cut to
//! [`MAX_DISTINCT_ID_CHARS`], as PostHog's capture does.
//!
//! Every message repeats the request's token, `sent_at` and Origin, so each
//! is bounded here ([`MAX_TOKEN_CHARS`], [`MAX_SENT_AT_CHARS`],
//! [`MAX_SITE_URL_CHARS`]) and so is the whole output
//! ([`MAX_CAPTURED_BYTES`]): otherwise a 20 MiB body of tiny events with a
//! long token or Origin made capture build gigabytes (found by fuzzing,
//! fuzz/fuzz_targets/capture_parse.rs).

use std::io::Read;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::wire::CapturedEvent;
use uuid::Uuid;

/// Bodies larger than this (after decompression) are refused.
pub const MAX_BODY_BYTES: usize = 20 * 1024 * 1024;

/// Longer distinct ids are cut to this many characters (PostHog's capture
/// does the same; persons keep distinct ids in a varchar(400)).
pub const MAX_DISTINCT_ID_CHARS: usize = 200;

/// Larger events (as captured messages) are refused with 413: below Kafka's
/// default `message.max.bytes` (1,000,012, which counts the record batch
/// around the message too), since a broker refusing one turns into a 503
/// the SDK would retry forever; the pipeline's own limit is higher.
pub const MAX_EVENT_BYTES: usize = 960 * 1024;

/// Longer tokens (in bytes) are no token phs issues: refused (401) before they are copied into every message.
pub const MAX_TOKEN_CHARS: usize = 200;

/// A `sent_at` longer than this is no time (RFC 3339 with microseconds is 32): ignored.
pub const MAX_SENT_AT_CHARS: usize = 64;

/// An Origin longer than this is cut before it becomes every message's `site_url`.
pub const MAX_SITE_URL_CHARS: usize = 2048;

/// The messages of one request may hold this many bytes in all (413 past
/// it): three times the body limit, room for the envelope each tiny event
/// gets, and the bound on what one request can make capture build and append.
pub const MAX_CAPTURED_BYTES: usize = 3 * MAX_BODY_BYTES;

/// What the HTTP layer knows about the request.
pub struct Request<'a> {
    pub query: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub ip: Option<String>,
    pub site_url: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("the request body is empty")]
    Empty,
    #[error("the request body is larger than {} MiB", MAX_BODY_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("the gzip body cannot be decompressed: {0}")]
    Gzip(String),
    #[error("compression `{0}` is not supported (use gzip or none)")]
    Compression(String),
    #[error("`data` is neither JSON nor base64-encoded JSON")]
    BadData,
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the request has no events")]
    NoEvents,
    #[error("event {0} is not a JSON object")]
    NotAnObject(usize),
    #[error("event {0} has no distinct_id")]
    NoDistinctId(usize),
    #[error("event {0} has no API token (api_key, token or properties.token)")]
    NoToken(usize),
    #[error("unknown API token")]
    ImplausibleToken(usize),
    #[error("event {0} has no event name (`event` must be a non-empty string)")]
    NoEventName(usize),
    #[error("event {0} has a uuid that is not a UUID")]
    InvalidUuid(usize),
    #[error("event {0} is larger than {max} KiB", max = MAX_EVENT_BYTES / 1024)]
    EventTooLarge(usize),
}

impl CaptureError {
    /// Whether the request is refused for its size (413) rather than its content (400).
    pub fn too_large(&self) -> bool {
        matches!(self, CaptureError::TooLarge | CaptureError::EventTooLarge(_))
    }

    /// Whether the token is refused (401) rather than the request (400).
    pub fn unauthorized(&self) -> bool {
        matches!(self, CaptureError::ImplausibleToken(_))
    }
}

pub fn parse(req: &Request) -> Result<Vec<CapturedEvent>, CaptureError> {
    let body = decompress(req.body)?;
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes()).into_owned().collect();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());

    let is_form = req.content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let json_text: Vec<u8> = if is_form {
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let Some(c) = field("compression").filter(|c| c != "gzip" && c != "gzip-js") {
            return Err(CaptureError::Compression(c));
        }
        let data = field("data").ok_or(CaptureError::NoEvents)?;
        decode_data(data.as_bytes())?
    } else {
        decode_data(&body)?
    };
    let root: Value = serde_json::from_slice(&json_text).map_err(|e| CaptureError::Json(e.to_string()))?;

    let (events, top) = match root {
        Value::Array(a) => (a, Map::new()),
        Value::Object(mut o) if o.contains_key("batch") => match o.remove("batch") {
            Some(Value::Array(a)) => (a, o),
            _ => return Err(CaptureError::NoEvents),
        },
        Value::Object(o) => (vec![Value::Object(o)], Map::new()),
        _ => return Err(CaptureError::NoEvents),
    };
    if events.is_empty() {
        return Err(CaptureError::NoEvents);
    }
    let str_of =
        |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    // posthog-js sends the send time as `_` (ms since the epoch) in the query.
    let sent_at = str_of(&top, "sent_at").filter(|s| s.chars().count() <= MAX_SENT_AT_CHARS).or_else(|| {
        param("_").and_then(|ms| ms.parse::<i64>().ok()).and_then(|ms| Utc.timestamp_millis_opt(ms).single()).map(iso)
    });
    let site_url: String = req.site_url.chars().take(MAX_SITE_URL_CHARS).collect();
    let mut total = 0;

    let mut out = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        let Value::Object(event) = event else { return Err(CaptureError::NotAnObject(i)) };
        let props = event.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let token = str_of(&top, "api_key")
            .or_else(|| str_of(&top, "token"))
            .or_else(|| str_of(&event, "api_key"))
            .or_else(|| str_of(&event, "token"))
            .or_else(|| str_of(&props, "token"))
            .or_else(|| str_of(&props, "$token"))
            .ok_or(CaptureError::NoToken(i))?;
        if !plausible_token(&token) {
            return Err(CaptureError::ImplausibleToken(i));
        }
        let distinct_id = [event.get("distinct_id"), props.get("distinct_id"), props.get("$distinct_id")]
            .into_iter()
            .flatten()
            .find_map(stringify_id)
            .ok_or(CaptureError::NoDistinctId(i))?;
        if event.get("event").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(CaptureError::NoEventName(i));
        }
        // A uuid the SDK sent must be one: the stores key events by it.
        let uuid = match event.get("uuid") {
            None | Some(Value::Null) => Uuid::now_v7().to_string(),
            Some(Value::String(s)) if s.is_empty() => Uuid::now_v7().to_string(),
            Some(Value::String(s)) => Uuid::parse_str(s).map_err(|_| CaptureError::InvalidUuid(i))?.to_string(),
            Some(_) => return Err(CaptureError::InvalidUuid(i)),
        };
        let captured = CapturedEvent {
            uuid,
            distinct_id,
            ip: req.ip.clone(),
            site_url: site_url.clone(),
            data: Value::Object(event).to_string(),
            token,
            now: iso(req.now),
            sent_at: sent_at.clone(),
        };
        let len = message_len(&captured);
        if len > MAX_EVENT_BYTES {
            return Err(CaptureError::EventTooLarge(i));
        }
        total += len;
        if total > MAX_CAPTURED_BYTES {
            return Err(CaptureError::TooLarge);
        }
        out.push(captured);
    }
    Ok(out)
}

/// Whether `token` could be a team's token at all. Others (huge, or with
/// control characters such as NUL, which Postgres refuses in text and would
/// turn into a 503) are unknown without asking the store.
fn plausible_token(token: &str) -> bool {
    token.len() <= MAX_TOKEN_CHARS && !token.chars().any(char::is_control)
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// The message's size as the pipeline sees it, without serializing a copy.
fn message_len(e: &CapturedEvent) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, e).expect("captured events serialize");
    n.0
}

/// `id` cut to [`MAX_DISTINCT_ID_CHARS`] characters: at capture, and again
/// at normalize for messages that reached the topic some other way.
pub fn cut_distinct_id(id: &str) -> String {
    id.chars().take(MAX_DISTINCT_ID_CHARS).collect()
}

/// distinct_id as a string, cut to [`MAX_DISTINCT_ID_CHARS`]; numbers are
/// stringified, empty values skipped.
fn stringify_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(cut_distinct_id(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn decompress(body: &[u8]) -> Result<Vec<u8>, CaptureError> {
    if body.is_empty() {
        return Err(CaptureError::Empty);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(CaptureError::TooLarge);
    }
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_BODY_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| CaptureError::Gzip(e.to_string()))?;
        if out.len() > MAX_BODY_BYTES {
            return Err(CaptureError::TooLarge);
        }
        return Ok(out);
    }
    Ok(body.to_vec())
}

/// JSON as is, or base64 (standard or URL-safe, padded or not) of JSON.
fn decode_data(data: &[u8]) -> Result<Vec<u8>, CaptureError> {
    let trimmed = data.trim_ascii();
    if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        return Ok(trimmed.to_vec());
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(trimmed).ok()).ok_or(CaptureError::BadData)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(query: &'a str, ct: Option<&'a str>, body: &'a [u8]) -> Request<'a> {
        Request {
            query,
            content_type: ct,
            body,
            ip: Some("1.2.3.4".into()),
            site_url: "http://h".into(),
            now: Utc::now(),
        }
    }

    #[test]
    fn json_single_array_and_batch() {
        let one =
            parse(&req("", Some("application/json"), br#"{"event": "e", "distinct_id": 42, "api_key": "t"}"#)).unwrap();
        assert_eq!((one[0].distinct_id.as_str(), one[0].token.as_str()), ("42", "t"));
        let batch = parse(&req("", None, br#"{"api_key": "t", "sent_at": "2024-01-01T00:00:00Z", "batch": [{"event": "a", "distinct_id": "x"}, {"event": "b", "properties": {"distinct_id": "y"}}]}"#)).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].distinct_id, "y");
        assert_eq!(batch[0].sent_at.as_deref(), Some("2024-01-01T00:00:00Z"));
    }

    #[test]
    fn form_base64_and_query_sent_at() {
        let json = r#"{"event": "e", "properties": {"distinct_id": "d", "token": "t"}}"#;
        let body = format!("data={}", base64::engine::general_purpose::STANDARD.encode(json));
        let out =
            parse(&req("ip=1&_=1694769302325", Some("application/x-www-form-urlencoded"), body.as_bytes())).unwrap();
        assert_eq!(out[0].token, "t");
        assert_eq!(out[0].sent_at.as_deref(), Some("2023-09-15T09:15:02.325000+00:00"));
    }

    #[test]
    fn bad_requests_say_why() {
        assert_eq!(parse(&req("", None, b"")), Err(CaptureError::Empty));
        assert!(matches!(parse(&req("", None, b"{nope")), Err(CaptureError::BadData | CaptureError::Json(_))));
        assert_eq!(parse(&req("", None, br#"{"event": "e", "api_key": "t"}"#)), Err(CaptureError::NoDistinctId(0)));
        assert_eq!(parse(&req("", None, br#"{"event": "e", "distinct_id": "d"}"#)), Err(CaptureError::NoToken(0)));
        assert_eq!(parse(&req("", None, br#"[1]"#)), Err(CaptureError::NotAnObject(0)));
        assert_eq!(parse(&req("", None, br#"[]"#)), Err(CaptureError::NoEvents));
        assert!(matches!(parse(&req("", None, &[0x1f, 0x8b, 0, 1])), Err(CaptureError::Gzip(_))));
    }

    #[test]
    fn names_uuids_sizes_and_long_distinct_ids() {
        let one = |body: serde_json::Value| parse(&req("", None, body.to_string().as_bytes()));
        let ev = |extra: serde_json::Value| {
            let mut e = serde_json::json!({"event": "e", "distinct_id": "d", "api_key": "t"});
            e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            one(e)
        };
        assert_eq!(ev(serde_json::json!({"event": ""})), Err(CaptureError::NoEventName(0)));
        assert_eq!(ev(serde_json::json!({"event": 7})), Err(CaptureError::NoEventName(0)));
        assert_eq!(ev(serde_json::json!({"uuid": "nope"})), Err(CaptureError::InvalidUuid(0)));
        assert_eq!(ev(serde_json::json!({"uuid": 5})), Err(CaptureError::InvalidUuid(0)));
        let upper = "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B";
        assert_eq!(ev(serde_json::json!({"uuid": upper})).unwrap()[0].uuid, upper.to_lowercase());
        let big = ev(serde_json::json!({"properties": {"x": "y".repeat(1_100_000)}}));
        assert!(big.as_ref().is_err_and(CaptureError::too_large), "{big:?}");
        let long = ev(serde_json::json!({"distinct_id": "é".repeat(500)})).unwrap();
        assert_eq!(long[0].distinct_id.chars().count(), MAX_DISTINCT_ID_CHARS);
    }

    #[test]
    fn tokens_that_cannot_be_a_teams_are_refused_without_a_lookup() {
        assert!(plausible_token("phc_abc123"));
        assert!(!plausible_token("phc_abc\u{0}"));
        assert!(!plausible_token(&"t".repeat(MAX_TOKEN_CHARS + 1)));
        let long = format!(r#"{{"event": "e", "distinct_id": "d", "api_key": "{}"}}"#, "t".repeat(MAX_TOKEN_CHARS + 1));
        assert!(parse(&req("", None, long.as_bytes())).is_err_and(|e| e.unauthorized()));
    }

    /// Found by fuzz/fuzz_targets/capture_parse.rs: each message repeats the
    /// request's Origin, `sent_at` and token, so a small body of tiny events
    /// made capture build (and append) that many copies of a long one.
    #[test]
    fn what_every_message_repeats_is_bounded_and_so_is_the_whole_request() {
        let events = vec![r#"{"event": "e", "distinct_id": 1}"#; 2000].join(",");
        let body = format!(r#"{{"api_key": "t", "sent_at": "{}", "batch": [{events}]}}"#, "9".repeat(100_000));
        let mut r = req("", None, body.as_bytes());
        r.site_url = format!("http://{}", "o".repeat(100_000));
        let out = parse(&r).unwrap();
        let total: usize = out.iter().map(|e| serde_json::to_vec(e).unwrap().len()).sum();
        assert!(out.iter().all(|e| e.site_url.chars().count() == MAX_SITE_URL_CHARS && e.sent_at.is_none()));
        assert!(total < 8 << 20, "{total} bytes of messages from a {}-byte body", body.len());

        let events = vec![r#"{"event": "e", "distinct_id": 1}"#; 100_000].join(",");
        let body = format!(r#"{{"api_key": "t", "batch": [{events}]}}"#);
        let mut r = req("", None, body.as_bytes());
        r.site_url = "o".repeat(1000);
        assert_eq!(parse(&r), Err(CaptureError::TooLarge), "over MAX_CAPTURED_BYTES in all");
    }
}
