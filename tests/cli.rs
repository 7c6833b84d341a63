//! The command line as a user meets it: settings, errors and exit codes.

use crate::util::{phs, stderr, stdout};

#[test]
fn bad_setting_values_exit_2_naming_the_variable() {
    let cases = [
        ("WORKER_CONCURRENCY", "abc"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("REDIS_URL", "http://localhost"),
        ("KAFKA_HOSTS", "localhost"),
        ("CLICKHOUSE_HOST", "ftp://x"),
        ("TASKS_PER_WORKER", "0"),
        ("ADMIN_ADDR", "localhost"),
        ("DISABLE_MMDB", "perhaps"),
        ("KAFKA_CLIENT_CERT_B64", "!!!"),
        ("LOG_LEVEL", "loud"),
        ("PLUGIN_SERVER_MODE", "everything"),
    ];
    for (var, value) in cases {
        let out = phs().arg("serve").env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {}", stderr(&out));
        assert!(stderr(&out).contains(var), "{var}={value}: message does not name it: {}", stderr(&out));
    }
}

#[test]
fn serve_help_shows_every_setting_with_env_name_and_default() {
    let out = phs().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    // The seed README's configuration table, minus the Node-only settings.
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "WORKER_CONCURRENCY",
        "TASKS_PER_WORKER",
        "SCHEDULE_LOCK_TTL",
        "CLICKHOUSE_HOST",
        "CLICKHOUSE_DATABASE",
        "CLICKHOUSE_USER",
        "CLICKHOUSE_PASSWORD",
        "CLICKHOUSE_CA",
        "CLICKHOUSE_SECURE",
        "KAFKA_HOSTS",
        "KAFKA_CONSUMPTION_TOPIC",
        "KAFKA_CLIENT_CERT_B64",
        "KAFKA_CLIENT_CERT_KEY_B64",
        "KAFKA_TRUSTED_CERT_B64",
        "KAFKA_PRODUCER_MAX_QUEUE_SIZE",
        "KAFKA_FLUSH_FREQUENCY_MS",
        "KAFKA_MAX_MESSAGE_BATCH_SIZE",
        "LOG_LEVEL",
        "STATSD_HOST",
        "STATSD_PORT",
        "STATSD_PREFIX",
        "DISABLE_MMDB",
        "DISTINCT_ID_LRU_SIZE",
        "HEALTHCHECK_MAX_STALE_SECONDS",
        "PLUGIN_SERVER_MODE",
        "ADMIN_ADDR",
        "PHS_DATA_DIR",
    ] {
        assert!(help.contains(&format!("[env: {var}")), "`phs serve --help` lacks {var}");
    }
    for default in ["events_plugin_ingestion", "plugin-server.", "127.0.0.1:6738", "7200", "900000"] {
        assert!(help.contains(&format!("[default: {default}]")), "`phs serve --help` lacks default {default}");
    }
}

#[test]
fn secrets_are_not_shown_in_help() {
    let out = phs()
        .args(["serve", "--help"])
        .env("CLICKHOUSE_PASSWORD", "hunter2")
        .env("DATABASE_URL", "postgres://u:pw-secret@h/db")
        .output()
        .unwrap();
    let help = stdout(&out);
    assert!(!help.contains("hunter2") && !help.contains("pw-secret"), "{help}");
}

#[test]
fn node_only_settings_are_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    // `teams list` needs no network and exits at once; the notice is the same for every command.
    let out = phs()
        .args(["teams", "list"])
        .env("PHS_DATA_DIR", dir.path())
        .env("PISCINA_ATOMICS_TIMEOUT", "100")
        .env("SENTRY_DSN", "https://x@sentry.example/1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("PISCINA_ATOMICS_TIMEOUT is ignored").count(), 1, "{err}");
    assert_eq!(err.matches("SENTRY_DSN is ignored").count(), 1, "{err}");
}

#[test]
fn mapped_node_setting_takes_effect() {
    // PISCINA_MAX_THREADS maps to WORKER_CONCURRENCY, so an invalid value fails as that variable.
    let out = phs().arg("serve").env("PISCINA_MAX_THREADS", "many").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("WORKER_CONCURRENCY"), "{}", stderr(&out));
}

