//! Redis timeline benchmark: `cargo bench --bench redis_timeline` (needs Redis on 127.0.0.1:6379,
//! or REDIS_URL).
//!
//! Prints, each measured in this run:
//! - baseline: a generator run (random_walk, 2,000 shoppers, `--speed max`, stdout sink to
//!   /dev/null) with the memory timeline, then the same run with the Redis timeline;
//! - scheduling: events per second written to Redis by `RedisTimeline::schedule`;
//! - publishing: 1,000,000 events pre-loaded into Redis, drained by 1, 2 and 4 publish-only
//!   worker processes (`sources: []`, `--speed max`, stdout to /dev/null): events per second
//!   from their start until nothing is waiting or leased, and claim round trips per event (from
//!   the workers' final log lines). Target: one instance moves at least 100,000 events/s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use customersim::plugin_api::{CredentialUrl, CustomerId, Event, EventKind, Timeline};
use customersim_testkit::redis::{LOCAL_REDIS_URL, Namespace};
use customersim_testkit::run::{Process, StdoutMode, clean_command};
use customersim_testkit::temp::{TempFile, temp_file};
use customersim_testkit::timeline::generating_from_zero;
use customersim_timeline_redis::{RedisConfig, RedisTimeline};

const EVENTS: u64 = 1_000_000;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| LOCAL_REDIS_URL.into())
}

fn customersim(config: &Path) -> Command {
    let mut command = clean_command(env!("CARGO_BIN_EXE_customersim"));
    command
        .args(["run", "--config"])
        .arg(config)
        .env("REDIS_URL", redis_url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Events published, from the final log line.
fn published(stderr: &str) -> u64 {
    stderr
        .split("stopped: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// (claimed, round trips) from the Redis timeline's final log line.
fn claims(stderr: &str) -> (u64, u64) {
    let Some(rest) = stderr.split("redis timeline: ").nth(1) else {
        return (0, 0);
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    let claimed = words.first().and_then(|n| n.parse().ok()).unwrap_or(0);
    let trips = words.get(4).and_then(|n| n.parse().ok()).unwrap_or(0);
    (claimed, trips)
}

fn generator_run(backend: &str, namespace: &Namespace) -> (f64, u64) {
    namespace.clear();
    let config = temp_file(
        &format!("generator-{backend}.yaml"),
        &format!(
            "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: 2h}}\n\
             timeline: {{backend: {backend}, consume_frequency: 0, consume_batch_size: 10000, consume_from: earliest, redis: {{key: {}}}}}\n\
             sources:\n  - type: random_walk\n    average_in_store: 2000\n\
             sinks: [{{type: stdout}}]\n",
            namespace.name()
        ),
    );
    let started = Instant::now();
    let output = customersim(&config).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    namespace.clear();
    (seconds, published(&stderr))
}

fn events() -> Vec<Event> {
    (0..EVENTS)
        .map(|n| Event {
            due_ms: 1_767_254_400_000 + (n / 4) as i64,
            customer: CustomerId::Number(n % 20_000),
            kind: match n % 10 {
                0 => EventKind::Enter,
                9 => EventKind::Exit,
                _ => EventKind::Move {
                    x: (n % 6) as i64,
                    y: (n % 10) as i64,
                },
            },
            store: 0,
            stamp: Default::default(),
        })
        .collect()
}

/// Puts the benchmark's events on the timeline as an instance that generates (it sets the clock,
/// virtual, from 0) would; returns the seconds it took.
fn preload(runtime: &tokio::runtime::Runtime, namespace: &Namespace) -> f64 {
    namespace.clear();
    runtime.block_on(async {
        let config = RedisConfig {
            url: CredentialUrl::new(namespace.url()),
            key: namespace.name().to_string(),
            ..RedisConfig::default()
        };
        // A generator on a virtual clock, so the workers adopt it and take everything at once.
        let (timeline, _) = RedisTimeline::open(&config, &generating_from_zero())
            .await
            .unwrap();
        let events = events();
        let started = Instant::now();
        for chunk in events.chunks(8192) {
            timeline.schedule(chunk.to_vec()).await.unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(timeline.len().await.unwrap(), EVENTS);
        timeline.leave().await;
        seconds
    })
}

fn drain(instances: usize, namespace: &Namespace) -> (f64, u64, u64) {
    let config = worker_config(namespace);
    let started = Instant::now();
    let workers: Vec<Process> = (0..instances)
        .map(|_| Process::start(&mut customersim(&config), StdoutMode::Discard))
        .collect();
    while namespace.zcard("due") > 0 || namespace.zcard("leases") > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (mut claimed, mut trips) = (0, 0);
    for worker in &workers {
        worker.terminate();
    }
    for worker in workers {
        let (c, t) = claims(&worker.finish().stderr);
        claimed += c;
        trips += t;
    }
    namespace.clear();
    (seconds, claimed, trips)
}

/// A publish-only worker of the namespace's timeline.
fn worker_config(namespace: &Namespace) -> TempFile {
    temp_file(
        "worker.yaml",
        &format!(
            "simulation: {{speed: max}}\n\
             timeline: {{backend: redis, consume_frequency: 0, consume_batch_size: 8192, consume_from: earliest, redis: {{key: {}}}}}\n\
             sources: []\n\
             sinks: [{{type: stdout}}]\n",
            namespace.name()
        ),
    )
}

fn main() {
    let namespace = Namespace::on(&redis_url(), "bench");
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (memory_s, memory_events) = generator_run("memory", &namespace);
    println!(
        "baseline: generator, memory timeline: {memory_events} events in {memory_s:.2} s = {:.0} events/s",
        memory_events as f64 / memory_s
    );
    let (redis_s, redis_events) = generator_run("redis", &namespace);
    println!(
        "generator, redis timeline (one instance schedules and publishes): {redis_events} events in {redis_s:.2} s = {:.0} events/s",
        redis_events as f64 / redis_s
    );

    for instances in [1, 2, 4] {
        let scheduled_s = preload(&runtime, &namespace);
        let (seconds, claimed, trips) = drain(instances, &namespace);
        if instances == 1 {
            println!(
                "schedule into redis: {EVENTS} events in {scheduled_s:.2} s = {:.0} events/s",
                EVENTS as f64 / scheduled_s
            );
        }
        println!(
            "publish through redis, {instances} instance(s): {EVENTS} events in {seconds:.2} s = {:.0} events/s; {claimed} claimed in {trips} claim round trips = {:.5} per event",
            EVENTS as f64 / seconds,
            trips as f64 / claimed.max(1) as f64
        );
        assert_eq!(claimed, EVENTS, "every event claimed once");
    }
}
