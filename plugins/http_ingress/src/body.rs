//! Request bodies: parsing them into events and refusing bad ones with a message that names the
//! field (`path[3].timestamp: …`).
//!
//! Parsing is built for ingestion speed: bodies are read by `serde_json` straight into small typed
//! structs whose leaf values (ids, integers, timestamps, step types) have hand-written visitors,
//! so a step costs no allocation of its own; a scenario becomes one `Vec<Event>`. Only when a body
//! is refused is it read a second time, through `serde_path_to_error`, to learn which field was
//! wrong.

use std::fmt;

use customersim_plugin_api::serde::de::{self, Deserializer, Unexpected, Visitor};
use customersim_plugin_api::serde::{Deserialize, Serialize};
use customersim_plugin_api::{CustomerId, Event, EventKind};

/// Seconds of simulated time per coordinate unit walked, for `/scenario_draft` (the original's
/// `CUSTOMER_AVERAGE_PACE`).
pub const PACE_MS_PER_UNIT: f64 = 30.0;
/// A draft's first step happens this long after the request (the original's
/// `SCENARIO_AUTOSTART_DELAY`).
pub const DRAFT_START_DELAY_MS: i64 = 10_000;
/// Moves in place that a `FOCUS` step of a draft adds after itself.
pub const FOCUS_MOVES: i64 = 5;
/// Time over which those moves spread: the last one is this long after the `FOCUS` step.
pub const FOCUS_PERIOD_MS: i64 = 30_000;
/// Epoch numbers above this are milliseconds, below it seconds (the original's pydantic rule).
const MS_WATERSHED: f64 = 2e10;
/// Instants outside years 1..=9999 are refused.
const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// Why a body was refused. The message starts with the field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all (HTTP 400).
    Malformed(String),
    /// JSON, but a field is missing, mistyped or has an unacceptable value (HTTP 422).
    Invalid(String),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Malformed(why) | BodyError::Invalid(why) => f.write_str(why),
        }
    }
}

fn invalid(why: String) -> BodyError {
    BodyError::Invalid(why)
}

/// Deserializes `body`; on failure reads it again with path tracking to name the bad field.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BodyError> {
    match serde_json::from_slice::<T>(body) {
        Ok(value) => Ok(value),
        Err(error) if error.is_syntax() || error.is_eof() => Err(BodyError::Malformed(format!(
            "body: malformed JSON: {error} (the body must be a JSON object, whatever the Content-Type)"
        ))),
        Err(error) => {
            let mut reader = serde_json::Deserializer::from_slice(body);
            match serde_path_to_error::deserialize::<_, T>(&mut reader) {
                Ok(_) => Err(invalid(format!("body: {}", strip_position(&error)))),
                Err(tracked) => {
                    let path = tracked.path().to_string();
                    let message = strip_position(tracked.inner());
                    Err(invalid(name_field(&path, &message)))
                }
            }
        }
    }
}

/// serde_json's message without its " at line L column C" suffix (the path says where).
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// `path: message`, with serde's "missing field `x`" turned into `path.x: missing`.
fn name_field(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.strip_suffix('`')
    {
        return if parent.is_empty() {
            format!("{field}: missing")
        } else {
            format!("{parent}.{field}: missing")
        };
    }
    if parent.is_empty() {
        format!("body: {message}")
    } else {
        format!("{parent}: {message}")
    }
}

/// A customer id: a JSON string, or a number published as its digits (as the original did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(pub CustomerId);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Id;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer id (a string or a number)")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Id, E> {
        if text.is_empty() {
            return Err(E::invalid_value(Unexpected::Str(text), &"a non-empty id"));
        }
        Ok(Id(CustomerId::parse(text)))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Id, E> {
        Ok(Id(CustomerId::Number(number)))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Id, E> {
        Ok(Id(CustomerId::parse(&number.to_string())))
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Id, E> {
        Ok(Id(CustomerId::parse(&number.to_string())))
    }
}

/// An integer: a JSON integer, a float (truncated toward zero, as the original's `int` fields
/// did) or a string holding a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        deserializer.deserialize_any(IntVisitor)
    }
}