#[test]
fn replay_usage_errors_exit_2_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let no_start = phs().args(["replay"]).env("PHS_DATA_DIR", data).output().unwrap();
    assert_eq!(no_start.status.code(), Some(2));
    assert!(stderr(&no_start).contains("--from-offset"), "{}", stderr(&no_start));
    let no_log = phs().args(["replay", "--from-beginning"]).env("PHS_DATA_DIR", data).output().unwrap();
    assert_eq!(no_log.status.code(), Some(2), "{}", stderr(&no_log));
    assert!(stderr(&no_log).contains("there is no local log"), "{}", stderr(&no_log));
    let topic = phs().args(["replay", "--from-beginning", "--topic", "x"]).env("PHS_DATA_DIR", data).output().unwrap();
    assert_eq!(topic.status.code(), Some(2));
    assert!(stderr(&topic).contains("--topic needs KAFKA_HOSTS"), "{}", stderr(&topic));
    let bad_time = phs().args(["replay", "--from-timestamp", "yesterday"]).output().unwrap();
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(stderr(&bad_time).contains("RFC 3339"), "{}", stderr(&bad_time));
    let help = phs().args(["replay", "--help"]).output().unwrap();
    assert!(help.status.success());
    for flag in ["--reingest", "--compare", "--dead-letters", "--from-timestamp", "--offline"] {
        assert!(stdout(&help).contains(flag), "replay --help lacks {flag}");
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = phs().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn closed_stdout_is_not_an_error() {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::Stdio;
    // A one-page pipe, shrunk before phs starts writing: the output cannot
    // all fit before the reader goes, so phs really writes into a closed pipe
    // (the 64 KiB default could hold most of it).
    let mut fds = [0; 2];
    // SAFETY: pipe2 and fcntl on descriptors this process creates and then owns; close-on-exec,
    // so the child holds only the write end (as its stdout) and the reader is the last read end.
    let (read, write) = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe: {}", std::io::Error::last_os_error());
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    let size = unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) };
    assert!(size >= 4096, "could not shrink the pipe: {}", std::io::Error::last_os_error());
    let full = std::fs::read("completions/_phs").unwrap().len();
    assert!(full > 4 * size as usize, "the output ({full} bytes) must outgrow the pipe ({size} bytes)");
    let child = phs().args(["completions", "zsh"]).stdout(Stdio::from(write)).stderr(Stdio::piped()).spawn().unwrap();
    let mut reader = std::fs::File::from(read);
    let mut first = [0u8; 16];
    reader.read_exact(&mut first).unwrap();
    drop(reader);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), stderr(&out));
}

#[test]
fn teams_create_prints_token_and_list_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        phs().args(["teams", "create", "Shop", "--anonymize-ips"]).env("PHS_DATA_DIR", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert!(token.starts_with("phc_") && !token.contains(' '), "stdout should be the token alone: {token:?}");

    let out = phs().args(["teams", "list", "--json"]).env("PHS_DATA_DIR", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let teams: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON only");
    assert_eq!(teams[0]["name"], "Shop");
    assert_eq!(teams[0]["api_token"], token.as_str());
    assert_eq!(teams[0]["anonymize_ips"], true);

    let out = phs().args(["teams", "create", " "]).env("PHS_DATA_DIR", dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn clickhouse_ca_must_be_a_readable_pem_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    for value in [dir.path().join("missing.pem"), not_pem] {
        let out = phs().arg("serve").env("CLICKHOUSE_CA", &value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("CLICKHOUSE_CA"), "{}", stderr(&out));
    }
}

#[test]
fn slow_or_ignored_settings_are_not_silent() {
    let dir = tempfile::tempdir().unwrap();
    // An address of no local interface (TEST-NET-1) stops serve at once, after the settings are read.
    let out = phs()
        .arg("serve")
        .env("PHS_DATA_DIR", dir.path())
        .env("KAFKA_PARTITIONS_CONSUMED_CONCURRENTLY", "4")
        .env("KAFKA_FLUSH_FREQUENCY_MS", "500")
        .env("KAFKA_PRODUCER_MAX_QUEUE_SIZE", "20")
        .env("ADMIN_ADDR", "192.0.2.1:9")
        .env("CAPTURE_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("KAFKA_PARTITIONS_CONSUMED_CONCURRENTLY") && err.contains("is ignored"), "{err}");
    assert!(err.contains("KAFKA_FLUSH_FREQUENCY_MS=500 is librdkafka's linger.ms"), "{err}");
    assert!(err.contains("KAFKA_PRODUCER_MAX_QUEUE_SIZE=20 is librdkafka's batch.num.messages"), "{err}");
}
