//! The conformance suite can fail: a timeline that breaks one rule of the contract is caught,
//! while the memory backend it wraps passes.

use std::sync::Arc;

use customersim::plugin_api::{Claim, Event, Timeline, TimelineError, async_trait};
use customersim_testkit::timeline::timeline_conformance;
use customersim_timeline_memory::MemoryTimeline;
use tokio::sync::Notify;

/// One rule a [`Broken`] timeline breaks.
#[derive(Clone, Copy, Debug)]
enum Fault {
    IgnoresMax,
    ExcludesUntil,
    ReversesOrder,
    NeverNotifies,
    CountsNothingPending,
}

/// The memory backend with one fault.
struct Broken {
    inner: MemoryTimeline,
    fault: Fault,
}

#[async_trait]
impl Timeline for Broken {
    async fn schedule(&self, events: Vec<Event>) -> Result<(), TimelineError> {
        self.inner.schedule(events).await
    }

    async fn claim_due(&self, until_ms: i64, max: usize) -> Result<Claim, TimelineError> {
        let mut claim = match self.fault {
            Fault::IgnoresMax => self.inner.claim_due(until_ms, usize::MAX).await?,
            Fault::ExcludesUntil => self.inner.claim_due(until_ms - 1, max).await?,
            _ => self.inner.claim_due(until_ms, max).await?,
        };
        if let Fault::ReversesOrder = self.fault {
            claim.events.reverse();
        }
        Ok(claim)
    }

    async fn next_due(&self) -> Result<Option<i64>, TimelineError> {
        self.inner.next_due().await
    }

    async fn len(&self) -> Result<u64, TimelineError> {
        self.inner.len().await
    }

    async fn pending_here(&self) -> Result<u64, TimelineError> {
        match self.fault {
            Fault::CountsNothingPending => Ok(0),
            _ => self.inner.pending_here().await,
        }
    }

    fn scheduled(&self) -> Arc<Notify> {
        match self.fault {
            Fault::NeverNotifies => Arc::new(Notify::new()),
            _ => self.inner.scheduled(),
        }
    }
}

#[tokio::test]
async fn each_broken_rule_fails_the_suite() {
    for fault in [
        Fault::IgnoresMax,
        Fault::ExcludesUntil,
        Fault::ReversesOrder,
        Fault::NeverNotifies,
        Fault::CountsNothingPending,
    ] {
        let suite = tokio::spawn(timeline_conformance(move || async move {
            Arc::new(Broken {
                inner: MemoryTimeline::default(),
                fault,
            }) as Arc<dyn Timeline>
        }));
        let outcome = suite.await;
        assert!(
            outcome.is_err_and(|error| error.is_panic()),
            "{fault:?} passed the suite"
        );
    }
}
