//! The `amqp` sink: publishes each event to an AMQP 0-9-1 exchange (RabbitMQ), on lapin.
//!
//! For teams whose consumers read RabbitMQ. Each event becomes one message:
//! - **exchange**: `exchange` (default `amq.topic`, which every RabbitMQ has);
//! - **routing key**: the event's topic with `/` replaced by `.` (`customer/move` →
//!   `customer.move`), the mapping of RabbitMQ's own MQTT plugin, so MQTT and AMQP consumers of
//!   one broker see the same stream;
//! - **body**: the payload bytes of the event contract (DESIGN.md §2), byte for byte what the
//!   `mqtt` and `stdout` sinks carry: `{"id": "997", "ts": 192326400, "x": 2, "y": 3}`;
//! - **properties**: content type `application/json`, `timestamp` = the event's `ts`, and
//!   delivery mode 2 (persistent) when `persistent: true`.
//!
//! # Settings
//!
//! | key | env | default | meaning |
//! |---|---|---|---|
//! | `url` | `AMQP_URL` | `amqp://guest:guest@127.0.0.1:5672/%2f` | broker, credentials, vhost; `amqps://` for TLS |
//! | `ca_file` | `AMQP_CA_FILE` | – | PEM CA certificates trusted for `amqps://` (else the system's) |
//! | `client_cert_file` | `AMQP_CLIENT_CERT_FILE` | – | PEM client certificate (mutual TLS) |
//! | `client_key_file` | `AMQP_CLIENT_KEY_FILE` | – | PEM private key of the client certificate |
//! | `exchange` | | `amq.topic` | exchange events are published to |
//! | `exchange_type` | | `topic` | its type, used when `declare: true` |
//! | `declare` | | `false` | declare the (durable) exchange at start; otherwise it must exist |
//! | `persistent` | | `false` | delivery mode 2: messages survive a broker restart in durable queues |
//! | `confirms` | | `true` | publisher confirms: an event counts as sent once the broker acknowledged it |
//! | `max_in_flight` | | `256` | most messages handed to lapin but not yet confirmed (without confirms: not yet written) |
//! | `buffer_size` | | `8192` | most events accepted from the scheduler but not yet published |
//! | `close_timeout` | | `30s` | how long shutdown waits for outstanding confirms |
//!
//! # Delivery
//!
//! [`Sink::publish`] hands events to a background task through a bounded buffer and waits while
//! it is full (back-pressure, never drops). The task publishes them in order on one channel,
//! keeping up to `max_in_flight` unconfirmed. A nack, or a connection loss with publishes still
//! unconfirmed, puts those messages back in front of the queue; the task reconnects with
//! exponential backoff (logging once per state change) and publishes them again. So with
//! confirms, persistent messages and a durable queue, a broker restart loses nothing (a message
//! may be delivered twice: the broker can have stored a message whose confirm was lost).
//! Without confirms a message counts as sent once written to the socket, and the ones in the
//! socket at a connection loss can be lost.
//!
//! Wrong credentials, an unknown vhost, a missing exchange or a TLS certificate the broker does
//! not accept fail [`Sink::start`] with one message ([`PluginError::Fatal`], exit code 1). A
//! broker that is merely unreachable at start is retried in the background like a restart.
//! The password of the URL never appears in logs or errors.
//!
//! # Layout
//! - this file: the config, its factory and the [`Sink`] front end.
//! - [`broker`]: connecting (URL, TLS files, errors classified as permanent or transient).
//! - [`worker`]: the background publisher (window of unconfirmed publishes, retries, reconnects).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use customersim_plugin_api::serde::{Deserialize, Serialize};
use customersim_plugin_api::tokio::sync::mpsc;
use customersim_plugin_api::tokio::task::JoinHandle;
use customersim_plugin_api::{
    BuildContext, EnvKind, EnvOverride, Event, EventKind, PluginError, Shutdown, Sink, SinkConfig,
    SinkContext, Topics, async_trait, duration, register_sink, tokio, tracing,
};

