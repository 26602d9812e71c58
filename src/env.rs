//! The process environment as a value, the core's environment variables, and the list of every
//! variable the binary reads.
//!
//! Config loading reads variables from an [`Environment`] rather than from the process, so tests
//! build one from pairs instead of mutating the process environment (`set_var` is `unsafe` in
//! edition 2024).

use std::collections::BTreeMap;

/// A snapshot of environment variables.
#[derive(Clone, Debug, Default)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// The current process environment (variables that are not valid UTF-8 are left out).
    pub fn from_process() -> Environment {
        Environment(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    /// An environment holding exactly these pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environment {
        Environment(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value of `name`; an empty value counts as unset, as in the original service.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value of `name` even when empty (for `${VAR}` interpolation).
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
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
