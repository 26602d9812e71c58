//! Builds the plugins of a resolved pipeline and runs them. A run goes through named phases:
//! open the timeline, start the clock (the timeline's shared one, if it keeps one), start the
//! sinks (each fed from its own queue), spawn the sources, schedule until the end, then stop:
//! sources stop, every sink flushes and closes.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use crate::batch::BatchPool;
use crate::checks::RunChecks;
use crate::config::{PluginSpec, ResolvedPipeline, Speed, Start};
use crate::fanout::Sinks;
use crate::metrics::CoreMetrics;
use crate::plugin_api::LiveChecks;
use crate::plugin_api::clock::unix_now_us;
use crate::plugin_api::host::{self, ClockDriver, ImmediateBatch, PresenceRecorder, Shutdown};
use crate::plugin_api::{
    Announce, ArrivalRules, BrokerEndpoint, BuildContext, ClockOrigin, Fleet, FocusStage,
    KeptClock, MetricsRegistry, OpenedTimeline, Plugin, PluginError, QueueMetrics, Role, Roster,
    SensorCounts, SensorStage, SensorsConfig, SharedClock, Sink, SinkContext, Source,
    SourceContext, StoreLayout, TimelineBackend, TimelineContext, TruthTopics, Watermark,
    derive_seed,
};
use crate::progress::RunProgress;
use crate::registry;
use crate::report::Observation;
use crate::scheduler::{ConsumeSettings, RunReport, Scheduler, SourceOutcome, format_ms};
use crate::verdict::{LiveVerdict, VerdictPlan};
use crate::watch::Watchers;

/// A pipeline whose plugins are built (configs checked, files read) but not started.
pub struct Pipeline {
    resolved: ResolvedPipeline,
    timeline: Box<dyn TimelineBackend>,
    sources: Vec<(String, Box<dyn Source>)>,
    sinks: Vec<(String, Box<dyn Sink>)>,
    presence: Option<PresenceRecorder>,
    roster: Option<Arc<dyn Roster>>,
    metrics: MetricsRegistry,
    /// The run report, when one was asked for ([`Pipeline::observe`]).
    observation: Option<Observation>,
    /// The entrance queue's metrics, when a source has a capacity (for the run report).
    queue_metrics: Option<QueueMetrics>,
    /// The opening hours a source keeps, for the report's occupancy while open.
    opening_hours: Option<ArrivalRules>,
    /// Expectations and the delivery check, when the pipeline has them.
    verdict: Option<VerdictPlan>,
    /// What the run measures for its thresholds and shows while it runs.
    checks: RunChecks,
    /// The faults the sensor stages injected (every source's), for the run report.
    sensor_counts: SensorCounts,
}

/// The running sources, as the scheduler sees them.
struct RunningSources {
    watermarks: Vec<Watermark>,
    progress: Arc<Notify>,
    immediate: mpsc::Receiver<ImmediateBatch>,
    outcomes: mpsc::UnboundedReceiver<SourceOutcome>,
    count: usize,
}

impl Pipeline {
    /// Checks every plugin's settings without side effects (nothing read beyond what a check
    /// needs, nothing connected, bound or spawned): what `customersim validate` runs.
    pub fn check(resolved: &ResolvedPipeline) -> Result<(), PluginError> {
        let config = &resolved.config;
        let cx = build_context(resolved, MetricsRegistry::default());
        let origin = &resolved.origin;
        each::<dyn Source, _>(&config.sources, origin, |plugin, settings| {
            plugin.check(settings, &cx)
        })?;
        check_load_followed(&cx, origin)?;
        each::<dyn Sink, _>(&config.sinks, origin, |plugin, settings| {
            plugin.check(settings, &cx)
        })?;
        let timeline = &config.timeline;
        registry::lookup::<dyn TimelineBackend>(&timeline.backend)
            .map_err(PluginError::Config)?
            .check(timeline.backend_settings(), &cx)
            .map_err(|error| error.within(format!("{origin}: timeline.{}", timeline.backend)))?;
        VerdictPlan::build(resolved, &cx).map(|_| ())
    }

