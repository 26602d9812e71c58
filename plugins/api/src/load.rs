//! Load stages: a target number of published events per second over time (`load:` in the
//! pipeline file), met by the simulated shopper sources through the number of shoppers inside.
//!
//! # From a target to a crowd (Little's law)
//! A model knows what one shopper inside makes on average ([`ShopperRate`]: events per second,
//! mean visit length). A target of `E` events/s then needs `N = E / events_per_second` shoppers
//! inside, and keeping `N` inside takes `N / mean_visit` arrivals per second (Little's law).
//! A source's share of the target is split evenly over the sources that follow the stages and
//! over the stores of the fleet ([`LoadShare::per_store`]), so the pipeline's total is the target.
//!
//! # Following a change within a stage
//! Arrivals alone move the crowd to a new size in about one visit length (minutes), far longer
//! than a stage. So the crowd is steered ([`LoadFollower`]): once per simulated second the
//! follower compares the shoppers staying inside with the planned crowd ([`PopulationPlan`]) and
//! lets the missing ones in or sends the surplus home (chosen at random, so the crowd stays
//! alike), spread over that second. Between changes it only corrects drifts beyond 1% (the
//! random arrivals and departures of a steady crowd stay as they are). Shoppers who come in or
//! leave make events of their own (walking in, walking out) beyond those of an average shopper:
//! the plan makes those moves early enough in the ramp for their walks to be over when the ramp
//! ends ([`ShopperRate::walk_in_ms`], [`ShopperRate::walk_out_ms`]), so the stage is on target
//! from its end of ramp on.
//!
//! # Time line
//! Stages follow each other from the start of the run. The first `ramp` of each stage moves the
//! target linearly from the previous stage's (0 before the first) to its own; a stage shorter
//! than the ramp is all ramp. After the last stage the last target holds (a run that sets no
//! `simulation.duration` ends there: the core makes the stages' total its duration).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg32;

use crate::arrivals::MAX_AVERAGE_IN_STORE;
use crate::error::PluginError;
use crate::fleet::Fleet;

/// How often the follower compares the crowd with the plan: once per simulated second, finer
/// than any ramp worth setting and cheap (one comparison per store and second).
pub const CONTROL_TICK_MS: i64 = 1_000;

/// Drift of a steady crowd from the plan that is left alone, as a share of the plan: the natural
/// ups and downs of random arrivals and departures, small enough to keep a stage within a few
/// percent of its target.
pub const STEADY_BAND: f64 = 0.01;

/// One stage: a target held for a duration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadStage {
    /// How long the stage lasts, ramp included (ms).
    pub duration_ms: i64,
    /// Published events per simulated second once ramped.
    pub events_per_second: f64,
}

/// The checked stages of a pipeline (or a source's or store's share of them): targets over the
/// simulated time since the start of the run. Cheap to clone.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadPlan {
    stages: Arc<[LoadStage]>,
    ramp_ms: i64,
}

/// Where one stage lies on the run's time line, in ms since the start of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageWindow {
    /// When the stage starts.
    pub start_ms: i64,
    /// When it ends (the next one starts).
    pub end_ms: i64,
    /// How long its ramp takes: the plan's ramp, or the whole stage when it is shorter.
    pub ramp_ms: i64,
    /// The target the ramp starts from: the previous stage's, 0 for the first.
    pub from: f64,
    /// The stage's target, events per second.
    pub target: f64,
}

impl StageWindow {
    /// From when the stage holds its target: the end of its ramp.
    pub fn ramped_ms(&self) -> i64 {
        self.start_ms + self.ramp_ms
    }

    /// The target at `offset_ms` (within the stage): linear over the ramp, then flat.
    pub fn target_at(&self, offset_ms: i64) -> f64 {
        if self.ramp_ms <= 0 || offset_ms >= self.ramped_ms() {
            return self.target;
        }
        let done = (offset_ms - self.start_ms).max(0) as f64 / self.ramp_ms as f64;
        self.from + (self.target - self.from) * done
    }
}

