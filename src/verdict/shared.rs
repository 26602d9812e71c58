//! Judging replies together with the other instances sharing the timeline, through the
//! [`Peers`] the backend offers (the `redis` backend does; the `memory` one has no peers).
//!
//! Instances sharing a timeline publish events any of them scheduled, and each reads every reply.
//! So that each counts the replies to what it published, and every reply is counted once in
//! all, the verdicts replay one matching on every instance:
//! - each records the correlation keys of the expected events it published, with their publish
//!   time, and says how far it has recorded ([`PeerUpdate::recorded_until_us`]);
//! - a reply waits (*settles*) until every instance has recorded what it published up to
//!   [`OVERTAKE`] after the reply came, then the records of its key are looked up and it answers
//!   the oldest open event of its key, whoever published it ([`Correlator::take`]): this
//!   instance's counts as answered or late here, another's as `foreign` (that one counts it);
//! - a reply that answers no event anywhere, or is invalid, is counted by one instance only: the
//!   one with the lowest id among those reading replies when it came; the others count it
//!   `foreign`.
//!
//! Every instance sees the same replies in the same order and the same records, so they match
//! alike and their figures add up; they can differ only for a reply that comes within
//! milliseconds of a window's end, whose receipt times on two hosts fall on either side of it.
//!
//! Nothing waits on Redis on the way of an event or a reply: records and lookups accumulate and
//! go in one exchange at a time ([`Peers::exchange`]), started by the verdict's tick (ten times a
//! second) and answered through a channel. An instance that has not recorded for
//! [`MAX_WAIT`] (it is stuck, or Redis is down) no longer holds the others: replies that waited
//! that long are decided with what is known. Memory is bounded: at most [`MAX_SETTLING`] replies
//! wait (then reading pauses, and the subscription's back-pressure reaches the broker), at most
//! [`MAX_UNSENT`] records wait for Redis, and other instances' records are kept only for the keys
//! replies named, until their window is over.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap as HashMap;
use tokio::sync::mpsc;

use super::correlate::Correlator;
use super::rules::Rule;
use crate::plugin_api::{
    PeerEntry, PeerJudge, PeerLookup, PeerRecord, PeerUpdate, PeerView, Peers, TimelineError,
};

/// How long after a reply came an event may have been stamped published and still be answered
/// by it: a sink stamps a publish when the broker took it, and a fast system under test can
/// answer before that.
pub const OVERTAKE: Duration = Duration::from_secs(1);

/// The longest a reply waits for the other instances' records before it is decided with what is
/// known (one that has not recorded for this long is stuck, or Redis is down).
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// How long after its window a record stays in the backend: [`MAX_WAIT`] and a margin, so a
/// reply decided late still finds it.
pub const RECORD_MARGIN: Duration = Duration::from_secs(20);

/// The most replies waiting to be decided; beyond it reading pauses until some are.
pub const MAX_SETTLING: usize = 100_000;

/// The most records waiting to be sent (the backend is unreachable); beyond it they are dropped
/// (with a warning): replies to those events then count as unexpected.
pub const MAX_UNSENT: usize = 2_000_000;

/// The most records and the most replies one exchange carries.
const PER_EXCHANGE: usize = 8_192;

/// How long before now a batch may have been stamped and still be on its way to the verdict's
/// queue when that queue is found empty.
const MARK_SLACK_US: i64 = 100_000;

/// An exchange that takes longer fails (and is sent again).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A reply waiting to be decided.
#[derive(Debug)]
pub(super) enum Settling {
    /// It names no event (not JSON, no field, failing the schema); the rule is the first of its
    /// topic.
    Invalid { rule: usize, received_us: i64 },
    /// Its key under each rule of its topic that reads one, in the rules' order.
    Valid {
        received_us: i64,
        keys: Vec<(usize, String)>,
    },
}

impl Settling {
    pub(super) fn received_us(&self) -> i64 {
        match self {
            Settling::Invalid { received_us, .. } | Settling::Valid { received_us, .. } => {
                *received_us
            }
        }
    }
}

/// What an exchange task hands back: the update it sent and the answer.
pub(super) type Answer = (PeerUpdate, Result<PeerView, TimelineError>);

/// The exchange on its way.
struct InFlight {
    /// How many replies, from the front of the queue, it decides.
    replies: usize,
    /// The rule (by index) of each lookup, in the update's order.
    rules: Vec<usize>,
}

