//! Core pipeline benchmark: `cargo bench --bench pipeline`.
//!
//! Runs the release binary with `--speed max`, the random_walk source and the stdout sink writing
//! to /dev/null, and prints:
//! - events per second with 10,000 shoppers inside (target: at least 2,000,000/s). Two runs of
//!   different simulated length are timed and the difference is used, so the warm-up (an empty
//!   store filling up) and process start cancel out;
//! - peak RSS with 1,000,000 shoppers inside against an empty store measured in the same run
//!   (target: at most 200 bytes per shopper above the empty store). Peak RSS is the child's
//!   `ru_maxrss` from `wait4`.

use std::process::Stdio;
use std::time::Instant;

use customersim_testkit::run::clean_command;
use customersim_testkit::temp::temp_file;

struct RunFigures {
    seconds: f64,
    events: u64,
    peak_inside: u64,
    max_rss_bytes: u64,
}

fn run(target: u64, duration: &str) -> RunFigures {
    let text = format!(
        "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: {duration}}}\n\
         timeline: {{consume_frequency: 0, consume_batch_size: 10000}}\n\
         sources:\n  - type: random_walk\n    average_in_store: {target}\n\
         sinks: [{{type: stdout}}]\n"
    );
    let config = temp_file(&format!("bench-{target}-{duration}.yaml"), &text);
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
    RunFigures {
        seconds,
        events: number_after("stopped:"),
        peak_inside: number_after("at most"),
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list; this bench has no unit tests
    }
    println!("customersim pipeline benchmark (random_walk -> stdout > /dev/null, --speed max)");

    let short = run(10_000, "1h");
    let long = run(10_000, "4h");
    let rate = (long.events - short.events) as f64 / (long.seconds - short.seconds);
    println!(
        "throughput, 10,000 shoppers inside: {:.0} events/s  ({} events in {:.2} s minus {} in {:.2} s; target >= 2,000,000/s: {:.2}x)",
        rate,
        long.events,
        long.seconds,
        short.events,
        short.seconds,
        rate / 2_000_000.0
    );

    let empty = run(0, "40m");
    let full = run(1_000_000, "40m");
    let per_shopper = (full.max_rss_bytes - empty.max_rss_bytes) as f64 / full.peak_inside as f64;
    println!(
        "memory: empty store {:.1} MiB, {} shoppers inside at peak {:.1} MiB => {:.0} bytes per shopper (target <= 200)",
        empty.max_rss_bytes as f64 / 1048576.0,
        full.peak_inside,
        full.max_rss_bytes as f64 / 1048576.0,
        per_shopper
    );
    println!(
        "memory run: {} events in {:.1} s ({:.0} events/s with ~1M inside)",
        full.events,
        full.seconds,
        full.events as f64 / full.seconds
    );
}
