//! When simulated shoppers come in: the arrival process shared by the simulated sources.
//!
//! Arrivals form a Poisson process. Its base rate keeps the mean number of shoppers inside at a
//! target while the store is open (Little's law: rate = target / mean visit length). A source may
//! shape it by time of day and limit how many shoppers fit inside:
//!
//! - `opening_hours: ["08:00", "21:00"]`: nobody arrives outside these hours (local time).
//!   Overnight hours (`["22:00", "06:00"]`) are open from the first time to the second the next
//!   morning. Closing stops arrivals only: shoppers inside finish their visits.
//! - `hourly_profile:` 24 relative weights, one per local hour from 00:00. They are normalised so
//!   that the mean rate over the open time of a day stays the base rate, so `average_in_store`
//!   stays the mean number inside while open, only distributed over the day.
//! - `timezone:` the IANA name of the zone the hours are read in (default `UTC`). On the days the
//!   clocks change, local hours are taken as they come: a skipped hour gets no arrivals, a repeated
//!   one gets them twice.
//! - `capacity:` the most shoppers inside at once. An arrival beyond it waits outside the entrance
//!   in a first-come-first-served queue and enters a millisecond after someone leaves; waits are
//!   counted ([`QueueMetrics`], [`QueueStats`]). Whoever still waits when the store closes (or the
//!   doors close at the end of the run) goes home.
//! - `max_queue:` the most arrivals waiting outside at once (default [`default_max_queue`]); one
//!   who finds the queue this long is turned back at once and counted, so a store far too small
//!   for its crowd holds a bounded queue, not one that grows for as long as the doors are open.
//!
//! # How a source uses it
//! 1. Copy the five fields of [`ArrivalsConfig`] into the source's own config (serde's `flatten`
//!    does not work with `deny_unknown_fields`, which every plugin config uses to report unknown
//!    keys) and call [`ArrivalsConfig::check`] on them at build time: it returns the checked
//!    [`ArrivalRules`] or an error naming the key. Register [`QueueMetrics`] at build time too when
//!    [`ArrivalRules::capacity`] is set.
//! 2. At run time, make an [`ArrivalProcess`] ([`ArrivalRules::process`]) and an [`Entrance`]
//!    ([`ArrivalRules::entrance`]). Process events in time order: when the simulated time reaches
//!    [`ArrivalProcess::next_ms`], call [`ArrivalProcess::advance`] and offer the arrival to
//!    [`Entrance::arrive`]; a shopper who [`Admission::Enter`]s comes in at once, one who is
//!    [`Admission::Queued`] is the entrance's to keep. Each time a shopper leaves, call
//!    [`Entrance::leave`]: it returns when the first one waiting comes in, if anyone does.
//!
//! Everything is a pure function of the random stream the source passes in, so a seeded run stays
//! byte-identical at any speed.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use rand::Rng;
use rand_distr::{Distribution, Exp, Exp1};
use serde::{Deserialize, Serialize};

use crate::error::PluginError;
use crate::load::PopulationPlan;
use crate::metrics::MetricsRegistry;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The arrival keys a simulated source takes, unchecked, as written in the pipeline file.
///
/// A source copies these five fields (same names, same serde attributes) into its own config and
/// builds this struct from them to call [`ArrivalsConfig::check`]; see the module docs for why they
/// are not flattened in.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct ArrivalsConfig {
    /// `[opening, closing]` as `"HH:MM"` local times; no arrivals outside them, so a store that
    /// closes at night is empty at night. Leave out for a store that never closes.
    #[serde(default)]
    pub opening_hours: Option<Vec<String>>,
    /// 24 relative weights ≥ 0, one per local hour from 00:00, so arrivals follow the day's rush
    /// hours; normalised so that the mean number inside while open stays `average_in_store`. Leave
    /// out for the same rate all day.
    #[serde(default)]
    pub hourly_profile: Option<Vec<f64>>,
    /// The IANA time zone (`Europe/Berlin`) the opening hours and the profile are read in, so a
    /// store keeps its local hours across daylight saving time changes.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The most shoppers inside at once, as a fire code or a small shop sets it; arrivals beyond it
    /// queue outside. Leave out for no limit.
    #[serde(default)]
    pub capacity: Option<u64>,
    /// The most arrivals waiting outside a full store at once (with `capacity`); one more is
    /// turned back at once and counted, so the queue's memory stays bounded.
    #[serde(default = "default_max_queue")]
    pub max_queue: u64,
}

