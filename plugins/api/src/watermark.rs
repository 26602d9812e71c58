//! How far a generating source has filled the timeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

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
    pub(crate) fn new(initial_ms: i64, progress: Arc<Notify>) -> Watermark {
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
