//! The plugin API of customersim.
//!
//! Every source and sink, built in or out of tree, depends on this crate only. It breaks the
//! dependency cycle between the core (which links the built-in plugins) and the plugins (which need
//! the core's types), and it re-exports the crates whose versions must match across plugins
//! (`inventory`, `serde`, `serde_yaml`, `async_trait`, `tracing`, `rand`, `prometheus_client`): a
//! plugin built against a different `inventory` would compile and then be invisible at run time.
//!
//! # Layout
//! - [`event`]: the event model ([`Event`], [`CustomerId`], [`Topics`]) and the payload bytes of the
//!   original service's contract.
//! - [`ahead`]: the loop that runs a shopper model ([`Generate`]) ahead of the clock
//!   ([`run_ahead`]) and the shoppers' slots and agenda ([`Crowd`]), shared by the built-in
//!   shopper sources.
//! - [`arrivals`]: when simulated shoppers come in ([`ArrivalProcess`]): Poisson arrivals shaped by
//!   opening hours and an hourly profile, and the [`Entrance`] that queues arrivals beyond a
//!   capacity; [`ArrivalsConfig`] is the config fragment the simulated sources share.
//! - [`focus`]: ground truth of the consumers' focus rule ([`FocusTracker`]).
//! - [`backoff`]: exponential backoff ([`Backoff`]) for reaching peers that are down.
//! - [`clock`]: the simulated clock ([`Clock`]): real time, scaled, or virtual (as fast as sinks go).
//! - [`timeline`]: the [`Timeline`] contract that backends implement, and the [`Watermark`] a
//!   generating source uses to tell the scheduler how far it has generated.
//! - [`context`]: what a plugin gets when it is built ([`BuildContext`]) and when it runs
//!   ([`SourceContext`], [`SinkContext`]): the store layout, topics, seed, shutdown, the roster of
//!   customers, the presence table and the metrics registry.
//! - [`plugin`]: the [`Source`] and [`Sink`] traits, the typed config traits ([`SourceConfig`],
//!   [`SinkConfig`]), environment overrides ([`EnvOverride`]) and the registration macros
//!   [`register_source!`] and [`register_sink!`].
//! - [`layout`]: the store's floor plan ([`StoreLayout`]): coordinate space, zones (departments,
//!   checkouts, obstacles), the walking grid shoppers step on and walking distances.
//! - [`duration`]: serde helpers for human durations (`30s`, `8h`).
//! - [`json`]: the JSON string writer that reproduces Python's `json.dumps` escaping.
//! - [`secret`]: masking passwords in URLs for logs and `validate`.

pub mod ahead;
pub mod arrivals;
pub mod backoff;
pub mod clock;
pub mod context;
pub mod duration;
pub mod event;
pub mod focus;
pub mod json;
pub mod layout;
pub mod plugin;
pub mod secret;
pub mod timeline;

pub use ahead::{Crowd, Gate, Generate, arriving_customer, push_report, run_ahead};
pub use arrivals::{
    Admission, ArrivalProcess, ArrivalRules, ArrivalsConfig, Entrance, QueueMetrics, QueueStats,
};
pub use async_trait::async_trait;
pub use backoff::Backoff;
pub use clock::Clock;
pub use context::{
    BuildContext, MetricsRegistry, Position, Presence, Publisher, Roster, Shutdown, SinkContext,
    SourceContext,
};
pub use event::{CustomerId, Event, EventKind, Topics, intern};
pub use focus::FocusTracker;
pub use layout::{DistanceField, LayoutError, LayoutSpec, StoreLayout, Zone, ZoneKind};
pub use plugin::{
    EnvKind, EnvOverride, Factory, Plugin, PluginError, Role, Sink, SinkConfig, Source,
    SourceConfig, plugins,
};
pub use timeline::{Claim, Timeline, TimelineError, Watermark};

pub use inventory;
pub use prometheus_client;
pub use rand;
pub use rand_distr;
pub use rand_pcg;
pub use serde;
pub use serde_yaml;
pub use tokio;
pub use tracing;

/// Derives an independent seed for one consumer of randomness (a plugin instance, a shopper) from
/// the run's seed, so adding a consumer never shifts the random stream of another (SplitMix64).
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
