//! The verdict on the system under test through the real binary and real brokers: expectations
//! counted against what a responder on Mosquitto or RabbitMQ really did (also by shards, and by
//! instances sharing one Redis timeline), the delivery check, a broker that drops the
//! subscription mid-run, and the config errors that name their key.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use customersim_testkit::mosquitto::Broker;
use customersim_testkit::redis::Namespace;
use customersim_testkit::responder::{
    Action, Did, Responder, ResponderBroker, ResponderOptions, Tally,
};
use customersim_testkit::run::{
    Process, StdoutMode, clean_command, run_failing, run_ok, stderr_text,
};
use customersim_testkit::temp::{TempFile, temp_dir, temp_file};
use serde_json::Value;

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The demo store's pipeline with its topics under `prefix` (so tests running at once never see
/// each other's traffic), the customer list found from anywhere, and `extra` appended.
fn demo_config(prefix: &str, sink: &str, extra: &str) -> TempFile {
    let text = std::fs::read_to_string(manifest_dir().join("configs/retail-demo.yaml")).unwrap();
    let (pipeline, _) = text.split_once("sinks:").unwrap();
    let pipeline = pipeline
        .replace("customer/", &format!("{prefix}/customer/"))
        .replace(
            "path: retail-demo-customers.csv",
            &format!(
                "path: {}",
                manifest_dir()
                    .join("configs/retail-demo-customers.csv")
                    .display()
            ),
        );
    temp_file(
        "verdict.yaml",
        &format!("{pipeline}sinks:\n  - {sink}\n{extra}"),
    )
}

fn unique_prefix(label: &str) -> String {
    format!(
        "verdict-test/{label}/{}-{}",
        std::process::id(),
        customersim::plugin_api::clock::unix_now_us()
    )
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the report was written"))
        .expect("the report is JSON")
}

#[test]
fn the_demo_check_config_is_the_demo_store_plus_its_verdict() {
    let demo = std::fs::read_to_string(manifest_dir().join("configs/retail-demo.yaml")).unwrap();
    let check =
        std::fs::read_to_string(manifest_dir().join("configs/retail-demo-check.yaml")).unwrap();
    let body = |text: &str| text[text.find("simulation:").unwrap()..].to_string();
    let (check_body, _) = check
        .split_once("# ---- the verdict")
        .expect("the check config marks where its verdict starts");
    assert_eq!(body(check_body), body(&demo));
    // It validates, and validate shows the rule resolved.
    let output = run_ok(
        customersim()
            .args(["validate", "--config"])
            .arg(manifest_dir().join("configs/retail-demo-check.yaml"))
            .env("MQTT_HOST", "127.0.0.1"),
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains(
            "# expect \"coupons\": every focus event with dep in [Women, Boys, Girls, Men, Sport] expects a reply on customer/prediction whose customer.id equals the event's id, within 2s (late until 4s); read back through sinks[0] (type: mqtt)"
        ),
        "{shown}"
    );
}

