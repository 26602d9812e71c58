//! The conformance suite of the [`Timeline`] contract: every backend, in memory or shared, must
//! pass it. A backend's test calls [`timeline_conformance`] with a factory of fresh, empty
//! timelines; each check gets a timeline of its own.
//!
//! What it checks:
//! - an empty timeline holds nothing, due nowhere;
//! - `claim_due` returns the events due at or before `until_ms` (inclusive), in (due time,
//!   customer) order, at most `max` of them, and leaves the rest waiting;
//! - one customer's events at one instant keep their scheduling order (an enter before a move);
//! - an event comes back exactly as it was scheduled (text and numeric ids, every kind);
//! - a claimed event is never claimed again, whether or not its lease was acknowledged yet;
//! - `next_due` and `len` follow what is waiting;
//! - `pending_here` counts what this handle scheduled until it is claimed and acknowledged;
//! - `scheduled()` is notified when events are scheduled;
//! - `claim_due_into` appends what `claim_due` would return to the caller's buffer, and
//!   `schedule_or_hand_back` schedules as `schedule` does (the scheduler and the sources use
//!   these two).
//!
//! Ties at the `max` boundary are left out: the trait orders ties by customer, but a shared
//! backend may pick which of several events due at the same instant fill the last places.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use customersim::plugin_api::{
    Claim, ClockOrigin, CustomerId, Event, EventKind, Timeline, TimelineContext,
};

/// What an instance that generates on a virtual clock from 0 (no cutoff) opens a timeline with:
/// the backends' tests and benchmarks open theirs so.
pub fn generating_from_zero() -> TimelineContext {
    TimelineContext {
        skip_before_ms: None,
        consume_frequency: 1.0,
        clock: ClockOrigin {
            start_ms: 0,
            speed: None,
            wall_origin_us: 0,
        },
        generates: true,
    }
}

/// Runs every check of the [`Timeline`] contract, each on a fresh timeline from `make`; panics
/// naming the check that failed.
pub async fn timeline_conformance<F, Fut>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn Timeline>>,
{
    an_empty_timeline_holds_nothing(make().await).await;
    claims_due_events_in_time_then_customer_order(make().await).await;
    until_ms_is_inclusive_and_later_events_wait(make().await).await;
    max_bounds_each_claim(make().await).await;
    one_customers_events_at_one_instant_keep_their_order(make().await).await;
    events_come_back_as_scheduled(make().await).await;
    claimed_events_are_not_claimed_again(make().await).await;
    pending_here_counts_until_acknowledged(make().await).await;
    scheduling_notifies_the_scheduler(make().await).await;
    the_buffered_calls_do_what_the_plain_ones_do(make().await).await;
}

fn event(due_ms: i64, customer: u64) -> Event {
    Event {
        due_ms,
        customer: CustomerId::Number(customer),
        kind: EventKind::Enter,
        store: 0,
        stamp: Default::default(),
    }
}

/// A due time far from the epoch, as simulations use (2026-03-01T09:00:00Z).
const T0: i64 = 1_772_355_600_000;

async fn claim(timeline: &dyn Timeline, until_ms: i64, max: usize) -> Vec<Event> {
    let Claim { events, lease } = timeline.claim_due(until_ms, max).await.expect("claim_due");
    if let Some(lease) = lease {
        timeline.acknowledge(&lease).await.expect("acknowledge");
    }
    events
}

async fn waiting(timeline: &dyn Timeline) -> (u64, Option<i64>) {
    (
        timeline.len().await.expect("len"),
        timeline.next_due().await.expect("next_due"),
    )
}

async fn an_empty_timeline_holds_nothing(timeline: Arc<dyn Timeline>) {
    assert_eq!(
        waiting(&*timeline).await,
        (0, None),
        "empty: len and next_due"
    );
    assert_eq!(
        timeline.pending_here().await.expect("pending_here"),
        0,
        "empty: pending_here"
    );
    assert_eq!(
        claim(&*timeline, i64::MAX, 100).await,
        [],
        "empty: nothing to claim"
    );
}

