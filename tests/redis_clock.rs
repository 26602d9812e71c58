//! One simulated clock per Redis timeline key, with the real binary and the real Redis on
//! 127.0.0.1:6379: workers started before the generator wait for its clock and publish each
//! event when it is due on it; on a virtual clock (`speed: max`) nobody publishes ahead of the
//! generator; the clock goes with the last instance; a contradicting config is warned about once.
//! Each test uses its own key namespace and deletes it afterwards.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use customersim_testkit::redis::Namespace;
use customersim_testkit::run::{Process, StdoutMode, TimedLine, clean_command, run_ok};
use customersim_testkit::stdout_sink::{parse_line, parse_lines};
use customersim_testkit::temp::temp_file;

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// A generator's pipeline: `simulation` settings, 30 shoppers, stdout.
fn generator_yaml(backend: &str, namespace: &str, simulation: &str, timeline: &str) -> String {
    format!(
        "simulation: {{seed: 5, {simulation}}}\n\
         timeline: {{backend: {backend}, {timeline}redis: {{key: {namespace}}}}}\n\
         sources:\n  - type: random_walk\n    average_in_store: 30\n\
         sinks: [{{type: stdout}}]\n"
    )
}

/// A publish-only worker with the default clock (real time from now): no sources, runs until a
/// signal.
fn worker_yaml(namespace: &str, timeline: &str) -> String {
    format!(
        "timeline: {{backend: redis, {timeline}redis: {{key: {namespace}}}}}\n\
         sources: []\n\
         sinks: [{{type: stdout}}]\n"
    )
}

/// `topic payload` of each stdout-sink line, sorted.
fn sorted(lines: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut lines: Vec<String> = lines.into_iter().collect();
    lines.sort();
    lines
}

/// The stream of `simulation` with the memory backend at `speed: max`, sorted.
fn memory_stream(simulation: &str) -> Vec<String> {
    let path = temp_file(
        "memory.yaml",
        &generator_yaml("memory", "unused", simulation, ""),
    );
    let output = run_ok(
        customersim()
            .args(["run", "--speed", "max", "--config"])
            .arg(&path),
    );
    sorted(
        parse_lines(&output.stdout)
            .into_iter()
            .map(|line| format!("{} {}", line.topic, line.payload)),
    )
}

fn start(config: &Path, mode: StdoutMode) -> Process {
    Process::start(customersim().args(["run", "--config"]).arg(config), mode)
}

/// Every line a process in [`StdoutMode::Lines`] printed, once it has exited or been told to.
fn all_lines(process: &mut Process) -> Vec<TimedLine> {
    process.wait(Duration::from_secs(60));
    process.lines().iter().collect()
}

/// Waits for the exit and returns stderr; asserts it exited 0.
fn stderr_of(process: Process) -> String {
    let finished = process.finish();
    assert!(
        finished.status.success(),
        "exit {:?}:\n{}",
        finished.status,
        finished.stderr
    );
    finished.stderr
}

/// The shared clock's hash (`start_ms`, `speed`, `wall_us`, `set_by`); empty when none is kept.
fn stored_clock(namespace: &Namespace) -> HashMap<String, String> {
    redis::cmd("HGETALL")
        .arg(namespace.key("clock"))
        .query(&mut namespace.connection())
        .unwrap()
}

