//! Finding registered plugin types by name. Registrations come from `inventory`; this module
//! only looks them up, so the core never names a plugin.

use crate::plugin_api::{EnvOverride, sink_plugins, source_plugins};

/// The parts of a registration that config resolution needs, for sources and sinks alike.
pub struct PluginEntry {
    pub name: &'static str,
    pub env: &'static [EnvOverride],
    pub resolve: fn(serde_yaml::Value) -> Result<serde_yaml::Value, String>,
}

/// Looks up `name` among the `section`'s (`sources` or `sinks`) registered types; the error
/// lists the registered ones.
pub fn lookup(section: &str, name: &str) -> Result<PluginEntry, String> {
    let entries: Vec<PluginEntry> = if section == "sources" {
        source_plugins()
            .into_iter()
            .map(|p| PluginEntry {
                name: p.name,
                env: p.env,
                resolve: p.resolve,
            })
            .collect()
    } else {
        sink_plugins()
            .into_iter()
            .map(|p| PluginEntry {
                name: p.name,
                env: p.env,
                resolve: p.resolve,
            })
            .collect()
    };
    let known: Vec<&str> = entries.iter().map(|entry| entry.name).collect();
    entries
        .into_iter()
        .find(|entry| entry.name == name)
        .ok_or_else(|| {
            let kind = if section == "sources" {
                "source"
            } else {
                "sink"
            };
            format!(
                "unknown {kind} type {name:?}; registered {section}: {}",
                known.join(", ")
            )
        })
}

/// Every environment variable that plugins declare, with the plugin type declaring it.
pub fn plugin_env_vars() -> Vec<(&'static str, &'static EnvOverride)> {
    let mut all: Vec<_> = source_plugins()
        .into_iter()
        .flat_map(|p| p.env.iter().map(move |e| (p.name, e)))
        .collect();
    all.extend(
        sink_plugins()
            .into_iter()
            .flat_map(|p| p.env.iter().map(move |e| (p.name, e))),
    );
    all
}
