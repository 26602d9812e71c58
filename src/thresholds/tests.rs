use super::*;
use crate::lateness::LatenessHistogram;

const ALL: [&str; 8] = [
    "reply_latency",
    "replies_missing",
    "replies_late",
    "replies_unexpected",
    "replies_invalid",
    "delivery_lost",
    "publish_lateness",
    "events_per_second",
];

/// The thresholds of a `thresholds:` section written in YAML, every metric available.
fn thresholds(yaml: &str) -> Result<Vec<Threshold>, String> {
    check(&config(yaml)?, &ALL)
}

/// A `thresholds:` section as the pipeline file gives it (errors name the key, as the loader's).
fn config(yaml: &str) -> Result<ThresholdsConfig, String> {
    let deserializer = serde_yaml::Deserializer::from_str(yaml);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        format!("thresholds.{path}: {}", error.into_inner())
    })
}

/// The error for one threshold on `metric`.
fn error(metric: &str, text: &str) -> String {
    let yaml = format!("{metric}: [{}]", serde_json::to_string(text).unwrap());
    thresholds(&yaml).unwrap_err()
}

fn latency(values_us: &[u64]) -> Measured {
    let histogram = LatenessHistogram::default();
    histogram.record(values_us.iter().copied());
    Measured::Durations(histogram.summary())
}

/// The outcome of one threshold on `metric` against `measured`.
fn outcome(metric: Metric, text: &str, measured: Measured) -> Outcome {
    let yaml = format!("{}: [{}]", metric, serde_json::to_string(text).unwrap());
    let mut measurements = Measurements::new();
    measurements.set(metric, measured);
    thresholds(&yaml).unwrap()[0].evaluate(&measurements)
}

#[test]
fn expressions_are_read_with_or_without_spaces() {
    let read = |text: &str| expression::parse(text).unwrap();
    assert_eq!(
        read("p(99) < 2s"),
        Expression {
            aggregation: Aggregation::Percentile(99.0),
            operator: Operator::Less,
            number: 2.0,
            unit: Unit::Seconds,
        }
    );
    assert_eq!(read("p(99.9)<=500ms"), read(" p( 99.9 ) <= 500 ms "));
    assert_eq!(
        read("p(99.9)<=500ms").aggregation,
        Aggregation::Percentile(99.9)
    );
    assert_eq!(read("avg>=45000").operator, Operator::GreaterOrEqual);
    assert_eq!(read("count == 0").operator, Operator::Equal);
    assert_eq!(read("max != 1m").unit, Unit::Minutes);
    assert_eq!(read("min > 10us").unit, Unit::Micros);
    assert_eq!(read("min > 10µs").unit, Unit::Micros);
    assert_eq!(read("rate < 1%").unit, Unit::Percent);
    assert_eq!(read("value >= 1").aggregation, Aggregation::Value);
    assert_eq!(read("p(0) >= 0s").aggregation, Aggregation::Percentile(0.0));
    assert_eq!(
        read("p(100) < 1s").aggregation,
        Aggregation::Percentile(100.0)
    );
}