impl Default for ArrivalsConfig {
    fn default() -> Self {
        ArrivalsConfig {
            opening_hours: None,
            hourly_profile: None,
            timezone: default_timezone(),
            capacity: None,
            max_queue: default_max_queue(),
        }
    }
}

/// 10,000 waiting: a crowd around the block of any store; their bookkeeping takes well under a
/// megabyte.
pub fn default_max_queue() -> u64 {
    10_000
}

/// The largest `max_queue` accepted: ten million waiting take about 240 MB.
pub const MAX_MAX_QUEUE: u64 = 10_000_000;

/// Arrivals are drawn at most this far after the previous one: a store whose next shopper would
/// come later (at rates far below any a run can show) gets none any more. It is the longest
/// `simulation.duration`, so no run that ends ever misses an arrival, and it bounds the work of
/// one draw (about 365,000 local days to skip) however slow the rate.
pub const MAX_ARRIVAL_GAP_MS: i64 = 1_000 * 31_557_600_000;

/// Hours are read in UTC unless a source says otherwise, as the timestamps of the events are.
pub fn default_timezone() -> String {
    "UTC".to_string()
}

/// Names the key in an error, as every plugin config error does.
fn bad<T>(key: &str, why: impl fmt::Display) -> Result<T, PluginError> {
    Err(PluginError::Config(format!("{key}: {why}")))
}

impl ArrivalsConfig {
    /// Checks the values and turns them into [`ArrivalRules`]; an error names the key.
    pub fn check(&self) -> Result<ArrivalRules, PluginError> {
        let timezone: Tz = match self.timezone.parse() {
            Ok(zone) => zone,
            Err(_) => {
                return bad(
                    "timezone",
                    format!(
                        "{:?} is not an IANA time zone name (e.g. \"Europe/Berlin\", \"UTC\")",
                        self.timezone
                    ),
                );
            }
        };
        let hours = match &self.opening_hours {
            None => None,
            Some(times) => parse_opening_hours(times)?,
        };
        let capacity = match self.capacity {
            None => None,
            Some(0) => return bad("capacity", "must be at least 1; leave it out for no limit"),
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        if self.max_queue > MAX_MAX_QUEUE {
            return bad(
                "max_queue",
                format!(
                    "{} is more than {MAX_MAX_QUEUE} arrivals waiting outside",
                    self.max_queue
                ),
            );
        }
        let weights = match &self.hourly_profile {
            None => None,
            Some(weights) => Some(check_profile(weights)?),
        };
        let profiled = weights.is_some();
        let shape = if hours.is_none() && weights.is_none() {
            None
        } else {
            let weights = weights.unwrap_or([1.0; 24]);
            let open = |hour: usize| open_ms_in_hour(hours, hour) as f64;
            let open_total: f64 = (0..24).map(open).sum();
            let weighted: f64 = (0..24).map(|hour| weights[hour] * open(hour)).sum();
            if weighted <= 0.0 {
                return bad(
                    "hourly_profile",
                    "every open hour has weight 0, so nobody would ever come in",
                );
            }
            let mean = weighted / open_total;
            let multipliers = weights.map(|weight| weight / mean);
            check_multipliers(&weights, &multipliers, |hour| open(hour) > 0.0)?;
            let day_weight = (0..24).map(|hour| multipliers[hour] * open(hour)).sum();
            Some(DailyShape {
                timezone,
                hours,
                multipliers,
                day_weight,
                profiled,
            })
        };
        Ok(ArrivalRules {
            shape,
            capacity,
            max_queue: usize::try_from(self.max_queue).unwrap_or(usize::MAX),
        })
    }
}

/// `["08:00", "21:00"]` as milliseconds of the local day; `None` for a store open around the clock.
fn parse_opening_hours(times: &[String]) -> Result<Option<(i64, i64)>, PluginError> {
    const KEY: &str = "opening_hours";
    let [open, close] = times else {
        return bad(
            KEY,
            format!(
                "must be two times of day, opening and closing, like [\"08:00\", \"21:00\"]; got {} values",
                times.len()
            ),
        );
    };
    let open_ms = match parse_time_of_day(open) {
        Some(ms) if ms < DAY_MS => ms,
        _ => return bad(KEY, not_a_time(open)),
    };
    let close_ms = parse_time_of_day(close)
        .ok_or(())
        .or_else(|()| bad(KEY, not_a_time(close)))?;
    if open_ms == 0 && close_ms == DAY_MS {
        return Ok(None);
    }
    let close_ms = close_ms % DAY_MS;
    if open_ms == close_ms {
        return bad(
            KEY,
            format!(
                "opening and closing are both {open}; leave opening_hours out for a store that never closes"
            ),
        );
    }
    Ok(Some((open_ms, close_ms)))
}

fn not_a_time(text: &str) -> String {
    format!(
        "{text:?} is not a time of day: \"HH:MM\" from \"00:00\" to \"23:59\" (\"24:00\" as closing time)"
    )
}

/// `"HH:MM"` as milliseconds after midnight, `"24:00"` included.
fn parse_time_of_day(text: &str) -> Option<i64> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i64 = hours.parse().ok()?;
    let minutes: i64 = minutes.parse().ok()?;
    let valid = (hours < 24 && minutes < 60) || (hours == 24 && minutes == 0);
    valid.then_some(hours * HOUR_MS + minutes * 60_000)
}

