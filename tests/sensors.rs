//! The observation model (`sensors:`): the truth topics carry exactly what a run without sensors
//! publishes; each fault is injected at the rate it is set to; the observed stream is the same at
//! any speed and never leaves the store; a bad value exits 2 naming its key.

use std::collections::BTreeMap;
use std::process::Command;

use customersim_testkit::run::{clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::{Line, parse_lines};
use customersim_testkit::temp::{temp_dir, temp_file};
use serde_json::Value;

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// Every fault at once, as a noisy indoor positioning system might.
const NOISY: &str = "
sensors:
  enabled: true
  noise: 15
  interval: 1500ms
  jitter: 400ms
  drop: {probability: 0.1, burst: 3}
  duplicate: 0.05
  reorder: {probability: 0.1, window: 5s}
  delay: {mean: 800ms, distribution: lognormal, sigma: 0.7}
  clock: {skew: 3s, drift_ppm: 200}
  missed_doors: 0.1
";

/// The demo store's pipeline (its customer list by absolute path), with the truth topics when
/// `truth` and `extra` appended.
fn demo(truth: bool, extra: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/retail-demo.yaml"
    ))
    .unwrap();
    let mut text = text.replace(
        "path: retail-demo-customers.csv",
        concat!(
            "path: ",
            env!("CARGO_MANIFEST_DIR"),
            "/configs/retail-demo-customers.csv"
        ),
    );
    if truth {
        let focus = text
            .lines()
            .find(|line| line.starts_with("  focus: customer/focus"))
            .expect("the demo's focus topic")
            .to_string();
        text = text.replace(
            &focus,
            "  focus: customer/focus\n  truth:\n    enter: truth/enter\n    move: truth/move\n    \
             exit: truth/exit\n    focus: truth/focus",
        );
    }
    text + extra
}

/// Runs `config` with the stdout sink: its lines and its run report.
fn run(config: &str, args: &[&str]) -> (Vec<Line>, Value) {
    let file = temp_file("sensors.yaml", config);
    let dir = temp_dir("sensors");
    let report = dir.path().join("report.json");
    let output = run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(file.path())
            .args(["--sink", "stdout", "--start", "2026-03-02T10:00:00Z"])
            .args(args)
            .arg("--report")
            .arg(&report),
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (parse_lines(&output.stdout), report)
}

#[test]
fn the_truth_topics_carry_the_run_without_sensors_byte_for_byte() {
    let args = ["--speed", "max", "--duration", "2h", "--seed", "42"];
    let (clean, _) = run(&demo(false, ""), &args);
    let (noisy, report) = run(&demo(true, NOISY), &args);
    let truth: Vec<Line> = noisy
        .iter()
        .filter_map(|line| {
            let kind = line.topic.strip_prefix("truth/")?;
            Some(Line {
                topic: format!("customer/{kind}"),
                payload: line.payload.clone(),
            })
        })
        .collect();
    assert!(clean.len() > 10_000, "{} events", clean.len());
    assert_eq!(truth.len(), clean.len());
    assert!(
        truth == clean,
        "the truth copies differ from the run without sensors"
    );
    // The observed stream is another one: fewer moves (thinned, dropped), other positions.
    let observed: Vec<&Line> = noisy
        .iter()
        .filter(|line| line.topic.starts_with("customer/"))
        .collect();
    let moves = |lines: &mut dyn Iterator<Item = &Line>| {
        lines.filter(|line| line.topic == "customer/move").count()
    };
    assert!(moves(&mut observed.iter().copied()) < moves(&mut clean.iter()));
    // Focus is ground truth: the same on its usual topic with sensors on.
    let focus = |lines: &mut dyn Iterator<Item = &Line>| -> Vec<String> {
        lines
            .filter(|line| line.topic == "customer/focus")
            .map(|line| line.payload.clone())
            .collect()
    };
    assert_eq!(
        focus(&mut observed.iter().copied()),
        focus(&mut clean.iter())
    );
    // The report counts what was injected and tells the truth topics apart.
    let sensors = &report["sensors"];
    for fault in [
        "thinned",
        "noisy",
        "dropped",
        "duplicated",
        "reordered",
        "delayed",
        "skewed",
        "missed_doors",
    ] {
        assert!(sensors[fault].as_u64().unwrap() > 0, "{fault}: {sensors}");
    }
    assert_eq!(
        report["events_per_topic"]["truth/move"].as_u64().unwrap(),
        sensors["reports"].as_u64().unwrap()
    );
}

