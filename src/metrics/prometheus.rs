//! `/metrics`: the registry in Prometheus text exposition format (0.0.4).

use std::fmt::Write;

use super::primitives::{Buckets, MICROS, SIZES};
use super::{Metrics, Stage};

/// Escapes a label value (backslash, quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP phs_{name} {help}\n# TYPE phs_{name} {kind}");
}

/// One histogram's series; `scale` turns recorded units into the exported ones.
fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[u64], b: &Buckets, scale: f64) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += b.counts[i];
        let _ = writeln!(out, "phs_{name}_bucket{{{labels}{sep}le=\"{}\"}} {cumulative}", *bound as f64 * scale);
    }
    let total = b.count();
    let _ = writeln!(out, "phs_{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}");
    let braced = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "phs_{name}_sum{braced} {}", b.sum as f64 * scale);
    let _ = writeln!(out, "phs_{name}_count{braced} {total}");
}

impl Metrics {
    pub async fn prometheus(&self) -> String {
        let w = self.window().await;
        let mut out = String::with_capacity(16 * 1024);
        let o = &mut out;
        header(o, "events_in_total", "counter", "Messages read from the source.");
        let _ = writeln!(o, "phs_events_in_total {}", self.events_in.get());
        header(o, "events_out_total", "counter", "Events written to the sink.");
        let _ = writeln!(o, "phs_events_out_total {}", self.events_out.get());
        header(
            o,
            "events_overflowed_total",
            "counter",
            "Events of hot keys and slow teams rerouted to the overflow topic.",
        );
        let _ = writeln!(o, "phs_events_overflowed_total {}", self.events_overflowed.get());
        header(
            o,
            "slow_lane_teams",
            "gauge",
            "Teams whose events run in the overflow lane: their plugins ran past PHS_SLOW_LANE_MS.",
        );
        let _ = writeln!(o, "phs_slow_lane_teams {}", self.slow_lane_teams.load(std::sync::atomic::Ordering::Relaxed));
        header(o, "events_dropped_total", "counter", "Events that did not reach the sink, by reason.");
        for (reason, n) in self.dropped_counts() {
            let _ = writeln!(o, "phs_events_dropped_total{{reason=\"{}\"}} {n}", esc(&reason));
        }
        header(o, "dead_letters_total", "counter", "Messages sent to the dead-letter queue, by reason.");
        for (reason, n) in self.dead_letter_counts() {
            let _ = writeln!(o, "phs_dead_letters_total{{reason=\"{}\"}} {n}", esc(&reason));
        }
        header(
            o,
            "embedded_recovery_total",
            "counter",
            "What the start-up check of the embedded files after an unclean stop found and did, by file.",
        );
        for ((file, what), n) in self.recovery_counts() {
            let _ = writeln!(o, "phs_embedded_recovery_total{{file=\"{}\",what=\"{}\"}} {n}", esc(&file), esc(&what));
        }
        header(o, "stage_duration_seconds", "histogram", "Time spent per pipeline stage (per message or per batch).");
        for stage in Stage::ALL {
            let labels = format!("stage=\"{}\"", stage.as_str());
            histogram(o, "stage_duration_seconds", &labels, MICROS, &self.stage(stage).read(), 1e-6);
        }
        header(o, "batch_size", "histogram", "Messages per batch read from the source.");
        histogram(o, "batch_size", "", SIZES, &self.batch_size.read(), 1.0);
        header(o, "consumer_committed_offset", "gauge", "Last committed offset per partition.");
        header(o, "consumer_log_end_offset", "gauge", "Last offset in the log per partition.");
        header(o, "consumer_lag", "gauge", "Messages not yet committed per partition.");
        for p in &w.positions {
            let l = format!("topic=\"{}\",partition=\"{}\"", esc(&p.topic), p.partition);
            let _ = writeln!(o, "phs_consumer_committed_offset{{{l}}} {}", p.committed);
            let _ = writeln!(o, "phs_consumer_log_end_offset{{{l}}} {}", p.end);
            let _ = writeln!(o, "phs_consumer_lag{{{l}}} {}", p.end - p.committed);
        }
        header(o, "dependency_up", "gauge", "1 while the external service answers its probe, 0 while it does not.");
        header(o, "dependency_probe_seconds", "gauge", "Round trip of the last probe of the external service.");
        header(
            o,
            "dependency_down_seconds",
            "gauge",
            "How long the external service has been unreachable (0 while up).",
        );
        header(o, "dependency_outages_total", "counter", "Times the external service went from answering to not.");
        for d in self.dependencies() {
            let l = format!("dependency=\"{}\",backend=\"{}\"", esc(&d.name), esc(&d.backend));
            let down = d.down_since.map_or(0.0, |s| s.elapsed().as_secs_f64());
            let _ = writeln!(o, "phs_dependency_up{{{l}}} {}", u8::from(d.down_since.is_none()));
            let _ = writeln!(o, "phs_dependency_probe_seconds{{{l}}} {}", d.latency.as_secs_f64());
            let _ = writeln!(o, "phs_dependency_down_seconds{{{l}}} {down}");
            let _ = writeln!(o, "phs_dependency_outages_total{{{l}}} {}", d.outages);
        }
        header(o, "queue_depth", "gauge", "Items waiting in internal queues.");
        let logs = self.plugin_log_queue.load(std::sync::atomic::Ordering::Relaxed).max(0);
        let _ = writeln!(o, "phs_queue_depth{{queue=\"plugin_logs\"}} {logs}");
        header(o, "worker_busy_ratio", "gauge", "Share of the last second a worker spent on batches.");
        header(o, "worker_in_hand", "gauge", "Messages in the batch a worker holds.");
        for x in self.workers() {
            let busy = w.busy.get(&x.id).copied().unwrap_or(0.0);
            let _ = writeln!(o, "phs_worker_busy_ratio{{worker=\"{}\"}} {busy}", x.id);
            let _ = writeln!(o, "phs_worker_in_hand{{worker=\"{}\"}} {}", x.id, x.in_hand());
        }
        header(
            o,
            "plugin_calls_total",
            "counter",
            "Plugin calls (processEvent, onEvent, exportEvents) per plugin config.",
        );
        header(o, "plugin_errors_total", "counter", "Errors per plugin config (processEvent and setup).");
        header(o, "plugin_memory_bytes", "gauge", "Lua memory of a plugin config's VM.");
        header(
            o,
            "plugin_duration_seconds",
            "histogram",
            "Plugin call time (processEvent, onEvent, exportEvents) per plugin config.",
        );
        for p in self.plugins() {
            let l =
                format!("plugin_config_id=\"{}\",team_id=\"{}\",plugin=\"{}\"", p.config_id, p.team_id, esc(&p.plugin));
            let _ = writeln!(o, "phs_plugin_calls_total{{{l}}} {}", p.calls.get());
            let _ = writeln!(o, "phs_plugin_errors_total{{{l}}} {}", p.errors.get());
            let _ = writeln!(o, "phs_plugin_memory_bytes{{{l}}} {}", p.memory());
            histogram(o, "plugin_duration_seconds", &l, MICROS, &p.duration.read(), 1e-6);
        }
        out
    }
}
