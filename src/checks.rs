//! What a run measured, gathered for its thresholds ([`crate::thresholds`]) and shown while it
//! runs: the verdict's figures ([`crate::verdict`]), the sinks' publish lateness and the events
//! handed to the sinks per second. One value, [`RunChecks`], shared by the run (which fills it),
//! the abort watch, the live view ([`crate::plugin_api::LiveChecks`]) and the command line (which
//! evaluates the thresholds at the end).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::lateness::{LatenessHistogram, LatenessSummary};
use crate::plugin_api::LiveChecks;
use crate::plugin_api::prometheus_client::metrics::counter::Counter;
use crate::report::Observation;
use crate::thresholds::{self, AbortWatch, Measured, Measurements, Metric, Outcome, Threshold};
use crate::verdict::{LiveVerdict, VerdictReport};

/// How often `abort_on_fail` thresholds are evaluated during a run.
pub const ABORT_EVERY: Duration = Duration::from_secs(1);

/// The run's measurements for its thresholds; clones share them.
#[derive(Clone)]
pub struct RunChecks(Arc<Shared>);

struct Shared {
    thresholds: Vec<Threshold>,
    verdict: Option<LiveVerdict>,
    /// Filled when the sinks start.
    lateness: Mutex<Vec<LatenessHistogram>>,
    handed_over: Mutex<Option<Counter>>,
    started: OnceLock<Instant>,
    /// When the sinks finished: events per second stop counting here.
    ended: OnceLock<Duration>,
    /// The threshold whose breach stopped the run (`abort_on_fail`).
    aborted: Mutex<Option<Outcome>>,
    /// The run report's counts, when load stages are measured: each stage's events per second.
    stages: Mutex<Option<Observation>>,
}

impl RunChecks {
    pub fn new(thresholds: Vec<Threshold>, verdict: Option<LiveVerdict>) -> RunChecks {
        RunChecks(Arc::new(Shared {
            thresholds,
            verdict,
            lateness: Mutex::default(),
            handed_over: Mutex::default(),
            started: OnceLock::new(),
            ended: OnceLock::new(),
            aborted: Mutex::default(),
            stages: Mutex::default(),
        }))
    }

    /// Whether there is anything to check or show.
    pub fn is_empty(&self) -> bool {
        self.0.thresholds.is_empty() && self.0.verdict.is_none()
    }

    /// The thresholds, checked.
    pub fn thresholds(&self) -> &[Threshold] {
        &self.0.thresholds
    }

    /// The sinks started: what they publish is measured from now.
    pub fn sinks_started(&self, lateness: Vec<LatenessHistogram>, handed_over: Counter) {
        *self
            .0
            .lateness
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = lateness;
        *self
            .0
            .handed_over
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(handed_over);
        let _ = self.0.started.set(Instant::now());
    }

    /// Whether a threshold is set on events per second (whose `min` and `max` are taken over
    /// the load stages, measured by the run report's counts).
    pub fn wants_stage_rates(&self) -> bool {
        self.0
            .thresholds
            .iter()
            .any(|threshold| threshold.metric() == Metric::EventsPerSecond)
    }

    /// Takes each load stage's events per second from the run report's counts.
    pub fn measure_stages(&self, observation: Observation) {
        *self.0.stages.lock().unwrap_or_else(PoisonError::into_inner) = Some(observation);
    }

    /// The sinks finished.
    pub fn sinks_finished(&self) {
        if let Some(started) = self.0.started.get() {
            let _ = self.0.ended.set(started.elapsed());
        }
    }

    /// The verdict's figures now (final once the run returned).
    pub fn verdict(&self) -> Option<VerdictReport> {
        self.0.verdict.as_ref().map(LiveVerdict::snapshot)
    }

