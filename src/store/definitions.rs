//! What PostHog's UI knows of a team's data: its event names, its event,
//! person and group properties with their types, which events carry which
//! properties, and whether the team has ingested anything yet.
//!
//! The rows are PostHog's (`posthog_eventdefinition`,
//! `posthog_propertydefinition`, `posthog_eventproperty`,
//! `posthog_team.ingested_event`), written the way its later versions write
//! them: inserts that leave existing rows alone, so any number of instances
//! (or PostHog's own taxonomy service) can propose the same definition.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;

/// What a property definition describes: PostHog's `type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyKind {
    Event = 1,
    Person = 2,
    Group = 3,
}

/// One property definition to propose.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PropertyDefinition {
    pub team_id: i64,
    pub name: String,
    pub kind: PropertyKind,
    /// The group type's index, for group properties only.
    pub group_type_index: Option<i32>,
    /// PostHog's `property_type`: `String`, `Numeric`, `Boolean` or
    /// `DateTime`; None when the first value seen says nothing (null, a list).
    pub property_type: Option<&'static str>,
}

/// Definitions gathered from some batches, written together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewDefinitions {
    /// (team, event name): created if new, else its `last_seen_at` moved up to `seen_at`.
    pub events: Vec<(i64, String)>,
    pub properties: Vec<PropertyDefinition>,
    /// (team, event, property).
    pub event_properties: Vec<(i64, String, String)>,
    /// Teams whose `ingested_event` is to be set.
    pub ingested_teams: Vec<i64>,
    /// When the events were seen (to the second).
    pub seen_at: DateTime<Utc>,
}

impl NewDefinitions {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.properties.is_empty()
            && self.event_properties.is_empty()
            && self.ingested_teams.is_empty()
    }

    /// Rows of every kind together, for bounds and logs.
    pub fn len(&self) -> usize {
        self.events.len() + self.properties.len() + self.event_properties.len() + self.ingested_teams.len()
    }
}

#[async_trait]
pub trait DefinitionStore: Send + Sync {
    /// In one transaction, one statement per kind of row (and one more each
    /// for the `last_seen_at` and `property_type` of rows that already
    /// existed): existing definitions are never duplicated or replaced, only
    /// a later `last_seen_at` and a missing `property_type` are filled in.
    async fn write_definitions(&self, definitions: &NewDefinitions) -> Result<()>;
}
