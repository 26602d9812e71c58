//! Reading back from the exchange the sink publishes to ([`Subscriber`]): the replies of the
//! system under test, or the sink's own events, on the sink's connection settings (URL,
//! credentials, vhost, TLS files).
//!
//! # On the broker
//! One queue per connection, named by the broker, exclusive and auto-delete (it goes with the
//! connection, so a crashed run leaves nothing behind collecting messages), bound to the sink's
//! exchange once per topic with the sink's routing key (`customer/prediction` →
//! `customer.prediction`). With `declare: true` the exchange is declared as the sink declares it,
//! so the subscriber may start first; otherwise it must exist, like for the sink.
//!
//! # Memory
//! Manual acknowledgements with a prefetch of [`PREFETCH`]: the broker sends at most that many
//! messages not yet acknowledged, and a message is acknowledged only once it was handed to the
//! core's channel (acknowledgements go out in batches, `multiple`, when the connection has nothing
//! more ready or [`ACK_BATCH`] are pending, and before waiting on a full channel). So the
//! subscriber holds at most the prefetch plus the channel, however slowly the core reads; what
//! does not fit waits in the broker's queue. (A `no_ack` consumer would be faster, but RabbitMQ
//! ignores the prefetch for it and pushes everything into the client's unbounded buffer.)
//!
//! # Losing the connection
//! The queue goes with the connection, so what is published while it is down is never seen:
//! [`Heard::Lost`] says when that began; the task reconnects with the sink's backoff, declares a
//! new queue, binds it again and sends [`Heard::Restored`]. A broker unreachable at
//! [`Subscriber::start`] is the same gap from the start (Lost at once, Restored once it answers),
//! as the sink retries an unreachable broker rather than failing the run. Refused credentials
//! while reconnecting are retried too (logged): the run keeps its report, with the gap in it.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use customersim_plugin_api::{
    Backoff, BuildContext, Heard, Message, PluginError, ShutdownSignal, Subscriber, async_trait,
};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use tokio::sync::mpsc::Sender;
use tokio::time::MissedTickBehavior;

use crate::AmqpConfig;
use crate::broker::Broker;
use crate::exchange::{Exchange, SetupError};
use crate::routing::{MAX_ROUTING_KEY_BYTES, routing_key};
use crate::worker::{FIRST_BACKOFF, MAX_BACKOFF};

/// Most messages the broker sends before the subscriber acknowledged them.
pub const PREFETCH: u16 = 1000;
/// Most messages handed on but not yet acknowledged; a quarter of the prefetch, so the broker
/// never waits for an acknowledgement while the subscriber keeps up.
pub const ACK_BATCH: u64 = PREFETCH as u64 / 4;
/// The consumer tag on the subscriber's channel.
const CONSUMER_TAG: &str = "customersim-subscriber";
/// How often the connection is looked at while no message arrives.
const LINK_CHECK: Duration = Duration::from_secs(1);

impl AmqpConfig {
    /// The subscriber of [`customersim_plugin_api::SinkConfig::subscriber`]: the same broker
    /// settings (URL, TLS files) and exchange as the sink.
    pub(crate) fn make_subscriber(
        &self,
        cx: &BuildContext,
    ) -> Result<Box<dyn Subscriber>, PluginError> {
        if self.exchange.is_empty() {
            return Err(PluginError::Config(
                "exchange: the default exchange (\"\") routes by queue name, so nothing can be \
                 read back from it; name an exchange (e.g. amq.topic) to subscribe to replies"
                    .into(),
            ));
        }
        Ok(Box::new(AmqpSubscriber {
            broker: Broker::from_config(self, cx)?,
            exchange: self.exchange.clone(),
            exchange_type: self.exchange_type.clone(),
            declare: self.declare,
        }))
    }
}

/// Subscribes to routing keys of the sink's exchange; see the module documentation.
pub struct AmqpSubscriber {
    broker: Broker,
    exchange: String,
    exchange_type: String,
    declare: bool,
}

/// Where each routing key came from: the index of its topic in [`Subscriber::start`]'s list.
struct Bindings {
    /// Each distinct routing key once, in the order of the topics.
    keys: Vec<String>,
    /// Routing key → the first topic that maps onto it.
    index: HashMap<String, usize>,
    /// The connection name the broker shows, naming the topics.
    connection_name: String,
}

