//! Finding registered plugin types by name. Registrations come from `inventory`; this module
//! only looks them up, so the core never names a plugin.

use crate::plugin_api::{EnvOverride, Plugin, Role, plugins};

/// Looks up a registered plugin type of `role` by `name`; the error lists the registered ones.
pub fn lookup(role: Role, name: &str) -> Result<&'static Plugin, String> {
    let of_role: Vec<&'static Plugin> =
        plugins().into_iter().filter(|p| p.role() == role).collect();
    of_role
        .iter()
        .copied()
        .find(|plugin| plugin.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = of_role.iter().map(|plugin| plugin.name).collect();
            format!(
                "unknown {} type {name:?}; registered {}: {}",
                role.noun(),
                role.section(),
                known.join(", ")
            )
        })
}

/// Every environment variable that plugins declare, with the plugin type declaring it.
pub fn plugin_env_vars() -> Vec<(&'static str, &'static EnvOverride)> {
    plugins()
        .into_iter()
        .flat_map(|plugin| plugin.env.iter().map(move |entry| (plugin.name, entry)))
        .collect()
}
