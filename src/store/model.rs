//! Rows as the rest of phs sees them, independent of the backend.

use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::Serialize;
use uuid::Uuid;

/// A PostHog team (project): events are ingested per team, found by token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Team {
    pub id: i64,
    pub uuid: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub api_token: String,
    /// Drop the IP address of every event of this team.
    pub anonymize_ips: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewTeam {
    pub name: String,
    pub anonymize_ips: bool,
    /// Normally generated; given explicitly to import an existing project.
    pub api_token: Option<String>,
}

impl NewTeam {
    pub fn token(&self) -> String {
        self.api_token.clone().unwrap_or_else(generate_api_token)
    }
}

/// A project API token in PostHog's shape: `phc_` and 43 alphanumerics.
pub fn generate_api_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..43).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("phc_{body}")
}

/// The organization teams are created in when none is named.
pub const DEFAULT_ORGANIZATION: &str = "Default organization";

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_look_like_posthogs_and_differ() {
        let a = super::generate_api_token();
        let b = super::generate_api_token();
        assert!(a.starts_with("phc_") && a.len() == 47, "{a}");
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}

/// An installed plugin (posthog_plugin), its code in posthog_pluginsourcefile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plugin {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub url: Option<String>,
    /// plugin.json's `config` array.
    pub config_schema: serde_json::Value,
    /// `{methods, scheduled_tasks, jobs}` as detected on install.
    pub capabilities: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

/// What `install_plugin` writes.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    pub name: String,
    pub description: Option<String>,
    pub url: Option<String>,
    pub config_schema: serde_json::Value,
    pub capabilities: serde_json::Value,
    /// (filename, text), plugin.json included.
    pub files: Vec<(String, String)>,
}

/// A plugin enabled (or not) for one team (posthog_pluginconfig).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginConfig {
    pub id: i64,
    pub team_id: i64,
    pub plugin_id: i64,
    pub enabled: bool,
    /// Plugins of a team run in ascending order.
    pub order: i64,
    /// Raw config values as entered (validated against the schema when set).
    pub config: serde_json::Value,
    /// The last error: `{message, time, ...}`, or why it was disabled.
    pub error: Option<serde_json::Value>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to a plugin config; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PluginConfigUpdate {
    pub enabled: Option<bool>,
    pub order: Option<i64>,
    pub config: Option<serde_json::Value>,
    /// Some(None) clears the error.
    pub error: Option<Option<serde_json::Value>>,
}

/// A file given for an `attachment` config field (posthog_pluginattachment),
/// seen by the plugin as `meta.attachments[key]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginAttachment {
    pub key: String,
    pub content_type: String,
    pub file_name: String,
    #[serde(skip)]
    pub contents: Vec<u8>,
}

/// One plugin log entry (posthog_pluginlogentry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginLog {
    pub id: Uuid,
    pub team_id: i64,
    pub plugin_id: i64,
    pub plugin_config_id: i64,
    pub timestamp: DateTime<Utc>,
    /// SYSTEM, PLUGIN or CONSOLE.
    pub source: String,
    /// DEBUG, LOG, INFO, WARN or ERROR.
    #[serde(rename = "type")]
    pub level: String,
    pub message: String,
    pub instance_id: Uuid,
}

/// A person: the identity behind one or more distinct ids of a team.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub id: i64,
    pub uuid: Uuid,
    pub team_id: i64,
    pub properties: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub is_identified: bool,
    /// Bumped on every write; writes check it, so a concurrent change is noticed.
    pub version: i64,
}

/// A group (`$groupidentify`): a company, project, ... of a team.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub team_id: i64,
    pub group_type_index: i32,
    pub group_key: String,
    pub properties: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct NewPerson {
    pub uuid: Uuid,
    pub team_id: i64,
    pub properties: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub is_identified: bool,
}

/// A batch's person writes, applied in one transaction by
/// [`crate::store::PersonStore::write_persons`]: all of them or none.
#[derive(Debug, Clone, Default)]
pub struct PersonWrites {
    /// New persons, at version 0.
    pub creates: Vec<NewPerson>,
    /// Existing persons, each written only if still at its `version`.
    pub updates: Vec<PersonUpdate>,
    /// Distinct ids pointed at persons of `creates` or existing ones (version 0).
    pub distinct_ids: Vec<NewDistinctId>,
}

impl PersonWrites {
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.updates.is_empty() && self.distinct_ids.is_empty()
    }
}

/// New properties and is_identified of the person `id`, read at `version`.
#[derive(Debug, Clone)]
pub struct PersonUpdate {
    pub id: i64,
    pub version: i64,
    pub properties: serde_json::Value,
    pub is_identified: bool,
}

/// A distinct id for the person with this uuid.
#[derive(Debug, Clone)]
pub struct NewDistinctId {
    pub team_id: i64,
    pub person_uuid: Uuid,
    pub distinct_id: String,
}

/// A person whose rows in ClickHouse may lag its stored state (see
/// [`crate::store::PersonStore::mark_resync`]): copy it again, or, when it
/// is gone, its deletion at `deleted_version`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResyncEntry {
    pub team_id: i64,
    pub person: Uuid,
    /// The version a merge deleted it at (None: a live person's write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_version: Option<i64>,
}

/// The fields of a merge's surviving person.
#[derive(Debug, Clone)]
pub struct MergedPerson {
    pub properties: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub is_identified: bool,
}

/// A job to put on the durable queue (see [`crate::store::JobQueue`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub team_id: i64,
    pub plugin_config_id: i64,
    /// The plugin's job name, or a name starting with `$` for phs's own
    /// work (exportEvents retries, event batches for onEvent/exportEvents).
    pub name: String,
    pub payload: serde_json::Value,
    /// How many times this work was tried before (retries re-enqueue).
    pub attempt: i32,
    pub run_at: DateTime<Utc>,
}

/// A job claimed from the queue: its id and what was enqueued.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub spec: NewJob,
}