fn check_profile(weights: &[f64]) -> Result<[f64; 24], PluginError> {
    const KEY: &str = "hourly_profile";
    let Ok(weights) = <[f64; 24]>::try_from(weights) else {
        return bad(
            KEY,
            format!(
                "must have exactly 24 weights, one per hour from 00:00; got {}",
                weights.len()
            ),
        );
    };
    if let Some(hour) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
        return bad(
            KEY,
            format!(
                "the weight of hour {hour} is {}; weights must be numbers >= 0",
                weights[hour]
            ),
        );
    }
    Ok(weights)
}

/// Refuses weights whose normalisation leaves the range of numbers: a weight so large that the
/// sum overflows (`1e308`) makes every rate 0, one so small that the mean underflows (`5e-324`)
/// makes them infinite or undefined, and the arrival process would never find its next arrival.
/// The rate of an hour is its weight over the mean weight, so where it is finite it is at most
/// 1,440 times the mean (all arrivals in one open minute of a day).
fn check_multipliers(
    weights: &[f64; 24],
    multipliers: &[f64; 24],
    open: impl Fn(usize) -> bool,
) -> Result<(), PluginError> {
    let broken = (0..24).find(|&hour| {
        let multiplier = multipliers[hour];
        !multiplier.is_finite() || (open(hour) && weights[hour] > 0.0 && multiplier <= 0.0)
    });
    match broken {
        None => Ok(()),
        Some(hour) => bad(
            "hourly_profile",
            format!(
                "these weights cannot be normalised into arrival rates: hour {hour} (weight {:?}) \
                 would get {:?} times the mean rate; use weights of ordinary size, e.g. 0 to 100",
                weights[hour], multipliers[hour]
            ),
        ),
    }
}

/// Whether the store is open at `ms_of_day` local time.
fn is_open(hours: Option<(i64, i64)>, ms_of_day: i64) -> bool {
    match hours {
        None => true,
        Some((open, close)) if open < close => (open..close).contains(&ms_of_day),
        Some((open, close)) => ms_of_day >= open || ms_of_day < close,
    }
}

/// How many milliseconds of the local hour `hour` the store is open.
fn open_ms_in_hour(hours: Option<(i64, i64)>, hour: usize) -> i64 {
    let start = hour as i64 * HOUR_MS;
    let overlap = |from: i64, to: i64| (to.min(start + HOUR_MS) - from.max(start)).max(0);
    match hours {
        None => HOUR_MS,
        Some((open, close)) if open < close => overlap(open, close),
        Some((open, close)) => overlap(open, DAY_MS) + overlap(0, close),
    }
}

/// Checked arrival settings of one source: the time-of-day shape and the capacity. The default is
/// what a source without the arrival keys gets: the same rate all day and no limit.
#[derive(Clone, Debug)]
pub struct ArrivalRules {
    shape: Option<DailyShape>,
    /// The most shoppers inside at once; `None` for no limit.
    pub capacity: Option<usize>,
    /// The most arrivals waiting outside at once (`max_queue`).
    pub max_queue: usize,
}

impl Default for ArrivalRules {
    fn default() -> Self {
        ArrivalRules {
            shape: None,
            capacity: None,
            max_queue: default_max_queue() as usize,
        }
    }
}

