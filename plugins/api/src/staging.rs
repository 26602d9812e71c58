//! A generating source's stages and timeline writes on a thread of their own.
//!
//! At `--speed max` the source's thread is what the run waits for, and the stages cost much of
//! what generating the events does: the focus stage about half as much (a lookup per report in
//! memory that no cache holds), the sensor stage about as much. With stages, [`Staging`] hands
//! each chunk to a thread that puts it through them and on the timeline, then moves the
//! watermark, while the source generates the next chunk: the two halves run on two cores. With
//! sensors on, the focus stage stays where the chunk was made (the sensor stage is the heavier
//! half). The thread takes the chunks and watermarks in the order they were made, so the stages
//! see the same events in the same order (the same bytes), and the watermark never passes an
//! event not yet on the timeline. Without stages nothing is handed over: a chunk is scheduled
//! where it was made, which costs less than a hand-over.

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
    /// Whether the focus stage runs on the source's thread (with sensors) or on the staging one.
    focus_here: bool,
}

impl<'a> Staging<'a> {
    /// Starts the staging thread when `cx`'s schedule has stages; `name` names the source in the
    /// log.
    pub(crate) fn start(cx: &'a SourceContext, name: &'a str) -> Staging<'a> {
        let focus_here = cx.schedule.stages().has_sensors();
        let thread = (!cx.schedule.stages().is_empty()).then(|| {
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
                            let stages = schedule.stages();
                            let events = if focus_here {
                                events
                            } else {
                                stages.apply_focus(events)
                            };
                            let events = stages.apply_sensors(events);
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
        Staging {
            cx,
            name,
            thread,
            focus_here,
        }
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
            Some(_) if self.focus_here => {
                let events = self.cx.schedule.stages().apply_focus(events);
                self.hand_over(Step::Chunk(events)).await
            }
            Some(_) => self.hand_over(Step::Chunk(events)).await,
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
