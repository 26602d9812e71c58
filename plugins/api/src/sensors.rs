//! The observation model: what a shopper's device reports, as opposed to what the shopper did.
//!
//! Sources make ground truth. Real indoor positioning is noisy, devices report at their own
//! pace, networks drop reports (in bursts), duplicate, delay and reorder them, device clocks are
//! off and drift, and door sensors miss people. [`SensorStage`] is one stage every source's
//! events pass through after the focus stage (focus is derived from the true moves): it turns the
//! true events into the observed stream on the usual topics and, when `topics.truth.*` are set,
//! copies the truth next to it, exact and on time.
//!
//! An observed report is published (due) when it is delivered, later than it happened; its
//! payload's `ts` is the device's clock at the time it sent it ([`crate::Stamp::clock_ms`]).
//! Delays only ever add time, so a source scheduling ahead of the clock never makes a late event.
//!
//! Determinism: every device has its own random stream, seeded from the stage's seed (the run's,
//! per source), the shopper's id and the time of the first event the stage saw of it, and a
//! shopper's events are taken in time order (as in the focus stage). So the observed bytes do not
//! depend on how the source split its events into batches, hence not on the speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::derive_seed;
use crate::due_queue::sort_nearly_sorted_by;
use crate::duration;
use crate::event::{CustomerId, Event, EventKind, Stamp, TruthTopics};
use crate::fleet::StoreIndex;
use crate::shopper_map::ShopperMap;

/// Most devices a [`SensorStage`] follows at once; a device is forgotten at its shopper's exit,
/// so only shoppers that never exit (moves posted over HTTP) come near it. Beyond it, the eighth
/// that reported longest ago are forgotten (their next report starts a new device).
pub const MAX_DEVICES: usize = 1 << 21;

/// `sensors:`: the observation model (off by default). Every probability is from 0 to 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct SensorsConfig {
    /// Whether the sensor stage runs. Default: `false` (every report exact, once, on time).
    #[serde(default)]
    pub enabled: bool,
    /// Position noise: the standard deviation, in store units, of the Gaussian error added to
    /// each coordinate of a move (rounded, then clipped to the store's extent). Default: 0.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub noise: f64,
    /// Shortest time between two position reports of one device: a move less than this after
    /// the device's last report is not reported (thinned). Default: `0s` (every move).
    #[serde(default, with = "duration::required")]
    pub interval: Duration,
    /// Each report leaves the device up to this much after the move (uniform). Default: `0s`.
    #[serde(default, with = "duration::required")]
    pub jitter: Duration,
    /// Reports lost on the way, in bursts (a two-state Gilbert–Elliott channel).
    #[serde(default)]
    pub drop: DropConfig,
    /// Probability that a report is delivered twice (each copy with its own delay). Default: 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub duplicate: f64,
    /// Reports held back so that later ones overtake them.
    #[serde(default)]
    pub reorder: ReorderConfig,
    /// How long a report takes from the device to the consumers.
    #[serde(default)]
    pub delay: DelayConfig,
    /// Each device's clock, which the payload's `ts` is read from.
    #[serde(default)]
    pub clock: ClockConfig,
    /// Probability that an enter or an exit is not reported (the door sensor missed it).
    /// Default: 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub missed_doors: f64,
}

/// `sensors.drop`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct DropConfig {
    /// Share of the position reports lost, in the long run. Default: 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub probability: f64,
    /// Mean number of reports lost in a row (1: independent losses). Default: 1.
    #[serde(default = "one")]
    #[schemars(range(min = 1.0))]
    pub burst: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for DropConfig {
    fn default() -> Self {
        DropConfig {
            probability: 0.0,
            burst: 1.0,
        }
    }
}

/// `sensors.reorder`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct ReorderConfig {
    /// Probability that a report is held back. Default: 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub probability: f64,
    /// A held-back report is delivered up to this much later (uniform), so reports sent within
    /// the window after it may arrive first. Default: `0s`.
    #[serde(default, with = "duration::required")]
    pub window: Duration,
}

