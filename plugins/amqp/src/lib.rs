//! The `amqp` sink: publishes each event to an AMQP 0-9-1 exchange (RabbitMQ), on lapin.
//!
//! For teams whose consumers read RabbitMQ. Each event becomes one message:
//! - **exchange**: `exchange` (default `amq.topic`, which every RabbitMQ has);
//! - **routing key**: the event's topic with `/` replaced by `.` (`customer/move` →
//!   `customer.move`), the mapping of RabbitMQ's own MQTT plugin, so MQTT and AMQP consumers of
//!   one broker see the same stream;
//! - **body**: the payload bytes of the event contract ([`Event::write_payload`]), byte for byte what the
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
//! # Reading back
//!
//! For the run's expectations (the replies of the system under test) and its delivery check, the
//! sink's config also makes a subscriber ([`AmqpSubscriber`]) on the same URL, TLS files and
//! exchange: one server-named, exclusive, auto-delete queue bound with the routing key of each
//! topic asked for, consumed with a prefetch of [`PREFETCH`] and acknowledgements once a message
//! was handed on (so memory stays bounded), reconnected with the sink's backoff after a loss,
//! which it reports. Its connection is named `customersim subscriber: <topics>` on the broker.
//!
//! # Layout
//! - this file: the crate doc, the module map and the re-exports.
//! - `config`: the typed config ([`AmqpConfig`]), its defaults and environment variables.
//! - `sink`: the factory (`build`, which checks what serde cannot) and the [`Sink`] front end
//!   ([`AmqpSink`]: the bounded buffer to the worker, shutdown).
//! - `routing`: topics into routing keys ([`RoutingKeys`]).
//! - [`broker`]: connecting (URL, TLS files, errors classified as permanent or transient).
//! - [`worker`]: the background publisher (window of unconfirmed publishes, retries, reconnects).
//! - `exchange`: the exchange declared or checked, the same way for the sink and the subscriber.
//! - `subscriber`: reading back from the exchange ([`AmqpSubscriber`]) for the run's
//!   expectations and delivery check.
//!
//! [`Event::write_payload`]: customersim_plugin_api::Event::write_payload
//! [`Sink`]: customersim_plugin_api::Sink
//! [`Sink::publish`]: customersim_plugin_api::Sink::publish
//! [`Sink::start`]: customersim_plugin_api::Sink::start
//! [`PluginError::Fatal`]: customersim_plugin_api::PluginError::Fatal

pub mod broker;
mod config;
mod exchange;
mod routing;
mod sink;
mod subscriber;
pub mod worker;

pub use config::AmqpConfig;
pub use routing::{MAX_ROUTING_KEY_BYTES, RoutingKeys, check_routing_key, kind_index, routing_key};
pub use sink::AmqpSink;
pub use subscriber::{ACK_BATCH, AmqpSubscriber, PREFETCH};
