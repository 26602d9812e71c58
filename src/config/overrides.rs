//! Environment variables and command-line flags over the pipeline file, as typed tables.

use super::{ConfigError, Flags, PipelineConfig, PluginSpec};
use crate::env::{Environment, parse_bool};
use crate::plugin_api::{EnvKind, EnvOverride, duration};

/// One of the core's environment variables: its name, what it sets and how.
pub struct CoreEnv {
    /// The variable.
    pub var: &'static str,
    /// The config key it overrides, for the README and messages.
    pub key: &'static str,
    /// One line for the README.
    pub help: &'static str,
    apply: fn(&mut PipelineConfig, &str) -> Result<(), String>,
}

fn positive_u32(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number >= 1".into()),
    }
}

/// The core's environment variables. Plugins declare their own ([`EnvOverride`]).
pub const CORE_ENV: &[CoreEnv] = &[
    CoreEnv {
        var: "STORE_WIDTH",
        key: "store.width",
        help: "store width: x runs over 0..width (default 6)",
        apply: |c, v| {
            c.store.width = positive_u32(v)?;
            Ok(())
        },
    },
    CoreEnv {
        var: "STORE_HEIGHT",
        key: "store.height",
        help: "store height: y runs over 0..height (default 10)",
        apply: |c, v| {
            c.store.height = positive_u32(v)?;
            Ok(())
        },
    },
    CoreEnv {
        var: "STORE_CELL",
        key: "store.cell",
        help: "walking-grid pitch in store units (default 1)",
        apply: |c, v| {
            c.store.cell = positive_u32(v)?;
            Ok(())
        },
    },
    CoreEnv {
        var: "STORE_DOOR",
        key: "store.door",
        help: "door as x,y: where shoppers enter and leave; replaces the file's entrance/exit (default 0,0)",
        apply: |c, v| {
            let parts: Vec<_> = v.split(',').map(|p| p.trim().parse::<u32>()).collect();
            match parts.as_slice() {
                [Ok(x), Ok(y)] => {
                    c.store.door = Some([*x, *y]);
                    c.store.entrance = None;
                    c.store.exit = None;
                    Ok(())
                }
                _ => Err("expected x,y with whole numbers, e.g. 0,0".into()),
            }
        },
    },
    CoreEnv {
        var: "ENTER_TOPIC",
        key: "topics.enter",
        help: "topic of enter events (default customer/enter)",
        apply: |c, v| {
            c.topics.enter = v.to_string();
            Ok(())
        },
    },
    CoreEnv {
        var: "MOVE_TOPIC",
        key: "topics.move",
        help: "topic of move events (default customer/move)",
        apply: |c, v| {
            c.topics.moves = v.to_string();
            Ok(())
        },
    },
    CoreEnv {
        var: "EXIT_TOPIC",
        key: "topics.exit",
        help: "topic of exit events (default customer/exit)",
        apply: |c, v| {
            c.topics.exit = v.to_string();
            Ok(())
        },
    },
    CoreEnv {
        var: "FOCUS_TOPIC",
        key: "topics.focus",
        help: "topic of ground-truth focus events, which it turns on (the recommendation service uses customer/focus)",
        apply: |c, v| {
            c.topics.focus = Some(v.trim().to_string());
            Ok(())
        },
    },
    CoreEnv {
        var: "TIMELINE_BACKEND",
        key: "timeline.backend",
        help: "where future events wait (default memory)",
        apply: |c, v| {
            c.timeline.backend = v.parse()?;
            Ok(())
        },
    },
    CoreEnv {
        var: "REDIS_URL",
        key: "timeline.redis.url",
        help: "Redis of the redis timeline backend, redis:// or rediss:// (TLS); password never logged (default redis://127.0.0.1:6379/0)",
        apply: |c, v| {
            c.timeline.redis.url = v.trim().to_string();
            Ok(())
        },
    },
    CoreEnv {
        var: "REDIS_KEY",
        key: "timeline.redis.key",
        help: "namespace of the simulation's keys in Redis (default customersim)",
        apply: |c, v| {
            c.timeline.redis.key = v.trim().to_string();
            Ok(())
        },
    },
    CoreEnv {
        var: "CONSUME_FREQUENCY",
        key: "timeline.consume_frequency",
        help: "seconds between timeline polls; 0 = exactly when due (default 1.0)",
        apply: |c, v| match v.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && f >= 0.0 => {
                c.timeline.consume_frequency = f;
                Ok(())
            }
            _ => Err("expected a number of seconds >= 0".into()),
        },
    },
    CoreEnv {
        var: "CONSUME_FROM",
        key: "timeline.consume_from",
        help: "earliest, latest or an ISO 8601 instant (default latest)",
        apply: |c, v| {
            c.timeline.consume_from = v.parse()?;
            Ok(())
        },
    },
    CoreEnv {
        var: "CONSUME_BATCH_SIZE",
        key: "timeline.consume_batch_size",
        help: "most events taken per poll (default 10)",
        apply: |c, v| {
            c.timeline.consume_batch_size = positive_u32(v)? as usize;
            Ok(())
        },
    },
    CoreEnv {
        var: "SIMULATION_SEED",
        key: "simulation.seed",
        help: "seed of all random choices; unset = random, logged (default unset)",
        apply: |c, v| {
            let seed = v
                .trim()
                .parse::<u64>()
                .map_err(|_| "expected a whole number >= 0")?;
            c.simulation.seed = Some(seed);
            Ok(())
        },
    },
    CoreEnv {
        var: "SIMULATION_SPEED",
        key: "simulation.speed",
        help: "simulated seconds per wall second, or max (default 1.0)",
        apply: |c, v| {
            c.simulation.speed = v.parse()?;
            Ok(())
        },
    },
    CoreEnv {
        var: "SIMULATION_START",
        key: "simulation.start",
        help: "now or an RFC 3339 instant (default now)",
        apply: |c, v| {
            c.simulation.start = v.parse()?;
            Ok(())
        },
    },
    CoreEnv {
        var: "SIMULATION_DURATION",
        key: "simulation.duration",
        help: "close the doors after this simulated time, e.g. 8h (default unset)",
        apply: |c, v| {
            c.simulation.duration = Some(duration::parse(v)?);
            Ok(())
        },
    },
];