struct IntVisitor;

fn truncate<E: de::Error>(number: f64) -> Result<i64, E> {
    // 2^63 as f64; anything at or past it does not fit.
    if number.is_finite() && number.abs() < 9.223_372_036_854_775e18 {
        Ok(number.trunc() as i64)
    } else {
        Err(E::invalid_value(
            Unexpected::Float(number),
            &"an integer within ±9.2e18",
        ))
    }
}

impl Visitor<'_> for IntVisitor {
    type Value = Int;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Int, E> {
        Ok(Int(number))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Int, E> {
        i64::try_from(number).map(Int).map_err(|_| {
            E::invalid_value(Unexpected::Unsigned(number), &"an integer within ±9.2e18")
        })
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Int, E> {
        truncate(number).map(Int)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Int, E> {
        let trimmed = text.trim();
        if let Ok(number) = trimmed.parse::<i64>() {
            return Ok(Int(number));
        }
        match trimmed.parse::<f64>() {
            Ok(number) if number.is_finite() => truncate(number).map(Int),
            _ => Err(E::invalid_value(Unexpected::Str(text), &self)),
        }
    }
}

/// An instant in milliseconds since the epoch: an ISO 8601 timestamp with a time zone, or a
/// number of seconds since the epoch (milliseconds when above 2e10), as the original accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub i64);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Instant, D::Error> {
        deserializer.deserialize_any(InstantVisitor)
    }
}

struct InstantVisitor;

fn in_range<E: de::Error>(ms: i64) -> Result<Instant, E> {
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(Instant(ms))
    } else {
        Err(E::custom(format!(
            "{ms} ms since the epoch is outside years 1 to 9999"
        )))
    }
}

fn epoch_float<E: de::Error>(number: f64) -> Result<Instant, E> {
    if !number.is_finite() {
        return Err(E::invalid_value(Unexpected::Float(number), &InstantVisitor));
    }
    let ms = if number.abs() > MS_WATERSHED {
        number.round()
    } else {
        (number * 1000.0).round()
    };
    if ms.abs() > 1e15 {
        return Err(E::custom(format!("{number} is outside years 1 to 9999")));
    }
    in_range(ms as i64)
}

fn epoch_int<E: de::Error>(number: i64) -> Result<Instant, E> {
    if number.unsigned_abs() > MS_WATERSHED as u64 {
        in_range(number)
    } else {
        in_range(number * 1000)
    }
}

/// Parses an ISO 8601 timestamp that carries a time zone.
pub fn parse_iso(text: &str) -> Result<i64, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    // ISO 8601 forms RFC 3339 leaves out, such as a "+0100" offset.
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Ok(at.timestamp_millis());
        }
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .any(|format| NaiveDateTime::parse_from_str(text, format).is_ok())
        || NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok();
    if naive {
        Err(format!(
            "timestamp {text:?} has no time zone: add one, e.g. \"Z\" for UTC or an offset such as \"+01:00\""
        ))
    } else {
        Err(format!(
            "{text:?} is not an ISO 8601 timestamp with a time zone (e.g. \"2021-01-01T00:00:00Z\") nor a number of seconds since the epoch"
        ))
    }
}

