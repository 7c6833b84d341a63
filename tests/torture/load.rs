//! The load of a crash loop: a deterministic stream of events (skewed
//! distinct ids, anonymous ids that `$identify` merges, `$set`s, events
//! marked for onEvent and jobs), sent at a steady rate to Kafka or to the
//! capture endpoint, each chunk again until it is acknowledged, as an SDK
//! retries; and the receiver of the plugin's onEvent, exportEvents and
//! job calls.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use phs::pipeline::source::producer::KafkaProducer;
use phs::wire::Producer;
use serde_json::{Value, json};

/// Size of a crash loop: PHS_TORTURE_EVENTS events at PHS_TORTURE_RATE
/// events/s, with PHS_TORTURE_KILLS stops (CI's short profile by default;
/// `scripts/torture` sets the long one).
pub struct Profile {
    pub events: usize,
    pub rate: usize,
    pub kills: usize,
}

/// A size from the environment (a long profile's), else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a number")))
        .unwrap_or(default)
}

impl Profile {
    pub fn from_env() -> Profile {
        let get = env_or;
        Profile {
            events: get("PHS_TORTURE_EVENTS", 20_000),
            rate: get("PHS_TORTURE_RATE", 2_000),
            kills: get("PHS_TORTURE_KILLS", 3),
        }
    }

    /// How long sending takes at the profile's rate.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.events as f64 / self.rate as f64)
    }
}

const PLANS: [&str; 3] = ["free", "pro", "team"];

/// The `i`th event (an SDK event: event, distinct_id, uuid, properties).
pub fn event(i: usize, n: usize) -> Value {
    let persons = (n / 20).max(50);
    // Skewed: small person numbers come up far more often (a rough Zipf).
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
    let r = (h % persons as u64) as usize;
    let k = r * r / persons;
    // Anonymous ids change over the run, so later $identify calls merge fresh anonymous persons.
    let anon = format!("anon{k}_{}", i * 8 / n.max(1));
    let uuid = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128).to_string();
    let mut properties = json!({
        "i": i, "$lib": "torture", "$current_url": format!("https://shop.example/p/{}", i % 97),
        "plan": PLANS[i % 3], "watch": i % 100 == 0, "job": i % 250 == 0,
        "a": i % 7, "b": format!("b{}", i % 11), "c": i as f64 / 3.0, "d": i % 2 == 0,
    });
    let (name, distinct_id) = match i % 10 {
        0 => ("$identify", format!("u{k}")),
        1 | 2 => ("$pageview", anon.clone()),
        _ => ("$pageview", format!("u{k}")),
    };
    if name == "$identify" {
        properties["$anon_distinct_id"] = json!(anon);
        properties["$set"] = json!({"email": format!("u{k}@shop.example"), "last_i": i});
    } else if i % 7 == 0 {
        properties["$set"] = json!({"plan": properties["plan"].clone(), "seen": i});
    }
    json!({"event": name, "distinct_id": distinct_id, "uuid": uuid, "properties": properties})
}

/// Where the load goes: the ingestion topic, or the capture endpoint of
/// whichever server runs now (its address changes with every restart).
#[derive(Clone)]
pub enum Target {
    Kafka(Box<KafkaProducer>),
    Capture(Arc<Mutex<String>>),
}

/// Sends events 0..n at `rate`, 100 per chunk, each chunk until it is
/// acknowledged. Returns when all are.
pub async fn send_all(target: Target, token: String, p: &Profile) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    for (c, first) in (0..p.events).step_by(100).enumerate() {
        let due = start + Duration::from_secs_f64((c * 100) as f64 / p.rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let events: Vec<Value> = (first..(first + 100).min(p.events)).map(|i| event(i, p.events)).collect();
        let mut tries = 0;
        while !send(&target, &client, &token, &events).await {
            tries += 1;
            assert!(tries < 1200, "chunk {c} not acknowledged after 10 minutes of retries");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn send(target: &Target, client: &reqwest::Client, token: &str, events: &[Value]) -> bool {
    match target {
        Target::Kafka(producer) => {
            let messages: Vec<(String, Vec<u8>)> = events
                .iter()
                .map(|e| {
                    let id = e["distinct_id"].as_str().unwrap();
                    let data = json!({"event": e["event"], "properties": e["properties"], "uuid": e["uuid"]});
                    let m = json!({"uuid": e["uuid"], "distinct_id": id, "ip": "10.0.0.1", "site_url": "https://shop.example",
                                   "data": data.to_string(), "token": token, "now": chrono::Utc::now().to_rfc3339(), "sent_at": null});
                    (format!("{token}:{id}"), m.to_string().into_bytes())
                })
                .collect();
            producer.append(&messages).await.is_ok()
        }
        Target::Capture(addr) => {
            let url = format!("http://{}/batch", addr.lock().unwrap());
            let body = json!({"api_key": token, "batch": events}).to_string();
            let sent = client.post(&url).header("content-type", "application/json").body(body);
            matches!(sent.timeout(Duration::from_secs(10)).send().await, Ok(r) if r.status() == 200)
        }
    }
}

/// What the plugin's async hooks reported: uuids seen by onEvent, in
/// exportEvents batches, and by jobs.
#[derive(Clone, Default)]
pub struct Receiver {
    pub on_event: Arc<Mutex<HashSet<String>>>,
    pub exported: Arc<Mutex<HashSet<String>>>,
    pub jobs: Arc<Mutex<HashSet<String>>>,
    pub export_calls: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Listens on a free port; returns the receiver and its base URL.
    pub async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = {
            let r = r.clone();
            axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
                let r = r.clone();
                async move {
                    match uri.path() {
                        "/on_event" => {
                            r.on_event.lock().unwrap().insert(body);
                        }
                        "/job" => {
                            r.jobs.lock().unwrap().insert(body);
                        }
                        "/export" => {
                            let ids: Vec<String> = serde_json::from_str(&body).unwrap_or_default();
                            r.exported.lock().unwrap().extend(ids);
                            *r.export_calls.lock().unwrap() += 1;
                        }
                        _ => return axum::http::StatusCode::NOT_FOUND,
                    }
                    axum::http::StatusCode::OK
                }
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, format!("http://{addr}"))
    }
}

/// The plugin under the crash loop: processEvent marks every event,
/// onEvent reports the marked ones and queues a job for others, and
/// exportEvents reports every batch.
pub const PLUGIN: &str = r#"
function processEvent(event, meta)
  event.properties.processed = true
  return event
end

function onEvent(event, meta)
  if event.properties.watch then
    fetch(meta.config.url .. "/on_event", {method = "POST", body = event.uuid})
  end
  if event.properties.job then
    meta.jobs.report({uuid = event.uuid}):runNow()
  end
end

function exportEvents(events, meta)
  local ids = {}
  for i, e in ipairs(events) do ids[i] = e.uuid end
  fetch(meta.config.url .. "/export", {method = "POST", body = json.encode(ids)})
end

jobs = {
  report = function(payload, meta)
    fetch(meta.config.url .. "/job", {method = "POST", body = payload.uuid})
  end
}
"#;
