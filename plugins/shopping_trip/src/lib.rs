//! The `shopping_trip` source: purposeful shoppers walking a store layout with departments,
//! checkouts and obstacles.
//!
//! On arrival a shopper draws a shopping list of departments (how many: 1 + a Poisson count, mean
//! `mean_list`; which: by the departments' `weight`, without replacement; visited nearest first),
//! walks the shortest path to each (8 neighbours, around obstacles), browses there with a position
//! report every few seconds (at least three in a row inside the department), then — for a share
//! `checkout_share` of the trips — walks to the checkout with the shortest line at that moment,
//! queues (first come, first served; one report per place it moves up) and pays, and finally walks
//! the shortest path to the exit and leaves.
//!
//! # Layout
//! - [`floor`]: the walking grid built from the store layout (walkable cells, departments,
//!   checkout lines, doors) and the distance fields (one per department, checkout line and the
//!   exit, built once at start-up) that every step follows.
//! - [`generator`]: the shoppers, as a synchronous generator of time-ordered events: Poisson
//!   arrivals (Little's law on the mean trip length, estimated at start-up by planning trips with
//!   a fixed seed), trip plans, browsing, checkout lines.
//!
//! With the pipeline's `load:` stages ([`customersim_plugin_api::load`]) the crowd follows a target
//! of events per second instead of `average_in_store`: at build the source measures what one of its
//! shoppers makes by running this model for a few thousand trips with a fixed seed and a small crowd
//! (every event counted: walks, browse reports, focus events, waits in line), and each store's
//! crowd is planned by Little's law and steered along the plan. Shoppers let in to grow it join part
//! way through a trip: a trip (long ones more likely) started at a department picked by browsing
//! time with what is left of that stay, walked to from the entrance. Shoppers sent home drop the
//! rest of their list and walk out. The longest walk from the entrance to a department and from
//! anywhere to the exit are how early in a ramp the crowd moves.
//!
//! Generation is a pure function of the seed, the config and the simulated clock: every shopper
//! has its own random stream (derived from the seed and its arrival number) and events come out of
//! a time-ordered agenda, so a seeded run is byte-identical at any speed.

pub mod floor;
pub mod generator;

use std::sync::Arc;
use std::time::{Duration, Instant};

use customersim_plugin_api::FocusStage;
use customersim_plugin_api::{
    ArrivalsConfig, BuildContext, LoadShare, PluginConfig, PluginError, QueueMetrics, ShopperRate,
    Source, SourceConfig, SourceContext, StoreIndex, async_trait, duration, measure_shoppers,
    run_ahead, source_config,
};

pub use floor::{Fields, Floor};
pub use generator::{Generator, Store, TripParams};

