//! Event and property definitions and the team's first-event flag, as
//! PostHog's UI reads them (`store::definitions`), kept up to date beside
//! ingestion rather than in it.
//!
//! The pipeline hands each processed batch to [`Definitions::observe`],
//! which returns at once. The batch's names are checked against what this
//! instance already proposed ([`known`]), the new ones are queued, and one
//! background task ([`writer`]) writes the queue in one transaction. Nothing
//! here is awaited by a batch's write or commit: a slow or failing database
//! delays definitions, never events, and a failed write is retried with
//! backoff. PostHog later moved this work into a separate service with a
//! rate cap; inside phs the cache makes steady-state batches write nothing
//! at all, so a cap is not needed, and PHS_DEFINITIONS=false hands the
//! definitions to such a service instead.

mod detect;
mod known;
pub mod writer;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Timelike;
use serde_json::{Map, Value};
use tokio::sync::{Notify, Semaphore};

pub use self::detect::{PropertyType, detect};
use self::known::{Known, TeamKnown};
use super::sink::SinkBatch;
use crate::store::definitions::{DefinitionStore, NewDefinitions, PropertyDefinition, PropertyKind};
use crate::wire::EventRow;

/// PostHog's own metrics events: not the team's data.
const UNDEFINED_EVENTS: [&str; 1] = ["$$plugin_metrics"];

/// Event properties that carry person and group updates, not data of the event.
const NOT_PROPERTIES: [&str; 9] =
    ["$set", "$set_once", "$unset", "$group_0", "$group_1", "$group_2", "$group_3", "$group_4", "$groups"];

/// Properties that get a definition but no event-property row: posthog-js
/// puts every flag on nearly every event, and pairing each with every event
/// name says nothing (flags are team-wide).
const UNPAIRED_PREFIXES: [&str; 2] = ["$feature/", "$feature_enrollment/"];

/// Longest name written, in bytes: half PostHog's 400-character columns, so
/// any text fits whatever its characters.
const MAX_NAME_BYTES: usize = 200;

/// Rows queued at most while the database does not take them; past this,
/// new names wait to be seen again instead of being queued.
const MAX_QUEUED: usize = 100_000;

/// Batches read at once off the pipeline's task; more are read on it.
const READERS: usize = 2;

pub struct Definitions {
    store: Arc<dyn DefinitionStore>,
    /// Off: only the first-event flag is kept (a taxonomy service writes the rest).
    enabled: bool,
    state: Mutex<State>,
    /// Wakes the writer when something was queued.
    queued: Notify,
    readers: Arc<Semaphore>,
}

#[derive(Default)]
struct State {
    known: Known,
    queue: NewDefinitions,
}

impl Definitions {
    pub fn new(store: Arc<dyn DefinitionStore>, enabled: bool) -> Arc<Self> {
        Arc::new(Definitions {
            store,
            enabled,
            state: Mutex::default(),
            queued: Notify::new(),
            readers: Arc::new(Semaphore::new(READERS)),
        })
    }

    /// Queues what is new in a processed batch. The reading happens on a task
    /// of its own when one is free, so the pipeline's task only pays for it
    /// when the readers fall behind.
    pub fn observe(self: &Arc<Self>, batch: Arc<SinkBatch>) {
        match self.readers.clone().try_acquire_owned() {
            Ok(permit) => {
                let me = self.clone();
                tokio::spawn(async move {
                    me.read(&batch, chrono::Utc::now());
                    drop(permit);
                });
            }
            Err(_) => self.read(&batch, chrono::Utc::now()),
        }
    }

