//! The run report (`customersim run --report FILE`): a JSON summary of what a run published,
//! written when the run ends (also after SIGINT/SIGTERM and after the reader of stdout went
//! away), and the same as a short table on stderr. The README's *Run report* section documents
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
//! Timing visits and zone stays takes a small record per shopper inside (a 64-bit key and 24
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
    CustomerId, Event, EventKind, Fleet, QueueMetrics, StoreLayout, Topics, ZoneKind,
};
use crate::scheduler::{RunReport, format_ms};

/// Most shoppers inside at once whose visits and zone stays the report times (one record of 32
/// bytes each, about 9 MB at most with the hash tables' spare room). Shoppers entering beyond it
/// count in `visits`, `visits_completed` and the figures of who is inside, but not in the visit
/// and dwell times nor the zones' visits; the report gives their number as `visits_untimed`.
pub const MAX_TIMED_SHOPPERS: usize = 200_000;

/// Asked for with `Pipeline::observe`: collects the report while the pipeline runs and makes
/// the summary after it. Clones share the same counts.
#[derive(Clone)]
pub struct Observation(Arc<Shared>);

struct Shared {
    tally: Mutex<Tally>,
    lateness: Mutex<Vec<LatenessHistogram>>,
    topics: Topics,
    /// The arrivals' queue outside a full store (sources with a `capacity`): shoppers who queue
    /// publish nothing until they enter, so this comes from the generator's metrics.
    entrance_queue: Option<QueueMetrics>,
    started: Instant,
}

/// What the scheduler calls with every batch it hands to the sinks.
#[derive(Clone)]
pub struct Observer(Arc<Shared>);