impl LoadPlan {
    /// A plan of `stages` (each at least 1 ms long, targets finite and ≥ 0: the core checks the
    /// pipeline file's values first) with `ramp_ms` between stages.
    pub fn new(stages: Vec<LoadStage>, ramp_ms: i64) -> LoadPlan {
        debug_assert!(!stages.is_empty(), "a plan has a stage");
        debug_assert!(
            stages
                .iter()
                .all(|s| s.duration_ms > 0 && s.events_per_second.is_finite())
        );
        LoadPlan {
            stages: stages.into(),
            ramp_ms: ramp_ms.max(0),
        }
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[LoadStage] {
        &self.stages
    }

    /// How long a change of target takes (ms).
    pub fn ramp_ms(&self) -> i64 {
        self.ramp_ms
    }

    /// How long all stages take together (ms).
    pub fn total_ms(&self) -> i64 {
        self.stages
            .iter()
            .fold(0i64, |total, stage| total.saturating_add(stage.duration_ms))
    }

    /// The highest target of any stage.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|stage| stage.events_per_second)
            .fold(0.0, f64::max)
    }

    /// Every stage's place on the time line.
    pub fn windows(&self) -> Vec<StageWindow> {
        let mut start_ms = 0i64;
        let mut from = 0.0;
        self.stages
            .iter()
            .map(|stage| {
                let window = StageWindow {
                    start_ms,
                    end_ms: start_ms.saturating_add(stage.duration_ms),
                    ramp_ms: self.ramp_ms.min(stage.duration_ms),
                    from,
                    target: stage.events_per_second,
                };
                start_ms = window.end_ms;
                from = stage.events_per_second;
                window
            })
            .collect()
    }

    /// The target at `offset_ms` since the start of the run: linear over each ramp; 0 before the
    /// start; the last stage's after the end.
    pub fn target_at(&self, offset_ms: i64) -> f64 {
        if offset_ms < 0 {
            return 0.0;
        }
        let windows = self.windows();
        match windows.iter().find(|window| offset_ms < window.end_ms) {
            Some(window) => window.target_at(offset_ms),
            None => windows.last().map_or(0.0, |window| window.target),
        }
    }

    /// This plan with every target multiplied by `factor` (a share of it).
    pub fn scaled(&self, factor: f64) -> LoadPlan {
        LoadPlan {
            stages: self
                .stages
                .iter()
                .map(|stage| LoadStage {
                    events_per_second: stage.events_per_second * factor,
                    ..*stage
                })
                .collect(),
            ramp_ms: self.ramp_ms,
        }
    }
}

/// What one shopper inside makes on average, for a shopper model: what Little's law turns a
/// target into a crowd with, and how long coming in and leaving take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShopperRate {
    /// Events one shopper inside publishes per simulated second on average, everything counted
    /// (enter, moves, focus events, exit).
    pub events_per_second: f64,
    /// Mean visit length from enter to exit (ms).
    pub mean_visit_ms: f64,
    /// How long a shopper who just came in makes more events than the average one (walking in
    /// from the entrance at walking pace): crowds grow early enough in a ramp for these walks to
    /// end with it.
    pub walk_in_ms: i64,
    /// How long a shopper sent home takes to walk out: crowds shrink early enough in a ramp for
    /// these walks to end with it.
    pub walk_out_ms: i64,
}

impl ShopperRate {
    /// Shoppers inside that make `events_per_second` together (Little's law's `L`).
    pub fn inside_for(&self, events_per_second: f64) -> f64 {
        if self.events_per_second > 0.0 {
            events_per_second / self.events_per_second
        } else {
            0.0
        }
    }

    /// Arrivals per millisecond that keep [`ShopperRate::inside_for`] inside: `L / W`.
    pub fn arrivals_per_ms_for(&self, events_per_second: f64) -> f64 {
        if self.mean_visit_ms > 0.0 {
            self.inside_for(events_per_second) / self.mean_visit_ms
        } else {
            0.0
        }
    }

    /// Events one visit makes on average.
    pub fn events_per_visit(&self) -> f64 {
        self.events_per_second * self.mean_visit_ms / 1000.0
    }

    /// How much longer than `ramp_ms` crowds need to follow a change: the longer of the walks
    /// in and out beyond the ramp (0 when the ramp is long enough).
    pub fn ramp_shortfall_ms(&self, ramp_ms: i64) -> i64 {
        (self.walk_in_ms.max(self.walk_out_ms) - ramp_ms).max(0)
    }
}

