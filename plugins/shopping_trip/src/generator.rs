//! The purposeful shopper, as a synchronous generator of time-ordered events.
//!
//! A shopper's trip is planned on arrival — the departments on its list (how many, which, in what
//! order), how long it browses each and whether it pays — and stored compactly; every step of it is
//! derived when it is due from the distance fields of [`crate::floor`]: the shopper remembers the
//! field it follows, not a path.

use std::collections::VecDeque;
use std::sync::Arc;

use customersim_plugin_api::rand::seq::SliceRandom;
use customersim_plugin_api::rand::{Rng, SeedableRng};
use customersim_plugin_api::{
    Admission, ArrivalProcess, ArrivalRules, Crowd, CustomerId, Event, EventKind, Gate, Generate,
    LoadFollower, PopulationPlan, QueueMetrics, Roster, StoreIndex, arriving_customer, derive_seed,
};
use rand_distr::{Distribution, LogNormal, Poisson};
use rand_pcg::{Pcg32, Pcg64};

use crate::floor::{Cell, Fields, Floor, STRAIGHT};

/// Checked model parameters (from [`crate::ShoppingTripConfig`]).
#[derive(Clone, Debug)]
pub struct TripParams {
    /// Target mean number inside: sets the arrival rate with the mean trip.
    pub average_in_store: f64,
    /// Store units per second: how long a step takes.
    pub walking_speed: f64,
    /// Mean departments per list.
    pub mean_list: f64,
    /// Mean browse time per department.
    pub mean_browse_ms: f64,
    /// Mean gap between browse reports.
    pub browse_step_ms: f64,
    /// Share of trips that end at a checkout.
    pub checkout_share: f64,
    /// Mean checkout service time.
    pub mean_service_ms: f64,
    /// Shortest planned trip.
    pub min_trip_ms: f64,
    /// Longest planned trip.
    pub max_trip_ms: f64,
    /// Text before generated ids.
    pub id_prefix: String,
    /// Opening hours, hourly profile, time zone and capacity.
    pub arrivals: ArrivalRules,
}

/// Most departments on one list; longer draws are cut (the count's tail beyond it is negligible
/// at supermarket means).
pub const MAX_LIST: usize = 8;

/// Spread (sigma of the log) of browse and service times: most stays are within a factor of two
/// of the mean, a few much longer, as dwell times are.
const SPREAD: f64 = 0.6;

/// Browse reports inside a department: at least this many in a row, so the stay is a focus.
pub const MIN_REPORTS: u16 = 3;

/// Shortest time between two browse reports.
const MIN_REPORT_GAP_MS: i64 = 1_000;

/// Trips planned at start-up to estimate the mean trip length (Little's law).
const ESTIMATE_TRIPS: u64 = 4_000;

/// What a shopper does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Enter,
    Move(Cell),
    Exit,
}

/// What a shopper is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Walking along a distance field (a department, a checkout line or the exit).
    Walking,
    /// Browsing the department of the current list entry.
    Browsing,
    /// Standing in a checkout line (or paying at its head).
    InLine,
}

/// How far [`Generator::plan_in_place`] got.
enum Planned {
    /// The next event is planned, due then.
    Due(i64),
    /// The list is done (or the doors closed): [`Generator::after_list`] picks the way out.
    ListDone,
    /// At the checkout's line: [`Generator::join_line`].
    AtLine,
    /// In a checkout line: [`Generator::step_in_line`].
    InLine,
}

/// One shopper inside. Kept small: a million of them must fit in well under 300 MB. The plan is
/// a few indices and counters; the path is re-derived from the fields at every step.
#[derive(Debug)]
pub struct Shopper {
    id: CustomerId,
    /// The shopper's own random stream, so its trip depends on nothing but the seed.
    rng: Pcg32,
    /// How long paying takes, until the shopper is in line; then when it leaves the counter.
    leaves_line_ms: i64,
    /// Gap between browse reports in the department being browsed.
    report_gap_ms: u32,
    at: Cell,
    next: Next,
    /// The distance field being walked along.
    field: u16,
    /// Browse time planned for each list entry, in seconds.
    browse_s: [u16; MAX_LIST],
    /// Browse reports planned in the current department.
    planned: u16,
    /// The departments on the list, in visiting order.
    list: [u8; MAX_LIST],
    list_len: u8,
    /// The current list entry (`list_len` once the list is done).
    leg: u8,
    /// Browse reports made in the current department.
    reported: u16,
    phase: Phase,
    /// Whether the trip ends at a checkout.
    buys: bool,
    /// The checkout chosen (valid once walking to it).
    checkout: u8,
}

/// The store as the generator uses it: the grid, its distance fields and which field is which.
#[derive(Debug)]
pub struct Store {
    /// The walking grid.
    pub floor: Floor,
    /// One distance field per department, checkout line and the exit, in that order.
    pub fields: Fields,
    /// Milliseconds per unit of field distance ([`STRAIGHT`] per cell).
    ms_per_cost: f64,
}

impl Store {
    /// Builds the distance fields: one per department, one per checkout line, one for the exit;
    /// refuses a layout where the entrance cannot reach one of them.
    pub fn new(
        floor: Floor,
        walking_speed: f64,
    ) -> Result<Store, customersim_plugin_api::PluginError> {
        let mut targets: Vec<(&[Cell], Option<usize>)> = floor
            .departments
            .iter()
            .enumerate()
            .map(|(number, d)| (&d.cells[..], Some(number)))
            .collect();
        targets.extend(floor.checkouts.iter().map(|c| (&c.line[..], None)));
        let exit = [floor.exit];
        targets.push((&exit, None));
        let fields = Fields::build(&floor, &targets);
        let store = Store {
            ms_per_cost: f64::from(floor.layout.cell()) * 1000.0
                / walking_speed
                / f64::from(STRAIGHT),
            floor,
            fields,
        };
        let names = store
            .floor
            .departments
            .iter()
            .map(|d| format!("department {:?}", d.name))
            .chain(
                store
                    .floor
                    .checkouts
                    .iter()
                    .map(|c| format!("checkout {:?}", c.name)),
            )
            .chain(["the exit".to_string()]);
        for (field, name) in names.enumerate() {
            if store
                .fields
                .distance(&store.floor, field, store.floor.entrance)
                == crate::floor::UNREACHABLE
            {
                return Err(customersim_plugin_api::PluginError::Config(format!(
                    "store: {name} cannot be reached from the entrance without crossing an obstacle"
                )));
            }
        }
        Ok(store)
    }