    /// What the pipeline's expectations and delivery check will check, one line each, for
    /// `validate`; empty without them. Call after [`Pipeline::check`].
    pub fn verdict_lines(resolved: &ResolvedPipeline) -> Result<Vec<String>, PluginError> {
        Ok(Pipeline::verdict_plan(resolved)?
            .map(|plan| plan.describe(&resolved.config.sinks[plan.sink].kind))
            .unwrap_or_default())
    }

    /// The verdict of a pipeline on its own, built as a run builds it (for benchmarks and tests
    /// that drive it with batches of their own); `None` without `expect:` or `delivery_check:`.
    pub fn verdict_plan(resolved: &ResolvedPipeline) -> Result<Option<VerdictPlan>, PluginError> {
        VerdictPlan::build(
            resolved,
            &build_context(resolved, MetricsRegistry::default()),
        )
    }

    /// The brokers the sinks publish to, each with its sink's place (`sinks[0] (type: mqtt)`),
    /// for the pipeline's AsyncAPI document. Call after [`Pipeline::check`].
    pub fn brokers(
        resolved: &ResolvedPipeline,
    ) -> Result<Vec<(String, BrokerEndpoint)>, PluginError> {
        let places = resolved.config.sinks.iter().enumerate();
        let lists = each::<dyn Sink, _>(
            &resolved.config.sinks,
            &resolved.origin,
            |plugin, settings| Ok(plugin.brokers(settings)),
        )?;
        Ok(places
            .zip(lists)
            .flat_map(|((index, spec), brokers)| {
                let place = format!("sinks[{index}] (type: {})", spec.kind);
                brokers
                    .into_iter()
                    .map(move |broker| (place.clone(), broker))
            })
            .collect())
    }

    /// The clock a run of this pipeline would adopt from its timeline backend now, read without
    /// joining (`validate` shows it). Gives up after `patience` (an unreachable server).
    pub async fn shared_clock(
        resolved: &ResolvedPipeline,
        patience: std::time::Duration,
    ) -> Result<KeptClock, PluginError> {
        let timeline = &resolved.config.timeline;
        let mut cx = build_context(resolved, MetricsRegistry::default());
        let mut backend = registry::lookup::<dyn TimelineBackend>(&timeline.backend)
            .map_err(PluginError::Config)?
            .build(timeline.backend_settings(), &mut cx)?;
        tokio::time::timeout(patience, backend.peek_clock())
            .await
            .unwrap_or_else(|_| {
                Err(PluginError::fatal(format!(
                    "timeline.{}: no answer within {patience:?}",
                    timeline.backend
                )))
            })
    }

    /// Builds every plugin (each build runs its own checks); errors name the plugin's place in
    /// the file.
    pub fn build(resolved: ResolvedPipeline) -> Result<Pipeline, PluginError> {
        let config = &resolved.config;
        let metrics = MetricsRegistry::default();
        let mut cx = build_context(&resolved, metrics.clone());
        let origin = &resolved.origin;
        let sources = each::<dyn Source, _>(&config.sources, origin, |plugin, settings| {
            plugin.build(settings, &mut cx)
        })?;
        check_load_followed(&cx, origin)?;
        let sources = sources
            .into_iter()
            .enumerate()
            .map(|(index, source)| (format!("{}#{index}", config.sources[index].kind), source))
            .collect();
        let sinks = each::<dyn Sink, _>(&config.sinks, origin, |plugin, settings| {
            plugin.build(settings, &mut cx)
        })?;
        let sinks = config
            .sinks
            .iter()
            .map(|spec| spec.kind.clone())
            .zip(sinks)
            .collect();
        let timeline = registry::lookup::<dyn TimelineBackend>(&config.timeline.backend)
            .map_err(PluginError::Config)?
            .build(config.timeline.backend_settings(), &mut cx)
            .map_err(|error| {
                error.within(format!("{origin}: timeline.{}", config.timeline.backend))
            })?;
        let verdict = VerdictPlan::build(&resolved, &cx)?;
        let thresholds = match &config.thresholds {
            Some(thresholds) => {
                crate::thresholds::check(thresholds, &crate::config::measured_metrics(config))
                    .map_err(|why| PluginError::config(format!("{origin}: {why}")))?
            }
            None => Vec::new(),
        };
        let checks = RunChecks::new(thresholds, verdict.as_ref().map(VerdictPlan::live));
        let presence = host::presence_recorder(&cx);
        let roster = cx.roster();
        let queue_metrics = cx.queue_metrics_in_use();
        let opening_hours = cx.opening_hours();
        Ok(Pipeline {
            resolved,
            timeline,
            sources,
            sinks,
            presence,
            roster,
            metrics,
            observation: None,
            queue_metrics,
            opening_hours,
            verdict,
            checks,
            sensor_counts: SensorCounts::default(),
        })
    }

