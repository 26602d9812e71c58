//! Load stages (`load:`), through the real binary: each stage's published events per second,
//! counted from the stdout stream of the run, is within ±5% of its target once ramped, at
//! `--speed max` (three stages up and down; a fleet split over shards with two sources; the
//! purposeful shoppers of the demo store) and at speed 1 for a 2-minute stage; the run report
//! gives the same figures; `validate` shows the stages; a config that also sets time-of-day
//! arrivals, a bad stage or a pipeline without shopper sources is refused with exit 2.

use std::process::Command;
use std::time::Duration;

use customersim_testkit::run::{Process, StdoutMode, clean_command, run_failing, run_ok};
use customersim_testkit::temp::{TempFile, temp_dir, temp_file};
use serde_json::Value;

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// 2026-03-02T10:00:00Z: every run starts here, so stage windows fall on whole seconds of `ts`.
const START: &str = "2026-03-02T10:00:00Z";
const START_S: i64 = 1_772_445_600;

/// The `ts` (whole seconds) of a stdout-sink line, read without parsing the whole line: a run
/// prints millions of them.
fn ts_of(line: &str) -> i64 {
    let at = line.find("\"ts\": ").expect("a payload with ts") + 6;
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().expect("ts is a number")
}

/// Events per second of the stream in `[from_s, to_s)` seconds after the start.
fn rate_between(lines: &[i64], from_s: i64, to_s: i64) -> f64 {
    let count = lines
        .iter()
        .filter(|&&ts| (START_S + from_s..START_S + to_s).contains(&ts))
        .count();
    count as f64 / (to_s - from_s) as f64
}

fn timestamps(stdout: &[u8]) -> Vec<i64> {
    std::str::from_utf8(stdout)
        .expect("utf-8 output")
        .lines()
        .map(ts_of)
        .collect()
}

fn read_report(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the report was written");
    serde_json::from_str(&text).expect("the report is JSON")
}

/// Asserts `actual` is within ±5% of `target`.
fn within_five_percent(what: &str, actual: f64, target: f64) {
    let off = actual / target - 1.0;
    assert!(
        off.abs() <= 0.05,
        "{what}: {actual:.1} events/s for a target of {target} ({:+.1}%)",
        off * 100.0
    );
}

/// The stages of a report, as (target, measured events/s).
fn reported_stages(report: &Value) -> Vec<(f64, f64)> {
    report["load_stages"]
        .as_array()
        .expect("load_stages in the report")
        .iter()
        .map(|stage| {
            (
                stage["target_events_per_second"].as_f64().unwrap(),
                stage["events_per_second"].as_f64().expect("measured"),
            )
        })
        .collect()
}

const THREE_STAGES: &str = "
simulation:
  seed: 11
  speed: max
  start: 2026-03-02T10:00:00Z
sources:
  - type: random_walk
sinks:
  - type: stdout
load:
  stages:
    - {duration: 2m, events_per_second: 2000}
    - {duration: 2m, events_per_second: 8000}
    - {duration: 2m, events_per_second: 4000}
";

#[test]
fn three_stages_hold_their_targets_at_speed_max_and_the_report_counts_the_stream() {
    let config = temp_file("load.yaml", THREE_STAGES);
    let report_path = config.dir().join("report.json");
    let output = run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .arg("--report")
            .arg(&report_path),
    );
    let stream = timestamps(&output.stdout);
    let report = read_report(&report_path);
    let stages = reported_stages(&report);
    assert_eq!(stages.len(), 3);
    // Windows once ramped (30 s, the default ramp): from 30 s into each stage to its end.
    for (index, (target, window)) in [
        (2000.0, (30, 120)),
        (8000.0, (150, 240)),
        (4000.0, (270, 360)),
    ]
    .into_iter()
    .enumerate()
    {
        let counted = rate_between(&stream, window.0, window.1);
        within_five_percent(&format!("stage {}", index + 1), counted, target);
        // The report counts the same published events.
        assert_eq!(stages[index].0, target);
        assert!(
            (stages[index].1 - counted).abs() < 1e-6,
            "report {} vs stream {counted}",
            stages[index].1
        );
    }
    let first = &report["load_stages"][0];
    assert_eq!(first["start"], "2026-03-02T10:00:00+00:00");
    assert_eq!(first["duration"], 120.0);
    assert_eq!(
        report["load_stages"][2]["start"],
        "2026-03-02T10:04:00+00:00"
    );
    // Without simulation.duration the doors close after the last stage: nobody arrives later.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("doors close at 2026-03-02T10:06:00"),
        "{stderr}"
    );
    assert!(
        std::str::from_utf8(&output.stdout)
            .unwrap()
            .lines()
            .filter(|line| line.contains("customer/enter"))
            .all(|line| ts_of(line) < START_S + 360)
    );
    assert_eq!(report["inside_at_end"], 0);
    // The stderr table: a line per stage.
    assert!(
        stderr.contains("load stage 2") && stderr.contains("target 8000/s"),
        "{stderr}"
    );
}

