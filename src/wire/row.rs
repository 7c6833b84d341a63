//! The stored event: the row every events sink writes, with the person and
//! groups it was attributed to.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// A row of the events table, as every events sink stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub uuid: String,
    pub team_id: i64,
    pub event: String,
    pub distinct_id: String,
    /// The properties as a JSON object.
    pub properties: Map<String, Value>,
    pub timestamp: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub elements_chain: String,
    /// The person the event was attributed to, as it was after this event
    /// (None when persons are not processed for it).
    pub person: Option<EventPerson>,
    /// Properties of the event's groups by group type index, as they were after this event.
    pub groups: [Option<Value>; 5],
}

/// The person columns of an event row (PostHog's persons-on-events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPerson {
    pub uuid: uuid::Uuid,
    /// Shared by every event of a batch that saw this version of the person.
    pub properties: Arc<SharedJson>,
    pub created_at: DateTime<Utc>,
}

/// A JSON value many rows carry, serialized at most once: a busy person's
/// ~30 properties were cloned for each of its events and serialized again
/// for each row, the top of the persons path's profile.
#[derive(Debug, Default)]
pub struct SharedJson {
    value: Value,
    text: OnceLock<String>,
}

impl SharedJson {
    pub fn new(value: Value) -> Arc<SharedJson> {
        Arc::new(SharedJson { value, text: OnceLock::new() })
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The value as JSON text, made on first use.
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| json_text(&self.value))
    }
}

impl std::ops::Deref for SharedJson {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

impl PartialEq for SharedJson {
    fn eq(&self, other: &SharedJson) -> bool {
        self.value == other.value
    }
}

impl Serialize for SharedJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl EventRow {
    /// The properties as the JSON text the sinks store.
    pub fn properties_json(&self) -> String {
        serde_json::to_string(&self.properties).expect("a map with string keys always serializes")
    }
}

/// A JSON value as text. Not `Value::to_string`: that goes through
/// `fmt::Display`, a call per fragment, which was 5% of the persons path's
/// profile where the rows' person properties are made.
pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).expect("a JSON value with string keys always serializes")
}
