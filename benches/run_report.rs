//! Run report and publish lateness benchmark: `cargo bench --bench run_report`.
//!
//! Prints, as median (lowest–highest) of the rounds (3 unless BENCH_ROUNDS says otherwise):
//! - **publish lateness at speed 1** (target: p99 ≤ 2 ms): random_walk with 10,000 shoppers
//!   inside, CONSUME_FREQUENCY=0, the stdout sink writing to /dev/null. Visits are short (mean
//!   30 s, at least 10 s) so the store is full after a minute of warm-up; the p50 and p99 are then
//!   taken over the next minute only, from the difference of two scrapes of
//!   `customersim_publish_lateness_seconds` on `GET /metrics` (an `http_ingress` source serves it;
//!   it takes no requests meanwhile), so warm-up does not count. LATENESS_WARMUP_S and
//!   LATENESS_WINDOW_S change the two spans (a window of 0 skips this figure);
//! - **cost of the run report**: events/s of a `--speed max` run with 10,000 shoppers on the
//!   6×10 grid, with `--report` against without it, in the same round (the difference of a 1 h
//!   and a 4 h run, so warm-up and process start cancel out, as `benches/pipeline.rs` does).

use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use customersim_testkit::http::HttpClient;
use customersim_testkit::net::free_port;
use customersim_testkit::run::clean_command;
use customersim_testkit::temp::{temp_dir, temp_file};

/// Cumulative bucket counts of the lateness histogram, by upper bound in seconds (+Inf last).
type Buckets = Vec<(f64, u64)>;

/// The `customersim_publish_lateness_seconds` buckets of the stdout sink in a /metrics text.
fn lateness_buckets(metrics: &str) -> Buckets {
    metrics
        .lines()
        .filter(|line| line.starts_with("customersim_publish_lateness_seconds_bucket{"))
        .filter(|line| line.contains("sink=\"stdout\""))
        .map(|line| {
            let le = line
                .split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let count = line.rsplit(' ').next().unwrap().parse().unwrap();
            (bound, count)
        })
        .collect()
}

/// The `q` quantile of the events counted between two scrapes, interpolated within its bucket
/// (as Prometheus' `histogram_quantile`), in seconds.
fn quantile(before: &Buckets, after: &Buckets, q: f64) -> f64 {
    let window: Vec<(f64, u64)> = after
        .iter()
        .zip(before)
        .map(|((bound, a), (_, b))| (*bound, a - b))
        .collect();
    let total = window.last().unwrap().1 as f64;
    let rank = q * total;
    let mut lower = (0.0, 0u64);
    for &(bound, cumulative) in &window {
        if cumulative as f64 >= rank {
            if bound.is_infinite() {
                return lower.0;
            }
            let within = (rank - lower.1 as f64) / (cumulative - lower.1).max(1) as f64;
            return lower.0 + within * (bound - lower.0);
        }
        lower = (bound, cumulative);
    }
    lower.0
}

/// One speed-1 run: (p50 s, p99 s, events in the window).
fn lateness_round(warmup: Duration, window: Duration) -> (f64, f64, u64) {
    let port = free_port();
    let config = temp_file(
        "lateness.yaml",
        &format!(
            "simulation: {{seed: 1, speed: 1}}\n\
             timeline: {{consume_frequency: 0}}\n\
             sources:\n\
             \x20 - {{type: random_walk, average_in_store: 10000, mean_visit: 30s, min_visit: 10s}}\n\
             \x20 - {{type: http_ingress, listen: \"127.0.0.1:{port}\"}}\n\
             sinks: [{{type: stdout}}]\n"
        ),
    );
    let mut child = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .args(["run", "--config"])
        .arg(config.path())
        .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::from(std::fs::File::create("/dev/null").unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = HttpClient::local(port);
    http.wait_until_healthy(Duration::from_secs(30));
    sleep(warmup);
    let before = lateness_buckets(&http.get("/metrics").body);
    sleep(window);
    let after = lateness_buckets(&http.get("/metrics").body);
    let _ = child.kill();
    let _ = child.wait();
    let events = after.last().unwrap().1 - before.last().unwrap().1;
    (
        quantile(&before, &after, 0.5),
        quantile(&before, &after, 0.99),
        events,
    )
}

/// Seconds and events of a `--speed max` run of `duration` with 10,000 shoppers on the grid.
fn max_speed_run(duration: &str, report: bool) -> (f64, u64) {
    let config = temp_file(
        "report-cost.yaml",
        &format!(
            "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: {duration}}}\n\
             timeline: {{consume_frequency: 0, consume_batch_size: 10000}}\n\
             sources: [{{type: random_walk, average_in_store: 10000}}]\n\
             sinks: [{{type: stdout}}]\n"
        ),
    );
    let dir = temp_dir("report-cost");
    let mut command = clean_command(env!("CARGO_BIN_EXE_customersim"));
    command.args(["run", "--config"]).arg(config.path());
    if report {
        command.arg("--report").arg(dir.path().join("report.json"));
    }
    let started = Instant::now();
    let output = command
        .env("LOG_LEVEL", "INFO")
        .stdout(Stdio::from(std::fs::File::create("/dev/null").unwrap()))
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "customersim failed:\n{log}");
    let events = log
        .split("stopped: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no event count in the log:\n{log}"));
    (seconds, events)
}

/// Events/s with 10,000 inside: the difference of a 1 h and a 4 h run.
fn max_speed_rate(report: bool) -> f64 {
    let (short_s, short_events) = max_speed_run("1h", report);
    let (long_s, long_events) = max_speed_run("4h", report);
    (long_events - short_events) as f64 / (long_s - short_s)
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

fn seconds_from_env(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default),
    )
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list; this bench has no unit tests
    }
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(3);
    let warmup = seconds_from_env("LATENESS_WARMUP_S", 60);
    let window = seconds_from_env("LATENESS_WINDOW_S", 60);
    println!(
        "customersim run report benchmark (median (lowest–highest) of {rounds} rounds; stdout > /dev/null)"
    );
    let (mut p50s, mut p99s, mut ratios, mut with_rates, mut without_rates) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        // LATENESS_WINDOW_S=0 measures the report's cost only.
        let (p50, p99, events) = if window.is_zero() {
            (f64::NAN, f64::NAN, 0)
        } else {
            lateness_round(warmup, window)
        };
        let without = max_speed_rate(false);
        let with = max_speed_rate(true);
        println!(
            "round {round}: lateness at speed 1, 10,000 inside: p50 {:.3} ms, p99 {:.3} ms over {events} events in {} s; \
             --speed max: {without:.0} events/s without --report, {with:.0} with ({:.3})",
            p50 * 1e3,
            p99 * 1e3,
            window.as_secs(),
            with / without
        );
        p50s.push(p50 * 1e3);
        p99s.push(p99 * 1e3);
        ratios.push(with / without);
        with_rates.push(with);
        without_rates.push(without);
    }
    println!(
        "publish lateness at speed 1 (10,000 inside, CONSUME_FREQUENCY=0): p50 {} ms, p99 {} ms (target p99 <= 2 ms)",
        spread(p50s, 3),
        spread(p99s, 3)
    );
    println!(
        "--speed max with --report: {} events/s, without: {} events/s; ratio {} (target: a few % at most)",
        spread(with_rates, 0),
        spread(without_rates, 0),
        spread(ratios, 3)
    );
}
