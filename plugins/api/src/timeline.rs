//! The timeline contract: every future event, ordered by due time.
//!
//! Sources schedule events onto it; the scheduler claims those that are due and hands them to the
//! sinks. Backends (in-process memory, Redis shared by several instances) live in the core and
//! implement [`Timeline`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

use crate::event::Event;

/// Why a timeline operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// The backend cannot be reached right now; the caller retries with backoff.
    #[error("timeline backend unavailable: {0}")]
    Unavailable(String),
    /// The stored data or the request cannot be handled; retrying will not help.
    #[error("timeline error: {0}")]
    Invalid(String),
}

/// Events taken off the timeline by one instance.
#[derive(Debug, Default)]
pub struct Claim {
    /// The due events, in (due time, customer) order.
    pub events: Vec<Event>,
    /// Set by backends that lease claims (shared timelines): pass it to
    /// [`Timeline::acknowledge`] once the sinks took the events, or they are handed out again when
    /// the lease expires.
    pub lease: Option<String>,
}

/// Time-ordered storage of future events.
#[crate::async_trait]
#[allow(clippy::len_without_is_empty)] // an async `len` is one round trip; `is_empty` would be another
pub trait Timeline: Send + Sync {
    /// Adds events; each is published at its `due_ms`.
    async fn schedule(&self, events: Vec<Event>) -> Result<(), TimelineError>;

    /// Takes up to `max` events due at or before `until_ms`, earliest first (ties by customer).
    async fn claim_due(&self, until_ms: i64, max: usize) -> Result<Claim, TimelineError>;

    /// Confirms a leased claim was handed to the sinks.
    async fn acknowledge(&self, _lease: &str) -> Result<(), TimelineError> {
        Ok(())
    }

    /// Due time of the earliest event, if any.
    async fn next_due(&self) -> Result<Option<i64>, TimelineError>;

    /// Number of events waiting.
    async fn len(&self) -> Result<u64, TimelineError>;

    /// Number of the events scheduled through this handle that are not yet published: a run
    /// with sources ends once they are done and this is 0. Shared backends count what this
    /// instance scheduled until some instance acknowledged it, and leave out what other
    /// instances scheduled; the default is [`Timeline::len`].
    async fn pending_here(&self) -> Result<u64, TimelineError> {
        self.len().await
    }

    /// Notified whenever events are scheduled, so a waiting scheduler looks again.
    fn scheduled(&self) -> Arc<Notify>;
}

/// How far a generating source has filled the timeline: every event it will ever produce that is
/// due before the watermark is already scheduled. A virtual clock never runs past the lowest
/// watermark, so a fast scheduler cannot overtake a generator.
#[derive(Clone, Debug)]
pub struct Watermark {
    reached_ms: Arc<AtomicI64>,
    progress: Arc<Notify>,
}

impl Watermark {
    /// A watermark at `initial_ms`; `progress` is notified whenever it moves.
    pub fn new(initial_ms: i64, progress: Arc<Notify>) -> Watermark {
        Watermark {
            reached_ms: Arc::new(AtomicI64::new(initial_ms)),
            progress,
        }
    }

    /// Declares that every event due before `at_ms` has been scheduled.
    pub fn advance(&self, at_ms: i64) {
        if self.reached_ms.fetch_max(at_ms, Ordering::AcqRel) < at_ms {
            self.progress.notify_one();
        }
    }

    /// Declares that the source will schedule nothing more.
    pub fn finish(&self) {
        self.advance(i64::MAX);
    }

    /// The current watermark.
    pub fn reached_ms(&self) -> i64 {
        self.reached_ms.load(Ordering::Acquire)
    }
}
