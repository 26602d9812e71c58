//! Environment variables and command-line flags over the pipeline file, as typed tables.

use super::{ConfigError, Flags, PipelineConfig, PluginSpec};
use crate::env::{Environment, parse_bool};
use crate::plugin_api::{EnvKind, EnvOverride};

/// The core's environment variables: the same kind of table every plugin declares
/// ([`EnvOverride`]), applied the same way ([`apply_env`]) to the core's sections of the file.
pub const CORE_ENV: &[EnvOverride] = &[
    EnvOverride {
        var: "STORE_WIDTH",
        key: "store.width",
        kind: EnvKind::Integer,
        help: "store width: x runs over 0..width (default 6)",
    },
    EnvOverride {
        var: "STORE_HEIGHT",
        key: "store.height",
        kind: EnvKind::Integer,
        help: "store height: y runs over 0..height (default 10)",
    },
    EnvOverride {
        var: "STORE_CELL",
        key: "store.cell",
        kind: EnvKind::Integer,
        help: "walking-grid pitch in store units (default 1)",
    },
    EnvOverride {
        var: "STORE_DOOR",
        key: "store.door",
        kind: EnvKind::List,
        help: "door as x,y: where shoppers enter and leave; replaces the file's entrance/exit (default 0,0)",
    },
    EnvOverride {
        var: "ENTER_TOPIC",
        key: "topics.enter",
        kind: EnvKind::Text,
        help: "topic of enter events (default customer/enter)",
    },
    EnvOverride {
        var: "MOVE_TOPIC",
        key: "topics.move",
        kind: EnvKind::Text,
        help: "topic of move events (default customer/move)",
    },
    EnvOverride {
        var: "EXIT_TOPIC",
        key: "topics.exit",
        kind: EnvKind::Text,
        help: "topic of exit events (default customer/exit)",
    },
    EnvOverride {
        var: "FOCUS_TOPIC",
        key: "topics.focus",
        kind: EnvKind::Text,
        help: "topic of ground-truth focus events, which it turns on (the recommendation service uses customer/focus)",
    },
    EnvOverride {
        var: "FOCUS_ANNOUNCE",
        key: "focus.announce",
        kind: EnvKind::Text,
        help: "when focus events are announced: once_per_stay, or every_report as the demo's decision service (default once_per_stay)",
    },
    EnvOverride {
        var: "TIMELINE_BACKEND",
        key: "timeline.backend",
        kind: EnvKind::Text,
        help: "where future events wait: a timeline backend's name (default memory)",
    },
    EnvOverride {
        var: "CONSUME_FREQUENCY",
        key: "timeline.consume_frequency",
        kind: EnvKind::Number,
        help: "seconds between timeline polls, 0 to 3600; 0 = exactly when due (default unset: keep up with the sources)",
    },
    EnvOverride {
        var: "CONSUME_FROM",
        key: "timeline.consume_from",
        kind: EnvKind::Text,
        help: "earliest, latest or an ISO 8601 instant (default latest)",
    },
    EnvOverride {
        var: "CONSUME_BATCH_SIZE",
        key: "timeline.consume_batch_size",
        kind: EnvKind::Integer,
        help: "most events taken per poll, 1 to 1000000 (default unset: everything due)",
    },
    EnvOverride {
        var: "SIMULATION_SEED",
        key: "simulation.seed",
        kind: EnvKind::Integer,
        help: "seed of all random choices; unset = random, logged (default unset)",
    },
    EnvOverride {
        var: "SIMULATION_SPEED",
        key: "simulation.speed",
        kind: EnvKind::Text,
        help: "simulated seconds per wall second, or max (default 1.0)",
    },
    EnvOverride {
        var: "SIMULATION_START",
        key: "simulation.start",
        kind: EnvKind::Text,
        help: "now or an RFC 3339 instant (default now)",
    },
    EnvOverride {
        var: "SHARD",
        key: "shard",
        kind: EnvKind::Text,
        help: "the part of the fleet this process runs, INDEX/COUNT from 0 (e.g. 2/4; default 0/1: all of it)",
    },
    EnvOverride {
        var: "SIMULATION_DURATION",
        key: "simulation.duration",
        kind: EnvKind::Text,
        help: "close the doors after this simulated time, e.g. 8h (default unset)",
    },
];

