//! What one pipeline batch hands to the sinks: the events, and the person,
//! distinct id and group changes that ClickHouse (directly, or through the
//! Kafka topics PostHog's ClickHouse consumes) must mirror.
//!
//! Persons live in the relational store; these rows are their analytic
//! copies, versioned so ReplacingMergeTree keeps the latest.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::wire::EventRow;

#[derive(Debug, Clone, Default)]
pub struct SinkBatch {
    pub events: Vec<EventRow>,
    pub persons: Vec<PersonRow>,
    pub distinct_ids: Vec<DistinctIdRow>,
    pub groups: Vec<GroupRow>,
}

impl SinkBatch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.persons.is_empty() && self.distinct_ids.is_empty() && self.groups.is_empty()
    }
}

/// A person as ClickHouse's `person` table holds it. A deleted (merged away)
/// person is sent with `is_deleted` and its version raised by 100, as the original does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRow {
    pub uuid: uuid::Uuid,
    pub team_id: i64,
    pub properties: Value,
    pub created_at: DateTime<Utc>,
    pub is_identified: bool,
    pub is_deleted: bool,
    pub version: i64,
}

/// Which person a distinct id points to (`person_distinct_id2`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistinctIdRow {
    pub team_id: i64,
    pub distinct_id: String,
    pub person_uuid: uuid::Uuid,
    pub is_deleted: bool,
    pub version: i64,
}

/// A group (`$groupidentify`), as ClickHouse's `groups` table holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub team_id: i64,
    pub group_type_index: i32,
    pub group_key: String,
    pub properties: Value,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}
