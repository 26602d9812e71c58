//! Thresholds (`thresholds:` in the pipeline): pass/fail criteria on what a run measured, such as
//! `reply_latency: ["p(99) < 2s"]` or `replies_missing: ["rate < 0.01"]`, so that a CI job can
//! tell from the exit code ([`THRESHOLDS_BREACHED`]) and a JUnit file whether the system under
//! test held. The shape follows k6's `thresholds`, which users of load tools know.
//!
//! The flow: [`check`] reads a [`ThresholdsConfig`] into [`Threshold`]s and refuses one that is
//! malformed or on a metric this pipeline cannot measure (exit 2, before the run); during the
//! run an [`AbortWatch`] is asked now and then whether an `abort_on_fail` threshold is breached;
//! at the end [`evaluate`] turns the run's [`Measurements`] into [`Outcome`]s, which go to stderr
//! ([`table`]), the run report (they serialize) and the JUnit file ([`junit_xml`],
//! [`write_junit`]).
//!
//! **A metric with nothing measured.** A share (`replies_missing`, …) of nothing is 0 of 0: its
//! `count` and `rate` are 0, as nothing was missed. A duration aggregation (`p(99)`, `avg`, `min`,
//! `max`) over no duration at all has no value: the threshold is *breached* at the end of the
//! run ("no data"), because a latency bound nothing was measured against proves nothing (a
//! consumer that never answered would otherwise pass `p(99) < 2s`); `count` of no durations is
//! 0 and compares as such. A metric the caller gave no measurement for is "not measured" and
//! breached the same way. During the run, [`AbortWatch`] never aborts on a figure that has no
//! value yet.

mod expression;
mod junit;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use expression::{Aggregation, Expression, MAX_CHARS, Operator, Unit};
pub use junit::{JUNIT_SUITE, junit_xml, write_junit};

use crate::lateness::LatenessSummary;
use crate::plugin_api::{duration, excerpt};

/// The exit code of a run that breached a threshold (at the end, or stopped early by
/// `abort_on_fail`): k6's, so CI scripts written for k6 read it the same way; distinct from 1 (a
/// failure while running) and 2 (bad configuration).
pub const THRESHOLDS_BREACHED: u8 = 99;

/// Pass/fail criteria on what the run measured, per metric: a list of expressions
/// (`"p(99) < 2s"`) or `{threshold, abort_on_fail, delay_abort_eval}` objects; the run exits 99
/// when one is breached. A threshold on a metric this pipeline does not measure is refused.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsConfig {
    /// Reply latency (receipt of a reply − publish time of the event it answers), measured by
    /// expectations: `p(N)`, `avg`, `min`, `max` (durations, e.g. `2s`, `500ms`) and `count`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_latency: Vec<ThresholdEntry>,
    /// Expected replies that never came, out of those expected: `count`, `rate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies_missing: Vec<ThresholdEntry>,
    /// Expected replies that came after their window, out of those expected: `count`, `rate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies_late: Vec<ThresholdEntry>,
    /// Replies that answer no event, out of the replies received: `count`, `rate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies_unexpected: Vec<ThresholdEntry>,
    /// Replies that are not JSON or fail their schema, out of the replies received: `count`,
    /// `rate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies_invalid: Vec<ThresholdEntry>,
    /// Published events the delivery check never read back, out of those published: `count`,
    /// `rate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivery_lost: Vec<ThresholdEntry>,
    /// How late events left against their due time (a scaled clock only): `p(N)`, `avg`, `min`,
    /// `max` (durations) and `count`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish_lateness: Vec<ThresholdEntry>,
    /// Events published per wall second: `avg` (or `value`: the whole run's), `min`, `max`
    /// (over the run's samples or load stages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events_per_second: Vec<ThresholdEntry>,
}

