//! `customersim schema`: the JSON Schema of the pipeline file, generated from the config types.
//! The committed copy (`schema/pipeline.schema.json`, which the shipped configs name for their
//! editors) is what the code generates; every shipped config is valid against it and a wrong key
//! is not, as an independent validator (Python's jsonschema) sees it.

use std::path::Path;
use std::process::Command;

use customersim_testkit::run::{clean_command, run_ok, stderr_text};
use customersim_testkit::temp::temp_file;

fn generated() -> String {
    let output = run_ok(clean_command(env!("CARGO_BIN_EXE_customersim")).arg("schema"));
    String::from_utf8(output.stdout).unwrap()
}

fn repository(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Validates each YAML document against the schema with Python's jsonschema; one line per
/// document: `ok` or the first error.
const VALIDATE: &str = r#"
import json, sys, yaml
from jsonschema import Draft7Validator
schema = json.load(open(sys.argv[1]))
Draft7Validator.check_schema(schema)
validator = Draft7Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(validator.iter_errors(yaml.safe_load(open(path))), key=lambda e: e.path)
    print("ok" if not errors else f"invalid: {errors[0].message}")
"#;

fn validate(schema: &Path, documents: &[&Path]) -> Vec<String> {
    let output = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(schema)
        .args(documents)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", stderr_text(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_committed_schema_is_what_the_code_generates() {
    let committed = std::fs::read_to_string(repository("schema/pipeline.schema.json")).unwrap();
    assert!(
        committed == generated(),
        "schema/pipeline.schema.json is stale: run `cargo run -- schema > schema/pipeline.schema.json`"
    );
}

#[test]
fn every_shipped_config_is_valid_and_names_the_schema_for_editors() {
    let schema = temp_file("pipeline.schema.json", &generated());
    let configs: Vec<std::path::PathBuf> = std::fs::read_dir(repository("configs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    assert!(configs.len() >= 2, "{configs:?}");
    let paths: Vec<&Path> = configs.iter().map(|path| path.as_path()).collect();
    let verdicts = validate(schema.path(), &paths);
    for (config, verdict) in configs.iter().zip(&verdicts) {
        assert_eq!(verdict, "ok", "{}", config.display());
        let text = std::fs::read_to_string(config).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/pipeline.schema.json\n"),
            "{} names the schema on its first line",
            config.display()
        );
    }
}

#[test]
fn wrong_keys_are_refused_by_the_schema_as_by_validate() {
    let schema = temp_file("pipeline.schema.json", &generated());
    let wrong = [
        "simulaton: {seed: 1}\n",
        "store: {widht: 6}\n",
        "sources: [{type: random_walk, stesp: 1}]\n",
        "sinks: [{type: no_such_sink}]\n",
        "sinks: [{type: mqtt, host: broker, qoss: 1}]\n",
        "timeline: {backend: redis, redis: {url: 'redis://127.0.0.1', keyy: x}}\n",
    ];
    for text in wrong {
        let file = temp_file("wrong.yaml", text);
        let verdict = validate(schema.path(), &[file.path()]);
        assert!(verdict[0].starts_with("invalid"), "{text}: {verdict:?}");
        // validate refuses it too (exit 2).
        let output = clean_command(env!("CARGO_BIN_EXE_customersim"))
            .args(["validate", "--config"])
            .arg(file.path())
            .env("MQTT_HOST", "broker")
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{text}: {}",
            stderr_text(&output)
        );
    }
    let right = temp_file(
        "right.yaml",
        "simulation: {seed: 1, speed: max, duration: 8h}\nfleet: {stores: 3}\nshard: 1/3\n\
         timeline: {backend: redis, consume_from: earliest, redis: {url: 'redis://127.0.0.1', lease: 30s}}\n\
         sources: [{type: random_walk, average_in_store: 3, mean_visit: 10m}]\n\
         sinks: [{type: stdout}, {type: mqtt, host: broker, qos: 1}]\n",
    );
    assert_eq!(validate(schema.path(), &[right.path()]), ["ok"]);
}
