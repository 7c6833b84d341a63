//! The person store in a `--persons` dry run: the real persons and
//! distinct ids are read, and every write (new persons, property updates,
//! distinct ids, merges) applies to an in-memory copy, with the same version
//! checks as the real stores, and is recorded as the event's person change.
//!
//! Group type indexes are assigned on first use by the real stores (a
//! write), so the overlay treats every group type as unmapped: a dry run
//! shows no group changes.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Recorder, SideEffect};
use crate::store::{Group, MergedPerson, Person, PersonStore, PersonWrites, Result, ResyncEntry, StoreError};

/// Ids of persons made in the overlay: far above any real one.
const FIRST_ID: i64 = 1 << 52;

#[derive(Default)]
struct State {
    /// Distinct ids the run pointed elsewhere (None: moved off by a merge and not re-added).
    ids: HashMap<(i64, String), Option<i64>>,
    /// Persons the run wrote (None: merged away).
    written: HashMap<i64, Option<Person>>,
    /// Persons read from the real store, as read.
    seen: HashMap<i64, Person>,
    /// The distinct ids of persons the run changed, with their versions.
    ids_of: HashMap<i64, Vec<(String, i64)>>,
    next_id: i64,
}

impl State {
    fn person(&self, id: i64) -> Option<&Person> {
        match self.written.get(&id) {
            Some(p) => p.as_ref(),
            None => self.seen.get(&id),
        }
    }

    fn by_uuid(&self, uuid: Uuid) -> Option<&Person> {
        self.written.values().flatten().chain(self.seen.values()).find(|p| p.uuid == uuid)
    }
}

#[derive(Default)]
pub struct Shadow(tokio::sync::Mutex<State>);

pub struct OverlayPersons {
    pub real: Arc<dyn PersonStore>,
    pub shadow: Arc<Shadow>,
    pub recorder: Arc<Recorder>,
}

fn conflict<T>(why: &str) -> Result<T> {
    Err(StoreError::Conflict(why.to_string()))
}

impl OverlayPersons {
    fn record(&self, change: &'static str, detail: Value) {
        self.recorder.record(SideEffect::Person { change, detail });
    }

    /// The person a distinct id points to now, reading through.
    async fn resolve(&self, state: &mut State, team_id: i64, distinct_id: &str) -> Result<Option<Person>> {
        if let Some(shadowed) = state.ids.get(&(team_id, distinct_id.to_string())) {
            return Ok(shadowed.and_then(|id| state.person(id).cloned()));
        }
        let found = self.real.person_by_distinct_id(team_id, distinct_id).await?;
        Ok(self.through(state, found))
    }

    /// A person read from the real store, as this run sees it now.
    fn through(&self, state: &mut State, found: Option<Person>) -> Option<Person> {
        let p = found?;
        state.seen.entry(p.id).or_insert_with(|| p.clone());
        state.person(p.id).cloned()
    }

    async fn ids_of(&self, state: &mut State, person_id: i64) -> Result<Vec<(String, i64)>> {
        if let Some(ids) = state.ids_of.get(&person_id) {
            return Ok(ids.clone());
        }
        let team = state.person(person_id).map(|p| p.team_id);
        let real = self.real.distinct_ids_of(person_id).await?;
        // Ids the run moved to another person are no longer this one's.
        let ids: Vec<(String, i64)> = real
            .into_iter()
            .filter(|(d, _)| {
                team.is_none_or(|t| state.ids.get(&(t, d.clone())).is_none_or(|to| *to == Some(person_id)))
            })
            .collect();
        state.ids_of.insert(person_id, ids.clone());
        Ok(ids)
    }
}

#[async_trait]
impl PersonStore for OverlayPersons {
    async fn person_by_distinct_id(&self, team_id: i64, distinct_id: &str) -> Result<Option<Person>> {
        let mut state = self.shadow.0.lock().await;
        self.resolve(&mut state, team_id, distinct_id).await
    }

    async fn persons_by_distinct_ids(&self, ids: &[(i64, &str)]) -> Result<HashMap<(i64, String), Person>> {
        let mut state = self.shadow.0.lock().await;
        let mut out = HashMap::new();
        let mut unread = Vec::new();
        for &(team_id, d) in ids {
            let key = (team_id, d.to_string());
            match state.ids.get(&key) {
                Some(shadowed) => {
                    if let Some(p) = shadowed.and_then(|id| state.person(id).cloned()) {
                        out.insert(key, p);
                    }
                }
                None => unread.push((team_id, d)),
            }
        }
        for (key, p) in self.real.persons_by_distinct_ids(&unread).await? {
            if let Some(p) = self.through(&mut state, Some(p)) {
                out.insert(key, p);
            }
        }
        Ok(out)
    }

    async fn distinct_ids_of(&self, person_id: i64) -> Result<Vec<(String, i64)>> {
        let mut state = self.shadow.0.lock().await;
        self.ids_of(&mut state, person_id).await
    }

