//! The verdict's cost: `cargo bench --bench verdict`.
//!
//! Starts its own `mosquitto` (no queue or in-flight limits, no persistence) on a free port and
//! measures, for [`ROUNDS`] rounds, each in turn:
//!
//! 1. **Replies correlated per second by one subscriber.** The verdict of a pipeline with one
//!    rule (`focus` answered on a reply topic by `customer.id`) is built and started as a run
//!    starts it; it is told that [`REPLIES`] focus events were just published, then a bare
//!    rumqttc client publishes one reply to each as fast as it can (QoS 0, payloads prepared
//!    beforehand). The rate is replies / (first reply sent → the verdict counted the last one
//!    answered). **Baseline, same round**: a bare rumqttc subscriber that only counts the same
//!    replies from the same publisher (what the broker and one connection deliver at all).
//!    The verdict publishes its figures every 100 ms, so the time is at most that much long.
//! 2. **A demo-store run with the expectation on vs off** (`--speed max`, the `mqtt` sink to this
//!    broker, the testkit's responder answering each focus): events per second of the release
//!    binary, taken as the difference of a 2 h and an 8 h run so the start, the filling store
//!    and the verdict's wait for the last window cancel out. Target: on/off ≥ 0.9.
//!
//! Prints medians and the spread (lowest–highest).

use std::time::{Duration, Instant};

use customersim::batch::Batch;
use customersim::config::{Flags, resolve_text};
use customersim::env::Environment;
use customersim::pipeline::Pipeline;
use customersim::plugin_api::clock::unix_now_us;
use customersim::plugin_api::{CustomerId, Event, EventKind};
use customersim_testkit::mosquitto::Broker;
use customersim_testkit::responder::{Responder, ResponderBroker, ResponderOptions};
use customersim_testkit::run::{clean_command, run_ok};
use customersim_testkit::temp::temp_file;
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};

const ROUNDS: usize = 5;
const REPLIES: u64 = 1_000_000;

fn main() {
    let broker = Broker::start_for_benchmark("verdict-bench");
    let port = broker.port;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut matched_alone = Vec::new();
    let mut correlated = Vec::new();
    let mut bare = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let alone = correlate_alone();
        println!(
            "round {}: the correlator alone {alone:.0} replies/s",
            round + 1
        );
        matched_alone.push(alone);
        let verdict = runtime.block_on(correlate(port, round));
        let baseline = runtime.block_on(count_only(port, round));
        println!(
            "round {}: verdict {:.0} replies/s, bare subscriber {:.0}/s",
            round + 1,
            verdict,
            baseline
        );
        correlated.push(verdict);
        bare.push(baseline);
        let off = demo_events_per_second(port, round, false);
        let on = demo_events_per_second(port, round, true);
        println!(
            "round {}: demo store --speed max: expectation off {off:.0} events/s, on {on:.0} ({:.2})",
            round + 1,
            on / off
        );
        ratios.push(on / off);
    }
    println!(
        "the correlator alone (reply bytes read along the field path, matched, counted): {} replies/s",
        figure(&matched_alone)
    );
    println!(
        "replies correlated by one subscriber: {} replies/s (target ≥ 200,000/s); bare subscriber, same broker and publisher: {} /s",
        figure(&correlated),
        figure(&bare)
    );
    println!(
        "demo store with the expectation on / off: {} (target ≥ 0.90)",
        figure_ratio(&ratios)
    );
}

fn reply_topic(round: usize) -> String {
    format!("bench-verdict/{round}/{}/prediction", std::process::id())
}