/// The shared half of the verdict's state.
pub(super) struct Shared {
    peers: Arc<dyn Peers>,
    answers: mpsc::Sender<Answer>,
    names: Vec<Arc<str>>,
    /// Per rule, how long after its publish a record is kept.
    keep_us: Vec<i64>,
    overtake_us: i64,
    max_wait_us: i64,
    seq: u64,
    unsent: VecDeque<PeerRecord>,
    dropped: u64,
    /// The stamp of the last published batch received.
    received_until_us: i64,
    reading_from_us: i64,
    pub(super) reading_until_us: Option<i64>,
    /// Whether an exchange told the backend `reading_until_us`.
    said_until: bool,
    /// Replies waiting, in the order they came.
    pub(super) settling: VecDeque<Settling>,
    in_flight: Option<InFlight>,
    judges: Vec<PeerJudge>,
    /// How far every other instance has recorded (the lowest of them).
    others_until_us: i64,
    /// Whether exchanges fail (said once per outage).
    failing: bool,
    pub(super) exchanges: u64,
}

impl Shared {
    /// `reading_from_us`: when the subscription was confirmed.
    pub(super) fn new(
        peers: Arc<dyn Peers>,
        rules: &[Rule],
        answers: mpsc::Sender<Answer>,
        reading_from_us: i64,
    ) -> Shared {
        Shared {
            peers,
            answers,
            names: rules
                .iter()
                .map(|rule| Arc::from(rule.name.as_str()))
                .collect(),
            keep_us: rules
                .iter()
                .map(|rule| micros(rule.within + rule.grace + RECORD_MARGIN))
                .collect(),
            overtake_us: micros(OVERTAKE),
            max_wait_us: micros(MAX_WAIT),
            seq: 0,
            unsent: VecDeque::new(),
            dropped: 0,
            received_until_us: reading_from_us,
            reading_from_us,
            reading_until_us: None,
            said_until: false,
            settling: VecDeque::new(),
            in_flight: None,
            judges: Vec::new(),
            others_until_us: i64::MIN,
            failing: false,
            exchanges: 0,
        }
    }

    /// Where the records are kept, for the log.
    pub(super) fn kept_at(&self) -> String {
        self.peers.kept_at()
    }

    pub(super) fn overtake_us(&self) -> i64 {
        self.overtake_us
    }

    /// Joins: the first exchange, awaited, before anything is published. A failure is logged;
    /// the ticks try again.
    pub(super) async fn join(&mut self) {
        let update = PeerUpdate {
            recorded_until_us: self.reading_from_us,
            reading_from_us: self.reading_from_us,
            ..PeerUpdate::default()
        };
        match tokio::time::timeout(EXCHANGE_TIMEOUT, self.peers.exchange(&update)).await {
            Ok(Ok(view)) => {
                self.exchanges += 1;
                self.see(view.judges);
            }
            Ok(Err(error)) => self.trouble(&error.to_string()),
            Err(_) => self.trouble("no answer within 5 s"),
        }
    }

    /// An expected event of rule `rule` was published: recorded for the others.
    pub(super) fn record(&mut self, rule: usize, key: String, published_us: i64) {
        if self.unsent.len() >= MAX_UNSENT {
            if self.dropped == 0 {
                tracing::warn!(
                    "verdict: {MAX_UNSENT} records wait for {}; more are dropped, and replies to those events count as unexpected",
                    self.peers.kept_at()
                );
            }
            self.dropped += 1;
            return;
        }
        self.seq += 1;
        self.unsent.push_back(PeerRecord {
            rule: self.names[rule].clone(),
            key,
            published_us,
            expires_us: published_us.saturating_add(self.keep_us[rule]),
            seq: self.seq,
        });
    }

    /// A published batch stamped `at_us` was received (after its records).
    pub(super) fn received(&mut self, at_us: i64) {
        self.received_until_us = self.received_until_us.max(at_us);
    }

    /// How far this instance knows what it published itself: `i64::MAX` once publishing ended,
    /// now (less a slack) when no batch waits in its queue, else the last batch's stamp.
    pub(super) fn own_mark(&self, now_us: i64, publishing: bool, queue_empty: bool) -> i64 {
        if !publishing {
            i64::MAX
        } else if queue_empty {
            (now_us - MARK_SLACK_US).max(self.received_until_us)
        } else {
            self.received_until_us
        }
    }

