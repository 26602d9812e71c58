//! The pipeline configuration: loading, overrides, validation (DESIGN.md §3).
//!
//! Loading goes: file text (or the built-in default) → `${VAR}` interpolation → parse into
//! [`PipelineConfig`] (unknown keys rejected with file and line) → the core's environment table
//! ([`overrides::CORE_ENV`]) → each plugin type's own environment table → command-line flags →
//! checks → each plugin section resolved by its type (unknown keys rejected, defaults filled).
//! Precedence is therefore flag > environment > YAML > default.

mod interpolate;
mod mask;
pub mod overrides;
mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use interpolate::interpolate;
pub use mask::{mask_url_password, masked_yaml};
pub use types::*;

use crate::env::Environment;
use crate::plugin_api::{Role, StoreLayout, Zone};
use crate::registry;

/// The built-in pipeline, used when no `--config` is given (same as `configs/default.yaml`).
pub const DEFAULT_PIPELINE: &str = include_str!("../../configs/default.yaml");

/// A configuration error: the message names the file, line, key or variable. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Settings given on the command line; each overrides the environment and the file.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub seed: Option<u64>,
    pub speed: Option<Speed>,
    pub start: Option<Start>,
    pub duration: Option<Duration>,
    pub sinks: Vec<String>,
}

/// A pipeline ready to build: every override applied, every plugin section resolved.
#[derive(Clone, Debug)]
pub struct ResolvedPipeline {
    pub config: PipelineConfig,
    /// The seed in use: the configured one, or one drawn at random (logged so a run can be replayed).
    pub seed: u64,
    /// Whether the seed was drawn rather than configured.
    pub seed_drawn: bool,
    /// Folder that relative paths in plugin configs resolve against.
    pub config_dir: PathBuf,
    /// Where the config came from, for messages.
    pub origin: String,
    /// The checked floor plan of `store:`, walking grid computed.
    pub layout: StoreLayout,
}

/// Loads and resolves the pipeline at `path` (or the built-in default).
pub fn load(
    path: Option<&Path>,
    env: &Environment,
    flags: &Flags,
) -> Result<ResolvedPipeline, ConfigError> {
    let (text, origin, config_dir) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                ConfigError(format!(
                    "{}: cannot read config file: {error}",
                    path.display()
                ))
            })?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            (text, path.display().to_string(), dir)
        }
        None => (
            DEFAULT_PIPELINE.to_string(),
            "built-in default pipeline".to_string(),
            default_config_dir(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))),
        ),
    };
    resolve_text(&text, &origin, config_dir, env, flags)
}

/// Where the built-in default pipeline's relative paths (its `customers.csv`) resolve: the
/// built-in pipeline is `configs/default.yaml`, so from a folder holding `configs/` (the repository,
/// the Docker image's working directory) they resolve against `configs/`, as with
/// `--config configs/default.yaml`; elsewhere against the current directory, where the original
/// service looked for its `customers.csv`.
pub fn default_config_dir(current_dir: &Path) -> PathBuf {
    let configs = current_dir.join("configs");
    if configs.is_dir() {
        configs
    } else {
        current_dir.to_path_buf()
    }
}

/// Resolves pipeline text; `origin` names it in errors.
pub fn resolve_text(
    text: &str,
    origin: &str,
    config_dir: PathBuf,
    env: &Environment,
    flags: &Flags,
) -> Result<ResolvedPipeline, ConfigError> {
    let text = interpolate(text, env).map_err(|why| ConfigError(format!("{origin}: {why}")))?;
    let mut config: PipelineConfig = serde_yaml::from_str(&text).map_err(|error| {
        ConfigError(format!(
            "{origin}: {}",
            with_line(&error.to_string(), &text)
        ))
    })?;
    overrides::apply_core_env(&mut config, env)?;
    overrides::apply_sink_selection(&mut config, env, &flags.sinks)?;
    overrides::apply_flags(&mut config, flags);
    check(&config).map_err(|why| ConfigError(format!("{origin}: {why}")))?;
    let layout = store_layout(&config.store, &text)
        .map_err(|why| ConfigError(format!("{origin}: {why}")))?;
    for (role, specs) in [
        (Role::Source, &mut config.sources),
        (Role::Sink, &mut config.sinks),
    ] {
        for (index, spec) in specs.iter_mut().enumerate() {
            let section = role.section();
            let plugin = registry::lookup(role, &spec.kind)
                .map_err(|why| ConfigError(format!("{origin}: {section}[{index}]: {why}")))?;
            overrides::apply_plugin_env(spec, plugin.env, env)?;
            let settings = std::mem::take(&mut spec.settings);
            spec.settings = (plugin.resolve)(serde_yaml::Value::Mapping(settings))
                .map_err(|why| {
                    ConfigError(format!(
                        "{origin}: {section}[{index}] (type: {}): {}",
                        spec.kind,
                        with_line(&why, &text)
                    ))
                })
                .and_then(|value| match value {
                    serde_yaml::Value::Mapping(map) => Ok(map),
                    serde_yaml::Value::Null => Ok(Default::default()),
                    _ => Err(ConfigError(format!(
                        "{section}[{index}]: plugin config must be a mapping"
                    ))),
                })?;
        }
    }
    let (seed, seed_drawn) = match config.simulation.seed {
        Some(seed) => (seed, false),
        None => (crate::plugin_api::rand::random::<u64>() >> 11, true),
    };
    Ok(ResolvedPipeline {
        config,
        seed,
        seed_drawn,
        config_dir,
        origin: origin.to_string(),
        layout,
    })
}

