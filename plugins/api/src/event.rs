//! The event model and the payload bytes of the original service's contract: JSON written as
//! Python's `json.dumps` wrote it (`", "` between members, `": "` after keys), keys in the order
//! `id`, `ts`, `x`, `y`, which existing consumers depend on byte for byte (the book's *Events*
//! section).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};

use crate::fleet::{Fleet, StoreIndex};
use crate::json;

/// Longest customer id accepted from outside (HTTP bodies, customer lists), in bytes (UTF-8).
/// Every event of a shopper repeats the id in its payload, so the id's length multiplies the
/// output: a 256 KB id in a 1 MiB scenario, or a 50 MB id in a customer list, made gigabytes of
/// output from a few events. Real ids (digits, UUIDs, loyalty numbers) are far shorter.
pub const MAX_ID_BYTES: usize = 256;

/// Who a shopper is. Generated and most listed ids are decimal numbers; keeping those as integers
/// makes a simulated shopper small (a million of them fit in memory) and comparisons cheap.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerId {
    /// A canonical decimal number (no sign, no leading zeros), printed as its digits.
    Number(u64),
    /// Any other id, printed verbatim (escaped as JSON).
    Text(Arc<str>),
}

impl CustomerId {
    /// Parses an id given as text; only canonical decimal numbers become [`CustomerId::Number`], so
    /// `"007"` is published back as `"007"`.
    pub fn parse(text: &str) -> CustomerId {
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        match text.parse::<u64>() {
            Ok(number) if canonical => CustomerId::Number(number),
            _ => CustomerId::Text(Arc::from(text)),
        }
    }

    /// Appends the id as a JSON string (`"997"`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            CustomerId::Number(number) => {
                out.push(b'"');
                out.extend_from_slice(itoa::Buffer::new().format(*number).as_bytes());
                out.push(b'"');
            }
            CustomerId::Text(text) => json::write_str(out, text),
        }
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CustomerId::Number(number) => write!(f, "{number}"),
            CustomerId::Text(text) => f.write_str(text),
        }
    }
}

impl From<u64> for CustomerId {
    fn from(number: u64) -> Self {
        CustomerId::Number(number)
    }
}

impl From<&str> for CustomerId {
    fn from(text: &str) -> Self {
        CustomerId::parse(text)
    }
}

/// What happened to a shopper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The shopper came in (through the door, for simulated shoppers).
    Enter,
    /// The shopper is now at (`x`, `y`) in store coordinates.
    Move { x: i64, y: i64 },
    /// The shopper left.
    Exit,
    /// Ground truth: the shopper's 3rd position report in a row inside department `dep`, at
    /// (`x`, `y`) (see [`crate::focus`]). Published on `topics.focus` only.
    Focus {
        /// The department's name, interned ([`intern`]) so events stay `Copy`.
        dep: &'static str,
        /// Where the report that made the focus was (the move it follows), as consumers got it.
        x: i64,
        /// See `x`.
        y: i64,
    },
}

/// The one `&'static str` for `name`: department names live in events that are copied by value
/// through timelines and sinks, and there are only a few distinct ones per run, so each is leaked
/// once and shared instead of reference-counted per event.
pub fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match names.get(name) {
        Some(interned) => interned,
        None => {
            let interned: &'static str = Box::leak(name.into());
            names.insert(interned);
            interned
        }
    }
}

/// What the sensor stage ([`crate::sensors`]) marks on an event; the default (all zero) is an
/// event as its source made it, so its payload is the original service's byte for byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// The reporting device's clock minus the due time, in milliseconds: an observed report is
    /// delivered (due) later than it happened, and its payload's `ts` is the device's time
    /// (`due_ms + clock_ms`). Five bytes instead of a second timestamp keep events small.
    pub clock_ms: i32,
    /// Ground truth copied next to the observed stream: published on `topics.truth.*`.
    pub truth: bool,
}