/// Config of the `shopping_trip` source.
#[source_config]
#[derive(Clone, Debug)]
pub struct ShoppingTripConfig {
    /// Target mean number of shoppers inside; the arrival rate is set from it and the mean trip
    /// length (Little's law).
    #[serde(default = "default_average_in_store")]
    pub average_in_store: f64,
    /// Walking speed in store units per second: how long a step from cell to cell takes (a
    /// diagonal step √2 times as long).
    #[serde(default = "default_walking_speed")]
    pub walking_speed: f64,
    /// What a step through a department that is not where the shopper is heading counts for
    /// when the path is planned, in steps of walkway (1 to 10): 1 walks the shortest path,
    /// straight across other departments; 3 keeps to the walkways unless going around is more
    /// than three times as long, as shoppers do (the demo store sets 3). Walking time is always
    /// the path's real length.
    #[serde(default = "default_department_crossing")]
    pub department_crossing: f64,
    /// Mean number of departments on a shopping list (at least 1 each; the count is
    /// 1 + Poisson(mean − 1), skewed: most lists are short).
    #[serde(default = "default_mean_list")]
    pub mean_list: f64,
    /// Mean time spent browsing one department (log-normal, so a few stays are long).
    #[serde(default = "default_mean_browse", with = "duration::required")]
    pub mean_browse: Duration,
    /// Mean time between position reports while browsing (each gap varies by ±50%); a stay
    /// always has at least three reports, so a consumer sees a focus.
    #[serde(default = "default_browse_step", with = "duration::required")]
    pub browse_step: Duration,
    /// Share of trips that end at a checkout (the others leave without buying).
    #[serde(default = "default_checkout_share")]
    pub checkout_share: f64,
    /// Mean time a checkout takes to serve one shopper (log-normal).
    #[serde(default = "default_mean_service", with = "duration::required")]
    pub mean_service: Duration,
    /// Shortest planned trip (walking, browsing and paying; waiting in line comes on top):
    /// browsing is stretched to reach it.
    #[serde(default = "default_min_trip", with = "duration::required")]
    pub min_trip: Duration,
    /// Longest planned trip: browsing is shortened to stay within it.
    #[serde(default = "default_max_trip", with = "duration::required")]
    pub max_trip: Duration,
    /// Text put before generated ids; empty keeps them decimal digits, which consumers of the
    /// original service parse as integers.
    #[serde(default)]
    pub id_prefix: String,
    /// `[opening, closing]` as `"HH:MM"` local times; no arrivals outside them (shoppers inside
    /// at closing finish their trips). Leave out for a store that never closes.
    #[serde(default)]
    pub opening_hours: Option<Vec<String>>,
    /// 24 relative weights, one per local hour from 00:00, so arrivals follow the day's rush
    /// hours; `average_in_store` stays the mean inside while open. Leave out for a flat rate.
    #[serde(default)]
    pub hourly_profile: Option<Vec<f64>>,
    /// The IANA time zone the opening hours and the profile are read in.
    #[serde(default = "customersim_plugin_api::arrivals::default_timezone")]
    pub timezone: String,
    /// The most shoppers inside at once; arrivals beyond it queue outside the entrance. Leave
    /// out for no limit.
    #[serde(default)]
    pub capacity: Option<u64>,
    /// The most arrivals waiting outside a full store at once (with `capacity`); one more is
    /// turned back at once and counted, so the queue's memory stays bounded.
    #[serde(default = "customersim_plugin_api::arrivals::default_max_queue")]
    pub max_queue: u64,
}

/// 6: the original service's CUSTOMERS_AVERAGE_IN_STORE default, as `random_walk`.
fn default_average_in_store() -> f64 {
    6.0
}

/// 40 units/s: 1.2 m/s, the normal walking speed the US MUTCD long used for pedestrian signal
/// timing (4 ft/s), on the demo store plan, whose 1808 × 1315 units stand for about
/// 54 m × 39 m (3 cm per unit; 20-unit cells are 0.6 m, about one shopper's width).
fn default_walking_speed() -> f64 {
    40.0
}

/// 1: the shortest paths, as before this setting existed, so earlier runs keep their bytes.
fn default_department_crossing() -> f64 {
    1.0
}

/// 1.4 departments: in-store path tracking (Sorensen, *Inside the Mind of the Shopper*, 2009)
/// finds most supermarket trips are quick trips for one or two categories.
fn default_mean_list() -> f64 {
    1.4
}

/// 15 minutes per department: with 1.4 departments, walking and paying it gives trips of 5–40
/// minutes with a median near 20 (checked by a test), the length of an ordinary supermarket trip
/// in in-store tracking and time-use studies.
fn default_mean_browse() -> Duration {
    Duration::from_secs(15 * 60)
}

/// 8 seconds: a shopper looking at shelves moves on a step or two every several seconds; a stay
/// of half a minute already makes the three reports a consumer's focus rule needs.
fn default_browse_step() -> Duration {
    Duration::from_secs(8)
}

/// 0.9: nearly every supermarket trip ends with a purchase (grocery conversion rates are around
/// 90%, far above the 20–40% door counters report for apparel stores).
fn default_checkout_share() -> f64 {
    0.9
}

/// 2 minutes: a staffed supermarket checkout serves a typical basket in one to three minutes
/// (scanning about 20 items a minute plus payment), the range queueing studies of checkouts use.
fn default_mean_service() -> Duration {
    Duration::from_secs(2 * 60)
}

/// 6 minutes: the quickest trips for an item or two; a minute above the 5 the trips should not
/// go below, for planned walking that turns out shorter.
fn default_min_trip() -> Duration {
    Duration::from_secs(6 * 60)
}

