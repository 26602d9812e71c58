//! The command line: `customersim run | validate | plugins` (the book's *Configuration* chapter, *Command line*
//! documents the flags).
//!
//! Exit codes: 0 done (also after SIGINT/SIGTERM), 1 a failure while running (a broker refused the
//! credentials, a sink died), 2 bad configuration, environment variable, file or flag, 99
//! ([`crate::thresholds::THRESHOLDS_BREACHED`]) the run ended but breached a threshold (at its end,
//! or stopped early by one with `abort_on_fail`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{self, Flags, Speed, Start};
use crate::env::Environment;
use crate::pipeline::Pipeline;
use crate::plugin_api::host::Shutdown;
use crate::plugin_api::{KeptClock, PluginError, Shard};
use crate::registry;
use crate::report::RunSummary;
use crate::report_file::ReportFile;
use crate::scheduler::format_ms;

/// Simulates shoppers in a retail store and publishes their enter/move/exit events.
#[derive(Debug, Parser)]
#[command(name = "customersim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the simulation.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Seed of every random choice (same seed + same config = same events).
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated seconds per wall second, or `max` for a virtual clock.
        #[arg(long)]
        speed: Option<Speed>,
        /// Simulated start: `now` or an RFC 3339 instant.
        #[arg(long)]
        start: Option<Start>,
        /// Close the doors after this much simulated time (e.g. `2h`), let everyone out, exit 0.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Sink type to use instead of the config's sinks (repeatable).
        #[arg(long = "sink", value_name = "NAME")]
        sinks: Vec<String>,
        /// Write a JSON summary of the run to FILE when it ends (also after SIGINT/SIGTERM) and
        /// print it as a table on stderr.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Write the thresholds' outcomes to FILE as JUnit XML when the run ends (one testcase
        /// per threshold, a failure for each one breached), for CI systems to read.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// The part of the fleet to run: `INDEX/COUNT`, INDEX from 0 (e.g. `2/4`).
        #[arg(long)]
        shard: Option<Shard>,
    },
    /// Check the config and print it resolved (secrets masked); non-zero exit on any error.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The pipeline's AsyncAPI 3.0 document (YAML): servers from the sinks, channels from the
    /// topics, payload schemas and examples of the event contract.
    Asyncapi {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The JSON Schema of the pipeline file (every registered plugin's section included), for
    /// editors and independent validators.
    Schema,
    /// List the registered sources and sinks.
    Plugins,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The pipeline file (default: the built-in pipeline, same as configs/default.yaml).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::plugin_api::duration::parse(text)
}

/// Runs the command line with the process's arguments and environment.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Environment::from_process();
    if let Err(why) = crate::logging::init(&env) {
        eprintln!("error: {why}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Plugins => {
            print!("{}", plugin_list());
            ExitCode::SUCCESS
        }
        Command::Validate { config } => validate(config.config, &env),
        Command::Asyncapi { config } => asyncapi(config.config, &env),
        Command::Schema => {
            print!("{}", config::schema::pipeline_schema_json());
            ExitCode::SUCCESS
        }
        Command::Run {
            config,
            seed,
            speed,
            start,
            duration,
            sinks,
            report,
            junit,
            shard,
        } => {
            let flags = Flags {
                seed,
                speed,
                start,
                duration,
                sinks,
                shard,
            };
            run(config.config, &env, &flags, report, junit)
        }
    }
}

/// `customersim plugins`: one line per registered plugin.
pub fn plugin_list() -> String {
    registry::plugin_list()
}

/// Most bytes of an error message printed: whatever a message quotes (a huge bad value, a
/// parser's echo), stderr gets a few lines, not another copy of the input.
const MAX_MESSAGE_BYTES: usize = 4096;

fn fail(error: &dyn std::fmt::Display, code: u8) -> ExitCode {
    let mut message = error.to_string();
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let left_out = message.len() - cut;
        message.truncate(cut);
        message.push_str(&format!("… ({left_out} more bytes)"));
    }
    // Once on stderr (the `error:` line); the log file, when there is one, gets it too.
    tracing::error!(target: crate::logging::FILE_ONLY, "{message}");
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn plugin_failure(error: PluginError) -> ExitCode {
    let code = if error.is_config() { 2 } else { 1 };
    fail(&error, code)
}

