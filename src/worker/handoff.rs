//! The pipeline's hook into the async side: written events become one
//! durable `$events` job per plugin config that has onEvent or exportEvents.
//!
//! Called after the sink write and before the commit, so a crash in between
//! redelivers the batch and enqueues it again: onEvent and exportEvents see
//! every event at least once, sometimes twice, never zero times.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::PipeError;
use crate::plugins::runner::PluginRunner;
use crate::store::{JobQueue, NewJob, StoreError};
use crate::wire::stored::plugin_event;
use crate::wire::{EventRow, Handoff};

pub struct EventHandoff {
    runner: Arc<PluginRunner>,
    store: Arc<dyn JobQueue>,
}

impl EventHandoff {
    pub fn new(runner: Arc<PluginRunner>, store: Arc<dyn JobQueue>) -> Self {
        EventHandoff { runner, store }
    }

    /// Enqueues the events for their teams' onEvent/exportEvents plugins, all
    /// in one transaction; nothing when no team has such a plugin.
    async fn enqueue_jobs(&self, events: &[EventRow]) -> Result<(), StoreError> {
        let mut by_team: BTreeMap<i64, Vec<&EventRow>> = BTreeMap::new();
        // onSnapshot, not onEvent, was the original's hook for recordings.
        for e in events.iter().filter(|e| e.event != "$snapshot") {
            by_team.entry(e.team_id).or_default().push(e);
        }
        let mut jobs = Vec::new();
        let now = chrono::Utc::now();
        for (team_id, team_events) in by_team {
            // Most teams have no such plugin: their events are not converted at all.
            let mut payload = None;
            // Without the team's list the batch cannot know who awaits its events: it waits.
            let plugins =
                self.runner.async_plugins(team_id).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            for p in plugins {
                let events =
                    payload.get_or_insert_with(|| Value::Array(team_events.iter().map(|e| plugin_event(e)).collect()));
                jobs.push(NewJob {
                    team_id,
                    plugin_config_id: p.config().id,
                    name: crate::plugins::delivery::EVENTS_JOB.into(),
                    payload: json!({ "events": events }),
                    attempt: 0,
                    run_at: now,
                });
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        self.store.enqueue_jobs(&jobs).await
    }
}

#[async_trait::async_trait]
impl Handoff for EventHandoff {
    async fn enqueue(&self, events: &[EventRow]) -> Result<(), PipeError> {
        self.enqueue_jobs(events)
            .await
            .map_err(|e| PipeError::new(e.kind(), "queue events for onEvent/exportEvents", e))
    }
}
