//! Reading back from the broker the `mqtt` sink publishes to ([`Subscriber`]): the replies of the
//! system under test and, for the delivery check, the sink's own events.
//!
//! One connection of its own, with the sink's address, protocol version, credentials and TLS,
//! and the sink's client id with `-replies` appended (a broker drops the older of two
//! connections with one id). It subscribes at the sink's QoS, so a delivery check measures what
//! that QoS delivers. Sessions are clean: after a reconnect it subscribes again, and the time in
//! between is reported as a gap ([`Heard::Lost`], [`Heard::Restored`]).
//!
//! Memory is bounded: packets larger than [`MAX_MESSAGE_BYTES`] are refused by the client (the
//! broker is told the limit on MQTT v5), and at most the core's channel of messages waits; when
//! it is full, this task stops reading the socket until there is room.

use std::collections::HashMap;
use std::sync::Arc;

use customersim_plugin_api::clock::unix_now_us;
use customersim_plugin_api::{
    Backoff, BuildContext, Heard, Message, PluginError, ShutdownSignal, Subscriber, async_trait,
};
use rumqttc::v5::mqttbytes::v5::{Packet as V5Packet, SubscribeReasonCode as V5Code};
use rumqttc::{Packet as V4Packet, SubscribeReasonCode as V4Code};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

use crate::config::MqttConfig;
use crate::link::{Failure, classify_v4, classify_v5};
use crate::sink::Options;

/// Largest message read back: replies of a recommendation service are a few hundred bytes, events
/// under a hundred; 256 KiB leaves room for any reply while a queue of them stays small.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Requests rumqttc's client may queue (subscriptions only).
const REQUESTS: usize = 16;

impl MqttConfig {
    /// The subscriber on this sink's connection settings.
    pub(crate) fn make_subscriber(
        &self,
        cx: &BuildContext,
    ) -> Result<Box<dyn Subscriber>, PluginError> {
        self.check_values(&cx.topics, &cx.fleet)?;
        let tls = self.tls(cx)?;
        let client_id = format!("{}-replies", self.effective_client_id());
        Ok(Box::new(MqttSubscriber {
            options: self.options(&client_id, tls, MAX_MESSAGE_BYTES),
            address: format!("{}:{}", self.host.trim(), self.port),
            qos: self.qos,
            backoff: Backoff::new(self.reconnect_delay_min, self.reconnect_delay_max),
            connect_timeout: self.connect_timeout,
        }))
    }
}

/// A subscription made from an `mqtt` sink's config, not yet connected.
struct MqttSubscriber {
    options: Options,
    address: String,
    qos: u8,
    backoff: Backoff,
    connect_timeout: std::time::Duration,
}

/// What one turn of the event loop brought, whatever the protocol version.
enum Turn {
    Connected,
    Subscribed(Result<(), String>),
    Message { topic: Vec<u8>, payload: Vec<u8> },
    Other,
    Broken(Failure),
}

