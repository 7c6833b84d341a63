//! Stage 4: persons and groups. Each event is attributed to the person of
//! its distinct id (created on first sight), `$identify`, `$create_alias`
//! and `$merge_dangerously` join two distinct ids into one person, `$set`,
//! `$set_once` and `$unset` update the person, and `$groups` /
//! `$groupidentify` resolve and update groups. The rules are the later
//! original's (person-state.ts), see POSTHOG-SEMANTICS.md §2.
//!
//! Events are decided against a [`Batch`]: the batch's persons are read
//! ahead in one query, creations and updates stay in memory, and
//! [`Persons::flush`] writes them in one transaction before the batch's
//! rows go to the sinks. Every write names the version it read (or a uuid
//! and distinct ids no one may hold yet), so a concurrent writer elsewhere
//! makes the flush fail with a conflict and the batch is decided again from
//! fresh reads: nothing another instance wrote is overwritten.

pub mod batch;
pub mod groups;
pub mod ids;
pub mod properties;
pub mod resync;

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::pipeline::sink::{DistinctIdRow, PersonRow, SinkBatch};
use crate::store::{MergedPerson, NewPerson, Person, PersonStore, ResyncEntry, StoreError};
use crate::wire::{EventPerson, EventRow};

pub use self::batch::Batch;
use self::batch::{State, properties_mut};
use self::ids::{MergeRequest, is_illegal, merge_request};
use self::properties::Update;

/// Attempts at one group write before the batch is retried: each conflict
/// means another writer succeeded, so this bounds the writers that can
/// overtake one event, not the odds.
const ATTEMPTS: usize = 10;

/// A person is created for a distinct id with this uuid, so a redelivered
/// event (after a crash between the write and the commit) finds, rather than
/// duplicates, the person it created the first time.
pub fn person_uuid(team_id: i64, distinct_id: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("phs:person:{team_id}:{distinct_id}").as_bytes())
}

pub struct Persons {
    store: Arc<dyn PersonStore>,
    groups: groups::Groups,
    /// At most this many distinct ids are read ahead per batch (DISTINCT_ID_LRU_SIZE).
    read_ahead: usize,
    /// Rows of writes an abandoned batch made, for the next batch to emit.
    carry: Arc<Mutex<Changes>>,
    /// Whether the analytic sinks mirror persons, so writes are marked for
    /// [`resync`] until their rows are written.
    resync: bool,
}

/// Why an event's persons step did not go as asked; reported as an
/// ingestion warning, the event is still stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    IllegalDistinctId,
    AlreadyIdentified,
}

impl Warning {
    pub fn as_str(&self) -> &'static str {
        match self {
            Warning::IllegalDistinctId => "cannot_merge_with_illegal_distinct_id",
            Warning::AlreadyIdentified => "cannot_merge_already_identified",
        }
    }
}

/// Rows for the analytic sinks: an event's group rows and warnings, or a
/// batch's person and distinct id rows ([`Persons::flush`]).
#[derive(Debug, Default)]
pub struct Changes {
    pub persons: Vec<PersonRow>,
    pub distinct_ids: Vec<DistinctIdRow>,
    pub groups: Vec<crate::pipeline::sink::GroupRow>,
    pub warnings: Vec<Warning>,
    /// Resync marks of the writes these rows mirror, cleared once they are written.
    pub marks: Vec<i64>,
}

impl Changes {
    pub fn into_batch(self, batch: &mut SinkBatch) {
        batch.persons.extend(self.persons);
        batch.distinct_ids.extend(self.distinct_ids);
        batch.groups.extend(self.groups);
    }
}

fn person_row(p: &Person, is_deleted: bool, version: i64) -> PersonRow {
    PersonRow {
        uuid: p.uuid,
        team_id: p.team_id,
        properties: p.properties.clone(),
        created_at: p.created_at,
        is_identified: p.is_identified,
        is_deleted,
        version,
    }
}

impl Persons {
    pub fn new(store: Arc<dyn PersonStore>, read_ahead: usize) -> Self {
        Persons {
            groups: groups::Groups::new(store.clone()),
            store,
            read_ahead,
            carry: Default::default(),
            resync: false,
        }
    }

    /// Marks every person write for [`resync`] until the batch's rows are
    /// written: for sinks that mirror persons (ClickHouse, its topics).
    pub fn mirrored(mut self, mirrored: bool) -> Self {
        self.resync = mirrored;
        self
    }

    /// Clears the marks of rows now written (a failure only means they are
    /// copied again later).
    pub async fn settle(&self, marks: &[i64]) {
        if marks.is_empty() {
            return;
        }
        if let Err(err) = self.store.clear_resyncs(marks).await {
            tracing::warn!(%err, marks = marks.len(), "could not clear persons' resync marks; they will be copied again");
        }
    }

