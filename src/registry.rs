//! Finding registered plugins by role and name. Registrations come from `inventory` (made by the
//! plugin API's `#[source_config]`, `#[sink_config]` and `#[timeline_config]`); this module only
//! looks them up, so the core never names a plugin.

use crate::plugin_api::{
    EnvOverride, Plugin, Role, Sink, SinkPlugin, Source, SourcePlugin, TimelineBackend,
    TimelinePlugin, registered,
};

/// Looks up the registered plugin of role `R` called `name`; the error lists the registered ones
/// and says how an out-of-tree plugin gets linked.
pub fn lookup<R: Role + ?Sized>(name: &str) -> Result<&'static Plugin<R>, String> {
    let all = registered::<R>();
    all.iter()
        .copied()
        .find(|plugin| plugin.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|plugin| plugin.name).collect();
            format!(
                "unknown {} type {name:?}; registered {}: {} (a plugin from another crate is only \
             registered when the binary names that crate, e.g. `use my_plugins as _;`)",
                R::NOUN,
                R::SECTION,
                known.join(", ")
            )
        })
}

/// Every environment variable that plugins declare, with the plugin type declaring it.
pub fn plugin_env_vars() -> Vec<(&'static str, &'static EnvOverride)> {
    fn of<R: Role + ?Sized>() -> Vec<(&'static str, &'static EnvOverride)> {
        registered::<R>()
            .into_iter()
            .flat_map(|plugin| plugin.env.iter().map(move |entry| (plugin.name, entry)))
            .collect()
    }
    let mut all = of::<dyn Source>();
    all.extend(of::<dyn Sink>());
    all.extend(of::<dyn TimelineBackend>());
    all
}

/// One line per registered plugin, for `customersim plugins`: role, name, description, crate.
pub fn plugin_list() -> String {
    fn lines<R: Role + ?Sized>(out: &mut String) {
        let noun = R::NOUN.split(' ').next().unwrap_or(R::NOUN);
        for plugin in registered::<R>() {
            out.push_str(&format!(
                "{noun:<8} {:<15} {} [{}]\n",
                plugin.name, plugin.description, plugin.origin
            ));
        }
    }
    let mut out = String::new();
    lines::<dyn Source>(&mut out);
    lines::<dyn Sink>(&mut out);
    lines::<dyn TimelineBackend>(&mut out);
    out
}

/// Registered source types.
pub fn sources() -> Vec<&'static SourcePlugin> {
    registered()
}
/// Registered sink types.
pub fn sinks() -> Vec<&'static SinkPlugin> {
    registered()
}
/// Registered timeline backends.
pub fn timelines() -> Vec<&'static TimelinePlugin> {
    registered()
}
