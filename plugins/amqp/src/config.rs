//! The typed config of the `amqp` sink: its keys with their defaults (named functions) and its
//! environment variables. The crate documentation has the table of settings; the checks serde
//! cannot make are in `build` (`sink.rs`), connecting is in `broker`.

use std::path::PathBuf;
use std::time::Duration;

use customersim_plugin_api::{CredentialUrl, EnvKind, EnvOverride, duration, sink_config};

/// Config of the `amqp` sink (see the crate documentation for the behaviour).
#[sink_config]
#[derive(Debug)]
pub struct AmqpConfig {
    /// Broker URL with credentials and vhost: `amqp://user:pass@host:5672/vhost` (`%2f` is the
    /// default vhost `/`), `amqps://…` for TLS. Query parameters of lapin (`heartbeat`,
    /// `connection_timeout`, `frame_max`, `channel_max`) are accepted.
    #[serde(default = "default_url")]
    pub url: CredentialUrl,
    /// PEM file of the CA certificates trusted for `amqps://`; without it the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate, for brokers that require mutual TLS.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Exchange the events are published to; routing key = topic with `/` → `.`.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// Type of the exchange (`topic`, `direct`, `fanout`, `headers` or a plugin's type), used
    /// when `declare` is true.
    #[serde(default = "default_exchange_type")]
    pub exchange_type: String,
    /// Declare the exchange (durable) at start; when false it must already exist (checked).
    #[serde(default)]
    pub declare: bool,
    /// Publish with delivery mode 2, so messages in durable queues survive a broker restart.
    #[serde(default)]
    pub persistent: bool,
    /// Use publisher confirms: an event counts as sent only once the broker acknowledged it;
    /// nacked and unconfirmed messages are published again.
    #[serde(default = "default_confirms")]
    pub confirms: bool,
    /// Most messages handed to lapin but not yet confirmed (without confirms: not yet written
    /// to the socket): the window that keeps the connection busy.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Most events accepted but not yet published; `publish` waits while it is full.
    #[serde(default = "default_buffer_size")]
    pub buffer_size: usize,
    /// How long shutdown waits for the broker to confirm what was accepted (`30s`).
    #[serde(default = "default_close_timeout", with = "duration::required")]
    pub close_timeout: Duration,
}

fn default_url() -> CredentialUrl {
    CredentialUrl::new("amqp://guest:guest@127.0.0.1:5672/%2f")
}
fn default_exchange() -> String {
    "amq.topic".into()
}
fn default_exchange_type() -> String {
    "topic".into()
}
fn default_confirms() -> bool {
    true
}
fn default_max_in_flight() -> usize {
    256
}
fn default_buffer_size() -> usize {
    8192
}
fn default_close_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: default_url(),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            exchange: default_exchange(),
            exchange_type: default_exchange_type(),
            declare: false,
            persistent: false,
            confirms: default_confirms(),
            max_in_flight: default_max_in_flight(),
            buffer_size: default_buffer_size(),
            close_timeout: default_close_timeout(),
        }
    }
}

/// The environment variables of the `amqp` sink, its
/// [`SinkConfig::ENV`](customersim_plugin_api::SinkConfig::ENV): each applies to every `amqp` sink
/// of the pipeline.
pub(crate) const ENV: &[EnvOverride] = &[
    EnvOverride {
        var: "AMQP_URL",
        key: "url",
        kind: EnvKind::Text,
        help: "AMQP broker URL amqp://user:pass@host:5672/vhost (amqps:// for TLS); the password is masked in logs and validate",
    },
    EnvOverride {
        var: "AMQP_CA_FILE",
        key: "ca_file",
        kind: EnvKind::Text,
        help: "PEM CA certificates trusted for amqps://",
    },
    EnvOverride {
        var: "AMQP_CLIENT_CERT_FILE",
        key: "client_cert_file",
        kind: EnvKind::Text,
        help: "PEM client certificate for mutual TLS",
    },
    EnvOverride {
        var: "AMQP_CLIENT_KEY_FILE",
        key: "client_key_file",
        kind: EnvKind::Text,
        help: "PEM private key of the client certificate",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let config: AmqpConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(config.url.expose(), "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(config.exchange, "amq.topic");
        assert_eq!(config.exchange_type, "topic");
        assert!(!config.declare && !config.persistent && config.confirms);
        assert_eq!(config.close_timeout, Duration::from_secs(30));
    }

    #[test]
    fn rejects_unknown_keys() {
        let error = serde_yaml::from_str::<AmqpConfig>("exchnage: x").unwrap_err();
        assert!(error.to_string().contains("exchnage"), "{error}");
    }
}
