//! Ground-truth focus: when a shopper has stayed in one department long enough to be interested.
//!
//! The original demo's decision service watches the move topic only and maps each reported point
//! to the department whose inclusive rectangle contains it. Per customer it counts the move reports
//! in a row that fall in the same department: the first report in a department counts 1 (whatever
//! came before: another department, no department, or nothing yet), each next report in that same
//! department adds 1, and a report anywhere else starts over. A customer is *focused* while the
//! count is 3 or more. Enter and exit events carry no position and do not count.
//!
//! [`FocusTracker`] applies that rule to one shopper's reports; [`FocusStage`] applies it to every
//! shopper of one source, between the source and the timeline, so a consumer's detection can be
//! checked against the focus events it adds (`topics.focus`), whatever source made the moves.
//! When a stay is announced is [`Announce`]'s choice:
//! - [`Announce::OncePerStay`] (the default): once, at the stay's 3rd report, and a new visit
//!   (an enter or an exit) starts a new count.
//! - [`Announce::EveryReport`]: as the decision service announces, at the 3rd report and at every
//!   further report of the stay, the count kept across visits of the same id (its state outlives
//!   the exit; this only matters when one visit ends inside a department and the next one starts
//!   in it).

use crate::shopper_map::{ShopperMap, fetch_early};

use serde::{Deserialize, Serialize};

use crate::event::{CustomerId, Event, EventKind, intern};
use crate::fleet::StoreIndex;
use crate::layout::StoreLayout;

/// Reports in a row inside one department that make a focus (the decision service's
/// `requiredNumberOfSteps`).
pub const FOCUS_REPORTS: u8 = 3;

/// Most shoppers a [`FocusStage`] follows at once. Only shoppers whose last report was inside a
/// department are followed (any other is as good as new), and a shopper is forgotten at its exit
/// (`once_per_stay`), so simulated shoppers stay far below it. Shoppers that never exit (moves
/// posted over HTTP without an exit, `every_report` counts that outlive a visit) could otherwise
/// grow it without end: beyond it, the eighth that reported longest ago are forgotten (logged
/// once), and their next report counts as a first one. About 64 bytes each: 256 MiB at most.
pub const MAX_FOLLOWED_SHOPPERS: usize = 1 << 22;

/// When a focus event is announced (`focus.announce`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case", crate = "serde")]
pub enum Announce {
    /// Once per department stay, at its 3rd report in a row; a new visit starts a new count.
    #[default]
    OncePerStay,
    /// As the demo's decision service: at the 3rd report in a row and at every further report of
    /// the stay, the count kept across visits.
    EveryReport,
}

impl Announce {
    /// The value as the config writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Announce::OncePerStay => "once_per_stay",
            Announce::EveryReport => "every_report",
        }
    }
}

/// Follows one shopper's position reports and tells which ones are focus reports.
/// Four bytes, so a million shoppers can each carry one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FocusTracker {
    /// The department of the last report (index into the layout's zones), if it was in one.
    department: Option<u16>,
    /// Reports in a row inside `department`, counted up to one past what the rule needs.
    run: u8,
}

impl FocusTracker {
    /// A shopper with no report yet.
    pub fn new() -> FocusTracker {
        FocusTracker::default()
    }

    /// Feeds the department (index into the layout's zones) of the shopper's next position
    /// report, `None` outside every department. True when this report is the stay's focus
    /// ([`Announce::OncePerStay`]: its 3rd report only).
    pub fn observe(&mut self, department: Option<usize>) -> bool {
        self.observe_as(department, Announce::OncePerStay)
    }

    /// [`FocusTracker::observe`] under the `announce` rule: with [`Announce::EveryReport`] true
    /// at the 3rd report of a stay and at each one after it.
    pub fn observe_as(&mut self, department: Option<usize>, announce: Announce) -> bool {
        let department = department.map(|index| index as u16);
        // Once-per-stay counts one past the focus, so the focus report is the only one at 3;
        // every-report stays at 3, so every further report of the stay is one.
        let most = match announce {
            Announce::OncePerStay => FOCUS_REPORTS + 1,
            Announce::EveryReport => FOCUS_REPORTS,
        };
        if department.is_some() && department == self.department {
            self.run = self.run.saturating_add(1).min(most);
        } else {
            self.department = department;
            self.run = u8::from(department.is_some());
        }
        self.run == FOCUS_REPORTS
    }

