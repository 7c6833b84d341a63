//! `phs migrate` against the real services: everything is created, and a
//! second run finds everything in place. Each test has its own Postgres
//! database, ClickHouse database and Kafka topic prefix.

use serde_json::Value;

use crate::util::{clickhouse_host, fresh_postgres_db, kafka_hosts, phs, stderr, stdout, unique};

fn migrate(args: &[&str], env: &[(&str, String)]) -> (Option<i32>, Vec<Value>, String) {
    let out =
        phs().arg("migrate").args(args).arg("--json").envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
    let steps: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON steps ({e}): {}\nstderr: {}", stdout(&out), stderr(&out)));
    (out.status.code(), steps, stderr(&out))
}

fn states(steps: &[Value], target: &str) -> Vec<String> {
    steps.iter().filter(|s| s["target"] == target).map(|s| s["state"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn migrates_every_production_store_twice_in_a_row() {
    let data_dir = tempfile::tempdir().unwrap();
    let ch_db = unique("phs_test");
    let prefix = format!("{}_", unique("t"));
    let env = vec![
        ("DATABASE_URL", fresh_postgres_db().await),
        ("CLICKHOUSE_HOST", clickhouse_host()),
        ("CLICKHOUSE_DATABASE", ch_db.clone()),
        ("KAFKA_HOSTS", kafka_hosts()),
        ("KAFKA_PREFIX", prefix.clone()),
        ("PHS_DATA_DIR", data_dir.path().display().to_string()),
    ];

    // Before: everything pending, and --status says so with exit 1.
    let (code, steps, err) = migrate(&["--status"], &env);
    assert_eq!(code, Some(1), "{err}");
    for target in ["postgres", "clickhouse", "kafka"] {
        let s = states(&steps, target);
        assert!(!s.is_empty() && s.iter().all(|x| x == "pending"), "{target}: {s:?}");
    }
    // A dry run changes nothing.
    let (code, _, err) = migrate(&["--dry-run"], &env);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, _) = migrate(&["--status"], &env);
    assert_eq!(code, Some(1), "the dry run applied something");

    let (code, steps, err) = migrate(&[], &env);
    assert_eq!(code, Some(0), "{err}");
    for target in ["postgres", "clickhouse", "kafka"] {
        assert!(states(&steps, target).iter().all(|x| x == "applied"), "{target}: {steps:?}");
    }
    assert_eq!(states(&steps, "kafka").len(), 9, "{steps:?}");

    let (code, steps, err) = migrate(&[], &env);
    assert_eq!(code, Some(0), "second run failed: {err}");
    assert!(steps.iter().all(|s| s["state"] == "done"), "{steps:?}");
    let (code, _, _) = migrate(&["--status"], &env);
    assert_eq!(code, Some(0));

    // The tables really exist where PostHog expects them.
    let pg = sqlx::PgPool::connect(&env[0].1).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_name LIKE 'posthog_%'")
            .fetch_all(&pg)
            .await
            .unwrap();
    for t in [
        "posthog_team",
        "posthog_person",
        "posthog_persondistinctid",
        "posthog_plugin",
        "posthog_pluginconfig",
        "posthog_pluginstorage",
        "posthog_pluginattachment",
        "posthog_pluginsourcefile",
        "posthog_group",
        "posthog_grouptypemapping",
        "posthog_pluginlogentry",
        "posthog_organization",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} missing: {tables:?}");
    }

    let ch = clickhouse::Client::default().with_url(clickhouse_host()).with_validation(false);
    let ch_tables: Vec<String> = ch
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&ch_db)
        .fetch_all()
        .await
        .unwrap();
    for t in ["events", "groups", "person", "person_distinct_id2", "phs_migrations", "plugin_log_entries"] {
        assert!(ch_tables.iter().any(|x| x == t), "clickhouse {t} missing: {ch_tables:?}");
    }

    // Sub-second precision survives a round trip through the events table.
    ch.query(&format!(
        "INSERT INTO {ch_db}.events (uuid, event, properties, timestamp_us, team_id, distinct_id, _timestamp, _offset) \
         VALUES ('u1', 'e', '{{}}', 1700000000123456, 1, 'd', now(), 0)"
    ))
    .execute()
    .await
    .unwrap();
    let (us, secs): (i64, u32) = ch
        .query(&format!("SELECT timestamp_us, toUInt32(timestamp) FROM {ch_db}.events WHERE uuid = 'u1'"))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((us, secs), (1_700_000_000_123_456, 1_700_000_000));
    ch.query(&format!("DROP DATABASE {ch_db}")).execute().await.unwrap();
}

#[test]
fn migrates_the_embedded_database_twice() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("PHS_DATA_DIR", dir.path().display().to_string())];
    let (code, steps, err) = migrate(&[], &env);
    assert_eq!(code, Some(0), "{err}");
    // 0001_posthog_core, 0002_jobs, 0003_definitions_and_merges, 0004_person_resync and 0005_locks.
    assert_eq!(states(&steps, "sqlite"), vec!["applied"; 5]);
    // The embedded events store and logs have their schemas in migrations/ too.
    assert_eq!(states(&steps, "events.sqlite3"), vec!["applied", "applied"], "{steps:?}");
    assert_eq!(states(&steps, "ingestion-log.sqlite3"), vec!["applied"], "{steps:?}");
    assert_eq!(states(&steps, "overflow-log.sqlite3"), vec!["applied"], "{steps:?}");
    let (code, steps, err) = migrate(&[], &env);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(states(&steps, "sqlite"), vec!["done"; 5]);
    assert!(steps.iter().all(|s| s["state"] == "done"), "{steps:?}");
    let (code, _, err) = migrate(&["--status"], &env);
    assert_eq!(code, Some(0), "--status sees every embedded schema in place: {err}");
    assert!(dir.path().join("phs.sqlite3").exists());
}

#[test]
fn unreachable_clickhouse_fails_with_exit_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let down = crate::util::ClosedPort::new();
    let port = down.port;
    let out = phs()
        .arg("migrate")
        .env("PHS_DATA_DIR", dir.path())
        .env("CLICKHOUSE_HOST", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("clickhouse"), "{}", stderr(&out));
}
