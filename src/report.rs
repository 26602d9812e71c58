//! The run report (`customersim run --report FILE`): a JSON summary of what a run published,
//! written when the run ends (also after SIGINT/SIGTERM and after the reader of stdout went
//! away), and the same as a short table on stderr. The book's *Run report* section (Configuration chapter) documents
//! every key.
//!
//! Everything in it is computed from the events that were handed to the sinks, by an observer the
//! scheduler calls once per batch ([`Observer::observe`]), so the report describes the published
//! stream, whatever the source: a consumer that counts the stream gets the same numbers. The
//! observer is only there when a report was asked for, and costs a hash-map lookup per event (the
//! shopper's current visit) plus a rectangle test per zone for a move (`cargo bench --bench
//! run_report` measures what it costs a `--speed max` run). Publish lateness comes from
//! the sinks' histograms ([`crate::lateness`]).
//!
//! Counts about shoppers are kept per store in a [`StoreTally`] (the event's store): with a fleet
//! of stores the report's top-level figures are the whole process's (sums; the peak of everyone
//! inside at once) and `stores` gives each store's own, under its id.
//!
//! Timing visits and zone stays takes a small record per shopper inside (a 64-bit key and 40
//! bytes), for at most [`MAX_TIMED_SHOPPERS`] shoppers inside at once: shoppers who enter beyond
//! that (HTTP scenarios can bring in any number who never leave) are counted but not timed
//! (`visits_untimed`), so the report's memory stays bounded whatever the stream.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::lateness::{LatenessHistogram, LatenessSummary};
use crate::plugin_api::{
    ArrivalRules, CustomerId, Event, EventKind, Fleet, LoadPlan, QueueMetrics, StageWindow,
    StoreLayout, Topics, ZoneKind,
};
use crate::scheduler::{RunReport, format_ms};

/// Most shoppers inside at once whose visits and zone stays the report times (one record of 48
/// bytes each, about 12 MB at most with the hash tables' spare room). Shoppers entering beyond it
/// count in `visits`, `visits_completed` and the figures of who is inside, but not in the visit
/// and dwell times nor the zones' visits; the report gives their number as `visits_untimed`.
pub const MAX_TIMED_SHOPPERS: usize = 200_000;

/// Asked for with `Pipeline::observe`: collects the report while the pipeline runs and makes
/// the summary after it. Clones share the same counts.
#[derive(Clone)]
pub struct Observation(Arc<Shared>);

struct Shared {
    tally: Mutex<Tally>,
    /// The sinks' lateness histograms; `None` on a virtual clock (`--speed max`), where how far
    /// the clock ran ahead of a sink is no delay anyone waited, so the report leaves it out.
    lateness: Mutex<Option<Vec<LatenessHistogram>>>,
    topics: Topics,
    /// The arrivals' queue outside a full store (sources with a `capacity`): shoppers who queue
    /// publish nothing until they enter, so this comes from the generator's metrics.
    entrance_queue: Option<QueueMetrics>,
    started: Instant,
    /// The faults the sensor stages injected, when `sensors.enabled`.
    sensors: std::sync::OnceLock<crate::plugin_api::SensorCounts>,
    /// When the sinks finished, so that what comes after (the verdict waiting for the last
    /// replies) does not count in the run's wall time and events per second.
    ended: std::sync::OnceLock<std::time::Duration>,
}

/// What the scheduler calls with every batch it hands to the sinks.
#[derive(Clone)]
pub struct Observer(Arc<Shared>);

/// Everything counted from the published stream.
struct Tally {
    /// Published events by kind: enter, move, exit, focus.
    by_kind: [u64; 4],
    /// Truth copies published next to the observed stream, by kind (`topics.truth.*`).
    truth_by_kind: [u64; 4],
    /// The simulated start of the run (the mean inside is taken from here).
    start_ms: Option<i64>,
    /// Due time of the last event seen.
    last_ms: Option<i64>,
    /// The layout every store of the run has.
    layout: StoreLayout,
    /// Store ids, with a fleet of stores (empty: one store, reported without `stores`).
    store_ids: Vec<String>,
    /// One per store, by the events' store index (grown as stores appear).
    stores: Vec<StoreTally>,
    /// Shoppers inside all stores, and its peak.
    inside_total: u64,
    peak_inside_total: u64,
    /// Shoppers timed now, in every store (at most [`MAX_TIMED_SHOPPERS`]).
    timed: usize,
    /// Turns a text id into its 64-bit key (randomly seeded, so nobody can choose ids that
    /// collide).
    hasher: RandomState,
    /// The opening hours of the run's sources, if they keep any: [`Tally::open`] integrates who
    /// is inside over the open time only.
    opening: Option<ArrivalRules>,
    open: OpenTime,
    /// The load stages, when the pipeline has any: events counted per stage once ramped.
    load: Option<LoadTally>,
}

/// Published events per load stage, counted over each stage's time once ramped.
struct LoadTally {
    /// The run's simulated start (the stages' time line starts there).
    origin_ms: i64,
    windows: Vec<StageWindow>,
    /// Events due within each stage's window once ramped.
    counts: Vec<u64>,
}

impl LoadTally {
    fn count(&mut self, due_ms: i64) {
        let offset = due_ms - self.origin_ms;
        let stage = self
            .windows
            .partition_point(|window| window.end_ms <= offset);
        if let Some(window) = self.windows.get(stage)
            && offset >= window.ramped_ms()
        {
            self.counts[stage] += 1;
        }
    }
}

/// Shoppers inside (all stores) integrated over the time the store is open.
#[derive(Default)]
struct OpenTime {
    /// Σ shoppers inside × open ms, and the open ms, up to `to_ms`.
    inside_ms: u128,
    open_ms: i64,
    to_ms: Option<i64>,
    /// The stretch the last step ended in: open or not, from when and until when.
    stretch: Option<(bool, i64, i64)>,
}

