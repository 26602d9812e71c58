//! Matching replies to the events that expect them, one [`Correlator`] per rule.
//!
//! An event the rule selects opens an expectation keyed by its field (`id`), stamped with the
//! wall time its sink published it. A reply whose field carries that key answers the oldest open
//! expectation of the key: in time when it came within `within` of the publish, late when within
//! `within + grace`. An expectation still open `within + grace` after its publish is decided as
//! missing and dropped, so memory holds only the events of the last window, however long the run.
//!
//! Replies can overtake the news of the publish they answer (the reply comes through the broker
//! and the subscriber's channel, the publish time through the sink's task): a reply that answers
//! nothing yet waits in a short *limbo* (as long as the rule's grace, at least a second) for an
//! event of its key before it counts as unexpected. The limbo is bounded too.
//!
//! On a timeline shared with other instances ([`super::shared`]) a correlator also keeps the
//! records other instances made of events of the keys that replies name ([`Correlator::learn`]),
//! and replies are matched later, in order, against the oldest open event of their key whoever
//! published it ([`Correlator::take`]); the limbo is not used then.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

use serde::Serialize;

use super::rules::Rule;
use crate::lateness::LatenessHistogram;
use crate::plugin_api::PeerEntry;

/// The most unmatched replies waiting in the limbo of one rule; beyond it, a reply that answers
/// nothing counts as unexpected at once (a flood of foreign replies costs bounded memory).
pub const MAX_LIMBO: usize = 100_000;

/// The most open expectations of one rule; events beyond it are not tracked (counted as
/// `untracked`), so a system under test that never answers costs bounded memory.
pub const MAX_OPEN: usize = 2_000_000;

/// What one rule counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Events that expected a reply (published by this process).
    pub expected: u64,
    /// Answered within `within`.
    pub answered: u64,
    /// Answered after `within`, within `within + grace`.
    pub late: u64,
    /// Not answered within `within + grace`.
    pub missing: u64,
    /// Replies that answer no event of this process (nor another instance's: a shard's, or one's
    /// sharing the timeline).
    pub unexpected: u64,
    /// Replies that are not JSON, lack the field, or fail the rule's schema.
    pub invalid: u64,
    /// Replies another instance judges: to a customer of a store another shard runs, to an event
    /// another instance sharing the timeline published, or counted (unexpected or invalid) by
    /// one of them.
    pub foreign: u64,
    /// Events not tracked because [`MAX_OPEN`] were open.
    pub untracked: u64,
    /// Expectations still open when the run was stopped before their window ended.
    pub pending: u64,
}

impl Counts {
    /// Replies that answered something, in time or late.
    pub fn replied(&self) -> u64 {
        self.answered + self.late
    }
}

/// The state of one rule.
pub struct Correlator {
    pub rule: Rule,
    within_us: i64,
    decide_after_us: i64,
    limbo_us: i64,
    /// Open expectations: publish times of each key's events, oldest first.
    open: HashMap<String, VecDeque<i64>>,
    /// Every open expectation in publish order, to decide them when their time is up.
    deadlines: VecDeque<(i64, String)>,
    open_count: usize,
    /// Replies that answered nothing yet: key → receipt times.
    limbo: HashMap<String, VecDeque<i64>>,
    limbo_order: VecDeque<(i64, String)>,
    limbo_count: usize,
    /// Shared timelines: what other instances recorded of the keys replies named.
    others: HashMap<String, Others>,
    /// When what a key learnt so far is all decided (its `within + grace` is over), in the
    /// order learnt.
    others_expiry: VecDeque<(i64, String)>,
    others_count: usize,
    pub counts: Counts,
    pub latency: LatenessHistogram,
}

/// What other instances sharing the timeline recorded of one key.
#[derive(Debug, Default)]
struct Others {
    /// Publish times of their events no reply answered yet, oldest first.
    open: VecDeque<i64>,
    /// Records published up to this were looked up (each range is asked once).
    learnt_until_us: i64,
}