    /// Everything measured so far.
    pub fn measurements(&self) -> Measurements {
        let mut measurements = Measurements::new();
        let lateness = self
            .0
            .lateness
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !lateness.is_empty() {
            let mut all = LatenessSummary::default();
            for histogram in lateness.iter() {
                all.merge(&histogram.summary());
            }
            measurements.set(Metric::PublishLateness, Measured::Durations(all));
        }
        drop(lateness);
        if let (Some(handed_over), Some(started)) = (
            self.0
                .handed_over
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            self.0.started.get(),
        ) {
            let seconds = self
                .0
                .ended
                .get()
                .copied()
                .unwrap_or_else(|| started.elapsed())
                .as_secs_f64();
            let rate = if seconds > 0.0 {
                handed_over.get() as f64 / seconds
            } else {
                0.0
            };
            // With load stages, the slowest and the fastest stage (each once ramped).
            let stages = self
                .0
                .stages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(Observation::load_stage_rates)
                .unwrap_or_default();
            let (min, max) = if stages.is_empty() {
                (rate, rate)
            } else {
                stages.iter().fold((f64::MAX, f64::MIN), |(min, max), r| {
                    (min.min(*r), max.max(*r))
                })
            };
            measurements.set(
                Metric::EventsPerSecond,
                Measured::Rate {
                    avg: rate,
                    min,
                    max,
                },
            );
        }
        if let Some(verdict) = self.verdict() {
            add_verdict(&mut measurements, &verdict);
        }
        measurements
    }

    /// Every threshold evaluated against what was measured so far.
    pub fn outcomes(&self) -> Vec<Outcome> {
        thresholds::evaluate(&self.0.thresholds, &self.measurements())
    }

    /// The threshold that stopped the run early, if one did.
    pub fn aborted_by(&self) -> Option<Outcome> {
        self.0
            .aborted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Watches the `abort_on_fail` thresholds every [`ABORT_EVERY`] until one is breached, then
    /// calls `stop` (the run ends as on SIGTERM); `None` without such thresholds.
    pub fn watch_for_abort(
        &self,
        stop: impl FnOnce() + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let watch = AbortWatch::new(&self.0.thresholds)?;
        let checks = self.clone();
        Some(tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(ABORT_EVERY);
            loop {
                tick.tick().await;
                if let Some(breach) = watch.breached(started.elapsed(), &checks.measurements()) {
                    tracing::error!(
                        "threshold {} {} breached ({}): stopping the run (abort_on_fail)",
                        breach.metric,
                        breach.threshold,
                        breach.shown
                    );
                    *checks
                        .0
                        .aborted
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(breach);
                    stop();
                    return;
                }
            }
        }))
    }

    /// The figures as a live view shows them (see [`LiveChecks`]).
    pub fn live(&self) -> LiveChecks {
        let checks = self.clone();
        LiveChecks::new(move || {
            let verdict = checks.verdict();
            let mut value = serde_json::json!({
                "expectations": verdict.as_ref().map(|v| serde_json::to_value(&v.expectations).unwrap_or_default()).unwrap_or_else(|| serde_json::json!([])),
                "delivery": verdict.as_ref().and_then(|v| v.delivery.as_ref()).map(|d| serde_json::to_value(d).unwrap_or_default()),
                "subscription_gaps": verdict.as_ref().map_or(0, |v| v.subscription_gaps),
            });
            value["thresholds"] = serde_json::to_value(checks.outcomes()).unwrap_or_default();
            value.to_string()
        })
    }
}

/// The verdict's figures as threshold measurements: latency over every rule's replies, and each
/// count out of what it is a share of.
fn add_verdict(measurements: &mut Measurements, verdict: &VerdictReport) {
    if !verdict.expectations.is_empty() {
        let mut latency = LatenessSummary::default();
        let (mut expected, mut missing, mut late, mut unexpected, mut invalid, mut replies) =
            (0, 0, 0, 0, 0, 0);
        for rule in &verdict.expectations {
            let c = &rule.counts;
            latency.merge(&rule.latency);
            expected += c.expected - c.untracked - c.pending;
            missing += c.missing;
            late += c.late;
            unexpected += c.unexpected;
            invalid += c.invalid;
            replies += c.answered + c.late + c.unexpected + c.invalid + c.foreign;
        }
        measurements
            .set(Metric::ReplyLatency, Measured::Durations(latency))
            .set(
                Metric::RepliesMissing,
                Measured::Share {
                    count: missing,
                    of: expected,
                },
            )
            .set(
                Metric::RepliesLate,
                Measured::Share {
                    count: late,
                    of: expected,
                },
            )
            .set(
                Metric::RepliesUnexpected,
                Measured::Share {
                    count: unexpected,
                    of: replies,
                },
            )
            .set(
                Metric::RepliesInvalid,
                Measured::Share {
                    count: invalid,
                    of: replies,
                },
            );
    }
    if let Some(delivery) = &verdict.delivery {
        measurements.set(
            Metric::DeliveryLost,
            Measured::Share {
                count: delivery.counts.lost,
                of: delivery.counts.published - delivery.counts.pending,
            },
        );
    }
}
