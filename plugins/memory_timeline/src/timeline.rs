//! The in-process timeline: every batch a source scheduled is a run sorted by (due time,
//! customer), and claims merge the runs (ties between runs go to the one scheduled first).
//!
//! Sources schedule their events in time order, a batch at a time, so a batch is nearly sorted
//! already (only events due in the same millisecond may need reordering by customer) and the
//! runs of one source follow each other in time. Sorting a batch is then a pass over it, and a
//! claim takes events from the front of one run after another, comparing a few run heads per
//! event: no event is moved more than twice, and none sits in a tree. Any batch in any order is
//! still taken in, sorted as it needs.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use customersim_plugin_api::due_queue::sort_nearly_sorted_by;
use customersim_plugin_api::{Claim, CustomerId, Event, Timeline, TimelineError, async_trait};

/// Events of one process, lost when it stops (use a shared backend to keep them).
#[derive(Default)]
pub struct MemoryTimeline {
    state: Mutex<State>,
    scheduled: Arc<Notify>,
}

#[derive(Default)]
struct State {
    /// The runs not yet claimed to the end, the one with the earliest event on top.
    runs: BinaryHeap<Reverse<Run>>,
    /// Batches scheduled but not yet sorted into runs, oldest first: a source hands its batch
    /// over and goes on generating, and the scheduler sorts it when it claims (the work moves to
    /// the scheduler's thread, which has less to do).
    arrived: Vec<Vec<Event>>,
    /// Events in `runs` and `arrived`.
    len: usize,
    /// How many batches came in so far: a run's place in scheduling order.
    next_seq: u64,
}

/// One scheduled batch, sorted, claimed from the front; never empty in [`State::runs`].
struct Run {
    events: VecDeque<Event>,
    /// Scheduling order: among events due in the same millisecond for the same customer, the
    /// earlier run's go first (within a run, the batch's own order is kept).
    seq: u64,
}

impl Run {
    fn head(&self) -> (i64, &CustomerId, u64) {
        let event = self.events.front().expect("runs in the heap are not empty");
        (event.due_ms, &event.customer, self.seq)
    }
}

impl PartialEq for Run {
    fn eq(&self, other: &Self) -> bool {
        self.head() == other.head()
    }
}
impl Eq for Run {}
impl PartialOrd for Run {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Run {
    fn cmp(&self, other: &Self) -> Ordering {
        self.head().cmp(&other.head())
    }
}

/// Sorts a batch by (due time, customer), keeping the batch's order among equal ones: an
/// insertion sort, a pass over a batch in time order with a few ties; beyond a few moves per
/// event, a merge sort.
fn sort_batch(events: &mut [Event]) {
    sort_nearly_sorted_by(events, 2, |a, b| {
        (a.due_ms, &a.customer).cmp(&(b.due_ms, &b.customer))
    });
}

impl State {
    /// Sorts the batches that arrived into runs, in the order they arrived.
    fn take_in(&mut self) {
        for mut events in std::mem::take(&mut self.arrived) {
            sort_batch(&mut events);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.runs.push(Reverse(Run {
                events: events.into(),
                seq,
            }));
        }
    }

    /// The earliest event's due time.
    fn next_due(&mut self) -> Option<i64> {
        self.take_in();
        self.runs.peek().map(|Reverse(run)| run.head().0)
    }
}

impl MemoryTimeline {
    fn add(&self, events: Vec<Event>) {
        if !events.is_empty() {
            let mut state = self.state.lock().expect("timeline lock");
            state.len += events.len();
            state.arrived.push(events);
        }
        self.scheduled.notify_one();
    }
}

#[async_trait]
impl Timeline for MemoryTimeline {
    async fn schedule(&self, events: Vec<Event>) -> Result<(), TimelineError> {
        self.add(events);
        Ok(())
    }

    /// Never fails: nothing to hand back, nothing to copy.
    async fn schedule_or_hand_back(
        &self,
        events: Vec<Event>,
    ) -> Result<(), (TimelineError, Vec<Event>)> {
        self.add(events);
        Ok(())
    }

    async fn claim_due(&self, until_ms: i64, max: usize) -> Result<Claim, TimelineError> {
        let mut events = Vec::new();
        self.claim_due_into(until_ms, max, &mut events).await?;
        Ok(Claim {
            events,
            lease: None,
        })
    }

    async fn claim_due_into(
        &self,
        until_ms: i64,
        max: usize,
        into: &mut Vec<Event>,
    ) -> Result<Option<String>, TimelineError> {
        let mut state = self.state.lock().expect("timeline lock");
        state.take_in();
        let wanted = max.min(state.len);
        into.reserve(wanted);
        let mut taken = 0;
        while taken < wanted {
            let Some(mut top) = state.runs.peek_mut() else {
                break;
            };
            let run = &mut top.0;
            if run.head().0 > until_ms {
                break;
            }
            into.push(run.events.pop_front().expect("not empty"));
            taken += 1;
            if run.events.is_empty() {
                std::collections::binary_heap::PeekMut::pop(top);
            }
            // Otherwise dropping `top` puts the run back in its place.
        }
        state.len -= taken;
        Ok(None)
    }

    async fn next_due(&self) -> Result<Option<i64>, TimelineError> {
        Ok(self.state.lock().expect("timeline lock").next_due())
    }

    async fn len(&self) -> Result<u64, TimelineError> {
        Ok(self.state.lock().expect("timeline lock").len as u64)
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

    /// Batches in any order, interleaved with claims, come out as one list sorted by (due time,
    /// customer, scheduling order) would: the order of the backend this one replaced.
    #[tokio::test]
    async fn claims_in_the_order_of_one_sorted_list() {
        let timeline = MemoryTimeline::default();
        let mut reference: Vec<(i64, CustomerId, u64, Event)> = Vec::new();
        let (mut seq, mut now, mut random) = (0u64, 0i64, 7u64);
        let mut next = |bound: u64| {
            random = random
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (random >> 33) % bound
        };
        for step in 0..3_000 {
            // Mostly batches in time order from the clock on (with ties), some in any order.
            let len = next(20) as usize;
            let ordered = next(4) != 0;
            let mut due = now + next(50) as i64;
            let batch: Vec<Event> = (0..len)
                .map(|n| {
                    due = if ordered {
                        due + next(3) as i64
                    } else {
                        now + next(200) as i64
                    };
                    let mut event = event(due, next(6));
                    event.store = n as u32 + step; // tells apart events of one customer at one time
                    event
                })
                .collect();
            for event in &batch {
                reference.push((event.due_ms, event.customer.clone(), seq, event.clone()));
                seq += 1;
            }
            timeline.schedule(batch).await.unwrap();
            if next(3) == 0 {
                now += next(60) as i64;
                let max = next(40) as usize;
                let claim = timeline.claim_due(now, max).await.unwrap();
                reference.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
                let due_now = reference.iter().take_while(|e| e.0 <= now).count();
                let expected: Vec<Event> =
                    reference.drain(..due_now.min(max)).map(|e| e.3).collect();
                assert_eq!(claim.events, expected, "step {step}");
                assert_eq!(timeline.len().await.unwrap(), reference.len() as u64);
                let earliest = reference.iter().map(|e| e.0).min();
                assert_eq!(timeline.next_due().await.unwrap(), earliest);
            }
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