impl Visitor<'_> for InstantVisitor {
    type Value = Instant;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ISO 8601 timestamp with a time zone or a number of seconds since the epoch")
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Instant, E> {
        epoch_int(number)
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Instant, E> {
        match i64::try_from(number) {
            Ok(number) => epoch_int(number),
            Err(_) => in_range(i64::MAX),
        }
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Instant, E> {
        epoch_float(number)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Instant, E> {
        let trimmed = text.trim();
        if let Ok(number) = trimmed.parse::<i64>() {
            return epoch_int(number);
        }
        if let Ok(number) = trimmed.parse::<f64>() {
            return epoch_float(number);
        }
        parse_iso(trimmed).map(Instant).map_err(E::custom)
    }
}

/// What a scenario step does. Case-insensitive on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepType {
    Enter,
    Move,
    Exit,
    /// Drafts only: stay at this place for a while.
    Focus,
}

impl StepType {
    fn name(self) -> &'static str {
        match self {
            StepType::Enter => "ENTER",
            StepType::Move => "MOVE",
            StepType::Exit => "EXIT",
            StepType::Focus => "FOCUS",
        }
    }
}

impl<'de> Deserialize<'de> for StepType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StepType, D::Error> {
        deserializer.deserialize_str(StepTypeVisitor)
    }
}

struct StepTypeVisitor;

impl Visitor<'_> for StepTypeVisitor {
    type Value = StepType;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a step type (ENTER, MOVE, EXIT or FOCUS)")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<StepType, E> {
        for kind in [
            StepType::Enter,
            StepType::Move,
            StepType::Exit,
            StepType::Focus,
        ] {
            if text.eq_ignore_ascii_case(kind.name()) {
                return Ok(kind);
            }
        }
        Err(E::custom(format!(
            "unknown step type {text:?}: expected ENTER, MOVE, EXIT or FOCUS"
        )))
    }
}

/// A cell; JSON floats are truncated.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(crate = "customersim_plugin_api::serde")]
pub struct Location {
    pub x: Int,
    pub y: Int,
}

/// One step of a scenario path.
#[derive(Debug, Deserialize)]
#[serde(crate = "customersim_plugin_api::serde")]
pub struct Step {
    #[serde(rename = "type")]
    pub kind: StepType,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub timestamp: Option<Instant>,
}

/// Who the scenario is about.
#[derive(Debug, Deserialize)]
#[serde(crate = "customersim_plugin_api::serde")]
pub struct Customer {
    pub customer_id: Id,
}

/// A `/scenario` or `/scenario_draft` body.
#[derive(Debug, Deserialize)]
#[serde(crate = "customersim_plugin_api::serde")]
pub struct Scenario {
    pub customer: Customer,
    pub path: Vec<Step>,
}

/// A `/produce_*` body: `{"id": "997", "ts": 192326400, "x": 2, "y": 3}`.
#[derive(Debug, Deserialize)]
#[serde(crate = "customersim_plugin_api::serde")]
struct Produce {
    id: Id,
    ts: Int,
    #[serde(default)]
    x: Option<Int>,
    #[serde(default)]
    y: Option<Int>,
}

/// Which `/produce_*` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceKind {
    Enter,
    Move,
    Exit,
}

/// The event of a `/produce_*` body; `ts` is seconds since the epoch.
pub fn produce(body: &[u8], kind: ProduceKind) -> Result<Event, BodyError> {
    let produce: Produce = parse(body)?;
    let due_ms = produce
        .ts
        .0
        .checked_mul(1000)
        .filter(|ms| (MIN_MS..=MAX_MS).contains(ms))
        .ok_or_else(|| invalid(format!("ts: {} is outside years 1 to 9999", produce.ts.0)))?;
    let kind = match kind {
        ProduceKind::Enter => EventKind::Enter,
        ProduceKind::Exit => EventKind::Exit,
        ProduceKind::Move => EventKind::Move {
            x: produce.x.ok_or_else(|| invalid("x: missing".into()))?.0,
            y: produce.y.ok_or_else(|| invalid("y: missing".into()))?.0,
        },
    };
    Ok(Event {
        due_ms,
        customer: produce.id.0,
        kind,
    })
}

