//! The `random_walk` source: simulated shoppers walking the store's walking grid at random (the
//! book's *The shopper model* section, Concepts chapter, describes it for users).
//!
//! Arrivals are a Poisson process whose rate keeps the mean number of shoppers inside at
//! `average_in_store` (Little's law: rate = target / mean visit length). Each shopper draws a visit
//! length, a personal mean dwell time per cell and a consistency (how much single dwells vary);
//! moves go to a random one of the 8 neighbouring cells inside the grid; when the visit is up the
//! shopper walks back to the door and leaves from it, exactly at the end of the visit.
//!
//! Arrivals may follow the time of day (`opening_hours`, `hourly_profile`, `timezone`) and a
//! `capacity` may limit how many shoppers are inside at once, the rest queueing outside; the
//! process and the entrance are the plugin API's [`customersim_plugin_api::arrivals`], shared with
//! the other simulated sources. Without these keys a seeded run is byte-identical to one of a
//! version that did not have them.
//!
//! With the pipeline's `load:` stages ([`customersim_plugin_api::load`]) the crowd follows a target
//! of events per second instead of `average_in_store`: at build the source measures what one of its
//! shoppers makes by running this model for a few thousand visits with a fixed seed (every event
//! counted, walks home included), and each store's crowd is planned by Little's law and steered
//! along the plan. Shoppers let in to grow it join part way through a visit: the visit length is
//! drawn as a crowd's are (length-biased), split at a random point, and the shopper walks straight
//! (a cell per `walk_step`) to where the part gone would have taken it, so the crowd walks home
//! from as far, and leaves as often, as one that was always there. Shoppers sent home to shrink it
//! walk home at once, as at closing time. The longest such walks in and out of the store are how
//! early in a ramp the crowd moves, so their extra events end with the ramp.
//!
//! Generation is a pure function of the seed, the config and the simulated clock: every shopper
//! has its own random stream (derived from the seed and its arrival number) and events come out of
//! a per-shopper agenda in time order. Nothing depends on who publishes or how fast, so a seeded run
//! is byte-identical at any speed and with any number of publishing instances.

mod generator;

use std::time::Duration;

use customersim_plugin_api::FocusStage;
use customersim_plugin_api::arrivals::default_timezone;
use customersim_plugin_api::{
    ArrivalsConfig, BuildContext, EnvKind, EnvOverride, LoadShare, PluginConfig, PluginError,
    QueueMetrics, ShopperRate, Source, SourceConfig, SourceContext, async_trait, duration,
    measure_shoppers, run_ahead, source_config,
};

pub use generator::{Generator, WalkParams};

/// Config of the `random_walk` source.
#[source_config]
#[derive(Clone, Debug)]
pub struct RandomWalkConfig {
    /// Target mean number of shoppers inside; the arrival rate is set from it.
    #[serde(default = "default_average_in_store")]
    pub average_in_store: f64,
    /// Mean length of a visit, from enter to exit (e.g. `10m`).
    #[serde(default = "default_mean_visit", with = "duration::required")]
    pub mean_visit: Duration,
    /// Shortest visit; visit lengths are this plus an exponential part.
    #[serde(default = "default_min_visit", with = "duration::required")]
    pub min_visit: Duration,
    /// Mean time a shopper stays in a cell before moving, over all shoppers; each shopper's own
    /// mean is drawn between half and one and a half times this.
    #[serde(default = "default_mean_dwell", with = "duration::required")]
    pub mean_dwell: Duration,
    /// Time per cell when walking to the door at the end of a visit or when the doors close.
    #[serde(default = "default_walk_step", with = "duration::required")]
    pub walk_step: Duration,
    /// Text put before generated ids; empty keeps them decimal digits, which consumers of the
    /// original service parse as integers.
    #[serde(default)]
    pub id_prefix: String,
    /// `["08:00", "21:00"]`: local opening and closing time, so nobody arrives at night; overnight
    /// hours (`["22:00", "06:00"]`) work too. Closing stops arrivals; shoppers inside finish their
    /// visits. Leave out for a store that never closes.
    #[serde(default)]
    pub opening_hours: Option<Vec<String>>,
    /// 24 relative weights ≥ 0, one per local hour from 00:00, so arrivals follow the day's rush
    /// hours; normalised so that `average_in_store` stays the mean number inside while open.
    #[serde(default)]
    pub hourly_profile: Option<Vec<f64>>,
    /// IANA time zone (`Europe/Berlin`) of `opening_hours` and `hourly_profile`, so the store keeps
    /// its local hours across daylight saving time changes.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Most shoppers inside at once; an arrival beyond it queues outside, first come first served,
    /// and enters when someone leaves. Leave out for no limit.
    #[serde(default)]
    pub capacity: Option<u64>,
    /// Most arrivals waiting outside a full store at once (with `capacity`); one more is turned
    /// back at once and counted, so the queue's memory stays bounded.
    #[serde(default = "customersim_plugin_api::arrivals::default_max_queue")]
    pub max_queue: u64,
}

