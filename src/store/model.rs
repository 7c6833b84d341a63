//! Rows as the rest of phs sees them, independent of the backend.

use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::Serialize;
use uuid::Uuid;

/// A PostHog team (project): events are ingested per team, found by token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Team {
    pub id: i64,
    pub uuid: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub api_token: String,
    /// Drop the IP address of every event of this team.
    pub anonymize_ips: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewTeam {
    pub name: String,
    pub anonymize_ips: bool,
    /// Normally generated; given explicitly to import an existing project.
    pub api_token: Option<String>,
}

impl NewTeam {
    pub fn token(&self) -> String {
        self.api_token.clone().unwrap_or_else(generate_api_token)
    }
}

/// A project API token in PostHog's shape: `phc_` and 43 alphanumerics.
pub fn generate_api_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..43).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("phc_{body}")
}

/// The organization teams are created in when none is named.
pub const DEFAULT_ORGANIZATION: &str = "Default organization";

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_look_like_posthogs_and_differ() {
        let a = super::generate_api_token();
        let b = super::generate_api_token();
        assert!(a.starts_with("phc_") && a.len() == 47, "{a}");
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
