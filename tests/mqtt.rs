//! The `mqtt` sink against real Mosquitto brokers: the local service on 127.0.0.1:1883 for the
//! plain case, and private `mosquitto` processes (free ports, config files written here) for
//! password authentication, TLS, mutual TLS, MQTT v5, QoS 0 and 2 counts, a broker that comes up
//! late and a broker restarted mid-run.
//!
//! What a subscriber receives is compared with what the stdout sink prints for the same pipeline
//! and seed: the same messages, byte for byte.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use customersim_testkit::mosquitto::Broker;
use customersim_testkit::mqtt::{Subscriber, SubscriberOptions};
use customersim_testkit::net::free_port;
use customersim_testkit::pki::TestPki;
use customersim_testkit::run::{clean_command, run_ok, stderr_text};
use customersim_testkit::stdout_sink::{Line, parse_lines};
use customersim_testkit::temp::{shared_temp_dir, temp_file};

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// A pipeline file: simulated shoppers from a fixed seed and start, on topics under `prefix`,
/// into one mqtt sink with `sink` settings (YAML lines indented by 4).
fn pipeline(prefix: &str, simulation: &str, shoppers: u32, sink: &str) -> String {
    format!(
        "simulation: {{seed: 7, start: \"2024-03-01T08:00:00Z\", {simulation}}}\n\
         topics: {{enter: {prefix}/customer/enter, move: {prefix}/customer/move, exit: {prefix}/customer/exit}}\n\
         timeline: {{consume_from: earliest, consume_frequency: 0.05, consume_batch_size: 100000}}\n\
         sources:\n  - type: random_walk\n    average_in_store: {shoppers}\n\
         sinks:\n  - type: mqtt\n    host: 127.0.0.1\n{sink}"
    )
}

/// What the stdout sink prints for the same pipeline: the messages a broker must receive.
fn reference(config: &Path) -> Vec<Line> {
    let output = run_ok(
        customersim()
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(["--sink", "stdout"]),
    );
    let lines = parse_lines(&output.stdout);
    assert!(
        lines.len() > 50,
        "the reference run publishes something: {}",
        lines.len()
    );
    lines
}

fn run_mqtt(config: &Path) -> Output {
    customersim()
        .arg("run")
        .arg("--config")
        .arg(config)
        .output()
        .expect("customersim runs")
}

fn unique_prefix(label: &str) -> String {
    format!("cstest-{label}-{}", std::process::id())
}

/// Runs the mqtt sink and asserts that the subscriber got exactly the reference messages, in order.
fn assert_delivers_exactly(
    config_text: &str,
    port: u16,
    prefix: &str,
    subscriber: SubscriberOptions,
) {
    let config = temp_file("pipeline.yaml", config_text);
    let expected = reference(&config);
    let subscriber = Subscriber::start(port, &format!("{prefix}/#"), subscriber);
    let output = run_mqtt(&config);
    assert!(
        output.status.success(),
        "exit {:?}\n{}",
        output.status,
        stderr_text(&output)
    );
    let received = subscriber.wait_for(expected.len(), Duration::from_secs(30));
    assert_eq!(received.len(), expected.len(), "message count");
    if let Some(index) = (0..expected.len()).find(|&i| received[i] != expected[i]) {
        panic!(
            "message {index} differs:\n got  {:?}\n want {:?}",
            received[index], expected[index]
        );
    }
}

#[test]
fn local_broker_gets_the_stdout_sinks_messages_byte_for_byte() {
    let prefix = unique_prefix("local");
    // The local service keeps its default max_queued_messages (1000): stay well below it.
    let text = pipeline(
        &prefix,
        "speed: max, duration: 30m",
        5,
        "    port: 1883\n    qos: 1\n",
    );
    assert_delivers_exactly(&text, 1883, &prefix, SubscriberOptions::default());
}

#[test]
fn qos_0_and_2_deliver_every_message_to_a_private_broker() {
    let broker = Broker::start("qos", "allow_anonymous true", "");
    for qos in [0, 2] {
        let prefix = format!("q{qos}");
        let shoppers = if qos == 0 { 200 } else { 30 };
        let text = pipeline(
            &prefix,
            "speed: max, duration: 2h",
            shoppers,
            &format!("    port: {}\n    qos: {qos}\n", broker.port),
        );
        assert_delivers_exactly(&text, broker.port, &prefix, SubscriberOptions::default());
    }
}

