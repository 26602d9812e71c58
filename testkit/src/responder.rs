//! A stand-in for the system under test of expectations: the original recommendation service,
//! which answers each focus event with a coupon for the customer. It subscribes to a request
//! topic on the real Mosquitto (rumqttc) or RabbitMQ (lapin) and, for each request
//! `{"id": "7", "ts": …, "dep": "Boys", …}`, publishes on the reply topic after a set delay
//!
//! ```json
//! {"customer": {"id": "7"}, "coupon": {"id": "3", "type": "buy_all", "department": "Boys"}, "ts": …}
//! ```
//!
//! (the request's `id` and `ts` echoed, the coupon id the request's number). To give a verdict
//! something to find, it misbehaves on a deterministic subset ([`ResponderOptions`]): it skips
//! some requests, answers some late, and sends extra replies that are not JSON or name a customer
//! nobody sent. It records exactly what it did ([`Tally`], [`Action`]), so a test asserts the
//! verdict's counts equal it.
//!
//! Counting: the *n*-th request (from 1, in arrival order, among those it answers at all: a JSON
//! object with an `id`, its `dep` in [`ResponderOptions::departments`] when that is set) is
//! - skipped when `n % skip_every == 0`, otherwise
//! - answered after [`ResponderOptions::late_delay`] when `n % late_every == 0`, otherwise
//! - answered after [`ResponderOptions::delay`];
//!
//! and, independently of that, followed after `delay` by one reply that is not JSON when
//! `n % invalid_every == 0` and one for customer `unmatched-<n>` when `n % unmatched_every == 0`.
//! A `*_every` of 0 never applies. Every request falls in exactly one of ignored, skipped,
//! answered, late; invalid and unmatched replies are extra.
//!
//! MQTT: QoS 1 both ways, a clean session, resubscribed after a reconnect. AMQP: an exclusive
//! queue bound to the exchange with the request topic's routing key (`/` → `.`, as the `amqp`
//! sink maps topics), replies published to the same exchange with publisher confirms.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

/// Where the responder reads requests and sends replies.
#[derive(Clone, Debug)]
pub enum ResponderBroker {
    /// An MQTT broker on 127.0.0.1 without authentication (the shared Mosquitto on 1883, or a
    /// private [`crate::mosquitto::Broker`]).
    Mqtt {
        /// Its port.
        port: u16,
    },
    /// An AMQP broker: requests and replies on `exchange`, routing key = topic with `/` → `.`.
    Amqp {
        /// `amqp://user:pass@host:port/vhost`.
        url: String,
        /// The exchange the `amqp` sink publishes the requests to.
        exchange: String,
    },
}

impl ResponderBroker {
    /// The shared Mosquitto on 127.0.0.1:1883.
    pub fn local_mqtt() -> ResponderBroker {
        ResponderBroker::Mqtt { port: 1883 }
    }

    /// The shared RabbitMQ ([`crate::amqp::LOCAL_AMQP_URL`]), exchange `amq.topic` (the `amqp`
    /// sink's default).
    pub fn local_amqp() -> ResponderBroker {
        ResponderBroker::Amqp {
            url: crate::amqp::LOCAL_AMQP_URL.into(),
            exchange: "amq.topic".into(),
        }
    }
}

/// How the responder answers; see the module documentation for which request gets what.
#[derive(Clone, Debug)]
pub struct ResponderOptions {
    /// The topic requests arrive on, as customersim publishes it (`customer/focus`).
    pub requests: String,
    /// The topic replies go to (`customer/prediction`).
    pub replies: String,
    /// How long after a request arrived its reply is sent.
    pub delay: Duration,
    /// Only requests whose `dep` is one of these are answered (or skipped, …); the rest are
    /// ignored, like the original service with coupons for some departments only. `None`: all.
    pub departments: Option<Vec<String>>,
    /// Every `skip_every`-th request gets no reply (0: none skipped).
    pub skip_every: u64,
    /// Every `late_every`-th request not skipped is answered after `late_delay` (0: none).
    pub late_every: u64,
    /// The delay of late replies.
    pub late_delay: Duration,
    /// After every `invalid_every`-th request, one extra reply that is not JSON (0: none).
    pub invalid_every: u64,
    /// After every `unmatched_every`-th request, one extra reply for a customer id nobody sent,
    /// `unmatched-<n>` (0: none).
    pub unmatched_every: u64,
}

