//! Dead letters in production: the original bytes go to
//! `<KAFKA_CONSUMPTION_TOPIC>_dlq` (events_plugin_ingestion_dlq), unchanged,
//! with why and where they failed in headers: `reason`, `stage`, `detail`,
//! `team_id` (when known), and the source `partition` and `offset`.

use async_trait::async_trait;

use super::{DeadLetter, DeadLetterQueue};
use crate::error::PipeError;
use crate::pipeline::source::producer::{KafkaProducer, Record};

pub struct DlqTopic {
    producer: KafkaProducer,
    topic: String,
}

impl DlqTopic {
    pub fn new(producer: KafkaProducer, consumption_topic: &str) -> Self {
        let topic = producer.topic(&format!("{consumption_topic}_dlq"));
        DlqTopic { producer, topic }
    }
}

#[async_trait]
impl DeadLetterQueue for DlqTopic {
    async fn send(&self, letters: &[DeadLetter<'_>]) -> Result<(), PipeError> {
        let records: Vec<Record> = letters
            .iter()
            .map(|l| {
                let mut headers = vec![
                    ("reason", l.reason.as_bytes().to_vec()),
                    ("stage", l.stage.as_bytes().to_vec()),
                    ("detail", l.detail.as_bytes().to_vec()),
                    ("partition", l.message.partition.to_string().into_bytes()),
                    ("offset", l.message.offset.to_string().into_bytes()),
                ];
                if let Some(team) = l.team_id {
                    headers.push(("team_id", team.to_string().into_bytes()));
                }
                Record { key: None, payload: &l.message.payload, headers }
            })
            .collect();
        self.producer.send(&self.topic, &records).await
    }
}