    fn checkout_field(&self, checkout: usize) -> usize {
        self.floor.departments.len() + checkout
    }

    fn exit_field(&self) -> usize {
        self.floor.departments.len() + self.floor.checkouts.len()
    }

    /// Walking time of a step of field cost `cost`.
    fn walk_ms(&self, cost: u32) -> i64 {
        ((f64::from(cost) * self.ms_per_cost).round() as i64).max(1)
    }

    /// The longest walk (ms) from the entrance to a department on shopping lists: how long a
    /// shopper who just came in walks (and reports every step) before browsing.
    pub fn longest_walk_in_ms(&self) -> i64 {
        let entrance = self.floor.entrance;
        (0..self.floor.departments.len())
            .filter(|&d| self.floor.departments[d].weight > 0.0)
            .map(|d| self.fields.distance(&self.floor, d, entrance))
            .filter(|&cost| cost != crate::floor::UNREACHABLE)
            .map(|cost| self.walk_ms(cost))
            .max()
            .unwrap_or(0)
    }

    /// The longest walk (ms) from any walkable cell to the exit: how long a shopper sent home
    /// walks out at most.
    pub fn longest_walk_out_ms(&self) -> i64 {
        let exit = self.exit_field();
        let mut longest = 0;
        for row in 0..self.floor.rows {
            for col in 0..self.floor.cols {
                let cell = (col, row);
                if !self.floor.walkable(cell) {
                    continue;
                }
                let cost = self.fields.distance(&self.floor, exit, cell);
                if cost != crate::floor::UNREACHABLE {
                    longest = longest.max(cost);
                }
            }
        }
        self.walk_ms(longest) + self.walk_ms(STRAIGHT)
    }

    /// A cell standing for a department when estimating walking times: its middle cell.
    fn middle(&self, department: usize) -> Cell {
        let cells = &self.floor.departments[department].cells;
        cells[cells.len() / 2]
    }
}

/// A planned trip, before it is stored in a [`Shopper`].
#[derive(Clone, Debug)]
struct Plan {
    list: Vec<u8>,
    browse_ms: Vec<f64>,
    buys: bool,
    /// How long paying takes, when the trip ends at a checkout.
    service_ms: f64,
    /// Walking + browsing + paying (without waiting in line).
    length_ms: f64,
}

/// The customer that leaves a checkout at each time, per checkout (FIFO: sorted).
type Lines = Vec<VecDeque<i64>>;

/// Generates the events of all shoppers in time order, up to a horizon at a time.
pub struct Generator {
    params: TripParams,
    store: Arc<Store>,
    seed: u64,
    /// Arrival times and roster draws come from this stream.
    arrival_rng: Pcg64,
    /// When shoppers arrive (Poisson, maybe shaped by the time of day): one replaceable piece.
    process: ArrivalProcess,
    /// Next arrival, entrance and queue outside, arrivals waiting for a listed customer, visits.
    gate: Gate,
    doors_close_ms: Option<i64>,
    /// The shoppers inside and the agenda of their next events.
    crowd: Crowd<Shopper>,
    /// When each shopper in each checkout's line leaves it.
    lines: Lines,
    /// How many departments beyond the first a list has (Poisson, mean `mean_list` − 1).
    list_count: Option<Poisson<f64>>,
    roster: Option<Arc<dyn Roster>>,
    mean_trip_ms: f64,
    /// Which store of the fleet this is (whose listed customers it draws).
    store_index: StoreIndex,
    /// Added to arrival serials for generated ids, so they are unique across the fleet.
    id_base: u64,
}

impl Generator {
    /// A generator for an empty store at `origin_ms`.
    pub fn new(
        params: TripParams,
        store: Arc<Store>,
        seed: u64,
        origin_ms: i64,
        doors_close_ms: Option<i64>,
        roster: Option<Arc<dyn Roster>>,
    ) -> Generator {
        Generator::with_mean_trip(params, store, seed, origin_ms, doors_close_ms, roster, None)
    }

    /// [`Generator::new`], given the mean trip length another generator of the same params and
    /// store estimated ([`Generator::mean_trip_ms`]; the estimate does not depend on the seed),
    /// so a fleet of stores plans the estimate's trips once.
    pub fn with_mean_trip(
        params: TripParams,
        store: Arc<Store>,
        seed: u64,
        origin_ms: i64,
        doors_close_ms: Option<i64>,
        roster: Option<Arc<dyn Roster>>,
        mean_trip_ms: Option<f64>,
    ) -> Generator {
        let list_count = (params.mean_list > 1.0)
            .then(|| Poisson::new(params.mean_list - 1.0).expect("positive mean"));
        let mut arrival_rng = Pcg64::seed_from_u64(derive_seed(seed, u64::MAX));
        // Nobody arrives until the rate is known (a zero rate draws nothing).
        let process = params.arrivals.process(0.0, origin_ms, &mut arrival_rng);
        let gate = Gate::new(&params.arrivals);
        let mut generator = Generator {
            lines: vec![VecDeque::new(); store.floor.checkouts.len()],
            params,
            store,
            seed,
            arrival_rng,
            process,
            gate,
            doors_close_ms,
            crowd: Crowd::with_capacity(0),
            list_count,
            roster,
            mean_trip_ms: 0.0,
            store_index: 0,
            id_base: 0,
        };
        generator.mean_trip_ms = mean_trip_ms.unwrap_or_else(|| generator.estimate_mean_trip_ms());
        let rate_per_ms = generator.params.average_in_store / generator.mean_trip_ms;
        let rules = &generator.params.arrivals;
        generator.process = rules.process(rate_per_ms, origin_ms, &mut generator.arrival_rng);
        generator.gate.next_arrival_ms = generator.process.next_ms();
        let expected = (generator.params.average_in_store * 1.02 + 64.0) as usize;
        generator.crowd = Crowd::with_capacity(expected);
        generator
    }

