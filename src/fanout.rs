//! Feeding the sinks: each sink has its own bounded queue and its own task, so a slow sink slows
//! only itself until its queue is full. Then the scheduler waits for it (back-pressure, nothing
//! lost), or, for a sink that declares itself lossy (a live view), the batch is dropped for that
//! sink alone and counted. Each sink's task also records how late the events it accepted were
//! ([`crate::lateness`]) and, for the sink whose broker the verdict reads back, hands each batch
//! it published to the verdict task ([`crate::verdict`]). A run ends when every sink has flushed and closed; `close` runs even
//! after a failed publish.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::batch::Batch;
use crate::lateness::{LatenessHistogram, LatenessRecorder};
use crate::metrics::{CoreMetrics, SinkCounters};
use crate::plugin_api::clock::unix_now_us;
use crate::plugin_api::{Clock, PluginError, Sink, SinkContext, Topics};
use crate::verdict::Published;

/// Batches a sink's queue holds before the scheduler waits for it (or drops, for a lossy sink).
const QUEUE_BATCHES: usize = 16;

/// What a sink task is handed: a time-ordered batch, and where to say that this sink published
/// it (for immediate batches, whose sender waits for that, and for leased claims, which are
/// acknowledged only once every sink published them).
struct Delivery {
    events: Batch,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Tells when every reliable sink published a batch.
pub struct Receipt(Vec<(String, oneshot::Receiver<Result<(), String>>)>);

impl Receipt {
    /// Waits until every sink published the batch; the first failure wins.
    pub async fn wait(self) -> Result<(), String> {
        for (name, answer) in self.0 {
            answer
                .await
                .unwrap_or_else(|_| Err("stopped".to_string()))
                .map_err(|why| format!("sink {name}: {why}"))?;
        }
        Ok(())
    }
}

/// The queue of one sink.
struct Feed {
    name: String,
    queue: mpsc::Sender<Delivery>,
    lossy: bool,
    counters: SinkCounters,
}

/// Every sink of the pipeline, each running in its own task.
pub struct Sinks {
    feeds: Vec<Feed>,
    tasks: Vec<(String, JoinHandle<Result<(), PluginError>>)>,
}

/// A sink stopped taking batches: its task failed (the error comes from [`Sinks::finish`]).
#[derive(Debug)]
pub struct SinkStopped(pub String);

impl Sinks {
    /// Starts every sink (connects: permanent errors such as refused credentials fail here) and
    /// its task. Sinks started before one that fails are closed again. Lateness is measured
    /// against `clock`.
    pub async fn start(
        sinks: Vec<(String, Box<dyn Sink>)>,
        cx: &SinkContext,
        metrics: &CoreMetrics,
        topics: &Topics,
        clock: &Clock,
        mut verdict: Option<(usize, mpsc::Sender<Published>)>,
    ) -> Result<Sinks, PluginError> {
        let mut started = Sinks {
            feeds: Vec::new(),
            tasks: Vec::new(),
        };
        for (index, (name, mut sink)) in sinks.into_iter().enumerate() {
            if let Err(error) = sink.start(cx).await {
                let _ = sink.close().await;
                let _ = started.finish().await;
                return Err(error.within(format!("sink {name}")));
            }
            let counters = metrics.for_sink(&name, topics);
            let (queue, receiver) = mpsc::channel(QUEUE_BATCHES);
            started.feeds.push(Feed {
                name: name.clone(),
                queue,
                lossy: sink.lossy(),
                counters: counters.clone(),
            });
            let lateness = LatenessRecorder::new(clock.clone(), counters.lateness.clone());
            let published = verdict
                .take_if(|(sink, _)| *sink == index)
                .map(|(_, published)| published);
            let task = tokio::spawn(feed(sink, receiver, counters, lateness, published));
            started.tasks.push((name, task));
        }
        Ok(started)
    }

