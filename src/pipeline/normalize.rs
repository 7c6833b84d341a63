//! Stage 1: decode a raw message (capture format) into the event plugins
//! see, and normalise it: outer fields win over `data`'s (the later
//! original's rule), event names are strings cut to 200 characters,
//! top-level `$set`/`$set_once` merge into the properties' (top level wins).
//!
//! Values the stores would refuse are made safe here, as PostHog's later
//! versions do, rather than failing a write further on: NUL characters in
//! any string or key become U+FFFD (Postgres text and jsonb cannot hold
//! them), and distinct ids are cut to 200 characters (PostHog's capture
//! limit). An event whose uuid is not a UUID is refused (a dead letter), as
//! the original refuses it.

use serde_json::{Map, Value};

use super::capture::parse::{MAX_DISTINCT_ID_CHARS, cut_distinct_id};
use crate::wire::CapturedEvent;

/// Why a message cannot be ingested; it goes to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("not a capture message: {0}")]
    BadMessage(String),
    #[error("`data` is not a JSON object: {0}")]
    BadData(String),
    #[error("the event has no name")]
    NoEventName,
    #[error("no distinct_id")]
    NoDistinctId,
    #[error("the message is {0} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("not a valid UUID: `{0}`")]
    BadUuid(String),
}

impl Invalid {
    /// A short, stable label for counting and the DLQ.
    pub fn reason(&self) -> &'static str {
        match self {
            Invalid::NotUtf8 => "invalid_utf8",
            Invalid::BadMessage(_) => "malformed_message",
            Invalid::BadData(_) => "malformed_data",
            Invalid::NoEventName => "missing_event_name",
            Invalid::NoDistinctId => "missing_distinct_id",
            Invalid::TooLarge(_) => "oversized_event",
            Invalid::BadUuid(_) => "invalid_uuid",
        }
    }
}

pub const MAX_EVENT_NAME_CHARS: usize = 200;

/// Larger events are refused, like Kafka's default 1 MB message limit would.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// A decoded event and the token it came with.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub token: String,
    /// The plugin event: uuid, distinct_id, ip, site_url, now, sent_at,
    /// event, properties, timestamp, offset, $set, $set_once.
    pub event: Map<String, Value>,
}

pub fn decode(payload: &[u8]) -> Result<Decoded, Invalid> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(Invalid::TooLarge(payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| Invalid::NotUtf8)?;
    let mut msg: CapturedEvent = serde_json::from_str(text).map_err(|e| Invalid::BadMessage(e.to_string()))?;
    let mut event = match serde_json::from_str::<Value>(&msg.data) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(Invalid::BadData("not an object".into())),
        Err(e) => return Err(Invalid::BadData(e.to_string())),
    };
    // JSON can only carry a NUL as the escape `\u0000` (escaped once more inside `data`): without one, nothing to walk.
    if memchr::memmem::find(payload, b"u0000").is_some() {
        for s in [&mut msg.token, &mut msg.distinct_id, &mut msg.uuid, &mut msg.site_url, &mut msg.now] {
            replace_nul(s);
        }
        if let Some(s) = msg.ip.as_mut() {
            replace_nul(s);
        }
        if let Some(s) = msg.sent_at.as_mut() {
            replace_nul(s);
        }
        event = sanitize_object(event);
    }
    if uuid::Uuid::parse_str(&msg.uuid).is_err() {
        return Err(Invalid::BadUuid(msg.uuid.chars().take(64).collect()));
    }
    if msg.distinct_id.chars().nth(MAX_DISTINCT_ID_CHARS).is_some() {
        msg.distinct_id = cut_distinct_id(&msg.distinct_id);
    }
    // The outer (capture) fields win over the event's own.
    event.insert("uuid".into(), Value::String(msg.uuid));
    event.insert("distinct_id".into(), Value::String(msg.distinct_id));
    event.insert("ip".into(), msg.ip.map(Value::String).unwrap_or(Value::Null));
    event.insert("site_url".into(), Value::String(msg.site_url));
    event.insert("now".into(), Value::String(msg.now));
    event.insert("sent_at".into(), msg.sent_at.map(Value::String).unwrap_or(Value::Null));
    normalize(&mut event)?;
    Ok(Decoded { token: msg.token, event })
}

