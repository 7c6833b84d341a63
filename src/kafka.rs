//! librdkafka client configuration from the settings, shared by the
//! consumer, producers and the admin client used by migrations.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, ClientContext};

use crate::config::{KafkaSecurityProtocol, KafkaSettings};

/// The events topic of PostHog's ingestion (before KAFKA_PREFIX).
pub const CLICKHOUSE_EVENTS_TOPIC: &str = "clickhouse_events_json";
/// phs's own topic of stored events for the async side when the ClickHouse
/// topics are off (before KAFKA_PREFIX; see `crate::pipeline::handoff`).
pub const ASYNC_EVENTS_TOPIC: &str = "phs_async_events";

/// Topics phs reads or writes, before KAFKA_PREFIX. The consumption topic's
/// name comes from KAFKA_CONSUMPTION_TOPIC; the others keep the original's names.
pub fn topics(settings: &KafkaSettings) -> Vec<String> {
    let input = settings.kafka_consumption_topic.clone();
    let mut names = vec![
        format!("{input}_dlq"),
        settings.overflow_topic(),
        CLICKHOUSE_EVENTS_TOPIC.into(),
        ASYNC_EVENTS_TOPIC.into(),
        "clickhouse_person".into(),
        "clickhouse_person_distinct_id".into(),
        "clickhouse_groups".into(),
        "plugin_log_entries".into(),
    ];
    names.insert(0, input);
    names.into_iter().map(|n| settings.topic(&n)).collect()
}

/// Base client configuration, or None when there is no Kafka (embedded log).
/// librdkafka is built with OpenSSL (the `ssl` feature) for TLS and SASL/SCRAM.
pub fn client_config(settings: &KafkaSettings) -> Option<ClientConfig> {
    let hosts = settings.kafka_hosts.as_ref()?;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", hosts.to_string());
    config.set("client.id", format!("phs-{}", env!("CARGO_PKG_VERSION")));

    let has_certs = settings.kafka_client_cert_b64.is_some() || settings.kafka_trusted_cert_b64.is_some();
    let protocol = settings.kafka_security_protocol.or(has_certs.then_some(KafkaSecurityProtocol::Ssl));
    if let Some(protocol) = protocol {
        let name = match protocol {
            KafkaSecurityProtocol::Plaintext => "plaintext",
            KafkaSecurityProtocol::Ssl => "ssl",
            KafkaSecurityProtocol::SaslPlaintext => "sasl_plaintext",
            KafkaSecurityProtocol::SaslSsl => "sasl_ssl",
        };
        config.set("security.protocol", name);
    }
    // The settings were decoded from base64 when parsed; librdkafka takes PEM
    // text directly, so nothing is written to disk.
    if let Some(pem) = &settings.kafka_client_cert_b64 {
        config.set("ssl.certificate.pem", pem);
    }
    if let Some(pem) = &settings.kafka_client_cert_key_b64 {
        config.set("ssl.key.pem", pem);
    }
    if let Some(pem) = &settings.kafka_trusted_cert_b64 {
        config.set("ssl.ca.pem", pem);
    }
    if let Some(m) = &settings.kafka_sasl_mechanism {
        config.set("sasl.mechanism", m);
    }
    if let Some(u) = &settings.kafka_sasl_user {
        config.set("sasl.username", u);
    }
    if let Some(p) = &settings.kafka_sasl_password {
        config.set("sasl.password", p);
    }
    Some(config)
}

/// How often one kind of librdkafka client error is logged at most.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(30);

/// When each kind of client error was last logged, and how many were left out since.
static LOGGED: LazyLock<Mutex<HashMap<String, (Instant, u64)>>> = LazyLock::new(Mutex::default);

/// Whether a message of `kind` may be logged now (at most once every [`ERROR_LOG_EVERY`]
/// for the whole process), with how many were left out since the last one.
fn may_log(kind: String) -> Option<u64> {
    let mut logged = LOGGED.lock().unwrap_or_else(|p| p.into_inner());
    match logged.get_mut(&kind) {
        Some((at, skipped)) if at.elapsed() < ERROR_LOG_EVERY => {
            *skipped += 1;
            None
        }
        Some((at, skipped)) => {
            *at = Instant::now();
            Some(std::mem::take(skipped))
        }
        None => {
            logged.insert(kind, (Instant::now(), 0));
            Some(0)
        }
    }
}

/// Logs a librdkafka client error, at most once per kind every [`ERROR_LOG_EVERY`]: with the
/// broker down, every client (the consumers, the producer, each probe) reports its failed
/// reconnect about once a second, which drowned the log. The dependency monitor logs the
/// outage itself once, and `/_health` and the metrics show it while it lasts.
pub fn log_client_error(error: &KafkaError, reason: &str) {
    if let Some(left_out) = may_log(format!("{:?}", error.rdkafka_error_code())) {
        tracing::error!(target: "librdkafka", left_out, "librdkafka: {error}: {reason}");
    }
}

/// Logs one of librdkafka's own log lines; a failed connection (`FAIL`, one per broker
/// thread and client) under the same bound as [`log_client_error`].
pub fn log_client_message(level: RDKafkaLogLevel, fac: &str, message: &str) {
    let left_out = if fac == "FAIL" {
        match may_log(fac.to_string()) {
            Some(n) => n,
            None => return,
        }
    } else {
        0
    };
    use RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", left_out, "librdkafka: {fac} {message}")
        }
        L::Warning => tracing::warn!(target: "librdkafka", left_out, "librdkafka: {fac} {message}"),
        L::Notice | L::Info => tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}"),
        L::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
    }
}

/// A client context that logs librdkafka's errors and lines through [`log_client_error`] and [`log_client_message`].
pub struct QuietErrors;

impl ClientContext for QuietErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_client_message(level, fac, log_message);
    }
}

impl rdkafka::consumer::ConsumerContext for QuietErrors {}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use rdkafka::consumer::BaseConsumer;

    use super::*;

    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        k: KafkaSettings,
    }

    #[test]
    fn tls_and_sasl_settings_give_a_working_client_config() {
        let s = P::try_parse_from([
            "x",
            "--kafka-hosts",
            "127.0.0.1:9093",
            "--kafka-security-protocol",
            "sasl-ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-user",
            "u",
            "--kafka-sasl-password",
            "p",
        ])
        .unwrap()
        .k;
        let config = client_config(&s).expect("hosts given");
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        // Creating the client validates every property against librdkafka's build:
        // this fails if phs were built without TLS or SCRAM support.
        let created: Result<BaseConsumer, _> = config.create();
        assert!(created.is_ok(), "{:?}", created.err());
    }

    #[test]
    fn no_hosts_means_no_kafka() {
        let s = P::try_parse_from(["x"]).unwrap().k;
        assert!(client_config(&s).is_none());
        assert_eq!(topics(&s)[0], "events_plugin_ingestion");
        assert_eq!(topics(&s).len(), 9);
    }
}
