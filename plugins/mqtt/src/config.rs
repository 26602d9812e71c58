//! The typed config of the `mqtt` sink: its keys with their defaults (named functions), its
//! environment variables, and the checks serde cannot make (ranges, combinations, topics MQTT
//! cannot publish to). Everything here is known before a connection is tried, so a bad value
//! fails `validate` and `run` with exit code 2; turning the config into a running sink is in
//! `sink.rs`.

use std::path::PathBuf;
use std::time::Duration;

use customersim_plugin_api::{
    EnvKind, EnvOverride, Fleet, PluginError, Secret, Topics, duration, rand, sink_config,
};
use serde::{Deserialize, Serialize};

/// The MQTT protocol version, spelled as the original service's `MQTT_PROTOCOL_VERSION`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    customersim_plugin_api::schemars::JsonSchema,
)]
#[schemars(crate = "customersim_plugin_api::schemars")]
pub enum ProtocolVersion {
    /// MQTT 3.1.1.
    #[default]
    #[serde(rename = "MQTTv311")]
    V311,
    /// MQTT 5.
    #[serde(rename = "MQTTv5")]
    V5,
}

impl ProtocolVersion {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProtocolVersion::V311 => "MQTTv311",
            ProtocolVersion::V5 => "MQTTv5",
        }
    }
}

