//! A batch's working set of persons: what the batch read, and what its
//! events changed but the database does not have yet.
//!
//! Most events only update their person (`$set`, derived properties) or
//! create one. Written one by one, that is one UPDATE and one commit per
//! event, which capped ingestion near 2,000 events/s. Here those changes
//! accumulate in memory, keyed by person so that two distinct ids of one
//! person share its state, and [`Batch::writes`] turns them into one
//! [`PersonWrites`]: a handful of statements in one transaction per batch.
//! A person updated by many events of a batch is written once, at version +1
//! (as the original's batch-writing person store does).
//!
//! Merges still write at once (they need both persons' rows as stored); the
//! rows they produced are kept in the batch, and handed to the next batch if
//! this one is abandoned, so a retried batch does not lose them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use uuid::Uuid;

use super::{Changes, person_row};
use crate::pipeline::sink::DistinctIdRow;
use crate::store::{NewDistinctId, NewPerson, Person, PersonUpdate, PersonWrites};
use crate::wire::SharedJson;

/// The persons state of one batch; see the module doc.
pub struct Batch {
    pub(super) state: tokio::sync::Mutex<State>,
    /// (team, group type index, key) -> the group's properties (None: no such group).
    groups: Mutex<HashMap<(i64, i32, String), Option<Value>>>,
    /// Where an abandoned batch leaves the rows of writes it already made
    /// (a flushed batch has handed them on and leaves nothing).
    carry: Arc<Mutex<Changes>>,
}

#[derive(Default)]
pub(super) struct State {
    /// (team, distinct id) -> its person's uuid, None when it has none.
    pub ids: HashMap<(i64, String), Option<Uuid>>,
    pub persons: HashMap<Uuid, Entry>,
    /// Rows of writes already committed in this batch (merges, and flushes
    /// made before one), for the analytic sinks.
    pub written: Changes,
}

/// A person as this batch sees it. `person.version` and `person.id` are the
/// stored ones (id 0 while `new`); properties and is_identified may be ahead.
pub(super) struct Entry {
    pub person: Person,
    /// Not stored yet.
    pub new: bool,
    /// Properties or is_identified differ from the stored person.
    pub dirty: bool,
    /// Distinct ids to point at this person.
    pub added: Vec<String>,
    /// The properties as event rows carry them, shared until they change:
    /// whatever changes `person.properties` must clear it ([`Entry::changed`]).
    shared: Option<Arc<SharedJson>>,
}

impl Entry {
    pub fn new(person: Person, new: bool, added: Vec<String>) -> Entry {
        Entry { person, new, dirty: false, added, shared: None }
    }

    /// The properties for an event row: the ones the last row got, unless they changed since.
    pub fn shared_properties(&mut self) -> Arc<SharedJson> {
        self.shared.get_or_insert_with(|| SharedJson::new(self.person.properties.clone())).clone()
    }

    /// To be called whenever `person.properties` changes.
    pub fn changed(&mut self) {
        self.shared = None;
    }
}

impl Batch {
    pub(super) fn new(carry: Arc<Mutex<Changes>>) -> Self {
        let written = std::mem::take(&mut *carry.lock().expect("carry lock"));
        Batch { state: tokio::sync::Mutex::new(State { written, ..State::default() }), groups: Mutex::default(), carry }
    }

    /// A group's properties as this batch last read or wrote them; None when not read yet.
    pub(super) fn group(&self, team_id: i64, index: i32, key: &str) -> Option<Option<Value>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).get(&(team_id, index, key.to_string())).cloned()
    }

    pub(super) fn remember_group(&self, team_id: i64, index: i32, key: &str, properties: Option<Value>) {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).insert((team_id, index, key.to_string()), properties);
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let written = std::mem::take(&mut self.state.get_mut().written);
        let mut carry = self.carry.lock().expect("carry lock");
        carry.persons.extend(written.persons);
        carry.distinct_ids.extend(written.distinct_ids);
        carry.marks.extend(written.marks);
    }
}