/// `sensors.delay`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct DelayConfig {
    /// Mean delivery delay. Default: `0s` (delivered when sent).
    #[serde(default, with = "duration::required")]
    pub mean: Duration,
    /// Its distribution: `exponential` (default), `lognormal` (with `sigma`) or `fixed`.
    #[serde(default)]
    pub distribution: DelayDistribution,
    /// Standard deviation of the delay's logarithm, for `lognormal`. Default: 0.5.
    #[serde(default = "half")]
    #[schemars(range(min = 0.0))]
    pub sigma: f64,
}

fn half() -> f64 {
    0.5
}

impl Default for DelayConfig {
    fn default() -> Self {
        DelayConfig {
            mean: Duration::ZERO,
            distribution: DelayDistribution::default(),
            sigma: half(),
        }
    }
}

/// `sensors.delay.distribution`
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case", crate = "serde")]
pub enum DelayDistribution {
    /// Exponential with the mean (most reports quick, a long tail).
    #[default]
    Exponential,
    /// Log-normal with the mean and `sigma`.
    Lognormal,
    /// Every report takes exactly the mean.
    Fixed,
}

/// `sensors.clock`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct ClockConfig {
    /// Standard deviation of a device clock's offset from true time (Gaussian, per device).
    /// Default: `0s`.
    #[serde(default, with = "duration::required")]
    pub skew: Duration,
    /// Standard deviation of a device clock's drift, in parts per million (Gaussian, per
    /// device), counted from the device's first event. Default: 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 100000.0))]
    pub drift_ppm: f64,
}

impl SensorsConfig {
    /// The first key with a value no run can use, and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let probability = |key: &'static str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err((
                    key,
                    format!("is {value}: must be a probability from 0 to 1"),
                ))
            }
        };
        probability("sensors.drop.probability", self.drop.probability)?;
        probability("sensors.duplicate", self.duplicate)?;
        probability("sensors.reorder.probability", self.reorder.probability)?;
        probability("sensors.missed_doors", self.missed_doors)?;
        if self.drop.probability >= 1.0 {
            return Err((
                "sensors.drop.probability",
                "is 1: no report would ever arrive; use a smaller share".into(),
            ));
        }
        if !(self.drop.burst >= 1.0 && self.drop.burst <= 1e6) {
            return Err((
                "sensors.drop.burst",
                format!(
                    "is {}: must be a mean number of reports from 1 to 1000000",
                    self.drop.burst
                ),
            ));
        }
        // Bursts of this mean with this share need P(good → bad) = p / (L (1 - p)) ≤ 1.
        let p = self.drop.probability;
        if p > 0.0 && p / (self.drop.burst * (1.0 - p)) > 1.0 {
            return Err((
                "sensors.drop.burst",
                format!(
                    "is {}: too short for a loss share of {p} (bursts of mean L lose at most \
                     L / (L + 1) of the reports)",
                    self.drop.burst
                ),
            ));
        }
        if !(self.noise >= 0.0 && self.noise <= 1e6) {
            return Err((
                "sensors.noise",
                format!("is {}: must be from 0 to 1000000 store units", self.noise),
            ));
        }
        if !(self.delay.sigma >= 0.0 && self.delay.sigma <= 10.0) {
            return Err((
                "sensors.delay.sigma",
                format!("is {}: must be from 0 to 10", self.delay.sigma),
            ));
        }
        if !(self.clock.drift_ppm >= 0.0 && self.clock.drift_ppm <= 100_000.0) {
            return Err((
                "sensors.clock.drift_ppm",
                format!("is {}: must be from 0 to 100000", self.clock.drift_ppm),
            ));
        }
        let day = Duration::from_secs(86_400);
        for (key, value) in [
            ("sensors.interval", self.interval),
            ("sensors.jitter", self.jitter),
            ("sensors.reorder.window", self.reorder.window),
            ("sensors.delay.mean", self.delay.mean),
            ("sensors.clock.skew", self.clock.skew),
        ] {
            if value > day {
                return Err((key, "is longer than a day".into()));
            }
        }
        Ok(())
    }
}