/// The shoppers of one store: who is inside, visits, zones.
#[derive(Default)]
struct StoreTally {
    /// Events of this store.
    events: u64,
    /// The timed shoppers inside, by [`Tally::key`]: a number id is its own key, a text id a
    /// 64-bit hash of it (two ids inside at once share a key with odds of about n²/2⁶⁵, which
    /// would merge their timings). Keyed with a fast hash: one lookup per published event (ids
    /// are not attacker-chosen keys here; a scenario's ids come from an authenticated API at
    /// worst).
    inside: FxHashMap<u64, Visit>,
    /// Shoppers inside who are not timed (they entered while [`MAX_TIMED_SHOPPERS`] were).
    untimed_inside: u64,
    /// Visits not timed.
    untimed_visits: u64,
    peak_inside: u64,
    /// Σ shoppers inside × simulated ms, for the time-weighted mean.
    inside_ms: u128,
    /// Due time up to which `inside_ms` is summed.
    integrated_to_ms: Option<i64>,
    visits: u64,
    completed_visits: u64,
    /// The completed visits that were timed, and their total time.
    timed_visits_completed: u64,
    completed_visit_ms: i64,
    /// One per zone of the layout (obstacles stay empty).
    zones: Vec<ZoneTally>,
    /// Focus events by department name (as published in `dep`).
    focus: BTreeMap<&'static str, u64>,
}

/// A timed shopper inside: since when, the zone of the last reported position, and a finished
/// checkout stay not yet known to be a payment (40 bytes).
#[derive(Clone, Copy)]
struct Visit {
    entered_ms: i64,
    zone_since_ms: i64,
    zone: Option<u32>,
    /// The last checkout stay: paying if the shopper leaves the store before reaching another
    /// department or checkout, passing through otherwise.
    checkout: Option<CheckoutStay>,
}

/// A finished stay in a checkout zone, waiting for what the shopper does next.
#[derive(Clone, Copy)]
struct CheckoutStay {
    zone: u32,
    /// The stay in ms (capped at u32::MAX, 49 days).
    stay_ms: u32,
}

/// A department stay at least this long is browsing; a shorter one is passing through (walking
/// across it on the way elsewhere). 20 s: more than two of a browsing shopper's position reports
/// (shopping_trip reports every 8 s while browsing), several times the few seconds a walk takes
/// to cross a department.
pub const BROWSING_MIN_SECONDS: i64 = 20;

#[derive(Clone, Copy, Default)]
struct ZoneTally {
    /// Times a shopper's reports went into the zone from outside it.
    visits: u64,
    /// Position reports inside the zone.
    reports: u64,
    /// Departments: finished stays of at least [`BROWSING_MIN_SECONDS`], and their total.
    browsing_stays: u64,
    browsing_ms: i64,
    /// Finished stays that were passing through: shorter department stays; checkout stays
    /// followed by another department or checkout.
    passing_stays: u64,
    /// Checkouts: stays of shoppers who then left the store (they paid), their total time (the
    /// line plus paying) and the longest.
    paying_stays: u64,
    paying_ms: i64,
    paying_longest_ms: i64,
}

impl Observation {
    /// An empty report for the stores of `fleet`, each with `layout`, publishing on `topics`;
    /// `entrance_queue` are the metrics of the queue outside a store with a capacity, if any.
    pub fn new(
        layout: StoreLayout,
        fleet: &Fleet,
        topics: Topics,
        entrance_queue: Option<QueueMetrics>,
    ) -> Observation {
        let store_ids = if fleet.is_configured() {
            fleet.ids().iter().map(|id| id.to_string()).collect()
        } else {
            Vec::new()
        };
        Observation(Arc::new(Shared {
            tally: Mutex::new(Tally {
                by_kind: [0; 4],
                truth_by_kind: [0; 4],
                start_ms: None,
                last_ms: None,
                layout,
                store_ids,
                stores: Vec::new(),
                inside_total: 0,
                peak_inside_total: 0,
                timed: 0,
                hasher: RandomState::new(),
                opening: None,
                open: OpenTime::default(),
                load: None,
            }),
            lateness: Mutex::new(Some(Vec::new())),
            topics,
            entrance_queue,
            started: Instant::now(),
            sensors: std::sync::OnceLock::new(),
            ended: std::sync::OnceLock::new(),
        }))
    }

    /// The sensor stages' fault counts: the report gives them (`sensors`).
    pub fn measure_sensors(&self, counts: crate::plugin_api::SensorCounts) {
        let _ = self.0.sensors.set(counts);
    }

    /// The opening hours a source keeps (see `BuildContext::announce_opening_hours`): the report
    /// then gives the mean inside while open too.
    pub fn measure_while_open(&self, rules: Option<ArrivalRules>) {
        let mut tally = self.0.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.opening = rules;
    }

    /// The pipeline's load stages, on a time line starting at `origin_ms` (the clock's origin):
    /// the report then gives each stage's target and its published events per second.
    pub fn measure_load(&self, plan: LoadPlan, origin_ms: i64) {
        let mut tally = self.0.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let windows = plan.windows();
        tally.load = Some(LoadTally {
            origin_ms,
            counts: vec![0; windows.len()],
            windows,
        });
    }

    /// The measured events per second of each load stage reached so far (once ramped), in
    /// order; empty without load stages.
    pub fn load_stage_rates(&self) -> Vec<f64> {
        let tally = self.0.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let (Some(load), Some(end_ms)) = (&tally.load, tally.last_ms) else {
            return Vec::new();
        };
        load.report(end_ms)
            .iter()
            .filter_map(|stage| stage.events_per_second)
            .collect()
    }

    /// The scheduler's handle; `start_ms` is the simulated start of the run.
    pub fn observer(&self, start_ms: i64) -> Observer {
        let mut tally = self.0.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.start_ms = Some(start_ms);
        Observer(self.0.clone())
    }

    /// The sinks' lateness histograms, once they are started; `virtual_clock`: the run's clock is
    /// virtual (`--speed max`), and lateness is not reported.
    pub fn measure_lateness(&self, histograms: Vec<LatenessHistogram>, virtual_clock: bool) {
        *self
            .0
            .lateness
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (!virtual_clock).then_some(histograms);
    }

    /// The sinks finished: the run's wall time ends here.
    pub fn publishing_ended(&self) {
        let _ = self.0.ended.set(self.0.started.elapsed());
    }

