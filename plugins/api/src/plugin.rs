//! Plugin registration: what every plugin config type declares, and the registrations the core
//! finds through `inventory`.
//!
//! A plugin is a config type marked `#[source_config]`, `#[sink_config]` or `#[timeline_config]`
//! that implements [`PluginConfig`] and the role's trait ([`crate::SourceConfig`],
//! [`crate::SinkConfig`], [`crate::TimelineConfig`]). The attribute derives serde's traits with
//! `deny_unknown_fields` (an unknown key is an error, never silently dropped) and registers the
//! type, so neither can be forgotten. The core finds every registration and never names a plugin.

use std::net::SocketAddr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::BuildContext;
use crate::env::EnvOverride;
use crate::error::PluginError;
use crate::sink::{Sink, SinkConfig};
use crate::source::{Source, SourceConfig};
use crate::subscribe::Subscriber;
use crate::timeline::{TimelineBackend, TimelineConfig};

/// What every plugin config type declares about itself.
pub trait PluginConfig: DeserializeOwned + Serialize + schemars::JsonSchema + 'static {
    /// The `type:` name in the pipeline file (`timeline.backend:` for timeline backends).
    const NAME: &'static str;
    /// One line for `customersim plugins`.
    const DESCRIPTION: &'static str;
    /// Environment variables that override this config's keys.
    const ENV: &'static [EnvOverride] = &[];
    /// A boolean environment variable that, set to true, makes this the pipeline's only sink
    /// (the original service's `TESTING_MOCK_MQTT=true` selects printing instead of publishing).
    const SELECTED_BY: Option<&'static str> = None;

    /// The message brokers this plugin publishes to, for the pipeline's AsyncAPI document
    /// (`customersim asyncapi`): a sink that publishes to a broker describes it, without its
    /// credentials. Default: none (stdout, a web page, a source).
    fn brokers(&self) -> Vec<BrokerEndpoint> {
        Vec::new()
    }

    /// The socket addresses this plugin will listen on (an HTTP server's `listen`), so the core
    /// refuses a pipeline whose plugins would bind one port twice before anything runs. Only the
    /// addresses that parse: a bad one is the plugin's check's to report. Default: none.
    fn listens(&self) -> Vec<SocketAddr> {
        Vec::new()
    }
}

/// A message broker a sink publishes to, as an event-API description (AsyncAPI) names it.
#[derive(Clone, Debug)]
pub struct BrokerEndpoint {
    /// The AsyncAPI protocol name: `mqtt`, `secure-mqtt`, `amqp`, `amqps`.
    pub protocol: &'static str,
    /// The protocol's version (`3.1.1`, `5`, `0.9.1`), when the sink chooses one.
    pub protocol_version: Option<String>,
    /// `host:port`. Never credentials.
    pub host: String,
    /// The path of the broker's URL (AMQP: the virtual host), if any.
    pub pathname: Option<String>,
    /// One line on how the sink publishes there (QoS, exchange), for readers of the document.
    pub description: String,
    /// The address a topic has on this broker (AMQP: the routing key, `/` replaced by `.`).
    pub address: fn(&str) -> String,
}

/// The three roles a plugin can have, as the type the registration builds.
pub trait Role: 'static {
    /// The role's name in messages (`source`).
    const NOUN: &'static str;
    /// Where instances of it are listed in the pipeline file (`sources`).
    const SECTION: &'static str;
    /// Every registered plugin of this role, in no particular order.
    fn all() -> Vec<&'static Plugin<Self>>;
}

impl Role for dyn Source {
    const NOUN: &'static str = "source";
    const SECTION: &'static str = "sources";
    fn all() -> Vec<&'static Plugin<Self>> {
        inventory::iter::<SourcePlugin>.into_iter().collect()
    }
}
impl Role for dyn Sink {
    const NOUN: &'static str = "sink";
    const SECTION: &'static str = "sinks";
    fn all() -> Vec<&'static Plugin<Self>> {
        inventory::iter::<SinkPlugin>.into_iter().collect()
    }
}
impl Role for dyn TimelineBackend {
    const NOUN: &'static str = "timeline backend";
    const SECTION: &'static str = "timeline.backend";
    fn all() -> Vec<&'static Plugin<Self>> {
        inventory::iter::<TimelinePlugin>.into_iter().collect()
    }
}

/// A registered plugin type of role `R`: what the core needs to list it, check its config and
/// build it.
pub struct Plugin<R: ?Sized + 'static> {
    /// The `type:` name in the pipeline file.
    pub name: &'static str,
    /// One line for `customersim plugins`.
    pub description: &'static str,
    /// Environment variables overriding its config keys.
    pub env: &'static [EnvOverride],
    /// The crate (name and version) that registered it, shown by `customersim plugins`.
    pub origin: &'static str,
    /// A boolean environment variable that, when true, makes this the only sink.
    pub selected_by: Option<&'static str>,
    resolve: fn(serde_yaml::Value) -> Result<serde_yaml::Value, String>,
    brokers: fn(serde_yaml::Value) -> Vec<BrokerEndpoint>,
    schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    listens: fn(serde_yaml::Value) -> Vec<SocketAddr>,
    check: fn(serde_yaml::Value, &BuildContext) -> Result<(), PluginError>,
    build: fn(serde_yaml::Value, &mut BuildContext) -> Result<Box<R>, PluginError>,
    subscriber: SubscriberFactory,
}

/// How a registration makes a subscriber from a config section (sinks only).
type SubscriberFactory =
    fn(serde_yaml::Value, &BuildContext) -> Option<Result<Box<dyn Subscriber>, PluginError>>;

