//! The load: realistic capture messages for one or many teams, with distinct
//! ids drawn from a Zipf distribution (a few users send most events) or
//! uniformly (every event likely a person of its own), and probes whose
//! time from produce to stored the bench follows.

use phs::wire::CapturedEvent;
use rand::{Rng, RngExt};
use serde_json::json;

/// How distinct ids are drawn from `users` ranks.
pub enum Users {
    /// Zipf(s = 1.1) by inverse CDF.
    Zipf {
        cdf: Vec<f64>,
    },
    Uniform {
        n: usize,
    },
}

impl Users {
    pub fn zipf(n: usize) -> Users {
        let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(1.1)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Users::Zipf { cdf }
    }

    pub fn uniform(n: usize) -> Users {
        Users::Uniform { n }
    }

    fn count(&self) -> usize {
        match self {
            Users::Zipf { cdf } => cdf.len(),
            Users::Uniform { n } => *n,
        }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        match self {
            Users::Zipf { cdf } => {
                let u: f64 = rng.random();
                cdf.partition_point(|c| *c < u).min(cdf.len() - 1)
            }
            Users::Uniform { n } => rng.random_range(0..*n),
        }
    }
}

/// What the load sends: the teams' tokens, who sends, and whether persons are processed.
pub struct Load {
    pub tokens: Vec<String>,
    pub users: Users,
    pub persons: bool,
}

/// One message as the log takes it, and its uuid.
pub struct Generated {
    pub key: String,
    pub payload: Vec<u8>,
    pub uuid: String,
}

impl Load {
    /// The next event: 10-20 properties, 5% `$identify` an anonymous id, 10% carry `$set`.
    /// `now_us` is stamped into the event as `bench_produced_us`.
    pub fn event(&self, rng: &mut impl Rng, now_us: i64) -> Generated {
        const BROWSERS: &[&str] = &["Chrome", "Firefox", "Safari", "Edge"];
        const PAGES: &[&str] = &["/", "/pricing", "/docs", "/blog/launch", "/signup", "/app/dashboard"];
        let token = &self.tokens[rng.random_range(0..self.tokens.len())];
        let user = self.users.sample(rng);
        let distinct_id = format!("user-{user}");
        let mut props = json!({
            "$browser": BROWSERS[rng.random_range(0..BROWSERS.len())],
            "$os": "Mac OS X",
            "$current_url": format!("https://example.com{}", PAGES[rng.random_range(0..PAGES.len())]),
            "$lib": "web",
            "$lib_version": "1.130.0",
            "$screen_width": 1920,
            "$screen_height": 1080,
            "$session_id": format!("s-{user}-{}", rng.random_range(0..4)),
            "price": rng.random_range(0..10_000) as f64 / 100.0,
            "plan": if rng.random_bool(0.3) { "pro" } else { "free" },
            "bench_produced_us": now_us,
        });
        for i in 0..rng.random_range(0..9) {
            props[format!("attr_{i}")] = json!(rng.random_range(0..1000));
        }
        if !self.persons {
            props["$process_person_profile"] = json!(false);
        }
        let name = if rng.random_bool(0.05) {
            props["$anon_distinct_id"] = json!(format!("anon-{}", rng.random_range(0..self.users.count() * 10)));
            "$identify"
        } else {
            "$pageview"
        };
        if rng.random_bool(0.10) {
            props["$set"] = json!({"last_plan": props["plan"].clone(), "visits": rng.random_range(0..100)});
        }
        let data = json!({"event": name, "distinct_id": distinct_id, "properties": props});
        let uuid = uuid::Uuid::now_v7().to_string();
        let captured = CapturedEvent {
            uuid: uuid.clone(),
            distinct_id: distinct_id.clone(),
            ip: Some("203.0.113.7".into()),
            site_url: "https://example.com".into(),
            data: data.to_string(),
            token: token.clone(),
            now: chrono::Utc::now().to_rfc3339(),
            sent_at: None,
        };
        let payload = serde_json::to_vec(&captured).expect("a captured event serializes");
        Generated { key: format!("{token}:{distinct_id}"), payload, uuid }
    }
}
