//! Test plugins for running a whole pipeline inside the test process: a `record` sink that keeps
//! every batch it is handed, with the instant of the runtime's (paused) clock it arrived at, and a
//! `script` source that schedules events at offsets the test chooses.
//!
//! Both are registered in this test binary only (`#[sink_config]` / `#[source_config]` submit to
//! `inventory` here), so the pipeline builds them from YAML like any built-in plugin. A sink
//! built by the pipeline cannot be handed back to the test, so what it records goes to a global
//! table under the `key` its config names; every test uses keys of its own, so tests running in
//! parallel never see each other's records.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use customersim::config::{Flags, ResolvedPipeline, resolve_text};
use customersim::env::Environment;
use customersim::plugin_api::{
    BuildContext, CustomerId, Event, EventKind, PluginConfig, PluginError, Sink, SinkConfig,
    Source, SourceConfig, SourceContext, async_trait, sink_config, source_config,
};
use tokio::time::Instant;

/// One `publish` call as the sink saw it.
#[derive(Clone, Debug)]
pub struct Batch {
    /// When the sink's task was handed the batch (before any configured delay).
    pub at: Instant,
    pub events: Vec<Event>,
}

/// Everything one `record` sink saw, in order.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    pub started: bool,
    pub batches: Vec<Batch>,
    pub flushed: bool,
    pub closed: bool,
}

impl Recording {
    /// Every event published, in the order the sink got them.
    pub fn events(&self) -> Vec<Event> {
        self.batches
            .iter()
            .flat_map(|batch| batch.events.iter().cloned())
            .collect()
    }

    /// Each event's due time (ms after `origin_ms`) and when it arrived (after `run_started`).
    pub fn arrivals(&self, origin_ms: i64, run_started: Instant) -> Vec<(i64, Duration)> {
        self.batches
            .iter()
            .flat_map(|batch| {
                batch
                    .events
                    .iter()
                    .map(move |event| (event.due_ms - origin_ms, batch.at - run_started))
            })
            .collect()
    }
}

static RECORDINGS: LazyLock<Mutex<HashMap<String, Recording>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// What the `record` sink with this key saw (empty if it was never built).
pub fn recording(key: &str) -> Recording {
    RECORDINGS
        .lock()
        .unwrap()
        .get(key)
        .cloned()
        .unwrap_or_default()
}

fn update(key: &str, change: impl FnOnce(&mut Recording)) {
    change(
        RECORDINGS
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default(),
    );
}

/// A sink that records what it is handed; it can be made slow, lossy or failing.
#[sink_config]
#[derive(Debug, Default)]
pub struct RecordConfig {
    /// Where the records go ([`recording`]); unique per test.
    pub key: String,
    /// Wall milliseconds (of the runtime's clock) each `publish` takes: a slow peer.
    #[serde(default)]
    pub delay_ms: u64,
    /// Declares the sink lossy: the pipeline drops batches it cannot take instead of waiting.
    #[serde(default)]
    pub lossy: bool,
    /// After this many successful publishes, the next one fails.
    #[serde(default)]
    pub fail_after: Option<usize>,
}

impl PluginConfig for RecordConfig {
    const NAME: &'static str = "record";
    const DESCRIPTION: &'static str = "records every batch for in-process tests";
}

impl SinkConfig for RecordConfig {
    fn build(self, _cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        // A fresh record per build, so a key reused by one test for two runs starts empty.
        RECORDINGS
            .lock()
            .unwrap()
            .insert(self.key.clone(), Recording::default());
        Ok(Box::new(Record {
            published: 0,
            config: self,
        }))
    }
}

struct Record {
    config: RecordConfig,
    published: usize,
}

#[async_trait]
impl Sink for Record {
    fn lossy(&self) -> bool {
        self.config.lossy
    }

    async fn start(
        &mut self,
        _cx: &customersim::plugin_api::SinkContext,
    ) -> Result<(), PluginError> {
        update(&self.config.key, |r| r.started = true);
        Ok(())
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        update(&self.config.key, |r| {
            r.batches.push(Batch {
                at: Instant::now(),
                events: batch.to_vec(),
            })
        });
        if self.config.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.delay_ms)).await;
        }
        if self.config.fail_after == Some(self.published) {
            return Err(PluginError::fatal("the peer refused the batch"));
        }
        self.published += 1;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), PluginError> {
        update(&self.config.key, |r| r.flushed = true);
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), PluginError> {
        update(&self.config.key, |r| r.closed = true);
        Ok(())
    }
}

/// A source that schedules one enter event per offset (ms after the simulation's start; negative
/// offsets are due before it), customer ids 0, 1, 2, … in the order given.
#[source_config]
#[derive(Debug, Default)]
pub struct ScriptConfig {
    pub at_ms: Vec<i64>,
    /// Keep running after scheduling, until the run is shut down (a source that never ends).
    #[serde(default)]
    pub until_shutdown: bool,
}

impl PluginConfig for ScriptConfig {
    const NAME: &'static str = "script";
    const DESCRIPTION: &'static str = "schedules the events a test lists";
}

impl SourceConfig for ScriptConfig {
    fn build(self, _cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        Ok(Box::new(Script(self)))
    }
}

struct Script(ScriptConfig);

#[async_trait]
impl Source for Script {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError> {
        let origin = cx.clock.origin_ms();
        let events = self
            .0
            .at_ms
            .iter()
            .enumerate()
            .map(|(index, offset)| Event {
                due_ms: origin + offset,
                customer: CustomerId::Number(index as u64),
                kind: EventKind::Enter,
                store: 0,
                stamp: Default::default(),
            })
            .collect();
        cx.schedule
            .schedule(events)
            .await
            .map_err(PluginError::fatal)?;
        if self.0.until_shutdown {
            cx.shutdown.wait().await;
        }
        Ok(())
    }
}

/// The simulation's start in every test pipeline: 2026-03-01T09:00:00Z.
pub const START: &str = "2026-03-01T09:00:00Z";
pub const START_MS: i64 = 1_772_355_600_000;

/// Resolves pipeline text the way `customersim run` does, with exactly the environment `env`
/// (the developer's CONSUME_* variables must not leak in) and the given flags.
pub fn resolve(yaml: &str, flags: &Flags, env: &[(&str, &str)]) -> ResolvedPipeline {
    resolve_text(
        yaml,
        "test pipeline",
        PathBuf::from("."),
        &Environment::from_pairs(env.iter().copied()),
        flags,
    )
    .unwrap_or_else(|error| panic!("{error}\n{yaml}"))
}
