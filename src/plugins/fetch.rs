//! `fetch(url, opts)` for plugins: HTTP(S) with a timeout and a response-size
//! cap, refusing private, loopback and link-local addresses unless allowed.
//!
//! The host is resolved here and every address checked, and the client's own
//! resolver checks again the addresses it connects to, so a DNS answer that
//! changes between the check and the connection (rebinding) cannot reach an
//! internal service. One client per server serves every plugin's requests:
//! its connections are reused, and its TLS setup (the system's root
//! certificates, milliseconds of CPU) is made once, not per request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

/// What plugins may reach, set per server.
#[derive(Clone)]
pub struct FetchPolicy {
    /// Allow private, loopback and link-local addresses (tests, trusted setups).
    pub allow_private: bool,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// Sees every request before it is sent and may answer it instead
    /// (`phs replay`'s dry run); None: every request goes out.
    pub outbound: Option<Arc<dyn Outbound>>,
    /// The client every copy of this policy shares, made on the first request.
    pub client: Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl FetchPolicy {
    /// Makes the shared client now: building it loads the system's root
    /// certificates, a few hundred milliseconds that the first plugin call
    /// to fetch would otherwise spend, holding up its batch.
    pub fn warm(&self) {
        if let Err(err) = self.client() {
            tracing::warn!(%err, "the plugins' fetch client could not be made; fetch will fail");
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Checked { allow_private: self.allow_private, timeout: self.timeout }))
            .build()
            .map_err(|e| format!("fetch: {e}"))?;
        Ok(self.client.get_or_init(|| built))
    }
}

/// The shared client's resolver: the addresses it connects to pass the policy.
struct Checked {
    allow_private: bool,
    timeout: Duration,
}

impl reqwest::dns::Resolve for Checked {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (allow_private, timeout, host) = (self.allow_private, self.timeout, name.as_str().to_string());
        Box::pin(async move {
            let addrs = resolve(&host, 0, allow_private, timeout).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host`, every one of them allowed by the policy.
async fn resolve(host: &str, port: u16, allow_private: bool, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("fetch: resolving {host} timed out"))?
        .map_err(|e| format!("fetch: cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("fetch: {host} has no address"));
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
        return Err(format!(
            "fetch: {host} resolves to {}, a private or loopback address; plugins may not reach it",
            bad.ip()
        ));
    }
    Ok(addrs)
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_private: false,
            timeout: Duration::from_secs(10),
            max_response_bytes: 5 * 1024 * 1024,
            outbound: None,
            client: Arc::default(),
        }
    }
}

impl std::fmt::Debug for FetchPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchPolicy")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("outbound", &self.outbound.is_some())
            .finish()
    }
}

/// Decides whether a request leaves the process.
pub trait Outbound: Send + Sync {
    /// None: send it; Some(reply): answer the plugin with this
    /// `{status, ok, headers, body}` instead of sending.
    fn intercept(&self, method: &str, url: &str, opts: &FetchOptions) -> Option<Value>;
}

/// The options table a plugin passes, as JSON.
#[derive(Debug, Default, serde::Deserialize)]
pub struct FetchOptions {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Option<String>,
}

fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]) // carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// Performs the request; the result is `{status, ok, headers, body}`.
pub async fn fetch(policy: &FetchPolicy, url: &str, opts: FetchOptions) -> Result<Value, String> {
    if let Some(outbound) = &policy.outbound
        && let Some(reply) = outbound.intercept(opts.method.as_deref().unwrap_or("GET"), url, &opts)
    {
        return Ok(reply);
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("fetch: `{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("fetch: only http and https URLs are allowed, not `{}`", parsed.scheme()));
    }
    let host = parsed.host_str().ok_or_else(|| format!("fetch: `{url}` has no host"))?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    // Checked here too: an IP address in the URL never reaches the client's resolver.
    resolve(&lookup_host, port, policy.allow_private, policy.timeout).await?;
    let client = policy.client()?;
    let method = reqwest::Method::from_bytes(opts.method.as_deref().unwrap_or("GET").to_ascii_uppercase().as_bytes())
        .map_err(|_| "fetch: invalid method".to_string())?;
    let mut req = client.request(method, parsed).timeout(policy.timeout);
    for (k, v) in &opts.headers {
        req = req.header(k.as_str(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string()));
    }
    if let Some(body) = opts.body {
        req = req.body(body);
    }
    let mut res = req.send().await.map_err(|e| format!("fetch {url}: {e}"))?;
    let status = res.status().as_u16();
    let headers: Map<String, Value> = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_str().unwrap_or_default().to_string())))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("fetch {url}: {e}"))? {
        if body.len() + chunk.len() > policy.max_response_bytes {
            return Err(format!("fetch {url}: the response is larger than {} bytes", policy.max_response_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(json!({
        "status": status,
        "ok": (200..300).contains(&status),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