/// rumqttc's client of either version: where subscriptions are asked for.
enum Requests {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// rumqttc's event loop of either version: what the broker sends.
enum Link {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

fn open(options: Options) -> (Requests, Link) {
    match options {
        Options::V4(options) => {
            let (client, events) = rumqttc::AsyncClient::new(*options, REQUESTS);
            (Requests::V4(client), Link::V4(Box::new(events)))
        }
        Options::V5(options) => {
            let (client, events) = rumqttc::v5::AsyncClient::new(*options, REQUESTS);
            (Requests::V5(client), Link::V5(Box::new(events)))
        }
    }
}

impl Requests {
    /// Queues one SUBSCRIBE for every topic; the broker's SUBACK comes as a [`Turn`].
    async fn subscribe(&self, topics: &[String], qos: u8) -> Result<(), String> {
        match self {
            Requests::V4(client) => {
                let qos = match qos {
                    0 => rumqttc::QoS::AtMostOnce,
                    1 => rumqttc::QoS::AtLeastOnce,
                    _ => rumqttc::QoS::ExactlyOnce,
                };
                let filters = topics
                    .iter()
                    .map(|topic| rumqttc::SubscribeFilter::new(topic.clone(), qos));
                client
                    .subscribe_many(filters)
                    .await
                    .map_err(|error| error.to_string())
            }
            Requests::V5(client) => {
                let qos = match qos {
                    0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
                    1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
                };
                let filters = topics
                    .iter()
                    .map(|topic| rumqttc::v5::mqttbytes::v5::Filter::new(topic.clone(), qos));
                client
                    .subscribe_many(filters)
                    .await
                    .map_err(|error| error.to_string())
            }
        }
    }
}

impl Link {
    async fn next(&mut self) -> Turn {
        match self {
            Link::V4(events) => match events.poll().await {
                Ok(rumqttc::Event::Incoming(V4Packet::ConnAck(_))) => Turn::Connected,
                Ok(rumqttc::Event::Incoming(V4Packet::SubAck(ack))) => Turn::Subscribed(match ack
                    .return_codes
                    .iter()
                    .all(|code| matches!(code, V4Code::Success(_)))
                {
                    true => Ok(()),
                    false => Err(format!("the broker refused a subscription: {ack:?}")),
                }),
                Ok(rumqttc::Event::Incoming(V4Packet::Publish(publish))) => Turn::Message {
                    topic: publish.topic.into_bytes(),
                    payload: publish.payload.to_vec(),
                },
                Ok(_) => Turn::Other,
                Err(error) => Turn::Broken(classify_v4(&error)),
            },
            Link::V5(events) => match events.poll().await {
                Ok(rumqttc::v5::Event::Incoming(V5Packet::ConnAck(_))) => Turn::Connected,
                Ok(rumqttc::v5::Event::Incoming(V5Packet::SubAck(ack))) => Turn::Subscribed(
                    match ack
                        .return_codes
                        .iter()
                        .all(|code| matches!(code, V5Code::Success(_)))
                    {
                        true => Ok(()),
                        false => Err(format!("the broker refused a subscription: {ack:?}")),
                    },
                ),
                Ok(rumqttc::v5::Event::Incoming(V5Packet::Publish(publish))) => Turn::Message {
                    topic: publish.topic.to_vec(),
                    payload: publish.payload.to_vec(),
                },
                Ok(_) => Turn::Other,
                Err(error) => Turn::Broken(classify_v5(&error)),
            },
        }
    }
}

/// Where the subscription stands.
#[derive(PartialEq)]
enum Standing {
    /// Connected and every topic subscribed.
    Up,
    /// Connected again, SUBACK not yet in.
    Resubscribing,
    /// Not connected.
    Down,
}

#[async_trait]
impl Subscriber for MqttSubscriber {
    async fn start(
        self: Box<Self>,
        topics: Vec<String>,
        heard: mpsc::Sender<Heard>,
        shutdown: ShutdownSignal,
    ) -> Result<(), PluginError> {
        let MqttSubscriber {
            options,
            address,
            qos,
            mut backoff,
            connect_timeout,
        } = *self;
        let index: Arc<HashMap<Vec<u8>, usize>> = Arc::new(
            topics
                .iter()
                .enumerate()
                .map(|(index, topic)| (topic.as_bytes().to_vec(), index))
                .collect(),
        );
        let (requests, mut link) = open(options);
        // The first connection: subscribed before anything is published, or a clear error.
        let first = timeout(
            connect_timeout.max(std::time::Duration::from_secs(1)),
            async {
                requests
                    .subscribe(&topics, qos)
                    .await
                    .map_err(PluginError::fatal)?;
                loop {
                    match link.next().await {
                        Turn::Subscribed(Ok(())) => return Ok(()),
                        Turn::Subscribed(Err(why)) => return Err(PluginError::fatal(why)),
                        Turn::Broken(Failure::Permanent(why)) => {
                            return Err(PluginError::fatal(why));
                        }
                        Turn::Broken(Failure::ClientGone) => {
                            return Err(PluginError::fatal("the MQTT client stopped"));
                        }
                        Turn::Broken(Failure::Temporary(why)) => {
                            tracing::warn!("replies from {address}: {why}; retrying");
                            sleep(backoff.next_delay()).await;
                        }
                        Turn::Connected | Turn::Message { .. } | Turn::Other => {}
                    }
                }
            },
        )
        .await;
        match first {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error.within(format!("subscribing at {address}"))),
            Err(_) => {
                return Err(PluginError::fatal(format!(
                    "subscribing at {address}: not subscribed within {connect_timeout:?}"
                )));
            }
        }
        backoff.reset();
        tracing::info!("reading {} topic(s) back from {address}", topics.len());
        tokio::spawn(async move {
            let mut standing = Standing::Up;
            loop {
                let turn = tokio::select! {
                    () = shutdown.wait() => break,
                    turn = link.next() => turn,
                };
                match turn {
                    Turn::Message { topic, payload } => {
                        // A message on a topic not asked for (a retained one on a filter) is
                        // not ours to judge.
                        let Some(&topic) = index.get(&topic) else {
                            continue;
                        };
                        let message = Heard::Message(Message {
                            topic,
                            payload,
                            received_us: unix_now_us(),
                        });
                        if heard.send(message).await.is_err() {
                            break;
                        }
                    }
                    Turn::Connected if standing == Standing::Down => {
                        standing = Standing::Resubscribing;
                        if requests.subscribe(&topics, qos).await.is_err() {
                            break;
                        }
                    }
                    Turn::Subscribed(Ok(())) if standing == Standing::Resubscribing => {
                        standing = Standing::Up;
                        backoff.reset();
                        tracing::info!("reading from {address} again");
                        let restored = Heard::Restored {
                            at_us: unix_now_us(),
                        };
                        if heard.send(restored).await.is_err() {
                            break;
                        }
                    }
                    Turn::Subscribed(Err(why)) => {
                        tracing::error!("replies from {address}: {why}");
                    }
                    Turn::Broken(Failure::ClientGone) => break,
                    Turn::Broken(Failure::Permanent(why) | Failure::Temporary(why)) => {
                        if standing != Standing::Down {
                            tracing::warn!("replies from {address}: connection lost: {why}");
                            let lost = Heard::Lost {
                                at_us: unix_now_us(),
                                why,
                            };
                            if heard.send(lost).await.is_err() {
                                break;
                            }
                            standing = Standing::Down;
                        }
                        tokio::select! {
                            () = shutdown.wait() => break,
                            () = sleep(backoff.next_delay()) => {}
                        }
                    }
                    Turn::Connected | Turn::Subscribed(_) | Turn::Other => {}
                }
            }
        });
        Ok(())
    }
}
