//! The scheduler: takes due events off the timeline and hands them to the sinks.
//!
//! With a real (or scaled) clock it polls every CONSUME_FREQUENCY wall seconds and takes at most
//! CONSUME_BATCH_SIZE events per poll; with CONSUME_FREQUENCY 0 it wakes exactly when the next
//! event is due. Both are throttles only when set: unset, it wakes when the next event is due and
//! takes everything due, so it keeps up with whatever the sources generate. With a virtual clock (`speed: max`) it never sleeps: it moves the clock to the
//! events it publishes, but never past the lowest watermark of the generating sources, so it
//! cannot overtake them. Events due before CONSUME_FROM are skipped and counted.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::batch::{Batch, BatchPool};
use crate::fanout::{SinkStopped, Sinks};
use crate::metrics::CoreMetrics;
use crate::plugin_api::host::{ClockDriver, ImmediateBatch, Shutdown};
use crate::plugin_api::{Backoff, Clock, Event, PluginError, Timeline, TimelineError, Watermark};
use crate::wake::PreciseTimer;
use crate::watch::Watchers;

/// Most events a virtual clock takes per timeline claim (throttling makes no sense there).
const VIRTUAL_CHUNK: usize = 8192;

/// How the timeline is consumed: CONSUME_FREQUENCY, CONSUME_BATCH_SIZE and CONSUME_FROM (the
/// book's *Timeline and scheduler* section, Concepts chapter).
#[derive(Clone, Debug)]
pub struct ConsumeSettings {
    /// Wall seconds between polls; 0 = wake when the next event is due.
    pub frequency: f64,
    /// Most events per poll; `None` = everything due (taken in claims of [`VIRTUAL_CHUNK`]).
    pub batch_size: Option<usize>,
    /// Events due before this are skipped (CONSUME_FROM); `None` = publish everything.
    pub skip_before_ms: Option<i64>,
    /// How CONSUME_FROM was given, for messages.
    pub consume_from: String,
    /// Simulated ms of lag past which the "falling behind" warning fires.
    pub lag_warning_ms: i64,
    /// When the doors close (`simulation.duration`).
    pub doors_close_ms: Option<i64>,
}

/// How a source task ended.
pub type SourceOutcome = (String, Result<(), PluginError>);

/// What a run did, logged at the end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub published: u64,
    pub skipped: u64,
    /// Events still on the timeline when the run stopped (after a signal).
    pub left_on_timeline: u64,
}

/// Everything the scheduler drives.
pub struct Scheduler {
    /// Reads the run's clock.
    pub clock: Clock,
    /// Moves a virtual clock to the events it publishes.
    pub clock_driver: ClockDriver,
    pub timeline: Arc<dyn Timeline>,
    /// Where due events go (each sink fed from its own queue).
    pub sinks: Sinks,
    pub settings: ConsumeSettings,
    /// Watermarks of the sources that pace the clock.
    pub watermarks: Vec<Watermark>,
    /// Notified when a watermark moves.
    pub progress: Arc<Notify>,
    pub immediate: mpsc::Receiver<ImmediateBatch>,
    pub source_outcomes: mpsc::UnboundedReceiver<SourceOutcome>,
    pub sources_running: usize,
    /// The run report's counts and who is inside, when asked for: fed every batch handed to the
    /// sinks, in a task of their own.
    pub watchers: Option<Watchers>,
    pub metrics: CoreMetrics,
    pub shutdown: Shutdown,
    /// The buffers claims are taken into and handed to the sinks in, reused.
    pub buffers: BatchPool,
}

impl Scheduler {
    /// Runs until the sources are done and the timeline is drained, or until shutdown. The sinks
    /// come back either way, so they are always flushed and closed.
    #[allow(clippy::result_large_err)]
    pub async fn run(mut self) -> Result<(Sinks, RunReport), (Sinks, PluginError)> {
        let mut report = RunReport::default();
        let outcome = self.schedule(&mut report).await;
        if let Some(watchers) = self.watchers.take() {
            watchers.finish().await;
        }
        report.left_on_timeline = self.timeline.len().await.unwrap_or(0);
        match outcome {
            Ok(()) => Ok((self.sinks, report)),
            Err(error) => Err((self.sinks, error)),
        }
    }

