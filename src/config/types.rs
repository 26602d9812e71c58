//! The typed shape of the pipeline file. Key names are part of the interface: deployed pipeline
//! files and the README's *Configuration* section use them, so a key is never renamed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::plugin_api::{
    Announce, LayoutSpec, LoadPlan, LoadStage, MAX_STORES, Shard, Topics, Zone, duration,
};

/// The whole pipeline file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Seed, speed, start and length of the simulated time.
    #[serde(default)]
    pub simulation: SimulationConfig,
    /// The store's floor plan: extent, walking grid, doors and zones.
    #[serde(default)]
    pub store: StoreConfig,
    /// Topics of enter, move and exit events.
    #[serde(default)]
    pub topics: Topics,
    /// How focus events (on when `topics.focus` is set) are announced.
    #[serde(default, skip_serializing_if = "FocusConfig::is_default")]
    pub focus: FocusConfig,
    /// A chain of stores of this layout, each with its own shoppers; absent: one store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetConfig>,
    /// The part of the fleet this process runs, `INDEX/COUNT` (SHARD); absent: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Where future events wait and how they are taken off.
    #[serde(default)]
    pub timeline: TimelineConfig,
    /// Plugins that produce events.
    #[serde(default)]
    pub sources: Vec<PluginSpec>,
    /// Plugins that deliver events.
    #[serde(default)]
    pub sinks: Vec<PluginSpec>,
    /// Replies the system under test must send, one rule per entry (see [`crate::verdict`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<crate::verdict::rules::ExpectConfig>,
    /// Read back the events a sink published, to report what the broker delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_check: Option<crate::verdict::rules::DeliveryCheckConfig>,
    /// Pass/fail limits on what the run measured (see [`crate::thresholds`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<crate::thresholds::ThresholdsConfig>,
    /// Target events per second over time, met by the simulated shopper sources; absent: their
    /// own `average_in_store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadConfig>,
}

/// `load:` stages of target published events per second, in order from the start of the run
/// (the book's *Load stages* section).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadConfig {
    /// The stages, in order: `{duration: 2m, events_per_second: 5000}`. Each holds its target
    /// once ramped; the run ends after the last one unless `simulation.duration` is set.
    #[schemars(length(min = 1))]
    pub stages: Vec<LoadStageConfig>,
    /// How long the target takes to move linearly from one stage's to the next (and from 0 to
    /// the first stage's), counted in the stage it moves to.
    #[serde(default = "default_ramp", with = "duration::required")]
    pub ramp: Duration,
}

/// One entry of `load.stages`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadStageConfig {
    /// How long the stage lasts, its ramp included.
    #[serde(with = "duration::required")]
    pub duration: Duration,
    /// Published events per simulated second the stage holds once ramped (all sources and
    /// stores together).
    #[schemars(range(min = 0.0, max = MAX_EVENTS_PER_SECOND))]
    pub events_per_second: f64,
}

/// 30 s: long enough for a shopper sent home to walk out of the default store, and for a walk in
/// from the entrance of the demo store, so a stage is on target from its ramp's end; short
/// enough to leave most of a 2-minute stage at its target.
pub fn default_ramp() -> Duration {
    Duration::from_secs(30)
}

/// The most events per second a stage may ask for: far beyond what one process publishes, and
/// small enough that the crowd it needs stays a number.
pub const MAX_EVENTS_PER_SECOND: f64 = 100_000_000.0;

/// The most stages `load:` may have.
pub const MAX_LOAD_STAGES: usize = 1_000;

impl LoadConfig {
    /// Checks the stages; an error names the key (`load.stages[1].events_per_second`).
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.stages.is_empty() {
            return Err((
                "load.stages".into(),
                "is empty: give at least one stage, e.g. [{duration: 2m, events_per_second: 1000}]"
                    .into(),
            ));
        }
        if self.stages.len() > MAX_LOAD_STAGES {
            return Err((
                "load.stages".into(),
                format!(
                    "has {} stages, more than the {MAX_LOAD_STAGES} accepted",
                    self.stages.len()
                ),
            ));
        }
        for (index, stage) in self.stages.iter().enumerate() {
            if stage.duration < Duration::from_secs(1) {
                return Err((
                    format!("load.stages[{index}].duration"),
                    "must be at least 1s".into(),
                ));
            }
            let target = stage.events_per_second;
            if !(0.0..=MAX_EVENTS_PER_SECOND).contains(&target) {
                return Err((
                    format!("load.stages[{index}].events_per_second"),
                    format!("must be a number from 0 to {MAX_EVENTS_PER_SECOND}"),
                ));
            }
        }
        if self.total() > crate::plugin_api::duration::MAX {
            return Err((
                "load.stages".into(),
                "last longer than the longest simulated time a run may have".into(),
            ));
        }
        Ok(())
    }

    /// How long all stages take together.
    pub fn total(&self) -> Duration {
        self.stages.iter().fold(Duration::ZERO, |total, stage| {
            total.saturating_add(stage.duration)
        })
    }

    /// The checked stages as the plugin API hands them to sources.
    pub fn plan(&self) -> LoadPlan {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        LoadPlan::new(
            self.stages
                .iter()
                .map(|stage| LoadStage {
                    duration_ms: ms(stage.duration),
                    events_per_second: stage.events_per_second,
                })
                .collect(),
            ms(self.ramp),
        )
    }
}