#[test]
fn bad_expressions_are_refused_naming_the_key_the_text_and_what_is_wrong() {
    let cases = [
        (
            "reply_latency",
            "p(99) <",
            r#"thresholds.reply_latency[0]: invalid threshold "p(99) <": expected a number (0 or more) after <, found nothing"#,
        ),
        (
            "reply_latency",
            "med < 2s",
            r#"thresholds.reply_latency[0]: invalid threshold "med < 2s": unknown aggregation "med": expected p(N), avg, min, max, count, rate or value"#,
        ),
        (
            "reply_latency",
            "p(101) < 2s",
            r#"thresholds.reply_latency[0]: invalid threshold "p(101) < 2s": p(N) takes a percentile N from 0 to 100, e.g. p(99) or p(99.9)"#,
        ),
        (
            "reply_latency",
            "p99 < 2s",
            r#"thresholds.reply_latency[0]: invalid threshold "p99 < 2s": p(N) takes a percentile N from 0 to 100, e.g. p(99) or p(99.9)"#,
        ),
        (
            "reply_latency",
            "p(99) = 2s",
            r#"thresholds.reply_latency[0]: invalid threshold "p(99) = 2s": expected an operator (<, <=, >, >=, == or !=) after p(99), found "= 2s""#,
        ),
        (
            "reply_latency",
            "p(99) < 2h",
            r#"thresholds.reply_latency[0]: invalid threshold "p(99) < 2h": unknown unit "h" after 2: expected us, ms, s or m (durations) or %"#,
        ),
        (
            "reply_latency",
            "p(99) < 2",
            r#"thresholds.reply_latency[0]: invalid threshold "p(99) < 2": p(99) of reply_latency is a duration: give the value a unit (us, ms, s or m), e.g. 2s or 500ms"#,
        ),
        (
            "publish_lateness",
            "avg < 1.2.3s",
            r#"thresholds.publish_lateness[0]: invalid threshold "avg < 1.2.3s": "1.2.3" is not a number"#,
        ),
        (
            "reply_latency",
            "rate < 0.01",
            r#"thresholds.reply_latency[0]: invalid threshold "rate < 0.01": reply_latency has no rate: it has p(N), avg, min, max and count"#,
        ),
        (
            "replies_missing",
            "p(99) < 1s",
            r#"thresholds.replies_missing[0]: invalid threshold "p(99) < 1s": replies_missing has no p(99): it has count and rate"#,
        ),
        (
            "replies_missing",
            "rate < 5",
            r#"thresholds.replies_missing[0]: invalid threshold "rate < 5": rate of replies_missing is a share from 0 to 1 (or a percentage such as 1%): 5 is more than 1"#,
        ),
        (
            "delivery_lost",
            "rate < 1s",
            r#"thresholds.delivery_lost[0]: invalid threshold "rate < 1s": rate of delivery_lost is a share from 0 to 1 (or a percentage such as 1%), not a duration"#,
        ),
        (
            "replies_late",
            "count < 2s",
            r#"thresholds.replies_late[0]: invalid threshold "count < 2s": count of replies_late is a number of events: give the value without a unit"#,
        ),
        (
            "events_per_second",
            "count > 0",
            r#"thresholds.events_per_second[0]: invalid threshold "count > 0": events_per_second has no count: it has avg (or value), min and max"#,
        ),
        (
            "events_per_second",
            "avg > 5000%",
            r#"thresholds.events_per_second[0]: invalid threshold "avg > 5000%": avg of events_per_second is events per second: give the value without a unit"#,
        ),
        (
            "replies_invalid",
            "  ",
            r#"thresholds.replies_invalid[0]: invalid threshold "  ": empty; write AGGREGATION OPERATOR VALUE, e.g. "p(99) < 2s""#,
        ),
        (
            "replies_unexpected",
            "< 2",
            r#"thresholds.replies_unexpected[0]: invalid threshold "< 2": expected an aggregation (p(N), avg, min, max, count, rate or value) at "< 2"; write AGGREGATION OPERATOR VALUE, e.g. "p(99) < 2s""#,
        ),
        (
            "replies_unexpected",
            "count == 0; 1",
            r#"thresholds.replies_unexpected[0]: invalid threshold "count == 0; 1": unexpected "; 1" after the value; write AGGREGATION OPERATOR VALUE, e.g. "p(99) < 2s""#,
        ),
    ];
    for (metric, text, expected) in cases {
        assert_eq!(error(metric, text), expected, "{metric}: {text}");
    }
    let long = format!("count == {}", "0".repeat(300));
    let error = error("replies_missing", &long);
    assert!(
        error.ends_with(": longer than 200 characters") && error.len() < 200,
        "{error}"
    );
}

#[test]
fn the_index_names_the_entry_at_fault() {
    let error = thresholds("replies_missing: [\"rate < 0.01\", \"count = 0\"]").unwrap_err();
    assert!(
        error.starts_with("thresholds.replies_missing[1]: invalid threshold \"count = 0\""),
        "{error}"
    );
}

