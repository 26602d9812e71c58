//! The `csv_file` sink through its own binary: the file holds exactly the events the stdout sink
//! prints for the same seed, in the same order; its settings; what it refuses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_csv-sink"));
    for var in [
        "CONSUME_FROM",
        "SINKS",
        "TESTING_MOCK_MQTT",
        "LOG_LEVEL",
        "SIMULATION_SEED",
        "CSV_FILE_PATH",
    ] {
        command.env_remove(var);
    }
    command
}

/// Shoppers whose ids hold a comma and a quote (`c,"17`), so the comparison also covers CSV
/// quoting; the start is fixed so two runs with one seed publish the same `ts`.
fn pipeline(dir: &TempDir, sink_settings: &str) -> PathBuf {
    let path = dir.path().join("pipeline.yaml");
    let text = format!(
        "simulation: {{start: \"2026-03-01T09:00:00Z\"}}\n\
         sources:\n  - type: random_walk\n    average_in_store: 20\n    id_prefix: 'c,\"'\n\
         sinks:\n  - type: csv_file\n{sink_settings}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn succeeded(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A seeded `--speed max` run of ten simulated minutes, plus `extra` flags.
fn run(config: &Path, extra: &[&str]) -> Output {
    let output = binary()
        .args(["run", "--config"])
        .arg(config)
        .args(["--seed", "7", "--speed", "max", "--duration", "10m"])
        .args(extra)
        .output()
        .unwrap();
    succeeded(output)
}

/// The rows of a CSV file, header excluded when `header` is true.
fn rows(path: &Path, header: bool) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(header)
        .from_path(path)
        .unwrap();
    if header {
        assert_eq!(
            reader.headers().unwrap(),
            vec!["topic", "id", "ts", "x", "y"]
        );
    }
    reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// The stdout sink's lines as CSV rows: topic, id, ts, x, y (empty unless a move).
fn stdout_rows(output: &Output) -> Vec<Vec<String>> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let payload = &value["payload"];
            let number = |key: &str| payload.get(key).map_or(String::new(), |n| n.to_string());
            vec![
                value["topic"].as_str().unwrap().to_string(),
                payload["id"].as_str().unwrap().to_string(),
                number("ts"),
                number("x"),
                number("y"),
            ]
        })
        .collect()
}

#[test]
fn the_file_holds_the_events_the_stdout_sink_prints_for_the_same_seed() {
    let dir = TempDir::new().unwrap();
    // A relative path: relative to the pipeline file's folder.
    let config = pipeline(&dir, "    path: events.csv\n");
    run(&config, &[]);
    let written = rows(&dir.path().join("events.csv"), true);

    let printed = stdout_rows(&run(&config, &["--sink", "stdout"]));
    assert!(printed.len() > 200, "only {} events", printed.len());
    assert!(printed.iter().any(|row| row[0] == "customer/exit"));
    assert!(printed[0][1].starts_with("c,\""), "{:?}", printed[0]);
    assert_eq!(written, printed);
}

#[test]
fn without_a_header_the_first_line_is_an_event() {
    let dir = TempDir::new().unwrap();
    let config = pipeline(&dir, "    path: events.csv\n    header: false\n");
    run(&config, &[]);
    let text = std::fs::read_to_string(dir.path().join("events.csv")).unwrap();
    assert!(text.starts_with("customer/enter,\"c,"), "{text:.80}");
    assert!(rows(&dir.path().join("events.csv"), false).len() > 200);
}

/// With `flush_every: 1` a reader following the file sees events while the run goes on; SIGTERM
/// then ends the run with everything accepted in the file, the last line complete.
#[test]
fn flush_every_writes_during_the_run_and_sigterm_leaves_a_complete_file() {
    let dir = TempDir::new().unwrap();
    let config = pipeline(&dir, "    path: events.csv\n    flush_every: 1\n");
    let file = dir.path().join("events.csv");
    // Ten simulated minutes per second: shoppers arrive every few wall milliseconds.
    let mut child = binary()
        .args(["run", "--config"])
        .arg(&config)
        .args(["--seed", "7", "--speed", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen = std::fs::read_to_string(&file).unwrap_or_default();
        if seen.lines().count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(
        seen.lines().count() >= 3,
        "nothing written while running: {seen:?}\n{stderr}"
    );
    assert!(status.success(), "{status:?}: {stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    assert!(
        text.starts_with(&seen),
        "lines written while running were rewritten"
    );
    let all = rows(&file, true);
    assert!(all.iter().all(|row| row.len() == 5), "{all:?}");
    // The final log line counts what the sinks were handed: every one of those is in the file.
    let published = stderr
        .split(" events published")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|count| count.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no count of published events in: {stderr}"));
    assert_eq!(all.len(), published, "{stderr}");
}

#[test]
fn csv_file_path_overrides_the_path() {
    let dir = TempDir::new().unwrap();
    let config = pipeline(&dir, "    path: events.csv\n");
    let elsewhere = dir.path().join("elsewhere.csv");
    let output = binary()
        .args(["run", "--config"])
        .arg(&config)
        .args(["--seed", "7", "--speed", "max", "--duration", "1m"])
        .env("CSV_FILE_PATH", &elsewhere)
        .output()
        .unwrap();
    succeeded(output);
    assert!(!rows(&elsewhere, true).is_empty());
    assert!(!dir.path().join("events.csv").exists());
}

#[test]
fn a_missing_folder_is_a_configuration_error_found_by_validate() {
    let dir = TempDir::new().unwrap();
    let config = pipeline(&dir, "    path: no/such/folder/events.csv\n");
    let output = binary()
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sinks[0] (type: csv_file)"), "{stderr}");
    assert!(stderr.contains("path: the folder of"), "{stderr}");
}
