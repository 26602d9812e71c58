//! Timeline backends: where future events wait until they are due.
//!
//! - [`MemoryTimeline`]: in this process, lost when it stops.
//! - [`RedisTimeline`]: in Redis, shared by several instances, kept across restarts.

mod memory;
mod redis;

use std::sync::Arc;

pub use memory::MemoryTimeline;
pub use redis::{ClaimStats, RedisTimeline};

use crate::config::{TimelineBackend, TimelineConfig};
use crate::plugin_api::Timeline;

/// An open timeline.
pub struct Opened {
    pub timeline: Arc<dyn Timeline>,
    /// `Some(n)` when the backend applied CONSUME_FROM itself when it opened, skipping `n`
    /// events: the scheduler then publishes whatever it claims (on a shared timeline an event
    /// due before this instance started may just be one another instance has not reached yet).
    pub skipped_at_open: Option<u64>,
    /// Claim counters of a shared backend.
    pub claim_stats: Option<Arc<ClaimStats>>,
}

/// Opens the configured backend; `skip_before_ms` is CONSUME_FROM's cutoff.
pub async fn open(config: &TimelineConfig, skip_before_ms: Option<i64>) -> Result<Opened, String> {
    match config.backend {
        TimelineBackend::Memory => Ok(Opened {
            timeline: Arc::new(MemoryTimeline::default()),
            skipped_at_open: None,
            claim_stats: None,
        }),
        TimelineBackend::Redis => {
            let (timeline, skipped) =
                RedisTimeline::open(&config.redis, config.consume_frequency, skip_before_ms)
                    .await?;
            let claim_stats = Some(timeline.stats.clone());
            Ok(Opened {
                timeline: Arc::new(timeline),
                skipped_at_open: Some(skipped),
                claim_stats,
            })
        }
    }
}
