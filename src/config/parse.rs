//! Value parsers for settings. Each returns a message that says what was
//! expected; clap puts it after the variable's name, so the user reads e.g.
//! `invalid value 'x' for '--database-url <DATABASE_URL>': not a postgres:// URL`.

use std::fmt;

use base64::Engine;
use url::Url;

pub fn postgres_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s)
        .map_err(|e| format!("not a URL ({e}); expected postgres://user[:password]@host[:port]/database"))?;
    match url.scheme() {
        "postgres" | "postgresql" => {}
        other => return Err(format!("scheme `{other}` is not postgres:// or postgresql://")),
    }
    if url.host_str().is_none_or(str::is_empty) && !url.query_pairs().any(|(k, _)| k == "host") {
        return Err("no host; expected postgres://user[:password]@host[:port]/database".into());
    }
    Ok(url)
}

pub fn redis_url(s: &str) -> Result<Url, String> {
    let url =
        Url::parse(s).map_err(|e| format!("not a URL ({e}); expected redis://[user:password@]host[:port][/db]"))?;
    match url.scheme() {
        "redis" | "rediss" => {}
        other => return Err(format!("scheme `{other}` is not redis:// or rediss://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host; expected redis://host[:port]".into());
    }
    Ok(url)
}

/// Comma-separated `host:port` list, kept as given for librdkafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaHosts(pub Vec<String>);

impl fmt::Display for KafkaHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

pub fn kafka_hosts(s: &str) -> Result<KafkaHosts, String> {
    let mut hosts = Vec::new();
    for raw in s.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        // The original accepted `kafka://host:port` too.
        let h = raw.strip_prefix("kafka://").unwrap_or(raw);
        let (host, port) =
            h.rsplit_once(':').ok_or_else(|| format!("`{raw}` has no port; expected host:port[,host:port...]"))?;
        if host.is_empty() {
            return Err(format!("`{raw}` has no host; expected host:port"));
        }
        port.parse::<u16>().map_err(|_| format!("`{raw}` has an invalid port `{port}`"))?;
        hosts.push(h.to_string());
    }
    if hosts.is_empty() {
        return Err("empty; expected host:port[,host:port...]".into());
    }
    Ok(KafkaHosts(hosts))
}

/// ClickHouse's HTTP endpoint. The original took a bare host name; a URL or
/// host:port is accepted too so a non-default port can be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseUrl {
    given: String,
}

impl fmt::Display for ClickHouseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

impl ClickHouseUrl {
    /// The HTTP(S) base URL, with `secure` choosing https for a bare host.
    pub fn url(&self, secure: bool) -> String {
        if self.given.contains("://") {
            return self.given.trim_end_matches('/').to_string();
        }
        let scheme = if secure { "https" } else { "http" };
        if self.given.contains(':') {
            format!("{scheme}://{}", self.given)
        } else {
            let port = if secure { 8443 } else { 8123 };
            format!("{scheme}://{}:{port}", self.given)
        }
    }
}

pub fn clickhouse_host(s: &str) -> Result<ClickHouseUrl, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty; expected a host, host:port or http(s)://host:port".into());
    }
    let probe = if s.contains("://") { s.to_string() } else { format!("http://{s}") };
    let url = Url::parse(&probe).map_err(|e| format!("not a host or URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http or https", url.scheme()));
    }
    Ok(ClickHouseUrl { given: s.to_string() })
}

/// Base64 of a PEM document, decoded and checked to look like PEM.
pub fn base64_pem(s: &str) -> Result<String, String> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| format!("not valid base64 ({e})"))?;
    let pem = String::from_utf8(bytes).map_err(|_| "decodes to bytes that are not PEM text".to_string())?;
    if !pem.contains("-----BEGIN ") {
        return Err("decodes to text without a -----BEGIN ...----- PEM header".into());
    }
    Ok(pem)
}

/// A readable file holding a PEM certificate.
pub fn pem_file(s: &str) -> Result<std::path::PathBuf, String> {
    let text = std::fs::read_to_string(s).map_err(|e| format!("cannot read {s}: {e}"))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{s} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(s.into())
}

/// A share in (0, 1].
pub fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("`{s}` is not a share between 0 (excluded) and 1, e.g. 0.5")),
    }
}

/// A finite rate of at least 0 (per second).
pub fn per_second(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!("`{s}` is not a number of events per second (0 or more, e.g. 1.5)")),
    }
}

pub fn topic_name(s: &str) -> Result<String, String> {
    let ok =
        !s.is_empty() && s.len() <= 249 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(s.to_string()) } else { Err("a Kafka topic name is 1-249 characters of [a-zA-Z0-9._-]".into()) }
}

/// A database name that can be spliced into DDL safely.
pub fn identifier(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(s.to_string())
    } else {
        Err("expected letters, digits and underscores, not starting with a digit".into())
    }
}

/// A URL with its password replaced, fit for logs.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_url_rejects_wrong_scheme_and_garbage() {
        assert!(postgres_url("postgres://postgres@127.0.0.1:5432/db").is_ok());
        assert!(postgres_url("mysql://x@y/z").unwrap_err().contains("mysql"));
        assert!(postgres_url("not a url").unwrap_err().contains("not a URL"));
    }

    #[test]
    fn kafka_hosts_need_ports() {
        assert_eq!(kafka_hosts("a:1, kafka://b:2").unwrap().to_string(), "a:1,b:2");
        assert!(kafka_hosts("localhost").unwrap_err().contains("no port"));
        assert!(kafka_hosts("h:99999").unwrap_err().contains("invalid port"));
        assert!(kafka_hosts(" , ").is_err());
    }

    #[test]
    fn clickhouse_host_forms() {
        assert_eq!(clickhouse_host("localhost").unwrap().url(false), "http://localhost:8123");
        assert_eq!(clickhouse_host("ch").unwrap().url(true), "https://ch:8443");
        assert_eq!(clickhouse_host("ch:18123").unwrap().url(false), "http://ch:18123");
        assert_eq!(clickhouse_host("http://127.0.0.1:18123/").unwrap().url(true), "http://127.0.0.1:18123");
        assert!(clickhouse_host("ftp://x").is_err());
    }

    #[test]
    fn base64_pem_checks_content() {
        let pem = base64::engine::general_purpose::STANDARD.encode("-----BEGIN CERTIFICATE-----\nAA\n");
        assert!(base64_pem(&pem).is_ok());
        assert!(base64_pem("!!").unwrap_err().contains("base64"));
        let not_pem = base64::engine::general_purpose::STANDARD.encode("hello");
        assert!(base64_pem(&not_pem).unwrap_err().contains("PEM"));
    }

    #[test]
    fn redact_hides_passwords() {
        let u = Url::parse("postgres://u:secret@h/db").unwrap();
        assert_eq!(redact(&u), "postgres://u:***@h/db");
    }
}
