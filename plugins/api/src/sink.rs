//! Sinks: where events are delivered.
//!
//! # Lifecycle
//! 1. **resolve**: the config section is deserialized (unknown keys refused) and the environment
//!    applied.
//! 2. **check** ([`SinkConfig::check`]): values checked without side effects. This is all that
//!    `customersim validate` runs.
//! 3. **build** ([`SinkConfig::build`]), inside the runtime: files read, nothing connected.
//! 4. **start** ([`Sink::start`]): connect, spawn background tasks. Permanent errors (refused
//!    credentials) fail here and end the run before anything is published.
//! 5. **publish** ([`Sink::publish`]), many times, with time-ordered batches.
//! 6. **flush** ([`Sink::flush`]) once, when no more batches will come: deliver what was buffered.
//! 7. **close** ([`Sink::close`]) always, even after a failed publish or flush: release what the
//!    sink holds, waiting a bounded time at most.
//!
//! # Buffering and back-pressure
//! Each sink is fed from its own bounded queue by its own task, so a slow sink slows only itself
//! until its queue is full. Then the core waits for it (back-pressure: no event is lost), unless
//! the sink says it is [`Sink::lossy`]: then batches it cannot take are dropped for it alone (a
//! live view that falls behind should drop frames, never slow the pipeline). `publish` may buffer
//! and return before the peer acknowledged; it must wait when its own buffer is full rather than
//! grow without bound, and must never drop events silently.
//!
//! # Blocking I/O
//! `publish` runs on the async runtime: a sink doing blocking I/O (files, stdout) keeps each call
//! short (one `write` per batch) or moves the work to `tokio::task::spawn_blocking`.

use crate::build::BuildContext;
use crate::clock::Clock;
use crate::error::PluginError;
use crate::event::{Event, Topics};
use crate::metrics::MetricsRegistry;
use crate::plugin::PluginConfig;
use crate::shutdown::{EndRun, ShutdownSignal};
use crate::subscribe::Subscriber;

/// The typed config of a sink type; register it with `#[sink_config]`.
pub trait SinkConfig: PluginConfig {
    /// Checks the values without side effects: no connecting, binding or spawning. Reading a file
    /// the config names (a certificate) is fine.
    fn check(&self, _cx: &BuildContext) -> Result<(), PluginError> {
        Ok(())
    }

    /// Turns the config into a sink; may read files, must not connect anywhere.
    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError>;

    /// A subscription to the broker this sink publishes to, on the same connection settings, for
    /// the run's expectations and delivery check ([`crate::subscribe`]). Built like the sink
    /// (files read, nothing connected). Default: `None`, the sink cannot read anything back
    /// (stdout, a web page).
    fn subscriber(&self, _cx: &BuildContext) -> Option<Result<Box<dyn Subscriber>, PluginError>> {
        None
    }
}

/// Somewhere events are delivered. See the module documentation for the lifecycle.
#[crate::async_trait]
pub trait Sink: Send {
    /// `true` for a sink that would rather lose batches than slow the pipeline when it falls
    /// behind (a live view). Default `false`: the pipeline waits for it.
    fn lossy(&self) -> bool {
        false
    }

    /// Connects, spawns background tasks; permanent errors (bad credentials) fail here.
    async fn start(&mut self, _cx: &SinkContext) -> Result<(), PluginError> {
        Ok(())
    }

    /// Takes responsibility for a time-ordered batch. Returns once the sink buffered it; waits
    /// while its buffer is full (back-pressure). Never drops events silently.
    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError>;

    /// Delivers everything accepted so far (waiting a bounded time for acknowledgements). Called
    /// once, after the last batch.
    async fn flush(&mut self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Releases what the sink holds (connections, tasks). Always called, also after a failed
    /// publish or flush.
    async fn close(self: Box<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

/// What a running sink gets.
pub struct SinkContext {
    /// Fires on SIGINT/SIGTERM or when the run ends.
    pub shutdown: ShutdownSignal,
    /// Ends the whole run cleanly (e.g. nobody reads stdout any more).
    pub end_run: EndRun,
    /// The topics events go to.
    pub topics: Topics,
    /// The process's metrics.
    pub metrics: MetricsRegistry,
    /// The run's simulated clock, read-only: a sink that shows or measures the run (a live view)
    /// compares events' due times with it to tell how far publishing lags behind.
    pub clock: Clock,
    /// The run's checks as they stand (expectations, the delivery check, thresholds), for a sink
    /// that shows the run; `None` when the pipeline has none.
    pub checks: Option<LiveChecks>,
}

/// The run's checks as they stand, as a JSON object the core makes on each call:
/// `{"expectations": [{"name", "expected", "answered", "late", "missing", "unexpected",
/// "invalid", "latency_seconds": {"p50", "p95", "p99", "max"}, …}], "delivery": {…} | null,
/// "subscription_gaps": n, "thresholds": [{"metric", "threshold", "measured", "unit", "passed"}]}`
/// (the run report's `verdict` and `thresholds` keys), and with the sensors on
/// `"sensors": {"reports", "thinned", "noisy", "dropped", …}` (the run report's `sensors`). Text,
/// so that a sink showing it needs no type of the core's.
#[derive(Clone)]
pub struct LiveChecks(std::sync::Arc<dyn Fn() -> String + Send + Sync>);

impl LiveChecks {
    /// Checks read through `read`.
    pub fn new(read: impl Fn() -> String + Send + Sync + 'static) -> LiveChecks {
        LiveChecks(std::sync::Arc::new(read))
    }

    /// The checks now, as JSON.
    pub fn json(&self) -> String {
        (self.0)()
    }
}

impl std::fmt::Debug for LiveChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveChecks")
    }
}