impl ResponderOptions {
    /// Answers every request on `requests` with a reply on `replies` after 20 ms.
    pub fn new(requests: &str, replies: &str) -> ResponderOptions {
        ResponderOptions {
            requests: requests.into(),
            replies: replies.into(),
            delay: Duration::from_millis(20),
            departments: None,
            skip_every: 0,
            late_every: 0,
            late_delay: Duration::from_secs(5),
            invalid_every: 0,
            unmatched_every: 0,
        }
    }
}

/// What the responder did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests that arrived (every message on the request topic).
    pub received: u64,
    /// Requests it does not answer at all: not a JSON object with an `id`, or a `dep` outside
    /// [`ResponderOptions::departments`]. Not counted in the `*_every` numbering.
    pub ignored: u64,
    /// Requests deliberately left without a reply (a verdict's *missing*).
    pub skipped: u64,
    /// Replies sent after [`ResponderOptions::delay`] (a verdict's *answered in time*).
    pub answered: u64,
    /// Replies sent after [`ResponderOptions::late_delay`] (a verdict's *late*).
    pub late: u64,
    /// Extra replies that are not JSON (a verdict's *invalid*).
    pub invalid: u64,
    /// Extra replies for a customer nobody sent (a verdict's *unexpected*).
    pub unmatched: u64,
}

impl Tally {
    /// Requests it took into account: `received - ignored` (a verdict's *expected*, when the
    /// expectation's filter matches the responder's departments).
    pub fn expected(&self) -> u64 {
        self.received - self.ignored
    }
}

/// What the responder did about one request or one extra reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Did {
    /// The request was not taken into account (see [`Tally::ignored`]).
    Ignored,
    /// The request got no reply.
    Skipped,
    /// The reply was sent after the delay.
    Answered,
    /// The reply was sent after the late delay.
    Late,
    /// An extra reply that is not JSON was sent.
    Invalid,
    /// An extra reply for a customer nobody sent was sent.
    Unmatched,
}

/// One thing the responder did, in the order it did it (a reply is recorded when it was sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// What.
    pub did: Did,
    /// The customer id of the request (for an unmatched reply, the id it named, `unmatched-<n>`;
    /// empty for a request without an id).
    pub customer: String,
    /// When the request arrived, wall clock, microseconds since the epoch.
    pub request_us: i64,
    /// When the reply was handed to the client library, wall clock, microseconds since the
    /// epoch; `None` for ignored and skipped requests.
    pub sent_us: Option<i64>,
}

/// Answers requests on a thread of its own until dropped.
pub struct Responder {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

/// What the responder's thread shares with the test.
#[derive(Default)]
struct Shared {
    record: Mutex<Record>,
    changed: Condvar,
}

#[derive(Default)]
struct Record {
    tally: Tally,
    actions: Vec<Action>,
    /// Replies scheduled but not sent yet.
    scheduled: u64,
    /// Replies sent but not acknowledged by the broker yet (MQTT: no PUBACK yet).
    unconfirmed: u64,
    /// When the last request arrived.
    last_request: Option<Instant>,
}

impl Record {
    fn idle(&self) -> bool {
        self.scheduled == 0 && self.unconfirmed == 0
    }
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Record)) {
        change(&mut self.record.lock().expect("record lock"));
        self.changed.notify_all();
    }
}

