//! StatsD export (STATSD_HOST, STATSD_PORT, STATSD_PREFIX): every period the
//! counters' increments (`|c`) and the gauges (`|g`) go out over UDP,
//! several lines per datagram.

use std::collections::HashMap;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// Largest datagram sent: fits an ordinary Ethernet MTU.
const DATAGRAM: usize = 1400;

/// Metric lines for this period; `last` holds the counters' previous values.
pub fn lines(m: &Metrics, prefix: &str, last: &mut HashMap<String, u64>) -> Vec<String> {
    let mut counters: Vec<(String, u64)> =
        vec![("events_in".into(), m.events_in.get()), ("events_out".into(), m.events_out.get())];
    counters.extend(m.dropped_counts().into_iter().map(|(r, n)| (format!("events_dropped.{r}"), n)));
    counters.extend(m.dead_letter_counts().into_iter().map(|(r, n)| (format!("dead_letters.{r}"), n)));
    for p in m.plugins() {
        counters.push((format!("plugin.{}.calls", p.config_id), p.calls.get()));
        counters.push((format!("plugin.{}.errors", p.config_id), p.errors.get()));
    }
    let mut out = Vec::new();
    for (name, value) in counters {
        let before = last.insert(name.clone(), value).unwrap_or(0);
        if value > before {
            out.push(format!("{prefix}{name}:{}|c", value - before));
        }
    }
    for p in m.latest_positions() {
        out.push(format!("{prefix}consumer_lag.{}.{}:{}|g", p.topic, p.partition, p.end - p.committed));
    }
    for w in m.workers() {
        out.push(format!("{prefix}worker.{}.in_hand:{}|g", w.id, w.in_hand()));
    }
    out
}

/// Packs lines into datagrams of at most [`DATAGRAM`] bytes.
pub fn datagrams(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        match out.last_mut() {
            Some(d) if d.len() + 1 + line.len() <= DATAGRAM => {
                d.push('\n');
                d.push_str(line);
            }
            _ => out.push(line.clone()),
        }
    }
    out
}

/// Sends every `period` until `stop`. UDP errors are logged, never fatal.
pub async fn run(m: &'static Metrics, target: String, prefix: String, period: Duration, stop: CancellationToken) {
    let socket = match UdpSocket::bind("0.0.0.0:0").await {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(%err, "StatsD export disabled: cannot open a UDP socket");
            return;
        }
    };
    let mut last = HashMap::new();
    let mut every = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        for d in datagrams(&lines(m, &prefix, &mut last)) {
            if let Err(err) = socket.send_to(d.as_bytes(), &target).await {
                tracing::debug!(%err, %target, "StatsD send failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_sent_as_increments_and_packed_into_datagrams() {
        let m = Metrics::new();
        m.events_in.add(5);
        let mut last = HashMap::new();
        assert_eq!(lines(&m, "ph.", &mut last), vec!["ph.events_in:5|c"]);
        m.events_in.add(2);
        m.dropped("plugin", 1);
        assert_eq!(lines(&m, "ph.", &mut last), vec!["ph.events_in:2|c", "ph.events_dropped.plugin:1|c"]);
        let many: Vec<String> = (0..100).map(|i| format!("phs.metric_number_{i}:1|c")).collect();
        let packed = datagrams(&many);
        assert!(packed.len() > 1 && packed.iter().all(|d| d.len() <= DATAGRAM));
        assert_eq!(packed.join("\n").lines().count(), 100);
    }
}
