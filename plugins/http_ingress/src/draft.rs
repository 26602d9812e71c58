//! `/scenario_draft`: a scenario path without timestamps, timed by walking distance.
//!
//! The original service's draft endpoint: the first step is 10 s from now, each next one follows
//! after walking the straight line from the previous place, and a `FOCUS` step stays in place
//! with 5 extra moves 7.5 s apart. The arithmetic is the original's, step for step: its clock
//! counts microseconds (a draft starts at the simulated clock's microsecond, not on a whole
//! millisecond) and rounds each walk as Python's `timedelta` does, so replays of its drafts come
//! out at the same instants. The answer is written as the original wrote it (pydantic's `.json()`:
//! `json.dumps` spacing, timestamps as `datetime.isoformat()`, `…T10:00:10.123456+00:00`). The body is read as a [`Scenario`](crate::body::Scenario) like a
//! `/scenario` body; what differs (locations taken from the door, timing, the answer echoing the
//! expanded path as a valid `/scenario` body) lives here.

use customersim_plugin_api::json::write_str;
use customersim_plugin_api::{Event, EventKind};

use crate::body::{BodyError, Limits, Scenario, invalid, parse};
use crate::values::{MAX_MS, StepType, format_us};

/// Seconds of simulated time per coordinate unit walked, for `/scenario_draft` (the original's
/// `CUSTOMER_AVERAGE_PACE`).
pub const PACE_S_PER_UNIT: f64 = 0.03;
/// A draft's first step happens this long after the request (the original's
/// `SCENARIO_AUTOSTART_DELAY`), in microseconds.
pub const DRAFT_START_DELAY_US: i64 = 10_000_000;
/// Moves in place that a `FOCUS` step of a draft adds after itself.
pub const FOCUS_MOVES: i64 = 5;
/// Time between the `FOCUS` step and the first move in place, and between each of them, in
/// microseconds: the original spreads its moves as `30 s / (5 - 1)` = 7.5 s, so the last one is
/// 37.5 s after the focus step and the step after it walks from there.
pub const FOCUS_GAP_US: i64 = 7_500_000;

/// A step of an expanded draft, as `/scenario_draft` answers it (a valid `/scenario` body).
#[derive(Debug)]
pub struct TimedStep {
    /// `ENTER`, `MOVE` or `EXIT`.
    pub kind: &'static str,
    pub location: TimedLocation,
    /// [`format_us`] of the step's instant.
    pub timestamp: String,
}

/// Where a [`TimedStep`] happens.
#[derive(Debug)]
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

/// Times the steps of a `/scenario_draft` body as the original did, step for step: the first at
/// `now_us` (the simulated clock, in microseconds) + 10 s, each next one after walking the straight line from the previous place at
/// 0.03 s per unit (rounded to the microsecond as Python's `timedelta` rounds); a FOCUS step is a
/// move followed by 5 moves in place 7.5 s apart. ENTER and EXIT steps without a location are at
/// the entrance and the exit. Refused: more than `limits.max_events` events, a step that would
/// fall outside years 1 to 9999.
pub fn draft(
    body: &[u8],
    now_us: i64,
    doors: Doors,
    limits: &Limits,
) -> Result<Expanded, BodyError> {
    let scenario: Scenario = parse(body)?;
    limits.check_events(scenario.path.len())?;
    let customer = scenario.customer.customer_id.0;
    let mut events = Vec::with_capacity(scenario.path.len());
    let mut steps = Vec::with_capacity(scenario.path.len());
    let too_late = |index: usize| {
        invalid(format!(
            "path[{index}].location: too far to walk (the step would fall after year 9999)"
        ))
    };
    // The original's clock has microseconds; published instants are its milliseconds.
    let mut clock_us = now_us
        .checked_add(DRAFT_START_DELAY_US)
        .filter(|us| us.div_euclid(1000) <= MAX_MS)
        .ok_or_else(|| too_late(0))?;
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
            let distance = distance(before, at);
            if distance == 0.0 {
                return Err(invalid(format!(
                    "path[{index}].location: same place as the step before it, so both would happen at the same instant (duplicate step); use a FOCUS step to stay in place"
                )));
            }
            clock_us = seconds_to_us(distance * PACE_S_PER_UNIT)
                .and_then(|walk| clock_us.checked_add(walk))
                .filter(|us| us.div_euclid(1000) <= MAX_MS)
                .ok_or_else(|| too_late(index))?;
        }
        let extra = if step.kind == StepType::Focus {
            FOCUS_MOVES
        } else {
            0
        };
        limits.check_events(events.len() + 1 + extra as usize)?;
        if clock_us.div_euclid(1000) + extra * FOCUS_GAP_US / 1000 > MAX_MS {
            return Err(too_late(index));
        }
        let (kind, name) = match step.kind {
            StepType::Enter => (EventKind::Enter, "ENTER"),
            StepType::Exit => (EventKind::Exit, "EXIT"),
            StepType::Move | StepType::Focus => (EventKind::Move { x: at.0, y: at.1 }, "MOVE"),
        };
        for _ in 0..=extra {
            events.push(Event {
                due_ms: clock_us.div_euclid(1000),
                customer: customer.clone(),
                kind,
                store: 0,
            });
            steps.push(TimedStep {
                kind: name,
                location: TimedLocation { x: at.0, y: at.1 },
                timestamp: format_us(clock_us),
            });
            clock_us += FOCUS_GAP_US;
        }
        // The next step walks from the last of them.
        clock_us -= FOCUS_GAP_US;
        previous = Some(at);
    }
    Ok(Expanded {
        events,
        steps,
        customer: customer.to_string(),
    })
}

