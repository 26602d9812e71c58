//! The `amqp` sink against the real RabbitMQ on 127.0.0.1:5672 (guest/guest): the messages are the
//! stdout sink's events byte for byte, wrong credentials fail once and clearly without showing the
//! password, and a broker restart in the middle of a run loses nothing.
//!
//! The tests of this file hold one lock: the restart test stops the shared broker for a while.

mod common;

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{customersim, parse_lines, run_failing, run_ok, write_temp};
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const START: &str = "2024-03-01T08:00:00Z";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A message as a consumer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Message {
    routing_key: String,
    body: String,
}

/// A durable queue bound to `amq.topic` with `customer.#`, deleted on drop.
struct TestQueue {
    name: String,
}

impl TestQueue {
    fn new(tag: &str) -> TestQueue {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("customersim-test-{tag}-{}-{nanos}", std::process::id());
        runtime().block_on(async {
            let (connection, channel) = connect().await;
            let mut options = QueueDeclareOptions::durable();
            options.auto_delete = false;
            channel
                .queue_declare(name.as_str().into(), options, FieldTable::default())
                .await
                .expect("declare the test queue");
            channel
                .queue_bind(
                    name.as_str().into(),
                    "amq.topic".into(),
                    "customer.#".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind the test queue");
            connection.close(200, "OK".into()).await.ok();
        });
        TestQueue { name }
    }

    /// Takes every message of the queue (waits until `expected` arrived or nothing came for 2 s).
    fn drain(&self, expected: usize) -> Vec<(Message, lapin::BasicProperties)> {
        runtime().block_on(async {
            let (connection, channel) = connect().await;
            channel
                .basic_qos(1000, BasicQosOptions::default())
                .await
                .unwrap();
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
                match tokio::time::timeout(limit, futures_next(&mut consumer)).await {
                    Ok(Some(Ok(delivery))) => messages.push((
                        Message {
                            routing_key: delivery.routing_key.as_str().to_string(),
                            body: String::from_utf8(delivery.data.clone()).unwrap(),
                        },
                        delivery.properties.clone(),
                    )),
                    Ok(Some(Err(error))) => panic!("consumer failed: {error}"),
                    Ok(None) | Err(_) => break,
                }
            }
            connection.close(200, "OK".into()).await.ok();
            messages
        })
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            runtime().block_on(async {
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

/// The next delivery of a consumer (lapin's consumer is a `futures::Stream`).
async fn futures_next(
    consumer: &mut lapin::Consumer,
) -> Option<lapin::Result<lapin::message::Delivery>> {
    std::future::poll_fn(|cx| futures_core_poll_next(std::pin::Pin::new(&mut *consumer), cx)).await
}

fn futures_core_poll_next(
    consumer: std::pin::Pin<&mut lapin::Consumer>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<lapin::Result<lapin::message::Delivery>>> {
    use futures_core::Stream;
    consumer.poll_next(cx)
}

async fn connect() -> (Connection, Channel) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(URL, ConnectionProperties::default()).await {
            Ok(connection) => {
                let channel = connection.create_channel().await.unwrap();
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

/// What the stdout sink prints for the same run, as the messages the amqp sink should publish.
/// What the stdout sink prints for the same pipeline (`config`, or the built-in default), flags
/// and environment, as the AMQP messages it should match.
fn expected_messages(
    config: Option<&std::path::Path>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Vec<Message> {
    let mut command = customersim();
    command.args(["run", "--sink", "stdout"]).args(args);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    for (var, value) in env {
        command.env(var, value);
    }
    let output = run_ok(&mut command);
    parse_lines(&output.stdout)
        .into_iter()
        .map(|line| Message {
            routing_key: line.topic.replace('/', "."),
            body: line.payload,
        })
        .collect()
}

fn run_args(seed: &str, duration: &str) -> Vec<String> {
    ["--seed", seed, "--start", START, "--duration", duration]
        .map(String::from)
        .to_vec()
}

#[test]
fn publishes_exactly_the_stdout_sinks_events() {
    let _serial = serial();
    let queue = TestQueue::new("same");
    let mut args = run_args("7", "2h");
    args.extend(["--speed", "max"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("CUSTOMERS_AVERAGE_IN_STORE", "20")];
    let expected = expected_messages(None, &args, &env);
    assert!(expected.len() > 1000, "too few events: {}", expected.len());

    let mut command = customersim();
    command.args(["run", "--sink", "amqp"]).args(&args);
    command.env("AMQP_URL", URL);
    for (var, value) in env {
        command.env(var, value);
    }
    let output = run_ok(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.stdout.is_empty(),
        "the amqp sink prints nothing on stdout"
    );
    assert!(
        !stderr.contains(":guest@"),
        "password in the logs: {stderr}"
    );

    let received = queue.drain(expected.len());
    let messages: Vec<Message> = received.iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(messages.len(), expected.len(), "message count");
    for (index, (got, want)) in messages.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "message {index} differs");
    }
    for (message, properties) in &received {
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.as_str()),
            Some("application/json")
        );
        let payload: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        assert_eq!(
            properties.timestamp().map(|ts| ts as i64),
            payload["ts"].as_i64(),
            "timestamp property = payload ts"
        );
        assert_eq!(*properties.delivery_mode(), None, "transient by default");
    }
}

#[test]
fn persistent_messages_and_a_declared_exchange() {
    let _serial = serial();
    let exchange = format!("customersim-test-x-{}", std::process::id());
    let queue = TestQueue::new("declared");
    // Bind the test queue to the exchange the sink declares: declare it first ourselves with
    // the same properties, as a consumer would.
    runtime().block_on(async {
        let (connection, channel) = connect().await;
        channel
            .exchange_declare(
                exchange.as_str().into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    auto_delete: false,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.name.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        connection.close(200, "OK".into()).await.ok();
    });
    let config = write_temp(
        "amqp.yaml",
        &format!(
            "sources:\n  - type: random_walk\nsinks:\n  - type: amqp\n    exchange: {exchange}\n    exchange_type: topic\n    declare: true\n    persistent: true\n"
        ),
    );
    let mut args = run_args("11", "30m");
    args.extend(["--speed", "max"].map(String::from));
    let output = run_ok(
        customersim()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(&args)
            .env("AMQP_URL", URL),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let expected = expected_messages(Some(&config), &args, &[]);
    let received = queue.drain(expected.len());
    assert_eq!(received.len(), expected.len(), "{output:?}");
    assert!(
        received
            .iter()
            .all(|(_, properties)| *properties.delivery_mode() == Some(2)),
        "persistent: true publishes with delivery mode 2"
    );
    runtime().block_on(async {
        let (connection, channel) = connect().await;
        channel
            .exchange_delete(exchange.as_str().into(), Default::default())
            .await
            .ok();
        connection.close(200, "OK".into()).await.ok();
    });
}

fn failing_run(url: &str) -> (Output, String) {
    let output = customersim()
        .args([
            "run",
            "--sink",
            "amqp",
            "--speed",
            "max",
            "--duration",
            "1h",
        ])
        .env("AMQP_URL", url)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn wrong_credentials_fail_once_without_showing_the_password() {
    let _serial = serial();
    let started = Instant::now();
    let (output, text) = failing_run("amqp://guest:Wr0ngPassw0rd@127.0.0.1:5672/%2f");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("refused the login of user \"guest\"") && text.contains("AMQP_URL"),
        "{text}"
    );
    assert!(!text.contains("Wr0ngPassw0rd"), "password shown: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no endless retries"
    );

    let (output, text) = failing_run("amqp://guest:guest@127.0.0.1:5672/no-such-vhost");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("vhost \"no-such-vhost\""), "{text}");

    // validate shows the URL with the password masked.
    let config = write_temp(
        "amqp.yaml",
        "sources: [{type: random_walk}]\nsinks:\n  - type: amqp\n",
    );
    let output = run_ok(
        customersim()
            .arg("validate")
            .arg("--config")
            .arg(&config)
            .env("AMQP_URL", "amqp://guest:Wr0ngPassw0rd@127.0.0.1:5672/%2f"),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("amqp://guest:******@127.0.0.1:5672/%2f"),
        "{text}"
    );
    assert!(!text.contains("Wr0ngPassw0rd"), "{text}");
}

#[test]
fn missing_exchange_and_bad_settings_are_reported() {
    let _serial = serial();
    let config = write_temp(
        "amqp.yaml",
        "sources: [{type: random_walk}]\nsinks:\n  - type: amqp\n    exchange: customersim-no-such-exchange\n",
    );
    let (_, stderr) = run_failing(
        customersim()
            .args(["run", "--speed", "max", "--duration", "1h", "--config"])
            .arg(&config),
        1,
    );
    assert!(
        stderr.contains("exchange \"customersim-no-such-exchange\" does not exist"),
        "{stderr}"
    );

    let (_, stderr) = run_failing(
        customersim()
            .args(["validate"])
            .env("SINKS", "amqp")
            .env("AMQP_CA_FILE", "/nonexistent/ca.pem"),
        2,
    );
    assert!(stderr.contains("AMQP_CA_FILE"), "{stderr}");
}

/// Runs `rabbitmqctl start_app` when dropped, so a failing test never leaves the shared broker
/// stopped.
struct BrokerGuard;

impl BrokerGuard {
    fn stop_app() -> BrokerGuard {
        let guard = BrokerGuard;
        rabbitmqctl("stop_app");
        guard
    }
}

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        rabbitmqctl("start_app");
    }
}

fn rabbitmqctl(command: &str) {
    let status = Command::new("rabbitmqctl")
        .arg(command)
        .stdout(Stdio::null())
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {command} failed");
}

#[test]
fn a_broker_restart_mid_run_loses_nothing() {
    let _serial = serial();
    let queue = TestQueue::new("restart");
    let config = write_temp(
        "amqp.yaml",
        "sources:\n  - type: random_walk\nsinks:\n  - type: amqp\n    persistent: true\n    confirms: true\n",
    );
    let env = [
        ("CUSTOMERS_AVERAGE_IN_STORE", "400"),
        ("CONSUME_FREQUENCY", "0"),
        ("CONSUME_BATCH_SIZE", "1000"),
    ];
    // 20 simulated minutes at speed 100: 12 s of wall time.
    let args = run_args("23", "20m");
    let mut child = customersim();
    child
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(&args)
        .args(["--speed", "100"])
        .env("AMQP_URL", URL)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (var, value) in env {
        child.env(var, value);
    }
    let child = child.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    {
        let _running_again_on_drop = BrokerGuard::stop_app();
        std::thread::sleep(Duration::from_secs(2));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    assert!(
        stderr.contains("reconnecting")
            && stderr.contains("connected to")
            && stderr.contains("again"),
        "the outage is logged: {stderr}"
    );

    let mut max_args: Vec<&str> = args.iter().map(String::as_str).collect();
    max_args.extend(["--speed", "max"]);
    let expected = expected_messages(Some(&config), &max_args, &env[..1]);
    let received = queue.drain(expected.len());
    let mut counts: HashMap<&Message, usize> = HashMap::new();
    for (message, _) in &received {
        *counts.entry(message).or_default() += 1;
    }
    let mut wanted: HashMap<&Message, usize> = HashMap::new();
    for message in &expected {
        *wanted.entry(message).or_default() += 1;
    }
    let lost: Vec<_> = wanted
        .iter()
        .filter(|(message, n)| counts.get(*message).copied().unwrap_or(0) < **n)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} events lost across the restart, e.g. {:?}\n{stderr}",
        lost.len(),
        expected.len(),
        lost.first()
    );
    let unexpected = counts.keys().filter(|m| !wanted.contains_key(*m)).count();
    assert_eq!(unexpected, 0, "messages that the run did not produce");
    eprintln!("{stderr}");
    eprintln!(
        "restart test: {} events expected, {} messages received ({} duplicates)",
        expected.len(),
        received.len(),
        received.len() - expected.len()
    );
}

#[test]
fn an_unreachable_broker_is_retried_and_shutdown_is_bounded() {
    // Nothing listens on this port: the sink keeps the events and retries until close_timeout,
    // then says how many events were not delivered and exits non-zero (never a silent drop).
    let port = common::free_port();
    let config = write_temp(
        "amqp.yaml",
        "sources:\n  - type: random_walk\nsinks:\n  - type: amqp\n    close_timeout: 2s\n",
    );
    let started = Instant::now();
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(run_args("5", "1h"))
        .args(["--speed", "max"])
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("reconnecting with backoff"), "{stderr}");
    assert_eq!(
        stderr.matches("reconnecting with backoff").count(),
        1,
        "the outage is logged once: {stderr}"
    );
    assert!(
        stderr.contains("events were not confirmed by the broker within close_timeout"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_full_buffer_holds_the_simulation_back_until_a_signal() {
    // A tiny buffer and no broker: publish waits (back-pressure) instead of dropping; SIGTERM
    // ends the wait with a message saying how many accepted events were not delivered.
    let port = common::free_port();
    let config = write_temp(
        "amqp.yaml",
        "sources:\n  - type: random_walk\nsinks:\n  - type: amqp\n    buffer_size: 10\n    close_timeout: 1s\n",
    );
    let mut child = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(run_args("5", "10h"))
        .args(["--speed", "max"])
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run waits for the broker instead of finishing"
    );
    common::terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("accepted events were not delivered"),
        "{stderr}"
    );
}

#[test]
fn focus_events_go_out_with_the_focus_topics_routing_key() {
    let _serial = serial();
    let queue = TestQueue::new("focus");
    // The demo store has focus events on (`topics.focus: customer/focus`).
    let config = common::configs_dir().join("retail-demo.yaml");
    let mut args = run_args("8", "1h");
    args.extend(["--speed", "max"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let expected = expected_messages(Some(&config), &args, &[]);
    let focuses = expected
        .iter()
        .filter(|m| m.routing_key == "customer.focus")
        .count();
    assert!(focuses > 5, "the run has focus events: {focuses}");

    let mut command = customersim();
    command
        .args(["run", "--sink", "amqp"])
        .args(&args)
        .arg("--config")
        .arg(&config)
        .env("AMQP_URL", URL);
    run_ok(&mut command);
    let received: Vec<Message> = queue
        .drain(expected.len())
        .into_iter()
        .map(|(message, _)| message)
        .collect();
    assert_eq!(received.len(), expected.len(), "message count");
    for (index, (got, want)) in received.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "message {index} differs");
    }
}