impl State {
    /// Records a person read from the store under `distinct_id`; an entry
    /// the batch already has for it is newer and is kept.
    pub fn remember(&mut self, team_id: i64, distinct_id: &str, person: Option<Person>) -> Option<Uuid> {
        let uuid = person.map(|p| {
            let uuid = p.uuid;
            self.persons.entry(uuid).or_insert_with(|| Entry::new(p, false, Vec::new()));
            uuid
        });
        self.ids.insert((team_id, distinct_id.to_string()), uuid);
        uuid
    }

    pub fn entry(&mut self, uuid: Uuid) -> &mut Entry {
        self.persons.get_mut(&uuid).expect("every uuid in ids has an entry")
    }

    /// Adds a person that does not exist yet, owning `distinct_ids`.
    pub fn create(&mut self, new: NewPerson, distinct_ids: &[&str]) -> Uuid {
        let uuid = new.uuid;
        let person = Person {
            id: 0,
            uuid,
            team_id: new.team_id,
            properties: new.properties,
            created_at: new.created_at,
            is_identified: new.is_identified,
            version: 0,
        };
        for id in distinct_ids {
            self.ids.insert((new.team_id, id.to_string()), Some(uuid));
        }
        let added = distinct_ids.iter().map(|d| d.to_string()).collect();
        self.persons.insert(uuid, Entry::new(person, true, added));
        uuid
    }

    /// Points one more distinct id at the person.
    pub fn add_distinct_id(&mut self, uuid: Uuid, distinct_id: &str) {
        let entry = self.entry(uuid);
        entry.added.push(distinct_id.to_string());
        let team_id = entry.person.team_id;
        self.ids.insert((team_id, distinct_id.to_string()), Some(uuid));
    }

    /// The persons [`State::writes`] would write.
    pub fn pending(&self) -> impl Iterator<Item = &Person> {
        self.persons.values().filter(|e| e.new || e.dirty || !e.added.is_empty()).map(|e| &e.person)
    }

    /// Everything not stored yet, as one set of writes.
    pub fn writes(&self) -> PersonWrites {
        let mut w = PersonWrites::default();
        for e in self.persons.values() {
            let p = &e.person;
            if e.new {
                w.creates.push(NewPerson {
                    uuid: p.uuid,
                    team_id: p.team_id,
                    properties: p.properties.clone(),
                    created_at: p.created_at,
                    is_identified: p.is_identified,
                });
            } else if e.dirty {
                w.updates.push(PersonUpdate {
                    id: p.id,
                    version: p.version,
                    properties: p.properties.clone(),
                    is_identified: p.is_identified,
                });
            }
            w.distinct_ids.extend(e.added.iter().map(|d| NewDistinctId {
                team_id: p.team_id,
                person_uuid: p.uuid,
                distinct_id: d.clone(),
            }));
        }
        w
    }

    /// Marks what [`State::writes`] gave as stored, given the persons the
    /// store created, and records the rows for the analytic sinks.
    pub fn stored(&mut self, created: Vec<Person>) {
        let mut created: HashMap<Uuid, Person> = created.into_iter().map(|p| (p.uuid, p)).collect();
        for e in self.persons.values_mut() {
            let changed = e.new || e.dirty;
            if e.new {
                e.person.id = created.remove(&e.person.uuid).map(|p| p.id).unwrap_or_default();
            } else if e.dirty {
                e.person.version += 1;
            }
            (e.new, e.dirty) = (false, false);
            if changed {
                self.written.persons.push(person_row(&e.person, false, e.person.version));
            }
            for d in e.added.drain(..) {
                self.written.distinct_ids.push(DistinctIdRow {
                    team_id: e.person.team_id,
                    distinct_id: d,
                    person_uuid: e.person.uuid,
                    is_deleted: false,
                    version: 0,
                });
            }
        }
    }
}

/// The properties of a person as a map (they are always an object).
pub(super) fn properties_mut(p: &mut Person) -> &mut serde_json::Map<String, Value> {
    if !p.properties.is_object() {
        p.properties = Value::Object(Default::default());
    }
    p.properties.as_object_mut().expect("made an object above")
}
