//! The timeline: every future event, ordered by due time.
//!
//! Sources put events on it through a [`Schedule`] handle; the core's scheduler claims those that
//! are due and hands them to the sinks. Backends implement [`Timeline`] and are plugins like
//! sources and sinks: a [`TimelineConfig`] registered with `#[timeline_config]` opens one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::backoff::Backoff;
use crate::clock::ClockOrigin;
use crate::error::PluginError;
use crate::event::Event;
use crate::peers::Peers;
use crate::plugin::PluginConfig;
use crate::shutdown::ShutdownSignal;
use crate::stages::{Stages, StagesUndo};

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

    /// Adds events as [`Timeline::schedule`] does, but hands them back when they were not added,
    /// so that a caller who retries needs no copy of every batch. The default keeps a copy; a
    /// backend that can give them back (or never fails) need not.
    async fn schedule_or_hand_back(
        &self,
        events: Vec<Event>,
    ) -> Result<(), (TimelineError, Vec<Event>)> {
        let kept = events.clone();
        self.schedule(events).await.map_err(|error| (error, kept))
    }

    /// Takes up to `max` events due at or before `until_ms`, earliest first (ties by customer).
    /// On a virtual clock, the scheduler of an instance with generating sources never asks
    /// beyond what they scheduled: everything they will produce due before `until_ms + 1` is on
    /// the timeline (a shared backend tells the other instances so; see [`SharedClock`]).
    async fn claim_due(&self, until_ms: i64, max: usize) -> Result<Claim, TimelineError>;

    /// Takes due events as [`Timeline::claim_due`] does, appended to `into` (a buffer the caller
    /// reuses, so that publishing at full speed allocates nothing per claim), and returns the
    /// claim's lease. The default moves them from the backend's claim.
    async fn claim_due_into(
        &self,
        until_ms: i64,
        max: usize,
        into: &mut Vec<Event>,
    ) -> Result<Option<String>, TimelineError> {
        let claim = self.claim_due(until_ms, max).await?;
        into.extend(claim.events);
        Ok(claim.lease)
    }

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

    /// Leaves the timeline at the end of the run (a shared backend forgets this instance, and
    /// with the last one its clock). Called once, after the sinks finished.
    async fn leave(&self) {}

    /// A line for the end-of-run log about how the backend did (e.g. claim round trips of a shared
    /// backend); `None` when there is nothing worth saying.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// What a source may do with the timeline: add events. Claiming and acknowledging are the core's.
/// Events pass through the source's [`Stages`] (focus) on their way.
#[derive(Clone)]
pub struct Schedule {
    timeline: Arc<dyn Timeline>,
    stages: Stages,
}

impl Schedule {
    /// A handle that adds to `timeline` through `stages` (see [`crate::host::schedule`]).
    pub(crate) fn new(timeline: Arc<dyn Timeline>, stages: Stages) -> Schedule {
        Schedule { timeline, stages }
    }

    /// Adds events; each is published at its `due_ms`. Refused, it leaves no trace: the stages
    /// forget what these events taught them.
    pub async fn schedule(&self, events: Vec<Event>) -> Result<(), TimelineError> {
        if self.stages.is_empty() {
            return self.timeline.schedule(events).await;
        }
        let mut undo = StagesUndo::default();
        let events = self.stages.apply(events, Some(&mut undo));
        let scheduled = self.timeline.schedule(events).await;
        if scheduled.is_err() {
            self.stages.undo(undo);
        }
        scheduled
    }

    /// Adds events, retrying with backoff (200 ms to 5 s) while the backend is unavailable (a shared
    /// timeline whose server restarts); `who` names the source in the log. Returns `false` when
    /// shutdown came first.
    pub async fn schedule_retrying(
        &self,
        events: Vec<Event>,
        who: &str,
        shutdown: &ShutdownSignal,
    ) -> Result<bool, PluginError> {
        // Staged once: the retries write the same events.
        let events = self.stages.apply(events, None);
        self.schedule_staged_retrying(events, who, shutdown).await
    }

    /// The stages, for [`crate::staging`].
    pub(crate) fn stages(&self) -> &Stages {
        &self.stages
    }

