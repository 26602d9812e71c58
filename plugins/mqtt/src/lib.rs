//! The `mqtt` sink, the default one: publishes each event to an MQTT broker with
//! [rumqttc](https://docs.rs/rumqttc), as the original service did with paho-mqtt.
//!
//! ```yaml
//! sinks:
//!   - type: mqtt
//!     host: ${MQTT_HOST}          # required
//!     port: 1883                  # MQTT_PORT
//!     client_id: demoClient       # MQTT_CLIENT_ID (+ a random suffix unless client_id_suffix: false)
//!     username: null              # MQTT_USERNAME
//!     password: null              # MQTT_PASSWORD (never logged nor shown by `validate`)
//!     broker_cert_file: null      # MQTT_BROKER_CERT_FILE: CA file, turns TLS on
//!     client_cert_file: null      # MQTT_CLIENT_CERT_FILE: mutual TLS
//!     client_key_file: null       # MQTT_CLIENT_KEY_FILE: mutual TLS
//!     protocol_version: MQTTv311  # MQTT_PROTOCOL_VERSION: MQTTv311 or MQTTv5
//!     qos: 0                      # MQTT_QOS: 0, 1 or 2
//! ```
//!
//! Payloads are the bytes of DESIGN.md §2 ([`Event::write_payload`]) on the pipeline's topics.
//!
//! # Delivery
//! - **Bounded buffer, back-pressure**: at most `buffer_size` events are accepted and not yet
//!   delivered (QoS 0: written to the socket; QoS 1: PUBACK received; QoS 2: PUBCOMP received).
//!   When it is full, [`Sink::publish`] waits, which slows the scheduler down instead of dropping
//!   anything.
//! - **Reconnects** with exponential backoff (`reconnect_delay_min` doubling up to
//!   `reconnect_delay_max`), logged once per change of state with the reason. A broker that is
//!   not reachable at start is retried too (deployments often start it second).
//! - **No loss across a broker restart at QoS ≥ 1**: events not acknowledged when the connection
//!   broke are sent again after the next CONNACK, whether or not the broker kept the session.
//!   (At QoS 0 what was already written to a dying socket may be lost, as MQTT allows.)
//! - **Permanent errors fail fast**: refused credentials ("not authorized"), a broker certificate
//!   that does not verify, a client certificate the broker rejects. The sink fails with one clear
//!   message (exit code 1), from [`Sink::start`] when it happens on the first connection, and
//!   otherwise by stopping the pipeline. Unreadable or malformed TLS files are configuration
//!   errors found when the sink is built (exit code 2, naming the variable and the file).
//! - **Shutdown** ([`Sink::close`]) waits up to `close_timeout` for the outstanding
//!   acknowledgements, then disconnects cleanly; events still unacknowledged then are reported as
//!   an error, never dropped silently.
//!
//! # Layout
//! - this file: the config ([`MqttConfig`]), its checks and the [`MqttSink`];
//! - `gate.rs`: the bounded buffer (undelivered events against a window);
//! - `link.rs`: the connection task (rumqttc's event loop, reconnects, error classification);
//! - `tls.rs`: the rustls client config from the PEM files, with the `ring` provider.

mod gate;
mod link;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::serde::{Deserialize, Serialize};
use customersim_plugin_api::tokio::sync::watch;
use customersim_plugin_api::tokio::task::JoinHandle;
use customersim_plugin_api::tokio::time::{Instant, timeout};
use customersim_plugin_api::{
    BuildContext, EnvKind, EnvOverride, Event, PluginError, Shutdown, Sink, SinkConfig,
    SinkContext, Topics, async_trait, duration, rand, register_sink, tokio, tracing,
};
use rumqttc::TlsConfiguration;
use rumqttc::Transport;

use crate::gate::{Blocked, Gate};
use crate::link::{LinkSettings, LinkState, Wire};

/// The MQTT protocol version, spelled as the original service's `MQTT_PROTOCOL_VERSION`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(crate = "customersim_plugin_api::serde")]
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
    fn name(self) -> &'static str {
        match self {
            ProtocolVersion::V311 => "MQTTv311",
            ProtocolVersion::V5 => "MQTTv5",
        }
    }
}