    pub(super) fn full(&self) -> bool {
        self.settling.len() >= MAX_SETTLING
    }

    pub(super) fn idle(&self) -> bool {
        self.in_flight.is_none()
    }

    /// Whether nothing is left to send or decide (and the backend knows reading stopped, once it
    /// did).
    pub(super) fn done(&self) -> bool {
        self.settling.is_empty()
            && self.unsent.is_empty()
            && self.in_flight.is_none()
            && (self.reading_until_us.is_none() || self.said_until)
    }

    /// Own expectations may be decided up to here: no reply left to decide came before it.
    pub(super) fn decide_watermark(&self, now_us: i64) -> i64 {
        let watermark = now_us - self.overtake_us;
        self.settling
            .front()
            .map_or(watermark, |reply| watermark.min(reply.received_us()))
    }

    /// Starts an exchange unless one is on its way: the records not sent yet, how far they go,
    /// and the lookups of the replies every instance has recorded far enough for (all of them
    /// when `force`, and those that waited [`MAX_WAIT`]), each key's from where the last one
    /// ended.
    pub(super) fn start_exchange(
        &mut self,
        correlators: &[Correlator],
        now_us: i64,
        own_mark_us: i64,
        force: bool,
    ) {
        if self.in_flight.is_some() {
            return;
        }
        let sending = self.unsent.len().min(PER_EXCHANGE);
        let records: Vec<PeerRecord> = self.unsent.drain(..sending).collect();
        let recorded_until_us = match self.unsent.front() {
            Some(next) => next.published_us.saturating_sub(1).min(own_mark_us),
            None => own_mark_us,
        };
        let frontier = own_mark_us
            .min(self.others_until_us)
            .saturating_sub(self.overtake_us);
        let replies = self
            .settling
            .iter()
            .take(PER_EXCHANGE)
            .take_while(|reply| {
                force
                    || reply.received_us() <= frontier
                    || reply.received_us().saturating_add(self.max_wait_us) <= now_us
            })
            .count();
        // Each key once, for the replies from the first to the last that named it.
        let mut spans: HashMap<(usize, &str), (i64, i64)> = HashMap::default();
        let mut order = Vec::new();
        for reply in self.settling.iter().take(replies) {
            if let Settling::Valid { keys, received_us } = reply {
                for (rule, key) in keys {
                    spans
                        .entry((*rule, key.as_str()))
                        .and_modify(|span| span.1 = *received_us)
                        .or_insert_with(|| {
                            order.push((*rule, key.as_str()));
                            (*received_us, *received_us)
                        });
                }
            }
        }
        let mut lookups = Vec::new();
        let mut rules = Vec::new();
        for (rule, key) in order {
            let (first_us, last_us) = spans[&(rule, key)];
            if let Some((after_us, until_us)) =
                correlators[rule].to_learn(key, first_us, last_us, self.overtake_us)
            {
                lookups.push(PeerLookup {
                    rule: self.names[rule].clone(),
                    key: key.to_string(),
                    after_us,
                    until_us,
                });
                rules.push(rule);
            }
        }
        let update = PeerUpdate {
            records,
            recorded_until_us,
            reading_from_us: self.reading_from_us,
            reading_until_us: self.reading_until_us,
            lookups,
        };
        self.in_flight = Some(InFlight { replies, rules });
        let peers = self.peers.clone();
        let answers = self.answers.clone();
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(EXCHANGE_TIMEOUT, peers.exchange(&update)).await
            {
                Ok(answer) => answer,
                Err(_) => Err(TimelineError::Unavailable(format!(
                    "no answer within {EXCHANGE_TIMEOUT:?}"
                ))),
            };
            let _ = answers.send((update, answer)).await;
        });
    }

    /// The answer of the exchange on its way. Returns what to do with it: the rule of each
    /// lookup with what was found, and how many replies from the front to decide now (with the
    /// view when it came, or, when it failed, only those that waited [`MAX_WAIT`]).
    pub(super) fn answered(&mut self, answer: Answer, now_us: i64) -> Decide {
        let in_flight = self.in_flight.take().expect("an exchange was on its way");
        let (update, result) = answer;
        match result {
            Ok(view) => {
                self.exchanges += 1;
                if self.failing {
                    tracing::info!("verdict: {} reachable again", self.peers.kept_at());
                    self.failing = false;
                }
                if update.reading_until_us.is_some() {
                    self.said_until = true;
                }
                self.see(view.judges);
                Decide {
                    found: in_flight
                        .rules
                        .into_iter()
                        .zip(update.lookups)
                        .zip(view.found)
                        .map(|((rule, lookup), entries)| Found {
                            rule,
                            key: lookup.key,
                            until_us: lookup.until_us,
                            entries,
                        })
                        .collect(),
                    replies: in_flight.replies,
                }
            }
            Err(error) => {
                self.trouble(&error.to_string());
                // Sent again next time, before what came since.
                for record in update.records.into_iter().rev() {
                    self.unsent.push_front(record);
                }
                let overdue = self
                    .settling
                    .iter()
                    .take(in_flight.replies)
                    .take_while(|reply| {
                        reply.received_us().saturating_add(self.max_wait_us) <= now_us
                    })
                    .count();
                Decide {
                    found: Vec::new(),
                    replies: overdue,
                }
            }
        }
    }

    fn see(&mut self, judges: Vec<PeerJudge>) {
        self.others_until_us = judges
            .iter()
            .filter(|judge| !judge.me)
            .map(|judge| judge.recorded_until_us)
            .min()
            .unwrap_or(i64::MAX);
        self.judges = judges;
    }

    fn trouble(&mut self, why: &str) {
        if !self.failing {
            tracing::warn!(
                "verdict: cannot reach the other instances' records ({}), retrying: {why}; replies wait up to {MAX_WAIT:?} for them",
                self.peers.kept_at()
            );
            self.failing = true;
        }
    }

    /// Whether this instance counts a reply that came at `at_us` and answers nothing anywhere
    /// (or is invalid): the judge with the lowest id among those reading then (among all listed
    /// when none was, and this one when none is known).
    pub(super) fn counts_unclaimed(&self, at_us: i64) -> bool {
        let reading = |judge: &&PeerJudge| {
            judge.reading_from_us <= at_us
                && judge.reading_until_us.is_none_or(|until| at_us <= until)
        };
        let lowest = |judges: &mut dyn Iterator<Item = &PeerJudge>| {
            judges.min_by(|a, b| a.id.cmp(&b.id)).map(|judge| judge.me)
        };
        lowest(&mut self.judges.iter().filter(reading))
            .or_else(|| lowest(&mut self.judges.iter()))
            .unwrap_or(true)
    }
}