    /// Makes this the generator of store `index` of a fleet, whose generated ids are
    /// `id_base + serial` ([`customersim_plugin_api::Fleet::id_base`]).
    pub fn in_store(mut self, index: StoreIndex, id_base: u64) -> Generator {
        self.store_index = index;
        self.id_base = id_base;
        self
    }

    /// Follows load stages: arrivals keep `plan`'s crowd inside (replacing the rate of
    /// `average_in_store`, with the same random stream) and a follower seeded from this
    /// generator's seed steers the crowd along it ([`customersim_plugin_api::load`]).
    pub fn following(mut self, plan: Arc<PopulationPlan>, origin_ms: i64) -> Generator {
        self.arrival_rng = Pcg64::seed_from_u64(derive_seed(self.seed, u64::MAX));
        self.process = ArrivalProcess::planned(plan.clone(), origin_ms, &mut self.arrival_rng);
        self.gate.next_arrival_ms = self.process.next_ms();
        let expected = (plan.peak() * 1.02 + 64.0).min(1e7) as usize;
        self.crowd = Crowd::with_capacity(expected);
        self.gate.load = Some(LoadFollower::new(
            plan,
            origin_ms,
            self.doors_close_ms,
            derive_seed(self.seed, u64::MAX - 1),
        ));
        self
    }

    /// Mean planned trip length (walking, browsing, paying; no waiting in line) over trips
    /// planned with a fixed seed: the visit length of Little's law.
    fn estimate_mean_trip_ms(&self) -> f64 {
        let total: f64 = (0..ESTIMATE_TRIPS)
            .map(|n| {
                let mut rng = Pcg32::seed_from_u64(derive_seed(0x5EED, n));
                self.plan_trip(&mut rng).length_ms
            })
            .sum();
        total / ESTIMATE_TRIPS as f64
    }

    /// Warns when the checkouts cannot serve the shoppers who arrive to pay: their lines would
    /// then grow for as long as the doors are open. `inside`: the crowd to check, the
    /// `average_in_store` or, following load stages, the largest crowd they ask for.
    pub fn warn_about_overload(&self, inside: f64) {
        let checkouts = self.store.floor.checkouts.len() as f64;
        let per_minute = |per_ms: f64| per_ms * 60_000.0;
        let paying = inside / self.mean_trip_ms * self.params.checkout_share;
        let capacity = checkouts / self.params.mean_service_ms;
        if checkouts > 0.0 && paying > 0.0 && paying >= capacity {
            tracing::warn!(
                "shopping_trip: {:.1} shoppers a minute come to pay but {} checkouts serve at most {:.1}: lines will grow; lower {} or mean_service",
                per_minute(paying),
                checkouts,
                per_minute(capacity),
                if self.gate.load.is_some() {
                    "the load stages' events_per_second, checkout_share"
                } else {
                    "average_in_store"
                }
            );
        }
    }

    /// The mean trip length the arrival rate is set from.
    pub fn mean_trip_ms(&self) -> f64 {
        self.mean_trip_ms
    }

    /// How many shoppers are inside now.
    pub fn inside(&self) -> usize {
        self.crowd.inside()
    }

    /// Whether the doors are closed at `at_ms` (`simulation.duration` has passed).
    fn doors_closed_at(&self, at_ms: i64) -> bool {
        self.doors_close_ms.is_some_and(|close| at_ms >= close)
    }

