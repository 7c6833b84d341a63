//! Fuzz target: a raw message from the log or topic through
//! `normalize::decode` and then `prepare::prepare`, the stages every message
//! meets before plugins and storage, past capture's checks (anything can be
//! produced to the topic).
//!
//! Each input is tried twice: as the raw message itself, and as the `data`
//! of a well-formed message (so mutations reach the event's own fields
//! rather than dying in the envelope); its first line then gives the
//! envelope's `now` and `sent_at`, split at `|`.
//!
//! Invariants beyond "no panic": a decoded event has a UUID, a non-blank
//! distinct id and a name within their limits, object properties, no NUL
//! anywhere, and no top-level `$set`/`$set_once`; decoding is idempotent
//! (a re-ingested event normalizes to itself) and bounded by the message;
//! the prepared row keeps the event's identity and its time lies between
//! the epoch and the bounds prepare promises.
#![no_main]

use chrono::{DateTime, Duration, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use phs::pipeline::capture::parse::MAX_DISTINCT_ID_CHARS;
use phs::pipeline::normalize::{self, Decoded, MAX_EVENT_NAME_CHARS};
use phs::pipeline::prepare;
use phs::wire::CapturedEvent;
use serde_json::Value;

fn str_of<'a>(event: &'a serde_json::Map<String, Value>, k: &str) -> &'a str {
    event.get(k).and_then(Value::as_str).unwrap_or_else(|| panic!("`{k}` is not a string: {event:?}"))
}

/// Whether a NUL is left in any string or key (the text `\\u0000`, a backslash and five characters, is no NUL).
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The message `decoded` would be if it were produced again.
fn reencode(d: &Decoded) -> Vec<u8> {
    let text = |k: &str| d.event.get(k).and_then(Value::as_str).map(String::from);
    let msg = CapturedEvent {
        uuid: text("uuid").unwrap_or_default(),
        distinct_id: text("distinct_id").unwrap_or_default(),
        ip: text("ip"),
        site_url: text("site_url").unwrap_or_default(),
        data: Value::Object(d.event.clone()).to_string(),
        token: d.token.clone(),
        now: text("now").unwrap_or_default(),
        sent_at: text("sent_at"),
    };
    serde_json::to_vec(&msg).expect("a message serializes")
}

fn check(payload: &[u8], created_at: DateTime<Utc>) {
    let Ok(d) = normalize::decode(payload) else { return };
    let e = &d.event;
    assert!(uuid::Uuid::parse_str(str_of(e, "uuid")).is_ok());
    let id = str_of(e, "distinct_id");
    assert!(!id.trim().is_empty() && id.chars().count() <= MAX_DISTINCT_ID_CHARS, "distinct_id {id:?}");
    let name = str_of(e, "event");
    assert!(!name.is_empty() && name.chars().count() <= MAX_EVENT_NAME_CHARS, "name {name:?}");
    assert!(e.get("properties").is_some_and(Value::is_object));
    assert!(!e.contains_key("$set") && !e.contains_key("$set_once"));
    assert!(!has_nul(&Value::Object(e.clone())) && !d.token.contains('\0'), "a NUL survived normalize: {e:?}");
    let text = serde_json::to_string(e).expect("events serialize");
    // Everything in the event came from the payload; only re-serialized numbers (`1e5` is `100000.0`) grow.
    assert!(
        text.len() <= 6 * payload.len() + 64,
        "{} bytes of event from a {}-byte message",
        text.len(),
        payload.len()
    );

    let again = normalize::decode(&reencode(&d)).unwrap_or_else(|err| panic!("a decoded event is refused: {err}"));
    assert_eq!((&again.token, &again.event), (&d.token, &d.event), "normalize is not idempotent");

    let (uuid, name, id) = (str_of(e, "uuid").to_string(), name.to_string(), id.to_string());
    let row = prepare::prepare(d.event, 1, false, created_at);
    serde_json::from_str::<Value>(&row.properties_json()).expect("stored properties are JSON");
    // prepare believes a `now` up to 23 h ahead of created_at, and a timestamp up to 23 h ahead of that.
    assert!(row.timestamp >= DateTime::UNIX_EPOCH && row.timestamp <= created_at + Duration::hours(46));
    assert_eq!((row.uuid, row.event, row.distinct_id), (uuid, name, id));
}

fuzz_target!(|input: &[u8]| {
    let created_at = Utc.timestamp_opt(1_700_000_000, 0).single().expect("a valid time");
    check(input, created_at);

    let (head, data) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&[][..], input),
    };
    let head = String::from_utf8_lossy(head);
    let (now, sent_at) = head.split_once('|').unwrap_or((&head, ""));
    let message = CapturedEvent {
        uuid: "0190b2a4-0000-7000-8000-000000000000".into(),
        distinct_id: "d".into(),
        ip: Some("203.0.113.9".into()),
        site_url: "http://h".into(),
        data: String::from_utf8_lossy(data).into_owned(),
        token: "t".into(),
        now: if now.is_empty() { "2023-11-14T22:13:20Z".into() } else { now.into() },
        sent_at: (!sent_at.is_empty()).then(|| sent_at.into()),
    };
    check(&serde_json::to_vec(&message).expect("a message serializes"), created_at);
});
