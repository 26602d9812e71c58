//! Running a source that generates simulated shoppers ahead of the clock: the loop shared by the
//! built-in shopper sources (`random_walk`, `shopping_trip`).
//!
//! The source's model is a synchronous [`Generate`] (a pure function of the seed, the config and
//! simulated time); [`run_ahead`] feeds it horizons, puts its events on the timeline in chunks,
//! advances the watermark that paces a virtual clock, and ends when the doors closed and the last
//! shopper left.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::context::SourceContext;
use crate::event::Event;
use crate::plugin::PluginError;
use crate::timeline::TimelineError;

/// Most events generated per timeline write, so a million shoppers never sit on the timeline at
/// once.
const CHUNK_EVENTS: usize = 4096;

/// A shopper model that generates its events in time order, up to a horizon at a time.
pub trait Generate: Send {
    /// Appends the events due before `horizon_ms` (at most `max` of them) to `out`, in time
    /// order, and returns the watermark: every event due before it has been generated.
    fn generate(&mut self, horizon_ms: i64, out: &mut Vec<Event>, max: usize) -> i64;
    /// Whether the doors closed and the last shopper left.
    fn is_finished(&self) -> bool;
    /// Arrivals waiting for a listed customer to leave.
    fn waiting_arrivals(&self) -> u64;
    /// How many shoppers came in so far.
    fn visits(&self) -> u64;
    /// The most shoppers inside at once so far.
    fn peak_inside(&self) -> usize;
}

/// Runs `generator` ahead of `cx`'s clock until it is finished or shutdown fires; `name` prefixes
/// the log lines.
pub async fn run_ahead(
    name: &str,
    mut generator: impl Generate,
    cx: SourceContext,
) -> Result<(), PluginError> {
    let origin = cx.clock.origin_ms();
    // How far ahead of the clock to generate: a virtual clock is fed in large steps; a real
    // clock only needs to stay about two wall seconds ahead of the scheduler.
    let lookahead_ms: i64 = match cx.clock.speed() {
        None => 60_000,
        Some(speed) => (2_000.0 * speed.max(1.0)) as i64,
    };
    let mut previous_watermark = origin;
    let mut announced_wait = false;
    loop {
        if cx.shutdown.is_triggered() {
            return Ok(());
        }
        let horizon = cx.clock.now_ms().max(previous_watermark) + lookahead_ms;
        let mut chunk = Vec::with_capacity(CHUNK_EVENTS);
        let watermark = generator.generate(horizon, &mut chunk, CHUNK_EVENTS);
        let chunk_was_full = chunk.len() >= CHUNK_EVENTS;
        if !chunk.is_empty() && !schedule(name, &cx, chunk).await? {
            return Ok(());
        }
        if generator.waiting_arrivals() > 0 && !announced_wait {
            tracing::warn!(
                "{name}: every listed customer is inside; arrivals wait for someone to leave"
            );
            announced_wait = true;
        }
        if generator.is_finished() {
            cx.watermark.finish();
            tracing::info!(
                "{name}: doors closed and the last shopper left; {} visits, at most {} shoppers inside at once",
                generator.visits(),
                generator.peak_inside()
            );
            return Ok(());
        }
        cx.watermark.advance(watermark);
        // Keep at most about two chunks ahead of the clock.
        let wake_at = if chunk_was_full {
            previous_watermark
        } else {
            watermark - lookahead_ms / 2
        };
        previous_watermark = watermark;
        tokio::select! {
            () = cx.clock.sleep_until(wake_at) => {}
            () = cx.shutdown.wait() => {}
        }
    }
}

/// Puts a chunk on the timeline, retrying with backoff while the backend is unavailable (a shared
/// timeline whose server restarts). Returns `false` when shutdown came first.
async fn schedule(name: &str, cx: &SourceContext, chunk: Vec<Event>) -> Result<bool, PluginError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut announced = false;
    loop {
        match cx.timeline.schedule(chunk.clone()).await {
            Ok(()) => {
                if announced {
                    tracing::info!("{name}: the timeline takes events again");
                }
                return Ok(true);
            }
            Err(TimelineError::Unavailable(why)) => {
                if !announced {
                    tracing::warn!("{name}: timeline unavailable, retrying: {why}");
                    announced = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    () = cx.shutdown.wait() => return Ok(false),
                }
            }
            Err(error) => return Err(PluginError::Fatal(format!("{name}: {error}"))),
        }
    }
}
