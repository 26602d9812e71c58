//! The plugin API of customersim.
//!
//! Every source, sink and timeline backend, built in or out of tree, depends on this crate only.
//! It breaks the dependency cycle between the core (which links the built-in plugins) and the
//! plugins (which need the core's types).
//!
//! # Writing a plugin
//! A plugin is a config type marked with [`source_config`], [`sink_config`] or [`timeline_config`]
//! (which derive serde's traits with `deny_unknown_fields` and register the type), implementing
//! [`PluginConfig`] and its role's trait. The plugin depends on this crate under its own name
//! (`customersim-plugin-api`); the attributes refer to it as `customersim_plugin_api`.
//!
//! ```
//! use customersim_plugin_api::{
//!     BuildContext, Event, PluginConfig, PluginError, Sink, SinkConfig, async_trait, sink_config,
//! };
//!
//! /// Counts events and logs the total at the end.
//! #[sink_config]
//! #[derive(Debug, Default)]
//! pub struct CountConfig {
//!     /// Text put before the total in the log line.
//!     #[serde(default)]
//!     pub label: String,
//! }
//!
//! impl PluginConfig for CountConfig {
//!     const NAME: &'static str = "count";
//!     const DESCRIPTION: &'static str = "counts events";
//! }
//!
//! impl SinkConfig for CountConfig {
//!     fn build(self, _cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
//!         Ok(Box::new(Count { label: self.label, seen: 0 }))
//!     }
//! }
//!
//! struct Count { label: String, seen: u64 }
//!
//! #[async_trait]
//! impl Sink for Count {
//!     async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
//!         self.seen += batch.len() as u64;
//!         Ok(())
//!     }
//!     async fn close(self: Box<Self>) -> Result<(), PluginError> {
//!         eprintln!("{}{}", self.label, self.seen);
//!         Ok(())
//!     }
//! }
//! ```
//!
//! # Layout
//! - [`event`]: the event model ([`Event`], [`CustomerId`], [`Topics`]) and the payload bytes of the
//!   original service's contract; [`json`] writes strings exactly as Python's `json.dumps` does.
//! - [`source`], [`sink`]: the traits of the two plugin roles, their config traits and what each
//!   gets while running ([`SourceContext`], [`SinkContext`]); [`sink`] documents the lifecycle.
//! - [`subscribe`]: reading back from a broker ([`Subscriber`]): replies of the system under test
//!   and the delivery check, on a sink's connection settings.
//! - [`build`]: [`BuildContext`], what every plugin is checked and built with.
//! - [`timeline`]: the [`Timeline`] contract that backends implement, the schedule-only
//!   [`Schedule`] handle sources get, and [`TimelineConfig`] for backend plugins; [`watermark`]:
//!   how far a generating source has filled it; [`peers`]: what instances sharing a timeline
//!   tell each other so that their verdicts add up ([`Peers`]).
//! - [`plugin`]: [`PluginConfig`] and the registrations ([`SourcePlugin`], [`SinkPlugin`],
//!   [`TimelinePlugin`]) the core finds through `inventory`; [`env`]: environment overrides.
//! - [`clock`]: the simulated clock plugins read ([`Clock`]).
//! - [`shutdown`]: the signal plugins listen to and their request to end the run.
//! - [`ahead`]: the loop that runs a shopper model ([`Generate`]) ahead of the clock
//!   ([`run_ahead`]) and the shoppers' slots and agenda ([`Crowd`]), shared by the built-in
//!   shopper sources.
//! - [`arrivals`]: when simulated shoppers come in ([`ArrivalProcess`]): Poisson arrivals shaped
//!   by opening hours and an hourly profile, and the [`Entrance`] that queues arrivals beyond a
//!   capacity; [`ArrivalsConfig`] is the config fragment the simulated sources share.
//! - [`load`]: load stages ([`LoadPlan`]), target events per second over time, and how the
//!   shopper sources meet them: Little's law on what one shopper makes ([`ShopperRate`]), the
//!   crowd planned per store ([`PopulationPlan`]) and steered along it ([`LoadFollower`]).
//! - [`focus`]: ground truth of the consumers' focus rule ([`FocusTracker`]), derived from every
//!   source's moves by the [`FocusStage`]; [`stages`]: the chain of stages every event passes
//!   through between its source and the timeline.
//! - [`fleet`]: a chain of stores ([`Fleet`]) and the shard of it a process runs ([`Shard`]):
//!   per-store seeds, generated ids unique across the fleet, home stores of listed customers.
//! - [`layout`]: the store's floor plan ([`StoreLayout`]): coordinate space, zones (departments,
//!   checkouts, obstacles), the walking grid shoppers step on and walking distances.
//! - [`roster`], [`presence`], [`publisher`], [`metrics`]: the list of customers, who is inside, publishing at once, the Prometheus registry.
//! - [`auth`]: bearer tokens of the plugins that serve HTTP, and the warning for a server open
//!   to the network without one.
//! - [`secret`]: the types that mark secrets in configs; [`duration`]: human durations (`30s`);
//!   [`backoff`]: waiting between tries to reach a peer that is down.
//! - [`host`]: the other halves of the handles above (moving the clock, firing shutdown), for the
//!   core and test harnesses; plugins never get them.
//! - [`error`]: [`PluginError`] and the exit codes it maps to.
//! - `tls` (feature `tls`): client TLS on the one rustls + ring stack, with client certificates of
//!   any X.509 version.

