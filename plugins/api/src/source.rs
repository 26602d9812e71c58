//! Sources: what puts events on the timeline (or publishes them at once).

use std::sync::Arc;

use crate::build::BuildContext;
use crate::clock::Clock;
use crate::error::PluginError;
use crate::fleet::Fleet;
use crate::plugin::PluginConfig;
use crate::publisher::Publisher;
use crate::roster::Roster;
use crate::shutdown::{EndRun, ShutdownSignal};
use crate::timeline::Schedule;
use crate::watermark::Watermark;

/// The typed config of a source type; register it with `#[source_config]`.
///
/// Lifecycle: the core resolves the config (unknown keys refused, environment applied), calls
/// [`SourceConfig::check`] (all that `customersim validate` does), then, inside the runtime,
/// [`SourceConfig::build`] and finally [`Source::run`].
pub trait SourceConfig: PluginConfig {
    /// Checks the values without side effects: no connecting, binding or spawning. Reading a file
    /// the config names is fine.
    fn check(&self, _cx: &BuildContext) -> Result<(), PluginError> {
        Ok(())
    }

    /// Turns the config into a source; may read files, must not connect or bind anywhere (that is
    /// [`Source::run`]'s job).
    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError>;
}

/// Something that puts events on the timeline (or publishes them at once).
#[crate::async_trait]
pub trait Source: Send {
    /// `true` for sources that generate simulated-time events ahead of the clock: a virtual clock
    /// then waits for this source's [`Watermark`]. Sources driven from outside (HTTP) keep the
    /// default `false`.
    fn paces_clock(&self) -> bool {
        false
    }

    /// Runs until done or until `cx.shutdown` fires. Returning ends this source only; the run goes
    /// on until every source is done and the timeline is drained.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError>;
}

/// What a running source gets: enough to schedule and to read the clock, nothing that drives the
/// run. The core makes it (see [`crate::host`]).
pub struct SourceContext {
    /// The run's clock; sources never read the wall clock.
    pub clock: Clock,
    /// Where the source schedules its events.
    pub schedule: Schedule,
    /// For sources that pace the clock ([`Source::paces_clock`]): how far they generated.
    pub watermark: Watermark,
    /// Fires on SIGINT/SIGTERM or when the run ends.
    pub shutdown: ShutdownSignal,
    /// Ends the whole run cleanly, for a source with a reason to.
    pub end_run: EndRun,
    /// Publishes at once, bypassing the timeline.
    pub publisher: Publisher,
    /// The roster of customers, when the pipeline has one (see [`BuildContext::roster`]).
    pub roster: Option<Arc<dyn Roster>>,
    /// When the doors close (`simulation.duration` after the start): no arrivals from then on.
    pub doors_close_ms: Option<i64>,
    /// This source's seed, derived from the run's seed and its position in the pipeline (per
    /// store: [`Fleet::store_seed`]).
    pub seed: u64,
    /// The stores of the pipeline; a shopper source generates for [`Fleet::local_stores`], the
    /// shard of them this process runs.
    pub fleet: Fleet,
}