#[test]
fn a_metric_the_pipeline_does_not_measure_is_refused_saying_what_would() {
    let config = config(
        "publish_lateness: [\"p(99) < 10ms\"]\nreply_latency: [\"p(99) < 2s\"]\ndelivery_lost: [\"count == 0\"]",
    )
    .unwrap();
    assert_eq!(
        check(&config, &["publish_lateness", "events_per_second"]).unwrap_err(),
        "thresholds.reply_latency: this pipeline does not measure reply_latency; replies are \
         measured only by expectations (`expect:`): add one, or remove the threshold"
    );
    assert_eq!(
        check(&config, &["publish_lateness", "reply_latency"]).unwrap_err(),
        "thresholds.delivery_lost: this pipeline does not measure delivery_lost; delivery is \
         measured only by the delivery check: turn it on, or remove the threshold"
    );
    let error = check(&config, &["reply_latency", "delivery_lost"]).unwrap_err();
    assert!(error.contains("scaled clock (not `speed: max`)"), "{error}");
    assert_eq!(
        check(
            &config,
            &["publish_lateness", "reply_latency", "delivery_lost"]
        )
        .unwrap()
        .len(),
        3
    );
    // No threshold: nothing to measure, nothing refused.
    assert_eq!(check(&ThresholdsConfig::default(), &[]).unwrap(), vec![]);
}

#[test]
fn entries_are_an_expression_or_an_object_with_abort_on_fail() {
    let yaml = "reply_latency:\n  - p(99) < 2s\n  - {threshold: \"max < 10s\", abort_on_fail: true, delay_abort_eval: 30s}\n";
    let parsed = config(yaml).unwrap();
    assert_eq!(parsed.reply_latency[0], ThresholdEntry::plain("p(99) < 2s"));
    assert_eq!(
        parsed.reply_latency[1],
        ThresholdEntry {
            threshold: "max < 10s".into(),
            abort_on_fail: true,
            delay_abort_eval: Some(Duration::from_secs(30)),
        }
    );
    // Written back in the same forms (what `validate` prints).
    let written = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        written,
        serde_json::json!({"reply_latency": ["p(99) < 2s", {"threshold": "max < 10s", "abort_on_fail": true, "delay_abort_eval": "30s"}]})
    );
    let checked = thresholds(yaml).unwrap();
    assert_eq!(checked[0].to_string(), "reply_latency: p(99) < 2s");
    assert_eq!(
        checked[1].to_string(),
        "reply_latency: max < 10s (abort_on_fail after 30s)"
    );
    assert!(checked[1].abort_on_fail());
    assert_eq!(checked[1].delay_abort_eval(), Duration::from_secs(30));
    assert!(!parsed.is_empty() && ThresholdsConfig::default().is_empty());
}

#[test]
fn unknown_metrics_and_keys_are_refused_by_name() {
    let error = config("reply_latencies: [\"p(99) < 2s\"]").unwrap_err();
    assert!(
        error.contains("unknown field `reply_latencies`") && error.contains("`reply_latency`"),
        "{error}"
    );
    let error = config("reply_latency: [{threshold: \"p(99) < 2s\", abort: true}]").unwrap_err();
    assert!(
        error.starts_with("thresholds.reply_latency[0].abort: ")
            && error.contains("unknown field `abort`, expected one of `threshold`"),
        "{error}"
    );
    let error = config("reply_latency: [5]").unwrap_err();
    assert!(
        error.starts_with("thresholds.reply_latency[0]: ")
            && error.contains("invalid type: integer `5`, expected a threshold such as"),
        "{error}"
    );
    let error = config("reply_latency: [{abort_on_fail: true}]").unwrap_err();
    assert!(error.contains("missing field `threshold`"), "{error}");
    let error = thresholds("reply_latency: [{threshold: \"p(99) < 2s\", delay_abort_eval: 5s}]")
        .unwrap_err();
    assert_eq!(
        error,
        "thresholds.reply_latency[0]: delay_abort_eval is set but abort_on_fail is not: the delay \
         only matters to a threshold that stops the run"
    );
}