/// Two sources of their own ids, a fleet of four stores run as two shards: each shard publishes
/// its stores' share, the shards together the target; and a shard's run is byte-identical when
/// repeated.
#[test]
fn a_fleet_split_over_shards_with_two_sources_shares_the_target() {
    let config = temp_file(
        "fleet.yaml",
        "
simulation:
  seed: 5
  speed: max
  start: 2026-03-02T10:00:00Z
fleet:
  stores: 4
sources:
  - type: random_walk
    id_prefix: a
  - type: random_walk
    id_prefix: b
    mean_visit: 5m
    mean_dwell: 10s
sinks:
  - type: stdout
load:
  stages:
    - {duration: 2m, events_per_second: 3000}
    - {duration: 2m, events_per_second: 1000}
",
    );
    let run_shard = |shard: &str| {
        let report = config.dir().join(format!("report-{}.json", &shard[..1]));
        let output = run_ok(
            customersim()
                .args(["run", "--config"])
                .arg(&config)
                .args(["--shard", shard, "--report"])
                .arg(&report),
        );
        (output.stdout, read_report(&report))
    };
    let (first, first_report) = run_shard("0/2");
    let (second, second_report) = run_shard("1/2");
    let (mut both, mut reported) = (Vec::new(), vec![0.0; 2]);
    for (stdout, report) in [(&first, &first_report), (&second, &second_report)] {
        both.extend(timestamps(stdout));
        for (index, (target, measured)) in reported_stages(report).into_iter().enumerate() {
            // Each shard runs two of the four stores: half of the target.
            within_five_percent(
                &format!("a shard's stage {}", index + 1),
                measured,
                target / 2.0,
            );
            reported[index] += measured;
        }
    }
    for (index, (target, window)) in [(3000.0, (30, 120)), (1000.0, (150, 240))]
        .into_iter()
        .enumerate()
    {
        let counted = rate_between(&both, window.0, window.1);
        within_five_percent(&format!("stage {}", index + 1), counted, target);
        assert!((reported[index] - counted).abs() < 1e-6);
    }
    let (again, _) = run_shard("0/2");
    assert!(
        first == again,
        "a seeded --speed max run repeats byte for byte"
    );
}

/// The purposeful shoppers of the demo store (its departments; no checkouts to queue at, which
/// could not serve these crowds), with the 45 s ramp the log asks for there.
#[test]
fn shopping_trips_in_the_demo_store_hold_their_targets() {
    let demo: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../configs/retail-demo.yaml")).unwrap();
    let store = serde_yaml::to_string(&demo["store"]).unwrap();
    let indented: String = store.lines().map(|line| format!("  {line}\n")).collect();
    let config = temp_file(
        "demo.yaml",
        &format!(
            "
simulation:
  seed: 3
  speed: max
  start: {START}
store:
{indented}topics:
  focus: customer/focus
sources:
  - type: shopping_trip
    checkout_share: 0
sinks:
  - type: stdout
load:
  stages:
    - {{duration: 2m, events_per_second: 500}}
    - {{duration: 2m, events_per_second: 2000}}
    - {{duration: 2m, events_per_second: 1000}}
  ramp: 45s
"
        ),
    );
    let report_path = config.dir().join("report.json");
    let output = run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .arg("--report")
            .arg(&report_path),
    );
    let stream = timestamps(&output.stdout);
    for (index, (target, window)) in [
        (500.0, (45, 120)),
        (2000.0, (165, 240)),
        (1000.0, (285, 360)),
    ]
    .into_iter()
    .enumerate()
    {
        within_five_percent(
            &format!("stage {}", index + 1),
            rate_between(&stream, window.0, window.1),
            target,
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("load.ramp"),
        "no warning with 45 s: {stderr}"
    );
    assert_eq!(reported_stages(&read_report(&report_path)).len(), 3);
}

