//! Each external dependency as the dependency monitor last saw it (up or
//! down since when, with its error, and the probe's round trip), for
//! `/_health`, `/metrics` and `/_snapshot`. A failing pipeline call only
//! says which call failed; this says which service is out, and also covers
//! the dependencies no batch waits on (Redis, the broker while nothing
//! arrives).

use std::time::{Duration, Instant};

use super::{Metrics, lock};

/// One dependency's last probe.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// What depends on it (`database`, `cache`, `events`, `ingestion log`).
    pub name: String,
    /// The service (`postgres`, `redis`, `clickhouse`, `kafka`).
    pub backend: String,
    /// Since when every probe failed; None while it answers.
    pub down_since: Option<Instant>,
    /// The last probe's error, while down.
    pub error: Option<String>,
    /// The last probe's round trip (bounded by the probe timeout).
    pub latency: Duration,
    /// Times it went from up to down.
    pub outages: u64,
}

/// What a probe result changed, so the monitor logs transitions only, never every probe.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Same,
    WentDown,
    /// Back up after being down this long.
    CameBack(Duration),
}

impl Metrics {
    /// Records one probe of `backend` (`name`).
    pub fn dependency_probed(&self, name: &str, backend: &str, error: Option<String>, latency: Duration) -> Change {
        let mut deps = lock(&self.dependencies);
        let i = match deps.iter().position(|d| d.name == name && d.backend == backend) {
            Some(i) => i,
            None => {
                deps.push(Dependency {
                    name: name.into(),
                    backend: backend.into(),
                    down_since: None,
                    error: None,
                    latency,
                    outages: 0,
                });
                deps.len() - 1
            }
        };
        let d = &mut deps[i];
        d.latency = latency;
        let change = match (&d.down_since, &error) {
            (None, Some(_)) => {
                d.down_since = Some(Instant::now());
                d.outages += 1;
                Change::WentDown
            }
            (Some(since), None) => {
                let took = since.elapsed();
                d.down_since = None;
                Change::CameBack(took)
            }
            _ => Change::Same,
        };
        d.error = error;
        change
    }

    pub fn dependencies(&self) -> Vec<Dependency> {
        lock(&self.dependencies).clone()
    }

    /// Each dependency down longer than `max_down`, as `/_health` names it.
    pub(super) fn dependency_reasons(&self, max_down: Duration) -> Vec<String> {
        self.dependencies()
            .iter()
            .filter_map(|d| {
                let down = d.down_since?.elapsed();
                (down > max_down).then(|| {
                    format!(
                        "{} ({}) unreachable for {} s: {}",
                        d.backend,
                        d.name,
                        down.as_secs(),
                        d.error.as_deref().unwrap_or("probe failed")
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_is_reported_once_down_long_enough_and_no_longer_once_back() {
        let m = Metrics::new();
        let ms = Duration::from_millis(3);
        assert_eq!(m.dependency_probed("cache", "redis", None, ms), Change::Same);
        assert_eq!(m.dependency_probed("cache", "redis", Some("refused".into()), ms), Change::WentDown);
        assert_eq!(m.dependency_probed("cache", "redis", Some("refused again".into()), ms), Change::Same);
        assert!(m.dependency_reasons(Duration::from_secs(60)).is_empty(), "not down long enough yet");
        let reasons = m.dependency_reasons(Duration::ZERO);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].starts_with("redis (cache) unreachable for 0 s: refused again"), "{reasons:?}");
        // Degraded, not dead: a restart cannot bring Redis back.
        assert!(m.liveness(Duration::from_secs(60), Duration::ZERO).is_none());
        assert_eq!(m.degraded(Duration::ZERO).as_deref(), Some(reasons[0].as_str()));
        assert!(matches!(m.dependency_probed("cache", "redis", None, ms), Change::CameBack(_)));
        assert!(m.dependency_reasons(Duration::ZERO).is_empty());
        assert_eq!(m.dependencies()[0].outages, 1);
    }
}
