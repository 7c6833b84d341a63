//! Every long-lived task of `phs serve`, watched. A task that ends before
//! shutdown, fails or panics makes the instance unhealthy at once
//! (`/_health` answers 503 with the task and the reason), stops the other
//! tasks (each drains what it holds), and makes `phs serve` exit non-zero
//! with that reason, so an orchestrator restarts it. Nothing is left running
//! half-dead, as a forgotten `tokio::spawn` would.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// A supervised task ended before shutdown.
#[derive(Debug, thiserror::Error)]
#[error("task `{task}` {why}")]
pub struct TaskFailed {
    pub task: &'static str,
    pub why: String,
}

pub struct Supervisor {
    tasks: JoinSet<Result<(), String>>,
    names: HashMap<Id, &'static str>,
    stop: CancellationToken,
}

impl Supervisor {
    /// Tasks are expected to run until `stop` is cancelled.
    pub fn new(stop: CancellationToken) -> Self {
        Supervisor { tasks: JoinSet::new(), names: HashMap::new(), stop }
    }

    /// The token that stops every task (shutdown, or a task that failed).
    pub fn stop(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `task`, which ends only after `stop` (Ok) or when it cannot go on (Err).
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Like [`Supervisor::spawn`], for a task that has no failure of its own to report.
    pub fn spawn_infallible<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, async move {
            task.await;
            Ok(())
        });
    }

    /// Waits until every task has ended. The first that ended before
    /// shutdown, failed or panicked is the error; it also cancels `stop`
    /// and marks the instance not live.
    pub async fn wait(mut self) -> Result<(), TaskFailed> {
        let mut first: Option<TaskFailed> = None;
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let (id, outcome) = match joined {
                Ok((id, outcome)) => (id, outcome),
                Err(e) if e.is_panic() => {
                    (e.id(), Err(format!("panicked: {}", crate::error::panic_message(&*e.into_panic()))))
                }
                Err(e) => (e.id(), Err("was cancelled".to_string())),
            };
            let task = self.names.get(&id).copied().unwrap_or("unnamed");
            let why = match outcome {
                Err(why) => format!("failed: {why}"),
                Ok(()) if !self.stop.is_cancelled() => "ended before shutdown".to_string(),
                Ok(()) => continue,
            };
            let failed = TaskFailed { task, why };
            tracing::error!(%failed, "a supervised task ended; stopping phs");
            if first.is_none() {
                crate::metrics::global().task_ended(failed.to_string());
                first = Some(failed);
            }
            self.stop.cancel();
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_stops_the_others_and_is_the_error() {
        let stop = CancellationToken::new();
        let mut s = Supervisor::new(stop.clone());
        let patient = stop.clone();
        s.spawn_infallible("patient", async move { patient.cancelled().await });
        s.spawn_infallible("doomed", async { panic!("poison") });
        let err = s.wait().await.unwrap_err();
        assert_eq!(err.task, "doomed");
        assert!(err.why.contains("poison"), "{err}");
        assert!(stop.is_cancelled(), "the other tasks were told to stop");
    }

    #[tokio::test]
    async fn tasks_that_end_after_shutdown_are_fine() {
        let stop = CancellationToken::new();
        let mut s = Supervisor::new(stop.clone());
        let t = stop.clone();
        s.spawn_infallible("worker", async move { t.cancelled().await });
        stop.cancel();
        assert!(s.wait().await.is_ok());
    }
}
