//! Groups: `$groups` ({type: key}) on any event becomes `$group_<index>`
//! properties and fills the row's group columns; `$groupidentify` creates
//! or updates the group with `$group_set`. A team has at most five group
//! types, indexed 0-4 in order of first use.
//!
//! A type's index never changes once assigned, so it is cached for good;
//! a group's properties are read once per batch ([`Batch`]) however many of
//! its events carry it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::properties::Update;
use super::{ATTEMPTS, Batch, Changes};
use crate::pipeline::sink::GroupRow;
use crate::store::{Group, PersonStore, StoreError};
use crate::wire::EventRow;

pub struct Groups {
    store: Arc<dyn PersonStore>,
    /// (team, group type) -> its index, once assigned.
    types: Mutex<HashMap<(i64, String), i32>>,
}

/// PostHog's columns for group types and keys (`varchar(400)`): a longer one
/// is ignored, as a sixth group type is, rather than failing the event.
const MAX_GROUP_CHARS: usize = 400;

fn fits(s: &str) -> bool {
    s.chars().nth(MAX_GROUP_CHARS).is_none()
}

fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && fits(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Groups {
    pub fn new(store: Arc<dyn PersonStore>) -> Self {
        Groups { store, types: Mutex::default() }
    }

    async fn type_index(&self, team_id: i64, group_type: &str) -> Result<Option<i32>, StoreError> {
        if !fits(group_type) {
            tracing::info!(team_id, "a group type over {MAX_GROUP_CHARS} characters; ignored");
            return Ok(None);
        }
        let key = (team_id, group_type.to_string());
        if let Some(i) = self.types.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Some(*i));
        }
        let index = self.store.group_type_index(team_id, group_type).await?;
        if let Some(i) = index {
            self.types.lock().unwrap_or_else(|p| p.into_inner()).insert(key, i);
        }
        Ok(index)
    }

    pub async fn process(&self, row: &mut EventRow, batch: &Batch, changes: &mut Changes) -> Result<(), StoreError> {
        let props = &row.properties;
        if row.event == "$groupidentify"
            && let (Some(kind), Some(key)) = (
                props.get("$group_type").and_then(Value::as_str).map(str::to_string),
                props.get("$group_key").and_then(key_text),
            )
        {
            let set = props.get("$group_set").and_then(Value::as_object).cloned().unwrap_or_default();
            if let Some(index) = self.type_index(row.team_id, &kind).await? {
                let group = self.identify(row, index, &key, &set).await?;
                batch.remember_group(row.team_id, index, &key, Some(group.properties.clone()));
                changes.groups.push(GroupRow {
                    team_id: group.team_id,
                    group_type_index: group.group_type_index,
                    group_key: group.group_key.clone(),
                    properties: group.properties.clone(),
                    created_at: group.created_at,
                    version: group.version,
                });
            } else {
                tracing::info!(team_id = row.team_id, group_type = %kind, "a team has at most 5 group types; ignored");
            }
        }
        let wanted: Vec<(String, String)> = match props.get("$groups") {
            Some(Value::Object(g)) => g.iter().filter_map(|(t, k)| Some((t.clone(), key_text(k)?))).collect(),
            _ => Vec::new(),
        };
        for (kind, key) in wanted {
            let Some(index) = self.type_index(row.team_id, &kind).await? else {
                continue;
            };
            let props = &mut row.properties;
            props.insert(format!("$group_{index}"), Value::String(key.clone()));
            let properties = match batch.group(row.team_id, index, &key) {
                Some(known) => known,
                None => {
                    let read = self.store.group(row.team_id, index, &key).await?.map(|g| g.properties);
                    batch.remember_group(row.team_id, index, &key, read.clone());
                    read
                }
            };
            if let Some(p) = properties {
                row.groups[index as usize] = Some(p);
            }
        }
        Ok(())
    }

    /// Creates the group or merges `set` into it (version + 1 on change, the
    /// earlier created_at kept), re-deciding on a concurrent change.
    async fn identify(
        &self,
        row: &EventRow,
        index: i32,
        key: &str,
        set: &Map<String, Value>,
    ) -> Result<Group, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.store.group(row.team_id, index, key).await? {
                None => {
                    let new = Group {
                        team_id: row.team_id,
                        group_type_index: index,
                        group_key: key.to_string(),
                        properties: Value::Object(set.clone()),
                        created_at: row.timestamp,
                        version: 1,
                    };
                    self.store.write_group(&new, None).await
                }
                Some(old) => {
                    let mut properties = old.properties.as_object().cloned().unwrap_or_default();
                    let changed = Update { set: set.clone(), ..Default::default() }.apply(&mut properties);
                    let created_at = old.created_at.min(row.timestamp);
                    if !changed && created_at == old.created_at {
                        return Ok(old);
                    }
                    let new = Group {
                        properties: Value::Object(properties),
                        created_at,
                        version: old.version + 1,
                        ..old.clone()
                    };
                    self.store.write_group(&new, Some(old.version)).await
                }
            };
            match result {
                Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => continue,
                other => return other,
            }
        }
    }
}
