use super::*;

use chrono::{Timelike, Utc};
use rand::SeedableRng;
use rand_pcg::Pcg64;

/// 2024-03-01T00:00:00Z.
const MARCH_2024_MS: i64 = 1_709_251_200_000;

fn config(
    hours: Option<[&str; 2]>,
    profile: Option<Vec<f64>>,
    timezone: &str,
    capacity: Option<u64>,
) -> ArrivalsConfig {
    ArrivalsConfig {
        opening_hours: hours.map(|hours| hours.iter().map(|t| t.to_string()).collect()),
        hourly_profile: profile,
        timezone: timezone.to_string(),
        capacity,
        max_queue: default_max_queue(),
    }
}

fn error_of(config: ArrivalsConfig) -> String {
    match config.check() {
        Err(PluginError::Config(message)) => message,
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// Every arrival in `[origin, origin + days)` at `per_hour` shoppers per open hour on average.
fn arrivals(rules: &ArrivalRules, per_hour: f64, origin_ms: i64, days: i64) -> Vec<i64> {
    let mut rng = Pcg64::seed_from_u64(17);
    let mut process = rules.process(per_hour / HOUR_MS as f64, origin_ms, &mut rng);
    let mut times = Vec::new();
    while let Some(at) = process
        .next_ms()
        .filter(|at| *at < origin_ms + days * DAY_MS)
    {
        times.push(at);
        process.advance(&mut rng);
    }
    times
}

fn local_hour(zone: Tz, at_ms: i64) -> usize {
    let utc = DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap();
    utc.with_timezone(&zone).hour() as usize
}

/// A shop's day: quiet mornings, a lunch peak and a bigger evening peak.
fn shop_profile() -> Vec<f64> {
    let mut profile = vec![0.0; 24];
    let busy = [
        (8, 1.0),
        (9, 1.5),
        (10, 2.0),
        (11, 2.5),
        (12, 4.0),
        (13, 3.0),
        (14, 2.0),
        (15, 2.0),
        (16, 3.0),
        (17, 5.0),
        (18, 6.0),
        (19, 4.0),
        (20, 2.0),
    ];
    for (hour, weight) in busy {
        profile[hour] = weight;
    }
    // Weight outside the opening hours must not matter.
    profile[3] = 50.0;
    profile
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    let cases = [
        (
            config(None, Some(vec![1.0; 23]), "UTC", None),
            "hourly_profile: must have exactly 24 weights",
        ),
        (
            config(
                None,
                Some([vec![-1.0], vec![1.0; 23]].concat()),
                "UTC",
                None,
            ),
            "hourly_profile: the weight of hour 0 is -1",
        ),
        (
            config(None, Some(vec![0.0; 24]), "UTC", None),
            "hourly_profile: every open hour has weight 0",
        ),
        (
            config(Some(["08:00", "25:00"]), None, "UTC", None),
            "opening_hours: \"25:00\" is not a time of day",
        ),
        (
            config(Some(["8am", "21:00"]), None, "UTC", None),
            "opening_hours: \"8am\" is not a time of day",
        ),
        (
            config(Some(["24:00", "08:00"]), None, "UTC", None),
            "opening_hours: \"24:00\" is not a time of day",
        ),
        (
            config(Some(["09:00", "09:00"]), None, "UTC", None),
            "opening_hours: opening and closing are both 09:00",
        ),
        (
            config(None, None, "Mars/Olympus_Mons", None),
            "timezone: \"Mars/Olympus_Mons\" is not an IANA time zone name",
        ),
        (
            config(None, None, "UTC", Some(0)),
            "capacity: must be at least 1",
        ),
    ];
    for (config, expected) in cases {
        let message = error_of(config);
        assert!(message.starts_with(expected), "{message}");
    }
    let mut three = config(None, None, "UTC", None);
    three.opening_hours = Some(vec!["08:00".into(), "12:00".into(), "21:00".into()]);
    assert!(error_of(three).starts_with("opening_hours: must be two times of day"));
}

#[test]
fn without_the_keys_arrivals_are_the_exponential_gaps_of_before() {
    let rules = ArrivalsConfig::default().check().unwrap();
    assert!(!rules.is_shaped());
    assert_eq!(rules.capacity, None);
    let rate = 6.0 / 600_000.0;
    let mut rng = Pcg64::seed_from_u64(5);
    let mut process = rules.process(rate, MARCH_2024_MS, &mut rng);
    // What the random_walk generator computed before this module existed.
    let mut reference_rng = Pcg64::seed_from_u64(5);
    let gap = Exp::new(rate).unwrap();
    let mut clock = MARCH_2024_MS as f64 + gap.sample(&mut reference_rng);
    for _ in 0..1000 {
        assert_eq!(process.next_ms(), Some(clock.floor() as i64));
        process.advance(&mut rng);
        clock += gap.sample(&mut reference_rng);
    }
    assert_eq!(process.open_until(MARCH_2024_MS), None);
}

#[test]
fn a_zero_rate_means_nobody_arrives() {
    let rules = config(Some(["08:00", "21:00"]), None, "UTC", None)
        .check()
        .unwrap();
    let mut rng = Pcg64::seed_from_u64(1);
    assert_eq!(rules.process(0.0, 0, &mut rng).next_ms(), None);
}

#[test]
fn arrivals_follow_the_hourly_profile_and_keep_the_mean_rate_while_open() {
    let profile = shop_profile();
    let rules = config(Some(["08:00", "21:00"]), Some(profile.clone()), "UTC", None)
        .check()
        .unwrap();
    let (per_hour, days) = (400.0, 30);
    let times = arrivals(&rules, per_hour, MARCH_2024_MS, days);
    let mut by_hour = [0u32; 24];
    for at in &times {
        by_hour[local_hour(Tz::UTC, *at)] += 1;
    }
    let open_weight: f64 = profile[8..21].iter().sum();
    for hour in 0..24 {
        let expected = if (8..21).contains(&hour) {
            per_hour * days as f64 * profile[hour] * 13.0 / open_weight
        } else {
            0.0
        };
        let got = f64::from(by_hour[hour]);
        assert!(
            (got - expected).abs() <= 0.05 * expected,
            "hour {hour}: {got} arrivals, expected {expected:.0}"
        );
    }
    // The mean rate over the open time is the base rate, so Little's law keeps the mean inside.
    let expected_total = per_hour * 13.0 * days as f64;
    let total = times.len() as f64;
    assert!((total / expected_total - 1.0).abs() < 0.02, "{total}");
}

#[test]
fn part_hours_and_overnight_hours_are_open_exactly_then() {
    let rules = config(Some(["22:30", "06:15"]), None, "UTC", None)
        .check()
        .unwrap();
    let times = arrivals(&rules, 600.0, MARCH_2024_MS, 10);
    for at in &times {
        let ms_of_day = at.rem_euclid(DAY_MS);
        assert!(
            !(6 * HOUR_MS + 15 * 60_000..22 * HOUR_MS + 30 * 60_000).contains(&ms_of_day),
            "arrival at {ms_of_day} ms of the day"
        );
    }
    // 7h45 open a day, at 600 an hour on average.
    let expected = 600.0 * 7.75 * 10.0;
    let total = times.len() as f64;
    assert!(
        (total / expected - 1.0).abs() < 0.03,
        "{total} of {expected}"
    );
    let process = rules.process(1.0, 0, &mut Pcg64::seed_from_u64(1));
    let midnight = MARCH_2024_MS;
    assert_eq!(
        process.open_until(midnight),
        Some(midnight + 6 * HOUR_MS + 15 * 60_000)
    );
    assert_eq!(
        process.open_until(midnight + 12 * HOUR_MS),
        Some(midnight + 12 * HOUR_MS),
        "closed at noon"
    );
    assert!(process.is_open_at(midnight + 6 * HOUR_MS));
    assert!(!process.is_open_at(midnight + 6 * HOUR_MS + 15 * 60_000));
    assert!(process.is_open_at(midnight + 22 * HOUR_MS + 30 * 60_000));
}

#[test]
fn round_the_clock_hours_mean_no_closing() {
    let rules = config(Some(["00:00", "24:00"]), Some(vec![1.0; 24]), "UTC", None)
        .check()
        .unwrap();
    let process = rules.process(1.0, 0, &mut Pcg64::seed_from_u64(1));
    assert_eq!(process.open_until(MARCH_2024_MS), None);
}

#[test]
fn clock_changes_neither_panic_nor_open_the_store_at_the_wrong_hours() {
    // Spring forward and fall back, in zones with whole and half hour changes.
    let cases = [
        (
            "Europe/Berlin",
            "2024-03-31T00:00:00Z",
            "2024-10-27T00:00:00Z",
        ),
        (
            "America/New_York",
            "2024-03-10T00:00:00Z",
            "2024-11-03T00:00:00Z",
        ),
        (
            "Australia/Lord_Howe",
            "2024-10-06T00:00:00Z",
            "2024-04-07T00:00:00Z",
        ),
    ];
    for (name, spring, fall) in cases {
        let zone: Tz = name.parse().unwrap();
        for hours in [["01:00", "04:00"], ["23:00", "03:00"]] {
            let mut profile = vec![1.0; 24];
            profile[2] = 3.0;
            let rules = config(Some(hours), Some(profile), name, Some(5))
                .check()
                .unwrap();
            for day in [spring, fall] {
                let origin = DateTime::parse_from_rfc3339(day)
                    .unwrap()
                    .timestamp_millis()
                    - DAY_MS;
                let times = arrivals(&rules, 200.0, origin, 3);
                assert!(times.len() > 500, "{name} {day}: {} arrivals", times.len());
                for at in times {
                    let hour = local_hour(zone, at);
                    let open = if hours[0] == "01:00" {
                        (1..4).contains(&hour)
                    } else {
                        !(3..23).contains(&hour)
                    };
                    assert!(open, "{name}: arrival at local hour {hour}");
                }
                let process = rules.process(1.0, origin, &mut Pcg64::seed_from_u64(1));
                for hour in 0..72 {
                    let at = origin + hour * HOUR_MS;
                    let until = process.open_until(at).expect("closes every day");
                    assert!(until >= at && until <= at + DAY_MS);
                }
            }
        }
    }
}

#[test]
fn the_entrance_lets_in_first_come_first_served_when_someone_leaves() {
    let metrics = QueueMetrics::register(&MetricsRegistry::default());
    let mut entrance = Entrance::new(Some(2)).with_metrics(metrics.clone());
    assert_eq!(entrance.arrive(0, None), Admission::Enter);
    assert_eq!(entrance.arrive(10, None), Admission::Enter);
    assert_eq!(entrance.arrive(20, None), Admission::Queued);
    assert_eq!(entrance.arrive(30, Some(500)), Admission::Queued);
    assert_eq!(entrance.arrive(40, Some(140)), Admission::Queued);
    assert_eq!(entrance.waiting(), 3);
    assert_eq!(metrics.queue_length.get(), 3);
    // The first in line comes in a millisecond after the exit.
    assert_eq!(entrance.leave(100), Some(101));
    assert_eq!(entrance.leave(150), Some(151));
    // The last one gave up at 140: nobody is waiting any more.
    assert_eq!(entrance.leave(160), None);
    assert_eq!(entrance.waiting(), 0);
    // One place is free again.
    assert_eq!(entrance.arrive(170, None), Admission::Enter);
    assert_eq!(entrance.arrive(180, None), Admission::Queued);
    entrance.turn_away_all();
    let stats = entrance.stats().clone();
    assert_eq!(
        stats,
        QueueStats {
            queued: 4,
            entered_after_waiting: 2,
            turned_away: 2,
            total_wait_ms: (101 - 20) + (151 - 30),
            longest_wait_ms: 121,
            refused: 0,
        }
    );
    assert_eq!(
        stats.to_string(),
        "4 arrivals waited outside, mean wait 0.1s, longest 0.1s; 2 went home at closing"
    );
    assert_eq!(metrics.arrivals_queued.get(), 4);
    assert_eq!(metrics.arrivals_turned_away.get(), 2);
    assert_eq!(metrics.queue_length.get(), 0);
}

#[test]
fn without_a_capacity_everyone_enters() {
    let mut entrance = Entrance::new(None);
    for at in 0..10_000 {
        assert_eq!(entrance.arrive(at, None), Admission::Enter);
    }
    assert_eq!(entrance.leave(10_000), None);
    assert_eq!(entrance.stats(), &QueueStats::default());
}

#[test]
fn queue_metrics_have_the_documented_names() {
    let registry = MetricsRegistry::default();
    let metrics = QueueMetrics::register(&registry);
    metrics.queue_wait_seconds.observe(3.0);
    let text = registry.encode();
    for name in [
        "customersim_queue_length ",
        "customersim_queue_wait_seconds_count 1",
        "customersim_queue_wait_seconds_sum 3.0",
        "customersim_arrivals_queued_total 0",
        "customersim_arrivals_turned_away_total 0",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[test]
fn the_config_fragment_reads_the_documented_yaml() {
    let text = "opening_hours: [\"08:00\", \"21:00\"]\nhourly_profile: [0,0,0,0,0,0,0,0,1,1,1,1,2,2,1,1,1,2,3,3,2,1,0,0]\ntimezone: Europe/Berlin\ncapacity: 40\n";
    let config: ArrivalsConfig = serde_yaml::from_str(text).unwrap();
    let rules = config.check().unwrap();
    assert!(rules.is_shaped());
    assert_eq!(rules.capacity, Some(40));
    let defaults: ArrivalsConfig = serde_yaml::from_str("{}").unwrap();
    assert_eq!(defaults.timezone, "UTC");
    assert!(!defaults.check().unwrap().is_shaped());
}

#[test]
fn profiles_whose_rates_cannot_be_normalised_are_refused() {
    // Both used to pass and then hang the run: the sum overflows (every rate 0) or the mean
    // underflows (rates infinite or undefined).
    let mut huge = vec![0.0; 24];
    huge[0] = 1e308;
    let mut tiny = vec![0.0; 24];
    tiny[0] = 5e-324;
    for profile in [huge, tiny, vec![1e308; 24]] {
        let error = error_of(config(None, Some(profile.clone()), "UTC", None));
        assert!(
            error.starts_with("hourly_profile: these weights cannot be normalised"),
            "{profile:?}: {error}"
        );
    }
    // Large but normalisable weights are fine, and so are the ones of the examples.
    let mut large = vec![1e300; 24];
    large[3] = 0.0;
    assert!(config(None, Some(large), "UTC", None).check().is_ok());
}

#[test]
fn a_draw_over_years_of_nearly_idle_days_is_cheap_and_gives_up_after_the_longest_run() {
    // Open one hour a day at a rate that brings someone about once in 3,000 years: the draw
    // skips whole days and stops at the gap no run can outlast.
    let rules = config(Some(["08:00", "09:00"]), None, "Europe/Berlin", None)
        .check()
        .unwrap();
    let per_ms = 1.0 / (3_000.0 * 365.25 * DAY_MS as f64 / 24.0);
    let mut rng = Pcg64::seed_from_u64(5);
    let mut nobody = 0;
    for _ in 0..20 {
        let process = rules.process(per_ms, MARCH_2024_MS, &mut rng);
        match process.next_ms() {
            None => nobody += 1,
            Some(at) => assert!(at - MARCH_2024_MS < MAX_ARRIVAL_GAP_MS),
        }
    }
    assert!(
        nobody > 0 && nobody < 20,
        "{nobody} of 20 draws found nobody"
    );
    // Days skipped whole keep the rate: at about 2 a day, 400 days bring about 800.
    let times = arrivals(&rules, 2.0, MARCH_2024_MS, 400);
    assert!((650..950).contains(&times.len()), "{}", times.len());
    for at in times {
        let local = DateTime::from_timestamp_millis(at)
            .unwrap()
            .with_timezone(&"Europe/Berlin".parse::<Tz>().unwrap());
        assert_eq!(local.hour(), 8, "{local}");
    }
}

#[test]
fn a_full_queue_turns_arrivals_back_and_counts_them() {
    let metrics = QueueMetrics::register(&MetricsRegistry::default());
    let mut entrance = Entrance::new(Some(1))
        .with_max_queue(2)
        .with_metrics(metrics.clone());
    assert_eq!(entrance.arrive(0, None), Admission::Enter);
    assert_eq!(entrance.arrive(1, None), Admission::Queued);
    assert_eq!(entrance.arrive(2, None), Admission::Queued);
    for at in 3..100_000 {
        assert_eq!(entrance.arrive(at, None), Admission::TurnedBack);
    }
    assert_eq!(entrance.waiting(), 2);
    assert_eq!(entrance.stats().refused, 100_000 - 3);
    assert_eq!(metrics.arrivals_turned_away.get(), 100_000 - 3);
    assert!(
        entrance
            .stats()
            .to_string()
            .ends_with("0 went home at closing; 99997 turned back by a full queue (max_queue)")
    );
    // Someone leaves: the first in line comes in and there is room in the queue again.
    assert_eq!(entrance.leave(100_000), Some(100_001));
    assert_eq!(entrance.arrive(100_002, None), Admission::Queued);
    let too_long = ArrivalsConfig {
        max_queue: MAX_MAX_QUEUE + 1,
        ..ArrivalsConfig::default()
    };
    assert!(error_of(too_long).starts_with("max_queue: "));
}