/// The faults injected, counted over every source's stage (clones share the counts); the run
/// report gives them.
#[derive(Clone, Debug, Default)]
pub struct SensorCounts(Arc<[AtomicU64; FAULTS]>);

const FAULTS: usize = 9;

/// The names of [`SensorCounts::values`], as the run report writes them.
pub const FAULT_NAMES: [&str; FAULTS] = [
    "reports",
    "thinned",
    "noisy",
    "dropped",
    "duplicated",
    "reordered",
    "delayed",
    "skewed",
    "missed_doors",
];

#[derive(Clone, Copy)]
enum Fault {
    /// Position reports the devices had to send (true moves), thinned or not.
    Reports,
    Thinned,
    Noisy,
    Dropped,
    Duplicated,
    Reordered,
    Delayed,
    Skewed,
    MissedDoors,
}

impl SensorCounts {
    /// Each count, in [`FAULT_NAMES`] order.
    pub fn values(&self) -> [u64; FAULTS] {
        std::array::from_fn(|index| self.0[index].load(Ordering::Relaxed))
    }

    /// The counts by name.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        FAULT_NAMES.into_iter().zip(self.values()).collect()
    }

    fn sub(&self, fault: usize, count: u64) {
        self.0[fault].fetch_sub(count, Ordering::Relaxed);
    }
}

/// One device: its random stream and what it remembers between reports.
#[derive(Clone, Debug)]
struct Device {
    rng: Pcg64Mcg,
    /// The channel is in its bad (losing) state.
    bad: bool,
    /// When the device last sent a position report.
    last_sent_ms: Option<i64>,
    /// The first event's time: drift counts from it.
    first_ms: i64,
    skew_ms: f64,
    /// Seconds gained per second.
    drift: f64,
    /// When the shopper last did something (whom to forget first beyond the bound).
    last_ms: i64,
    /// The last batch (of [`SensorStage::batches`]) that saved this device's state for an
    /// undo: it is saved once a batch, at its first event, not at every event.
    saved_in: u64,
}

type Shopper = (StoreIndex, CustomerId);

/// What a batch changed, to put back when it is refused.
#[derive(Debug, Default)]
pub struct SensorUndo {
    devices: Vec<(Shopper, Option<Device>)>,
    counts: [u64; FAULTS],
}

/// The sensor stage of one source (see the module's documentation).
#[derive(Debug)]
pub struct SensorStage {
    model: Model,
    /// The devices followed, by shopper.
    devices: ShopperMap<Device>,
    /// Batches applied so far (see [`Device::saved_in`]).
    batches: u64,
    /// The last batch's list of what went out, kept for its room.
    outgoing: Vec<Outgoing>,
}

/// One event a batch sends on: which event of the batch (or of its truth copies, with
/// [`TRUTH_COPY`] set), due when and stamped how.
#[derive(Clone, Copy, Debug)]
struct Outgoing {
    due_ms: i64,
    stamp: Stamp,
    source: u32,
}

/// Marks an [`Outgoing::source`] that indexes the batch's truth copies (a batch holds far fewer
/// than 2^31 events: sources hand over chunks of thousands, HTTP bodies are bounded).
const TRUTH_COPY: u32 = 1 << 31;

impl Outgoing {
    /// `event`, at `source`, sent on unchanged.
    fn as_is(event: &Event, source: u32) -> Outgoing {
        Outgoing {
            due_ms: event.due_ms,
            stamp: event.stamp,
            source,
        }
    }
}

