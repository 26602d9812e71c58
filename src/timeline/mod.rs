//! Timeline backends: where future events wait until they are due.

mod memory;

use std::sync::Arc;

pub use memory::MemoryTimeline;

use crate::config::{TimelineBackend, TimelineConfig};
use crate::plugin_api::Timeline;

/// Opens the configured backend.
pub async fn open(config: &TimelineConfig) -> Result<Arc<dyn Timeline>, String> {
    match config.backend {
        TimelineBackend::Memory => Ok(Arc::new(MemoryTimeline::default())),
    }
}