pub mod broker;
pub mod worker;

use broker::Broker;
use worker::{Outgoing, Shared, Worker};

/// Config of the `amqp` sink (see the crate documentation for the behaviour).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, crate = "customersim_plugin_api::serde")]
pub struct AmqpConfig {
    /// Broker URL with credentials and vhost: `amqp://user:pass@host:5672/vhost` (`%2f` is the
    /// default vhost `/`), `amqps://…` for TLS. Query parameters of lapin (`heartbeat`,
    /// `connection_timeout`, `frame_max`, `channel_max`) are accepted.
    #[serde(default = "default_url")]
    pub url: String,
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

fn default_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
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

impl SinkConfig for AmqpConfig {
    const NAME: &'static str = "amqp";
    const DESCRIPTION: &'static str = "publishes events to an AMQP exchange (RabbitMQ; default amq.topic, routing key = topic with / → .) with publisher confirms";
    const ENV: &'static [EnvOverride] = &[
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

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        if self.max_in_flight == 0 {
            return Err(PluginError::Config(
                "max_in_flight: must be at least 1".into(),
            ));
        }
        if self.buffer_size == 0 {
            return Err(PluginError::Config(
                "buffer_size: must be at least 1".into(),
            ));
        }
        if self.exchange.len() > 255 {
            return Err(PluginError::Config(
                "exchange: longer than 255 bytes".into(),
            ));
        }
        let broker = Broker::from_config(&self, cx)?;
        let routing_keys = RoutingKeys::new(&cx.topics)?;
        Ok(Box::new(AmqpSink {
            settings: Arc::new(worker::Settings {
                exchange: self.exchange.clone(),
                exchange_type: self.exchange_type.clone(),
                declare: self.declare,
                persistent: self.persistent,
                confirms: self.confirms,
                max_in_flight: self.max_in_flight,
                routing_keys,
            }),
            broker: Some(broker),
            buffer_size: self.buffer_size,
            close_timeout: self.close_timeout,
            sender: None,
            task: None,
            shared: Arc::new(Shared::default()),
            accepted: 0,
            scratch: Vec::with_capacity(256),
            shutdown: Shutdown::new(),
        }))
    }
}

register_sink!(AmqpConfig);

/// The routing key of each kind of event: its topic with `/` replaced by `.`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingKeys {
    /// Indexed by [`kind_index`].
    pub keys: [String; 4],
}

impl RoutingKeys {
    /// The routing keys of the pipeline's topics.
    pub fn new(topics: &Topics) -> Result<RoutingKeys, PluginError> {
        let keys = [
            routing_key(&topics.enter),
            routing_key(&topics.moves),
            routing_key(&topics.exit),
            routing_key(topics.for_kind(&EventKind::Focus {
                dep: "",
                x: 0,
                y: 0,
            })),
        ];
        if let Some(long) = keys.iter().find(|key| key.len() > 255) {
            return Err(PluginError::Config(format!(
                "topic {long:?} is longer than the 255 bytes an AMQP routing key may have"
            )));
        }
        Ok(RoutingKeys { keys })
    }
}

/// `customer/move` → `customer.move` (RabbitMQ's MQTT plugin mapping).
pub fn routing_key(topic: &str) -> String {
    topic.replace('/', ".")
}

/// 0, 1, 2, 3 for enter, move, exit, focus.
pub fn kind_index(kind: &EventKind) -> u8 {
    match kind {
        EventKind::Enter => 0,
        EventKind::Move { .. } => 1,
        EventKind::Exit => 2,
        EventKind::Focus { .. } => 3,
    }
}

