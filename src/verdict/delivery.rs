//! The delivery check: the events a sink published, read back from its broker, tell what the
//! broker delivered: received out of published, lost, duplicated, and the end-to-end latency
//! (receipt − publish, wall clock).
//!
//! An event is known by its topic and payload bytes (a 64-bit hash of both). Published events
//! wait to come back for `within`; one that has not by then is lost. A message that comes back
//! when none of its kind waits is a duplicate if one like it came back within the last window,
//! otherwise foreign (published by someone else on our topics, or retained from an earlier run).

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::lateness::LatenessHistogram;

/// What the delivery check counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    /// Events the sink published and the check tracked.
    pub published: u64,
    /// Came back within the window.
    pub received: u64,
    /// Did not come back within the window.
    pub lost: u64,
    /// Came back more than once (each extra copy counts).
    pub duplicates: u64,
    /// Messages on our topics that match no event of this run.
    pub foreign: u64,
    /// Published while `max_tracked` events were waiting: not tracked.
    pub untracked: u64,
    /// Still waiting when the run was stopped before their window ended.
    pub pending: u64,
}

/// The state of the delivery check.
pub struct DeliveryCheck {
    within_us: i64,
    max_tracked: usize,
    waiting: HashMap<u64, VecDeque<i64>>,
    deadlines: VecDeque<(i64, u64)>,
    waiting_count: usize,
    /// Events that came back within the last window: a second copy is a duplicate.
    seen: HashMap<u64, u32>,
    seen_order: VecDeque<(i64, u64)>,
    /// Messages that came back before the news of their publish (the broker can echo a batch's
    /// first event before the sink's `publish` for the whole batch returned): they wait
    /// [`LIMBO_US`] for it before they count as foreign.
    limbo: HashMap<u64, VecDeque<i64>>,
    limbo_order: VecDeque<(i64, u64)>,
    limbo_count: usize,
    pub counts: DeliveryCounts,
    pub latency: LatenessHistogram,
}

/// How long a message that came back unannounced waits for the news of its publish.
const LIMBO_US: i64 = 2_000_000;

/// The most messages waiting in the limbo; beyond it, one that matches nothing is foreign at once.
const MAX_LIMBO: usize = 100_000;

/// The identity of a message: its topic (by index) and payload.
pub fn fingerprint(topic: usize, payload: &[u8]) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    topic.hash(&mut hasher);
    payload.hash(&mut hasher);
    hasher.finish()
}

impl DeliveryCheck {
    pub fn new(within: std::time::Duration, max_tracked: usize) -> DeliveryCheck {
        DeliveryCheck {
            within_us: i64::try_from(within.as_micros()).unwrap_or(i64::MAX),
            max_tracked,
            waiting: HashMap::default(),
            deadlines: VecDeque::new(),
            waiting_count: 0,
            seen: HashMap::default(),
            seen_order: VecDeque::new(),
            limbo: HashMap::default(),
            limbo_order: VecDeque::new(),
            limbo_count: 0,
            counts: DeliveryCounts::default(),
            latency: LatenessHistogram::default(),
        }
    }

    /// The sink published a message of this fingerprint at `published_us`.
    pub fn published(&mut self, print: u64, published_us: i64) {
        if self.waiting_count >= self.max_tracked {
            self.counts.untracked += 1;
            return;
        }
        self.counts.published += 1;
        if let Some(early) = self.limbo.get_mut(&print)
            && let Some(received_us) = early.pop_front()
        {
            if early.is_empty() {
                self.limbo.remove(&print);
            }
            self.limbo_count -= 1;
            self.arrived(print, published_us, received_us.max(published_us));
            return;
        }
        self.waiting_count += 1;
        self.waiting
            .entry(print)
            .or_default()
            .push_back(published_us);
        self.deadlines
            .push_back((published_us.saturating_add(self.within_us), print));
    }

    /// A message of this fingerprint came back at `received_us`.
    pub fn received(&mut self, print: u64, received_us: i64) {
        self.decide_until(received_us);
        if let Some(waiting) = self.waiting.get_mut(&print)
            && let Some(published_us) = waiting.pop_front()
        {
            if waiting.is_empty() {
                self.waiting.remove(&print);
            }
            self.waiting_count -= 1;
            self.arrived(print, published_us, received_us);
        } else if self.seen.contains_key(&print) {
            self.counts.duplicates += 1;
        } else if self.limbo_count < MAX_LIMBO {
            self.limbo_count += 1;
            self.limbo.entry(print).or_default().push_back(received_us);
            self.limbo_order
                .push_back((received_us.saturating_add(LIMBO_US), print));
        } else {
            self.counts.foreign += 1;
        }
    }

