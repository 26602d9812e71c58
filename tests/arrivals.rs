//! Time of day and capacity of the simulated shoppers, through the real binary: arrivals follow
//! the hourly profile in the store's time zone (across a daylight saving time change), nobody
//! comes in outside the opening hours, the store never holds more than its capacity and the waits
//! outside are reported; bad values are refused naming the key.

use chrono::{DateTime, Timelike};
use chrono_tz::Tz;
use customersim_testkit::run::{clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::{TempFile, temp_file};

/// The binary under test, with a clean environment.
fn customersim() -> std::process::Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// A shop's day in weights per local hour: a lunch peak and a bigger evening peak. The 9 at 03:00
/// is outside the opening hours and must not matter.
const PROFILE: [f64; 24] = [
    0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.5, 2.0, 2.5, 4.0, 3.0, 2.0, 2.0, 3.0, 5.0, 6.0,
    4.0, 2.0, 0.0, 0.0, 0.0,
];
const ZONE: &str = "America/New_York";
/// Local midnight in New York, three weeks before the clocks go back (3 November 2024).
const START: &str = "2024-10-15T04:00:00Z";

/// A pipeline file of one `random_walk` source with these extra keys, in a temp file that lives
/// as long as the handle.
fn pipeline(extra: &str) -> TempFile {
    // Visits of two minutes and dwells far longer: shoppers mostly enter and leave, which keeps a
    // month of them quick to generate and read.
    let text = format!(
        "sources:\n  - type: random_walk\n    average_in_store: 6\n    mean_visit: 2m\n    \
         min_visit: 30s\n    mean_dwell: 30m\n{extra}sinks:\n  - type: stdout\n"
    );
    temp_file("arrivals.yaml", &text)
}

fn shaped(capacity: &str) -> String {
    let profile: Vec<String> = PROFILE.iter().map(f64::to_string).collect();
    format!(
        "    opening_hours: [\"08:00\", \"21:00\"]\n    hourly_profile: [{}]\n    timezone: {ZONE}\n{capacity}",
        profile.join(", ")
    )
}

/// Runs the pipeline for `duration` from [`START`]; returns the events as (local hour, topic,
/// id) and stderr.
fn run(config: &TempFile, duration: &str) -> (Vec<(usize, String, String)>, String) {
    let output = run_ok(
        customersim()
            .args(["run", "--speed", "max", "--seed", "42", "--start", START])
            .args(["--duration", duration, "--config"])
            .arg(config.path()),
    );
    let zone: Tz = ZONE.parse().unwrap();
    let events = parse_lines(&output.stdout)
        .into_iter()
        .map(|line| {
            let payload: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
            let ts = payload["ts"].as_i64().unwrap();
            let hour = DateTime::from_timestamp(ts, 0)
                .unwrap()
                .with_timezone(&zone)
                .hour() as usize;
            let id = payload["id"].as_str().unwrap().to_string();
            (hour, line.topic, id)
        })
        .collect();
    (events, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn arrivals_follow_the_hourly_profile_in_local_time_and_only_while_open() {
    let config = pipeline(&shaped(""));
    let (events, _) = run(&config, "30d");
    let mut enters_by_hour = [0u32; 24];
    for (hour, topic, _) in &events {
        if topic == "customer/enter" {
            enters_by_hour[*hour] += 1;
        }
    }
    // 6 inside on average over visits of 2 minutes: 180 arrivals per open hour on average, spread
    // over the 13 open hours by weight, on each of the 30 days (the run starts and ends at local
    // midnight).
    let open_weight: f64 = PROFILE[8..21].iter().sum();
    for (hour, count) in enters_by_hour.iter().enumerate() {
        let count = f64::from(*count);
        if (8..21).contains(&hour) {
            let expected = 180.0 * 13.0 * PROFILE[hour] / open_weight * 30.0;
            assert!(
                (count / expected - 1.0).abs() <= 0.10,
                "{hour}:00 local: {count} arrivals, expected {expected:.0} ±10%"
            );
        } else {
            assert_eq!(count, 0.0, "{hour}:00 local is outside the opening hours");
        }
    }
}

#[test]
fn a_full_store_never_holds_more_than_its_capacity_and_arrivals_wait_outside() {
    let config = pipeline(&shaped("    capacity: 5\n"));
    let (events, stderr) = run(&config, "3d");
    let (mut inside, mut most_inside) = (std::collections::HashSet::new(), 0);
    for (hour, topic, id) in &events {
        match topic.as_str() {
            "customer/enter" => {
                assert!((8..21).contains(hour), "entered at {hour}:00 local");
                assert!(inside.insert(id.clone()), "{id} inside twice");
            }
            "customer/exit" => assert!(inside.remove(id), "{id} left without entering"),
            _ => {}
        }
        most_inside = most_inside.max(inside.len());
        assert!(inside.len() <= 5, "{} inside, capacity 5", inside.len());
    }
    assert_eq!(most_inside, 5, "the evening peak fills the store");
    assert!(inside.is_empty(), "everyone left");
    let waited: u64 = stderr
        .lines()
        .find_map(|line| {
            line.split("random_walk: ")
                .nth(1)?
                .split_once(" arrivals waited outside")
        })
        .map(|(count, _)| count.parse().unwrap())
        .unwrap_or_else(|| panic!("no queue line in:\n{stderr}"));
    assert!(waited > 50, "{waited} arrivals waited");
    assert!(
        stderr.contains("at most 5 shoppers inside at once"),
        "{stderr}"
    );
}

#[test]
fn bad_arrival_values_exit_2_naming_the_key() {
    let weights = |count: usize, first: &str| {
        let mut list = vec!["1"; count];
        list[0] = first;
        format!("    hourly_profile: [{}]\n", list.join(", "))
    };
    let cases = [
        (
            weights(23, "1"),
            "hourly_profile: must have exactly 24 weights",
        ),
        (
            weights(24, "-1"),
            "hourly_profile: the weight of hour 0 is -1",
        ),
        (
            "    opening_hours: [\"08:00\", \"25:00\"]\n".to_string(),
            "opening_hours: \"25:00\" is not a time of day",
        ),
        (
            "    timezone: Europe/Atlantis\n".to_string(),
            "timezone: \"Europe/Atlantis\" is not an IANA time zone name",
        ),
        (
            "    capacity: 0\n".to_string(),
            "capacity: must be at least 1",
        ),
    ];
    for (extra, expected) in cases {
        let config = pipeline(&extra);
        let (output, stderr) = run_failing(
            customersim()
                .args(["run", "--speed", "max", "--duration", "1h", "--config"])
                .arg(config.path()),
            2,
        );
        assert!(output.stdout.is_empty(), "nothing published");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "one message: {stderr}");
        assert!(
            errors[0].contains("sources[0] (type: random_walk): ") && errors[0].contains(expected),
            "{expected:?} in {stderr}"
        );
    }
}

#[test]
fn a_run_whose_doors_close_while_the_store_is_closed_ends_when_the_last_shopper_left() {
    // Open 08:00–09:00; the doors close at 09:45, when the next arrival is tomorrow 08:00. The
    // run ends once the last shopper left, not when that arrival would have come (at speed 600,
    // 23 hours later would be over two wall minutes).
    let config = temp_file(
        "pipeline.yaml",
        "simulation: {seed: 3, speed: 600, start: \"2026-03-02T08:00:00Z\", duration: 1h45m}\n\
         sources: [{type: random_walk, average_in_store: 5, opening_hours: [\"08:00\", \"09:00\"]}]\n\
         sinks: [{type: stdout}]\n",
    );
    let started = std::time::Instant::now();
    let output = run_ok(customersim().args(["run", "--config"]).arg(&config));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let last = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .unwrap();
    assert!(last.contains("customer/exit"), "{last}");
}
