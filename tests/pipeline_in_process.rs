//! The scheduler and the pipeline inside the test process, on tokio's paused clock: a pipeline is
//! built from YAML like `customersim run` builds it and run with a `Shutdown` handle, and the
//! `record` sink (tests/in_process) keeps each batch with the instant it arrived. On a paused
//! clock time moves only when every task waits, straight to the next timer, so instants are exact
//! and a simulated hour takes no wall time: these tests assert exact timings without sleeping.

mod in_process;

use std::collections::HashMap;
use std::time::Duration;

use customersim::config::Flags;
use customersim::pipeline::Pipeline;
use customersim::plugin_api::host::Shutdown;
use customersim::plugin_api::{EventKind, PluginError};
use customersim::scheduler::RunReport;
use in_process::{START, START_MS, recording, resolve};
use tokio::time::Instant;

/// Builds the pipeline and runs it to its end; returns the outcome, the instant the run (and its
/// clock) started, and the metrics text after the run.
async fn run(
    yaml: &str,
    flags: &Flags,
    env: &[(&str, &str)],
) -> (Result<RunReport, PluginError>, Instant, String) {
    let pipeline = Pipeline::build(resolve(yaml, flags, env)).expect("pipeline builds");
    // The core registers its metrics when the run starts, in this registry.
    let metrics = pipeline.metrics().clone();
    let started = Instant::now();
    let outcome = pipeline.run(Shutdown::new()).await;
    (outcome, started, metrics.encode())
}

/// A pipeline at speed 1 from START with the `script` source scheduling `at_ms` and the given
/// timeline settings and sinks.
fn scripted(timeline: &str, at_ms: &[i64], sinks: &str) -> String {
    format!(
        "simulation: {{seed: 1, start: \"{START}\"}}\n\
         timeline: {{{timeline}}}\n\
         sources:\n  - type: script\n    at_ms: {at_ms:?}\n\
         sinks:\n{sinks}"
    )
}

/// The value of a counter line of the Prometheus text, e.g. `customersim_events_skipped_total`.
fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{text}"))
}