/// One sensor report: a shopper entered, moved or left at a simulated instant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// When the event happens, in milliseconds since the Unix epoch (simulated time). The payload's
    /// `ts` is this in whole seconds; the milliseconds keep the order of events within a second.
    pub due_ms: i64,
    /// Who.
    pub customer: CustomerId,
    /// What.
    pub kind: EventKind,
    /// Which store of the fleet ([`crate::fleet`]): its position, 0 without a fleet. Not in the
    /// payload; sinks use it for the topic (`{store}`, [`Topics::for_event`]).
    pub store: StoreIndex,
    /// What the sensor stage changed (the payload's clock, a truth copy); default: nothing.
    pub stamp: Stamp,
}

impl Event {
    /// The payload's `ts`: whole seconds since the epoch, rounded down (on the reporting device's
    /// clock when the sensor stage set one, [`Stamp::clock_ms`]).
    pub fn ts(&self) -> i64 {
        (self.due_ms + i64::from(self.stamp.clock_ms)).div_euclid(1000)
    }

    /// Appends the payload exactly as the original service wrote it (Python `json.dumps`):
    /// `{"id": "997", "ts": 192326400, "x": 2, "y": 3}`; a focus is what the recommendation
    /// service reads: `{"id": "3", "ts": 1700000000, "dep": "Women", "x": 450, "y": 460}`.
    pub fn write_payload(&self, out: &mut Vec<u8>) {
        let mut numbers = itoa::Buffer::new();
        out.extend_from_slice(b"{\"id\": ");
        self.customer.write_json(out);
        out.extend_from_slice(b", \"ts\": ");
        out.extend_from_slice(numbers.format(self.ts()).as_bytes());
        let at = match self.kind {
            EventKind::Move { x, y } => Some((x, y)),
            EventKind::Focus { dep, x, y } => {
                out.extend_from_slice(b", \"dep\": ");
                json::write_str(out, dep);
                Some((x, y))
            }
            EventKind::Enter | EventKind::Exit => None,
        };
        if let Some((x, y)) = at {
            out.extend_from_slice(b", \"x\": ");
            out.extend_from_slice(numbers.format(x).as_bytes());
            out.extend_from_slice(b", \"y\": ");
            out.extend_from_slice(numbers.format(y).as_bytes());
        }
        out.push(b'}');
    }

    /// The payload bytes as a new buffer.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_payload(&mut out);
        out
    }
}

/// The topic each kind of event is published on (the pipeline file's `topics:` section).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct Topics {
    /// Topic of enter events.
    #[serde(default = "default_enter_topic")]
    pub enter: String,
    /// Topic of move events.
    #[serde(default = "default_move_topic", rename = "move")]
    pub moves: String,
    /// Topic of exit events.
    #[serde(default = "default_exit_topic")]
    pub exit: String,
    /// Topic of ground-truth focus events (the recommendation service's `customer/focus`). Unset
    /// = none generated, so the default output stays the original service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<String>,
    /// Topics of the ground truth next to the observed stream when `sensors.enabled` is on
    /// (each unset = that kind's truth not published).
    #[serde(default, skip_serializing_if = "TruthTopics::is_empty")]
    pub truth: TruthTopics,
    /// With a fleet, each store's topics with `{store}` replaced by its id, made once by
    /// [`Topics::for_fleet`] so no event pays for the replacement. Not a config key.
    #[serde(skip)]
    pub per_store: StoreTopics,
}

/// `topics.truth`: where the sensor stage publishes what shoppers truly did, next to what the
/// sensors report on the usual topics. Unset, all of them: no truth copy is made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct TruthTopics {
    /// Topic of the true enter events (each one, reported or not). Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enter: Option<String>,
    /// Topic of the true moves (exact positions, every one, at the time they happened).
    /// Default: unset.
    #[serde(default, rename = "move", skip_serializing_if = "Option::is_none")]
    pub moves: Option<String>,
    /// Topic of the true exit events. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// Topic of a copy of the focus events (which are always derived from the true moves).
    /// Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<String>,
}

impl TruthTopics {
    /// Whether no truth topic is set.
    pub fn is_empty(&self) -> bool {
        self.topics().iter().all(Option::is_none)
    }

