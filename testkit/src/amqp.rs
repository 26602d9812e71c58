//! Queues on RabbitMQ (lapin) that see what the `amqp` sink publishes: each declared with a
//! unique name, bound to an exchange with routing keys, drained or counted, and deleted when
//! dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

/// The shared RabbitMQ of the test machine.
pub const LOCAL_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Runs `future` to the end on a runtime of its own, for tests that are not async.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// A connection and a channel to the shared RabbitMQ, waiting up to a minute for it (it may be
/// coming back from a restart test).
pub async fn connect() -> (Connection, Channel) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(LOCAL_AMQP_URL, ConnectionProperties::default()).await {
            Ok(connection) => {
                let channel = connection.create_channel().await.expect("a channel");
                return (connection, channel);
            }
            Err(error) if Instant::now() < deadline => {
                eprintln!("test consumer: waiting for RabbitMQ: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("RabbitMQ on 127.0.0.1:5672 is not reachable: {error}"),
        }
    }
}

/// A message as a consumer sees it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The routing key it was published with.
    pub routing_key: String,
    /// The body as text.
    pub body: String,
    /// Its AMQP properties (content type, timestamp, delivery mode).
    pub properties: BasicProperties,
}

/// A durable queue with a unique name, bound to an exchange; deleted when dropped. Durable, so
/// it survives a broker restart in the middle of a test.
pub struct TestQueue {
    name: String,
}

impl TestQueue {
    /// Declares a queue whose name starts with `customersim-test-{tag}-`, bound to `exchange`
    /// with each of `routing_keys`.
    pub fn declare(tag: &str, exchange: &str, routing_keys: &[&str]) -> TestQueue {
        block_on(async {
            let (connection, channel) = connect().await;
            let queue = TestQueue::declare_on(&channel, tag, exchange, routing_keys).await;
            connection.close(200, "OK".into()).await.ok();
            queue
        })
    }

    /// [`TestQueue::declare`] on a channel the caller holds, in its runtime.
    pub async fn declare_on(
        channel: &Channel,
        tag: &str,
        exchange: &str,
        routing_keys: &[&str],
    ) -> TestQueue {
        let mut options = QueueDeclareOptions::durable();
        options.auto_delete = false;
        TestQueue::declare_with(channel, tag, exchange, routing_keys, options).await
    }

    /// A queue that lives only as long as the channel's connection, for a benchmark: one
    /// interrupted half-way leaves no queue behind collecting what every later run publishes.
    /// Only that connection may use it.
    pub async fn declare_exclusive_on(
        channel: &Channel,
        tag: &str,
        exchange: &str,
        routing_keys: &[&str],
    ) -> TestQueue {
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        TestQueue::declare_with(channel, tag, exchange, routing_keys, options).await
    }

    async fn declare_with(
        channel: &Channel,
        tag: &str,
        exchange: &str,
        routing_keys: &[&str],
        options: QueueDeclareOptions,
    ) -> TestQueue {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "customersim-test-{tag}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after the epoch")
                .as_nanos()
        );
        channel
            .queue_declare(name.as_str().into(), options, FieldTable::default())
            .await
            .expect("declare the test queue");
        let queue = TestQueue { name };
        for key in routing_keys {
            queue.bind_on(channel, exchange, key).await;
        }
        queue
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Binds the queue to one more exchange or routing key, on a channel the caller holds.
    pub async fn bind_on(&self, channel: &Channel, exchange: &str, routing_key: &str) {
        channel
            .queue_bind(
                self.name.as_str().into(),
                exchange.into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind the test queue");
    }

    /// Takes every message of the queue, waiting until `expected` arrived or nothing came for
    /// 2 s (then 300 ms more for extra ones).
    pub fn drain(&self, expected: usize) -> Vec<Received> {
        block_on(async {
            let (connection, channel) = connect().await;
            channel
                .basic_qos(1000, BasicQosOptions::default())
                .await
                .expect("set the prefetch");
            let mut consumer = channel
                .basic_consume(
                    self.name.as_str().into(),
                    "customersim-test".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("consume the test queue");
            let mut messages = Vec::new();
            loop {
                let limit = if messages.len() >= expected {
                    Duration::from_millis(300)
                } else {
                    Duration::from_secs(2)
                };
                match tokio::time::timeout(limit, next_delivery(&mut consumer)).await {
                    Ok(Some(Ok(delivery))) => messages.push(Received {
                        routing_key: delivery.routing_key.as_str().to_string(),
                        body: String::from_utf8(delivery.data.clone()).expect("a UTF-8 body"),
                        properties: delivery.properties.clone(),
                    }),
                    Ok(Some(Err(error))) => panic!("consumer failed: {error}"),
                    Ok(None) | Err(_) => break,
                }
            }
            connection.close(200, "OK".into()).await.ok();
            messages
        })
    }

    /// How many messages wait in the queue, on a channel the caller holds.
    pub async fn message_count(&self, channel: &Channel) -> u64 {
        let declared = channel
            .queue_declare(
                self.name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("look at the test queue");
        u64::from(declared.message_count())
    }

    /// Empties the queue, on a channel the caller holds.
    pub async fn purge(&self, channel: &Channel) {
        channel
            .queue_purge(self.name.as_str().into(), QueuePurgeOptions::default())
            .await
            .expect("purge the test queue");
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        // On a thread of its own: the queue may be dropped inside the caller's runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            block_on(async {
                if let Ok((connection, channel)) =
                    tokio::time::timeout(Duration::from_secs(10), connect()).await
                {
                    let _ = channel
                        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                        .await;
                    let _ = connection.close(200, "OK".into()).await;
                }
            })
        })
        .join();
    }
}