/// Config of the `mqtt` sink. Every setting of the original service keeps its environment
/// variable (see [`MqttConfig::ENV`]).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, crate = "customersim_plugin_api::serde")]
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
    pub password: Option<String>,
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
            .field("password", &self.password.as_ref().map(|_| "******"))
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
        }
    }
}

/// `None` for an absent or empty value (`${MQTT_USERNAME}` with the variable unset).
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|text| !text.is_empty())
}

fn non_empty_path(value: &Option<PathBuf>) -> Option<&PathBuf> {
    value.as_ref().filter(|path| !path.as_os_str().is_empty())
}

fn check_topic(key: &str, topic: &str) -> Result<(), PluginError> {
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(PluginError::Config(format!(
            "topics.{key}: {topic:?} cannot be published to (empty, or holds a wildcard + or #)"
        )));
    }
    Ok(())
}

impl MqttConfig {
    /// Checks the values that serde cannot.
    fn check(&self, topics: &Topics) -> Result<(), PluginError> {
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
        if self.keep_alive < Duration::from_secs(5) || self.keep_alive.subsec_nanos() != 0 {
            return bad("keep_alive", "must be whole seconds, at least 5s".into());
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
        if self.connect_timeout < Duration::from_secs(1) {
            return bad("connect_timeout", "must be at least 1s".into());
        }
        if non_empty(&self.password).is_some() && non_empty(&self.username).is_none() {
            return bad(
                "password (MQTT_PASSWORD)",
                "is set but username (MQTT_USERNAME) is not".into(),
            );
        }
        check_topic("enter", &topics.enter)?;
        check_topic("move", &topics.moves)?;
        check_topic("exit", &topics.exit)?;
        if let Some(focus) = &topics.focus {
            check_topic("focus", focus)?;
        }
        Ok(())
    }

    /// The client id with the random suffix when asked for.
    fn effective_client_id(&self) -> String {
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

impl SinkConfig for MqttConfig {
    const NAME: &'static str = "mqtt";
    const DESCRIPTION: &'static str = "publishes to an MQTT broker (v3.1.1/v5, QoS 0-2, TLS, reconnects without loss at QoS >= 1)";
    const ENV: &'static [EnvOverride] = &[
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
            kind: EnvKind::Secret,
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
    ];

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        self.check(&cx.topics)?;
        let tls = tls::client_config(&tls::TlsFiles {
            ca: non_empty_path(&self.broker_cert_file).map(|p| cx.resolve_path(p)),
            client_cert: non_empty_path(&self.client_cert_file).map(|p| cx.resolve_path(p)),
            client_key: non_empty_path(&self.client_key_file).map(|p| cx.resolve_path(p)),
        })?;
        let transport = match tls {
            Some(config) => Transport::Tls(TlsConfiguration::Rustls(config)),
            None => Transport::Tcp,
        };
        let client_id = self.effective_client_id();
        let host = self.host.trim().to_string();
        let window = self.buffer_size;
        let credentials = non_empty(&self.username).map(|user| {
            (
                user.to_string(),
                non_empty(&self.password).unwrap_or("").to_string(),
            )
        });
        let connect_timeout = self.connect_timeout.as_secs().max(1);
        let (client, wire) = match self.protocol_version {
            ProtocolVersion::V311 => {
                let mut options = rumqttc::MqttOptions::new(&client_id, &host, self.port);
                options
                    .set_keep_alive(self.keep_alive)
                    .set_clean_session(true)
                    .set_inflight(inflight(window))
                    .set_transport(transport);
                if let Some((user, password)) = credentials {
                    options.set_credentials(user, password);
                }
                let (client, mut events) = rumqttc::AsyncClient::new(options, window);
                let mut network = events.network_options();
                network.set_connection_timeout(connect_timeout);
                events.set_network_options(network);
                (
                    Client::V4(client),
                    Wire::V4 {
                        events: Box::new(events),
                        kept: Default::default(),
                    },
                )
            }
            ProtocolVersion::V5 => {
                let mut options = rumqttc::v5::MqttOptions::new(&client_id, &host, self.port);
                options
                    .set_keep_alive(self.keep_alive)
                    .set_clean_start(true)
                    .set_outgoing_inflight_upper_limit(inflight(window))
                    .set_connection_timeout(connect_timeout)
                    .set_transport(transport);
                if let Some((user, password)) = credentials {
                    options.set_credentials(user, password);
                }
                let (client, events) = rumqttc::v5::AsyncClient::new(options, window);
                (
                    Client::V5(client),
                    Wire::V5 {
                        events: Box::new(events),
                        kept: Default::default(),
                        limit: window,
                        upper: window,
                        connected: false,
                    },
                )
            }
        };
        let (state, _) = watch::channel(LinkState::Connecting);
        Ok(Box::new(MqttSink {
            client,
            wire: Some(wire),
            gate: Arc::new(Gate::new(window)),
            state,
            task: None,
            shutdown: None,
            topics: cx.topics.clone(),
            qos: self.qos,
            retain: self.retain,
            settings: Some(LinkSettings {
                address: format!("{host}:{}", self.port),
                client_id,
                protocol: self.protocol_version.name(),
                qos: self.qos,
                window,
                min_backoff: self.reconnect_delay_min,
                max_backoff: self.reconnect_delay_max,
            }),
            connect_timeout: self.connect_timeout,
            close_timeout: self.close_timeout,
        }))
    }
}

register_sink!(MqttConfig);

/// rumqttc's in-flight limit for a window (QoS ≥ 1 windows are at most 65535, checked).
fn inflight(window: usize) -> u16 {
    u16::try_from(window).unwrap_or(u16::MAX)
}

/// The client handle of either protocol version.
enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl Client {
    /// Queues one publish; fails only when the connection task is gone.
    async fn publish(&self, topic: &str, qos: u8, retain: bool, payload: Vec<u8>) -> bool {
        match self {
            Client::V4(client) => {
                let qos = match qos {
                    0 => rumqttc::QoS::AtMostOnce,
                    1 => rumqttc::QoS::AtLeastOnce,
                    _ => rumqttc::QoS::ExactlyOnce,
                };
                client.publish(topic, qos, retain, payload).await.is_ok()
            }
            Client::V5(client) => {
                let qos = match qos {
                    0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                    1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
                };
                client.publish(topic, qos, retain, payload).await.is_ok()
            }
        }
    }

    async fn disconnect(&self) -> bool {
        match self {
            Client::V4(client) => client.disconnect().await.is_ok(),
            Client::V5(client) => client.disconnect().await.is_ok(),
        }
    }
}

/// The running sink: hands events to rumqttc within the bounded buffer's window (`gate.rs`); the connection task
/// (`link.rs`) does the rest.
pub struct MqttSink {
    client: Client,
    /// The event loop until `start` moves it into the connection task.
    wire: Option<Wire>,
    gate: Arc<Gate>,
    state: watch::Sender<LinkState>,
    task: Option<JoinHandle<()>>,
    shutdown: Option<Shutdown>,
    topics: Topics,
    qos: u8,
    retain: bool,
    settings: Option<LinkSettings>,
    connect_timeout: Duration,
    close_timeout: Duration,
}

impl MqttSink {
    fn failure(&self) -> PluginError {
        PluginError::Fatal(
            self.gate
                .failure()
                .unwrap_or_else(|| "mqtt: the connection task stopped".into()),
        )
    }
}

#[async_trait]
impl Sink for MqttSink {
    async fn start(&mut self, cx: &SinkContext) -> Result<(), PluginError> {
        let (Some(wire), Some(settings)) = (self.wire.take(), self.settings.take()) else {
            return Ok(());
        };
        self.topics = cx.topics.clone();
        self.shutdown = Some(cx.shutdown.clone());
        let mut watcher = self.state.subscribe();
        self.task = Some(tokio::spawn(link::run(
            wire,
            self.gate.clone(),
            self.state.clone(),
            cx.shutdown.clone(),
            settings,
        )));
        // Wait for the first outcome, so bad credentials or certificates fail here, at once. A
        // broker that is not reachable yet does not hold the pipeline back: it is retried.
        let first = timeout(
            self.connect_timeout + Duration::from_secs(1),
            watcher.wait_for(|state| *state != LinkState::Connecting),
        )
        .await;
        match first {
            Ok(Ok(state)) => match &*state {
                LinkState::Failed(why) => Err(PluginError::Fatal(why.clone())),
                _ => Ok(()),
            },
            Ok(Err(_)) => Err(self.failure()),
            Err(_) => {
                tracing::warn!(
                    "mqtt: no answer from the broker yet; events are buffered while it keeps trying"
                );
                Ok(())
            }
        }
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        let mut index = 0;
        let mut deadline: Option<Instant> = None;
        while index < batch.len() {
            let shutting_down = self.shutdown.as_ref().is_some_and(Shutdown::is_triggered);
            if shutting_down && deadline.is_none() {
                // Past shutdown a broker that stays away must not hold the process forever.
                deadline = Some(Instant::now() + self.close_timeout);
            }
            let wanted = batch.len() - index;
            let acquired = match acquire(
                &self.gate,
                self.shutdown.as_ref(),
                self.close_timeout,
                wanted,
                deadline,
            )
            .await
            {
                Ok(acquired) => acquired,
                Err(Blocked::Failed(why)) => return Err(PluginError::Fatal(why)),
                Err(Blocked::TimedOut { outstanding }) => {
                    return Err(PluginError::Fatal(format!(
                        "mqtt: shutting down while the broker does not take events: {} events not published, {outstanding} not acknowledged",
                        batch.len() - index
                    )));
                }
            };
            for (sent, event) in batch[index..index + acquired].iter().enumerate() {
                let mut payload = Vec::with_capacity(64);
                event.write_payload(&mut payload);
                let topic = self.topics.for_kind(&event.kind);
                if !self
                    .client
                    .publish(topic, self.qos, self.retain, payload)
                    .await
                {
                    self.gate.unacquire(acquired - sent);
                    return Err(self.failure());
                }
            }
            index += acquired;
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<(), PluginError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        if let Some(why) = self.gate.failure() {
            task.abort();
            return Err(PluginError::Fatal(why));
        }
        let waited = self.gate.wait_idle(self.close_timeout).await;
        let outcome = match waited {
            Ok(()) => Ok(()),
            Err(Blocked::Failed(why)) => Err(PluginError::Fatal(why)),
            Err(Blocked::TimedOut { outstanding }) => Err(PluginError::Fatal(format!(
                "mqtt: {outstanding} events were not {} by the broker within close_timeout ({:?}); they may be lost",
                if self.qos == 0 {
                    "taken"
                } else {
                    "acknowledged"
                },
                self.close_timeout
            ))),
        };
        if outcome.is_ok()
            && *self.state.borrow() == LinkState::Up
            && self.client.disconnect().await
        {
            let mut task = task;
            if timeout(Duration::from_secs(2), &mut task).await.is_err() {
                task.abort();
            }
            tracing::info!("mqtt: disconnected");
        } else {
            task.abort();
        }
        outcome
    }
}

/// Takes room for up to `wanted` events. Without a deadline it waits as long as it takes, unless
/// shutdown fires: from then on it waits at most `close_timeout`.
async fn acquire(
    gate: &Gate,
    shutdown: Option<&Shutdown>,
    close_timeout: Duration,
    wanted: usize,
    deadline: Option<Instant>,
) -> Result<usize, Blocked> {
    let Some(shutdown) = shutdown.filter(|_| deadline.is_none()) else {
        return gate.acquire(wanted, deadline).await;
    };
    tokio::select! {
        acquired = gate.acquire(wanted, None) => acquired,
        () = shutdown.wait() => gate.acquire(wanted, Some(Instant::now() + close_timeout)).await,
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::serde_yaml;

    fn parse(text: &str) -> Result<MqttConfig, String> {
        serde_yaml::from_str::<MqttConfig>(text).map_err(|error| error.to_string())
    }

    fn config_error(config: MqttConfig) -> String {
        match config.check(&Topics::default()) {
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
        assert!(config.check(&Topics::default()).is_ok());
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
        assert!(config.check(&topics).is_err());
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