    async fn schedule(&mut self, report: &mut RunReport) -> Result<(), PluginError> {
        let scheduled = self.timeline.scheduled();
        let virtual_clock = self.clock.is_virtual();
        // The config bounds the frequency; a value no timer holds still never panics here.
        let frequency = Duration::try_from_secs_f64(self.settings.frequency)
            .unwrap_or(Duration::from_secs(3600));
        let polling = !virtual_clock && !frequency.is_zero();
        let unlimited = self.settings.batch_size.is_none();
        let claim_max = match self.settings.batch_size {
            Some(batch) if !virtual_clock => batch,
            batch => batch.unwrap_or(0).max(VIRTUAL_CHUNK),
        };
        // Set while a poll without a batch limit found a full claim: claim again at once.
        let mut draining = false;
        let had_sources = self.sources_running > 0;
        // Waking exactly when the next event is due: finer than tokio's 1 ms timers.
        let timer = (!virtual_clock && !polling).then(PreciseTimer::start);
        let mut next_poll = Instant::now();
        let mut behind = false;
        // Set while the timeline backend is unreachable: how long to wait before the next try.
        let mut outage: Option<Backoff> = None;
        let mut depth_updated = Instant::now() - Duration::from_secs(10);
        loop {
            if self.shutdown.is_triggered() {
                break;
            }
            while let Ok(batch) = self.immediate.try_recv() {
                self.deliver_immediate(batch, report).await?;
            }
            while let Ok(outcome) = self.source_outcomes.try_recv() {
                self.source_finished(outcome)?;
            }
            let watermark = self.low_watermark();
            let mut took = 0;
            if !polling || draining || Instant::now() >= next_poll {
                let until = if virtual_clock {
                    watermark.saturating_sub(1)
                } else {
                    self.clock.now_ms().min(watermark.saturating_sub(1))
                };
                let mut events = self.buffers.buffer();
                match self
                    .timeline
                    .claim_due_into(until, claim_max, &mut events)
                    .await
                {
                    Ok(lease) => {
                        if outage.take().is_some() {
                            tracing::info!("timeline backend reachable again");
                        }
                        took = events.len();
                        if let Some(last) = events.last() {
                            self.clock_driver.advance_to(last.due_ms);
                        }
                        self.deliver(events, lease, report).await?;
                    }
                    Err(error) => {
                        self.backend_trouble(error, &mut outage).await?;
                        continue;
                    }
                }
                if polling && !draining {
                    next_poll = (next_poll + frequency).max(Instant::now() - frequency);
                }
                draining = polling && unlimited && took == claim_max;
                if !virtual_clock {
                    behind = self.check_lag(took == claim_max, behind).await;
                }
            }
            if depth_updated.elapsed() >= Duration::from_secs(1) {
                if let Ok(depth) = self.timeline.len().await {
                    self.metrics.timeline_depth.set(depth as i64);
                }
                depth_updated = Instant::now();
            }
            if took > 0 && (!polling || draining) {
                continue;
            }
            let doors_closed = self
                .settings
                .doors_close_ms
                .is_some_and(|close| self.clock.now_ms() >= close);
            let sources_done = self.sources_running == 0 || (doors_closed && watermark == i64::MAX);
            if had_sources
                && sources_done
                && self.immediate.is_empty()
                && self.timeline.pending_here().await.unwrap_or(1) == 0
            {
                break;
            }
            if virtual_clock {
                if watermark != i64::MAX {
                    self.clock_driver.advance_to(watermark);
                } else if let Some(close) = self.settings.doors_close_ms
                    && self.timeline.len().await.unwrap_or(1) == 0
                {
                    // Nothing generates simulated time and nothing is due: time flies to the
                    // closing of the doors, so sources driven from outside stop too.
                    self.clock_driver.advance_to(close);
                }
            }
            let deadline = self.next_wake(polling, next_poll, watermark).await;
            tokio::select! {
                Some(batch) = self.immediate.recv() => self.deliver_immediate(batch, report).await?,
                Some(outcome) = self.source_outcomes.recv() => self.source_finished(outcome)?,
                () = self.progress.notified() => {}
                () = scheduled.notified(), if !polling => {}
                () = wake_at(timer.as_ref(), deadline) => {}
                () = self.shutdown.wait() => break,
            }
        }
        Ok(())
    }

