//! The `memory` timeline backend (the default): future events wait in this process, ordered by
//! (due time, customer, insertion order), and are lost when it stops. Use a
//! shared backend (`redis`) to keep them across restarts or split publishing between instances.
//!
//! ```yaml
//! timeline:
//!   backend: memory   # no settings
//! ```

mod timeline;

use std::sync::Arc;

use customersim_plugin_api::{
    OpenedTimeline, PluginConfig, PluginError, TimelineBackend, TimelineConfig, TimelineContext,
    async_trait, timeline_config,
};

pub use timeline::MemoryTimeline;

/// Settings of the `memory` backend: there are none.
#[timeline_config]
#[derive(Clone, Debug, Default)]
pub struct MemoryConfig {}

impl PluginConfig for MemoryConfig {
    const NAME: &'static str = "memory";
    const DESCRIPTION: &'static str = "events wait in this process; lost when it stops (default)";
}

impl TimelineConfig for MemoryConfig {
    fn build(self) -> Result<Box<dyn TimelineBackend>, PluginError> {
        Ok(Box::new(MemoryBackend))
    }
}

/// Opens an empty in-process timeline.
struct MemoryBackend;

#[async_trait]
impl TimelineBackend for MemoryBackend {
    async fn open(self: Box<Self>, _cx: TimelineContext) -> Result<OpenedTimeline, PluginError> {
        Ok(OpenedTimeline {
            timeline: Arc::new(MemoryTimeline::default()),
            skipped_at_open: None,
            clock: None,
            peers: None,
        })
    }
}
