//! The `mqtt` sink at run time: the factory that turns a checked [`MqttConfig`] into rumqttc
//! options and a client, and [`MqttSink`], which hands events to that client within the bounded
//! buffer's window (`gate.rs`) while the connection task (`link.rs`) talks to the broker.

use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::{
    BrokerEndpoint, BuildContext, CustomerId, EnvOverride, Event, PluginConfig, PluginError,
    ShutdownSignal, Sink, SinkConfig, SinkContext, Subscriber, Topics, async_trait,
};
use rumqttc::TlsConfiguration;
use rumqttc::Transport;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

use crate::config::{self, MqttConfig, ProtocolVersion, non_empty, non_empty_path};
use crate::gate::{Blocked, Gate};
use crate::link::{self, LinkSettings, LinkState, Wire};
use crate::tls;

/// Largest packet the v3.1.1 client sends: a publish to the longest topic MQTT allows
/// ([`crate::MAX_TOPIC_BYTES`]) with room for its payload. rumqttc's default (10 KiB) would
/// refuse a topic the check accepted and drop the connection, again at every reconnect. (v5
/// sends whatever the broker's CONNACK allows.)
const MAX_OUTGOING_PACKET_BYTES: usize = 1024 * 1024;

/// Largest packet the v3.1.1 client takes in: rumqttc's default, as before (the sink subscribes
/// to nothing, so only acknowledgements come in).
const MAX_INCOMING_PACKET_BYTES: usize = 10 * 1024;

impl PluginConfig for MqttConfig {
    const NAME: &'static str = "mqtt";
    const DESCRIPTION: &'static str = "publishes to an MQTT broker (v3.1.1/v5, QoS 0-2, TLS, reconnects without loss at QoS >= 1)";
    const ENV: &'static [EnvOverride] = config::ENV;

    fn brokers(&self) -> Vec<BrokerEndpoint> {
        let tls = non_empty_path(&self.broker_cert_file).is_some();
        vec![BrokerEndpoint {
            protocol: if tls { "secure-mqtt" } else { "mqtt" },
            protocol_version: Some(
                match self.protocol_version {
                    ProtocolVersion::V311 => "3.1.1",
                    ProtocolVersion::V5 => "5",
                }
                .to_string(),
            ),
            host: format!("{}:{}", self.host, self.port),
            pathname: None,
            description: format!(
                "the mqtt sink publishes at QoS {}{}",
                self.qos,
                if self.retain { ", retained" } else { "" }
            ),
            address: str::to_string,
        }]
    }
}

impl SinkConfig for MqttConfig {
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        self.check_values(&cx.topics, &cx.fleet)?;
        self.tls(cx).map(|_| ())
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        self.check_values(&cx.topics, &cx.fleet)?;
        let tls = self.tls(cx)?;
        let base_id = self.effective_client_id();
        let count = self.connections;
        let (connections, links) = (0..count)
            .map(|index| {
                // Distinct ids: a broker drops the older of two connections with one id.
                let (client_id, label) = if count == 1 {
                    (base_id.clone(), String::new())
                } else {
                    (
                        format!("{base_id}-{index}"),
                        format!(" (connection {} of {count})", index + 1),
                    )
                };
                self.connection(client_id, label, tls.clone())
            })
            .unzip();
        Ok(Box::new(MqttSink {
            connections,
            links: std::sync::Mutex::new(links),
            shutdown: None,
            topics: cx.topics.clone(),
            qos: self.qos,
            retain: self.retain,
            connect_timeout: self.connect_timeout,
            close_timeout: self.close_timeout,
        }))
    }

    fn subscriber(&self, cx: &BuildContext) -> Option<Result<Box<dyn Subscriber>, PluginError>> {
        Some(self.make_subscriber(cx))
    }
}