/// `focus:`: the rule of the focus events every source's moves make (`topics.focus` is their
/// topic and turns them on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FocusConfig {
    /// `once_per_stay`: one focus per department stay, at its 3rd report in a row.
    /// `every_report`: the demo decision service's announcements, at the 3rd report in a row and
    /// at every further report of the stay, the count kept across visits.
    #[serde(default)]
    pub announce: Announce,
}

impl FocusConfig {
    fn is_default(&self) -> bool {
        *self == FocusConfig::default()
    }
}

/// `fleet:`
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// How many stores (their ids are `1` to `N`), or the list of their ids.
    pub stores: StoreList,
}

/// `fleet.stores`: a number of stores or their ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreList {
    /// Stores `1` to `N`.
    Count(u32),
    /// Stores with these ids, in this order (a store's position decides its shard).
    Ids(Vec<String>),
}

impl StoreList {
    /// The store ids, in fleet order.
    pub fn ids(&self) -> Vec<String> {
        match self {
            StoreList::Count(count) => (1..=*count).map(|n| n.to_string()).collect(),
            StoreList::Ids(ids) => ids.clone(),
        }
    }
}

impl Serialize for StoreList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StoreList::Count(count) => serializer.serialize_u32(*count),
            StoreList::Ids(ids) => ids.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for StoreList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "expected a number of stores (e.g. 50) or a list of store ids";
        let value = serde_yaml::Value::deserialize(deserializer)?;
        let scalar = |value: &serde_yaml::Value| match value {
            serde_yaml::Value::String(text) => Some(text.clone()),
            serde_yaml::Value::Number(number) => Some(number.to_string()),
            _ => None,
        };
        // Refused before a store is made: every store costs memory in every process.
        let too_many = |count: String| {
            serde::de::Error::custom(format!(
                "stores: {count} stores, more than the {MAX_STORES} a fleet may have"
            ))
        };
        match &value {
            serde_yaml::Value::Number(number) => match number.as_u64() {
                Some(count) if count > MAX_STORES as u64 => Err(too_many(count.to_string())),
                Some(count @ 1..) => Ok(StoreList::Count(count as u32)),
                _ => Err(serde::de::Error::custom(format!(
                    "stores: {number} is not a number of stores (at least 1)"
                ))),
            },
            serde_yaml::Value::Sequence(items) if items.len() > MAX_STORES => {
                Err(too_many(items.len().to_string()))
            }
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .map(scalar)
                .collect::<Option<Vec<String>>>()
                .map(StoreList::Ids)
                .ok_or_else(|| serde::de::Error::custom(format!("stores: {expected}"))),
            _ => Err(serde::de::Error::custom(format!("stores: {expected}"))),
        }
    }
}

/// `simulation:`
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulationConfig {
    /// Seed of every random choice; absent = drawn at random and logged.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Simulated seconds per wall second, or `max` (a virtual clock, as fast as sinks go).
    #[serde(default)]
    pub speed: Speed,
    /// `now`, or an RFC 3339 instant to start the simulated time at (historical backfill).
    #[serde(default)]
    pub start: Start,
    /// Close the doors after this much simulated time, let everyone out, then exit.
    #[serde(default, with = "duration::optional")]
    pub duration: Option<Duration>,
}

/// `simulation.speed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// Simulated seconds per wall second (1.0 = real time).
    Factor(f64),
    /// A virtual clock that jumps to the next due event.
    Max,
}

impl Speed {
    /// The slowest factor accepted: a simulated second every 1,000 wall seconds. Slower clocks
    /// turn due times into wall deadlines beyond what timers hold.
    pub const SLOWEST: f64 = 0.001;
    /// The fastest factor accepted: a simulated day in under a tenth of a second. Faster is
    /// `max` (a virtual clock), which never spins waiting for a clock it cannot keep up with.
    pub const FASTEST: f64 = 1_000_000.0;
}