fn default_average_in_store() -> f64 {
    6.0
}
fn default_mean_visit() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_min_visit() -> Duration {
    Duration::from_secs(60)
}
fn default_mean_dwell() -> Duration {
    Duration::from_secs(20)
}
fn default_walk_step() -> Duration {
    Duration::from_secs(2)
}

impl Default for RandomWalkConfig {
    fn default() -> Self {
        RandomWalkConfig {
            average_in_store: default_average_in_store(),
            mean_visit: default_mean_visit(),
            min_visit: default_min_visit(),
            mean_dwell: default_mean_dwell(),
            walk_step: default_walk_step(),
            id_prefix: String::new(),
            opening_hours: None,
            hourly_profile: None,
            timezone: default_timezone(),
            capacity: None,
            max_queue: customersim_plugin_api::arrivals::default_max_queue(),
        }
    }
}

impl RandomWalkConfig {
    /// Checks the values and turns them into generator parameters.
    pub fn params(&self) -> Result<WalkParams, PluginError> {
        let bad = |key: &str, why: &str| Err(PluginError::Config(format!("{key}: {why}")));
        customersim_plugin_api::arrivals::check_average_in_store(self.average_in_store)?;
        if self.walk_step < Duration::from_millis(100) {
            return bad("walk_step", "must be at least 100ms");
        }
        if self.min_visit < 2 * self.walk_step {
            return bad("min_visit", "must be at least twice walk_step");
        }
        if self.mean_visit <= self.min_visit {
            return bad("mean_visit", "must be longer than min_visit");
        }
        if self.mean_dwell < Duration::from_secs(1) {
            return bad("mean_dwell", "must be at least 1s");
        }
        let arrivals = ArrivalsConfig {
            opening_hours: self.opening_hours.clone(),
            hourly_profile: self.hourly_profile.clone(),
            timezone: self.timezone.clone(),
            capacity: self.capacity,
            max_queue: self.max_queue,
        }
        .check()?;
        Ok(WalkParams {
            average_in_store: self.average_in_store,
            mean_visit_ms: self.mean_visit.as_millis() as f64,
            min_visit_ms: self.min_visit.as_millis() as f64,
            mean_dwell_ms: self.mean_dwell.as_millis() as f64,
            walk_step_ms: self.walk_step.as_millis() as i64,
            id_prefix: self.id_prefix.clone(),
            arrivals,
        })
    }
}

impl PluginConfig for RandomWalkConfig {
    const NAME: &'static str = "random_walk";
    const DESCRIPTION: &'static str = "simulated shoppers: Poisson arrivals, random walk over the store's walkable cells, home to the exit";
    const ENV: &'static [EnvOverride] = &[EnvOverride {
        var: "CUSTOMERS_AVERAGE_IN_STORE",
        key: "average_in_store",
        kind: EnvKind::Number,
        help: "target mean number of shoppers inside (default 6)",
    }];
}