/// Whose event a reply answered ([`Correlator::take`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// One this instance published: counted here.
    Here,
    /// One another instance published: that one counts it.
    Elsewhere,
}

/// What became of one reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    /// It answered an event (in time or late).
    Answered,
    /// It answered nothing yet (waits in the limbo, or counted unexpected when that is full).
    Nothing,
}

impl Correlator {
    pub fn new(rule: Rule) -> Correlator {
        let within_us = micros(rule.within);
        let decide_after_us = within_us.saturating_add(micros(rule.grace));
        let limbo_us = micros(rule.grace).max(1_000_000);
        Correlator {
            rule,
            within_us,
            decide_after_us,
            limbo_us,
            open: HashMap::default(),
            deadlines: VecDeque::new(),
            open_count: 0,
            limbo: HashMap::default(),
            limbo_order: VecDeque::new(),
            limbo_count: 0,
            others: HashMap::default(),
            others_expiry: VecDeque::new(),
            others_count: 0,
            counts: Counts::default(),
            latency: LatenessHistogram::default(),
        }
    }

    /// An event of `key` that expects a reply was published at `published_us`. Returns whether
    /// it is tracked (not beyond [`MAX_OPEN`]).
    pub fn expect(&mut self, key: String, published_us: i64) -> bool {
        self.counts.expected += 1;
        if let Some(received) = self.limbo.get_mut(&key)
            && let Some(received_us) = received.pop_front()
        {
            if received.is_empty() {
                self.limbo.remove(&key);
            }
            self.limbo_count -= 1;
            // The reply overtook the news of the publish: it came at most a moment after it.
            self.answer(published_us, received_us.max(published_us));
            return true;
        }
        if self.open_count >= MAX_OPEN {
            self.counts.untracked += 1;
            return false;
        }
        self.open_count += 1;
        self.open
            .entry(key.clone())
            .or_default()
            .push_back(published_us);
        self.deadlines
            .push_back((published_us.saturating_add(self.decide_after_us), key));
        true
    }

    /// Shared timelines: the range of `key`'s records still to look up for replies that came
    /// from `first_us` to `last_us`: after what was looked up already (and what no such reply
    /// can answer), up to `overtake_us` after the last; `None` when it was looked up.
    pub fn to_learn(
        &self,
        key: &str,
        first_us: i64,
        last_us: i64,
        overtake_us: i64,
    ) -> Option<(i64, i64)> {
        let mut after_us = first_us
            .saturating_sub(self.decide_after_us)
            .saturating_sub(1);
        if let Some(others) = self.others.get(key) {
            after_us = after_us.max(others.learnt_until_us);
        }
        let until_us = last_us.saturating_add(overtake_us);
        (after_us < until_us).then_some((after_us, until_us))
    }

    /// Learns what other instances sharing the timeline recorded of `key` up to `until_us` (a
    /// lookup's answer, for the range [`Correlator::to_learn`] gave); records decided before
    /// `floor_us` (no reply left to decide can answer them) are skipped. At most [`MAX_OPEN`]
    /// are kept.
    pub fn learn(&mut self, key: &str, entries: &[PeerEntry], until_us: i64, floor_us: i64) {
        let others = match self.others.get_mut(key) {
            Some(others) => others,
            None => self.others.entry(key.to_string()).or_default(),
        };
        others.learnt_until_us = others.learnt_until_us.max(until_us);
        for entry in entries {
            let deadline = entry.published_us.saturating_add(self.decide_after_us);
            if deadline < floor_us || self.others_count >= MAX_OPEN {
                continue;
            }
            let at = others
                .open
                .partition_point(|published_us| *published_us <= entry.published_us);
            others.open.insert(at, entry.published_us);
            self.others_count += 1;
        }
        // Forgotten once nothing it learnt can answer a reply any more.
        self.others_expiry.push_back((
            others.learnt_until_us.saturating_add(self.decide_after_us),
            key.to_string(),
        ));
    }

