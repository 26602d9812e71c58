//! Builds the plugins of a resolved pipeline and runs them: sources on the timeline, the
//! scheduler, the sinks; then shuts down in order (sources stop, sinks flush).

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use crate::config::{ResolvedPipeline, Speed};
use crate::metrics::CoreMetrics;
use crate::plugin_api::{
    BuildContext, Clock, Factory, MetricsRegistry, PluginError, Presence, Publisher, Role, Roster,
    Shutdown, Sink, SinkContext, Source, SourceContext, Watermark, derive_seed, tracing,
};
use crate::scheduler::{ConsumeSettings, NamedSink, RunReport, Scheduler, format_ms};
use crate::{registry, timeline};

/// A pipeline whose plugins are built (configs checked, files read) but not started.
pub struct Pipeline {
    resolved: ResolvedPipeline,
    sources: Vec<(String, Box<dyn Source>)>,
    sinks: Vec<(String, Box<dyn Sink>)>,
    presence: Option<Presence>,
    roster: Option<Arc<dyn Roster>>,
    metrics: MetricsRegistry,
}

impl Pipeline {
    /// Builds every plugin; errors name the plugin's place in the file.
    pub fn build(resolved: ResolvedPipeline) -> Result<Pipeline, PluginError> {
        let config = &resolved.config;
        let metrics = MetricsRegistry::with_prefix();
        let mut cx = BuildContext::new(
            resolved.layout.clone(),
            config.topics.clone(),
            resolved.seed,
            resolved.config_dir.clone(),
            metrics.clone(),
        );
        let prefix = |section: &str, index: usize, kind: &str, error: PluginError| match error {
            PluginError::Config(why) => PluginError::Config(format!(
                "{}: {section}[{index}] (type: {kind}): {why}",
                resolved.origin
            )),
            PluginError::Fatal(why) => {
                PluginError::Fatal(format!("{section}[{index}] (type: {kind}): {why}"))
            }
        };
        let mut sources = Vec::new();
        for (index, spec) in config.sources.iter().enumerate() {
            let Factory::Source(build) = registry::lookup(Role::Source, &spec.kind)
                .map_err(PluginError::Config)?
                .factory
            else {
                unreachable!("lookup returns plugins of the asked role")
            };
            let source = build(serde_yaml::Value::Mapping(spec.settings.clone()), &mut cx)
                .map_err(|error| prefix("sources", index, &spec.kind, error))?;
            sources.push((format!("{}#{index}", spec.kind), source));
        }
        let mut sinks = Vec::new();
        for (index, spec) in config.sinks.iter().enumerate() {
            let Factory::Sink(build) = registry::lookup(Role::Sink, &spec.kind)
                .map_err(PluginError::Config)?
                .factory
            else {
                unreachable!("lookup returns plugins of the asked role")
            };
            let sink = build(serde_yaml::Value::Mapping(spec.settings.clone()), &mut cx)
                .map_err(|error| prefix("sinks", index, &spec.kind, error))?;
            sinks.push((spec.kind.clone(), sink));
        }
        let presence = cx.presence_if_kept();
        let roster = cx.roster();
        Ok(Pipeline {
            resolved,
            sources,
            sinks,
            presence,
            roster,
            metrics,
        })
    }