impl Default for Speed {
    fn default() -> Self {
        Speed::Factor(1.0)
    }
}

impl FromStr for Speed {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match text.parse::<f64>() {
            Ok(factor) if (Speed::SLOWEST..=Speed::FASTEST).contains(&factor) => {
                Ok(Speed::Factor(factor))
            }
            _ => Err(format!(
                "invalid speed {}: expected a number from {} to {} or \"max\"",
                crate::plugin_api::excerpt(text),
                Speed::SLOWEST,
                Speed::FASTEST
            )),
        }
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Factor(factor) => write!(f, "{factor}"),
            Speed::Max => f.write_str("max"),
        }
    }
}

impl Serialize for Speed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Speed::Factor(factor) => serializer.serialize_f64(*factor),
            Speed::Max => serializer.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(number) => number.to_string().parse(),
            Raw::Text(text) => text.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// `simulation.start`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Start {
    /// The wall clock's time when the run starts.
    #[default]
    Now,
    /// A fixed instant.
    At(DateTime<Utc>),
}

impl Start {
    /// The simulated start instant in milliseconds since the epoch.
    pub fn resolve_ms(&self) -> i64 {
        match self {
            Start::Now => Utc::now().timestamp_millis(),
            Start::At(at) => at.timestamp_millis(),
        }
    }
}

impl FromStr for Start {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("now") {
            return Ok(Start::Now);
        }
        parse_instant(text).map(Start::At)
    }
}

/// Parses an RFC 3339 / ISO 8601 instant with a time zone, in years 1 to 9999 (UTC): the range
/// every consumer's date library reads, and where adding any configured duration stays exact.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    let shown = crate::plugin_api::excerpt(text);
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| format!("invalid instant {shown} ({error}); expected RFC 3339 with a zone, e.g. 2026-01-31T09:00:00Z"))?;
    if !(1..=9999).contains(&chrono::Datelike::year(&at)) {
        return Err(format!(
            "invalid instant {shown}: outside the years 1 to 9999 (UTC)"
        ));
    }
    Ok(at)
}

impl Serialize for Start {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Start::Now => serializer.serialize_str("now"),
            Start::At(at) => {
                serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Start {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `store:` the floor plan (see [`crate::plugin_api::layout`]). The original service's
/// `width`/`height`/`door` grid is the special case `cell: 1`, no zones, entrance = exit = door.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Extent of the coordinate space along x: positions have `x` in `0..width` (cells of the
    /// original grid; pixels of the plan the consumers draw).
    #[serde(default = "default_width")]
    pub width: u32,
    /// Extent along y.
    #[serde(default = "default_height")]
    pub height: u32,
    /// Pitch of the walking grid in store units: shoppers stand on cell centres and one step is
    /// one cell, so a fine plan (pixels) can be walked in realistic steps.
    #[serde(default = "default_cell")]
    pub cell: u32,
    /// `[x, y]` where shoppers both enter and leave (the original service's door); sets
    /// `entrance` and `exit` at once, so it cannot be given with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub door: Option<[u32; 2]>,
    /// `[x, y]` where shoppers come in, when it differs from the exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrance: Option<[u32; 2]>,
    /// `[x, y]` where shoppers leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<[u32; 2]>,
    /// Departments, checkouts and obstacles: `{name, kind, area: [x1, y1, x2, y2], weight}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<Zone>,
}

fn default_width() -> u32 {
    6
}
fn default_height() -> u32 {
    10
}
/// Unit cells: the original grid, where a cell is a coordinate.
fn default_cell() -> u32 {
    1
}
/// The original service's door: the top-left cell.
fn default_door() -> [u32; 2] {
    [0, 0]
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            width: default_width(),
            height: default_height(),
            cell: default_cell(),
            door: None,
            entrance: None,
            exit: None,
            zones: Vec::new(),
        }
    }
}

impl StoreConfig {
    /// The layout to check: `door` (or the default door) stands for any of `entrance`/`exit`
    /// left out. Giving `door` with either is an error.
    pub fn spec(&self) -> Result<LayoutSpec, String> {
        if self.door.is_some() && (self.entrance.is_some() || self.exit.is_some()) {
            return Err(
                "store.door sets both entrance and exit: give either door or entrance/exit".into(),
            );
        }
        let door = self.door.unwrap_or_else(default_door);
        let entrance = self.entrance.unwrap_or(door);
        let exit = self.exit.unwrap_or(door);
        Ok(LayoutSpec {
            width: self.width,
            height: self.height,
            cell: self.cell,
            entrance: (entrance[0], entrance[1]),
            exit: (exit[0], exit[1]),
            zones: self.zones.clone(),
        })
    }
}

