//! The one task that writes queued definitions: whatever the pipelines
//! queued since the last write goes out in one transaction, so the number of
//! writes follows the database's pace, not the batches'.
//!
//! A failed write is logged and its rows go back to the queue, to be written
//! with the next ones after a backoff; the pipeline never waits for it. Rows
//! the database refuses for what they are (a data error) are dropped, since
//! they would be refused again forever; a missing table (fatal) is retried
//! at the longest backoff, so that `phs migrate` run later fixes it without a
//! restart, and ingestion goes on meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Definitions;
use crate::error::ErrorKind;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How often the writer looks, at shutdown, whether the pipelines are done.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// Writes what is queued until `stop`; then, once no pipeline holds the
/// definitions any more, tries the last rows once (a shutdown never waits on
/// a database that is down).
pub async fn run(defs: Arc<Definitions>, stop: CancellationToken) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::select! {
            _ = defs.queued.notified() => {}
            _ = stop.cancelled() => break,
        }
        while let Err(kind) = write(&defs).await {
            if kind == ErrorKind::Fatal {
                backoff = MAX_BACKOFF;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        backoff = FIRST_BACKOFF;
    }
    // The pipelines hold the other references: their last batches are read once they let go.
    while Arc::strong_count(&defs) > 1 {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let _ = write(&defs).await;
}

/// Writes everything queued; the error's kind when it failed and the rows
/// were queued again.
pub async fn write(defs: &Definitions) -> Result<(), ErrorKind> {
    let rows = defs.take();
    if rows.is_empty() {
        return Ok(());
    }
    let Err(err) = defs.store.write_definitions(&rows).await else {
        tracing::debug!(rows = rows.len(), "definitions written");
        return Ok(());
    };
    match err.kind() {
        ErrorKind::Data => {
            tracing::error!(%err, rows = rows.len(), "the database refused event and property definitions; they are dropped");
            Ok(())
        }
        kind => {
            tracing::warn!(%err, ?kind, rows = rows.len(), "writing event and property definitions failed; retrying");
            defs.requeue(rows);
            Err(kind)
        }
    }
}
