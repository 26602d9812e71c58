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
            if let Some(feature) = compiled_out_feature(name) {
                return format!(
                    "unknown {} type {name:?}: {name} is a built-in plugin that this build of \
                     customersim leaves out; build it with the cargo feature {feature:?} (in a \
                     crate of your own: `customersim = {{ …, features = [\"{feature}\"] }}`); \
                     registered {}: {}",
                    R::NOUN,
                    R::SECTION,
                    known.join(", ")
                );
            }
            format!(
                "unknown {} type {name:?}; registered {}: {} (a plugin from another crate is only \
             registered when the binary names that crate, e.g. `use my_plugins as _;`)",
                R::NOUN,
                R::SECTION,
                known.join(", ")
            )
        })
}

/// The built-in plugins by `type:` name, with the cargo feature of this crate that compiles each
/// in (all are on by default). A `type:` that is one of them but not registered was left out of
/// the build: the error names the feature, not an out-of-tree crate to link.
pub const BUILT_IN_FEATURES: &[(&str, &str)] = &[
    ("random_walk", "random-walk"),
    ("shopping_trip", "shopping-trip"),
    ("customer_list", "customer-list"),
    ("http_ingress", "http-ingress"),
    ("stdout", "stdout"),
    ("mqtt", "mqtt"),
    ("amqp", "amqp"),
    ("live_view", "live-view"),
    ("memory", "memory-timeline"),
    ("redis", "redis-timeline"),
];

/// The feature that brings back `name` when it is a built-in plugin (see [`BUILT_IN_FEATURES`]).
fn compiled_out_feature(name: &str) -> Option<&'static str> {
    BUILT_IN_FEATURES
        .iter()
        .find(|(plugin, _)| *plugin == name)
        .map(|(_, feature)| *feature)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// With every feature on (the default build), each built-in of the table is registered under
    /// its name, so the table cannot name a plugin that does not exist or miss a renamed one.
    #[test]
    #[cfg(all(
        feature = "random-walk",
        feature = "shopping-trip",
        feature = "customer-list",
        feature = "http-ingress",
        feature = "stdout",
        feature = "mqtt",
        feature = "amqp",
        feature = "live-view",
        feature = "memory-timeline",
        feature = "redis-timeline"
    ))]
    fn every_built_in_of_the_feature_table_is_registered() {
        let list = plugin_list();
        let registered: Vec<&str> = list
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .collect();
        for (name, _) in BUILT_IN_FEATURES {
            assert!(registered.contains(name), "{name}: {registered:?}");
        }
        assert_eq!(registered.len(), BUILT_IN_FEATURES.len(), "{registered:?}");
    }
}