/// 36 minutes: the long end of ordinary supermarket trips (longer ones are stock-up trips this
/// model does not plan), leaving room below 40 for waiting in line.
fn default_max_trip() -> Duration {
    Duration::from_secs(36 * 60)
}

impl Default for ShoppingTripConfig {
    fn default() -> Self {
        ShoppingTripConfig {
            average_in_store: default_average_in_store(),
            walking_speed: default_walking_speed(),
            department_crossing: default_department_crossing(),
            mean_list: default_mean_list(),
            mean_browse: default_mean_browse(),
            browse_step: default_browse_step(),
            checkout_share: default_checkout_share(),
            mean_service: default_mean_service(),
            min_trip: default_min_trip(),
            max_trip: default_max_trip(),
            id_prefix: String::new(),
            opening_hours: None,
            hourly_profile: None,
            timezone: customersim_plugin_api::arrivals::default_timezone(),
            capacity: None,
            max_queue: customersim_plugin_api::arrivals::default_max_queue(),
        }
    }
}

impl ShoppingTripConfig {
    /// Checks the values and turns them into generator parameters.
    pub fn params(&self) -> Result<TripParams, PluginError> {
        let bad = |key: &str, why: &str| Err(PluginError::Config(format!("{key}: {why}")));
        customersim_plugin_api::arrivals::check_average_in_store(self.average_in_store)?;
        if !self.walking_speed.is_finite() || self.walking_speed <= 0.0 {
            return bad(
                "walking_speed",
                "must be a number > 0 (store units per second)",
            );
        }
        if !(1.0..=10.0).contains(&self.department_crossing) {
            return bad(
                "department_crossing",
                "must be a number from 1 to 10 (steps of walkway a step across another department counts for)",
            );
        }
        if !self.mean_list.is_finite() || self.mean_list < 1.0 {
            return bad("mean_list", "must be a number >= 1");
        }
        if self.browse_step < Duration::from_secs(1) {
            return bad("browse_step", "must be at least 1s");
        }
        if self.mean_browse < 3 * self.browse_step {
            return bad("mean_browse", "must be at least three browse_steps");
        }
        if !(0.0..=1.0).contains(&self.checkout_share) {
            return bad("checkout_share", "must be between 0 and 1");
        }
        if self.mean_service < Duration::from_millis(100) {
            return bad("mean_service", "must be at least 100ms");
        }
        if self.min_trip < Duration::from_secs(1) {
            return bad("min_trip", "must be at least 1s");
        }
        if self.max_trip <= self.min_trip {
            return bad("max_trip", "must be longer than min_trip");
        }
        let arrivals = ArrivalsConfig {
            opening_hours: self.opening_hours.clone(),
            hourly_profile: self.hourly_profile.clone(),
            timezone: self.timezone.clone(),
            capacity: self.capacity,
            max_queue: self.max_queue,
        }
        .check()?;
        Ok(TripParams {
            arrivals,
            average_in_store: self.average_in_store,
            walking_speed: self.walking_speed,
            mean_list: self.mean_list,
            mean_browse_ms: self.mean_browse.as_millis() as f64,
            browse_step_ms: self.browse_step.as_millis() as f64,
            checkout_share: self.checkout_share,
            mean_service_ms: self.mean_service.as_millis() as f64,
            min_trip_ms: self.min_trip.as_millis() as f64,
            max_trip_ms: self.max_trip.as_millis() as f64,
            id_prefix: self.id_prefix.clone(),
        })
    }
}

impl PluginConfig for ShoppingTripConfig {
    const NAME: &'static str = "shopping_trip";
    const DESCRIPTION: &'static str = "purposeful shoppers: shortest paths to the departments on their list, browsing, checkout lines, exit";
}

