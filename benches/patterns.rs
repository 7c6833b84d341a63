//! Lua string matching: phs's budgeted matcher (what plugins get) against
//! Lua's own C matcher, on what the bundled plugins do with it
//! (taxonomy-standardizer's gsub/gmatch, first-time-event-tracker's trim):
//! `cargo bench --bench patterns`.

// Benchmarks and tests may panic on a failed setup step: that is their failure report.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use phs::plugins::Limits;

/// One round of the bundled plugins' string work on an event name.
const WORK: &str = r#"
    local n = 0
    for chunk in ("userSignedUp_step2Done-HTMLForm"):gmatch("[^%s_%-]+") do
      chunk = chunk:gsub("(%l)(%u)", "%1 %2")
      chunk = chunk:gsub("(%d)(%u)", "%1 %2")
      chunk = chunk:gsub("(%u)(%u%l)", "%1 %2")
      for w in chunk:gmatch("%S+") do n = n + #w:lower() end
    end
    local t = ("  padded name  "):match("^%s*(.-)%s*$")
    if ("https://example.com/pricing?x=1"):find("/pricing", 1, true) then n = n + #t end
    return n
"#;

fn patterns(c: &mut Criterion) {
    let c_lua = mlua::Lua::new();
    let c_work = c_lua.load(WORK).into_function().unwrap();
    let (ours, deadline) = phs::plugins::sandbox::new_state(&Limits::default()).unwrap();
    let our_work = ours.load(WORK).into_function().unwrap();
    assert_eq!(c_work.call::<i64>(()).unwrap(), our_work.call::<i64>(()).unwrap(), "same results");
    let mut g = c.benchmark_group("string patterns, one round of the bundled plugins' work");
    g.bench_function("Lua's C matcher", |b| b.iter(|| c_work.call::<i64>(()).unwrap()));
    g.bench_function("phs's budgeted matcher", |b| {
        b.iter(|| {
            deadline.arm(std::time::Duration::from_secs(1));
            let n = our_work.call::<i64>(()).unwrap();
            deadline.disarm();
            n
        })
    });
    g.finish();
}

criterion_group!(benches, patterns);
criterion_main!(benches);