impl Bindings {
    fn new(topics: &[String]) -> Result<Bindings, PluginError> {
        let mut keys = Vec::new();
        let mut index = HashMap::new();
        for (i, topic) in topics.iter().enumerate() {
            let key = routing_key(topic);
            if key.len() > MAX_ROUTING_KEY_BYTES {
                return Err(PluginError::Config(format!(
                    "topic {topic:?}: {} bytes, longer than the {MAX_ROUTING_KEY_BYTES} bytes an AMQP routing key may have",
                    key.len()
                )));
            }
            if !index.contains_key(&key) {
                index.insert(key.clone(), i);
                keys.push(key);
            }
        }
        let mut connection_name = format!("customersim subscriber: {}", topics.join(", "));
        if connection_name.len() > 200 {
            let mut end = 200;
            while !connection_name.is_char_boundary(end) {
                end -= 1;
            }
            connection_name.truncate(end);
            connection_name.push('…');
        }
        Ok(Bindings {
            keys,
            index,
            connection_name,
        })
    }
}

/// A connection with its queue bound and consumed.
struct Link {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
}

impl Link {
    /// Closes the connection without waiting for the broker (it may be gone).
    fn close(self, why: &'static str) {
        if self.connection.status().connected() {
            tokio::spawn(async move {
                let _ = self.connection.close(200, why.into()).await;
            });
        }
    }
}

/// Why consuming stopped.
enum Stopped {
    /// Shutdown fired or the core closed the channel.
    Done,
    /// The connection, the channel or the consumer went away.
    Lost(String),
}

#[async_trait]
impl Subscriber for AmqpSubscriber {
    async fn start(
        self: Box<Self>,
        topics: Vec<String>,
        heard: Sender<Heard>,
        shutdown: ShutdownSignal,
    ) -> Result<(), PluginError> {
        let bindings = Bindings::new(&topics)?;
        let task = Task {
            subscriber: *self,
            bindings,
            heard,
            shutdown,
        };
        let first = match task.subscribe().await {
            Ok(link) => Some(link),
            Err(error) if error.permanent => return Err(PluginError::Fatal(error.message)),
            Err(error) => {
                tracing::warn!(
                    "{}; the subscriber reconnects with backoff and reports the gap",
                    error.message
                );
                let lost = Heard::Lost {
                    at_us: now_us(),
                    why: error.message,
                };
                if !task.hand_over(lost).await {
                    return Ok(());
                }
                None
            }
        };
        if first.is_some() {
            tracing::info!(
                "amqp: subscribed to {} on exchange {:?} of {}",
                task.bindings.keys.join(", "),
                task.subscriber.exchange,
                task.subscriber.broker.shown
            );
        }
        tokio::spawn(task.run(first));
        Ok(())
    }
}

/// The subscriber's background task.
struct Task {
    subscriber: AmqpSubscriber,
    bindings: Bindings,
    heard: Sender<Heard>,
    shutdown: ShutdownSignal,
}

impl Task {
    /// Connects, declares the queue, binds every routing key and registers the consumer.
    async fn subscribe(&self) -> Result<Link, SetupError> {
        let broker = &self.subscriber.broker;
        let connection = broker
            .connect_named(&self.bindings.connection_name)
            .await
            .map_err(|error| SetupError {
                permanent: error.permanent,
                message: error.message,
            })?;
        match self.set_up(&connection).await {
            Ok((channel, consumer)) => Ok(Link {
                connection,
                channel,
                consumer,
            }),
            Err(error) => {
                let _ = connection.close(200, "OK".into()).await;
                Err(error)
            }
        }
    }