/// Replies per second the verdict matched (see the module docs).
async fn correlate(port: u16, round: usize) -> f64 {
    let topic = reply_topic(round);
    let text = format!(
        "sources: [{{type: random_walk}}]\n\
         sinks: [{{type: mqtt, host: 127.0.0.1, port: {port}}}]\n\
         expect: [{{event: focus, reply_topic: {topic}, reply_field: customer.id, within: 10m}}]\n"
    );
    let resolved = resolve_text(
        &text,
        "bench",
        std::env::temp_dir(),
        &Environment::from_pairs([]),
        &Flags::default(),
    )
    .unwrap();
    let plan = Pipeline::verdict_plan(&resolved).unwrap().unwrap();
    let live = plan.live();
    let (published, running) = plan.start(None).await.unwrap();
    let events: Vec<Event> = (1..=REPLIES)
        .map(|id| Event {
            due_ms: 0,
            customer: CustomerId::Number(id),
            kind: EventKind::Focus {
                dep: "Boys",
                x: 1,
                y: 1,
            },
            store: 0,
            stamp: Default::default(),
        })
        .collect();
    published
        .send((Batch::from(events), unix_now_us()))
        .await
        .unwrap();
    // Every event known to the verdict before the first reply: otherwise replies would wait in
    // the limbo (which is bounded) instead of answering.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = live.snapshot().expectations[0].counts.clone();
        if counts.expected >= REPLIES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the events never reached the verdict: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = publish_replies(port, &topic).await;
    // Until every reply is matched, or none came for 2 s (QoS 0: a broker may drop some for a
    // subscriber that falls behind; the rate is then over those that came, and the loss shown).
    let (mut answered, mut last_change) = (0, Instant::now());
    while answered < REPLIES && last_change.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = live.snapshot().expectations[0].counts.answered;
        if now != answered {
            (answered, last_change) = (now, Instant::now());
        }
    }
    let seconds = (last_change - started).as_secs_f64();
    if answered < REPLIES {
        println!("  (the verdict got {answered} of {REPLIES} replies)");
    }
    drop(published);
    running.finish(true).await.unwrap();
    answered as f64 / seconds
}

/// Replies per second the correlator matches on its own, from their bytes: what one verdict task
/// takes before the broker and the connection bind.
fn correlate_alone() -> f64 {
    use customersim::verdict::correlate::Correlator;
    use customersim::verdict::rules::{ExpectConfig, check_rules};
    let entries: Vec<ExpectConfig> = serde_yaml::from_str(
        "- {event: focus, reply_topic: r, reply_field: customer.id, within: 10m}",
    )
    .unwrap();
    let mut correlator = Correlator::new(check_rules(&entries).unwrap().remove(0));
    for id in 1..=REPLIES {
        correlator.expect(id.to_string(), 0);
    }
    let payloads: Vec<Vec<u8>> = (1..=REPLIES)
        .map(|id| {
            format!(r#"{{"customer": {{"id": "{id}"}}, "coupon": {{"id": "1", "type": "buy_all", "department": "Boys"}}, "ts": 1700000000}}"#)
                .into_bytes()
        })
        .collect();
    let started = Instant::now();
    for payload in &payloads {
        let key = correlator.rule.reply_field.read(payload).unwrap().unwrap();
        correlator.reply(&key, 1_000);
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(correlator.counts.answered, REPLIES);
    REPLIES as f64 / seconds
}

/// The baseline: the same replies counted by a bare subscriber.
async fn count_only(port: u16, round: usize) -> f64 {
    let topic = format!("{}-bare", reply_topic(round));
    let mut options = MqttOptions::new(format!("bench-bare-{round}"), "127.0.0.1", port);
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut events) = AsyncClient::new(options, 1024);
    client.subscribe(&topic, QoS::AtMostOnce).await.unwrap();
    loop {
        if let MqttEvent::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
            break;
        }
    }
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = counted.clone();
    let counting = tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let MqttEvent::Incoming(Packet::Publish(_)) = event {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let started = publish_replies(port, &topic).await;
    // As for the verdict: until all came, or none for 2 s.
    let (mut count, mut last_change) = (0, Instant::now());
    while count < REPLIES && last_change.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = counted.load(std::sync::atomic::Ordering::Relaxed);
        if now != count {
            (count, last_change) = (now, Instant::now());
        }
    }
    counting.abort();
    drop(client);
    if count < REPLIES {
        println!("  (the bare subscriber got {count} of {REPLIES} replies)");
    }
    count as f64 / (last_change - started).as_secs_f64()
}

