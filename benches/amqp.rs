//! Throughput of the `amqp` sink into RabbitMQ (127.0.0.1:5672, guest/guest), next to a bare
//! lapin publish loop measured in the same run, with publisher confirms on and off.
//!
//! ```sh
//! cargo bench --bench amqp
//! ```
//!
//! The events are those of one simulated run (about 200,000; seed 5, 9 hours, 100 shoppers on
//! average), published to `amq.topic` with routing keys `customer.*` and counted by a no-ack
//! consumer of a queue bound with `customer.#`, in this process on a connection and thread of its
//! own (as the mqtt bench counts with a subscriber). Both publishers are child processes: the
//! `customersim` binary (`--speed max`, simulation included) and this binary re-run as the bare
//! loop, which publishes the same routing keys, payloads and properties, prepared beforehand, on
//! one channel. The loop is the strong baseline for lapin throughput: it keeps [`WINDOW`]
//! publishes in flight, each queued in order and awaited only when the window slides past it, so
//! socket writes and confirms overlap (never one await per message); it ends by closing the
//! connection (the broker's close-ok says it read every publish). A rate is messages / (time from
//! the publisher's start to the consumer's last message). The sink and the loop alternate within
//! each round (the order swaps every round, so drift on a busy machine hits both alike); the
//! median of [`ROUNDS`] rounds is printed with the spread (lowest–highest) and every round's rate,
//! and the ratio sink / loop of the medians and of each round's pair.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::task::Poll;
use std::time::{Duration, Instant};

use customersim_testkit::amqp::{Counter, LOCAL_AMQP_URL as URL, TestQueue, connect};
use customersim_testkit::rabbitmq::ExclusiveUse;
use customersim_testkit::run::{children_cpu, clean_command, run_ok};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::temp_dir;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Confirmation};

/// Simulation giving about 200,000 events.
const SIM: &[&str] = &[
    "--seed",
    "5",
    "--speed",
    "max",
    "--start",
    "2024-03-01T08:00:00Z",
    "--duration",
    "9h",
];
const AVERAGE_IN_STORE: &str = "100";
const ROUNDS: usize = 5;
/// Unconfirmed publishes the bare loop keeps in flight with confirms on.
const WINDOW: usize = 5_000;

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// What one run of a publisher measured.
struct Measure {
    /// Messages per second: count / (publisher start → the consumer's last message).
    rate: f64,
    /// CPU seconds (user + system) the publisher process used.
    cpu: f64,
}

/// (routing key, payload) of every event, from the stdout sink of the same simulation.
fn messages(dir: &Path) -> Vec<(String, String)> {
    let config = dir.join("stdout.yaml");
    std::fs::write(
        &config,
        "sources:\n  - type: random_walk\nsinks:\n  - type: stdout\n",
    )
    .unwrap();
    let output = run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .args(SIM)
            .env("CUSTOMERS_AVERAGE_IN_STORE", AVERAGE_IN_STORE),
    );
    parse_lines(&output.stdout)
        .into_iter()
        .map(|line| (line.topic.replace('/', "."), line.payload))
        .collect()
}

/// Runs a publisher process while a consumer of `queue` counts `count` messages.
fn measure(mut publisher: Command, queue: &TestQueue, count: usize) -> Option<Measure> {
    let counter = Counter::start(queue.name());
    let cpu_before = children_cpu();
    let started = Instant::now();
    let status = publisher.status().expect("the publisher runs");
    assert!(status.success(), "{publisher:?}: {status}");
    let cpu = children_cpu() - cpu_before;
    let done = counter.wait_for_count(count as u64, Duration::from_secs(10))?;
    // Nothing beyond the events: a stray publisher on amq.topic would inflate the rate.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counter.count(), count as u64, "more messages than events");
    Some(Measure {
        rate: count as f64 / done.duration_since(started).as_secs_f64(),
        cpu,
    })
}

fn sink_command(config: &Path) -> Command {
    let mut command = customersim();
    command
        .args(["run", "--config"])
        .arg(config)
        .args(SIM)
        .env("CUSTOMERS_AVERAGE_IN_STORE", AVERAGE_IN_STORE)
        .env("LOG_LEVEL", "WARNING");
    command
}

/// This bench binary again, as the bare lapin loop over the prepared messages.
fn loop_command(file: &Path, confirms: bool) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.arg("bare-loop").arg(file).arg(confirms.to_string());
    command
}

/// One publish on its way: written, then confirmed (`NotRequested` without confirms).
type InFlight<'a> = Pin<Box<dyn Future<Output = lapin::Result<Confirmation>> + Send + 'a>>;