/// At speed 1 a 2-minute stage publishes its target in real time: counted from the lines as
/// they are read, the stage's 90 s once ramped take 90 wall seconds. The run is stopped with
/// SIGTERM once the stage is over (its report is still written).
#[test]
fn a_two_minute_stage_holds_its_target_at_speed_1() {
    let config = temp_file(
        "speed1.yaml",
        &format!(
            "
simulation:
  seed: 2
  speed: 1
  start: {START}
sources:
  - type: random_walk
sinks:
  - type: stdout
load:
  stages:
    - {{duration: 2m, events_per_second: 1000}}
    - {{duration: 1m, events_per_second: 1000}}
"
        ),
    );
    let report_path = config.dir().join("report.json");
    let process = Process::start(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .arg("--report")
            .arg(&report_path),
        StdoutMode::Lines,
    );
    let (mut stream, mut ramped_at, mut ended_at) = (Vec::new(), None, None);
    while ended_at.is_none() {
        let line = process
            .lines()
            .recv_timeout(Duration::from_secs(30))
            .expect("events keep coming at speed 1");
        let ts = ts_of(&line.text);
        if ts >= START_S + 30 && ramped_at.is_none() {
            ramped_at = Some(line.read_at);
        }
        if ts >= START_S + 121 {
            ended_at = Some(line.read_at);
        }
        stream.push(ts);
    }
    let finished = process.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let wall = ended_at
        .unwrap()
        .duration_since(ramped_at.unwrap())
        .unwrap_or_default()
        .as_secs_f64();
    assert!(
        (89.0..94.0).contains(&wall),
        "91 simulated seconds took {wall:.1} s of wall time"
    );
    let counted = rate_between(&stream, 30, 120);
    within_five_percent("the 2-minute stage", counted, 1000.0);
    let report = read_report(&report_path);
    let stages = &report["load_stages"];
    let reported = stages[0]["events_per_second"].as_f64().unwrap();
    assert!((reported - counted).abs() < 1e-6, "{reported} vs {counted}");
    // Stopped before the second stage's ramp ended: not measured.
    assert!(stages[1]["events_per_second"].is_null(), "{stages}");
    assert!(report["publish_lateness_seconds"].is_object());
}

#[test]
fn validate_shows_the_resolved_stages_and_the_duration_they_give_the_run() {
    let config = temp_file("load.yaml", THREE_STAGES);
    let output = run_ok(customersim().arg("validate").arg("--config").arg(&config));
    let text = String::from_utf8(output.stdout).unwrap();
    let shown: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(shown["load"]["ramp"], "30s");
    assert_eq!(shown["load"]["stages"][1]["duration"], "2m");
    assert_eq!(shown["load"]["stages"][1]["events_per_second"], 8000.0);
    assert_eq!(shown["simulation"]["duration"], "6m");
    assert!(
        text.contains("#   stage 2: 2m to 4m: 2000/s to 8000/s over 30s, then 8000/s"),
        "{text}"
    );
    assert!(text.contains("the run ends with the last stage"), "{text}");
    // A duration of its own is kept; the last target holds until then.
    let output = run_ok(
        customersim()
            .arg("validate")
            .arg("--config")
            .arg(&config)
            .env("SIMULATION_DURATION", "10m"),
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("duration: 10m"), "{text}");
    assert!(
        text.contains("then 4000/s until the doors close at 10m"),
        "{text}"
    );
}

fn refused(config: &TempFile, naming: &[&str]) {
    for command in ["validate", "run"] {
        let (_, stderr) = run_failing(customersim().arg(command).arg("--config").arg(config), 2);
        for name in naming {
            assert!(
                stderr.contains(name),
                "{command}: {name} not named: {stderr}"
            );
        }
    }
}

