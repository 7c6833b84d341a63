//! The ClickHouse client, configured once from the settings for every user
//! (migrations, the events sink, `phs events list`).

use clickhouse::Client;

use crate::config::ClickHouseSettings;

/// A client for the configured server, or None when events stay embedded.
///
/// https works with the system's trusted certificates, plus CLICKHOUSE_CA
/// when given. Two settings make it work with ClickHouse 18.16 as well as current ones:
/// validation off (18.16 lacks RowBinaryWithNamesAndTypes, which the crate
/// uses to check row types), and `wait_end_of_query=1` so an error that
/// happens mid-query is reported instead of truncating the response.
pub fn client(settings: &ClickHouseSettings) -> Option<Client> {
    let host = settings.clickhouse_host.as_ref()?;
    Some(server_client(settings, host.url(settings.clickhouse_secure)).with_database(&settings.clickhouse_database))
}

/// A client not bound to a database, for creating the database itself.
pub fn server_client(settings: &ClickHouseSettings, url: String) -> Client {
    let base = match settings.clickhouse_ca.as_deref().map(with_ca) {
        Some(Ok(client)) => client,
        Some(Err(e)) => {
            // The file was checked when the settings were parsed; if it changed
            // since, say so and fall back to the system's trust store.
            tracing::error!("CLICKHOUSE_CA: {e}; using the system's trusted certificates");
            Client::default()
        }
        None => Client::default(),
    };
    let mut client = base
        .with_url(url)
        .with_user(&settings.clickhouse_user)
        .with_validation(false)
        .with_setting("wait_end_of_query", "1");
    if let Some(password) = &settings.clickhouse_password {
        client = client.with_password(password);
    }
    client
}

/// A client whose TLS trusts the CA in `path` (PEM) besides the system's.
fn with_ca(path: &std::path::Path) -> Result<Client, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    let tls = native_tls::TlsConnector::builder().add_root_certificate(cert).build().map_err(|e| e.to_string())?;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_tls::HttpsConnector::from((http, tokio_native_tls::TlsConnector::from(tls)));
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    Ok(Client::with_http_client(hyper))
}