/// The crowd a store plans over time: shoppers inside as a piecewise linear function of the
/// simulated time (ms since the epoch), from a store's share of the stages.
#[derive(Clone, Debug, PartialEq)]
pub struct PopulationPlan {
    /// (time, shoppers inside), time ascending; two points at one time are a step (the later
    /// holds from then on). Before the first point: 0; after the last: its value.
    points: Vec<(i64, f64)>,
    /// Mean visit length (ms), to turn the crowd into an arrival rate.
    mean_visit_ms: f64,
}

impl PopulationPlan {
    /// The crowd that makes `plan`'s targets with shoppers of `rate`, for a run starting at
    /// `origin_ms`: each stage's target over `rate` (Little's law), reached linearly over the
    /// stage's ramp shortened by the walks in (growing) or out (shrinking), so those walks end
    /// with the ramp. A ramp shorter than the walks becomes a step at the stage's start.
    pub fn new(plan: &LoadPlan, rate: &ShopperRate, origin_ms: i64) -> PopulationPlan {
        let mut points = vec![(origin_ms, 0.0)];
        let mut before = 0.0;
        for window in plan.windows() {
            let inside = rate.inside_for(window.target);
            let lead = if inside >= before {
                rate.walk_in_ms
            } else {
                rate.walk_out_ms
            };
            let ramp_ms = (window.ramp_ms - lead).max(0);
            let start = origin_ms.saturating_add(window.start_ms);
            points.push((start, before));
            points.push((start.saturating_add(ramp_ms), inside));
            before = inside;
        }
        points.dedup();
        PopulationPlan {
            points,
            mean_visit_ms: rate.mean_visit_ms.max(1.0),
        }
    }

    /// Shoppers planned inside at `at_ms` (after a step at `at_ms`).
    pub fn inside_at(&self, at_ms: i64) -> f64 {
        self.value_at(at_ms as f64, false)
    }

    /// Shoppers planned inside just before `at_ms` (before a step at `at_ms`).
    pub fn inside_before(&self, at_ms: i64) -> f64 {
        self.value_at(at_ms as f64, true)
    }

    /// The index of the first point after `t` (at or after it when `before`).
    fn next_point(&self, t: f64, before: bool) -> usize {
        self.points.partition_point(|&(p, _)| {
            let p = p as f64;
            if before { p < t } else { p <= t }
        })
    }

    /// The plan at `t` ms; `before`: just before a step at `t`.
    fn value_at(&self, t: f64, before: bool) -> f64 {
        let after = self.next_point(t, before);
        let Some(&(t0, v0)) = after.checked_sub(1).map(|i| &self.points[i]) else {
            return 0.0;
        };
        match self.points.get(after) {
            Some(&(t1, v1)) if t1 > t0 => v0 + (v1 - v0) * (t - t0 as f64) / (t1 - t0) as f64,
            _ => v0,
        }
    }

    /// The highest crowd planned.
    pub fn peak(&self) -> f64 {
        self.points.iter().map(|&(_, v)| v).fold(0.0, f64::max)
    }

    /// When the arrival that is `needed` unit-exponential mass after `from_ms` comes, with
    /// arrivals at `inside / mean_visit` per ms (Little's law): the inverse of the cumulative
    /// rate, exact for a piecewise linear rate. `None` if it never comes (a crowd of 0 for ever)
    /// or comes at `give_up_ms` or later.
    pub fn arrival_after(&self, from_ms: f64, needed: f64, give_up_ms: f64) -> Option<f64> {
        // In shopper-ms: arrivals are the integral of the crowd over the mean visit.
        let mut needed = needed * self.mean_visit_ms;
        let mut t = from_ms;
        while t < give_up_ms {
            let after = self.next_point(t, false);
            let rate = self.value_at(t, false);
            let Some(&(end, end_value)) = self.points.get(after) else {
                // The last value holds for ever.
                let x = t + needed / rate;
                return (rate > 0.0 && x < give_up_ms).then_some(x);
            };
            let end = end as f64;
            let span = end - t;
            let area = (rate + end_value) / 2.0 * span;
            if area > 0.0 && needed <= area {
                let slope = (end_value - rate) / span;
                let root = (rate * rate + 2.0 * slope * needed).max(0.0).sqrt();
                let x = t + 2.0 * needed / (rate + root);
                return (x < give_up_ms).then_some(x.min(end));
            }
            needed -= area.max(0.0);
            t = end;
        }
        None
    }
}