    fn arrive(&mut self, at_ms: i64) {
        if self.doors_closed_at(at_ms) {
            self.gate.next_arrival_ms = None;
            self.gate.waiting = 0;
            self.gate.entrance.turn_away_all();
            return;
        }
        self.process.advance(&mut self.arrival_rng);
        self.gate.next_arrival_ms = self.process.next_ms().map(|next| next.max(at_ms));
        // A shopper who finds the store full waits until it closes (or the doors close for good).
        let gives_up_ms = match (self.process.open_until(at_ms), self.doors_close_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.gate.entrance.arrive(at_ms, gives_up_ms) == Admission::Enter {
            self.admit(at_ms);
        }
    }

    /// Reports the entrance queue to `metrics` (when `capacity` is set).
    pub fn with_queue_metrics(mut self, metrics: QueueMetrics) -> Generator {
        self.gate.report_queue_to(metrics);
        self
    }

    /// The list, browse times and checkout decision of a new trip.
    fn plan_trip(&self, rng: &mut Pcg32) -> Plan {
        let store = &self.store;
        let departments = &store.floor.departments;
        let p = &self.params;
        let extra = self
            .list_count
            .as_ref()
            .map_or(0, |poisson| poisson.sample(rng) as usize);
        let listed = departments.iter().filter(|d| d.weight > 0.0).count();
        let count = (1 + extra).min(MAX_LIST).min(listed);
        let weights: Vec<f64> = departments.iter().map(|d| d.weight).collect();
        // Visit the nearest department next, as a shopper with a list does.
        let mut left = proportional_sample(rng, &weights, count);
        let mut list = Vec::with_capacity(count);
        let mut from = store.floor.entrance;
        let mut walk_cost = 0u64;
        while !left.is_empty() {
            let (at, &next) = left
                .iter()
                .enumerate()
                .min_by_key(|&(_, &d)| store.fields.distance(&store.floor, d, from))
                .expect("not empty");
            walk_cost += u64::from(store.fields.walk_distance(&store.floor, next, from));
            left.swap_remove(at);
            list.push(next as u8);
            from = store.middle(next);
        }
        let buys = !store.floor.checkouts.is_empty() && rng.random_bool(p.checkout_share);
        let mut service_ms = 0.0;
        if buys {
            let near = (0..store.floor.checkouts.len())
                .min_by_key(|&c| {
                    store
                        .fields
                        .distance(&store.floor, store.checkout_field(c), from)
                })
                .expect("a checkout");
            walk_cost += u64::from(store.fields.walk_distance(
                &store.floor,
                store.checkout_field(near),
                from,
            ));
            from = store.floor.checkouts[near].line[0];
            service_ms = lognormal(p.mean_service_ms).sample(rng).round().max(1.0);
        }
        walk_cost += u64::from(
            store
                .fields
                .walk_distance(&store.floor, store.exit_field(), from),
        );
        let walk_ms = walk_cost as f64 * store.ms_per_cost;
        let browse = lognormal(p.mean_browse_ms);
        let mut browse_ms: Vec<f64> = list.iter().map(|_| browse.sample(rng)).collect();
        // Fit the planned trip into [min_trip, max_trip] by scaling the browsing.
        let browsing: f64 = browse_ms.iter().sum();
        let fixed = walk_ms + service_ms;
        let wanted = (fixed + browsing).clamp(p.min_trip_ms, p.max_trip_ms) - fixed;
        let least = list.len() as f64 * (f64::from(MIN_REPORTS) * MIN_REPORT_GAP_MS as f64);
        let scale = wanted.max(least) / browsing;
        for ms in &mut browse_ms {
            *ms *= scale;
        }
        Plan {
            length_ms: fixed + browse_ms.iter().sum::<f64>(),
            list,
            browse_ms,
            buys,
            service_ms,
        }
    }

    /// Lets one shopper in at `at_ms`, or counts a waiting arrival when the roster is all inside.
    fn admit(&mut self, at_ms: i64) {
        if !self.admit_shopper(at_ms, false) {
            // Every listed customer is inside: the place at the entrance is given back and the
            // arrival (with anyone the entrance lets in instead) waits for one to leave.
            self.gate.waiting += 1;
            while self.gate.entrance.leave(at_ms).is_some() {
                self.gate.waiting += 1;
            }
        }
    }

    /// One more shopper in at `at_ms` for the load stages, joining the crowd mid-trip
    /// ([`Generator::admit_shopper`]).
    fn admit_extra(&mut self, at_ms: i64) {
        if self.doors_closed_at(at_ms) || !self.gate.entrance.try_enter() {
            return;
        }
        if !self.admit_shopper(at_ms, true) {
            self.gate.entrance.give_back();
        }
    }

    /// Sends the shopper in `slot` home at once: it drops the rest of its list (and its
    /// purchase) and takes the shortest path to the exit. Not one entering (`false`); one in a
    /// checkout line or on its way to one or to the exit just counts: it leaves soon anyway.
    fn send_home(&mut self, slot: u32, at_ms: i64) -> bool {
        let departments = self.store.floor.departments.len();
        let exit_field = self.store.exit_field() as u16;
        let shopper = self.crowd.get_mut(slot);
        if shopper.next == Next::Enter {
            return false;
        }
        let walking_to_pay_or_out =
            shopper.phase == Phase::Walking && usize::from(shopper.field) >= departments;
        if shopper.phase == Phase::InLine || walking_to_pay_or_out {
            // On its way out already: it counts as sent, so those sent are a fair sample of
            // the crowd and those staying hold as many on their way out as any crowd does.
            return true;
        }
        shopper.leg = shopper.list_len;
        shopper.buys = false;
        shopper.field = exit_field;
        shopper.phase = Phase::Walking;
        let due = self.plan(slot, at_ms);
        self.crowd.reschedule(slot, due);
        true
    }

    /// Lets one shopper in at `at_ms` on a trip of its own; `false` when the roster has nobody
    /// outside. A shopper `joining` a crowd that load stages grow at once is one found inside at
    /// a random moment of its browsing: its list starts at a department picked by browsing
    /// time, with what is left of that stay, and it walks there straight from the entrance. So
    /// shoppers let in together walk on between departments and leave at the pace of a crowd
    /// that was always there, not all after browsing their first department in full.
    fn admit_shopper(&mut self, at_ms: i64, joining: bool) -> bool {
        let serial = self.gate.arrivals + 1;
        let roster = self.roster.as_ref();
        let prefix = &self.params.id_prefix;
        let number = self.id_base + serial;
        let store = self.store_index;
        let Some(id) = arriving_customer(roster, store, &mut self.arrival_rng, number, prefix)
        else {
            return false;
        };
        self.gate.arrivals += 1;
        let mut rng = Pcg32::seed_from_u64(derive_seed(self.seed, self.gate.arrivals));
        let mut plan = self.plan_trip(&mut rng);
        if joining {
            // A trip found going on is more likely a long one: keep a trip with probability
            // its length over the longest (a few tries at most).
            let longest = self.params.max_trip_ms;
            for _ in 0..64 {
                if rng.random::<f64>() * longest.max(plan.length_ms) < plan.length_ms {
                    break;
                }
                plan = self.plan_trip(&mut rng);
            }
            let total: f64 = plan.browse_ms.iter().sum();
            let mut gone = rng.random::<f64>() * total;
            let mut leg = 0;
            while leg + 1 < plan.list.len() && gone >= plan.browse_ms[leg] {
                gone -= plan.browse_ms[leg];
                leg += 1;
            }
            plan.list.drain(..leg);
            plan.browse_ms.drain(..leg);
            plan.browse_ms[0] = (plan.browse_ms[0] - gone).max(0.0);
        }
        tracing::debug!(
            "shopping_trip: {id} plans {}{}",
            plan.list
                .iter()
                .map(|&d| &*self.store.floor.departments[usize::from(d)].name)
                .collect::<Vec<_>>()
                .join(", "),
            if plan.buys { ", then a checkout" } else { "" }
        );
        let mut list = [0u8; MAX_LIST];
        let mut browse_s = [0u16; MAX_LIST];
        for (entry, (&department, &ms)) in plan.list.iter().zip(&plan.browse_ms).enumerate() {
            list[entry] = department;
            browse_s[entry] = (ms / 1000.0).round().clamp(1.0, f64::from(u16::MAX)) as u16;
        }
        let shopper = Shopper {
            id,
            rng,
            leaves_line_ms: plan.service_ms as i64,
            report_gap_ms: 0,
            at: self.store.floor.entrance,
            next: Next::Enter,
            field: u16::from(list[0]),
            browse_s,
            planned: 0,
            list,
            list_len: plan.list.len() as u8,
            leg: 0,
            reported: 0,
            phase: Phase::Walking,
            buys: plan.buys,
            checkout: 0,
        };
        self.crowd.enter(shopper, at_ms);
        true
    }

    /// Emits the shopper's due event and plans the next one; returns how many events it appended
    /// (one).
    fn act(&mut self, slot: u32, at_ms: i64, out: &mut Vec<Event>) -> usize {
        let store = &*self.store;
        let shopper = self.crowd.get_mut(slot);
        let kind = match shopper.next {
            Next::Enter => EventKind::Enter,
            Next::Move(cell) => {
                shopper.at = cell;
                let (x, y) = store.floor.centre(cell);
                EventKind::Move {
                    x: i64::from(x),
                    y: i64::from(y),
                }
            }
            Next::Exit => EventKind::Exit,
        };
        out.push(Event {
            due_ms: at_ms,
            customer: shopper.id.clone(),
            kind,
            store: 0,
            stamp: Default::default(),
        });
        if kind == EventKind::Exit {
            self.leave(slot, at_ms);
        } else {
            let due = self.plan(slot, at_ms);
            self.crowd.schedule(slot, due);
        }
        1
    }

    fn leave(&mut self, slot: u32, at_ms: i64) {
        let id = self.crowd.get_mut(slot).id.clone();
        self.crowd.leave(slot);
        if let Some(roster) = &self.roster {
            roster.release(self.store_index, &id);
        }
        if let Some(enter_ms) = self.gate.entrance.leave(at_ms) {
            // The first one waiting outside comes in.
            self.admit(enter_ms);
        } else if self.gate.waiting > 0 {
            // The longest-waiting arrival comes in now, unless the doors closed or the store
            // closed for the night meanwhile: then nobody waits any more.
            if self.doors_closed_at(at_ms + 1) || !self.process.is_open_at(at_ms + 1) {
                self.gate.waiting = 0;
            } else {
                self.gate.waiting -= 1;
                if self.gate.entrance.arrive(at_ms + 1, None) == Admission::Enter {
                    self.admit(at_ms + 1);
                }
            }
        }
    }

    /// Decides the shopper's next event after one at `at_ms`, returning when it is due.
    fn plan(&mut self, slot: u32, at_ms: i64) -> i64 {
        let closed = self.doors_closed_at(at_ms);
        loop {
            match self.plan_in_place(slot, at_ms, closed) {
                Planned::Due(due) => return due,
                Planned::ListDone => self.after_list(slot, at_ms),
                Planned::AtLine => self.join_line(slot, at_ms),
                Planned::InLine => return self.step_in_line(slot, at_ms),
            }
        }
    }

    /// [`Generator::plan`] as far as the shopper and the store take it: a walking step or a
    /// browse report (nearly every event), or what the trip needs next from the rest of the
    /// generator. It borrows the store instead of holding a counted reference to it, which
    /// cost two atomic operations a step.
    fn plan_in_place(&mut self, slot: u32, at_ms: i64, closed: bool) -> Planned {
        let store = &*self.store;
        let browse_step_ms = self.params.browse_step_ms;
        let shopper = self.crowd.get_mut(slot);
        loop {
            match shopper.phase {
                Phase::Walking => {
                    let field = usize::from(shopper.field);
                    let departments = store.floor.departments.len();
                    if closed && field < departments {
                        // The doors closed on the way to a department: skip the rest of the list.
                        shopper.leg = shopper.list_len;
                        return Planned::ListDone;
                    }
                    if let Some((cell, cost)) = store.fields.step(&store.floor, field, shopper.at) {
                        shopper.next = Next::Move(cell);
                        return Planned::Due(at_ms + store.walk_ms(cost));
                    }
                    if field < departments {
                        // Arrived: browse for the planned time in at least MIN_REPORTS reports.
                        let browse_ms =
                            f64::from(shopper.browse_s[usize::from(shopper.leg)]) * 1000.0;
                        let count = (browse_ms / browse_step_ms).round();
                        let count = count.clamp(f64::from(MIN_REPORTS), f64::from(u16::MAX));
                        shopper.planned = count as u16;
                        shopper.report_gap_ms = (browse_ms / count) as u32;
                        shopper.phase = Phase::Browsing;
                        shopper.reported = 0;
                    } else if field == store.exit_field() {
                        shopper.next = Next::Exit;
                        return Planned::Due(at_ms + store.walk_ms(STRAIGHT));
                    } else {
                        return Planned::AtLine;
                    }
                }
                Phase::Browsing => {
                    let leg = usize::from(shopper.leg);
                    let planned = shopper.planned;
                    let done =
                        shopper.reported >= planned || (closed && shopper.reported >= MIN_REPORTS);
                    if !done {
                        shopper.reported += 1;
                        let department = usize::from(shopper.list[leg]);
                        shopper.next = Next::Move(browse_step(
                            &store.floor,
                            &mut shopper.rng,
                            shopper.at,
                            department,
                        ));
                        let gap = i64::from(shopper.report_gap_ms);
                        let jitter = shopper.rng.random_range(gap / 2..=gap + gap / 2);
                        return Planned::Due(at_ms + jitter.max(MIN_REPORT_GAP_MS));
                    }
                    shopper.leg += 1;
                    if usize::from(shopper.leg) < usize::from(shopper.list_len) && !closed {
                        let next = usize::from(shopper.list[usize::from(shopper.leg)]);
                        shopper.field = next as u16;
                        shopper.phase = Phase::Walking;
                        continue;
                    }
                    return Planned::ListDone;
                }
                Phase::InLine => return Planned::InLine,
            }
        }
    }

    /// The list is done (or the doors closed): on to the least busy checkout, or out.
    fn after_list(&mut self, slot: u32, at_ms: i64) {
        let store = Arc::clone(&self.store);
        let shopper = self.crowd.get(slot);
        let field = if shopper.buys {
            let at = shopper.at;
            let lines = &mut self.lines;
            let checkout = (0..lines.len())
                .min_by_key(|&c| {
                    let line = &mut lines[c];
                    while line.front().is_some_and(|&leaves| leaves <= at_ms) {
                        line.pop_front();
                    }
                    let distance = store
                        .fields
                        .distance(&store.floor, store.checkout_field(c), at);
                    (line.len(), distance, c)
                })
                .expect("buys only with checkouts");
            self.crowd.get_mut(slot).checkout = checkout as u8;
            store.checkout_field(checkout)
        } else {
            store.exit_field()
        };
        let shopper = self.crowd.get_mut(slot);
        shopper.field = field as u16;
        shopper.phase = Phase::Walking;
    }

    /// The shopper reached its checkout's line: it queues behind everyone there (FIFO) and
    /// leaves the counter after its own service.
    fn join_line(&mut self, slot: u32, at_ms: i64) {
        let shopper = self.crowd.get_mut(slot);
        let line = &mut self.lines[usize::from(shopper.checkout)];
        while line.front().is_some_and(|&leaves| leaves <= at_ms) {
            line.pop_front();
        }
        let service = shopper.leaves_line_ms;
        let starts = line.back().map_or(at_ms, |&last| last.max(at_ms));
        let leaves = starts + service.max(1);
        line.push_back(leaves);
        shopper.leaves_line_ms = leaves;
        shopper.phase = Phase::InLine;
    }

    /// In line: step toward the place matching the number of shoppers ahead, wait for the next
    /// one ahead to leave, or leave the counter after paying.
    fn step_in_line(&mut self, slot: u32, at_ms: i64) -> i64 {
        let store = Arc::clone(&self.store);
        let shopper = self.crowd.get_mut(slot);
        let checkout = usize::from(shopper.checkout);
        let places = &store.floor.checkouts[checkout].line;
        let line = &mut self.lines[checkout];
        while line.front().is_some_and(|&leaves| leaves <= at_ms) {
            line.pop_front();
        }
        let mine = shopper.leaves_line_ms;
        if mine <= at_ms {
            // Paid: walk to the exit.
            shopper.phase = Phase::Walking;
            shopper.field = store.exit_field() as u16;
            return self.plan(slot, at_ms);
        }
        let ahead = line.partition_point(|&leaves| leaves < mine);
        let place = ahead.min(places.len() - 1);
        let here = places
            .iter()
            .position(|&c| c == shopper.at)
            .unwrap_or(place);
        let step = store.walk_ms(STRAIGHT);
        if here != place {
            let to = if here > place { here - 1 } else { here + 1 };
            shopper.next = Next::Move(places[to]);
            return at_ms + step;
        }
        // At its place: the next change is when the shopper at the head (ahead == 0: this one)
        // leaves, or when enough leave ahead for this one to move up a place.
        if ahead == 0 {
            shopper.phase = Phase::Walking;
            shopper.field = store.exit_field() as u16;
            match store
                .fields
                .step(&store.floor, store.exit_field(), shopper.at)
            {
                Some((cell, _)) => {
                    shopper.next = Next::Move(cell);
                    mine
                }
                None => {
                    shopper.next = Next::Exit;
                    mine
                }
            }
        } else {
            let moves_up_at = line[ahead - place];
            shopper.next = Next::Move(places[place - 1]);
            moves_up_at + step
        }
    }
}

impl Generate for Generator {
    type Shopper = Shopper;