impl ArrivalRules {
    /// Whether arrivals depend on the time of day (opening hours or an hourly profile).
    pub fn is_shaped(&self) -> bool {
        self.shape.is_some()
    }

    /// The keys that make arrivals follow the time of day, as the pipeline file names them
    /// (`opening_hours`, `hourly_profile`); empty when they do not.
    pub fn time_of_day_keys(&self) -> Vec<&'static str> {
        let Some(shape) = &self.shape else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        if shape.hours.is_some() {
            keys.push("opening_hours");
        }
        if shape.profiled {
            keys.push("hourly_profile");
        }
        keys
    }

    /// Whether these rules have opening hours (the store closes some of the day).
    pub fn has_opening_hours(&self) -> bool {
        self.shape
            .as_ref()
            .is_some_and(|shape| shape.hours.is_some())
    }

    /// The stretch of time `at_ms` is in, as far as opening hours go: whether the store is open
    /// then, and until when (exclusive) that holds at least. `(true, i64::MAX)` without opening
    /// hours. For figures "while open" (the run report's occupancy).
    pub fn open_stretch(&self, at_ms: i64) -> (bool, i64) {
        match &self.shape {
            Some(shape) if shape.hours.is_some() => {
                let segment = shape.segment(at_ms);
                (segment.open, segment.end_ms)
            }
            _ => (true, i64::MAX),
        }
    }

    /// The arrival process at `rate_per_ms` shoppers per millisecond (the mean over the open time),
    /// starting at `origin_ms`. It draws from `rng` only: the first arrival at once, then one draw
    /// per [`ArrivalProcess::advance`].
    pub fn process<R: Rng + ?Sized>(
        &self,
        rate_per_ms: f64,
        origin_ms: i64,
        rng: &mut R,
    ) -> ArrivalProcess {
        ArrivalProcess::new(rate_per_ms, self.shape.clone(), origin_ms, rng)
    }

    /// An empty entrance with this capacity and queue limit.
    pub fn entrance(&self) -> Entrance {
        Entrance::new(self.capacity).with_max_queue(self.max_queue)
    }
}

/// The rate's time-of-day shape: where in its zone the store is open and how busy each hour is.
#[derive(Clone, Debug)]
struct DailyShape {
    timezone: Tz,
    /// Opening and closing as milliseconds of the local day; `None`: never closes.
    hours: Option<(i64, i64)>,
    /// Rate multiplier of each local hour: its weight over the mean weight of the open time.
    multipliers: [f64; 24],
    /// The multipliers integrated over a whole local day without a clock change (ms): a day's
    /// arrivals are `rate_per_ms × day_weight`, so a draw can skip whole days at once.
    day_weight: f64,
    /// Whether an `hourly_profile` was given.
    profiled: bool,
}

/// A stretch of time over which the rate is constant.
struct Segment {
    open: bool,
    multiplier: f64,
    /// When the stretch ends (exclusive), milliseconds since the epoch.
    end_ms: i64,
}

impl DailyShape {
    /// The zone's offset from UTC at `at_ms`, in milliseconds.
    fn offset_ms(&self, at_ms: i64) -> i64 {
        DateTime::from_timestamp_millis(at_ms).map_or(0, |utc| {
            let offset = self.timezone.offset_from_utc_datetime(&utc.naive_utc());
            i64::from(offset.fix().local_minus_utc()) * 1000
        })
    }

    /// When the local day starting at `at_ms` ends, if `at_ms` is a local midnight and the zone's
    /// offset stays the same through that day (a whole day of [`DailyShape::day_weight`]).
    fn whole_day_from(&self, at_ms: i64) -> Option<i64> {
        let offset = self.offset_ms(at_ms);
        let end_ms = at_ms.checked_add(DAY_MS)?;
        ((at_ms + offset).rem_euclid(DAY_MS) == 0 && self.offset_ms(end_ms - 1) == offset)
            .then_some(end_ms)
    }

