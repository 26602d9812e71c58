//! What watches the published stream beside the sinks: the run report's counts (`run --report`)
//! and who is inside (`GET /state`). They run in a task of their own, fed with the very batches
//! the sinks get (shared, not copied), so the scheduler's thread spends nothing per event on
//! them: on a machine with a core to spare, a run with a report publishes as fast as one
//! without. Batches reach them in the order the sinks get them; when the task falls behind by
//! [`QUEUE_BATCHES`], the scheduler waits for it (nothing is left out of the report).

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::batch::Batch;
use crate::plugin_api::host::PresenceRecorder;
use crate::report::Observer;

/// Batches the watchers may fall behind by before the scheduler waits for them.
const QUEUE_BATCHES: usize = 64;

/// The watchers' task and its queue.
pub struct Watchers {
    queue: mpsc::Sender<Batch>,
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
        let (queue, mut batches) = mpsc::channel::<Batch>(QUEUE_BATCHES);
        let task = tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                if let Some(presence) = &presence {
                    presence.apply(&batch);
                }
                if let Some(observer) = &observer {
                    observer.observe(&batch);
                }
            }
        });
        Some(Watchers { queue, task })
    }

    /// Hands them a batch the sinks get; waits while they are [`QUEUE_BATCHES`] behind.
    pub async fn watch(&self, batch: &Batch) {
        // The task ends only when this queue closes: a send cannot fail before `finish`.
        let _ = self.queue.send(batch.clone()).await;
    }

    /// Waits until they counted every batch handed to them.
    pub async fn finish(self) {
        drop(self.queue);
        if let Err(error) = self.task.await {
            tracing::error!("the run report's task failed: {error}");
        }
    }
}
