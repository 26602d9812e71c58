//! The `redis` timeline backend against the real Redis on 127.0.0.1:6379: several instances share
//! one timeline, every event is published once, and a killed instance loses nothing. Each test
//! uses its own key namespace and deletes it afterwards.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{customersim, parse_lines, run_ok, write_temp};

const REDIS: &str = "redis://127.0.0.1:6379/0";

/// A key namespace of its own, deleted on drop.
struct Namespace(String, String);

impl Namespace {
    fn new(test: &str) -> Namespace {
        Namespace::on(REDIS, test)
    }

    fn on(url: &str, test: &str) -> Namespace {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let namespace = Namespace(
            format!("test-{test}-{}-{nanos}", std::process::id()),
            url.to_string(),
        );
        namespace.clear();
        namespace
    }

    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.1.as_str())
            .unwrap()
            .get_connection()
            .expect("Redis on 127.0.0.1:6379")
    }

    fn key(&self, name: &str) -> String {
        format!("{{{}}}:{name}", self.0)
    }

    fn zcard(&self, name: &str) -> u64 {
        redis::cmd("ZCARD")
            .arg(self.key(name))
            .query(&mut self.connection())
            .unwrap()
    }

    fn clear(&self) {
        let mut connection = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{}}}:*", self.0))
            .query(&mut connection)
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(keys).query(&mut connection).unwrap();
        }
    }

    /// Waits until nothing is waiting or leased.
    fn wait_drained(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.zcard("due") > 0 || self.zcard("leases") > 0 {
            assert!(
                Instant::now() < deadline,
                "the timeline did not drain in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `count` instances have joined.
    fn wait_instances(&self, count: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.zcard("instances") < count {
            assert!(Instant::now() < deadline, "instances did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        self.clear();
    }
}

fn config(name: &str, text: &str) -> PathBuf {
    write_temp(name, text)
}

/// The generator's pipeline: one hour of shoppers at 3,600× real time.
fn generator_yaml(backend: &str, namespace: &str, extra: &str) -> String {
    format!(
        "simulation: {{seed: 11, start: \"2026-01-05T09:00:00Z\", speed: 3600, duration: 1h}}\n\
         timeline: {{backend: {backend}, consume_from: earliest, consume_frequency: 0.01, consume_batch_size: 20, redis: {{key: {namespace}{extra}}}}}\n\
         sources:\n  - type: random_walk\n    average_in_store: 40\n\
         sinks: [{{type: stdout}}]\n"
    )
}

/// A publish-only worker: no sources, runs until a signal.
fn worker_yaml(namespace: &str, extra: &str) -> String {
    format!(
        "timeline: {{backend: redis, consume_from: earliest, consume_frequency: 0.01, consume_batch_size: 20, redis: {{key: {namespace}{extra}}}}}\n\
         sources: []\n\
         sinks: [{{type: stdout}}]\n"
    )
}

/// The generator's stream with the memory backend, sorted.
fn memory_stream() -> Vec<String> {
    let path = config("memory.yaml", &generator_yaml("memory", "unused", ""));
    let output = run_ok(
        customersim()
            .args(["run", "--speed", "max", "--config"])
            .arg(&path),
    );
    sorted(&output.stdout)
}

fn sorted(stdout: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = parse_lines(stdout)
        .into_iter()
        .map(|line| format!("{} {}", line.topic, line.payload))
        .collect();
    lines.sort();
    lines
}

/// A running instance whose stdout is collected by a thread (or left unread).
struct Instance {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn collect(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = from.read_to_end(&mut all);
        all
    })
}

fn start(config: &PathBuf, read_stdout: bool) -> Instance {
    let mut command: Command = customersim();
    command
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("customersim starts");
    let stdout = read_stdout.then(|| collect(child.stdout.take().unwrap()));
    let stderr = collect(child.stderr.take().unwrap());
    Instance {
        child,
        stdout,
        stderr: Some(stderr),
    }
}

impl Instance {
    /// SIGTERM, then what it printed (stdout, stderr).
    fn stop(mut self) -> (Vec<u8>, String) {
        common::terminate(&self.child);
        let status = self.child.wait().unwrap();
        let stdout = self
            .stdout
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default();
        let stderr =
            String::from_utf8_lossy(&self.stderr.take().unwrap().join().unwrap()).to_string();
        assert!(status.success(), "exit {status:?}:\n{stderr}");
        (stdout, stderr)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(lines: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    counts
}

#[test]
fn one_generator_and_two_workers_publish_the_memory_stream_exactly_once() {
    let expected = memory_stream();
    assert!(expected.len() > 5_000, "{} events", expected.len());
    let namespace = Namespace::new("share");
    let worker = config("worker.yaml", &worker_yaml(&namespace.0, ""));
    let workers = [start(&worker, true), start(&worker, true)];
    namespace.wait_instances(2);
    let generator = config("generator.yaml", &generator_yaml("redis", &namespace.0, ""));
    let generated = run_ok(customersim().args(["run", "--config"]).arg(&generator));
    namespace.wait_drained(Duration::from_secs(20));
    let mut union = sorted(&generated.stdout);
    let mut shares = vec![union.len()];
    for worker in workers {
        let (stdout, _) = worker.stop();
        let lines = sorted(&stdout);
        shares.push(lines.len());
        union.extend(lines);
    }
    union.sort();
    assert!(
        shares.iter().all(|share| *share > 0),
        "each instance publishes a share: {shares:?}"
    );
    let duplicates: Vec<_> = count(&union)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .take(5)
        .collect();
    assert!(duplicates.is_empty(), "published twice: {duplicates:?}");
    assert_eq!(union.len(), expected.len(), "shares {shares:?}");
    assert!(union == expected, "the union differs from the memory run");
}

#[test]
fn a_worker_killed_while_holding_a_lease_loses_nothing() {
    let expected = memory_stream();
    let namespace = Namespace::new("kill");
    let lease = ", lease: 2s";
    let worker = config("worker.yaml", &worker_yaml(&namespace.0, lease));
    // The doomed worker's stdout is not read: once the pipe is full its sink blocks in the middle
    // of a batch, so it dies holding a lease on events it has not published.
    let mut doomed = start(&worker, false);
    let survivor = start(&worker, true);
    namespace.wait_instances(2);
    let generator = config(
        "generator.yaml",
        &generator_yaml("redis", &namespace.0, lease),
    );
    let mut generator = start(&generator, true);
    // Wait until one lease stays open (the blocked worker's; others live for milliseconds), then
    // kill its holder.
    let deadline = Instant::now() + Duration::from_secs(20);
    let leases = || -> Vec<String> {
        redis::cmd("ZRANGE")
            .arg(namespace.key("leases"))
            .arg(0)
            .arg(-1)
            .query(&mut namespace.connection())
            .unwrap()
    };
    loop {
        assert!(
            Instant::now() < deadline,
            "the doomed worker never held a lease"
        );
        let before = leases();
        std::thread::sleep(Duration::from_millis(300));
        if leases().iter().any(|lease| before.contains(lease)) {
            break;
        }
    }
    doomed.child.kill().unwrap(); // SIGKILL
    doomed.child.wait().unwrap();
    let mut pipe = Vec::new();
    doomed
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut pipe)
        .unwrap();
    // Keep the complete lines it got out before it died.
    let complete = pipe
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |end| end + 1);
    pipe.truncate(complete);
    // The generator exits once every event it scheduled was published, the reclaimed ones too.
    let status = generator.child.wait().unwrap();
    let generated = generator.stdout.take().unwrap().join().unwrap();
    let generator_log = generator.stderr.take().unwrap().join().unwrap();
    assert!(status.success(), "generator: {status:?}");
    namespace.wait_drained(Duration::from_secs(30));
    let (stdout, stderr) = survivor.stop();
    assert!(
        format!("{stderr}{}", String::from_utf8_lossy(&generator_log)).contains("expired lease"),
        "another instance took the dead worker's lease:\n{stderr}"
    );
    let mut union = sorted(&generated);
    union.extend(sorted(&stdout));
    union.extend(sorted(&pipe));
    let published = count(&union);
    let missing: Vec<_> = expected
        .iter()
        .filter(|line| !published.contains_key(line.as_str()))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lost events: {missing:?}");
    assert!(
        published
            .keys()
            .all(|line| expected.binary_search_by(|e| e.as_str().cmp(line)).is_ok()),
        "only expected events"
    );
    assert!(
        !pipe.is_empty(),
        "the killed worker had published some events"
    );
}

/// Puts `events` (due ms, id) on the namespace's timeline as enter events, through the library.
fn preload(namespace: &Namespace, events: &[(i64, u64)]) {
    use customersim::plugin_api::{CustomerId, Event, EventKind, Timeline};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = customersim_timeline_redis::RedisConfig {
            url: customersim::plugin_api::CredentialUrl::new(namespace.1.clone()),
            key: namespace.0.clone(),
            ..Default::default()
        };
        let (timeline, _) = customersim_timeline_redis::RedisTimeline::open(&config, 1.0, None)
            .await
            .unwrap();
        let events = events
            .iter()
            .map(|(due_ms, id)| Event {
                due_ms: *due_ms,
                customer: CustomerId::Number(*id),
                kind: EventKind::Enter,
            })
            .collect();
        timeline.schedule(events).await.unwrap();
    });
    // The preloading handle's heartbeat would count as a running instance.
    let _: () = redis::cmd("DEL")
        .arg(namespace.key("instances"))
        .query(&mut namespace.connection())
        .unwrap();
}

/// Ids published by a speed-max worker started with `consume_from`, in order, and its log.
fn replay(namespace: &Namespace, consume_from: &str) -> (Vec<String>, String) {
    let path = config(
        "replay.yaml",
        &format!(
            "simulation: {{speed: max}}\n\
             timeline: {{backend: redis, consume_from: {consume_from}, redis: {{key: {}}}}}\n\
             sources: []\nsinks: [{{type: stdout}}]\n",
            namespace.0
        ),
    );
    let worker = start(&path, true);
    namespace.wait_drained(Duration::from_secs(20));
    let (stdout, stderr) = worker.stop();
    let ids = parse_lines(&stdout)
        .into_iter()
        .map(|line| {
            let payload: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
            payload["id"].as_str().unwrap().to_string()
        })
        .collect();
    (ids, stderr)
}

#[test]
fn consume_from_applies_to_what_is_in_redis_at_start() {
    let namespace = Namespace::new("from");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let year_2020 = 1_577_836_800_000;
    let stored: Vec<(i64, u64)> = (1..=10)
        .map(|id| (year_2020 + id as i64, id))
        .chain((100..=104).map(|id| (now_ms + 3_600_000 + id as i64, id)))
        .collect();

    preload(&namespace, &stored);
    let (ids, stderr) = replay(&namespace, "latest");
    assert_eq!(ids, ["100", "101", "102", "103", "104"], "{stderr}");
    assert!(stderr.contains("skipped 10 events"), "{stderr}");

    preload(&namespace, &stored);
    let (ids, stderr) = replay(&namespace, "earliest");
    let expected: Vec<String> = stored.iter().map(|(_, id)| id.to_string()).collect();
    assert_eq!(
        ids, expected,
        "earliest replays everything pending, in order:\n{stderr}"
    );
}

/// A private Redis with an append-only file synced on every write, so a restart keeps
/// everything it acknowledged.
struct PrivateRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    fn start(port: u16, dir: &std::path::Path) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateRedis {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL, a pause, and a start from the append-only file.
    fn crash_and_restart(&mut self, down_for: Duration) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(down_for);
        let restarted = PrivateRedis::start(self.port, &self.dir);
        let old = std::mem::replace(self, restarted);
        std::mem::forget(old);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_redis_restart_loses_nothing() {
    let expected = memory_stream();
    let dir = write_temp("redis.keep", "").parent().unwrap().join("redis");
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = PrivateRedis::start(common::free_port(), &dir);
    let namespace = Namespace::on(&redis.url(), "restart");
    let extra = ", lease: 2s";
    let worker = config("worker.yaml", &worker_yaml(&namespace.0, extra));
    let generator = config(
        "generator.yaml",
        &generator_yaml("redis", &namespace.0, extra),
    );
    let with_url = |path: &PathBuf| {
        let mut command = customersim();
        command
            .args(["run", "--config"])
            .arg(path)
            .env("REDIS_URL", redis.url())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let spawn = |mut command: Command| {
        let mut child = command.spawn().unwrap();
        let stdout = Some(collect(child.stdout.take().unwrap()));
        let stderr = Some(collect(child.stderr.take().unwrap()));
        Instance {
            child,
            stdout,
            stderr,
        }
    };
    let worker = spawn(with_url(&worker));
    namespace.wait_instances(1);
    let mut generator = spawn(with_url(&generator));
    std::thread::sleep(Duration::from_millis(300));
    redis.crash_and_restart(Duration::from_millis(1500));

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = generator.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the generator did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    let generated = generator.stdout.take().unwrap().join().unwrap();
    let generator_log =
        String::from_utf8_lossy(&generator.stderr.take().unwrap().join().unwrap()).to_string();
    assert!(status.success(), "generator {status:?}:\n{generator_log}");
    namespace.wait_drained(Duration::from_secs(30));
    let (stdout, worker_log) = worker.stop();
    assert!(
        format!("{generator_log}{worker_log}").contains("unavailable"),
        "the outage was noticed:\n{generator_log}\n{worker_log}"
    );
    let mut union = sorted(&generated);
    union.extend(sorted(&stdout));
    let published = count(&union);
    let missing: Vec<_> = expected
        .iter()
        .filter(|line| !published.contains_key(line.as_str()))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lost events: {missing:?}");
    assert!(
        published
            .keys()
            .all(|line| expected.binary_search_by(|e| e.as_str().cmp(line)).is_ok()),
        "only expected events"
    );
    drop(namespace);
    drop(redis);
    let _ = std::fs::remove_dir_all(dir);
}

/// `POST path body` over plain HTTP/1.1; returns (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.get(9..12)?.parse().ok()?;
    Some((status, answer.split_once("\r\n\r\n")?.1.to_string()))
}

#[test]
fn a_scenario_posted_to_one_instance_is_published_by_another_after_it_stopped() {
    let namespace = Namespace::new("scenario");
    let port = common::free_port();
    let ingress = config(
        "ingress.yaml",
        &format!(
            "timeline: {{backend: redis, consume_frequency: 0.05, redis: {{key: {}}}}}\n\
             sources: [{{type: http_ingress}}]\nsinks: [{{type: stdout}}]\n",
            namespace.0
        ),
    );
    let receiver = {
        let mut command = customersim();
        command
            .args(["run", "--config"])
            .arg(&ingress)
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = Some(collect(child.stdout.take().unwrap()));
        let stderr = Some(collect(child.stderr.take().unwrap()));
        Instance {
            child,
            stdout,
            stderr,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(port, "GET", "/health", "").is_none_or(|(status, _)| status != 200) {
        assert!(Instant::now() < deadline, "http_ingress did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Three steps due 4 to 5 s from now, in whole seconds so `ts` is exact.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let due = [now_s + 4, now_s + 5, now_s + 6];
    let body = format!(
        r#"{{"customer": {{"customer_id": "3"}}, "path": [{{"type": "ENTER", "location": {{"x": 0, "y": 0}}, "timestamp": {}}}, {{"type": "MOVE", "location": {{"x": 1, "y": 2}}, "timestamp": {}}}, {{"type": "EXIT", "location": {{"x": 0, "y": 0}}, "timestamp": {}}}]}}"#,
        due[0], due[1], due[2]
    );
    let (status, answer) = http(port, "POST", "/scenario", &body).expect("POST /scenario");
    assert_eq!((status, answer.as_str()), (200, "True"));
    assert_eq!(namespace.zcard("due"), 3, "the steps are stored in Redis");
    let (printed, _) = receiver.stop();
    assert!(
        printed.is_empty(),
        "the receiver stopped before they fell due"
    );

    let worker = start(&config("worker.yaml", &worker_yaml(&namespace.0, "")), true);
    namespace.wait_instances(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while namespace.zcard("due") > 0 || namespace.zcard("leases") > 0 {
        assert!(Instant::now() < deadline, "the scenario was not published");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (stdout, stderr) = worker.stop();
    let lines: Vec<String> = parse_lines(&stdout)
        .into_iter()
        .map(|line| format!("{} {}", line.topic, line.payload))
        .collect();
    assert_eq!(
        lines,
        [
            format!("customer/enter {{\"id\": \"3\", \"ts\": {}}}", due[0]),
            format!(
                "customer/move {{\"id\": \"3\", \"ts\": {}, \"x\": 1, \"y\": 2}}",
                due[1]
            ),
            format!("customer/exit {{\"id\": \"3\", \"ts\": {}}}", due[2]),
        ],
        "{stderr}"
    );
}
