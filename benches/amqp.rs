//! Messages per second to RabbitMQ (127.0.0.1:5672, guest/guest): the `amqp` sink (the release
//! binary, `--speed max`) against a bare lapin publish loop measured in the same run, with
//! publisher confirms on and off. Both publish the same number of ~50-byte messages to
//! `amq.topic` with routing keys `customer.*`; the rate counts until a queue bound with
//! `customer.#` holds them all. The bare loop keeps 100 unconfirmed publishes in flight.
//!
//! `cargo bench --bench amqp` (needs RabbitMQ; prints the figures and the ratio).

use std::collections::VecDeque;
use std::process::Command;
use std::time::{Duration, Instant};

use customersim_testkit::amqp::{LOCAL_AMQP_URL as URL, TestQueue, connect};
use customersim_testkit::rabbitmq::ExclusiveUse;
use customersim_testkit::run::{clean_command, run_ok};
use customersim_testkit::temp::temp_file;
use lapin::BasicProperties;
use lapin::Channel;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
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
const ROUNDS: usize = 3;

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

fn main() {
    // Alone on the shared broker: the queue counts everything published on amq.topic.
    let _alone = ExclusiveUse::acquire();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (connection, channel) = connect().await;
        // Exclusive: gone with the connection even if the run is interrupted.
        let queue =
            TestQueue::declare_exclusive_on(&channel, "bench-amqp", "amq.topic", &["customer.#"])
                .await;
        let events = count_events();
        println!("{events} events per run, best of {ROUNDS} rounds");
        for confirms in [true, false] {
            let mut bare = 0f64;
            let mut sink = 0f64;
            for _ in 0..ROUNDS {
                queue.purge(&channel).await;
                bare = bare.max(bare_loop(&channel, &queue, events, confirms).await);
                queue.purge(&channel).await;
                sink = sink.max(sink_run(&channel, &queue, events, confirms).await);
            }
            let mode = if confirms { "on " } else { "off" };
            println!(
                "confirms {mode}: bare lapin loop {bare:>9.0} msg/s   amqp sink {sink:>9.0} msg/s   ratio {:.2}",
                sink / bare
            );
        }
        connection.close(200, "OK".into()).await.ok();
    });
}

/// How many events the simulation produces (the same pipeline with the stdout sink, not timed).
fn count_events() -> u64 {
    let config = temp_file(
        "count.yaml",
        "sources:\n  - type: random_walk\nsinks:\n  - type: stdout\n",
    );
    let output = run_ok(
        customersim()
            .args(["run", "--config"])
            .arg(&config)
            .args(SIM)
            .env("CUSTOMERS_AVERAGE_IN_STORE", AVERAGE_IN_STORE),
    );
    output.stdout.iter().filter(|b| **b == b'\n').count() as u64
}

/// Waits until the queue holds `events` messages; the elapsed time since `started`.
async fn until_counted(
    channel: &Channel,
    queue: &TestQueue,
    events: u64,
    started: Instant,
    what: &str,
) -> Duration {
    loop {
        let len = queue.message_count(channel).await;
        if len >= events {
            assert_eq!(len, events, "more messages than events");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what}: only {len} of {events} messages arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The baseline: lapin publishing as fast as it can, 100 unconfirmed in flight with confirms.
async fn bare_loop(counter: &Channel, queue: &TestQueue, events: u64, confirms: bool) -> f64 {
    let (connection, channel) = connect().await;
    if confirms {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
    }
    let keys = ["customer.enter", "customer.move", "customer.exit"];
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(128);
    let mut body = Vec::with_capacity(64);
    for n in 0..events {
        body.clear();
        body.extend_from_slice(
            format!(
                "{{\"id\": \"{}\", \"ts\": {}, \"x\": 2, \"y\": 3}}",
                n % 1000,
                1_709_280_000 + n / 100
            )
            .as_bytes(),
        );
        let confirm = channel
            .basic_publish(
                "amq.topic".into(),
                keys[(n % 3) as usize].into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_timestamp(1_709_280_000 + n / 100),
            )
            .await
            .unwrap();
        in_flight.push_back(confirm);
        if !confirms || in_flight.len() >= 100 {
            let confirmation = in_flight.pop_front().unwrap().await.unwrap();
            assert!(!confirmation.is_nack());
        }
    }
    for confirm in in_flight {
        assert!(!confirm.await.unwrap().is_nack());
    }
    let elapsed = until_counted(counter, queue, events, started, "bare loop").await;
    connection.close(200, "OK".into()).await.ok();
    events as f64 / elapsed.as_secs_f64()
}

/// The sink: the release binary with `--sink amqp --speed max`.
async fn sink_run(counter: &Channel, queue: &TestQueue, events: u64, confirms: bool) -> f64 {
    let config = temp_file(
        "sink.yaml",
        &format!(
            "sources:\n  - type: random_walk\nsinks:\n  - type: amqp\n    url: {URL}\n    confirms: {confirms}\n"
        ),
    );
    let started = Instant::now();
    let mut child = customersim()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(SIM)
        .env("CUSTOMERS_AVERAGE_IN_STORE", AVERAGE_IN_STORE)
        .env("LOG_LEVEL", "WARNING")
        .spawn()
        .unwrap();
    let elapsed = until_counted(counter, queue, events, started, "sink").await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    events as f64 / elapsed.as_secs_f64()
}
