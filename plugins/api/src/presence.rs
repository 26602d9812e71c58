//! Who is inside right now, as published (`GET /state` of http_ingress): an entry per shopper
//! between their enter and their exit, so the table holds who is inside, never everyone seen.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::event::{CustomerId, Event, EventKind};
use crate::fleet::StoreIndex;

/// Where a shopper who is inside stands, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    pub x: i64,
    pub y: i64,
    /// Simulated milliseconds since the epoch of the shopper's last event.
    pub since_ms: i64,
    /// The store of a fleet the shopper is in (0 without a fleet).
    pub store: StoreIndex,
}

/// Most shoppers the table lists at once. Ids that never exit (a client posting
/// `/produce_entry` with ever new ids) would otherwise grow it without end; a simulation with
/// more shoppers inside than this lists the first ones and logs once that the rest are left out.
pub const MAX_LISTED: usize = 100_000;

type Table = Arc<RwLock<Inside>>;

/// The table and whether it has overflowed since it was last below its bound.
#[derive(Debug, Default)]
struct Inside {
    by_id: HashMap<CustomerId, Position>,
    /// Set when a shopper was left out because the table was full (logged once per overflow).
    overflowed: bool,
}

/// A read-only view of who is inside: the core updates it with each batch handed to the sinks. Only
/// kept when a plugin asks for it ([`crate::BuildContext::presence`]), so large simulations that
/// nobody inspects do not pay for it.
#[derive(Clone, Debug)]
pub struct Presence {
    inside: Table,
}

impl Presence {
    /// Everyone inside, ordered by id.
    pub fn snapshot(&self) -> Vec<(CustomerId, Position)> {
        let inside = self.inside.read().expect("presence lock");
        let mut all: Vec<_> = inside
            .by_id
            .iter()
            .map(|(id, at)| (id.clone(), *at))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The writing side of [`Presence`], held by the core.
#[derive(Clone, Debug)]
pub struct PresenceRecorder {
    entrance: (i64, i64),
    inside: Table,
    /// Most shoppers listed ([`MAX_LISTED`]; smaller in tests).
    capacity: usize,
}

impl PresenceRecorder {
    /// An empty store whose shoppers appear at `entrance` when they enter.
    pub fn new(entrance: (u32, u32)) -> PresenceRecorder {
        PresenceRecorder {
            entrance: (i64::from(entrance.0), i64::from(entrance.1)),
            inside: Table::default(),
            capacity: MAX_LISTED,
        }
    }

    /// The same, listing at most `capacity` shoppers.
    pub fn with_capacity(entrance: (u32, u32), capacity: usize) -> PresenceRecorder {
        PresenceRecorder {
            capacity,
            ..PresenceRecorder::new(entrance)
        }
    }

    /// The read-only view plugins get.
    pub fn view(&self) -> Presence {
        Presence {
            inside: self.inside.clone(),
        }
    }

    /// Records published events.
    pub fn apply(&self, events: &[Event]) {
        let mut inside = self.inside.write().expect("presence lock");
        let Inside {
            by_id, overflowed, ..
        } = &mut *inside;
        for event in events {
            if event.stamp.truth {
                // What the consumers were told (the observed stream), not the truth copies.
                continue;
            }
            let (x, y) = match event.kind {
                EventKind::Enter => self.entrance,
                EventKind::Move { x, y } => (x, y),
                EventKind::Exit => {
                    by_id.remove(&event.customer);
                    continue;
                }
                // Said where the shopper already stands (the move before it).
                EventKind::Focus { .. } => continue,
            };
            let at = Position {
                x,
                y,
                since_ms: event.due_ms,
                store: event.store,
            };
            if let Some(known) = by_id.get_mut(&event.customer) {
                *known = at;
            } else if by_id.len() < self.capacity {
                by_id.insert(event.customer.clone(), at);
            } else if !*overflowed {
                *overflowed = true;
                tracing::warn!(
                    "more than {} shoppers inside: GET /state lists only the first {} (shoppers who never exit, e.g. /produce_entry without /produce_exit, stay listed)",
                    self.capacity,
                    self.capacity
                );
            }
        }
        if by_id.len() < self.capacity {
            *overflowed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: EventKind) -> Event {
        Event {
            due_ms: 1_000,
            customer: CustomerId::parse(id),
            kind,
            store: 0,
            stamp: Default::default(),
        }
    }

    #[test]
    fn lists_only_who_is_inside_and_at_most_its_capacity() {
        let recorder = PresenceRecorder::with_capacity((0, 0), 2);
        let view = recorder.view();
        recorder.apply(&[
            event("a", EventKind::Enter),
            event("b", EventKind::Move { x: 1, y: 2 }),
            event("c", EventKind::Enter),
        ]);
        let ids = |view: &Presence| -> Vec<String> {
            view.snapshot()
                .into_iter()
                .map(|(id, _)| id.to_string())
                .collect()
        };
        assert_eq!(ids(&view), ["a", "b"], "c does not fit");
        recorder.apply(&[event("b", EventKind::Move { x: 5, y: 6 })]);
        assert_eq!(view.snapshot()[1].1.x, 5, "a listed shopper still moves");
        recorder.apply(&[event("a", EventKind::Exit), event("c", EventKind::Enter)]);
        assert_eq!(ids(&view), ["b", "c"], "an exit forgets and makes room");
        recorder.apply(&[event("b", EventKind::Exit), event("c", EventKind::Exit)]);
        assert!(view.snapshot().is_empty());
    }
}
