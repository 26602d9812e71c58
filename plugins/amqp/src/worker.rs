//! The background publisher: takes events from the bounded buffer, publishes them in order on one
//! channel with up to `max_in_flight` unconfirmed, publishes nacked and unconfirmed messages
//! again after a reconnect, and closes the connection once everything was confirmed.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use customersim_plugin_api::{Backoff, PluginError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ErrorKind};
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::time::{Instant, MissedTickBehavior};

use crate::RoutingKeys;
use crate::broker::Broker;
use crate::exchange::{Exchange, SetupError};

/// First wait before a reconnection attempt; doubled after each failure up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// Consecutive refusals of the credentials or vhost after which a reconnecting sink gives up.
const PERMANENT_REFUSALS: u32 = 5;

/// One event ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Index of the routing key ([`RoutingKeys::index`]: the store's, then enter, move, exit,
    /// focus).
    pub key: u32,
    /// The event's `ts`, the message's `timestamp` property.
    pub ts: u64,
    /// The payload bytes (shared with the publish in flight, kept for a retry).
    pub body: Arc<[u8]>,
}

/// What the worker publishes with.
#[derive(Debug)]
pub struct Settings {
    pub exchange: String,
    pub exchange_type: String,
    pub declare: bool,
    pub persistent: bool,
    pub confirms: bool,
    pub max_in_flight: usize,
    pub routing_keys: RoutingKeys,
}

/// State shared with the front end.
#[derive(Debug, Default)]
pub struct Shared {
    /// Events confirmed by the broker (or written, without confirms).
    pub delivered: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl Shared {
    /// Why the worker stopped, if it failed.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    fn fail(&self, why: &str) {
        *self.failure.lock().expect("failure lock") = Some(why.to_string());
    }
}

/// Adds `n` to one of the [`Shared`] counts the front end reads.
fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// One message on its way: written to the socket, then confirmed (or `NotRequested` without
/// confirms).
type Delivery = Pin<Box<dyn Future<Output = lapin::Result<Confirmation>> + Send>>;

/// A [`Delivery`] that may have finished on its first poll.
enum InFlight {
    Running(Delivery),
    Done(Option<Box<lapin::Result<Confirmation>>>),
}

impl Future for InFlight {
    type Output = lapin::Result<Confirmation>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            InFlight::Running(delivery) => delivery.as_mut().poll(cx),
            InFlight::Done(result) => Poll::Ready(*result.take().expect("polled after completion")),
        }
    }
}

/// A connection and its publishing channel.
struct Link {
    connection: Connection,
    /// Shared with the publishes in flight (cloning an `Arc` is cheaper than a `Channel`).
    channel: Arc<Channel>,
}

/// The publisher task's state.
pub struct Worker {
    broker: Broker,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    link: Option<Link>,
    exchange: ShortString,
    keys: Vec<ShortString>,
    content_type: ShortString,
    /// Messages to publish before taking new ones: nacked, or unconfirmed at a connection loss.
    retry: VecDeque<Outgoing>,
    /// Published (handed to lapin, which writes them in this order), awaiting the write and the
    /// broker's confirm.
    in_flight: VecDeque<(Outgoing, InFlight)>,
    /// Whether the last confirm was a nack (nacks are logged once per run of them).
    nacking: bool,
    /// Why and since when the link is down.
    down: Option<(Instant, String)>,
}

impl Worker {
    /// Connects once: wrong credentials, vhost, TLS or a missing exchange fail here; an
    /// unreachable broker is logged and retried by [`Worker::run`].
    pub async fn start(
        broker: Broker,
        settings: Arc<Settings>,
        shared: Arc<Shared>,
    ) -> Result<Worker, PluginError> {
        let keys = settings
            .routing_keys
            .keys
            .iter()
            .map(|key| ShortString::from(key.as_str()))
            .collect();
        let mut worker = Worker {
            exchange: ShortString::from(settings.exchange.as_str()),
            keys,
            content_type: ShortString::from("application/json"),
            broker,
            settings,
            shared,
            link: None,
            retry: VecDeque::new(),
            in_flight: VecDeque::new(),
            nacking: false,
            down: None,
        };
        match worker.broker.connect().await {
            Ok(connection) => {
                match open_channel(&worker.broker, &worker.settings, connection).await {
                    Ok(link) => {
                        tracing::info!(
                            "amqp: connected to {}, publishing to exchange {:?} (confirms {}, persistent {})",
                            worker.broker.shown,
                            worker.settings.exchange,
                            if worker.settings.confirms {
                                "on"
                            } else {
                                "off"
                            },
                            worker.settings.persistent
                        );
                        worker.link = Some(link);
                    }
                    Err(error) if error.permanent => return Err(PluginError::Fatal(error.message)),
                    Err(error) => worker.went_down(error.message),
                }
            }
            Err(error) if error.permanent => return Err(PluginError::Fatal(error.message)),
            Err(error) => worker.went_down(error.message),
        }
        Ok(worker)
    }