#[test]
fn time_of_day_and_load_stages_are_refused_together_naming_both() {
    for (key, value) in [
        (
            "hourly_profile",
            "[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 2, 2, 2, 2, 3, 3, 1, 1, 1, 1]",
        ),
        ("opening_hours", "[\"08:00\", \"21:00\"]"),
    ] {
        for source in ["random_walk", "shopping_trip"] {
            let store = if source == "shopping_trip" {
                "store:\n  width: 20\n  height: 20\n  zones: [{name: A, kind: department, area: [5, 5, 10, 10]}]\n"
            } else {
                ""
            };
            let config = temp_file(
                "both.yaml",
                &format!(
                    "{store}sources:\n  - type: {source}\n    {key}: {value}\nsinks:\n  - type: stdout\nload:\n  stages: [{{duration: 1m, events_per_second: 100}}]\n"
                ),
            );
            refused(&config, &[key, "`load:`", "sources[0]"]);
        }
    }
}

#[test]
fn bad_stages_and_stages_nobody_follows_are_refused() {
    let dir = temp_dir("load");
    let cases = [
        (
            "load:\n  stages: []\n",
            vec!["load.stages", "at least one stage"],
        ),
        (
            "load:\n  stages: [{duration: 1m, events_per_second: 10}, {duration: 1m, events_per_second: -5}]\n",
            vec!["load.stages[1].events_per_second"],
        ),
        (
            "load:\n  stages: [{duration: 0s, events_per_second: 10}]\n",
            vec!["load.stages[0].duration"],
        ),
        (
            "load:\n  stages: [{duration: 1m, events_per_second: 10}]\n  ramp: soon\n",
            vec!["load.ramp"],
        ),
        (
            "load:\n  stages: [{duration: 1m, events_per_second: 10, users: 5}]\n",
            vec!["users"],
        ),
    ];
    for (index, (load, naming)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{index}.yaml"));
        std::fs::write(
            &path,
            format!("sources:\n  - type: random_walk\nsinks:\n  - type: stdout\n{load}"),
        )
        .unwrap();
        let (_, stderr) = run_failing(customersim().arg("validate").arg("--config").arg(&path), 2);
        for name in naming {
            assert!(stderr.contains(name), "{load}: {name} not named: {stderr}");
        }
    }
    // A crowd beyond what one store may hold is refused before anything is published.
    let huge = temp_file(
        "huge.yaml",
        "simulation: {speed: max}\nsources:\n  - type: random_walk\nsinks:\n  - type: stdout\nload:\n  stages: [{duration: 1m, events_per_second: 100}, {duration: 1m, events_per_second: 1000000}]\n",
    );
    let (output, stderr) = run_failing(customersim().arg("run").arg("--config").arg(&huge), 2);
    assert!(
        stderr.contains("load.stages[1].events_per_second") && stderr.contains("fleet"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    let nobody = temp_file(
        "nobody.yaml",
        "sources:\n  - type: http_ingress\n    listen: 127.0.0.1:0\nsinks:\n  - type: stdout\nload:\n  stages: [{duration: 1m, events_per_second: 10}]\n",
    );
    refused(
        &nobody,
        &["load:", "no source of this pipeline follows load stages"],
    );
}

#[test]
fn thresholds_on_events_per_second_judge_the_slowest_and_the_fastest_stage() {
    let run = |thresholds: &str| {
        let config = temp_file(
            "pipeline.yaml",
            &format!("{THREE_STAGES}thresholds:\n  events_per_second: [{thresholds}]\n"),
        );
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .args(["--speed", "max", "--seed", "5"])
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    // Every stage within 5% of its target: the slowest at least 0.95 × 2000, the fastest at
    // most 1.05 × 8000.
    let output = run("\"min >= 1900\", \"max <= 8400\", \"max >= 7600\"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.matches('✓').count(), 3, "{stderr}");
    // The slowest stage is far below 3000: breached, exit 99.
    let output = run("\"min >= 3000\"");
    assert_eq!(
        output.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