impl MqttConfig {
    /// One connection's client with its own bounded buffer, and what its task will run; `label`
    /// tells it apart from the sink's other connections in messages.
    fn connection(
        &self,
        client_id: String,
        label: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> (Connection, (Wire, LinkSettings)) {
        let host = self.host.trim().to_string();
        let window = self.buffer_size;
        let (client, wire) = match self.options(&client_id, tls, MAX_INCOMING_PACKET_BYTES) {
            Options::V4(options) => {
                let (client, mut events) = rumqttc::AsyncClient::new(*options, window);
                let mut network = events.network_options();
                network.set_connection_timeout(self.connect_timeout.as_secs().max(1));
                events.set_network_options(network);
                (
                    Client::V4(client),
                    Wire::V4 {
                        events: Box::new(events),
                        kept: Default::default(),
                    },
                )
            }
            Options::V5(options) => {
                let (client, events) = rumqttc::v5::AsyncClient::new(*options, window);
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
        let settings = LinkSettings {
            address: format!("{host}:{}{label}", self.port),
            client_id,
            protocol: self.protocol_version.name(),
            qos: self.qos,
            window,
            min_backoff: self.reconnect_delay_min,
            max_backoff: self.reconnect_delay_max,
        };
        let connection = Connection {
            client,
            gate: Arc::new(Gate::new(window)),
            state,
            task: None,
        };
        (connection, (wire, settings))
    }
}

impl MqttConfig {
    /// rumqttc's options for one connection of this config (address, protocol version, keep
    /// alive, clean session, credentials, TLS), shared by the sink's connections and the
    /// subscriber so that both reach the broker the same way. `max_incoming` bounds the packets
    /// taken in.
    pub(crate) fn options(
        &self,
        client_id: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        max_incoming: usize,
    ) -> Options {
        let transport = match tls {
            Some(config) => Transport::Tls(TlsConfiguration::Rustls(config)),
            None => Transport::Tcp,
        };
        let host = self.host.trim();
        let credentials = non_empty(&self.username).map(|user| {
            (
                user.to_string(),
                self.password
                    .as_ref()
                    .map(|p| p.expose().to_string())
                    .unwrap_or_default(),
            )
        });
        let inflight = inflight(self.buffer_size);
        match self.protocol_version {
            ProtocolVersion::V311 => {
                let mut options = rumqttc::MqttOptions::new(client_id, host, self.port);
                options
                    .set_keep_alive(self.keep_alive)
                    .set_clean_session(true)
                    .set_inflight(inflight)
                    .set_max_packet_size(max_incoming, MAX_OUTGOING_PACKET_BYTES)
                    .set_transport(transport);
                if let Some((user, password)) = credentials {
                    options.set_credentials(user, password);
                }
                Options::V4(Box::new(options))
            }
            ProtocolVersion::V5 => {
                let mut options = rumqttc::v5::MqttOptions::new(client_id, host, self.port);
                options
                    .set_keep_alive(self.keep_alive)
                    .set_clean_start(true)
                    .set_outgoing_inflight_upper_limit(inflight)
                    .set_max_packet_size(Some(max_incoming as u32))
                    .set_connection_timeout(self.connect_timeout.as_secs().max(1))
                    .set_transport(transport);
                if let Some((user, password)) = credentials {
                    options.set_credentials(user, password);
                }
                Options::V5(Box::new(options))
            }
        }
    }

    /// The TLS settings from the certificate files (read here; nothing connects).
    pub(crate) fn tls(
        &self,
        cx: &BuildContext,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, PluginError> {
        tls::client_config(&tls::TlsFiles {
            ca: non_empty_path(&self.broker_cert_file).map(|p| cx.resolve_path(p)),
            client_cert: non_empty_path(&self.client_cert_file).map(|p| cx.resolve_path(p)),
            client_key: non_empty_path(&self.client_key_file).map(|p| cx.resolve_path(p)),
        })
    }
}

/// rumqttc's options of either protocol version.
pub(crate) enum Options {
    V4(Box<rumqttc::MqttOptions>),
    V5(Box<rumqttc::v5::MqttOptions>),
}

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

/// The running sink: hands events to rumqttc within each connection's bounded buffer
/// (`gate.rs`); each connection's task (`link.rs`) does the rest.
pub struct MqttSink {
    /// `connections` of them (at least one); a customer's events always take the same one.
    connections: Vec<Connection>,
    /// Each connection's event loop and settings until `start` moves them into its task (in a
    /// mutex only so that the sink is `Sync`: the event loops are not).
    links: std::sync::Mutex<Vec<(Wire, LinkSettings)>>,
    shutdown: Option<ShutdownSignal>,
    topics: Topics,
    qos: u8,
    retain: bool,
    connect_timeout: Duration,
    close_timeout: Duration,
}

/// One connection to the broker: its client, buffer and task. Each reconnects and sends again
/// what was not acknowledged on its own.
struct Connection {
    client: Client,
    gate: Arc<Gate>,
    state: watch::Sender<LinkState>,
    task: Option<JoinHandle<()>>,
}

impl Connection {
    fn failure(&self) -> PluginError {
        PluginError::Fatal(
            self.gate
                .failure()
                .unwrap_or_else(|| "mqtt: the connection task stopped".into()),
        )
    }
}

/// The connection (of `count`) that carries `customer`'s events: always the same one, so a
/// customer's events keep their order. Numeric ids (generated ones count up) are spread by
/// their value, others by an FNV-1a hash of their text.
fn connection_of(customer: &CustomerId, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let key = match customer {
        CustomerId::Number(number) => *number,
        CustomerId::Text(text) => text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        }),
    };
    (key % count as u64) as usize
}

#[async_trait]
impl Sink for MqttSink {
    async fn start(&mut self, cx: &SinkContext) -> Result<(), PluginError> {
        self.topics = cx.topics.clone();
        self.shutdown = Some(cx.shutdown.clone());
        let mut watchers = Vec::new();
        let links = std::mem::take(self.links.get_mut().expect("links lock"));
        for (connection, (wire, settings)) in self.connections.iter_mut().zip(links) {
            watchers.push(connection.state.subscribe());
            connection.task = Some(tokio::spawn(link::run(
                wire,
                connection.gate.clone(),
                connection.state.clone(),
                cx.end_run.clone(),
                settings,
            )));
        }
        // Wait for each connection's first outcome, so bad credentials or certificates fail
        // here, at once. A broker that is not reachable yet does not hold the pipeline back: it
        // is retried.
        let deadline = Instant::now() + self.connect_timeout + Duration::from_secs(1);
        let mut answered = true;
        for (watcher, connection) in watchers.iter_mut().zip(&self.connections) {
            let first = timeout_at(
                deadline,
                watcher.wait_for(|state| *state != LinkState::Connecting),
            )
            .await;
            match first {
                Ok(Ok(state)) => {
                    if let LinkState::Failed(why) = &*state {
                        return Err(PluginError::Fatal(why.clone()));
                    }
                }
                Ok(Err(_)) => return Err(connection.failure()),
                Err(_) => answered = false,
            }
        }
        if !answered {
            tracing::warn!(
                "mqtt: no answer from the broker yet; events are buffered while it keeps trying"
            );
        }
        Ok(())
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        let count = self.connections.len();
        if count == 1 {
            let events: Vec<&Event> = batch.iter().collect();
            return self.publish_on(0, &events).await;
        }
        let mut shares: Vec<Vec<&Event>> = vec![Vec::new(); count];
        for event in batch {
            shares[connection_of(&event.customer, count)].push(event);
        }
        for (index, share) in shares.iter().enumerate() {
            self.publish_on(index, share).await?;
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<(), PluginError> {
        let deadline = Instant::now() + self.close_timeout;
        let mut outcome = Ok(());
        for connection in &mut self.connections {
            let closed = close_connection(connection, self.qos, self.close_timeout, deadline).await;
            if outcome.is_ok() {
                outcome = closed;
            }
        }
        outcome
    }
}

impl MqttSink {
    /// Hands `events` to connection `index`, in order, within its buffer's window.
    async fn publish_on(&self, index: usize, events: &[&Event]) -> Result<(), PluginError> {
        let connection = &self.connections[index];
        let mut sent_so_far = 0;
        let mut deadline: Option<Instant> = None;
        while sent_so_far < events.len() {
            let shutting_down = self
                .shutdown
                .as_ref()
                .is_some_and(ShutdownSignal::is_triggered);
            if shutting_down && deadline.is_none() {
                // Past shutdown a broker that stays away must not hold the process forever.
                deadline = Some(Instant::now() + self.close_timeout);
            }
            let wanted = events.len() - sent_so_far;
            let acquired = match acquire(
                &connection.gate,
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
                        "mqtt: shutting down while the broker does not take events: {wanted} events not published, {outstanding} not acknowledged"
                    )));
                }
            };
            for (sent, event) in events[sent_so_far..sent_so_far + acquired]
                .iter()
                .enumerate()
            {
                let mut payload = Vec::with_capacity(64);
                event.write_payload(&mut payload);
                let topic = self.topics.for_event(event);
                if !connection
                    .client
                    .publish(&topic, self.qos, self.retain, payload)
                    .await
                {
                    connection.gate.unacquire(acquired - sent);
                    return Err(connection.failure());
                }
            }
            sent_so_far += acquired;
        }
        Ok(())
    }
}

