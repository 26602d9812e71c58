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
//!     connections: 1              # MQTT_CONNECTIONS: a customer's events keep to one
//! ```
//!
//! Payloads are the bytes of the event contract ([`Event::write_payload`]: byte for byte what the
//! original service published) on the pipeline's topics.
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
//! - **Several connections** (`connections: N`): each event goes through the connection of its
//!   customer (the id's value, or a hash of its text, modulo N), so a customer's events keep
//!   their order; each connection has its own buffer, task, reconnects and resends. QoS, TLS and
//!   credentials apply to all; connection `i` uses the client id `<client id>-<i>`.
//! - **Shutdown** ([`Sink::close`]) waits up to `close_timeout` for the outstanding
//!   acknowledgements, then disconnects cleanly; events still unacknowledged then are reported as
//!   an error, never dropped silently.
//!
//! # Layout
//! - this file: the crate doc, the module map and the re-exports;
//! - `config.rs`: the typed config ([`MqttConfig`], [`ProtocolVersion`]), its defaults, its
//!   environment variables and the checks serde cannot make;
//! - `sink.rs`: the factory (`build`: rumqttc options, TLS, the client) and the running
//!   [`MqttSink`] (its connections, which customer takes which, back-pressure, start, close);
//! - `gate.rs`: the bounded buffer (undelivered events against a window);
//! - `link.rs`: the connection task (rumqttc's event loop, reconnects, error classification);
//! - `topic.rs`: what MQTT accepts as a topic name, checked on every resolved topic;
//! - `subscriber.rs`: reading back from the same broker (replies of the system under test, the
//!   delivery check), on the sink's connection settings;
//! - `tls.rs`: the rustls client config from the PEM files, with the `ring` provider.
//!
//! [`Event::write_payload`]: customersim_plugin_api::Event::write_payload
//! [`Sink::publish`]: customersim_plugin_api::Sink::publish
//! [`Sink::start`]: customersim_plugin_api::Sink::start
//! [`Sink::close`]: customersim_plugin_api::Sink::close

mod config;
mod gate;
mod link;
mod sink;
mod subscriber;
mod tls;
mod topic;

pub use config::{MqttConfig, ProtocolVersion};
pub use sink::MqttSink;
pub use subscriber::MAX_MESSAGE_BYTES;
pub use topic::{MAX_TOPIC_BYTES, check_topic_name};
