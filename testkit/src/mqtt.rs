//! An MQTT subscriber (rumqttc) on its own thread that records, or only counts, every message on
//! a topic filter, reconnecting when the broker goes away. Tests compare what it recorded with
//! the stdout sink's lines; benchmarks time when the last message arrived.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::stdout_sink::Line;

/// How a [`Subscriber`] connects and what it keeps.
#[derive(Clone)]
pub struct SubscriberOptions {
    /// Username and password, for a broker that requires them.
    pub credentials: Option<(String, String)>,
    /// A fixed client id with a persistent session (clean session off): the broker keeps what
    /// arrives while the subscriber is away, including across a broker restart.
    pub persistent_id: Option<String>,
    /// The subscription's QoS.
    pub qos: QoS,
    /// Whether to keep each message (tests) or only count them (benchmarks, where copying every
    /// payload would slow the subscriber down).
    pub record: bool,
}

impl Default for SubscriberOptions {
    fn default() -> SubscriberOptions {
        SubscriberOptions {
            credentials: None,
            persistent_id: None,
            qos: QoS::AtLeastOnce,
            record: true,
        }
    }
}

/// What the subscriber thread shares with the test.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    last_at: Mutex<Option<Instant>>,
    lines: Mutex<Vec<Line>>,
}

/// Records every message on a filter, in arrival order. Stops when dropped.
pub struct Subscriber {
    received: Arc<Received>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Subscriber {
    /// Connects to 127.0.0.1:`port` and subscribes to `filter`; returns once the broker
    /// confirmed the subscription.
    pub fn start(port: u16, filter: &str, options: SubscriberOptions) -> Subscriber {
        let received = Arc::new(Received::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let received = received.clone();
            let stop = stop.clone();
            let filter = filter.to_string();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the subscriber");
                runtime.block_on(subscribe(port, filter, options, received, stop, ready_tx));
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the test subscriber subscribed");
        Subscriber {
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// How many messages arrived so far.
    pub fn count(&self) -> u64 {
        self.received.count.load(Ordering::Relaxed)
    }

    /// Waits until at least `count` messages arrived (at most `limit`), then a little longer to
    /// catch extra ones, and returns them all (none unless recording).
    pub fn wait_for(&self, count: usize, limit: Duration) -> Vec<Line> {
        let deadline = Instant::now() + limit;
        while self.count() < count as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.received.lines.lock().expect("lines lock").clone()
    }

    /// Waits until `count` messages arrived and returns when the last of them did; `None` (after
    /// saying how many came) when nothing more arrived for `stalled`.
    pub fn wait_for_count(&self, count: u64, stalled: Duration) -> Option<Instant> {
        let mut progress = (0, Instant::now());
        loop {
            let now = self.count();
            if now >= count {
                return *self.received.last_at.lock().expect("time lock");
            }
            if now != progress.0 {
                progress = (now, Instant::now());
            } else if progress.1.elapsed() > stalled {
                eprintln!("  subscriber got {now} of {count} messages");
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn subscribe(
    port: u16,
    filter: String,
    options: SubscriberOptions,
    received: Arc<Received>,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<()>,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let id = options.persistent_id.clone().unwrap_or_else(|| {
        format!(
            "test-sub-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        )
    });
    let mut mqtt = MqttOptions::new(id, "127.0.0.1", port);
    mqtt.set_clean_session(options.persistent_id.is_none());
    mqtt.set_keep_alive(Duration::from_secs(5));
    mqtt.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &options.credentials {
        mqtt.set_credentials(user, password);
    }
    let (client, mut events) = AsyncClient::new(mqtt, 1000);
    let mut ready = Some(ready);
    let mut stopping = false;
    loop {
        if stop.load(Ordering::Relaxed) && !stopping {
            stopping = true;
            let _ = client.try_disconnect();
        }
        match tokio::time::timeout(Duration::from_millis(200), events.poll()).await {
            Err(_) => {}
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                // Again after every reconnection: a clean session forgets the subscription.
                client
                    .subscribe(filter.as_str(), options.qos)
                    .await
                    .expect("queue the subscription");
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                if options.record {
                    received.lines.lock().expect("lines lock").push(Line {
                        topic: publish.topic.clone(),
                        payload: String::from_utf8(publish.payload.to_vec())
                            .expect("a UTF-8 payload"),
                    });
                }
                *received.last_at.lock().expect("time lock") = Some(Instant::now());
                received.count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => return,
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                if stopping {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