fn validate(path: Option<PathBuf>, env: &Environment) -> ExitCode {
    let resolved = match config::load(path.as_deref(), env, &Flags::default()) {
        Ok(resolved) => resolved,
        Err(error) => return fail(&error, 2),
    };
    // Checks only: nothing is read beyond what a check needs, nothing connected or bound.
    if let Err(error) = Pipeline::check(&resolved) {
        return plugin_failure(error);
    }
    let mut text = match serde_yaml::to_string(&resolved.shown) {
        Ok(text) => text,
        Err(error) => return fail(&error, 1),
    };
    // How the scheduler paces, and the resolved layout, as comments so the output stays the YAML
    // of the pipeline.
    text.push_str(&format!(
        "# scheduler: {}\n",
        resolved.config.timeline.pacing()
    ));
    match Pipeline::verdict_lines(&resolved) {
        Ok(lines) => {
            for line in lines {
                text.push_str(&format!("# {line}\n"));
            }
        }
        Err(error) => return plugin_failure(error),
    }
    if let Some(thresholds) = &resolved.config.thresholds {
        match crate::thresholds::check(thresholds, &config::measured_metrics(&resolved.config)) {
            Ok(thresholds) => {
                for threshold in thresholds {
                    text.push_str(&format!("# threshold {threshold}\n"));
                }
            }
            Err(error) => return fail(&error, 2),
        }
    }
    text.push_str("# resolved layout:\n");
    for line in resolved.layout.to_string().lines() {
        text.push_str(&format!("#   {line}\n"));
    }
    if let Some(load) = &resolved.config.load {
        text.push_str(&load_note(load, resolved.config.simulation.duration));
    }
    if resolved.seed_drawn {
        text.push_str(
            "# seed: none set, so each run draws one at random and logs it; set simulation.seed, \
             --seed or SIMULATION_SEED to replay a run\n",
        );
    }
    text.push_str(&shared_clock_note(&resolved));
    print!("{text}");
    ExitCode::SUCCESS
}

/// `validate`'s note on the load stages (as YAML comments): each stage's time line and target,
/// and what follows the last one.
fn load_note(load: &config::LoadConfig, duration: Option<std::time::Duration>) -> String {
    let plan = load.plan();
    let at = |ms: i64| {
        crate::plugin_api::duration::format(std::time::Duration::from_millis(ms.max(0) as u64))
    };
    let mut note = String::from(
        "# load stages (published events per simulated second, all sources and stores together; \
         the simulated shopper sources follow them instead of their average_in_store):\n",
    );
    for (index, window) in plan.windows().iter().enumerate() {
        let ramp = if window.ramp_ms > 0 && window.from != window.target {
            format!(
                "{:.0}/s to {:.0}/s over {}, then ",
                window.from,
                window.target,
                at(window.ramp_ms)
            )
        } else {
            String::new()
        };
        note.push_str(&format!(
            "#   stage {}: {} to {}: {ramp}{:.0}/s\n",
            index + 1,
            at(window.start_ms),
            at(window.end_ms),
            window.target
        ));
    }
    let total_ms = plan.total_ms();
    match duration.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)) {
        Some(ms) if ms > total_ms => note.push_str(&format!(
            "#   then {:.0}/s until the doors close at {} (simulation.duration)\n",
            plan.stages().last().map_or(0.0, |s| s.events_per_second),
            at(ms)
        )),
        Some(ms) if ms < total_ms => note.push_str(&format!(
            "#   the doors close at {} (simulation.duration), before the stages end\n",
            at(ms)
        )),
        _ => note.push_str("#   then the doors close: the run ends with the last stage\n"),
    }
    note
}

/// `customersim asyncapi`: the checked pipeline's AsyncAPI document on stdout.
fn asyncapi(path: Option<PathBuf>, env: &Environment) -> ExitCode {
    let resolved = match config::load(path.as_deref(), env, &Flags::default()) {
        Ok(resolved) => resolved,
        Err(error) => return fail(&error, 2),
    };
    let brokers = match Pipeline::check(&resolved).and_then(|()| Pipeline::brokers(&resolved)) {
        Ok(brokers) => brokers,
        Err(error) => return plugin_failure(error),
    };
    print!("{}", crate::asyncapi::document(&resolved, &brokers));
    ExitCode::SUCCESS
}

/// `validate`'s note on the clock a shared timeline keeps (as YAML comments): the one a run would
/// adopt, none yet, or why it could not be read. Empty for backends that keep none.
fn shared_clock_note(resolved: &config::ResolvedPipeline) -> String {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return String::new();
    };
    let peeked = runtime.block_on(Pipeline::shared_clock(
        resolved,
        std::time::Duration::from_secs(3),
    ));
    let backend = &resolved.config.timeline.backend;
    match peeked {
        Ok(KeptClock::NotShared) => String::new(),
        Ok(KeptClock::NoneYet) => format!(
            "# shared clock (timeline.{backend}): none kept now; the first instance with sources sets it\n"
        ),
        Ok(KeptClock::Kept(shared)) => {
            let origin = shared.origin;
            let now = origin.driver().clock().now_ms();
            format!(
                "# shared clock ({}): started at {}, speed {}, now at {}; a run adopts it\n",
                shared.kept_at,
                format_ms(origin.start_ms),
                origin
                    .speed
                    .map_or_else(|| "max".to_string(), |speed| speed.to_string()),
                if origin.speed.is_some() {
                    format_ms(now)
                } else {
                    "wherever the generators got".to_string()
                }
            )
        }
        Err(error) => format!("# shared clock (timeline.{backend}): not read: {error}\n"),
    }
}