/// Applies the core's environment variables.
pub fn apply_core_env(config: &mut PipelineConfig, env: &Environment) -> Result<(), ConfigError> {
    for entry in CORE_ENV {
        if let Some(value) = env.get(entry.var) {
            (entry.apply)(config, value).map_err(|why| {
                ConfigError(format!(
                    "environment variable {}: invalid value {value:?}: {why}",
                    entry.var
                ))
            })?;
        }
    }
    Ok(())
}

/// `--sink` (repeatable) > `SINKS` (comma-separated) > `TESTING_MOCK_MQTT=true` (stdout): each
/// replaces the sink list. A named type keeps its settings from the file when it is there.
pub fn apply_sink_selection(
    config: &mut PipelineConfig,
    env: &Environment,
    flag_sinks: &[String],
) -> Result<(), ConfigError> {
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
                "environment variable SINKS: invalid value {list:?}: expected sink types separated by commas"
            )));
        }
        names
    } else if let Some(mock) = env.get("TESTING_MOCK_MQTT") {
        match parse_bool(mock) {
            Some(true) => vec!["stdout".to_string()],
            Some(false) => return Ok(()),
            None => {
                return Err(ConfigError(format!(
                    "environment variable TESTING_MOCK_MQTT: invalid value {mock:?}: expected true or false"
                )));
            }
        }
    } else {
        return Ok(());
    };
    let mut chosen = Vec::new();
    for name in names {
        let spec = config
            .sinks
            .iter()
            .find(|spec| spec.kind == name)
            .cloned()
            .unwrap_or_else(|| PluginSpec::of(&name));
        chosen.push(spec);
    }
    config.sinks = chosen;
    Ok(())
}

/// Applies the command-line flags.
pub fn apply_flags(config: &mut PipelineConfig, flags: &Flags) {
    let simulation = &mut config.simulation;
    simulation.seed = flags.seed.or(simulation.seed);
    simulation.speed = flags.speed.unwrap_or(simulation.speed);
    simulation.start = flags.start.unwrap_or(simulation.start);
    simulation.duration = flags.duration.or(simulation.duration);
}

/// Applies a plugin type's environment table to one of its instances.
pub fn apply_plugin_env(
    spec: &mut PluginSpec,
    table: &[EnvOverride],
    env: &Environment,
) -> Result<(), ConfigError> {
    for entry in table {
        let Some(text) = env.get(entry.var) else {
            continue;
        };
        let invalid = |expected: &str| {
            let shown = if entry.kind == EnvKind::Secret {
                "******".to_string()
            } else {
                format!("{text:?}")
            };
            ConfigError(format!(
                "environment variable {}: invalid value {shown}: expected {expected}",
                entry.var
            ))
        };
        let value = match entry.kind {
            EnvKind::Text | EnvKind::Secret => serde_yaml::Value::String(text.to_string()),
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
            EnvKind::Boolean => {
                serde_yaml::Value::Bool(parse_bool(text).ok_or_else(|| invalid("true or false"))?)
            }
        };
        set_path(&mut spec.settings, entry.key, value);
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
