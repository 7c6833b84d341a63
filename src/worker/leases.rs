//! The leases of the jobs this instance holds, kept alive by a heartbeat.
//!
//! A claim leases a job for [`LEASE`]; while this instance still holds the
//! job (running it, or its events wait in an export buffer for up to
//! 600 s) the heartbeat pushes the lease on every [`HEARTBEAT`]. So a job
//! stays hidden from other workers exactly as long as a live worker has it,
//! and a killed worker's jobs are claimed again within [`LEASE`] instead of
//! after the longest an export buffer may wait. A heartbeat that fails (the
//! database is down) lets leases run out: another worker may then run the
//! job too, which at-least-once delivery allows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Job, JobQueue};

/// How long a claim or a heartbeat hides a job from other workers.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often held leases are pushed back to [`LEASE`] from now: a third of
/// it, so two heartbeats may fail before a live worker loses a job.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

pub struct Leases {
    store: Arc<dyn JobQueue>,
    held: Mutex<HashSet<i64>>,
}

impl Leases {
    pub fn new(store: Arc<dyn JobQueue>) -> Arc<Self> {
        Arc::new(Leases { store, held: Mutex::default() })
    }

    pub fn store(&self) -> &dyn JobQueue {
        self.store.as_ref()
    }

    /// Claims up to `limit` due jobs and holds them until [`Leases::finish`].
    pub async fn claim(&self, limit: i64) -> crate::store::Result<Vec<Job>> {
        let jobs = self.store.claim_jobs(chrono::Utc::now(), LEASE, limit).await?;
        self.lock().extend(jobs.iter().map(|j| j.id));
        Ok(jobs)
    }

    /// Removes a handled job from the queue and stops its heartbeat.
    pub async fn finish(&self, id: i64) {
        if let Err(err) = self.store.finish_job(id).await {
            tracing::warn!(job = id, %err, "could not finish a job; it will run again after its lease");
        }
        self.lock().remove(&id);
    }

    /// Lets go of a job without running it: its heartbeat stops, so any
    /// worker claims it again once its lease runs out.
    pub fn release(&self, id: i64) {
        self.lock().remove(&id);
    }

    /// Pushes every held lease back every [`HEARTBEAT`] until `stop`.
    pub async fn heartbeat(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = stop.cancelled() => return,
            }
            let ids: Vec<i64> = self.lock().iter().copied().collect();
            if ids.is_empty() {
                continue;
            }
            if let Err(err) = self.store.extend_leases(&ids, chrono::Utc::now(), LEASE).await {
                tracing::warn!(jobs = ids.len(), %err, "could not extend the leases of held jobs");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        // A panic while holding the set leaves a valid set: recover it.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}