/// What the follower asks its model to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadAction {
    /// Let one more shopper in (beyond the arrival process).
    Admit,
    /// Send one shopper home (a random one staying inside).
    SendHome,
}

/// The actions of one control tick, spread over it: the `i`-th of `n` at a random moment of the
/// `i`-th `n`-th of the tick, so they come evenly but not in lockstep with another store's.
#[derive(Clone, Copy, Debug)]
struct Pending {
    action: LoadAction,
    count: u32,
    done: u32,
    from_ms: i64,
    /// When the next one is due; `None` once all are done.
    next_ms: Option<i64>,
}

impl Pending {
    fn new(action: LoadAction, count: u32, from_ms: i64, rng: &mut Pcg32) -> Pending {
        let mut pending = Pending {
            action,
            count,
            done: 0,
            from_ms,
            next_ms: None,
        };
        pending.draw_next(rng);
        pending
    }

    fn draw_next(&mut self, rng: &mut Pcg32) {
        self.next_ms = (self.done < self.count).then(|| {
            let slice = CONTROL_TICK_MS as f64 / f64::from(self.count);
            let at = (f64::from(self.done) + rng.random::<f64>()) * slice;
            self.from_ms + (at as i64).min(CONTROL_TICK_MS - 1)
        });
    }
}

/// Steers one store's crowd along its [`PopulationPlan`] (see the module docs): a pure function
/// of the plan, the crowd and its own seed, so seeded runs stay byte-identical at any speed.
#[derive(Clone, Debug)]
pub struct LoadFollower {
    plan: Arc<PopulationPlan>,
    doors_close_ms: Option<i64>,
    /// The next control tick; `None` once the doors closed.
    next_tick_ms: Option<i64>,
    pending: Option<Pending>,
    /// Picks who is sent home.
    rng: Pcg32,
}

impl LoadFollower {
    /// A follower of `plan` for a run starting at `origin_ms`, ticking until the doors close.
    pub fn new(
        plan: Arc<PopulationPlan>,
        origin_ms: i64,
        doors_close_ms: Option<i64>,
        seed: u64,
    ) -> LoadFollower {
        LoadFollower {
            plan,
            doors_close_ms,
            next_tick_ms: Some(origin_ms),
            pending: None,
            rng: Pcg32::seed_from_u64(seed),
        }
    }

    /// The crowd it follows.
    pub fn plan(&self) -> &Arc<PopulationPlan> {
        &self.plan
    }