/// Adds "at line N" to an unknown-field message that lacks a position (serde_yaml has none for
/// top-level keys, and plugin sections are parsed from a value that lost them).
fn with_line(message: &str, text: &str) -> String {
    if message.contains(" line ") {
        return message.to_string();
    }
    let field = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field);
    let Some(field) = field else {
        return message.to_string();
    };
    let line = text.lines().position(|line| {
        let line = line
            .trim_start()
            .trim_start_matches("- ")
            .trim_start_matches('{')
            .trim_start();
        line.starts_with(&format!("{field}:"))
            || line.contains(&format!(" {field}:"))
            || line.contains(&format!("{{{field}:"))
    });
    match line {
        Some(index) => format!("{message} at line {}", index + 1),
        None => message.to_string(),
    }
}

/// Checks `store:` and computes its walking grid. Messages name the key under `store.`, a zone by
/// index and name, and the zone's line in `text` when its name shows where it is.
fn store_layout(store: &StoreConfig, text: &str) -> Result<StoreLayout, String> {
    let spec = store.spec()?;
    StoreLayout::new(spec).map_err(|error| {
        let mut message = error.message;
        if store.door.is_some() || (store.entrance.is_none() && store.exit.is_none()) {
            // Both doors came from `door` (or its default): name the key the user wrote.
            for key in ["entrance ", "exit "] {
                if let Some(rest) = message.strip_prefix(key) {
                    message = format!("door {rest}");
                }
            }
        }
        let line = error
            .zone
            .and_then(|index| {
                let name = &store.zones[index].name;
                let same = |zone: &&Zone| &zone.name == name;
                let nth = store.zones[..index].iter().filter(same).count();
                let total = store.zones.iter().filter(same).count();
                zone_line(text, name, nth, total)
            })
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default();
        format!("store.{message}{line}")
    })
}

/// The line (1-based) of the `nth` (from 0) of the `total` zones named `name`: the `nth` line after a `zones:` key
/// that gives `name:` that name (plain or quoted), when there are as many such lines as zones of
/// that name (otherwise the text does not show which line is which, and `None`).
fn zone_line(text: &str, name: &str, nth: usize, total: usize) -> Option<usize> {
    let start = text
        .lines()
        .position(|line| line.trim_start().starts_with("zones:"))?;
    let spellings = [
        format!("name: {name}"),
        format!("name: \"{name}\""),
        format!("name: '{name}'"),
    ];
    let found: Vec<usize> = text
        .lines()
        .enumerate()
        .skip(start)
        .filter(|(_, line)| {
            spellings.iter().any(|spelling| {
                line.match_indices(spelling.as_str()).any(|(at, _)| {
                    let after = &line[at + spelling.len()..];
                    after.is_empty() || after.starts_with([',', '}', ' ', '#'])
                })
            })
        })
        .map(|(index, _)| index + 1)
        .collect();
    (found.len() == total).then(|| found[nth])
}

fn check(config: &PipelineConfig) -> Result<(), String> {
    let timeline = &config.timeline;
    if !timeline.consume_frequency.is_finite() || timeline.consume_frequency < 0.0 {
        return Err("timeline.consume_frequency must be a number of seconds >= 0".into());
    }
    if timeline.consume_batch_size == 0 {
        return Err("timeline.consume_batch_size must be at least 1".into());
    }
    if timeline.backend == TimelineBackend::Redis {
        let redis = &timeline.redis;
        let shown = mask_url_password(&redis.url);
        if !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://")) {
            return Err(format!(
                "timeline.redis.url {shown:?}: expected redis://host:port/db or rediss://… (REDIS_URL)"
            ));
        }
        if let Err(error) = redis::Client::open(redis.url.as_str()) {
            return Err(format!("timeline.redis.url {shown:?}: {error} (REDIS_URL)"));
        }
        if redis.key.is_empty() || redis.key.contains(['{', '}']) {
            return Err("timeline.redis.key must be non-empty text without braces".into());
        }
        if redis.lease < Duration::from_secs(1) {
            return Err("timeline.redis.lease must be at least 1s".into());
        }
    }
    if config.sources.is_empty() && config.timeline.backend == TimelineBackend::Memory {
        return Err(
            "sources: empty; with the memory timeline nothing would ever be published \
                    (sources: [] makes a publish-only worker for a shared timeline)"
                .into(),
        );
    }
    if config.sinks.is_empty() {
        return Err("sinks: the pipeline needs at least one sink".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