#[tokio::test(start_paused = true)]
async fn explicit_batch_size_and_frequency_are_honoured_exactly() {
    // A backlog of 23 events, all due at the start: it drains at CONSUME_BATCH_SIZE per poll,
    // CONSUME_FREQUENCY apart. The settings come from the file, or from the environment over
    // different ones in the file.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], f64, Vec<usize>);
    let cases: [Case; 2] = [
        (
            "batching-yaml",
            "consume_frequency: 2.5, consume_batch_size: 4",
            &[],
            2.5,
            vec![4, 4, 4, 4, 4, 3],
        ),
        (
            "batching-env",
            "consume_frequency: 3, consume_batch_size: 2",
            &[("CONSUME_FREQUENCY", "0.25"), ("CONSUME_BATCH_SIZE", "10")],
            0.25,
            vec![10, 10, 3],
        ),
    ];
    for (key, timeline, env, frequency, expected) in cases {
        let yaml = scripted(
            timeline,
            &[0; 23],
            &format!("  - {{type: record, key: {key}}}\n"),
        );
        let (outcome, started, _) = run(&yaml, &Flags::default(), env).await;
        assert_eq!(outcome.unwrap().published, 23);
        let record = recording(key);
        let sizes: Vec<usize> = record.batches.iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, expected, "{key}: at most the batch size per poll");
        let poll = Duration::from_secs_f64(frequency);
        assert!(record.batches[0].at - started <= poll, "{key}: first poll");
        for pair in record.batches.windows(2) {
            assert_eq!(
                pair[1].at - pair[0].at,
                poll,
                "{key}: polls {frequency} s apart"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn frequency_zero_publishes_each_event_exactly_when_due() {
    let offsets = [250, 1_000, 1_001, 7_500, 60_000, 3_600_017];
    let yaml = scripted(
        "consume_frequency: 0, consume_batch_size: 10",
        &offsets,
        "  - {type: record, key: due-exactly}\n",
    );
    let (outcome, started, _) = run(&yaml, &Flags::default(), &[]).await;
    assert_eq!(outcome.unwrap().published, offsets.len() as u64);
    let record = recording("due-exactly");
    assert_eq!(record.batches.len(), offsets.len(), "one wake per due time");
    for (due, arrived) in record.arrivals(START_MS, started) {
        assert_eq!(
            arrived,
            Duration::from_millis(due as u64),
            "lateness 0 at speed 1"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn consume_from_decides_which_events_due_before_the_start_are_published() {
    // Two events due before the start (2 h and 1 min before), three from the start on.
    let offsets = [-7_200_000, -60_000, 0, 1_000, 2_000];
    for (key, from, published, skipped) in [
        ("from-earliest", "earliest", &offsets[..], 0),
        ("from-latest", "latest", &offsets[2..], 2),
        // 30 minutes before the start: only the event 2 h before is skipped.
        ("from-instant", "2026-03-01T08:30:00Z", &offsets[1..], 1),
    ] {
        let yaml = scripted(
            &format!("consume_frequency: 0, consume_from: \"{from}\""),
            &offsets,
            &format!("  - {{type: record, key: {key}}}\n"),
        );
        let (outcome, started, metrics) = run(&yaml, &Flags::default(), &[]).await;
        let report = outcome.unwrap();
        assert_eq!(report.skipped, skipped, "CONSUME_FROM={from}");
        assert_eq!(
            report.published,
            published.len() as u64,
            "CONSUME_FROM={from}"
        );
        assert_eq!(
            metric(&metrics, "customersim_events_skipped_total"),
            skipped
        );
        let arrivals = recording(key).arrivals(START_MS, started);
        let due: Vec<i64> = arrivals.iter().map(|(due, _)| *due).collect();
        assert_eq!(due, published, "CONSUME_FROM={from}: in time order");
        for (due, arrived) in arrivals {
            // What was due before the start is published at once; the rest when due.
            assert_eq!(arrived, Duration::from_millis(due.max(0) as u64));
        }
    }
}

/// A busy random_walk pipeline of seed 5, recorded under `key`.
fn random_walk(speed: &str, key: &str) -> String {
    format!(
        "simulation: {{seed: 5, speed: {speed}, start: \"{START}\"}}\n\
         store: {{width: 4, height: 5}}\n\
         timeline: {{consume_frequency: 0.25, consume_batch_size: 500}}\n\
         sources:\n  - type: random_walk\n    average_in_store: 30\n    mean_visit: 3m\n    min_visit: 1m\n    mean_dwell: 5s\n\
         sinks:\n  - {{type: record, key: {key}}}\n"
    )
}

#[tokio::test(start_paused = true)]
async fn a_virtual_clock_publishes_the_same_events_as_a_scaled_one() {
    let flags = Flags {
        duration: Some(Duration::from_secs(20 * 60)),
        ..Flags::default()
    };
    let (outcome, started, _) = run(&random_walk("max", "walk-max"), &flags, &[]).await;
    outcome.unwrap();
    assert_eq!(
        Instant::now(),
        started,
        "speed max never waits for the wall clock"
    );
    let (outcome, started, _) = run(&random_walk("60", "walk-60"), &flags, &[]).await;
    outcome.unwrap();
    assert!(
        Instant::now() - started >= Duration::from_secs(20),
        "speed 60 takes a minute per simulated hour"
    );
    let fast = recording("walk-max").events();
    assert!(fast.len() > 1_000, "a busy store: {} events", fast.len());
    assert_eq!(fast, recording("walk-60").events());
}

#[tokio::test(start_paused = true)]
async fn a_run_with_a_duration_ends_by_itself_with_everyone_gone() {
    let flags = Flags {
        duration: Some(Duration::from_secs(45 * 60)),
        ..Flags::default()
    };
    let (outcome, _, _) = run(&random_walk("max", "walk-duration"), &flags, &[]).await;
    let report = outcome.unwrap();
    let record = recording("walk-duration");
    assert!(record.flushed && record.closed);
    let events = record.events();
    assert_eq!(report.published, events.len() as u64);
    assert_eq!(report.left_on_timeline, 0);
    let mut inside = HashMap::new();
    let mut last_due = i64::MIN;
    for event in &events {
        assert!(event.due_ms >= last_due, "time order");
        last_due = event.due_ms;
        match event.kind {
            EventKind::Enter => {
                assert!(
                    event.due_ms < START_MS + 45 * 60_000,
                    "no arrival after closing"
                );
                assert!(inside.insert(event.customer.clone(), ()).is_none());
            }
            EventKind::Move { .. } | EventKind::Focus { .. } => {
                assert!(inside.contains_key(&event.customer))
            }
            EventKind::Exit => assert!(inside.remove(&event.customer).is_some()),
        }
    }
    assert!(events.len() > 100, "{} events", events.len());
    assert!(inside.is_empty(), "every enter is matched by an exit");
}

#[tokio::test(start_paused = true)]
async fn a_virtual_run_with_only_an_outside_source_ends_when_the_doors_close() {
    // Nothing generates simulated time: the clock flies to the closing of the doors.
    let yaml = format!(
        "simulation: {{speed: max, start: \"{START}\", duration: 1h}}\n\
         sources: [{{type: http_ingress, listen: \"127.0.0.1:0\"}}]\n\
         sinks: [{{type: record, key: outside-only}}]\n"
    );
    let (outcome, _, _) = run(&yaml, &Flags::default(), &[]).await;
    assert_eq!(outcome.unwrap().published, 0);
    let record = recording("outside-only");
    assert!(record.batches.is_empty());
    assert!(record.flushed && record.closed);
}

/// Events every 100 ms for `count` events, each its own batch at CONSUME_FREQUENCY 0.
fn every_100ms(count: i64) -> Vec<i64> {
    (0..count).map(|i| i * 100).collect()
}

#[tokio::test(start_paused = true)]
async fn a_slow_sink_does_not_delay_a_fast_one() {
    // The slow sink comes first, so the scheduler hands it every batch first.
    let yaml = scripted(
        "consume_frequency: 0",
        &every_100ms(40),
        "  - {type: record, key: slow-reliable, delay_ms: 1000}\n  - {type: record, key: fast-beside-slow}\n",
    );
    let (outcome, started, _) = run(&yaml, &Flags::default(), &[]).await;
    assert_eq!(outcome.unwrap().published, 40);
    let fast = recording("fast-beside-slow").arrivals(START_MS, started);
    let slow = recording("slow-reliable").arrivals(START_MS, started);
    assert_eq!(fast.len(), 40, "the fast sink got everything");
    assert_eq!(slow.len(), 40, "a slow reliable sink loses nothing");
    // The slow sink takes a second per batch; while its queue has room, the fast sink gets each
    // batch when it is due.
    for (index, (due, arrived)) in fast.iter().take(10).enumerate() {
        assert_eq!(
            *arrived,
            Duration::from_millis(*due as u64),
            "fast, batch {index}"
        );
        assert_eq!(
            slow[index].1,
            Duration::from_secs(index as u64),
            "slow, batch {index}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_lossy_sink_that_falls_behind_drops_while_a_reliable_one_gets_everything() {
    let yaml = scripted(
        "consume_frequency: 0",
        &every_100ms(100),
        "  - {type: record, key: lossy-slow, delay_ms: 1000, lossy: true}\n  - {type: record, key: reliable-beside-lossy}\n",
    );
    let (outcome, started, metrics) = run(&yaml, &Flags::default(), &[]).await;
    assert_eq!(outcome.unwrap().published, 100);
    let reliable = recording("reliable-beside-lossy").arrivals(START_MS, started);
    assert_eq!(reliable.len(), 100);
    for (due, arrived) in reliable {
        assert_eq!(
            arrived,
            Duration::from_millis(due as u64),
            "never held back"
        );
    }
    let lossy = recording("lossy-slow");
    let received = lossy.events().len() as u64;
    let dropped = metric(
        &metrics,
        "customersim_events_dropped_total{sink=\"record\"}",
    );
    assert!(dropped > 0 && received < 100, "received {received}");
    assert_eq!(
        received + dropped,
        100,
        "every event either taken or counted"
    );
    assert!(lossy.flushed && lossy.closed);
}

#[tokio::test(start_paused = true)]
async fn a_failing_sink_ends_the_run_with_its_error_and_is_still_closed() {
    let yaml = scripted(
        "consume_frequency: 0",
        &every_100ms(10),
        "  - {type: record, key: failing, fail_after: 3}\n  - {type: record, key: healthy-beside-failing}\n",
    );
    let (outcome, _, _) = run(&yaml, &Flags::default(), &[]).await;
    let error = outcome.expect_err("the run fails");
    let message = error.to_string();
    assert!(!error.is_config(), "a failure while running: {message}");
    assert!(
        message.contains("sink record") && message.contains("the peer refused the batch"),
        "{message}"
    );
    let failing = recording("failing");
    assert_eq!(failing.batches.len(), 4, "three taken, the fourth refused");
    assert!(!failing.flushed, "no flush after a failed publish");
    assert!(failing.closed, "close runs after a failed publish");
    let healthy = recording("healthy-beside-failing");
    assert!(healthy.flushed && healthy.closed);
}

#[tokio::test(start_paused = true)]
async fn shutdown_mid_run_flushes_what_the_sinks_were_handed_and_returns_ok() {
    // A source that never ends and a sink that takes a second per batch: at the shutdown its queue
    // holds batches it has not published yet.
    let yaml = format!(
        "simulation: {{seed: 1, start: \"{START}\"}}\n\
         timeline: {{consume_frequency: 0}}\n\
         sources:\n  - type: script\n    at_ms: {:?}\n    until_shutdown: true\n\
         sinks:\n  - {{type: record, key: shut-down, delay_ms: 1000}}\n",
        every_100ms(100)
    );
    let pipeline = Pipeline::build(resolve(&yaml, &Flags::default(), &[])).unwrap();
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        trigger.trigger();
    });
    let report = pipeline
        .run(shutdown)
        .await
        .expect("a shutdown is a clean end");
    let record = recording("shut-down");
    assert!(record.flushed && record.closed);
    assert_eq!(
        record.events().len() as u64,
        report.published,
        "nothing handed is lost"
    );
    assert!(report.published < 100);
    assert_eq!(report.published + report.left_on_timeline, 100);
    let after = Duration::from_secs(5);
    assert!(
        record
            .batches
            .iter()
            .any(|batch| batch.at - started > after),
        "the queue was worked off after the shutdown"
    );
    assert!(
        record
            .events()
            .iter()
            .all(|event| event.due_ms - START_MS <= after.as_millis() as i64),
        "nothing due after the shutdown was published"
    );
}