impl Responder {
    /// Connects, subscribes to `options.requests` and returns once the broker confirmed the
    /// subscription (a request published after this returns is answered).
    pub fn start(broker: ResponderBroker, options: ResponderOptions) -> Responder {
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the responder");
                runtime.block_on(respond(broker, options, shared, stopped, ready_tx));
            })
        };
        match ready_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => {}
            Err(_) => panic!("the responder did not subscribe within 20 s"),
        }
        Responder {
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// What it did so far.
    pub fn tally(&self) -> Tally {
        self.shared.record.lock().expect("record lock").tally
    }

    /// Everything it did so far, in order.
    pub fn actions(&self) -> Vec<Action> {
        self.shared
            .record
            .lock()
            .expect("record lock")
            .actions
            .clone()
    }

    /// Waits until `received` requests arrived and every reply they caused was sent (and, on
    /// MQTT, acknowledged by the broker); panics with the tally after `limit`.
    pub fn wait_for(&self, received: u64, limit: Duration) -> Tally {
        self.wait_until(limit, |record| {
            record.tally.received >= received && record.idle()
        })
    }

    /// Waits until no request arrived for `quiet` and every reply was sent (and acknowledged);
    /// panics with the tally after `limit`. For a run whose number of requests the test does not
    /// know in advance.
    pub fn wait_idle(&self, quiet: Duration, limit: Duration) -> Tally {
        let started = Instant::now();
        self.wait_until(limit, |record| {
            let last = record.last_request.unwrap_or(started);
            record.idle() && last.elapsed() >= quiet
        })
    }

    fn wait_until(&self, limit: Duration, done: impl Fn(&Record) -> bool) -> Tally {
        let deadline = Instant::now() + limit;
        let mut record = self.shared.record.lock().expect("record lock");
        loop {
            if done(&record) {
                return record.tally;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "the responder did not get there within {limit:?}: {:?}, {} replies scheduled, {} unacknowledged",
                record.tally,
                record.scheduled,
                record.unconfirmed
            );
            // Woken by every change; at least every 50 ms for the quiet period.
            let wait = (deadline - now).min(Duration::from_millis(50));
            record = self
                .shared
                .changed
                .wait_timeout(record, wait)
                .expect("record lock")
                .0;
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A request as it arrived.
struct Request {
    payload: Vec<u8>,
    at: Instant,
    at_us: i64,
}

/// A reply waiting for its time.
struct Outgoing {
    due: Instant,
    /// Keeps replies due at the same instant in the order they were planned.
    seq: u64,
    did: Did,
    customer: String,
    request_us: i64,
    payload: Vec<u8>,
}

impl PartialEq for Outgoing {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Outgoing {}
impl PartialOrd for Outgoing {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Outgoing {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Decides what each request gets (the numbering of the module documentation).
struct Planner {
    options: ResponderOptions,
    /// Requests taken into account so far.
    counted: u64,
    /// Replies planned so far.
    seq: u64,
}

impl Planner {
    /// The replies `request` causes, recording the request's fate.
    fn plan(&mut self, request: Request, shared: &Shared) -> Vec<Outgoing> {
        let parsed: Option<Value> = serde_json::from_slice(&request.payload).ok();
        let id = parsed
            .as_ref()
            .and_then(|request| request.get("id"))
            .cloned();
        let dep = parsed
            .as_ref()
            .and_then(|request| request.get("dep"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let ts = parsed
            .as_ref()
            .and_then(|request| request.get("ts"))
            .cloned()
            .unwrap_or(Value::Null);
        let wanted = match (&self.options.departments, &dep) {
            (None, _) => true,
            (Some(departments), Some(dep)) => departments.contains(dep),
            (Some(_), None) => false,
        };
        let customer = match &id {
            Some(Value::String(id)) => id.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let request_us = request.at_us;
        let record = |did: Did| Action {
            did,
            customer: customer.clone(),
            request_us,
            sent_us: None,
        };
        let Some(id) = id.filter(|_| wanted) else {
            shared.update(|r| {
                r.tally.received += 1;
                r.tally.ignored += 1;
                r.last_request = Some(request.at);
                r.actions.push(record(Did::Ignored));
            });
            return Vec::new();
        };
        self.counted += 1;
        let n = self.counted;
        let every = |k: u64| k != 0 && n.is_multiple_of(k);
        let dep = dep.unwrap_or_default();
        let mut out = Vec::new();
        let skipped = every(self.options.skip_every);
        if !skipped {
            let (did, delay) = if every(self.options.late_every) {
                (Did::Late, self.options.late_delay)
            } else {
                (Did::Answered, self.options.delay)
            };
            let reply = coupon(id, n, &dep, ts.clone());
            out.push(self.outgoing(&request, delay, did, &customer, reply));
        }
        if every(self.options.invalid_every) {
            let payload = format!("not JSON: reply {n} of the test responder").into_bytes();
            out.push(self.outgoing(
                &request,
                self.options.delay,
                Did::Invalid,
                &customer,
                payload,
            ));
        }
        if every(self.options.unmatched_every) {
            let stranger = format!("unmatched-{n}");
            let reply = coupon(Value::String(stranger.clone()), n, &dep, ts);
            out.push(self.outgoing(
                &request,
                self.options.delay,
                Did::Unmatched,
                &stranger,
                reply,
            ));
        }
        let scheduled = out.len() as u64;
        shared.update(|r| {
            r.tally.received += 1;
            r.last_request = Some(request.at);
            r.scheduled += scheduled;
            if skipped {
                r.tally.skipped += 1;
                r.actions.push(record(Did::Skipped));
            }
        });
        out
    }

    fn outgoing(
        &mut self,
        request: &Request,
        delay: Duration,
        did: Did,
        customer: &str,
        payload: Vec<u8>,
    ) -> Outgoing {
        self.seq += 1;
        Outgoing {
            due: request.at + delay,
            seq: self.seq,
            did,
            customer: customer.to_string(),
            request_us: request.at_us,
            payload,
        }
    }
}

/// The original recommendation service's reply.
fn coupon(customer: Value, n: u64, department: &str, ts: Value) -> Vec<u8> {
    let reply = json!({
        "customer": {"id": customer},
        "coupon": {"id": n.to_string(), "type": "buy_all", "department": department},
        "ts": ts,
    });
    serde_json::to_vec(&reply).expect("JSON")
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_micros() as i64
}

/// Publishes replies on the broker the requests came from.
enum Replier {
    Mqtt { client: AsyncClient, topic: String },
    Amqp(Box<AmqpReplier>),
}

/// Where AMQP replies go.
struct AmqpReplier {
    connection: Connection,
    channel: Channel,
    exchange: String,
    /// The reply topic's routing key.
    key: String,
}

impl Replier {
    /// Sends one reply; `true` when the broker already acknowledged it (AMQP's confirm), `false`
    /// when its acknowledgement comes later (MQTT's PUBACK, counted by the event loop).
    async fn send(&self, payload: Vec<u8>) -> bool {
        match self {
            Replier::Mqtt { client, topic } => {
                client
                    .publish(topic.as_str(), QoS::AtLeastOnce, false, payload)
                    .await
                    .expect("the responder's MQTT client takes the reply");
                false
            }
            Replier::Amqp(amqp) => {
                let AmqpReplier {
                    channel,
                    exchange,
                    key,
                    ..
                } = &**amqp;
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        &payload,
                        BasicProperties::default().with_content_type("application/json".into()),
                    )
                    .await
                    .expect("the responder publishes its reply")
                    .await
                    .expect("the broker confirms the responder's reply");
                true
            }
        }
    }

    async fn close(self) {
        match self {
            Replier::Mqtt { client, .. } => {
                let _ = client.disconnect().await;
            }
            Replier::Amqp(amqp) => {
                let _ = amqp.connection.close(200, "OK".into()).await;
            }
        }
    }
}

/// The responder's thread: requests come from the broker's reader task, replies go out when due.
async fn respond(
    broker: ResponderBroker,
    options: ResponderOptions,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let (requests_tx, mut requests) = mpsc::unbounded_channel();
    let (replier, reader) = match &broker {
        ResponderBroker::Mqtt { port } => {
            start_mqtt(*port, &options, requests_tx, shared.clone(), ready)
        }
        ResponderBroker::Amqp { url, exchange } => {
            start_amqp(url, exchange, &options, requests_tx, ready).await
        }
    };
    let mut planner = Planner {
        options,
        counted: 0,
        seq: 0,
    };
    let mut due: BinaryHeap<Reverse<Outgoing>> = BinaryHeap::new();
    loop {
        let next_due = due.peek().map(|Reverse(next)| next.due);
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => due.extend(planner.plan(request, &shared).into_iter().map(Reverse)),
                None => break,
            },
            () = sleep_until(next_due) => {
                let Reverse(reply) = due.pop().expect("a reply is due");
                let confirmed = replier.send(reply.payload).await;
                let sent_us = now_us();
                shared.update(|r| {
                    r.scheduled -= 1;
                    if !confirmed {
                        r.unconfirmed += 1;
                    }
                    let counter = match reply.did {
                        Did::Answered => &mut r.tally.answered,
                        Did::Late => &mut r.tally.late,
                        Did::Invalid => &mut r.tally.invalid,
                        Did::Unmatched => &mut r.tally.unmatched,
                        Did::Ignored | Did::Skipped => unreachable!("no reply is planned for them"),
                    };
                    *counter += 1;
                    r.actions.push(Action {
                        did: reply.did,
                        customer: reply.customer,
                        request_us: reply.request_us,
                        sent_us: Some(sent_us),
                    });
                });
            }
            _ = stopped.changed() => break,
        }
    }
    reader.abort();
    replier.close().await;
}

/// Sleeps until `due`; forever without one.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// The MQTT client: its event loop runs in a task of its own, passing requests on, subscribing
/// after every connection, counting the broker's PUBACKs.
fn start_mqtt(
    port: u16,
    options: &ResponderOptions,
    requests: mpsc::UnboundedSender<Request>,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<()>,
) -> (Replier, tokio::task::JoinHandle<()>) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let id = format!(
        "test-responder-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    );
    let mut mqtt = MqttOptions::new(id, "127.0.0.1", port);
    mqtt.set_keep_alive(Duration::from_secs(5));
    mqtt.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(mqtt, 1000);
    let filter = options.requests.clone();
    let subscriber = client.clone();
    let reader = tokio::spawn(async move {
        let mut ready = Some(ready);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    // Again after every reconnection: a clean session forgets the subscription.
                    subscriber
                        .subscribe(filter.as_str(), QoS::AtLeastOnce)
                        .await
                        .expect("queue the subscription");
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    // The wall clock first: a reply's `sent_us - request_us` is then never less
                    // than the delay it waited on the monotonic clock.
                    let at_us = now_us();
                    let request = Request {
                        payload: publish.payload.to_vec(),
                        at: Instant::now(),
                        at_us,
                    };
                    if requests.send(request).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    shared.update(|r| r.unconfirmed = r.unconfirmed.saturating_sub(1));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let replier = Replier::Mqtt {
        client,
        topic: options.replies.clone(),
    };
    (replier, reader)
}

/// The AMQP connection: a queue of its own for the requests, read by a task of its own; replies
/// published with confirms.
async fn start_amqp(
    url: &str,
    exchange: &str,
    options: &ResponderOptions,
    requests: mpsc::UnboundedSender<Request>,
    ready: std::sync::mpsc::Sender<()>,
) -> (Replier, tokio::task::JoinHandle<()>) {
    let properties =
        ConnectionProperties::default().with_connection_name("customersim test responder".into());
    let connection = Connection::connect(url, properties)
        .await
        .unwrap_or_else(|error| panic!("the responder cannot connect to {url}: {error}"));
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
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
        .expect("declare the responder's queue");
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            options.requests.replace('/', ".").as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind the responder's queue");
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "customersim-test-responder".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume the responder's queue");
    let _ = ready.send(());
    let reader = tokio::spawn(async move {
        while let Some(Ok(delivery)) = next_delivery(&mut consumer).await {
            let at_us = now_us();
            let request = Request {
                payload: delivery.data,
                at: Instant::now(),
                at_us,
            };
            if requests.send(request).is_err() {
                return;
            }
        }
    });
    let replier = Replier::Amqp(Box::new(AmqpReplier {
        connection,
        channel,
        exchange: exchange.to_string(),
        key: options.replies.replace('/', "."),
    }));
    (replier, reader)
}

/// The next delivery of a consumer (lapin's consumer is a `futures` stream).
async fn next_delivery(consumer: &mut Consumer) -> Option<lapin::Result<lapin::message::Delivery>> {
    std::future::poll_fn(|cx| poll_next(Pin::new(&mut *consumer), cx)).await
}

fn poll_next(
    consumer: Pin<&mut Consumer>,
    cx: &mut Context<'_>,
) -> Poll<Option<lapin::Result<lapin::message::Delivery>>> {
    use futures_core::Stream;
    consumer.poll_next(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Request {
        Request {
            payload: body.as_bytes().to_vec(),
            at: Instant::now(),
            at_us: now_us(),
        }
    }

    #[test]
    fn plans_each_request_by_its_number() {
        let mut options = ResponderOptions::new("customer/focus", "customer/prediction");
        options.departments = Some(vec!["Boys".into(), "Men".into()]);
        options.skip_every = 3;
        options.late_every = 2;
        options.invalid_every = 4;
        options.unmatched_every = 5;
        let shared = Shared::default();
        let mut planner = Planner {
            options,
            counted: 0,
            seq: 0,
        };
        let mut planned = Vec::new();
        for i in 1..=6 {
            let body = format!(r#"{{"id": "{i}", "ts": 100, "dep": "Boys", "x": 1, "y": 2}}"#);
            planned.extend(planner.plan(request(&body), &shared));
        }
        // Ignored: another department, no id, not JSON; they do not count in the numbering.
        for body in [r#"{"id": "9", "dep": "Girls"}"#, r#"{"dep": "Boys"}"#, "x"] {
            assert!(planner.plan(request(body), &shared).is_empty());
        }
        let did: Vec<(Did, &str)> = planned
            .iter()
            .map(|out| (out.did, out.customer.as_str()))
            .collect();
        assert_eq!(
            did,
            [
                (Did::Answered, "1"),
                (Did::Late, "2"),
                // 3 skipped
                (Did::Late, "4"),
                (Did::Invalid, "4"),
                (Did::Answered, "5"),
                (Did::Unmatched, "unmatched-5"),
                // 6 skipped (and late, which does not apply)
            ]
        );
        let record = shared.record.lock().unwrap();
        assert_eq!(
            record.tally,
            Tally {
                received: 9,
                ignored: 3,
                skipped: 2,
                ..Tally::default()
            }
        );
        assert_eq!(record.scheduled, 6);
        let reply: Value = serde_json::from_slice(&planned[0].payload).unwrap();
        assert_eq!(
            reply,
            json!({"customer": {"id": "1"}, "coupon": {"id": "1", "type": "buy_all", "department": "Boys"}, "ts": 100})
        );
        assert!(serde_json::from_slice::<Value>(&planned[3].payload).is_err());
    }

    /// Topics of their own on a shared broker: `test/<pid>-<nanos>/<name>`.
    fn unique_topic(name: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("test/responder-{}-{nanos}/{name}", std::process::id())
    }

    /// Focus requests of customers 1..=count, in Boys, except every 7th in Girls.
    fn requests(count: u64) -> Vec<String> {
        (1..=count)
            .map(|i| {
                let dep = if i % 7 == 0 { "Girls" } else { "Boys" };
                format!(
                    r#"{{"id": "{i}", "ts": {}, "dep": "{dep}", "x": 3, "y": 4}}"#,
                    1000 + i
                )
            })
            .collect()
    }

    fn misbehaving(requests: &str, replies: &str) -> ResponderOptions {
        let mut options = ResponderOptions::new(requests, replies);
        options.delay = Duration::from_millis(30);
        options.late_delay = Duration::from_millis(400);
        options.departments = Some(vec!["Boys".into()]);
        options.skip_every = 5;
        options.late_every = 4;
        options.invalid_every = 6;
        options.unmatched_every = 9;
        options
    }

    /// What 40 requests (5 of them Girls) get from [`misbehaving`]: of the 35 counted, 7 skipped,
    /// 7 late (every 4th but the 20th), 21 answered; 5 invalid and 3 unmatched extra.
    const EXPECTED: Tally = Tally {
        received: 40,
        ignored: 5,
        skipped: 7,
        answered: 21,
        late: 7,
        invalid: 5,
        unmatched: 3,
    };

    /// The replies as a subscriber saw them, told apart as a verdict would: not JSON, a
    /// customer nobody sent, or a coupon for a customer who asked.
    fn classify(replies: &[Vec<u8>]) -> (Vec<String>, u64, u64) {
        let (mut answered, mut invalid, mut unmatched) = (Vec::new(), 0, 0);
        for reply in replies {
            let Ok(reply) = serde_json::from_slice::<Value>(reply) else {
                invalid += 1;
                continue;
            };
            let customer = reply["customer"]["id"].as_str().unwrap().to_string();
            assert_eq!(reply["coupon"]["department"], "Boys");
            if customer.starts_with("unmatched-") {
                unmatched += 1;
            } else {
                let id: u64 = customer.parse().unwrap();
                assert_eq!(reply["ts"], 1000 + id, "the request's ts is echoed");
                answered.push(customer);
            }
        }
        (answered, invalid, unmatched)
    }

    /// The replies' customers (answered and late) and each action's timing against the delays.
    fn check_actions(responder: &Responder, mut heard: Vec<String>) {
        let actions = responder.actions();
        let mut answered: Vec<String> = actions
            .iter()
            .filter(|action| matches!(action.did, Did::Answered | Did::Late))
            .map(|action| action.customer.clone())
            .collect();
        answered.sort();
        heard.sort();
        assert_eq!(heard, answered, "each reply answers the customer recorded");
        for action in &actions {
            let delay = match action.did {
                Did::Answered | Did::Invalid | Did::Unmatched => 30_000,
                Did::Late => 400_000,
                Did::Ignored | Did::Skipped => {
                    assert_eq!(action.sent_us, None);
                    continue;
                }
            };
            let waited = action.sent_us.unwrap() - action.request_us;
            assert!(
                waited >= delay && waited < delay + 2_000_000,
                "{action:?} waited {waited} µs"
            );
        }
    }

    #[test]
    fn answers_on_mosquitto_exactly_as_it_records() {
        let requests_topic = unique_topic("focus");
        let replies_topic = unique_topic("prediction");
        let replies = crate::mqtt::Subscriber::start(1883, &replies_topic, Default::default());
        let responder = Responder::start(
            ResponderBroker::local_mqtt(),
            misbehaving(&requests_topic, &replies_topic),
        );
        publish_mqtt(1883, &requests_topic, &requests(40));
        let tally = responder.wait_for(40, Duration::from_secs(20));
        assert_eq!(tally, EXPECTED);
        assert_eq!(tally.expected(), 35);
        let total =
            (EXPECTED.answered + EXPECTED.late + EXPECTED.invalid + EXPECTED.unmatched) as usize;
        let lines = replies.wait_for(total, Duration::from_secs(10));
        assert_eq!(lines.len(), total, "no more replies than recorded");
        let payloads: Vec<Vec<u8>> = lines
            .into_iter()
            .map(|line| line.payload.into_bytes())
            .collect();
        let (answered, invalid, unmatched) = classify(&payloads);
        assert_eq!(answered.len() as u64, tally.answered + tally.late);
        assert_eq!((invalid, unmatched), (tally.invalid, tally.unmatched));
        check_actions(&responder, answered);
    }

    #[test]
    fn answers_on_rabbitmq_exactly_as_it_records() {
        // Not while another test stops the shared broker.
        let _broker = crate::rabbitmq::ExclusiveUse::acquire();
        let requests_topic = unique_topic("focus");
        let replies_topic = unique_topic("prediction");
        let queue = crate::amqp::TestQueue::declare(
            "responder",
            "amq.topic",
            &[replies_topic.replace('/', ".").as_str()],
        );
        let responder = Responder::start(
            ResponderBroker::local_amqp(),
            misbehaving(&requests_topic, &replies_topic),
        );
        crate::amqp::block_on(async {
            let (connection, channel) = crate::amqp::connect().await;
            for body in requests(40) {
                channel
                    .basic_publish(
                        "amq.topic".into(),
                        requests_topic.replace('/', ".").as_str().into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        BasicProperties::default(),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
            connection.close(200, "OK".into()).await.ok();
        });
        let tally = responder.wait_for(40, Duration::from_secs(20));
        assert_eq!(tally, EXPECTED);
        let total =
            (EXPECTED.answered + EXPECTED.late + EXPECTED.invalid + EXPECTED.unmatched) as usize;
        let received = queue.drain(total);
        assert_eq!(received.len(), total, "no more replies than recorded");
        let payloads: Vec<Vec<u8>> = received.into_iter().map(|r| r.body.into_bytes()).collect();
        let (answered, invalid, unmatched) = classify(&payloads);
        assert_eq!(answered.len() as u64, tally.answered + tally.late);
        assert_eq!((invalid, unmatched), (tally.invalid, tally.unmatched));
        check_actions(&responder, answered);
    }

    #[test]
    fn wait_idle_returns_once_quiet_and_a_dropped_responder_answers_no_more() {
        let requests_topic = unique_topic("focus");
        let replies_topic = unique_topic("prediction");
        let replies = crate::mqtt::Subscriber::start(1883, &replies_topic, Default::default());
        let responder = Responder::start(
            ResponderBroker::local_mqtt(),
            ResponderOptions::new(&requests_topic, &replies_topic),
        );
        publish_mqtt(1883, &requests_topic, &requests(3));
        let tally = responder.wait_idle(Duration::from_millis(300), Duration::from_secs(10));
        assert_eq!((tally.received, tally.answered), (3, 3));
        drop(responder);
        publish_mqtt(1883, &requests_topic, &requests(2));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(replies.count(), 3, "a dropped responder answers nothing");
    }

    /// Publishes `bodies` at QoS 1 and returns once the broker acknowledged them all.
    fn publish_mqtt(port: u16, topic: &str, bodies: &[String]) {
        crate::amqp::block_on(async {
            let options = MqttOptions::new(
                format!("test-requests-{}", unique_topic("").replace('/', "-")),
                "127.0.0.1",
                port,
            );
            let (client, mut events) = AsyncClient::new(options, 100);
            let (topic, bodies) = (topic.to_string(), bodies.to_vec());
            let count = bodies.len();
            let sending = tokio::spawn(async move {
                for body in bodies {
                    client
                        .publish(topic.as_str(), QoS::AtLeastOnce, false, body)
                        .await
                        .unwrap();
                }
                client
            });
            let mut acknowledged = 0;
            while acknowledged < count {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acknowledged += 1,
                    Ok(_) => {}
                    Err(error) => panic!("publishing the requests: {error}"),
                }
            }
            let client = sending.await.unwrap();
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), events.poll()).await;
        });
    }
}