    /// [`Schedule::schedule_retrying`] for events that went through the stages already.
    pub(crate) async fn schedule_staged_retrying(
        &self,
        events: Vec<Event>,
        who: &str,
        shutdown: &ShutdownSignal,
    ) -> Result<bool, PluginError> {
        let mut events = events;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut announced = false;
        loop {
            match self.timeline.schedule_or_hand_back(events).await {
                Ok(()) => {
                    if announced {
                        tracing::info!("{who}: the timeline takes events again");
                    }
                    return Ok(true);
                }
                Err((TimelineError::Unavailable(why), refused)) => {
                    events = refused;
                    if !announced {
                        tracing::warn!("{who}: timeline unavailable, retrying: {why}");
                        announced = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        () = shutdown.wait() => return Ok(false),
                    }
                }
                Err((error, _)) => return Err(PluginError::fatal(format!("{who}: {error}"))),
            }
        }
    }
}

/// What a backend is opened with: the settings of the core that concern every backend.
#[derive(Clone, Debug)]
pub struct TimelineContext {
    /// CONSUME_FROM's cutoff: events due before it are skipped; `None` = publish everything.
    pub skip_before_ms: Option<i64>,
    /// CONSUME_FREQUENCY in seconds (a shared backend sizes its claim leases from it).
    pub consume_frequency: f64,
    /// This run's clock as its config sets it. A backend shared by several instances keeps one
    /// clock for all of them: it stores this one when none is stored and `generates`, and
    /// otherwise hands back the stored one in [`OpenedTimeline::clock`].
    pub clock: ClockOrigin,
    /// Whether the run has sources. Only such a run may set a shared clock; one without (a
    /// publish-only worker) waits for one.
    pub generates: bool,
}

/// An open backend.
pub struct OpenedTimeline {
    /// The timeline.
    pub timeline: Arc<dyn Timeline>,
    /// `Some(n)` when the backend applied CONSUME_FROM itself when it opened, skipping `n` events:
    /// the scheduler then publishes whatever it claims (on a shared timeline an event due before
    /// this instance started may just be one another instance has not reached yet).
    pub skipped_at_open: Option<u64>,
    /// The clock shared by every instance of the backend, which the run follows instead of its
    /// own; `None` for a backend that keeps none (the run uses its own clock).
    pub clock: Option<SharedClock>,
    /// What the instances sharing the backend tell each other for their verdicts (see
    /// [`crate::peers`]); `None` for a backend only this process uses.
    pub peers: Option<Arc<dyn Peers>>,
}

/// What a backend says about the clock it keeps, for `validate`.
#[derive(Clone, Debug, PartialEq)]
pub enum KeptClock {
    /// The backend keeps none: every run uses its own clock.
    NotShared,
    /// None is kept now: the next instance with sources sets it.
    NoneYet,
    /// The clock a run starting now adopts.
    Kept(SharedClock),
}

/// A clock kept by a shared timeline backend for every instance using it.
///
/// The first instance with sources stores its own clock; every instance that joins while it is
/// kept adopts it, whatever its own `speed` and `start`, so that an event is due at the same
/// moment for all of them. A virtual clock (`speed: max`) has no wall time to share: the backend
/// then also keeps how far the generating instances got (what [`Timeline::claim_due`] learns
/// from their `until_ms`) and hands no instance events beyond it.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedClock {
    /// Where this run starts on the clock (its wall origin on this host's wall clock); on a
    /// virtual clock, where its generators got.
    pub origin: ClockOrigin,
    /// The simulated instant the shared clock started at.
    pub started_ms: i64,
    /// Whether this run stored it (it was the first) rather than adopted it.
    pub set_here: bool,
    /// Where it is kept, for the log (`redis key "sim"`).
    pub kept_at: String,
}

/// A backend that opens asynchronously (it may have to wait for a server).
#[crate::async_trait]
pub trait TimelineBackend: Send {
    /// Opens the timeline; retries while the server is unreachable, until shutdown.
    async fn open(self: Box<Self>, cx: TimelineContext) -> Result<OpenedTimeline, PluginError>;

    /// The shared clock a run would adopt now, read without joining (`validate` shows it). The
    /// default is for backends that keep none.
    async fn peek_clock(&mut self) -> Result<KeptClock, PluginError> {
        Ok(KeptClock::NotShared)
    }
}

/// The typed config of a timeline backend (`timeline.backend: NAME`, its settings under
/// `timeline.NAME`); register it with `#[timeline_config]`.
pub trait TimelineConfig: PluginConfig {
    /// Checks the settings without side effects (`validate` runs this).
    fn check(&self) -> Result<(), PluginError> {
        Ok(())
    }
    /// Turns the config into a backend; must not connect anywhere (that is [`TimelineBackend::open`]).
    fn build(self) -> Result<Box<dyn TimelineBackend>, PluginError>;
}
