//! Who is where, as the sink saw it: the live view's model of the store floor.
//!
//! The sink applies every batch it is handed (enter, move, exit; focus only counts), so the
//! model is exact: the view may skip frames, but it never skips events. Shoppers sit in *slots*,
//! small integers reused as they leave, so a frame can send every position as one compact array
//! (the page draws slot `i` from entries `2i` and `2i + 1`) with no ids in it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use customersim_plugin_api::{CustomerId, Event, EventKind};
use rustc_hash::FxHashMap;

/// Marks a slot nobody holds in [`Floor::positions`].
const EMPTY: (i64, i64) = (i64::MIN, i64::MIN);

/// Events by kind, in this order: enter, move, exit, focus.
pub type KindCounts = [u64; 4];

/// The shoppers inside and the counters of what reached the sink.
#[derive(Debug)]
pub struct Floor {
    /// Where an entering shopper stands (enter events carry no position): the entrance.
    entrance: (i64, i64),
    /// The slot of each shopper inside.
    slot_of: FxHashMap<CustomerId, u32>,
    /// Position by slot; [`EMPTY`] for a free slot.
    positions: Vec<(i64, i64)>,
    /// Who holds each slot (for `/state`); `None` for a free slot.
    holders: Vec<Option<CustomerId>>,
    /// Free slots below `positions.len()`, lowest first, so the array stays short.
    free: BinaryHeap<Reverse<u32>>,
    /// Events that reached the sink, by kind.
    counts: KindCounts,
    /// The highest lateness (clock minus due time, simulated ms) of a batch since the last
    /// [`Floor::take_lag`]; `None` when no batch came.
    lag_ms: Option<i64>,
}

impl Floor {
    /// An empty store whose shoppers appear at `entrance` when they enter.
    pub fn new(entrance: (u32, u32)) -> Floor {
        Floor {
            entrance: (i64::from(entrance.0), i64::from(entrance.1)),
            slot_of: FxHashMap::default(),
            positions: Vec::new(),
            holders: Vec::new(),
            free: BinaryHeap::new(),
            counts: [0; 4],
            lag_ms: None,
        }
    }

    /// Applies a time-ordered batch that reached the sink when the clock read `now_ms`.
    pub fn apply(&mut self, batch: &[Event], now_ms: i64) {
        for event in batch {
            if event.stamp.truth {
                // The view shows what consumers observe; truth copies (sensors on) would draw
                // every shopper twice.
                continue;
            }
            match event.kind {
                EventKind::Enter => {
                    self.counts[0] += 1;
                    self.place(&event.customer, self.entrance);
                }
                EventKind::Move { x, y } => {
                    self.counts[1] += 1;
                    self.place(&event.customer, (x, y));
                }
                EventKind::Exit => {
                    self.counts[2] += 1;
                    self.remove(&event.customer);
                }
                // Said where the shopper already stands (the move before it).
                EventKind::Focus { .. } => self.counts[3] += 1,
            }
        }
        if let Some(last) = batch.last() {
            let lag = (now_ms - last.due_ms).max(0);
            self.lag_ms = Some(self.lag_ms.map_or(lag, |seen| seen.max(lag)));
        }
    }

    fn place(&mut self, customer: &CustomerId, at: (i64, i64)) {
        if let Some(&slot) = self.slot_of.get(customer) {
            self.positions[slot as usize] = at;
            return;
        }
        let slot = match self.free.pop() {
            Some(Reverse(slot)) => slot,
            None => {
                self.positions.push(EMPTY);
                self.holders.push(None);
                (self.positions.len() - 1) as u32
            }
        };
        self.positions[slot as usize] = at;
        self.holders[slot as usize] = Some(customer.clone());
        self.slot_of.insert(customer.clone(), slot);
    }

    fn remove(&mut self, customer: &CustomerId) {
        let Some(slot) = self.slot_of.remove(customer) else {
            return;
        };
        self.positions[slot as usize] = EMPTY;
        self.holders[slot as usize] = None;
        self.free.push(Reverse(slot));
        // Trim free slots off the end, so the frames shrink when the store empties.
        if self.positions.last() == Some(&EMPTY) {
            while self.positions.last() == Some(&EMPTY) {
                self.positions.pop();
                self.holders.pop();
            }
            let len = self.positions.len() as u32;
            self.free.retain(|Reverse(slot)| *slot < len);
        }
    }

    /// How many shoppers are inside.
    pub fn inside(&self) -> usize {
        self.slot_of.len()
    }

    /// Events that reached the sink so far, by kind.
    pub fn counts(&self) -> KindCounts {
        self.counts
    }

    /// The highest lag since the last call, and starts over.
    pub fn take_lag(&mut self) -> Option<i64> {
        self.lag_ms.take()
    }