    /// The report of the run so far; `run` is the scheduler's own count of the run.
    pub fn summary(&self, run: &RunReport) -> RunSummary {
        let shared = &self.0;
        let wall_seconds = shared
            .ended
            .get()
            .copied()
            .unwrap_or_else(|| shared.started.elapsed())
            .as_secs_f64();
        let mut tally = shared.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let lateness = shared
            .lateness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|histograms| {
                let mut lateness = LatenessSummary::default();
                for histogram in histograms {
                    lateness.merge(&histogram.summary());
                }
                LatenessReport {
                    events: lateness.count(),
                    p50: lateness.quantile_seconds(0.5),
                    p99: lateness.quantile_seconds(0.99),
                    max: lateness.max_seconds(),
                }
            });
        let topics = &shared.topics;
        let kinds = [
            topics.enter.as_str(),
            topics.moves.as_str(),
            topics.exit.as_str(),
            topics.for_kind(&EventKind::Focus {
                dep: "",
                x: 0,
                y: 0,
            }),
        ];
        let mut events_per_topic = BTreeMap::new();
        for (topic, count) in kinds.into_iter().zip(tally.by_kind) {
            if count > 0 {
                *events_per_topic.entry(topic.to_string()).or_insert(0) += count;
            }
        }
        for (kind, count) in tally.truth_by_kind.into_iter().enumerate() {
            if count > 0 {
                let topic = topics.truth.topics()[kind].unwrap_or(kinds[kind]);
                *events_per_topic.entry(topic.to_string()).or_insert(0) += count;
            }
        }
        let events: u64 =
            tally.by_kind.iter().sum::<u64>() + tally.truth_by_kind.iter().sum::<u64>();
        let start_ms = tally.start_ms.unwrap_or(0);
        let end_ms = tally.last_ms.unwrap_or(start_ms).max(start_ms);
        let span_ms = end_ms - start_ms;
        tally.integrate_open(end_ms);
        let mean_inside_open = tally.opening.as_ref().map(|_| {
            if tally.open.open_ms > 0 {
                tally.open.inside_ms as f64 / tally.open.open_ms as f64
            } else {
                0.0
            }
        });
        // The whole run's shopper figures: every store's, added up.
        let mut store = StoreTally {
            zones: vec![ZoneTally::default(); tally.layout.zones().len()],
            ..StoreTally::default()
        };
        for one in &tally.stores {
            store.add(one, end_ms);
        }
        store.peak_inside = tally.peak_inside_total;
        let stores = tally
            .store_ids
            .iter()
            .enumerate()
            .map(|(index, id)| {
                let report = tally
                    .stores
                    .get(index)
                    .map(|one| one.report(end_ms, span_ms))
                    .unwrap_or_default();
                (id.clone(), report)
            })
            .collect();
        let mut departments = BTreeMap::new();
        let mut checkouts = BTreeMap::new();
        let mean_s = |total_ms: i64, stays: u64| {
            if stays == 0 {
                0.0
            } else {
                total_ms as f64 / stays as f64 / 1000.0
            }
        };
        for (zone, counts) in tally.layout.zones().iter().zip(&store.zones) {
            match zone.kind {
                ZoneKind::Department => {
                    departments.insert(
                        zone.name.clone(),
                        DepartmentReport {
                            visits: counts.visits,
                            browsing: counts.browsing_stays,
                            mean_browsing_seconds: mean_s(
                                counts.browsing_ms,
                                counts.browsing_stays,
                            ),
                            passing_through: counts.passing_stays,
                            reports: counts.reports,
                            focus: store.focus.get(zone.name.as_str()).copied().unwrap_or(0),
                        },
                    );
                }
                ZoneKind::Checkout => {
                    checkouts.insert(
                        zone.name.clone(),
                        CheckoutReport {
                            visits: counts.visits,
                            paid: counts.paying_stays,
                            mean_wait_seconds: mean_s(counts.paying_ms, counts.paying_stays),
                            longest_wait_seconds: counts.paying_longest_ms as f64 / 1000.0,
                            passing_through: counts.passing_stays,
                        },
                    );
                }
                _ => {}
            }
        }
        RunSummary {
            wall_seconds,
            events,
            events_per_second: if wall_seconds > 0.0 {
                events as f64 / wall_seconds
            } else {
                0.0
            },
            events_per_topic,
            simulated_start: format_ms(start_ms),
            simulated_end: format_ms(end_ms),
            simulated_seconds: span_ms as f64 / 1000.0,
            visits: store.visits,
            visits_completed: store.completed_visits,
            visits_untimed: store.untimed_visits,
            inside_at_end: tally.inside_total,
            mean_inside: store.mean_inside(span_ms, tally.inside_total),
            mean_inside_open,
            peak_inside: store.peak_inside,
            mean_visit_seconds: store.mean_visit_seconds(),
            stores,
            departments,
            checkouts,
            entrance_queue: shared.entrance_queue.as_ref().map(|queue| {
                let waited = queue.entered_after_waiting.get();
                EntranceQueueReport {
                    queued: queue.arrivals_queued.get(),
                    entered_after_waiting: waited,
                    mean_wait_seconds: if waited == 0 {
                        0.0
                    } else {
                        queue.total_wait_ms.get() as f64 / waited as f64 / 1000.0
                    },
                    turned_away: queue.arrivals_turned_away.get(),
                }
            }),
            focus: tally.by_kind[3],
            load_stages: tally
                .load
                .as_ref()
                .map(|load| load.report(end_ms))
                .unwrap_or_default(),
            publish_lateness_seconds: lateness,
            sensors: shared.sensors.get().map(|counts| {
                counts
                    .named()
                    .into_iter()
                    .map(|(name, count)| (name.to_string(), count))
                    .collect()
            }),
            events_skipped: run.skipped,
            events_left_on_timeline: run.left_on_timeline,
            verdict: None,
            thresholds: None,
        }
    }
}

