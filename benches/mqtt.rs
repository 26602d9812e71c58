//! Throughput of the `mqtt` sink against Mosquitto, next to two baselines measured in the same run:
//! a bare rumqttc publish loop and `mosquitto_pub -l` (Debian package mosquitto-clients).
//!
//! ```sh
//! cargo bench --bench mqtt
//! ```
//!
//! Starts its own `mosquitto` on a free port with `max_queued_messages 0` (so nothing is dropped
//! for the counting subscriber; DESIGN.md §8) and `max_inflight_messages 0`. The events are those
//! of one simulated run (about 200,000: 2000 shoppers for 34 minutes, seed 1); every method
//! publishes the same payloads, and a lean rumqttc subscriber in this process counts them. A rate
//! is messages / (time from the publisher's start to the subscriber's last message). Each
//! measurement is repeated and the median printed. `mosquitto_pub -l` is only compared at QoS 0:
//! at QoS 1 it breaks past 65,535 lines (its message ids wrap).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

const BIN: &str = env!("CARGO_BIN_EXE_customersim");
const ROUNDS: usize = 5;

struct Broker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Broker {
    fn start() -> Broker {
        let dir =
            std::env::temp_dir().join(format!("customersim-bench-mqtt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port();
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "persistence false\nlog_dest none\nmax_queued_messages 0\nmax_inflight_messages 0\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, port, dir }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Counts messages on a filter; notes when the `expected`-th one arrived.
struct Counter {
    count: Arc<AtomicU64>,
    done_at: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Counter {
    fn start(port: u16, filter: &str, qos: QoS, expected: u64) -> Counter {
        let count = Arc::new(AtomicU64::new(0));
        let done_at = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (count, done_at, stop) = (count.clone(), done_at.clone(), stop.clone());
            let filter = filter.to_string();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let mut options = MqttOptions::new(
                        format!("bench-counter-{}", free_port()),
                        "127.0.0.1",
                        port,
                    );
                    options.set_keep_alive(Duration::from_secs(30));
                    let (client, mut events) = AsyncClient::new(options, 100);
                    client.subscribe(filter, qos).await.unwrap();
                    let mut ready = Some(ready_tx);
                    loop {
                        match tokio::time::timeout(Duration::from_millis(100), events.poll()).await
                        {
                            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                                if count.fetch_add(1, Ordering::Relaxed) + 1 == expected {
                                    *done_at.lock().unwrap() = Some(Instant::now());
                                }
                            }
                            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                                if let Some(ready) = ready.take() {
                                    ready.send(()).unwrap();
                                }
                            }
                            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => return,
                            Ok(Ok(_)) => {}
                            Ok(Err(error)) => panic!("bench subscriber: {error}"),
                            Err(_) => {
                                if stop.load(Ordering::Relaxed) {
                                    let _ = client.try_disconnect();
                                }
                            }
                        }
                    }
                });
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed");
        Counter {
            count,
            done_at,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for all the messages (or until no progress for 5 s); returns when the last arrived.
    fn wait(&self, expected: u64) -> Option<Instant> {
        let mut last = (0, Instant::now());
        loop {
            if let Some(at) = *self.done_at.lock().unwrap() {
                return Some(at);
            }
            let now = self.count.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(5) {
                eprintln!("  subscriber got {now} of {expected} messages");
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

/// The pipeline every method's messages come from.
fn pipeline(dir: &Path, port: u16, prefix: &str) -> PathBuf {
    let path = dir.join(format!("{prefix}.yaml"));
    std::fs::write(
        &path,
        format!(
            "simulation: {{seed: 1, start: \"2024-03-01T08:00:00Z\", speed: max, duration: 34m}}\n\
             topics: {{enter: {prefix}/customer/enter, move: {prefix}/customer/move, exit: {prefix}/customer/exit}}\n\
             timeline: {{consume_from: earliest}}\n\
             sources: [{{type: random_walk, average_in_store: 2000}}]\n\
             sinks: [{{type: mqtt, host: 127.0.0.1, port: {port}}}]\n"
        ),
    )
    .unwrap();
    path
}

/// (topic, payload) of every event, from the stdout sink.
fn messages(config: &Path) -> Vec<(String, Vec<u8>)> {
    let output = Command::new(BIN)
        .args(["run", "--sink", "stdout", "--config"])
        .arg(config)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let rest = line.strip_prefix("{\"topic\": \"").unwrap();
            let (topic, rest) = rest.split_once("\", \"payload\": ").unwrap();
            let payload = rest.strip_suffix('}').unwrap();
            (topic.to_string(), payload.as_bytes().to_vec())
        })
        .collect()
}

fn rate(count: usize, started: Instant, done: Option<Instant>) -> Option<f64> {
    done.map(|done| count as f64 / done.duration_since(started).as_secs_f64())
}

fn run_sink(port: u16, config: &Path, prefix: &str, qos: u8, count: usize) -> Option<f64> {
    let qos_sub = if qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let counter = Counter::start(port, &format!("{prefix}/#"), qos_sub, count as u64);
    let started = Instant::now();
    let status = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .env("MQTT_QOS", qos.to_string())
        .env("LOG_LEVEL", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    rate(count, started, counter.wait(count as u64))
}

fn run_loop(port: u16, messages: &[(String, Vec<u8>)], prefix: &str, qos: u8) -> Option<f64> {
    let qos = if qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let counter = Counter::start(port, &format!("{prefix}/#"), qos, messages.len() as u64);
    // Same topics under another prefix, payloads prepared beforehand: only publishing is timed.
    let prepared: Vec<(String, Vec<u8>)> = messages
        .iter()
        .map(|(topic, payload)| (topic.replacen("bench-sink", prefix, 1), payload.clone()))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async move {
        let mut options =
            MqttOptions::new(format!("bench-loop-{}", free_port()), "127.0.0.1", port);
        options.set_inflight(10_000);
        let (client, mut events) = AsyncClient::new(options, 10_000);
        let total = prepared.len();
        let driver = tokio::spawn(async move {
            let mut done = 0;
            while done < total {
                match events.poll().await.unwrap() {
                    Event::Outgoing(Outgoing::Publish(_)) if qos == QoS::AtMostOnce => done += 1,
                    Event::Incoming(Packet::PubAck(_)) => done += 1,
                    _ => {}
                }
            }
            let _ = events;
        });
        for (topic, payload) in prepared {
            client.publish(topic, qos, false, payload).await.unwrap();
        }
        driver.await.unwrap();
    });
    rate(messages.len(), started, counter.wait(messages.len() as u64))
}

fn run_mosquitto_pub(port: u16, messages: &[(String, Vec<u8>)], dir: &Path) -> Option<f64> {
    let lines = dir.join("payloads.txt");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&lines).unwrap());
    for (_, payload) in messages {
        file.write_all(payload).unwrap();
        file.write_all(b"\n").unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
    let counter = Counter::start(port, "bench-pub/#", QoS::AtMostOnce, messages.len() as u64);
    let started = Instant::now();
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "0",
            "-l",
            "-t",
            "bench-pub/customer/all",
        ])
        .stdin(std::fs::File::open(&lines).unwrap())
        .status()
        .expect("mosquitto_pub is installed (Debian package mosquitto-clients)");
    assert!(status.success());
    rate(messages.len(), started, counter.wait(messages.len() as u64))
}

/// The median, then every round in the order measured.
fn summary(values: &[f64]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rounds: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    format!(
        "{:>7.0} msg/s  (rounds: {})",
        sorted[sorted.len() / 2],
        rounds.join(", ")
    )
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list of tests
    }
    let broker = Broker::start();
    let config = pipeline(&broker.dir, broker.port, "bench-sink");
    let messages = messages(&config);
    let count = messages.len();
    println!(
        "mqtt bench: {count} events to mosquitto on 127.0.0.1:{} (median of {ROUNDS} rounds)",
        broker.port
    );
    for qos in [0u8, 1] {
        let (mut sink, mut bare, mut pubs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            sink.extend(run_sink(broker.port, &config, "bench-sink", qos, count));
            bare.extend(run_loop(broker.port, &messages, "bench-loop", qos));
            if qos == 0 {
                pubs.extend(run_mosquitto_pub(broker.port, &messages, &broker.dir));
            }
        }
        println!("QoS {qos}: customersim mqtt sink      {}", summary(&sink));
        println!("QoS {qos}: bare rumqttc publish loop   {}", summary(&bare));
        if qos == 0 {
            println!("QoS {qos}: mosquitto_pub -l            {}", summary(&pubs));
        }
    }
}