impl ThresholdsConfig {
    /// Each metric with its entries, in [`Metric::ALL`] order.
    pub fn entries(&self) -> [(Metric, &[ThresholdEntry]); 8] {
        [
            (Metric::ReplyLatency, &self.reply_latency),
            (Metric::RepliesMissing, &self.replies_missing),
            (Metric::RepliesLate, &self.replies_late),
            (Metric::RepliesUnexpected, &self.replies_unexpected),
            (Metric::RepliesInvalid, &self.replies_invalid),
            (Metric::DeliveryLost, &self.delivery_lost),
            (Metric::PublishLateness, &self.publish_lateness),
            (Metric::EventsPerSecond, &self.events_per_second),
        ]
    }

    /// No threshold at all.
    pub fn is_empty(&self) -> bool {
        self.entries().iter().all(|(_, entries)| entries.is_empty())
    }
}

/// One entry of `thresholds.<metric>`: written as the bare expression when it only has one.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdEntry {
    /// The expression, as written.
    pub threshold: String,
    /// Stop the run when it is breached.
    pub abort_on_fail: bool,
    /// How long after the run's start `abort_on_fail` begins to look.
    pub delay_abort_eval: Option<Duration>,
}

impl ThresholdEntry {
    /// An entry of just an expression.
    pub fn plain(threshold: impl Into<String>) -> ThresholdEntry {
        ThresholdEntry {
            threshold: threshold.into(),
            abort_on_fail: false,
            delay_abort_eval: None,
        }
    }
}

/// The long form of an entry (and its schema).
#[derive(Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ThresholdObject {
    /// The expression, e.g. `p(99) < 2s`.
    threshold: String,
    /// Stop the run as soon as the threshold is breached (exit code 99) instead of at its end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    abort_on_fail: bool,
    /// With `abort_on_fail`: how long after the run's start breaches begin to count (a warm-up);
    /// absent: from the start.
    #[serde(
        default,
        with = "duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    delay_abort_eval: Option<Duration>,
}

impl From<ThresholdObject> for ThresholdEntry {
    fn from(object: ThresholdObject) -> Self {
        ThresholdEntry {
            threshold: object.threshold,
            abort_on_fail: object.abort_on_fail,
            delay_abort_eval: object.delay_abort_eval,
        }
    }
}

impl Serialize for ThresholdEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !self.abort_on_fail && self.delay_abort_eval.is_none() {
            return serializer.serialize_str(&self.threshold);
        }
        ThresholdObject {
            threshold: self.threshold.clone(),
            abort_on_fail: self.abort_on_fail,
            delay_abort_eval: self.delay_abort_eval,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ThresholdEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ThresholdEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a threshold such as \"p(99) < 2s\", or {threshold, abort_on_fail, delay_abort_eval}",
                )
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ThresholdEntry, E> {
                Ok(ThresholdEntry::plain(text))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ThresholdEntry, A::Error> {
                ThresholdObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ThresholdEntry::from)
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl schemars::JsonSchema for ThresholdEntry {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ThresholdEntry".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let object = generator.subschema_for::<ThresholdObject>();
        schemars::json_schema!({
            "description": "A threshold: `AGGREGATION OPERATOR VALUE` such as `p(99) < 2s`, `rate < 0.01`, `count == 0`, or an object that adds `abort_on_fail`.",
            "oneOf": [
                {"type": "string", "examples": ["p(99) < 2s", "rate < 0.01", "count == 0"]},
                object
            ]
        })
    }
}

/// A metric thresholds can be set on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    ReplyLatency,
    RepliesMissing,
    RepliesLate,
    RepliesUnexpected,
    RepliesInvalid,
    DeliveryLost,
    PublishLateness,
    EventsPerSecond,
}

/// What a metric's measurements are, which decides its aggregations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A histogram of durations ([`Measured::Durations`]).
    Durations,
    /// A count out of a total ([`Measured::Share`]).
    Share,
    /// Events per second ([`Measured::Rate`]).
    Rate,
}