impl SourceConfig for RandomWalkConfig {
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        let params = self.params()?;
        cx.follow_load(&params.arrivals).map(drop)
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        let store = cx.store.clone();
        let params = self.params()?;
        let focus = cx
            .focus
            .map(|announce| FocusStage::new(cx.store.clone(), announce));
        let load = match cx.follow_load(&params.arrivals)? {
            Some(share) => {
                let rate = shopper_rate(&params, &store, focus)?;
                Some((share, rate))
            }
            None => None,
        };
        let queue_metrics = params.arrivals.capacity.map(|_| cx.queue_metrics());
        cx.announce_opening_hours(&params.arrivals);
        Ok(Box::new(RandomWalk {
            params,
            store,
            queue_metrics,
            load,
        }))
    }
}

/// Visits measured to find what one shopper makes (about 1% off at most; a few hundred
/// milliseconds of generating).
const MEASURED_VISITS: usize = 4_000;

/// Shoppers inside while measuring: any crowd gives the same figures (shoppers of this model do
/// not meet), so a small one that many visits pass through quickly.
const MEASURING_CROWD: f64 = 64.0;

/// What one shopper of these settings makes on average, measured by running the model (with a
/// fixed seed, so the figures are the config's, not the run's), and how long a shopper sent home
/// walks: the figures the load stages are met with.
fn shopper_rate(
    params: &WalkParams,
    store: &customersim_plugin_api::StoreLayout,
    focus: Option<FocusStage>,
) -> Result<ShopperRate, PluginError> {
    let mut steady = params.clone();
    steady.average_in_store = MEASURING_CROWD;
    let mut generator = Generator::new(steady, store.clone(), 0x10AD, 0, None, None);
    let walk_in_ms = generator.longest_walk_in_ms();
    let walk_out_ms = generator.longest_walk_home_ms();
    let measured = measure_shoppers(&mut generator, MEASURED_VISITS, focus).ok_or_else(|| {
        PluginError::config(
            "load: no visit of this model ever ends, so it cannot follow load stages",
        )
    })?;
    Ok(ShopperRate {
        events_per_second: measured.events_per_second,
        mean_visit_ms: measured.mean_visit_ms,
        walk_in_ms,
        walk_out_ms,
    })
}

/// The running source: the generator, run ahead of the clock.
struct RandomWalk {
    params: WalkParams,
    store: customersim_plugin_api::StoreLayout,
    /// The entrance queue's metrics, registered when `capacity` is set.
    queue_metrics: Option<QueueMetrics>,
    /// The pipeline's load stages and what one shopper makes, when it has stages.
    load: Option<(LoadShare, ShopperRate)>,
}

#[async_trait]
impl Source for RandomWalk {
    fn paces_clock(&self) -> bool {
        true
    }

    /// One generator per store this process runs, each with the store's own seed and ids.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError> {
        let fleet = &cx.fleet;
        let origin_ms = cx.clock.origin_ms();
        // Every store has the same share of the stages, so one plan serves them all.
        let listed = cx.roster.as_ref().map(|roster| roster.size());
        let capacity = self.params.arrivals.capacity;
        let plan = match &self.load {
            Some((share, rate)) => {
                Some(share.population(Self::NAME, rate, fleet, origin_ms, capacity, listed)?)
            }
            None => None,
        };
        let stores = fleet
            .local_stores()
            .map(|store| {
                let mut generator = Generator::new(
                    self.params.clone(),
                    self.store.clone(),
                    fleet.store_seed(cx.seed, store),
                    cx.clock.origin_ms(),
                    cx.doors_close_ms,
                    cx.roster.clone(),
                )
                .in_store(store, fleet.id_base(store));
                if let Some(plan) = &plan {
                    generator = generator.following(plan.clone(), origin_ms);
                }
                if let Some(metrics) = &self.queue_metrics {
                    generator.report_queue_to(metrics.clone());
                }
                (store, generator)
            })
            .collect();
        run_ahead(Self::NAME, stores, cx).await
    }
}

impl RandomWalk {
    const NAME: &'static str = RandomWalkConfig::NAME;
}