    /// Shared timelines: a valid reply carrying `key` that arrived at `received_us` answers the
    /// oldest event of its key still open, this instance's or another's, published at most
    /// `overtake_us` after it came (the stamp of a publish can follow a fast reply). Replies are
    /// taken in the order they arrived, once every instance's records of their time are known.
    pub fn take(&mut self, key: &str, received_us: i64, overtake_us: i64) -> Option<Taken> {
        self.decide_until(received_us);
        let latest = received_us.saturating_add(overtake_us);
        let here = self
            .open
            .get(key)
            .and_then(VecDeque::front)
            .copied()
            .filter(|published_us| *published_us <= latest);
        let decide_after_us = self.decide_after_us;
        let elsewhere = self.others.get(key).and_then(|others| {
            let at = others.open.partition_point(|published_us| {
                published_us.saturating_add(decide_after_us) < received_us
            });
            others
                .open
                .get(at)
                .filter(|published_us| **published_us <= latest)
                .map(|published_us| (at, *published_us))
        });
        match (here, elsewhere) {
            (Some(mine), Some((_, other))) if other >= mine => {
                self.take_here(key, mine, received_us)
            }
            (Some(mine), None) => self.take_here(key, mine, received_us),
            (_, Some((at, _))) => {
                let others = self.others.get_mut(key).expect("the key is known");
                others.open.remove(at);
                self.others_count -= 1;
                Some(Taken::Elsewhere)
            }
            (None, None) => None,
        }
    }

    fn take_here(&mut self, key: &str, published_us: i64, received_us: i64) -> Option<Taken> {
        let published = self.open.get_mut(key).expect("the key is open");
        published.pop_front();
        if published.is_empty() {
            self.open.remove(key);
        }
        self.open_count -= 1;
        self.answer(published_us, received_us);
        Some(Taken::Here)
    }

    /// A valid reply carrying `key` arrived at `received_us`.
    pub fn reply(&mut self, key: &str, received_us: i64) -> Matched {
        self.decide_until(received_us);
        let within_us = self.within_us;
        if let Some(published) = self.open.get_mut(key)
            && !published.is_empty()
        {
            // The oldest event of the key the reply is in time for, else the oldest: a key asked
            // again while an earlier ask went unanswered has the later ask answered in time (and
            // the earlier one missing), not the earlier one answered late.
            let too_old =
                published.partition_point(|published_us| received_us - published_us > within_us);
            let at = if too_old < published.len() {
                too_old
            } else {
                0
            };
            let published_us = published.remove(at).expect("an open event");
            if published.is_empty() {
                self.open.remove(key);
            }
            self.open_count -= 1;
            self.answer(published_us, received_us);
            return Matched::Answered;
        }
        Matched::Nothing
    }

    /// Puts a reply that answered nothing in the limbo (or counts it unexpected when full).
    pub fn wait_in_limbo(&mut self, key: String, received_us: i64) {
        if self.limbo_count >= MAX_LIMBO {
            self.counts.unexpected += 1;
            return;
        }
        self.limbo_count += 1;
        self.limbo
            .entry(key.clone())
            .or_default()
            .push_back(received_us);
        self.limbo_order
            .push_back((received_us.saturating_add(self.limbo_us), key));
    }

    fn answer(&mut self, published_us: i64, received_us: i64) {
        let latency_us = received_us.saturating_sub(published_us).max(0);
        if latency_us <= self.within_us {
            self.counts.answered += 1;
        } else {
            self.counts.late += 1;
        }
        self.latency.record(std::iter::once(latency_us as u64));
    }

