//! The out-of-tree plugin through its own binary: registration, its events, and CONSUME_FROM in
//! each mode (its route can start before the simulation does, which random_walk never does).

use std::process::{Command, Output};

use customersim_testkit::run::{clean_command, run_failing, run_ok};
use customersim_testkit::temp::{TempFile, temp_file};

/// This example's binary (every built-in plugin plus `mystery_shopper`), with a clean environment.
fn binary() -> Command {
    clean_command(env!("CARGO_BIN_EXE_custom-source"))
}

/// A pipeline of the mystery shopper's route starting `at`, in a file of its own.
fn pipeline(at: &str) -> TempFile {
    temp_file(
        "pipeline.yaml",
        &format!(
            "simulation: {{seed: 1, speed: max, start: \"2026-03-01T09:00:00Z\"}}\n\
             sources:\n  - type: mystery_shopper\n    route: [[1, 1], [2, 2]]\n    at: \"{at}\"\n    step: 30s\n\
             sinks: [{{type: stdout}}]\n"
        ),
    )
}

fn run(at: &str, consume_from: Option<&str>) -> Output {
    let config = pipeline(at);
    let mut command = binary();
    command.args(["run", "--config"]).arg(&config);
    if let Some(from) = consume_from {
        command.env("CONSUME_FROM", from);
    }
    run_ok(&mut command)
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
fn the_plugin_is_listed_beside_the_built_ins() {
    let output = run_ok(binary().arg("plugins"));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("source  mystery_shopper")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("source  random_walk")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("sink    stdout")),
        "{text}"
    );
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
    let config = temp_file(
        "bad.yaml",
        "sources:\n  - type: mystery_shopper\n    route: [[1, 1], [9, 9]]\nsinks: [{type: stdout}]\n",
    );
    let (_, stderr) = run_failing(binary().args(["validate", "--config"]).arg(&config), 2);
    assert!(stderr.contains("route[1]"), "{stderr}");
}
