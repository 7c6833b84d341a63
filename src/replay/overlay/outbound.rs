//! What leaves the process in a dry run: `posthog.capture` never does, and
//! `fetch` only for reads (GET, HEAD) unless the run is offline; any other
//! request is recorded and answered `200` without being sent.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Recorder, SideEffect};
use crate::error::PipeError;
use crate::plugins::fetch::{FetchOptions, Outbound};
use crate::wire::{CapturedEvent, Producer};

/// What `fetch` may reach during a dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// GET and HEAD go out (a plugin's lookups work); others are held.
    Reads,
    /// Nothing goes out; every request is held.
    Offline,
}

pub struct Guard {
    pub network: Network,
    pub recorder: Arc<Recorder>,
}

impl Outbound for Guard {
    fn intercept(&self, method: &str, url: &str, _: &FetchOptions) -> Option<Value> {
        let method = method.to_ascii_uppercase();
        let send = self.network == Network::Reads && matches!(method.as_str(), "GET" | "HEAD");
        self.recorder.record(SideEffect::Fetch { method, url: url.to_string(), sent: send });
        if send {
            return None;
        }
        Some(json!({"status": 200, "ok": true, "headers": {}, "body": ""}))
    }
}

/// `posthog.capture`'s producer in a dry run.
pub struct Captures(pub Arc<Recorder>);

#[async_trait]
impl Producer for Captures {
    async fn append(&self, messages: &[(String, Vec<u8>)]) -> Result<(), PipeError> {
        for (_, payload) in messages {
            let data = serde_json::from_slice::<CapturedEvent>(payload)
                .ok()
                .and_then(|m| serde_json::from_str::<Value>(&m.data).ok())
                .unwrap_or(Value::Null);
            let field = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            self.0.record(SideEffect::Capture { event: field("event"), distinct_id: field("distinct_id") });
        }
        Ok(())
    }
}