impl Observer {
    /// Counts a batch handed to the sinks (time-ordered).
    pub fn observe(&self, events: &[Event]) {
        let mut tally = self.0.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let tally = &mut *tally;
        for event in events {
            let kind = match event.kind {
                EventKind::Enter => 0,
                EventKind::Move { .. } => 1,
                EventKind::Exit => 2,
                EventKind::Focus { .. } => 3,
            };
            if event.stamp.truth {
                // A truth copy: the figures below describe the stream consumers observe.
                tally.truth_by_kind[kind] += 1;
                continue;
            }
            tally.by_kind[kind] += 1;
            tally.integrate_open(event.due_ms);
            if let Some(load) = &mut tally.load {
                load.count(event.due_ms);
            }
            let index = event.store as usize;
            if tally.stores.len() <= index {
                let zones = tally.layout.zones().len();
                let start_ms = tally.start_ms;
                tally.stores.resize_with(index + 1, || StoreTally {
                    zones: vec![ZoneTally::default(); zones],
                    integrated_to_ms: start_ms,
                    ..StoreTally::default()
                });
            }
            let key = tally.key(&event.customer);
            let may_time = tally.timed < MAX_TIMED_SHOPPERS;
            let store = &mut tally.stores[index];
            let (before, timed_before) = (store.inside_now(), store.inside.len());
            store.observe(event, key, may_time, &tally.layout);
            let after = store.inside_now();
            tally.timed = tally.timed + store.inside.len() - timed_before;
            tally.inside_total = tally.inside_total + after - before;
            tally.peak_inside_total = tally.peak_inside_total.max(tally.inside_total);
        }
        if let Some(last) = events.last() {
            tally.last_ms = Some(tally.last_ms.map_or(last.due_ms, |ms| ms.max(last.due_ms)));
        }
    }
}

impl LoadTally {
    /// Each stage's figures; a stage the run did not reach the end of its ramp of (it ended
    /// before, at `end_ms`) has no measured rate. A stage the run ended within is measured up to
    /// its end.
    fn report(&self, end_ms: i64) -> Vec<LoadStageReport> {
        let run_end = end_ms - self.origin_ms;
        self.windows
            .iter()
            .zip(&self.counts)
            .map(|(window, count)| {
                let measured_ms = window.end_ms.min(run_end) - window.ramped_ms();
                LoadStageReport {
                    start: format_ms(self.origin_ms + window.start_ms),
                    duration: (window.end_ms - window.start_ms) as f64 / 1000.0,
                    target_events_per_second: window.target,
                    events_per_second: (measured_ms > 0)
                        .then(|| *count as f64 / (measured_ms as f64 / 1000.0)),
                }
            })
            .collect()
    }
}

impl Tally {
    /// Adds who is inside now over the open time up to `at_ms` (nothing without opening hours).
    /// Stretches are an hour at most, so this costs a few steps per simulated hour.
    fn integrate_open(&mut self, at_ms: i64) {
        let Some(rules) = &self.opening else {
            return;
        };
        let open = &mut self.open;
        let mut from = *open.to_ms.get_or_insert(self.start_ms.unwrap_or(at_ms));
        while from < at_ms {
            let (is_open, _, until) = match open.stretch {
                Some(stretch @ (_, start, until)) if (start..until).contains(&from) => stretch,
                _ => {
                    let (is_open, until) = rules.open_stretch(from);
                    let stretch = (is_open, from, until.max(from + 1));
                    open.stretch = Some(stretch);
                    stretch
                }
            };
            let to = until.min(at_ms);
            if is_open {
                open.open_ms += to - from;
                open.inside_ms += self.inside_total as u128 * (to - from) as u128;
            }
            from = to;
        }
        open.to_ms = Some(from.max(open.to_ms.unwrap_or(from)));
    }

    /// The key a shopper is timed under (see [`StoreTally::inside`]).
    fn key(&self, customer: &CustomerId) -> u64 {
        match customer {
            CustomerId::Number(number) => *number,
            CustomerId::Text(text) => self.hasher.hash_one(&**text),
        }
    }
}

impl StoreTally {
    /// Shoppers inside now, timed or not.
    fn inside_now(&self) -> u64 {
        self.inside.len() as u64 + self.untimed_inside
    }

    /// Counts one event of this store; `key` is its shopper's, `may_time` whether one more
    /// shopper may be timed.
    fn observe(&mut self, event: &Event, key: u64, may_time: bool, layout: &StoreLayout) {
        self.events += 1;
        // The time-weighted count of shoppers inside, up to this event.
        let at = event.due_ms;
        let from = *self.integrated_to_ms.get_or_insert(at);
        if at > from {
            self.inside_ms += self.inside_now() as u128 * (at - from) as u128;
            self.integrated_to_ms = Some(at);
        }
        match event.kind {
            EventKind::Enter => {
                let visit = Visit {
                    entered_ms: at,
                    zone_since_ms: at,
                    zone: None,
                    checkout: None,
                };
                if let Some(previous) = self.inside.get_mut(&key) {
                    // Entering again while inside (an HTTP scenario may) starts a new visit; the
                    // old one did not leave the store, so a checkout stay in it paid nothing.
                    let mut left = std::mem::replace(previous, visit);
                    Self::leave_zone(&mut self.zones, layout, &mut left, at);
                    Self::passed_checkout(&mut self.zones, &mut left);
                } else if may_time {
                    self.inside.insert(key, visit);
                } else {
                    self.untimed_inside += 1;
                    self.untimed_visits += 1;
                }
                self.visits += 1;
                self.peak_inside = self.peak_inside.max(self.inside_now());
            }
            EventKind::Move { .. } if layout.zones().is_empty() => {
                // A store without zones: a move changes no stay, so the shopper is not looked
                // up (a lookup per move was most of what the report cost such a run).
            }
            EventKind::Move { x, y } => {
                let zone = match (u32::try_from(x), u32::try_from(y)) {
                    (Ok(x), Ok(y)) => layout.zone_at_point(x, y),
                    _ => None,
                };
                // A move of someone not timed (not seen entering: published before the report
                // started, or an HTTP move without an enter; or untimed) counts as an event only.
                let Some(visit) = self.inside.get_mut(&key) else {
                    return;
                };
                let zone = zone.map(|zone| zone as u32);
                if visit.zone != zone {
                    Self::leave_zone(&mut self.zones, layout, visit, at);
                    visit.zone = zone;
                    visit.zone_since_ms = at;
                    if let Some(zone) = zone {
                        self.zones[zone as usize].visits += 1;
                        if matches!(
                            layout.zones()[zone as usize].kind,
                            ZoneKind::Department | ZoneKind::Checkout
                        ) {
                            // On to another department or checkout: a checkout before was
                            // passed, not paid at.
                            Self::passed_checkout(&mut self.zones, visit);
                        }
                    }
                }
                if let Some(zone) = zone {
                    self.zones[zone as usize].reports += 1;
                }
            }
            EventKind::Exit => {
                if let Some(mut visit) = self.inside.remove(&key) {
                    Self::leave_zone(&mut self.zones, layout, &mut visit, at);
                    if let Some(paid) = visit.checkout {
                        // Out of the store after the checkout: that stay was the line and paying.
                        let counts = &mut self.zones[paid.zone as usize];
                        let stay = i64::from(paid.stay_ms);
                        counts.paying_stays += 1;
                        counts.paying_ms += stay;
                        counts.paying_longest_ms = counts.paying_longest_ms.max(stay);
                    }
                    self.completed_visits += 1;
                    self.timed_visits_completed += 1;
                    self.completed_visit_ms += at - visit.entered_ms;
                } else if self.untimed_inside > 0 {
                    // Someone not timed: while there are untimed shoppers inside, an exit of
                    // someone not timed is taken as one of theirs.
                    self.untimed_inside -= 1;
                    self.completed_visits += 1;
                }
            }
            EventKind::Focus { dep, .. } => *self.focus.entry(dep).or_insert(0) += 1,
        }
    }

