//! Stage 4: persons and groups. Each event is attributed to the person of
//! its distinct id (created on first sight), `$identify`, `$create_alias`
//! and `$merge_dangerously` join two distinct ids into one person, `$set`,
//! `$set_once` and `$unset` update the person, and `$groups` /
//! `$groupidentify` resolve and update groups. The rules are the later
//! original's (person-state.ts), see POSTHOG-SEMANTICS.md §2.
//!
//! The store's writes are optimistic (versions and unique keys); when one
//! reports a conflict, the event's whole decision is re-made from fresh
//! reads, so a concurrent merge or update is never lost. What changed is
//! returned as rows for the analytic sinks.

pub mod groups;
pub mod ids;
pub mod properties;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::pipeline::prepare::{EventPerson, EventRow};
use crate::pipeline::sink::{DistinctIdRow, PersonRow, SinkBatch};
use crate::store::{MergedPerson, NewPerson, Person, Store, StoreError};

use self::ids::{MergeRequest, is_illegal, merge_request};
use self::properties::Update;

/// Attempts at one event's person decision before the batch is retried: each
/// conflict means another writer succeeded, so this bounds the writers that
/// can overtake one event, not the odds.
const ATTEMPTS: usize = 10;

/// A person is created for a distinct id with this uuid, so a redelivered
/// event (after a crash between the write and the commit) finds, rather than
/// duplicates, the person it created the first time.
pub fn person_uuid(team_id: i64, distinct_id: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("phs:person:{team_id}:{distinct_id}").as_bytes())
}

pub struct Persons {
    store: Arc<dyn Store>,
    groups: groups::Groups,
    /// Bumped by every merge or join done here: persons read before it may be stale.
    epoch: AtomicU64,
    /// At most this many distinct ids are read ahead per batch (DISTINCT_ID_LRU_SIZE).
    read_ahead: usize,
}

/// What a batch already knows about one distinct id's person (read ahead
/// for the whole batch, then carried from event to event of that key). It
/// saves a read per event and is dropped as soon as this process merges or
/// joins anything; a stale person from another instance makes the write
/// conflict and the event re-decide from a fresh read.
#[derive(Debug, Clone)]
pub struct Known {
    person: Option<Person>,
    epoch: u64,
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

/// The analytic rows one event's persons step produced.
#[derive(Debug, Default)]
pub struct Changes {
    pub persons: Vec<PersonRow>,
    pub distinct_ids: Vec<DistinctIdRow>,
    pub groups: Vec<crate::pipeline::sink::GroupRow>,
    pub warnings: Vec<Warning>,
}

impl Changes {
    pub fn into_batch(self, batch: &mut SinkBatch) {
        batch.persons.extend(self.persons);
        batch.distinct_ids.extend(self.distinct_ids);
        batch.groups.extend(self.groups);
    }

    fn person(&mut self, p: &Person) {
        self.persons.push(person_row(p, false, p.version));
    }

    fn distinct_id(&mut self, p: &Person, distinct_id: &str, version: i64) {
        self.distinct_ids.push(DistinctIdRow {
            team_id: p.team_id,
            distinct_id: distinct_id.to_string(),
            person_uuid: p.uuid,
            is_deleted: false,
            version,
        });
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
    pub fn new(store: Arc<dyn Store>, read_ahead: usize) -> Self {
        Persons { groups: groups::Groups::new(store.clone()), store, epoch: AtomicU64::new(0), read_ahead }
    }

    /// Reads the persons of a batch's distinct ids of one team in one query.
    pub async fn prefetch(&self, team_id: i64, distinct_ids: &[&str]) -> Result<HashMap<String, Known>, StoreError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let distinct_ids = &distinct_ids[..distinct_ids.len().min(self.read_ahead)];
        let mut found = self.store.persons_by_distinct_ids(team_id, distinct_ids).await?;
        Ok(distinct_ids.iter().map(|id| (id.to_string(), Known { person: found.remove(*id), epoch })).collect())
    }

    /// Resolves the event's person and groups, updates them, and fills the
    /// row's person and group columns.
    pub async fn process(&self, row: &mut EventRow, mut known: Option<&mut Known>) -> Result<Changes, StoreError> {
        let Value::Object(properties) = &mut row.properties else {
            unreachable!("prepare always gives an object");
        };
        if properties.get("$process_person_profile") == Some(&Value::Bool(false)) {
            // Personless events: no person row is read or written.
            let mut changes = Changes::default();
            self.groups.process(row, &mut changes).await?;
            return Ok(changes);
        }
        properties::add_derived(&row.event, properties);
        let update = Update::from_properties(properties);
        let request = merge_request(&row.event, properties);
        let mut attempt = 0;
        let mut changes;
        let person = loop {
            attempt += 1;
            let epoch = self.epoch.load(Ordering::SeqCst);
            // Only a first attempt may trust what the batch knew; a retry reads afresh.
            let cached = known.as_deref().filter(|k| attempt == 1 && k.epoch == epoch).map(|k| k.person.clone());
            let mut tried = Changes::default();
            match self.decide(row, request.as_ref(), &update, cached, &mut tried).await {
                Ok(p) => {
                    if let Some(k) = known.as_deref_mut() {
                        *k = Known { person: Some(p.clone()), epoch };
                    }
                    // Only the attempt that succeeded describes what was written.
                    changes = tried;
                    break p;
                }
                Err(StoreError::Conflict(why)) if attempt < ATTEMPTS => {
                    tracing::debug!(%why, attempt, "person changed concurrently; deciding again");
                }
                Err(e) => return Err(e),
            }
        };
        for w in &changes.warnings {
            tracing::info!(team_id = row.team_id, event_uuid = %row.uuid, warning = w.as_str(), "ingestion warning");
        }
        row.person =
            Some(EventPerson { uuid: person.uuid, properties: person.properties, created_at: person.created_at });
        self.groups.process(row, &mut changes).await?;
        Ok(changes)
    }

