//! Chains of stores: `cargo bench --bench fleet` prints, median (lowest–highest) of 3 rounds,
//!
//! 1. events/s of 1,000 stores × 20 shoppers in one process (`random_walk`, `--speed max`, stdout
//!    sink to /dev/null; the difference of a 1 h and a 4 h run, so start-up cancels out) and its
//!    peak RSS, against one store with the same 20,000 shoppers measured the same way in the same
//!    round (the pipeline without a fleet: the strongest baseline there is);
//! 2. loading a 10,000,000-row customer list in the original's format (made by
//!    `scripts/make_chain_customers.py`): the load time the source logs and the process's peak
//!    RSS, against the file's size and against the same run with a one-row list.
//!
//! `FLEET_BENCH_ROWS` changes the list's size (e.g. 1000000 for a quick look);
//! `FLEET_BENCH_LIST=FILE` uses a list made earlier with the script instead of making one.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use customersim_testkit::run::clean_command;
use customersim_testkit::temp::{temp_dir, temp_file};

/// What one run of the binary reported.
struct RunFigures {
    seconds: f64,
    events: u64,
    max_rss_bytes: u64,
    log: String,
}

/// Runs `customersim run --config <text>` with stdout to /dev/null; panics unless it exits 0.
fn run(text: &str) -> RunFigures {
    let config = temp_file("fleet-bench.yaml", text);
    run_file(config.path())
}

fn run_file(config: &Path) -> RunFigures {
    let started = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports the peak RSS
    let child = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .args(["run", "--config"])
        .arg(config)
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
    let events = number_after(&log, "stopped:") as u64;
    RunFigures {
        seconds,
        events,
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        log,
    }
}

/// The number right after `marker` in `log` (for "customers from ", after the path's " in ").
fn number_after(log: &str, marker: &str) -> f64 {
    let rest = log
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("{marker:?} not in log:\n{log}"));
    let rest = match marker {
        "customers from " => rest.rsplit_once(" in ").expect("load time").1,
        _ => rest,
    };
    rest.trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn pipeline(fleet: &str, shoppers_per_store: u64, duration: &str) -> String {
    format!(
        "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: {duration}}}\n\
         timeline: {{consume_frequency: 0, consume_batch_size: 10000}}\n\
         {fleet}topics: {{enter: \"store/{{store}}/customer/enter\", move: \"store/{{store}}/customer/move\", exit: \"store/{{store}}/customer/exit\"}}\n\
         sources:\n  - type: random_walk\n    average_in_store: {shoppers_per_store}\n\
         sinks: [{{type: stdout}}]\n"
    )
}

/// Events/s (the difference of a 1 h and a 4 h run) and the 4 h run's figures.
fn throughput(fleet: &str, shoppers_per_store: u64) -> (f64, RunFigures) {
    let short = run(&pipeline(fleet, shoppers_per_store, "1h"));
    let long = run(&pipeline(fleet, shoppers_per_store, "4h"));
    let rate = (long.events - short.events) as f64 / (long.seconds - short.seconds);
    (rate, long)
}

fn spread(mut values: Vec<f64>, digits: usize) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{:.digits$} ({:.digits$}–{:.digits$})",
        values[values.len() / 2],
        values[0],
        values[values.len() - 1]
    )
}

const MIB: f64 = 1048576.0;

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list; this bench has no unit tests
    }
    let rows: u64 = std::env::var("FLEET_BENCH_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(10_000_000);
    let dir = temp_dir("fleet-bench");
    // FLEET_BENCH_LIST: a list made earlier by the script (its rows in FLEET_BENCH_ROWS).
    let list = match std::env::var_os("FLEET_BENCH_LIST") {
        Some(made) => std::path::PathBuf::from(made),
        None => {
            let list = dir.path().join("customers.csv");
            let made = std::process::Command::new("python3")
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/scripts/make_chain_customers.py"
                ))
                .arg(rows.to_string())
                .stdout(std::fs::File::create(&list).unwrap())
                .status()
                .expect("python3 runs scripts/make_chain_customers.py");
            assert!(made.success());
            list
        }
    };
    let file_bytes = std::fs::metadata(&list).unwrap().len() as f64;
    let one_row = dir.path().join("one.csv");
    std::fs::write(&one_row, "customer_id,name\n1,Ann\n").unwrap();
    let listed = |path: &Path| {
        let config = dir.path().join("list.yaml");
        std::fs::write(
            &config,
            format!(
                "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: 1m}}\n\
                 sources: [{{type: random_walk, average_in_store: 1}}, {{type: customer_list, path: {path:?}}}]\n\
                 sinks: [{{type: stdout}}]\n"
            ),
        )
        .unwrap();
        run_file(&config)
    };

    println!(
        "customersim fleet benchmark (stdout > /dev/null, --speed max; median (lowest–highest) of 3 rounds)"
    );
    let (mut fleet_rates, mut single_rates, mut ratios, mut fleet_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut load_seconds, mut list_rss, mut rss_ratio, mut list_extra) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=3 {
        let (fleet_rate, fleet_long) = throughput("fleet: {stores: 1000}\n", 20);
        let (single_rate, _) = throughput("fleet: {stores: 1}\n", 20_000);
        let loaded = listed(&list);
        let empty = listed(&one_row);
        let load_line = loaded
            .log
            .lines()
            .find(|line| line.contains("customer_list:"))
            .expect("the list's load line");
        let seconds = number_after(load_line, "customers from ");
        println!(
            "round {round}: 1,000 stores × 20: {fleet_rate:.0} events/s ({} events in 4 h, peak RSS {:.1} MiB); \
             one store × 20,000: {single_rate:.0} events/s; \
             {rows}-row list ({:.1} MiB): loaded in {seconds:.2} s, peak RSS {:.1} MiB ({:.2}× the file; one-row list: {:.1} MiB)",
            fleet_long.events,
            fleet_long.max_rss_bytes as f64 / MIB,
            file_bytes / MIB,
            loaded.max_rss_bytes as f64 / MIB,
            loaded.max_rss_bytes as f64 / file_bytes,
            empty.max_rss_bytes as f64 / MIB,
        );
        fleet_rates.push(fleet_rate);
        single_rates.push(single_rate);
        ratios.push(fleet_rate / single_rate);
        fleet_rss.push(fleet_long.max_rss_bytes as f64 / MIB);
        load_seconds.push(seconds);
        list_rss.push(loaded.max_rss_bytes as f64 / MIB);
        rss_ratio.push(loaded.max_rss_bytes as f64 / file_bytes);
        list_extra.push((loaded.max_rss_bytes as f64 - empty.max_rss_bytes as f64) / rows as f64);
    }
    println!(
        "1,000 stores × 20 shoppers: {} events/s (target ≥ 2,000,000), peak RSS {} MiB",
        spread(fleet_rates, 0),
        spread(fleet_rss, 1)
    );
    println!(
        "one store × 20,000 shoppers (baseline): {} events/s; fleet / baseline {}",
        spread(single_rates, 0),
        spread(ratios, 2)
    );
    println!(
        "{rows}-row customer list ({:.1} MiB): load {} s (target ≤ 10), peak RSS {} MiB = {}× the file (target ≤ 1.5), {} bytes per customer over a one-row list",
        file_bytes / MIB,
        spread(load_seconds, 2),
        spread(list_rss, 1),
        spread(rss_ratio, 2),
        spread(list_extra, 1)
    );
}