    async fn set_up(&self, connection: &Connection) -> Result<(Channel, Consumer), SetupError> {
        let broker = &self.subscriber.broker;
        let transient = |error| SetupError::transient(broker, error);
        let channel = connection.create_channel().await.map_err(transient)?;
        Exchange {
            name: &self.subscriber.exchange,
            kind: &self.subscriber.exchange_type,
            declare: self.subscriber.declare,
        }
        .declare_on(broker, &channel)
        .await?;
        // A soft error closes only the channel: the broker said no to this request.
        let refused = |what: String, error: lapin::Error| match error.kind() {
            lapin::ErrorKind::ProtocolError(amqp)
                if matches!(amqp.kind(), lapin::protocol::AMQPErrorKind::Soft(_)) =>
            {
                SetupError {
                    permanent: true,
                    message: format!(
                        "amqp: the broker refused {what}: {}",
                        amqp.get_message().as_str()
                    ),
                }
            }
            _ => SetupError::transient(broker, error),
        };
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| {
                refused(
                    format!("a queue for the subscriber on vhost {:?}", broker.vhost()),
                    error,
                )
            })?;
        for key in &self.bindings.keys {
            channel
                .queue_bind(
                    queue.name().clone(),
                    self.subscriber.exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|error| {
                    refused(
                        format!(
                            "binding routing key {key:?} of exchange {:?}",
                            self.subscriber.exchange
                        ),
                        error,
                    )
                })?;
        }
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(transient)?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                CONSUMER_TAG.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| refused(format!("consuming queue {}", queue.name()), error))?;
        Ok((channel, consumer))
    }

    /// Sends to the core, waiting while the channel is full; `false` once the run is over (the
    /// shutdown fired or the core closed the channel).
    async fn hand_over(&self, heard: Heard) -> bool {
        tokio::select! {
            sent = self.heard.send(heard) => sent.is_ok(),
            () = self.shutdown.wait() => false,
        }
    }

    async fn run(self, mut link: Option<Link>) {
        loop {
            let current = match link.take() {
                Some(current) => current,
                None => match self.reconnect().await {
                    Some(current) => current,
                    None => return,
                },
            };
            match self.consume(current).await {
                Stopped::Done => return,
                Stopped::Lost(why) => {
                    tracing::warn!(
                        "amqp: the subscriber lost its connection to {} ({why}); reconnecting with backoff",
                        self.subscriber.broker.address()
                    );
                    let lost = Heard::Lost {
                        at_us: now_us(),
                        why,
                    };
                    if !self.hand_over(lost).await {
                        return;
                    }
                }
            }
        }
    }

    /// Subscribes again with backoff until it works; `None` when the run ended meanwhile.
    async fn reconnect(&self) -> Option<Link> {
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let mut last_warning = String::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = self.shutdown.wait() => return None,
                () = self.heard.closed() => return None,
            }
            let attempt = tokio::select! {
                attempt = self.subscribe() => attempt,
                () = self.shutdown.wait() => return None,
            };
            match attempt {
                Ok(link) => {
                    tracing::info!(
                        "amqp: the subscriber is connected to {} again, its bindings restored",
                        self.subscriber.broker.shown
                    );
                    if !self.hand_over(Heard::Restored { at_us: now_us() }).await {
                        link.close("OK");
                        return None;
                    }
                    return Some(link);
                }
                // Refused credentials or a missing exchange are logged, not fatal: the run goes
                // on, and the gap it reports says what was not heard.
                Err(error) if error.permanent && error.message != last_warning => {
                    tracing::warn!("{}; retrying", error.message);
                    last_warning = error.message;
                }
                Err(error) => tracing::debug!("{}", error.message),
            }
        }
    }

    /// Hands every delivery on until the run ends or the link fails.
    async fn consume(&self, mut link: Link) -> Stopped {
        let mut check = tokio::time::interval(LINK_CHECK);
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The newest delivery handed on but not acknowledged, and how many are.
        let mut unacked: Option<u64> = None;
        let mut pending = 0u64;
        let stopped = loop {
            // Acknowledge a batch once nothing more is ready, so the broker sends the next.
            let ready = match poll_now(&mut link.consumer).await {
                Poll::Ready(next) => Some(next),
                Poll::Pending => {
                    if let Err(why) = acknowledge(&link.channel, &mut unacked, &mut pending).await {
                        break Stopped::Lost(why);
                    }
                    None
                }
            };
            let next = match ready {
                Some(next) => next,
                None => tokio::select! {
                    next = next_delivery(&mut link.consumer) => next,
                    () = self.shutdown.wait() => break Stopped::Done,
                    () = self.heard.closed() => break Stopped::Done,
                    _ = check.tick() => {
                        if link.connection.status().connected() && link.channel.status().connected() {
                            continue;
                        }
                        break Stopped::Lost("the connection or channel closed".into());
                    }
                },
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => break Stopped::Lost(error.to_string()),
                None => break Stopped::Lost("the broker cancelled the consumer".into()),
            };
            let tag = delivery.delivery_tag;
            if let Some(message) = self.message(delivery) {
                // A full channel: acknowledge what was handed on before waiting, then wait
                // (back-pressure reaches the broker through the prefetch).
                let permit = match self.heard.try_reserve() {
                    Ok(permit) => permit,
                    Err(_) => {
                        if let Err(why) =
                            acknowledge(&link.channel, &mut unacked, &mut pending).await
                        {
                            break Stopped::Lost(why);
                        }
                        tokio::select! {
                            permit = self.heard.reserve() => match permit {
                                Ok(permit) => permit,
                                Err(_) => break Stopped::Done,
                            },
                            () = self.shutdown.wait() => break Stopped::Done,
                        }
                    }
                };
                permit.send(Heard::Message(message));
            }
            unacked = Some(tag);
            pending += 1;
            if pending >= ACK_BATCH
                && let Err(why) = acknowledge(&link.channel, &mut unacked, &mut pending).await
            {
                break Stopped::Lost(why);
            }
        };
        link.close(match stopped {
            Stopped::Done => "OK",
            Stopped::Lost(_) => "reconnecting",
        });
        stopped
    }

    /// The message of a delivery; `None` for a routing key that was not asked for (a fanout or
    /// headers exchange routes by other rules).
    fn message(&self, delivery: Delivery) -> Option<Message> {
        let received_us = now_us();
        let Some(&topic) = self.bindings.index.get(delivery.routing_key.as_str()) else {
            tracing::debug!(
                "amqp: the subscriber dropped a message with routing key {:?}, which it did not bind",
                delivery.routing_key.as_str()
            );
            return None;
        };
        Some(Message {
            topic,
            payload: delivery.data,
            received_us,
        })
    }
}