    /// What the run measures for its thresholds (evaluate them once [`Pipeline::run`] returned)
    /// and the verdict's figures.
    pub fn checks(&self) -> RunChecks {
        self.checks.clone()
    }

    /// The verdict's figures (expectations, delivery check), when the pipeline has them: as they
    /// stand during the run, final once [`Pipeline::run`] returned.
    pub fn verdict(&self) -> Option<LiveVerdict> {
        self.verdict.as_ref().map(VerdictPlan::live)
    }

    /// Counts the run report from the events this pipeline will publish; read it with
    /// [`Observation::summary`] after the run.
    pub fn observe(&mut self) -> Observation {
        let config = &self.resolved.config;
        self.observation
            .get_or_insert_with(|| {
                let observation = Observation::new(
                    self.resolved.layout.clone(),
                    &self.resolved.fleet,
                    config.topics.clone(),
                    self.queue_metrics.clone(),
                );
                observation.measure_while_open(self.opening_hours.clone());
                if config.sensors.enabled {
                    observation.measure_sensors(self.sensor_counts.clone());
                }
                observation
            })
            .clone()
    }

    /// Runs until the simulation ends (`duration`, finite sources) or `shutdown` fires.
    pub async fn run(self, shutdown: Shutdown) -> Result<RunReport, PluginError> {
        let Pipeline {
            resolved,
            timeline,
            sources,
            sinks,
            presence,
            roster,
            metrics,
            observation,
            queue_metrics: _,
            opening_hours: _,
            verdict,
            checks,
            sensor_counts,
        } = self;
        let config = &resolved.config;
        let start_ms = config.simulation.start.resolve_ms();
        let own_clock = ClockOrigin {
            start_ms,
            speed: match config.simulation.speed {
                Speed::Max => None,
                Speed::Factor(speed) => Some(speed),
            },
            wall_origin_us: unix_now_us(),
        };
        let wall_origin = tokio::time::Instant::now();
        let skip_before_ms = config.timeline.consume_from.skip_before_ms(start_ms);

        let timeline_cx = TimelineContext {
            skip_before_ms,
            consume_frequency: config.timeline.consume_frequency.unwrap_or(0.0),
            clock: own_clock,
            generates: !sources.is_empty(),
        };
        let Some(opened) = open_timeline(timeline, config, timeline_cx, &shutdown).await? else {
            return Ok(RunReport::default());
        };
        let driver = start_clock(&resolved, own_clock, wall_origin, opened.clock.as_ref());
        let origin_ms = driver.clock().origin_ms();
        if let (Some(observation), Some(load)) = (&observation, &config.load) {
            observation.measure_load(load.plan(), origin_ms);
        }
        let doors_close_ms = config
            .simulation
            .duration
            .map(|d| origin_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        log_start(&resolved, &driver, doors_close_ms);
        let core_metrics = CoreMetrics::register(&metrics);
        if let Some(skipped) = opened.skipped_at_open.filter(|skipped| *skipped > 0) {
            tracing::info!(
                "skipped {skipped} events due before {} (CONSUME_FROM); they are counted in events_skipped",
                format_ms(skip_before_ms.unwrap_or(start_ms))
            );
            core_metrics.skipped.inc_by(skipped);
        }

        let sink_cx = SinkContext {
            shutdown: shutdown.signal(),
            end_run: shutdown.end_run(),
            topics: config.topics.clone().for_fleet(&resolved.fleet),
            metrics: metrics.clone(),
            clock: driver.clock(),
            checks: live_checks(
                &checks,
                config.sensors.enabled.then(|| sensor_counts.clone()),
            ),
        };
        let clock = driver.clock();
        // Subscribed before anything is published, so no reply can be missed.
        let (verdict_feed, verdict) = match verdict {
            Some(plan) => {
                let sink = plan.sink;
                let (published, running) = plan.start(opened.peers.clone()).await?;
                (Some((sink, published)), Some(running))
            }
            None => (None, None),
        };
        let sinks = Sinks::start(
            sinks,
            &sink_cx,
            &core_metrics,
            &config.topics,
            &clock,
            verdict_feed,
        )
        .await?;
        if let Some(observation) = &observation {
            observation.measure_lateness(sinks.lateness(), clock.is_virtual());
        }
        checks.sinks_started(
            if clock.is_virtual() {
                Vec::new()
            } else {
                sinks.lateness()
            },
            core_metrics.handed_over.clone(),
        );
        let abort_watch = {
            let shutdown = shutdown.clone();
            checks.watch_for_abort(move || shutdown.trigger())
        };

        let running = spawn_sources(
            sources,
            &SourceShared {
                driver: &driver,
                opened: &opened,
                shutdown: &shutdown,
                roster: &roster,
                doors_close_ms,
                seed: resolved.seed,
                fleet: &resolved.fleet,
                focus: config
                    .topics
                    .focus
                    .is_some()
                    .then(|| (resolved.layout.clone(), config.focus.announce)),
                sensors: config.sensors.enabled.then(|| SensorShared {
                    config: config.sensors.clone(),
                    truth: config.topics.truth.clone(),
                    extent: (resolved.layout.width(), resolved.layout.height()),
                    counts: sensor_counts.clone(),
                }),
            },
        );

        let timeline_config = &config.timeline;
        // The clock in use: a shared timeline's may differ from the config's.
        let lag_speed = driver.clock().speed().unwrap_or(1.0);
        let scheduler = Scheduler {
            clock: driver.clock(),
            clock_driver: driver,
            timeline: opened.timeline.clone(),
            sinks,
            settings: ConsumeSettings {
                frequency: timeline_config.consume_frequency.unwrap_or(0.0),
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
                lag_warning_ms: (2_000.0
                    * lag_speed
                    * timeline_config.consume_frequency.unwrap_or(0.0).max(1.0))
                    as i64,
                doors_close_ms,
            },
            watermarks: running.watermarks,
            progress: running.progress,
            immediate: running.immediate,
            source_outcomes: running.outcomes,
            sources_running: running.count,
            watchers: Watchers::start(
                observation
                    .as_ref()
                    .map(|observation| observation.observer(start_ms)),
                presence,
            ),
            metrics: core_metrics.clone(),
            shutdown: shutdown.clone(),
            buffers: BatchPool::default(),
        };
        let progress = doors_close_ms.and_then(|close_ms| {
            RunProgress::start_if_terminal(clock, start_ms, close_ms, core_metrics.handed_over)
        });
        let outcome = scheduler.run().await;
        if let Some(progress) = progress {
            progress.finish();
        }
        // Stopped by a signal (or a sink's request) rather than by the end of the simulation:
        // the verdict does not wait for the last replies then.
        let interrupted = shutdown.is_triggered();
        shutdown.trigger();
        let stopped = stop(outcome, &opened).await;
        if let Some(observation) = &observation {
            observation.publishing_ended();
        }
        checks.sinks_finished();
        if let Some(watch) = abort_watch {
            watch.abort();
        }
        if let Some(verdict) = verdict {
            verdict.finish(interrupted).await?;
        }
        stopped
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

/// Runs `step` (check or build) for each entry of a plugin list (`sources:` or `sinks:`), in
/// order; an error names the entry (`sinks[1] (type: mqtt)`).
fn each<R: Role + ?Sized, T>(
    specs: &[PluginSpec],
    origin: &str,
    mut step: impl FnMut(&'static Plugin<R>, serde_yaml::Value) -> Result<T, PluginError>,
) -> Result<Vec<T>, PluginError> {
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let plugin = registry::lookup::<R>(&spec.kind).map_err(PluginError::Config)?;
            step(plugin, serde_yaml::Value::Mapping(spec.settings.clone())).map_err(|error| {
                error.within(format!(
                    "{origin}: {}[{index}] (type: {})",
                    R::SECTION,
                    spec.kind
                ))
            })
        })
        .collect()
}

fn build_context(resolved: &ResolvedPipeline, metrics: MetricsRegistry) -> BuildContext {
    let config = &resolved.config;
    let mut cx = BuildContext::new(
        resolved.layout.clone(),
        config.topics.clone().for_fleet(&resolved.fleet),
        resolved.seed,
        resolved.config_dir.clone(),
        metrics,
    );
    cx.fleet = resolved.fleet.clone();
    cx.focus = config
        .topics
        .focus
        .is_some()
        .then_some(config.focus.announce);
    if let Some(load) = &config.load {
        cx.set_load(load.plan());
    }
    cx
}

/// Load stages are met by sources that generate shoppers; a pipeline whose sources all come
/// from elsewhere (HTTP, another instance's timeline) could not meet them.
fn check_load_followed(cx: &BuildContext, origin: &str) -> Result<(), PluginError> {
    if cx.load().is_some() && cx.load_followers() == 0 {
        return Err(PluginError::config(format!(
            "{origin}: load: no source of this pipeline follows load stages: they are met by \
             sources that simulate shoppers (`customersim plugins` lists the sources)"
        )));
    }
    Ok(())
}

/// Phase 2 (after the timeline, which may keep a clock shared by every instance): the clock,
/// scaled real time or virtual for `speed: max`. A shared clock stored by another instance is
/// adopted, whatever this config says; a config whose `speed` or `start` (set away from the
/// defaults) contradicts it gets one warning naming them.
fn start_clock(
    resolved: &ResolvedPipeline,
    own: ClockOrigin,
    wall_origin: tokio::time::Instant,
    shared: Option<&SharedClock>,
) -> ClockDriver {
    let Some(shared) = shared.filter(|shared| !shared.set_here) else {
        if let Some(shared) = shared {
            tracing::info!(
                "this instance set the shared clock of {}: every instance that joins follows it",
                shared.kept_at
            );
        }
        return match own.speed {
            None => ClockDriver::virtual_at(own.start_ms),
            Some(speed) => ClockDriver::scaled_at(own.start_ms, speed, wall_origin),
        };
    };
    let adopted = shared.origin;
    let simulation = &resolved.config.simulation;
    // Only what the config sets away from the defaults (real time from now) can contradict:
    // a worker left at the defaults just follows.
    let mut contradicted = Vec::new();
    if simulation.speed != Speed::default() && own.speed != adopted.speed {
        contradicted.push(format!(
            "simulation.speed ({} here, {} on the shared clock)",
            simulation.speed,
            speed_text(adopted.speed)
        ));
    }
    if let Start::At(at) = simulation.start
        && at.timestamp_millis() != shared.started_ms
    {
        contradicted.push(format!(
            "simulation.start ({} here, {} on the shared clock)",
            format_ms(at.timestamp_millis()),
            format_ms(shared.started_ms)
        ));
    }
    let driver = adopted.driver();
    let adoption = format!(
        "adopted the shared clock of {}: started at {} (speed {}), now at {}",
        shared.kept_at,
        format_ms(shared.started_ms),
        speed_text(adopted.speed),
        format_ms(driver.clock().now_ms())
    );
    if contradicted.is_empty() {
        tracing::info!("{adoption}");
    } else {
        tracing::warn!(
            "{adoption}; this config's {} {} not used",
            contradicted.join(" and "),
            if contradicted.len() == 1 { "is" } else { "are" }
        );
    }
    driver
}

/// A clock's speed as the config writes it.
fn speed_text(speed: Option<f64>) -> String {
    speed.map_or_else(|| "max".to_string(), |speed| speed.to_string())
}

/// The start log line: where the clock starts, how fast, when the doors close, the seed.
fn log_start(resolved: &ResolvedPipeline, driver: &ClockDriver, doors_close_ms: Option<i64>) {
    let clock = driver.clock();
    let fleet = &resolved.fleet;
    if fleet.is_configured() {
        tracing::info!(
            "fleet of {} stores; shard {} runs {} of them",
            fleet.len(),
            fleet.shard(),
            fleet.local_stores().count()
        );
    }
    tracing::info!(
        "starting at {} (speed {}){}; seed {}{}",
        format_ms(clock.origin_ms()),
        speed_text(clock.speed()),
        doors_close_ms
            .map(|close| format!(", doors close at {}", format_ms(close)))
            .unwrap_or_default(),
        resolved.seed,
        if resolved.seed_drawn {
            format!(
                " (drawn at random: pass --seed {} to replay)",
                resolved.seed
            )
        } else {
            String::new()
        },
    );
}

/// Phase 1: the timeline backend. A shared backend may be unreachable for a while (it is
/// retried), or make a worker wait for the clock: a signal still stops the run, with nothing
/// published (`None`).
async fn open_timeline(
    backend: Box<dyn TimelineBackend>,
    config: &crate::config::PipelineConfig,
    cx: TimelineContext,
    shutdown: &Shutdown,
) -> Result<Option<OpenedTimeline>, PluginError> {
    tokio::select! {
        opened = backend.open(cx) => opened
            .map(Some)
            .map_err(|error| error.within(format!("timeline.{}", config.timeline.backend))),
        () = shutdown.wait() => {
            tracing::info!("stopped before the timeline was open (unreachable, or no clock yet): nothing published");
            Ok(None)
        }
    }
}

/// The run's checks as sinks that show the run read them, with the sensor stages' fault counts
/// (`"sensors": {"dropped": n, …}`) when the sensors are on; `None` with neither.
fn live_checks(checks: &RunChecks, sensors: Option<SensorCounts>) -> Option<LiveChecks> {
    let verdict = (!checks.is_empty()).then(|| checks.live());
    let Some(counts) = sensors else {
        return verdict;
    };
    Some(LiveChecks::new(move || {
        let mut value = verdict
            .as_ref()
            .and_then(|verdict| serde_json::from_str(&verdict.json()).ok())
            .unwrap_or_else(|| {
                serde_json::json!({
                    "expectations": [], "delivery": null, "subscription_gaps": 0, "thresholds": []
                })
            });
        let faults: serde_json::Map<String, serde_json::Value> = counts
            .named()
            .into_iter()
            .map(|(name, count)| (name.to_string(), count.into()))
            .collect();
        value["sensors"] = faults.into();
        value.to_string()
    }))
}

/// What every source is started with.
struct SourceShared<'a> {
    driver: &'a ClockDriver,
    opened: &'a OpenedTimeline,
    shutdown: &'a Shutdown,
    roster: &'a Option<Arc<dyn Roster>>,
    doors_close_ms: Option<i64>,
    seed: u64,
    fleet: &'a Fleet,
    /// The store and the rule focus events follow, when they are on (`topics.focus`).
    focus: Option<(StoreLayout, Announce)>,
    /// The observation model, when `sensors.enabled`.
    sensors: Option<SensorShared>,
}

/// What every source's sensor stage is made from.
struct SensorShared {
    config: SensorsConfig,
    truth: TruthTopics,
    /// The store's width and height: observed positions stay inside.
    extent: (u32, u32),
    counts: SensorCounts,
}

/// Phase 4: one task per source, each with its own context; how each ends reaches the scheduler.
/// Each source's events, scheduled or published at once, pass through its own chain of stages
/// (focus), so its shoppers are followed in the order it hands them over, whatever the others do.
fn spawn_sources(sources: Vec<(String, Box<dyn Source>)>, shared: &SourceShared) -> RunningSources {
    let progress = Arc::new(Notify::new());
    let (publisher, immediate) = host::publisher(64);
    let (outcome_sender, outcomes) = mpsc::unbounded_channel();
    let mut watermarks = Vec::new();
    let count = sources.len();
    for (index, (name, source)) in sources.into_iter().enumerate() {
        let paces = source.paces_clock();
        let watermark = host::watermark(if paces { i64::MIN } else { i64::MAX }, progress.clone());
        if paces {
            watermarks.push(watermark.clone());
        }
        let stages = host::stages(
            shared
                .focus
                .as_ref()
                .map(|(layout, announce)| FocusStage::new(layout.clone(), *announce)),
            shared.sensors.as_ref().map(|sensors| {
                SensorStage::new(
                    sensors.config.clone(),
                    &sensors.truth,
                    derive_seed(shared.seed, index as u64),
                    sensors.extent,
                    sensors.counts.clone(),
                )
            }),
        );
        let cx = SourceContext {
            clock: shared.driver.clock(),
            schedule: host::staged_schedule(shared.opened.timeline.clone(), stages.clone()),
            watermark: watermark.clone(),
            shutdown: shared.shutdown.signal(),
            end_run: shared.shutdown.end_run(),
            publisher: host::staged_publisher(&publisher, stages),
            roster: shared.roster.clone(),
            doors_close_ms: shared.doors_close_ms,
            seed: derive_seed(shared.seed, index as u64),
            fleet: shared.fleet.clone(),
        };
        let outcomes = outcome_sender.clone();
        tokio::spawn(async move {
            let outcome = source.run(cx).await;
            watermark.finish();
            let _ = outcomes.send((name, outcome));
        });
    }
    RunningSources {
        watermarks,
        progress,
        immediate,
        outcomes,
        count,
    }
}

/// Phase 6: every sink works off its queue, flushes and closes (also after a failure); the
/// backend's summary and the run's totals are logged.
async fn stop(
    outcome: Result<(Sinks, RunReport), (Sinks, PluginError)>,
    opened: &OpenedTimeline,
) -> Result<RunReport, PluginError> {
    let (sinks, result) = match outcome {
        Ok((sinks, report)) => (sinks, Ok(report)),
        Err((sinks, error)) => (sinks, Err(error)),
    };
    let finished = sinks.finish().await;
    if let Some(summary) = opened.timeline.summary() {
        tracing::info!("{summary}");
    }
    opened.timeline.leave().await;
    let mut report = match (result, finished) {
        (Ok(report), Ok(())) => report,
        // A sink's own error says more than "it stopped taking events".
        (_, Err(error)) => return Err(error),
        (Err(error), Ok(())) => return Err(error),
    };
    if let Some(skipped) = opened.skipped_at_open {
        report.skipped += skipped;
    }
    tracing::info!(
        "stopped: {} events published, {} skipped (CONSUME_FROM), {} left on the timeline",
        report.published,
        report.skipped,
        report.left_on_timeline
    );
    Ok(report)
}
