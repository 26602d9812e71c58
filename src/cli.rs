//! The command line: `customersim run | validate | plugins` (the README's *Command line* section
//! documents the flags).
//!
//! Exit codes: 0 done (also after SIGINT/SIGTERM), 1 a failure while running (a broker refused the
//! credentials, a sink died), 2 bad configuration, environment variable, file or flag.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{self, Flags, Speed, Start};
use crate::env::Environment;
use crate::pipeline::Pipeline;
use crate::plugin_api::host::Shutdown;
use crate::plugin_api::{PluginError, Shard};
use crate::registry;

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
        /// The part of the fleet to run: `INDEX/COUNT`, INDEX from 0 (e.g. `2/4`).
        #[arg(long)]
        shard: Option<Shard>,
    },
    /// Check the config and print it resolved (secrets masked); non-zero exit on any error.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
    },
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
        Command::Run {
            config,
            seed,
            speed,
            start,
            duration,
            sinks,
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
            run(config.config, &env, &flags)
        }
    }
}

/// `customersim plugins`: one line per registered plugin.
pub fn plugin_list() -> String {
    registry::plugin_list()
}

fn fail(error: &dyn std::fmt::Display, code: u8) -> ExitCode {
    tracing::error!("{error}");
    eprintln!("error: {error}");
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
    // The resolved layout, as comments so the output stays the YAML of the pipeline.
    text.push_str("# resolved layout:\n");
    for line in resolved.layout.to_string().lines() {
        text.push_str(&format!("#   {line}\n"));
    }
    print!("{text}");
    ExitCode::SUCCESS
}

fn run(path: Option<PathBuf>, env: &Environment, flags: &Flags) -> ExitCode {
    let resolved = match config::load(path.as_deref(), env, flags) {
        Ok(resolved) => resolved,
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
        let pipeline = match Pipeline::build(resolved) {
            Ok(pipeline) => pipeline,
            Err(error) => return plugin_failure(error),
        };
        let shutdown = Shutdown::new();
        crate::shutdown::trigger_on_signals(shutdown.clone());
        match pipeline.run(shutdown).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(error) => plugin_failure(error),
        }
    })
}
