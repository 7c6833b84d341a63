//! Lock-free counters and fixed-bucket histograms: the cheap parts that the
//! event path touches. A record is one or two relaxed atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in microseconds (1-2-5 steps, 1 µs to 100 s).
pub const MICROS: &[u64] = &[
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    100_000_000,
];
/// Upper bounds of the batch-size buckets, in messages.
pub const SIZES: &[u64] = &[1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000];

/// A histogram with fixed upper bounds and an overflow bucket.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram { bounds, buckets, sum: AtomicU64::new(0) }
    }

    pub fn record(&self, value: u64) {
        let i = self.bounds.partition_point(|&b| b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn record_duration(&self, d: Duration) {
        self.record(d.as_micros().min(u64::MAX as u128) as u64);
    }

    pub fn bounds(&self) -> &'static [u64] {
        self.bounds
    }

    pub fn read(&self) -> Buckets {
        Buckets {
            counts: self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// A point-in-time copy of a histogram's buckets (not cumulative).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub counts: Vec<u64>,
    pub sum: u64,
}

impl Buckets {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was recorded since `older` (a copy of the same histogram).
    pub fn since(&self, older: &Buckets) -> Buckets {
        Buckets {
            counts: self
                .counts
                .iter()
                .enumerate()
                .map(|(i, c)| c - older.counts.get(i).copied().unwrap_or(0))
                .collect(),
            sum: self.sum - older.sum,
        }
    }

    /// The upper bound of the bucket holding the q-quantile; None when empty.
    /// Values beyond the last bound report that bound.
    pub fn quantile(&self, bounds: &[u64], q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bounds.get(i).or(bounds.last()).copied().unwrap_or(0));
            }
        }
        bounds.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_right_buckets() {
        let h = Histogram::new(MICROS);
        for _ in 0..98 {
            h.record(40);
        }
        h.record(3_000);
        h.record(3_000);
        let b = h.read();
        assert_eq!(b.count(), 100);
        assert_eq!(b.quantile(MICROS, 0.5), Some(50));
        assert_eq!(b.quantile(MICROS, 0.99), Some(5_000));
        assert_eq!(b.sum, 98 * 40 + 6_000);
    }

    #[test]
    fn a_window_is_the_difference_of_two_reads() {
        let h = Histogram::new(SIZES);
        h.record(7);
        let before = h.read();
        h.record(500);
        h.record(100_000);
        let window = h.read().since(&before);
        assert_eq!(window.count(), 2);
        assert_eq!(window.quantile(SIZES, 0.5), Some(500));
        assert_eq!(window.quantile(SIZES, 1.0), Some(5_000), "overflow reports the last bound");
        assert_eq!(Buckets::default().quantile(SIZES, 0.5), None);
    }
}