#[test]
fn expectations_without_a_sink_that_reads_back_or_with_bad_keys_exit_2_naming_them() {
    let rule = "expect: [{event: focus, reply_topic: r/p, reply_field: customer.id, within: 2s}]\n";
    let config = demo_config(&unique_prefix("errors"), "{type: stdout}", rule);
    let (_, stderr) = run_failing(customersim().args(["validate", "--config"]).arg(&config), 2);
    assert!(
        stderr.contains("expect: no sink in the pipeline can read back from its broker"),
        "{stderr}"
    );
    let cases = [
        (
            "expect: [{event: focus, reply_topic: r/p, reply_field: customer.id, within: 0s}]\n",
            "expect[0].within: must be longer than 0",
        ),
        (
            "expect: [{event: exit, reply_topic: r/p, reply_field: customer.id, event_field: dep, within: 1s}]\n",
            "expect[0].event_field: \"dep\" is not a member of exit events",
        ),
        (
            "expect: [{event: focus, reply_topic: r/p, reply_field: customer.id, within: 1s, sink: 3}]\n",
            "expect[0].sink: there is no sinks[3]",
        ),
        (
            "expect: [{event: focus, reply_topic: r/p, reply_field: customer.id, within: 1s, schema: missing.json}]\n",
            "expect[0].schema: cannot read",
        ),
        (
            "delivery_check: {within: 2s, unknown: 1}\n",
            "unknown field `unknown`",
        ),
    ];
    for (extra, expected) in cases {
        let config = demo_config(
            &unique_prefix("errors"),
            "{type: mqtt, host: 127.0.0.1}",
            extra,
        );
        let (_, stderr) = run_failing(customersim().args(["validate", "--config"]).arg(&config), 2);
        assert!(stderr.contains(expected), "{extra}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|line| line.contains("error")).count(),
            1,
            "one error: {stderr}"
        );
    }
}

/// A responder that skips, delays, spoils and invents replies in known proportions.
fn demanding_responder(broker: ResponderBroker, prefix: &str) -> Responder {
    let mut options = ResponderOptions::new(
        &format!("{prefix}/customer/focus"),
        &format!("{prefix}/customer/prediction"),
    );
    options.delay = Duration::from_millis(30);
    options.skip_every = 5;
    options.late_every = 7;
    options.late_delay = Duration::from_secs(8);
    options.invalid_every = 4;
    options.unmatched_every = 6;
    Responder::start(broker, options)
}

/// The rule of these tests: in time within 4 s, late until 12 s (wide: a busy machine delays
/// a 30 ms answer by a second or more; the late ones wait 8 s).
fn rule(prefix: &str, thresholds: &str) -> String {
    format!(
        "expect:\n  - name: coupons\n    event: focus\n    reply_topic: {prefix}/customer/prediction\n    reply_field: customer.id\n    within: 4s\n    grace: 8s\n{}",
        if thresholds.is_empty() {
            String::new()
        } else {
            format!("thresholds:\n{thresholds}")
        }
    )
}

/// Replies the verdict may rightly count otherwise than the responder did, keyed by customer
/// only: the customer had another request open when the reply went out (asked before it was
/// sent, within `within + grace` before), so the reply may answer either, or it went out near
/// the 4 s limit (a busy machine can carry it past). A late reply to a skipped request can then
/// count as the in-time answer of a newer one, one late becoming one answered.
fn ambiguous_replies(actions: &[Action]) -> u64 {
    const WINDOW_US: i64 = 12_000_000;
    const NEAR_LIMIT_US: i64 = 3_000_000;
    let request = |action: &Action| matches!(action.did, Did::Skipped | Did::Answered | Did::Late);
    actions
        .iter()
        .filter(|reply| matches!(reply.did, Did::Answered | Did::Late))
        .filter(|reply| {
            let sent = reply.sent_us.expect("a reply was sent");
            let delay = sent - reply.request_us;
            let near_limit = reply.did == Did::Answered && delay > NEAR_LIMIT_US;
            near_limit
                || actions.iter().any(|other| {
                    request(other)
                        && other.customer == reply.customer
                        && other.request_us != reply.request_us
                        && other.request_us <= sent
                        && sent - other.request_us <= WINDOW_US
                })
        })
        .count() as u64
}