async fn claims_due_events_in_time_then_customer_order(timeline: Arc<dyn Timeline>) {
    timeline
        .schedule(vec![
            event(T0 + 30, 1),
            event(T0 + 10, 9),
            event(T0 + 40, 3),
            event(T0 + 10, 2),
            event(T0 + 20, 5),
        ])
        .await
        .expect("schedule");
    assert_eq!(
        waiting(&*timeline).await,
        (5, Some(T0 + 10)),
        "order: len and next_due after scheduling"
    );
    assert_eq!(
        claim(&*timeline, T0 + 30, 100).await,
        [
            event(T0 + 10, 2),
            event(T0 + 10, 9),
            event(T0 + 20, 5),
            event(T0 + 30, 1)
        ],
        "order: due events by (due time, customer)"
    );
    assert_eq!(
        waiting(&*timeline).await,
        (1, Some(T0 + 40)),
        "order: the later event still waits"
    );
}

async fn until_ms_is_inclusive_and_later_events_wait(timeline: Arc<dyn Timeline>) {
    timeline
        .schedule(vec![event(T0, 1), event(T0 + 1, 2)])
        .await
        .expect("schedule");
    assert_eq!(
        claim(&*timeline, T0 - 1, 100).await,
        [],
        "until_ms: nothing due before the first event"
    );
    assert_eq!(
        claim(&*timeline, T0, 100).await,
        [event(T0, 1)],
        "until_ms: an event due exactly then is due"
    );
    assert_eq!(
        waiting(&*timeline).await,
        (1, Some(T0 + 1)),
        "until_ms: the later event waits"
    );
}

async fn max_bounds_each_claim(timeline: Arc<dyn Timeline>) {
    let events: Vec<Event> = (0..5).map(|n| event(T0 + n, 10 + n as u64)).collect();
    timeline.schedule(events.clone()).await.expect("schedule");
    assert_eq!(
        claim(&*timeline, i64::MAX, 0).await,
        [],
        "max: 0 claims nothing"
    );
    assert_eq!(
        waiting(&*timeline).await,
        (5, Some(T0)),
        "max: 0 leaves every event waiting"
    );
    assert_eq!(
        claim(&*timeline, i64::MAX, 2).await,
        events[..2],
        "max: the earliest two"
    );
    assert_eq!(
        claim(&*timeline, i64::MAX, 2).await,
        events[2..4],
        "max: the next two"
    );
    assert_eq!(
        claim(&*timeline, i64::MAX, 2).await,
        events[4..],
        "max: the last one"
    );
}

async fn one_customers_events_at_one_instant_keep_their_order(timeline: Arc<dyn Timeline>) {
    let customer = CustomerId::Number(7);
    let at = |kind| Event {
        due_ms: T0,
        customer: customer.clone(),
        kind,
        store: 0,
        stamp: Default::default(),
    };
    let events = vec![
        at(EventKind::Enter),
        at(EventKind::Move { x: 1, y: 0 }),
        at(EventKind::Move { x: 0, y: 0 }),
        at(EventKind::Exit),
    ];
    for one in &events {
        timeline
            .schedule(vec![one.clone()])
            .await
            .expect("schedule");
    }
    assert_eq!(
        claim(&*timeline, T0, 100).await,
        events,
        "one customer at one instant: scheduling order"
    );
}

async fn events_come_back_as_scheduled(timeline: Arc<dyn Timeline>) {
    let events = vec![
        Event {
            due_ms: T0,
            customer: CustomerId::Text("007".into()),
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        },
        Event {
            due_ms: T0 + 1,
            customer: CustomerId::Text("shopper with spaces, \"quotes\" and ü".into()),
            kind: EventKind::Move { x: 5, y: 9 },
            store: 0,
            stamp: Default::default(),
        },
        Event {
            due_ms: T0 + 2,
            customer: CustomerId::Number(u64::MAX),
            kind: EventKind::Move { x: -1, y: 0 },
            store: 0,
            stamp: Default::default(),
        },
        Event {
            due_ms: -5,
            customer: CustomerId::Number(0),
            kind: EventKind::Exit,
            store: 0,
            stamp: Default::default(),
        },
    ];
    timeline.schedule(events.clone()).await.expect("schedule");
    let mut expected = events;
    expected.rotate_right(1); // the one due before the epoch first
    assert_eq!(
        claim(&*timeline, i64::MAX, 100).await,
        expected,
        "round trip: ids, kinds and due times unchanged"
    );
}

