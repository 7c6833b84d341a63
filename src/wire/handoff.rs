//! Where the pipeline hands its written events before committing them: the
//! async side's durable queue for onEvent and exportEvents. A trait here, so
//! the pipeline and the worker know only this and not each other.

use async_trait::async_trait;

use crate::error::PipeError;
use crate::wire::EventRow;

#[async_trait]
pub trait Handoff: Send + Sync {
    /// Queues written events durably: when this returns Ok they survive a crash.
    async fn enqueue(&self, events: &[EventRow]) -> Result<(), PipeError>;
}
