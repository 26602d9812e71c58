//! The other halves of the plugin API, for the program that hosts plugins: the customersim core,
//! and test harnesses that run a plugin on its own. A plugin is never handed any of these: it gets
//! a [`crate::Clock`] it can read but not move, a [`crate::ShutdownSignal`] it can listen to but
//! not fire, a [`crate::Schedule`] that adds events but cannot claim them.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

pub use crate::clock::ClockDriver;
pub use crate::presence::PresenceRecorder;
pub use crate::publisher::ImmediateBatch;

use crate::build::BuildContext;
use crate::focus::FocusStage;
use crate::publisher::Publisher;
use crate::shutdown::{EndRun, ShutdownSignal};
use crate::stages::Stages;
use crate::timeline::{Schedule, Timeline};
use crate::watermark::Watermark;

/// The run's shutdown: fired by the core on SIGINT/SIGTERM, at the end of a run, or when a plugin
/// asks through [`EndRun`].
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A shutdown that has not fired.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }
    /// Fires it.
    pub fn trigger(&self) {
        self.0.cancel();
    }
    /// Whether it fired.
    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }
    /// Resolves once it fires.
    pub async fn wait(&self) {
        self.0.cancelled().await;
    }
    /// The listening side, for plugins.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.0.clone())
    }
    /// The handle plugins use to end the run.
    pub fn end_run(&self) -> EndRun {
        EndRun(self.0.clone())
    }
}

/// A publisher for sources and the receiving end the core drains.
pub fn publisher(capacity: usize) -> (Publisher, mpsc::Receiver<ImmediateBatch>) {
    Publisher::channel(capacity)
}

/// A source's watermark at `initial_ms`; `progress` is notified whenever it moves.
pub fn watermark(initial_ms: i64, progress: Arc<Notify>) -> Watermark {
    Watermark::new(initial_ms, progress)
}

/// The schedule-only handle sources get to `timeline`, with no stage in between (test harnesses
/// that run a plugin on its own; a run gives each source [`staged_schedule`]).
pub fn schedule(timeline: Arc<dyn Timeline>) -> Schedule {
    Schedule::new(timeline, Stages::default())
}

/// One source's chain of stages: the focus stage when focus events are on.
pub fn stages(focus: Option<FocusStage>) -> Stages {
    Stages::new(focus)
}

/// The schedule-only handle one source gets to `timeline`: its events pass through `stages`.
pub fn staged_schedule(timeline: Arc<dyn Timeline>, stages: Stages) -> Schedule {
    Schedule::new(timeline, stages)
}

/// `publisher` for one source: its events pass through `stages` (the same chain as its
/// [`staged_schedule`], so moves published at once and scheduled ones count together).
pub fn staged_publisher(publisher: &Publisher, stages: Stages) -> Publisher {
    publisher.through(stages)
}

/// The presence table plugins asked for while they were built, if any.
pub fn presence_recorder(cx: &BuildContext) -> Option<PresenceRecorder> {
    cx.presence.clone()
}