    /// Marks persons a write is about to change, when the sinks mirror them.
    async fn mark(&self, state: &mut State, entries: Vec<ResyncEntry>) -> Result<(), StoreError> {
        if self.resync && !entries.is_empty() {
            let mark = self.store.mark_resync(&entries).await?;
            state.written.marks.push(mark);
        }
        Ok(())
    }

    /// Starts a batch. Dropping it unflushed (the batch failed) keeps the
    /// rows of what it did write for the next one.
    pub fn batch(&self) -> Batch {
        Batch::new(self.carry.clone())
    }

    /// Reads the persons of a batch's (team, distinct id) pairs, every team's
    /// in one query, up to the read-ahead size.
    pub async fn prefetch(&self, batch: &Batch, ids: &[(i64, &str)]) -> Result<(), StoreError> {
        let ids = &ids[..ids.len().min(self.read_ahead)];
        let mut found = self.store.persons_by_distinct_ids(ids).await?;
        let mut state = batch.state.lock().await;
        for &(team_id, id) in ids {
            state.remember(team_id, id, found.remove(&(team_id, id.to_string())));
        }
        Ok(())
    }

    /// Writes what the batch changed, in one transaction, and returns the
    /// person and distinct id rows of everything the batch wrote.
    pub async fn flush(&self, batch: Batch) -> Result<Changes, StoreError> {
        let mut state = batch.state.lock().await;
        self.write_pending(&mut state).await?;
        // Taken, so dropping the batch carries nothing over.
        Ok(std::mem::take(&mut state.written))
    }

    async fn write_pending(&self, state: &mut State) -> Result<(), StoreError> {
        let writes = state.writes();
        if !writes.is_empty() {
            let pending =
                state.pending().map(|p| ResyncEntry { team_id: p.team_id, person: p.uuid, deleted_version: None });
            self.mark(state, pending.collect()).await?;
            let created = self.store.write_persons(&writes).await?;
            state.stored(created);
        }
        Ok(())
    }

    /// Resolves the event's person and groups, updates them (in the batch),
    /// and fills the row's person and group columns.
    pub async fn process(&self, row: &mut EventRow, batch: &Batch) -> Result<Changes, StoreError> {
        let properties = &mut row.properties;
        let mut changes = Changes::default();
        if ids::is_personless(properties) {
            // Personless events: no person row is read or written.
            self.groups.process(row, batch, &mut changes).await?;
            return Ok(changes);
        }
        properties::add_derived(&row.event, properties);
        let update = Update::from_properties(properties);
        let request = merge_request(&row.event, properties);
        // One event decides at a time: the batch's persons are shared between its keys.
        let mut state = batch.state.lock().await;
        let uuid = self.decide(&mut state, row, request.as_ref(), &update, &mut changes).await?;
        let entry = state.entry(uuid);
        row.person = Some(EventPerson {
            uuid: entry.person.uuid,
            properties: entry.shared_properties(),
            created_at: entry.person.created_at,
        });
        drop(state);
        for w in &changes.warnings {
            tracing::info!(team_id = row.team_id, event_uuid = %row.uuid, warning = w.as_str(), "ingestion warning");
        }
        self.groups.process(row, batch, &mut changes).await?;
        Ok(changes)
    }

    /// The person of a distinct id, from the batch or else the store.
    async fn lookup(&self, state: &mut State, team_id: i64, distinct_id: &str) -> Result<Option<Uuid>, StoreError> {
        match state.ids.get(&(team_id, distinct_id.to_string())) {
            // A merge elsewhere may have moved an id this batch read before: then its person is gone here.
            Some(Some(uuid)) if !state.persons.contains_key(uuid) => {}
            Some(known) => return Ok(*known),
            None => {}
        }
        let person = self.store.person_by_distinct_id(team_id, distinct_id).await?;
        Ok(state.remember(team_id, distinct_id, person))
    }

    async fn decide(
        &self,
        state: &mut State,
        row: &EventRow,
        request: Option<&MergeRequest>,
        update: &Update,
        changes: &mut Changes,
    ) -> Result<Uuid, StoreError> {
        if let Some(req) = request {
            if is_illegal(&req.other) || is_illegal(&row.distinct_id) {
                changes.warnings.push(Warning::IllegalDistinctId);
            } else if req.other != row.distinct_id
                && let Some(p) = self.join(state, row, req, update, changes).await?
            {
                return Ok(p);
            }
        }
        Ok(match self.lookup(state, row.team_id, &row.distinct_id).await? {
            Some(p) => update_person(state, p, update, false),
            None => create(state, row, update, &[&row.distinct_id], false),
        })
    }