    /// The topic of each kind (enter, move, exit, focus), in [`Topics::patterns`] order.
    pub fn topics(&self) -> [Option<&str>; 4] {
        [
            self.enter.as_deref(),
            self.moves.as_deref(),
            self.exit.as_deref(),
            self.focus.as_deref(),
        ]
    }
}

/// Each store's four topics (enter, move, exit, focus), `{store}` replaced; empty without a
/// fleet or without `{store}` in any topic. Made by [`Topics::for_fleet`] only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreTopics(Arc<[[Arc<str>; 4]]>);

/// What `{store}` in a topic is replaced by: the id of the event's store.
pub const STORE_PLACEHOLDER: &str = "{store}";

fn default_enter_topic() -> String {
    "customer/enter".into()
}
fn default_move_topic() -> String {
    "customer/move".into()
}
fn default_exit_topic() -> String {
    "customer/exit".into()
}

/// Where a focus event goes when one reaches a sink of a pipeline without `topics.focus` (the focus
/// stage only makes them when it is set; a timeline shared with a pipeline that sets it may carry
/// them): the recommendation service's topic.
pub const FALLBACK_FOCUS_TOPIC: &str = "customer/focus";

impl Default for Topics {
    fn default() -> Self {
        Topics {
            enter: default_enter_topic(),
            moves: default_move_topic(),
            exit: default_exit_topic(),
            focus: None,
            truth: TruthTopics::default(),
            per_store: StoreTopics::default(),
        }
    }
}

impl Topics {
    /// The topic an event of this kind goes to.
    pub fn for_kind(&self, kind: &EventKind) -> &str {
        match kind {
            EventKind::Enter => &self.enter,
            EventKind::Move { .. } => &self.moves,
            EventKind::Exit => &self.exit,
            EventKind::Focus { .. } => self.focus.as_deref().unwrap_or(FALLBACK_FOCUS_TOPIC),
        }
    }

    /// The topic `event` goes to: its kind's, with `{store}` replaced by the id of the event's
    /// store when the topics were made [`Topics::for_fleet`] (the store's position + 1 for a
    /// store the fleet does not have).
    pub fn for_event(&self, event: &Event) -> std::borrow::Cow<'_, str> {
        let kind = kind_index(&event.kind);
        if event.stamp.truth {
            // `{store}` is refused in truth topics, so one name serves every store.
            return std::borrow::Cow::Borrowed(
                self.truth.topics()[kind].unwrap_or_else(|| self.for_kind(&event.kind)),
            );
        }
        match self.per_store.0.get(event.store as usize) {
            Some(topics) => std::borrow::Cow::Borrowed(&topics[kind]),
            None if self.per_store.0.is_empty() => {
                std::borrow::Cow::Borrowed(self.for_kind(&event.kind))
            }
            None => std::borrow::Cow::Owned(
                self.for_kind(&event.kind)
                    .replace(STORE_PLACEHOLDER, &(u64::from(event.store) + 1).to_string()),
            ),
        }
    }

    /// These topics for `fleet`'s stores: `{store}` is replaced by each store's id. Without a
    /// configured fleet, or without `{store}` in any topic, the topics are as written.
    pub fn for_fleet(mut self, fleet: &Fleet) -> Topics {
        let patterns = self.patterns();
        if !fleet.is_configured()
            || !patterns
                .iter()
                .any(|topic| topic.contains(STORE_PLACEHOLDER))
        {
            self.per_store = StoreTopics::default();
            return self;
        }
        self.per_store = StoreTopics(
            fleet
                .ids()
                .iter()
                .map(|id| {
                    patterns
                        .clone()
                        .map(|topic| Arc::from(topic.replace(STORE_PLACEHOLDER, id)))
                })
                .collect(),
        );
        self
    }

    /// The topic of each kind as written (enter, move, exit, focus), `{store}` included.
    pub fn patterns(&self) -> [String; 4] {
        [
            self.enter.clone(),
            self.moves.clone(),
            self.exit.clone(),
            self.focus
                .clone()
                .unwrap_or_else(|| FALLBACK_FOCUS_TOPIC.to_string()),
        ]
    }

    /// Whether each store has topics of its own ([`Topics::for_fleet`] replaced `{store}`): then
    /// [`Topics::all_stores`] lists them by store position; otherwise its one entry is every
    /// event's.
    pub fn is_per_store(&self) -> bool {
        !self.per_store.0.is_empty()
    }

    /// The topics of every store (each kind's, in [`Topics::patterns`] order), for sinks that
    /// prepare per-topic state; without `{store}` topics, one entry.
    pub fn all_stores(&self) -> Vec<[String; 4]> {
        if self.per_store.0.is_empty() {
            vec![self.patterns()]
        } else {
            self.per_store
                .0
                .iter()
                .map(|topics| topics.clone().map(|topic| topic.to_string()))
                .collect()
        }
    }
}

