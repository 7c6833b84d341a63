//! Settings only the Node.js server had. They are accepted so an existing
//! deployment's environment can be reused as is: mapped onto phs's setting
//! where one means the same thing, otherwise reported once at startup.

/// What phs does with one of the original's Node-only settings.
enum Treatment {
    /// Copied to this phs variable when that one is not set.
    MapTo(&'static str),
    /// Has no equivalent; the text says why.
    Ignored(&'static str),
}

const NODE_ONLY: &[(&str, Treatment)] = &[
    (
        "PISCINA_USE_ATOMICS",
        Treatment::Ignored("phs has no piscina worker pool; WORKER_CONCURRENCY and TASKS_PER_WORKER size its workers"),
    ),
    (
        "PISCINA_ATOMICS_TIMEOUT",
        Treatment::Ignored("phs has no piscina worker pool; its workers wake on channel messages, not by polling"),
    ),
    ("PISCINA_MAX_THREADS", Treatment::MapTo("WORKER_CONCURRENCY")),
    ("REDIS_POOL_MIN_SIZE", Treatment::Ignored("phs multiplexes one Redis connection per instance")),
    ("REDIS_POOL_MAX_SIZE", Treatment::Ignored("phs multiplexes one Redis connection per instance")),
    (
        "INTERNAL_MMDB_SERVER_PORT",
        Treatment::Ignored("phs reads the GeoIP database in-process; there is no internal MMDB server"),
    ),
    ("MAX_PENDING_PROMISES_PER_WORKER", Treatment::Ignored("phs bounds in-flight work with bounded queues instead")),
    (
        "CAPTURE_INTERNAL_METRICS",
        Treatment::Ignored("phs exposes its metrics on the admin listener (/metrics) and StatsD"),
    ),
    ("SENTRY_DSN", Treatment::Ignored("phs does not report to Sentry; errors go to logs and plugin log entries")),
    (
        "BASE_DIR",
        Treatment::Ignored(
            "phs stores a plugin's code in the database at `phs plugins install`; no path is resolved later",
        ),
    ),
    ("KAFKA_PRODUCER_LINGER_MS", Treatment::MapTo("KAFKA_FLUSH_FREQUENCY_MS")),
    (
        "KAFKA_PARTITIONS_CONSUMED_CONCURRENTLY",
        Treatment::Ignored(
            "phs processes every partition it owns on WORKER_CONCURRENCY shards keyed by (team, distinct_id), \
             so partitions need no concurrency of their own",
        ),
    ),
    ("KAFKA_PRODUCER_BATCH_SIZE", Treatment::MapTo("KAFKA_MAX_MESSAGE_BATCH_SIZE")),
];

/// A message about one legacy variable, to be logged once tracing is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice(pub String);

/// Looks at the given environment and returns the variables to set (the
/// mapped ones) and the notices to log. Pure, so it is tested without
/// touching the process environment.
pub fn plan(env: &[(String, String)]) -> (Vec<(String, String)>, Vec<Notice>) {
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut sets = Vec::new();
    let mut notices = Vec::new();
    for (name, value) in env {
        let known = NODE_ONLY.iter().find(|(n, _)| n == name);
        match known.map(|(_, t)| t) {
            Some(Treatment::MapTo(target)) => {
                if get(target).is_some() {
                    notices.push(Notice(format!("{name} is ignored because {target} is also set")));
                } else {
                    sets.push((target.to_string(), value.clone()));
                    notices.push(Notice(format!("{name} is a Node-only setting; using it as {target}={value}")));
                }
            }
            Some(Treatment::Ignored(why)) => notices.push(Notice(format!("{name} is ignored: {why}"))),
            None if name.starts_with("PISCINA_") => notices.push(Notice(format!(
                "{name} is ignored: phs has no piscina worker pool; WORKER_CONCURRENCY and TASKS_PER_WORKER size its workers"
            ))),
            None => {}
        }
    }
    (sets, notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn maps_when_target_unset_and_warns_otherwise() {
        let (sets, notices) = plan(&env(&[("PISCINA_MAX_THREADS", "4")]));
        assert_eq!(sets, vec![("WORKER_CONCURRENCY".to_string(), "4".to_string())]);
        assert!(notices[0].0.contains("WORKER_CONCURRENCY=4"));

        let (sets, notices) = plan(&env(&[("PISCINA_MAX_THREADS", "4"), ("WORKER_CONCURRENCY", "2")]));
        assert!(sets.is_empty());
        assert!(notices[0].0.contains("also set"));
    }

    #[test]
    fn unknown_piscina_and_ignored_settings_are_reported() {
        let (sets, notices) = plan(&env(&[("PISCINA_FOO", "1"), ("SENTRY_DSN", "x"), ("HOME", "/root")]));
        assert!(sets.is_empty());
        assert_eq!(notices.len(), 2);
        assert!(notices.iter().any(|n| n.0.starts_with("PISCINA_FOO is ignored")));
        assert!(notices.iter().any(|n| n.0.starts_with("SENTRY_DSN is ignored")));
    }
}
