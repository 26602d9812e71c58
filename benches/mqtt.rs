//! Throughput of the `mqtt` sink against Mosquitto, next to two baselines measured in the same run:
//! a bare rumqttc publish loop and `mosquitto_pub -l` (Debian package mosquitto-clients).
//!
//! ```sh
//! cargo bench --bench mqtt
//! ```
//!
//! Starts its own `mosquitto` on a free port with `max_queued_messages 0` (so nothing is dropped
//! for the counting subscriber) and `max_inflight_messages 0`. The events are those
//! of one simulated run (about 200,000: 2000 shoppers for 34 minutes, seed 1); every method
//! publishes the same payloads, and a lean rumqttc subscriber in this process counts them. Each
//! publisher is a child process: the `customersim` binary (simulation included), this binary
//! re-run as a bare rumqttc loop over prepared payloads, and `mosquitto_pub -l`. A rate is
//! messages / (time from the publisher's start to the subscriber's last message); the publisher's
//! CPU time (user + system) is printed next to it, since on this 2-core machine the broker, the
//! subscriber and the publisher share the cores. Each measurement is repeated and the median
//! printed. At QoS 1 the sink also runs with `connections: 2` in every round, right after the
//! one-connection run, and the per-round ratio is printed (median and range): with one local
//! broker the broker binds, so expect little gain. `mosquitto_pub -l` is only compared at QoS 0:
//! at QoS 1 it breaks past 65,535 lines (its message ids wrap).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use customersim_testkit::mosquitto::Broker;
use customersim_testkit::mqtt::{Subscriber, SubscriberOptions};
use customersim_testkit::net::free_port;
use customersim_testkit::run::{children_cpu, clean_command, run_ok};
use customersim_testkit::stdout_sink::parse_lines;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

const ROUNDS: usize = 5;

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// The pipeline every method's messages come from.
fn pipeline(dir: &Path, port: u16, prefix: &str) -> PathBuf {
    let path = dir.join(format!("{prefix}.yaml"));
    std::fs::write(
        &path,
        format!(
            "simulation: {{seed: 1, start: \"2024-03-01T08:00:00Z\", speed: max, duration: 34m}}\n\
             topics: {{enter: {prefix}/customer/enter, move: {prefix}/customer/move, exit: {prefix}/customer/exit}}\n\
             timeline: {{consume_from: earliest}}\n\
             sources: [{{type: random_walk, average_in_store: 2000}}]\n\
             sinks: [{{type: mqtt, host: 127.0.0.1, port: {port}}}]\n"
        ),
    )
    .unwrap();
    path
}

/// (topic, payload) of every event, from the stdout sink.
fn messages(config: &Path) -> Vec<(String, Vec<u8>)> {
    let output = run_ok(
        customersim()
            .args(["run", "--sink", "stdout", "--config"])
            .arg(config),
    );
    parse_lines(&output.stdout)
        .into_iter()
        .map(|line| (line.topic, line.payload.into_bytes()))
        .collect()
}

/// What one run of a publisher measured.
struct Measure {
    /// Messages per second: count / (publisher start → the subscriber's last message).
    rate: f64,
    /// CPU seconds (user + system) the publisher process used.
    cpu: f64,
}

/// Runs a publisher process while a subscriber counts `count` messages on `filter`.
fn measure(
    mut publisher: Command,
    port: u16,
    filter: &str,
    qos: u8,
    count: usize,
) -> Option<Measure> {
    let qos = if qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let counter = Subscriber::start(
        port,
        filter,
        SubscriberOptions {
            qos,
            record: false,
            ..SubscriberOptions::default()
        },
    );
    let cpu_before = children_cpu();
    let started = Instant::now();
    let status = publisher.status().expect("the publisher runs");
    assert!(status.success(), "{publisher:?}: {status}");
    let cpu = children_cpu() - cpu_before;
    let done = counter.wait_for_count(count as u64, Duration::from_secs(5))?;
    Some(Measure {
        rate: count as f64 / done.duration_since(started).as_secs_f64(),
        cpu,
    })
}

fn sink_command(config: &Path, qos: u8, connections: usize) -> Command {
    let mut command = customersim();
    command
        .args(["run", "--config"])
        .arg(config)
        .env("MQTT_QOS", qos.to_string())
        .env("MQTT_CONNECTIONS", connections.to_string())
        .env("LOG_LEVEL", "warn");
    command
}

/// This bench binary again, as a bare rumqttc publish loop over the prepared messages.
fn loop_command(port: u16, file: &Path, qos: u8) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .arg("bare-loop")
        .arg(port.to_string())
        .arg(file)
        .arg(qos.to_string());
    command
}

