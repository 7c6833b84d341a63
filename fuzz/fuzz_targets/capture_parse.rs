//! Fuzz target: capture body parsing (`pipeline::capture::parse`), every
//! encoding at once: JSON (one event, an array, `{batch}`), form data with
//! base64 or plain JSON, gzip, and the query string's `_`.
//!
//! Input: three lines, then the raw body: the content type (`-` for none),
//! the query string, the Origin (site_url). Seeds come from the recorded SDK
//! requests and tests/hostile.rs (scripts/fuzz writes them).
//!
//! Invariants beyond "no panic":
//! - what capture accepts, the pipeline ingests: every message decodes
//!   through `normalize::decode` with its distinct_id and name intact
//!   (capture exists to refuse what would otherwise be dead-lettered silently);
//! - every message is under `MAX_EVENT_BYTES` with a UUID, a token and a
//!   distinct id within their limits;
//! - the output is bounded by the input: a small request cannot make capture
//!   build (and append) gigabytes, whatever it repeats per event.
#![no_main]

use std::io::Read;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use phs::pipeline::capture::parse::{
    self, MAX_BODY_BYTES, MAX_CAPTURED_BYTES, MAX_DISTINCT_ID_CHARS, MAX_EVENT_BYTES, MAX_SENT_AT_CHARS,
    MAX_SITE_URL_CHARS, MAX_TOKEN_CHARS, Request,
};
use phs::pipeline::normalize;

/// Bytes a message may add beyond its share of the body: the envelope's
/// names and fixed fields (uuid, ip, now, ~200) and the request-level strings
/// repeated in every message (token, sent_at, site_url), each capped (a
/// control character escapes to 6 bytes).
const PER_EVENT: usize = 256 + MAX_TOKEN_CHARS * 2 + (MAX_SENT_AT_CHARS + MAX_SITE_URL_CHARS) * 6;

/// Re-serializing parsed JSON may grow it: `1e5` becomes `100000.0`.
const JSON_GROWTH: usize = 6;

fn line(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[]),
    }
}

/// The body as capture sees it after gzip, bounded as capture bounds it.
fn inflated_len(body: &[u8]) -> usize {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return body.len();
    }
    let mut out = Vec::new();
    let _ = flate2::read::GzDecoder::new(body).take(MAX_BODY_BYTES as u64 + 1).read_to_end(&mut out);
    out.len().max(body.len())
}

fuzz_target!(|input: &[u8]| {
    let (content_type, rest) = line(input);
    let (query, rest) = line(rest);
    let (origin, body) = line(rest);
    let content_type = String::from_utf8_lossy(content_type);
    let req = Request {
        query: &String::from_utf8_lossy(query),
        content_type: (content_type != "-").then_some(&*content_type),
        body,
        ip: Some("203.0.113.9".into()),
        site_url: String::from_utf8_lossy(origin).into_owned(),
        now: Utc.timestamp_opt(1_700_000_000, 0).single().expect("a valid time"),
    };
    let Ok(events) = parse::parse(&req) else { return };
    assert!(!events.is_empty(), "accepted a request without events");

    let mut total = 0;
    for e in &events {
        assert!(uuid::Uuid::parse_str(&e.uuid).is_ok(), "not a UUID: {}", e.uuid);
        assert!(!e.token.is_empty() && e.token.len() <= MAX_TOKEN_CHARS, "token {:?}", e.token);
        assert!(e.sent_at.as_ref().is_none_or(|s| s.chars().count() <= MAX_SENT_AT_CHARS));
        assert!(!e.distinct_id.trim().is_empty(), "a blank distinct_id was accepted: {:?}", e.distinct_id);
        assert!(e.distinct_id.chars().count() <= MAX_DISTINCT_ID_CHARS);
        assert!(e.site_url.chars().count() <= MAX_SITE_URL_CHARS);
        let message = serde_json::to_vec(e).expect("captured events serialize");
        assert!(message.len() <= MAX_EVENT_BYTES, "a {}-byte message was accepted", message.len());
        total += message.len();

        let decoded = match normalize::decode(&message) {
            Ok(d) => d,
            Err(err) => panic!("capture accepted what normalize refuses ({}): {e:?}", err.reason()),
        };
        let nul_safe = |s: &str| s.replace('\0', "\u{FFFD}");
        assert_eq!(decoded.event["distinct_id"], nul_safe(&e.distinct_id));
        assert_eq!(decoded.token, nul_safe(&e.token));
        assert_eq!(decoded.event["uuid"], e.uuid);
    }
    let bound = JSON_GROWTH * inflated_len(body) + events.len() * PER_EVENT;
    assert!(total <= bound, "{} events made {total} bytes of messages from a {}-byte body", events.len(), body.len());
    assert!(total <= MAX_CAPTURED_BYTES);
});