    /// The lowest watermark of the pacing sources (`i64::MAX` when none holds the clock back).
    fn low_watermark(&self) -> i64 {
        self.watermarks
            .iter()
            .map(Watermark::reached_ms)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// When to look at the timeline again if nothing else happens.
    async fn next_wake(
        &self,
        polling: bool,
        next_poll: Instant,
        watermark: i64,
    ) -> Option<Instant> {
        if self.clock.is_virtual() {
            return None;
        }
        let close = self
            .settings
            .doors_close_ms
            .filter(|close| *close > self.clock.now_ms());
        let due = if polling {
            Some(next_poll)
        } else {
            match self.timeline.next_due().await {
                Ok(Some(due)) if due < watermark => self.clock.wall_deadline(due),
                Ok(_) => None,
                Err(_) => Some(Instant::now() + Duration::from_secs(1)),
            }
        };
        let close = close.and_then(|close| self.clock.wall_deadline(close));
        match (due, close) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn source_finished(&mut self, (name, outcome): SourceOutcome) -> Result<(), PluginError> {
        self.sources_running -= 1;
        match outcome {
            Ok(()) => {
                tracing::debug!("source {name} finished");
                Ok(())
            }
            Err(error) => Err(error.within(format!("source {name}"))),
        }
    }

    /// Hands claimed events to the sinks. A leased claim is acknowledged once every sink
    /// published it (in a task of its own, so the scheduler goes on meanwhile): an instance that
    /// dies before then leaves the lease to expire, and another instance publishes the events.
    async fn deliver(
        &mut self,
        mut events: Vec<Event>,
        lease: Option<String>,
        report: &mut RunReport,
    ) -> Result<(), PluginError> {
        if let Some(skip_before) = self.settings.skip_before_ms {
            let before = events.len();
            events.retain(|event| event.due_ms >= skip_before);
            let skipped = (before - events.len()) as u64;
            if skipped > 0 {
                if report.skipped == 0 {
                    tracing::info!(
                        "skipping events due before {} (CONSUME_FROM={}); they are counted in events_skipped",
                        format_ms(skip_before),
                        self.settings.consume_from
                    );
                }
                report.skipped += skipped;
                self.metrics.skipped.inc_by(skipped);
            }
        }
        report.published += events.len() as u64;
        self.metrics.handed_over.inc_by(events.len() as u64);
        let receipt = if events.is_empty() {
            self.buffers.give_back(events);
            None
        } else {
            let batch = self.buffers.batch(events);
            if let Some(watchers) = &self.watchers {
                watchers.watch(&batch).await;
            }
            self.sinks
                .deliver(batch, lease.is_some())
                .await
                .map_err(stopped)?
        };
        if let Some(lease) = lease {
            let timeline = self.timeline.clone();
            tokio::spawn(async move {
                if let Some(receipt) = receipt
                    && receipt.wait().await.is_err()
                {
                    // A sink failed: the run ends with its error; the lease expires and another
                    // instance publishes the events.
                    return;
                }
                if let Err(error) = timeline.acknowledge(&lease).await {
                    tracing::warn!(
                        "could not acknowledge claimed events (they may be published again): {error}"
                    );
                }
                // The run may be waiting for its last events to be acknowledged.
                timeline.scheduled().notify_one();
            });
        }
        Ok(())
    }

    async fn deliver_immediate(
        &mut self,
        ImmediateBatch { events, done }: ImmediateBatch,
        report: &mut RunReport,
    ) -> Result<(), PluginError> {
        report.published += events.len() as u64;
        self.metrics.handed_over.inc_by(events.len() as u64);
        let batch = Batch::from(events);
        if let Some(watchers) = &self.watchers {
            watchers.watch(&batch).await;
        }
        self.sinks.deliver_now(batch, done).await.map_err(stopped)
    }

    /// Logs the first failure of an outage and waits before the next try, backing off from
    /// 200 ms to 5 s.
    async fn backend_trouble(
        &self,
        error: TimelineError,
        outage: &mut Option<Backoff>,
    ) -> Result<(), PluginError> {
        match error {
            TimelineError::Unavailable(why) => {
                if outage.is_none() {
                    tracing::warn!("timeline backend unavailable, retrying: {why}");
                }
                let delay = outage
                    .get_or_insert_with(|| {
                        Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
                    })
                    .next_delay();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = self.shutdown.wait() => {}
                }
                Ok(())
            }
            TimelineError::Invalid(why) => Err(PluginError::Fatal(format!("timeline: {why}"))),
        }
    }

    /// Warns once when the timeline falls behind the clock; returns whether it is behind.
    async fn check_lag(&self, batch_was_full: bool, behind: bool) -> bool {
        if !batch_was_full {
            return false;
        }
        let Ok(Some(oldest)) = self.timeline.next_due().await else {
            return false;
        };
        let lag_ms = self.clock.now_ms() - oldest;
        if lag_ms > self.settings.lag_warning_ms && !behind {
            tracing::warn!(
                "the timeline is falling behind the clock by {:.1} s: raise CONSUME_BATCH_SIZE (now {}) or lower CONSUME_FREQUENCY (now {})",
                lag_ms as f64 / 1000.0,
                self.settings
                    .batch_size
                    .map_or("unset".to_string(), |batch| batch.to_string()),
                self.settings.frequency
            );
            return true;
        }
        behind || lag_ms > self.settings.lag_warning_ms
    }
}

/// A sink's task ended early; the run stops and [`Sinks::finish`] reports why.
fn stopped(SinkStopped(name): SinkStopped) -> PluginError {
    PluginError::fatal(format!("sink {name} stopped taking events"))
}

/// Waits until `deadline` (forever without one), with the precise timer when there is one.
async fn wake_at(timer: Option<&PreciseTimer>, deadline: Option<Instant>) {
    match (timer, deadline) {
        (Some(timer), Some(deadline)) => timer.sleep_until(deadline).await,
        (_, deadline) => sleep_until(deadline).await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// An instant in ms as RFC 3339, for messages.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339())
        .unwrap_or_else(|| ms.to_string())
}