    /// Joins `req.other` into the event's distinct id; None when refused
    /// (the event then updates its own person only).
    async fn join(
        &self,
        state: &mut State,
        row: &EventRow,
        req: &MergeRequest,
        update: &Update,
        changes: &mut Changes,
    ) -> Result<Option<Uuid>, StoreError> {
        let target_id = row.distinct_id.as_str();
        let other = self.lookup(state, row.team_id, &req.other).await?;
        let target = self.lookup(state, row.team_id, target_id).await?;
        let person = match (other, target) {
            (None, None) => create(state, row, update, &[target_id, &req.other], true),
            (Some(o), None) => {
                state.add_distinct_id(o, target_id);
                update_person(state, o, update, true)
            }
            (None, Some(t)) => {
                state.add_distinct_id(t, &req.other);
                update_person(state, t, update, true)
            }
            (Some(o), Some(t)) if o == t => update_person(state, t, update, true),
            (Some(o), Some(_)) if state.persons[&o].person.is_identified && !req.dangerous => {
                changes.warnings.push(Warning::AlreadyIdentified);
                return Ok(None);
            }
            (Some(o), Some(t)) => self.merge(state, t, o, update).await?,
        };
        Ok(Some(person))
    }

    /// Merges `source` into `target` in the store at once: the target's
    /// properties win over the source's, then the event's update applies;
    /// the earlier created_at stays.
    async fn merge(&self, state: &mut State, target: Uuid, source: Uuid, update: &Update) -> Result<Uuid, StoreError> {
        if state.entry(target).new || state.entry(source).new {
            // The merge needs both persons stored.
            self.write_pending(state).await?;
        }
        let source = state.persons.remove(&source).expect("looked up above");
        let t = &state.entry(target).person;
        let mut properties = object(&source.person.properties);
        properties.extend(object(&t.properties));
        update.apply(&mut properties);
        let merged = MergedPerson {
            properties: Value::Object(properties),
            created_at: t.created_at.min(source.person.created_at),
            is_identified: true,
        };
        let deleted_version = source.person.version + 100;
        let entries = vec![
            ResyncEntry { team_id: t.team_id, person: t.uuid, deleted_version: None },
            ResyncEntry { team_id: t.team_id, person: source.person.uuid, deleted_version: Some(deleted_version) },
        ];
        self.mark(state, entries).await?;
        let t = &state.entry(target).person;
        // A failure fails the batch, which starts over from fresh reads.
        let (person, moved) = self.store.merge_persons(t, &source.person, &merged).await?;
        let written = &mut state.written;
        written.persons.push(person_row(&person, false, person.version));
        // ClickHouse keeps the highest version: the deleted row must outrank any it had.
        written.persons.push(person_row(&source.person, true, deleted_version));
        for (id, version) in &moved {
            written.distinct_ids.push(DistinctIdRow {
                team_id: person.team_id,
                distinct_id: id.clone(),
                person_uuid: person.uuid,
                is_deleted: false,
                version: *version,
            });
        }
        let team_id = person.team_id;
        let entry = state.entry(target);
        // The merge wrote both persons' changes so far; ids the source was
        // still to get now go to the target.
        (entry.person, entry.dirty) = (person, false);
        entry.changed();
        entry.added.extend(source.added.iter().cloned());
        for id in moved.into_iter().map(|(id, _)| id).chain(source.added) {
            state.ids.insert((team_id, id), Some(target));
        }
        Ok(target)
    }
}

/// Applies the event's update to the person in the batch.
fn update_person(state: &mut State, uuid: Uuid, update: &Update, identify: bool) -> Uuid {
    let entry = state.entry(uuid);
    let was_object = entry.person.properties.is_object();
    let changed = update.apply(properties_mut(&mut entry.person));
    if changed || !was_object {
        entry.changed();
    }
    if changed || (identify && !entry.person.is_identified) {
        entry.person.is_identified |= identify;
        entry.dirty = true;
    }
    uuid
}

/// Adds a new person to the batch, owning `distinct_ids`.
fn create(state: &mut State, row: &EventRow, update: &Update, distinct_ids: &[&str], is_identified: bool) -> Uuid {
    let mut properties = Map::new();
    update.apply(&mut properties);
    properties.insert("$creator_event_uuid".into(), Value::String(row.uuid.clone()));
    let new = NewPerson {
        uuid: person_uuid(row.team_id, distinct_ids[0]),
        team_id: row.team_id,
        properties: Value::Object(properties),
        created_at: row.timestamp,
        is_identified,
    };
    state.create(new, distinct_ids)
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}
