//! Publishing at once, bypassing the timeline (the `/produce_*` endpoints of http_ingress).

use tokio::sync::{mpsc, oneshot};

use crate::error::PluginError;
use crate::event::Event;

/// Sends events to the sinks now; the answer comes once every sink took them.
#[derive(Clone, Debug)]
pub struct Publisher {
    sender: mpsc::Sender<ImmediateBatch>,
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
        (Publisher { sender }, receiver)
    }

    /// Publishes `events` now; returns once every sink took them.
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), PluginError> {
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