    /// Adds `other`'s counts (another store's) to these, its time-weighted count taken up to
    /// `end_ms`.
    fn add(&mut self, other: &StoreTally, end_ms: i64) {
        self.events += other.events;
        self.inside_ms += other.inside_ms_to(end_ms);
        self.visits += other.visits;
        self.untimed_visits += other.untimed_visits;
        self.completed_visits += other.completed_visits;
        self.timed_visits_completed += other.timed_visits_completed;
        self.completed_visit_ms += other.completed_visit_ms;
        for (sum, zone) in self.zones.iter_mut().zip(&other.zones) {
            sum.visits += zone.visits;
            sum.reports += zone.reports;
            sum.browsing_stays += zone.browsing_stays;
            sum.browsing_ms += zone.browsing_ms;
            sum.passing_stays += zone.passing_stays;
            sum.paying_stays += zone.paying_stays;
            sum.paying_ms += zone.paying_ms;
            sum.paying_longest_ms = sum.paying_longest_ms.max(zone.paying_longest_ms);
        }
        for (dep, count) in &other.focus {
            *self.focus.entry(dep).or_insert(0) += count;
        }
    }

    /// Σ inside × ms up to `end_ms` (the store's last event may be earlier than the run's).
    fn inside_ms_to(&self, end_ms: i64) -> u128 {
        let from = self.integrated_to_ms.unwrap_or(end_ms);
        self.inside_ms + self.inside_now() as u128 * (end_ms - from).max(0) as u128
    }

    fn mean_inside(&self, span_ms: i64, inside_now: u64) -> f64 {
        time_weighted_mean(self.inside_ms, span_ms, inside_now)
    }

    fn mean_visit_seconds(&self) -> f64 {
        if self.timed_visits_completed == 0 {
            0.0
        } else {
            self.completed_visit_ms as f64 / self.timed_visits_completed as f64 / 1000.0
        }
    }

    /// This store's figures for the report's `stores`.
    fn report(&self, end_ms: i64, span_ms: i64) -> StoreReport {
        let inside_now = self.inside_now();
        StoreReport {
            events: self.events,
            visits: self.visits,
            visits_completed: self.completed_visits,
            inside_at_end: inside_now,
            mean_inside: time_weighted_mean(self.inside_ms_to(end_ms), span_ms, inside_now),
            peak_inside: self.peak_inside,
            mean_visit_seconds: self.mean_visit_seconds(),
        }
    }

    /// Ends `visit`'s stay in its current zone at `at`: a department stay is browsing or passing
    /// through by its length; a checkout stay waits in the visit for what comes next.
    fn leave_zone(zones: &mut [ZoneTally], layout: &StoreLayout, visit: &mut Visit, at: i64) {
        let Some(zone) = visit.zone else {
            return;
        };
        let stay = at - visit.zone_since_ms;
        match layout.zones()[zone as usize].kind {
            ZoneKind::Department => {
                let counts = &mut zones[zone as usize];
                if stay >= BROWSING_MIN_SECONDS * 1000 {
                    counts.browsing_stays += 1;
                    counts.browsing_ms += stay;
                } else {
                    counts.passing_stays += 1;
                }
            }
            ZoneKind::Checkout => {
                Self::passed_checkout(zones, visit);
                visit.checkout = Some(CheckoutStay {
                    zone,
                    stay_ms: u32::try_from(stay.max(0)).unwrap_or(u32::MAX),
                });
            }
            _ => {}
        }
    }

    /// The visit's pending checkout stay (if any) was passing through.
    fn passed_checkout(zones: &mut [ZoneTally], visit: &mut Visit) {
        if let Some(passed) = visit.checkout.take() {
            zones[passed.zone as usize].passing_stays += 1;
        }
    }
}

/// Shoppers inside on average over `span_ms` from their Σ inside × ms; with no span (one
/// instant), those inside now.
fn time_weighted_mean(inside_ms: u128, span_ms: i64, inside_now: u64) -> f64 {
    if span_ms > 0 {
        inside_ms as f64 / span_ms as f64
    } else {
        inside_now as f64
    }
}