    /// The stretch of constant rate that `at_ms` is in: it ends at the next local hour, opening or
    /// closing time, or change of the zone's offset (daylight saving time), whichever comes first.
    fn segment(&self, at_ms: i64) -> Segment {
        let offset = self.offset_ms(at_ms);
        let ms_of_day = (at_ms + offset).rem_euclid(DAY_MS);
        let hour = ms_of_day / HOUR_MS;
        let mut boundary = (hour + 1) * HOUR_MS;
        if let Some((open, close)) = self.hours {
            for time in [open, close] {
                if time > ms_of_day && time < boundary {
                    boundary = time;
                }
            }
        }
        let mut end_ms = at_ms + (boundary - ms_of_day);
        if self.offset_ms(end_ms - 1) != offset {
            // The clocks change before the boundary: the first millisecond with the new offset.
            let (mut same, mut changed) = (at_ms, end_ms - 1);
            while changed - same > 1 {
                let middle = same + (changed - same) / 2;
                if self.offset_ms(middle) == offset {
                    same = middle;
                } else {
                    changed = middle;
                }
            }
            end_ms = changed;
        }
        let open = is_open(self.hours, ms_of_day);
        Segment {
            open,
            multiplier: if open {
                self.multipliers[hour as usize]
            } else {
                0.0
            },
            end_ms,
        }
    }
}

/// How arrival times are drawn.
#[derive(Clone, Debug)]
enum Times {
    /// The same rate at every hour: exponential gaps. Kept exactly as before shaped rates existed,
    /// so seeded runs without the new keys stay byte-identical.
    Steady(Exp<f64>),
    /// A rate that varies with the time of day: each arrival inverts the cumulative rate at a unit
    /// exponential draw, which is exact for a piecewise-constant rate and takes one draw per
    /// arrival.
    Shaped {
        rate_per_ms: f64,
        shape: Box<DailyShape>,
    },
    /// The rate that keeps a planned crowd inside (load stages): `inside / mean visit`, piecewise
    /// linear; each arrival inverts its cumulative rate at a unit exponential draw.
    Planned(Arc<PopulationPlan>),
}

/// The times at which shoppers arrive: a Poisson process, homogeneous or shaped by the time of day.
#[derive(Clone, Debug)]
pub struct ArrivalProcess {
    /// `None` when the rate is 0: nobody ever arrives.
    times: Option<Times>,
    /// The process's own time with its fractions of a millisecond, so busy stores get several
    /// arrivals per millisecond instead of a rate capped at 1,000/s.
    clock_ms: f64,
    next_ms: Option<i64>,
}

impl ArrivalProcess {
    /// A process whose first arrival is drawn from `rng` at once. `rate_per_ms` is the mean rate
    /// over the open time (`average_in_store / mean visit` by Little's law); `shape` comes from
    /// [`ArrivalRules`]. Without a shape the draws are exactly one exponential gap per arrival.
    fn new<R: Rng + ?Sized>(
        rate_per_ms: f64,
        shape: Option<DailyShape>,
        origin_ms: i64,
        rng: &mut R,
    ) -> ArrivalProcess {
        let times = (rate_per_ms > 0.0 && rate_per_ms.is_finite()).then(|| match shape {
            None => Times::Steady(Exp::new(rate_per_ms).expect("positive rate")),
            Some(shape) => Times::Shaped {
                rate_per_ms,
                shape: Box::new(shape),
            },
        });
        let mut process = ArrivalProcess {
            times,
            clock_ms: origin_ms as f64,
            next_ms: None,
        };
        process.advance(rng);
        process
    }

    /// The arrivals that keep `plan`'s crowd inside (load stages: Little's law on its mean
    /// visit), starting at `origin_ms`; the first arrival is drawn from `rng` at once.
    pub fn planned<R: Rng + ?Sized>(
        plan: Arc<PopulationPlan>,
        origin_ms: i64,
        rng: &mut R,
    ) -> ArrivalProcess {
        let mut process = ArrivalProcess {
            times: Some(Times::Planned(plan)),
            clock_ms: origin_ms as f64,
            next_ms: None,
        };
        process.advance(rng);
        process
    }

    /// When the next shopper arrives, in milliseconds since the epoch; `None` if nobody ever does.
    pub fn next_ms(&self) -> Option<i64> {
        self.next_ms
    }