/// What does not change during a run: the settings and where the counts go.
#[derive(Debug)]
struct Model {
    config: SensorsConfig,
    truth: [bool; 4],
    seed: u64,
    /// The store's extent: observed positions stay within `0..width` × `0..height`.
    width: i64,
    height: i64,
    counts: SensorCounts,
    /// P(good → bad) and P(bad → good) of the drop channel.
    to_bad: f64,
    to_good: f64,
    /// The position noise's distribution (`None`: no noise).
    noise: Option<Normal<f64>>,
    /// The delivery delay's distribution, its parameters worked out once.
    delay: Delay,
}

/// [`DelayConfig`] ready to draw from, in milliseconds.
#[derive(Debug)]
enum Delay {
    None,
    Fixed(f64),
    Exponential(Exp<f64>),
    Lognormal(LogNormal<f64>),
}

impl Delay {
    fn new(config: &DelayConfig) -> Delay {
        let mean = config.mean.as_secs_f64() * 1000.0;
        if mean <= 0.0 {
            return Delay::None;
        }
        let fixed = Delay::Fixed(mean);
        match config.distribution {
            DelayDistribution::Fixed => fixed,
            DelayDistribution::Exponential => {
                Exp::new(1.0 / mean).map_or(fixed, Delay::Exponential)
            }
            DelayDistribution::Lognormal => {
                let mu = mean.ln() - config.sigma * config.sigma / 2.0;
                LogNormal::new(mu, config.sigma).map_or(fixed, Delay::Lognormal)
            }
        }
    }
}

impl SensorStage {
    /// A stage for one source: its devices' streams come from `seed`; observed positions stay
    /// within a `width × height` store; truth copies go where `truth` says; faults are counted
    /// in `counts`.
    pub fn new(
        config: SensorsConfig,
        truth: &TruthTopics,
        seed: u64,
        (width, height): (u32, u32),
        counts: SensorCounts,
    ) -> SensorStage {
        let p = config.drop.probability;
        let burst = config.drop.burst.max(1.0);
        let (to_bad, to_good) = if p > 0.0 {
            ((p / (burst * (1.0 - p))).min(1.0), 1.0 / burst)
        } else {
            (0.0, 1.0)
        };
        SensorStage {
            model: Model {
                truth: truth.topics().map(|topic| topic.is_some()),
                noise: (config.noise > 0.0)
                    .then(|| Normal::new(0.0, config.noise).ok())
                    .flatten(),
                delay: Delay::new(&config.delay),
                config,
                seed: derive_seed(seed, 0x5e25_0125),
                width: i64::from(width.max(1)),
                height: i64::from(height.max(1)),
                counts,
                to_bad,
                to_good,
            },
            devices: ShopperMap::default(),
            batches: 0,
            outgoing: Vec::new(),
        }
    }

