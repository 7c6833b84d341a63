//! processEvent through the bundled Hello World plugin on a 10-property
//! event, including the conversion to and from Lua: `cargo bench --bench plugins`.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use phs::plugins::{Context, Limits, PluginSource, PluginVm, ProcessOutcome};
use serde_json::json;

fn event() -> serde_json::Value {
    json!({
        "event": "$pageview",
        "distinct_id": "user-123",
        "uuid": "0190b5a1-2d3e-7f00-8000-000000000001",
        "timestamp": "2026-11-25T12:00:00.000Z",
        "properties": {
            "$current_url": "https://example.com/pricing",
            "$browser": "Firefox",
            "$browser_version": 131,
            "$os": "Linux",
            "$device_type": "Desktop",
            "$screen_width": 1920,
            "$screen_height": 1080,
            "$lib": "web",
            "$session_id": "0190b5a1-2d3e-7f00-8000-00000000abcd",
            "plan": "pro"
        }
    })
}

fn process_event(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let source = PluginSource::from_dir(std::path::Path::new("lua-plugins/hello-world")).unwrap();
    let ctx = Context::in_memory(source.manifest.validate_config(&Default::default()).unwrap());
    let vm = PluginVm::load(&source, ctx, Limits::default()).unwrap();
    rt.block_on(vm.setup()).unwrap();
    let ev = event();
    c.bench_function("processEvent hello-world, 10 properties", |b| {
        b.iter(|| match rt.block_on(vm.process_event(&ev)) {
            Ok(ProcessOutcome::Event(e)) => e,
            _ => panic!("hello world failed"),
        })
    });
}

criterion_group!(benches, process_event);
criterion_main!(benches);