/// The key under `topics:` of each kind, in [`Topics::patterns`] order.
pub const TOPIC_KEYS: [&str; 4] = ["enter", "move", "exit", "focus"];

/// One topic name a sink may publish to, as [`Topics::check_each`] hands it to a protocol's rule.
#[derive(Clone, Copy, Debug)]
pub struct ResolvedTopic<'a> {
    /// The key under `topics:` that wrote it (`enter`, `move`, `exit`, `focus`).
    pub key: &'static str,
    /// The store whose id `{store}` became; `None` for a topic as written.
    pub store: Option<&'a str>,
    /// The topic name, `{store}` replaced.
    pub name: &'a str,
}

impl Topics {
    /// Checks every topic name events may be published on against a sink's protocol `rule`
    /// (which says what is wrong): each topic as written and, for a topic with `{store}`, each
    /// store's. The core resolves the names once ([`Topics::for_fleet`]); each sink knows what
    /// its protocol accepts, so a name it cannot publish to is refused before the run, never
    /// found by a broker that drops the connection. The error names the key, the store and the
    /// topic (cut short).
    pub fn check_each(
        &self,
        fleet: &Fleet,
        rule: impl Fn(&ResolvedTopic) -> Result<(), String>,
    ) -> Result<(), crate::PluginError> {
        let patterns = self.patterns();
        for (kind, pattern) in patterns.iter().enumerate() {
            let key = TOPIC_KEYS[kind];
            let refuse = |topic: &ResolvedTopic, why: String| {
                let store = topic
                    .store
                    .map(|id| format!(" (store {})", crate::excerpt(id)))
                    .unwrap_or_default();
                crate::PluginError::Config(format!(
                    "topics.{key}: {}{store}: {why}",
                    crate::excerpt(topic.name)
                ))
            };
            if self.per_store.0.is_empty() || !pattern.contains(STORE_PLACEHOLDER) {
                let topic = ResolvedTopic {
                    key,
                    store: None,
                    name: pattern,
                };
                rule(&topic).map_err(|why| refuse(&topic, why))?;
                continue;
            }
            for (index, topics) in self.per_store.0.iter().enumerate() {
                let topic = ResolvedTopic {
                    key,
                    store: fleet.ids().get(index).map(|id| &**id),
                    name: &topics[kind],
                };
                rule(&topic).map_err(|why| refuse(&topic, why))?;
            }
        }
        for (kind, name) in self.truth.topics().into_iter().enumerate() {
            let Some(name) = name else { continue };
            let key = TRUTH_TOPIC_KEYS[kind];
            let topic = ResolvedTopic {
                key,
                store: None,
                name,
            };
            rule(&topic).map_err(|why| {
                crate::PluginError::Config(format!("topics.{key}: {}: {why}", crate::excerpt(name)))
            })?;
        }
        Ok(())
    }
}

/// The key of each truth topic, in [`Topics::patterns`] order.
pub const TRUTH_TOPIC_KEYS: [&str; 4] = ["truth.enter", "truth.move", "truth.exit", "truth.focus"];