#[test]
fn the_schema_lists_the_metrics_and_both_forms_of_an_entry() {
    let schema = serde_json::to_string(&schemars::schema_for!(ThresholdsConfig)).unwrap();
    for name in ALL {
        assert!(schema.contains(&format!("\"{name}\"")), "{name}");
    }
    for part in [
        "\"abort_on_fail\"",
        "\"delay_abort_eval\"",
        "\"oneOf\"",
        "p(99) < 2s",
    ] {
        assert!(schema.contains(part), "{part}: {schema}");
    }
    assert_eq!(
        ALL.to_vec(),
        Metric::ALL.map(Metric::name).to_vec(),
        "the table of names"
    );
}

#[test]
fn duration_aggregations_compare_at_their_boundaries() {
    // Ten replies, every one 2 s: each aggregation is exactly 2 s.
    let measured = || latency(&[2_000_000; 10]);
    for (text, passed) in [
        ("p(99) < 2s", false),
        ("p(99) <= 2s", true),
        ("p(50) >= 2000ms", true),
        ("p(0) == 2s", true),
        ("p(100) == 2s", true),
        ("avg != 2s", false),
        ("avg == 2000000us", true),
        ("min > 2s", false),
        ("max < 0.1m", true),
        ("count == 10", true),
        ("count < 10", false),
    ] {
        let outcome = outcome(Metric::ReplyLatency, text, measured());
        assert_eq!(outcome.passed, passed, "{text}: {outcome:?}");
    }
    // p(99) of 0.5 ms and 1.5 ms: interpolated inside the 1–1.5 ms bucket.
    let outcome = outcome(
        Metric::PublishLateness,
        "p(99) < 1ms",
        latency(&[500, 1_500]),
    );
    assert_eq!(outcome.measured, Some(0.00149));
    assert_eq!(
        (outcome.shown.as_str(), outcome.unit),
        ("1.49ms", Some("s"))
    );
    assert!(!outcome.passed);
    let min = self::outcome(Metric::PublishLateness, "min < 1ms", latency(&[120, 1_500]));
    assert_eq!((min.shown.as_str(), min.passed), ("120µs", true));
    let avg = self::outcome(Metric::PublishLateness, "avg < 1ms", latency(&[500, 1_500]));
    assert_eq!((avg.measured, avg.passed), (Some(0.001), false));
}

#[test]
fn durations_with_no_data_breach_except_their_count() {
    let nothing = || Measured::Durations(LatenessSummary::default());
    let percentile = outcome(Metric::ReplyLatency, "p(99) < 2s", nothing());
    assert_eq!(
        (
            percentile.measured,
            percentile.passed,
            percentile.shown.as_str()
        ),
        (None, false, "no data")
    );
    let count = outcome(Metric::ReplyLatency, "count == 0", nothing());
    assert_eq!((count.measured, count.passed), (Some(0.0), true));
    // Not measured at all (the caller gave nothing for the metric).
    let threshold = &thresholds("replies_missing: [\"count == 0\"]").unwrap()[0];
    let missing = threshold.evaluate(&Measurements::new());
    assert_eq!(
        (missing.measured, missing.passed, missing.shown.as_str()),
        (None, false, "not measured")
    );
}

#[test]
fn shares_count_and_rate_with_nothing_expected_reading_zero() {
    let share = |count, of| Measured::Share { count, of };
    for (text, measured, passed, shown) in [
        ("rate < 0.01", share(0, 0), true, "0 (0 of 0)"),
        ("count == 0", share(0, 0), true, "0"),
        ("rate < 1%", share(5, 237), false, "0.0211 (5 of 237)"),
        ("rate <= 0.03", share(5, 237), true, "0.0211 (5 of 237)"),
        ("rate < 1%", share(1, 100), false, "0.01 (1 of 100)"),
        ("rate <= 1%", share(1, 100), true, "0.01 (1 of 100)"),
        ("count <= 5", share(5, 237), true, "5"),
        ("count != 5", share(5, 237), false, "5"),
    ] {
        let outcome = outcome(Metric::RepliesMissing, text, measured);
        assert_eq!(
            (outcome.passed, outcome.shown.as_str(), outcome.unit),
            (passed, shown, None),
            "{text}"
        );
    }
}

