//! Retrying what can pass later, and only that. A transient failure is
//! retried with backoff (100 ms doubling to 10 s) while the worker reports
//! it as failing, so `/_health` can tell a batch that keeps failing from a
//! slow one; a data or fatal failure is handed back at once for the caller
//! to dead-letter or stop on, since retrying it could never help.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, Kinded};
use crate::metrics::WorkerStats;

/// How a retried call ended.
pub(super) enum Retried<T, E> {
    Done(T),
    /// Failed in a way retrying cannot fix (data or fatal).
    Refused(E),
    /// `stop` was cancelled while waiting to retry.
    Stopped,
}

/// Runs `op` until it succeeds, fails for a reason other than a transient
/// one, or `stop` (when given) is cancelled during a backoff. Without a
/// `stop` the loop runs until it passes: the drain at shutdown, which the
/// shutdown timeout bounds.
pub(super) async fn retry<T, E, F, Fut>(
    worker: &WorkerStats,
    stop: Option<&CancellationToken>,
    what: &'static str,
    mut op: F,
) -> Retried<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Kinded + Display,
{
    let mut delay = Duration::from_millis(100);
    let mut failed = false;
    loop {
        match op().await {
            Ok(v) => {
                if failed {
                    worker.recovered(what);
                    tracing::info!("{what} passed after retries");
                }
                return Retried::Done(v);
            }
            Err(err) if err.kind() != ErrorKind::Transient => {
                if failed {
                    worker.recovered(what);
                }
                return Retried::Refused(err);
            }
            Err(err) => {
                tracing::warn!(%err, retry_in_ms = delay.as_millis() as u64, "{what} failed");
                worker.failed(what, err.to_string());
                failed = true;
            }
        }
        match stop {
            Some(stop) => tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => {
                    worker.recovered(what);
                    return Retried::Stopped;
                }
            },
            None => tokio::time::sleep(delay).await,
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PipeError;

    #[tokio::test]
    async fn transient_failures_are_retried_and_others_handed_back() {
        let w = crate::metrics::global().worker(90);
        let mut calls = 0;
        let r = retry(&w, None, "test", || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(PipeError::transient("t", "down")) } else { Ok(n) } }
        })
        .await;
        assert!(matches!(r, Retried::Done(3)));
        assert!(w.failing().is_none(), "recovered once it passed");

        let mut calls = 0;
        let r: Retried<(), _> = retry(&w, None, "test", || {
            calls += 1;
            async { Err(PipeError::data("d", "refused")) }
        })
        .await;
        assert!(matches!(r, Retried::Refused(e) if e.kind == ErrorKind::Data));
        assert_eq!(calls, 1, "a data error is never retried");

        let stop = CancellationToken::new();
        let stopper = stop.clone();
        let r: Retried<(), _> = retry(&w, Some(&stop), "test", || {
            stopper.cancel();
            async { Err(PipeError::transient("t", "down")) }
        })
        .await;
        assert!(matches!(r, Retried::Stopped));
    }
}