/// The events of a `/scenario` body, checked: every step has a timestamp, MOVE steps a location,
/// no two steps share an instant. With `recalculate_from = Some(now)`, the path is shifted so its
/// earliest step happens at `now`.
pub fn scenario(body: &[u8], recalculate_from: Option<i64>) -> Result<Vec<Event>, BodyError> {
    let scenario: Scenario = parse(body)?;
    let customer = scenario.customer.customer_id.0;
    let mut events = Vec::with_capacity(scenario.path.len());
    let mut ascending = true;
    let mut earliest = i64::MAX;
    let mut previous = i64::MIN;
    for (index, step) in scenario.path.iter().enumerate() {
        let due_ms = step
            .timestamp
            .ok_or_else(|| {
                invalid(format!(
                    "path[{index}].timestamp: missing (/scenario needs one on every step; /scenario_draft times the steps itself)"
                ))
            })?
            .0;
        let kind = match step.kind {
            StepType::Enter => EventKind::Enter,
            StepType::Exit => EventKind::Exit,
            StepType::Move => {
                let at = step.location.ok_or_else(|| {
                    invalid(format!(
                        "path[{index}].location: missing (a MOVE step needs x and y)"
                    ))
                })?;
                EventKind::Move {
                    x: at.x.0,
                    y: at.y.0,
                }
            }
            StepType::Focus => {
                return Err(invalid(format!(
                    "path[{index}].type: FOCUS is only accepted by /scenario_draft; /scenario takes ENTER, MOVE or EXIT"
                )));
            }
        };
        ascending &= due_ms > previous;
        previous = due_ms;
        earliest = earliest.min(due_ms);
        events.push(Event {
            due_ms,
            customer: customer.clone(),
            kind,
        });
    }
    if !ascending {
        refuse_duplicates(&events)?;
    }
    if let Some(now) = recalculate_from {
        if events.is_empty() {
            return Err(invalid(
                "path: empty, but recalculate_time=true needs at least one step to start from"
                    .into(),
            ));
        }
        let shift = now - earliest;
        for event in &mut events {
            event.due_ms += shift;
        }
    }
    Ok(events)
}

/// Refuses two steps at one instant (the original's publishing loop died on them).
fn refuse_duplicates(events: &[Event]) -> Result<(), BodyError> {
    let mut order: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(index, event)| (event.due_ms, index))
        .collect();
    order.sort_unstable();
    for pair in order.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(invalid(format!(
                "path[{}].timestamp: same instant as path[{}]: duplicate step (a customer is in one place at a time)",
                pair[1].1, pair[0].1
            )));
        }
    }
    Ok(())
}

/// A step of an expanded draft, as `/scenario_draft` answers it (a valid `/scenario` body).
#[derive(Debug, Serialize)]
#[serde(crate = "customersim_plugin_api::serde")]
pub struct TimedStep {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub location: TimedLocation,
    pub timestamp: String,
}

/// Where a [`TimedStep`] happens.
#[derive(Debug, Serialize)]
#[serde(crate = "customersim_plugin_api::serde")]
pub struct TimedLocation {
    pub x: i64,
    pub y: i64,
}

/// An expanded draft: the events to schedule and the scenario to answer with.
#[derive(Debug)]
pub struct Expanded {
    pub events: Vec<Event>,
    pub steps: Vec<TimedStep>,
    pub customer: String,
}

/// Where ENTER and EXIT steps without a location happen: the store's entrance and exit (as
/// published: the centres of their cells).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doors {
    /// Where an ENTER step without a location is.
    pub entrance: (i64, i64),
    /// Where an EXIT step without a location is.
    pub exit: (i64, i64),
}

#[cfg(test)]
impl Doors {
    /// One door for both, as in the original grid.
    pub fn single(door: (i64, i64)) -> Doors {
        Doors {
            entrance: door,
            exit: door,
        }
    }
}

