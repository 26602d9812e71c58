//! The shopper model, as a synchronous generator of time-ordered events.

use std::sync::Arc;

use customersim_plugin_api::rand::{Rng, SeedableRng};
use customersim_plugin_api::{
    Admission, ArrivalProcess, ArrivalRules, Crowd, CustomerId, DistanceField, Event, EventKind,
    Gate, Generate, LoadFollower, PopulationPlan, QueueMetrics, Roster, StoreIndex, StoreLayout,
    arriving_customer, derive_seed,
};
use rand_distr::{Distribution, Exp, StandardNormal};
use rand_pcg::{Pcg32, Pcg64};

/// Checked model parameters (from [`crate::RandomWalkConfig`]).
#[derive(Clone, Debug)]
pub struct WalkParams {
    pub average_in_store: f64,
    pub mean_visit_ms: f64,
    pub min_visit_ms: f64,
    pub mean_dwell_ms: f64,
    pub walk_step_ms: i64,
    pub id_prefix: String,
    /// Time of day and capacity.
    pub arrivals: ArrivalRules,
}

/// Shortest time between two events of one shopper.
const MIN_STEP_MS: i64 = 500;

/// How a shopper's visit length is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Visit {
    /// A new visit: `min_visit` plus an exponential part.
    Fresh,
    /// One joining a crowd that load stages grow at once, as a shopper found inside at a random
    /// moment: a visit length drawn as a crowd's are (long visits are more often found going
    /// on), split at a random point into the part gone (the shopper walks in to where that
    /// part would have taken it) and the part left. So shoppers let in together leave at the
    /// pace of a crowd that was always there and walk home from as far as such a crowd does.
    Joining,
}

/// What a shopper does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Enter,
    Move(u16, u16),
    Exit,
}

/// Where a shopper is headed besides its next cell: one field, not a flag beside an optional
/// target, so a shopper takes 64 bytes instead of 72.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Heading {
    /// Strolling from cell to cell until the visit is up.
    Strolling,
    /// A shopper joining a crowd that load stages grow at once walks straight to where its
    /// visit so far would have taken it, then strolls on.
    WalkingInTo(u16, u16),
    /// Walking to the door: the visit is up or the doors closed.
    Homing,
}

/// One shopper inside (or about to enter). Kept small: a million of them must fit in ~100 MB.
#[derive(Debug)]
pub struct Shopper {
    id: CustomerId,
    /// The shopper's own random stream, so its path depends on nothing but the seed.
    rng: Pcg32,
    /// When the visit ends: the exit is due then.
    visit_end_ms: i64,
    /// This shopper's mean time per cell.
    dwell_ms: f32,
    /// Spread of single dwells around the mean (sigma of a log-normal): the shopper's consistency.
    spread: f32,
    /// The cell of the walking grid the shopper stands on (published as its centre).
    x: u16,
    y: u16,
    next: Next,
    heading: Heading,
}

/// Generates the events of all shoppers in time order, up to a horizon at a time.
pub struct Generator {
    params: WalkParams,
    store: StoreLayout,
    /// Steps from every cell to the exit, built once: walking home is a lookup per step.
    home: DistanceField,
    seed: u64,
    /// Arrival times and roster draws come from this stream.
    arrival_rng: Pcg64,
    /// When shoppers arrive.
    arrival_times: ArrivalProcess,
    /// Next arrival, entrance and queue outside, arrivals waiting for a listed customer, visits.
    gate: Gate,
    doors_close_ms: Option<i64>,
    /// The shoppers inside and the agenda of their next events.
    crowd: Crowd<Shopper>,
    roster: Option<Arc<dyn Roster>>,
    /// Which store of the fleet this is (whose listed customers it draws).
    store_index: StoreIndex,
    /// Added to arrival serials for generated ids, so they are unique across the fleet.
    id_base: u64,
}

