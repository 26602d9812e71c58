//! Soak benchmark: does a long run keep its memory flat and lose nothing?
//!
//! ```sh
//! cargo bench --bench soak                 # 20 minutes
//! SOAK_MINUTES=3 cargo bench --bench soak  # a shorter look
//! ```
//!
//! Runs the release binary for `SOAK_MINUTES` (default 20) of wall time at `--speed 20` with
//! 5,000 shoppers inside (random_walk on the default grid, seed 1) into a private Mosquitto
//! (`max_queued_messages 0`, so the broker drops nothing for a slow subscriber) at QoS 1, while a
//! QoS 1 subscriber in this process counts what arrives. The simulated duration is the wall time
//! times the speed, so the doors close at the end of the soak and the run drains and exits by
//! itself. The expected number of events comes from the same pipeline (same seed) run through the
//! stdout sink at `--speed max` first: output does not depend on the speed.
//!
//! Prints the events published and received (lost = expected − received), and the process's
//! resident memory (VmRSS, sampled every 5 s): after 2 minutes, at the end (the last sample
//! before the doors close), their ratio (target: within 10%), the peak, and one sample a minute.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use customersim_testkit::mosquitto::Broker;
use customersim_testkit::mqtt::{Subscriber, SubscriberOptions};
use customersim_testkit::run::clean_command;
use rumqttc::QoS;

const SPEED: u64 = 20;
const SHOPPERS: u64 = 5_000;
/// How often resident memory is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The sample the end is compared with.
const BASELINE_AT: Duration = Duration::from_secs(120);

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// The soak's pipeline: `minutes` of wall time at [`SPEED`].
fn pipeline(dir: &Path, port: u16, minutes: u64) -> std::path::PathBuf {
    let path = dir.join("soak.yaml");
    let simulated = minutes * SPEED;
    std::fs::write(
        &path,
        format!(
            "simulation: {{seed: 1, start: \"2024-03-01T08:00:00Z\", speed: {SPEED}, duration: {simulated}m}}\n\
             topics: {{enter: soak/customer/enter, move: soak/customer/move, exit: soak/customer/exit}}\n\
             timeline: {{consume_from: earliest}}\n\
             sources: [{{type: random_walk, average_in_store: {SHOPPERS}}}]\n\
             sinks: [{{type: mqtt, host: 127.0.0.1, port: {port}, qos: 1}}]\n"
        ),
    )
    .unwrap();
    path
}

/// How many events the pipeline publishes: its lines through the stdout sink at `--speed max`.
fn expected_events(config: &Path) -> u64 {
    let mut child = customersim()
        .args(["run", "--sink", "stdout", "--speed", "max", "--config"])
        .arg(config)
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("customersim starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let read = stdout.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        lines += buffer[..read].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    assert!(child.wait().unwrap().success(), "the counting run failed");
    lines
}

/// The process's resident memory in bytes (VmRSS), if it still runs.
fn resident_bytes(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list of tests
    }
    let minutes: u64 = std::env::var("SOAK_MINUTES")
        .ok()
        .map(|text| text.parse().expect("SOAK_MINUTES is a whole number"))
        .unwrap_or(20);
    assert!(
        minutes >= 3,
        "SOAK_MINUTES: at least 3 (the baseline is at 2 minutes)"
    );
    let broker = Broker::start_for_benchmark("bench-soak");
    let config = pipeline(broker.dir(), broker.port, minutes);
    let expected = expected_events(&config);
    println!(
        "soak: {minutes} min at --speed {SPEED}, {SHOPPERS} shoppers, QoS 1 into mosquitto on 127.0.0.1:{}; {expected} events expected",
        broker.port
    );
    let subscriber = Subscriber::start(
        broker.port,
        "soak/#",
        SubscriberOptions {
            qos: QoS::AtLeastOnce,
            record: false,
            ..SubscriberOptions::default()
        },
    );
    let started = Instant::now();
    let mut child = customersim()
        .args(["run", "--config"])
        .arg(&config)
        .env("LOG_LEVEL", "warn")
        .spawn()
        .expect("customersim starts");
    let doors_close = Duration::from_secs(minutes * 60);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let at = started.elapsed();
        if let Some(rss) = resident_bytes(&child) {
            samples.push((at, rss));
        }
        std::thread::sleep(SAMPLE_EVERY);
    };
    assert!(status.success(), "the soak run failed: {status}");
    let received = subscriber
        .wait_for_count(expected, Duration::from_secs(30))
        .map(|_| subscriber.count())
        .unwrap_or_else(|| subscriber.count());
    let baseline = samples
        .iter()
        .find(|(at, _)| *at >= BASELINE_AT)
        .expect("a sample after 2 minutes")
        .1;
    let end = samples
        .iter()
        .rev()
        .find(|(at, _)| *at < doors_close)
        .expect("a sample before the doors close")
        .1;
    let peak = samples.iter().map(|(_, rss)| *rss).max().unwrap();
    println!(
        "events: expected {expected}, received {received}, lost {}",
        expected.saturating_sub(received)
    );
    println!(
        "RSS: {:.1} MiB after 2 min, {:.1} MiB at the end ({:+.1}%), peak {:.1} MiB",
        mib(baseline),
        mib(end),
        (end as f64 / baseline as f64 - 1.0) * 100.0,
        mib(peak)
    );
    let per_minute: Vec<String> = samples
        .iter()
        .filter(|(at, _)| at.as_secs() % 60 < SAMPLE_EVERY.as_secs())
        .map(|(at, rss)| format!("{}m {:.1}", at.as_secs() / 60, mib(*rss)))
        .collect();
    println!("RSS each minute (MiB): {}", per_minute.join(", "));
}