impl Metric {
    /// Every metric, in the order thresholds are listed.
    pub const ALL: [Metric; 8] = [
        Metric::ReplyLatency,
        Metric::RepliesMissing,
        Metric::RepliesLate,
        Metric::RepliesUnexpected,
        Metric::RepliesInvalid,
        Metric::DeliveryLost,
        Metric::PublishLateness,
        Metric::EventsPerSecond,
    ];

    /// Its key under `thresholds:`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::ReplyLatency => "reply_latency",
            Metric::RepliesMissing => "replies_missing",
            Metric::RepliesLate => "replies_late",
            Metric::RepliesUnexpected => "replies_unexpected",
            Metric::RepliesInvalid => "replies_invalid",
            Metric::DeliveryLost => "delivery_lost",
            Metric::PublishLateness => "publish_lateness",
            Metric::EventsPerSecond => "events_per_second",
        }
    }

    /// The metric of a key under `thresholds:`.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|metric| metric.name() == name)
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::ReplyLatency | Metric::PublishLateness => Kind::Durations,
            Metric::RepliesMissing
            | Metric::RepliesLate
            | Metric::RepliesUnexpected
            | Metric::RepliesInvalid
            | Metric::DeliveryLost => Kind::Share,
            Metric::EventsPerSecond => Kind::Rate,
        }
    }

    /// What a pipeline needs for the metric to be measured (the error for a threshold on a
    /// metric it cannot produce).
    fn produced_by(self) -> &'static str {
        match self {
            Metric::ReplyLatency
            | Metric::RepliesMissing
            | Metric::RepliesLate
            | Metric::RepliesUnexpected
            | Metric::RepliesInvalid => {
                "replies are measured only by expectations (`expect:`): add one, or remove the threshold"
            }
            Metric::DeliveryLost => {
                "delivery is measured only by the delivery check: turn it on, or remove the threshold"
            }
            Metric::PublishLateness => {
                "publish lateness is measured only on a scaled clock (not `speed: max`): remove the threshold or run at a speed"
            }
            Metric::EventsPerSecond => {
                "events per second are measured only by a run that publishes"
            }
        }
    }

    /// The bound of `expression` in the metric's unit (seconds for durations, a share from 0 to
    /// 1 for `rate`), or why the metric does not take it.
    fn resolve(self, expression: &Expression) -> Result<f64, String> {
        let Expression {
            aggregation,
            number,
            unit,
            ..
        } = *expression;
        let name = self.name();
        let has =
            |aggregations: &str| format!("{name} has no {aggregation}: it has {aggregations}");
        let bare = |what: &str| match unit {
            Unit::None => Ok(number),
            _ => Err(format!(
                "{aggregation} of {name} is {what}: give the value without a unit"
            )),
        };
        match (self.kind(), aggregation) {
            (Kind::Durations, Aggregation::Count) | (Kind::Share, Aggregation::Count) => {
                bare("a number of events")
            }
            (
                Kind::Durations,
                Aggregation::Percentile(_) | Aggregation::Avg | Aggregation::Min | Aggregation::Max,
            ) => match unit.seconds() {
                Some(seconds) => Ok(number * seconds),
                None => Err(format!(
                    "{aggregation} of {name} is a duration: give the value a unit (us, ms, s or m), e.g. 2s or 500ms"
                )),
            },
            (Kind::Durations, _) => Err(has("p(N), avg, min, max and count")),
            (Kind::Share, Aggregation::Rate) => {
                let share = match unit {
                    Unit::None => number,
                    Unit::Percent => number / 100.0,
                    _ => {
                        return Err(format!(
                            "rate of {name} is a share from 0 to 1 (or a percentage such as 1%), not a duration"
                        ));
                    }
                };
                if share > 1.0 {
                    return Err(format!(
                        "rate of {name} is a share from 0 to 1 (or a percentage such as 1%): {share} is more than 1"
                    ));
                }
                Ok(share)
            }
            (Kind::Share, _) => Err(has("count and rate")),
            (
                Kind::Rate,
                Aggregation::Avg | Aggregation::Value | Aggregation::Min | Aggregation::Max,
            ) => bare("events per second"),
            (Kind::Rate, _) => Err(has("avg (or value), min and max")),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A checked threshold: a metric, an expression it takes, and when it may stop the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    metric: Metric,
    /// The expression as written (trimmed).
    text: String,
    expression: Expression,
    /// The value compared with, in the metric's unit (seconds, share, count, events/s).
    bound: f64,
    abort_on_fail: bool,
    delay_abort_eval: Duration,
}

impl Threshold {
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The expression as written, e.g. `p(99) < 2s`.
    pub fn expression(&self) -> &str {
        &self.text
    }

    pub fn abort_on_fail(&self) -> bool {
        self.abort_on_fail
    }

    pub fn delay_abort_eval(&self) -> Duration {
        self.delay_abort_eval
    }

    /// Compares `measurements` with the threshold.
    pub fn evaluate(&self, measurements: &Measurements) -> Outcome {
        let figure = figure(
            self.metric,
            self.expression.aggregation,
            measurements.get(self.metric),
        );
        let (measured, shown, passed) = match figure {
            Ok((value, shown)) => (
                Some(value),
                shown,
                self.expression.operator.holds(value, self.bound),
            ),
            Err(why) => (None, why.to_string(), false),
        };
        Outcome {
            metric: self.metric,
            threshold: self.text.clone(),
            measured,
            unit: unit_of(self.metric, self.expression.aggregation),
            passed,
            shown,
        }
    }
}

/// As `validate` prints it: `reply_latency: p(99) < 2s (abort_on_fail after 10s)`.
impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.metric, self.text)?;
        if self.abort_on_fail {
            f.write_str(" (abort_on_fail")?;
            if !self.delay_abort_eval.is_zero() {
                write!(
                    f,
                    " after {}",
                    duration_text(self.delay_abort_eval.as_secs_f64())
                )?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Reads and checks every threshold of `config`. `available` names the metrics this pipeline
/// measures ([`Metric::name`]: replies only with expectations, `delivery_lost` only with the
/// delivery check, …). The error names the key (`thresholds.reply_latency[0]`), the text and
/// what is wrong, or for a metric not measured, what would measure it.
pub fn check(config: &ThresholdsConfig, available: &[&str]) -> Result<Vec<Threshold>, String> {
    debug_assert!(
        available
            .iter()
            .all(|name| Metric::from_name(name).is_some()),
        "unknown metric in {available:?}"
    );
    let mut thresholds = Vec::new();
    for (metric, entries) in config.entries() {
        if entries.is_empty() {
            continue;
        }
        if !available.contains(&metric.name()) {
            return Err(format!(
                "thresholds.{metric}: this pipeline does not measure {metric}; {}",
                metric.produced_by()
            ));
        }
        for (index, entry) in entries.iter().enumerate() {
            let at = |why: String| {
                format!(
                    "thresholds.{metric}[{index}]: invalid threshold {}: {why}",
                    excerpt(&entry.threshold)
                )
            };
            let text = entry.threshold.trim();
            let expression = expression::parse(text).map_err(at)?;
            let bound = metric.resolve(&expression).map_err(at)?;
            if entry.delay_abort_eval.is_some() && !entry.abort_on_fail {
                return Err(format!(
                    "thresholds.{metric}[{index}]: delay_abort_eval is set but abort_on_fail is not: \
                     the delay only matters to a threshold that stops the run"
                ));
            }
            thresholds.push(Threshold {
                metric,
                text: text.to_string(),
                expression,
                bound,
                abort_on_fail: entry.abort_on_fail,
                delay_abort_eval: entry.delay_abort_eval.unwrap_or_default(),
            });
        }
    }
    Ok(thresholds)
}

/// What was measured of one metric.
#[allow(clippy::large_enum_variant)] // a handful per evaluation: boxing would only cost callers
#[derive(Clone, Debug, PartialEq)]
pub enum Measured {
    /// A histogram of durations (reply latency, publish lateness).
    Durations(LatenessSummary),
    /// `count` out of `of` (replies missing out of those expected, …).
    Share { count: u64, of: u64 },
    /// Events per second: the whole run's, and the lowest and highest sample (or load stage);
    /// with no samples, all three the run's.
    Rate { avg: f64, min: f64, max: f64 },
}

/// What the run measured, per metric; a metric left out is "not measured".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measurements(BTreeMap<Metric, Measured>);

impl Measurements {
    pub fn new() -> Measurements {
        Measurements::default()
    }

    /// Sets what was measured of `metric`.
    pub fn set(&mut self, metric: Metric, measured: Measured) -> &mut Measurements {
        self.0.insert(metric, measured);
        self
    }

    pub fn get(&self, metric: Metric) -> Option<&Measured> {
        self.0.get(&metric)
    }
}

/// The figure an aggregation takes of a measurement, and how it is shown; or why there is none.
fn figure(
    metric: Metric,
    aggregation: Aggregation,
    measured: Option<&Measured>,
) -> Result<(f64, String), &'static str> {
    let measured = measured.ok_or("not measured")?;
    match (measured, aggregation) {
        (Measured::Durations(summary), Aggregation::Count) => {
            Ok((summary.count() as f64, summary.count().to_string()))
        }
        (Measured::Durations(summary), _) if summary.count() == 0 => Err("no data"),
        (Measured::Durations(summary), aggregation) => {
            let seconds = match aggregation {
                // The exact minimum, where interpolating inside the first bucket would not be.
                Aggregation::Percentile(0.0) => summary.min_seconds(),
                Aggregation::Percentile(percent) => summary.quantile_seconds(percent / 100.0),
                Aggregation::Avg => summary.mean_seconds(),
                Aggregation::Min => summary.min_seconds(),
                Aggregation::Max => summary.max_seconds(),
                _ => return Err("not measured"),
            };
            Ok((seconds, duration_text(seconds)))
        }
        (Measured::Share { count, .. }, Aggregation::Count) => {
            Ok((*count as f64, count.to_string()))
        }
        (Measured::Share { count, of }, Aggregation::Rate) => {
            let rate = if *of == 0 {
                0.0
            } else {
                *count as f64 / *of as f64
            };
            Ok((rate, format!("{} ({count} of {of})", decimal(rate, 4))))
        }
        (Measured::Rate { avg, min, max }, aggregation) => {
            let value = match aggregation {
                Aggregation::Avg | Aggregation::Value => *avg,
                Aggregation::Min => *min,
                Aggregation::Max => *max,
                _ => return Err("not measured"),
            };
            Ok((value, format!("{} events/s", decimal(value, 1))))
        }
        // A measurement of another kind than the metric's: the caller's mistake, shown as such.
        _ => {
            debug_assert!(false, "{metric} measured as {measured:?}");
            Err("not measured")
        }
    }
}

/// The unit of an aggregation's figure in the report (`None`: a count or a share).
fn unit_of(metric: Metric, aggregation: Aggregation) -> Option<&'static str> {
    match (metric.kind(), aggregation) {
        (_, Aggregation::Count) | (Kind::Share, _) => None,
        (Kind::Durations, _) => Some("s"),
        (Kind::Rate, _) => Some("events/s"),
    }
}