/// The bare loop: reads `topic<TAB>payload` lines, then publishes them all with rumqttc (in-flight
/// window and channel as the sink's defaults) and waits until every one is written (QoS 0) or
/// acknowledged (QoS 1). Only the publishing is in the loop: payloads are prepared beforehand.
fn bare_loop(port: u16, file: &Path, qos: u8) {
    let text = std::fs::read_to_string(file).unwrap();
    let prepared: Vec<(String, Vec<u8>)> = text
        .lines()
        .map(|line| {
            let (topic, payload) = line.split_once('\t').unwrap();
            (topic.to_string(), payload.as_bytes().to_vec())
        })
        .collect();
    let qos = if qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut options =
            MqttOptions::new(format!("bench-loop-{}", free_port()), "127.0.0.1", port);
        options.set_inflight(10_000);
        let (client, mut events) = AsyncClient::new(options, 10_000);
        let total = prepared.len();
        let driver = tokio::spawn(async move {
            let mut done = 0;
            while done < total {
                match events.poll().await.unwrap() {
                    Event::Outgoing(Outgoing::Publish(_)) if qos == QoS::AtMostOnce => done += 1,
                    Event::Incoming(Packet::PubAck(_)) => done += 1,
                    _ => {}
                }
            }
            events
        });
        for (topic, payload) in prepared {
            client.publish(topic, qos, false, payload).await.unwrap();
        }
        let mut events = driver.await.unwrap();
        client.disconnect().await.unwrap();
        while !matches!(
            events.poll().await,
            Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)
        ) {}
    });
}

fn mosquitto_pub_command(port: u16, file: &Path) -> Command {
    let mut command = Command::new("mosquitto_pub");
    command
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "0",
            "-l",
            "-t",
            "bench-pub/customer/all",
        ])
        .stdin(std::fs::File::open(file).unwrap());
    command
}

/// The median rate and CPU, then every round's rate in the order measured.
fn summary(measures: &[Measure], count: usize) -> String {
    if measures.is_empty() {
        return "n/a".into();
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        values[values.len() / 2]
    };
    let rate = median(measures.iter().map(|m| m.rate).collect());
    let cpu = median(measures.iter().map(|m| m.cpu).collect());
    let rounds: Vec<String> = measures.iter().map(|m| format!("{:.0}", m.rate)).collect();
    format!(
        "{rate:>7.0} msg/s, publisher CPU {cpu:.2} s ({:.2} us/msg)  [rounds: {}]",
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
        bare_loop(
            args[2].parse().unwrap(),
            Path::new(&args[3]),
            args[4].parse().unwrap(),
        );
        return;
    }
    let broker = Broker::start_for_benchmark("bench-mqtt");
    let config = pipeline(broker.dir(), broker.port, "bench-sink");
    let messages = messages(&config);
    let count = messages.len();
    // The same payloads for the baselines: on the same topics under other prefixes for the bare
    // loop, one line each on a single topic for mosquitto_pub -l.
    let loop_file = broker.dir().join("messages.tsv");
    let pub_file = broker.dir().join("payloads.txt");
    let mut tsv = std::io::BufWriter::new(std::fs::File::create(&loop_file).unwrap());
    let mut lines = std::io::BufWriter::new(std::fs::File::create(&pub_file).unwrap());
    for (topic, payload) in &messages {
        writeln!(
            tsv,
            "{}\t{}",
            topic.replacen("bench-sink", "bench-loop", 1),
            String::from_utf8_lossy(payload)
        )
        .unwrap();
        lines.write_all(payload).unwrap();
        lines.write_all(b"\n").unwrap();
    }
    drop((tsv, lines));
    println!(
        "mqtt bench: {count} events to mosquitto on 127.0.0.1:{}, counted by a subscriber; median of {ROUNDS} rounds",
        broker.port
    );
    for qos in [0u8, 1] {
        let (mut sink, mut bare, mut pubs) = (Vec::new(), Vec::new(), Vec::new());
        // At QoS 1 also the sink with two connections, right after the one-connection run of the
        // same round, so each round gives a ratio measured under the same load.
        let (mut two, mut ratios) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let one = measure(
                sink_command(&config, qos, 1),
                broker.port,
                "bench-sink/#",
                qos,
                count,
            );
            if qos == 1 {
                let second = measure(
                    sink_command(&config, qos, 2),
                    broker.port,
                    "bench-sink/#",
                    qos,
                    count,
                );
                if let (Some(one), Some(second)) = (&one, &second) {
                    ratios.push(second.rate / one.rate);
                }
                two.extend(second);
            }
            sink.extend(one);
            bare.extend(measure(
                loop_command(broker.port, &loop_file, qos),
                broker.port,
                "bench-loop/#",
                qos,
                count,
            ));
            if qos == 0 {
                pubs.extend(measure(
                    mosquitto_pub_command(broker.port, &pub_file),
                    broker.port,
                    "bench-pub/#",
                    qos,
                    count,
                ));
            }
        }
        println!(
            "QoS {qos}: customersim mqtt sink     {}",
            summary(&sink, count)
        );
        if qos == 1 {
            println!(
                "QoS {qos}: sink with 2 connections   {}",
                summary(&two, count)
            );
            ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
            if let (Some(low), Some(high)) = (ratios.first(), ratios.last()) {
                println!(
                    "QoS {qos}: 2 connections / 1, per round: median {:.2} ({low:.2}-{high:.2})",
                    ratios[ratios.len() / 2]
                );
            }
        }
        println!(
            "QoS {qos}: bare rumqttc publish loop {}",
            summary(&bare, count)
        );
        if qos == 0 {
            println!(
                "QoS {qos}: mosquitto_pub -l          {}",
                summary(&pubs, count)
            );
        }
    }
}
