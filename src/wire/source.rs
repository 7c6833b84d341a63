//! What reads raw messages in order and commits where it stands: the
//! ingestion topic or the local log for the pipeline, the stored-events
//! topic for the async side. A trait here, so its readers and its
//! implementations know only this.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::message::{Message, Positions};
use crate::error::PipeError;

#[async_trait]
pub trait Source: Send + Sync {
    /// Up to `max` messages after the last ones returned, waiting up to
    /// `wait` for the first; an empty batch means nothing arrived.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, PipeError>;
    /// Marks everything up to and including each `(partition, offset)` as
    /// done. Called only after those messages are fully handled. A
    /// partition this reader no longer owns (after a rebalance) is skipped:
    /// its new owner re-reads from the last commit, which is at-least-once.
    async fn commit(&self, positions: &[(i32, i64)]) -> Result<(), PipeError>;
    /// A handle that reads this consumer's committed offsets and the log ends
    /// (consumer lag), usable while the source itself is busy polling.
    fn positions(&self) -> Option<Arc<dyn Positions>> {
        None
    }
}
