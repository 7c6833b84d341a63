//! The production events sink: ClickHouse (CLICKHOUSE_HOST), written with
//! the clickhouse crate in RowBinary, one INSERT per table per pipeline
//! batch. Tables are ReplacingMergeTree (migrations/clickhouse), so a
//! redelivered event (same uuid) or a person row of an already-written
//! version collapses on merge; reads use FINAL so they never see the copy.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventFilter, EventRow, EventSink, SinkBatch};
use crate::error::{ErrorKind, PipeError};
use crate::wire::{EventPerson, SharedJson, json_text};

fn err(context: &'static str) -> impl FnOnce(clickhouse::error::Error) -> PipeError {
    move |e| PipeError::new(kind(&e), context, e)
}

/// ClickHouse's error codes for a value it cannot take: the rows are at
/// fault, and bisecting the batch finds them. Every other server error
/// (too many parts, memory, timeouts, a table being altered) may pass.
const DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    376, // CANNOT_PARSE_UUID
];

/// Codes that no retry fixes: a missing table or column, bad credentials.
const FATAL_CODES: &[u32] = &[16, 47, 60, 81, 192, 193, 194, 497, 516];

fn kind(e: &clickhouse::error::Error) -> ErrorKind {
    use clickhouse::error::Error as E;
    match e {
        E::BadResponse(text) => {
            let code = text
                .split_once("Code: ")
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u32>().ok());
            match code {
                Some(c) if DATA_CODES.contains(&c) => ErrorKind::Data,
                Some(c) if FATAL_CODES.contains(&c) => ErrorKind::Fatal,
                _ => ErrorKind::Transient,
            }
        }
        // Our rows failed to serialize: retrying the same rows cannot help.
        E::Custom(_) | E::SequenceMustHaveLength | E::InvalidUtf8Encoding(_) => ErrorKind::Data,
        E::SchemaMismatch(_) | E::InvalidParams(_) | E::Unsupported(_) => ErrorKind::Fatal,
        _ => ErrorKind::Transient,
    }
}

/// Microseconds since the epoch: how the schema keeps times (18.16 has no DateTime64).
fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A JSON value as the String columns hold it ('' for none).
fn json_text_or_empty(v: Option<&Value>) -> String {
    v.map(json_text).unwrap_or_default()
}

#[derive(Row, Serialize, Deserialize)]
struct EventCh {
    uuid: String,
    event: String,
    properties: String,
    timestamp_us: i64,
    team_id: i64,
    distinct_id: String,
    elements_chain: String,
    created_at_us: i64,
    person_id: String,
    person_created_at_us: i64,
    person_properties: String,
    group0_properties: String,
    group1_properties: String,
    group2_properties: String,
    group3_properties: String,
    group4_properties: String,
    person_mode: String,
    _timestamp: u32,
    _offset: u64,
}

/// The columns `latest` reads (the insert-only ones left out).
const EVENT_COLUMNS: &str = "uuid, event, properties, timestamp_us, team_id, distinct_id, elements_chain, \
     created_at_us, person_id, person_created_at_us, person_properties, group0_properties, group1_properties, \
     group2_properties, group3_properties, group4_properties, person_mode, _timestamp, _offset";

impl EventCh {
    fn new(r: &EventRow, now: u32) -> Self {
        let group = |i: usize| json_text_or_empty(r.groups[i].as_ref());
        EventCh {
            uuid: r.uuid.clone(),
            event: r.event.clone(),
            properties: r.properties_json(),
            timestamp_us: micros(&r.timestamp),
            team_id: r.team_id,
            distinct_id: r.distinct_id.clone(),
            elements_chain: r.elements_chain.clone(),
            created_at_us: micros(&r.created_at),
            person_id: r.person.as_ref().map(|p| p.uuid.to_string()).unwrap_or_default(),
            person_created_at_us: r.person.as_ref().map(|p| micros(&p.created_at)).unwrap_or_default(),
            person_properties: r.person.as_ref().map(|p| p.properties.text().to_string()).unwrap_or_default(),
            group0_properties: group(0),
            group1_properties: group(1),
            group2_properties: group(2),
            group3_properties: group(3),
            group4_properties: group(4),
            person_mode: if r.person.is_some() { "full" } else { "propertyless" }.into(),
            _timestamp: now,
            _offset: 0,
        }
    }

    fn into_row(self) -> EventRow {
        let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
        let person = uuid::Uuid::parse_str(&self.person_id).ok().map(|uuid| EventPerson {
            uuid,
            properties: SharedJson::new(parse(&self.person_properties).unwrap_or_default()),
            created_at: from_micros(self.person_created_at_us),
        });
        EventRow {
            properties: serde_json::from_str(&self.properties).unwrap_or_default(),
            timestamp: from_micros(self.timestamp_us),
            created_at: from_micros(self.created_at_us),
            groups: [
                parse(&self.group0_properties),
                parse(&self.group1_properties),
                parse(&self.group2_properties),
                parse(&self.group3_properties),
                parse(&self.group4_properties),
            ],
            person,
            uuid: self.uuid,
            team_id: self.team_id,
            event: self.event,
            distinct_id: self.distinct_id,
            elements_chain: self.elements_chain,
        }
    }
}

