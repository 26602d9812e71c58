//! The `redis` timeline backend against the real Redis on 127.0.0.1:6379: several instances share
//! one timeline, every event is published once, and a killed instance loses nothing. Each test
//! uses its own key namespace and deletes it afterwards.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use customersim_testkit::http::HttpClient;
use customersim_testkit::net::free_port;
use customersim_testkit::pki::TestPki;
use customersim_testkit::redis::{Namespace, PrivateRedis};
use customersim_testkit::run::{Process, StdoutMode, clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::{temp_dir, temp_file};

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
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
    let path = temp_file("memory.yaml", &generator_yaml("memory", "unused", ""));
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

/// Runs `config`, its stdout collected (or left unread, so that a full pipe blocks it).
fn start(config: &Path, read_stdout: bool) -> Process {
    let mode = if read_stdout {
        StdoutMode::Collect
    } else {
        StdoutMode::Unread
    };
    Process::start(customersim().args(["run", "--config"]).arg(config), mode)
}

/// SIGTERM, then what it printed (stdout, stderr); asserts it exited 0.
fn stop(instance: Process) -> (Vec<u8>, String) {
    instance.terminate();
    finish(instance)
}

/// Waits for the exit, then what it printed (stdout, stderr); asserts it exited 0.
fn finish(instance: Process) -> (Vec<u8>, String) {
    let finished = instance.finish();
    assert!(
        finished.status.success(),
        "exit {:?}:\n{}",
        finished.status,
        finished.stderr
    );
    (finished.stdout, finished.stderr)
}

fn count(lines: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    counts
}

/// Every event of `expected` (sorted) was published by one of the instances whose stdout is in
/// `outputs`, some maybe twice (a lease taken over), and nothing else was.
fn assert_nothing_lost(expected: &[String], outputs: &[&[u8]]) {
    let union: Vec<String> = outputs.iter().flat_map(|stdout| sorted(stdout)).collect();
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
}

#[test]
fn one_generator_and_two_workers_publish_the_memory_stream_exactly_once() {
    let expected = memory_stream();
    assert!(expected.len() > 5_000, "{} events", expected.len());
    let namespace = Namespace::new("share");
    let worker = temp_file("worker.yaml", &worker_yaml(namespace.name(), ""));
    let workers = [start(&worker, true), start(&worker, true)];
    namespace.wait_instances(2);
    let generator = temp_file(
        "generator.yaml",
        &generator_yaml("redis", namespace.name(), ""),
    );
    let generated = run_ok(customersim().args(["run", "--config"]).arg(&generator));
    namespace.wait_drained(Duration::from_secs(20));
    let mut union = sorted(&generated.stdout);
    let mut shares = vec![union.len()];
    for worker in workers {
        let (stdout, _) = stop(worker);
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

/// The demo store's `store:` section (departments, rooms with `focus: false`), as JSON.
fn demo_store() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/retail-demo.yaml"
    ))
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::to_string(&doc["store"]).unwrap()
}