impl Generator {
    /// A generator for an empty store at `origin_ms`.
    pub fn new(
        params: WalkParams,
        store: StoreLayout,
        seed: u64,
        origin_ms: i64,
        doors_close_ms: Option<i64>,
        roster: Option<Arc<dyn Roster>>,
    ) -> Generator {
        // Little's law: this rate keeps `average_in_store` inside on average (while open).
        let rate_per_ms = params.average_in_store / params.mean_visit_ms;
        let mut arrival_rng = Pcg64::seed_from_u64(derive_seed(seed, u64::MAX));
        let arrival_times = params
            .arrivals
            .process(rate_per_ms, origin_ms, &mut arrival_rng);
        let mut gate = Gate::new(&params.arrivals);
        gate.next_arrival_ms = arrival_times.next_ms();
        let expected = (params.average_in_store * 1.02 + 64.0) as usize;
        let home = store.distances_to(store.exit_cell());
        Generator {
            params,
            store,
            home,
            seed,
            arrival_rng,
            arrival_times,
            gate,
            doors_close_ms,
            crowd: Crowd::with_capacity(expected),
            roster,
            store_index: 0,
            id_base: 0,
        }
    }

    /// Makes this the generator of store `index` of a fleet, whose generated ids are
    /// `id_base + serial` ([`customersim_plugin_api::Fleet::id_base`]).
    pub fn in_store(mut self, index: StoreIndex, id_base: u64) -> Generator {
        self.store_index = index;
        self.id_base = id_base;
        self
    }

    /// How many shoppers are inside (or entering) now.
    pub fn inside(&self) -> usize {
        self.crowd.inside()
    }

    /// Reports the entrance queue to these metrics from now on.
    pub fn report_queue_to(&mut self, metrics: QueueMetrics) {
        self.gate.report_queue_to(metrics);
    }

    /// Whether the doors are closed at `at_ms` (`simulation.duration` has passed).
    fn doors_closed_at(&self, at_ms: i64) -> bool {
        self.doors_close_ms.is_some_and(|close| at_ms >= close)
    }