    /// Draws the arrival after the current one (times never decrease).
    pub fn advance<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.next_ms = match &self.times {
            None => None,
            Some(Times::Steady(gap)) => {
                self.clock_ms += gap.sample(rng);
                Some(self.clock_ms.floor() as i64)
            }
            Some(Times::Planned(plan)) => {
                let needed: f64 = Exp1.sample(rng);
                let give_up = self.clock_ms + MAX_ARRIVAL_GAP_MS as f64;
                plan.arrival_after(self.clock_ms, needed, give_up)
                    .map(|at| {
                        self.clock_ms = at;
                        at.floor() as i64
                    })
            }
            Some(Times::Shaped { rate_per_ms, shape }) => {
                let mut needed: f64 = Exp1.sample(rng);
                let mut t = self.clock_ms;
                // Stretch by stretch for two days (as the draws always were, so seeded runs stay
                // byte-identical), then a whole day at a time where one comes, so a draw over
                // years of closed or nearly idle days stays cheap; nobody comes after the gap.
                let skip_from = t + (2 * DAY_MS) as f64;
                let give_up = t + MAX_ARRIVAL_GAP_MS as f64;
                let day = rate_per_ms * shape.day_weight;
                loop {
                    if t >= give_up {
                        break None;
                    }
                    if t >= skip_from
                        && needed > day
                        && let Some(end_ms) = shape.whole_day_from(t as i64)
                    {
                        needed -= day;
                        t = end_ms as f64;
                        continue;
                    }
                    let segment = shape.segment(t.floor() as i64);
                    let rate = rate_per_ms * segment.multiplier;
                    let span = segment.end_ms as f64 - t;
                    if rate > 0.0 && needed <= rate * span {
                        t += needed / rate;
                        self.clock_ms = t;
                        // Rounding must not push the arrival into the next (maybe closed) stretch.
                        break Some((t.floor() as i64).min(segment.end_ms - 1));
                    }
                    needed -= rate * span;
                    t = segment.end_ms as f64;
                }
            }
        };
    }

    /// Whether the store is open at `at_ms` (always, without opening hours).
    pub fn is_open_at(&self, at_ms: i64) -> bool {
        match &self.times {
            Some(Times::Shaped { shape, .. }) => shape.segment(at_ms).open,
            _ => true,
        }
    }

    /// Until when the store stays open without a break from `at_ms` on: the next closing time, or
    /// `at_ms` itself when it is closed then; `None` when it never closes.
    pub fn open_until(&self, at_ms: i64) -> Option<i64> {
        let Some(Times::Shaped { shape, .. }) = &self.times else {
            return None;
        };
        shape.hours?;
        let mut t = at_ms;
        // Every day has a closing time; two days of looking is plenty, even around clock changes.
        while t < at_ms + 2 * DAY_MS {
            let segment = shape.segment(t);
            if !segment.open {
                return Some(t);
            }
            t = segment.end_ms;
        }
        None
    }
}

/// What happens to an arrival at the entrance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// There is room: the shopper comes in now.
    Enter,
    /// The store is full: the shopper waits outside; [`Entrance::leave`] says when they come in.
    Queued,
    /// The store is full and so is the queue outside (`max_queue`): the shopper goes home.
    TurnedBack,
}

/// One shopper waiting outside.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    arrived_ms: i64,
    /// When they give up: the store closes (or the doors close for good) before a place frees up.
    gives_up_ms: Option<i64>,
}

/// The store's entrance: counts who is inside and keeps the first-come-first-served queue of those
/// who found the store full.
#[derive(Debug)]
pub struct Entrance {
    capacity: Option<usize>,
    /// The most waiting outside at once; arrivals beyond are turned back.
    max_queue: usize,
    /// Places taken: shoppers inside, or let in and about to enter.
    inside: usize,
    queue: VecDeque<Waiting>,
    stats: QueueStats,
    metrics: Option<QueueMetrics>,
}

impl Entrance {
    /// An empty store holding at most `capacity` shoppers (`None`: no limit), with a queue of
    /// at most [`default_max_queue`] outside.
    pub fn new(capacity: Option<usize>) -> Entrance {
        Entrance {
            capacity,
            max_queue: default_max_queue() as usize,
            inside: 0,
            queue: VecDeque::new(),
            stats: QueueStats::default(),
            metrics: None,
        }
    }

    /// Lets at most `max_queue` wait outside; arrivals beyond are turned back at once.
    pub fn with_max_queue(mut self, max_queue: usize) -> Entrance {
        self.max_queue = max_queue;
        self
    }

    /// Reports the queue to these metrics from now on.
    pub fn with_metrics(mut self, metrics: QueueMetrics) -> Entrance {
        self.metrics = Some(metrics);
        self
    }

