//! Request bodies: parsing them into events and refusing bad ones with a message that names the
//! field (`path[3].timestamp: …`).
//!
//! Parsing is built for ingestion speed: bodies are read by `serde_json` straight into small typed
//! structs whose leaf values (ids, integers, timestamps, step types) have hand-written visitors,
//! so a step costs no allocation of its own; a scenario becomes one `Vec<Event>`. Only when a body
//! is refused is it read a second time, through `serde_path_to_error`, to learn which field was
//! wrong.
//!
//! The leaf values (ids, integers, instants, step types) are in `values`; the expansion of
//! `/scenario_draft` bodies, which shares [`Scenario`] and [`parse`], is in `draft`.

use std::fmt;

use customersim_plugin_api::{Event, EventKind};
use serde::Deserialize;

use crate::values::{Id, Instant, Int, MAX_MS, MIN_MS, StepType, check_range};

/// Why a body was refused. The message starts with the field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all (HTTP 400).
    Malformed(String),
    /// JSON, but a field is missing, mistyped or has an unacceptable value (HTTP 422).
    Invalid(String),
}

impl BodyError {
    /// The HTTP status the refusal is answered with: always a 4xx.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::Malformed(_) => 400,
            BodyError::Invalid(_) => 422,
        }
    }
}

/// What one request may ask for, so its output and memory stay bounded whatever it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most events one `/scenario` or `/scenario_draft` request may put on the timeline (the
    /// steps of a scenario; the moves a draft expands to).
    pub max_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: crate::default_max_events(),
        }
    }
}

impl Limits {
    /// Refuses a request that would put more than `max_events` events on the timeline.
    pub(crate) fn check_events(&self, events: usize) -> Result<(), BodyError> {
        if events > self.max_events {
            Err(invalid(format!(
                "path: expands to more than the limit of {} events per request (max_events); split it into several requests",
                self.max_events
            )))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Malformed(why) | BodyError::Invalid(why) => f.write_str(why),
        }
    }
}

pub(crate) fn invalid(why: String) -> BodyError {
    BodyError::Invalid(why)
}

/// Deserializes `body`; on failure reads it again with path tracking to name the bad field.
pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BodyError> {
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
/// A cell; JSON floats are truncated.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Location {
    pub x: Int,
    pub y: Int,
}

/// One step of a scenario path.
#[derive(Debug, Deserialize)]
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
pub struct Customer {
    pub customer_id: Id,
}

/// A `/scenario` or `/scenario_draft` body.
#[derive(Debug, Deserialize)]
pub struct Scenario {
    pub customer: Customer,
    pub path: Vec<Step>,
}

/// A `/produce_*` body: `{"id": "997", "ts": 192326400, "x": 2, "y": 3}`.
#[derive(Debug, Deserialize)]
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
        store: 0,
        stamp: Default::default(),
    })
}

/// The events of a `/scenario` body, checked: every step has a timestamp, MOVE steps a location,
/// no two steps share an instant, at most `limits.max_events` steps. With
/// `recalculate_from = Some(now)`, the path is shifted so its earliest step happens at `now`
/// (refused if that moves a step outside years 1 to 9999).
pub fn scenario(
    body: &[u8],
    recalculate_from: Option<i64>,
    limits: &Limits,
) -> Result<Vec<Event>, BodyError> {
    let scenario: Scenario = parse(body)?;
    limits.check_events(scenario.path.len())?;
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
            store: 0,
            stamp: Default::default(),
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
        // Both lie within years 1 to 9999, so neither the shift nor a shifted instant overflows;
        // a shifted instant may still leave the range.
        let shift = now - earliest;
        for (index, event) in events.iter_mut().enumerate() {
            event.due_ms = check_range(event.due_ms + shift).map_err(|_| {
                invalid(format!(
                    "path[{index}].timestamp: with recalculate_time it would fall outside years 1 to 9999"
                ))
            })?;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use customersim_plugin_api::CustomerId;

    pub(crate) fn message(result: Result<impl fmt::Debug, BodyError>) -> String {
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

    pub(crate) fn step(kind: &str, x: i64, y: i64, ts: &str) -> String {
        format!(r#"{{"type": "{kind}", "location": {{"x": {x}, "y": {y}}}, "timestamp": {ts}}}"#)
    }

    pub(crate) fn body(steps: &[String]) -> Vec<u8> {
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
            &Limits::default(),
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
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(events[0].due_ms, 1_010_000);
        assert_eq!(events[1].due_ms, 1_000_000);
        let why = message(scenario(&body(&[]), Some(5), &Limits::default()));
        assert!(why.starts_with("path: empty"), "{why}");
        assert!(
            scenario(&body(&[]), None, &Limits::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn scenario_errors_name_the_step() {
        let why = message(scenario(
            &body(&[step("MOVE", 1, 1, "10"), step("JUMP", 1, 1, "11")]),
            None,
            &Limits::default(),
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
            &Limits::default(),
        ));
        assert!(
            why.starts_with("path[2].timestamp: same instant as path[0]"),
            "{why}"
        );
        let why = message(scenario(
            &body(&[step("MOVE", 1, 1, "\"2021-01-01T00:00:00\"")]),
            None,
            &Limits::default(),
        ));
        assert!(why.starts_with("path[0].timestamp: timestamp"), "{why}");
        assert!(why.contains("no time zone"), "{why}");
        let why = message(scenario(
            br#"{"customer": {"customer_id": "3"}, "path": [{"type": "MOVE", "location": {"x": 1}, "timestamp": 5}]}"#,
            None,
            &Limits::default(),
        ));
        assert_eq!(why, "path[0].location.y: missing");
        let why = message(scenario(
            br#"{"customer": {}, "path": []}"#,
            None,
            &Limits::default(),
        ));
        assert_eq!(why, "customer.customer_id: missing");
        let why = message(scenario(
            br#"{"customer": {"customer_id": "3"}}"#,
            None,
            &Limits::default(),
        ));
        assert_eq!(why, "path: missing");
        let why = message(scenario(
            &body(&[r#"{"type": "MOVE", "location": {"x": 1, "y": 1}}"#.to_string()]),
            None,
            &Limits::default(),
        ));
        assert!(why.starts_with("path[0].timestamp: missing"), "{why}");
        let why = message(scenario(
            &body(&[step("FOCUS", 1, 1, "5")]),
            None,
            &Limits::default(),
        ));
        assert!(why.starts_with("path[0].type: FOCUS"), "{why}");
        let why = message(scenario(b"[]", None, &Limits::default()));
        assert!(why.starts_with("body: invalid length 0"), "{why}");
        let why = message(scenario(b"\"x\"", None, &Limits::default()));
        assert!(why.starts_with("body: invalid type: string"), "{why}");
    }
}