impl SourceConfig for ShoppingTripConfig {
    /// The values and whether the store has what a trip needs (departments, a walkable floor);
    /// the path tables are only built by `build`.
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        let params = self.params()?;
        cx.follow_load(&params.arrivals)?;
        Floor::new(&cx.store).map(drop)
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        let params = self.params()?;
        let floor = Floor::new(&cx.store)?.with_crossing(self.department_crossing);
        // Before the signal handlers are installed: SIGTERM/SIGINT end the process meanwhile.
        tracing::info!(
            "shopping_trip: building path tables for {} targets over {} cells",
            floor.departments.len() + floor.checkouts.len() + 1,
            floor.cell_count()
        );
        let started = Instant::now();
        let store = Store::new(floor, params.walking_speed)?;
        tracing::info!(
            "shopping_trip: path tables for {} targets over {} cells built in {:.1} ms ({} KiB)",
            store.floor.departments.len() + store.floor.checkouts.len() + 1,
            store.floor.cell_count(),
            started.elapsed().as_secs_f64() * 1000.0,
            store.fields.bytes() / 1024
        );
        let store = Arc::new(store);
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
        Ok(Box::new(ShoppingTrip {
            params,
            store,
            queue_metrics,
            load,
        }))
    }
}

/// Trips measured to find what one shopper makes (about 1% off at most).
const MEASURED_VISITS: usize = 3_000;

/// Shoppers inside while measuring: few, so checkout lines stay as short as a store that can
/// serve its crowd has them (a store whose checkouts cannot keep up is warned about; its lines,
/// and so its shoppers' figures, grow with the run).
const MEASURING_CROWD: f64 = 8.0;

/// What one shopper of these settings makes on average, measured by running the model (with a
/// fixed seed, so the figures are the config's, not the run's), and the longest walks in and out
/// of this store: the figures the load stages are met with.
fn shopper_rate(
    params: &TripParams,
    store: &Arc<Store>,
    focus: Option<FocusStage>,
) -> Result<ShopperRate, PluginError> {
    let started = Instant::now();
    let mut steady = params.clone();
    steady.average_in_store = MEASURING_CROWD;
    let mut generator = Generator::new(steady, store.clone(), 0x10AD, 0, None, None);
    let measured = measure_shoppers(&mut generator, MEASURED_VISITS, focus).ok_or_else(|| {
        PluginError::config(
            "load: no trip of this store ever ends, so it cannot follow load stages",
        )
    })?;
    tracing::debug!(
        "shopping_trip: measured {} trips in {:.1} ms",
        measured.visits,
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(ShopperRate {
        events_per_second: measured.events_per_second,
        mean_visit_ms: measured.mean_visit_ms,
        walk_in_ms: store.longest_walk_in_ms(),
        walk_out_ms: store.longest_walk_out_ms(),
    })
}

/// The running source: the generator, run ahead of the clock.
struct ShoppingTrip {
    params: TripParams,
    store: Arc<Store>,
    /// The entrance queue's metrics, when `capacity` is set.
    queue_metrics: Option<QueueMetrics>,
    /// The pipeline's load stages and what one shopper makes, when it has stages.
    load: Option<(LoadShare, ShopperRate)>,
}

#[async_trait]
impl Source for ShoppingTrip {
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
            Some((share, rate)) => Some(share.population(
                ShoppingTripConfig::NAME,
                rate,
                fleet,
                origin_ms,
                capacity,
                listed,
            )?),
            None => None,
        };
        let mut stores: Vec<(StoreIndex, Generator)> = Vec::new();
        for store in fleet.local_stores() {
            let mut generator = Generator::with_mean_trip(
                self.params.clone(),
                self.store.clone(),
                fleet.store_seed(cx.seed, store),
                cx.clock.origin_ms(),
                cx.doors_close_ms,
                cx.roster.clone(),
                stores.first().map(|(_, first)| first.mean_trip_ms()),
            )
            .in_store(store, fleet.id_base(store));
            if let Some(plan) = &plan {
                generator = generator.following(plan.clone(), origin_ms);
            }
            if let Some(metrics) = &self.queue_metrics {
                generator = generator.with_queue_metrics(metrics.clone());
            }
            if stores.is_empty() {
                let inside = plan
                    .as_ref()
                    .map_or(self.params.average_in_store, |plan| plan.peak());
                generator.warn_about_overload(inside);
            }
            stores.push((store, generator));
        }
        run_ahead(ShoppingTripConfig::NAME, stores, cx).await
    }
}