/// Times the steps of a `/scenario_draft` body: the first at `now_ms` + 10 s, each next one after
/// walking the straight line from the previous place at 0.03 s per unit; a FOCUS step is a move
/// followed by 5 moves in place over 30 s. ENTER and EXIT steps without a location are at the
/// entrance and the exit.
pub fn draft(body: &[u8], now_ms: i64, doors: Doors) -> Result<Expanded, BodyError> {
    let scenario: Scenario = parse(body)?;
    let customer = scenario.customer.customer_id.0;
    let mut events = Vec::with_capacity(scenario.path.len());
    let mut steps = Vec::with_capacity(scenario.path.len());
    let mut clock_ms = (now_ms + DRAFT_START_DELAY_MS) as f64;
    let mut previous: Option<(i64, i64)> = None;
    for (index, step) in scenario.path.iter().enumerate() {
        let at = match (step.location, step.kind) {
            (Some(at), _) => (at.x.0, at.y.0),
            (None, StepType::Enter) => doors.entrance,
            (None, StepType::Exit) => doors.exit,
            (None, kind) => {
                return Err(invalid(format!(
                    "path[{index}].location: missing (a {} step needs x and y)",
                    kind.name()
                )));
            }
        };
        if let Some(before) = previous {
            let distance = ((at.0 - before.0) as f64).hypot((at.1 - before.1) as f64);
            if distance == 0.0 {
                return Err(invalid(format!(
                    "path[{index}].location: same place as the step before it, so both would happen at the same instant (duplicate step); use a FOCUS step to stay in place"
                )));
            }
            clock_ms += distance * PACE_MS_PER_UNIT;
        }
        if !clock_ms.is_finite() || clock_ms > MAX_MS as f64 {
            return Err(invalid(format!(
                "path[{index}].location: too far to walk (past year 9999)"
            )));
        }
        let due_ms = clock_ms.round() as i64;
        let (kind, name) = match step.kind {
            StepType::Enter => (EventKind::Enter, "ENTER"),
            StepType::Exit => (EventKind::Exit, "EXIT"),
            StepType::Move | StepType::Focus => (EventKind::Move { x: at.0, y: at.1 }, "MOVE"),
        };
        let mut push = |due_ms: i64, kind: EventKind, name: &'static str| {
            events.push(Event {
                due_ms,
                customer: customer.clone(),
                kind,
            });
            steps.push(TimedStep {
                kind: name,
                location: TimedLocation { x: at.0, y: at.1 },
                timestamp: format_ms(due_ms),
            });
        };
        push(due_ms, kind, name);
        if step.kind == StepType::Focus {
            let gap = FOCUS_PERIOD_MS / FOCUS_MOVES;
            for extra in 1..=FOCUS_MOVES {
                push(due_ms + extra * gap, kind, name);
            }
            clock_ms += FOCUS_PERIOD_MS as f64;
        }
        previous = Some(at);
    }
    Ok(Expanded {
        events,
        steps,
        customer: customer.to_string(),
    })
}

