//! The demo store through the `mqtt` sink into a private Mosquitto: focus events arrive on the
//! focus topic, and every message is the one the stdout sink prints for the same run, byte for byte.

// The mqtt tests' broker helpers; this file uses only a plain private broker and a subscriber.
#[allow(dead_code)]
#[path = "mqtt/broker.rs"]
mod broker;
mod common;

use std::time::Duration;

use broker::{Broker, Subscriber, SubscriberOptions};
use common::{customersim, parse_lines, run_ok};

/// Runs the demo store for 3 simulated hours with topics under `prefix`.
fn demo_run(prefix: &str, sink: &[&str], port: u16) -> std::process::Output {
    let mut command = customersim();
    command
        .args("run --speed max --duration 3h --seed 8 --config".split(' '))
        .arg(common::configs_dir().join("retail-demo.yaml"))
        .args(sink)
        .env("SIMULATION_START", "2026-03-02T08:00:00Z")
        .env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", port.to_string())
        .env("MQTT_QOS", "1")
        .env("CONSUME_FROM", "earliest")
        .env("ENTER_TOPIC", format!("{prefix}/customer/enter"))
        .env("MOVE_TOPIC", format!("{prefix}/customer/move"))
        .env("EXIT_TOPIC", format!("{prefix}/customer/exit"))
        .env("FOCUS_TOPIC", format!("{prefix}/customer/focus"))
        .env_remove("STORE_CELL");
    run_ok(&mut command)
}

#[test]
fn focus_events_reach_the_broker_on_the_focus_topic() {
    let broker = Broker::start("layout-focus", "allow_anonymous true", "");
    let prefix = format!("cstest-focus-{}", std::process::id());
    let expected = parse_lines(&demo_run(&prefix, &["--sink", "stdout"], broker.port).stdout);
    let focus_topic = format!("{prefix}/customer/focus");
    let focuses = expected.iter().filter(|l| l.topic == focus_topic).count();
    assert!(focuses > 5, "the run has focus events: {focuses}");

    let subscriber = Subscriber::start(
        broker.plain_port,
        &format!("{prefix}/#"),
        SubscriberOptions::default(),
    );
    demo_run(&prefix, &[], broker.port);
    let received = subscriber.wait_for(expected.len(), Duration::from_secs(60));
    assert_eq!(received.len(), expected.len(), "message count");
    let first_difference = received
        .iter()
        .zip(&expected)
        .position(|(got, want)| got != want);
    assert_eq!(
        first_difference, None,
        "first message that differs from stdout's"
    );
}
