//! Sources, sinks, their typed configs and their registration.
//!
//! A plugin is a config type implementing [`SourceConfig`] or [`SinkConfig`] (with serde's
//! `deny_unknown_fields` and a doc comment on every field) plus one `register_source!(MyConfig);`
//! line. The core finds every registered plugin through `inventory` and never names one.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::{BuildContext, SinkContext, SourceContext};
use crate::event::Event;

/// Why a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Bad configuration or input file: the message names the key, variable, file or line.
    /// The CLI exits with code 2.
    #[error("{0}")]
    Config(String),
    /// A failure while running that retrying will not fix (e.g. the broker refused the
    /// credentials). The CLI exits with code 1.
    #[error("{0}")]
    Fatal(String),
}

/// Something that puts events on the timeline (or publishes them at once).
#[crate::async_trait]
pub trait Source: Send {
    /// `true` for sources that generate simulated-time events ahead of the clock: a virtual clock
    /// then waits for this source's [`crate::Watermark`]. Sources driven from outside (HTTP) keep
    /// the default `false`.
    fn paces_clock(&self) -> bool {
        false
    }

    /// Runs until done or until `cx.shutdown` fires.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError>;
}

/// Somewhere events are delivered.
#[crate::async_trait]
pub trait Sink: Send {
    /// Connects, spawns background tasks; permanent errors (bad credentials) fail here.
    async fn start(&mut self, _cx: &SinkContext) -> Result<(), PluginError> {
        Ok(())
    }

    /// Takes responsibility for a time-ordered batch. Returns once the sink buffered it; waits
    /// while its buffer is full (back-pressure). Never drops events silently.
    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError>;

    /// Delivers what was accepted (waiting a bounded time for acknowledgements) and disconnects.
    async fn close(self: Box<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

/// How an environment variable's value is checked before it overrides a config key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvKind {
    /// Any text.
    Text,
    /// Text that must never be logged or printed.
    Secret,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Boolean,
}

/// An environment variable that overrides one key of a plugin's config (precedence: flag > env >
/// YAML > default). The core applies the table of each plugin type to each of its instances.
#[derive(Clone, Copy, Debug)]
pub struct EnvOverride {
    /// The variable, e.g. `CUSTOMERS_AVERAGE_IN_STORE`.
    pub var: &'static str,
    /// The config key it sets; dots reach into nested maps (`tls.ca_file`).
    pub key: &'static str,
    /// How the value is checked and typed.
    pub kind: EnvKind,
    /// One line for the README and `customersim plugins`.
    pub help: &'static str,
}

/// The typed config of a source type; its [`SourceConfig::build`] is the factory.
pub trait SourceConfig: DeserializeOwned + Serialize + 'static {
    /// The `type:` name in the pipeline file.
    const NAME: &'static str;
    /// One line for `customersim plugins`.
    const DESCRIPTION: &'static str;
    /// Environment variables that override this config's keys.
    const ENV: &'static [EnvOverride] = &[];
    /// Turns the config into a source; may read files, must not connect anywhere.
    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError>;
}

/// The typed config of a sink type; its [`SinkConfig::build`] is the factory.
pub trait SinkConfig: DeserializeOwned + Serialize + 'static {
    /// The `type:` name in the pipeline file.
    const NAME: &'static str;
    /// One line for `customersim plugins`.
    const DESCRIPTION: &'static str;
    /// Environment variables that override this config's keys.
    const ENV: &'static [EnvOverride] = &[];
    /// Turns the config into a sink; may read files, must not connect anywhere.
    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError>;
}

/// Builds a source from its raw config section.
pub type BuildSource =
    fn(serde_yaml::Value, &mut BuildContext) -> Result<Box<dyn Source>, PluginError>;
/// Builds a sink from its raw config section.
pub type BuildSink = fn(serde_yaml::Value, &mut BuildContext) -> Result<Box<dyn Sink>, PluginError>;

