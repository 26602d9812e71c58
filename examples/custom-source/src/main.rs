//! An out-of-tree customersim plugin: a "mystery shopper" who walks a fixed route.
//!
//! This crate shows what a team does to add its own source without touching customersim: depend on
//! the library, implement [`SourceConfig`] for a typed config, register it with
//! `register_source!`, and reuse the library's command line. The resulting binary has every
//! built-in plugin plus this one (`custom-source plugins` lists them all).
//!
//! ```yaml
//! sources:
//!   - type: mystery_shopper
//!     id: "900001"
//!     route: [[0, 1], [1, 2], [2, 2]]
//!     at: "2026-03-01T09:00:00Z"   # optional; default: the simulation start
//!     step: 30s
//! ```

use std::time::Duration;

use customersim::plugin_api::serde::{Deserialize, Serialize};
use customersim::plugin_api::{
    BuildContext, CustomerId, Event, EventKind, PluginError, Source, SourceConfig, SourceContext,
    StoreLayout, async_trait, duration, register_source,
};

/// Config of the `mystery_shopper` source.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, crate = "customersim::plugin_api::serde")]
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

impl SourceConfig for MysteryShopperConfig {
    const NAME: &'static str = "mystery_shopper";
    const DESCRIPTION: &'static str =
        "one shopper on a fixed route (example of an out-of-tree plugin)";

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        let store: &StoreLayout = &cx.store;
        let (width, height) = (store.width(), store.height());
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
        // The library's own instant parser, so the example needs no date crate.
        let at_ms = match &self.at {
            Some(text) => Some(
                customersim::config::parse_instant(text)
                    .map_err(|why| PluginError::Config(format!("at: {why}")))?
                    .timestamp_millis(),
            ),
            None => None,
        };
        Ok(Box::new(MysteryShopper {
            config: self,
            at_ms,
            exit: store.exit(),
        }))
    }
}

register_source!(MysteryShopperConfig);

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
            })
            .collect();
        cx.timeline
            .schedule(events)
            .await
            .map_err(|error| PluginError::Fatal(error.to_string()))
    }
}

fn main() -> std::process::ExitCode {
    customersim::cli::main()
}