    /// Queues the batch's new definitions as of `now`.
    pub fn read(&self, batch: &SinkBatch, now: chrono::DateTime<chrono::Utc>) {
        let secs = now.timestamp();
        let hour = secs.div_euclid(3600);
        let mut state = self.lock();
        let State { known, queue } = &mut *state;
        let before = queue.len();
        for e in &batch.events {
            let team = known.team(e.team_id);
            if !team.ingested {
                team.ingested = true;
                queue.ingested_teams.push(e.team_id);
            }
            if self.enabled {
                read_event(team, e, hour, secs, queue);
            }
        }
        if self.enabled {
            for g in &batch.groups {
                let Some(props) = g.properties.as_object() else { continue };
                let Ok(index) = usize::try_from(g.group_type_index) else { continue };
                if index >= 5 {
                    continue;
                }
                let (names, _, sets) = known.team(g.team_id).parts();
                for (key, value) in props {
                    if fits(key) && TeamKnown::learn(names, &mut sets[2 + index], key, queue.len() < MAX_QUEUED) {
                        queue.properties.push(definition(
                            g.team_id,
                            key,
                            value,
                            PropertyKind::Group,
                            Some(index),
                            secs,
                        ));
                    }
                }
            }
        }
        known.shrink_to(known::MAX_NAMES);
        if queue.len() > before {
            queue.seen_at = now.with_nanosecond(0).unwrap_or(now);
            drop(state);
            self.queued.notify_one();
        }
    }

    /// Everything queued, leaving the queue empty.
    fn take(&self) -> NewDefinitions {
        std::mem::take(&mut self.lock().queue)
    }

    /// Puts back a write that failed, ahead of what was queued since.
    fn requeue(&self, mut failed: NewDefinitions) {
        let mut state = self.lock();
        let q = &mut state.queue;
        failed.seen_at = failed.seen_at.max(q.seen_at);
        failed.events.append(&mut q.events);
        failed.properties.append(&mut q.properties);
        failed.event_properties.append(&mut q.event_properties);
        failed.ingested_teams.append(&mut q.ingested_teams);
        *q = failed;
    }

    /// Rows waiting to be written.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Queues the event's name (new, or last seen in an earlier hour), its
/// properties and event-property pairs, and the person properties it sets.
fn read_event(team: &mut TeamKnown, e: &EventRow, hour: i64, secs: i64, queue: &mut NewDefinitions) {
    if UNDEFINED_EVENTS.contains(&e.event.as_str()) || !fits(&e.event) {
        return;
    }
    let room = queue.len() < MAX_QUEUED;
    let (names, events, sets) = team.parts();
    if !events.contains_key(e.event.as_str()) {
        if !room {
            return;
        }
        *names += 1;
        events
            .insert(e.event.as_str().into(), known::EventKnown { seen_hour: hour - 1, properties: Default::default() });
    }
    let event = events.get_mut(e.event.as_str()).expect("the event was known or has just been added");
    if event.seen_hour < hour {
        event.seen_hour = hour;
        queue.events.push((e.team_id, e.event.clone()));
    }
    for (key, value) in &e.properties {
        if NOT_PROPERTIES.contains(&key.as_str()) || !fits(key) {
            continue;
        }
        let room = queue.len() < MAX_QUEUED;
        if !UNPAIRED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            if !TeamKnown::learn(names, &mut event.properties, key, room) {
                // A pair proposed before means its definition was too.
                continue;
            }
            queue.event_properties.push((e.team_id, e.event.clone(), key.clone()));
        }
        if TeamKnown::learn(names, &mut sets[0], key, room) {
            queue.properties.push(definition(e.team_id, key, value, PropertyKind::Event, None, secs));
        }
    }
    for op in ["$set", "$set_once"] {
        let Some(set) = e.properties.get(op).and_then(Value::as_object) else { continue };
        read_person(names, &mut sets[1], e.team_id, set, secs, queue);
    }
}

fn read_person(
    names: &mut usize,
    set: &mut known::Names,
    team_id: i64,
    props: &Map<String, Value>,
    secs: i64,
    queue: &mut NewDefinitions,
) {
    for (key, value) in props {
        if fits(key) && TeamKnown::learn(names, set, key, queue.len() < MAX_QUEUED) {
            queue.properties.push(definition(team_id, key, value, PropertyKind::Person, None, secs));
        }
    }
}

fn definition(
    team_id: i64,
    name: &str,
    value: &Value,
    kind: PropertyKind,
    group: Option<usize>,
    now: i64,
) -> PropertyDefinition {
    PropertyDefinition {
        team_id,
        name: name.to_string(),
        kind,
        group_type_index: group.map(|g| g as i32),
        property_type: detect(name, value, now).map(PropertyType::as_str),
    }
}

fn fits(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_BYTES
}