    /// Runs until the simulation ends (`duration`, finite sources) or `shutdown` fires.
    pub async fn run(self, shutdown: Shutdown) -> Result<RunReport, PluginError> {
        let config = &self.resolved.config;
        let start_ms = config.simulation.start.resolve_ms();
        let (clock, speed) = match config.simulation.speed {
            Speed::Max => (Clock::virtual_at(start_ms), f64::INFINITY),
            Speed::Factor(speed) => (Clock::scaled(start_ms, speed), speed),
        };
        let doors_close_ms = config
            .simulation
            .duration
            .map(|d| start_ms.saturating_add(d.as_millis() as i64));
        tracing::info!(
            "starting at {} (speed {}){}; seed {}{}",
            format_ms(start_ms),
            config.simulation.speed,
            doors_close_ms
                .map(|close| format!(", doors close at {}", format_ms(close)))
                .unwrap_or_default(),
            self.resolved.seed,
            if self.resolved.seed_drawn {
                format!(
                    " (drawn at random: pass --seed {} to replay)",
                    self.resolved.seed
                )
            } else {
                String::new()
            },
        );
        let skip_before_ms = config.timeline.consume_from.skip_before_ms(start_ms);
        // A shared backend may be unreachable for a while (it is retried): a signal still stops.
        let opened = tokio::select! {
            opened = timeline::open(&config.timeline, skip_before_ms) => {
                opened.map_err(PluginError::Fatal)?
            }
            () = shutdown.wait() => {
                tracing::info!("stopped before the timeline was reachable: nothing published");
                return Ok(RunReport::default());
            }
        };
        let timeline = opened.timeline;
        let core_metrics = CoreMetrics::register(&self.metrics);
        if let Some(skipped) = opened.skipped_at_open.filter(|skipped| *skipped > 0) {
            tracing::info!(
                "skipped {skipped} events due before {} (CONSUME_FROM); they are counted in events_skipped",
                format_ms(skip_before_ms.unwrap_or(start_ms))
            );
            core_metrics.skipped.inc_by(skipped);
        }

        let sink_cx = SinkContext {
            shutdown: shutdown.clone(),
            topics: config.topics.clone(),
            metrics: self.metrics.clone(),
        };
        let mut sinks = Vec::new();
        for (name, mut sink) in self.sinks {
            sink.start(&sink_cx)
                .await
                .map_err(|error| prefix_sink(&name, error))?;
            let counters = core_metrics.for_sink(&name, &config.topics);
            sinks.push(NamedSink {
                name,
                sink,
                counters,
            });
        }

        let progress = Arc::new(Notify::new());
        let (publisher, immediate) = Publisher::channel(64);
        let (outcome_sender, source_outcomes) = mpsc::unbounded_channel();
        let mut watermarks = Vec::new();
        let sources_running = self.sources.len();
        for (index, (name, source)) in self.sources.into_iter().enumerate() {
            let watermark = Watermark::new(
                if source.paces_clock() {
                    i64::MIN
                } else {
                    i64::MAX
                },
                progress.clone(),
            );
            if source.paces_clock() {
                watermarks.push(watermark.clone());
            }
            let cx = SourceContext {
                clock: clock.clone(),
                timeline: timeline.clone(),
                watermark: watermark.clone(),
                shutdown: shutdown.clone(),
                publisher: publisher.clone(),
                roster: self.roster.clone(),
                doors_close_ms,
                seed: derive_seed(self.resolved.seed, index as u64),
            };
            let outcomes = outcome_sender.clone();
            tokio::spawn(async move {
                let outcome = source.run(cx).await;
                watermark.finish();
                let _ = outcomes.send((name, outcome));
            });
        }
        drop(publisher);

        let timeline_config = &config.timeline;
        let lag_speed = if speed.is_finite() { speed } else { 1.0 };
        let scheduler = Scheduler {
            clock,
            timeline,
            sinks,
            settings: ConsumeSettings {
                frequency: timeline_config.consume_frequency,
                batch_size: timeline_config.consume_batch_size,
                skip_before_ms: if opened.skipped_at_open.is_some() {
                    None
                } else {
                    skip_before_ms
                },
                consume_from: serde_yaml::to_value(timeline_config.consume_from)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                lag_warning_ms: (2_000.0 * lag_speed * timeline_config.consume_frequency.max(1.0))
                    as i64,
                doors_close_ms,
            },
            watermarks,
            progress,
            immediate,
            source_outcomes,
            sources_running,
            presence: self.presence,
            metrics: core_metrics,
            shutdown: shutdown.clone(),
        };
        let outcome = scheduler.run().await;
        shutdown.trigger();
        let (sinks, mut report) = outcome?;
        if let Some(skipped) = opened.skipped_at_open {
            report.skipped += skipped;
        }
        if let Some(stats) = &opened.claim_stats {
            let round_trips = stats.round_trips.load(std::sync::atomic::Ordering::Relaxed);
            let claimed = stats.events.load(std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                "redis timeline: {claimed} events claimed in {round_trips} claim round trips ({:.4} per event)",
                round_trips as f64 / claimed.max(1) as f64
            );
        }
        for sink in sinks {
            sink.sink
                .close()
                .await
                .map_err(|error| prefix_sink(&sink.name, error))?;
        }
        tracing::info!(
            "stopped: {} events published, {} skipped (CONSUME_FROM), {} left on the timeline",
            report.published,
            report.skipped,
            report.left_on_timeline
        );
        Ok(report)
    }

    /// The resolved config the pipeline was built from.
    pub fn resolved(&self) -> &ResolvedPipeline {
        &self.resolved
    }

    /// The metrics registry plugins registered into.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.metrics
    }
}

fn prefix_sink(name: &str, error: PluginError) -> PluginError {
    match error {
        PluginError::Config(why) => PluginError::Config(format!("sink {name}: {why}")),
        PluginError::Fatal(why) => PluginError::Fatal(format!("sink {name}: {why}")),
    }
}