/// Acknowledges every delivery up to the newest handed on (`multiple`).
async fn acknowledge(
    channel: &Channel,
    unacked: &mut Option<u64>,
    pending: &mut u64,
) -> Result<(), String> {
    let Some(tag) = unacked.take() else {
        return Ok(());
    };
    *pending = 0;
    channel
        .basic_ack(tag, BasicAckOptions { multiple: true })
        .await
        .map_err(|error| error.to_string())
}

/// Wall-clock microseconds since the epoch.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_micros() as i64)
        .unwrap_or(0)
}

/// The consumer's next delivery if one is ready now, without waiting.
async fn poll_now(consumer: &mut Consumer) -> Poll<Option<lapin::Result<Delivery>>> {
    std::future::poll_fn(|cx| Poll::Ready(poll_next(Pin::new(&mut *consumer), cx))).await
}

/// The consumer's next delivery (lapin's consumer is a `futures` stream).
async fn next_delivery(consumer: &mut Consumer) -> Option<lapin::Result<Delivery>> {
    std::future::poll_fn(|cx| poll_next(Pin::new(&mut *consumer), cx)).await
}

fn poll_next(
    consumer: Pin<&mut Consumer>,
    cx: &mut Context<'_>,
) -> Poll<Option<lapin::Result<Delivery>>> {
    use futures_core::Stream;
    consumer.poll_next(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_map_to_the_sinks_routing_keys_first_index_wins() {
        let topics = ["customer/prediction", "a/b", "a.b", "customer/prediction"]
            .map(String::from)
            .to_vec();
        let bindings = Bindings::new(&topics).unwrap();
        assert_eq!(bindings.keys, ["customer.prediction", "a.b"]);
        assert_eq!(bindings.index["customer.prediction"], 0);
        assert_eq!(bindings.index["a.b"], 1);
        assert_eq!(
            bindings.connection_name,
            "customersim subscriber: customer/prediction, a/b, a.b, customer/prediction"
        );
    }

    #[test]
    fn a_topic_too_long_for_a_routing_key_is_refused_naming_it() {
        let long = "é".repeat(200);
        let why = Bindings::new(std::slice::from_ref(&long))
            .err()
            .unwrap()
            .to_string();
        assert!(why.contains("255") && why.contains("topic"), "{why}");
        let fits = "é".repeat(120);
        let bindings = Bindings::new(&[fits]).unwrap();
        assert!(bindings.connection_name.len() <= 200 + '…'.len_utf8());
    }

    #[test]
    fn the_default_exchange_cannot_be_subscribed_to() {
        let config = AmqpConfig {
            exchange: String::new(),
            ..AmqpConfig::default()
        };
        let cx = BuildContext::new(
            Default::default(),
            Default::default(),
            1,
            ".".into(),
            Default::default(),
        );
        let why = config.make_subscriber(&cx).err().unwrap().to_string();
        assert!(why.starts_with("exchange:"), "{why}");
    }
}