/// The run report, as written to `--report FILE` (the book's *Run report* section documents each key).
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub wall_seconds: f64,
    pub events: u64,
    pub events_per_second: f64,
    pub events_per_topic: BTreeMap<String, u64>,
    pub simulated_start: String,
    pub simulated_end: String,
    pub simulated_seconds: f64,
    pub visits: u64,
    pub visits_completed: u64,
    /// Visits of shoppers who entered while [`MAX_TIMED_SHOPPERS`] were timed: counted, not timed.
    pub visits_untimed: u64,
    pub inside_at_end: u64,
    pub mean_inside: f64,
    /// Shoppers inside on average while the store was open (the sources' opening hours), all
    /// stores together; `null` when no source keeps opening hours (then it is `mean_inside`).
    pub mean_inside_open: Option<f64>,
    pub peak_inside: u64,
    pub mean_visit_seconds: f64,
    /// With a fleet of stores: each store's own figures, by store id (left out otherwise).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, StoreReport>,
    pub departments: BTreeMap<String, DepartmentReport>,
    pub checkouts: BTreeMap<String, CheckoutReport>,
    /// `null` unless a source has a `capacity`.
    pub entrance_queue: Option<EntranceQueueReport>,
    pub focus: u64,
    /// With `load:` stages: each stage's target and what was published (left out otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_stages: Vec<LoadStageReport>,
    /// `null` on a virtual clock (`--speed max`): events leave as fast as the sinks take them.
    pub publish_lateness_seconds: Option<LatenessReport>,
    /// With `sensors.enabled`: each kind of fault the sensor stages injected, by name (left out
    /// otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensors: Option<BTreeMap<String, u64>>,
    pub events_skipped: u64,
    pub events_left_on_timeline: u64,
    /// The expectations' and the delivery check's figures, when the pipeline has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::verdict::VerdictReport>,
    /// Each threshold's outcome, when the pipeline has thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Vec<crate::thresholds::Outcome>>,
}

/// One store of a fleet.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StoreReport {
    pub events: u64,
    pub visits: u64,
    pub visits_completed: u64,
    pub inside_at_end: u64,
    pub mean_inside: f64,
    pub peak_inside: u64,
    pub mean_visit_seconds: f64,
}

/// One department of the layout: its stays split into browsing (at least
/// [`BROWSING_MIN_SECONDS`]) and passing through, so shoppers crossing it on their way elsewhere
/// do not shorten the dwell of those who shop there.
#[derive(Clone, Debug, Serialize)]
pub struct DepartmentReport {
    /// Times a shopper's reports went into it from outside (browsing or passing through).
    pub visits: u64,
    /// Finished stays of at least [`BROWSING_MIN_SECONDS`], and their mean length.
    pub browsing: u64,
    pub mean_browsing_seconds: f64,
    /// Finished stays shorter than that.
    pub passing_through: u64,
    pub reports: u64,
    pub focus: u64,
}

/// One checkout zone: the waits (line plus paying) of the shoppers who paid there, i.e. left the
/// store after it without reaching another department or checkout; the others passed through.
#[derive(Clone, Debug, Serialize)]
pub struct CheckoutReport {
    pub visits: u64,
    pub paid: u64,
    pub mean_wait_seconds: f64,
    pub longest_wait_seconds: f64,
    pub passing_through: u64,
}

/// The queue outside a store at capacity, as generated (the source's queue metrics).
#[derive(Clone, Debug, Serialize)]
pub struct EntranceQueueReport {
    pub queued: u64,
    pub entered_after_waiting: u64,
    pub mean_wait_seconds: f64,
    pub turned_away: u64,
}

/// One load stage: its target and the published events per simulated second over the stage
/// once ramped (from the end of its ramp to its end).
#[derive(Clone, Debug, Serialize)]
pub struct LoadStageReport {
    /// When the stage started (simulated time).
    pub start: String,
    /// How long it lasts, ramp included (seconds).
    pub duration: f64,
    pub target_events_per_second: f64,
    /// `null` when the run ended before the stage's ramp did.
    pub events_per_second: Option<f64>,
}

/// Publish lateness over every sink ([`crate::lateness`]).
#[derive(Clone, Debug, Serialize)]
pub struct LatenessReport {
    pub events: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl RunSummary {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes") + "\n"
    }

