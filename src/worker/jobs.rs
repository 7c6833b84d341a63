//! The job worker: claims due jobs from the durable queue and runs them.
//!
//! Claims lease a job ([`super::leases`]: a short lease that a heartbeat
//! keeps alive while this instance holds the job; Postgres hands concurrent
//! claimers disjoint jobs with `FOR UPDATE SKIP LOCKED`; SQLite has one
//! writer). A job is deleted once handled; one whose worker died is claimed
//! again when its lease runs out, within [`super::leases::LEASE`]. How each
//! job runs (and is retried) is
//! [`crate::plugins::delivery`]'s.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::events::{Exports, Settle};
use super::leases::Leases;
use crate::plugins::delivery::{self, EVENTS_JOB, Waits};
use crate::plugins::runner::PluginRunner;
use crate::store::Job;

/// Jobs running at once on one instance.
pub const CONCURRENCY: usize = 16;

pub struct JobWorker {
    leases: Arc<Leases>,
    runner: Arc<PluginRunner>,
    exports: Arc<Exports>,
    poll: Duration,
}

impl JobWorker {
    pub fn new(leases: Arc<Leases>, runner: Arc<PluginRunner>, exports: Arc<Exports>, poll: Duration) -> Arc<Self> {
        Arc::new(JobWorker { leases, runner, exports, poll })
    }

    /// Claims and runs jobs until `stop`, then waits up to 10 s for the
    /// running ones (the rest are claimed again after their lease).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        while !stop.is_cancelled() {
            let free = slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self.leases.claim(free as i64).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                            let me = self.clone();
                            tokio::spawn(async move {
                                me.handle(job).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(err) => tracing::warn!(%err, "claiming jobs failed"),
                }
            }
            // A full claim suggests more are due: look again at once.
            if claimed == free && free > 0 {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.cancelled() => break,
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(CONCURRENCY as u32)).await;
    }

    async fn handle(&self, Job { id, spec: job }: Job) {
        let p = match self.runner.plugin(job.team_id, job.plugin_config_id).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                tracing::info!(job = id, name = %job.name, config = job.plugin_config_id,
                    "job dropped: its plugin config is disabled or gone");
                self.leases.finish(id).await;
                return;
            }
            Err(err) => {
                tracing::warn!(job = id, name = %job.name, %err, "could not load the job's plugin; it runs again after its lease");
                self.leases.release(id);
                return;
            }
        };
        if job.name == EVENTS_JOB {
            let events: Vec<Value> = job.payload.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
            if let Err(stopped) = delivery::on_event(&self.runner, &p, 0, &events, Waits::Slept).await {
                tracing::warn!(job = id, reason = %stopped.reason,
                    "onEvent met an outage; the job runs again after its lease");
                self.leases.release(id);
                return;
            }
            if p.vm().has("exportEvents") {
                // Finished by the buffer once exported.
                self.exports.add(p, super::events::sized(events), Settle::Job(id)).await;
                return;
            }
        } else {
            delivery::run_job(&self.runner, self.leases.store(), &p, &job).await;
        }
        self.leases.finish(id).await;
    }
}
