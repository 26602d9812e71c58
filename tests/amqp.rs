//! The `amqp` sink against the real RabbitMQ on 127.0.0.1:5672 (guest/guest): the messages are the
//! stdout sink's events byte for byte, wrong credentials fail once and clearly without showing the
//! password, and a broker restart in the middle of a run loses nothing.
//!
//! The tests that use the shared broker have it to themselves ([`ExclusiveUse`]): they count what
//! arrives on `amq.topic`, and the restart test stops the broker for a while.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use customersim_testkit::amqp::{LOCAL_AMQP_URL as URL, Received, TestQueue, block_on, connect};
use customersim_testkit::net::free_port;
use customersim_testkit::rabbitmq::{ExclusiveUse, StoppedApp};
use customersim_testkit::run::{clean_command, run_failing, run_ok, terminate};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::temp_file;
use lapin::types::FieldTable;

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

const START: &str = "2024-03-01T08:00:00Z";

/// A message as a consumer sees it, without its properties.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Message {
    routing_key: String,
    body: String,
}

impl From<&Received> for Message {
    fn from(received: &Received) -> Message {
        Message {
            routing_key: received.routing_key.clone(),
            body: received.body.clone(),
        }
    }
}

/// A queue of its own bound to `amq.topic` with `customer.#`, where the sink publishes.
fn customer_queue(tag: &str) -> TestQueue {
    TestQueue::declare(tag, "amq.topic", &["customer.#"])
}

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
    let _alone = ExclusiveUse::acquire();
    let queue = customer_queue("same");
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
    let messages: Vec<Message> = received.iter().map(Message::from).collect();
    assert_eq!(messages.len(), expected.len(), "message count");
    for (index, (got, want)) in messages.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "message {index} differs");
    }
    for Received {
        body, properties, ..
    } in &received
    {
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.as_str()),
            Some("application/json")
        );
        let payload: serde_json::Value = serde_json::from_str(body).unwrap();
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
    let _alone = ExclusiveUse::acquire();
    let exchange = format!("customersim-test-x-{}", std::process::id());
    let queue = customer_queue("declared");
    // Bind the test queue to the exchange the sink declares: declare it first ourselves with
    // the same properties, as a consumer would.
    block_on(async {
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
        queue.bind_on(&channel, &exchange, "#").await;
        connection.close(200, "OK".into()).await.ok();
    });
    let config = temp_file(
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
    let expected = expected_messages(Some(config.path()), &args, &[]);
    let received = queue.drain(expected.len());
    assert_eq!(received.len(), expected.len(), "{output:?}");
    assert!(
        received
            .iter()
            .all(|message| *message.properties.delivery_mode() == Some(2)),
        "persistent: true publishes with delivery mode 2"
    );
    block_on(async {
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
    let _alone = ExclusiveUse::acquire();
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
    let config = temp_file(
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
    let _alone = ExclusiveUse::acquire();
    let config = temp_file(
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

#[test]
fn a_broker_restart_mid_run_loses_nothing() {
    let _alone = ExclusiveUse::acquire();
    let queue = customer_queue("restart");
    let config = temp_file(
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
        let _running_again_on_drop = StoppedApp::stop();
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
    let expected = expected_messages(Some(config.path()), &max_args, &env[..1]);
    let received = queue.drain(expected.len());
    let received_messages: Vec<Message> = received.iter().map(Message::from).collect();
    let mut counts: HashMap<&Message, usize> = HashMap::new();
    for message in &received_messages {
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
    let port = free_port();
    let config = temp_file(
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
    let port = free_port();
    let config = temp_file(
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
    terminate(&child);
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
    let _alone = ExclusiveUse::acquire();
    let queue = customer_queue("focus");
    // The demo store has focus events on (`topics.focus: customer/focus`).
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/retail-demo.yaml");
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
        .iter()
        .map(Message::from)
        .collect();
    assert_eq!(received.len(), expected.len(), "message count");
    for (index, (got, want)) in received.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "message {index} differs");
    }
}

/// Issue 20, finding 8: a malformed AMQP_URL (no `//`, no host, a bad port, another scheme, a
/// password with an unencoded `/`) is refused by `validate` and `run` with exit 2 naming
/// AMQP_URL, and the password is in neither stream. (`amqp:/user:PASS@host/` used to pass
/// `validate`, which printed it, and `run` connected to localhost with the password as vhost.)
#[test]
fn malformed_urls_are_refused_without_showing_the_password() {
    const PASSWORD: &str = "S3cretPassw0rd";
    for url in [
        format!("amqp:/guest:{PASSWORD}@127.0.0.1/vhost"),
        format!("amqp:guest:{PASSWORD}@127.0.0.1"),
        format!("amqp:///{PASSWORD}@127.0.0.1"),
        format!("amqp://guest:12/{PASSWORD}@127.0.0.1:5672/%2f"),
        format!("amqp://guest:{PASSWORD}@127.0.0.1:99999/%2f"),
        format!("http://guest:{PASSWORD}@127.0.0.1/"),
        format!("guest:{PASSWORD}@127.0.0.1"),
    ] {
        for args in [
            &["validate"][..],
            &["run", "--speed", "max", "--duration", "1h"][..],
        ] {
            let output = customersim()
                .args(args)
                .env("SINKS", "amqp")
                .env("AMQP_URL", &url)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{url} {args:?}: {stderr}");
            assert!(stderr.contains("AMQP_URL"), "{url} {args:?}: {stderr}");
            assert!(
                !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
                "{url} {args:?}: password shown:\n{stdout}\n{stderr}"
            );
        }
    }
}