/// What an exchange's answer asks of the verdict.
pub(super) struct Decide {
    /// What each lookup found.
    pub found: Vec<Found>,
    /// How many replies from the front of the queue to decide now.
    pub replies: usize,
}

/// The other instances' records of one key, up to a time.
pub(super) struct Found {
    pub rule: usize,
    pub key: String,
    pub until_us: i64,
    pub entries: Vec<PeerEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(id: &str, me: bool, from: i64, until: Option<i64>) -> PeerJudge {
        PeerJudge {
            id: id.into(),
            me,
            reading_from_us: from,
            reading_until_us: until,
            recorded_until_us: 0,
        }
    }

    struct NoPeers;

    #[crate::plugin_api::async_trait]
    impl Peers for NoPeers {
        async fn exchange(&self, _: &PeerUpdate) -> Result<PeerView, TimelineError> {
            Err(TimelineError::Unavailable("none".into()))
        }
        fn kept_at(&self) -> String {
            "nowhere".into()
        }
    }

    #[test]
    fn the_lowest_judge_reading_when_a_reply_came_counts_it() {
        let (answers, _) = mpsc::channel(1);
        let mut shared = Shared::new(Arc::new(NoPeers), &[], answers, 0);
        assert!(shared.counts_unclaimed(5), "alone, it counts");
        shared.see(vec![
            judge("b", true, 10, None),
            judge("a", false, 0, Some(20)),
            judge("c", false, 0, None),
        ]);
        assert!(!shared.counts_unclaimed(15), "a reads then");
        assert!(shared.counts_unclaimed(25), "a stopped reading");
        assert!(!shared.counts_unclaimed(5), "b did not read yet; a did");
        shared.see(vec![
            judge("b", true, 10, None),
            judge("c", false, 10, None),
        ]);
        assert!(shared.counts_unclaimed(5), "nobody read: the lowest listed");
    }
}