    /// Decides every expectation whose time is up at `now_us` (missing), and counts replies that
    /// waited in the limbo long enough as unexpected.
    pub fn decide_until(&mut self, now_us: i64) {
        while let Some((deadline, _)) = self.deadlines.front()
            && *deadline < now_us
        {
            let (deadline, key) = self.deadlines.pop_front().expect("front exists");
            // Keys' queues and the deadline queue are both in publish order, so this key's
            // oldest open expectation is the one whose deadline this is, unless a reply took it
            // (then the oldest left is due later, or at the same time: the same count either way).
            if let Some(published) = self.open.get_mut(&key)
                && let Some(published_us) = published.front()
                && published_us.saturating_add(self.decide_after_us) <= deadline
            {
                published.pop_front();
                if published.is_empty() {
                    self.open.remove(&key);
                }
                self.open_count -= 1;
                self.counts.missing += 1;
            }
        }
        while let Some((until, _)) = self.limbo_order.front()
            && *until < now_us
        {
            let (_, key) = self.limbo_order.pop_front().expect("front exists");
            if let Some(received) = self.limbo.get_mut(&key)
                && received.pop_front().is_some()
            {
                if received.is_empty() {
                    self.limbo.remove(&key);
                }
                self.limbo_count -= 1;
                self.counts.unexpected += 1;
            }
        }
        while let Some((until, _)) = self.others_expiry.front()
            && *until < now_us
        {
            let (_, key) = self.others_expiry.pop_front().expect("front exists");
            if let Some(others) = self.others.get_mut(&key) {
                let decide_after_us = self.decide_after_us;
                let expired = others.open.partition_point(|published_us| {
                    published_us.saturating_add(decide_after_us) < now_us
                });
                others.open.drain(..expired);
                self.others_count -= expired;
                if others.learnt_until_us.saturating_add(decide_after_us) < now_us {
                    // All it learnt is decided, and a later lookup starts after it anyway.
                    self.others_count -= others.open.len();
                    self.others.remove(&key);
                }
            }
        }
    }

    /// The run ended before the last windows did: what is still open is pending, what waits in
    /// the limbo is unexpected.
    pub fn settle_interrupted(&mut self) {
        self.counts.pending += self.open_count as u64;
        self.counts.unexpected += self.limbo_count as u64;
        self.clear();
    }

    /// Every window is over: what is still open is missing, what waits in the limbo unexpected.
    pub fn settle(&mut self) {
        self.counts.missing += self.open_count as u64;
        self.counts.unexpected += self.limbo_count as u64;
        self.clear();
    }

    fn clear(&mut self) {
        self.open.clear();
        self.deadlines.clear();
        self.open_count = 0;
        self.limbo.clear();
        self.limbo_order.clear();
        self.limbo_count = 0;
        self.others.clear();
        self.others_expiry.clear();
        self.others_count = 0;
    }

    /// When the last open expectation is decided (wall µs), if any is open.
    pub fn last_deadline_us(&self) -> Option<i64> {
        self.deadlines.back().map(|(deadline, _)| *deadline)
    }
}