/// Waits (until `deadline`) for the broker to acknowledge what one connection was handed, then
/// disconnects it cleanly.
async fn close_connection(
    connection: &mut Connection,
    qos: u8,
    close_timeout: Duration,
    deadline: Instant,
) -> Result<(), PluginError> {
    let Some(task) = connection.task.take() else {
        return Ok(());
    };
    if let Some(why) = connection.gate.failure() {
        task.abort();
        return Err(PluginError::Fatal(why));
    }
    let waited = connection
        .gate
        .wait_idle(deadline.saturating_duration_since(Instant::now()))
        .await;
    let outcome = match waited {
        Ok(()) => Ok(()),
        Err(Blocked::Failed(why)) => Err(PluginError::Fatal(why)),
        Err(Blocked::TimedOut { outstanding }) => Err(PluginError::Fatal(format!(
            "mqtt: {outstanding} events were not {} by the broker within close_timeout ({close_timeout:?}); they may be lost",
            if qos == 0 { "taken" } else { "acknowledged" },
        ))),
    };
    if outcome.is_ok()
        && *connection.state.borrow() == LinkState::Up
        && connection.client.disconnect().await
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

/// Takes room for up to `wanted` events. Without a deadline it waits as long as it takes, unless
/// shutdown fires: from then on it waits at most `close_timeout`.
async fn acquire(
    gate: &Gate,
    shutdown: Option<&ShutdownSignal>,
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

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_always_takes_the_same_connection_and_customers_spread() {
        let ids: Vec<CustomerId> = (0..4000)
            .map(CustomerId::Number)
            .chain((0..4000).map(|n| CustomerId::parse(&format!("c-{n:04}"))))
            .collect();
        for count in [1, 2, 4, 7] {
            let mut load = vec![0usize; count];
            for id in &ids {
                let index = connection_of(id, count);
                assert_eq!(index, connection_of(&id.clone(), count), "stable");
                load[index] += 1;
            }
            let fair = ids.len() / count;
            assert!(
                load.iter().all(|n| *n > fair * 8 / 10),
                "{count} connections: {load:?}"
            );
        }
    }
}