    /// Feeds a published position (store coordinates): the department whose rectangle contains it
    /// ([`StoreLayout::department_at`], the consumers' rule; one with `focus: false` counts as
    /// none) when this report is the focus.
    pub fn report(&mut self, layout: &StoreLayout, x: i64, y: i64) -> Option<usize> {
        let department = focus_department(layout, x, y);
        self.observe(department).then_some(department).flatten()
    }

    /// Forgets the current stay (the shopper left).
    pub fn reset(&mut self) {
        *self = FocusTracker::default();
    }

    /// Whether this is a shopper with no stay to remember (the last report was outside every
    /// department, or there was none): nothing of it needs keeping.
    pub fn is_new(&self) -> bool {
        self.department.is_none()
    }
}

/// The department a focus may name whose rectangle contains `(x, y)` ([`StoreLayout::department_at`],
/// the consumers' rule), `None` outside every one and in one with `focus: false`. A cell's centre,
/// which is what simulated shoppers report, is looked up in constant time.
pub fn focus_department(layout: &StoreLayout, x: i64, y: i64) -> Option<usize> {
    let (x, y) = (u32::try_from(x).ok()?, u32::try_from(y).ok()?);
    let department = match layout.cell_of(x, y) {
        Some((col, row)) if layout.centre(col, row) == (x, y) => {
            return layout.focus_department_at_cell(col, row);
        }
        _ => layout.department_at(x, y),
    };
    department.filter(|&zone| layout.zones()[zone].focus)
}

/// How many events ahead [`FocusStage::apply`] fetches a shopper's entry: the lookups come in
/// no order in memory, and each one waited for its entry (a tenth of a shopping_trip run).
const FETCH_AHEAD: usize = 4;

/// Who a tracker follows: the store and the id (ids are unique per store).
type Shopper = (StoreIndex, CustomerId);

#[derive(Clone, Copy, Debug)]
struct Followed {
    tracker: FocusTracker,
    /// When the shopper last reported, to know whom to forget first beyond the bound.
    last_ms: i64,
}

/// What a batch changed in a [`FocusStage`], to put back when the batch was refused (the timeline
/// was unreachable): each change's shopper as it was before, undone last change first.
#[derive(Debug, Default)]
pub struct FocusUndo(Vec<(Shopper, Option<Followed>)>);

/// The focus stage of one source: derives the focus events from its shoppers' moves, in the order
/// the source hands them over (each shopper's events in time order, as every source schedules
/// them; a batch is taken in time order whatever its order). A focus event is put right after the move it follows, with the same due time, so the
/// timeline publishes it right after that move. The same moves give the same focus events, byte
/// for byte, whichever source made them and however they were split into batches.
#[derive(Debug)]
pub struct FocusStage {
    layout: StoreLayout,
    /// Each zone's name, interned, for the `dep` of focus events.
    names: Vec<&'static str>,
    announce: Announce,
    /// The shoppers whose last report was inside a department (any other one is as good as new).
    followed: ShopperMap<Followed>,
    /// Most shoppers followed at once.
    bound: usize,
    /// Whether the bound was reached (logged once).
    overflowed: bool,
}

impl FocusStage {
    /// A stage for shoppers in `layout`, announcing as `announce` says.
    pub fn new(layout: StoreLayout, announce: Announce) -> FocusStage {
        let names = layout
            .zones()
            .iter()
            .map(|zone| intern(&zone.name))
            .collect();
        FocusStage {
            layout,
            names,
            announce,
            followed: ShopperMap::default(),
            bound: MAX_FOLLOWED_SHOPPERS,
            overflowed: false,
        }
    }

    /// The same stage following at most `bound` shoppers (tests of the bound).
    pub fn with_bound(mut self, bound: usize) -> FocusStage {
        self.bound = bound.max(8);
        self
    }

    /// How many shoppers it follows now.
    pub fn followed(&self) -> usize {
        self.followed.len()
    }

