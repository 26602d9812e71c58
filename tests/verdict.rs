//! The verdict on the system under test through the real binary and real brokers: expectations
//! counted against what a responder on Mosquitto or RabbitMQ really did, the delivery check, a
//! broker that drops the subscription mid-run, and the config errors that name their key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use customersim_testkit::mosquitto::Broker;
use customersim_testkit::responder::{Responder, ResponderBroker, ResponderOptions, Tally};
use customersim_testkit::run::{clean_command, run_failing, run_ok, stderr_text};
use customersim_testkit::temp::temp_file;
use serde_json::Value;

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The demo store's pipeline with its topics under `prefix` (so tests running at once never see
/// each other's traffic), the customer list found from anywhere, and `extra` appended.
fn demo_config(prefix: &str, sink: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(manifest_dir().join("configs/retail-demo.yaml")).unwrap();
    let (pipeline, _) = text.split_once("sinks:").unwrap();
    let text = format!("{pipeline}sinks:\n  - {sink}\n{extra}")
        .replace("customer/", &format!("{prefix}/customer/"))
        .replace(
            "path: retail-demo-customers.csv",
            &format!(
                "path: {}",
                manifest_dir()
                    .join("configs/retail-demo-customers.csv")
                    .display()
            ),
        );
    let path = temp_file("verdict", "yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn unique_prefix(label: &str) -> String {
    format!(
        "verdict-test/{label}/{}-{}",
        std::process::id(),
        customersim::plugin_api::clock::unix_now_us()
    )
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the report was written"))
        .expect("the report is JSON")
}

#[test]
fn the_demo_check_config_is_the_demo_store_plus_its_verdict() {
    let demo = std::fs::read_to_string(manifest_dir().join("configs/retail-demo.yaml")).unwrap();
    let check =
        std::fs::read_to_string(manifest_dir().join("configs/retail-demo-check.yaml")).unwrap();
    let body = |text: &str| text[text.find("simulation:").unwrap()..].to_string();
    let (check_body, _) = check
        .split_once("# ---- the verdict")
        .expect("the check config marks where its verdict starts");
    assert_eq!(body(check_body), body(&demo));
    // It validates, and validate shows the rule resolved.
    let output = run_ok(
        customersim()
            .args(["validate", "--config"])
            .arg(manifest_dir().join("configs/retail-demo-check.yaml"))
            .env("MQTT_HOST", "127.0.0.1"),
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains(
            "# expect \"coupons\": every focus event with dep in [Women, Boys, Girls, Men, Sport] expects a reply on customer/prediction whose customer.id equals the event's id, within 2s (late until 4s); read back through sinks[0] (type: mqtt)"
        ),
        "{shown}"
    );
}

#[test]
fn expectations_without_a_sink_that_reads_back_or_with_bad_keys_exit_2_naming_them() {
    let rule = "expect: [{on: focus, reply_topic: r/p, reply_field: customer.id, within: 2s}]\n";
    let config = demo_config(&unique_prefix("errors"), "{type: stdout}", rule);
    let (_, stderr) = run_failing(customersim().args(["validate", "--config"]).arg(&config), 2);
    assert!(
        stderr.contains("expect: no sink in the pipeline can read back from its broker"),
        "{stderr}"
    );
    let cases = [
        (
            "expect: [{on: focus, reply_topic: r/p, reply_field: customer.id, within: 0s}]\n",
            "expect[0].within: must be longer than 0",
        ),
        (
            "expect: [{on: exit, reply_topic: r/p, reply_field: customer.id, event_field: dep, within: 1s}]\n",
            "expect[0].event_field: \"dep\" is not a member of exit events",
        ),
        (
            "expect: [{on: focus, reply_topic: r/p, reply_field: customer.id, within: 1s, sink: 3}]\n",
            "expect[0].sink: there is no sinks[3]",
        ),
        (
            "expect: [{on: focus, reply_topic: r/p, reply_field: customer.id, within: 1s, schema: missing.json}]\n",
            "expect[0].schema: cannot read",
        ),
        (
            "delivery_check: {within: 2s, unknown: 1}\n",
            "unknown field `unknown`",
        ),
    ];
    for (extra, expected) in cases {
        let config = demo_config(
            &unique_prefix("errors"),
            "{type: mqtt, host: 127.0.0.1}",
            extra,
        );
        let (_, stderr) = run_failing(customersim().args(["validate", "--config"]).arg(&config), 2);
        assert!(stderr.contains(expected), "{extra}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|line| line.contains("error")).count(),
            1,
            "one error: {stderr}"
        );
    }
}