/// `value` with at most `places` decimals, trailing zeros dropped (`0.0211`, `3`).
fn decimal(value: f64, places: usize) -> String {
    let text = format!("{value:.places$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A duration in the unit that reads best: `1.234s`, `850ms`, `1.5ms`, `120µs`.
fn duration_text(seconds: f64) -> String {
    if seconds >= 1.0 || seconds == 0.0 {
        format!("{}s", decimal(seconds, 3))
    } else if seconds >= 1e-3 {
        format!("{}ms", decimal(seconds * 1e3, 3))
    } else {
        format!("{}µs", decimal(seconds * 1e6, 1))
    }
}

/// A threshold as it stood when evaluated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub metric: Metric,
    /// The expression as written.
    pub threshold: String,
    /// The aggregation's figure (seconds for durations, a share from 0 to 1 for `rate`); `None`
    /// when there was nothing to take it of.
    pub measured: Option<f64>,
    /// `s`, `events/s`; absent for a count or a share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    pub passed: bool,
    /// The figure as the table and the JUnit file show it (`1.234s`, `0.02 (5 of 237)`, `no
    /// data`).
    #[serde(skip)]
    pub shown: String,
}

/// Compares each threshold with `measurements`, in order.
pub fn evaluate(thresholds: &[Threshold], measurements: &Measurements) -> Vec<Outcome> {
    thresholds
        .iter()
        .map(|threshold| threshold.evaluate(measurements))
        .collect()
}

/// Whether every outcome passed (the run exits [`THRESHOLDS_BREACHED`] otherwise).
pub fn all_passed(outcomes: &[Outcome]) -> bool {
    outcomes.iter().all(|outcome| outcome.passed)
}

/// The ✓/✗ table printed on stderr at the end of a run: a line per threshold, its metric,
/// expression and measured figure aligned in columns.
pub fn table(outcomes: &[Outcome]) -> String {
    let breached = outcomes.iter().filter(|outcome| !outcome.passed).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "thresholds: {} passed, {breached} breached",
        outcomes.len() - breached
    );
    let width = |column: fn(&Outcome) -> &str| {
        outcomes
            .iter()
            .map(|outcome| column(outcome).chars().count())
            .max()
            .unwrap_or(0)
    };
    let metric_width = width(|outcome| outcome.metric.name());
    let threshold_width = width(|outcome| &outcome.threshold);
    for outcome in outcomes {
        let mark = if outcome.passed { '✓' } else { '✗' };
        // Padded by characters, not bytes: `µs` is one column wide and two bytes long.
        let threshold = &outcome.threshold;
        let padding = threshold_width - threshold.chars().count();
        let _ = writeln!(
            out,
            "  {mark} {:<metric_width$}  {threshold}{:padding$}  {}",
            outcome.metric.name(),
            "",
            outcome.shown
        );
    }
    out
}

