//! The `/_snapshot` body: counters, the sampler's window and the recent
//! errors turned into the [`phs_report::Report`] that `phs top` renders.

use phs_report::{Count, PartitionLag, PluginRow, PluginState, Quantiles, Report, Worker};

use super::Metrics;
use super::primitives::MICROS;
use super::sampler::Sample;

/// Who this instance is, from its heartbeat.
pub struct Identity {
    pub id: String,
    pub mode: String,
    pub admin_addr: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

fn per_sec(now: u64, before: u64, newest: &Sample, base: &Sample) -> f64 {
    let secs = newest.at.duration_since(base.at).as_secs_f64();
    if secs <= 0.0 { 0.0 } else { now.saturating_sub(before) as f64 / secs }
}

fn counts(list: Vec<(String, u64)>) -> Vec<Count> {
    list.into_iter().map(|(name, value)| Count { name, value }).collect()
}

impl Metrics {
    pub async fn report(&self, who: &Identity, health: Option<String>) -> Report {
        let w = self.window().await;
        let (new, base, minute) = (&w.newest, &w.rate_base, &w.minute_base);
        let batch = new.batch.since(&minute.batch);
        let ms = |q| batch.quantile(MICROS, q).map(|us| us as f64 / 1000.0);

        let partitions = w
            .positions
            .iter()
            .map(|p| {
                let key = (p.topic.clone(), p.partition);
                let lag = p.end - p.committed;
                let before = base.lag.get(&key).copied().unwrap_or(lag);
                let secs = new.at.duration_since(base.at).as_secs_f64();
                let catch_up = if secs > 0.0 { (before - lag) as f64 / secs } else { 0.0 };
                PartitionLag {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    committed: p.committed,
                    end: p.end,
                    lag,
                    history: w.lag_history.get(&key).cloned().unwrap_or_default(),
                    catch_up_per_sec: catch_up,
                    eta_seconds: (lag > 0 && catch_up > 0.0).then(|| lag as f64 / catch_up),
                }
            })
            .collect();

        let workers = self
            .workers()
            .iter()
            .map(|x| Worker {
                id: x.id,
                busy_ratio: w.busy.get(&x.id).copied().unwrap_or(0.0),
                stage: x.stage_name().into(),
                in_hand: x.in_hand(),
            })
            .collect();

        let plugins = self
            .plugins()
            .iter()
            .map(|p| {
                let (calls, errors, dur) = (p.calls.get(), p.errors.get(), p.duration.read());
                let zero = Default::default();
                let (base_calls, _, _) = base.plugins.get(&p.config_id).unwrap_or(&zero);
                let (_, minute_errors, minute_dur) = minute.plugins.get(&p.config_id).unwrap_or(&zero);
                let recent = dur.since(minute_dur);
                let errors_per_min = per_sec(errors, *minute_errors, new, minute) * 60.0;
                let state = if p.is_disabled() {
                    PluginState::Disabled
                } else if errors > *minute_errors {
                    PluginState::Degraded
                } else {
                    PluginState::Healthy
                };
                PluginRow {
                    config_id: p.config_id,
                    team_id: p.team_id,
                    plugin: p.plugin.clone(),
                    events_per_sec: per_sec(calls, *base_calls, new, base),
                    p50_us: recent.quantile(MICROS, 0.5).map(|v| v as f64),
                    p99_us: recent.quantile(MICROS, 0.99).map(|v| v as f64),
                    errors_per_min,
                    calls_total: calls,
                    errors_total: errors,
                    memory_bytes: p.memory(),
                    state,
                }
            })
            .collect();

        let mut queues = vec![Count {
            name: "plugin_logs".into(),
            value: self.plugin_log_queue.load(std::sync::atomic::Ordering::Relaxed).max(0) as u64,
        }];
        queues.extend(
            self.workers().iter().map(|x| Count { name: format!("worker_{}_in_hand", x.id), value: x.in_hand() }),
        );

        Report {
            id: who.id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            mode: who.mode.clone(),
            admin_addr: who.admin_addr.clone(),
            started_at: who.started_at.to_rfc3339(),
            healthy: health.is_none(),
            reason: health,
            events_in_total: self.events_in.get(),
            events_out_total: self.events_out.get(),
            events_in_per_sec: per_sec(new.events_in, base.events_in, new, base),
            events_out_per_sec: per_sec(new.events_out, base.events_out, new, base),
            dropped: counts(self.dropped_counts()),
            dead_letters: counts(self.dead_letter_counts()),
            batch_ms: Quantiles { p50: ms(0.5), p99: ms(0.99) },
            partitions,
            workers,
            queues,
            plugins,
            errors: self.recent_errors(),
        }
    }
}
