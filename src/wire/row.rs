//! The stored event: the row every events sink writes, with the person and
//! groups it was attributed to.

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
    pub properties: Value,
    pub created_at: DateTime<Utc>,
}

impl EventRow {
    /// The properties as the JSON text the sinks store.
    pub fn properties_json(&self) -> String {
        serde_json::to_string(&self.properties).expect("a map with string keys always serializes")
    }
}