const REPLACEMENT: &str = "\u{FFFD}";

/// The distinct id `decode` makes of an outer `distinct_id`, without
/// copying it when it needs no change: how messages are keyed before they
/// are decoded (`shards`).
pub fn distinct_id_key(raw: &str) -> std::borrow::Cow<'_, str> {
    let mut id = std::borrow::Cow::Borrowed(raw);
    if raw.contains('\0') {
        id = raw.replace('\0', REPLACEMENT).into();
    }
    match id.char_indices().nth(MAX_DISTINCT_ID_CHARS) {
        Some((cut, _)) => id[..cut].to_string().into(),
        None => id,
    }
}

fn replace_nul(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', REPLACEMENT);
    }
}

/// Replaces NUL in every key and string of `value`, iteratively so that
/// deep nesting cannot overflow the stack.
fn sanitize_object(object: Map<String, Value>) -> Map<String, Value> {
    let mut root = Value::Object(object);
    let mut stack: Vec<&mut Value> = vec![&mut root];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => replace_nul(s),
            Value::Array(a) => stack.extend(a.iter_mut()),
            Value::Object(o) => {
                if o.keys().any(|k| k.contains('\0')) {
                    let owned = std::mem::take(o);
                    *o = owned
                        .into_iter()
                        .map(|(mut k, v)| {
                            replace_nul(&mut k);
                            (k, v)
                        })
                        .collect();
                }
                stack.extend(o.values_mut());
            }
            _ => {}
        }
    }
    match root {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

fn normalize(event: &mut Map<String, Value>) -> Result<(), Invalid> {
    let name = match event.get_mut("event") {
        Some(Value::String(s)) if s.is_empty() => return Err(Invalid::NoEventName),
        // No more bytes than the limit has chars: nothing to cut, and no copy made.
        Some(Value::String(s)) if s.len() <= MAX_EVENT_NAME_CHARS => None,
        Some(Value::String(s)) => Some(std::mem::take(s)),
        Some(Value::Null) | None => return Err(Invalid::NoEventName),
        Some(other) => Some(other.to_string()),
    };
    if let Some(name) = name {
        let name: String = name.chars().take(MAX_EVENT_NAME_CHARS).collect();
        event.insert("event".into(), Value::String(name));
    }
    if event.get("distinct_id").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
        return Err(Invalid::NoDistinctId);
    }
    if !event.get("properties").is_some_and(Value::is_object) {
        event.insert("properties".into(), Value::Object(Map::new()));
    }
    for key in ["$set", "$set_once"] {
        if let Some(Value::Object(top)) = event.remove(key) {
            let props = event.get_mut("properties").and_then(Value::as_object_mut).expect("set above");
            let merged = props.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = merged {
                m.extend(top);
            } else {
                *merged = Value::Object(top);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(data: &str) -> Vec<u8> {
        serde_json::json!({"uuid": "0190b2a4-0000-7000-8000-000000000000", "distinct_id": "d", "ip": "1.1.1.1", "site_url": "s", "data": data,
                           "token": "t", "now": "2024-01-01T00:00:00Z", "sent_at": null})
        .to_string()
        .into_bytes()
    }

    /// Found by the normalize fuzz target: a number of 138 digits was read
    /// as 1.000000000000009e137, written back as that, and read again as
    /// 1.0000000000000087e137. serde_json's float_roundtrip reads every
    /// number to the nearest float, so a decoded event decodes to itself.
    #[test]
    fn a_long_number_decodes_to_the_same_value_once_written_back() {
        let long = format!("1{}{}0000", "0".repeat(14), "8".repeat(119));
        let d = decode(&msg(&format!(r#"{{"event": "e", "offset": {long}, "properties": {{"n": {long}}}}}"#))).unwrap();
        let again = decode(&msg(&Value::Object(d.event.clone()).to_string())).unwrap();
        assert_eq!(again.event["offset"], d.event["offset"]);
        assert_eq!(again.event["properties"]["n"], d.event["properties"]["n"]);
    }

    #[test]
    fn merges_set_and_outer_fields_win() {
        let d = decode(&msg(
            r#"{"event": "e", "distinct_id": "inner", "$set": {"a": 1}, "properties": {"$set": {"a": 0, "b": 2}}}"#,
        ))
        .unwrap();
        assert_eq!(d.event["distinct_id"], "d");
        assert_eq!(d.event["properties"]["$set"], serde_json::json!({"a": 1, "b": 2}));
        assert!(d.event.get("$set").is_none());
    }

    #[test]
    fn nul_characters_become_replacement_characters_everywhere() {
        let payload = serde_json::json!({"uuid": "0190b2a4-0000-7000-8000-000000000000", "distinct_id": "a\u{0}b",
            "ip": null, "site_url": "s", "token": "t\u{0}", "now": "2024-01-01T00:00:00Z", "sent_at": null,
            "data": r#"{"event": "e\u0000", "properties": {"k\u0000": ["v\u0000", {"deep\u0000": "x\u0000"}]}}"#})
        .to_string();
        let d = decode(payload.as_bytes()).unwrap();
        assert_eq!(d.token, "t\u{FFFD}");
        assert_eq!(d.event["distinct_id"], "a\u{FFFD}b");
        assert_eq!(d.event["event"], "e\u{FFFD}");
        assert_eq!(d.event["properties"]["k\u{FFFD}"], serde_json::json!(["v\u{FFFD}", {"deep\u{FFFD}": "x\u{FFFD}"}]));
        assert!(!serde_json::to_string(&d.event).unwrap().contains("\\u0000"));
    }

    /// From the normalize fuzz target (fuzz/artifacts, 2026-12-01): the text `\u0000` (a backslash and
    /// five characters) next to real NULs; only the NULs are replaced.
    #[test]
    fn the_text_of_a_nul_escape_is_no_nul_and_is_kept() {
        let payload = serde_json::json!({"uuid": "0190b2a4-0000-7000-8000-000000000000", "distinct_id": "d\u{0}",
            "ip": null, "site_url": "a\\u0000b", "token": "t", "now": "2024-01-01T00:00:00Z", "sent_at": null,
            "data": r#"{"event": "e\u0000", "properties": {"k": "\\u0000"}}"#})
        .to_string();
        let d = decode(payload.as_bytes()).unwrap();
        assert_eq!((&d.event["distinct_id"], &d.event["event"]), (&json!("d\u{FFFD}"), &json!("e\u{FFFD}")));
        assert_eq!((&d.event["site_url"], &d.event["properties"]["k"]), (&json!("a\\u0000b"), &json!("\\u0000")));
    }

    #[test]
    fn an_invalid_uuid_is_refused_and_long_distinct_ids_are_cut() {
        let payload = |uuid: &str, id: &str| {
            serde_json::json!({"uuid": uuid, "distinct_id": id, "ip": null, "site_url": "s", "token": "t",
                "now": "2024-01-01T00:00:00Z", "sent_at": null, "data": r#"{"event": "e"}"#})
            .to_string()
        };
        assert_eq!(decode(payload("nope", "d").as_bytes()).unwrap_err().reason(), "invalid_uuid");
        let long = "é".repeat(500);
        let d = decode(payload("0190b2a4-0000-7000-8000-000000000000", &long).as_bytes()).unwrap();
        assert_eq!(d.event["distinct_id"].as_str().unwrap().chars().count(), MAX_DISTINCT_ID_CHARS);
    }

    #[test]
    fn names_are_cut_and_required() {
        let long = "x".repeat(300);
        let d = decode(&msg(&format!(r#"{{"event": "{long}"}}"#))).unwrap();
        assert_eq!(d.event["event"].as_str().unwrap().len(), 200);
        assert_eq!(decode(&msg(r#"{"properties": {}}"#)).unwrap_err(), Invalid::NoEventName);
        assert_eq!(decode(&msg("[1]")).unwrap_err().reason(), "malformed_data");
        assert_eq!(decode(b"\xff\xfe").unwrap_err(), Invalid::NotUtf8);
        assert_eq!(decode(b"{}").unwrap_err().reason(), "malformed_message");
    }
}
