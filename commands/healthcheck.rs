//! `phs healthcheck`: ask running instances whether they are healthy, and
//! (with --deps) whether the services they need answer.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use phs::admin::Report;
use phs::config::StoreSettings;
use phs::health::Check;
use serde::Serialize;

/// Query a running instance's admin listener; exit 0 when healthy, 1 otherwise.
#[derive(Debug, Args)]
pub struct Opts {
    /// Admin address of the instance to check.
    #[arg(long, env = "ADMIN_ADDR", value_name = "ADMIN_ADDR", default_value = "127.0.0.1:6738")]
    pub admin_addr: String,

    /// Check readiness (every dependency reachable) instead of liveness.
    #[arg(long)]
    pub ready: bool,

    /// Check every instance with a heartbeat in Redis (REDIS_URL), or listed in --peers, instead of one.
    #[arg(long)]
    pub all: bool,

    /// With --all: the instances to check, one admin address or URL per line (`#` comments),
    /// for deployments without Redis.
    #[arg(long, env = "PHS_PEERS_FILE", value_name = "FILE")]
    pub peers: Option<std::path::PathBuf>,

    /// Also check that Postgres, Redis, Kafka and ClickHouse (as configured) answer, with latencies.
    #[arg(long)]
    pub deps: bool,

    /// Print JSON on stdout: the instance's report, or with --all/--deps every result.
    #[arg(long)]
    pub json: bool,

    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,

    #[command(flatten)]
    pub store: StoreSettings,
}

#[derive(Serialize)]
struct InstanceResult {
    admin_addr: String,
    ok: bool,
    reason: Option<String>,
    report: Option<Report>,
}

#[derive(Serialize)]
struct Combined {
    ok: bool,
    instances: Vec<InstanceResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<Check>,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(opts.timeout)).build()?;
    let servers = if opts.all { heartbeats(&opts).await? } else { vec![opts.admin_addr.clone()] };
    let mut results = Vec::new();
    for s in &servers {
        results.push(check(&client, s, opts.ready).await);
    }
    let dependencies = if opts.deps {
        phs::health::check_dependencies(&opts.store, Duration::from_secs(opts.timeout)).await
    } else {
        Vec::new()
    };
    let ok = results.iter().all(|r| r.ok) && dependencies.iter().all(|c| c.ok);

    let what = if opts.ready { "ready" } else { "healthy" };
    for r in &results {
        match &r.reason {
            None => eprintln!("{}: {what}", r.admin_addr),
            Some(why) => eprintln!("{}: not {what}: {why}", r.admin_addr),
        }
    }
    if opts.deps && dependencies.is_empty() {
        eprintln!("dependencies: none configured (embedded: SQLite, in-process cache, local log)");
    }
    for c in &dependencies {
        let status = if c.ok { "ok".to_string() } else { format!("FAILED: {}", c.error.as_deref().unwrap_or("?")) };
        eprintln!("{} ({}): {status} in {:.1} ms", c.name, c.backend, c.latency_ms);
    }
    if opts.json {
        if opts.all || opts.deps {
            super::print(serde_json::to_string_pretty(&Combined { ok, instances: results, dependencies })?)?;
        } else if let Some(report) = results.first().and_then(|r| r.report.as_ref()) {
            super::print(serde_json::to_string(report)?)?;
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Every instance's admin address from the peers file, else from the heartbeats.
async fn heartbeats(opts: &Opts) -> anyhow::Result<Vec<String>> {
    if let Some(path) = &opts.peers {
        return Ok(phs::instances::peers(path)?);
    }
    let Some(url) = &opts.store.redis_url else {
        return Err(super::UsageError(
            "--all reads instances from the heartbeats in Redis or from --peers FILE: set REDIS_URL or PHS_PEERS_FILE \
             (an embedded instance keeps its heartbeat in its own process; check it with --admin-addr)"
                .into(),
        )
        .into());
    };
    Ok(phs::instances::admin_addrs(url).await?)
}

async fn check(client: &reqwest::Client, server: &str, ready: bool) -> InstanceResult {
    let path = if ready { "_ready" } else { "_health" };
    let url = format!("{}/{path}", phs::instances::base_url(server));
    let failed =
        |reason: String| InstanceResult { admin_addr: server.into(), ok: false, reason: Some(reason), report: None };
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            let why = if e.is_connect() { "nothing is listening there".to_string() } else { e.to_string() };
            return failed(format!("no answer from phs at {server}: {why}"));
        }
    };
    let ok = response.status().is_success();
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => return failed(format!("reading the answer from {url}: {e}")),
    };
    match serde_json::from_str::<Report>(&body) {
        Ok(report) => InstanceResult {
            admin_addr: server.into(),
            ok,
            reason: if ok { None } else { Some(report.reason.clone().unwrap_or_else(|| "no reason given".into())) },
            report: Some(report),
        },
        Err(_) => failed(format!("{url} answered with an unexpected body")),
    }
}
