//! The core's Prometheus metrics: what was published, skipped, failed, how late, and the
//! timeline's depth.

use crate::plugin_api::prometheus_client::metrics::counter::Counter;
use crate::plugin_api::prometheus_client::metrics::family::Family;
use crate::plugin_api::prometheus_client::metrics::gauge::Gauge;

use crate::lateness::LatenessHistogram;
use crate::plugin_api::{Event, EventKind, MetricsRegistry, Topics};

type Labels = Vec<(String, String)>;

/// Handles on the core's metrics, registered once per run.
#[derive(Clone)]
pub struct CoreMetrics {
    published: Family<Labels, Counter>,
    publish_errors: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    lateness: Family<Labels, LatenessHistogram>,
    /// Events handed to the sinks (not registered: what the progress bar counts).
    pub handed_over: Counter,
    /// Events dropped by CONSUME_FROM because they were due before it.
    pub skipped: Counter,
    /// Events waiting on the timeline.
    pub timeline_depth: Gauge,
}

impl CoreMetrics {
    /// Registers the core's metrics in `registry`.
    pub fn register(registry: &MetricsRegistry) -> CoreMetrics {
        let metrics = CoreMetrics {
            published: Family::default(),
            publish_errors: Family::default(),
            dropped: Family::default(),
            lateness: Family::default(),
            handed_over: Counter::default(),
            skipped: Counter::default(),
            timeline_depth: Gauge::default(),
        };
        registry.register(
            "events_published",
            "Events handed to a sink, by topic and sink",
            metrics.published.clone(),
        );
        registry.register(
            "publish_errors",
            "Batches a sink failed to take, by sink",
            metrics.publish_errors.clone(),
        );
        registry.register(
            "events_dropped",
            "Events a lossy sink (one that would rather drop than slow the run) did not take, by sink",
            metrics.dropped.clone(),
        );
        registry.register(
            "publish_lateness_seconds",
            "How late events left against their due time on the run's clock (simulated seconds; at speed max, on the virtual clock), measured when the sink accepted the batch, by sink",
            metrics.lateness.clone(),
        );
        registry.register(
            "events_skipped",
            "Events skipped because they were due before CONSUME_FROM",
            metrics.skipped.clone(),
        );
        registry.register(
            "timeline_depth",
            "Events waiting on the timeline",
            metrics.timeline_depth.clone(),
        );
        metrics
    }

    /// Counters of one sink, resolved once so the hot path only adds.
    pub fn for_sink(&self, sink: &str, topics: &Topics) -> SinkCounters {
        let counter = |topic: &str| {
            self.published
                .get_or_create(&vec![
                    ("topic".into(), topic.to_string()),
                    ("sink".into(), sink.to_string()),
                ])
                .clone()
        };
        SinkCounters {
            enter: counter(&topics.enter),
            moves: counter(&topics.moves),
            exit: counter(&topics.exit),
            focus: match &topics.focus {
                Some(topic) => counter(topic),
                // Not shown unless one arrives: a pipeline without focus keeps its metrics.
                None => Counter::default(),
            },
            truth: topics
                .truth
                .topics()
                .map(|topic| topic.map(counter).unwrap_or_default()),
            errors: self
                .publish_errors
                .get_or_create(&vec![("sink".into(), sink.to_string())])
                .clone(),
            dropped: self
                .dropped
                .get_or_create(&vec![("sink".into(), sink.to_string())])
                .clone(),
            lateness: self
                .lateness
                .get_or_create(&vec![("sink".into(), sink.to_string())])
                .clone(),
        }
    }
}

/// Per-topic published counters and the error counter of one sink.
#[derive(Clone)]
pub struct SinkCounters {
    enter: Counter,
    moves: Counter,
    exit: Counter,
    /// Ground-truth focus events (a counter on the focus topic, or the fallback topic).
    focus: Counter,
    /// Truth copies (sensors on), by kind, on their `topics.truth.*` topics.
    truth: [Counter; 4],
    /// Failed publishes.
    pub errors: Counter,
    /// Events a lossy sink did not take because its queue was full.
    pub dropped: Counter,
    /// How late the events the sink accepted were.
    pub lateness: LatenessHistogram,
}

impl SinkCounters {
    /// Counts a batch the sink took.
    pub fn count(&self, batch: &[Event]) {
        let (mut enter, mut moves, mut exit, mut focus) = (0, 0, 0, 0);
        for event in batch {
            if event.stamp.truth {
                self.truth[crate::plugin_api::event::kind_index(&event.kind)].inc();
                continue;
            }
            match event.kind {
                EventKind::Enter => enter += 1,
                EventKind::Move { .. } => moves += 1,
                EventKind::Exit => exit += 1,
                EventKind::Focus { .. } => focus += 1,
            }
        }
        self.enter.inc_by(enter);
        self.moves.inc_by(moves);
        self.exit.inc_by(exit);
        if focus > 0 {
            self.focus.inc_by(focus);
        }
    }
}