/// Config of the `mqtt` sink. Every setting of the original service keeps its environment
/// variable (the `ENV` table at the end of this file: its `PluginConfig::ENV`).
#[sink_config]
#[derive(Clone)]
pub struct MqttConfig {
    /// Broker host name or IP address (MQTT_HOST). Required: the built-in pipeline reads it from
    /// `${MQTT_HOST}`.
    #[serde(default)]
    pub host: String,
    /// Broker port (MQTT_PORT); 8883 is usual with TLS.
    #[serde(default = "default_port")]
    pub port: u16,
    /// MQTT client id (MQTT_CLIENT_ID).
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Append a short random suffix (`demoClient-3fa9c1`) so that several instances never kick
    /// each other off the broker (a broker drops the older of two connections with one id).
    /// `false` uses `client_id` verbatim (MQTT_CLIENT_ID_SUFFIX).
    #[serde(default = "default_true")]
    pub client_id_suffix: bool,
    /// User name (MQTT_USERNAME); none = anonymous.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (MQTT_PASSWORD); never logged nor shown by `validate`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// PEM file of the CA that signed the broker's certificate (MQTT_BROKER_CERT_FILE); setting it
    /// turns TLS on. Relative paths are relative to the config file's folder.
    #[serde(default)]
    pub broker_cert_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (MQTT_CLIENT_CERT_FILE); needs `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (MQTT_CLIENT_KEY_FILE).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// `MQTTv311` or `MQTTv5` (MQTT_PROTOCOL_VERSION).
    #[serde(default)]
    pub protocol_version: ProtocolVersion,
    /// Quality of service of every publish: 0, 1 or 2 (MQTT_QOS). 0 is the original service's;
    /// 1 or 2 make broker restarts lose nothing.
    #[serde(default)]
    pub qos: u8,
    /// Publish with the retain flag, so a new subscriber gets the last event of each topic.
    #[serde(default)]
    pub retain: bool,
    /// Keep-alive interval (at least 5s): how often an idle connection is checked.
    #[serde(default = "default_keep_alive", with = "duration::required")]
    pub keep_alive: Duration,
    /// Most events accepted and not yet delivered (written at QoS 0, acknowledged at QoS ≥ 1);
    /// publishing waits while it is full. At QoS ≥ 1 it is also the number of unacknowledged
    /// publishes in flight (at most 65535).
    #[serde(default = "default_buffer_size")]
    pub buffer_size: usize,
    /// First delay before reconnecting; it doubles after each failed attempt.
    #[serde(default = "default_reconnect_delay_min", with = "duration::required")]
    pub reconnect_delay_min: Duration,
    /// Longest delay between two reconnect attempts.
    #[serde(default = "default_reconnect_delay_max", with = "duration::required")]
    pub reconnect_delay_max: Duration,
    /// How long the first connection may take before the pipeline starts anyway (the sink keeps
    /// trying and buffers meanwhile), and the timeout of each connection attempt.
    #[serde(default = "default_connect_timeout", with = "duration::required")]
    pub connect_timeout: Duration,
    /// On shutdown, how long to wait for the broker to acknowledge what was published.
    #[serde(default = "default_close_timeout", with = "duration::required")]
    pub close_timeout: Duration,
    /// Connections to the broker (MQTT_CONNECTIONS, 1 to 64), for more than one connection's
    /// throughput (e.g. against a broker cluster). A customer's events always take the same
    /// connection, so their order holds; each connection has its own `buffer_size`, reconnects
    /// and sends again what was not acknowledged on its own. With more than one, connection `i`
    /// (from 0) uses the client id `<client id>-<i>`.
    #[serde(default = "default_connections")]
    pub connections: usize,
}

impl std::fmt::Debug for MqttConfig {
    /// Like a derived `Debug`, with the password masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("client_id_suffix", &self.client_id_suffix)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("broker_cert_file", &self.broker_cert_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("protocol_version", &self.protocol_version)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("keep_alive", &self.keep_alive)
            .field("buffer_size", &self.buffer_size)
            .field("reconnect_delay_min", &self.reconnect_delay_min)
            .field("reconnect_delay_max", &self.reconnect_delay_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("connections", &self.connections)
            .finish()
    }
}

fn default_port() -> u16 {
    1883
}
fn default_client_id() -> String {
    "demoClient".into()
}
fn default_true() -> bool {
    true
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(60)
}
fn default_buffer_size() -> usize {
    10_000
}
fn default_reconnect_delay_min() -> Duration {
    Duration::from_millis(250)
}
fn default_reconnect_delay_max() -> Duration {
    Duration::from_secs(10)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_close_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_connections() -> usize {
    1
}

/// Most connections one sink opens: beyond a broker cluster's nodes more only cost sockets.
const MAX_CONNECTIONS: usize = 64;

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: String::new(),
            port: default_port(),
            client_id: default_client_id(),
            client_id_suffix: true,
            username: None,
            password: None,
            broker_cert_file: None,
            client_cert_file: None,
            client_key_file: None,
            protocol_version: ProtocolVersion::default(),
            qos: 0,
            retain: false,
            keep_alive: default_keep_alive(),
            buffer_size: default_buffer_size(),
            reconnect_delay_min: default_reconnect_delay_min(),
            reconnect_delay_max: default_reconnect_delay_max(),
            connect_timeout: default_connect_timeout(),
            close_timeout: default_close_timeout(),
            connections: default_connections(),
        }
    }
}

/// `None` for an absent or empty value (`${MQTT_USERNAME:-}` with the variable unset).
pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|text| !text.is_empty())
}

pub(crate) fn non_empty_path(value: &Option<PathBuf>) -> Option<&PathBuf> {
    value.as_ref().filter(|path| !path.as_os_str().is_empty())
}

impl MqttConfig {
    /// Checks the values that serde cannot.
    pub(crate) fn check_values(&self, topics: &Topics, fleet: &Fleet) -> Result<(), PluginError> {
        let bad = |key: &str, why: String| Err(PluginError::Config(format!("{key}: {why}")));
        if self.host.trim().is_empty() {
            return bad(
                "host",
                "no broker host: set MQTT_HOST (or `host:` in the sink's config), or choose another sink with --sink / SINKS / TESTING_MOCK_MQTT=true".into(),
            );
        }
        if self.port == 0 {
            return bad("port (MQTT_PORT)", "must be 1 to 65535".into());
        }
        if self.qos > 2 {
            return bad(
                "qos (MQTT_QOS)",
                format!("must be 0, 1 or 2, not {}", self.qos),
            );
        }
        if self.client_id.is_empty() && !self.client_id_suffix {
            return bad(
                "client_id (MQTT_CLIENT_ID)",
                "must not be empty when client_id_suffix is false".into(),
            );
        }
        // MQTT carries the keep-alive in 16 bits of seconds: a longer one would be cut.
        if self.keep_alive < Duration::from_secs(5)
            || self.keep_alive > Duration::from_secs(u16::MAX.into())
            || self.keep_alive.subsec_nanos() != 0
        {
            return bad(
                "keep_alive",
                "must be whole seconds, from 5s to 65535s".into(),
            );
        }
        if self.buffer_size == 0 || (self.qos > 0 && self.buffer_size > usize::from(u16::MAX)) {
            return bad(
                "buffer_size",
                "must be at least 1 (and at most 65535 at QoS 1 and 2)".into(),
            );
        }
        if self.reconnect_delay_min.is_zero() || self.reconnect_delay_max < self.reconnect_delay_min
        {
            return bad(
                "reconnect_delay_max",
                "the delays must be > 0 and reconnect_delay_max >= reconnect_delay_min".into(),
            );
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            return bad(
                "connections (MQTT_CONNECTIONS)",
                format!("must be 1 to {MAX_CONNECTIONS}, not {}", self.connections),
            );
        }
        if self.connect_timeout < Duration::from_secs(1) {
            return bad("connect_timeout", "must be at least 1s".into());
        }
        if self.password.as_ref().is_some_and(|p| !p.is_empty())
            && non_empty(&self.username).is_none()
        {
            return bad(
                "password (MQTT_PASSWORD)",
                "is set but username (MQTT_USERNAME) is not".into(),
            );
        }
        topics.check_each(fleet, crate::topic::check_topic_name)
    }

    /// The client id with the random suffix when asked for.
    pub(crate) fn effective_client_id(&self) -> String {
        if self.client_id_suffix {
            let suffix: u32 = rand::random();
            let suffix = format!("{:06x}", suffix & 0xFF_FFFF);
            if self.client_id.is_empty() {
                suffix
            } else {
                format!("{}-{suffix}", self.client_id)
            }
        } else {
            self.client_id.clone()
        }
    }
}

/// The environment variables of the `mqtt` sink, its
/// [`SinkConfig::ENV`](customersim_plugin_api::SinkConfig::ENV): each applies to every `mqtt` sink
/// of the pipeline.
pub(crate) const ENV: &[EnvOverride] = &[
    EnvOverride {
        var: "MQTT_HOST",
        key: "host",
        kind: EnvKind::Text,
        help: "broker host (required when the mqtt sink is used)",
    },
    EnvOverride {
        var: "MQTT_PORT",
        key: "port",
        kind: EnvKind::Integer,
        help: "broker port (default 1883)",
    },
    EnvOverride {
        var: "MQTT_CLIENT_ID",
        key: "client_id",
        kind: EnvKind::Text,
        help: "client id (default demoClient, plus a random suffix)",
    },
    EnvOverride {
        var: "MQTT_CLIENT_ID_SUFFIX",
        key: "client_id_suffix",
        kind: EnvKind::Boolean,
        help: "false: use MQTT_CLIENT_ID verbatim, without the random suffix (default true)",
    },
    EnvOverride {
        var: "MQTT_USERNAME",
        key: "username",
        kind: EnvKind::Text,
        help: "broker user name (default none: anonymous)",
    },
    EnvOverride {
        var: "MQTT_PASSWORD",
        key: "password",
        kind: EnvKind::Text,
        help: "broker password (never logged)",
    },
    EnvOverride {
        var: "MQTT_BROKER_CERT_FILE",
        key: "broker_cert_file",
        kind: EnvKind::Text,
        help: "CA file of the broker's certificate: enables TLS (default none)",
    },
    EnvOverride {
        var: "MQTT_CLIENT_CERT_FILE",
        key: "client_cert_file",
        kind: EnvKind::Text,
        help: "client certificate for mutual TLS (default none)",
    },
    EnvOverride {
        var: "MQTT_CLIENT_KEY_FILE",
        key: "client_key_file",
        kind: EnvKind::Text,
        help: "client certificate's private key for mutual TLS (default none)",
    },
    EnvOverride {
        var: "MQTT_PROTOCOL_VERSION",
        key: "protocol_version",
        kind: EnvKind::Text,
        help: "MQTTv311 or MQTTv5 (default MQTTv311)",
    },
    EnvOverride {
        var: "MQTT_QOS",
        key: "qos",
        kind: EnvKind::Integer,
        help: "QoS of every publish: 0, 1 or 2 (default 0)",
    },
    EnvOverride {
        var: "MQTT_CONNECTIONS",
        key: "connections",
        kind: EnvKind::Integer,
        help: "connections to the broker per mqtt sink; a customer's events keep to one (default 1)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MqttConfig, String> {
        serde_yaml::from_str::<MqttConfig>(text).map_err(|error| error.to_string())
    }

    fn config_error(config: MqttConfig) -> String {
        match config.check_values(&Topics::default(), &Fleet::single()) {
            Err(PluginError::Config(why)) => why,
            other => panic!("expected a config error, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn defaults_match_the_original_service() {
        let config = parse("host: broker").unwrap();
        assert_eq!(config.port, 1883);
        assert_eq!(config.client_id, "demoClient");
        assert_eq!(config.qos, 0);
        assert_eq!(config.protocol_version, ProtocolVersion::V311);
        assert!(config.client_id_suffix);
        assert_eq!(config.connections, 1);
        assert!(
            config
                .check_values(&Topics::default(), &Fleet::single())
                .is_ok()
        );
    }

    #[test]
    fn missing_host_names_mqtt_host() {
        let why = config_error(parse("host: ''").unwrap());
        assert!(why.contains("MQTT_HOST"), "{why}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let why = parse("host: h\nprotocol_version: MQTTv4").unwrap_err();
        assert!(why.contains("MQTTv311") && why.contains("MQTTv5"), "{why}");
        let why = parse("host: h\nqso: 1").unwrap_err();
        assert!(why.contains("qso"), "{why}");
        let why = config_error(parse("host: h\nqos: 3").unwrap());
        assert!(why.contains("MQTT_QOS") && why.contains('3'), "{why}");
        let why = config_error(parse("host: h\nkeep_alive: 1s").unwrap());
        assert!(why.contains("keep_alive"), "{why}");
        let why = config_error(parse("host: h\nqos: 1\nbuffer_size: 70000").unwrap());
        assert!(why.contains("buffer_size"), "{why}");
        let why = config_error(parse("host: h\nconnections: 0").unwrap());
        assert!(why.contains("MQTT_CONNECTIONS"), "{why}");
        let why = config_error(parse("host: h\npassword: hunter2").unwrap());
        assert!(
            why.contains("MQTT_USERNAME") && !why.contains("hunter2"),
            "{why}"
        );
        let topics = Topics {
            moves: "customer/#".into(),
            ..Topics::default()
        };
        let config = parse("host: h").unwrap();
        assert!(config.check_values(&topics, &Fleet::single()).is_err());
        // Each store's topic is checked, naming the store.
        let fleet = Fleet::new(vec!["ok".into(), "a+b".into()], Default::default()).unwrap();
        let topics = Topics {
            moves: "store/{store}/move".into(),
            ..Topics::default()
        }
        .for_fleet(&fleet);
        let why = config
            .check_values(&topics, &fleet)
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("topics.move") && why.contains("\"a+b\""),
            "{why}"
        );
    }

    #[test]
    fn debug_masks_the_password() {
        let config = parse("host: h\nusername: u\npassword: hunter2").unwrap();
        let text = format!("{config:?}");
        assert!(
            !text.contains("hunter2") && text.contains("******"),
            "{text}"
        );
    }

    #[test]
    fn client_id_gets_a_random_suffix_unless_told_otherwise() {
        let config = parse("host: h").unwrap();
        let (a, b) = (config.effective_client_id(), config.effective_client_id());
        assert!(
            a.starts_with("demoClient-") && a.len() == "demoClient-".len() + 6,
            "{a}"
        );
        assert_ne!(a, b, "two instances get two ids");
        let config = parse("host: h\nclient_id: fixed\nclient_id_suffix: false").unwrap();
        assert_eq!(config.effective_client_id(), "fixed");
    }

    #[test]
    fn resolved_config_round_trips() {
        let config = parse("host: h\nkeep_alive: 30s\nqos: 2\nprotocol_version: MQTTv5").unwrap();
        let value = serde_yaml::to_value(&config).unwrap();
        let again: MqttConfig = serde_yaml::from_value(value).unwrap();
        assert_eq!(again.keep_alive, Duration::from_secs(30));
        assert_eq!(again.protocol_version, ProtocolVersion::V5);
        assert_eq!(again.qos, 2);
    }
}
