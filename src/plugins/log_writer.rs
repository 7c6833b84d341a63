//! Where the runner's plugin log entries go: a queue in front of the plugin
//! store, written in batches (at most every 200 ms), like the original's 1 s
//! Postgres log buffer, so a chatty plugin costs one insert per batch.
//!
//! [`LogQueue::flush`] writes what is queued at once and waits for it, for
//! `phs plugins test`, which reports a fixture's log entries as soon as the
//! fixture has run.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::logs::{LogEntry, LogSink};
use crate::store::{PluginConfig, PluginLog, PluginStore};

/// How long the writer waits for more entries before it writes a batch.
const LINGER: Duration = Duration::from_millis(200);

enum Queued {
    Entry(PluginLog),
    /// Write now; the sender is told once everything queued before is written.
    Flush(oneshot::Sender<()>),
}

/// The sending side; the writer task stops once every clone is dropped.
#[derive(Clone)]
pub struct LogQueue(mpsc::UnboundedSender<Queued>);

impl LogQueue {
    /// Starts the writer task.
    pub fn start(store: Arc<dyn PluginStore>) -> LogQueue {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write(store, rx));
        LogQueue(tx)
    }

    /// Queues one entry, counted in the queue-depth metric.
    pub fn send(&self, row: PluginLog) {
        if self.0.send(Queued::Entry(row)).is_ok() {
            crate::metrics::global().plugin_log_queue.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Returns once every entry queued before the call is written (or failed to be).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Queued::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

pub fn to_row(config: &PluginConfig, instance_id: Uuid, e: LogEntry) -> PluginLog {
    PluginLog {
        id: Uuid::now_v7(),
        team_id: config.team_id,
        plugin_id: config.plugin_id,
        plugin_config_id: config.id,
        timestamp: e.timestamp,
        source: e.source.as_str().into(),
        level: e.level.as_str().into(),
        message: e.message,
        instance_id,
    }
}

/// A plugin config's console, feeding the queue.
pub struct ConfigLog {
    pub config: PluginConfig,
    pub instance_id: Uuid,
    pub queue: LogQueue,
    /// The config's secret values, masked in what the plugin logs.
    pub secrets: Arc<super::secrets::Redactor>,
}

impl LogSink for ConfigLog {
    fn log(&self, mut entry: LogEntry) {
        if let std::borrow::Cow::Owned(masked) = self.secrets.redact(&entry.message) {
            entry.message = masked;
        }
        self.queue.send(to_row(&self.config, self.instance_id, entry));
    }
}

async fn write(store: Arc<dyn PluginStore>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let (mut batch, mut waiting) = (Vec::new(), Vec::new());
    while let Some(first) = rx.recv().await {
        take(first, &mut batch, &mut waiting);
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        // Someone waiting for the entries ends the linger at once.
        while waiting.is_empty() {
            tokio::select! {
                _ = &mut linger => break,
                next = rx.recv() => match next {
                    Some(q) => take(q, &mut batch, &mut waiting),
                    None => break,
                },
            }
        }
        while let Ok(q) = rx.try_recv() {
            take(q, &mut batch, &mut waiting);
        }
        if !batch.is_empty() {
            crate::metrics::global().plugin_log_queue.fetch_sub(batch.len() as i64, Ordering::Relaxed);
            if let Err(err) = store.append_plugin_logs(&batch).await {
                tracing::warn!(%err, lost = batch.len(), "could not store plugin log entries");
            }
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

fn take(q: Queued, batch: &mut Vec<PluginLog>, waiting: &mut Vec<oneshot::Sender<()>>) {
    match q {
        Queued::Entry(row) => batch.push(row),
        Queued::Flush(done) => waiting.push(done),
    }
}