impl Expanded {
    /// The answer of `/scenario_draft`, byte for byte as the original's (pydantic's `.json()` of
    /// the expanded scenario): `{"customer": {"customer_id": "3"}, "path": [{"type": "MOVE",
    /// "location": {"x": 1, "y": 2}, "timestamp": "2021-01-01T00:00:10.123456+00:00"}]}`.
    pub fn answer(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.steps.len() * 96);
        out.extend_from_slice(b"{\"customer\": {\"customer_id\": ");
        write_str(&mut out, &self.customer);
        out.extend_from_slice(b"}, \"path\": [");
        for (index, step) in self.steps.iter().enumerate() {
            if index > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"{\"type\": ");
            write_str(&mut out, step.kind);
            out.extend_from_slice(b", \"location\": {\"x\": ");
            out.extend_from_slice(step.location.x.to_string().as_bytes());
            out.extend_from_slice(b", \"y\": ");
            out.extend_from_slice(step.location.y.to_string().as_bytes());
            out.extend_from_slice(b"}, \"timestamp\": ");
            write_str(&mut out, &step.timestamp);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// The straight-line distance between two places (Python's `math.dist`): exact differences
/// (no wrapping, whatever the coordinates), and the correctly rounded square root whenever the
/// sum of squares is exact in an `f64`, as it is for any store-sized coordinates.
fn distance(from: (i64, i64), to: (i64, i64)) -> f64 {
    let dx = (i128::from(to.0) - i128::from(from.0)).unsigned_abs();
    let dy = (i128::from(to.1) - i128::from(from.1)).unsigned_abs();
    const EXACT: u128 = 1 << 26;
    if dx < EXACT && dy < EXACT {
        ((dx * dx + dy * dy) as f64).sqrt()
    } else {
        (dx as f64).hypot(dy as f64)
    }
}

/// Whole microseconds in `seconds` (non-negative) as Python's `timedelta(seconds=…)` counts them:
/// the whole seconds, then the fraction scaled to microseconds and rounded half to even. `None`
/// when it does not fit.
fn seconds_to_us(seconds: f64) -> Option<i64> {
    if !seconds.is_finite() || !(0.0..9.0e12).contains(&seconds) {
        return None;
    }
    let whole = seconds.trunc();
    let scaled = (seconds - whole) * 1e6;
    let scaled_whole = scaled.trunc();
    let left = scaled - scaled_whole;
    let us = whole as i64 * 1_000_000 + scaled_whole as i64;
    Some(if left == 0.5 {
        us + (us & 1)
    } else {
        us + left.round() as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::tests::{body, message, step};

    fn expand(body: &[u8], now_ms: i64) -> Result<Expanded, BodyError> {
        draft(
            body,
            now_ms * 1000,
            Doors::single((0, 0)),
            &Limits::default(),
        )
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
        let expanded = expand(draft_body.as_bytes(), 1_000_000).unwrap();
        let times: Vec<_> = expanded
            .events
            .iter()
            .map(|e| e.due_ms - 1_000_000)
            .collect();
        // enter at +10 s; (0,0)→(3,4) is 5 units = 150 ms; →(3,8) 4 units = 120 ms; 5 moves in
        // place 7.5 s apart; →(0,4) 5 units = 150 ms after the last of them.
        assert_eq!(
            times,
            vec![
                10_000, 10_150, 10_270, 17_770, 25_270, 32_770, 40_270, 47_770, 47_920
            ]
        );
        assert_eq!(expanded.events[0].kind, EventKind::Enter);
        assert_eq!(expanded.events[8].kind, EventKind::Exit);
        assert_eq!(expanded.events[3].kind, EventKind::Move { x: 3, y: 8 });
        assert_eq!(expanded.steps[1].timestamp, format_us(1_010_150_000));
        let why = message(expand(
            &body(&[step("MOVE", 1, 1, "null"), step("MOVE", 1, 1, "null")]),
            0,
        ));
        assert!(why.starts_with("path[1].location: same place"), "{why}");
        let why = message(expand(
            br#"{"customer": {"customer_id": "3"}, "path": [{"type": "focus"}]}"#,
            0,
        ));
        assert!(why.starts_with("path[0].location: missing"), "{why}");
    }

    #[test]
    fn answers_carry_microseconds_as_the_original_wrote_them() {
        assert_eq!(
            format_us(1_609_459_210_123_456),
            "2021-01-01T00:00:10.123456+00:00"
        );
        assert_eq!(
            format_us(1_609_459_210_000_000),
            "2021-01-01T00:00:10+00:00"
        );
        assert_eq!(
            format_us(1_609_459_210_000_050),
            "2021-01-01T00:00:10.000050+00:00"
        );
        assert_eq!(
            format_us(-62_135_596_800_000_000),
            "0001-01-01T00:00:00+00:00"
        );
        let body = br#"{"customer": {"customer_id": 3}, "path": [{"type": "enter"}, {"type": "move", "location": {"x": 3, "y": 4}}]}"#;
        // The clock's microseconds carry over to every step.
        let expanded = draft(
            body,
            1_609_459_200_123_456,
            Doors::single((0, 0)),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(expanded.answer()).unwrap(),
            r#"{"customer": {"customer_id": "3"}, "path": [{"type": "ENTER", "location": {"x": 0, "y": 0}, "timestamp": "2021-01-01T00:00:10.123456+00:00"}, {"type": "MOVE", "location": {"x": 3, "y": 4}, "timestamp": "2021-01-01T00:00:10.273456+00:00"}]}"#
        );
        let dues: Vec<i64> = expanded.events.iter().map(|e| e.due_ms).collect();
        assert_eq!(dues, [1_609_459_210_123, 1_609_459_210_273]);
    }

    #[test]
    fn walking_time_is_rounded_to_the_microsecond_like_python() {
        // 0.03 s × √2 = 0.042426406871192854 s: 42426 µs (Python: timedelta(seconds=…)).
        assert_eq!(seconds_to_us(2f64.sqrt() * PACE_S_PER_UNIT), Some(42_426));
        assert_eq!(seconds_to_us(0.0000005), Some(0)); // a tie rounds to even
        assert_eq!(seconds_to_us(0.0000015), Some(2));
        assert_eq!(seconds_to_us(1.5), Some(1_500_000));
        assert_eq!(seconds_to_us(f64::INFINITY), None);
        assert_eq!(seconds_to_us(1e300), None);
        assert_eq!(distance((0, 0), (3, 4)), 5.0);
        assert_eq!(distance((i64::MAX, 0), (i64::MIN, 0)), 2f64.powi(64));
    }

    #[test]
    fn huge_walks_are_refused_not_wrapped() {
        let far = format!(
            r#"{{"customer": {{"customer_id": 3}}, "path": [{{"type": "move", "location": {{"x": {}, "y": 0}}}}, {{"type": "move", "location": {{"x": {}, "y": 0}}}}]}}"#,
            i64::MAX,
            i64::MIN
        );
        let why = message(expand(far.as_bytes(), 0));
        assert!(
            why.starts_with("path[1].location: too far to walk"),
            "{why}"
        );
        // 1e10 units at 0.03 s is about 9.5 years: accepted, and timed so.
        let long = format!(
            r#"{{"customer": {{"customer_id": 3}}, "path": [{{"type": "move", "location": {{"x": 0, "y": 0}}}}, {{"type": "move", "location": {{"x": {}, "y": 0}}}}]}}"#,
            10_000_000_000i64
        );
        let expanded = expand(long.as_bytes(), 0).unwrap();
        assert_eq!(
            expanded.events[1].due_ms - expanded.events[0].due_ms,
            300_000_000_000
        );
        let why = message(expand(
            br#"{"customer": {"customer_id": 3}, "path": [{"type": "enter"}]}"#,
            MAX_MS,
        ));
        assert!(why.contains("too far to walk"), "{why}");
    }

    #[test]
    fn events_per_request_are_limited() {
        let limits = Limits { max_events: 7 };
        let focus = br#"{"customer": {"customer_id": 3}, "path": [{"type": "enter"}, {"type": "focus", "location": {"x": 1, "y": 1}}]}"#;
        assert_eq!(
            draft(focus, 0, Doors::single((0, 0)), &limits)
                .unwrap()
                .events
                .len(),
            7
        );
        let more = br#"{"customer": {"customer_id": 3}, "path": [{"type": "enter"}, {"type": "focus", "location": {"x": 1, "y": 1}}, {"type": "exit"}]}"#;
        let why = message(draft(more, 0, Doors::single((0, 0)), &limits));
        assert!(
            why.starts_with("path: expands to more than the limit of 7"),
            "{why}"
        );
    }
}
