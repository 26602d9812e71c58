//! The pipeline configuration: loading, overrides, validation (what users write is in the
//! README's *Configuration* section).
//!
//! Loading goes: file text (or the built-in default) → `${VAR}` interpolation → parse into
//! [`PipelineConfig`] (unknown keys rejected with file and line) → the core's environment table
//! ([`overrides::CORE_ENV`]) → each plugin type's own environment table → command-line flags →
//! checks → each plugin section resolved by its type (unknown keys rejected, defaults filled) →
//! no two plugins listening on one port. An unset `${VAR}` without a default is refused once the
//! sink selection shows whether its value is used. Precedence is therefore flag > environment >
//! YAML > default.

mod interpolate;
mod listeners;
pub mod overrides;
pub mod schema;
mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use interpolate::{interpolate, protect};
pub use types::*;

use crate::env::Environment;
use crate::plugin_api::{
    Fleet, Plugin, Role, Shard, Sink, Source, StoreLayout, TimelineBackend, Zone,
};
use crate::registry;

/// The built-in pipeline, used when no `--config` is given (same as `configs/default.yaml`).
pub const DEFAULT_PIPELINE: &str = include_str!("../../configs/default.yaml");

/// The largest pipeline file accepted (1 MiB): the largest store plans take a few kilobytes, and
/// parsing costs a multiple of the text, so a bound on the text bounds the memory.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The deepest nesting of collections accepted in a pipeline file: a real pipeline nests about 6
/// deep; hostile nesting costs the YAML parser far more time than its size suggests.
pub const MAX_NESTING: usize = 64;

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
    pub shard: Option<Shard>,
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
    /// The config as `customersim validate` prints it: every plugin section with its defaults
    /// filled in and its secrets masked (by their [`crate::plugin_api::Secret`] types).
    pub shown: serde_yaml::Value,
    /// The checked floor plan of `store:`, walking grid computed.
    pub layout: StoreLayout,
    /// The stores (`fleet:`; one without it) and the shard of them this process runs.
    pub fleet: Fleet,
}

