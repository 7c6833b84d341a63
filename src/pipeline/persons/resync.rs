//! Copies persons to the analytic sinks again after a crash.
//!
//! A batch writes its persons to the relational store, then their rows to
//! ClickHouse (or its topics), then commits its offsets. Killed between the
//! first two, the batch is read again, but its persons are already stored
//! as it left them: nothing changes, no row is made, and ClickHouse keeps
//! the old person (or a merged-away one) for good. So every person write is
//! marked first ([`super::Persons::mirrored`]) and the mark is cleared once
//! the batch's rows are written; this task finds marks older than
//! [`STALE`] and writes each marked person's stored state: its row and its
//! distinct ids, or, for a person a merge deleted, the deletion row. Those
//! rows carry the stored versions, so copying a person twice, or after a
//! newer write, changes nothing in ClickHouse.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::person_row;
use crate::pipeline::sink::{DistinctIdRow, EventSink, PersonRow, SinkBatch};
use crate::store::{PersonStore, ResyncEntry, StoreError};

/// A mark this old belongs to a batch that will not clear it: longer than
/// a batch takes from its person writes to its rows, retries included.
pub const STALE: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_secs(10);
/// Marks handled per pass.
const LIMIT: i64 = 100;

/// Repairs left-behind marks every 10 s (at once on start) until `stop`.
pub async fn run(store: Arc<dyn PersonStore>, sink: Arc<dyn EventSink>, stop: CancellationToken) {
    loop {
        match repair(store.as_ref(), sink.as_ref(), STALE).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(persons = n, "copied persons that a stopped batch left out of ClickHouse"),
            Err(err) => tracing::warn!(%err, "could not copy persons left out of ClickHouse; trying again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One pass over the marks older than `age`: writes their persons' stored
/// state to `sink`, then clears them. Returns the persons copied.
pub async fn repair(store: &dyn PersonStore, sink: &dyn EventSink, age: Duration) -> Result<usize, RepairError> {
    let before = chrono::Utc::now().timestamp_millis() - age.as_millis() as i64;
    let mut copied = 0;
    loop {
        let marks = store.stale_resyncs(before, LIMIT).await?;
        if marks.is_empty() {
            return Ok(copied);
        }
        let mut batch = SinkBatch::default();
        for entry in marks.iter().flat_map(|(_, entries)| entries) {
            copied += rows(store, entry, &mut batch).await?;
        }
        sink.write(&batch).await.map_err(RepairError::Sink)?;
        let ids: Vec<i64> = marks.iter().map(|(id, _)| *id).collect();
        store.clear_resyncs(&ids).await?;
    }
}

/// Adds the stored state of one marked person to `batch`: 1 if it had any.
async fn rows(store: &dyn PersonStore, entry: &ResyncEntry, batch: &mut SinkBatch) -> Result<usize, StoreError> {
    match store.person_by_uuid(entry.team_id, entry.person).await? {
        Some(person) => {
            for (distinct_id, version) in store.distinct_ids_of(person.id).await? {
                batch.distinct_ids.push(DistinctIdRow {
                    team_id: person.team_id,
                    distinct_id,
                    person_uuid: person.uuid,
                    is_deleted: false,
                    version,
                });
            }
            batch.persons.push(person_row(&person, false, person.version));
            Ok(1)
        }
        // Merged away: its deletion, at the version the merge gave it.
        None => Ok(match entry.deleted_version {
            Some(version) => {
                batch.persons.push(PersonRow {
                    uuid: entry.person,
                    team_id: entry.team_id,
                    properties: serde_json::json!({}),
                    created_at: chrono::DateTime::UNIX_EPOCH,
                    is_identified: false,
                    is_deleted: true,
                    version,
                });
                1
            }
            // Never stored (its write failed), or gone another way: nothing to mirror.
            None => 0,
        }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("write the persons: {0}")]
    Sink(crate::error::PipeError),
}
