//! What the observation model costs: `cargo bench --bench sensors`.
//!
//! Runs the release binary on the demo store (`configs/retail-demo.yaml`, its shoppers and
//! customer list), `--speed max`, the stdout sink writing to /dev/null, three rounds, each
//! measuring the same run (same seed, same simulated days) in turn:
//! - **off**: no `sensors:`;
//! - **on**: every fault at once but thinning (noise, jitter, bursts of drops, duplicates,
//!   reordering, log-normal delays, clock skew and drift, missed doors), no truth topics; drops
//!   and duplicates are rare and about cancel out, so both runs publish about as many events.
//!
//! Each figure is the difference of a 5-day and a 40-day run (about 7 million events between
//! them: a few seconds), so the process start and the path tables cancel out. Prints the median and the spread (lowest–highest) of the events per second
//! each way, and of the ratio on/off within a round (target: at least 0.85), and the ratio of the
//! true events handed to the stages per second (the same simulated run in less or more wall time).

use std::io::Read;
use std::process::Stdio;
use std::time::Instant;

use customersim_testkit::run::clean_command;
use customersim_testkit::temp::temp_file;

const ROUNDS: usize = 3;

const SENSORS: &str = "
sensors:
  enabled: true
  noise: 15
  jitter: 400ms
  drop: {probability: 0.02, burst: 3}
  duplicate: 0.02
  reorder: {probability: 0.1, window: 5s}
  delay: {mean: 800ms, distribution: lognormal}
  clock: {skew: 3s, drift_ppm: 200}
  missed_doors: 0.01
";

struct RunFigures {
    seconds: f64,
    events: u64,
}

/// The demo pipeline, its customer list by absolute path, with `extra` appended.
fn demo(extra: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/retail-demo.yaml"
    ))
    .unwrap();
    text.replace(
        "path: retail-demo-customers.csv",
        concat!(
            "path: ",
            env!("CARGO_MANIFEST_DIR"),
            "/configs/retail-demo-customers.csv"
        ),
    ) + extra
}

fn run(duration: &str, sensors: bool) -> RunFigures {
    let config = temp_file("bench.yaml", &demo(if sensors { SENSORS } else { "" }));
    let started = Instant::now();
    let mut child = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--sink", "stdout", "--speed", "max", "--seed", "42"])
        .args(["--start", "2026-03-02T08:00:00Z", "--duration", duration])
        .env("LOG_LEVEL", "INFO")
        .stdout(Stdio::from(std::fs::File::create("/dev/null").unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let status = child.wait().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "customersim failed:\n{log}");
    let events = log
        .split("stopped:")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no event count in the log:\n{log}"));
    RunFigures { seconds, events }
}

/// (published events per second, wall seconds of the simulated 35 days between the two runs).
fn throughput(sensors: bool) -> (f64, f64) {
    let short = run("5d", sensors);
    let long = run("40d", sensors);
    let seconds = long.seconds - short.seconds;
    ((long.events - short.events) as f64 / seconds, seconds)
}

/// "median (lowest–highest)".
fn spread(mut values: Vec<f64>, digits: usize) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{:.digits$} ({:.digits$}–{:.digits$})",
        values[values.len() / 2],
        values[0],
        values[values.len() - 1]
    )
}

fn main() {
    let (mut off, mut on, mut ratios, mut true_ratios) = (vec![], vec![], vec![], vec![]);
    for round in 1..=ROUNDS {
        let (bare, bare_seconds) = throughput(false);
        let (observed, observed_seconds) = throughput(true);
        println!(
            "round {round}: off {bare:.0} events/s, on {observed:.0} events/s (ratio {:.3}); \
             the same 35 simulated days in {bare_seconds:.2} s off, {observed_seconds:.2} s on",
            observed / bare
        );
        off.push(bare / 1e6);
        on.push(observed / 1e6);
        ratios.push(observed / bare);
        true_ratios.push(bare_seconds / observed_seconds);
    }
    println!("sensors, demo store, --speed max, {ROUNDS} rounds, median (lowest–highest):");
    println!("  sensors off: {} M events/s", spread(off, 3));
    println!("  sensors on:  {} M events/s", spread(on, 3));
    println!(
        "  ratio on/off of the published events/s: {} (target ≥ 0.85)",
        spread(ratios, 3)
    );
    println!(
        "  ratio on/off of the true events/s (wall time off/on): {}",
        spread(true_ratios, 3)
    );
}
