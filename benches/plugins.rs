//! processEvent through the bundled Hello World plugin on a 10-property
//! event, including the conversion to and from Lua: `cargo bench --bench plugins`.
//! As in the runner, the event is lent to the call and the plugin's
//! changes are applied to it; each iteration gets a fresh copy, made
//! outside the timing.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use phs::plugins::{Context, Limits, PluginSource, PluginVm, Processed};
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

/// Hello World loaded and set up, with the runtime its calls run on.
fn hello_world() -> (tokio::runtime::Runtime, PluginVm, serde_json::Map<String, serde_json::Value>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let source = PluginSource::from_dir(std::path::Path::new("lua-plugins/hello-world")).unwrap();
    let ctx = Context::in_memory(source.manifest.validate_config(&Default::default()).unwrap());
    let vm = PluginVm::load(&source, ctx, Limits::default()).unwrap();
    rt.block_on(vm.setup()).unwrap();
    let serde_json::Value::Object(ev) = event() else { unreachable!("the event is an object") };
    (rt, vm, ev)
}

fn process_event(c: &mut Criterion) {
    let (rt, vm, ev) = hello_world();
    c.bench_function("processEvent hello-world, 10 properties", |b| {
        b.iter_batched_ref(
            || ev.clone(),
            |ev| match rt.block_on(vm.process(ev)) {
                Ok(Processed::Kept(edit)) => edit.apply(ev),
                _ => panic!("hello world failed"),
            },
            BatchSize::SmallInput,
        )
    });
}

/// The same, on one event changed again at every call: no copy between
/// calls, so a `perf record` of this shows the call alone.
fn same_event(c: &mut Criterion) {
    let (rt, vm, mut ev) = hello_world();
    c.bench_function("processEvent hello-world, one event again (for profiling)", |b| {
        b.iter(|| match rt.block_on(vm.process(&ev)) {
            Ok(Processed::Kept(edit)) => edit.apply(&mut ev),
            _ => panic!("hello world failed"),
        })
    });
}

criterion_group!(benches, process_event, same_event);
criterion_main!(benches);
