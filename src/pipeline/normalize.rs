//! Stage 1: decode a raw message (capture format) into the event plugins
//! see, and normalise it: outer fields win over `data`'s (the later
//! original's rule), event names are strings cut to 200 characters,
//! top-level `$set`/`$set_once` merge into the properties' (top level wins).

use serde_json::{Map, Value};

use super::capture::CapturedEvent;

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
    let msg: CapturedEvent = serde_json::from_str(text).map_err(|e| Invalid::BadMessage(e.to_string()))?;
    let mut event = match serde_json::from_str::<Value>(&msg.data) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(Invalid::BadData("not an object".into())),
        Err(e) => return Err(Invalid::BadData(e.to_string())),
    };
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

    fn msg(data: &str) -> Vec<u8> {
        serde_json::json!({"uuid": "u", "distinct_id": "d", "ip": "1.1.1.1", "site_url": "s", "data": data,
                           "token": "t", "now": "2024-01-01T00:00:00Z", "sent_at": null})
        .to_string()
        .into_bytes()
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