    /// Publishes until the front end closed the buffer and everything was confirmed; returns
    /// the reason it gave up otherwise.
    pub async fn run(mut self, mut receiver: mpsc::Receiver<Outgoing>) -> Result<(), String> {
        let outcome = self.publish_all(&mut receiver).await;
        if let Err(why) = &outcome {
            self.shared.fail(why);
        }
        receiver.close();
        if let Some(link) = self.link.take() {
            // Without confirms, the broker's close-ok is what says it read every publish: leaving
            // before it could reset the socket with messages still in its send buffer. The front
            // end bounds this wait by close_timeout.
            let _ = link.connection.close(200, "OK".into()).await;
        }
        outcome
    }

    async fn publish_all(&mut self, receiver: &mut mpsc::Receiver<Outgoing>) -> Result<(), String> {
        let window = self.settings.max_in_flight;
        let mut closed = false;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if self.link.is_none() {
                self.reconnect().await?;
            }
            // Fill the window: retries first, then new events.
            while self.in_flight.len() < window {
                let next = match self.retry.pop_front() {
                    Some(next) => next,
                    None if closed => break,
                    None => match receiver.try_recv() {
                        Ok(next) => next,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    },
                };
                self.publish_one(next).await;
            }
            if self.in_flight.is_empty() {
                if closed {
                    return Ok(());
                }
                match receiver.recv().await {
                    Some(next) => self.retry.push_back(next),
                    None => closed = true,
                }
                continue;
            }
            let room = !closed && self.in_flight.len() < window;
            let (_, confirm) = self.in_flight.front_mut().expect("in flight");
            tokio::select! {
                biased;
                result = confirm => self.confirmed(result)?,
                next = receiver.recv(), if room => match next {
                    Some(next) => self.retry.push_back(next),
                    None => closed = true,
                },
                _ = check.tick() => self.check_link()?,
            }
        }
    }

    /// Hands one message to lapin: the first poll of the publish queues its frames (so messages go
    /// out in this order) and registers its confirm; the rest (the write to the socket, the
    /// broker's confirm) completes while later messages are published, so the socket never waits
    /// for a round trip through this task.
    async fn publish_one(&mut self, message: Outgoing) {
        let channel = self.link.as_ref().expect("connected").channel.clone();
        let mut properties = BasicProperties::default()
            .with_content_type(self.content_type.clone())
            .with_timestamp(message.ts);
        if self.settings.persistent {
            properties = properties.with_delivery_mode(2);
        }
        let exchange = self.exchange.clone();
        let key = self.keys[message.key as usize].clone();
        let body = message.body.clone();
        let mut delivery: Delivery = Box::pin(async move {
            channel
                .basic_publish(
                    exchange,
                    key,
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await?
                .await
        });
        let first = std::future::poll_fn(|cx| Poll::Ready(delivery.as_mut().poll(cx))).await;
        let in_flight = match first {
            Poll::Ready(result) => InFlight::Done(Some(Box::new(result))),
            Poll::Pending => InFlight::Running(delivery),
        };
        self.in_flight.push_back((message, in_flight));
    }

    /// Handles the confirm of the oldest message in flight.
    fn confirmed(&mut self, result: lapin::Result<Confirmation>) -> Result<(), String> {
        let (message, _) = self.in_flight.pop_front().expect("in flight");
        match result {
            Ok(Confirmation::Ack(_) | Confirmation::NotRequested) => {
                if self.nacking {
                    tracing::info!("amqp: the broker acknowledges messages again");
                    self.nacking = false;
                }
                add(&self.shared.delivered, 1);
                Ok(())
            }
            Ok(Confirmation::Nack(_)) => {
                if !self.nacking {
                    tracing::warn!(
                        "amqp: the broker nacked a message (it could not take it); publishing nacked messages again"
                    );
                    self.nacking = true;
                }
                self.retry.push_front(message);
                Ok(())
            }
            Err(error) => {
                self.retry.push_front(message);
                self.lost(&error)
            }
        }
    }

    /// Notices a link that died without failing a publish or a confirm.
    fn check_link(&mut self) -> Result<(), String> {
        let Some(link) = &self.link else {
            return Ok(());
        };
        if link.connection.status().connected() && link.channel.status().connected() {
            return Ok(());
        }
        let why = lapin::Error::from(ErrorKind::IOError(Arc::new(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the connection or channel closed",
        ))));
        self.lost(&why)
    }

    /// The link failed: everything in flight goes back in front of the queue (in order), or the
    /// error is permanent (the broker refused the exchange or the publish).
    fn lost(&mut self, error: &lapin::Error) -> Result<(), String> {
        if let ErrorKind::ProtocolError(amqp) = error.kind()
            && let AMQPErrorKind::Soft(soft) = amqp.kind()
            && !matches!(soft, AMQPSoftError::NOROUTE | AMQPSoftError::NOCONSUMERS)
        {
            return Err(format!(
                "amqp: the broker refused publishing to exchange {:?}: {}",
                self.settings.exchange,
                amqp.get_message().as_str()
            ));
        }
        let mut again: VecDeque<Outgoing> = self
            .in_flight
            .drain(..)
            .map(|(message, _)| message)
            .collect();
        again.append(&mut self.retry);
        self.retry = again;
        if let Some(link) = self.link.take()
            && link.connection.status().connected()
        {
            tokio::spawn(async move {
                let _ = link.connection.close(200, "reconnecting".into()).await;
            });
        }
        self.went_down(format!(
            "lost the connection to {} ({error})",
            self.broker.address()
        ));
        Ok(())
    }

    /// Logs that the link is down (once per outage).
    fn went_down(&mut self, why: String) {
        if self.down.is_none() {
            let why = why.strip_prefix("amqp: ").unwrap_or(&why);
            tracing::warn!(
                "amqp: {why}; reconnecting with backoff ({} unconfirmed events will be published again, new events wait in the buffer)",
                self.retry.len()
            );
            self.down = Some((Instant::now(), why.to_string()));
        }
    }

    /// Reconnects with exponential backoff; fails only on a permanent error.
    async fn reconnect(&mut self) -> Result<(), String> {
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let mut refusals = 0;
        loop {
            tokio::time::sleep(backoff.next_delay()).await;
            let connection = match self.broker.connect().await {
                Ok(connection) => connection,
                Err(error) if error.permanent => {
                    refusals += 1;
                    if refusals >= PERMANENT_REFUSALS {
                        return Err(error.message);
                    }
                    tracing::debug!("{}", error.message);
                    continue;
                }
                Err(error) => {
                    refusals = 0;
                    tracing::debug!("{}", error.message);
                    continue;
                }
            };
            match open_channel(&self.broker, &self.settings, connection).await {
                Ok(link) => {
                    let since = self.down.take().map(|(since, _)| since.elapsed());
                    tracing::info!(
                        "amqp: connected to {} again{}; publishing {} unconfirmed events again",
                        self.broker.shown,
                        since
                            .map(|since| format!(" after {:.1} s", since.as_secs_f64()))
                            .unwrap_or_default(),
                        self.retry.len()
                    );
                    self.link = Some(link);
                    return Ok(());
                }
                Err(error) if error.permanent => return Err(error.message),
                Err(error) => tracing::debug!("{}", error.message),
            }
        }
    }
}

/// Opens the publishing channel: confirm mode, and the exchange declared or checked.
async fn open_channel(
    broker: &Broker,
    settings: &Settings,
    connection: Connection,
) -> Result<Link, SetupError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| SetupError::transient(broker, error))?;
    if settings.confirms {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|error| SetupError::transient(broker, error))?;
    }
    Exchange {
        name: &settings.exchange,
        kind: &settings.exchange_type,
        declare: settings.declare,
    }
    .declare_on(broker, &channel)
    .await?;
    Ok(Link {
        connection,
        channel: Arc::new(channel),
    })
}