/// The front end the scheduler talks to; the publishing happens in [`Worker`].
pub struct AmqpSink {
    settings: Arc<worker::Settings>,
    broker: Option<Broker>,
    buffer_size: usize,
    close_timeout: Duration,
    sender: Option<mpsc::Sender<Outgoing>>,
    task: Option<JoinHandle<Result<(), String>>>,
    shared: Arc<Shared>,
    /// Events taken from the scheduler.
    accepted: u64,
    /// Where payloads are written before they are copied into their message.
    scratch: Vec<u8>,
    shutdown: Shutdown,
}

impl AmqpSink {
    /// Why the worker stopped, for errors returned by `publish`.
    fn worker_failure(&self) -> PluginError {
        PluginError::Fatal(
            self.shared
                .failure()
                .unwrap_or_else(|| "amqp: the publisher task stopped".into()),
        )
    }

    /// Events accepted but not (yet) confirmed / written.
    fn outstanding(&self) -> u64 {
        self.accepted
            .saturating_sub(self.shared.delivered.load(Ordering::Relaxed))
    }
}

#[async_trait]
impl Sink for AmqpSink {
    async fn start(&mut self, cx: &SinkContext) -> Result<(), PluginError> {
        let broker = self.broker.take().expect("start is called once");
        self.shutdown = cx.shutdown.clone();
        let (sender, receiver) = mpsc::channel(self.buffer_size);
        let worker = Worker::start(broker, self.settings.clone(), self.shared.clone()).await?;
        self.sender = Some(sender);
        self.task = Some(tokio::spawn(worker.run(receiver)));
        Ok(())
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        let Some(sender) = &self.sender else {
            return Err(PluginError::Fatal("amqp: publish before start".into()));
        };
        let capacity = sender.max_capacity();
        for chunk in batch.chunks(capacity) {
            let permits = tokio::select! {
                permits = sender.reserve_many(chunk.len()) => permits,
                () = self.shutdown.wait() => {
                    return Err(PluginError::Fatal(format!(
                        "amqp: stopped while the broker does not take events; {} accepted events were not delivered",
                        self.outstanding()
                    )));
                }
            };
            let Ok(permits) = permits else {
                return Err(self.worker_failure());
            };
            for (permit, event) in permits.zip(chunk) {
                self.scratch.clear();
                event.write_payload(&mut self.scratch);
                permit.send(Outgoing {
                    key: kind_index(&event.kind),
                    ts: event.ts().max(0) as u64,
                    body: Arc::from(self.scratch.as_slice()),
                });
            }
            self.accepted += chunk.len() as u64;
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<(), PluginError> {
        drop(self.sender.take());
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(self.close_timeout, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(why))) => Err(PluginError::Fatal(why)),
            Ok(Err(join)) => Err(PluginError::Fatal(format!(
                "amqp: the publisher task failed: {join}"
            ))),
            Err(_) => {
                task.abort();
                let outstanding = self.outstanding();
                if outstanding == 0 {
                    tracing::warn!(
                        "amqp: every event was delivered but the broker did not answer the connection close within close_timeout ({:?})",
                        self.close_timeout
                    );
                    return Ok(());
                }
                Err(PluginError::Fatal(format!(
                    "amqp: {outstanding} events were not confirmed by the broker within close_timeout ({:?})",
                    self.close_timeout
                )))
            }
        }
    }
}

/// Counts shared between the front end and the worker.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::serde_yaml;

    #[test]
    fn routing_keys_follow_the_mqtt_plugin_mapping() {
        let keys = RoutingKeys::new(&Topics::default()).unwrap();
        assert_eq!(
            keys.keys,
            [
                "customer.enter",
                "customer.move",
                "customer.exit",
                "customer.focus"
            ]
            .map(String::from)
        );
        let focus = Topics {
            focus: Some("store/7/focus".into()),
            ..Topics::default()
        };
        assert_eq!(RoutingKeys::new(&focus).unwrap().keys[3], "store.7.focus");
        assert_eq!(routing_key("a/b/c"), "a.b.c");
    }

    #[test]
    fn defaults_match_the_documentation() {
        let config: AmqpConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(config.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
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
