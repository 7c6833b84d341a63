//! The ClickHouse client, configured once from the settings for every user
//! (migrations, the events sink, `phs events list`).

use clickhouse::Client;

use crate::config::ClickHouseSettings;

/// A client for the configured server, or None when events stay embedded.
///
/// Two settings make it work with ClickHouse 18.16 as well as current ones:
/// validation off (18.16 lacks RowBinaryWithNamesAndTypes, which the crate
/// uses to check row types), and `wait_end_of_query=1` so an error that
/// happens mid-query is reported instead of truncating the response.
pub fn client(settings: &ClickHouseSettings) -> Option<Client> {
    let host = settings.clickhouse_host.as_ref()?;
    Some(server_client(settings, host.url(settings.clickhouse_secure)).with_database(&settings.clickhouse_database))
}

/// A client not bound to a database, for creating the database itself.
pub fn server_client(settings: &ClickHouseSettings, url: String) -> Client {
    let mut client = Client::default()
        .with_url(url)
        .with_user(&settings.clickhouse_user)
        .with_validation(false)
        .with_setting("wait_end_of_query", "1");
    if let Some(password) = &settings.clickhouse_password {
        client = client.with_password(password);
    }
    client
}