    /// `events` as the sensors report them, with the truth copies asked for, sorted by due time;
    /// with `undo`, what to give [`SensorStage::undo`] if the batch is refused.
    ///
    /// Each event is worked on where it lies (an event is 80 bytes: moving it around showed in
    /// profiles); what goes out is listed as small [`Outgoing`] entries, sorted, and each event
    /// copied once into its place. The order is that of a stable sort by (due time, customer) of
    /// the reports in the order the devices sent them: what the timeline would make of them, so
    /// it does not depend on how the events were split into batches, and the timeline finds the
    /// batch already sorted.
    pub fn apply(&mut self, events: Vec<Event>, undo: Option<&mut SensorUndo>) -> Vec<Event> {
        let mut events = events;
        if !events.is_sorted_by_key(|event| event.due_ms) {
            events.sort_by_key(|event| event.due_ms);
        }
        let mut undo = undo;
        self.batches += 1;
        let mut outgoing = std::mem::take(&mut self.outgoing);
        outgoing.clear();
        outgoing.reserve(events.len() + events.len() / 4);
        let mut truth_copies = Vec::new();
        // Counted here and added once a batch: an atomic add per fault per event showed.
        let mut tally = [0u64; FAULTS];
        for (index, event) in events.iter_mut().enumerate() {
            let index = index as u32;
            if event.stamp.truth {
                outgoing.push(Outgoing::as_is(event, index));
                continue;
            }
            let kind = crate::event::kind_index(&event.kind);
            if self.model.truth[kind] {
                let mut copy = event.clone();
                copy.stamp.truth = true;
                outgoing.push(Outgoing::as_is(
                    &copy,
                    TRUTH_COPY | truth_copies.len() as u32,
                ));
                truth_copies.push(copy);
            }
            if matches!(event.kind, EventKind::Focus { .. }) {
                // Focus is ground truth, derived from the true moves: not observed.
                outgoing.push(Outgoing::as_is(event, index));
                continue;
            }
            self.observe(event, index, &mut outgoing, &mut tally, undo.as_deref_mut());
        }
        for (index, count) in tally.into_iter().enumerate() {
            if count > 0 {
                self.model.counts.0[index].fetch_add(count, Ordering::Relaxed);
                if let Some(undo) = undo.as_deref_mut() {
                    undo.counts[index] += count;
                }
            }
        }
        let source = |entry: &Outgoing| -> &Event {
            if entry.source & TRUTH_COPY == 0 {
                &events[entry.source as usize]
            } else {
                &truth_copies[(entry.source & !TRUTH_COPY) as usize]
            }
        };
        // Delays move a report a few places at most, but for the rare long one.
        sort_nearly_sorted_by(&mut outgoing, 16, |a, b| {
            a.due_ms
                .cmp(&b.due_ms)
                .then_with(|| source(a).customer.cmp(&source(b).customer))
        });
        let out = outgoing
            .iter()
            .map(|entry| {
                let event = source(entry);
                Event {
                    due_ms: entry.due_ms,
                    customer: event.customer.clone(),
                    kind: event.kind,
                    store: event.store,
                    stamp: entry.stamp,
                }
            })
            .collect();
        self.outgoing = outgoing;
        out
    }

    /// Puts back what a refused batch changed.
    pub fn undo(&mut self, undo: SensorUndo) {
        for (shopper, before) in undo.devices.into_iter().rev() {
            match before {
                Some(device) => self.devices.insert(shopper, device),
                None => self.devices.remove(&shopper),
            };
        }
        for (index, count) in undo.counts.into_iter().enumerate() {
            self.model.counts.sub(index, count);
        }
    }

    /// How many devices it follows now.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    fn observe(
        &mut self,
        event: &mut Event,
        index: u32,
        outgoing: &mut Vec<Outgoing>,
        tally: &mut [u64; FAULTS],
        undo: Option<&mut SensorUndo>,
    ) {
        use hashbrown::hash_map::Entry;
        let batch = self.batches;
        let device = match self.devices.entry((event.store, event.customer.clone())) {
            Entry::Occupied(entry) => {
                if let Some(undo) = undo
                    && entry.get().saved_in != batch
                {
                    undo.devices
                        .push((entry.key().clone(), Some(entry.get().clone())));
                }
                entry.into_mut()
            }
            Entry::Vacant(entry) => {
                if let Some(undo) = undo {
                    undo.devices.push((entry.key().clone(), None));
                }
                entry.insert(self.model.new_device(event))
            }
        };
        device.saved_in = batch;
        device.last_ms = event.due_ms;
        self.model.report(device, event, index, outgoing, tally);
        if event.kind == EventKind::Exit {
            self.devices.remove(&(event.store, event.customer.clone()));
        } else if self.devices.len() > MAX_DEVICES {
            self.forget_oldest();
        }
    }

    /// Forgets the eighth of the devices that reported longest ago.
    fn forget_oldest(&mut self) {
        let mut times: Vec<i64> = self.devices.values().map(|d| d.last_ms).collect();
        let nth = times.len() / 8;
        let (_, cutoff, _) = times.select_nth_unstable(nth);
        let cutoff = *cutoff;
        self.devices.retain(|_, device| device.last_ms > cutoff);
    }
}

