//! Ground-truth focus: when a shopper has stayed in one department long enough to be interested.
//!
//! The original demo's decision service watches the move topic only and maps each reported point
//! to the department whose inclusive rectangle contains it. Per customer it counts the move reports
//! in a row that fall in the same department: the first report in a department counts 1 (whatever
//! came before: another department, no department, or nothing yet), each next report in that same
//! department adds 1, and a report anywhere else starts over. A customer is *focused* once the
//! count reaches 3. Enter and exit events carry no position and do not count.
//!
//! [`FocusTracker`] applies that rule to one shopper's reports, so a source can publish, next to
//! the moves, the focus events a consumer's detection should find (`topics.focus`). Two deliberate
//! differences from the decision service: a stay is announced once, at its 3rd report (the service
//! announces again at every further report of the same stay), and a new visit starts a new count
//! (the service keeps its count across visits of the same id; this only matters when one visit
//! ends and the next starts inside the same department).

use crate::layout::StoreLayout;

/// Reports in a row inside one department that make a focus (the decision service's
/// `requiredNumberOfSteps`).
pub const FOCUS_REPORTS: u8 = 3;

/// Follows one shopper's position reports and tells which one is the focus of a department stay.
/// Four bytes, so a million shoppers can each carry one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FocusTracker {
    /// The department of the last report (index into the layout's zones), if it was in one.
    department: Option<u16>,
    /// Reports in a row inside `department` (stops counting after the focus).
    run: u8,
}

impl FocusTracker {
    /// A shopper with no report yet.
    pub fn new() -> FocusTracker {
        FocusTracker::default()
    }

    /// Feeds the department (index into the layout's zones) of the shopper's next position
    /// report, `None` outside every department. True when this report is the stay's focus.
    pub fn observe(&mut self, department: Option<usize>) -> bool {
        let department = department.map(|index| index as u16);
        if department.is_some() && department == self.department {
            self.run = self.run.saturating_add(1).min(FOCUS_REPORTS + 1);
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
        let department = match (u32::try_from(x), u32::try_from(y)) {
            (Ok(x), Ok(y)) => layout
                .department_at(x, y)
                .filter(|&zone| layout.zones()[zone].focus),
            _ => None,
        };
        self.observe(department).then_some(department).flatten()
    }

    /// Forgets the current stay (the shopper left).
    pub fn reset(&mut self) {
        *self = FocusTracker::default();
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
}