/// The verdict's counts equal what the responder did: exactly, but for replies that could
/// answer either of two requests (see [`ambiguous_replies`]), which may move between answered
/// and late; latencies lie within its delays.
fn assert_counts_match(report: &Value, tally: &Tally, actions: &[Action]) {
    let rule = &report["verdict"]["expectations"][0];
    let count = |key: &str| {
        rule[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {rule}"))
    };
    assert!(
        tally.expected() > 20,
        "too few focus events to judge: {tally:?}"
    );
    assert_eq!(count("expected"), tally.expected(), "{rule}\n{tally:?}");
    assert_eq!(
        count("answered") + count("late"),
        tally.answered + tally.late,
        "{rule}\n{tally:?}"
    );
    let ambiguous = ambiguous_replies(actions);
    assert!(
        count("answered").abs_diff(tally.answered) <= ambiguous,
        "answered differs by more than the {ambiguous} ambiguous replies: {rule}\n{tally:?}"
    );
    assert_eq!(count("missing"), tally.skipped, "{rule}\n{tally:?}");
    assert_eq!(count("invalid"), tally.invalid, "{rule}\n{tally:?}");
    assert_eq!(count("unexpected"), tally.unmatched, "{rule}\n{tally:?}");
    assert_eq!(count("pending"), 0);
    let latency = &rule["latency_seconds"];
    let p50 = latency["p50"].as_f64().unwrap();
    let max = latency["max"].as_f64().unwrap();
    // Every answer waited at least 30 ms; the late ones 8 s, and none took the 12 s window.
    assert!((0.03..4.0).contains(&p50), "{latency}");
    assert!((8.0..12.0).contains(&max), "{latency}");
}

#[test]
fn mqtt_replies_are_counted_as_the_responder_sent_them_and_a_breached_threshold_exits_99() {
    let prefix = unique_prefix("mqtt");
    let responder = demanding_responder(ResponderBroker::local_mqtt(), &prefix);
    let thresholds = "  replies_missing: [\"rate < 0.5\"]\n  replies_invalid: [\"count == 0\"]\n  reply_latency: [\"p(50) < 4s\"]\n";
    let config = demo_config(
        &prefix,
        "{type: mqtt, host: 127.0.0.1, qos: 1}",
        &rule(&prefix, thresholds),
    );
    let dir = temp_dir("verdict-mqtt");
    let (report, junit) = (dir.path().join("report.json"), dir.path().join("junit.xml"));
    let (_, stderr) = run_failing(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .args([
                "--speed",
                "max",
                "--seed",
                "42",
                "--duration",
                "4h",
                "--report",
            ])
            .arg(&report)
            .arg("--junit")
            .arg(&junit),
        99,
    );
    let tally = responder.wait_idle(Duration::from_secs(1), Duration::from_secs(30));
    let report = read_report(&report);
    assert_counts_match(&report, &tally, &responder.actions());
    assert!(stderr.contains("verdict\n  coupons (focus"), "{stderr}");
    assert!(stderr.contains("1 of 3 thresholds breached"), "{stderr}");

    // The JUnit file, read by a real XML parser, names the breached threshold and its value.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3, "{xml}");
    let failed: Vec<_> = cases
        .iter()
        .filter(|case| case.children().any(|child| child.has_tag_name("failure")))
        .collect();
    assert_eq!(failed.len(), 1, "{xml}");
    assert_eq!(
        failed[0].attribute("classname"),
        Some("thresholds.replies_invalid")
    );
    let message = failed[0]
        .children()
        .find(|child| child.has_tag_name("failure"))
        .and_then(|failure| failure.attribute("message"))
        .unwrap();
    assert!(message.contains(&tally.invalid.to_string()), "{message}");
    // The report has the same outcomes.
    let outcomes = report["thresholds"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(
        outcomes.iter().filter(|o| o["passed"] == false).count(),
        1,
        "{outcomes:?}"
    );
}

#[test]
fn amqp_replies_are_counted_as_the_responder_sent_them_and_passing_thresholds_exit_0() {
    let prefix = unique_prefix("amqp");
    let responder = demanding_responder(ResponderBroker::local_amqp(), &prefix);
    let thresholds = "  replies_missing: [\"rate < 0.5\"]\n  replies_late: [\"rate < 0.5\"]\n";
    let config = demo_config(
        &prefix,
        "{type: amqp, url: \"amqp://guest:guest@127.0.0.1:5672/%2f\"}",
        &rule(&prefix, thresholds),
    );
    let dir = temp_dir("verdict-amqp");
    let (report, junit) = (dir.path().join("report.json"), dir.path().join("junit.xml"));
    run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .args([
                "--speed",
                "max",
                "--seed",
                "43",
                "--duration",
                "4h",
                "--report",
            ])
            .arg(&report)
            .arg("--junit")
            .arg(&junit),
    );
    let tally = responder.wait_idle(Duration::from_secs(1), Duration::from_secs(30));
    assert_counts_match(&read_report(&report), &tally, &responder.actions());
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(
        doc.descendants()
            .filter(|node| node.has_tag_name("failure"))
            .count(),
        0,
        "{xml}"
    );
}

#[test]
fn a_broker_that_drops_the_subscription_is_reconnected_and_the_gap_is_reported() {
    let mut broker = Broker::start("verdict-gap", "allow_anonymous true", "");
    let prefix = unique_prefix("gap");
    let config = demo_config(
        &prefix,
        &format!(
            "{{type: mqtt, host: 127.0.0.1, port: {}, qos: 1, reconnect_delay_max: 1s}}",
            broker.port
        ),
        "delivery_check: {within: 10s}\n",
    );
    let dir = temp_dir("verdict-gap");
    let report = dir.path().join("report.json");
    let child = customersim()
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--speed",
            "60",
            "--seed",
            "44",
            "--duration",
            "12m",
            "--report",
        ])
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    let output = child.wait_with_output().unwrap();
    let stderr = stderr_text(&output);
    assert!(output.status.success(), "{stderr}");
    let verdict = &read_report(&report)["verdict"];
    assert!(
        verdict["subscription_gaps"].as_u64().unwrap() >= 1,
        "{verdict}"
    );
    let gap = &verdict["gaps"][0];
    let seconds = gap["seconds"].as_f64().expect("the gap ended");
    assert!((1.5..30.0).contains(&seconds), "{gap}");
    assert!(stderr.contains("reading back was interrupted"), "{stderr}");
    // Everything published before and after the gap came back.
    let delivery = &verdict["delivery"];
    assert!(delivery["received"].as_u64().unwrap() > 0, "{delivery}");
}

