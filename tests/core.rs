//! The core pipeline end to end through the real binary: the event contract, the walk, the
//! occupancy target, determinism, precedence, signals, messages and every bad-input case. The
//! scheduler's timing (CONSUME_*, the virtual clock, fan-out, shutdown) is tested in process, on
//! a paused clock, in tests/pipeline_in_process.rs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use customersim_testkit::run::{clean_command, run_failing, run_ok, spawn_piped, terminate};
use customersim_testkit::stdout_sink::{Line, parse_lines};
use customersim_testkit::temp::{TempFile, temp_file};

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// A parsed payload, after checking its bytes are exactly what Python's json.dumps wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Enter,
    Move(i64, i64),
    Exit,
}

fn check_bytes(line: &Line) -> (String, i64, Seen) {
    let value: serde_json::Value = serde_json::from_str(&line.payload).expect("payload is JSON");
    let id = value["id"].as_str().expect("id is a string").to_string();
    let ts = value["ts"].as_i64().expect("ts is an integer");
    let (expected, seen) = match line.topic.as_str() {
        "customer/move" => {
            let (x, y) = (value["x"].as_i64().unwrap(), value["y"].as_i64().unwrap());
            (
                format!("{{\"id\": \"{id}\", \"ts\": {ts}, \"x\": {x}, \"y\": {y}}}"),
                Seen::Move(x, y),
            )
        }
        "customer/enter" => (format!("{{\"id\": \"{id}\", \"ts\": {ts}}}"), Seen::Enter),
        "customer/exit" => (format!("{{\"id\": \"{id}\", \"ts\": {ts}}}"), Seen::Exit),
        other => panic!("unexpected topic {other}"),
    };
    assert_eq!(line.payload, expected, "payload bytes and key order");
    assert!(
        id.bytes().all(|b| b.is_ascii_digit()),
        "generated ids are digits: {id}"
    );
    (id, ts, seen)
}

fn pipeline(extra_source: &str, extra_top: &str) -> TempFile {
    temp_file(
        "pipeline.yaml",
        &format!(
            "simulation: {{start: \"2026-03-01T09:00:00Z\"}}\nstore: {{width: 6, height: 10, door: [0, 0]}}\n{extra_top}\
             sources:\n  - type: random_walk\n{extra_source}sinks:\n  - type: stdout\n"
        ),
    )
}

#[test]
fn a_long_virtual_run_keeps_the_contract_and_the_walk_rules() {
    let config = pipeline("    average_in_store: 40\n", "");
    let output = run_ok(
        customersim()
            .args([
                "run",
                "--speed",
                "max",
                "--duration",
                "6h",
                "--seed",
                "7",
                "--config",
            ])
            .arg(&config),
    );
    let lines = parse_lines(&output.stdout);
    assert!(lines.len() > 20_000, "a busy store: {} events", lines.len());
    let mut inside: HashMap<String, (i64, i64, i64)> = HashMap::new();
    let (mut enters, mut exits, mut last_ts) = (0, 0, i64::MIN);
    for line in &lines {
        let (id, ts, seen) = check_bytes(line);
        assert!(ts >= last_ts, "global time order");
        last_ts = ts;
        match seen {
            Seen::Enter => {
                enters += 1;
                assert!(
                    inside.insert(id, (0, 0, ts)).is_none(),
                    "inside twice at once"
                );
            }
            Seen::Move(x, y) => {
                let (px, py, since) = inside[&id];
                assert!(
                    (0..6).contains(&x) && (0..10).contains(&y),
                    "inside the grid: {x},{y}"
                );
                assert!(
                    (x - px).abs() <= 1 && (y - py).abs() <= 1 && (x, y) != (px, py),
                    "to a neighbouring cell"
                );
                assert!(ts >= since, "per-shopper time order");
                inside.insert(id, (x, y, ts));
            }
            Seen::Exit => {
                exits += 1;
                let (px, py, _) = inside.remove(&id).expect("exit after an enter");
                assert_eq!((px, py), (0, 0), "leaves from the door");
            }
        }
    }
    assert!(inside.is_empty(), "everyone left after the doors closed");
    assert_eq!(enters, exits);
    let start = 1_772_355_600; // 2026-03-01T09:00:00Z
    assert!(
        last_ts >= start + 6 * 3600 && last_ts < start + 6 * 3600 + 600,
        "last exit soon after closing: {last_ts}"
    );
}

