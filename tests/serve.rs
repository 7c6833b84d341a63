//! `phs serve` as a process: it comes up, answers health checks, refuses an
//! unmigrated production database, and stops cleanly on SIGTERM.

use std::time::Duration;

use crate::util::server::{Server, healthcheck, sigterm, start, wait_exit, wait_healthy};
use crate::util::{fresh_postgres_db, phs, redis_url, stderr};

#[test]
fn embedded_serve_is_healthy_and_ready_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&[("PHS_DATA_DIR", dir.path().display().to_string())]);
    wait_healthy(&mut server);
    // Started on port 0: the ready file names the ports the kernel chose, and the log agrees.
    for addr in [&server.addr, &server.capture] {
        assert!(!addr.ends_with(":0") && !addr.is_empty(), "bound address {addr:?}");
        assert!(server.log_text().contains(addr.as_str()), "{addr} not logged: {}", server.log_text());
    }
    let sdk = std::net::TcpStream::connect(&server.capture);
    assert!(sdk.is_ok(), "the capture address from the ready file does not answer: {sdk:?}");

    let ready = healthcheck(&server.addr, &["--ready", "--json"]);
    assert!(ready.status.success(), "{}", stderr(&ready));
    let report: serde_json::Value = serde_json::from_slice(&ready.stdout).unwrap();
    assert_eq!(report["status"], "ok");
    assert_eq!(report["mode"], "embedded");
    let backends: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["backend"].as_str().unwrap()).collect();
    assert_eq!(backends, vec!["sqlite", "in-process"]);
    assert!(dir.path().join("phs.sqlite3").exists(), "the embedded database was not created");

    sigterm(&server.child);
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(!server.ready.exists(), "PHS_READY_FILE outlived the server");

    let after = healthcheck(&server.addr, &[]);
    assert_eq!(after.status.code(), Some(1));
    assert!(stderr(&after).contains("no answer"), "{}", stderr(&after));
}

#[tokio::test]
async fn production_serve_uses_postgres_and_redis() {
    let db = fresh_postgres_db().await;
    let dir = tempfile::tempdir().unwrap();
    let migrated = phs().arg("migrate").env("DATABASE_URL", &db).env("PHS_DATA_DIR", dir.path()).output().unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    let mut server =
        start(&[("DATABASE_URL", db), ("REDIS_URL", redis_url()), ("PHS_DATA_DIR", dir.path().display().to_string())]);
    wait_healthy(&mut server);
    let ready = healthcheck(&server.addr, &["--ready", "--json"]);
    assert!(ready.status.success(), "{}", stderr(&ready));
    let report: serde_json::Value = serde_json::from_slice(&ready.stdout).unwrap();
    assert_eq!(report["mode"], "production");
    let backends: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["backend"].as_str().unwrap()).collect();
    assert_eq!(backends, vec!["postgres", "redis"]);
    assert!(!dir.path().join("phs.sqlite3").exists(), "production mode touched the embedded database");
}

#[tokio::test]
async fn serve_refuses_an_unmigrated_production_database() {
    let db = fresh_postgres_db().await;
    let server = start(&[("DATABASE_URL", db)]);
    let (status, log) = server_output(server);
    assert_eq!(status.code(), Some(1));
    assert!(log.contains("phs migrate"), "{log}");
}

#[test]
fn serve_refuses_an_unmigrated_clickhouse_database() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&[
        ("PHS_DATA_DIR", dir.path().display().to_string()),
        ("CLICKHOUSE_HOST", crate::util::clickhouse_host()),
        ("CLICKHOUSE_DATABASE", crate::util::unique("phs_unmigrated")),
    ]);
    let (status, err) = server_output(server);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("0001 events persons") && err.contains("phs migrate"), "{err}");
}

#[test]
fn serve_reports_a_taken_admin_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = phs()
        .arg("serve")
        .env("ADMIN_ADDR", &addr)
        .env("CAPTURE_ADDR", "127.0.0.1:0")
        .env("PHS_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ADMIN_ADDR") && stderr(&out).contains(&addr), "{}", stderr(&out));
}

/// The exit status of a server expected to stop by itself, and its log.
fn server_output(mut server: Server) -> (std::process::ExitStatus, String) {
    let status = wait_exit(&mut server, Duration::from_secs(30));
    (status, server.log_text())
}

#[test]
fn readiness_fails_naming_an_unreachable_dependency() {
    let dir = tempfile::tempdir().unwrap();
    let down = crate::util::ClosedPort::new();
    let dead = format!("http://127.0.0.1:{}", down.port);
    let mut server = start(&[("PHS_DATA_DIR", dir.path().display().to_string()), ("CLICKHOUSE_HOST", dead)]);
    wait_healthy(&mut server);
    let ready = healthcheck(&server.addr, &["--ready"]);
    assert_eq!(ready.status.code(), Some(1), "{}", stderr(&ready));
    assert!(stderr(&ready).contains("events (clickhouse)"), "{}", stderr(&ready));
}

#[tokio::test]
async fn readiness_covers_clickhouse_and_kafka_when_configured() {
    let db = fresh_postgres_db().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", db),
        ("REDIS_URL", redis_url()),
        ("CLICKHOUSE_HOST", crate::util::clickhouse_host()),
        ("KAFKA_HOSTS", crate::util::kafka_hosts()),
        ("KAFKA_PREFIX", format!("{}_", crate::util::unique("t"))),
        ("PHS_DATA_DIR", dir.path().display().to_string()),
    ];
    let migrated = phs().arg("migrate").envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let mut server = start(&env);
    wait_healthy(&mut server);
    let ready = healthcheck(&server.addr, &["--ready", "--json"]);
    assert!(ready.status.success(), "{}", stderr(&ready));
    let report: serde_json::Value = serde_json::from_slice(&ready.stdout).unwrap();
    let backends: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["backend"].as_str().unwrap()).collect();
    assert_eq!(backends, vec!["postgres", "redis", "clickhouse", "kafka"]);
}

/// onEvent and exportEvents split over instances read the stored-events topic in groups of their own:
/// embedded, where both run from the job queue, serve refuses the split modes and names the setting.
#[test]
fn the_split_async_modes_need_kafka() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["async-onevent", "async-exports"] {
        let out = phs()
            .arg("serve")
            .env("PHS_DATA_DIR", dir.path())
            .env("PLUGIN_SERVER_MODE", mode)
            .env("ADMIN_ADDR", "127.0.0.1:0")
            .env("CAPTURE_ADDR", "127.0.0.1:0")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", stderr(&out));
        assert!(stderr(&out).contains("need KAFKA_HOSTS"), "{mode}: {}", stderr(&out));
    }
}
