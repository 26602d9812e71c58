//! Publish lateness: how late each event left against its due time on the run's clock, the
//! Prometheus histogram `customersim_publish_lateness_seconds` (one series per sink).
//!
//! **Where it is measured.** In each sink's task, when the sink's `publish` returned for the batch
//! (the sink accepted it: written to stdout, handed to the MQTT client's queue, confirmed by
//! AMQP, as the sink defines it). That is the latest point the core can see, so the figure
//! includes the scheduler's wake-up, the claim, the fan-out queue and the sink's own work.
//!
//! **On which clock.** Simulated time, read when the batch was accepted: on a scaled clock
//! (`speed: X`) simulated seconds (at speed 1, wall seconds), with sub-millisecond resolution from
//! the wall clock; on a virtual clock (`speed: max`) how far the virtual clock had moved past the
//! event's due time, i.e. how much simulated time was queued ahead of the sink. Events published
//! before they were due (none are, by construction) count as 0.
//!
//! **Why a histogram of its own.** Runs publish millions of events a second; observing a
//! `prometheus_client` histogram per event takes a lock each time. This one counts a whole batch
//! into a local array and adds it to shared atomic buckets once per batch, so it costs a binary
//! search over a few bounds per event. It also keeps the exact minimum and maximum, for the run
//! report and the thresholds (`min`, `max`, and the bounds every quantile stays within).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use crate::plugin_api::prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use crate::plugin_api::prometheus_client::metrics::{MetricType, TypedMetric};
use crate::plugin_api::{Clock, Event};

/// Upper bounds of the buckets, in microseconds: fine from 0.1 ms to 10 ms (where a keeping-up
/// publisher sits, and the 2 ms target is a bound), then coarser up to 10 minutes (a publisher
/// that fell far behind).
const BOUNDS_US: [u64; 25] = [
    100,
    250,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    7_500,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
    300_000_000,
    600_000_000,
];

/// Buckets including the one above the last bound (+Inf).
const BUCKETS: usize = BOUNDS_US.len() + 1;

/// A histogram of publish lateness, cheap to fill a batch at a time; clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct LatenessHistogram(Arc<Counts>);

#[derive(Debug)]
struct Counts {
    /// Events per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; BUCKETS],
    /// Sum of the lateness of every event, microseconds.
    sum_us: AtomicU64,
    /// The latest event, microseconds.
    max_us: AtomicU64,
    /// The earliest event, microseconds; `u64::MAX` before the first.
    min_us: AtomicU64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            buckets: Default::default(),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            min_us: AtomicU64::new(u64::MAX),
        }
    }
}

/// A snapshot of one or more histograms, for the run report.
#[derive(Clone, Debug, PartialEq)]
pub struct LatenessSummary {
    buckets: [u64; BUCKETS],
    sum_us: u64,
    max_us: u64,
    /// `u64::MAX` with no events.
    min_us: u64,
}

impl Default for LatenessSummary {
    fn default() -> Self {
        LatenessSummary {
            buckets: [0; BUCKETS],
            sum_us: 0,
            max_us: 0,
            min_us: u64::MAX,
        }
    }
}

impl LatenessHistogram {
    /// Adds a batch of lateness values (microseconds).
    pub fn record(&self, lateness_us: impl Iterator<Item = u64>) {
        let mut local = [0u64; BUCKETS];
        let (mut sum, mut max, mut min) = (0u64, 0u64, u64::MAX);
        for value in lateness_us {
            local[BOUNDS_US.partition_point(|bound| *bound < value)] += 1;
            sum += value;
            max = max.max(value);
            min = min.min(value);
        }
        let counts = &self.0;
        for (bucket, count) in counts.buckets.iter().zip(local) {
            if count > 0 {
                bucket.fetch_add(count, Ordering::Relaxed);
            }
        }
        counts.sum_us.fetch_add(sum, Ordering::Relaxed);
        counts.max_us.fetch_max(max, Ordering::Relaxed);
        counts.min_us.fetch_min(min, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn summary(&self) -> LatenessSummary {
        let counts = &self.0;
        LatenessSummary {
            buckets: std::array::from_fn(|i| counts.buckets[i].load(Ordering::Relaxed)),
            sum_us: counts.sum_us.load(Ordering::Relaxed),
            max_us: counts.max_us.load(Ordering::Relaxed),
            min_us: counts.min_us.load(Ordering::Relaxed),
        }
    }
}

impl LatenessSummary {
    /// Adds another histogram's counts (several sinks make one figure).
    pub fn merge(&mut self, other: &LatenessSummary) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
        self.min_us = self.min_us.min(other.min_us);
    }

    /// Events counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The latest event, seconds.
    pub fn max_seconds(&self) -> f64 {
        self.max_us as f64 / 1e6
    }

    /// The earliest event, seconds; 0 with no events.
    pub fn min_seconds(&self) -> f64 {
        if self.min_us == u64::MAX {
            return 0.0;
        }
        self.min_us as f64 / 1e6
    }

    /// The mean, seconds; 0 with no events.
    pub fn mean_seconds(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            count => self.sum_us as f64 / 1e6 / count as f64,
        }
    }

    /// The `q` quantile (0 < q ≤ 1) in seconds, interpolated linearly inside its bucket (as
    /// Prometheus' `histogram_quantile` does) and kept within the minimum and the maximum; 0 with
    /// no events.
    pub fn quantile_seconds(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (index, count) in self.buckets.iter().enumerate() {
            if (below + count) as f64 >= rank && *count > 0 {
                let lower = if index == 0 { 0 } else { BOUNDS_US[index - 1] };
                let upper = BOUNDS_US.get(index).copied().unwrap_or(self.max_us);
                let within = (rank - below as f64) / *count as f64;
                let us = lower as f64 + within * (upper.saturating_sub(lower)) as f64;
                // Not `clamp`: a snapshot taken while a batch is recorded may see its bucket
                // counts before its minimum (the counters are separate atomics).
                return us.max(self.min_us as f64).min(self.max_us as f64) / 1e6;
            }
            below += count;
        }
        self.max_seconds()
    }
}