fn run(
    path: Option<PathBuf>,
    env: &Environment,
    flags: &Flags,
    report: Option<PathBuf>,
    junit: Option<PathBuf>,
) -> ExitCode {
    let resolved = match config::load(path.as_deref(), env, flags) {
        Ok(resolved) => resolved,
        Err(error) => return fail(&error, 2),
    };
    // Checked before anything runs: a report that cannot be written would be lost at the end.
    let report = match report
        .map(|report| ReportFile::create(report, path.as_deref()))
        .transpose()
    {
        Ok(report) => report,
        Err(error) => return fail(&error, 2),
    };
    if let (Some(report), Some(junit)) = (&report, &junit)
        && (report.path() == junit
            || std::fs::canonicalize(report.path()).ok() == std::fs::canonicalize(junit).ok()
                && junit.exists())
    {
        return fail(
            &format!("--junit {}: the same file as --report", junit.display()),
            2,
        );
    }
    let junit = match junit
        .map(|junit| ReportFile::create_for("--junit", junit, path.as_deref()))
        .transpose()
    {
        Ok(junit) => junit,
        Err(error) => return fail(&error, 2),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}"), 1),
    };
    runtime.block_on(async move {
        let mut pipeline = match Pipeline::build(resolved) {
            Ok(pipeline) => pipeline,
            Err(error) => return plugin_failure(error),
        };
        let checks = pipeline.checks();
        let measure_stages =
            checks.wants_stage_rates() && pipeline.resolved().config.load.is_some();
        let observation = (report.is_some() || measure_stages).then(|| pipeline.observe());
        if let (true, Some(observation)) = (measure_stages, &observation) {
            checks.measure_stages(observation.clone());
        }
        let started = std::time::Instant::now();
        let shutdown = Shutdown::new();
        crate::shutdown::trigger_on_signals(shutdown.clone());
        let run = match pipeline.run(shutdown).await {
            Ok(run) => run,
            Err(error) => return plugin_failure(error),
        };
        let verdict = checks.verdict();
        if let Some(verdict) = &verdict {
            eprint!("{}", verdict.table());
        }
        let outcomes = checks.outcomes();
        if !outcomes.is_empty() {
            eprint!("{}", crate::thresholds::table(&outcomes));
        }
        let mut code = ExitCode::SUCCESS;
        if let Some(junit) = junit {
            let path = junit.path().display().to_string();
            match crate::thresholds::write_junit(junit, &outcomes, started.elapsed()) {
                Ok(()) => tracing::info!("thresholds written as JUnit XML to {path}"),
                Err(error) => code = fail(&error, 1),
            }
        }
        if let (Some(report), Some(observation)) = (report, &observation) {
            let mut summary = observation.summary(&run);
            summary.verdict = verdict;
            summary.thresholds = (!outcomes.is_empty()).then(|| outcomes.clone());
            let written = write_report(report, &summary);
            if written != ExitCode::SUCCESS {
                code = written;
            }
        }
        if code == ExitCode::SUCCESS && !crate::thresholds::all_passed(&outcomes) {
            let breached = outcomes.iter().filter(|outcome| !outcome.passed).count();
            eprintln!(
                "{breached} of {} thresholds breached{}: exit code {}",
                outcomes.len(),
                checks
                    .aborted_by()
                    .map(|outcome| format!(
                        " (the run was stopped by {} {})",
                        outcome.metric, outcome.threshold
                    ))
                    .unwrap_or_default(),
                crate::thresholds::THRESHOLDS_BREACHED
            );
            code = ExitCode::from(crate::thresholds::THRESHOLDS_BREACHED);
        }
        code
    })
}

/// Writes the report and prints its table on stderr.
fn write_report(report: ReportFile, summary: &RunSummary) -> ExitCode {
    eprint!("{}", summary.table());
    let path = report.path().display().to_string();
    match report.write(&summary.to_json()) {
        Ok(()) => {
            tracing::info!("run report written to {path}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error, 1),
    }
}