/// The thresholds with `abort_on_fail`, asked during the run whether one is breached.
#[derive(Clone, Debug)]
pub struct AbortWatch {
    thresholds: Vec<Threshold>,
}

impl AbortWatch {
    /// The watch over `thresholds`' `abort_on_fail` ones; `None` when there is none (nothing to
    /// measure during the run).
    pub fn new(thresholds: &[Threshold]) -> Option<AbortWatch> {
        let thresholds: Vec<Threshold> = thresholds
            .iter()
            .filter(|threshold| threshold.abort_on_fail)
            .cloned()
            .collect();
        (!thresholds.is_empty()).then_some(AbortWatch { thresholds })
    }

    /// The metrics the watch needs measured while the run goes on.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics: Vec<Metric> = self.thresholds.iter().map(|t| t.metric).collect();
        metrics.sort();
        metrics.dedup();
        metrics
    }

    /// The first breached threshold (in config order) whose `delay_abort_eval` has passed
    /// `since_start` into the run, if any; the run stops and exits [`THRESHOLDS_BREACHED`]. A
    /// figure with no value yet ("no data", "not measured") does not abort: the final
    /// evaluation judges it.
    pub fn breached(&self, since_start: Duration, measurements: &Measurements) -> Option<Outcome> {
        self.thresholds
            .iter()
            .filter(|threshold| since_start >= threshold.delay_abort_eval)
            .map(|threshold| threshold.evaluate(measurements))
            .find(|outcome| !outcome.passed && outcome.measured.is_some())
    }
}