    async fn decide(
        &self,
        row: &EventRow,
        request: Option<&MergeRequest>,
        update: &Update,
        cached: Option<Option<Person>>,
        changes: &mut Changes,
    ) -> Result<Person, StoreError> {
        if let Some(req) = request {
            if is_illegal(&req.other) || is_illegal(&row.distinct_id) {
                changes.warnings.push(Warning::IllegalDistinctId);
            } else if req.other != row.distinct_id
                && let Some(p) = self.join(row, req, update, changes).await?
            {
                return Ok(p);
            }
        }
        let person = match cached {
            Some(known) => known,
            None => self.store.person_by_distinct_id(row.team_id, &row.distinct_id).await?,
        };
        match person {
            Some(p) => self.update(p, update, false, changes).await,
            None => self.create(row, update, &[&row.distinct_id], false, changes).await,
        }
    }

    /// Joins `req.other` into the event's distinct id; None when refused
    /// (the event then updates its own person only).
    async fn join(
        &self,
        row: &EventRow,
        req: &MergeRequest,
        update: &Update,
        changes: &mut Changes,
    ) -> Result<Option<Person>, StoreError> {
        let target_id = row.distinct_id.as_str();
        let other = self.store.person_by_distinct_id(row.team_id, &req.other).await?;
        let target = self.store.person_by_distinct_id(row.team_id, target_id).await?;
        let person = match (other, target) {
            (None, None) => self.create(row, update, &[target_id, &req.other], true, changes).await?,
            (Some(o), None) => {
                self.epoch.fetch_add(1, Ordering::SeqCst);
                self.store.add_distinct_id(&o, target_id).await?;
                changes.distinct_id(&o, target_id, 0);
                self.update(o, update, true, changes).await?
            }
            (None, Some(t)) => {
                self.epoch.fetch_add(1, Ordering::SeqCst);
                self.store.add_distinct_id(&t, &req.other).await?;
                changes.distinct_id(&t, &req.other, 0);
                self.update(t, update, true, changes).await?
            }
            (Some(o), Some(t)) if o.id == t.id => self.update(t, update, true, changes).await?,
            (Some(o), Some(_)) if o.is_identified && !req.dangerous => {
                changes.warnings.push(Warning::AlreadyIdentified);
                return Ok(None);
            }
            (Some(o), Some(t)) => self.merge(t, o, update, changes).await?,
        };
        Ok(Some(person))
    }

    /// Merges `source` into `target`: the target's properties win over the
    /// source's, then the event's update applies; the earlier created_at stays.
    async fn merge(
        &self,
        target: Person,
        source: Person,
        update: &Update,
        changes: &mut Changes,
    ) -> Result<Person, StoreError> {
        let mut properties = object(&source.properties);
        properties.extend(object(&target.properties));
        update.apply(&mut properties);
        let merged = MergedPerson {
            properties: Value::Object(properties),
            created_at: target.created_at.min(source.created_at),
            is_identified: true,
        };
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let (person, moved) = self.store.merge_persons(&target, &source, &merged).await?;
        changes.person(&person);
        // ClickHouse keeps the highest version: the deleted row must outrank any it had.
        changes.persons.push(person_row(&source, true, source.version + 100));
        for (id, version) in moved {
            changes.distinct_id(&person, &id, version);
        }
        Ok(person)
    }

    async fn update(
        &self,
        person: Person,
        update: &Update,
        identify: bool,
        changes: &mut Changes,
    ) -> Result<Person, StoreError> {
        let mut properties = object(&person.properties);
        let changed = update.apply(&mut properties);
        let is_identified = person.is_identified || identify;
        if !changed && is_identified == person.is_identified {
            return Ok(person);
        }
        let person = self.store.update_person(&person, &Value::Object(properties), is_identified).await?;
        changes.person(&person);
        Ok(person)
    }

    async fn create(
        &self,
        row: &EventRow,
        update: &Update,
        distinct_ids: &[&str],
        is_identified: bool,
        changes: &mut Changes,
    ) -> Result<Person, StoreError> {
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
        let person = self.store.create_person(&new, distinct_ids).await?;
        changes.person(&person);
        for id in distinct_ids {
            changes.distinct_id(&person, id, 0);
        }
        Ok(person)
    }
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}
