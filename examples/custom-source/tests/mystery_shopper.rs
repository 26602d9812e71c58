//! The out-of-tree plugin through its own binary: registration, its events, and CONSUME_FROM in
//! each mode (its route can start before the simulation does, which random_walk never does).

use std::io::Write;
use std::process::{Command, Output};

use tempfile::NamedTempFile;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custom-source"));
    for var in [
        "CONSUME_FROM",
        "SINKS",
        "TESTING_MOCK_MQTT",
        "LOG_LEVEL",
        "SIMULATION_SEED",
        "MQTT_HOST",
    ] {
        command.env_remove(var);
    }
    command
}

/// Writes the pipeline to a temp file of its own: tests run in parallel, and a shared file name
/// (once the pid plus the route's time) let one test truncate the file another was reading.
fn pipeline(at: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("mystery-")
        .suffix(".yaml")
        .tempfile()
        .unwrap();
    write!(
        file,
        "simulation: {{seed: 1, speed: max, start: \"2026-03-01T09:00:00Z\"}}\n\
         sources:\n  - type: mystery_shopper\n    route: [[1, 1], [2, 2]]\n    at: \"{at}\"\n    step: 30s\n\
         sinks: [{{type: stdout}}]\n"
    )
    .unwrap();
    file.flush().unwrap();
    file
}

fn run(at: &str, consume_from: Option<&str>) -> Output {
    let config = pipeline(at);
    let mut command = binary();
    command.args(["run", "--config"]).arg(config.path());
    if let Some(from) = consume_from {
        command.env("CONSUME_FROM", from);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn payloads(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

const T0: i64 = 1_772_355_600; // 2026-03-01T09:00:00Z

#[test]
fn the_plugin_is_listed_beside_the_built_ins_it_enables() {
    let output = binary().arg("plugins").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    // One plugin a line: its role, its name, its description and origin.
    let listed = |role: &str, name: &str| {
        text.lines()
            .any(|line| line.split_whitespace().take(2).eq([role, name]))
    };
    assert!(listed("source", "mystery_shopper"), "{text}");
    assert!(listed("sink", "stdout"), "{text}");
    // Cargo.toml enables only the stdout sink and the memory timeline of the built-ins.
    assert!(!listed("source", "random_walk"), "{text}");
    assert!(!listed("sink", "mqtt"), "{text}");
}

#[test]
fn the_route_is_published_in_order() {
    let lines = payloads(&run("2026-03-01T09:00:00Z", None));
    assert_eq!(
        lines,
        [
            format!(
                "{{\"topic\": \"customer/enter\", \"payload\": {{\"id\": \"900001\", \"ts\": {T0}}}}}"
            ),
            format!(
                "{{\"topic\": \"customer/move\", \"payload\": {{\"id\": \"900001\", \"ts\": {}, \"x\": 1, \"y\": 1}}}}",
                T0 + 30
            ),
            format!(
                "{{\"topic\": \"customer/move\", \"payload\": {{\"id\": \"900001\", \"ts\": {}, \"x\": 2, \"y\": 2}}}}",
                T0 + 60
            ),
            format!(
                "{{\"topic\": \"customer/move\", \"payload\": {{\"id\": \"900001\", \"ts\": {}, \"x\": 0, \"y\": 0}}}}",
                T0 + 90
            ),
            format!(
                "{{\"topic\": \"customer/exit\", \"payload\": {{\"id\": \"900001\", \"ts\": {}}}}}",
                T0 + 120
            ),
        ]
    );
}

#[test]
fn consume_from_earliest_publishes_the_backlog() {
    // The route starts 60 s before the simulation: 2 of its 5 events are due before the start.
    let output = run("2026-03-01T08:59:00Z", Some("earliest"));
    assert_eq!(payloads(&output).len(), 5);
}

#[test]
fn consume_from_latest_skips_and_counts_what_was_due_before_the_start() {
    let output = run("2026-03-01T08:59:00Z", Some("latest"));
    let lines = payloads(&output);
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains(&format!("\"ts\": {T0}")), "{}", lines[0]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 skipped"), "{stderr}");
    // latest is the default
    assert_eq!(payloads(&run("2026-03-01T08:59:00Z", None)), lines);
}

#[test]
fn consume_from_an_instant_skips_what_was_due_before_it() {
    let output = run("2026-03-01T08:59:00Z", Some("2026-03-01T08:59:30+00:00"));
    let lines = payloads(&output);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].contains("\"x\": 1"), "{}", lines[0]);
}

#[test]
fn a_route_outside_the_store_is_refused_naming_the_step() {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(
        b"sources:\n  - type: mystery_shopper\n    route: [[1, 1], [9, 9]]\nsinks: [{type: stdout}]\n",
    )
    .unwrap();
    let path = file.path();
    let output = binary()
        .args(["validate", "--config"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("route[1]"));
}

#[test]
fn a_built_in_left_out_of_this_build_is_named_with_its_cargo_feature() {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(b"sources: [{type: shopping_trip}]\nsinks: [{type: stdout}]\n")
        .unwrap();
    let output = binary()
        .args(["validate", "--config"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cargo feature \"shopping-trip\""),
        "{stderr}"
    );
    assert!(!stderr.contains("use my_plugins as _"), "{stderr}");
}
