//! An out-of-tree customersim plugin: a "mystery shopper" who walks a fixed route.
//!
//! This crate shows what a team does to add its own source without touching customersim: depend on
//! the library and the plugin API, mark a typed config with `#[source_config]` (which derives its
//! deserializer, refusing unknown keys, and registers it), implement [`PluginConfig`] and
//! [`SourceConfig`], and reuse the library's command line. The binary has the built-in plugins
//! enabled in `Cargo.toml` (the stdout sink and the in-memory timeline) plus this one
//! (`custom-source plugins` lists them).
//!
//! ```yaml
//! sources:
//!   - type: mystery_shopper
//!     id: "900001"
//!     route: [[0, 1], [1, 2], [2, 2]]
//!     at: "2026-03-01T09:00:00Z"   # optional; default: the simulation start
//!     step: 30s
//! ```

// Plugins register through `inventory`, and the linker drops a crate that nothing names, so a
// plugin crate this binary depends on but never names would compile and then be missing from
// `custom-source plugins` without a word. With this lint that mistake is a compile error; name
// each plugin crate with `use my_plugins as _;`. Test builds are exempt because they also get the
// dev-dependencies (tempfile), which only the integration tests use.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

use std::time::Duration;

use customersim_plugin_api::{
    BuildContext, CustomerId, Event, EventKind, PluginConfig, PluginError, Source, SourceConfig,
    SourceContext, async_trait, duration, source_config,
};

/// Config of the `mystery_shopper` source.
#[source_config]
#[derive(Debug)]
pub struct MysteryShopperConfig {
    /// The shopper's id as published.
    #[serde(default = "default_id")]
    pub id: String,
    /// Points visited in order after entering; the shopper then walks to the exit and leaves.
    pub route: Vec<[u32; 2]>,
    /// When the shopper enters (RFC 3339); default: the simulation start.
    #[serde(default)]
    pub at: Option<String>,
    /// Time between two steps of the route.
    #[serde(default = "default_step", with = "duration::required")]
    pub step: Duration,
}

fn default_id() -> String {
    "900001".into()
}
fn default_step() -> Duration {
    Duration::from_secs(30)
}

impl PluginConfig for MysteryShopperConfig {
    const NAME: &'static str = "mystery_shopper";
    const DESCRIPTION: &'static str =
        "one shopper on a fixed route (example of an out-of-tree plugin)";
}

impl MysteryShopperConfig {
    /// `at` in milliseconds since the epoch, parsed with the library's own instant parser (so the
    /// example needs no date crate).
    fn at_ms(&self) -> Result<Option<i64>, PluginError> {
        self.at
            .as_deref()
            .map(|text| {
                customersim::config::parse_instant(text)
                    .map(|instant| instant.timestamp_millis())
                    .map_err(|why| PluginError::Config(format!("at: {why}")))
            })
            .transpose()
    }
}

impl SourceConfig for MysteryShopperConfig {
    /// Everything that can be wrong with the values is found here, so `custom-source validate`
    /// reports it too (validate runs `check` only, never `build`).
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        let (width, height) = (cx.store.width(), cx.store.height());
        if let Some((index, cell)) = self
            .route
            .iter()
            .enumerate()
            .find(|(_, [x, y])| *x >= width || *y >= height)
        {
            return Err(PluginError::Config(format!(
                "route[{index}]: cell {cell:?} is outside the {width}x{height} grid"
            )));
        }
        self.at_ms().map(drop)
    }

    /// Runs after a successful `check`.
    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        Ok(Box::new(MysteryShopper {
            at_ms: self.at_ms()?,
            config: self,
            exit: cx.store.exit(),
        }))
    }
}

struct MysteryShopper {
    config: MysteryShopperConfig,
    at_ms: Option<i64>,
    /// Where the shopper leaves (the store's exit, as published).
    exit: (u32, u32),
}

#[async_trait]
impl Source for MysteryShopper {
    /// The whole route is scheduled at once; pacing the clock until then keeps a virtual clock
    /// from running past the first steps before they are on the timeline.
    fn paces_clock(&self) -> bool {
        true
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError> {
        let start = self.at_ms.unwrap_or_else(|| cx.clock.origin_ms());
        let step = self.config.step.as_millis() as i64;
        let customer = CustomerId::parse(&self.config.id);
        let (exit_x, exit_y) = (i64::from(self.exit.0), i64::from(self.exit.1));
        let mut kinds = vec![EventKind::Enter];
        kinds.extend(self.config.route.iter().map(|[x, y]| EventKind::Move {
            x: i64::from(*x),
            y: i64::from(*y),
        }));
        kinds.push(EventKind::Move {
            x: exit_x,
            y: exit_y,
        });
        kinds.push(EventKind::Exit);
        let events = kinds
            .into_iter()
            .enumerate()
            .map(|(index, kind)| Event {
                due_ms: start + index as i64 * step,
                customer: customer.clone(),
                kind,
                store: 0,
                stamp: Default::default(),
            })
            .collect();
        cx.schedule
            .schedule(events)
            .await
            .map_err(|error| PluginError::Fatal(error.to_string()))
    }
}

fn main() -> std::process::ExitCode {
    customersim::cli::main()
}

#[cfg(test)]
mod tests {
    use customersim::plugin_api::{Source, registered};

    /// The shared contract, run in a build that links this crate's plugin: the same rules as the
    /// built-in plugins (snake_case name, one-line description, unknown keys refused by name,
    /// idempotent resolution, environment variables).
    #[test]
    fn the_plugins_of_this_binary_meet_the_contract() {
        let sources: Vec<&str> = registered::<dyn Source>()
            .iter()
            .map(|plugin| plugin.name)
            .collect();
        assert!(sources.contains(&"mystery_shopper"), "{sources:?}");
        if let Err(problems) = customersim::contract::check_registered_plugins() {
            panic!("plugin contract broken:\n{}", problems.join("\n"));
        }
    }
}
