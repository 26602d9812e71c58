//! Core pipeline benchmark: `cargo bench --bench pipeline`.
//!
//! Runs the release binary with `--speed max` and the stdout sink writing to /dev/null, three
//! rounds, and prints the median and the spread (lowest–highest) of:
//! - random_walk on the original 6×10 grid: events per second with 10,000 shoppers inside
//!   (target: at least 2,000,000/s). Two runs of different simulated length are timed and the
//!   difference is used, so the warm-up (an empty store filling up) and process start cancel out;
//! - random_walk: peak RSS with 1,000,000 shoppers inside against an empty store measured in the
//!   same round (target: at most 200 bytes per shopper above the empty store). Peak RSS is the
//!   child's `ru_maxrss` from `wait4`;
//! - shopping_trip in the demo store (`configs/retail-demo.yaml`): events per second with
//!   10,000 shoppers inside, measured the same way (target: at least half of random_walk's), with
//!   a 300 ms checkout service so that three checkouts keep up with 450 paying shoppers a minute;
//! - shopping_trip: peak RSS per shopper with 1,000,000 inside (target: at most 300 bytes above
//!   the empty store): 3,500,000 arrive over 35-minute trips and the doors close after 10
//!   minutes, when about a million are inside; long browse steps keep the event count down;
//! - shopping_trip: the start-up time of its path tables for the demo store (target: < 200 ms),
//!   from its log line.

use std::process::Stdio;
use std::time::Instant;

use customersim_testkit::run::clean_command;
use customersim_testkit::temp::temp_file;

struct RunFigures {
    seconds: f64,
    events: u64,
    peak_inside: u64,
    max_rss_bytes: u64,
    /// shopping_trip's path-table start-up, from its log line.
    startup_ms: Option<f64>,
}

/// The `store:` section of the demo pipeline (`configs/retail-demo.yaml`).
fn demo_store() -> String {
    use serde_yaml::{Mapping, Value};
    let text = include_str!("../configs/retail-demo.yaml");
    let doc: Value = serde_yaml::from_str(text).unwrap();
    let mut store = Mapping::new();
    store.insert("store".into(), doc["store"].clone());
    serde_yaml::to_string(&store).unwrap()
}

/// A random_walk source on the default grid.
fn random_walk(target: u64) -> String {
    format!("sources:\n  - type: random_walk\n    average_in_store: {target}\n")
}

/// A shopping_trip source in the demo store; `extra` are more source keys.
fn shopping_trip(target: u64, extra: &str) -> String {
    format!(
        "{}sources:\n  - type: shopping_trip\n    average_in_store: {target}\n{extra}",
        demo_store()
    )
}

/// Fast checkouts, so lines do not grow with 10,000 inside.
const FAST_CHECKOUTS: &str = "    mean_service: 300ms\n";

/// Trips of about 35 minutes with few browse reports: the store fills with few events.
const LONG_QUIET_TRIPS: &str = "    mean_browse: 30m\n    browse_step: 10m\n    min_trip: 20m\n    max_trip: 60m\n    checkout_share: 0\n";

fn run(sources: &str, duration: &str) -> RunFigures {
    let text = format!(
        "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: {duration}}}\n\
         timeline: {{consume_frequency: 0, consume_batch_size: 10000}}\n\
         {sources}sinks: [{{type: stdout}}]\n"
    );
    let config = temp_file("bench.yaml", &text);
    let started = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports the peak RSS
    let child = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .args(["run", "--config"])
        .arg(&config)
        .env("LOG_LEVEL", "INFO")
        .stdout(Stdio::from(std::fs::File::create("/dev/null").unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(status, 0, "customersim failed:\n{log}");
    let number_after = |marker: &str| -> u64 {
        let rest = log
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("{marker:?} not in log:\n{log}"));
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let startup_ms = log.split("built in ").nth(1).map(|rest| {
        rest.split(' ')
            .next()
            .unwrap()
            .parse()
            .expect("milliseconds")
    });
    RunFigures {
        seconds,
        events: number_after("stopped:"),
        peak_inside: number_after("at most"),
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        startup_ms,
    }
}

/// Events per second with 10,000 inside: the difference of a 1 h and a 4 h run.
fn throughput(sources: &str) -> (f64, RunFigures) {
    let short = run(sources, "1h");
    let long = run(sources, "4h");
    let rate = (long.events - short.events) as f64 / (long.seconds - short.seconds);
    (rate, long)
}

/// Bytes per shopper at the peak of `full` above an empty store.
fn per_shopper(empty: &RunFigures, full: &RunFigures) -> f64 {
    (full.max_rss_bytes as f64 - empty.max_rss_bytes as f64) / full.peak_inside as f64
}

/// "median (lowest–highest)" of a few figures.
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
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list; this bench has no unit tests
    }
    println!(
        "customersim pipeline benchmark (stdout > /dev/null, --speed max; median (lowest–highest) of 3 rounds)"
    );
    let (mut walk_rates, mut trip_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut walk_bytes, mut trip_bytes, mut startups) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=3 {
        let (walk_rate, _) = throughput(&random_walk(10_000));
        let (trip_rate, trip_long) = throughput(&shopping_trip(10_000, FAST_CHECKOUTS));
        let empty = run(&random_walk(0), "40m");
        let full = run(&random_walk(1_000_000), "40m");
        let trip_empty = run(&shopping_trip(0, ""), "10m");
        let trip_full = run(&shopping_trip(3_500_000, LONG_QUIET_TRIPS), "10m");
        println!(
            "round {round}: random_walk {walk_rate:.0} events/s, shopping_trip {trip_rate:.0} events/s ({} events in 4 h); \
             random_walk {:.0} B/shopper at {} inside; shopping_trip {:.0} B/shopper at {} inside ({:.1} MiB empty, {:.1} MiB full, {:.0} s); \
             path tables {:.1} ms",
            trip_long.events,
            per_shopper(&empty, &full),
            full.peak_inside,
            per_shopper(&trip_empty, &trip_full),
            trip_full.peak_inside,
            trip_empty.max_rss_bytes as f64 / 1048576.0,
            trip_full.max_rss_bytes as f64 / 1048576.0,
            trip_full.seconds,
            trip_long.startup_ms.unwrap_or(f64::NAN)
        );
        walk_rates.push(walk_rate);
        trip_rates.push(trip_rate);
        ratios.push(trip_rate / walk_rate);
        walk_bytes.push(per_shopper(&empty, &full));
        trip_bytes.push(per_shopper(&trip_empty, &trip_full));
        startups.push(trip_long.startup_ms.unwrap_or(f64::NAN));
    }
    println!(
        "throughput, 10,000 inside: random_walk (6x10 grid) {} events/s (target >= 2,000,000); \
         shopping_trip (demo store) {} events/s = {} of random_walk (target >= 0.50)",
        spread(walk_rates, 0),
        spread(trip_rates, 0),
        spread(ratios, 2)
    );
    println!(
        "memory, 1,000,000 inside: random_walk {} bytes per shopper (target <= 200); shopping_trip {} bytes per shopper (target <= 300)",
        spread(walk_bytes, 0),
        spread(trip_bytes, 0)
    );
    println!(
        "shopping_trip start-up: path tables for the demo store built in {} ms (target < 200)",
        spread(startups, 1)
    );
}