    fn crowd(&self) -> &Crowd<Shopper> {
        &self.crowd
    }

    fn crowd_mut(&mut self) -> &mut Crowd<Shopper> {
        &mut self.crowd
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn gate_mut(&mut self) -> &mut Gate {
        &mut self.gate
    }

    fn arrive(&mut self, at_ms: i64) {
        Generator::arrive(self, at_ms);
    }

    fn admit_extra(&mut self, at_ms: i64) {
        Generator::admit_extra(self, at_ms);
    }

    fn send_home(&mut self, slot: u32, at_ms: i64) -> bool {
        Generator::send_home(self, slot, at_ms)
    }

    fn act(&mut self, slot: u32, due_ms: i64, out: &mut Vec<Event>) -> usize {
        Generator::act(self, slot, due_ms, out)
    }
}

/// Draws `count` distinct indices with inclusion probabilities proportional to `weights`
/// (Madow's systematic sampling in a random order): each index is on a list with probability
/// `count × weight / total`, so each department's share of all visits is its share of the weights
/// whatever the list lengths. Indices whose probability would exceed 1 are taken for sure and the
/// rest drawn among the others.
fn proportional_sample(rng: &mut Pcg32, weights: &[f64], count: usize) -> Vec<usize> {
    let mut taken = Vec::with_capacity(count);
    let mut open: Vec<usize> = (0..weights.len()).collect();
    loop {
        let wanted = count - taken.len();
        if wanted == 0 {
            return taken;
        }
        let total: f64 = open.iter().map(|&i| weights[i]).sum();
        let before = taken.len();
        open.retain(|&i| {
            let sure = wanted as f64 * weights[i] >= total;
            if sure {
                taken.push(i);
            }
            !sure
        });
        if taken.len() == before {
            break;
        }
        taken.truncate(count);
    }
    let wanted = count - taken.len();
    let total: f64 = open.iter().map(|&i| weights[i]).sum();
    open.shuffle(rng);
    let start: f64 = rng.random();
    let mut cumulative = 0.0;
    let mut next_point = start;
    for &i in &open {
        cumulative += wanted as f64 * weights[i] / total;
        if cumulative > next_point && taken.len() < count {
            taken.push(i);
            next_point += 1.0;
        }
    }
    taken
}

/// A log-normal distribution with the given mean and [`SPREAD`].
fn lognormal(mean: f64) -> LogNormal<f64> {
    LogNormal::new(mean.ln() - SPREAD * SPREAD / 2.0, SPREAD).expect("finite parameters")
}

/// A browse move: a random neighbouring cell of the same department, or the same cell in a
/// department of one cell.
fn browse_step(floor: &Floor, rng: &mut Pcg32, at: Cell, department: usize) -> Cell {
    let steps = floor.browse_steps(at, department);
    match steps.count_open() {
        0 => at,
        count => {
            let (col, row) = steps
                .nth_open(rng.random_range(0..count))
                .expect("fewer than count");
            (col as u16, row as u16)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use customersim_plugin_api::StoreLayout;
    use customersim_plugin_api::layout::LayoutSpec;
    use std::collections::HashMap;

    /// The demo store of `configs/retail-demo.yaml`.
    pub(crate) fn demo_floor() -> Floor {
        use serde_yaml::{self, Value};
        let doc: Value =
            serde_yaml::from_str(include_str!("../../../configs/retail-demo.yaml")).unwrap();
        let store = &doc["store"];
        let number = |key: &str| store[key].as_u64().unwrap() as u32;
        let point = |key: &str| {
            let xy: Vec<u32> = serde_yaml::from_value(store[key].clone()).unwrap();
            (xy[0], xy[1])
        };
        let layout = StoreLayout::new(LayoutSpec {
            width: number("width"),
            height: number("height"),
            cell: number("cell"),
            entrance: point("entrance"),
            exit: point("exit"),
            zones: serde_yaml::from_value(store["zones"].clone()).unwrap(),
        })
        .unwrap();
        Floor::new(&layout).unwrap()
    }

    pub(crate) fn params(target: f64) -> TripParams {
        crate::ShoppingTripConfig {
            average_in_store: target,
            ..Default::default()
        }
        .params()
        .unwrap()
    }

    pub(crate) fn demo_store() -> Arc<Store> {
        Arc::new(Store::new(demo_floor(), params(1.0).walking_speed).unwrap())
    }

    const HOUR_MS: i64 = 3_600_000;

    /// A shopper's stays in a row: (department, reports in a row), `usize::MAX` outside.
    type Runs = Vec<(usize, u32)>;

    fn run(store: &Arc<Store>, p: TripParams, seed: u64, close_ms: i64) -> Vec<Event> {
        let mut generator = Generator::new(p, store.clone(), seed, 0, Some(close_ms), None);
        let mut out = Vec::new();
        let mut horizon = 0;
        while !generator.is_finished() {
            horizon += 60_000;
            generator.generate(horizon, &mut out, usize::MAX);
        }
        out
    }

    /// The cell a published position stands for.
    fn cell(floor: &Floor, x: i64, y: i64) -> Cell {
        floor.cell_of(x as u32, y as u32).unwrap()
    }

    #[test]
    fn trips_obey_the_store_rules_and_browse_their_lists() {
        let store = demo_store();
        let floor = &store.floor;
        let seed = 5;
        let generator = Generator::new(params(40.0), store.clone(), seed, 0, None, None);
        let close_ms = 8 * HOUR_MS;
        let events = run(&store, params(40.0), seed, close_ms);
        // Per shopper: position and the department runs seen (department, reports in a row).
        let mut inside: HashMap<CustomerId, (Option<Cell>, Runs)> = HashMap::new();
        let mut last = i64::MIN;
        let mut trips = 0;
        for event in &events {
            assert!(event.due_ms >= last, "time order");
            last = event.due_ms;
            match event.kind {
                EventKind::Enter => {
                    assert!(
                        inside
                            .insert(event.customer.clone(), (None, Vec::new()))
                            .is_none()
                    );
                }
                EventKind::Move { x, y } => {
                    assert!((0..1808).contains(&x) && (0..1315).contains(&y));
                    let to = cell(floor, x, y);
                    assert_eq!(floor.centre(to), (x as u32, y as u32), "cell centres");
                    assert!(floor.walkable(to), "never in an obstacle: {x},{y}");
                    let (at, runs) = inside.get_mut(&event.customer).expect("inside");
                    let from = at.unwrap_or(floor.entrance);
                    assert!(
                        from.0.abs_diff(to.0) <= 1 && from.1.abs_diff(to.1) <= 1,
                        "one cell at a time: {from:?} -> {to:?}"
                    );
                    *at = Some(to);
                    match (floor.department_of(to), runs.last_mut()) {
                        (Some(d), Some((run_d, count))) if *run_d == d => *count += 1,
                        (Some(d), _) => runs.push((d, 1)),
                        (None, _) => runs.push((usize::MAX, 0)),
                    }
                }
                EventKind::Focus { .. } => panic!("no focus events unless asked for"),
                EventKind::Exit => {
                    let (at, runs) = inside.remove(&event.customer).expect("inside");
                    assert_eq!(at, Some(floor.exit), "leaves from the exit");
                    trips += 1;
                    if event.due_ms >= close_ms {
                        continue; // the doors closed on this trip: the rest of its list is skipped
                    }
                    let CustomerId::Number(n) = event.customer else {
                        panic!("generated ids are numbers")
                    };
                    let mut rng = Pcg32::seed_from_u64(derive_seed(seed, n));
                    let plan = generator.plan_trip(&mut rng);
                    for department in plan.list {
                        assert!(
                            runs.iter()
                                .any(|&(d, count)| d == usize::from(department) && count >= 3),
                            "customer {n} browsed {department} with 3 reports in a row: {runs:?}"
                        );
                    }
                }
            }
        }
        assert!(inside.is_empty(), "everyone left");
        assert!(trips > 500, "{trips} trips");
    }

    #[test]
    fn lists_follow_the_department_weights() {
        let store = demo_store();
        let generator = Generator::new(params(1.0), store.clone(), 1, 0, None, None);
        let weights: Vec<f64> = store.floor.departments.iter().map(|d| d.weight).collect();
        let total_weight: f64 = weights.iter().sum();
        let mut visits = vec![0u32; weights.len()];
        let mut lengths = 0;
        for n in 0..10_000 {
            let plan = generator.plan_trip(&mut Pcg32::seed_from_u64(n));
            lengths += plan.list.len();
            for d in plan.list {
                visits[usize::from(d)] += 1;
            }
        }
        let mean = lengths as f64 / 10_000.0;
        assert!((mean - 1.4).abs() < 0.05, "mean list {mean}");
        let total: u32 = visits.iter().sum();
        for (d, &count) in visits.iter().enumerate() {
            let share = f64::from(count) / f64::from(total);
            let expected = weights[d] / total_weight;
            // Within ±5% of the weight share where 10,000 trips give hundreds of visits (the
            // five coupon departments), within half a percentage point for the small rooms.
            let close = if expected >= 0.1 {
                (share / expected - 1.0).abs() < 0.05
            } else {
                (share - expected).abs() < 0.005
            };
            assert!(
                close,
                "department {d}: share {share:.3}, weight share {expected:.3}"
            );
        }
    }

    #[test]
    fn trips_last_5_to_40_minutes_with_a_median_near_20() {
        let store = demo_store();
        let close_ms = 300 * HOUR_MS;
        let events = run(&store, params(10.0), 9, close_ms);
        let mut entered = HashMap::new();
        let mut lengths = Vec::new();
        for event in &events {
            match event.kind {
                EventKind::Enter => {
                    entered.insert(event.customer.clone(), event.due_ms);
                }
                // Trips the closing doors cut short are left out.
                EventKind::Exit if event.due_ms < close_ms => {
                    lengths.push(event.due_ms - entered[&event.customer])
                }
                EventKind::Exit => {}
                EventKind::Move { .. } | EventKind::Focus { .. } => {}
            }
        }
        lengths.sort_unstable();
        let minutes = |ms: i64| ms as f64 / 60_000.0;
        let median = minutes(lengths[lengths.len() / 2]);
        assert!(lengths.len() > 5_000, "{} trips", lengths.len());
        assert!((18.0..=22.0).contains(&median), "median {median:.1} min");
        let within = lengths
            .iter()
            .filter(|&&ms| (5.0..=40.0).contains(&minutes(ms)))
            .count();
        assert!(
            minutes(lengths[0]) >= 5.0,
            "shortest {:.1} min",
            minutes(lengths[0])
        );
        // Planned trips are 6–36 minutes; waiting in line comes on top.
        assert!(
            within as f64 >= 0.99 * lengths.len() as f64,
            "{within} of {} trips within 5–40 minutes",
            lengths.len()
        );
    }

    #[test]
    fn occupancy_meets_the_target() {
        let store = demo_store();
        for target in [5.0, 20.0] {
            let mut generator = Generator::new(params(target), store.clone(), 3, 0, None, None);
            let (mut out, mut area, mut inside, mut last) = (Vec::new(), 0.0, 0i64, 0i64);
            let end = 48 * HOUR_MS;
            let mut horizon = 0;
            while horizon < end {
                horizon += 60_000;
                out.clear();
                generator.generate(horizon, &mut out, usize::MAX);
                for event in &out {
                    area += (inside * (event.due_ms - last)) as f64;
                    last = event.due_ms;
                    match event.kind {
                        EventKind::Enter => inside += 1,
                        EventKind::Exit => inside -= 1,
                        EventKind::Move { .. } | EventKind::Focus { .. } => {}
                    }
                }
            }
            // Skip nothing: the store starts empty, so allow for the first trip's fill-up.
            let mean = area / last as f64;
            assert!(
                (mean / target - 1.0).abs() < 0.12,
                "target {target}: mean {mean:.1}"
            );
        }
    }

    #[test]
    fn same_seed_same_events_in_any_chunks() {
        let store = demo_store();
        let whole = run(&store, params(30.0), 4, 2 * HOUR_MS);
        assert_eq!(whole, run(&store, params(30.0), 4, 2 * HOUR_MS));
        assert_ne!(whole, run(&store, params(30.0), 5, 2 * HOUR_MS));
        let mut generator =
            Generator::new(params(30.0), store.clone(), 4, 0, Some(2 * HOUR_MS), None);
        let mut pieces = Vec::new();
        let mut horizon = 0;
        while !generator.is_finished() {
            horizon = generator.generate(horizon + 100_000, &mut pieces, 7);
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn a_shopper_plan_stays_small() {
        assert!(
            std::mem::size_of::<Shopper>() <= 96,
            "{} bytes",
            std::mem::size_of::<Shopper>()
        );
    }
}

#[cfg(test)]
mod line_tests {
    use super::tests::params;
    use super::*;
    use customersim_plugin_api::StoreLayout;
    use customersim_plugin_api::layout::{LayoutSpec, Zone, ZoneKind};
    use std::collections::HashMap;

    /// 20 × 20 cells of 10 units: a department along the bottom, one checkout in the middle of
    /// the top wall (its line runs down column 9), the doors in the top corners.
    fn store() -> Arc<Store> {
        let zone = |name: &str, kind, area| Zone {
            name: name.into(),
            kind,
            area,
            weight: 1.0,
            focus: true,
        };
        let layout = StoreLayout::new(LayoutSpec {
            width: 200,
            height: 200,
            cell: 10,
            entrance: (5, 5),
            exit: (195, 5),
            zones: vec![
                zone("Hall", ZoneKind::Department, [0, 150, 199, 199]),
                zone("Till", ZoneKind::Checkout, [90, 0, 109, 9]),
            ],
        })
        .unwrap();
        Arc::new(Store::new(Floor::new(&layout).unwrap(), 40.0).unwrap())
    }

    #[test]
    fn a_checkout_line_is_first_come_first_served() {
        let store = store();
        let line: Vec<(i64, i64)> = store.floor.checkouts[0]
            .line
            .iter()
            .map(|&c| {
                let (x, y) = store.floor.centre(c);
                (i64::from(x), i64::from(y))
            })
            .collect();
        assert_eq!(line.len(), 15, "from the till down to the department");
        let mut p = params(4.0);
        p.checkout_share = 1.0;
        p.mean_browse_ms = 60_000.0;
        p.min_trip_ms = 60_000.0;
        p.mean_service_ms = 150_000.0;
        let mut generator = Generator::new(p, store.clone(), 2, 0, Some(6 * 3_600_000), None);
        let (mut events, mut horizon) = (Vec::new(), 0);
        while !generator.is_finished() {
            horizon += 60_000;
            generator.generate(horizon, &mut events, usize::MAX);
        }
        // Per shopper: when it first stood in the line, and when it left the counter.
        let mut joined: HashMap<CustomerId, i64> = HashMap::new();
        let mut paying: HashMap<CustomerId, bool> = HashMap::new();
        let mut done = Vec::new();
        let mut longest_line = 0;
        let mut in_line: HashMap<CustomerId, (i64, i64)> = HashMap::new();
        for event in &events {
            let EventKind::Move { x, y } = event.kind else {
                continue;
            };
            let id = &event.customer;
            if line.contains(&(x, y)) {
                joined.entry(id.clone()).or_insert(event.due_ms);
                in_line.insert(id.clone(), (x, y));
                paying.insert(id.clone(), (x, y) == line[0]);
            } else if paying.remove(id) == Some(true) {
                in_line.remove(id);
                done.push((joined[id], event.due_ms));
            }
            longest_line = longest_line.max(in_line.len());
        }
        assert!(done.len() > 50, "{} paid", done.len());
        assert!(
            longest_line >= 5,
            "lines formed: at most {longest_line} in line"
        );
        done.sort_unstable();
        for pair in done.windows(2) {
            assert!(
                pair[0].1 < pair[1].1,
                "served in the order they joined: {pair:?}"
            );
        }
    }
}
