use super::*;

fn stage(seconds: i64, events_per_second: f64) -> LoadStage {
    LoadStage {
        duration_ms: seconds * 1000,
        events_per_second,
    }
}

/// 2000 → 8000 → 4000 events/s, 2 minutes each, 30 s ramps.
fn three_stages() -> LoadPlan {
    LoadPlan::new(
        vec![stage(120, 2000.0), stage(120, 8000.0), stage(120, 4000.0)],
        30_000,
    )
}

/// One shopper makes an event every 20 s and stays 10 minutes; walks take 10 s.
fn rate() -> ShopperRate {
    ShopperRate {
        events_per_second: 0.05,
        mean_visit_ms: 600_000.0,
        walk_in_ms: 0,
        walk_out_ms: 10_000,
    }
}

#[test]
fn littles_law_turns_a_target_into_a_crowd_and_an_arrival_rate() {
    let rate = rate();
    // 2000 events/s at 0.05 each: 40,000 inside; kept by 40,000 / 600 s ≈ 66.7 arrivals/s.
    assert!((rate.inside_for(2000.0) - 40_000.0).abs() < 1e-9);
    assert!((rate.arrivals_per_ms_for(2000.0) * 1000.0 - 40_000.0 / 600.0).abs() < 1e-9);
    // 30 events per visit; the arrivals times the events of a visit give the target back.
    assert!((rate.events_per_visit() - 30.0).abs() < 1e-9);
    let back = rate.arrivals_per_ms_for(2000.0) * 1000.0 * rate.events_per_visit();
    assert!((back - 2000.0).abs() < 1e-9);
    assert_eq!(rate.inside_for(0.0), 0.0);
    let idle = ShopperRate {
        events_per_second: 0.0,
        ..rate
    };
    assert_eq!(idle.inside_for(100.0), 0.0);
    assert_eq!(rate.ramp_shortfall_ms(30_000), 0);
    assert_eq!(rate.ramp_shortfall_ms(4_000), 6_000);
}

#[test]
fn targets_ramp_linearly_and_hold_after_the_last_stage() {
    let plan = three_stages();
    assert_eq!(plan.total_ms(), 360_000);
    assert_eq!(plan.peak(), 8000.0);
    // From 0 over the first 30 s.
    assert_eq!(plan.target_at(-1), 0.0);
    assert_eq!(plan.target_at(0), 0.0);
    assert_eq!(plan.target_at(15_000), 1000.0);
    assert_eq!(plan.target_at(30_000), 2000.0);
    assert_eq!(plan.target_at(119_999), 2000.0);
    // 2000 → 8000 over 120 s..150 s.
    assert_eq!(plan.target_at(120_000), 2000.0);
    assert_eq!(plan.target_at(135_000), 5000.0);
    assert_eq!(plan.target_at(200_000), 8000.0);
    assert_eq!(plan.target_at(255_000), 6000.0);
    assert_eq!(plan.target_at(1_000_000), 4000.0);
    let windows = plan.windows();
    assert_eq!(windows.len(), 3);
    assert_eq!(
        (
            windows[1].start_ms,
            windows[1].end_ms,
            windows[1].ramped_ms()
        ),
        (120_000, 240_000, 150_000)
    );
    assert_eq!((windows[1].from, windows[1].target), (2000.0, 8000.0));
}

#[test]
fn a_stage_shorter_than_the_ramp_is_all_ramp() {
    let plan = LoadPlan::new(vec![stage(10, 100.0), stage(60, 300.0)], 30_000);
    let windows = plan.windows();
    assert_eq!(windows[0].ramp_ms, 10_000);
    assert_eq!(plan.target_at(5_000), 50.0);
    assert_eq!(plan.target_at(10_000), 100.0);
    assert_eq!(plan.target_at(25_000), 200.0);
}

#[test]
fn the_target_is_split_over_sources_and_stores() {
    let followers = Arc::new(AtomicUsize::new(0));
    let one = LoadShare::new(three_stages(), followers.clone());
    let _two = LoadShare::new(three_stages(), followers.clone());
    let fleet = Fleet::new(
        vec!["a".into(), "b".into(), "c".into(), "d".into()],
        Default::default(),
    )
    .unwrap();
    assert_eq!(one.sources(), 2);
    let store = one.per_store(&fleet);
    // 2 sources × 4 stores: an eighth each.
    assert_eq!(store.stages()[1].events_per_second, 1000.0);
    assert_eq!(store.ramp_ms(), 30_000);
    assert_eq!(one.plan().stages()[1].events_per_second, 8000.0);
}

