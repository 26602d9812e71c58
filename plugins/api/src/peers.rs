//! What instances sharing one timeline tell each other about the events they published, so that
//! the core's verdict (`expect:`) on each judges the replies to its own events and their figures
//! add up.
//!
//! Instances that share a timeline (the `redis` backend) publish events any of them scheduled,
//! and each reads every reply of the system under test. Alone, an instance could not tell a reply
//! to another instance's event from one that answers nothing. A backend shared by several
//! instances therefore offers [`Peers`] ([`crate::OpenedTimeline::peers`]); a backend only one
//! process uses offers none. Through it the verdict of each instance
//! - records the correlation keys of the expected events it published ([`PeerRecord`]);
//! - looks up which other instances published events of the keys that replies name
//!   ([`PeerLookup`], [`PeerEntry`]);
//! - learns which instances read replies and when ([`PeerJudge`]), and how far each has recorded
//!   what it published, so that it decides a reply only once every other instance's records of
//!   its time are in, and exactly one instance counts a reply that answers nothing.
//!
//! All of it travels in [`Peers::exchange`], one round trip per call. The verdict makes at most
//! one call at a time, about every tenth of a second, with what accumulated meanwhile: nothing
//! goes to the backend per event or per reply.
//!
//! # Contract
//! - Records are kept until their [`PeerRecord::expires_us`] at least (and may be dropped
//!   after it), findable by every instance of the timeline under their rule and key.
//! - An exchange that fails changed nothing or is safe to send again: [`PeerRecord::seq`] makes a
//!   record sent twice one entry.
//! - A judge is listed while it exchanges (an instance that stops without saying so is forgotten
//!   after a few seconds), and for a while after it said it stopped reading, so that the others
//!   still know whose replies were whose.
//! - Times are wall-clock microseconds since the epoch of the host that made them: instances
//!   compare them across hosts, so their clocks must agree (NTP), as for a shared clock.

use std::sync::Arc;

use crate::timeline::TimelineError;

/// An expected event this instance published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The rule's name (`expect[].name`): instances compare records of rules of the same name.
    pub rule: Arc<str>,
    /// The correlation key: the text of the event's `event_field`.
    pub key: String,
    /// When this instance's sink published it.
    pub published_us: i64,
    /// When it stops mattering to anyone: after its rule's `within + grace` and the time other
    /// instances may take to look it up.
    pub expires_us: i64,
    /// This instance's number for it (unique within the instance's run).
    pub seq: u64,
}

/// A key whose records the other instances made are asked for: those published after
/// `after_us`, up to `until_us`. (The verdict asks each range once: it asks up to a time only once
/// every instance has recorded up to it.)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerLookup {
    /// The rule's name.
    pub rule: Arc<str>,
    /// The correlation key.
    pub key: String,
    /// Records published at or before this are not wanted.
    pub after_us: i64,
    /// Nor those published after this.
    pub until_us: i64,
}

/// What one instance sends in one exchange.
#[derive(Clone, Debug, Default)]
pub struct PeerUpdate {
    /// Expected events published since the last exchange that went through, in publish order.
    pub records: Vec<PeerRecord>,
    /// Every expected event this instance published up to this time is in `records` or an earlier
    /// exchange; `i64::MAX` once it publishes no more.
    pub recorded_until_us: i64,
    /// Since when this instance reads the replies (its subscription was confirmed).
    pub reading_from_us: i64,
    /// When it stopped reading them; `None` while it reads.
    pub reading_until_us: Option<i64>,
    /// Keys whose other instances' records are wanted back ([`PeerView::found`]).
    pub lookups: Vec<PeerLookup>,
}

/// One record another instance made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerEntry {
    /// When its sink published the event.
    pub published_us: i64,
}

/// An instance that reads the replies (runs a verdict on the shared timeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerJudge {
    /// Its id: ids order the judges (the lowest one reading at a moment counts what nobody
    /// answers at that moment).
    pub id: String,
    /// Whether it is the instance that made the exchange.
    pub me: bool,
    /// Since when it reads the replies.
    pub reading_from_us: i64,
    /// When it stopped reading; `None` while it reads.
    pub reading_until_us: Option<i64>,
    /// How far it has recorded what it published ([`PeerUpdate::recorded_until_us`]).
    pub recorded_until_us: i64,
}

/// The answer to an exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerView {
    /// Per lookup, in the order asked: the records other instances made under its rule and key,
    /// in its range, oldest first.
    pub found: Vec<Vec<PeerEntry>>,
    /// Every judge listed now, this instance included.
    pub judges: Vec<PeerJudge>,
}

/// The instances sharing a timeline, as the verdict sees them (see the module docs).
#[crate::async_trait]
pub trait Peers: Send + Sync {
    /// Writes this instance's records and state, renews its listing and answers the lookups,
    /// in one round trip.
    async fn exchange(&self, update: &PeerUpdate) -> Result<PeerView, TimelineError>;

    /// Where the records are kept, for the log (`redis key "sim"`).
    fn kept_at(&self) -> String;
}