/// `--sink` (repeatable) > `SINKS` (comma-separated) > a sink's own selecting variable
/// (`TESTING_MOCK_MQTT=true` selects the stdout sink): each replaces the sink list. A named type keeps its settings from the file when it is there.
/// Returns the positions in the file's list of the sinks kept (`None`: the file's list stands),
/// so the settings of sinks replaced are never used, nor their variables needed.
pub fn apply_sink_selection(
    config: &mut PipelineConfig,
    env: &Environment,
    flag_sinks: &[String],
) -> Result<Option<Vec<usize>>, ConfigError> {
    let names: Vec<String> = if !flag_sinks.is_empty() {
        flag_sinks
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    } else if let Some(list) = env.get("SINKS") {
        let names: Vec<String> = list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err(ConfigError(format!(
                "environment variable SINKS: invalid value {}: expected sink types separated by commas",
                crate::plugin_api::excerpt(list)
            )));
        }
        names
    } else if let Some(names) = selected_by_variable(env)? {
        names
    } else {
        return Ok(None);
    };
    let mut chosen = Vec::new();
    let mut kept = Vec::new();
    for name in names {
        let spec = match config.sinks.iter().position(|spec| spec.kind == name) {
            Some(position) => {
                kept.push(position);
                config.sinks[position].clone()
            }
            None => PluginSpec::of(&name),
        };
        chosen.push(spec);
    }
    config.sinks = chosen;
    Ok(Some(kept))
}

/// The sinks whose selecting variable (`PluginConfig::SELECTED_BY`) is set to true.
fn selected_by_variable(env: &Environment) -> Result<Option<Vec<String>>, ConfigError> {
    let mut names = Vec::new();
    for plugin in crate::registry::sinks() {
        let Some(var) = plugin.selected_by else {
            continue;
        };
        let Some(value) = env.get(var) else {
            continue;
        };
        match parse_bool(value) {
            Some(true) => names.push(plugin.name.to_string()),
            Some(false) => {}
            None => {
                return Err(ConfigError(format!(
                    "environment variable {var}: invalid value {value:?}: expected true or false"
                )));
            }
        }
    }
    Ok((!names.is_empty()).then_some(names))
}

/// Applies the command-line flags.
pub fn apply_flags(config: &mut PipelineConfig, flags: &Flags) {
    let simulation = &mut config.simulation;
    simulation.seed = flags.seed.or(simulation.seed);
    simulation.speed = flags.speed.unwrap_or(simulation.speed);
    simulation.start = flags.start.unwrap_or(simulation.start);
    simulation.duration = flags.duration.or(simulation.duration);
    config.shard = flags.shard.or(config.shard);
}

/// Applies an environment table (the core's, or a plugin type's to one of its instances) to a
/// section of the file: each variable that is set has its value checked by its kind and put at
/// its key. The typed parse that follows checks what the kind cannot (a speed, an instant).
pub fn apply_env(
    settings: &mut serde_yaml::Mapping,
    table: &[EnvOverride],
    env: &Environment,
) -> Result<(), ConfigError> {
    for entry in table {
        let Some(text) = env.get(entry.var) else {
            continue;
        };
        let invalid = |expected: &str| {
            ConfigError(format!(
                "environment variable {}: invalid value {}: expected {expected}",
                entry.var,
                crate::plugin_api::excerpt(text)
            ))
        };
        let value = match entry.kind {
            EnvKind::Text => serde_yaml::Value::String(text.to_string()),
            EnvKind::Integer => serde_yaml::Value::Number(
                text.trim()
                    .parse::<i64>()
                    .map_err(|_| invalid("a whole number"))?
                    .into(),
            ),
            EnvKind::Number => {
                let number = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| invalid("a number"))?;
                serde_yaml::Value::Number(number.into())
            }
            EnvKind::List => serde_yaml::Value::Sequence(
                text.split(',')
                    .map(|item| item.trim().parse::<i64>().map(serde_yaml::Value::from))
                    .collect::<Result<_, _>>()
                    .map_err(|_| invalid("whole numbers separated by commas, e.g. 0,0"))?,
            ),
            EnvKind::Boolean => {
                serde_yaml::Value::Bool(parse_bool(text).ok_or_else(|| invalid("true or false"))?)
            }
        };
        set_path(settings, entry.key, value);
    }
    Ok(())
}

fn set_path(map: &mut serde_yaml::Mapping, dotted: &str, value: serde_yaml::Value) {
    match dotted.split_once('.') {
        None => {
            map.insert(serde_yaml::Value::String(dotted.to_string()), value);
        }
        Some((head, rest)) => {
            let key = serde_yaml::Value::String(head.to_string());
            let child = map
                .entry(key)
                .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
            if !child.is_mapping() {
                *child = serde_yaml::Value::Mapping(Default::default());
            }
            if let serde_yaml::Value::Mapping(child) = child {
                set_path(child, rest, value);
            }
        }
    }
}