    /// The short table printed on stderr at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "run report");
        let _ = writeln!(
            out,
            "  wall time          {:.1} s, {} events ({:.0}/s)",
            self.wall_seconds, self.events, self.events_per_second
        );
        let _ = writeln!(
            out,
            "  simulated          {} to {} ({:.0} s)",
            self.simulated_start, self.simulated_end, self.simulated_seconds
        );
        for (topic, count) in &self.events_per_topic {
            let _ = writeln!(out, "  {topic:<18} {count}");
        }
        let _ = writeln!(
            out,
            "  visits             {} ({} completed, mean {:.1} s)",
            self.visits, self.visits_completed, self.mean_visit_seconds
        );
        if let Some(sensors) = &self.sensors {
            let faults: Vec<String> = sensors
                .iter()
                .filter(|(name, _)| name.as_str() != "reports")
                .map(|(name, count)| format!("{name} {count}"))
                .collect();
            let _ = writeln!(
                out,
                "  sensors            {} reports: {}",
                sensors.get("reports").copied().unwrap_or(0),
                faults.join(", ")
            );
        }
        if self.visits_untimed > 0 {
            let _ = writeln!(
                out,
                "  untimed visits     {} (entered while {MAX_TIMED_SHOPPERS} shoppers were timed: counted, not timed)",
                self.visits_untimed
            );
        }
        let while_open = self
            .mean_inside_open
            .map(|mean| format!(" ({mean:.1} while open)"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  inside             mean {:.1}{while_open}, peak {}, at end {}",
            self.mean_inside, self.peak_inside, self.inside_at_end
        );
        if !self.stores.is_empty() {
            let busiest = self
                .stores
                .iter()
                .max_by_key(|(_, store)| store.visits)
                .map(|(id, store)| format!("{id} ({} visits)", store.visits))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  stores             {} (busiest {busiest}; each in the JSON's `stores`)",
                self.stores.len()
            );
        }
        match &self.publish_lateness_seconds {
            Some(lateness) => {
                let _ = writeln!(
                    out,
                    "  publish lateness   p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                    lateness.p50 * 1e3,
                    lateness.p99 * 1e3,
                    lateness.max * 1e3
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  publish lateness   not measured: the clock is virtual (--speed max), events leave as fast as the sinks take them"
                );
            }
        }
        for (index, stage) in self.load_stages.iter().enumerate() {
            let published = match stage.events_per_second {
                Some(actual) if stage.target_events_per_second > 0.0 => format!(
                    "{actual:.0}/s ({:+.1}%)",
                    (actual / stage.target_events_per_second - 1.0) * 100.0
                ),
                Some(actual) => format!("{actual:.0}/s"),
                None => "not reached".into(),
            };
            let _ = writeln!(
                out,
                "  load stage {:<7} {} for {:.0} s: target {:.0}/s, published {published} once ramped",
                index + 1,
                stage.start,
                stage.duration,
                stage.target_events_per_second
            );
        }
        if let Some(queue) = &self.entrance_queue {
            let _ = writeln!(
                out,
                "  entrance queue     {} queued, mean wait {:.1} s, {} turned away",
                queue.queued, queue.mean_wait_seconds, queue.turned_away
            );
        }
        if !self.departments.is_empty() {
            let _ = writeln!(
                out,
                "  {:<24} {:>8} {:>10} {:>8} {:>8}",
                "department", "browsing", "browse s", "passing", "focus"
            );
            for (name, department) in &self.departments {
                let _ = writeln!(
                    out,
                    "  {name:<24} {:>8} {:>10.1} {:>8} {:>8}",
                    department.browsing,
                    department.mean_browsing_seconds,
                    department.passing_through,
                    department.focus
                );
            }
        }
        if !self.checkouts.is_empty() {
            let _ = writeln!(
                out,
                "  {:<24} {:>8} {:>10} {:>8} {:>8}",
                "checkout", "paid", "wait s", "longest", "passing"
            );
            for (name, checkout) in &self.checkouts {
                let _ = writeln!(
                    out,
                    "  {name:<24} {:>8} {:>10.1} {:>8.1} {:>8}",
                    checkout.paid,
                    checkout.mean_wait_seconds,
                    checkout.longest_wait_seconds,
                    checkout.passing_through
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_api::{LayoutSpec, Zone};

    fn event(due_ms: i64, id: u64, kind: EventKind) -> Event {
        Event {
            due_ms,
            customer: id.into(),
            kind,
            store: 0,
            stamp: Default::default(),
        }
    }

    fn two_departments() -> StoreLayout {
        let mut spec = LayoutSpec::grid(100, 100, (0, 0));
        spec.zones = vec![
            Zone::new("A", ZoneKind::Department, [10, 10, 29, 29]),
            Zone::new("Till", ZoneKind::Checkout, [50, 50, 59, 59]),
        ];
        StoreLayout::new(spec).unwrap()
    }

    #[test]
    fn counts_visits_zones_and_the_time_weighted_mean_inside() {
        let observation =
            Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        let observer = observation.observer(0);
        let move_to = |x, y| EventKind::Move { x, y };
        observer.observe(&[
            event(0, 1, EventKind::Enter),
            event(1_000, 1, move_to(15, 15)),
            event(2_000, 2, EventKind::Enter),
            event(3_000, 1, move_to(16, 15)),
            event(
                3_000,
                1,
                EventKind::Focus {
                    dep: "A",
                    x: 16,
                    y: 15,
                },
            ),
            event(5_000, 1, move_to(55, 55)),
            event(8_000, 1, move_to(70, 70)),
            event(10_000, 1, EventKind::Exit),
        ]);
        let summary = observation.summary(&RunReport::default());
        assert_eq!(summary.events, 8);
        assert_eq!(summary.events_per_topic["customer/move"], 4);
        assert_eq!(summary.events_per_topic["customer/focus"], 1);
        assert_eq!(summary.visits, 2);
        assert_eq!(summary.visits_completed, 1);
        assert_eq!(summary.peak_inside, 2);
        assert_eq!(summary.inside_at_end, 1);
        // 1 inside for 2 s, 2 inside for 8 s, over 10 s.
        assert!(
            (summary.mean_inside - 1.8).abs() < 1e-9,
            "{}",
            summary.mean_inside
        );
        assert_eq!(summary.mean_visit_seconds, 10.0);
        let a = &summary.departments["A"];
        assert_eq!((a.visits, a.reports, a.focus), (1, 2, 1));
        // 4 s in A is walking through it; 3 s at the till, then out of the store: paid.
        assert_eq!((a.browsing, a.passing_through), (0, 1));
        let till = &summary.checkouts["Till"];
        assert_eq!((till.visits, till.paid, till.passing_through), (1, 1, 0));
        assert_eq!(till.mean_wait_seconds, 3.0);
        assert_eq!(summary.simulated_seconds, 10.0);
    }

    #[test]
    fn browsing_is_told_from_passing_through_and_payers_from_passers_by() {
        let observation =
            Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        let observer = observation.observer(0);
        let move_to = |x, y| EventKind::Move { x, y };
        observer.observe(&[
            // 1: through the till (2 s) into A, browses 30 s, leaves A, out: passed the till.
            event(0, 1, EventKind::Enter),
            event(1_000, 1, move_to(55, 55)),
            event(3_000, 1, move_to(15, 15)),
            event(33_000, 1, move_to(40, 40)),
            event(34_000, 1, EventKind::Exit),
            // 2: browses A 25 s, pays at the till (60 s), out.
            event(40_000, 2, EventKind::Enter),
            event(41_000, 2, move_to(20, 20)),
            event(66_000, 2, move_to(52, 52)),
            event(126_000, 2, move_to(80, 80)),
            event(127_000, 2, EventKind::Exit),
        ]);
        let summary = observation.summary(&RunReport::default());
        let a = &summary.departments["A"];
        assert_eq!((a.visits, a.browsing, a.passing_through), (2, 2, 0));
        assert_eq!(a.mean_browsing_seconds, 27.5);
        let till = &summary.checkouts["Till"];
        assert_eq!((till.visits, till.paid, till.passing_through), (2, 1, 1));
        assert_eq!(till.mean_wait_seconds, 60.0);
        assert_eq!(till.longest_wait_seconds, 60.0);
    }

    #[test]
    fn lateness_is_left_out_on_a_virtual_clock() {
        let observation =
            Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        observation.measure_lateness(Vec::new(), true);
        let summary = observation.summary(&RunReport::default());
        assert!(summary.publish_lateness_seconds.is_none());
        assert!(
            summary
                .to_json()
                .contains("\"publish_lateness_seconds\": null")
        );
        assert!(
            summary.table().contains("not measured"),
            "{}",
            summary.table()
        );
        observation.measure_lateness(Vec::new(), false);
        let summary = observation.summary(&RunReport::default());
        assert_eq!(summary.publish_lateness_seconds.unwrap().events, 0);
    }

    #[test]
    fn the_table_names_the_topics_and_zones() {
        let observation =
            Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        observation
            .observer(0)
            .observe(&[event(0, 1, EventKind::Enter)]);
        let table = observation.summary(&RunReport::default()).table();
        assert!(table.contains("customer/enter"), "{table}");
        assert!(table.contains("Till"), "{table}");
        assert!(table.contains("publish lateness"), "{table}");
    }

    #[test]
    fn a_fleet_is_reported_per_store_and_in_total() {
        let fleet = Fleet::new(vec!["north".into(), "south".into()], Default::default())
            .expect("two stores");
        let observation = Observation::new(two_departments(), &fleet, Topics::default(), None);
        let at = |due_ms, id, kind, store| Event {
            store,
            ..event(due_ms, id, kind)
        };
        observation.observer(0).observe(&[
            at(0, 1, EventKind::Enter, 0),
            at(0, 2, EventKind::Enter, 1),
            at(1_000, 3, EventKind::Enter, 1),
            at(4_000, 2, EventKind::Exit, 1),
            at(10_000, 1, EventKind::Exit, 0),
        ]);
        let summary = observation.summary(&RunReport::default());
        assert_eq!((summary.visits, summary.visits_completed), (3, 2));
        // Everyone inside at once: 1, 2 and 3 between 1 s and 4 s.
        assert_eq!(summary.peak_inside, 3);
        assert_eq!(summary.inside_at_end, 1);
        let north = &summary.stores["north"];
        let south = &summary.stores["south"];
        assert_eq!((north.events, north.visits, north.peak_inside), (2, 1, 1));
        assert_eq!((south.events, south.visits, south.peak_inside), (3, 2, 2));
        assert_eq!(south.inside_at_end, 1);
        // north: one shopper for all 10 s; south: 2 × 3 s + 1 × 1 s + 1 × 6 s = 13 shopper-s.
        assert_eq!(north.mean_inside, 1.0);
        assert_eq!(south.mean_inside, 1.3);
        assert_eq!(summary.mean_inside, 2.3);
        assert!(summary.to_json().contains("\"stores\""));
        let one_store =
            Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        one_store
            .observer(0)
            .observe(&[event(0, 1, EventKind::Enter)]);
        assert!(
            !one_store
                .summary(&RunReport::default())
                .to_json()
                .contains("\"stores\"")
        );
    }

    #[test]
    fn shoppers_beyond_the_cap_are_counted_but_not_timed() {
        let observation =
            Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        let observer = observation.observer(0);
        let total = MAX_TIMED_SHOPPERS as u64 + 10;
        let enters: Vec<Event> = (0..total)
            .map(|id| Event {
                customer: CustomerId::Text(format!("shopper-{id}").into()),
                ..event(0, 0, EventKind::Enter)
            })
            .collect();
        observer.observe(&enters);
        let tally = observation.0.tally.lock().unwrap();
        assert_eq!(tally.timed, MAX_TIMED_SHOPPERS);
        assert_eq!(tally.stores[0].inside.len(), MAX_TIMED_SHOPPERS);
        drop(tally);
        let exits: Vec<Event> = enters
            .iter()
            .map(|enter| Event {
                due_ms: 2_000,
                kind: EventKind::Exit,
                ..enter.clone()
            })
            .collect();
        observer.observe(&exits);
        let summary = observation.summary(&RunReport::default());
        assert_eq!((summary.visits, summary.visits_untimed), (total, 10));
        assert_eq!(summary.visits_completed, total);
        assert_eq!((summary.peak_inside, summary.inside_at_end), (total, 0));
        assert_eq!(summary.mean_visit_seconds, 2.0);
        assert_eq!(summary.mean_inside, total as f64);
        assert!(summary.table().contains("untimed visits"));
        assert_eq!(observation.0.tally.lock().unwrap().timed, 0);
    }

    #[test]
    fn load_stages_are_measured_once_ramped_and_unreached_ones_are_null() {
        use crate::plugin_api::LoadStage;
        let observation =
            Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        // Two 10 s stages with 4 s ramps, on a time line starting at 1,000 ms; a third never
        // reached.
        let stage = |events_per_second| LoadStage {
            duration_ms: 10_000,
            events_per_second,
        };
        observation.measure_load(
            LoadPlan::new(vec![stage(2.0), stage(5.0), stage(1.0)], 4_000),
            1_000,
        );
        let observer = observation.observer(1_000);
        // In the first stage's ramp (not counted), then 12 events in its 6 s once ramped; the
        // second stage: 2 in its ramp, then the run ends 3 s into its measured part with 15.
        let mut events: Vec<Event> = (0..3)
            .map(|n| event(1_000 + n * 1_000, n as u64, EventKind::Enter))
            .collect();
        events.extend((0..12).map(|n| event(5_000 + n * 500, 100, EventKind::Move { x: 1, y: 1 })));
        events
            .extend((0..2).map(|n| event(11_000 + n * 1_000, 100, EventKind::Move { x: 1, y: 1 })));
        events
            .extend((0..15).map(|n| event(15_000 + n * 200, 100, EventKind::Move { x: 1, y: 1 })));
        observer.observe(&events);
        let summary = observation.summary(&RunReport::default());
        let stages = &summary.load_stages;
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[0].target_events_per_second, 2.0);
        assert_eq!(stages[0].events_per_second, Some(2.0));
        assert_eq!(stages[1].start, format_ms(11_000));
        assert_eq!(stages[1].duration, 10.0);
        // 15 events from 15,000 ms to the last event at 17,800 ms.
        assert!((stages[1].events_per_second.unwrap() - 15.0 / 2.8).abs() < 1e-9);
        assert_eq!(stages[2].events_per_second, None);
        let json = summary.to_json();
        assert!(json.contains("\"load_stages\""), "{json}");
        assert!(
            summary.table().contains("load stage 3"),
            "{}",
            summary.table()
        );
        assert!(
            summary.table().contains("not reached"),
            "{}",
            summary.table()
        );
        // Without stages the key is left out.
        let plain = Observation::new(two_departments(), &Fleet::single(), Topics::default(), None);
        assert!(
            !plain
                .summary(&RunReport::default())
                .to_json()
                .contains("load_stages")
        );
    }
}