    /// `events` with the focus events they make, each right after its move; with `undo`, what
    /// to give [`FocusStage::undo`] if the batch is refused.
    pub fn apply(&mut self, events: Vec<Event>, undo: Option<&mut FocusUndo>) -> Vec<Event> {
        let touches = |event: &Event| !matches!(event.kind, EventKind::Focus { .. });
        if !events.iter().any(touches) {
            return events;
        }
        let mut events = events;
        if !events.is_sorted_by_key(|event| event.due_ms) {
            // Each shopper's reports count in time order (a scenario's path may list its steps in
            // any order); the timeline orders by due time anyway, and a stable sort keeps the
            // order of events due at one instant.
            events.sort_by_key(|event| event.due_ms);
        }
        let mut undo = undo;
        // The focus events, each with the position of the move it follows: few, so the batch is
        // looked at where it lies and moved, in runs and in place, only when it has any (an event
        // is 80 bytes: moving each one by one showed in profiles, and so did a new batch's
        // memory, which the system zeroed page by page for every batch).
        let mut made = Vec::new();
        for (at, event) in events.iter().enumerate() {
            if let Some(soon) = events.get(at + FETCH_AHEAD) {
                fetch_early(&self.followed, soon.store, &soon.customer);
            }
            if let Some(kind) = self.observe(event, undo.as_deref_mut()) {
                let focus = Event {
                    kind,
                    customer: event.customer.clone(),
                    ..*event
                };
                made.push((at, focus));
            }
        }
        insert_after(&mut events, made);
        events
    }

    /// Puts back what a refused batch changed.
    pub fn undo(&mut self, undo: FocusUndo) {
        for (shopper, before) in undo.0.into_iter().rev() {
            match before {
                Some(followed) => self.followed.insert(shopper, followed),
                None => self.followed.remove(&shopper),
            };
        }
    }

    /// Follows one event; the focus it makes, if any.
    fn observe(&mut self, event: &Event, undo: Option<&mut FocusUndo>) -> Option<EventKind> {
        let (department, forget) = match event.kind {
            EventKind::Move { x, y } => (focus_department(&self.layout, x, y), false),
            // A visit's end (or a new one) starts a new count, unless counts outlive visits.
            EventKind::Enter | EventKind::Exit => match self.announce {
                Announce::OncePerStay => (None, true),
                Announce::EveryReport => return None,
            },
            EventKind::Focus { .. } => return None,
        };
        use hashbrown::hash_map::Entry;
        let entry = self.followed.entry((event.store, event.customer.clone()));
        let before = match &entry {
            Entry::Occupied(known) => Some(*known.get()),
            Entry::Vacant(_) => None,
        };
        if before.is_none() && department.is_none() {
            // A shopper outside every department, with nothing remembered: nothing changes.
            return None;
        }
        let mut tracker = before.map(|followed| followed.tracker).unwrap_or_default();
        let focus = !forget && tracker.observe_as(department, self.announce);
        if let Some(undo) = undo {
            undo.0.push((entry.key().clone(), before));
        }
        if forget || tracker.is_new() {
            if let Entry::Occupied(known) = entry {
                known.remove();
            }
        } else {
            let followed = Followed {
                tracker,
                last_ms: event.due_ms,
            };
            match entry {
                Entry::Occupied(mut known) => {
                    known.insert(followed);
                }
                Entry::Vacant(new) => {
                    new.insert(followed);
                    if self.followed.len() > self.bound {
                        self.forget_oldest();
                    }
                }
            }
        }
        let EventKind::Move { x, y } = event.kind else {
            return None;
        };
        focus.then(|| EventKind::Focus {
            dep: self.names[department.expect("a focus is in a department")],
            x,
            y,
        })
    }

    /// Forgets the eighth of the followed shoppers that reported longest ago (the bound was
    /// reached: shoppers that never exit).
    fn forget_oldest(&mut self) {
        let mut times: Vec<i64> = self.followed.values().map(|f| f.last_ms).collect();
        let nth = times.len() / 8;
        let (_, cutoff, _) = times.select_nth_unstable(nth);
        let cutoff = *cutoff;
        self.followed
            .retain(|_, followed| followed.last_ms > cutoff);
        if !self.overflowed {
            self.overflowed = true;
            tracing::warn!(
                "focus: more than {} shoppers in a department at once (moves without an exit?): \
                 those that reported longest ago are forgotten, so their next report counts as a first one",
                self.bound
            );
        }
    }
}