#[test]
fn mqtt_v5_delivers_the_same_messages() {
    let broker = Broker::start("v5", "allow_anonymous true", "");
    let text = pipeline(
        "v5",
        "speed: max, duration: 2h",
        20,
        &format!(
            "    port: {}\n    qos: 1\n    protocol_version: MQTTv5\n",
            broker.port
        ),
    );
    assert_delivers_exactly(&text, broker.port, "v5", SubscriberOptions::default());
}

fn password_broker() -> Broker {
    let dir = shared_temp_dir("auth");
    let file = dir.path().join("passwords");
    let status = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&file)
        .args(["sensor", "c0rrect-h0rse"])
        .status()
        .expect("mosquitto_passwd runs");
    assert!(status.success());
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let global = format!("allow_anonymous false\npassword_file {}", file.display());
    Broker::start_in(dir, free_port(), &global, "")
}

#[test]
fn password_authentication_right_and_wrong() {
    let broker = password_broker();
    let credentials = SubscriberOptions {
        credentials: Some(("sensor".into(), "c0rrect-h0rse".into())),
        ..SubscriberOptions::default()
    };
    // Right password, given through the original service's environment variables.
    let text = pipeline(
        "auth",
        "speed: max, duration: 1h",
        10,
        &format!("    port: {}\n    qos: 1\n", broker.port),
    );
    let config = temp_file("pipeline.yaml", &text);
    let expected = reference(&config);
    let subscriber = Subscriber::start(broker.port, "auth/#", credentials);
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("MQTT_USERNAME", "sensor")
        .env("MQTT_PASSWORD", "c0rrect-h0rse")
        .env("LOG_LEVEL", "debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_text(&output));
    assert!(
        !stderr_text(&output).contains("c0rrect-h0rse"),
        "the password is never logged"
    );
    assert_eq!(
        subscriber.wait_for(expected.len(), Duration::from_secs(20)),
        expected
    );

    // Wrong password: one clear message, exit 1, quickly, and the password never shown.
    let started = Instant::now();
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("MQTT_USERNAME", "sensor")
        .env("MQTT_PASSWORD", "wr0ng-pa55")
        .env("LOG_LEVEL", "debug")
        .output()
        .unwrap();
    let text = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("not authorized") && text.contains("MQTT_PASSWORD"),
        "{text}"
    );
    assert!(
        !text.contains("wr0ng-pa55"),
        "the password is never logged: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast, took {:?}",
        started.elapsed()
    );

    // No password at all on a broker that needs one.
    let output = run_mqtt(&config);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
    assert!(
        stderr_text(&output).contains("not authorized"),
        "{}",
        stderr_text(&output)
    );

    // `validate` shows the config without the password.
    let output = customersim()
        .arg("validate")
        .arg("--config")
        .arg(&config)
        .env("MQTT_USERNAME", "sensor")
        .env("MQTT_PASSWORD", "c0rrect-h0rse")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr_text(&output));
    assert!(
        shown.contains("username: sensor") && !shown.contains("c0rrect-h0rse"),
        "{shown}"
    );
}

