//! Who is inside right now, as published (`GET /state` of http_ingress).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::event::{CustomerId, Event, EventKind};

/// Where a shopper who is inside stands, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    pub x: i64,
    pub y: i64,
    /// Simulated milliseconds since the epoch of the shopper's last event.
    pub since_ms: i64,
}

type Table = Arc<RwLock<HashMap<CustomerId, Position>>>;

/// A read-only view of who is inside: the core updates it after the sinks took each batch. Only
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
        let mut all: Vec<_> = inside.iter().map(|(id, at)| (id.clone(), *at)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The writing side of [`Presence`], held by the core.
#[derive(Clone, Debug)]
pub struct PresenceRecorder {
    entrance: (i64, i64),
    inside: Table,
}

impl PresenceRecorder {
    /// An empty store whose shoppers appear at `entrance` when they enter.
    pub fn new(entrance: (u32, u32)) -> PresenceRecorder {
        PresenceRecorder {
            entrance: (i64::from(entrance.0), i64::from(entrance.1)),
            inside: Table::default(),
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
        for event in events {
            let (x, y) = match event.kind {
                EventKind::Enter => self.entrance,
                EventKind::Move { x, y } => (x, y),
                EventKind::Exit => {
                    inside.remove(&event.customer);
                    continue;
                }
                // Said where the shopper already stands (the move before it).
                EventKind::Focus { .. } => continue,
            };
            inside.insert(
                event.customer.clone(),
                Position {
                    x,
                    y,
                    since_ms: event.due_ms,
                },
            );
        }
    }
}