#[test]
fn focus_is_made_once_by_the_generating_instance_and_published_once() {
    // Focus events are made where the events are scheduled (the generator's focus stage), before
    // the shared timeline: the workers publish them as any other event, none twice, none lost.
    let focus = format!(
        "store: {}\ntopics: {{focus: customer/focus}}\n",
        demo_store()
    );
    let generator = |backend: &str, namespace: &str| {
        format!(
            "{focus}{}",
            generator_yaml(backend, namespace, "").replace(
                "average_in_store: 40\n",
                "average_in_store: 40\n    mean_dwell: 5s\n"
            )
        )
    };
    let memory = temp_file("memory-focus.yaml", &generator("memory", "unused"));
    let expected = sorted(
        &run_ok(
            customersim()
                .args(["run", "--speed", "max", "--config"])
                .arg(&memory),
        )
        .stdout,
    );
    let focuses = expected
        .iter()
        .filter(|line| line.starts_with("customer/focus "))
        .count();
    assert!(focuses > 50, "{focuses} focus events");
    let namespace = Namespace::new("focus");
    let worker = temp_file(
        "worker-focus.yaml",
        &format!("{focus}{}", worker_yaml(namespace.name(), "")),
    );
    let workers = [start(&worker, true), start(&worker, true)];
    namespace.wait_instances(2);
    let config = temp_file(
        "generator-focus.yaml",
        &generator("redis", namespace.name()),
    );
    let generated = run_ok(customersim().args(["run", "--config"]).arg(&config));
    namespace.wait_drained(Duration::from_secs(20));
    let mut union = sorted(&generated.stdout);
    let mut shares = vec![count_focus(&union)];
    for worker in workers {
        let (stdout, _) = stop(worker);
        let lines = sorted(&stdout);
        shares.push(count_focus(&lines));
        union.extend(lines);
    }
    union.sort();
    let duplicates: Vec<_> = count(&union)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .take(5)
        .collect();
    assert!(duplicates.is_empty(), "published twice: {duplicates:?}");
    assert_eq!(
        count_focus(&union),
        focuses,
        "focus events by instance: {shares:?}"
    );
    assert!(
        shares[1..].iter().all(|share| *share > 0),
        "the workers publish focus events too: {shares:?}"
    );
    assert!(union == expected, "the union differs from the memory run");
}

fn count_focus(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|line| line.starts_with("customer/focus "))
        .count()
}

#[test]
fn a_worker_killed_while_holding_a_lease_loses_nothing() {
    let expected = memory_stream();
    let namespace = Namespace::new("kill");
    let lease = ", lease: 2s";
    let worker = temp_file("worker.yaml", &worker_yaml(namespace.name(), lease));
    // The doomed worker's stdout is not read: once the pipe is full its sink blocks in the middle
    // of a batch, so it dies holding a lease on events it has not published.
    let mut doomed = start(&worker, false);
    let survivor = start(&worker, true);
    namespace.wait_instances(2);
    let generator = temp_file(
        "generator.yaml",
        &generator_yaml("redis", namespace.name(), lease),
    );
    let generator = start(&generator, true);
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
    doomed.child().kill().unwrap(); // SIGKILL
    doomed.child().wait().unwrap();
    let mut pipe = Vec::new();
    doomed
        .child()
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
    let (generated, generator_log) = finish(generator);
    namespace.wait_drained(Duration::from_secs(30));
    let (stdout, stderr) = stop(survivor);
    assert!(
        format!("{stderr}{generator_log}").contains("expired lease"),
        "another instance took the dead worker's lease:\n{stderr}"
    );
    assert_nothing_lost(&expected, &[&generated, &stdout, &pipe]);
    assert!(
        !pipe.is_empty(),
        "the killed worker had published some events"
    );
}

/// A generating instance's Redis timeline on `namespace` (and its settings), opened directly.
async fn open_redis(
    namespace: &Namespace,
) -> (
    customersim_timeline_redis::RedisConfig,
    customersim_timeline_redis::RedisTimeline,
) {
    let config = customersim_timeline_redis::RedisConfig {
        url: customersim::plugin_api::CredentialUrl::new(namespace.url()),
        key: namespace.name().to_string(),
        ..Default::default()
    };
    let cx = customersim_testkit::timeline::generating_from_zero();
    let (timeline, _) = customersim_timeline_redis::RedisTimeline::open(&config, &cx)
        .await
        .unwrap();
    (config, timeline)
}

/// Puts `events` (due ms, id) on the namespace's timeline as enter events, through the library,
/// as an instance with sources on a virtual clock that then leaves: the clock stays (events wait)
/// and a worker adopts it.
fn preload(namespace: &Namespace, events: &[(i64, u64)]) {
    use customersim::plugin_api::{CustomerId, Event, EventKind, Timeline};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (_, timeline) = open_redis(namespace).await;
        let events = events
            .iter()
            .map(|(due_ms, id)| Event {
                due_ms: *due_ms,
                customer: CustomerId::Number(*id),
                kind: EventKind::Enter,
                store: 0,
                stamp: Default::default(),
            })
            .collect();
        timeline.schedule(events).await.unwrap();
        // Its heartbeat would count as a running instance.
        timeline.leave().await;
    });
}