#[derive(Row, Serialize)]
struct PersonCh {
    id: String,
    created_at_us: i64,
    team_id: i64,
    properties: String,
    is_identified: u8,
    is_deleted: u8,
    version: u64,
    _timestamp: u32,
}

#[derive(Row, Serialize)]
struct DistinctIdCh<'a> {
    team_id: i64,
    distinct_id: &'a str,
    person_id: String,
    is_deleted: u8,
    version: u64,
    _timestamp: u32,
}

#[derive(Row, Serialize)]
struct GroupCh<'a> {
    group_type_index: u8,
    group_key: &'a str,
    created_at_us: i64,
    team_id: i64,
    group_properties: String,
    version: u64,
    _timestamp: u32,
}

#[derive(Clone)]
pub struct ClickHouseEvents {
    client: Client,
}

impl ClickHouseEvents {
    /// The sink for a client bound to CLICKHOUSE_DATABASE (see [`crate::clickhouse::client`]).
    pub fn new(client: Client) -> Self {
        ClickHouseEvents { client }
    }
}

/// Inserts `rows` into `table` in one request; nothing when empty.
async fn insert<T: Row + clickhouse::RowWrite>(
    client: &Client,
    table: &'static str,
    rows: &[T::Value<'_>],
) -> Result<(), PipeError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<T>(table).await.map_err(err(table))?;
    for row in rows {
        insert.write(row).await.map_err(err(table))?;
    }
    insert.end().await.map_err(err(table))
}

#[async_trait]
impl EventSink for ClickHouseEvents {
    fn mirrors_persons(&self) -> bool {
        true
    }

    async fn write(&self, batch: &SinkBatch) -> Result<(), PipeError> {
        let now = Utc::now().timestamp() as u32;
        // Persons and distinct ids first: an event is never visible before the person it points to.
        insert::<PersonCh>(
            &self.client,
            "person",
            &batch
                .persons
                .iter()
                .map(|p| PersonCh {
                    id: p.uuid.to_string(),
                    created_at_us: micros(&p.created_at),
                    team_id: p.team_id,
                    properties: json_text(&p.properties),
                    is_identified: p.is_identified.into(),
                    is_deleted: p.is_deleted.into(),
                    version: p.version.max(0) as u64,
                    _timestamp: now,
                })
                .collect::<Vec<_>>(),
        )
        .await?;
        insert::<DistinctIdCh>(
            &self.client,
            "person_distinct_id2",
            &batch
                .distinct_ids
                .iter()
                .map(|d| DistinctIdCh {
                    team_id: d.team_id,
                    distinct_id: &d.distinct_id,
                    person_id: d.person_uuid.to_string(),
                    is_deleted: d.is_deleted.into(),
                    version: d.version.max(0) as u64,
                    _timestamp: now,
                })
                .collect::<Vec<_>>(),
        )
        .await?;
        insert::<GroupCh>(
            &self.client,
            "groups",
            &batch
                .groups
                .iter()
                .map(|g| GroupCh {
                    group_type_index: g.group_type_index.clamp(0, 255) as u8,
                    group_key: &g.group_key,
                    created_at_us: micros(&g.created_at),
                    team_id: g.team_id,
                    group_properties: json_text(&g.properties),
                    version: g.version.max(0) as u64,
                    _timestamp: now,
                })
                .collect::<Vec<_>>(),
        )
        .await?;
        let events: Vec<EventCh> = batch.events.iter().map(|r| EventCh::new(r, now)).collect();
        insert::<EventCh>(&self.client, "events", &events).await
    }

    async fn latest(&self, f: &EventFilter) -> Result<Vec<EventRow>, PipeError> {
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events FINAL WHERE 1");
        for (column, given) in
            [("team_id", f.team_id.is_some()), ("distinct_id", f.distinct_id.is_some()), ("event", f.event.is_some())]
        {
            if given {
                sql.push_str(&format!(" AND {column} = ?"));
            }
        }
        sql.push_str(" ORDER BY timestamp_us DESC, uuid LIMIT ?");
        let mut q = self.client.query(&sql);
        if let Some(t) = f.team_id {
            q = q.bind(t);
        }
        if let Some(d) = &f.distinct_id {
            q = q.bind(d.as_str());
        }
        if let Some(e) = &f.event {
            q = q.bind(e.as_str());
        }
        let rows: Vec<EventCh> = q.bind(f.limit.max(0)).fetch_all().await.map_err(err("read events"))?;
        Ok(rows.into_iter().map(EventCh::into_row).collect())
    }
}
