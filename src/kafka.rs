//! librdkafka client configuration from the settings, shared by the
//! consumer, producers and the admin client used by migrations.

use rdkafka::ClientConfig;

use crate::config::{KafkaSecurityProtocol, KafkaSettings};

/// Topics phs reads or writes, before KAFKA_PREFIX. The consumption topic's
/// name comes from KAFKA_CONSUMPTION_TOPIC; the others keep the original's names.
pub fn topics(settings: &KafkaSettings) -> Vec<String> {
    let input = settings.kafka_consumption_topic.clone();
    let mut names = vec![
        format!("{input}_dlq"),
        format!("{input}_overflow"),
        "clickhouse_events_json".into(),
        "clickhouse_person".into(),
        "clickhouse_person_distinct_id".into(),
        "clickhouse_groups".into(),
        "plugin_log_entries".into(),
    ];
    names.insert(0, input);
    names.into_iter().map(|n| settings.topic(&n)).collect()
}

/// Base client configuration, or None when there is no Kafka (embedded log).
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