fn micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::rules::{ExpectConfig, check_rules};

    fn correlator() -> Correlator {
        let entries: Vec<ExpectConfig> = serde_yaml::from_str(
            "- {event: focus, reply_topic: r, reply_field: customer.id, within: 2s, grace: 1s}",
        )
        .unwrap();
        Correlator::new(check_rules(&entries).unwrap().remove(0))
    }

    const S: i64 = 1_000_000;

    #[test]
    fn replies_in_time_late_and_never_are_told_apart() {
        let mut c = correlator();
        c.expect("1".into(), 0);
        c.expect("2".into(), 0);
        c.expect("3".into(), 0);
        assert_eq!(c.reply("1", S), Matched::Answered);
        assert_eq!(c.reply("2", 2 * S + 500_000), Matched::Answered);
        c.decide_until(3 * S + 1);
        assert_eq!(c.reply("3", 3 * S + 2), Matched::Nothing);
        let counts = &c.counts;
        assert_eq!(
            (
                counts.expected,
                counts.answered,
                counts.late,
                counts.missing
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(c.latency.summary().count(), 2);
    }

    #[test]
    fn a_reply_answers_the_ask_it_is_in_time_for_before_an_older_unanswered_one() {
        let mut c = correlator();
        c.expect("9".into(), 0);
        c.expect("9".into(), 5 * S / 2);
        assert_eq!(c.reply("9", 5 * S / 2 + 30_000), Matched::Answered);
        c.decide_until(10 * S);
        let counts = &c.counts;
        assert_eq!(
            (counts.answered, counts.late, counts.missing),
            (1, 0, 1),
            "the later ask answered in time, the earlier one missing"
        );
    }

    #[test]
    fn a_key_answered_twice_answers_its_events_oldest_first_and_the_rest_is_unexpected() {
        let mut c = correlator();
        c.expect("7".into(), 0);
        c.expect("7".into(), S);
        assert_eq!(c.reply("7", S + 100), Matched::Answered);
        assert_eq!(c.reply("7", S + 200), Matched::Answered);
        assert_eq!(c.reply("7", S + 300), Matched::Nothing);
        c.wait_in_limbo("7".into(), S + 300);
        c.decide_until(10 * S);
        assert_eq!(
            (c.counts.answered, c.counts.unexpected, c.counts.missing),
            (2, 1, 0)
        );
    }

    #[test]
    fn a_reply_that_overtakes_the_news_of_its_publish_still_answers_it() {
        let mut c = correlator();
        assert_eq!(c.reply("9", 5 * S), Matched::Nothing);
        c.wait_in_limbo("9".into(), 5 * S);
        c.expect("9".into(), 5 * S + 10);
        c.settle();
        assert_eq!(
            (c.counts.answered, c.counts.unexpected, c.counts.missing),
            (1, 0, 0)
        );
    }

    fn others(published: &[i64]) -> Vec<PeerEntry> {
        published
            .iter()
            .map(|published_us| PeerEntry {
                published_us: *published_us,
            })
            .collect()
    }

    #[test]
    fn on_a_shared_timeline_a_reply_answers_the_oldest_open_event_whoever_published_it() {
        let mut c = correlator();
        c.expect("7".into(), S);
        assert_eq!(
            c.to_learn("7", S, S + 30, S),
            Some((-2 * S - 1, 2 * S + 30))
        );
        c.learn("7", &others(&[0, 3 * S]), 3 * S, 0);
        assert_eq!(c.others_count, 2);
        // Looked up to 3 s: a later lookup starts there.
        assert_eq!(c.to_learn("7", S, 2 * S, S), None);
        assert_eq!(c.to_learn("7", S, 3 * S, S), Some((3 * S, 4 * S)));
        assert_eq!(
            c.take("7", S + 10, S),
            Some(Taken::Elsewhere),
            "0 s, another's"
        );
        assert_eq!(c.take("7", S + 20, S), Some(Taken::Here), "1 s, this one's");
        assert_eq!(
            c.take("7", S + 30, S),
            None,
            "2 s is more than 1 s after the reply"
        );
        assert_eq!(c.take("7", 2 * S, S), Some(Taken::Elsewhere));
        assert_eq!(c.take("7", 2 * S + 1, S), None, "every event answered");
        assert_eq!((c.counts.answered, c.counts.missing), (1, 0));
        assert_eq!(c.latency.summary().count(), 1);
    }

    #[test]
    fn on_a_shared_timeline_events_past_their_window_answer_nothing_and_are_forgotten() {
        let mut c = correlator();
        c.expect("1".into(), 0);
        // Decided already when learnt (-10 s): skipped.
        c.learn("1", &others(&[-10 * S, 0]), 0, 0);
        assert_eq!(c.others_count, 1);
        // Past within + grace (3 s): this one's is missing, the other's answers nothing.
        assert_eq!(c.take("1", 3 * S + 1, S), None);
        assert_eq!(c.counts.missing, 1);
        assert_eq!(c.others_count, 0);
        assert!(c.others.is_empty() && c.others_expiry.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_an_interrupted_run_reports_pending() {
        let mut c = correlator();
        for n in 0..10 {
            c.expect(n.to_string(), n * S);
        }
        c.decide_until(5 * S);
        assert_eq!(c.counts.missing, 2);
        assert_eq!(c.open_count, 8);
        c.settle_interrupted();
        assert_eq!(c.counts.pending, 8);
        assert!(c.open.is_empty() && c.deadlines.is_empty());
    }
}