#[test]
fn events_per_second_has_the_runs_figure_and_its_extremes() {
    let rate = || Measured::Rate {
        avg: 45_000.0,
        min: 44_100.5,
        max: 46_000.0,
    };
    for (text, passed) in [
        ("avg >= 45000", true),
        ("value > 45000", false),
        ("min >= 44000", true),
        ("min >= 44100.6", false),
        ("max <= 46000", true),
    ] {
        let outcome = outcome(Metric::EventsPerSecond, text, rate());
        assert_eq!(outcome.passed, passed, "{text}");
        assert_eq!(outcome.unit, Some("events/s"));
    }
    let min = outcome(Metric::EventsPerSecond, "min > 1", rate());
    assert_eq!(min.shown, "44100.5 events/s");
}

#[test]
fn outcomes_serialize_for_the_run_report() {
    let outcome = outcome(Metric::ReplyLatency, "p(99) < 2s", latency(&[3_000_000]));
    assert_eq!(
        serde_json::to_value(&outcome).unwrap(),
        serde_json::json!({"metric": "reply_latency", "threshold": "p(99) < 2s", "measured": 3.0, "unit": "s", "passed": false})
    );
    let share = self::outcome(
        Metric::DeliveryLost,
        "rate < 1%",
        Measured::Share { count: 0, of: 10 },
    );
    assert_eq!(
        serde_json::to_value(&share).unwrap(),
        serde_json::json!({"metric": "delivery_lost", "threshold": "rate < 1%", "measured": 0.0, "passed": true})
    );
    let none = self::outcome(
        Metric::ReplyLatency,
        "avg < 1s",
        Measured::Durations(LatenessSummary::default()),
    );
    assert_eq!(
        serde_json::to_value(&none).unwrap()["measured"],
        serde_json::Value::Null
    );
}

/// Three thresholds, the second breached.
fn sample() -> Vec<Outcome> {
    let checked = thresholds(
        "reply_latency: [\"p(99) < 2s\", \"p(99.9) < 250µs\"]\nreplies_missing: [\"rate < 0.01\"]",
    )
    .unwrap();
    let mut measurements = Measurements::new();
    measurements
        .set(Metric::ReplyLatency, latency(&[100, 200, 1_234_000]))
        .set(
            Metric::RepliesMissing,
            Measured::Share { count: 0, of: 237 },
        );
    evaluate(&checked, &measurements)
}

#[test]
fn the_table_aligns_a_line_per_threshold() {
    let outcomes = sample();
    assert!(!all_passed(&outcomes));
    assert_eq!(
        table(&outcomes),
        "thresholds: 2 passed, 1 breached\n\
         \x20 ✓ reply_latency    p(99) < 2s       1.234s\n\
         \x20 ✗ reply_latency    p(99.9) < 250µs  1.234s\n\
         \x20 ✓ replies_missing  rate < 0.01      0 (0 of 237)\n"
    );
    assert_eq!(table(&[]), "thresholds: 0 passed, 0 breached\n");
}