impl TypedMetric for LatenessHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatenessHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let summary = self.summary();
        let buckets: Vec<(f64, u64)> = BOUNDS_US
            .iter()
            .map(|bound| *bound as f64 / 1e6)
            .chain([f64::MAX])
            .zip(summary.buckets)
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            summary.sum_us as f64 / 1e6,
            summary.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Records the lateness of the batches one sink accepted.
#[derive(Clone, Debug)]
pub struct LatenessRecorder {
    clock: Clock,
    histogram: LatenessHistogram,
}

impl LatenessRecorder {
    /// Records into `histogram`, against `clock`.
    pub fn new(clock: Clock, histogram: LatenessHistogram) -> LatenessRecorder {
        LatenessRecorder { clock, histogram }
    }

    /// Records a batch the sink just accepted.
    pub fn accepted(&self, batch: &[Event]) {
        let Some(first) = batch.first() else {
            return;
        };
        let speed = self.clock.speed();
        // Simulated now in µs relative to the first event's due time: on a scaled clock from
        // the wall instant that event fell due (sub-ms resolution), on a virtual one from the
        // clock's position.
        let now_after_first_us: i64 = match (speed, self.clock.wall_deadline(first.due_ms)) {
            (Some(speed), Some(deadline)) => {
                let now = Instant::now();
                if now >= deadline {
                    ((now - deadline).as_secs_f64() * speed * 1e6) as i64
                } else {
                    -(((deadline - now).as_secs_f64() * speed * 1e6) as i64)
                }
            }
            _ => (self.clock.now_ms() - first.due_ms).saturating_mul(1000),
        };
        self.histogram.record(batch.iter().map(|event| {
            let after_first_us = (event.due_ms - first.due_ms).saturating_mul(1000);
            now_after_first_us.saturating_sub(after_first_us).max(0) as u64
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets_and_stay_below_the_maximum() {
        let histogram = LatenessHistogram::default();
        // 98 events at 0.2 ms (bucket 0.1–0.25 ms), 2 at 40 ms (bucket 25–50 ms).
        histogram.record(std::iter::repeat_n(200, 98).chain([40_000, 40_000]));
        let summary = histogram.summary();
        assert_eq!(summary.count(), 100);
        let p50 = summary.quantile_seconds(0.5);
        assert!((0.0001..=0.00025).contains(&p50), "{p50}");
        let p99 = summary.quantile_seconds(0.99);
        assert!((0.025..=0.040).contains(&p99), "{p99}");
        assert_eq!(summary.max_seconds(), 0.04);
        assert_eq!(summary.min_seconds(), 0.0002);
        assert!((summary.mean_seconds() - 0.000996).abs() < 1e-9);
    }

    #[test]
    fn quantiles_stay_above_the_minimum() {
        let histogram = LatenessHistogram::default();
        // Every event at 0.2 ms: interpolating inside the 0.1–0.25 ms bucket would give less.
        histogram.record(std::iter::repeat_n(200, 10));
        let summary = histogram.summary();
        assert_eq!(summary.quantile_seconds(0.1), 0.0002);
        assert_eq!(summary.quantile_seconds(1.0), 0.0002);
    }

    #[test]
    fn merged_histograms_add_up() {
        let (a, b) = (LatenessHistogram::default(), LatenessHistogram::default());
        a.record([1_000, 2_000].into_iter());
        b.record([900_000_000].into_iter());
        let mut summary = a.summary();
        summary.merge(&b.summary());
        assert_eq!(summary.count(), 3);
        assert_eq!(summary.max_seconds(), 900.0);
        assert_eq!(summary.quantile_seconds(1.0), 900.0);
        assert_eq!(summary.min_seconds(), 0.001);
    }

    #[test]
    fn an_empty_histogram_reads_zero() {
        let summary = LatenessHistogram::default().summary();
        assert_eq!(summary, LatenessSummary::default());
        assert_eq!(summary.quantile_seconds(0.99), 0.0);
        assert_eq!(summary.min_seconds(), 0.0);
        assert_eq!(summary.mean_seconds(), 0.0);
    }

    #[test]
    fn a_virtual_clock_measures_how_far_it_ran_past_the_due_time() {
        let driver = crate::plugin_api::host::ClockDriver::virtual_at(10_000);
        let histogram = LatenessHistogram::default();
        let recorder = LatenessRecorder::new(driver.clock(), histogram.clone());
        driver.advance_to(12_000);
        let event = |due_ms| Event {
            due_ms,
            customer: 1.into(),
            kind: crate::plugin_api::EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        };
        recorder.accepted(&[event(11_000), event(12_000)]);
        let summary = histogram.summary();
        assert_eq!(summary.count(), 2);
        assert_eq!(summary.max_seconds(), 1.0);
        assert_eq!(summary.sum_us, 1_000_000);
    }

    #[test]
    fn prometheus_text_names_the_buckets_in_seconds() {
        let registry = crate::plugin_api::MetricsRegistry::default();
        let histogram = LatenessHistogram::default();
        registry.register("publish_lateness_seconds", "test", histogram.clone());
        histogram.record([1_500].into_iter());
        let text = registry.encode();
        assert!(
            text.contains("# TYPE customersim_publish_lateness_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("customersim_publish_lateness_seconds_bucket{le=\"0.0015\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("customersim_publish_lateness_seconds_bucket{le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("customersim_publish_lateness_seconds_count 1"),
            "{text}"
        );
    }
}
