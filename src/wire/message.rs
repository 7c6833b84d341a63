//! Raw messages and where they go: what a source reads, what capture and
//! `posthog.capture` append, and where a consumer stands. Shared by the
//! pipeline, the plugin runtime and the metrics, so it sits below them all.

use async_trait::async_trait;

use crate::error::PipeError;

/// One raw message: the capture-format JSON and its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}

/// Where a consumer stands in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    pub topic: String,
    pub partition: i32,
    /// The last offset committed (0 before the first commit).
    pub committed: i64,
    /// The last offset in the log.
    pub end: i64,
}

#[async_trait]
pub trait Positions: Send + Sync {
    async fn positions(&self) -> Result<Vec<PartitionPosition>, PipeError>;
}

/// The highest offset of every partition present in `messages`, sorted by
/// partition: what to commit once they are all written.
pub fn highest_offsets(messages: &[Message]) -> Vec<(i32, i64)> {
    let mut highest = std::collections::BTreeMap::new();
    for m in messages {
        let o = highest.entry(m.partition).or_insert(m.offset);
        *o = (*o).max(m.offset);
    }
    highest.into_iter().collect()
}

/// Where capture puts accepted events (the local log, or the Kafka topic).
#[async_trait]
pub trait Producer: Send + Sync {
    /// Appends messages durably: when this returns Ok they survive a crash.
    async fn append(&self, messages: &[(String, Vec<u8>)]) -> Result<(), PipeError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_commits_the_highest_offset_of_each_partition() {
        let m = |partition, offset| Message { partition, offset, payload: Vec::new() };
        let batch = [m(2, 7), m(0, 3), m(2, 9), m(0, 4), m(1, 1), m(2, 8)];
        assert_eq!(highest_offsets(&batch), vec![(0, 4), (1, 1), (2, 9)]);
        assert!(highest_offsets(&[]).is_empty());
    }
}