pub mod ahead;
pub mod arrivals;
pub mod auth;
pub mod backoff;
pub mod build;
pub mod clock;
pub mod due_queue;
pub mod duration;
pub mod env;
pub mod error;
pub mod event;
pub mod fleet;
pub mod focus;
pub mod host;
pub mod json;
pub mod layout;
pub mod load;
pub mod metrics;
pub mod peers;
pub mod plugin;
pub mod presence;
pub mod publisher;
pub mod roster;
pub mod secret;
pub mod sensors;
mod shopper_map;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod stages;
mod staging;
pub mod subscribe;
pub mod timeline;
#[cfg(feature = "tls")]
pub mod tls;
pub mod watermark;

pub use ahead::{Crowd, Gate, Generate, arriving_customer, run_ahead};
pub use arrivals::{
    Admission, ArrivalProcess, ArrivalRules, ArrivalsConfig, Entrance, QueueMetrics, QueueStats,
};
pub use async_trait::async_trait;
pub use backoff::Backoff;
pub use build::BuildContext;
pub use clock::{Clock, ClockOrigin};
pub use customersim_plugin_macros::{sink_config, source_config, timeline_config};
pub use due_queue::{Due, DueQueue};
pub use env::{EnvKind, EnvOverride};
pub use error::{PluginError, excerpt};
pub use event::{
    CustomerId, Event, EventKind, ResolvedTopic, STORE_PLACEHOLDER, Stamp, Topics, TruthTopics,
    intern,
};
pub use fleet::{Fleet, MAX_STORES, Shard, StoreIndex};
pub use focus::{Announce, FocusStage, FocusTracker};
pub use layout::{DistanceField, LayoutError, LayoutSpec, Neighbours, StoreLayout, Zone, ZoneKind};
pub use load::{
    LoadFollower, LoadPlan, LoadShare, LoadStage, PopulationPlan, ShopperRate, StageWindow,
    measure_shoppers,
};
pub use metrics::MetricsRegistry;
pub use peers::{PeerEntry, PeerJudge, PeerLookup, PeerRecord, PeerUpdate, PeerView, Peers};
pub use plugin::{
    BrokerEndpoint, Plugin, PluginConfig, Role, SinkPlugin, SourcePlugin, TimelinePlugin,
    registered,
};
pub use presence::{Position, Presence};
pub use publisher::Publisher;
pub use roster::Roster;
/// schemars, as the registration attributes use it: a config field of a type of your own derives
/// `JsonSchema` through it (`#[schemars(crate = "customersim_plugin_api::schemars")]`).
pub use schemars;
pub use secret::{CredentialUrl, Secret};
pub use sensors::{SensorCounts, SensorStage, SensorsConfig};
pub use shutdown::{EndRun, ShutdownSignal};
pub use sink::{LiveChecks, Sink, SinkConfig, SinkContext};
pub use source::{Source, SourceConfig, SourceContext};
pub use stages::Stages;
pub use subscribe::{Heard, Message, Subscriber};
pub use timeline::{
    Claim, KeptClock, OpenedTimeline, Schedule, SharedClock, Timeline, TimelineBackend,
    TimelineConfig, TimelineContext, TimelineError,
};
pub use watermark::Watermark;

/// Types that appear in this API's signatures and must be the very version this crate uses:
/// `prometheus_client` (metrics plugins register), `rand` (the RNG a [`Roster`] draws with) and
/// `url` (what [`CredentialUrl::parse`] returns).
pub use prometheus_client;
pub use rand;
pub use url;

/// What the registration attributes expand to; not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use schemars;
    pub use serde;
}

/// Derives an independent seed for one consumer of randomness (a plugin instance, a shopper) from
/// the run's seed, so adding a consumer never shifts the random stream of another (SplitMix64).
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
