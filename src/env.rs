//! The process environment as a value, the core's environment variables, and the list of every
//! variable the binary reads.
//!
//! Config loading reads variables from an [`Environment`] rather than from the process, so tests
//! build one from pairs instead of mutating the process environment (`set_var` is `unsafe` in
//! edition 2024).

use std::collections::{BTreeMap, BTreeSet};

/// The longest value a variable the binary reads may have (64 KiB): far more than any host,
/// URL, token or path, and a bound on what a mistaken value can cost.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A snapshot of environment variables.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    /// Variables whose value is not valid UTF-8: kept by name, so reading one is an error rather
    /// than "unset" (an unreadable HTTP_TOKEN must not turn authentication off).
    unreadable: BTreeSet<String>,
}

impl Environment {
    /// The current process environment.
    pub fn from_process() -> Environment {
        let mut env = Environment::default();
        for (name, value) in std::env::vars_os() {
            let Ok(name) = name.into_string() else {
                continue;
            };
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(name, value);
                }
                Err(_) => {
                    env.unreadable.insert(name);
                }
            }
        }
        env
    }

    /// An environment holding exactly these pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environment {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            unreadable: BTreeSet::new(),
        }
    }

    /// This environment with `name` set to a value that is not valid UTF-8 (for tests).
    pub fn with_unreadable(mut self, name: &str) -> Environment {
        self.vars.remove(name);
        self.unreadable.insert(name.to_string());
        self
    }

    /// The value of `name`; an empty value counts as unset, as in the original service.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value of `name` even when empty (for `${VAR}` interpolation).
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Whether `name` is set to a value that is not valid UTF-8.
    pub fn is_unreadable(&self, name: &str) -> bool {
        self.unreadable.contains(name)
    }

    /// Refuses a variable of `names` that is set but cannot be used: not valid UTF-8, or longer
    /// than [`MAX_VALUE_BYTES`]. The message names the variable, never its value.
    pub fn check_readable<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        for name in names {
            if self.is_unreadable(name) {
                return Err(format!(
                    "environment variable {name}: the value is not valid UTF-8"
                ));
            }
            if let Some(value) = self.get_raw(name)
                && value.len() > MAX_VALUE_BYTES
            {
                return Err(format!(
                    "environment variable {name}: the value is {} bytes, more than the {MAX_VALUE_BYTES} allowed",
                    value.len()
                ));
            }
        }
        Ok(())
    }
}

/// Parses a boolean the way users write one in an environment variable.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Variables the binary reads itself, outside the core's and the plugins' override tables.
const READ_DIRECTLY: &[&str] = &["SINKS", "LOG_LEVEL", "LOG_FILENAME"];

/// Every environment variable the binary reads: the core's overrides, each registered plugin's,
/// and the few read directly. A test harness removes exactly these, so a developer's shell never
/// leaks into a test, and a variable a plugin adds is covered without anyone keeping a list.
pub fn known_variables() -> Vec<&'static str> {
    let core = crate::config::overrides::CORE_ENV
        .iter()
        .map(|entry| entry.var);
    let plugins = crate::registry::plugin_env_vars()
        .into_iter()
        .map(|(_, entry)| entry.var);
    // A sink's selecting variable (`TESTING_MOCK_MQTT` selects stdout).
    let selecting = crate::registry::sinks()
        .into_iter()
        .filter_map(|plugin| plugin.selected_by);
    let mut variables: Vec<&'static str> = READ_DIRECTLY
        .iter()
        .copied()
        .chain(core)
        .chain(plugins)
        .chain(selecting)
        .collect();
    variables.sort_unstable();
    variables.dedup();
    variables
}