    /// Hands a time-ordered batch to every sink's queue; waits while a reliable sink's queue is
    /// full. With `receipt`, also returns what tells when every reliable sink published it (a
    /// lossy sink is never waited for).
    pub async fn deliver(
        &self,
        events: Batch,
        receipt: bool,
    ) -> Result<Option<Receipt>, SinkStopped> {
        let mut answers = Vec::new();
        for feed in &self.feeds {
            if feed.lossy {
                let delivery = Delivery {
                    events: events.clone(),
                    done: None,
                };
                match feed.queue.try_send(delivery) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        feed.counters.dropped.inc_by(events.len() as u64);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Err(SinkStopped(feed.name.clone()));
                    }
                }
                continue;
            }
            let done = receipt.then(|| {
                let (done, answer) = oneshot::channel();
                answers.push((feed.name.clone(), answer));
                done
            });
            let delivery = Delivery {
                events: events.clone(),
                done,
            };
            if feed.queue.send(delivery).await.is_err() {
                return Err(SinkStopped(feed.name.clone()));
            }
        }
        Ok(receipt.then_some(Receipt(answers)))
    }

    /// Hands an immediate batch to every sink; its answer comes once every sink published it
    /// (in a task of its own, so the scheduler does not wait for the answer).
    pub async fn deliver_now(
        &self,
        events: Batch,
        done: oneshot::Sender<Result<(), String>>,
    ) -> Result<(), SinkStopped> {
        let receipt = self.deliver(events, true).await;
        match receipt {
            Ok(Some(receipt)) => {
                tokio::spawn(async move {
                    let _ = done.send(receipt.wait().await);
                });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(SinkStopped(name)) => {
                let _ = done.send(Err(format!("sink {name} stopped")));
                Err(SinkStopped(name))
            }
        }
    }

    /// The lateness histogram of each sink, for the run report.
    pub fn lateness(&self) -> Vec<LatenessHistogram> {
        self.feeds
            .iter()
            .map(|feed| feed.counters.lateness.clone())
            .collect()
    }

    /// Lets every sink work off its queue, flush and close; the first error wins.
    pub async fn finish(self) -> Result<(), PluginError> {
        drop(self.feeds);
        let mut outcome = Ok(());
        for (name, task) in self.tasks {
            let result = task.await.unwrap_or_else(|panic| {
                Err(PluginError::fatal(format!(
                    "the sink task panicked: {panic}"
                )))
            });
            if let Err(error) = result {
                tracing::error!("sink {name}: {error}");
                if outcome.is_ok() {
                    outcome = Err(error.within(format!("sink {name}")));
                }
            }
        }
        outcome
    }
}

/// One sink's task: publish what its queue brings (recording how late each accepted batch was),
/// then flush and close (close always runs).
async fn feed(
    mut sink: Box<dyn Sink>,
    mut queue: mpsc::Receiver<Delivery>,
    counters: SinkCounters,
    lateness: LatenessRecorder,
    verdict: Option<mpsc::Sender<Published>>,
) -> Result<(), PluginError> {
    let mut outcome = Ok(());
    while let Some(Delivery { events, done }) = queue.recv().await {
        let result = sink.publish(&events).await;
        match &result {
            Ok(()) => {
                lateness.accepted(&events);
                counters.count(&events);
                if let Some(verdict) = &verdict {
                    // Waits while the verdict task is behind: what it judges is never dropped.
                    let _ = verdict.send((events.clone(), unix_now_us())).await;
                }
            }
            Err(_) => {
                counters.errors.inc();
            }
        }
        if let Some(done) = done {
            let _ = done.send(result.as_ref().map_err(ToString::to_string).copied());
        }
        if let Err(error) = result {
            outcome = Err(error);
            break;
        }
    }
    // Whatever is still queued after a failure is not published; the error ends the run.
    queue.close();
    if outcome.is_ok() {
        outcome = sink.flush().await;
    }
    let closed = sink.close().await;
    outcome.and(closed)
}