/// A registered source type.
pub type SourcePlugin = Plugin<dyn Source>;
/// A registered sink type.
pub type SinkPlugin = Plugin<dyn Sink>;
/// A registered timeline backend.
pub type TimelinePlugin = Plugin<dyn TimelineBackend>;

inventory::collect!(SourcePlugin);
inventory::collect!(SinkPlugin);
inventory::collect!(TimelinePlugin);

impl<R: ?Sized + 'static> Plugin<R> {
    /// Deserializes a config section (unknown keys refused) and serializes it back with every
    /// default filled in, for `validate`.
    pub fn resolve(&self, raw: serde_yaml::Value) -> Result<serde_yaml::Value, String> {
        (self.resolve)(raw)
    }

    /// The JSON Schema of this plugin's config section (without its `type`), from the config
    /// type: its fields, their doc comments and defaults.
    pub fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        (self.schema)(generator)
    }

    /// The brokers a resolved config section publishes to ([`PluginConfig::brokers`]); none for a
    /// section that does not parse (its check says why).
    pub fn brokers(&self, raw: serde_yaml::Value) -> Vec<BrokerEndpoint> {
        (self.brokers)(raw)
    }

    /// The addresses a config section will listen on ([`PluginConfig::listens`]); none for a
    /// section that does not parse (its check says why).
    pub fn listens(&self, raw: serde_yaml::Value) -> Vec<SocketAddr> {
        (self.listens)(raw)
    }

    /// Checks a config section without side effects: nothing is connected, bound or spawned.
    pub fn check(&self, raw: serde_yaml::Value, cx: &BuildContext) -> Result<(), PluginError> {
        (self.check)(raw, cx)
    }

    /// A subscription to the broker a sink's config section publishes to
    /// ([`SinkConfig::subscriber`]); `None` for a plugin that cannot read anything back.
    pub fn subscriber(
        &self,
        raw: serde_yaml::Value,
        cx: &BuildContext,
    ) -> Option<Result<Box<dyn Subscriber>, PluginError>> {
        (self.subscriber)(raw, cx)
    }

    /// Builds the plugin from its config section.
    pub fn build(
        &self,
        raw: serde_yaml::Value,
        cx: &mut BuildContext,
    ) -> Result<Box<R>, PluginError> {
        (self.build)(raw, cx)
    }
}

impl SourcePlugin {
    /// The registration of source config type `C` (made by `#[source_config]`).
    pub const fn of<C: SourceConfig>(origin: &'static str) -> SourcePlugin {
        Plugin::registration::<C>(
            origin,
            |raw, cx| parse_config::<C>(raw)?.check(cx),
            |raw, cx| parse_config::<C>(raw)?.build(cx),
        )
    }
}

impl SinkPlugin {
    /// The registration of sink config type `C` (made by `#[sink_config]`).
    pub const fn of<C: SinkConfig>(origin: &'static str) -> SinkPlugin {
        Plugin {
            subscriber: |raw, cx| match parse_config::<C>(raw) {
                Ok(config) => config.subscriber(cx),
                Err(error) => Some(Err(error)),
            },
            ..Plugin::registration::<C>(
                origin,
                |raw, cx| parse_config::<C>(raw)?.check(cx),
                |raw, cx| parse_config::<C>(raw)?.build(cx),
            )
        }
    }
}

impl TimelinePlugin {
    /// The registration of timeline backend config type `C` (made by `#[timeline_config]`).
    pub const fn of<C: TimelineConfig>(origin: &'static str) -> TimelinePlugin {
        Plugin::registration::<C>(
            origin,
            |raw, _| parse_config::<C>(raw)?.check(),
            |raw, _| parse_config::<C>(raw)?.build(),
        )
    }
}

impl<R: ?Sized + 'static> Plugin<R> {
    /// What every role's registration shares: the config type's declarations and resolution.
    const fn registration<C: PluginConfig>(
        origin: &'static str,
        check: fn(serde_yaml::Value, &BuildContext) -> Result<(), PluginError>,
        build: fn(serde_yaml::Value, &mut BuildContext) -> Result<Box<R>, PluginError>,
    ) -> Plugin<R> {
        Plugin {
            name: C::NAME,
            description: C::DESCRIPTION,
            env: C::ENV,
            origin,
            selected_by: C::SELECTED_BY,
            resolve: resolve_config::<C>,
            brokers: |raw| {
                parse_config::<C>(raw)
                    .map(|config| config.brokers())
                    .unwrap_or_default()
            },
            schema: |generator| C::json_schema(generator),
            listens: |raw| {
                parse_config::<C>(raw)
                    .map(|config| config.listens())
                    .unwrap_or_default()
            },
            check,
            build,
            subscriber: |_, _| None,
        }
    }
}

/// Every registered plugin of role `R`, sorted by name.
pub fn registered<R: Role + ?Sized>() -> Vec<&'static Plugin<R>> {
    let mut all = R::all();
    all.sort_by_key(|plugin| plugin.name);
    all
}

fn parse_config<C: DeserializeOwned>(raw: serde_yaml::Value) -> Result<C, PluginError> {
    let raw = match raw {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        other => other,
    };
    // The error names the key it is about (`port: invalid type …`), as parsing text would.
    serde_path_to_error::deserialize(raw).map_err(|error| {
        let path = error.path().to_string();
        let why = error.into_inner();
        if path == "." || path.is_empty() {
            PluginError::config(why)
        } else {
            PluginError::config(format!("{path}: {why}"))
        }
    })
}

fn resolve_config<C: DeserializeOwned + Serialize>(
    raw: serde_yaml::Value,
) -> Result<serde_yaml::Value, String> {
    let config: C = parse_config(raw).map_err(|error| error.to_string())?;
    serde_yaml::to_value(&config).map_err(|error| error.to_string())
}