/// The bare loop: reads `key<TAB>ts<TAB>payload` lines, then publishes them all on one channel
/// with the sink's properties (content type, timestamp), [`WINDOW`] publishes in flight.
fn bare_loop(file: &Path, confirms: bool) {
    let text = std::fs::read_to_string(file).unwrap();
    let prepared: Vec<(ShortString, u64, Vec<u8>)> = text
        .lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let key = fields.next().unwrap();
            let ts = fields.next().unwrap().parse().unwrap();
            let payload = fields.next().unwrap();
            (key.into(), ts, payload.as_bytes().to_vec())
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (connection, channel) = connect().await;
        if confirms {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
        }
        let content_type = ShortString::from("application/json");
        let exchange = ShortString::from("amq.topic");
        // Each publish is one future: its frame is queued (in order) when first polled, then it
        // resolves once written (and, with confirms, once confirmed). Awaiting only the oldest
        // keeps WINDOW writes and confirms overlapping instead of one socket write per await.
        let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(WINDOW);
        for (key, ts, body) in &prepared {
            let channel = channel.clone();
            let (exchange, key) = (exchange.clone(), key.clone());
            let properties = BasicProperties::default()
                .with_content_type(content_type.clone())
                .with_timestamp(*ts);
            let mut publish: InFlight = Box::pin(async move {
                channel
                    .basic_publish(
                        exchange,
                        key,
                        BasicPublishOptions::default(),
                        body,
                        properties,
                    )
                    .await?
                    .await
            });
            // Queue the frame now, in this order.
            if let Poll::Ready(result) =
                std::future::poll_fn(|cx| Poll::Ready(publish.as_mut().poll(cx))).await
            {
                publish = Box::pin(std::future::ready(result));
            }
            in_flight.push_back(publish);
            if in_flight.len() >= WINDOW {
                let oldest = in_flight.pop_front().unwrap().await.unwrap();
                assert!(!oldest.is_nack());
            }
        }
        for publish in in_flight {
            assert!(!publish.await.unwrap().is_nack());
        }
        connection.close(200, "OK".into()).await.unwrap();
    });
}

/// Median, lowest and highest.
fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}

/// The median rate (spread), median CPU, then every round's rate in the order measured.
fn summary(measures: &[Measure], count: usize) -> String {
    if measures.is_empty() {
        return "n/a".into();
    }
    let rates: Vec<f64> = measures.iter().map(|m| m.rate).collect();
    let (rate, low, high) = stats(&rates);
    let (cpu, _, _) = stats(&measures.iter().map(|m| m.cpu).collect::<Vec<_>>());
    let rounds: Vec<String> = rates.iter().map(|rate| format!("{rate:.0}")).collect();
    format!(
        "{rate:>7.0} msg/s (spread {low:.0}–{high:.0}), publisher CPU {cpu:.2} s ({:.2} us/msg)  [rounds: {}]",
        cpu * 1e6 / count as f64,
        rounds.join(", ")
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list of tests
    }
    if args.get(1).map(String::as_str) == Some("bare-loop") {
        bare_loop(Path::new(&args[2]), args[3].parse().unwrap());
        return;
    }
    // Alone on the shared broker: the queue counts everything published on amq.topic.
    let _alone = ExclusiveUse::acquire();
    let dir = temp_dir("bench-amqp");
    let messages = messages(dir.path());
    let count = messages.len();
    let loop_file = dir.path().join("messages.tsv");
    let mut tsv = std::io::BufWriter::new(std::fs::File::create(&loop_file).unwrap());
    for (key, payload) in &messages {
        let event: serde_json::Value = serde_json::from_str(payload).unwrap();
        let ts = event["ts"].as_u64().unwrap();
        writeln!(tsv, "{key}\t{ts}\t{payload}").unwrap();
    }
    drop(tsv);
    let queue = TestQueue::declare("bench-amqp", "amq.topic", &["customer.#"]);
    // Empty before the first round (a queue of the same name cannot exist: names are unique).
    customersim_testkit::amqp::block_on(async {
        let (connection, channel) = connect().await;
        queue.purge(&channel).await;
        connection.close(200, "OK".into()).await.ok();
    });
    println!(
        "amqp bench: {count} events to RabbitMQ on {}, counted by a no-ack consumer; bare loop with {WINDOW} confirms in flight; median of {ROUNDS} rounds",
        URL.replace(":guest@", ":******@")
    );
    for confirms in [true, false] {
        let config = dir.path().join(format!("sink-{confirms}.yaml"));
        std::fs::write(
            &config,
            format!(
                "sources:\n  - type: random_walk\nsinks:\n  - type: amqp\n    url: {URL}\n    confirms: {confirms}\n"
            ),
        )
        .unwrap();
        let (mut sink, mut bare, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let run_sink = || measure(sink_command(&config), &queue, count);
            let run_loop = || measure(loop_command(&loop_file, confirms), &queue, count);
            let (s, b) = if round % 2 == 0 {
                let s = run_sink();
                (s, run_loop())
            } else {
                let b = run_loop();
                (run_sink(), b)
            };
            if let (Some(s), Some(b)) = (&s, &b) {
                pairs.push(s.rate / b.rate);
            }
            sink.extend(s);
            bare.extend(b);
        }
        let mode = if confirms { "on " } else { "off" };
        println!("confirms {mode}: amqp sink       {}", summary(&sink, count));
        println!("confirms {mode}: bare lapin loop {}", summary(&bare, count));
        if !sink.is_empty() && !bare.is_empty() && !pairs.is_empty() {
            let (sink_rate, _, _) = stats(&sink.iter().map(|m| m.rate).collect::<Vec<_>>());
            let (bare_rate, _, _) = stats(&bare.iter().map(|m| m.rate).collect::<Vec<_>>());
            let (pair, low, high) = stats(&pairs);
            println!(
                "confirms {mode}: sink / loop {:.2} (medians); per round median {pair:.2}, spread {low:.2}–{high:.2}",
                sink_rate / bare_rate
            );
        }
    }
}