    /// An arrival at `at_ms` (arrivals come in time order). `gives_up_ms`: when a shopper who has
    /// to wait goes home instead, typically `min(`[`ArrivalProcess::open_until`]`, doors closing)`.
    pub fn arrive(&mut self, at_ms: i64, gives_up_ms: Option<i64>) -> Admission {
        self.turn_away_before(at_ms);
        if self.capacity.is_none_or(|capacity| self.inside < capacity) {
            self.inside += 1;
            return Admission::Enter;
        }
        if self.queue.len() >= self.max_queue {
            self.stats.refused += 1;
            if let Some(metrics) = &self.metrics {
                metrics.arrivals_turned_away.inc();
            }
            return Admission::TurnedBack;
        }
        self.queue.push_back(Waiting {
            arrived_ms: at_ms,
            gives_up_ms,
        });
        self.stats.queued += 1;
        if let Some(metrics) = &self.metrics {
            metrics.arrivals_queued.inc();
        }
        self.report_length();
        Admission::Queued
    }

    /// Takes a place for a shopper let in beyond the arrival process (the load stages' follower):
    /// `true` when there is room; nobody queues for such a place.
    pub fn try_enter(&mut self) -> bool {
        let room = self.capacity.is_none_or(|capacity| self.inside < capacity);
        self.inside += usize::from(room);
        room
    }

    /// Gives back a place taken with [`Entrance::try_enter`] by a shopper who did not come in
    /// after all (no listed customer was outside).
    pub fn give_back(&mut self) {
        self.inside = self.inside.saturating_sub(1);
    }

    /// A shopper left at `at_ms`. Returns when the first one still waiting comes in (a
    /// millisecond later, so the exit comes first in the event stream), if anyone does.
    pub fn leave(&mut self, at_ms: i64) -> Option<i64> {
        self.inside = self.inside.saturating_sub(1);
        let enter_ms = at_ms + 1;
        self.turn_away_before(enter_ms);
        let waiting = self.queue.pop_front()?;
        self.inside += 1;
        let waited_ms = enter_ms - waiting.arrived_ms;
        self.stats.entered_after_waiting += 1;
        self.stats.total_wait_ms += waited_ms;
        self.stats.longest_wait_ms = self.stats.longest_wait_ms.max(waited_ms);
        if let Some(metrics) = &self.metrics {
            metrics
                .queue_wait_seconds
                .observe(waited_ms as f64 / 1000.0);
            metrics.entered_after_waiting.inc();
            metrics.total_wait_ms.inc_by(waited_ms.max(0) as u64);
        }
        self.report_length();
        Some(enter_ms)
    }

    /// Everyone still waiting goes home: the doors closed for good.
    pub fn turn_away_all(&mut self) {
        self.turn_away(self.queue.len());
    }

    /// How many shoppers wait outside now.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// What the queue saw so far.
    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// Sends home those at the head of the queue who would enter at `at_ms` or later than they
    /// wait for. Arrivals come in time order, so everyone behind them gives up no earlier.
    fn turn_away_before(&mut self, at_ms: i64) {
        let gone = self
            .queue
            .iter()
            .take_while(|waiting| waiting.gives_up_ms.is_some_and(|give_up| give_up <= at_ms))
            .count();
        self.turn_away(gone);
    }

    /// Sends the first `count` in line home.
    fn turn_away(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        self.queue.drain(..count);
        self.stats.turned_away += count as u64;
        if let Some(metrics) = &self.metrics {
            metrics.arrivals_turned_away.inc_by(count as u64);
        }
        self.report_length();
    }

    fn report_length(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.queue_length.set(self.queue.len() as i64);
        }
    }
}

/// Totals of the entrance queue, for the log line a source writes at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Arrivals that found the store full and queued.
    pub queued: u64,
    /// Of those, how many came in after waiting.
    pub entered_after_waiting: u64,
    /// Of those, how many went home because the store closed first.
    pub turned_away: u64,
    /// Arrivals turned back at once because the queue outside was full (`max_queue`).
    pub refused: u64,
    /// Sum of the waits of those who came in, milliseconds.
    pub total_wait_ms: i64,
    /// The longest wait of one who came in, milliseconds.
    pub longest_wait_ms: i64,
}

