//! Batches on their way to the sinks: one buffer shared by every sink, the run report and the
//! verdict (never copied), and given back to the scheduler's pool when the last of them is done
//! with it, so that publishing at full speed allocates nothing per batch.

use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};

use crate::plugin_api::Event;

/// Buffers a pool keeps for reuse: about what is in flight when the sinks keep up; beyond that
/// (a slow sink with a full queue), buffers are freed and made again.
const KEPT_BUFFERS: usize = 8;

/// A time-ordered batch of events, shared: clones are cheap and see the same events.
#[derive(Clone)]
pub struct Batch(Arc<Buffer>);

struct Buffer {
    events: Vec<Event>,
    /// Where the buffer goes back to; `None` for a batch made from a vector of its own.
    pool: Option<BatchPool>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(std::mem::take(&mut self.events));
        }
    }
}

impl Deref for Batch {
    type Target = [Event];

    fn deref(&self) -> &[Event] {
        &self.0.events
    }
}

impl From<Vec<Event>> for Batch {
    fn from(events: Vec<Event>) -> Batch {
        Batch(Arc::new(Buffer { events, pool: None }))
    }
}

/// Buffers for [`Batch`]es, reused. Clones share them.
#[derive(Clone, Default)]
pub struct BatchPool(Arc<Mutex<Vec<Vec<Event>>>>);

impl BatchPool {
    /// An empty buffer to fill (one given back, when there is one).
    pub fn buffer(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// `events` as a batch whose buffer comes back here once every holder dropped it.
    pub fn batch(&self, events: Vec<Event>) -> Batch {
        Batch(Arc::new(Buffer {
            events,
            pool: Some(self.clone()),
        }))
    }

    /// Takes back a buffer that was not made a batch (kept unless the pool is full).
    pub fn give_back(&self, mut events: Vec<Event>) {
        events.clear();
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT_BUFFERS && events.capacity() > 0 {
            kept.push(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_api::{CustomerId, EventKind};

    fn event(due_ms: i64) -> Event {
        Event {
            due_ms,
            customer: CustomerId::Number(1),
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        }
    }

    #[test]
    fn a_buffer_comes_back_empty_once_the_last_holder_dropped_it() {
        let pool = BatchPool::default();
        let mut buffer = pool.buffer();
        buffer.extend([event(1), event(2)]);
        let address = buffer.as_ptr();
        let batch = pool.batch(buffer);
        let held = batch.clone();
        drop(batch);
        assert_eq!(held.len(), 2, "a holder still sees the events");
        assert!(pool.0.lock().unwrap().is_empty());
        drop(held);
        let again = pool.buffer();
        assert!(again.is_empty() && again.capacity() >= 2);
        assert_eq!(again.as_ptr(), address, "the same allocation");
        let own = Batch::from(vec![event(3)]);
        drop(own);
        assert!(pool.0.lock().unwrap().is_empty());
    }
}
