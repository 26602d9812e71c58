//! Publishing at once, bypassing the timeline (the `/produce_*` endpoints of http_ingress).

use tokio::sync::{mpsc, oneshot};

use crate::error::PluginError;
use crate::event::Event;
use crate::stages::{Stages, StagesUndo};

/// Sends events to the sinks now; the answer comes once every sink took them. Events pass through
/// the source's [`Stages`] (focus) first, as scheduled ones do.
#[derive(Clone, Debug)]
pub struct Publisher {
    sender: mpsc::Sender<ImmediateBatch>,
    stages: Stages,
}

/// A batch for immediate publication and where to report that the sinks took it.
#[derive(Debug)]
pub struct ImmediateBatch {
    /// The events, published in this order.
    pub events: Vec<Event>,
    /// Answered once every sink took the batch, or with the reason one did not.
    pub done: oneshot::Sender<Result<(), String>>,
}

impl Publisher {
    /// A publisher and the receiving end the core drains (see [`crate::host`]).
    pub(crate) fn channel(capacity: usize) -> (Publisher, mpsc::Receiver<ImmediateBatch>) {
        let (sender, receiver) = mpsc::channel(capacity);
        let stages = Stages::default();
        (Publisher { sender, stages }, receiver)
    }

    /// This publisher, its events passing through `stages` (one source's).
    pub(crate) fn through(&self, stages: Stages) -> Publisher {
        Publisher {
            sender: self.sender.clone(),
            stages,
        }
    }

    /// Publishes `events` now; returns once every sink took them. Refused, the stages forget what
    /// these events taught them.
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), PluginError> {
        let mut undo = StagesUndo::default();
        let events = self.stages.apply(events, Some(&mut undo));
        let published = self.send(events).await;
        if published.is_err() {
            self.stages.undo(undo);
        }
        published
    }

    async fn send(&self, events: Vec<Event>) -> Result<(), PluginError> {
        let gone = || PluginError::fatal("the publisher is shut down");
        let (done, answer) = oneshot::channel();
        self.sender
            .send(ImmediateBatch { events, done })
            .await
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(PluginError::Fatal)
    }
}