impl fmt::Display for QueueStats {
    /// `"12 arrivals waited outside, mean wait 95.2s, longest 301.0s; 1 went home at closing"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mean_s = if self.entered_after_waiting == 0 {
            0.0
        } else {
            self.total_wait_ms as f64 / self.entered_after_waiting as f64 / 1000.0
        };
        write!(
            f,
            "{} arrivals waited outside, mean wait {mean_s:.1}s, longest {:.1}s; {} went home at closing",
            self.queued,
            self.longest_wait_ms as f64 / 1000.0,
            self.turned_away
        )?;
        if self.refused > 0 {
            write!(
                f,
                "; {} turned back by a full queue (max_queue)",
                self.refused
            )?;
        }
        Ok(())
    }
}

/// Prometheus metrics of an entrance queue. The queue is as generated: a source generates ahead of
/// the clock (up to its lookahead), so `queue_length` is the length at the latest simulated moment
/// generated, not at the published one.
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    /// Shoppers waiting outside, at the latest moment generated.
    pub queue_length: Gauge,
    /// How long shoppers who queued waited before coming in.
    pub queue_wait_seconds: Histogram,
    /// Arrivals that found the store full.
    pub arrivals_queued: Counter,
    /// Arrivals that went home without coming in: queued ones because the store closed first,
    /// and those turned back by a full queue (`max_queue`).
    pub arrivals_turned_away: Counter,
    /// Queued arrivals that came in (not registered: the histogram's count, readable for the
    /// run report).
    pub entered_after_waiting: Counter,
    /// Sum of their waits in simulated ms (not registered: the histogram's sum, readable).
    pub total_wait_ms: Counter,
}

impl QueueMetrics {
    /// Registers the queue metrics (`customersim_queue_length`, `customersim_queue_wait_seconds`,
    /// `customersim_arrivals_queued_total`, `customersim_arrivals_turned_away_total`). Once per
    /// registry: sources get them from [`crate::BuildContext::queue_metrics`], which registers
    /// once per pipeline and hands out clones.
    pub fn register(registry: &MetricsRegistry) -> QueueMetrics {
        let metrics = QueueMetrics {
            queue_length: Gauge::default(),
            // 1 s to about 4.5 h.
            queue_wait_seconds: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            arrivals_queued: Counter::default(),
            arrivals_turned_away: Counter::default(),
            entered_after_waiting: Counter::default(),
            total_wait_ms: Counter::default(),
        };
        registry.register(
            "queue_length",
            "Shoppers waiting outside a full store (at the latest simulated moment generated)",
            metrics.queue_length.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Simulated seconds shoppers waited outside a full store before coming in",
            metrics.queue_wait_seconds.clone(),
        );
        registry.register(
            "arrivals_queued",
            "Arrivals that found the store at capacity and queued outside",
            metrics.arrivals_queued.clone(),
        );
        registry.register(
            "arrivals_turned_away",
            "Arrivals that went home without coming in: the store closed before a place freed up, or the queue outside was full (max_queue)",
            metrics.arrivals_turned_away.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests;

/// The smallest non-zero `average_in_store` accepted: below it the gap between arrivals is
/// longer than any run and its arithmetic leaves the range of instants.
pub const MIN_AVERAGE_IN_STORE: f64 = 0.001;
/// The largest `average_in_store` accepted: a crowd of a million inside at once is already far
/// beyond any store, and more would only exhaust memory.
pub const MAX_AVERAGE_IN_STORE: f64 = 1_000_000.0;

/// Checks a source's `average_in_store`: 0 (nobody arrives) or from [`MIN_AVERAGE_IN_STORE`] to
/// [`MAX_AVERAGE_IN_STORE`].
pub fn check_average_in_store(value: f64) -> Result<(), PluginError> {
    if value == 0.0 || (MIN_AVERAGE_IN_STORE..=MAX_AVERAGE_IN_STORE).contains(&value) {
        return Ok(());
    }
    bad(
        "average_in_store",
        format!("must be 0 or a number from {MIN_AVERAGE_IN_STORE} to {MAX_AVERAGE_IN_STORE}"),
    )
}

#[cfg(test)]
mod average_tests {
    use super::*;

    #[test]
    fn absurd_averages_are_refused() {
        for value in [1e-300, -1.0, f64::NAN, f64::INFINITY, 1e300, 0.0009] {
            assert!(check_average_in_store(value).is_err(), "{value}");
        }
        for value in [0.0, 0.001, 6.0, 1e6] {
            assert!(check_average_in_store(value).is_ok(), "{value}");
        }
    }
}