/// Starts a bare publisher of one reply per customer 1..=REPLIES; returns when it started.
async fn publish_replies(port: u16, topic: &str) -> Instant {
    let payloads: Vec<Vec<u8>> = (1..=REPLIES)
        .map(|id| {
            format!(r#"{{"customer": {{"id": "{id}"}}, "coupon": {{"id": "1", "type": "buy_all", "department": "Boys"}}, "ts": 1700000000}}"#)
                .into_bytes()
        })
        .collect();
    let options = MqttOptions::new(
        format!("bench-replier-{}", rand_suffix()),
        "127.0.0.1",
        port,
    );
    let (client, mut events) = AsyncClient::new(options, 10_000);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let topic = topic.to_string();
    let started = Instant::now();
    tokio::spawn(async move {
        for payload in payloads {
            client
                .publish(topic.as_str(), QoS::AtMostOnce, false, payload)
                .await
                .unwrap();
        }
        // Keep the connection until everything is written.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(client);
    });
    started
}

fn rand_suffix() -> u64 {
    unix_now_us() as u64
}

/// Events per second of a demo-store run at `--speed max` to the broker (difference of a 2 h
/// and an 8 h run), with or without the expectation, a responder answering each focus.
fn demo_events_per_second(port: u16, round: usize, expect: bool) -> f64 {
    let prefix = format!("bench-demo/{round}/{}/{expect}", std::process::id());
    let responder = expect.then(|| {
        Responder::start(
            ResponderBroker::Mqtt { port },
            ResponderOptions::new(
                &format!("{prefix}/customer/focus"),
                &format!("{prefix}/customer/prediction"),
            ),
        )
    });
    let mut config = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/retail-demo.yaml"),
    )
    .unwrap()
    .replace("customer/", &format!("{prefix}/customer/"))
    .replace(
        "path: retail-demo-customers.csv",
        &format!(
            "path: {}/configs/retail-demo-customers.csv",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .replace("average_in_store: 12", "average_in_store: 40");
    // Counted without the expectation: `--sink stdout` leaves no sink to read back through, and
    // the events are the same (same seed).
    let counted = temp_file("verdict-bench-count", "yaml");
    std::fs::write(&counted, &config).unwrap();
    if expect {
        config.push_str(&format!(
            "expect: [{{event: focus, reply_topic: {prefix}/customer/prediction, reply_field: customer.id, within: 2s}}]\n"
        ));
    }
    let file = temp_file("verdict-bench", "yaml");
    std::fs::write(&file, config).unwrap();
    let seconds = |duration: &str| {
        let started = Instant::now();
        run_ok(
            clean_command(env!("CARGO_BIN_EXE_customersim"))
                .args(["run", "--config"])
                .arg(&file)
                .args(["--speed", "max", "--seed", "7", "--duration", duration])
                .env("MQTT_HOST", "127.0.0.1")
                .env("MQTT_PORT", port.to_string()),
        );
        started.elapsed().as_secs_f64()
    };
    let events = |duration: &str| -> f64 {
        let output = run_ok(
            clean_command(env!("CARGO_BIN_EXE_customersim"))
                .args(["run", "--config"])
                .arg(&counted)
                .args([
                    "--speed",
                    "max",
                    "--seed",
                    "7",
                    "--duration",
                    duration,
                    "--sink",
                    "stdout",
                ]),
        );
        output.stdout.iter().filter(|byte| **byte == b'\n').count() as f64
    };
    let (short, long) = (seconds("2h"), seconds("8h"));
    let rate = (events("8h") - events("2h")) / (long - short);
    drop(responder);
    rate
}

fn figure(values: &[f64]) -> String {
    let (median, low, high) = spread(values);
    format!("{median:.0} ({low:.0}–{high:.0})")
}

fn figure_ratio(values: &[f64]) -> String {
    let (median, low, high) = spread(values);
    format!("{median:.2} ({low:.2}–{high:.2})")
}

fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}
