//! Rows as both SQL backends return them, converted to the model types.
//! Queries cast uuids to text and ids to bigint so one row type fits both.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Group, Person, Plugin, PluginConfig, PluginLog, Team};
use super::{Result, StoreError};

/// A team row as both backends return it (uuids as text, ids as bigint).
#[derive(sqlx::FromRow)]
pub(crate) struct TeamRow {
    id: i64,
    uuid: String,
    organization_id: String,
    name: String,
    api_token: String,
    anonymize_ips: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<TeamRow> for Team {
    type Error = StoreError;
    fn try_from(r: TeamRow) -> Result<Team> {
        let uuid = |s: &str| {
            Uuid::parse_str(s).map_err(|e| StoreError::Invalid(format!("team {}: bad uuid `{s}`: {e}", r.id)))
        };
        Ok(Team {
            id: r.id,
            uuid: uuid(&r.uuid)?,
            organization_id: uuid(&r.organization_id)?,
            name: r.name,
            api_token: r.api_token,
            anonymize_ips: r.anonymize_ips,
            created_at: r.created_at,
        })
    }
}

fn json(what: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("{what} holds invalid JSON: {e}")))
}

fn uuid(what: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::Invalid(format!("{what}: bad uuid `{text}`: {e}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct PluginRow {
    id: i64,
    name: String,
    description: Option<String>,
    url: Option<String>,
    config_schema: String,
    capabilities: String,
    updated_at: DateTime<Utc>,
}

impl PluginRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }
}

impl TryFrom<PluginRow> for Plugin {
    type Error = StoreError;
    fn try_from(r: PluginRow) -> Result<Plugin> {
        Ok(Plugin {
            config_schema: json("posthog_plugin.config_schema", &r.config_schema)?,
            capabilities: json("posthog_plugin.capabilities", &r.capabilities)?,
            id: r.id,
            name: r.name,
            description: r.description,
            url: r.url,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PluginConfigRow {
    id: i64,
    team_id: i64,
    plugin_id: i64,
    enabled: bool,
    order: i64,
    config: String,
    error: Option<String>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PluginConfigRow> for PluginConfig {
    type Error = StoreError;
    fn try_from(r: PluginConfigRow) -> Result<PluginConfig> {
        Ok(PluginConfig {
            config: json("posthog_pluginconfig.config", &r.config)?,
            error: r.error.as_deref().map(|e| json("posthog_pluginconfig.error", e)).transpose()?,
            id: r.id,
            team_id: r.team_id,
            plugin_id: r.plugin_id,
            enabled: r.enabled,
            order: r.order,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PluginLogRow {
    id: String,
    team_id: i64,
    plugin_id: i64,
    plugin_config_id: i64,
    timestamp: DateTime<Utc>,
    source: String,
    level: String,
    message: String,
    instance_id: String,
}

impl TryFrom<PluginLogRow> for PluginLog {
    type Error = StoreError;
    fn try_from(r: PluginLogRow) -> Result<PluginLog> {
        Ok(PluginLog {
            id: uuid("posthog_pluginlogentry.id", &r.id)?,
            instance_id: uuid("posthog_pluginlogentry.instance_id", &r.instance_id)?,
            team_id: r.team_id,
            plugin_id: r.plugin_id,
            plugin_config_id: r.plugin_config_id,
            timestamp: r.timestamp,
            source: r.source,
            level: r.level,
            message: r.message,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PersonRow {
    id: i64,
    uuid: String,
    team_id: i64,
    properties: String,
    created_at: DateTime<Utc>,
    is_identified: bool,
    version: i64,
}

impl TryFrom<PersonRow> for Person {
    type Error = StoreError;
    fn try_from(r: PersonRow) -> Result<Person> {
        let what = format!("person {}", r.id);
        Ok(Person {
            id: r.id,
            uuid: uuid(&what, &r.uuid)?,
            team_id: r.team_id,
            properties: json(&what, &r.properties)?,
            created_at: r.created_at,
            is_identified: r.is_identified,
            version: r.version,
        })
    }
}

/// A person found by one of its distinct ids.
#[derive(sqlx::FromRow)]
pub(crate) struct PersonByIdRow {
    pub(crate) distinct_id: String,
    #[sqlx(flatten)]
    pub(crate) person: PersonRow,
}

#[derive(sqlx::FromRow)]
pub(crate) struct GroupRow {
    team_id: i64,
    group_type_index: i64,
    group_key: String,
    properties: String,
    created_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<GroupRow> for Group {
    type Error = StoreError;
    fn try_from(r: GroupRow) -> Result<Group> {
        Ok(Group {
            properties: json(&format!("group {}", r.group_key), &r.properties)?,
            team_id: r.team_id,
            group_type_index: r.group_type_index as i32,
            group_key: r.group_key,
            created_at: r.created_at,
            version: r.version,
        })
    }
}