/// Loads and resolves the pipeline at `path` (or the built-in default).
pub fn load(
    path: Option<&Path>,
    env: &Environment,
    flags: &Flags,
) -> Result<ResolvedPipeline, ConfigError> {
    let (text, origin, config_dir) = match path {
        Some(path) => {
            let text = read_config_file(path)?;
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

/// Reads a pipeline file of at most [`MAX_CONFIG_BYTES`], without reading more than that.
fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let cannot = |why: String| {
        ConfigError(format!(
            "{}: cannot read config file: {why}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|error| cannot(error.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| cannot(error.to_string()))?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError(format!(
            "{}: the config file is larger than {MAX_CONFIG_BYTES} bytes (1 MiB), the most accepted",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|error| {
        cannot(format!(
            "not valid UTF-8 (at byte {})",
            error.utf8_error().valid_up_to()
        ))
    })
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
    let in_file = |why: String| ConfigError(format!("{origin}: {why}"));
    if text.len() > MAX_CONFIG_BYTES {
        return Err(in_file(format!(
            "the config is larger than {MAX_CONFIG_BYTES} bytes (1 MiB), the most accepted"
        )));
    }
    check_nesting(text).map_err(in_file)?;
    env.check_readable(crate::env::known_variables())
        .map_err(ConfigError)?;
    let (protected, placeholders) = protect(text).map_err(in_file)?;
    let mut tree = match serde_yaml::from_str::<serde_yaml::Value>(&protected) {
        Ok(serde_yaml::Value::Null) => serde_yaml::Value::Mapping(Default::default()),
        Ok(tree @ serde_yaml::Value::Mapping(_)) => tree,
        Ok(_) => return Err(in_file(
            "expected a mapping of sections (simulation, store, topics, timeline, sources, sinks)"
                .into(),
        )),
        Err(error) => return Err(in_file(error_excerpt(&error.to_string()))),
    };
    let unset = interpolate(&mut tree, env, &placeholders).map_err(in_file)?;
    // An unset variable in a sink's settings matters only if the sink is used (`--sink stdout`
    // runs the built-in pipeline without MQTT_HOST); anywhere else it is an error now.
    let (in_sinks, elsewhere): (Vec<_>, Vec<_>) = unset
        .into_iter()
        .partition(|unset| sink_position(&unset.key).is_some());
    if let Some(unset) = elsewhere.first() {
        return Err(in_file(unset.to_string()));
    }
    // The file on its own first, so its mistakes are reported with their lines.
    typed::<PipelineConfig>(tree.clone()).map_err(|why| in_file(with_line(&why, text)))?;
    let serde_yaml::Value::Mapping(tree) = tree else {
        unreachable!("a pipeline that parsed is a mapping");
    };
    let mut config = with_core_env(tree, env)?;
    let kept_sinks = overrides::apply_sink_selection(&mut config, env, &flags.sinks)?;
    if let Some(unset) = in_sinks.iter().find(|unset| {
        let position = sink_position(&unset.key);
        kept_sinks
            .as_ref()
            .is_none_or(|kept| position.is_some_and(|position| kept.contains(&position)))
    }) {
        return Err(in_file(format!(
            "{unset}; or run other sinks (--sink, SINKS)"
        )));
    }
    overrides::apply_flags(&mut config, flags);
    if let Some(load) = &config.load {
        load.check()
            .map_err(|(key, why)| ConfigError(format!("{origin}: {key} {why}")))?;
        // Without a duration of its own the run lasts as long as its stages.
        if config.simulation.duration.is_none() {
            config.simulation.duration = Some(load.total());
        }
    }
    check(&config).map_err(|(key, why)| match core_variable_for(key, env) {
        Some((var, value)) => ConfigError(format!(
            "environment variable {var}: invalid value {}: {key} {why}",
            crate::plugin_api::excerpt(value)
        )),
        None => ConfigError(format!("{origin}: {key} {why}")),
    })?;
    if let Some(thresholds) = &config.thresholds {
        crate::thresholds::check(thresholds, &measured_metrics(&config))
            .map_err(|why| ConfigError(format!("{origin}: {why}")))?;
    }
    let layout =
        store_layout(&config.store, text).map_err(|why| ConfigError(format!("{origin}: {why}")))?;
    if let Some(topic) = &config.topics.focus
        && !layout.has_focus_departments()
    {
        tracing::warn!(
            "{origin}: topics.focus is {topic:?} but no department of store.zones may be named by \
             a focus (there is none, or each has `focus: false`): no focus event will be published"
        );
    }
    if config.topics.focus.is_none() && config.focus != FocusConfig::default() {
        tracing::warn!(
            "{origin}: focus.announce is {} but topics.focus (FOCUS_TOPIC) is unset: no focus \
             event will be published",
            config.focus.announce.as_str()
        );
    }
    let fleet = fleet_of(&config, env, flags).map_err(|why| match why {
        FleetError::Shard(why) => ConfigError(why),
        FleetError::Key(why) => ConfigError(format!("{origin}: {why}")),
    })?;
    let at = |place: String, why: String| {
        ConfigError(format!(
            "{origin}: {place}: {}",
            with_line(&error_excerpt(&why), text)
        ))
    };
    let mut shown = config.clone();
    // Who listens where (`sources[0] (type: …)`, address), to refuse two servers on one port.
    let mut listening = Vec::new();
    for (index, spec) in config.sources.iter_mut().enumerate() {
        let place = format!("sources[{index}]");
        let plugin =
            registry::lookup::<dyn Source>(&spec.kind).map_err(|why| at(place.clone(), why))?;
        let place = format!("{place} (type: {})", spec.kind);
        shown.sources[index].settings = resolve_section(plugin, &mut spec.settings, env)
            .map_err(|why| at(place.clone(), why))?;
        let addresses = plugin.listens(serde_yaml::Value::Mapping(spec.settings.clone()));
        listening.extend(
            addresses
                .into_iter()
                .map(|address| (place.clone(), address)),
        );
    }
    for (index, spec) in config.sinks.iter_mut().enumerate() {
        let place = format!("sinks[{index}]");
        let plugin =
            registry::lookup::<dyn Sink>(&spec.kind).map_err(|why| at(place.clone(), why))?;
        let place = format!("{place} (type: {})", spec.kind);
        shown.sinks[index].settings = resolve_section(plugin, &mut spec.settings, env)
            .map_err(|why| at(place.clone(), why))?;
        let addresses = plugin.listens(serde_yaml::Value::Mapping(spec.settings.clone()));
        listening.extend(
            addresses
                .into_iter()
                .map(|address| (place.clone(), address)),
        );
    }
    listeners::check(&listening).map_err(|why| ConfigError(format!("{origin}: {why}")))?;
    let timeline = &mut config.timeline;
    registry::lookup::<dyn TimelineBackend>(&timeline.backend)
        .map_err(|why| at("timeline.backend".into(), why))?;
    for (name, settings) in timeline.backends.iter_mut() {
        let name = name.as_str().unwrap_or_default().to_string();
        let place = format!("timeline.{name}");
        let plugin = registry::lookup::<dyn TimelineBackend>(&name).map_err(|_| {
            at(
                "timeline".into(),
                format!(
                    "unknown key {name:?}: expected backend, consume_frequency, consume_from, consume_batch_size or the settings of a timeline backend ({})",
                    registry::timelines().iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let mut mapping = match std::mem::take(settings) {
            serde_yaml::Value::Mapping(map) => map,
            serde_yaml::Value::Null => Default::default(),
            _ => return Err(at(place, "expected a mapping of settings".into())),
        };
        let resolved = resolve_section(plugin, &mut mapping, env).map_err(|why| at(place, why))?;
        *settings = serde_yaml::Value::Mapping(mapping);
        shown
            .timeline
            .backends
            .insert(name.into(), serde_yaml::Value::Mapping(resolved));
    }
    if !timeline.backends.contains_key(timeline.backend.as_str()) {
        let plugin = registry::lookup::<dyn TimelineBackend>(&timeline.backend)
            .map_err(|why| at("timeline.backend".into(), why))?;
        let mut mapping = serde_yaml::Mapping::new();
        let resolved = resolve_section(plugin, &mut mapping, env)
            .map_err(|why| at(format!("timeline.{}", timeline.backend), why))?;
        if !mapping.is_empty() {
            timeline.backends.insert(
                timeline.backend.clone().into(),
                serde_yaml::Value::Mapping(mapping),
            );
        }
        if !resolved.is_empty() {
            shown.timeline.backends.insert(
                timeline.backend.clone().into(),
                serde_yaml::Value::Mapping(resolved),
            );
        }
    }
    let (seed, seed_drawn) = match config.simulation.seed {
        Some(seed) => (seed, false),
        None => (crate::plugin_api::rand::random::<u64>() >> 11, true),
    };
    // A drawn seed stays `null` in what `validate` shows: each run draws its own (and logs it), so
    // a number here would be one that no run uses.
    if !seed_drawn {
        shown.simulation.seed = Some(seed);
    }
    let shown = serde_yaml::to_value(&shown).map_err(|error| ConfigError(error.to_string()))?;
    Ok(ResolvedPipeline {
        config,
        seed,
        seed_drawn,
        config_dir,
        origin: origin.to_string(),
        shown,
        layout,
        fleet,
    })
}

/// The position in the file's `sinks:` of the sink a key (`sinks[1].host`) is under.
fn sink_position(key: &str) -> Option<usize> {
    key.strip_prefix("sinks[")?.split_once(']')?.0.parse().ok()
}

/// Deserializes `T` from a parsed tree; the error names the path of the key it is about
/// (`store.width: invalid type …`), as parsing the text would.
fn typed<T: serde::de::DeserializeOwned>(tree: serde_yaml::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(tree).map_err(|error| {
        let path = error.path().to_string();
        let why = error_excerpt(&error.into_inner().to_string());
        if path == "." || path.is_empty() {
            why
        } else {
            format!("{path}: {why}")
        }
    })
}

/// Most bytes of an error message from a parser: its messages quote the values they refuse, and
/// a value may be huge (a 100 MB `listen`).
const MAX_ERROR_BYTES: usize = 512;

/// `message` cut to [`MAX_ERROR_BYTES`] (at a character boundary), saying how much was left out.
pub fn error_excerpt(message: &str) -> String {
    if message.len() <= MAX_ERROR_BYTES {
        return message.to_string();
    }
    let mut cut = MAX_ERROR_BYTES;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} more bytes)", &message[..cut], message.len() - cut)
}

/// Refuses collections nested deeper than [`MAX_NESTING`] before the YAML parser sees them: flow
/// brackets (`[[[…`) and block indentation (`- - - …`, deep indents) both count.
fn check_nesting(text: &str) -> Result<(), String> {
    let mut flow_depth = 0usize;
    let mut quote: Option<char> = None;
    for (index, line) in text.lines().enumerate() {
        let too_deep = || {
            Err(format!(
                "line {}: collections nested more than {MAX_NESTING} deep",
                index + 1
            ))
        };
        if quote.is_none() && flow_depth == 0 {
            // Block structure: each level takes at least one more column of indentation or one
            // more `- ` / `? ` marker.
            let mut rest = line.trim_start_matches(' ');
            let mut level = line.len() - rest.len();
            while let Some(after) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("? ")) {
                let after_spaces = after.trim_start_matches(' ');
                level += rest.len() - after_spaces.len();
                rest = after_spaces;
            }
            if level > 2 * MAX_NESTING && !rest.is_empty() {
                return too_deep();
            }
        }
        let mut previous = ' ';
        for c in line.chars() {
            match quote {
                Some(open) => {
                    if c == open {
                        quote = None;
                    }
                }
                None => match c {
                    '#' if previous == ' ' || previous == '\t' => break,
                    '"' | '\'' if flow_depth > 0 || previous == ' ' || previous == ':' => {
                        quote = Some(c)
                    }
                    '[' | '{' => {
                        flow_depth += 1;
                        if flow_depth > MAX_NESTING {
                            return too_deep();
                        }
                    }
                    ']' | '}' => flow_depth = flow_depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
        if quote == Some('\'') && flow_depth == 0 {
            quote = None;
        }
    }
    Ok(())
}

/// What is wrong with the fleet: the shard (blamed on what set it) or a key of the file.
enum FleetError {
    Shard(String),
    Key(String),
}

/// The stores of `fleet:` (one store without it) and the shard of `shard:` / SHARD / --shard;
/// `{store}` in a topic needs a fleet, and a fleet needs at least one store per shard.
fn fleet_of(
    config: &PipelineConfig,
    env: &Environment,
    flags: &Flags,
) -> Result<Fleet, FleetError> {
    let shard = config.shard.unwrap_or_default();
    let blame_shard = |why: String| {
        FleetError::Shard(if flags.shard.is_some() {
            format!("--shard {shard}: {why}")
        } else if let Some(value) = env.get("SHARD") {
            format!("environment variable SHARD: invalid value {value:?}: {why}")
        } else {
            format!("shard: {shard}: {why}")
        })
    };
    let Some(fleet) = &config.fleet else {
        let topics = config.topics.patterns();
        let names = ["enter", "move", "exit", "focus"];
        if let Some((name, topic)) = names
            .iter()
            .zip(&topics)
            .find(|(_, topic)| topic.contains(crate::plugin_api::event::STORE_PLACEHOLDER))
        {
            return Err(FleetError::Key(format!(
                "topics.{name}: {topic:?} names {{store}}, which needs a `fleet:` of stores"
            )));
        }
        if shard.count > 1 {
            return Err(blame_shard(
                "the pipeline has one store (no `fleet:`), so there is nothing to shard".into(),
            ));
        }
        return Ok(Fleet::single());
    };
    let ids = fleet.stores.ids();
    if ids.len() < shard.count as usize {
        return Err(blame_shard(format!(
            "{} shards for a fleet of {} stores: some shards would run no store",
            shard.count,
            ids.len()
        )));
    }
    Fleet::new(ids, shard).map_err(|why| FleetError::Key(format!("fleet.stores: {why}")))
}

/// The file's core sections with the core's environment table applied. A value the typed parse
/// refuses is blamed on the variable that set it.
fn with_core_env(
    tree: serde_yaml::Mapping,
    env: &Environment,
) -> Result<PipelineConfig, ConfigError> {
    let mut with_env = tree.clone();
    overrides::apply_env(&mut with_env, overrides::CORE_ENV, env)?;
    if env.get("STORE_DOOR").is_some()
        && let Some(serde_yaml::Value::Mapping(store)) = with_env.get_mut("store")
    {
        // The one door replaces whatever entrance and exit the file gives.
        store.remove("entrance");
        store.remove("exit");
    }
    typed(serde_yaml::Value::Mapping(with_env)).map_err(|error| {
        for entry in overrides::CORE_ENV {
            let Some(value) = env.get(entry.var) else {
                continue;
            };
            let mut alone = tree.clone();
            let one = std::slice::from_ref(entry);
            if overrides::apply_env(&mut alone, one, env).is_ok()
                && let Err(why) = typed::<PipelineConfig>(serde_yaml::Value::Mapping(alone))
            {
                return ConfigError(format!(
                    "environment variable {}: invalid value {}: {why}",
                    entry.var,
                    crate::plugin_api::excerpt(value)
                ));
            }
        }
        ConfigError(error)
    })
}

/// The core variable that set `key`, and its value, when one did.
fn core_variable_for<'a>(key: &str, env: &'a Environment) -> Option<(&'static str, &'a str)> {
    overrides::CORE_ENV
        .iter()
        .filter(|entry| entry.key == key)
        .find_map(|entry| env.get(entry.var).map(|value| (entry.var, value)))
}

/// Applies a plugin's environment table to its settings, then has the plugin resolve them:
/// unknown keys refused, defaults filled in (returned for `validate`; the settings themselves stay
/// as given, so secrets reach the plugin unmasked).
fn resolve_section<R: Role + ?Sized>(
    plugin: &Plugin<R>,
    settings: &mut serde_yaml::Mapping,
    env: &Environment,
) -> Result<serde_yaml::Mapping, String> {
    overrides::apply_env(settings, plugin.env, env).map_err(|error| error.0)?;
    match plugin.resolve(serde_yaml::Value::Mapping(settings.clone()))? {
        serde_yaml::Value::Mapping(map) => Ok(map),
        serde_yaml::Value::Null => Ok(Default::default()),
        _ => Err("plugin config must be a mapping".into()),
    }
}

/// Adds "at line N" to an unknown-field message that lacks a position (serde_yaml has none for
/// top-level keys, and plugin sections are parsed from a value that lost them).
fn with_line(message: &str, text: &str) -> String {
    if message.contains(" line ") {
        return message.to_string();
    }
    let unknown = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field);
    // Otherwise the key at the end of the path the message starts with (`store.width: …`).
    let at_path = || {
        let (path, _) = message.split_once(": ")?;
        let last = path.rsplit('.').next()?;
        (!path.contains(' ') && !last.is_empty() && !last.ends_with(']')).then_some(last)
    };
    let Some(field) = unknown.or_else(at_path) else {
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

/// The longest CONSUME_FREQUENCY accepted: an hour between polls (longer is no pacing anyone
/// needs, and beyond what timers hold for 1e300).
pub const MAX_CONSUME_FREQUENCY: f64 = 3600.0;

/// The largest CONSUME_BATCH_SIZE accepted (a claim's buffer is sized by it).
pub const MAX_CONSUME_BATCH_SIZE: usize = 1_000_000;

/// The metrics a run of `config` measures, which thresholds may name: replies with
/// expectations, delivery with the delivery check, publish lateness on a scaled clock, and
/// always events per second.
pub fn measured_metrics(config: &PipelineConfig) -> Vec<&'static str> {
    use crate::thresholds::Metric;
    let mut metrics = vec![Metric::EventsPerSecond.name()];
    if config.simulation.speed != Speed::Max {
        metrics.push(Metric::PublishLateness.name());
    }
    if !config.expect.is_empty() {
        metrics.extend(
            [
                Metric::ReplyLatency,
                Metric::RepliesMissing,
                Metric::RepliesLate,
                Metric::RepliesUnexpected,
                Metric::RepliesInvalid,
            ]
            .map(Metric::name),
        );
    }
    if config.delivery_check.is_some() {
        metrics.push(Metric::DeliveryLost.name());
    }
    metrics
}

/// Checks the core's values; an error names the key and says what is wrong with it.
fn check(config: &PipelineConfig) -> Result<(), (&'static str, String)> {
    let timeline = &config.timeline;
    if let Some(frequency) = timeline.consume_frequency
        && !(0.0..=MAX_CONSUME_FREQUENCY).contains(&frequency)
    {
        return Err((
            "timeline.consume_frequency",
            format!("must be a number of seconds from 0 to {MAX_CONSUME_FREQUENCY}"),
        ));
    }
    if let Some(batch) = timeline.consume_batch_size
        && !(1..=MAX_CONSUME_BATCH_SIZE).contains(&batch)
    {
        return Err((
            "timeline.consume_batch_size",
            format!("must be from 1 to {MAX_CONSUME_BATCH_SIZE}"),
        ));
    }
    if let (Start::At(start), Some(duration)) =
        (config.simulation.start, config.simulation.duration)
        && start
            .checked_add_signed(
                chrono::Duration::from_std(duration).unwrap_or(chrono::TimeDelta::MAX),
            )
            .is_none_or(|close| chrono::Datelike::year(&close) > 9999)
    {
        return Err((
            "simulation.duration",
            "is too long: the doors would close after the year 9999".into(),
        ));
    }
    if config.sources.is_empty() && config.timeline.backend == "memory" {
        return Err((
            "sources:",
            "empty; with the memory timeline nothing would ever be published \
             (sources: [] makes a publish-only worker for a shared timeline)"
                .into(),
        ));
    }
    if config.sinks.is_empty() {
        return Err(("sinks:", "the pipeline needs at least one sink".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