/// Puts each of `made` right after the event at its position in `events`; `made` is in order of
/// position. The batch grows in place, filled from its end back: each event after the first
/// insertion moves once, to where it ends up.
fn insert_after(events: &mut Vec<Event>, made: Vec<(usize, Event)>) {
    let Some((_, last)) = made.last() else {
        return;
    };
    // Room at the end, taken by copies that the events moving back swap places with.
    let mut read = events.len();
    events.resize(read + made.len(), last.clone());
    let mut write = events.len();
    for (at, focus) in made.into_iter().rev() {
        while read > at + 1 {
            read -= 1;
            write -= 1;
            events.swap(read, write);
        }
        write -= 1;
        events[write] = focus;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{LayoutSpec, Zone, ZoneKind};

    #[test]
    fn the_third_report_in_a_row_is_the_focus_once_per_stay() {
        let mut tracker = FocusTracker::new();
        let seen: Vec<bool> = [
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            None,
            Some(0),
            Some(1),
            Some(1),
            Some(1),
        ]
        .into_iter()
        .map(|department| tracker.observe(department))
        .collect();
        assert_eq!(
            seen,
            [false, false, true, false, false, false, false, false, true]
        );
        // A long stay never announces twice.
        let mut tracker = FocusTracker::new();
        let focuses = (0..1000).filter(|_| tracker.observe(Some(2))).count();
        assert_eq!(focuses, 1);
        tracker.reset();
        assert!(!tracker.observe(Some(2)) && !tracker.observe(Some(2)));
        assert!(tracker.observe(Some(2)));
    }

    #[test]
    fn reports_map_to_departments_by_inclusive_rectangles() {
        let zones = vec![
            Zone::new("Till", ZoneKind::Checkout, [0, 50, 9, 59]),
            Zone::new("Women", ZoneKind::Department, [10, 10, 20, 20]),
        ];
        let layout = StoreLayout::new(LayoutSpec {
            zones,
            ..LayoutSpec::grid(100, 100, (0, 0))
        })
        .unwrap();
        let mut tracker = FocusTracker::new();
        assert_eq!(tracker.report(&layout, 10, 10), None);
        assert_eq!(tracker.report(&layout, 20, 20), None);
        assert_eq!(tracker.report(&layout, 15, 20), Some(1));
        // A checkout is not a department; negative points are nowhere.
        let mut tracker = FocusTracker::new();
        for _ in 0..5 {
            assert_eq!(tracker.report(&layout, 5, 55), None);
        }
        assert_eq!(tracker.report(&layout, -1, 15), None);
    }

    #[test]
    fn a_department_consumers_do_not_know_is_never_named_and_breaks_a_run() {
        use crate::layout::{LayoutSpec, Zone, ZoneKind};
        let mut spec = LayoutSpec::grid(100, 10, (0, 0));
        let mut room = Zone::new("Restrooms", ZoneKind::Department, [0, 0, 9, 9]);
        room.focus = false;
        spec.zones = vec![
            room,
            Zone::new("Women", ZoneKind::Department, [10, 0, 29, 9]),
        ];
        let layout = StoreLayout::new(spec).unwrap();
        let mut tracker = FocusTracker::new();
        let named: Vec<Option<usize>> = [(1, 1), (2, 1), (3, 1), (4, 1), (11, 1), (12, 1), (13, 1)]
            .into_iter()
            .map(|(x, y)| tracker.report(&layout, x, y))
            .collect();
        assert_eq!(named, [None, None, None, None, None, None, Some(1)]);
        assert!(layout.has_focus_departments());
    }

    /// A 100×10 store: Women over x 10..=29, a room without focus over x 0..=9, cells of 1.
    fn strip() -> StoreLayout {
        let mut spec = LayoutSpec::grid(100, 10, (0, 0));
        let mut room = Zone::new("Restrooms", ZoneKind::Department, [0, 0, 9, 9]);
        room.focus = false;
        spec.zones = vec![
            room,
            Zone::new("Women", ZoneKind::Department, [10, 0, 29, 9]),
            Zone::new("Men", ZoneKind::Department, [30, 0, 49, 9]),
        ];
        StoreLayout::new(spec).unwrap()
    }

    fn at(due_ms: i64, id: u64, kind: EventKind) -> Event {
        Event {
            due_ms,
            customer: CustomerId::Number(id),
            kind,
            store: 0,
            stamp: Default::default(),
        }
    }

    fn moves(id: u64, points: &[(i64, i64)]) -> Vec<Event> {
        points
            .iter()
            .enumerate()
            .map(|(n, &(x, y))| at(n as i64 * 1000, id, EventKind::Move { x, y }))
            .collect()
    }

    /// (due, id, dep) of the focus events in `events`, each checked to follow its move.
    fn focuses(events: &[Event]) -> Vec<(i64, CustomerId, &'static str)> {
        events
            .iter()
            .enumerate()
            .filter_map(|(index, event)| match event.kind {
                EventKind::Focus { dep, x, y } => {
                    let before = &events[index - 1];
                    assert_eq!(
                        (before.due_ms, &before.customer, before.kind),
                        (event.due_ms, &event.customer, EventKind::Move { x, y }),
                        "a focus follows its move"
                    );
                    Some((event.due_ms, event.customer.clone(), dep))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn insertions_land_right_after_their_events_in_place() {
        let event = |n: u64| Event {
            due_ms: n as i64,
            customer: CustomerId::Number(n),
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        };
        for (len, after) in [
            (0, vec![]),
            (3, vec![]),
            (1, vec![0]),
            (5, vec![0, 4]),
            (6, vec![2, 2, 3]),
            (8, vec![0, 1, 2, 3, 4, 5, 6, 7]),
        ] {
            let mut events: Vec<Event> = (0..len).map(event).collect();
            let made: Vec<(usize, Event)> = after
                .iter()
                .map(|&at| (at, event(100 + at as u64)))
                .collect();
            let mut expected = Vec::new();
            for at in 0..len as usize {
                expected.push(event(at as u64));
                for &(after_at, ref focus) in &made {
                    if after_at == at {
                        expected.push(focus.clone());
                    }
                }
            }
            insert_after(&mut events, made);
            assert_eq!(events, expected, "{len} events, after {after:?}");
        }
    }

    #[test]
    fn every_report_announces_each_further_report_of_the_stay() {
        let mut tracker = FocusTracker::new();
        let seen: Vec<bool> = [Some(0), Some(0), Some(0), Some(0), Some(0), None, Some(0)]
            .into_iter()
            .map(|department| tracker.observe_as(department, Announce::EveryReport))
            .collect();
        assert_eq!(seen, [false, false, true, true, true, false, false]);
        // A long stay announces at every report from the 3rd on.
        let mut tracker = FocusTracker::new();
        let count = (0..1000)
            .filter(|_| tracker.observe_as(Some(2), Announce::EveryReport))
            .count();
        assert_eq!(count, 998);
    }

    #[test]
    fn the_stage_adds_each_focus_right_after_its_move() {
        let mut stage = FocusStage::new(strip(), Announce::OncePerStay);
        // Shopper 1 stays in Women; shopper 2 in the room without focus, then in Men.
        let mut events = moves(1, &[(5, 5), (12, 5), (13, 5), (14, 5), (15, 5)]);
        events.extend(moves(
            2,
            &[(1, 1), (2, 1), (3, 1), (31, 1), (32, 1), (33, 1)],
        ));
        events.sort_by_key(|event| event.due_ms);
        let out = stage.apply(events.clone(), None);
        let women = intern("Women");
        let men = intern("Men");
        assert_eq!(
            focuses(&out),
            [
                (3000, CustomerId::Number(1), women),
                (5000, CustomerId::Number(2), men)
            ]
        );
        assert_eq!(out.len(), events.len() + 2);
        // Every other event is handed through as it came, in order.
        let others: Vec<&Event> = out
            .iter()
            .filter(|event| !matches!(event.kind, EventKind::Focus { .. }))
            .collect();
        assert_eq!(others, events.iter().collect::<Vec<_>>());
        // Only shoppers in a department are followed; an exit forgets one.
        assert_eq!(stage.followed(), 2);
        stage.apply(vec![at(9000, 1, EventKind::Exit)], None);
        assert_eq!(stage.followed(), 1);
    }

    #[test]
    fn the_same_moves_in_any_batches_give_the_same_focus() {
        let points: Vec<(i64, i64)> = (0..60).map(|n| ((n * 7) % 50, n % 10)).collect();
        let mut events: Vec<Event> = (1..=5).flat_map(|id| moves(id, &points)).collect();
        events.sort_by_key(|event| event.due_ms);
        for announce in [Announce::OncePerStay, Announce::EveryReport] {
            let whole = FocusStage::new(strip(), announce).apply(events.clone(), None);
            for size in [1, 3, 7, 64] {
                let mut stage = FocusStage::new(strip(), announce);
                let split: Vec<Event> = events
                    .chunks(size)
                    .flat_map(|chunk| stage.apply(chunk.to_vec(), None))
                    .collect();
                assert_eq!(split, whole, "{announce:?} in batches of {size}");
            }
            // A batch in any order is taken in time order.
            let mut shuffled = events.clone();
            shuffled.reverse();
            let by_shopper = |events: Vec<Event>| {
                let mut focus = focuses(&FocusStage::new(strip(), announce).apply(events, None));
                focus.sort();
                focus
            };
            assert_eq!(by_shopper(shuffled), by_shopper(events.clone()));
        }
    }

    #[test]
    fn visits_start_a_new_count_once_per_stay_and_not_every_report() {
        // Two reports in Women, the visit ends and the next starts there: the decision service's
        // count goes on across the visits.
        let mut events = moves(7, &[(12, 1), (13, 1)]);
        events.push(at(2000, 7, EventKind::Exit));
        events.push(at(3000, 7, EventKind::Enter));
        events.push(at(4000, 7, EventKind::Move { x: 14, y: 1 }));
        events.push(at(5000, 7, EventKind::Move { x: 15, y: 1 }));
        let dues = |announce| {
            let out = FocusStage::new(strip(), announce).apply(events.clone(), None);
            focuses(&out)
                .into_iter()
                .map(|(due, ..)| due)
                .collect::<Vec<_>>()
        };
        assert_eq!(dues(Announce::OncePerStay), Vec::<i64>::new());
        assert_eq!(dues(Announce::EveryReport), [4000, 5000]);
    }

    #[test]
    fn a_refused_batch_is_undone() {
        let mut stage = FocusStage::new(strip(), Announce::OncePerStay);
        stage.apply(moves(1, &[(12, 1), (13, 1)]), None);
        let third = vec![at(3000, 1, EventKind::Move { x: 14, y: 1 })];
        let mut undo = FocusUndo::default();
        assert_eq!(
            focuses(&stage.apply(third.clone(), Some(&mut undo))).len(),
            1
        );
        stage.undo(undo);
        // Sent again, the third report is still the focus.
        assert_eq!(focuses(&stage.apply(third, None)).len(), 1);
    }

    #[test]
    fn beyond_the_bound_the_longest_quiet_shoppers_are_forgotten() {
        let mut stage = FocusStage::new(strip(), Announce::OncePerStay).with_bound(64);
        let events: Vec<Event> = (0..200)
            .map(|id| at(id as i64, id, EventKind::Move { x: 12, y: 1 }))
            .collect();
        stage.apply(events, None);
        assert!(stage.followed() <= 64, "{}", stage.followed());
        assert!(stage.followed() >= 56);
        // The latest ones are still followed: two more reports make their focus.
        let again: Vec<Event> = [1000, 2000]
            .into_iter()
            .map(|due| at(due, 199, EventKind::Move { x: 12, y: 1 }))
            .collect();
        assert_eq!(focuses(&stage.apply(again, None)).len(), 1);
    }

    #[test]
    fn off_grid_points_use_the_rectangles_and_cell_centres_the_cells() {
        // Cells of 20: (15, 5) is no cell's centre, (10, 10) is.
        let mut spec = LayoutSpec::grid(100, 100, (0, 0));
        spec.cell = 20;
        spec.zones = vec![Zone::new("Women", ZoneKind::Department, [0, 0, 15, 39])];
        let layout = StoreLayout::new(spec).unwrap();
        assert_eq!(focus_department(&layout, 15, 5), Some(0));
        assert_eq!(focus_department(&layout, 16, 5), None);
        assert_eq!(focus_department(&layout, 10, 10), Some(0));
        assert_eq!(focus_department(&layout, -3, 5), None);
        assert_eq!(focus_department(&layout, 500, 5), None);
    }
}
