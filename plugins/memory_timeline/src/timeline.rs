//! The in-process timeline: a binary heap ordered by (due time, customer, insertion order).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use customersim_plugin_api::{Claim, CustomerId, Event, Timeline, TimelineError, async_trait};

/// Events of one process, lost when it stops (use a shared backend to keep them).
#[derive(Default)]
pub struct MemoryTimeline {
    state: Mutex<State>,
    scheduled: Arc<Notify>,
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Insertion counter: keeps events of one customer at one instant in scheduling order.
    next_seq: u64,
}

struct Entry {
    seq: u64,
    event: Event,
}

impl Entry {
    fn key(&self) -> (i64, &CustomerId, u64) {
        (self.event.due_ms, &self.event.customer, self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

#[async_trait]
impl Timeline for MemoryTimeline {
    async fn schedule(&self, events: Vec<Event>) -> Result<(), TimelineError> {
        {
            let mut state = self.state.lock().expect("timeline lock");
            state.heap.reserve(events.len());
            for event in events {
                let seq = state.next_seq;
                state.next_seq += 1;
                state.heap.push(Reverse(Entry { seq, event }));
            }
        }
        self.scheduled.notify_one();
        Ok(())
    }

    async fn claim_due(&self, until_ms: i64, max: usize) -> Result<Claim, TimelineError> {
        let mut state = self.state.lock().expect("timeline lock");
        let mut events = Vec::new();
        while events.len() < max {
            match state.heap.peek() {
                Some(Reverse(entry)) if entry.event.due_ms <= until_ms => {
                    events.push(state.heap.pop().expect("peeked").0.event);
                }
                _ => break,
            }
        }
        Ok(Claim {
            events,
            lease: None,
        })
    }

    async fn next_due(&self) -> Result<Option<i64>, TimelineError> {
        let state = self.state.lock().expect("timeline lock");
        Ok(state.heap.peek().map(|Reverse(entry)| entry.event.due_ms))
    }

    async fn len(&self) -> Result<u64, TimelineError> {
        Ok(self.state.lock().expect("timeline lock").heap.len() as u64)
    }

    fn scheduled(&self) -> Arc<Notify> {
        self.scheduled.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::EventKind;

    fn event(due_ms: i64, id: u64) -> Event {
        Event {
            due_ms,
            customer: CustomerId::Number(id),
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        }
    }

    #[tokio::test]
    async fn claims_due_events_in_time_then_customer_order() {
        let timeline = MemoryTimeline::default();
        timeline
            .schedule(vec![event(30, 1), event(10, 9), event(10, 2), event(20, 5)])
            .await
            .unwrap();
        let claim = timeline.claim_due(20, 10).await.unwrap();
        assert_eq!(claim.events, vec![event(10, 2), event(10, 9), event(20, 5)]);
        assert_eq!(timeline.next_due().await.unwrap(), Some(30));
        assert_eq!(timeline.claim_due(100, 0).await.unwrap().events, vec![]);
        assert_eq!(timeline.len().await.unwrap(), 1);
    }
}