#[test]
fn tls_with_a_test_ca_and_a_certificate_that_does_not_verify() {
    let (broker, pki) = Broker::start_tls("tls", "allow_anonymous true", false);
    let other = TestPki::generate(broker.dir(), "other-");
    let text = pipeline(
        "tls",
        "speed: max, duration: 1h",
        10,
        &format!(
            "    port: {}\n    qos: 1\n    broker_cert_file: {}\n",
            broker.port,
            pki.ca.display()
        ),
    );
    assert_delivers_exactly(
        &text,
        broker.plain_port,
        "tls",
        SubscriberOptions::default(),
    );

    // A CA that did not sign the broker's certificate: fails fast, exit 1, says why.
    let started = Instant::now();
    let config = temp_file("pipeline.yaml", &text);
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("MQTT_BROKER_CERT_FILE", &other.ca)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
    assert!(
        stderr_text(&output).contains("does not verify"),
        "{}",
        stderr_text(&output)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn mutual_tls_requires_a_client_certificate_the_broker_trusts() {
    let (broker, pki) = Broker::start_tls("mtls", "allow_anonymous true", true);
    let other = TestPki::generate(broker.dir(), "other-");
    let sink = format!(
        "    port: {}\n    qos: 1\n    broker_cert_file: {}\n",
        broker.port,
        pki.ca.display()
    );
    let text = pipeline("mtls", "speed: max, duration: 1h", 10, &sink);
    let config = temp_file("pipeline.yaml", &text);
    let expected = reference(&config);
    let subscriber = Subscriber::start(broker.plain_port, "mtls/#", SubscriberOptions::default());
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("MQTT_CLIENT_CERT_FILE", &pki.client_cert)
        .env("MQTT_CLIENT_KEY_FILE", &pki.client_key)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_text(&output));
    assert_eq!(
        subscriber.wait_for(expected.len(), Duration::from_secs(20)),
        expected
    );

    // Without a client certificate, and with one from a CA the broker does not trust: exit 1.
    for (cert, key) in [
        (None, None),
        (Some(&other.client_cert), Some(&other.client_key)),
    ] {
        let started = Instant::now();
        let mut command = customersim();
        command.arg("run").arg("--config").arg(&config);
        if let (Some(cert), Some(key)) = (cert, key) {
            command
                .env("MQTT_CLIENT_CERT_FILE", cert)
                .env("MQTT_CLIENT_KEY_FILE", key);
        }
        let output = command.output().unwrap();
        let text = stderr_text(&output);
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert!(text.contains("TLS"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    // A key file that cannot be read: a configuration error naming the variable, before connecting.
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("MQTT_CLIENT_CERT_FILE", &pki.client_cert)
        .env("MQTT_CLIENT_KEY_FILE", "/nonexistent/client.key")
        .output()
        .unwrap();
    let text = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("MQTT_CLIENT_KEY_FILE") && text.contains("/nonexistent/client.key"),
        "{text}"
    );
}

#[test]
fn mutual_tls_with_a_v1_client_certificate_made_by_mosquittos_openssl_recipe() {
    let (broker, pki) = Broker::start_tls("mtls-v1", "allow_anonymous true", true);
    // `openssl x509 -req` without an extensions file, as Mosquitto's TLS guide does: X.509 v1.
    let (v1_cert, v1_key) = pki.openssl_v1_client(broker.dir(), "v1-client");
    let sink = format!(
        "    port: {}\n    qos: 1\n    broker_cert_file: {}\n",
        broker.port,
        pki.ca.display()
    );
    let text = pipeline("mtlsv1", "speed: max, duration: 1h", 10, &sink);
    let config = temp_file("pipeline.yaml", &text);
    let expected = reference(&config);
    let subscriber = Subscriber::start(broker.plain_port, "mtlsv1/#", SubscriberOptions::default());
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("MQTT_CLIENT_CERT_FILE", &v1_cert)
        .env("MQTT_CLIENT_KEY_FILE", &v1_key)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_text(&output));
    assert_eq!(
        subscriber.wait_for(expected.len(), Duration::from_secs(20)),
        expected
    );

    // The v1 certificate with a key that is not its own: exit 2 before any connection.
    let connections = broker.log().matches("New connection from").count();
    let output = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("MQTT_CLIENT_CERT_FILE", &v1_cert)
        .env("MQTT_CLIENT_KEY_FILE", &pki.client_key)
        .output()
        .unwrap();
    let text = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("MQTT_CLIENT_CERT_FILE")
            && text.contains("cannot be used together")
            && text.contains("not the key of the certificate"),
        "{text}"
    );
    assert_eq!(
        broker.log().matches("New connection from").count(),
        connections,
        "no connection with a mismatched key"
    );
}

/// Counts of each distinct message.
fn multiset(lines: &[Line]) -> HashMap<(&str, &str), usize> {
    let mut counts = HashMap::new();
    for line in lines {
        *counts
            .entry((line.topic.as_str(), line.payload.as_str()))
            .or_insert(0) += 1;
    }
    counts
}

/// Every expected message arrived (QoS 1 may repeat one), and nothing else did.
fn assert_every_message_arrived(received: &[Line], expected: &[Line]) {
    let got = multiset(received);
    let want = multiset(expected);
    let missing: Vec<_> = want
        .iter()
        .filter(|(line, n)| got.get(*line).copied().unwrap_or(0) < **n)
        .collect();
    assert!(
        missing.is_empty(),
        "{} distinct messages missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let foreign: Vec<_> = got
        .keys()
        .filter(|line| !want.contains_key(*line))
        .collect();
    assert!(
        foreign.is_empty(),
        "unexpected messages: {:?}",
        foreign.first()
    );
}

fn spawn_mqtt(config: &Path) -> Child {
    customersim()
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn broker_restart_mid_run_loses_nothing_at_qos_1() {
    restart_mid_run("restart", "", "");
}

/// MQTT v5 with a broker whose receive maximum (20) is far below the sink's window: the events
/// kept across the restart must go back within it.
#[test]
fn broker_restart_mid_run_loses_nothing_with_mqtt_v5_and_a_small_receive_maximum() {
    restart_mid_run(
        "restart5",
        "max_inflight_messages 20",
        "    protocol_version: MQTTv5\n",
    );
}

fn restart_mid_run(prefix: &str, broker_settings: &str, sink_settings: &str) {
    let mut broker = Broker::start(
        prefix,
        &format!("allow_anonymous true\n{broker_settings}"),
        "",
    );
    // Real (scaled) time, so events are still flowing when the broker goes away.
    let text = pipeline(
        prefix,
        "speed: 300, duration: 30m",
        150,
        &format!(
            "    port: {}\n    qos: 1\n    reconnect_delay_min: 100ms\n    reconnect_delay_max: 1s\n{sink_settings}",
            broker.port
        ),
    );
    let config = temp_file("pipeline.yaml", &text);
    let expected = reference(&config);
    let subscriber = Subscriber::start(
        broker.port,
        &format!("{prefix}/#"),
        SubscriberOptions {
            persistent_id: Some(format!("{prefix}-sub-{}", std::process::id())),
            ..Default::default()
        },
    );
    let child = spawn_mqtt(&config);
    std::thread::sleep(Duration::from_secs(2));
    broker.stop();
    std::thread::sleep(Duration::from_millis(1500));
    broker.restart();
    let output = child.wait_with_output().unwrap();
    let text = stderr_text(&output);
    assert!(output.status.success(), "{text}");
    assert_eq!(
        text.matches("connection to 127.0.0.1").count(),
        1,
        "one warning when the link goes down:\n{text}"
    );
    assert_eq!(
        text.matches("reconnected to 127.0.0.1").count(),
        1,
        "one note when it is back:\n{text}"
    );
    let received = subscriber.wait_for(expected.len(), Duration::from_secs(30));
    assert_every_message_arrived(&received, &expected);
}

/// Four connections at QoS 1 through a broker restart: each connection reconnects and sends
/// again what was not acknowledged on its own, so nothing is lost, and since a customer's events
/// always take the same connection, each customer's events arrive in order. The broker's log
/// shows four distinct client ids, each connected before and after the restart.
#[test]
fn four_connections_through_a_broker_restart_lose_nothing_and_keep_each_customers_order() {
    let mut broker = Broker::start("conn4", "allow_anonymous true", "");
    let text = pipeline(
        "conn4",
        "speed: 300, duration: 30m",
        150,
        &format!(
            "    port: {}\n    qos: 1\n    connections: 4\n    client_id: sim4\n    reconnect_delay_min: 100ms\n    reconnect_delay_max: 1s\n",
            broker.port
        ),
    );
    let config = temp_file("pipeline.yaml", &text);
    let expected = reference(&config);
    let subscriber = Subscriber::start(
        broker.port,
        "conn4/#",
        SubscriberOptions {
            persistent_id: Some(format!("conn4-sub-{}", std::process::id())),
            ..Default::default()
        },
    );
    let child = spawn_mqtt(&config);
    std::thread::sleep(Duration::from_secs(2));
    broker.stop();
    std::thread::sleep(Duration::from_millis(1500));
    broker.restart();
    let output = child.wait_with_output().unwrap();
    let text = stderr_text(&output);
    assert!(output.status.success(), "{text}");
    for connection in 1..=4 {
        assert!(
            text.contains(&format!(
                "reconnected to 127.0.0.1:{} (connection {connection} of 4)",
                broker.port
            )),
            "connection {connection} reconnected on its own:\n{text}"
        );
    }
    let received = subscriber.wait_for(expected.len(), Duration::from_secs(30));
    assert_every_message_arrived(&received, &expected);

    // Per customer: the first arrival of each message, in the reference's order (QoS 1 may
    // deliver a message again after the restart; its first arrival is where it belongs).
    let per_customer = |lines: &[Line]| {
        let mut seen = std::collections::HashSet::new();
        let mut orders: HashMap<String, Vec<Line>> = HashMap::new();
        for line in lines {
            if seen.insert(line.clone()) {
                let payload: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
                let id = payload["id"].as_str().unwrap().to_string();
                orders.entry(id).or_default().push(line.clone());
            }
        }
        orders
    };
    let (got, want) = (per_customer(&received), per_customer(&expected));
    assert_eq!(got.len(), want.len(), "customers");
    for (id, order) in &want {
        assert!(
            got[id] == *order,
            "customer {id}'s events arrived out of order"
        );
    }

    let log = broker.log();
    let mut ids: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split(" as sim4-").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let connects = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "four distinct client ids: {ids:?}");
    assert!(
        ids.iter().all(|id| id.ends_with(['0', '1', '2', '3'])),
        "{ids:?}"
    );
    assert!(
        connects >= 8,
        "each connected again after the restart:\n{log}"
    );
}

#[test]
fn a_broker_that_comes_up_late_gets_everything_and_the_buffer_holds_the_scheduler_back() {
    // A persistent subscription made beforehand, so the broker queues what arrives before the
    // subscriber is back: every message is then expected, in order.
    let mut broker = Broker::start("late", "allow_anonymous true", "");
    let subscription = SubscriberOptions {
        persistent_id: Some(format!("late-sub-{}", std::process::id())),
        ..Default::default()
    };
    drop(Subscriber::start(
        broker.port,
        "late/#",
        subscription.clone(),
    ));
    broker.stop();

    let text = pipeline(
        "late",
        "speed: max, duration: 1h",
        20,
        &format!(
            "    port: {}\n    qos: 1\n    buffer_size: 16\n    reconnect_delay_min: 100ms\n    reconnect_delay_max: 500ms\n",
            broker.port
        ),
    );
    let config = temp_file("pipeline.yaml", &text);
    let expected = reference(&config);
    let mut child = spawn_mqtt(&config);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "with the broker away and the buffer full, the run waits"
    );
    broker.restart();
    let output = child.wait_with_output().unwrap();
    let text = stderr_text(&output);
    assert!(output.status.success(), "{text}");
    assert_eq!(
        text.matches("cannot connect to 127.0.0.1").count(),
        1,
        "one warning while away:\n{text}"
    );
    let subscriber = Subscriber::start(broker.port, "late/#", subscription);
    assert_eq!(
        subscriber.wait_for(expected.len(), Duration::from_secs(20)),
        expected
    );
}

#[test]
fn the_default_pipeline_needs_mqtt_host() {
    let output = customersim()
        .args(["run", "--seed", "1", "--speed", "max", "--duration", "10m"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_text(&output));
    assert!(
        stderr_text(&output).contains("MQTT_HOST"),
        "{}",
        stderr_text(&output)
    );
    let output = customersim().arg("validate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    // TESTING_MOCK_MQTT=true swaps the mqtt sink for stdout, as in the original service.
    let output = run_ok(
        customersim()
            .args(["run", "--seed", "1", "--speed", "max", "--duration", "10m"])
            .env("TESTING_MOCK_MQTT", "true")
            .env("HTTP_LISTEN", "127.0.0.1:0"),
    );
    assert!(!parse_lines(&output.stdout).is_empty());
}