#[test]
fn the_crowd_plan_moves_early_enough_for_the_walks_to_end_with_the_ramp() {
    let origin = 1_000_000;
    let plan = PopulationPlan::new(&three_stages(), &rate(), origin);
    // Growing: no walk in, so the crowd follows the target's ramp.
    assert_eq!(plan.inside_at(origin), 0.0);
    assert!((plan.inside_at(origin + 15_000) - 20_000.0).abs() < 1e-6);
    assert_eq!(plan.inside_at(origin + 30_000), 40_000.0);
    assert_eq!(
        plan.inside_at(origin + 149_000),
        40_000.0 + 120_000.0 * 29.0 / 30.0
    );
    assert_eq!(plan.inside_at(origin + 150_000), 160_000.0);
    // Shrinking: the 10 s walk out comes off the ramp, so the crowd is down 10 s early.
    assert_eq!(plan.inside_at(origin + 240_000), 160_000.0);
    assert_eq!(plan.inside_at(origin + 250_000), 120_000.0);
    assert_eq!(plan.inside_at(origin + 260_000), 80_000.0);
    assert_eq!(plan.inside_at(origin + 10_000_000), 80_000.0);
    assert_eq!(plan.peak(), 160_000.0);
    // A ramp shorter than the walk is a step at the stage's start.
    let stepped = PopulationPlan::new(
        &LoadPlan::new(vec![stage(60, 2000.0), stage(60, 1000.0)], 5_000),
        &rate(),
        0,
    );
    assert_eq!(stepped.inside_before(60_000), 40_000.0);
    assert_eq!(stepped.inside_at(60_000), 20_000.0);
}

#[test]
fn planned_arrivals_keep_the_crowd_littles_law_asks_for() {
    let plan = PopulationPlan::new(&three_stages(), &rate(), 0);
    let mut rng = Pcg32::seed_from_u64(3);
    let mut t = 0.0;
    // Arrivals per stage once ramped; expected: inside / mean visit per second.
    let mut counts = [0u64; 3];
    loop {
        let needed: f64 = rand_distr::Distribution::sample(&rand_distr::Exp1, &mut rng);
        let Some(at) = plan.arrival_after(t, needed, 360_000.0) else {
            break;
        };
        assert!(at >= t, "arrivals in time order");
        t = at;
        for (stage, (from, to)) in [
            (30_000.0, 120_000.0),
            (150_000.0, 240_000.0),
            (270_000.0, 360_000.0),
        ]
        .iter()
        .enumerate()
        {
            if (*from..*to).contains(&at) {
                counts[stage] += 1;
            }
        }
    }
    for (count, inside) in counts.iter().zip([40_000.0, 160_000.0, 80_000.0]) {
        let expected = inside / 600.0 * 90.0;
        let off = (*count as f64 - expected) / expected;
        assert!(off.abs() < 0.03, "{count} arrivals, expected {expected:.0}");
    }
    // Nobody comes while the crowd planned is 0 for ever.
    let empty = PopulationPlan::new(&LoadPlan::new(vec![stage(60, 0.0)], 0), &rate(), 0);
    assert_eq!(empty.arrival_after(0.0, 1.0, 1e12), None);
}

#[test]
fn the_follower_fills_and_empties_the_crowd_over_each_tick() {
    let plan = Arc::new(PopulationPlan::new(&three_stages(), &rate(), 0));
    let mut follower = LoadFollower::new(plan.clone(), 0, Some(360_000), 9);
    let mut staying: usize = 0;
    let mut checked = 0;
    let mut first_tick = 0;
    let mut last_checked = 0;
    while let Some(at) = follower.next_ms() {
        if at % CONTROL_TICK_MS == 0 && at > last_checked {
            last_checked = at;
            // At each tick the crowd is where the plan was for it.
            let wanted = plan.inside_before(at);
            let band = (wanted * STEADY_BAND).floor().max(1.0);
            assert!(
                (staying as f64 - wanted.round()).abs() <= band,
                "at {at}: {staying} inside, {wanted} planned"
            );
            checked += 1;
        }
        if at == CONTROL_TICK_MS && first_tick == 0 {
            first_tick = staying;
        }
        match follower.fire(at, staying) {
            Some(LoadAction::Admit) => staying += 1,
            Some(LoadAction::SendHome) => staying -= 1,
            None => {}
        }
    }
    assert_eq!(checked, 360, "a tick a second until the doors close");
    // The first tick lets in the first second's share of the ramp: 40,000 / 30.
    assert!(
        (first_tick as f64 - 40_000.0 / 30.0).abs() <= 1.0,
        "{first_tick}"
    );
    assert_eq!(staying, 80_000, "the last stage's crowd");
}

#[test]
fn a_steady_crowd_is_left_alone_within_the_band() {
    let plan = Arc::new(PopulationPlan::new(
        &LoadPlan::new(vec![stage(60, 500.0)], 0),
        &rate(),
        0,
    ));
    let mut follower = LoadFollower::new(plan, 0, None, 1);
    // 10,000 planned: 1% is 100.
    assert_eq!(follower.fire(0, 9_950), None);
    assert_eq!(follower.next_ms(), Some(1_000));
    // The tick plans 150 departures, spread over it (the first may be due at once).
    let mut sent = usize::from(follower.fire(1_000, 10_150) == Some(LoadAction::SendHome));
    let mut last = 1_000;
    while follower.next_ms() != Some(2_000) {
        let at = follower.next_ms().unwrap();
        assert!((last..2_000).contains(&at), "in order, within the tick");
        last = at;
        assert_eq!(follower.fire(at, 10_150 - sent), Some(LoadAction::SendHome));
        sent += 1;
    }
    assert_eq!(sent, 150);
}