#[test]
fn the_observed_stream_is_the_same_at_any_speed_and_stays_in_the_store() {
    let config = demo(true, &NOISY.replace("noise: 15", "noise: 400"));
    let args = |speed| ["--speed", speed, "--duration", "10m", "--seed", "5"];
    let (fast, report) = run(&config, &args("max"));
    let (paced, _) = run(&config, &args("300"));
    assert!(fast.len() > 500, "{} events", fast.len());
    assert!(
        fast == paced,
        "--speed max and --speed 300 published other bytes"
    );
    assert!(report["sensors"]["noisy"].as_u64().unwrap() > 100);
    // The demo store is 1808 × 1315.
    for line in fast.iter().filter(|line| line.topic == "customer/move") {
        let payload: Value = serde_json::from_str(&line.payload).unwrap();
        let (x, y) = (
            payload["x"].as_i64().unwrap(),
            payload["y"].as_i64().unwrap(),
        );
        assert!(
            (0..1808).contains(&x) && (0..1315).contains(&y),
            "outside the store: {}",
            line.payload
        );
    }
}

/// Random walkers in a small store, many at once: 100,000 reports and more in a short run.
fn walkers(sensors: &str) -> String {
    format!(
        "store: {{width: 40, height: 40, door: [0, 0]}}\n\
         topics: {{truth: {{enter: truth/enter, exit: truth/exit}}}}\n\
         sources:\n  - type: random_walk\n    average_in_store: 300\n\
         sinks:\n  - type: stdout\n{sensors}"
    )
}

#[test]
fn each_fault_is_injected_at_its_rate_over_100000_reports() {
    let sensors = "sensors:\n  enabled: true\n  drop: {probability: 0.2, burst: 4}\n  \
                   duplicate: 0.1\n  reorder: {probability: 0.15, window: 3s}\n  \
                   missed_doors: 0.25\n  delay: {mean: 200ms}\n";
    let (lines, report) = run(
        &walkers(sensors),
        &["--speed", "max", "--duration", "3h", "--seed", "11"],
    );
    let count = |name: &str| report["sensors"][name].as_u64().unwrap() as f64;
    let per_topic = |topic: &str| lines.iter().filter(|line| line.topic == topic).count() as f64;
    let reports = count("reports");
    assert!(reports >= 100_000.0, "{reports} reports");
    let doors = per_topic("truth/enter") + per_topic("truth/exit");
    assert!(doors >= 5_000.0, "{doors} door events");
    let within = |name: &str, rate: f64, set: f64| {
        assert!(
            (rate / set - 1.0).abs() <= 0.05,
            "{name}: {rate:.4} for a setting of {set}"
        );
    };
    within("dropped", count("dropped") / reports, 0.2);
    within("missed_doors", count("missed_doors") / doors, 0.25);
    // Duplicates and holding back are drawn for every report that is sent.
    let sent = reports - count("dropped") + doors - count("missed_doors");
    within("duplicated", count("duplicated") / sent, 0.1);
    let copies = sent + count("duplicated");
    within("reordered", count("reordered") / copies, 0.15);
    // The stream agrees with the counts.
    let observed =
        per_topic("customer/move") + per_topic("customer/enter") + per_topic("customer/exit");
    assert_eq!(observed, copies);
    let mut by_topic = BTreeMap::new();
    for line in &lines {
        *by_topic.entry(line.topic.as_str()).or_insert(0u64) += 1;
    }
    assert!(!by_topic.contains_key("truth/move"), "{by_topic:?}");
}

#[test]
fn a_bad_sensor_value_exits_2_naming_its_key() {
    for (sensors, key) in [
        (
            "sensors: {enabled: true, duplicate: 1.5}",
            "sensors.duplicate",
        ),
        (
            "sensors: {drop: {probability: 0.9, burst: 2}}",
            "sensors.drop.burst",
        ),
        ("sensors: {noise: -1}", "sensors.noise"),
        ("sensors: {delay: {mean: 3d}}", "sensors.delay.mean"),
    ] {
        let file = temp_file("bad.yaml", &walkers(&format!("{sensors}\n")));
        let (_, stderr) = run_failing(
            customersim()
                .args(["run", "--config"])
                .arg(file.path())
                .args(["--speed", "max", "--duration", "1m"]),
            2,
        );
        assert!(stderr.contains(key), "{sensors}: {stderr}");
    }
    let file = temp_file("bad.yaml", &walkers("sensors: {enabled: true, burst: 3}\n"));
    let (_, stderr) = run_failing(
        customersim()
            .args(["run", "--config"])
            .arg(file.path())
            .args(["--speed", "max", "--duration", "1m"]),
        2,
    );
    assert!(stderr.contains("burst"), "{stderr}");
}