/// Whether a plugin type produces events or delivers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Source,
    Sink,
}

impl Role {
    /// The pipeline file's list for this role (`sources` / `sinks`).
    pub fn section(self) -> &'static str {
        match self {
            Role::Source => "sources",
            Role::Sink => "sinks",
        }
    }

    /// The role's name in messages (`source` / `sink`).
    pub fn noun(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Sink => "sink",
        }
    }
}

/// Turns a raw config section into a running plugin.
#[derive(Clone, Copy)]
pub enum Factory {
    Source(BuildSource),
    Sink(BuildSink),
}

/// A registered plugin type: what the core needs to list it, check its config and build it.
pub struct Plugin {
    /// The `type:` name in the pipeline file.
    pub name: &'static str,
    /// One line for `customersim plugins`.
    pub description: &'static str,
    /// Environment variables overriding its config keys.
    pub env: &'static [EnvOverride],
    /// Deserializes a config (rejecting unknown keys) and serializes it back with defaults filled.
    pub resolve: fn(serde_yaml::Value) -> Result<serde_yaml::Value, String>,
    /// Builds it.
    pub factory: Factory,
}

inventory::collect!(Plugin);

impl Plugin {
    /// The registration of source config type `C` (used by [`register_source!`]).
    pub const fn source<C: SourceConfig>() -> Plugin {
        Plugin {
            name: C::NAME,
            description: C::DESCRIPTION,
            env: C::ENV,
            resolve: resolve_config::<C>,
            factory: Factory::Source(build_source::<C>),
        }
    }

    /// The registration of sink config type `C` (used by [`register_sink!`]).
    pub const fn sink<C: SinkConfig>() -> Plugin {
        Plugin {
            name: C::NAME,
            description: C::DESCRIPTION,
            env: C::ENV,
            resolve: resolve_config::<C>,
            factory: Factory::Sink(build_sink::<C>),
        }
    }

    /// Whether it is a source or a sink.
    pub fn role(&self) -> Role {
        match self.factory {
            Factory::Source(_) => Role::Source,
            Factory::Sink(_) => Role::Sink,
        }
    }
}

fn parse_config<C: DeserializeOwned>(raw: serde_yaml::Value) -> Result<C, String> {
    let raw = match raw {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        other => other,
    };
    serde_yaml::from_value(raw).map_err(|error| error.to_string())
}

fn resolve_config<C: DeserializeOwned + Serialize>(
    raw: serde_yaml::Value,
) -> Result<serde_yaml::Value, String> {
    let config: C = parse_config(raw)?;
    serde_yaml::to_value(&config).map_err(|error| error.to_string())
}

fn build_source<C: SourceConfig>(
    raw: serde_yaml::Value,
    cx: &mut BuildContext,
) -> Result<Box<dyn Source>, PluginError> {
    parse_config::<C>(raw)
        .map_err(PluginError::Config)?
        .build(cx)
}

fn build_sink<C: SinkConfig>(
    raw: serde_yaml::Value,
    cx: &mut BuildContext,
) -> Result<Box<dyn Sink>, PluginError> {
    parse_config::<C>(raw)
        .map_err(PluginError::Config)?
        .build(cx)
}

/// Every registered plugin type, sources first, each role sorted by name.
pub fn plugins() -> Vec<&'static Plugin> {
    let mut all: Vec<_> = inventory::iter::<Plugin>.into_iter().collect();
    all.sort_by_key(|plugin| (plugin.role(), plugin.name));
    all
}

/// Registers a source config type: `register_source!(RandomWalkConfig);`
#[macro_export]
macro_rules! register_source {
    ($config:ty) => {
        $crate::inventory::submit! { $crate::Plugin::source::<$config>() }
    };
}

/// Registers a sink config type: `register_sink!(StdoutConfig);`
#[macro_export]
macro_rules! register_sink {
    ($config:ty) => {
        $crate::inventory::submit! { $crate::Plugin::sink::<$config>() }
    };
}