#[test]
fn occupancy_over_a_simulated_day_meets_the_target() {
    for target in [8.0, 300.0] {
        let config = pipeline(
            &format!("    average_in_store: {target}\n    mean_dwell: 3m\n"),
            "",
        );
        let output = run_ok(
            customersim()
                .args([
                    "run",
                    "--speed",
                    "max",
                    "--duration",
                    "24h",
                    "--seed",
                    "3",
                    "--config",
                ])
                .arg(&config),
        );
        let lines = parse_lines(&output.stdout);
        let start = 1_772_355_600i64;
        let end = start + 86_400;
        let (mut count, mut last, mut area) = (0i64, start, 0i64);
        for line in &lines {
            let (_, ts, seen) = check_bytes(line);
            if ts >= end {
                break;
            }
            area += count * (ts - last);
            last = ts;
            match seen {
                Seen::Enter => count += 1,
                Seen::Exit => count -= 1,
                Seen::Move(..) => {}
            }
        }
        area += count * (end - last);
        let mean = area as f64 / 86_400.0;
        assert!(
            (mean / target - 1.0).abs() <= 0.10,
            "target {target}: mean inside {mean:.2}"
        );
    }
}

fn events_for(args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let config = pipeline("    average_in_store: 25\n", "");
    let mut command = customersim();
    command
        .args(["run", "--speed", "max", "--duration", "1h", "--config"])
        .arg(&config)
        .args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    run_ok(&mut command).stdout
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = events_for(&["--seed", "11"], &[]);
    assert!(!a.is_empty());
    assert_eq!(a, events_for(&["--seed", "11"], &[]));
    assert_ne!(a, events_for(&["--seed", "12"], &[]));
}

