//! What watches the published stream beside the sinks: the run report's counts (`run --report`)
//! and who is inside (`GET /state`). They run in a task of their own, fed with the very batches
//! the sinks get (shared, not copied), so the scheduler's thread spends nothing per event on
//! them: on a machine with a core to spare, a run with a report publishes as fast as one
//! without. Batches reach them in the order the sinks get them; when the task falls behind by
//! [`QUEUE_BATCHES`] or [`QUEUE_EVENTS`], the scheduler waits for it (nothing is left out of the
//! report).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::batch::Batch;
use crate::plugin_api::host::PresenceRecorder;
use crate::report::Observer;

/// Batches the watchers may fall behind by before the scheduler waits for them.
const QUEUE_BATCHES: usize = 64;

/// Events the watchers may fall behind by (the batches they hold stay in memory after the sinks
/// are done with them): about 6 MB. At `--speed max` batches are full, and 64 of them held a
/// million events.
const QUEUE_EVENTS: usize = 65_536;

/// The watchers' task and its queue.
pub struct Watchers {
    queue: mpsc::Sender<(Batch, OwnedSemaphorePermit)>,
    /// One permit per event queued (a batch larger than the bound takes them all).
    room: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl Watchers {
    /// Starts the task for whichever of the two is asked for; `None` when neither is.
    pub fn start(
        observer: Option<Observer>,
        presence: Option<PresenceRecorder>,
    ) -> Option<Watchers> {
        if observer.is_none() && presence.is_none() {
            return None;
        }
        let (queue, mut batches) = mpsc::channel::<(Batch, OwnedSemaphorePermit)>(QUEUE_BATCHES);
        let task = tokio::spawn(async move {
            while let Some((batch, _room)) = batches.recv().await {
                if let Some(presence) = &presence {
                    presence.apply(&batch);
                }
                if let Some(observer) = &observer {
                    observer.observe(&batch);
                }
            }
        });
        Some(Watchers {
            queue,
            room: Arc::new(Semaphore::new(QUEUE_EVENTS)),
            task,
        })
    }

    /// Hands them a batch the sinks get; waits while they are [`QUEUE_BATCHES`] or
    /// [`QUEUE_EVENTS`] behind.
    pub async fn watch(&self, batch: &Batch) {
        let events = batch.len().clamp(1, QUEUE_EVENTS) as u32;
        // Neither the semaphore nor the queue closes before `finish`: these cannot fail.
        let Ok(room) = self.room.clone().acquire_many_owned(events).await else {
            return;
        };
        let _ = self.queue.send((batch.clone(), room)).await;
    }

    /// Waits until they counted every batch handed to them.
    pub async fn finish(self) {
        drop(self.queue);
        if let Err(error) = self.task.await {
            tracing::error!("the run report's task failed: {error}");
        }
    }
}
