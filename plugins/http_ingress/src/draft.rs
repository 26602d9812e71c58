//! `/scenario_draft`: a scenario path without timestamps, timed by walking distance.
//!
//! The original service's draft endpoint: the first step is 10 s from now, each next one follows
//! after walking the straight line from the previous place, and a `FOCUS` step stays in place
//! with a few extra moves. The body is read as a [`Scenario`](crate::body::Scenario) like a
//! `/scenario` body; what differs (locations taken from the door, timing, the answer echoing the
//! expanded path as a valid `/scenario` body) lives here.

use customersim_plugin_api::{Event, EventKind};
use serde::Serialize;

use crate::body::{BodyError, Scenario, invalid, parse};
use crate::values::{MAX_MS, StepType, format_ms};

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

/// A step of an expanded draft, as `/scenario_draft` answers it (a valid `/scenario` body).
#[derive(Debug, Serialize)]
pub struct TimedStep {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub location: TimedLocation,
    pub timestamp: String,
}

/// Where a [`TimedStep`] happens.
#[derive(Debug, Serialize)]
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
                store: 0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::tests::{body, message, step};

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
