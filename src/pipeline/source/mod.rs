//! Where raw events come from: the Kafka consumption topic in production or
//! the durable local log when embedded, behind one trait so the pipeline
//! (and later `phs replay`) reads both the same way.

pub mod kafka;
pub mod local_log;
pub mod producer;
pub mod retention;

use async_trait::async_trait;

use std::sync::Arc;
use std::time::Duration;

use crate::error::PipeError;
use crate::wire::{Message, Positions};

#[async_trait]
pub trait Source: Send + Sync {
    /// Up to `max` messages after the last ones returned, waiting up to
    /// `wait` for the first; an empty batch means nothing arrived.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, PipeError>;
    /// Marks everything up to and including each `(partition, offset)` as
    /// done. Called only after those messages are written to every sink. A
    /// partition this reader no longer owns (after a rebalance) is skipped:
    /// its new owner re-reads from the last commit, which is at-least-once.
    async fn commit(&self, positions: &[(i32, i64)]) -> Result<(), PipeError>;
    /// A handle that reads this consumer's committed offsets and the log ends
    /// (consumer lag), usable while the source itself is busy polling.
    fn positions(&self) -> Option<Arc<dyn Positions>> {
        None
    }
}