    fn arrived(&mut self, print: u64, published_us: i64, received_us: i64) {
        self.counts.received += 1;
        let latency = received_us.saturating_sub(published_us).max(0) as u64;
        self.latency.record(std::iter::once(latency));
        *self.seen.entry(print).or_default() += 1;
        self.seen_order
            .push_back((received_us.saturating_add(self.within_us), print));
    }

    /// Events still waiting `within` after their publish are lost.
    pub fn decide_until(&mut self, now_us: i64) {
        while let Some(&(deadline, print)) = self.deadlines.front()
            && deadline < now_us
        {
            self.deadlines.pop_front();
            if let Some(waiting) = self.waiting.get_mut(&print)
                && let Some(published_us) = waiting.front()
                && published_us.saturating_add(self.within_us) <= deadline
            {
                waiting.pop_front();
                if waiting.is_empty() {
                    self.waiting.remove(&print);
                }
                self.waiting_count -= 1;
                self.counts.lost += 1;
            }
        }
        while let Some(&(until, print)) = self.limbo_order.front()
            && until < now_us
        {
            self.limbo_order.pop_front();
            if let Some(early) = self.limbo.get_mut(&print)
                && early.pop_front().is_some()
            {
                if early.is_empty() {
                    self.limbo.remove(&print);
                }
                self.limbo_count -= 1;
                self.counts.foreign += 1;
            }
        }
        while let Some(&(until, print)) = self.seen_order.front()
            && until < now_us
        {
            self.seen_order.pop_front();
            if let Some(count) = self.seen.get_mut(&print) {
                *count -= 1;
                if *count == 0 {
                    self.seen.remove(&print);
                }
            }
        }
    }

    /// Every window is over (`interrupted`: the run stopped before): what still waits is lost
    /// (pending).
    pub fn settle(&mut self, interrupted: bool) {
        let left = self.waiting_count as u64;
        if interrupted {
            self.counts.pending += left;
        } else {
            self.counts.lost += left;
        }
        self.counts.foreign += self.limbo_count as u64;
        self.waiting.clear();
        self.deadlines.clear();
        self.waiting_count = 0;
        self.limbo.clear();
        self.limbo_order.clear();
        self.limbo_count = 0;
    }

    /// When the last waiting event is decided (wall µs), if any waits.
    pub fn last_deadline_us(&self) -> Option<i64> {
        self.deadlines.back().map(|(deadline, _)| *deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn received_lost_duplicated_and_foreign_are_told_apart() {
        let mut check = DeliveryCheck::new(std::time::Duration::from_secs(2), 100);
        let (a, b, c) = (
            fingerprint(0, b"a"),
            fingerprint(0, b"b"),
            fingerprint(1, b"a"),
        );
        assert_ne!(a, c, "the topic is part of the identity");
        check.published(a, 0);
        check.published(b, 0);
        check.received(a, S / 2);
        check.received(a, S);
        check.received(c, S);
        check.decide_until(4 * S);
        let counts = &check.counts;
        assert_eq!(
            (
                counts.published,
                counts.received,
                counts.lost,
                counts.duplicates,
                counts.foreign
            ),
            (2, 1, 1, 1, 1)
        );
    }

    #[test]
    fn an_event_back_before_the_news_of_its_publish_is_received() {
        let mut check = DeliveryCheck::new(std::time::Duration::from_secs(2), 100);
        let a = fingerprint(0, b"a");
        check.received(a, S);
        check.published(a, S + 10);
        check.settle(false);
        assert_eq!(
            (
                check.counts.received,
                check.counts.lost,
                check.counts.foreign
            ),
            (1, 0, 0)
        );
    }

    #[test]
    fn tracking_is_bounded() {
        let mut check = DeliveryCheck::new(std::time::Duration::from_secs(2), 2);
        for n in 0..5u8 {
            check.published(fingerprint(0, &[n]), 0);
        }
        assert_eq!((check.counts.published, check.counts.untracked), (2, 3));
        check.settle(true);
        assert_eq!(check.counts.pending, 2);
    }
}