    async fn person_by_uuid(&self, team_id: i64, uuid: Uuid) -> Result<Option<Person>> {
        let mut state = self.shadow.0.lock().await;
        if let Some(p) = state.by_uuid(uuid) {
            return Ok(Some(p.clone()).filter(|p| p.team_id == team_id));
        }
        let found = self.real.person_by_uuid(team_id, uuid).await?;
        Ok(self.through(&mut state, found))
    }

    /// A dry run's writes reach no analytic sink, so nothing needs a resync.
    async fn mark_resync(&self, _: &[ResyncEntry]) -> Result<i64> {
        Ok(0)
    }

    async fn clear_resyncs(&self, _: &[i64]) -> Result<()> {
        Ok(())
    }

    async fn stale_resyncs(&self, _: i64, _: i64) -> Result<Vec<(i64, Vec<ResyncEntry>)>> {
        Ok(Vec::new())
    }

    async fn write_persons(&self, writes: &PersonWrites) -> Result<Vec<Person>> {
        let mut state = self.shadow.0.lock().await;
        // Checked in full first: the real stores apply all of it or none.
        let mut updated = Vec::new();
        for u in &writes.updates {
            let Some(current) = state.person(u.id).cloned() else { return conflict("the person is gone") };
            if current.version != u.version {
                return conflict("the person's version moved");
            }
            updated.push((current, u));
        }
        for d in &writes.distinct_ids {
            if self.resolve(&mut state, d.team_id, &d.distinct_id).await?.is_some() {
                return conflict("the distinct id is taken");
            }
        }
        for (before, u) in updated {
            let after = Person {
                properties: u.properties.clone(),
                is_identified: u.is_identified,
                version: before.version + 1,
                ..before.clone()
            };
            self.record(
                "updated",
                json!({"person": before.uuid, "before": before.properties, "after": after.properties}),
            );
            state.written.insert(after.id, Some(after));
        }
        let mut created = Vec::new();
        for n in &writes.creates {
            state.next_id = state.next_id.max(FIRST_ID) + 1;
            let p = Person {
                id: state.next_id,
                uuid: n.uuid,
                team_id: n.team_id,
                properties: n.properties.clone(),
                created_at: n.created_at,
                is_identified: n.is_identified,
                version: 0,
            };
            self.record("created", json!({"person": p.uuid, "properties": p.properties}));
            state.written.insert(p.id, Some(p.clone()));
            state.ids_of.insert(p.id, Vec::new());
            created.push(p);
        }
        for d in &writes.distinct_ids {
            let Some(id) = state.by_uuid(d.person_uuid).map(|p| p.id) else { return conflict("no such person") };
            self.ids_of(&mut state, id).await?;
            state.ids.insert((d.team_id, d.distinct_id.clone()), Some(id));
            state.ids_of.entry(id).or_default().push((d.distinct_id.clone(), 0));
            self.record("distinct_id_added", json!({"person": d.person_uuid, "distinct_id": d.distinct_id}));
        }
        Ok(created)
    }

    async fn merge_persons(
        &self,
        target: &Person,
        source: &Person,
        merged: &MergedPerson,
    ) -> Result<(Person, Vec<(String, i64)>)> {
        let mut state = self.shadow.0.lock().await;
        for p in [target, source] {
            if state.person(p.id).map(|now| now.version) != Some(p.version) {
                return conflict("a merged person changed");
            }
        }
        let moved: Vec<(String, i64)> =
            self.ids_of(&mut state, source.id).await?.into_iter().map(|(d, v)| (d, v + 1)).collect();
        self.ids_of(&mut state, target.id).await?;
        let after = Person {
            properties: merged.properties.clone(),
            created_at: merged.created_at,
            is_identified: merged.is_identified,
            version: target.version + 1,
            ..target.clone()
        };
        for (d, _) in &moved {
            state.ids.insert((target.team_id, d.clone()), Some(target.id));
        }
        state.ids_of.entry(target.id).or_default().extend(moved.iter().cloned());
        state.ids_of.insert(source.id, Vec::new());
        state.written.insert(source.id, None);
        state.written.insert(target.id, Some(after.clone()));
        let ids: Vec<&str> = moved.iter().map(|(d, _)| d.as_str()).collect();
        self.record(
            "merged",
            json!({"into": target.uuid, "merged_away": source.uuid, "distinct_ids_moved": ids,
                   "before": target.properties, "after": after.properties}),
        );
        Ok((after, moved))
    }

    /// Unmapped: mapping a new group type is a write (see the module header).
    async fn group_type_index(&self, _: i64, _: &str) -> Result<Option<i32>> {
        Ok(None)
    }

    async fn group(&self, team_id: i64, index: i32, key: &str) -> Result<Option<Group>> {
        self.real.group(team_id, index, key).await
    }

    async fn write_group(&self, group: &Group, _: Option<i64>) -> Result<Group> {
        Ok(group.clone())
    }
}