/// 0, 1, 2, 3 for enter, move, exit, focus: the order of [`Topics::patterns`].
pub fn kind_index(kind: &EventKind) -> usize {
    match kind {
        EventKind::Enter => 0,
        EventKind::Move { .. } => 1,
        EventKind::Exit => 2,
        EventKind::Focus { .. } => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            due_ms: 192_326_400_999,
            customer: CustomerId::parse("997"),
            kind,
            store: 0,
            stamp: Default::default(),
        }
    }

    #[test]
    fn payload_bytes_match_the_original_service() {
        assert_eq!(
            event(EventKind::Enter).payload(),
            br#"{"id": "997", "ts": 192326400}"#
        );
        assert_eq!(
            event(EventKind::Move { x: 2, y: 3 }).payload(),
            br#"{"id": "997", "ts": 192326400, "x": 2, "y": 3}"#
        );
        assert_eq!(
            event(EventKind::Exit).payload(),
            br#"{"id": "997", "ts": 192326400}"#
        );
        let focus = Event {
            due_ms: 1_700_000_000_123,
            customer: CustomerId::parse("3"),
            kind: EventKind::Focus {
                dep: intern("Women"),
                x: 450,
                y: 460,
            },
            store: 0,
            stamp: Default::default(),
        };
        assert_eq!(
            focus.payload(),
            br#"{"id": "3", "ts": 1700000000, "dep": "Women", "x": 450, "y": 460}"#
        );
        let quoted = Event {
            kind: EventKind::Focus {
                dep: intern("Health & \"Beauty\""),
                x: 1,
                y: 2,
            },
            ..focus
        };
        assert_eq!(
            quoted.payload(),
            br#"{"id": "3", "ts": 1700000000, "dep": "Health & \"Beauty\"", "x": 1, "y": 2}"#
        );
    }

    #[test]
    fn interned_names_are_shared() {
        let a = intern(&String::from("Sport"));
        let b = intern("Sport");
        assert!(std::ptr::eq(a, b));
        assert_eq!(a, "Sport");
    }

    #[test]
    fn ids_keep_their_spelling() {
        assert_eq!(CustomerId::parse("42"), CustomerId::Number(42));
        assert!(matches!(CustomerId::parse("007"), CustomerId::Text(_)));
        assert!(matches!(CustomerId::parse("x-1"), CustomerId::Text(_)));
        assert!(matches!(
            CustomerId::parse("99999999999999999999999"),
            CustomerId::Text(_)
        ));
        assert_eq!(CustomerId::parse("007").to_string(), "007");
    }

    #[test]
    fn ts_rounds_down_before_the_epoch_too() {
        let mut e = event(EventKind::Enter);
        e.due_ms = -1;
        assert_eq!(e.ts(), -1);
    }

    #[test]
    fn check_each_names_key_store_and_topic() {
        let fleet = Fleet::new(vec!["a".into(), "b#".into()], Default::default()).unwrap();
        let topics = Topics {
            moves: "s/{store}/move".into(),
            ..Topics::default()
        }
        .for_fleet(&fleet);
        let no_hash = |topic: &ResolvedTopic| match topic.name.contains('#') {
            true => Err("holds #".to_string()),
            false => Ok(()),
        };
        let error = topics.check_each(&fleet, no_hash).unwrap_err().to_string();
        assert!(
            error.contains("topics.move")
                && error.contains("\"s/b#/move\"")
                && error.contains("(store \"b#\")"),
            "{error}"
        );
        let seen = std::cell::RefCell::new(Vec::new());
        topics
            .check_each(&fleet, |topic| {
                seen.borrow_mut().push((
                    topic.key,
                    topic.store.map(String::from),
                    topic.name.to_string(),
                ));
                Ok(())
            })
            .unwrap();
        let seen = seen.into_inner();
        assert_eq!(
            seen.len(),
            5,
            "static topics once, {{store}} topics per store: {seen:?}"
        );
        assert!(seen.contains(&("exit", None, "customer/exit".into())));
        assert!(seen.contains(&("move", Some("a".into()), "s/a/move".into())));
        // A static topic is checked too.
        let error = Topics::default()
            .check_each(&Fleet::single(), |topic| match topic.key {
                "focus" => Err("no".into()),
                _ => Ok(()),
            })
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("topics.focus: \"customer/focus\": no"),
            "{error}"
        );
    }
}
