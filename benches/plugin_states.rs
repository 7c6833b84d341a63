//! What idle plugin configs cost: loads N Hello World states (default 10,000),
//! runs setupPlugin on each, and prints the Lua memory per state, the
//! process's RSS growth and the load time: `cargo bench --bench plugin_states [-- N]`.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use phs::plugins::logs::MemoryLog;
use phs::plugins::{Context, Limits, PluginSource, PluginVm};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let source = PluginSource::from_dir(std::path::Path::new("lua-plugins/hello-world")).unwrap();
    let cache: Arc<dyn phs::cache::Cache> = Arc::new(phs::cache::memory::MemoryCache::default());
    let logs = Arc::new(MemoryLog::default());
    let storage: Arc<dyn phs::store::PluginStorage> = Arc::new(phs::store::memory::MemoryStorage::default());
    let config = source.manifest.validate_config(&Default::default()).unwrap();

    let rss_before = rss_kib();
    let start = Instant::now();
    let mut vms = Vec::with_capacity(n);
    for i in 0..n {
        let ctx = Context {
            team_id: i as i64,
            plugin_id: 1,
            plugin_config_id: i as i64,
            config: config.clone(),
            cache: cache.clone(),
            storage: storage.clone(),
            jobs: Arc::new(phs::store::memory::MemoryJobs::default()),
            logs: logs.clone(),
            capture: None,
            fetch: Default::default(),
            attachments: Vec::new(),
            geoip: None,
        };
        let vm = PluginVm::load(&source, ctx, Limits::default()).unwrap();
        rt.block_on(vm.setup()).unwrap();
        vms.push(vm);
    }
    let elapsed = start.elapsed();
    let rss_after = rss_kib();
    let lua_bytes: usize = rt.block_on(async {
        let mut sum = 0;
        for vm in &vms {
            sum += vm.memory_used().await;
        }
        sum
    });
    println!("plugin states loaded: {n}");
    println!(
        "load + setupPlugin time: {:.2} s ({:.0} µs per state)",
        elapsed.as_secs_f64(),
        elapsed.as_micros() as f64 / n as f64
    );
    println!("Lua heap per state: {:.1} KiB", lua_bytes as f64 / n as f64 / 1024.0);
    println!(
        "process RSS growth per state: {:.1} KiB (total {:.0} MiB)",
        (rss_after - rss_before) as f64 / n as f64,
        (rss_after - rss_before) as f64 / 1024.0
    );
}