#[test]
fn shards_judge_what_they_published_and_their_counts_add_up_to_what_the_responder_did() {
    let prefix = unique_prefix("shards");
    let responder = demanding_responder(ResponderBroker::local_mqtt(), &prefix);
    let config = demo_config(
        &prefix,
        "{type: mqtt, host: 127.0.0.1, qos: 1}",
        &format!("fleet: {{stores: 2}}\n{}", rule(&prefix, "")),
    );
    let dir = temp_dir("verdict-shards");
    let shards: Vec<_> = (0..2)
        .map(|index| {
            let report = dir.path().join(format!("report-{index}.json"));
            let child = customersim()
                .args(["run", "--config"])
                .arg(&config)
                .args(["--speed", "max", "--seed", "45", "--duration", "4h"])
                .args(["--shard", &format!("{index}/2"), "--report"])
                .arg(&report)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (child, report)
        })
        .collect();
    let reports: Vec<Value> = shards
        .into_iter()
        .map(|(child, report)| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", stderr_text(&output));
            read_report(&report)
        })
        .collect();
    let tally = responder.wait_idle(Duration::from_secs(1), Duration::from_secs(30));
    let sum = |key: &str| -> u64 {
        reports
            .iter()
            .map(|report| {
                report["verdict"]["expectations"][0][key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{key}"))
            })
            .sum()
    };
    for report in &reports {
        assert!(
            report["verdict"]["expectations"][0]["expected"]
                .as_u64()
                .unwrap()
                > 0,
            "each shard published focus events"
        );
    }
    assert!(tally.expected() > 20, "{tally:?}");
    assert_eq!(sum("expected"), tally.expected(), "{tally:?}");
    assert_eq!(sum("answered"), tally.answered, "{tally:?}");
    assert_eq!(sum("late"), tally.late, "{tally:?}");
    assert_eq!(sum("missing"), tally.skipped, "{tally:?}");
    assert_eq!(sum("invalid"), tally.invalid, "{tally:?}");
    assert_eq!(sum("unexpected"), tally.unmatched, "{tally:?}");
}