#[test]
fn a_run_without_a_seed_logs_the_seed_it_drew() {
    let config = pipeline("", "");
    let output = run_ok(
        customersim()
            .args(["run", "--speed", "max", "--duration", "10m", "--config"])
            .arg(&config),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seed = stderr
        .split("pass --seed ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .expect("seed logged");
    let replay = run_ok(
        customersim()
            .args([
                "run",
                "--speed",
                "max",
                "--duration",
                "10m",
                "--seed",
                seed,
                "--config",
            ])
            .arg(&config),
    );
    assert_eq!(
        output.stdout, replay.stdout,
        "the logged seed replays the run"
    );
}

#[test]
fn flags_beat_environment_beats_yaml() {
    let seed6 = events_for(&["--seed", "6"], &[]);
    assert_eq!(
        events_for(&["--seed", "6"], &[("SIMULATION_SEED", "5")]),
        seed6,
        "flag beats env"
    );
    assert_eq!(
        events_for(&[], &[("SIMULATION_SEED", "6")]),
        seed6,
        "env seeds the run"
    );
    // YAML says 6 wide; the environment narrows the store to 2.
    let narrow = events_for(
        &["--seed", "6"],
        &[("STORE_WIDTH", "2"), ("MOVE_TOPIC", "shop/moves")],
    );
    let lines = parse_lines(&narrow);
    let moves: Vec<_> = lines.iter().filter(|l| l.topic == "shop/moves").collect();
    assert!(!moves.is_empty());
    assert!(moves.iter().all(|l| {
        serde_json::from_str::<serde_json::Value>(&l.payload).unwrap()["x"]
            .as_i64()
            .unwrap()
            < 2
    }));
}

#[test]
fn sigterm_stops_taking_work_flushes_and_exits_zero() {
    let config = pipeline(
        "    average_in_store: 200\n    mean_dwell: 1s\n",
        "timeline: {consume_frequency: 0.05, consume_batch_size: 1000}\n",
    );
    let mut child = spawn_piped(
        customersim()
            .args(["run", "--speed", "20", "--seed", "1", "--config"])
            .arg(&config),
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"topic\""), "{first}");
    terminate(&child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "exit 0 after SIGTERM: {status:?}\n{stderr}"
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        rest.is_empty() || rest.ends_with('\n'),
        "only whole lines were written"
    );
    parse_lines(rest.as_bytes());
}

#[test]
fn a_timeline_falling_behind_warns_once_naming_the_settings() {
    let config = pipeline(
        "    average_in_store: 300\n    mean_dwell: 1s\n",
        "timeline: {consume_frequency: 0.2, consume_batch_size: 1}\n",
    );
    let mut child = customersim()
        .args(["run", "--speed", "1", "--seed", "1", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut warning = None;
    let mut line = String::new();
    while Instant::now() < deadline && stderr.read_line(&mut line).unwrap() > 0 {
        if line.contains("falling behind") {
            warning = Some(line.clone());
            break;
        }
        line.clear();
    }
    std::thread::sleep(Duration::from_secs(2));
    terminate(&child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    child.wait().unwrap();
    let warning = warning.expect("a falling-behind warning");
    assert!(
        warning.contains("CONSUME_BATCH_SIZE")
            && warning.contains("CONSUME_FREQUENCY")
            && warning.contains(" s"),
        "{warning}"
    );
    assert!(!rest.contains("falling behind"), "warned once: {rest}");
}

fn expect_exit_2(command: &mut std::process::Command, needles: &[&str]) {
    let (output, stderr) = run_failing(command, 2);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "message names {needle:?}: {stderr}"
        );
    }
    assert!(output.stdout.is_empty(), "nothing published");
}

#[test]
fn bad_input_exits_2_with_one_clear_message() {
    let good = pipeline("", "");
    // Each bad file in a folder of its own, kept until the end of the test.
    let mut files = Vec::new();
    let mut config = |text: &str| {
        let file = temp_file("bad.yaml", text);
        let path = file.to_path_buf();
        files.push(file);
        path
    };
    // (pipeline file, extra arguments, environment, what the message must name)
    type Case<'a> = (
        std::path::PathBuf,
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        &'a [&'a str],
    );
    let cases: Vec<Case> = vec![
        (
            config("store:\n  width: 6\n  hieght: 4\nsinks: [{type: stdout}]\n"),
            &[],
            &[],
            &["hieght", "line 3", "bad.yaml"],
        ),
        (
            config("sources: [{type: randomwalk}]\nsinks: [{type: stdout}]\n"),
            &[],
            &[],
            &["randomwalk", "random_walk"],
        ),
        (
            config("sources:\n  - type: random_walk\n    stesp: 3\nsinks: [{type: stdout}]\n"),
            &[],
            &[],
            &["sources[0] (type: random_walk)", "stesp", "line 3"],
        ),
        (
            config(
                "sources:\n  - type: random_walk\n    average_in_store: -3\nsinks: [{type: stdout}]\n",
            ),
            &[],
            &[],
            &["average_in_store"],
        ),
        (
            good.to_path_buf(),
            &[],
            &[("CONSUME_BATCH_SIZE", "lots")],
            &["CONSUME_BATCH_SIZE", "lots"],
        ),
        (
            good.to_path_buf(),
            &[],
            &[("CUSTOMERS_AVERAGE_IN_STORE", "x7")],
            &["CUSTOMERS_AVERAGE_IN_STORE", "x7"],
        ),
        (
            good.to_path_buf(),
            &[],
            &[("LOG_LEVEL", "LOUD")],
            &["LOG_LEVEL", "LOUD"],
        ),
        (
            "/nonexistent/pipeline.yaml".into(),
            &[],
            &[],
            &["/nonexistent/pipeline.yaml"],
        ),
        (good.to_path_buf(), &["--speed", "warp"], &[], &["warp"]),
        (
            good.to_path_buf(),
            &["--sink", "pigeon"],
            &[],
            &["pigeon", "stdout"],
        ),
    ];
    for (file, args, env, needles) in cases {
        for command in ["run", "validate"] {
            if command == "validate" && !args.is_empty() {
                continue; // run-only flags
            }
            let mut process = customersim();
            process.args([command, "--config"]).arg(&file).args(args);
            for (key, value) in env {
                process.env(key, value);
            }
            expect_exit_2(&mut process, needles);
        }
    }
}