impl Model {
    fn new_device(&self, event: &Event) -> Device {
        let seed = derive_seed(
            derive_seed(self.seed, id_hash(event.store, &event.customer)),
            event.due_ms as u64,
        );
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let skew_ms = gaussian(&mut rng, self.config.clock.skew.as_secs_f64() * 1000.0);
        let drift = gaussian(&mut rng, self.config.clock.drift_ppm) * 1e-6;
        let bad = self.config.drop.probability > 0.0
            && rng.random::<f64>() < self.config.drop.probability;
        Device {
            rng,
            bad,
            last_sent_ms: None,
            first_ms: event.due_ms,
            skew_ms,
            drift,
            last_ms: event.due_ms,
            saved_in: 0,
        }
    }

    /// What the device reports of one true event (the event at `index` of the batch, changed
    /// in place where noise moved it): each delivery is listed in `outgoing`.
    fn report(
        &self,
        device: &mut Device,
        event: &mut Event,
        index: u32,
        outgoing: &mut Vec<Outgoing>,
        tally: &mut [u64; FAULTS],
    ) {
        let config = &self.config;
        match event.kind {
            EventKind::Enter | EventKind::Exit => {
                if config.missed_doors > 0.0 && device.rng.random::<f64>() < config.missed_doors {
                    count(tally, Fault::MissedDoors);
                    return;
                }
            }
            EventKind::Move { x, y } => {
                count(tally, Fault::Reports);
                let interval = config.interval.as_millis() as i64;
                if interval > 0
                    && device
                        .last_sent_ms
                        .is_some_and(|last| event.due_ms - last < interval)
                {
                    count(tally, Fault::Thinned);
                    return;
                }
                device.last_sent_ms = Some(event.due_ms);
                if self.to_bad > 0.0 {
                    let flip = device.rng.random::<f64>();
                    device.bad = if device.bad {
                        flip >= self.to_good
                    } else {
                        flip < self.to_bad
                    };
                    if device.bad {
                        count(tally, Fault::Dropped);
                        return;
                    }
                }
                if let Some(noise) = &self.noise {
                    let nx = round(x as f64 + noise.sample(&mut device.rng));
                    let ny = round(y as f64 + noise.sample(&mut device.rng));
                    let (nx, ny) = (nx.clamp(0, self.width - 1), ny.clamp(0, self.height - 1));
                    if (nx, ny) != (x, y) {
                        count(tally, Fault::Noisy);
                    }
                    event.kind = EventKind::Move { x: nx, y: ny };
                }
            }
            EventKind::Focus { .. } => {}
        }
        let jitter = config.jitter.as_millis() as i64;
        let sent_ms = event.due_ms
            + if jitter > 0 {
                device.rng.random_range(0..=jitter)
            } else {
                0
            };
        let elapsed = (sent_ms - device.first_ms) as f64;
        let clock_ms = sent_ms + round(device.skew_ms + device.drift * elapsed);
        if clock_ms.div_euclid(1000) != event.due_ms.div_euclid(1000) {
            count(tally, Fault::Skewed);
        }
        let copies = if config.duplicate > 0.0 && device.rng.random::<f64>() < config.duplicate {
            count(tally, Fault::Duplicated);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delivered = sent_ms + self.delay(device);
            if config.reorder.probability > 0.0
                && device.rng.random::<f64>() < config.reorder.probability
            {
                count(tally, Fault::Reordered);
                let window = config.reorder.window.as_millis() as i64;
                if window > 0 {
                    delivered += device.rng.random_range(1..=window);
                }
            }
            if delivered > event.due_ms {
                count(tally, Fault::Delayed);
            }
            let offset = (clock_ms - delivered).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            outgoing.push(Outgoing {
                due_ms: delivered,
                stamp: Stamp {
                    clock_ms: offset as i32,
                    truth: false,
                },
                source: index,
            });
        }
    }