/// Ids published by a speed-max worker started with `consume_from`, in order, and its log.
fn replay(namespace: &Namespace, consume_from: &str) -> (Vec<String>, String) {
    let path = temp_file(
        "replay.yaml",
        &format!(
            "simulation: {{speed: max}}\n\
             timeline: {{backend: redis, consume_from: {consume_from}, redis: {{key: {}}}}}\n\
             sources: []\nsinks: [{{type: stdout}}]\n",
            namespace.name()
        ),
    );
    let worker = start(&path, true);
    namespace.wait_drained(Duration::from_secs(20));
    let (stdout, stderr) = stop(worker);
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

#[test]
fn a_redis_restart_loses_nothing() {
    let expected = memory_stream();
    let mut redis = PrivateRedis::start();
    let namespace = Namespace::on(&redis.url(), "restart");
    let extra = ", lease: 2s";
    let worker = temp_file("worker.yaml", &worker_yaml(namespace.name(), extra));
    let generator = temp_file(
        "generator.yaml",
        &generator_yaml("redis", namespace.name(), extra),
    );
    let url = redis.url();
    let spawn = |path: &Path| {
        Process::start(
            customersim()
                .args(["run", "--config"])
                .arg(path)
                .env("REDIS_URL", &url),
            StdoutMode::Collect,
        )
    };
    let worker = spawn(&worker);
    namespace.wait_instances(1);
    let mut generator = spawn(&generator);
    std::thread::sleep(Duration::from_millis(300));
    redis.crash_and_restart(Duration::from_millis(1500));

    generator.wait(Duration::from_secs(60));
    let (generated, generator_log) = finish(generator);
    namespace.wait_drained(Duration::from_secs(30));
    let (stdout, worker_log) = stop(worker);
    assert!(
        format!("{generator_log}{worker_log}").contains("unavailable"),
        "the outage was noticed:\n{generator_log}\n{worker_log}"
    );
    assert_nothing_lost(&expected, &[&generated, &stdout]);
    drop(namespace);
}

#[test]
fn a_scenario_posted_to_one_instance_is_published_by_another_after_it_stopped() {
    let namespace = Namespace::new("scenario");
    let port = free_port();
    let ingress = temp_file(
        "ingress.yaml",
        &format!(
            "timeline: {{backend: redis, consume_frequency: 0.05, redis: {{key: {}}}}}\n\
             sources: [{{type: http_ingress}}]\nsinks: [{{type: stdout}}]\n",
            namespace.name()
        ),
    );
    let receiver = Process::start(
        customersim()
            .args(["run", "--config"])
            .arg(&ingress)
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}")),
        StdoutMode::Collect,
    );
    let http = HttpClient::local(port);
    http.wait_until_healthy(Duration::from_secs(20));
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
    let answer = http.post("/scenario", &body);
    assert_eq!((answer.status, answer.body.as_str()), (200, "True"));
    assert_eq!(namespace.zcard("due"), 3, "the steps are stored in Redis");
    let (printed, _) = stop(receiver);
    assert!(
        printed.is_empty(),
        "the receiver stopped before they fell due"
    );

    let worker_config = temp_file("worker.yaml", &worker_yaml(namespace.name(), ""));
    let worker = start(&worker_config, true);
    namespace.wait_instances(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while namespace.zcard("due") > 0 || namespace.zcard("leases") > 0 {
        assert!(Instant::now() < deadline, "the scenario was not published");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (stdout, stderr) = stop(worker);
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

#[test]
fn rediss_to_a_tls_redis_with_its_ca_and_a_client_certificate() {
    let expected = memory_stream();
    let dir = temp_dir("rediss");
    let pki = TestPki::generate(dir.path(), "");
    let generator = temp_file("generator.yaml", &generator_yaml("redis", "rediss", ""));
    let run = |redis: &PrivateRedis| {
        let mut command = customersim();
        command
            .args(["run", "--config"])
            .arg(&generator)
            .env("REDIS_URL", redis.url())
            .env("REDIS_CA_FILE", &pki.ca);
        command
    };

    // TLS only (`--port 0`), no client certificate asked: the CA file is all it takes.
    let redis = PrivateRedis::start_tls(&pki, false);
    assert!(redis.url().starts_with("rediss://"));
    let output = run_ok(&mut run(&redis));
    assert_eq!(sorted(&output.stdout), expected);

    // `--tls-auth-clients yes` (Redis's default): with the client certificate and key.
    let redis = PrivateRedis::start_tls(&pki, true);
    let output = run_ok(
        run(&redis)
            .env("REDIS_CLIENT_CERT_FILE", &pki.client_cert)
            .env("REDIS_CLIENT_KEY_FILE", &pki.client_key),
    );
    assert_eq!(sorted(&output.stdout), expected);

    // A key that is not the certificate's: exit 2, naming both settings, before connecting.
    let (_, stderr) = run_failing(
        run(&redis)
            .env("REDIS_CLIENT_CERT_FILE", &pki.client_cert)
            .env("REDIS_CLIENT_KEY_FILE", &pki.server_key),
        2,
    );
    assert!(
        stderr.contains("REDIS_CLIENT_CERT_FILE") && stderr.contains("cannot be used together"),
        "{stderr}"
    );

    // A CA that did not sign the server's certificate: one TLS error, exit 1, no retrying.
    let other = TestPki::generate(dir.path(), "other-");
    let (_, stderr) = run_failing(
        run(&redis)
            .env("REDIS_CA_FILE", &other.ca)
            .env("REDIS_CLIENT_CERT_FILE", &pki.client_cert)
            .env("REDIS_CLIENT_KEY_FILE", &pki.client_key),
        1,
    );
    assert!(
        stderr.contains("TLS failed") && stderr.contains("REDIS_CA_FILE"),
        "{stderr}"
    );

    // TLS files with a plain redis:// URL: exit 2 naming the setting.
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate", "--config"])
            .arg(&generator)
            .env("REDIS_URL", "redis://127.0.0.1:6379/0")
            .env("REDIS_CA_FILE", &pki.ca),
        2,
    );
    assert!(
        stderr.contains("REDIS_CA_FILE") && stderr.contains("rediss://"),
        "{stderr}"
    );
}

/// Issue 20, finding 8: a malformed REDIS_URL (no `//`, no host, a bad port, another scheme, a
/// password with an unencoded `/`) is refused by `validate` and `run` with exit 2 naming
/// REDIS_URL, and the password is in neither stream.
#[test]
fn malformed_urls_are_refused_without_showing_the_password() {
    const PASSWORD: &str = "S3cretPassw0rd";
    for url in [
        format!("redis:/:{PASSWORD}@127.0.0.1/0"),
        format!("redis::{PASSWORD}@127.0.0.1"),
        format!("redis:///{PASSWORD}@127.0.0.1"),
        format!("redis://:12/{PASSWORD}@127.0.0.1:6379/0"),
        format!("redis://:{PASSWORD}@127.0.0.1:99999/0"),
        format!("http://:{PASSWORD}@127.0.0.1/"),
        format!(":{PASSWORD}@127.0.0.1"),
    ] {
        for args in [
            &["validate"][..],
            &["run", "--speed", "max", "--duration", "1h"][..],
        ] {
            let output = customersim()
                .args(args)
                .env("SINKS", "stdout")
                .env("TIMELINE_BACKEND", "redis")
                .env("REDIS_URL", &url)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{url} {args:?}: {stderr}");
            assert!(stderr.contains("REDIS_URL"), "{url} {args:?}: {stderr}");
            assert!(
                !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
                "{url} {args:?}: password shown:\n{stdout}\n{stderr}"
            );
        }
    }
}

/// The verdict's peers on Redis (`peers.lua`): what one instance records, another finds under the
/// rule and key (never its own), every judge is listed with its reading interval and how far it
/// recorded, a record sent twice is one, and every key the exchanges wrote expires.
#[test]
fn verdict_peers_find_each_others_records_and_list_the_judges() {
    use customersim::plugin_api::{PeerLookup, PeerRecord, PeerUpdate, Peers, Timeline};
    use std::sync::Arc;
    let namespace = Namespace::new("peers");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (config, a) = open_redis(&namespace).await;
        let (_, b) = open_redis(&namespace).await;
        let (peers_a, peers_b) = (a.peers(&config), b.peers(&config));
        let rule: Arc<str> = Arc::from("coupons");
        let now = customersim::plugin_api::clock::unix_now_us();
        let record = |key: &str, published_us: i64, seq: u64| PeerRecord {
            rule: rule.clone(),
            key: key.into(),
            published_us,
            expires_us: published_us + 30_000_000,
            seq,
        };
        // Records published in (after, until].
        let lookup = |rule: &Arc<str>, key: &str, after_us: i64, until_us: i64| PeerLookup {
            rule: rule.clone(),
            key: key.into(),
            after_us,
            until_us,
        };
        let all = |rule: &Arc<str>, key: &str| lookup(rule, key, now - 1_000, now + 1_000);
        let sent = PeerUpdate {
            records: vec![
                record("7", now, 1),
                record("7", now + 5, 2),
                record("8", now, 3),
            ],
            recorded_until_us: now + 10,
            reading_from_us: now - 100,
            reading_until_us: None,
            lookups: vec![all(&rule, "7")],
        };
        let seen_by_a = peers_a.exchange(&sent).await.unwrap();
        assert_eq!(
            seen_by_a.found,
            vec![vec![]],
            "its own records are not found"
        );
        // Sent again (an answer lost): the same records.
        peers_a.exchange(&sent).await.unwrap();
        let asked = PeerUpdate {
            records: vec![record("7", now + 7, 1)],
            recorded_until_us: now + 20,
            reading_from_us: now,
            reading_until_us: Some(now + 50),
            lookups: vec![
                all(&rule, "7"),
                all(&rule, "9"),
                all(&Arc::from("other"), "7"),
                lookup(&rule, "7", now, now + 5),
                lookup(&rule, "7", now - 1, now + 4),
            ],
        };
        let seen_by_b = peers_b.exchange(&asked).await.unwrap();
        let published: Vec<Vec<i64>> = seen_by_b
            .found
            .iter()
            .map(|entries| entries.iter().map(|entry| entry.published_us).collect())
            .collect();
        assert_eq!(
            published,
            vec![vec![now, now + 5], vec![], vec![], vec![now + 5], vec![now]]
        );
        let mut judges = seen_by_b.judges.clone();
        judges.sort_by_key(|judge| !judge.me);
        assert_eq!(judges.len(), 2, "{judges:?}");
        assert_eq!(judges[0].id, b.instance());
        assert_eq!(
            (
                judges[0].reading_from_us,
                judges[0].reading_until_us,
                judges[0].recorded_until_us
            ),
            (now, Some(now + 50), now + 20)
        );
        assert_eq!(judges[1].id, a.instance());
        assert_eq!(
            (judges[1].reading_until_us, judges[1].recorded_until_us),
            (None, now + 10)
        );
        // A sees B's record of key 7 now, under its instance.
        let again = peers_a
            .exchange(&PeerUpdate {
                lookups: vec![all(&rule, "7")],
                ..sent.clone()
            })
            .await
            .unwrap();
        assert_eq!(again.found[0].len(), 1);
        assert_eq!(again.found[0][0].published_us, now + 7);

        // Every key written lives for a while only.
        let mut connection = namespace.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{}}}:*", namespace.name()))
            .query(&mut connection)
            .unwrap();
        let verdict_keys: Vec<&String> = keys
            .iter()
            .filter(|key| key.contains(":judg") || key.contains(":expect:"))
            .collect();
        assert_eq!(verdict_keys.len(), 4, "{keys:?}");
        for key in verdict_keys {
            let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut connection).unwrap();
            assert!(ttl > 0 && ttl <= 60_000, "{key}: {ttl} ms");
        }
        a.leave().await;
        b.leave().await;
    });
}