/// An instant as RFC 3339 in UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl fmt::Debug, BodyError>) -> String {
        match result {
            Ok(value) => panic!("accepted: {value:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn produce_accepts_the_original_bodies_and_numeric_ids() {
        let event = produce(
            br#"{"id": "997", "ts": 192326400, "x": 2, "y": 3}"#,
            ProduceKind::Move,
        )
        .unwrap();
        assert_eq!(
            event.payload(),
            br#"{"id": "997", "ts": 192326400, "x": 2, "y": 3}"#
        );
        let event = produce(br#"{"id": 997, "ts": 192326400}"#, ProduceKind::Enter).unwrap();
        assert_eq!(event.payload(), br#"{"id": "997", "ts": 192326400}"#);
        let event = produce(
            br#"{"id": "007", "ts": "5", "x": 2.9, "y": -1.5}"#,
            ProduceKind::Move,
        )
        .unwrap();
        assert_eq!(
            event.payload(),
            br#"{"id": "007", "ts": 5, "x": 2, "y": -1}"#
        );
    }

    #[test]
    fn produce_errors_name_the_field() {
        assert_eq!(
            message(produce(
                br#"{"id": "1", "ts": 5, "x": 2}"#,
                ProduceKind::Move
            )),
            "y: missing"
        );
        assert_eq!(
            message(produce(br#"{"ts": 5}"#, ProduceKind::Enter)),
            "id: missing"
        );
        let why = message(produce(br#"{"id": "1", "ts": "soon"}"#, ProduceKind::Exit));
        assert!(why.starts_with("ts: invalid value"), "{why}");
        let why = message(produce(br#"{"id": true, "ts": 1}"#, ProduceKind::Exit));
        assert!(why.starts_with("id: invalid type: boolean"), "{why}");
        assert!(matches!(
            produce(br#"{"id": "1", "ts": 5"#, ProduceKind::Exit),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            produce(b"id=1&ts=5", ProduceKind::Exit),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn timestamps_need_a_zone_or_are_epoch_numbers() {
        assert_eq!(parse_iso("2021-01-01T00:00:00Z"), Ok(1_609_459_200_000));
        assert_eq!(
            parse_iso("2021-01-01T01:00:00.250+01:00"),
            Ok(1_609_459_200_250)
        );
        assert_eq!(parse_iso("2021-01-01T01:00:00+0100"), Ok(1_609_459_200_000));
        let why = parse_iso("2021-01-01T00:00:00.000000").unwrap_err();
        assert!(why.contains("no time zone"), "{why}");
        let read = |text: &str| serde_json::from_str::<Instant>(text).map(|at| at.0);
        assert_eq!(read("1609459200").unwrap(), 1_609_459_200_000);
        assert_eq!(read("1609459200.5").unwrap(), 1_609_459_200_500);
        assert_eq!(read("1609459200123").unwrap(), 1_609_459_200_123);
        assert_eq!(read("\"1609459200\"").unwrap(), 1_609_459_200_000);
        assert!(read("1e300").is_err());
        assert!(read("true").is_err());
    }

    fn step(kind: &str, x: i64, y: i64, ts: &str) -> String {
        format!(r#"{{"type": "{kind}", "location": {{"x": {x}, "y": {y}}}, "timestamp": {ts}}}"#)
    }

    fn body(steps: &[String]) -> Vec<u8> {
        format!(
            r#"{{"customer": {{"customer_id": "3"}}, "path": [{}]}}"#,
            steps.join(", ")
        )
        .into_bytes()
    }

    #[test]
    fn scenario_steps_become_events() {
        let events = scenario(
            &body(&[
                step("enter", 0, 0, "\"2021-01-01T00:00:00Z\""),
                step("Move", 1, 2, "1609459201"),
                step("MOVE", 3, 4, "1609459201500"),
                step("EXIT", 0, 0, "\"2021-01-01T00:00:03.000+00:00\""),
            ]),
            None,
        )
        .unwrap();
        let kinds: Vec<_> = events.iter().map(|e| (e.due_ms, e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (1_609_459_200_000, EventKind::Enter),
                (1_609_459_201_000, EventKind::Move { x: 1, y: 2 }),
                (1_609_459_201_500, EventKind::Move { x: 3, y: 4 }),
                (1_609_459_203_000, EventKind::Exit),
            ]
        );
        assert!(events.iter().all(|e| e.customer == CustomerId::Number(3)));
    }

    #[test]
    fn recalculate_time_starts_the_path_now() {
        let events = scenario(
            &body(&[step("MOVE", 1, 1, "20"), step("MOVE", 2, 2, "10")]),
            Some(1_000_000),
        )
        .unwrap();
        assert_eq!(events[0].due_ms, 1_010_000);
        assert_eq!(events[1].due_ms, 1_000_000);
        let why = message(scenario(&body(&[]), Some(5)));
        assert!(why.starts_with("path: empty"), "{why}");
        assert!(scenario(&body(&[]), None).unwrap().is_empty());
    }

    #[test]
    fn scenario_errors_name_the_step() {
        let why = message(scenario(
            &body(&[step("MOVE", 1, 1, "10"), step("JUMP", 1, 1, "11")]),
            None,
        ));
        assert!(
            why.starts_with("path[1].type: unknown step type \"JUMP\""),
            "{why}"
        );
        let why = message(scenario(
            &body(&[
                step("MOVE", 1, 1, "10"),
                step("MOVE", 2, 1, "12"),
                step("MOVE", 1, 1, "10"),
            ]),
            None,
        ));
        assert!(
            why.starts_with("path[2].timestamp: same instant as path[0]"),
            "{why}"
        );
        let why = message(scenario(
            &body(&[step("MOVE", 1, 1, "\"2021-01-01T00:00:00\"")]),
            None,
        ));
        assert!(why.starts_with("path[0].timestamp: timestamp"), "{why}");
        assert!(why.contains("no time zone"), "{why}");
        let why = message(scenario(
            br#"{"customer": {"customer_id": "3"}, "path": [{"type": "MOVE", "location": {"x": 1}, "timestamp": 5}]}"#,
            None,
        ));
        assert_eq!(why, "path[0].location.y: missing");
        let why = message(scenario(br#"{"customer": {}, "path": []}"#, None));
        assert_eq!(why, "customer.customer_id: missing");
        let why = message(scenario(br#"{"customer": {"customer_id": "3"}}"#, None));
        assert_eq!(why, "path: missing");
        let why = message(scenario(
            &body(&[r#"{"type": "MOVE", "location": {"x": 1, "y": 1}}"#.to_string()]),
            None,
        ));
        assert!(why.starts_with("path[0].timestamp: missing"), "{why}");
        let why = message(scenario(&body(&[step("FOCUS", 1, 1, "5")]), None));
        assert!(why.starts_with("path[0].type: FOCUS"), "{why}");
        let why = message(scenario(b"[]", None));
        assert!(why.starts_with("body: invalid length 0"), "{why}");
        let why = message(scenario(b"\"x\"", None));
        assert!(why.starts_with("body: invalid type: string"), "{why}");
    }

    #[test]
    fn drafts_are_timed_by_walking_distance() {
        let draft_body = format!(
            r#"{{"customer": {{"customer_id": 3}}, "path": [{}, {}, {}, {}]}}"#,
            r#"{"type": "enter"}"#,
            r#"{"type": "move", "location": {"x": 3.7, "y": 4.2}}"#,
            r#"{"type": "focus", "location": {"x": 3, "y": 8}}"#,
            r#"{"type": "exit", "location": {"x": 0, "y": 4}}"#,
        );
        let expanded = draft(draft_body.as_bytes(), 1_000_000, Doors::single((0, 0))).unwrap();
        let times: Vec<_> = expanded
            .events
            .iter()
            .map(|e| e.due_ms - 1_000_000)
            .collect();
        // enter at +10 s; (0,0)→(3,4) is 5 units = 150 ms; →(3,8) 4 units = 120 ms; 5 moves in
        // place 6 s apart; →(0,4) 5 units = 150 ms after the last of them.
        assert_eq!(
            times,
            vec![
                10_000, 10_150, 10_270, 16_270, 22_270, 28_270, 34_270, 40_270, 40_420
            ]
        );
        assert_eq!(expanded.events[0].kind, EventKind::Enter);
        assert_eq!(expanded.events[8].kind, EventKind::Exit);
        assert_eq!(expanded.events[3].kind, EventKind::Move { x: 3, y: 8 });
        assert_eq!(expanded.steps[1].timestamp, format_ms(1_010_150));
        let why = message(draft(
            &body(&[step("MOVE", 1, 1, "null"), step("MOVE", 1, 1, "null")]),
            0,
            Doors::single((0, 0)),
        ));
        assert!(why.starts_with("path[1].location: same place"), "{why}");
        let why = message(draft(
            br#"{"customer": {"customer_id": "3"}, "path": [{"type": "focus"}]}"#,
            0,
            Doors::single((0, 0)),
        ));
        assert!(why.starts_with("path[0].location: missing"), "{why}");
    }
}
