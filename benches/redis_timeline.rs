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

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use customersim::plugin_api::{CredentialUrl, CustomerId, Event, EventKind, Timeline};
use customersim_timeline_redis::{RedisConfig, RedisTimeline};

const EVENTS: u64 = 1_000_000;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("customersim-redis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn clear(namespace: &str) {
    let mut connection = redis::Client::open(redis_url())
        .unwrap()
        .get_connection()
        .expect("Redis reachable");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{namespace}}}:*"))
        .query(&mut connection)
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query(&mut connection).unwrap();
    }
}

fn zcard(connection: &mut redis::Connection, namespace: &str, name: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(format!("{{{namespace}}}:{name}"))
        .query(connection)
        .unwrap()
}

fn customersim(config: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_customersim"));
    command
        .args(["run", "--config"])
        .arg(config)
        .env("REDIS_URL", redis_url())
        .env_remove("REDIS_KEY")
        .env_remove("TIMELINE_BACKEND")
        .stdin(Stdio::null())
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

fn generator_run(backend: &str, namespace: &str) -> (f64, u64) {
    clear(namespace);
    let config = temp_config(
        &format!("generator-{backend}.yaml"),
        &format!(
            "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: 2h}}\n\
             timeline: {{backend: {backend}, consume_frequency: 0, consume_batch_size: 10000, consume_from: earliest, redis: {{key: {namespace}}}}}\n\
             sources:\n  - type: random_walk\n    average_in_store: 2000\n\
             sinks: [{{type: stdout}}]\n"
        ),
    );
    let started = Instant::now();
    let output = customersim(&config).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    clear(namespace);
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
        })
        .collect()
}

fn preload(runtime: &tokio::runtime::Runtime, namespace: &str) -> f64 {
    clear(namespace);
    runtime.block_on(async {
        let config = RedisConfig {
            url: CredentialUrl::new(redis_url()),
            key: namespace.to_string(),
            ..RedisConfig::default()
        };
        let (timeline, _) = RedisTimeline::open(&config, 1.0, None).await.unwrap();
        let events = events();
        let started = Instant::now();
        for chunk in events.chunks(8192) {
            timeline.schedule(chunk.to_vec()).await.unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(timeline.len().await.unwrap(), EVENTS);
        seconds
    })
}

fn drain(instances: usize, namespace: &str) -> (f64, u64, u64) {
    let config = temp_config(
        "worker.yaml",
        &format!(
            "simulation: {{speed: max}}\n\
             timeline: {{backend: redis, consume_frequency: 0, consume_batch_size: 8192, consume_from: earliest, redis: {{key: {namespace}}}}}\n\
             sources: []\n\
             sinks: [{{type: stdout}}]\n"
        ),
    );
    let mut connection = redis::Client::open(redis_url())
        .unwrap()
        .get_connection()
        .unwrap();
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..instances)
        .map(|_| customersim(&config).spawn().unwrap())
        .collect();
    while zcard(&mut connection, namespace, "due") > 0
        || zcard(&mut connection, namespace, "leases") > 0
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (mut claimed, mut trips) = (0, 0);
    for worker in &mut workers {
        unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    }
    for mut worker in workers {
        let mut stderr = String::new();
        worker
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        worker.wait().unwrap();
        let (c, t) = claims(&stderr);
        claimed += c;
        trips += t;
    }
    clear(namespace);
    (seconds, claimed, trips)
}

fn main() {
    let namespace = format!("bench-{}", std::process::id());
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