#[test]
fn the_junit_file_has_a_testcase_per_threshold_and_fails_the_breached_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thresholds.xml");
    let file = crate::report_file::ReportFile::create_for("--junit", path.clone(), None).unwrap();
    write_junit(file, &sample(), Duration::from_millis(12_345)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    let suites: Vec<_> = document
        .descendants()
        .filter(|node| node.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1, "{text}");
    let suite = suites[0];
    assert_eq!(suite.attribute("name"), Some(JUNIT_SUITE));
    assert_eq!(suite.attribute("tests"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert_eq!(suite.attribute("time"), Some("12.345"));
    let cases: Vec<_> = suite
        .children()
        .filter(|node| node.has_tag_name("testcase"))
        .collect();
    let names: Vec<(&str, &str)> = cases
        .iter()
        .map(|case| {
            (
                case.attribute("classname").unwrap(),
                case.attribute("name").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("thresholds.reply_latency", "p(99) < 2s"),
            ("thresholds.reply_latency", "p(99.9) < 250µs"),
            ("thresholds.replies_missing", "rate < 0.01"),
        ]
    );
    let failures: Vec<_> = document
        .descendants()
        .filter(|node| node.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].parent().unwrap().attribute("name"),
        Some("p(99.9) < 250µs")
    );
    assert_eq!(
        failures[0].attribute("message"),
        Some("measured 1.234s breaches p(99.9) < 250µs")
    );
    assert!(
        failures[0]
            .text()
            .unwrap()
            .contains("thresholds.reply_latency: p(99.9) < 250µs; measured 1.234s")
    );
    assert_eq!(
        cases[0]
            .children()
            .find(|node| node.has_tag_name("system-out"))
            .and_then(|node| node.text()),
        Some("measured 1.234s")
    );
    assert!(
        text.contains("p(99) &lt; 2s"),
        "escaped by the writer: {text}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn a_threshold_with_no_data_fails_in_junit_saying_so() {
    let threshold = &thresholds("reply_latency: [\"p(99) < 2s\"]").unwrap()[0];
    let outcome = threshold.evaluate(&Measurements::new());
    let text = junit_xml(&[outcome], Duration::ZERO);
    let document = roxmltree::Document::parse(&text).unwrap();
    let failure = document
        .descendants()
        .find(|node| node.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("not measured: nothing to compare with p(99) < 2s")
    );
}

#[test]
fn abort_on_fail_waits_for_its_delay_and_for_data() {
    let checked = thresholds(
        "replies_missing: [\"count == 0\", {threshold: \"rate < 0.5\", abort_on_fail: true, delay_abort_eval: 10s}]\n\
         reply_latency: [{threshold: \"p(99) < 1s\", abort_on_fail: true}]",
    )
    .unwrap();
    // Checked in metric order: reply_latency's, then replies_missing's two.
    assert_eq!(checked[1].expression(), "count == 0");
    assert!(
        AbortWatch::new(&checked[1..2]).is_none(),
        "no abort_on_fail"
    );
    let watch = AbortWatch::new(&checked).unwrap();
    assert_eq!(
        watch.metrics(),
        [Metric::ReplyLatency, Metric::RepliesMissing]
    );
    let mut measurements = Measurements::new();
    measurements
        .set(Metric::RepliesMissing, Measured::Share { count: 6, of: 10 })
        .set(
            Metric::ReplyLatency,
            Measured::Durations(LatenessSummary::default()),
        );
    // Missing is breached, but its delay has not passed; latency has no data yet.
    assert_eq!(watch.breached(Duration::from_secs(9), &measurements), None);
    let breach = watch
        .breached(Duration::from_secs(10), &measurements)
        .unwrap();
    assert_eq!(
        (breach.metric, breach.threshold.as_str()),
        (Metric::RepliesMissing, "rate < 0.5")
    );
    // Latency measured and breached too: the first in order is named.
    measurements.set(Metric::ReplyLatency, latency(&[3_000_000]));
    let breach = watch
        .breached(Duration::from_secs(10), &measurements)
        .unwrap();
    assert_eq!(breach.metric, Metric::ReplyLatency);
    measurements
        .set(Metric::ReplyLatency, latency(&[3_000]))
        .set(Metric::RepliesMissing, Measured::Share { count: 1, of: 10 });
    assert_eq!(watch.breached(Duration::from_secs(60), &measurements), None);
}

#[test]
fn the_exit_code_is_distinct() {
    assert!(![0, 1, 2].contains(&THRESHOLDS_BREACHED));
}