/// The demo store's pipeline on the Redis timeline `namespace`: a generator shopping from the
/// customers of the demo's list whose id is `first..=last` (generators get lists of their own), or
/// a publish-only worker (`None`). Returns the config and the list it names.
fn redis_instance_config(
    prefix: &str,
    namespace: &str,
    customers: Option<(u32, u32)>,
    extra: &str,
) -> (TempFile, Option<TempFile>) {
    let text = std::fs::read_to_string(manifest_dir().join("configs/retail-demo.yaml")).unwrap();
    let (pipeline, _) = text.split_once("sinks:").unwrap();
    let (head, sources) = pipeline.split_once("sources:").unwrap();
    let head = head
        .replace("customer/", &format!("{prefix}/customer/"))
        .replace(
            "  backend: memory\n  consume_from: latest\n",
            &format!("  backend: redis\n  consume_from: earliest\n  redis: {{key: {namespace}}}\n"),
        );
    assert!(
        head.contains("backend: redis"),
        "the demo's timeline section moved"
    );
    let (sources, list) = match customers {
        None => ("sources: []\n".to_string(), None),
        Some((first, last)) => {
            let csv =
                std::fs::read_to_string(manifest_dir().join("configs/retail-demo-customers.csv"))
                    .unwrap();
            let mut lines = csv.lines();
            let mut list = format!("{}\n", lines.next().unwrap());
            for line in lines {
                let id: u32 = line.split(',').next().unwrap().parse().unwrap();
                if (first..=last).contains(&id) {
                    list.push_str(line);
                    list.push('\n');
                }
            }
            let list = temp_file("customers.csv", &list);
            let sources = format!(
                "sources:{}",
                sources.replace(
                    "path: retail-demo-customers.csv",
                    &format!("path: {}", list.path().display())
                )
            );
            (sources, Some(list))
        }
    };
    let config = temp_file(
        "verdict-redis.yaml",
        &format!("{head}{sources}sinks:\n  - {{type: mqtt, host: 127.0.0.1, qos: 1}}\n{extra}"),
    );
    (config, list)
}

