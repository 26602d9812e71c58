//! What the instances of a key tell each other for their verdicts ([`Peers`]): the records of
//! the expected events each published, and who judges replies, since and until when.
//!
//! # Keys (under the timeline's hash tag `{key}`)
//! - `{key}:judges` — sorted set of the instances running a verdict, scored by when they are
//!   forgotten (Redis server ms): a few seconds after their last exchange while they read
//!   replies, a minute after the exchange that said they stopped.
//! - `{key}:judging` — hash: per judge, `reading_from_us:reading_until_us:recorded_until_us`.
//! - `{key}:expect:<length of the rule's name>:<rule's name>:<correlation key>` — sorted set of
//!   the records of one key: member `<instance>:<seq>`, scored by the publish time (µs). Its
//!   records older than the rule's `within + grace` plus the lookup margin are dropped when one
//!   is added, and the key expires when its newest record stopped mattering, so Redis holds the
//!   records of about the last `within + grace` + 20 s: some 200 bytes per key, and 30 more
//!   per further record of it.
//!
//! Everything is one script (`peers.lua`), so an exchange is one round trip and what a judge
//! says about how far it recorded is true once the others can read it.

use std::sync::atomic::{AtomicBool, Ordering};

use redis::Script;
use redis::aio::ConnectionManager;

use customersim_plugin_api::clock::unix_now_us;
use customersim_plugin_api::{
    PeerEntry, PeerJudge, PeerUpdate, PeerView, Peers, TimelineError, async_trait,
};

use crate::timeline::classify;

/// One exchange: see the script's header.
const PEERS: &str = include_str!("peers.lua");

/// How long a judge that reads stays listed after its last exchange (it exchanges ten times a
/// second): an instance that died is forgotten after this.
const LISTED_WHILE_READING_MS: u64 = 10_000;

/// How long a judge that stopped reading stays listed: others still decide replies it may have
/// counted, up to their longest wait.
const LISTED_AFTER_READING_MS: u64 = 60_000;

/// The verdict peers of one instance of a Redis timeline.
pub struct RedisPeers {
    connection: ConnectionManager,
    judges: String,
    judging: String,
    /// `{key}:expect:`
    record_prefix: String,
    /// This instance's id (the timeline's).
    me: String,
    script: Script,
    kept_at: String,
    /// A record key's name said once, for the log, when a lookup finds an unreadable member.
    warned: AtomicBool,
}

impl RedisPeers {
    /// The peers of the instance `me` of the timeline namespace `namespace`.
    pub(crate) fn new(
        connection: ConnectionManager,
        namespace: &str,
        me: &str,
        kept_at: String,
    ) -> RedisPeers {
        let tag = format!("{{{namespace}}}");
        RedisPeers {
            connection,
            judges: format!("{tag}:judges"),
            judging: format!("{tag}:judging"),
            record_prefix: format!("{tag}:expect:"),
            me: me.to_string(),
            script: Script::new(PEERS),
            kept_at,
            warned: AtomicBool::new(false),
        }
    }

    /// The key of a rule's records of one correlation key: the rule's name is length-prefixed,
    /// so no name and key pair reads as another.
    fn record_key(&self, rule: &str, key: &str) -> String {
        format!("{}{}:{rule}:{key}", self.record_prefix, rule.len())
    }
}

/// `from:until:recorded`, `until` empty while reading.
fn state(update: &PeerUpdate) -> String {
    format!(
        "{}:{}:{}",
        update.reading_from_us,
        update
            .reading_until_us
            .map_or_else(String::new, |until| until.to_string()),
        update.recorded_until_us
    )
}

fn judge(id: String, state: &str, me: &str) -> Option<PeerJudge> {
    let mut parts = state.split(':');
    let from = parts.next()?.parse().ok()?;
    let until = match parts.next()? {
        "" => None,
        until => Some(until.parse().ok()?),
    };
    let recorded = parts.next()?.parse().ok()?;
    Some(PeerJudge {
        me: id == me,
        id,
        reading_from_us: from,
        reading_until_us: until,
        recorded_until_us: recorded,
    })
}

#[async_trait]
impl Peers for RedisPeers {
    async fn exchange(&self, update: &PeerUpdate) -> Result<PeerView, TimelineError> {
        let mut invocation = self.script.key(&self.judges);
        invocation.key(&self.judging);
        for record in &update.records {
            invocation.key(self.record_key(&record.rule, &record.key));
        }
        for lookup in &update.lookups {
            invocation.key(self.record_key(&lookup.rule, &lookup.key));
        }
        let listed_ms = if update.reading_until_us.is_some() {
            LISTED_AFTER_READING_MS
        } else {
            LISTED_WHILE_READING_MS
        };
        invocation
            .arg(&self.me)
            .arg(listed_ms)
            .arg(state(update))
            .arg(update.records.len());
        let now_us = unix_now_us();
        for record in &update.records {
            let keep_us = record.expires_us.saturating_sub(record.published_us).max(0);
            invocation
                .arg(format!("{}:{}", self.me, record.seq))
                .arg(record.published_us)
                .arg((record.expires_us.saturating_sub(now_us) / 1000).max(1_000))
                .arg(record.published_us.saturating_sub(keep_us));
        }
        for lookup in &update.lookups {
            invocation.arg(lookup.after_us).arg(lookup.until_us);
        }
        let mut connection = self.connection.clone();
        let (judges, found): (Vec<String>, Vec<Vec<String>>) = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        let mut view = PeerView {
            found: Vec::with_capacity(found.len()),
            judges: Vec::with_capacity(judges.len() / 2),
        };
        let mut judges = judges.into_iter();
        while let (Some(id), Some(state)) = (judges.next(), judges.next()) {
            match judge(id, &state, &self.me) {
                Some(judge) => view.judges.push(judge),
                None => {
                    return Err(TimelineError::Invalid(format!(
                        "unreadable judge state {state:?} in {}",
                        self.judging
                    )));
                }
            }
        }
        let own = format!("{}:", self.me);
        for members in found {
            let mut entries = Vec::with_capacity(members.len() / 2);
            let mut members = members.into_iter();
            while let (Some(member), Some(score)) = (members.next(), members.next()) {
                if member.starts_with(&own) {
                    continue;
                }
                let Ok(published_us) = score.parse::<f64>() else {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "redis timeline: a verdict record with an unreadable score {score:?} is ignored"
                        );
                    }
                    continue;
                };
                entries.push(PeerEntry {
                    published_us: published_us as i64,
                });
            }
            view.found.push(entries);
        }
        Ok(view)
    }

    fn kept_at(&self) -> String {
        self.kept_at.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_states_read_back() {
        let update = PeerUpdate {
            recorded_until_us: 30,
            reading_from_us: 10,
            reading_until_us: None,
            ..PeerUpdate::default()
        };
        let reading = judge("b".into(), &state(&update), "a").unwrap();
        assert_eq!(
            (
                reading.me,
                reading.reading_from_us,
                reading.reading_until_us
            ),
            (false, 10, None)
        );
        assert_eq!(reading.recorded_until_us, 30);
        let stopped = judge("a".into(), "10:20:9223372036854775807", "a").unwrap();
        assert_eq!(stopped.reading_until_us, Some(20));
        assert!(stopped.me && stopped.recorded_until_us == i64::MAX);
        assert!(judge("c".into(), "x::1", "a").is_none());
    }
}