#[test]
fn the_redis_timeline_keeps_what_the_sensors_marked() {
    // The device clocks and the truth copies go through Redis members and come back the same:
    // the same bytes as with the memory timeline.
    let namespace = customersim_testkit::redis::Namespace::new("sensors");
    let memory = demo(true, NOISY);
    let redis = memory.replace(
        "timeline:\n  backend: memory\n",
        &format!(
            "timeline:\n  backend: redis\n  redis: {{key: {}}}\n",
            namespace.name()
        ),
    );
    assert_ne!(redis, memory, "the demo's timeline section moved");
    let args = ["--speed", "max", "--duration", "30m", "--seed", "9"];
    let (in_memory, _) = run(&memory, &args);
    let (in_redis, _) = run(&redis, &args);
    assert!(in_memory.len() > 1_000, "{} events", in_memory.len());
    assert!(
        in_memory
            .iter()
            .any(|line| line.topic.starts_with("truth/"))
    );
    assert!(
        in_redis == in_memory,
        "the redis timeline published other bytes"
    );
}

#[test]
fn the_asyncapi_document_lists_the_truth_channels() {
    let file = temp_file("sensors.yaml", &demo(true, NOISY));
    let output = run_ok(
        customersim()
            .args(["asyncapi", "--config"])
            .arg(file.path())
            .env("MQTT_HOST", "localhost"),
    );
    let text = String::from_utf8(output.stdout).unwrap();
    for (channel, message) in [
        ("truth-enter", "enter"),
        ("truth-move", "move"),
        ("truth-exit", "exit"),
        ("truth-focus", "focus"),
    ] {
        assert!(
            text.contains(&format!("  {channel}:\n    address: truth/{message}\n")),
            "{channel}:\n{text}"
        );
        assert!(text.contains(&format!("#/channels/{channel}/messages/{message}")));
    }
    // Without sensors there are no truth channels.
    let file = temp_file("plain.yaml", &demo(true, ""));
    let output = run_ok(
        customersim()
            .args(["asyncapi", "--config"])
            .arg(file.path())
            .env("MQTT_HOST", "localhost"),
    );
    assert!(!String::from_utf8(output.stdout).unwrap().contains("truth/"));
}

#[test]
fn the_live_view_shows_the_faults_so_far() {
    let port = customersim_testkit::net::free_port();
    let config = walkers(&format!(
        "  - type: live_view\n    listen: \"127.0.0.1:{port}\"\n\
         sensors:\n  enabled: true\n  drop: {{probability: 0.2, burst: 2}}\n  missed_doors: 0.2\n"
    ));
    let file = temp_file("view.yaml", &config);
    let mut command = customersim();
    command
        .args(["run", "--speed", "60", "--config"])
        .arg(file.path())
        .env("LOG_LEVEL", "warn");
    let process = customersim_testkit::run::Process::start(
        &mut command,
        customersim_testkit::run::StdoutMode::Discard,
    );
    let http = customersim_testkit::http::HttpClient::local(port);
    http.wait_until_healthy(std::time::Duration::from_secs(30));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let sensors = loop {
        let answer = http.get("/state");
        assert_eq!(answer.status, 200, "{}", answer.body);
        let state: Value = serde_json::from_str(&answer.body).unwrap();
        let sensors = state["checks"]["sensors"].clone();
        if sensors["dropped"].as_u64().unwrap_or(0) > 0 {
            break sensors;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no faults in /state: {state}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(sensors["reports"].as_u64().unwrap() >= sensors["dropped"].as_u64().unwrap());
    // The page shows them (a line of the Checks card).
    let script = http.get("/app.js");
    assert!(script.body.contains("showSensors"), "the page's script");
    drop(process);
}