/// Issue 18, item 1: instances sharing one Redis timeline publish each other's events and each
/// reads every reply, yet each judges the replies to what it published, counts nobody's reply as
/// unexpected, and one of them counts a reply that answers nothing (or is invalid): their figures
/// add up to exactly what the responder did.
#[test]
fn instances_sharing_a_redis_timeline_judge_what_they_published_and_add_up() {
    let prefix = unique_prefix("redis");
    let namespace = Namespace::new("verdict");
    let mut options = ResponderOptions::new(
        &format!("{prefix}/customer/focus"),
        &format!("{prefix}/customer/prediction"),
    );
    options.delay = Duration::from_millis(30);
    options.skip_every = 5;
    options.invalid_every = 4;
    options.unmatched_every = 6;
    let responder = Responder::start(ResponderBroker::local_mqtt(), options);
    // `within` longer than the whole run (two simulated hours at 720×: 10 s), so that a reply,
    // whichever of its customer's open events it answers (the oldest), is in time.
    let rule = format!(
        "expect:\n  - name: coupons\n    event: focus\n    reply_topic: {prefix}/customer/prediction\n    reply_field: customer.id\n    within: 12s\n    grace: 1s\n"
    );
    let dir = temp_dir("verdict-redis");
    let report = |name: &str| dir.path().join(format!("report-{name}.json"));
    // A publish-only worker first (it waits for the clock), then two generators with lists of
    // their own.
    let (worker_config, _) = redis_instance_config(&prefix, namespace.name(), None, &rule);
    let worker = Process::start(
        customersim()
            .args(["run", "--config"])
            .arg(worker_config.path())
            .arg("--report")
            .arg(report("worker")),
        StdoutMode::Discard,
    );
    let generators: Vec<_> = [(1, 23, "50"), (24, 46, "51")]
        .into_iter()
        .map(|(first, last, seed)| {
            let files =
                redis_instance_config(&prefix, namespace.name(), Some((first, last)), &rule);
            let child = customersim()
                .args(["run", "--config"])
                .arg(files.0.path())
                .args([
                    "--speed",
                    "720",
                    "--seed",
                    seed,
                    "--duration",
                    "2h",
                    "--report",
                ])
                .arg(report(seed))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (child, files)
        })
        .collect();
    for (child, _) in generators {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr_text(&output));
    }
    let tally = responder.wait_idle(Duration::from_secs(1), Duration::from_secs(30));
    // Each generator waited for the window of the last event it published; the worker stops once
    // the window of the last event anyone published is over too (13 s, a second for the replies
    // to settle, and a margin), so it has nothing pending.
    let last_request_us = responder
        .actions()
        .iter()
        .map(|action| action.request_us)
        .max()
        .expect("requests came");
    let stop_at_us = last_request_us + 16_000_000;
    let now_us = customersim::plugin_api::clock::unix_now_us();
    if stop_at_us > now_us {
        std::thread::sleep(Duration::from_micros((stop_at_us - now_us) as u64));
    }
    worker.terminate();
    let worker = worker.finish();
    assert!(worker.status.success(), "{}", worker.stderr);
    let reports: Vec<Value> = ["worker", "50", "51"]
        .into_iter()
        .map(|name| read_report(&report(name)))
        .collect();
    let figures = |key: &str| -> Vec<u64> {
        reports
            .iter()
            .map(|report| {
                report["verdict"]["expectations"][0][key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{key} in {report}"))
            })
            .collect()
    };
    let sum = |key: &str| -> u64 { figures(key).iter().sum() };
    let shown: Vec<String> = [
        "expected",
        "answered",
        "late",
        "missing",
        "unexpected",
        "invalid",
        "foreign",
        "pending",
    ]
    .iter()
    .map(|key| format!("{key} {:?}", figures(key)))
    .collect();
    let shown = format!("{tally:?}\nworker, generators: {}", shown.join(", "));
    assert!(tally.expected() > 40, "{shown}");
    assert!(tally.invalid > 0 && tally.unmatched > 0, "{shown}");
    assert!(
        figures("expected").iter().all(|expected| *expected > 0),
        "each instance published focus events: {shown}"
    );
    assert_eq!(sum("expected"), tally.expected(), "{shown}");
    assert_eq!(sum("answered"), tally.answered, "{shown}");
    assert_eq!(sum("late"), 0, "{shown}");
    assert_eq!(sum("missing"), tally.skipped, "{shown}");
    assert_eq!(sum("unexpected"), tally.unmatched, "{shown}");
    assert_eq!(sum("invalid"), tally.invalid, "{shown}");
    assert_eq!(sum("pending"), 0, "{shown}");
    assert!(
        figures("foreign").iter().all(|foreign| *foreign > 0),
        "each instance read replies to the others' events: {shown}"
    );
    // Every reply was judged by every instance: its own, or another's (foreign).
    let replies = tally.answered + tally.invalid + tally.unmatched;
    for (name, report) in ["worker", "50", "51"].iter().zip(&reports) {
        let rule = &report["verdict"]["expectations"][0];
        let judged: u64 = ["answered", "late", "unexpected", "invalid", "foreign"]
            .iter()
            .map(|key| rule[key].as_u64().unwrap())
            .sum();
        assert!(
            judged <= replies,
            "{name} judged more replies than came: {shown}"
        );
    }
}