    /// Follows load stages: arrivals keep `plan`'s crowd inside (replacing the steady rate of
    /// `average_in_store`, with the same random stream) and a follower seeded from this
    /// generator's seed steers the crowd along it ([`customersim_plugin_api::load`]).
    pub fn following(mut self, plan: Arc<PopulationPlan>, origin_ms: i64) -> Generator {
        self.arrival_rng = Pcg64::seed_from_u64(derive_seed(self.seed, u64::MAX));
        self.arrival_times =
            ArrivalProcess::planned(plan.clone(), origin_ms, &mut self.arrival_rng);
        self.gate.next_arrival_ms = self.arrival_times.next_ms();
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

    /// The longest walk in (ms) of a shopper joining a crowd: to the walkable cell farthest from
    /// the entrance (in king's moves), at `walk_step` a cell.
    pub fn longest_walk_in_ms(&self) -> i64 {
        let (door_x, door_y) = self.store.entrance_cell();
        let mut farthest = 0;
        for row in 0..self.store.rows() {
            for col in 0..self.store.cols() {
                if self.store.walkable(col, row) {
                    farthest = farthest.max(col.abs_diff(door_x).max(row.abs_diff(door_y)));
                }
            }
        }
        i64::from(farthest) * self.params.walk_step_ms
    }

    /// The longest walk home (ms) of a shopper sent home: from the farthest walkable cell, at
    /// `walk_step` a cell, out of the door.
    pub fn longest_walk_home_ms(&self) -> i64 {
        let mut farthest = 0;
        for row in 0..self.store.rows() {
            for col in 0..self.store.cols() {
                if let Some(steps) = self.home.steps(col, row) {
                    farthest = farthest.max(steps);
                }
            }
        }
        (i64::from(farthest) + 1) * self.params.walk_step_ms
    }

    fn arrive(&mut self, at_ms: i64) {
        if self.doors_closed_at(at_ms) {
            self.gate.next_arrival_ms = None;
            self.gate.waiting = 0;
            self.gate.entrance.turn_away_all();
            return;
        }
        self.arrival_times.advance(&mut self.arrival_rng);
        self.gate.next_arrival_ms = self.arrival_times.next_ms();
        // One who has to queue goes home when the store closes before a place frees up (only
        // looked up when there is a queue: it walks the day's hours).
        let closing_ms = self
            .params
            .arrivals
            .capacity
            .and_then(|_| self.arrival_times.open_until(at_ms));
        let gives_up_ms = match (closing_ms, self.doors_close_ms) {
            (Some(closing), Some(doors)) => Some(closing.min(doors)),
            (closing, doors) => closing.or(doors),
        };
        if self.gate.entrance.arrive(at_ms, gives_up_ms) == Admission::Enter {
            self.admit(at_ms);
        }
    }

    /// Lets one shopper in at `at_ms`, or counts a waiting arrival when the roster is all inside.
    fn admit(&mut self, at_ms: i64) {
        if !self.admit_as(at_ms, Visit::Fresh) {
            self.gate.waiting += 1;
        }
    }

    /// Lets one shopper in at `at_ms` with a visit drawn as `visit`; `false` when the roster has
    /// nobody outside.
    fn admit_as(&mut self, at_ms: i64, visit: Visit) -> bool {
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
        let arrival = self.gate.arrivals;
        let mut rng = Pcg32::seed_from_u64(derive_seed(self.seed, arrival));
        let p = &self.params;
        let exponential = Exp::new(1.0 / (p.mean_visit_ms - p.min_visit_ms)).expect("positive");
        let (gone_ms, mut visit_ms) = match visit {
            Visit::Fresh => (0.0, (p.min_visit_ms + exponential.sample(&mut rng)) as i64),
            Visit::Joining => {
                // A visit found going on is length-biased: min_visit plus an exponential part
                // with probability min_visit / mean_visit, plus two of them otherwise.
                let mut length = p.min_visit_ms + exponential.sample(&mut rng);
                if !rng.random_bool(p.min_visit_ms / p.mean_visit_ms) {
                    length += exponential.sample(&mut rng);
                }
                let gone = length * rng.random::<f64>();
                (gone, ((length - gone) as i64).max(2 * p.walk_step_ms))
            }
        };
        let dwell_ms = (p.mean_dwell_ms * rng.random_range(0.5..1.5)) as f32;
        let spread = rng.random_range(0.2..0.8) as f32;
        let (door_x, door_y) = self.store.entrance_cell();
        let door = (door_x as u16, door_y as u16);
        let mut heading = Heading::Strolling;
        if gone_ms > 0.0 {
            // Where the visit so far would have taken the shopper: as many strolling steps from
            // the door (at most a thousand: far beyond where a walk forgets its start).
            let steps = (gone_ms / f64::from(dwell_ms)).round().min(1000.0) as usize;
            let mut at = door;
            for _ in 0..steps {
                if let Some(next) = random_neighbour(&mut rng, &self.store, at.0, at.1) {
                    at = next;
                }
            }
            let distance = i64::from(at.0.abs_diff(door.0).max(at.1.abs_diff(door.1)));
            visit_ms += distance * p.walk_step_ms;
            if at != door {
                heading = Heading::WalkingInTo(at.0, at.1);
            }
        }
        let shopper = Shopper {
            id,
            rng,
            visit_end_ms: at_ms + visit_ms,
            dwell_ms,
            spread,
            x: door_x as u16,
            y: door_y as u16,
            next: Next::Enter,
            heading,
        };
        self.crowd.enter(shopper, at_ms);
        true
    }

    /// One more shopper in at `at_ms` for the load stages, joining a crowd mid-visit.
    fn admit_extra(&mut self, at_ms: i64) {
        if self.doors_closed_at(at_ms) || !self.gate.entrance.try_enter() {
            return;
        }
        if !self.admit_as(at_ms, Visit::Joining) {
            self.gate.entrance.give_back();
        }
    }

    /// Sends the shopper in `slot` home at once: it walks out at `walk_step` a cell, as at
    /// closing time. Not one entering (`false`); one already walking home just counts.
    fn send_home(&mut self, slot: u32, at_ms: i64) -> bool {
        let walk_step = self.params.walk_step_ms;
        let home = &self.home;
        let shopper = self.crowd.get_mut(slot);
        if shopper.next == Next::Enter {
            return false;
        }
        if shopper.heading == Heading::Homing {
            // On its way out already: it counts as sent, so those sent are a fair sample of
            // the crowd and those staying hold as many on their way out as any crowd does.
            return true;
        }
        let steps = home
            .steps(shopper.x.into(), shopper.y.into())
            .unwrap_or_default();
        shopper.heading = Heading::Homing;
        shopper.visit_end_ms = at_ms + (i64::from(steps) + 1) * walk_step;
        let due = self.plan(slot, at_ms);
        self.crowd.reschedule(slot, due);
        true
    }

    /// Emits the shopper's due event and plans the next one; returns how many events it appended
    /// (one).
    fn act(&mut self, slot: u32, at_ms: i64, out: &mut Vec<Event>) -> usize {
        let shopper = self.crowd.get_mut(slot);
        let kind = match shopper.next {
            Next::Enter => EventKind::Enter,
            Next::Move(x, y) => {
                shopper.x = x;
                shopper.y = y;
                let (x, y) = self.store.centre(x.into(), y.into());
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
        let id = self.crowd.get(slot).id.clone();
        self.crowd.leave(slot);
        if let Some(roster) = &self.roster {
            roster.release(self.store_index, &id);
            if self.gate.waiting > 0 {
                // The longest-waiting arrival comes in now, unless the doors closed or the store
                // closed for the night meanwhile: then nobody waits any more.
                if self.doors_closed_at(at_ms + 1) || !self.arrival_times.is_open_at(at_ms + 1) {
                    self.gate.waiting = 0;
                } else {
                    self.gate.waiting -= 1;
                    self.admit(at_ms + 1);
                }
            }
        }
        // The place that freed up goes to the first one queueing outside.
        if let Some(enter_ms) = self.gate.entrance.leave(at_ms) {
            self.admit(enter_ms);
        }
    }

    /// Decides the shopper's next event after one at `at_ms`, returning when it is due.
    fn plan(&mut self, slot: u32, at_ms: i64) -> i64 {
        let walk_step = self.params.walk_step_ms;
        let doors_closed = self.doors_closed_at(at_ms);
        let (store, home) = (&self.store, &self.home);
        let shopper = self.crowd.get_mut(slot);
        // Every cell a shopper reaches is connected to the exit (checked with the layout).
        let distance_home =
            |x: u16, y: u16| i64::from(home.steps(x.into(), y.into()).unwrap_or_default());
        if let Heading::WalkingInTo(x, y) = shopper.heading
            && !doors_closed
        {
            let target = (x, y);
            match step_toward(store, (shopper.x, shopper.y), target) {
                Some(cell) => {
                    if cell == target {
                        shopper.heading = Heading::Strolling;
                    }
                    shopper.next = Next::Move(cell.0, cell.1);
                    return at_ms + walk_step;
                }
                None => shopper.heading = Heading::Strolling,
            }
        }
        if shopper.heading != Heading::Homing {
            if doors_closed {
                shopper.heading = Heading::Homing;
                let steps = distance_home(shopper.x, shopper.y) + 1;
                shopper.visit_end_ms = at_ms + steps * walk_step;
            } else {
                let normal: f64 = StandardNormal.sample(&mut shopper.rng);
                let sigma = f64::from(shopper.spread);
                let dwell = (f64::from(shopper.dwell_ms)
                    * (sigma * normal - sigma * sigma / 2.0).exp())
                    as i64;
                let dwell = dwell.max(MIN_STEP_MS);
                if let Some((x, y)) =
                    random_neighbour(&mut shopper.rng, store, shopper.x, shopper.y)
                {
                    let home_after = (distance_home(x, y) + 1) * walk_step;
                    if at_ms + dwell + home_after <= shopper.visit_end_ms {
                        shopper.next = Next::Move(x, y);
                        return at_ms + dwell;
                    }
                }
                shopper.heading = Heading::Homing;
            }
        }
        // Walk home so the exit falls exactly at the end of the visit.
        let steps_left = distance_home(shopper.x, shopper.y) + 1;
        let pace = ((shopper.visit_end_ms - at_ms) / steps_left).max(MIN_STEP_MS);
        shopper.next = match home.step_toward(shopper.x.into(), shopper.y.into()) {
            Some((x, y)) => Next::Move(x as u16, y as u16),
            None => Next::Exit,
        };
        at_ms + pace
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

/// The walkable neighbour of `at` closest to `target` (fewest king's moves, then fewest
/// straight ones; the layout's order breaks ties), if it is closer than `at`: a walk straight to
/// `target` that stops where an obstacle is in the way.
fn step_toward(store: &StoreLayout, at: (u16, u16), target: (u16, u16)) -> Option<(u16, u16)> {
    let distance = |(x, y): (u16, u16)| {
        let (dx, dy) = (x.abs_diff(target.0), y.abs_diff(target.1));
        (dx.max(dy), dx + dy)
    };
    store
        .neighbours(at.0.into(), at.1.into())
        .map(|(x, y)| (x as u16, y as u16))
        .min_by_key(|&cell| distance(cell))
        .filter(|&cell| distance(cell).0 < distance(at).0)
}

/// A uniformly chosen cell among the (up to 8) walkable neighbours of cell (x, y), listed in the
/// layout's fixed order so a seed replays the same walk.
fn random_neighbour(rng: &mut Pcg32, store: &StoreLayout, x: u16, y: u16) -> Option<(u16, u16)> {
    let open = store.neighbours(x.into(), y.into());
    let count = open.count_open();
    if count == 0 {
        return None;
    }
    let (nx, ny) = open.nth_open(rng.random_range(0..count))?;
    Some((nx as u16, ny as u16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn params(target: f64) -> WalkParams {
        WalkParams {
            average_in_store: target,
            mean_visit_ms: 600_000.0,
            min_visit_ms: 60_000.0,
            mean_dwell_ms: 20_000.0,
            walk_step_ms: 2_000,
            id_prefix: String::new(),
            arrivals: ArrivalRules::default(),
        }
    }

    fn store() -> StoreLayout {
        StoreLayout::default()
    }
    const DAY_MS: i64 = 86_400_000;

    fn run(params: WalkParams, seed: u64, until_ms: i64, close_ms: Option<i64>) -> Vec<Event> {
        let mut generator = Generator::new(params, store(), seed, 0, close_ms, None);
        let mut out = Vec::new();
        let mut horizon = 0;
        while !generator.is_finished() && horizon < until_ms {
            horizon += 7_000;
            generator.generate(horizon, &mut out, usize::MAX);
        }
        out
    }

    /// Time-weighted mean number inside over [0, end).
    fn mean_occupancy(events: &[Event], end_ms: i64) -> f64 {
        let (mut inside, mut last, mut area) = (0i64, 0i64, 0f64);
        for event in events.iter().take_while(|e| e.due_ms < end_ms) {
            area += (inside * (event.due_ms - last)) as f64;
            last = event.due_ms;
            match event.kind {
                EventKind::Enter => inside += 1,
                EventKind::Exit => inside -= 1,
                EventKind::Move { .. } | EventKind::Focus { .. } => {}
            }
        }
        area += (inside * (end_ms - last)) as f64;
        area / end_ms as f64
    }

    /// A million shoppers inside keep their slots in 64 MB: a cache line at most each.
    #[test]
    fn a_shopper_fits_a_cache_line() {
        let size = std::mem::size_of::<Shopper>();
        assert!(size <= 64, "{size} bytes");
    }

    #[test]
    fn walks_obey_the_store_rules() {
        let events = run(params(40.0), 7, 4 * 3_600_000, Some(3 * 3_600_000));
        let mut state: HashMap<CustomerId, (i64, i64, i64)> = HashMap::new();
        let mut last_due = i64::MIN;
        let mut exits = 0;
        for event in &events {
            assert!(event.due_ms >= last_due, "global time order");
            last_due = event.due_ms;
            match event.kind {
                EventKind::Enter => {
                    assert!(
                        state
                            .insert(event.customer.clone(), (0, 0, event.due_ms))
                            .is_none(),
                        "inside twice"
                    );
                }
                EventKind::Move { x, y } => {
                    let (px, py, since) = state[&event.customer];
                    assert!(
                        (x - px).abs() <= 1 && (y - py).abs() <= 1 && (x, y) != (px, py),
                        "adjacent move"
                    );
                    assert!(
                        (0..6).contains(&x) && (0..10).contains(&y),
                        "inside the grid"
                    );
                    assert!(event.due_ms > since, "per-shopper time order");
                    state.insert(event.customer.clone(), (x, y, event.due_ms));
                }
                EventKind::Exit => {
                    let (px, py, _) = state.remove(&event.customer).expect("exit after enter");
                    assert_eq!((px, py), (0, 0), "exit at the door");
                    exits += 1;
                }
                EventKind::Focus { .. } => panic!("no focus events unless asked for"),
            }
        }
        assert!(state.is_empty(), "everyone left after closing");
        assert!(exits > 100);
    }

    #[test]
    fn occupancy_meets_the_target_over_a_day() {
        for target in [5.0, 50.0, 500.0, 5000.0] {
            let mut p = params(target);
            // Long dwells keep the test fast; occupancy does not depend on them.
            p.mean_dwell_ms = 300_000.0;
            let events = run(p, 11, DAY_MS, None);
            let mean = mean_occupancy(&events, DAY_MS);
            assert!(
                (mean / target - 1.0).abs() < 0.10,
                "target {target}: mean {mean:.2}"
            );
        }
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        let a = run(params(20.0), 1, 3_600_000, None);
        let b = run(params(20.0), 1, 3_600_000, None);
        let c = run(params(20.0), 2, 3_600_000, None);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// A list of customers `1..=size` (the real one is the customer_list plugin).
    struct TestRoster {
        outside: std::sync::Mutex<Vec<u64>>,
        size: usize,
    }

    impl TestRoster {
        fn new(size: u64) -> Arc<TestRoster> {
            Arc::new(TestRoster {
                outside: std::sync::Mutex::new((1..=size).collect()),
                size: size as usize,
            })
        }
    }

    impl Roster for TestRoster {
        fn admit(
            &self,
            _store: StoreIndex,
            rng: &mut dyn customersim_plugin_api::rand::RngCore,
        ) -> Option<CustomerId> {
            let mut outside = self.outside.lock().unwrap();
            if outside.is_empty() {
                return None;
            }
            let draw = rng.random_range(0..outside.len());
            Some(CustomerId::Number(outside.swap_remove(draw)))
        }
        fn release(&self, _store: StoreIndex, customer: &CustomerId) {
            let CustomerId::Number(n) = customer else {
                panic!("not listed")
            };
            let mut outside = self.outside.lock().unwrap();
            assert!(!outside.contains(n), "{n} released twice");
            outside.push(*n);
        }
        fn size(&self) -> usize {
            self.size
        }
    }

    fn run_listed(
        params: WalkParams,
        roster: Arc<TestRoster>,
        until_ms: i64,
        close_ms: Option<i64>,
    ) -> (Vec<Event>, u64) {
        let mut generator = Generator::new(params, store(), 3, 0, close_ms, Some(roster));
        let (mut out, mut horizon, mut most_waiting) = (Vec::new(), 0, 0);
        while !generator.is_finished() && horizon < until_ms {
            horizon += 7_000;
            generator.generate(horizon, &mut out, usize::MAX);
            most_waiting = most_waiting.max(generator.waiting_arrivals());
        }
        (out, most_waiting)
    }

    #[test]
    fn listed_customers_are_never_inside_twice_and_wait_when_all_are_inside() {
        let roster = TestRoster::new(30);
        let close = 5 * 3_600_000;
        let (events, most_waiting) = run_listed(params(40.0), roster.clone(), DAY_MS, Some(close));
        assert!(
            most_waiting > 0,
            "a list smaller than the target makes arrivals wait"
        );
        let mut inside = std::collections::HashSet::new();
        let mut most_inside = 0;
        for event in &events {
            let CustomerId::Number(n) = event.customer else {
                panic!("not a listed id")
            };
            assert!((1..=30).contains(&n), "{n} is not listed");
            match event.kind {
                EventKind::Enter => {
                    assert!(inside.insert(n), "{n} inside twice");
                    assert!(event.due_ms < close, "no arrival after the doors closed");
                }
                EventKind::Exit => assert!(inside.remove(&n)),
                EventKind::Move { .. } | EventKind::Focus { .. } => assert!(inside.contains(&n)),
            }
            most_inside = most_inside.max(inside.len());
        }
        assert_eq!(most_inside, 30, "the store fills up to the list size");
        assert!(inside.is_empty(), "everyone left after closing");
        assert_eq!(roster.outside.lock().unwrap().len(), 30, "all released");
        // With the list full most of the time, the mean stays close to the list size.
        let mean = mean_occupancy(&events, close);
        assert!(mean > 27.0, "mean {mean:.2}");
    }

    #[test]
    fn waiting_arrivals_do_not_come_in_after_the_doors_closed() {
        // Rare arrivals and a tiny list: customers leave between the closing time and the next
        // (refused) arrival while others still wait.
        let mut p = params(6.0);
        p.mean_visit_ms = 3_600_000.0;
        for hour in 2..40 {
            let close = hour * 3_600_000 + 1_234_567;
            let (events, _) = run_listed(p.clone(), TestRoster::new(3), 2 * DAY_MS, Some(close));
            for event in &events {
                if event.kind == EventKind::Enter {
                    assert!(
                        event.due_ms < close,
                        "entered at {} after closing at {close}",
                        event.due_ms
                    );
                }
            }
        }
    }

    #[test]
    fn arrivals_waiting_for_a_listed_customer_do_not_come_in_after_closing_time() {
        let mut p = params(20.0);
        p.arrivals = customersim_plugin_api::ArrivalsConfig {
            opening_hours: Some(vec!["08:00".into(), "20:00".into()]),
            ..Default::default()
        }
        .check()
        .unwrap();
        let (events, most_waiting) = run_listed(p, TestRoster::new(10), 3 * DAY_MS, None);
        assert!(
            most_waiting > 0,
            "a list smaller than the target makes arrivals wait"
        );
        let enters: Vec<i64> = events
            .iter()
            .filter(|e| e.kind == EventKind::Enter)
            .map(|e| e.due_ms.rem_euclid(DAY_MS))
            .collect();
        assert!(enters.len() > 100);
        for at in enters {
            assert!(
                (8 * 3_600_000..20 * 3_600_000).contains(&at),
                "entered at {at} ms of the day"
            );
        }
    }

    #[test]
    fn capacity_keeps_the_store_from_overfilling_and_queues_the_rest() {
        let mut p = params(20.0);
        p.arrivals = customersim_plugin_api::ArrivalsConfig {
            capacity: Some(12),
            ..Default::default()
        }
        .check()
        .unwrap();
        let mut generator = Generator::new(p, store(), 9, 0, Some(DAY_MS), None);
        let (mut events, mut horizon, mut most_queued) = (Vec::new(), 0, 0);
        while !generator.is_finished() {
            horizon += 7_000;
            generator.generate(horizon, &mut events, usize::MAX);
            most_queued = most_queued.max(generator.queued_arrivals());
        }
        let (mut inside, mut most_inside) = (0i64, 0i64);
        for event in &events {
            match event.kind {
                EventKind::Enter => inside += 1,
                EventKind::Exit => inside -= 1,
                EventKind::Move { .. } | EventKind::Focus { .. } => {}
            }
            most_inside = most_inside.max(inside);
        }
        assert_eq!(most_inside, 12);
        assert_eq!(generator.peak_inside(), 12);
        assert!(most_queued > 0);
        let stats = generator.queue_stats().expect("a capacity keeps stats");
        assert!(stats.entered_after_waiting > 100, "{stats}");
        assert_eq!(
            stats.queued,
            stats.entered_after_waiting + stats.turned_away,
            "everyone who queued came in or went home"
        );
        assert_eq!(inside, 0, "everyone left");
    }

    #[test]
    fn a_list_larger_than_the_target_keeps_the_occupancy_at_the_target() {
        let mut p = params(450.0);
        p.mean_dwell_ms = 300_000.0;
        let (events, _) = run_listed(p, TestRoster::new(500), DAY_MS, None);
        let mean = mean_occupancy(&events, DAY_MS);
        assert!((mean / 450.0 - 1.0).abs() < 0.05, "mean {mean:.2}");
    }

    #[test]
    fn chunking_does_not_change_the_stream() {
        let whole = run(params(20.0), 5, 3_600_000, None);
        let mut generator = Generator::new(params(20.0), store(), 5, 0, None, None);
        let mut pieces = Vec::new();
        let mut horizon = 0;
        while horizon < 3_600_000 {
            let watermark = generator.generate(horizon + 100_000, &mut pieces, 3);
            // Beyond the horizon when nothing is due before it: the next event's time.
            assert!(watermark >= horizon);
            horizon = watermark;
        }
        pieces.retain(|e| e.due_ms < 3_600_000);
        let whole: Vec<_> = whole.into_iter().filter(|e| e.due_ms < 3_600_000).collect();
        assert_eq!(pieces, whole);
    }
}