#[test]
fn validate_prints_the_resolved_config_with_defaults() {
    let config = pipeline("    average_in_store: 9\n", "");
    let output = run_ok(
        customersim()
            .args(["validate", "--config"])
            .arg(&config)
            .env("STORE_HEIGHT", "12"),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let resolved: serde_json::Value = serde_json::to_value(serde_yaml_value(&text)).unwrap();
    assert_eq!(resolved["store"]["height"], 12);
    assert_eq!(resolved["sources"][0]["average_in_store"], 9.0);
    assert_eq!(
        resolved["sources"][0]["mean_visit"], "10m",
        "defaults are filled in"
    );
    assert_eq!(resolved["timeline"]["consume_from"], "latest");
}

fn serde_yaml_value(text: &str) -> serde_json::Value {
    // The YAML printed by validate is plain block YAML: parse it with the library's YAML parser.
    let value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    serde_json::to_value(value).unwrap()
}

#[test]
fn log_filename_gets_the_logs_too() {
    let log = temp_file("run.log", "");
    let config = pipeline("", "");
    run_ok(
        customersim()
            .args([
                "run",
                "--speed",
                "max",
                "--duration",
                "5m",
                "--seed",
                "1",
                "--config",
            ])
            .arg(&config)
            .env("LOG_FILENAME", &log),
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("starting at") && text.contains("stopped:"),
        "{text}"
    );
}

#[test]
fn plugins_lists_exactly_the_registered_plugins() {
    let output = run_ok(customersim().arg("plugins"));
    let names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            line.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        names,
        [
            "source customer_list",
            "source http_ingress",
            "source random_walk",
            "source shopping_trip",
            "sink amqp",
            "sink live_view",
            "sink mqtt",
            "sink stdout",
            "timeline memory",
            "timeline redis"
        ]
    );
}

#[test]
fn a_reader_closing_stdout_stops_the_run_cleanly() {
    let config = pipeline("    average_in_store: 200\n    mean_dwell: 1s\n", "");
    let mut child = spawn_piped(
        customersim()
            .args(["run", "--speed", "max", "--seed", "1", "--config"])
            .arg(&config),
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout); // like `customersim run | head -1`
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit 0 when the reader goes away: {stderr}"
    );
    assert!(stderr.contains("the reader closed stdout"), "{stderr}");
}

#[test]
fn validate_says_a_seed_is_drawn_per_run_and_shows_none() {
    let config = pipeline("", "");
    let output = run_ok(customersim().args(["validate", "--config"]).arg(&config));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("seed: null"), "{shown}");
    assert!(shown.contains("each run draws one at random"), "{shown}");

    let seeded = run_ok(
        customersim()
            .args(["validate", "--config"])
            .arg(&config)
            .env("SIMULATION_SEED", "77"),
    );
    let shown = String::from_utf8_lossy(&seeded.stdout);
    assert!(shown.contains("seed: 77"), "{shown}");
    assert!(!shown.contains("draws one at random"), "{shown}");
}

#[test]
fn an_error_is_printed_once_and_also_logged_to_the_log_file() {
    let log = temp_file("errors-once.log", "");
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate", "--config", "/nonexistent/pipeline.yaml"])
            .env("LOG_FILENAME", log.path()),
        2,
    );
    assert_eq!(
        stderr.matches("/nonexistent/pipeline.yaml").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(logged.contains("/nonexistent/pipeline.yaml"), "{logged}");
}
