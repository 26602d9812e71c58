//! A generating source's sensor stage and timeline writes on a thread of their own.
//!
//! The sensor stage ([`crate::sensors`]) costs about what generating the events costs, and at
//! `--speed max` the source's thread is what the run waits for. With sensors on, [`Staging`]
//! puts each chunk through the focus stage where it was made (focus is derived from the true
//! moves) and hands it to a thread that puts it through the sensor stage and on the timeline,
//! then moves the watermark, while the source generates the next chunk: the two halves run on
//! two cores. The thread takes the chunks and watermarks in the order they were made, so the
//! stages see the same events in the same order (the same bytes), and the watermark never passes
//! an event not yet on the timeline. Without sensors nothing is handed over: a chunk is staged
//! and scheduled where it was made, which costs less than a hand-over.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::PluginError;
use crate::event::Event;
use crate::source::SourceContext;

/// Steps waiting for the staging thread: two chunks and their watermarks, so the source is at
/// most two chunks ahead of the timeline (its memory stays bounded; `run_ahead` keeps it within
/// three chunks of the clock besides).
const WAITING_STEPS: usize = 4;

/// What the source hands over, in order.
enum Step {
    /// Events to stage and schedule.
    Chunk(Vec<Event>),
    /// Every event due before this has been handed over: the watermark may move.
    Advance(i64),
}

/// The staging thread, when the source has stages (see the module's documentation).
struct Thread {
    steps: mpsc::Sender<Step>,
    /// `Ok(false)`: stopped by shutdown.
    done: JoinHandle<Result<bool, PluginError>>,
}

/// Where a generating source's chunks go: to the timeline at once, or through the staging thread.
pub(crate) struct Staging<'a> {
    cx: &'a SourceContext,
    name: &'a str,
    thread: Option<Thread>,
}

impl<'a> Staging<'a> {
    /// Starts the staging thread when `cx`'s schedule has stages; `name` names the source in the
    /// log.
    pub(crate) fn start(cx: &'a SourceContext, name: &'a str) -> Staging<'a> {
        let thread = cx.schedule.stages().has_sensors().then(|| {
            let (steps, mut waiting) = mpsc::channel(WAITING_STEPS);
            let (schedule, watermark, shutdown) = (
                cx.schedule.clone(),
                cx.watermark.clone(),
                cx.shutdown.clone(),
            );
            let who = name.to_owned();
            let runtime = tokio::runtime::Handle::current();
            let done = tokio::task::spawn_blocking(move || {
                while let Some(step) = waiting.blocking_recv() {
                    match step {
                        Step::Chunk(events) => {
                            let events = schedule.stages().apply_sensors(events);
                            let scheduled = runtime.block_on(
                                schedule.schedule_staged_retrying(events, &who, &shutdown),
                            );
                            if !scheduled? {
                                return Ok(false);
                            }
                        }
                        Step::Advance(at_ms) => watermark.advance(at_ms),
                    }
                }
                Ok(true)
            });
            Thread { steps, done }
        });
        Staging { cx, name, thread }
    }

    /// Stages and schedules `events` (on the thread, later); `Ok(false)` when shutdown came first.
    pub(crate) async fn schedule(&mut self, events: Vec<Event>) -> Result<bool, PluginError> {
        match &self.thread {
            None => {
                self.cx
                    .schedule
                    .schedule_retrying(events, self.name, &self.cx.shutdown)
                    .await
            }
            Some(_) => {
                let events = self.cx.schedule.stages().apply_focus(events);
                self.hand_over(Step::Chunk(events)).await
            }
        }
    }

    /// Moves the watermark to `at_ms` once everything handed over before is on the timeline.
    pub(crate) async fn advance(&mut self, at_ms: i64) -> Result<bool, PluginError> {
        match &self.thread {
            None => {
                self.cx.watermark.advance(at_ms);
                Ok(true)
            }
            Some(_) => self.hand_over(Step::Advance(at_ms)).await,
        }
    }

    /// Waits until everything handed over is on the timeline; `Ok(false)` when shutdown came
    /// first.
    pub(crate) async fn finish(mut self) -> Result<bool, PluginError> {
        match self.thread.take() {
            None => Ok(true),
            Some(Thread { steps, done }) => {
                drop(steps);
                joined(done).await
            }
        }
    }

    /// Queues a step for the thread; `Ok(false)` or the thread's error once it stopped.
    async fn hand_over(&mut self, step: Step) -> Result<bool, PluginError> {
        if let Some(thread) = &self.thread
            && thread.steps.send(step).await.is_ok()
        {
            return Ok(true);
        }
        // The thread stopped: shutdown, or the timeline failed.
        match self.thread.take() {
            Some(Thread { done, .. }) => joined(done).await,
            None => Ok(false),
        }
    }
}

async fn joined(done: JoinHandle<Result<bool, PluginError>>) -> Result<bool, PluginError> {
    done.await
        .map_err(|error| PluginError::fatal(format!("the staging thread failed: {error}")))?
}