/// `timeline:` where future events wait (the backend) and how they are taken off.
///
/// Besides its own keys, the section holds one settings map per timeline backend, under the
/// backend's name (`redis: {url: …}`); only the chosen backend's is used, every one present is
/// checked.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct TimelineConfig {
    /// The timeline backend (`customersim plugins` lists them).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Seconds between polls of the timeline; 0 = wake exactly when the next event is due.
    /// Unset (the default), the scheduler keeps up with what the sources generate: it wakes when
    /// the next event is due and takes everything due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consume_frequency: Option<f64>,
    /// Which events due before the start are published: `earliest`, `latest` or an instant.
    #[serde(default)]
    pub consume_from: ConsumeFrom,
    /// Most events taken per poll. Unset (the default): no limit, everything due is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consume_batch_size: Option<usize>,
    /// Settings of the backends, by backend name.
    #[serde(flatten)]
    #[schemars(skip)]
    pub backends: serde_yaml::Mapping,
}

fn default_backend() -> String {
    "memory".into()
}

impl Default for TimelineConfig {
    fn default() -> Self {
        TimelineConfig {
            backend: default_backend(),
            consume_frequency: None,
            consume_from: ConsumeFrom::default(),
            consume_batch_size: None,
            backends: Default::default(),
        }
    }
}

impl TimelineConfig {
    /// How the scheduler takes events off the timeline, in words (`validate` shows it).
    pub fn pacing(&self) -> String {
        match (self.consume_frequency, self.consume_batch_size) {
            (None, None) => {
                "keeps up with the sources: wakes when the next event is due and takes \
                 everything due (CONSUME_FREQUENCY and CONSUME_BATCH_SIZE unset)"
                    .into()
            }
            (frequency, batch) => {
                let batch = match batch {
                    Some(batch) => format!("at most {batch} events"),
                    None => "every event due".into(),
                };
                match frequency {
                    Some(frequency) if frequency > 0.0 => format!(
                        "takes {batch} every {frequency} s (CONSUME_BATCH_SIZE, CONSUME_FREQUENCY)"
                    ),
                    _ => format!(
                        "wakes when the next event is due and takes {batch} per claim, \
                         claim after claim (CONSUME_BATCH_SIZE, CONSUME_FREQUENCY)"
                    ),
                }
            }
        }
    }

    /// The chosen backend's settings (empty when the file has none).
    pub fn backend_settings(&self) -> serde_yaml::Value {
        self.backends
            .get(self.backend.as_str())
            .cloned()
            .unwrap_or(serde_yaml::Value::Null)
    }
}

/// `timeline.consume_from`: what to do with events due before the start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ConsumeFrom {
    /// Publish them all, in order.
    Earliest,
    /// Skip those due before the run's start.
    #[default]
    Latest,
    /// Skip those due before this instant.
    At(DateTime<Utc>),
}

impl ConsumeFrom {
    /// Events due before this instant (ms) are skipped; `None` skips nothing.
    pub fn skip_before_ms(&self, start_ms: i64) -> Option<i64> {
        match self {
            ConsumeFrom::Earliest => None,
            ConsumeFrom::Latest => Some(start_ms),
            ConsumeFrom::At(at) => Some(at.timestamp_millis()),
        }
    }
}

impl FromStr for ConsumeFrom {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "earliest" => Ok(ConsumeFrom::Earliest),
            "latest" => Ok(ConsumeFrom::Latest),
            _ => parse_instant(text)
                .map(ConsumeFrom::At)
                .map_err(|why| format!("expected \"earliest\", \"latest\" or an instant: {why}")),
        }
    }
}

impl Serialize for ConsumeFrom {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ConsumeFrom::Earliest => serializer.serialize_str("earliest"),
            ConsumeFrom::Latest => serializer.serialize_str("latest"),
            ConsumeFrom::At(at) => {
                serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
        }
    }
}

impl<'de> Deserialize<'de> for ConsumeFrom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One entry of `sources:` or `sinks:`: a plugin type and its own settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PluginSpec {
    /// The registered plugin type (`customersim plugins` lists them).
    #[serde(rename = "type")]
    pub kind: String,
    /// The plugin's settings, checked by the plugin itself.
    #[serde(flatten)]
    pub settings: serde_yaml::Mapping,
}

impl PluginSpec {
    /// A spec of `kind` with no settings.
    pub fn of(kind: &str) -> PluginSpec {
        PluginSpec {
            kind: kind.to_string(),
            settings: Default::default(),
        }
    }
}