    /// When the follower next has something to do.
    pub fn next_ms(&self) -> Option<i64> {
        match (self.pending.and_then(|p| p.next_ms), self.next_tick_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Called at [`LoadFollower::next_ms`] with the number of shoppers staying inside (not sent
    /// home): the action due now, if any. At a tick it plans the tick's actions first: as many
    /// admissions or departures as the crowd lacks or has too many for the plan at the tick's
    /// end (beyond [`STEADY_BAND`] of it), spread evenly over the tick.
    pub fn fire(&mut self, at_ms: i64, staying: usize) -> Option<LoadAction> {
        if self.next_tick_ms == Some(at_ms) {
            self.tick(at_ms, staying);
        }
        let pending = self.pending.as_mut()?;
        if pending.next_ms? > at_ms {
            return None;
        }
        pending.done += 1;
        pending.draw_next(&mut self.rng);
        Some(pending.action)
    }

    fn tick(&mut self, at_ms: i64, staying: usize) {
        if self.doors_close_ms.is_some_and(|close| at_ms >= close) {
            self.next_tick_ms = None;
            self.pending = None;
            return;
        }
        self.next_tick_ms = Some(at_ms + CONTROL_TICK_MS);
        // Aim at the tick's end; a step exactly then is the next tick's to make.
        let wanted = self.plan.inside_before(at_ms + CONTROL_TICK_MS);
        let missing = wanted.round() - staying as f64;
        let band = (wanted * STEADY_BAND).floor().max(1.0);
        let act = missing.abs() > band || (missing != 0.0 && wanted.round() == 0.0);
        self.pending = act.then(|| {
            let action = if missing > 0.0 {
                LoadAction::Admit
            } else {
                LoadAction::SendHome
            };
            let count = missing.abs().min(f64::from(u32::MAX)) as u32;
            Pending::new(action, count, at_ms, &mut self.rng)
        });
    }

    /// A random slot number below `slots`, for picking who is sent home.
    pub fn pick(&mut self, slots: usize) -> usize {
        if slots == 0 {
            0
        } else {
            self.rng.random_range(0..slots)
        }
    }
}

/// A source's part in the pipeline's load stages, from [`crate::BuildContext::follow_load`]:
/// the pipeline's plan and how many sources follow it (known once every source is built).
#[derive(Clone, Debug)]
pub struct LoadShare {
    plan: LoadPlan,
    followers: Arc<AtomicUsize>,
}

impl LoadShare {
    pub(crate) fn new(plan: LoadPlan, followers: Arc<AtomicUsize>) -> LoadShare {
        followers.fetch_add(1, Ordering::SeqCst);
        LoadShare { plan, followers }
    }

    /// The pipeline's plan (all sources, all stores).
    pub fn plan(&self) -> &LoadPlan {
        &self.plan
    }

    /// How many sources follow the plan (read at run time, when all are built).
    pub fn sources(&self) -> usize {
        self.followers.load(Ordering::SeqCst).max(1)
    }

    /// One store's part: the targets split evenly over the sources following them and over
    /// every store of the fleet (all shards), so all of them together make the target.
    pub fn per_store(&self, fleet: &Fleet) -> LoadPlan {
        let parts = self.sources() as f64 * fleet.len().max(1) as f64;
        self.plan.scaled(1.0 / parts)
    }

    /// One store's crowd plan for a source whose shoppers make `rate`, for a run starting at
    /// `origin_ms` (the same for every store: share them). Logs what it takes first
    /// ([`LoadShare::announce`]); refuses (exit 2) a stage that needs more shoppers inside one
    /// store than a store may hold ([`MAX_AVERAGE_IN_STORE`]): such crowds would only exhaust
    /// memory, and a fleet spreads them.
    pub fn population(
        &self,
        name: &str,
        rate: &ShopperRate,
        fleet: &Fleet,
        origin_ms: i64,
        capacity: Option<usize>,
        listed: Option<usize>,
    ) -> Result<Arc<PopulationPlan>, PluginError> {
        self.announce(name, rate, fleet, capacity, listed);
        let store = self.per_store(fleet);
        if let Some((index, stage)) = store
            .stages()
            .iter()
            .enumerate()
            .find(|(_, stage)| rate.inside_for(stage.events_per_second) > MAX_AVERAGE_IN_STORE)
        {
            return Err(PluginError::config(format!(
                "load.stages[{index}].events_per_second: {} events/s need {:.0} shoppers inside \
                 one store, more than the {MAX_AVERAGE_IN_STORE} a store may hold: lower it or \
                 spread it over a fleet of stores",
                self.plan.stages()[index].events_per_second,
                rate.inside_for(stage.events_per_second)
            )));
        }
        Ok(Arc::new(PopulationPlan::new(&store, rate, origin_ms)))
    }

    /// Logs, once per source, what following the plan takes: shoppers inside per stage and
    /// store; and warns when the ramp is shorter than the walks in and out, or when a store's
    /// `capacity` or the list of customers (`listed`, all stores together) is smaller than the
    /// crowd a stage needs (those stages stay below their targets).
    pub fn announce(
        &self,
        name: &str,
        rate: &ShopperRate,
        fleet: &Fleet,
        capacity: Option<usize>,
        listed: Option<usize>,
    ) {
        let store = self.per_store(fleet);
        let crowd = |stage: &LoadStage| rate.inside_for(stage.events_per_second);
        let crowds: Vec<String> = store
            .stages()
            .iter()
            .map(|stage| format!("{:.0}", crowd(stage)))
            .collect();
        let per_store = fleet.len() > 1 || self.sources() > 1;
        tracing::info!(
            "{name}: one shopper inside makes {:.4} events/s (mean visit {:.1} s); load stages need {} shoppers inside{}",
            rate.events_per_second,
            rate.mean_visit_ms / 1000.0,
            crowds.join(", "),
            if per_store { " per store" } else { "" }
        );
        let walks_ms = rate.walk_in_ms.max(rate.walk_out_ms);
        let shortfall = rate.ramp_shortfall_ms(self.plan.ramp_ms);
        if shortfall > 0 {
            tracing::warn!(
                "{name}: load.ramp ({}) is shorter than the {} shoppers take to walk in or out: \
                 each stage starts off its target for up to {} more; set load.ramp to at least {}",
                crate::duration::format(std::time::Duration::from_millis(self.plan.ramp_ms as u64)),
                crate::duration::format(std::time::Duration::from_millis(walks_ms as u64)),
                crate::duration::format(std::time::Duration::from_millis(shortfall as u64)),
                crate::duration::format(std::time::Duration::from_millis(walks_ms as u64)),
            );
        }
        let peak = store.stages().iter().map(crowd).fold(0.0, f64::max);
        if let Some(capacity) = capacity.filter(|&capacity| (capacity as f64) < peak) {
            tracing::warn!(
                "{name}: capacity {capacity} is smaller than the {peak:.0} shoppers inside the busiest load stage needs{}: it stays below its target",
                if per_store { " per store" } else { "" }
            );
        }
        let stores = fleet.local_stores().count() as f64;
        if let Some(listed) = listed.filter(|&listed| (listed as f64) < peak * stores) {
            tracing::warn!(
                "{name}: the list of customers has {listed}, fewer than the {:.0} shoppers inside the busiest load stage needs: it stays below its target",
                peak * stores
            );
        }
    }
}

/// What [`measure_shoppers`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Events one shopper inside makes per second.
    pub events_per_second: f64,
    /// Mean visit length (ms).
    pub mean_visit_ms: f64,
    /// Completed visits it is measured over.
    pub visits: usize,
}

/// Measures what one shopper of a model makes by running it: a source builds `generator` like
/// its own (same settings, store and focus events) but with a fixed seed, a steady crowd and no
/// listed customers, and this counts the events of `visits` whole visits (after a quarter as many
/// to let queues form) over their time inside. A run of the model itself, so every event the
/// model makes counts (walks home, focus events, waits in line), which no closed formula keeps
/// up with. `None` if no visit completes.
pub fn measure_shoppers<G: crate::ahead::Generate>(
    generator: &mut G,
    visits: usize,
    mut focus: Option<crate::focus::FocusStage>,
) -> Option<Measured> {
    use std::collections::HashMap;

    use crate::event::{CustomerId, EventKind};

    /// Events looked at, at most: a model whose shoppers never leave still ends.
    const MAX_EVENTS: u64 = 20_000_000;
    let warm_up = visits / 4;
    let mut inside: HashMap<CustomerId, (i64, u64, bool)> = HashMap::new();
    let (mut entered, mut open, mut seen) = (0usize, 0usize, 0u64);
    let (mut done, mut events, mut time_ms) = (0usize, 0u64, 0i64);
    let mut horizon = 0i64;
    let mut out = Vec::new();
    while (entered < warm_up + visits || open > 0) && seen < MAX_EVENTS {
        if generator.is_finished() {
            break;
        }
        horizon += 60_000;
        out.clear();
        generator.generate(horizon, &mut out, usize::MAX);
        // The focus events the pipeline's stage adds count as the shoppers' too.
        if let Some(stage) = &mut focus {
            out = stage.apply(std::mem::take(&mut out), None);
        }
        for event in &out {
            seen += 1;
            match event.kind {
                EventKind::Enter => {
                    entered += 1;
                    let counted = entered > warm_up && entered <= warm_up + visits;
                    open += usize::from(counted);
                    inside.insert(event.customer.clone(), (event.due_ms, 1, counted));
                }
                EventKind::Exit => {
                    if let Some((since, count, counted)) = inside.remove(&event.customer)
                        && counted
                    {
                        open -= 1;
                        done += 1;
                        events += count + 1;
                        time_ms += event.due_ms - since;
                    }
                }
                _ => {
                    if let Some(visit) = inside.get_mut(&event.customer) {
                        visit.1 += 1;
                    }
                }
            }
        }
    }
    (done > 0 && time_ms > 0).then(|| Measured {
        events_per_second: events as f64 / (time_ms as f64 / 1000.0),
        mean_visit_ms: time_ms as f64 / done as f64,
        visits: done,
    })
}

#[cfg(test)]
mod tests;