fn wait_for_clock(namespace: &Namespace) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let clock = stored_clock(namespace);
        if !clock.is_empty() {
            return clock;
        }
        assert!(Instant::now() < deadline, "no clock was stored");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ts` of a payload.
fn ts_of(payload: &str) -> i64 {
    let value: serde_json::Value = serde_json::from_str(payload).unwrap();
    value["ts"].as_i64().unwrap()
}

/// Counts of each line; the lines seen more than once.
fn duplicates(lines: &[String]) -> Vec<(&str, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in lines {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    counts.into_iter().filter(|(_, n)| *n > 1).take(5).collect()
}

/// The case: two workers with the default clock are started first, then a generator at
/// `speed: 300` from a historical start. The workers wait for its clock, adopt it, and each of
/// the three publishes a share of the events, every one exactly once and none before it is due
/// on the generator's clock (its wall time read from the stdout pipe, so only ever late; how late
/// is printed, not asserted).
#[test]
fn workers_started_before_a_speed_300_generator_follow_its_clock() {
    let simulation = "start: \"2025-06-02T09:00:00Z\", speed: 300, duration: 40m";
    let expected = memory_stream(simulation);
    assert!(expected.len() > 3_000, "{} events", expected.len());
    let namespace = Namespace::new("clock300");
    // Every instance claims one event at a time, as soon as it is due: whichever instance wakes
    // first for an event takes it, so the three share the work.
    let timeline = "consume_frequency: 0, consume_batch_size: 1, ";
    let worker = temp_file("worker.yaml", &worker_yaml(namespace.name(), timeline));
    let workers = [
        start(&worker, StdoutMode::Lines),
        start(&worker, StdoutMode::Lines),
    ];
    namespace.wait_instances(2);
    std::thread::sleep(Duration::from_millis(500));
    assert!(stored_clock(&namespace).is_empty(), "workers never set it");

    let generator = temp_file(
        "generator.yaml",
        &generator_yaml("redis", namespace.name(), simulation, timeline),
    );
    let mut generator = start(&generator, StdoutMode::Lines);
    let clock = wait_for_clock(&namespace);
    let field = |name: &str| clock[name].parse::<f64>().unwrap();
    let (start_ms, speed, wall_us) = (field("start_ms"), field("speed"), field("wall_us"));
    assert_eq!((start_ms, speed), (1_748_854_800_000.0, 300.0), "{clock:?}");
    // Redis runs on this host: its clock is the test's.
    let due_wall_us = |due_ms: f64| wall_us + (due_ms - start_ms) * 1000.0 / speed;

    let mut outputs = vec![all_lines(&mut generator)];
    let generator_log = stderr_of(generator);
    namespace.wait_drained(Duration::from_secs(30));
    for worker in &workers {
        worker.terminate();
    }
    let mut worker_logs = Vec::new();
    for mut worker in workers {
        outputs.push(all_lines(&mut worker));
        worker_logs.push(stderr_of(worker));
    }

    let mut union = Vec::new();
    let mut shares = Vec::new();
    let mut early = Vec::new();
    let mut latest_us: f64 = 0.0;
    for lines in &outputs {
        shares.push(lines.len());
        for line in lines {
            let parsed = parse_line(&line.text);
            let ts_ms = ts_of(&parsed.payload) as f64 * 1000.0;
            let read_us = line.read_at.duration_since(UNIX_EPOCH).unwrap().as_micros() as f64;
            // Due somewhere in [ts, ts + 1 s) of simulated time.
            if read_us < due_wall_us(ts_ms) {
                early.push((due_wall_us(ts_ms) - read_us, line.text.clone()));
            }
            latest_us = latest_us.max(read_us - due_wall_us(ts_ms + 1000.0));
            union.push(format!("{} {}", parsed.topic, parsed.payload));
        }
    }
    let union = sorted(union);
    eprintln!(
        "shares {shares:?}; latest {:.3} s after its second",
        latest_us / 1e6
    );
    assert!(
        early.is_empty(),
        "{} events published before they were due, e.g. {:?}",
        early.len(),
        early.first()
    );
    // Lateness is not asserted: it measures how busy the machine is, not the clock. (An event
    // published by a worker's own clock, the case, would be months early.)
    assert_eq!(duplicates(&union), [], "published twice");
    assert_eq!(union.len(), expected.len(), "shares {shares:?}");
    assert!(union == expected, "the union differs from the memory run");
    let total = union.len();
    assert!(
        shares.iter().all(|share| *share * 100 >= total * 15),
        "each instance publishes at least 15%: {shares:?} of {total}"
    );
    assert!(
        generator_log.contains("this instance set the shared clock"),
        "{generator_log}"
    );
    for log in &worker_logs {
        assert!(
            log.contains("waits for an instance with sources to set it"),
            "{log}"
        );
        assert_eq!(log.matches("adopted the shared clock").count(), 1, "{log}");
        assert!(
            !log.contains("not used"),
            "a worker left at the default clock is not warned:\n{log}"
        );
    }
}

/// A `speed: max` generator with two workers (default clock, started first): the workers adopt
/// its virtual clock and never claim beyond how far it generated, so each instance publishes in
/// time order, and together they publish the memory run's events, none twice.
#[test]
fn workers_follow_a_speed_max_generator_and_publish_its_stream_once() {
    let simulation = "start: \"2025-06-02T09:00:00Z\", speed: max, duration: 2h";
    let expected = memory_stream(simulation);
    let namespace = Namespace::new("clockmax");
    let timeline = "consume_from: earliest, consume_batch_size: 50, ";
    let worker = temp_file("worker.yaml", &worker_yaml(namespace.name(), timeline));
    let workers = [
        start(&worker, StdoutMode::Lines),
        start(&worker, StdoutMode::Lines),
    ];
    namespace.wait_instances(2);
    let generator = temp_file(
        "generator.yaml",
        &generator_yaml("redis", namespace.name(), simulation, timeline),
    );
    let mut generator = start(&generator, StdoutMode::Lines);
    assert_eq!(wait_for_clock(&namespace)["speed"], "max");
    let mut outputs = vec![all_lines(&mut generator)];
    stderr_of(generator);
    namespace.wait_drained(Duration::from_secs(30));
    // The generator may publish everything before a worker's next look for the clock: the
    // workers are stopped only once they have adopted it.
    let adopted = workers
        .iter()
        .map(|worker| worker.wait_for_stderr("adopted the shared clock", Duration::from_secs(20)))
        .collect::<Vec<_>>();
    for worker in &workers {
        worker.terminate();
    }
    for (mut worker, adopted) in workers.into_iter().zip(adopted) {
        outputs.push(all_lines(&mut worker));
        let log = stderr_of(worker);
        assert!(adopted, "{log}");
    }
    let mut union = Vec::new();
    for lines in &outputs {
        let mut last_ts = i64::MIN;
        for line in lines {
            let parsed = parse_line(&line.text);
            let ts = ts_of(&parsed.payload);
            assert!(
                ts >= last_ts,
                "an instance published ahead of the generator: {ts} after {last_ts}"
            );
            last_ts = ts;
            union.push(format!("{} {}", parsed.topic, parsed.payload));
        }
    }
    let union = sorted(union);
    assert_eq!(duplicates(&union), [], "published twice");
    assert_eq!(union.len(), expected.len());
    assert!(union == expected, "the union differs from the memory run");
}

/// Two `speed: max` generators and a worker: the second generator joins the virtual clock where
/// the first got (everything before may be published already), and no instance claims beyond
/// the slower generator's progress. So every instance publishes in time order, the first
/// generator's stream is published exactly once, and the second's without repeats.
#[test]
fn on_a_virtual_clock_nobody_publishes_ahead_of_the_slowest_generator() {
    let simulation = "start: \"2025-06-02T09:00:00Z\", speed: max, duration: 6h";
    let expected = memory_stream(simulation);
    let namespace = Namespace::new("clockslow");
    let timeline = "consume_batch_size: 50, ";
    let worker = temp_file("worker.yaml", &worker_yaml(namespace.name(), timeline));
    let mut worker = start(&worker, StdoutMode::Lines);
    namespace.wait_instances(1);
    let first = temp_file(
        "first.yaml",
        &generator_yaml("redis", namespace.name(), simulation, timeline),
    );
    let second = temp_file(
        "second.yaml",
        &generator_yaml("redis", namespace.name(), simulation, timeline)
            .replace("seed: 5", "seed: 6")
            .replace(
                "average_in_store: 30",
                "average_in_store: 30\n    id_prefix: b",
            ),
    );
    let mut first = start(&first, StdoutMode::Lines);
    wait_for_clock(&namespace);
    let mut second = start(&second, StdoutMode::Lines);
    let mut outputs = vec![all_lines(&mut first), all_lines(&mut second)];
    stderr_of(first);
    let log = stderr_of(second);
    assert!(
        log.contains("adopted the shared clock") && !log.contains("not used"),
        "{log}"
    );
    namespace.wait_drained(Duration::from_secs(30));
    worker.terminate();
    outputs.push(all_lines(&mut worker));
    stderr_of(worker);

    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for lines in &outputs {
        let mut last_ts = i64::MIN;
        for line in lines {
            let parsed = parse_line(&line.text);
            let ts = ts_of(&parsed.payload);
            assert!(
                ts >= last_ts,
                "an instance published ahead of a generator: {ts} after {last_ts}"
            );
            last_ts = ts;
            let text = format!("{} {}", parsed.topic, parsed.payload);
            if parsed.payload.contains("\"id\": \"b") {
                seconds.push(text);
            } else {
                firsts.push(text);
            }
        }
    }
    let (firsts, seconds) = (sorted(firsts), sorted(seconds));
    assert_eq!(duplicates(&firsts), [], "published twice");
    assert!(firsts == expected, "the first generator's stream differs");
    assert!(!seconds.is_empty());
    assert_eq!(duplicates(&seconds), [], "published twice");
}

/// The clock goes with the last instance, so the next run sets a new one; an instance whose
/// speed and start contradict the kept clock says so in one warning; `validate` shows the clock.
#[test]
fn a_new_clock_after_every_instance_stopped_and_one_warning_for_a_contradicting_config() {
    let namespace = Namespace::new("clocknew");
    let first = temp_file(
        "first.yaml",
        &generator_yaml(
            "redis",
            namespace.name(),
            "start: \"2025-01-01T00:00:00Z\", speed: max, duration: 10m",
            "",
        ),
    );
    let finished = Process::start(
        customersim().args(["run", "--config"]).arg(&first),
        StdoutMode::Discard,
    );
    let log = stderr_of(finished);
    assert!(log.contains("next run starts a new clock"), "{log}");
    assert!(
        stored_clock(&namespace).is_empty(),
        "the clock went with it"
    );

    let keeper_yaml = generator_yaml(
        "redis",
        namespace.name(),
        "start: \"2024-05-01T08:00:00Z\", speed: 60",
        "consume_frequency: 0.05, ",
    );
    let keeper_path = temp_file("keeper.yaml", &keeper_yaml);
    let keeper = start(&keeper_path, StdoutMode::Discard);
    let clock = wait_for_clock(&namespace);
    assert_eq!(
        (clock["start_ms"].as_str(), clock["speed"].as_str()),
        ("1714550400000", "60"),
        "a new clock: {clock:?}"
    );

    let joiner = temp_file(
        "joiner.yaml",
        &generator_yaml(
            "redis",
            namespace.name(),
            "start: \"2023-01-01T00:00:00Z\", speed: 120",
            "consume_frequency: 0.05, ",
        ),
    );
    let validated = run_ok(customersim().args(["validate", "--config"]).arg(&joiner));
    let shown = String::from_utf8_lossy(&validated.stdout);
    assert!(
        shown.contains(&format!(
            "# shared clock (redis key {:?}): started at 2024-05-01T08:00:00+00:00, speed 60",
            namespace.name()
        )),
        "{shown}"
    );
    let joiner = start(&joiner, StdoutMode::Discard);
    std::thread::sleep(Duration::from_secs(2));
    joiner.terminate();
    let log = stderr_of(joiner);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("not used"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{log}");
    assert!(
        warnings[0].contains("simulation.speed (120 here, 60 on the shared clock)")
            && warnings[0].contains("simulation.start (2023-01-01T00:00:00+00:00 here"),
        "{log}"
    );
    assert_eq!(
        stored_clock(&namespace)["speed"],
        "60",
        "the joiner did not change it"
    );
    keeper.terminate();
    stderr_of(keeper);
    // Both stopped, but events they generated ahead still wait: they keep their clock.
    let validate = || {
        let validated = run_ok(
            customersim()
                .args(["validate", "--config"])
                .arg(&keeper_path),
        );
        String::from_utf8_lossy(&validated.stdout).into_owned()
    };
    assert!(namespace.zcard("due") > 0);
    assert!(validate().contains("speed 60"), "{}", validate());
    let _: () = redis::cmd("DEL")
        .arg(namespace.key("due"))
        .query(&mut namespace.connection())
        .unwrap();
    let shown = validate();
    assert!(shown.contains("none kept now"), "{shown}");
}
