//! `customersim asyncapi`: the documents of the shipped pipelines (and of a fleet with `{store}`
//! topics) pass the official AsyncAPI CLI (`asyncapi validate`, from npm; scripts/test-setup
//! installs it), and every payload a demo run publishes is valid against its channel's schema,
//! checked by an independent validator (Python's jsonschema).

use std::path::PathBuf;
use std::process::Command;

use customersim_testkit::run::{clean_command, run_ok, stderr_text};
use customersim_testkit::temp::{TempFile, temp_file};

fn customersim() -> Command {
    let mut command = clean_command(env!("CARGO_BIN_EXE_customersim"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// The AsyncAPI CLI: `ASYNCAPI_CLI`, or where scripts/test-setup installs it.
fn asyncapi_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("ASYNCAPI_CLI") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let dir = std::env::var_os("ASYNCAPI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(home).join(".cache/customersim/asyncapi-cli"));
    let cli = dir.join("node_modules/.bin/asyncapi");
    assert!(
        cli.exists(),
        "{} is missing: run scripts/test-setup (it installs @asyncapi/cli)",
        cli.display()
    );
    cli
}

/// The AsyncAPI document of `config` (with the environment `env`), written to a file.
fn document(config: &str, env: &[(&str, &str)]) -> (String, TempFile) {
    let output = run_ok(
        customersim()
            .args(["asyncapi", "--config", config])
            .envs(env.iter().copied()),
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let file = temp_file("asyncapi.yaml", &text);
    (text, file)
}

/// Runs the official validator on a document; its verdict and what it printed.
fn validate(file: &TempFile) -> (bool, String) {
    let output = Command::new(asyncapi_cli())
        .arg("validate")
        .arg(file.path())
        .env("ASYNCAPI_METRICS", "false")
        .env("SUPPRESS_NO_CONFIG_WARNING", "true")
        .output()
        .expect("the AsyncAPI CLI runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr_text(&output)
    );
    (output.status.success() && text.contains("is valid"), text)
}

const FLEET_PIPELINE: &str = "\
fleet: {stores: [north, south]}
topics:
  enter: store/{store}/customer/enter
  move: store/{store}/customer/move
  exit: store/{store}/customer/exit
sources: [{type: random_walk}]
sinks:
  - {type: mqtt, host: broker.example, port: 8883, broker_cert_file: ca.pem, protocol_version: MQTTv5, qos: 1}
  - {type: amqp, url: 'amqp://user:s3cret-pw@rabbit.example:5672/shop'}
";

#[test]
fn the_shipped_pipelines_and_a_fleet_are_valid_asyncapi() {
    let broker = [("MQTT_HOST", "broker.example")];
    for config in ["configs/default.yaml", "configs/retail-demo.yaml"] {
        let (_, file) = document(config, &broker);
        let (valid, said) = validate(&file);
        assert!(valid, "{config}: {said}");
    }

    let (text, file) = document("configs/retail-demo.yaml", &broker);
    assert!(text.contains("address: customer/focus"), "{text}");
    assert!(text.contains("host: broker.example:1883"), "{text}");
    for department in ["Women", "Boys", "Girls", "Men", "Sport"] {
        assert!(
            text.contains(&format!("- {department}\n")),
            "{department}: {text}"
        );
    }
    drop(file);

    let dir = customersim_testkit::temp::temp_dir("asyncapi-fleet");
    let pipeline = dir.path().join("fleet.yaml");
    std::fs::write(&pipeline, FLEET_PIPELINE).unwrap();
    // The CA file the TLS check reads.
    let pki = customersim_testkit::pki::TestPki::generate(dir.path(), "asyncapi");
    std::fs::copy(&pki.ca, dir.path().join("ca.pem")).unwrap();
    let (text, file) = document(pipeline.to_str().unwrap(), &[]);
    let (valid, said) = validate(&file);
    assert!(valid, "{said}\n{text}");
    assert!(
        text.contains("address: store/{store}/customer/move"),
        "{text}"
    );
    assert!(
        text.contains("address: store.{store}.customer.move"),
        "AMQP routing keys: {text}"
    );
    assert!(text.contains("protocol: secure-mqtt"), "{text}");
    assert!(text.contains("protocol: amqp"), "{text}");
    assert!(
        text.contains("- north") && text.contains("- south"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret-pw"),
        "no credentials in the document: {text}"
    );
}

#[test]
fn a_broken_document_is_refused_by_the_validator() {
    // The check above can fail: the same validator refuses a document with a channel that
    // points nowhere.
    let (text, _) = document(
        "configs/retail-demo.yaml",
        &[("MQTT_HOST", "broker.example")],
    );
    let broken = text.replace("$ref: '#/channels/move'", "$ref: '#/channels/nowhere'");
    assert_ne!(broken, text);
    let file = temp_file("broken.yaml", &broken);
    let (valid, said) = validate(&file);
    assert!(!valid, "{said}");
}

/// Checks each `topic<TAB>payload` line of `events` against the payload schema of the channel
/// whose address is the topic, with Python's jsonschema; prints `checked N` or the first problem.
const CHECK_PAYLOADS: &str = r#"
import json, sys, yaml
from jsonschema import Draft7Validator
document = yaml.safe_load(open(sys.argv[1]))
messages = document["components"]["messages"]
by_address = {}
for channel in document["channels"].values():
    (message,) = channel["messages"].values()
    name = message["$ref"].rsplit("/", 1)[1]
    by_address[channel["address"]] = Draft7Validator(messages[name]["payload"])
checked = 0
for line in open(sys.argv[2]):
    topic, payload = line.rstrip("\n").split("\t", 1)
    errors = list(by_address[topic].iter_errors(json.loads(payload)))
    if errors:
        print(f"invalid {topic} {payload}: {errors[0].message}")
        sys.exit(1)
    checked += 1
print(f"checked {checked}")
"#;

fn check_payloads(document: &TempFile, events: &str) -> (bool, String) {
    let events = temp_file("events.tsv", events);
    let output = Command::new("python3")
        .args(["-c", CHECK_PAYLOADS])
        .arg(document.path())
        .arg(events.path())
        .output()
        .expect("python3 runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_text(&output)
        ),
    )
}

#[test]
fn every_payload_of_a_demo_run_is_valid_against_its_channel() {
    let (_, document) = document(
        "configs/retail-demo.yaml",
        &[("MQTT_HOST", "broker.example")],
    );
    let run = run_ok(customersim().args([
        "run",
        "--config",
        "configs/retail-demo.yaml",
        "--sink",
        "stdout",
        "--speed",
        "max",
        "--duration",
        "3h",
        "--seed",
        "5",
    ]));
    let mut events = String::new();
    let mut focus = 0;
    for line in String::from_utf8(run.stdout).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let topic = value["topic"].as_str().unwrap();
        focus += usize::from(topic == "customer/focus");
        events.push_str(&format!("{topic}\t{}\n", value["payload"]));
    }
    assert!(focus > 0, "the demo run publishes focus events");
    let (valid, said) = check_payloads(&document, &events);
    assert!(valid, "{said}");
    let checked: usize = said
        .trim()
        .strip_prefix("checked ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(checked, events.lines().count());

    // And the schemas do refuse what the contract does not allow.
    for wrong in [
        "customer/move\t{\"id\": \"7\", \"ts\": 1, \"x\": 2}",
        "customer/enter\t{\"id\": 7, \"ts\": 1}",
        "customer/exit\t{\"id\": \"7\", \"ts\": 1, \"extra\": true}",
        "customer/focus\t{\"id\": \"7\", \"ts\": 1, \"dep\": \"Nowhere\", \"x\": 1, \"y\": 1}",
    ] {
        let (valid, said) = check_payloads(&document, &format!("{wrong}\n"));
        assert!(!valid, "{wrong}: {said}");
    }
}