/// Counts the messages of a queue as a no-ack consumer on a connection and thread of its own
/// receives them, keeping none (for benchmarks, like the MQTT subscriber's count). Stops when
/// dropped.
pub struct Counter {
    received: Arc<Counted>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a [`Counter`]'s consumer has seen.
#[derive(Default)]
struct Counted {
    count: AtomicU64,
    /// When the last message arrived, in nanoseconds after `since`.
    last_ns: AtomicU64,
    since: OnceLock<Instant>,
}

impl Counter {
    /// Starts consuming `queue`; returns once the consumer is registered.
    pub fn start(queue: &str) -> Counter {
        let received = Arc::new(Counted::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, registered) = std::sync::mpsc::channel();
        let thread = {
            let (received, stop, queue) = (received.clone(), stop.clone(), queue.to_string());
            std::thread::spawn(move || {
                block_on(async move {
                    let (connection, channel) = connect().await;
                    let mut consumer = channel
                        .basic_consume(
                            queue.as_str().into(),
                            "customersim-counter".into(),
                            BasicConsumeOptions {
                                no_ack: true,
                                ..BasicConsumeOptions::default()
                            },
                            FieldTable::default(),
                        )
                        .await
                        .expect("consume the queue");
                    let since = *received.since.get_or_init(Instant::now);
                    ready.send(()).expect("the counter's owner waits");
                    while !stop.load(Ordering::Relaxed) {
                        let next = tokio::time::timeout(
                            Duration::from_millis(100),
                            next_delivery(&mut consumer),
                        );
                        match next.await {
                            Ok(Some(Ok(_))) => {
                                received
                                    .last_ns
                                    .store(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
                                received.count.fetch_add(1, Ordering::Release);
                            }
                            Ok(Some(Err(error))) => panic!("counting consumer failed: {error}"),
                            Ok(None) => break,
                            Err(_) => {}
                        }
                    }
                    connection.close(200, "OK".into()).await.ok();
                })
            })
        };
        registered.recv().expect("the counting consumer started");
        Counter {
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Messages received so far.
    pub fn count(&self) -> u64 {
        self.received.count.load(Ordering::Acquire)
    }

    /// Waits until `count` messages arrived and returns when the last of them did; `None` (after
    /// saying how many came) when nothing more arrived for `stalled`.
    pub fn wait_for_count(&self, count: u64, stalled: Duration) -> Option<Instant> {
        let mut progress = (0, Instant::now());
        loop {
            let now = self.count();
            if now >= count {
                let since = *self.received.since.get().expect("started");
                let last = self.received.last_ns.load(Ordering::Relaxed);
                return Some(since + Duration::from_nanos(last));
            }
            if now != progress.0 {
                progress = (now, Instant::now());
            } else if progress.1.elapsed() > stalled {
                eprintln!("  counter got {now} of {count} messages");
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The next delivery of a consumer (lapin's consumer is a `futures` stream).
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