    /// One delivery delay, in milliseconds.
    fn delay(&self, device: &mut Device) -> i64 {
        let ms = match &self.delay {
            Delay::None => return 0,
            Delay::Fixed(ms) => *ms,
            Delay::Exponential(exp) => exp.sample(&mut device.rng),
            Delay::Lognormal(log) => log.sample(&mut device.rng),
        };
        round(ms).clamp(0, 86_400_000)
    }
}

/// `x` rounded to the nearest whole number, halves away from zero, as `f64::round` would
/// (within a rounding error at exact halves) but inline: the library call showed in profiles.
/// Values beyond `i64`'s range saturate.
fn round(x: f64) -> i64 {
    (x + 0.5f64.copysign(x)) as i64
}

fn count(tally: &mut [u64; FAULTS], fault: Fault) {
    tally[fault as usize] += 1;
}

/// A Gaussian draw of standard deviation `sigma` (0 without drawing when `sigma` is 0).
fn gaussian(rng: &mut Pcg64Mcg, sigma: f64) -> f64 {
    if sigma <= 0.0 {
        return 0.0;
    }
    Normal::new(0.0, sigma)
        .map(|normal| normal.sample(rng))
        .unwrap_or(0.0)
}

/// A hash of a shopper that is the same in every run and process (FNV-1a): the device's stream
/// must not depend on a per-process hasher.
fn id_hash(store: StoreIndex, id: &CustomerId) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&store.to_le_bytes());
    match id {
        CustomerId::Number(number) => {
            feed(b"n");
            feed(&number.to_le_bytes());
        }
        CustomerId::Text(text) => {
            feed(b"t");
            feed(text.as_bytes());
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn moves(id: u64, count: usize, step_ms: i64) -> Vec<Event> {
        let mut events = vec![Event {
            due_ms: 0,
            customer: CustomerId::Number(id),
            kind: EventKind::Enter,
            store: 0,
            stamp: Stamp::default(),
        }];
        events.extend((1..=count).map(|n| Event {
            due_ms: n as i64 * step_ms,
            customer: CustomerId::Number(id),
            kind: EventKind::Move {
                x: (n % 100) as i64,
                y: 5,
            },
            store: 0,
            stamp: Stamp::default(),
        }));
        events
    }

    /// Batches one after the other, as a timeline publishes them: by (due time, customer), in
    /// the order they came among equal ones.
    fn as_the_timeline_orders(mut events: Vec<Event>) -> Vec<Event> {
        events.sort_by(|a, b| (a.due_ms, &a.customer).cmp(&(b.due_ms, &b.customer)));
        events
    }

    fn stage(config: SensorsConfig) -> (SensorStage, SensorCounts) {
        let counts = SensorCounts::default();
        let truth = TruthTopics {
            moves: Some("truth/move".into()),
            ..TruthTopics::default()
        };
        (
            SensorStage::new(config, &truth, 42, (100, 10), counts.clone()),
            counts,
        )
    }

    fn noisy() -> SensorsConfig {
        SensorsConfig {
            enabled: true,
            noise: 3.0,
            interval: Duration::from_millis(1500),
            jitter: Duration::from_millis(300),
            drop: DropConfig {
                probability: 0.1,
                burst: 3.0,
            },
            duplicate: 0.05,
            reorder: ReorderConfig {
                probability: 0.1,
                window: Duration::from_secs(5),
            },
            delay: DelayConfig {
                mean: Duration::from_millis(400),
                distribution: DelayDistribution::Lognormal,
                sigma: 0.5,
            },
            clock: ClockConfig {
                skew: Duration::from_secs(2),
                drift_ppm: 50.0,
            },
            missed_doors: 0.1,
        }
    }

    #[test]
    fn batches_do_not_change_what_is_reported() {
        let mut events: Vec<Event> = (1..=6).flat_map(|id| moves(id, 300, 1000)).collect();
        events.sort_by_key(|event| event.due_ms);
        let whole = stage(noisy()).0.apply(events.clone(), None);
        for size in [1, 5, 64] {
            let (mut split_stage, _) = stage(noisy());
            let split: Vec<Event> = events
                .chunks(size)
                .flat_map(|chunk| split_stage.apply(chunk.to_vec(), None))
                .collect();
            assert_eq!(as_the_timeline_orders(split), whole, "batches of {size}");
        }
        // The truth copies are the events as they came.
        let truth: Vec<&Event> = whole.iter().filter(|event| event.stamp.truth).collect();
        let moves: Vec<&Event> = events
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Move { .. }))
            .collect();
        assert_eq!(truth.len(), moves.len());
        assert!(
            truth
                .iter()
                .zip(&moves)
                .all(|(t, m)| t.due_ms == m.due_ms && t.kind == m.kind)
        );
    }

    #[test]
    fn observed_positions_stay_in_the_store_and_reports_are_never_early() {
        let mut config = noisy();
        config.noise = 40.0;
        let (mut stage, _) = stage(config);
        let events = moves(9, 2000, 1000);
        let out = stage.apply(events, None);
        for event in out.iter().filter(|event| !event.stamp.truth) {
            if let EventKind::Move { x, y } = event.kind {
                assert!((0..100).contains(&x) && (0..10).contains(&y), "{event:?}");
            }
        }
    }

    #[test]
    fn fault_rates_follow_the_settings() {
        let config = SensorsConfig {
            enabled: true,
            drop: DropConfig {
                probability: 0.2,
                burst: 4.0,
            },
            duplicate: 0.1,
            missed_doors: 0.3,
            ..SensorsConfig::default()
        };
        let (mut stage, counts) = stage(config);
        let mut events: Vec<Event> = (1..=2000).flat_map(|id| moves(id, 100, 1000)).collect();
        events.sort_by_key(|event| event.due_ms);
        stage.apply(events, None);
        let counts: HashMap<_, _> = counts.named().into_iter().collect();
        let reports = counts["reports"] as f64;
        assert_eq!(reports, 200_000.0);
        let dropped = counts["dropped"] as f64 / reports;
        assert!((dropped / 0.2 - 1.0).abs() < 0.05, "dropped {dropped}");
        let sent = reports - counts["dropped"] as f64 + 2000.0 - counts["missed_doors"] as f64;
        let duplicated = counts["duplicated"] as f64 / sent;
        assert!((duplicated / 0.1 - 1.0).abs() < 0.05, "dup {duplicated}");
        let missed = counts["missed_doors"] as f64 / 2000.0;
        assert!((missed / 0.3 - 1.0).abs() < 0.1, "missed {missed}");
    }

    #[test]
    fn a_refused_batch_is_undone() {
        let events = moves(3, 50, 1000);
        let (mut a, _) = stage(noisy());
        let first = a.apply(events[..20].to_vec(), None);
        let mut undo = SensorUndo::default();
        a.apply(events[20..].to_vec(), Some(&mut undo));
        a.undo(undo);
        let again = a.apply(events[20..].to_vec(), None);
        let (mut b, _) = stage(noisy());
        let whole = b.apply(events, None);
        let split: Vec<Event> = first.into_iter().chain(again).collect();
        assert_eq!(as_the_timeline_orders(split), whole);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut config = SensorsConfig {
            duplicate: 1.5,
            ..SensorsConfig::default()
        };
        assert_eq!(config.check().unwrap_err().0, "sensors.duplicate");
        config.duplicate = 0.0;
        config.drop.probability = 0.9;
        assert_eq!(config.check().unwrap_err().0, "sensors.drop.burst");
        config.drop.burst = 20.0;
        assert!(config.check().is_ok());
    }
}
