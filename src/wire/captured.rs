//! The capture format: one event as capture (or `posthog.capture` in a
//! plugin) appends it to the ingestion topic or log, and as normalize reads it.

use serde::{Deserialize, Serialize};

/// One event in the capture format, as produced to the ingestion topic or log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedEvent {
    pub uuid: String,
    pub distinct_id: String,
    pub ip: Option<String>,
    pub site_url: String,
    /// The event itself, as a JSON string.
    pub data: String,
    pub token: String,
    pub now: String,
    pub sent_at: Option<String>,
}