async fn claimed_events_are_not_claimed_again(timeline: Arc<dyn Timeline>) {
    timeline
        .schedule(vec![event(T0, 1), event(T0 + 1, 2)])
        .await
        .expect("schedule");
    let first = timeline.claim_due(T0, 100).await.expect("claim_due");
    assert_eq!(first.events, [event(T0, 1)], "claim again: the first claim");
    // Before the lease (if any) is acknowledged, the event is taken all the same.
    let second = timeline.claim_due(T0 + 1, 100).await.expect("claim_due");
    assert_eq!(
        second.events,
        [event(T0 + 1, 2)],
        "claim again: a claimed, unacknowledged event is not handed out again"
    );
    for lease in [first.lease, second.lease].into_iter().flatten() {
        timeline.acknowledge(&lease).await.expect("acknowledge");
    }
    assert_eq!(
        claim(&*timeline, i64::MAX, 100).await,
        [],
        "claim again: nothing after acknowledging"
    );
    assert_eq!(
        waiting(&*timeline).await,
        (0, None),
        "claim again: len and next_due once all is claimed"
    );
}

async fn pending_here_counts_until_acknowledged(timeline: Arc<dyn Timeline>) {
    let pending = || async { timeline.pending_here().await.expect("pending_here") };
    timeline
        .schedule((0..3).map(|n| event(T0 + n, 1)).collect())
        .await
        .expect("schedule");
    assert_eq!(
        pending().await,
        3,
        "pending_here: what this handle scheduled"
    );
    assert_eq!(claim(&*timeline, T0, 100).await.len(), 1);
    assert_eq!(
        pending().await,
        2,
        "pending_here: a claimed and acknowledged event is done"
    );
    assert_eq!(claim(&*timeline, i64::MAX, 100).await.len(), 2);
    assert_eq!(pending().await, 0, "pending_here: all done");
}

async fn scheduling_notifies_the_scheduler(timeline: Arc<dyn Timeline>) {
    let scheduled = timeline.scheduled();
    // Take a notification left from before (a backend may also wake its scheduler on a timer).
    let _ = tokio::time::timeout(Duration::from_millis(20), scheduled.notified()).await;
    let woken = scheduled.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    timeline
        .schedule(vec![event(T0, 1)])
        .await
        .expect("schedule");
    tokio::time::timeout(Duration::from_secs(2), woken)
        .await
        .expect("scheduled() is notified when events are scheduled");
}

async fn the_buffered_calls_do_what_the_plain_ones_do(timeline: Arc<dyn Timeline>) {
    timeline
        .schedule_or_hand_back(vec![event(T0 + 20, 4), event(T0 + 10, 7)])
        .await
        .map_err(|(error, _)| error)
        .expect("schedule_or_hand_back");
    timeline
        .schedule(vec![event(T0 + 10, 3), event(T0 + 30, 1)])
        .await
        .expect("schedule");
    let mut buffer = vec![event(T0 - 5, 99)];
    let lease = timeline
        .claim_due_into(T0 + 20, 2, &mut buffer)
        .await
        .expect("claim_due_into");
    if let Some(lease) = lease {
        timeline.acknowledge(&lease).await.expect("acknowledge");
    }
    assert_eq!(
        buffer,
        [event(T0 - 5, 99), event(T0 + 10, 3), event(T0 + 10, 7)],
        "claim_due_into: appended after what the buffer held, in order, at most max"
    );
    assert_eq!(
        claim(&*timeline, T0 + 20, 100).await,
        [event(T0 + 20, 4)],
        "claim_due_into: what it left is claimed next"
    );
    assert_eq!(
        waiting(&*timeline).await,
        (1, Some(T0 + 30)),
        "claim_due_into: the later event waits"
    );
}