    /// Every slot's position (`None` for a free slot), for a frame.
    pub fn positions(&self) -> impl Iterator<Item = Option<(i64, i64)>> + '_ {
        self.positions.iter().map(|&at| (at != EMPTY).then_some(at))
    }

    /// The first `limit` shoppers inside by id, and where (for `/state`). Selects them without
    /// cloning or sorting everyone, so a store of 150,000 costs one pass over references.
    pub fn first_shoppers(&self, limit: usize) -> Vec<(CustomerId, (i64, i64))> {
        let mut all: Vec<(&CustomerId, (i64, i64))> = self
            .holders
            .iter()
            .zip(&self.positions)
            .filter_map(|(holder, &at)| holder.as_ref().map(|id| (id, at)))
            .collect();
        if all.len() > limit {
            all.select_nth_unstable_by(limit, |a, b| a.0.cmp(b.0));
            all.truncate(limit);
        }
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all.into_iter().map(|(id, at)| (id.clone(), at)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(due_ms: i64, id: u64, kind: EventKind) -> Event {
        Event {
            due_ms,
            customer: CustomerId::Number(id),
            kind,
            store: 0,
            stamp: Default::default(),
        }
    }

    #[test]
    fn tracks_enter_move_exit_and_reuses_the_lowest_slot() {
        let mut floor = Floor::new((5, 0));
        floor.apply(
            &[
                event(0, 1, EventKind::Enter),
                event(0, 2, EventKind::Enter),
                event(1, 3, EventKind::Move { x: 7, y: 8 }),
                event(2, 1, EventKind::Move { x: 1, y: 2 }),
            ],
            10,
        );
        assert_eq!(floor.inside(), 3);
        assert_eq!(
            floor.positions().collect::<Vec<_>>(),
            [Some((1, 2)), Some((5, 0)), Some((7, 8))]
        );
        floor.apply(&[event(3, 1, EventKind::Exit)], 10);
        assert_eq!(floor.positions().next(), Some(None));
        floor.apply(&[event(4, 9, EventKind::Enter)], 10);
        assert_eq!(floor.positions().next(), Some(Some((5, 0))));
        assert_eq!(
            floor.first_shoppers(10),
            [
                (CustomerId::Number(2), (5, 0)),
                (CustomerId::Number(3), (7, 8)),
                (CustomerId::Number(9), (5, 0))
            ]
        );
        assert_eq!(
            floor.first_shoppers(2),
            [
                (CustomerId::Number(2), (5, 0)),
                (CustomerId::Number(3), (7, 8))
            ]
        );
        assert!(floor.first_shoppers(0).is_empty());
        assert_eq!(floor.counts(), [3, 2, 1, 0]);
    }

    #[test]
    fn the_slot_array_shrinks_when_the_last_slots_empty() {
        let mut floor = Floor::new((0, 0));
        let enters: Vec<_> = (1..=4).map(|id| event(0, id, EventKind::Enter)).collect();
        floor.apply(&enters, 0);
        let exits: Vec<_> = [2, 4, 3]
            .into_iter()
            .map(|id| event(1, id, EventKind::Exit))
            .collect();
        floor.apply(&exits, 0);
        assert_eq!(floor.positions().count(), 1);
        floor.apply(&[event(2, 5, EventKind::Enter)], 0);
        assert_eq!(floor.positions().count(), 2, "slot 1 is reused, not slot 3");
    }

    #[test]
    fn an_exit_of_someone_never_seen_and_focus_events_change_no_position() {
        let mut floor = Floor::new((0, 0));
        floor.apply(
            &[
                event(0, 1, EventKind::Exit),
                event(0, 2, EventKind::Move { x: 3, y: 3 }),
                event(
                    0,
                    2,
                    EventKind::Focus {
                        dep: "Women",
                        x: 3,
                        y: 3,
                    },
                ),
            ],
            0,
        );
        assert_eq!(floor.inside(), 1);
        assert_eq!(floor.counts(), [0, 1, 1, 1]);
    }

    #[test]
    fn lag_is_the_highest_since_it_was_last_taken() {
        let mut floor = Floor::new((0, 0));
        assert_eq!(floor.take_lag(), None);
        floor.apply(&[event(1_000, 1, EventKind::Enter)], 1_250);
        floor.apply(&[event(2_000, 1, EventKind::Exit)], 2_100);
        assert_eq!(floor.take_lag(), Some(250));
        assert_eq!(floor.take_lag(), None);
        floor.apply(&[event(5_000, 1, EventKind::Enter)], 4_000);
        assert_eq!(floor.take_lag(), Some(0), "never negative");
    }
}
