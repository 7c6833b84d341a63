//! Hot keys. Events of one (team, distinct_id) run in order, so a key that
//! floods a partition makes every batch it is in wait for its long chain
//! (plugins that fetch, group writes), while everyone else's events wait
//! behind that batch. As the original does, a token bucket per
//! `token:distinct_id` (EVENT_OVERFLOW_BUCKET_CAPACITY, refilled at
//! EVENT_OVERFLOW_BUCKET_REPLENISH_RATE per second) lets a key burst; past
//! that, its messages are rerouted unchanged to the overflow topic (or the
//! embedded overflow log), and committed on the main one once rerouted. A
//! second pipeline, without a bucket, ingests the overflow with the same
//! stages: the hot key's events keep their order (keyed as before, the
//! later original's "preserve locality"), and stop holding up the rest.
//!
//! A key that ran dry stays rerouted until its bucket has refilled entirely
//! (the original's stateful overflow does the same with a TTL): otherwise
//! every refilled token would send one event down the main pipeline while
//! the overflow pipeline works on the same person, and the two would keep
//! conflicting on its writes.
//!
//! The same lane takes slow teams' events ([`super::slow_lane`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;

use super::source::producer::KafkaProducer;
use crate::error::PipeError;
use crate::wire::{Message, Producer};

/// Buckets kept before full ones (keys quiet long enough) are forgotten.
const BUCKETS_KEPT: usize = 100_000;

/// Where rerouted messages go, and the buckets that decide which keys are hot.
pub struct Overflow {
    /// None: no key is ever hot (a capacity of 0), the lane only takes slow teams.
    limiter: Option<Mutex<Limiter>>,
    to: Arc<dyn Producer>,
}

/// The key a message is rerouted under: one person's messages stay on one
/// partition of the overflow topic, in order.
pub fn key(token: &str, distinct_id: &str) -> String {
    format!("{token}:{distinct_id}")
}

impl Overflow {
    /// Keys burst to `capacity` events (0: no limit) and refill at `per_second`.
    pub fn new(capacity: u32, per_second: f64, to: Arc<dyn Producer>) -> Self {
        let limiter = (capacity > 0).then(|| Mutex::new(Limiter::new(capacity as f64, per_second)));
        Overflow { limiter, to }
    }

    /// None when an event of this key stays on the main topic (it took a
    /// token); else the key to reroute it under.
    pub fn reroute_key(&self, token: &str, distinct_id: &str) -> Option<String> {
        let limiter = self.limiter.as_ref()?;
        let key = key(token, distinct_id);
        if limiter.lock().unwrap_or_else(|p| p.into_inner()).take(&key, Instant::now()) {
            return None;
        }
        tracing::debug!(key, "over the per-key burst; rerouted to the overflow topic");
        Some(key)
    }

    /// Appends the messages to the overflow topic, durably.
    pub async fn send(&self, messages: &[(String, &Message)]) -> Result<(), PipeError> {
        if messages.is_empty() {
            return Ok(());
        }
        let owned: Vec<(String, Vec<u8>)> = messages.iter().map(|(k, m)| (k.clone(), m.payload.clone())).collect();
        self.to.append(&owned).await
    }
}

/// A token bucket per key, full when first seen.
struct Limiter {
    capacity: f64,
    per_second: f64,
    buckets: HashMap<String, Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// Ran dry and has not refilled since: everything is rerouted.
    overflowing: bool,
}

impl Limiter {
    fn new(capacity: f64, per_second: f64) -> Self {
        Limiter { capacity, per_second, buckets: HashMap::new() }
    }

    fn take(&mut self, key: &str, now: Instant) -> bool {
        if self.buckets.len() >= BUCKETS_KEPT {
            let (capacity, rate) = (self.capacity, self.per_second);
            self.buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < capacity);
            if self.buckets.len() >= BUCKETS_KEPT {
                // All hot at once: forgetting them (a fresh burst each) beats scanning on every event.
                self.buckets.clear();
            }
        }
        let b = match self.buckets.get_mut(key) {
            Some(b) => b,
            None => self.buckets.entry(key.to_string()).or_insert(Bucket {
                tokens: self.capacity,
                at: now,
                overflowing: false,
            }),
        };
        b.tokens = (b.tokens + self.per_second * now.duration_since(b.at).as_secs_f64()).min(self.capacity);
        b.at = now;
        if b.overflowing && b.tokens < self.capacity {
            return false;
        }
        b.overflowing = false;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            b.overflowing = true;
            false
        }
    }
}

/// Appends to the Kafka overflow topic, keyed like the consumption topic.
pub struct KafkaOverflow {
    pub producer: KafkaProducer,
    pub topic: String,
}

#[async_trait]
impl Producer for KafkaOverflow {
    async fn append(&self, messages: &[(String, Vec<u8>)]) -> Result<(), PipeError> {
        self.producer.append_to(&self.topic, messages).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_key_bursts_to_the_capacity_then_gets_the_refill_rate() {
        let mut l = Limiter::new(3.0, 2.0);
        let t0 = Instant::now();
        assert_eq!((0..5).map(|_| l.take("hot", t0)).collect::<Vec<_>>(), [true, true, true, false, false]);
        assert!(l.take("cold", t0), "other keys have their own bucket");
        // Ran dry: rerouted until the bucket is full again (1.5 s at 2 per second), not per refilled token.
        let t1 = t0 + Duration::from_millis(1000);
        assert!(!l.take("hot", t1), "two tokens back, but still overflowing");
        let t2 = t0 + Duration::from_millis(1500);
        assert!(l.take("hot", t2), "refilled: back on the main topic");
        // A long pause refills no more than the capacity.
        let t3 = t2 + Duration::from_secs(3600);
        assert_eq!((0..4).filter(|_| l.take("hot", t3)).count(), 3);
    }

    #[test]
    fn quiet_keys_are_forgotten_when_the_map_is_full() {
        let mut l = Limiter::new(1.0, 1.0);
        let t0 = Instant::now();
        for i in 0..BUCKETS_KEPT {
            l.take(&format!("k{i}"), t0);
        }
        // Every bucket is refilled a second later, so all are dropped but the new one.
        l.take("new", t0 + Duration::from_secs(2));
        assert_eq!(l.buckets.len(), 1);
    }
}
