//! The `mqtt` sink at run time: the factory that turns a checked [`MqttConfig`] into rumqttc
//! options and a client, and [`MqttSink`], which hands events to that client within the bounded
//! buffer's window (`gate.rs`) while the connection task (`link.rs`) talks to the broker.

use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::{
    BuildContext, EnvOverride, Event, PluginConfig, PluginError, ShutdownSignal, Sink, SinkConfig,
    SinkContext, Topics, async_trait,
};
use rumqttc::TlsConfiguration;
use rumqttc::Transport;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::config::{self, MqttConfig, ProtocolVersion, non_empty, non_empty_path};
use crate::gate::{Blocked, Gate};
use crate::link::{self, LinkSettings, LinkState, Wire};
use crate::tls;

impl PluginConfig for MqttConfig {
    const NAME: &'static str = "mqtt";
    const DESCRIPTION: &'static str = "publishes to an MQTT broker (v3.1.1/v5, QoS 0-2, TLS, reconnects without loss at QoS >= 1)";
    const ENV: &'static [EnvOverride] = config::ENV;
}

impl MqttConfig {
    /// The TLS settings from the certificate files (read here; nothing connects).
    fn tls(&self, cx: &BuildContext) -> Result<Option<Arc<rustls::ClientConfig>>, PluginError> {
        tls::client_config(&tls::TlsFiles {
            ca: non_empty_path(&self.broker_cert_file).map(|p| cx.resolve_path(p)),
            client_cert: non_empty_path(&self.client_cert_file).map(|p| cx.resolve_path(p)),
            client_key: non_empty_path(&self.client_key_file).map(|p| cx.resolve_path(p)),
        })
    }
}

impl SinkConfig for MqttConfig {
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        self.check_values(&cx.topics)?;
        self.tls(cx).map(|_| ())
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        self.check_values(&cx.topics)?;
        let tls = self.tls(cx)?;
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
                self.password
                    .as_ref()
                    .map(|p| p.expose().to_string())
                    .unwrap_or_default(),
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
    shutdown: Option<ShutdownSignal>,
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
            cx.end_run.clone(),
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
            let shutting_down = self
                .shutdown
                .as_ref()
                .is_some_and(ShutdownSignal::is_triggered);
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
                let topic = self.topics.for_event(event);
                if !self
                    .client
                    .publish(&topic, self.qos, self.retain, payload)
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

impl Drop for MqttSink {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