#[test]
fn the_delivery_check_reads_back_every_event_at_each_mqtt_qos_and_over_amqp() {
    // A broker of its own that queues without limit for a slow reader (the shared one drops
    // beyond 1,000 queued messages, which a debug build's burst at --speed max exceeds: what
    // the check is for, but not what this test asks).
    let broker = Broker::start("verdict-delivery", "allow_anonymous true", "");
    let port = broker.port;
    let sinks = [
        format!("{{type: mqtt, host: 127.0.0.1, port: {port}, qos: 0}}"),
        format!("{{type: mqtt, host: 127.0.0.1, port: {port}, qos: 1}}"),
        format!("{{type: mqtt, host: 127.0.0.1, port: {port}, qos: 2}}"),
        "{type: amqp, url: \"amqp://guest:guest@127.0.0.1:5672/%2f\"}".to_string(),
    ];
    for sink in sinks {
        let prefix = unique_prefix("delivery");
        let config = demo_config(
            &prefix,
            &sink,
            "delivery_check: {within: 5s}\nthresholds: {delivery_lost: [\"count == 0\"]}\n",
        );
        let dir = temp_dir("verdict-delivery");
        let report = dir.path().join("report.json");
        let output = run_ok(
            customersim()
                .args(["run", "--config"])
                .arg(&config)
                .args([
                    "--speed",
                    "max",
                    "--seed",
                    "46",
                    "--duration",
                    "1h",
                    "--report",
                ])
                .arg(&report),
        );
        let report = read_report(&report);
        let delivery = &report["verdict"]["delivery"];
        let published = delivery["published"].as_u64().unwrap();
        assert_eq!(
            published,
            report["events"].as_u64().unwrap(),
            "{sink}: {delivery}"
        );
        assert_eq!(
            delivery["received"].as_u64().unwrap(),
            published,
            "{sink}: {delivery}"
        );
        for key in ["lost", "duplicates", "foreign", "untracked", "pending"] {
            assert_eq!(
                delivery[key].as_u64(),
                Some(0),
                "{sink}: {key} in {delivery}"
            );
        }
        let max = delivery["latency_seconds"]["max"].as_f64().unwrap();
        assert!(max > 0.0 && max < 5.0, "{sink}: {delivery}");
        let stderr = stderr_text(&output);
        assert!(
            stderr.contains(&format!(
                "delivery: received {published} of {published} published"
            )),
            "{sink}: {stderr}"
        );
    }
}

#[test]
fn a_breached_abort_on_fail_threshold_stops_the_run_early_and_exits_99() {
    let prefix = unique_prefix("abort");
    // Nobody answers: the first focus event goes missing 5 s after it was published.
    let config = demo_config(
        &prefix,
        "{type: mqtt, host: 127.0.0.1}",
        &rule(
            &prefix,
            "  replies_missing: [{threshold: \"count == 0\", abort_on_fail: true}]\n",
        ),
    );
    let started = std::time::Instant::now();
    let (_, stderr) = run_failing(
        customersim().args(["run", "--config"]).arg(&config).args([
            "--speed",
            "60",
            "--seed",
            "47",
            "--duration",
            "3h",
        ]),
        99,
    );
    // Three simulated hours at speed 60 would take three minutes.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("threshold replies_missing count == 0 breached"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopping the run (abort_on_fail)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the run was stopped by replies_missing"),
        "{stderr}"
    );
}

