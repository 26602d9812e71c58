//! The events this source has put on the timeline and that are not yet due.
//!
//! A `/scenario` step dated next year waits on the timeline (in memory, or in Redis) until the
//! simulated clock reaches it; without a bound, clients could make the process hold any number
//! of them. Two bounds keep that in check: a step may be dated at most `max_ahead` after the
//! simulated clock (422 naming the step), and all requests together may hold at most
//! `max_pending` such events (429, nothing of the request scheduled).
//!
//! The timeline publishes an event once the clock reaches its `due_ms`, so the count of held
//! events is kept here as due instants: an event leaves the count when the clock passes it.
//! Events already due when they arrive are published at once and never counted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use customersim_plugin_api::Event;

use crate::values::format_ms;

/// The configured bounds.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Most events held (scheduled, not yet due), all requests together.
    pub max_pending: usize,
    /// How far after the simulated clock an event may be dated.
    pub max_ahead: Duration,
}

/// Why a request's events were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The event at this index is dated too far ahead (422); the message names the field.
    TooFarAhead { index: usize, message: String },
    /// The request would take the held events over `max_pending` (429).
    TooMany(String),
}

/// The due instants of the events held, counted per instant.
pub struct Backlog {
    bounds: Bounds,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    by_due: BTreeMap<i64, usize>,
    total: usize,
}

/// Events counted by [`Backlog::admit`]; given back with [`Backlog::cancel`] if the timeline
/// refuses them after all.
#[must_use]
pub struct Admission {
    dues: Vec<i64>,
}

impl Backlog {
    pub fn new(bounds: Bounds) -> Backlog {
        Backlog {
            bounds,
            held: Mutex::new(Held::default()),
        }
    }

    /// Checks `events` against both bounds at simulated time `now_ms` and counts the ones not
    /// yet due. `field` names an event's field in a refusal (`path[3].timestamp` for the
    /// event at index 3).
    pub fn admit(
        &self,
        events: &[Event],
        now_ms: i64,
        field: impl Fn(usize) -> String,
    ) -> Result<Admission, Refusal> {
        let max_ahead_ms = i64::try_from(self.bounds.max_ahead.as_millis()).unwrap_or(i64::MAX);
        let latest = now_ms.saturating_add(max_ahead_ms);
        if let Some((index, event)) = events
            .iter()
            .enumerate()
            .find(|(_, event)| event.due_ms > latest)
        {
            return Err(Refusal::TooFarAhead {
                index,
                message: format!(
                    "{}: {} is more than {:?} after the simulated clock ({}), the limit of max_ahead",
                    field(index),
                    format_ms(event.due_ms),
                    self.bounds.max_ahead,
                    format_ms(now_ms)
                ),
            });
        }
        let dues: Vec<i64> = events
            .iter()
            .map(|event| event.due_ms)
            .filter(|due| *due > now_ms)
            .collect();
        let mut held = self.held.lock().expect("backlog lock");
        held.release_until(now_ms);
        if held.total + dues.len() > self.bounds.max_pending {
            return Err(Refusal::TooMany(format!(
                "path: its {} future events would make {} scheduled and not yet due, over the limit of {} (max_pending_events); retry once earlier ones are published",
                dues.len(),
                held.total + dues.len(),
                self.bounds.max_pending
            )));
        }
        for due in &dues {
            *held.by_due.entry(*due).or_insert(0) += 1;
        }
        held.total += dues.len();
        Ok(Admission { dues })
    }

    /// Gives back what `admission` counted (the timeline did not take the events).
    pub fn cancel(&self, admission: Admission) {
        let mut held = self.held.lock().expect("backlog lock");
        let held = &mut *held;
        for due in admission.dues {
            if let Some(count) = held.by_due.get_mut(&due) {
                *count -= 1;
                held.total -= 1;
                if *count == 0 {
                    held.by_due.remove(&due);
                }
            }
        }
    }

    /// Events held at simulated time `now_ms`.
    #[cfg(test)]
    fn held(&self, now_ms: i64) -> usize {
        let mut held = self.held.lock().expect("backlog lock");
        held.release_until(now_ms);
        held.total
    }
}

impl Held {
    /// Forgets the events due at or before `now_ms`: the timeline publishes them.
    fn release_until(&mut self, now_ms: i64) {
        let Some(after) = now_ms.checked_add(1) else {
            self.by_due.clear();
            self.total = 0;
            return;
        };
        let later = self.by_due.split_off(&after);
        let released: usize = self.by_due.values().sum();
        self.total -= released;
        self.by_due = later;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::EventKind;

    fn at(due_ms: i64) -> Event {
        Event {
            due_ms,
            customer: "c".into(),
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        }
    }

    fn backlog(max_pending: usize) -> Backlog {
        Backlog::new(Bounds {
            max_pending,
            max_ahead: Duration::from_secs(60),
        })
    }

    fn field(index: usize) -> String {
        format!("path[{index}].timestamp")
    }

    #[test]
    fn future_events_count_until_the_clock_reaches_them() {
        let backlog = backlog(3);
        // Events already due are not held.
        let _ = backlog.admit(&[at(0), at(1000)], 1000, field).unwrap();
        assert_eq!(backlog.held(1000), 0);
        let _ = backlog.admit(&[at(2000), at(3000)], 1000, field).unwrap();
        assert_eq!(backlog.held(1000), 2);
        // Two more would make 4: refused whole, nothing counted.
        match backlog.admit(&[at(2500), at(4000)], 1000, field) {
            Err(Refusal::TooMany(why)) => {
                assert!(why.contains("max_pending_events"), "{why}")
            }
            _ => panic!("over the limit"),
        }
        assert_eq!(backlog.held(1000), 2);
        // Once the clock passes 2000, one place is free again.
        assert_eq!(backlog.held(2000), 1);
        let admitted = backlog.admit(&[at(2500), at(4000)], 2000, field).unwrap();
        assert_eq!(backlog.held(2000), 3);
        backlog.cancel(admitted);
        assert_eq!(backlog.held(2000), 1);
        assert_eq!(backlog.held(i64::MAX), 0);
    }

    #[test]
    fn an_event_too_far_ahead_is_named() {
        let backlog = backlog(10);
        let now = 1_600_000_000_000;
        let _ = backlog.admit(&[at(now + 60_000)], now, field).unwrap();
        match backlog.admit(&[at(now), at(now + 60_001)], now, field) {
            Err(Refusal::TooFarAhead { index, message }) => {
                assert_eq!(index, 1);
                assert!(
                    message.starts_with("path[1].timestamp: 2020-09-13T12:27:40.001Z is more than 60s after the simulated clock (2020-09-13T12:26:40.000Z)")
                        && message.ends_with("max_ahead"),
                    "{message}"
                );
            }
            _ => panic!("too far ahead"),
        }
        assert_eq!(backlog.held(now), 1, "nothing of the refused request");
    }
}
