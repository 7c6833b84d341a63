//! `phs healthcheck`: ask a running instance whether it is healthy.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use phs::admin::Report;

/// Query a running instance's admin listener; exit 0 when healthy, 1 otherwise.
#[derive(Debug, Args)]
pub struct Opts {
    /// Admin address of the instance to check.
    #[arg(long, env = "ADMIN_ADDR", value_name = "ADMIN_ADDR", default_value = "127.0.0.1:6738")]
    pub admin_addr: SocketAddr,

    /// Check readiness (every dependency reachable) instead of liveness.
    #[arg(long)]
    pub ready: bool,

    /// Print the instance's JSON report on stdout.
    #[arg(long)]
    pub json: bool,

    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let path = if opts.ready { "_ready" } else { "_health" };
    let url = format!("http://{}/{path}", opts.admin_addr);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(opts.timeout)).build()?;
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            let why = if e.is_connect() { "nothing is listening there".to_string() } else { e.to_string() };
            eprintln!("unhealthy: no answer from phs at {}: {why}", opts.admin_addr);
            return Ok(ExitCode::from(1));
        }
    };
    let ok = response.status().is_success();
    let body = response.text().await?;
    if opts.json {
        super::print(&body)?;
    }
    let report: Option<Report> = serde_json::from_str(&body).ok();
    let reason = report.as_ref().and_then(|r| r.reason.clone());
    if ok {
        eprintln!("{}: ok", if opts.ready { "ready" } else { "healthy" });
        Ok(ExitCode::SUCCESS)
    } else {
        let what = if opts.ready { "not ready" } else { "unhealthy" };
        eprintln!("{what}: {}", reason.unwrap_or_else(|| format!("{url} answered with an unexpected body")));
        Ok(ExitCode::from(1))
    }
}
