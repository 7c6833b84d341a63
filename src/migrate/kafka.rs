//! Kafka "migrations": the topics phs reads and writes, created through the
//! admin client when missing.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::{MigrateError, Mode, State, Step, TopicLayout};
use crate::config::KafkaSettings;

const TARGET: &str = "kafka";

pub async fn run(settings: &KafkaSettings, mode: Mode, layout: TopicLayout) -> Result<Vec<Step>, MigrateError> {
    let Some(config) = crate::kafka::client_config(settings) else { return Ok(Vec::new()) };
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|e| MigrateError::new(TARGET, format!("admin client: {e}")))?;
    let wanted = crate::kafka::topics(settings);

    let existing = existing_topics(config.clone()).await?;
    let missing: Vec<&String> = wanted.iter().filter(|t| !existing.contains(t)).collect();

    if mode == Mode::Apply && !missing.is_empty() {
        let new: Vec<NewTopic> = missing
            .iter()
            .map(|t| NewTopic::new(t, layout.partitions, TopicReplication::Fixed(layout.replication)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(&new, &options)
            .await
            .map_err(|e| MigrateError::new(TARGET, format!("create topics: {e}")))?;
        for result in results {
            match result {
                Ok(_) => {}
                // Another instance migrating at the same time got there first.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(MigrateError::new(TARGET, format!("create topic {topic}: {code}"))),
            }
        }
    }

    Ok(wanted
        .iter()
        .map(|t| Step {
            target: TARGET,
            name: format!("topic {t}"),
            state: match (existing.contains(t), mode) {
                (true, _) => State::Done,
                (false, Mode::Apply) => State::Applied,
                (false, Mode::Check) => State::Pending,
            },
        })
        .collect())
}

async fn existing_topics(config: rdkafka::ClientConfig) -> Result<Vec<String>, MigrateError> {
    // librdkafka's metadata call blocks; keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let client: rdkafka::consumer::BaseConsumer = config.create()?;
        use rdkafka::consumer::Consumer;
        client
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.topics().iter().map(|t| t.name().to_string()).collect())
    })
    .await
    .map_err(|e| MigrateError::new(TARGET, e))?
    .map_err(|e| MigrateError::new(TARGET, format!("list topics: {e}")))
}