/// Everything counted from the published stream.
struct Tally {
    /// Published events by kind: enter, move, exit, focus.
    by_kind: [u64; 4],
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

/// A timed shopper inside: since when, and the zone of the last reported position (24 bytes).
#[derive(Clone, Copy)]
struct Visit {
    entered_ms: i64,
    zone_since_ms: i64,
    zone: Option<u32>,
}

#[derive(Clone, Copy, Default)]
struct ZoneTally {
    /// Times a shopper's reports went into the zone from outside it.
    visits: u64,
    /// Position reports inside the zone.
    reports: u64,
    /// Simulated ms shoppers spent in it, from the first report inside to the first outside
    /// (finished stays only).
    dwell_ms: i64,
    /// The longest finished stay.
    longest_ms: i64,
    /// Finished stays.
    stays: u64,
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
                start_ms: None,
                last_ms: None,
                layout,
                store_ids,
                stores: Vec::new(),
                inside_total: 0,
                peak_inside_total: 0,
                timed: 0,
                hasher: RandomState::new(),
            }),
            lateness: Mutex::new(Vec::new()),
            topics,
            entrance_queue,
            started: Instant::now(),
        }))
    }

    /// The scheduler's handle; `start_ms` is the simulated start of the run.
    pub fn observer(&self, start_ms: i64) -> Observer {
        let mut tally = self.0.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.start_ms = Some(start_ms);
        Observer(self.0.clone())
    }

    /// The sinks' lateness histograms, once they are started.
    pub fn measure_lateness(&self, histograms: Vec<LatenessHistogram>) {
        *self
            .0
            .lateness
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = histograms;
    }

    /// The report of the run so far; `run` is the scheduler's own count of the run.
    pub fn summary(&self, run: &RunReport) -> RunSummary {
        let shared = &self.0;
        let wall_seconds = shared.started.elapsed().as_secs_f64();
        let tally = shared.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lateness = LatenessSummary::default();
        for histogram in shared
            .lateness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            lateness.merge(&histogram.summary());
        }
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
        let events: u64 = tally.by_kind.iter().sum();
        let start_ms = tally.start_ms.unwrap_or(0);
        let end_ms = tally.last_ms.unwrap_or(start_ms).max(start_ms);
        let span_ms = end_ms - start_ms;
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
        for (zone, counts) in tally.layout.zones().iter().zip(&store.zones) {
            let mean_s = |total_ms: i64| {
                if counts.stays == 0 {
                    0.0
                } else {
                    total_ms as f64 / counts.stays as f64 / 1000.0
                }
            };
            match zone.kind {
                ZoneKind::Department => {
                    departments.insert(
                        zone.name.clone(),
                        DepartmentReport {
                            visits: counts.visits,
                            reports: counts.reports,
                            mean_dwell_seconds: mean_s(counts.dwell_ms),
                            focus: store.focus.get(zone.name.as_str()).copied().unwrap_or(0),
                        },
                    );
                }
                ZoneKind::Checkout => {
                    checkouts.insert(
                        zone.name.clone(),
                        CheckoutReport {
                            visits: counts.visits,
                            mean_wait_seconds: mean_s(counts.dwell_ms),
                            longest_wait_seconds: counts.longest_ms as f64 / 1000.0,
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
            publish_lateness_seconds: LatenessReport {
                events: lateness.count(),
                p50: lateness.quantile_seconds(0.5),
                p99: lateness.quantile_seconds(0.99),
                max: lateness.max_seconds(),
            },
            events_skipped: run.skipped,
            events_left_on_timeline: run.left_on_timeline,
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
            tally.by_kind[kind] += 1;
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

impl Tally {
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
                };
                if let Some(previous) = self.inside.get_mut(&key) {
                    // Entering again while inside (an HTTP scenario may) starts a new visit.
                    let left = std::mem::replace(previous, visit);
                    Self::finish_stay(&mut self.zones, &left, at);
                } else if may_time {
                    self.inside.insert(key, visit);
                } else {
                    self.untimed_inside += 1;
                    self.untimed_visits += 1;
                }
                self.visits += 1;
                self.peak_inside = self.peak_inside.max(self.inside_now());
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
                    let left = *visit;
                    visit.zone = zone;
                    visit.zone_since_ms = at;
                    Self::finish_stay(&mut self.zones, &left, at);
                    if let Some(zone) = zone {
                        self.zones[zone as usize].visits += 1;
                    }
                }
                if let Some(zone) = zone {
                    self.zones[zone as usize].reports += 1;
                }
            }
            EventKind::Exit => {
                if let Some(visit) = self.inside.remove(&key) {
                    Self::finish_stay(&mut self.zones, &visit, at);
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
            sum.dwell_ms += zone.dwell_ms;
            sum.longest_ms = sum.longest_ms.max(zone.longest_ms);
            sum.stays += zone.stays;
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

    fn finish_stay(zones: &mut [ZoneTally], visit: &Visit, at: i64) {
        if let Some(zone) = visit.zone {
            let stay = at - visit.zone_since_ms;
            let counts = &mut zones[zone as usize];
            counts.stays += 1;
            counts.dwell_ms += stay;
            counts.longest_ms = counts.longest_ms.max(stay);
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

/// The run report, as written to `--report FILE` (the README's *Run report* documents each key).
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
    pub publish_lateness_seconds: LatenessReport,
    pub events_skipped: u64,
    pub events_left_on_timeline: u64,
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

/// One department of the layout.
#[derive(Clone, Debug, Serialize)]
pub struct DepartmentReport {
    pub visits: u64,
    pub reports: u64,
    pub mean_dwell_seconds: f64,
    pub focus: u64,
}

/// One checkout zone: the time from a shopper's first report in it to the first outside it is
/// the wait in its line plus paying.
#[derive(Clone, Debug, Serialize)]
pub struct CheckoutReport {
    pub visits: u64,
    pub mean_wait_seconds: f64,
    pub longest_wait_seconds: f64,
}

/// The queue outside a store at capacity, as generated (the source's queue metrics).
#[derive(Clone, Debug, Serialize)]
pub struct EntranceQueueReport {
    pub queued: u64,
    pub entered_after_waiting: u64,
    pub mean_wait_seconds: f64,
    pub turned_away: u64,
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
        if self.visits_untimed > 0 {
            let _ = writeln!(
                out,
                "  untimed visits     {} (entered while {MAX_TIMED_SHOPPERS} shoppers were timed: counted, not timed)",
                self.visits_untimed
            );
        }
        let _ = writeln!(
            out,
            "  inside             mean {:.1}, peak {}, at end {}",
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
        let lateness = &self.publish_lateness_seconds;
        let _ = writeln!(
            out,
            "  publish lateness   p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            lateness.p50 * 1e3,
            lateness.p99 * 1e3,
            lateness.max * 1e3
        );
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
                "  {:<24} {:>8} {:>10} {:>8}",
                "department", "visits", "dwell s", "focus"
            );
            for (name, department) in &self.departments {
                let _ = writeln!(
                    out,
                    "  {name:<24} {:>8} {:>10.1} {:>8}",
                    department.visits, department.mean_dwell_seconds, department.focus
                );
            }
        }
        if !self.checkouts.is_empty() {
            let _ = writeln!(
                out,
                "  {:<24} {:>8} {:>10} {:>8}",
                "checkout", "visits", "wait s", "longest"
            );
            for (name, checkout) in &self.checkouts {
                let _ = writeln!(
                    out,
                    "  {name:<24} {:>8} {:>10.1} {:>8.1}",
                    checkout.visits, checkout.mean_wait_seconds, checkout.longest_wait_seconds
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
        assert_eq!(a.mean_dwell_seconds, 4.0);
        let till = &summary.checkouts["Till"];
        assert_eq!(till.visits, 1);
        assert_eq!(till.mean_wait_seconds, 3.0);
        assert_eq!(summary.simulated_seconds, 10.0);
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
}