#[test]
fn replies_that_fail_the_rules_schema_are_invalid_and_answer_nothing() {
    let prefix = unique_prefix("schema");
    let responder = Responder::start(
        ResponderBroker::local_mqtt(),
        ResponderOptions::new(
            &format!("{prefix}/customer/focus"),
            &format!("{prefix}/customer/prediction"),
        ),
    );
    let dir = temp_dir("verdict-schema");
    // The responder sends `ts` as a number; this schema wants text.
    let schema = dir.path().join("prediction.schema.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["customer", "ts"], "properties": {"ts": {"type": "string"}}}"#,
    )
    .unwrap();
    let config = demo_config(
        &prefix,
        "{type: mqtt, host: 127.0.0.1}",
        &format!(
            "expect: [{{event: focus, reply_topic: {prefix}/customer/prediction, reply_field: customer.id, within: 1s, schema: {}}}]\n",
            schema.display()
        ),
    );
    let report = dir.path().join("report.json");
    run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .args([
                "--speed",
                "max",
                "--seed",
                "48",
                "--duration",
                "2h",
                "--report",
            ])
            .arg(&report),
    );
    let tally = responder.wait_idle(Duration::from_secs(1), Duration::from_secs(30));
    let rule = &read_report(&report)["verdict"]["expectations"][0];
    assert!(tally.answered > 5, "{tally:?}");
    assert_eq!(rule["invalid"].as_u64(), Some(tally.answered), "{rule}");
    assert_eq!(rule["answered"].as_u64(), Some(0), "{rule}");
    assert_eq!(rule["missing"].as_u64(), Some(tally.expected()), "{rule}");
}

#[test]
fn a_threshold_on_a_metric_the_pipeline_cannot_measure_exits_2_naming_it() {
    let prefix = unique_prefix("unmeasured");
    let cases = [
        (
            "thresholds: {reply_latency: [\"p(99) < 2s\"]}\n",
            "thresholds.reply_latency",
        ),
        (
            "thresholds: {delivery_lost: [\"count == 0\"]}\n",
            "thresholds.delivery_lost",
        ),
    ];
    for (extra, key) in cases {
        let config = demo_config(&prefix, "{type: stdout}", extra);
        let (_, stderr) = run_failing(customersim().args(["run", "--config"]).arg(&config), 2);
        assert!(stderr.contains(key), "{stderr}");
    }
    // publish_lateness is not measured on a virtual clock.
    let config = demo_config(
        &prefix,
        "{type: stdout}",
        "thresholds: {publish_lateness: [\"p(99) < 2ms\"]}\n",
    );
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate", "--config"])
            .arg(&config)
            .env("SIMULATION_SPEED", "max"),
        2,
    );
    assert!(stderr.contains("thresholds.publish_lateness"), "{stderr}");
}

#[test]
fn the_mqtt_sink_reads_back_over_mutual_tls_with_its_own_certificates() {
    let (broker, pki) = Broker::start_tls("verdict-mtls", "allow_anonymous true", true);
    let prefix = unique_prefix("mtls");
    let config = demo_config(
        &prefix,
        &format!(
            "{{type: mqtt, host: localhost, port: {}, qos: 1, broker_cert_file: {}}}",
            broker.port,
            pki.ca.display()
        ),
        "delivery_check: {within: 5s}\n",
    );
    let dir = temp_dir("verdict-mtls");
    let report = dir.path().join("report.json");
    run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .args([
                "--speed",
                "max",
                "--seed",
                "49",
                "--duration",
                "1h",
                "--report",
            ])
            .arg(&report)
            .env("MQTT_CLIENT_CERT_FILE", &pki.client_cert)
            .env("MQTT_CLIENT_KEY_FILE", &pki.client_key),
    );
    let delivery = &read_report(&report)["verdict"]["delivery"];
    let published = delivery["published"].as_u64().unwrap();
    assert!(published > 100, "{delivery}");
    assert_eq!(delivery["received"].as_u64(), Some(published), "{delivery}");

    // Without the client certificate the subscription fails as the sink would: exit 1, why.
    let (_, stderr) = run_failing(
        customersim().args(["run", "--config"]).arg(&config).args([
            "--speed",
            "max",
            "--seed",
            "49",
            "--duration",
            "1h",
        ]),
        1,
    );
    assert!(stderr.contains("reading back for the verdict"), "{stderr}");
}
