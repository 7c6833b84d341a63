//! The hand-off of written events to the async side on Kafka: the events
//! go to a topic that `PLUGIN_SERVER_MODE=async` instances read in their
//! own consumer group (`crate::worker::stream`), in the
//! `clickhouse_events_json` shape.
//!
//! With PHS_KAFKA_CLICKHOUSE_TOPICS the sinks already produce every event
//! to `clickhouse_events_json` before the hand-off, as PostHog's ingestion
//! did, and the async side reads that topic: nothing more is produced.
//! Without it, ClickHouse is written directly, and writing that topic too
//! would insert every event twice wherever PostHog's ClickHouse still reads
//! it; the events of teams with an onEvent or exportEvents plugin go to a
//! topic of phs's own instead ([`ASYNC_EVENTS_TOPIC`]). Either way the
//! produce is confirmed before the ingestion offset is committed, so the
//! async side sees every stored event at least once.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::source::producer::KafkaProducer;
use crate::error::{Kinded, PipeError};
use crate::kafka::{ASYNC_EVENTS_TOPIC, CLICKHOUSE_EVENTS_TOPIC};
use crate::plugins::runner::PluginRunner;
use crate::wire::stored::event_json;
use crate::wire::{EventRow, Handoff};

/// The topic the async side reads (before KAFKA_PREFIX): see the module's header.
pub fn async_events_topic(clickhouse_topics: bool) -> &'static str {
    if clickhouse_topics { CLICKHOUSE_EVENTS_TOPIC } else { ASYNC_EVENTS_TOPIC }
}

/// Produces the events of teams with async plugins to [`ASYNC_EVENTS_TOPIC`].
pub struct TopicHandoff {
    runner: Arc<PluginRunner>,
    producer: KafkaProducer,
    topic: String,
}

impl TopicHandoff {
    pub fn new(runner: Arc<PluginRunner>, producer: KafkaProducer) -> Self {
        let topic = producer.topic(ASYNC_EVENTS_TOPIC);
        TopicHandoff { runner, producer, topic }
    }
}

#[async_trait]
impl Handoff for TopicHandoff {
    async fn enqueue(&self, events: &[EventRow]) -> Result<(), PipeError> {
        let mut awaited: HashMap<i64, bool> = HashMap::new();
        let mut messages = Vec::new();
        // onSnapshot, not onEvent, was the original's hook for recordings.
        for e in events.iter().filter(|e| e.event != "$snapshot") {
            let wanted = match awaited.get(&e.team_id) {
                Some(w) => *w,
                None => {
                    // Without the team's list the batch cannot know who awaits its events: it waits.
                    let plugins = self
                        .runner
                        .async_plugins(e.team_id)
                        .await
                        .map_err(|err| PipeError::new(err.kind(), "read the team's async plugins", err))?;
                    *awaited.entry(e.team_id).or_insert(!plugins.is_empty())
                }
            };
            if wanted {
                let payload = serde_json::to_vec(&event_json(e)).expect("JSON values serialize");
                messages.push((e.uuid.clone(), payload));
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        self.producer.append_to(&self.topic, &messages).await
    }
}
