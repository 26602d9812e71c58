//! The Redis timeline: one timeline shared by any number of instances (DESIGN.md §5).
//!
//! # Keys (all under the hash tag `{key}`, so they share a cluster slot)
//! - `{key}:due` — sorted set of waiting events, scored by due time (ms since the epoch).
//! - `{key}:leases` — sorted set of open leases, scored by when they expire (Redis server time).
//! - `{key}:lease:<instance>:<n>` — list of the events of one lease, and `…:owners`, a hash of
//!   how many of them each instance scheduled.
//! - `{key}:pending` — hash: per instance, how many of the events it scheduled were not yet
//!   published (acknowledged) by any instance; a generator run exits once its own count is 0,
//!   whoever published them.
//! - `{key}:instances` — sorted set of live instances, scored by when their heartbeat expires.
//!
//! # Members
//! `<seq:12 hex><instance:16 hex><due ms>|<kind>|<id>`: kind is `E`, `X`, `M<x>,<y>` or
//! `F<x>,<y>,<length>:<department>` (the length in bytes, so the name needs no escaping); id is
//! `n<digits>` for a numeric id or `t<text>` for a text id (so `"007"` and `"7"` stay apart), and
//! comes last so it needs no escaping. The instance's random id and its sequence number make every
//! member unique (identical events are not collapsed) and make a retried `schedule` idempotent.
//!
//! # Claims are leases
//! The claim script moves up to `max` due events into a new lease (atomically: each event goes to
//! one instance) and first puts back the events of expired leases, so the events of an instance
//! that died between claiming and handing them to its sinks are published by another one (a few
//! may be published twice then; none are lost). The scheduler acknowledges a lease once its sinks
//! took the batch, which deletes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, ErrorKind, RedisError, Script, ServerErrorKind};
use tokio::sync::Notify;

use crate::config::RedisTimelineConfig;
use crate::plugin_api::{
    Backoff, Claim, CustomerId, Event, EventKind, Timeline, TimelineError, async_trait, tracing,
};

/// Adds events and counts them as pending for their instance; idempotent when retried.
/// KEYS: due, pending. ARGV: instance, then score/member pairs.
const SCHEDULE: &str = r#"
local added = 0
for i = 2, #ARGV, 7000 do
  local last = math.min(i + 6999, #ARGV)
  added = added + redis.call('ZADD', KEYS[1], unpack(ARGV, i, last))
end
if added > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1], added) end
return added
"#;

/// Puts back expired leases, then leases up to `max` due events to the caller.
/// KEYS: due, leases, this lease, this lease's owner counts, instances.
/// ARGV: until_ms, max, lease_ms, lease id, instance, heartbeat_ms, lease key prefix.
/// Returns {reclaimed, member...}.
const CLAIM: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[6]), ARGV[5])
local reclaimed = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 8)
for _, lease in ipairs(expired) do
  local key = ARGV[7] .. lease
  local members = redis.call('LRANGE', key, 0, -1)
  for _, m in ipairs(members) do
    local due = string.match(m, '^(%-?%d+)|', 29)
    redis.call('ZADD', KEYS[1], due, m)
  end
  reclaimed = reclaimed + #members
  redis.call('DEL', key, key .. ':owners')
  redis.call('ZREM', KEYS[2], lease)
end
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #members > 0 then
  for i = 1, #members, 7000 do
    local last = math.min(i + 6999, #members)
    redis.call('ZREM', KEYS[1], unpack(members, i, last))
    redis.call('RPUSH', KEYS[3], unpack(members, i, last))
  end
  local counts = {}
  for _, m in ipairs(members) do
    local owner = string.sub(m, 13, 28)
    counts[owner] = (counts[owner] or 0) + 1
  end
  for owner, n in pairs(counts) do redis.call('HSET', KEYS[4], owner, n) end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
end
table.insert(members, 1, reclaimed)
return members
"#;

/// Closes a lease whose events the sinks took: they no longer count as pending for the
/// instances that scheduled them. A lease already put back (expired) changes nothing.
/// KEYS: leases, this lease, this lease's owner counts, pending. ARGV: lease id.
const ACKNOWLEDGE: &str = r#"
local counts = redis.call('HGETALL', KEYS[3])
for i = 1, #counts, 2 do
  redis.call('HINCRBY', KEYS[4], counts[i], -tonumber(counts[i + 1]))
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return #counts / 2
"#;

/// Joins the namespace: when no other instance is alive, drops the events due before the cutoff
/// (CONSUME_FROM). KEYS: due, instances. ARGV: instance, heartbeat_ms, cutoff or "". Returns
/// {instances alive before, events skipped}.
const START: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREM', KEYS[2], ARGV[1])
local alive = redis.call('ZCARD', KEYS[2])
local skipped = 0
if alive == 0 and ARGV[3] ~= '' then
  skipped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return {alive, skipped}
"#;

/// How long `schedule` retries an unreachable Redis itself before it reports it unavailable.
const SCHEDULE_PATIENCE: Duration = Duration::from_secs(60);

/// This instance's events not yet published by anyone; a 0 entry is dropped (absent means 0), so finished runs
/// leave nothing behind. KEYS: pending. ARGV: instance.
const PENDING: &str = r#"
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
"#;

/// Most events per `schedule` round trip.
const SCHEDULE_CHUNK: usize = 8192;

/// How often an idle scheduler looks at the shared timeline for events other instances added.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// A timeline in Redis, shared with every instance using the same URL and key.
pub struct RedisTimeline {
    connection: ConnectionManager,
    keys: Keys,
    /// This process's random id: the owner part of its members and leases.
    instance: String,
    /// Next member sequence number.
    seq: AtomicU64,
    /// Next lease number.
    lease_seq: AtomicU64,
    lease_ms: u64,
    heartbeat_ms: u64,
    schedule_script: Script,
    claim_script: Script,
    pending_script: Script,
    acknowledge_script: Script,
    scheduled: Arc<Notify>,
    /// Claim round trips and events claimed, for the benchmark and the final log.
    pub stats: Arc<ClaimStats>,
}

/// Counters of the claim path.
#[derive(Debug, Default)]
pub struct ClaimStats {
    /// Claim script calls.
    pub round_trips: AtomicU64,
    /// Events claimed.
    pub events: AtomicU64,
    /// Events put back from expired leases (by this instance's claims).
    pub reclaimed: AtomicU64,
}

struct Keys {
    due: String,
    leases: String,
    lease_prefix: String,
    pending: String,
    instances: String,
}

impl Keys {
    fn new(namespace: &str) -> Keys {
        let tag = format!("{{{namespace}}}");
        Keys {
            due: format!("{tag}:due"),
            leases: format!("{tag}:leases"),
            lease_prefix: format!("{tag}:lease:"),
            pending: format!("{tag}:pending"),
            instances: format!("{tag}:instances"),
        }
    }
}

/// The URL with its password masked, for messages.
pub fn display_url(url: &str) -> String {
    crate::config::mask_url_password(url)
}

impl RedisTimeline {
    /// Connects (lazily: an unreachable Redis is retried, not fatal) and joins the namespace,
    /// dropping the events due before `skip_before_ms` when no other instance is running.
    /// Returns the timeline and how many events were dropped.
    pub async fn open(
        config: &RedisTimelineConfig,
        consume_frequency: f64,
        skip_before_ms: Option<i64>,
    ) -> Result<(RedisTimeline, u64), String> {
        let shown = display_url(&config.url);
        if config.url.starts_with("rediss://") {
            // One TLS stack (rustls + ring) for the whole process; a second install is a no-op.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = Client::open(config.url.as_str())
            .map_err(|error| format!("timeline.redis.url {shown}: {error}"))?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|error| format!("timeline.redis.url {shown}: {error}"))?;
        let instance = format!(
            "{:016x}",
            crate::plugin_api::rand::random::<u64>() | (1 << 63)
        );
        // Heartbeats come with each claim (at least every CONSUME_FREQUENCY seconds).
        let heartbeat_ms = (10_000.0 + 3_000.0 * consume_frequency) as u64;
        let timeline = RedisTimeline {
            connection,
            keys: Keys::new(&config.key),
            instance,
            seq: AtomicU64::new(0),
            lease_seq: AtomicU64::new(0),
            lease_ms: config.lease.as_millis().max(1) as u64,
            heartbeat_ms,
            schedule_script: Script::new(SCHEDULE),
            claim_script: Script::new(CLAIM),
            pending_script: Script::new(PENDING),
            acknowledge_script: Script::new(ACKNOWLEDGE),
            scheduled: Arc::new(Notify::new()),
            stats: Arc::default(),
        };
        let start = Script::new(START);
        let cutoff = skip_before_ms.map(|ms| ms.to_string()).unwrap_or_default();
        let mut announced = false;
        let (alive, skipped): (u64, u64) = loop {
            let mut connection = timeline.connection.clone();
            let outcome = start
                .key(&timeline.keys.due)
                .key(&timeline.keys.instances)
                .arg(&timeline.instance)
                .arg(heartbeat_ms)
                .arg(&cutoff)
                .invoke_async(&mut connection)
                .await;
            match outcome {
                Ok(answer) => break answer,
                Err(error) => match classify(error) {
                    TimelineError::Unavailable(why) => {
                        if !announced {
                            tracing::warn!("redis timeline {shown} unavailable, retrying: {why}");
                            announced = true;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    TimelineError::Invalid(why) => {
                        return Err(format!("redis timeline {shown}: {why}"));
                    }
                },
            }
        };
        tracing::info!(
            "redis timeline {shown}, key {:?}: instance {}, {alive} other instance(s) running{}",
            config.key,
            timeline.instance,
            if alive > 0 && skip_before_ms.is_some() {
                " (CONSUME_FROM applies only when none is)"
            } else {
                ""
            }
        );
        let watch = Arc::downgrade(&timeline.scheduled);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                match watch.upgrade() {
                    Some(scheduled) => scheduled.notify_one(),
                    None => return,
                }
            }
        });
        Ok((timeline, skipped))
    }

    /// This instance's id (the owner part of its members).
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

/// Sorts a Redis failure into "retry later" and "will not work".
fn classify(error: RedisError) -> TimelineError {
    let transient = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if transient {
        TimelineError::Unavailable(error.to_string())
    } else {
        TimelineError::Invalid(format!("redis: {error}"))
    }
}

/// Appends the member of `event` (see the module doc).
fn encode(out: &mut Vec<u8>, seq: u64, instance: &str, event: &Event) {
    use std::io::Write;
    let _ = write!(
        out,
        "{:012x}{instance}{}|",
        seq & 0xFFFF_FFFF_FFFF,
        event.due_ms
    );
    match event.kind {
        EventKind::Enter => out.push(b'E'),
        EventKind::Exit => out.push(b'X'),
        EventKind::Move { x, y } => {
            let _ = write!(out, "M{x},{y}");
        }
        EventKind::Focus { dep, x, y } => {
            let _ = write!(out, "F{x},{y},{}:{dep}", dep.len());
        }
    }
    out.push(b'|');
    match &event.customer {
        CustomerId::Number(number) => {
            let _ = write!(out, "n{number}");
        }
        CustomerId::Text(text) => {
            out.push(b't');
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// Parses a member back into its event.
fn decode(member: &[u8]) -> Result<Event, String> {
    let bad = || format!("unreadable event {:?}", String::from_utf8_lossy(member));
    let rest = member.get(28..).ok_or_else(bad)?;
    let text = std::str::from_utf8(rest).map_err(|_| bad())?;
    let (due, rest) = text.split_once('|').ok_or_else(bad)?;
    let due_ms = due.parse::<i64>().map_err(|_| bad())?;
    if let Some(focus) = rest.strip_prefix('F') {
        // F<x>,<y>,<length>:<department>|<id>
        let (x, focus) = focus.split_once(',').ok_or_else(bad)?;
        let (y, focus) = focus.split_once(',').ok_or_else(bad)?;
        let (length, focus) = focus.split_once(':').ok_or_else(bad)?;
        let length = length.parse::<usize>().map_err(|_| bad())?;
        let (dep, id) = focus.split_at_checked(length).ok_or_else(bad)?;
        let id = id.strip_prefix('|').ok_or_else(bad)?;
        return Ok(Event {
            due_ms,
            customer: decode_id(id).ok_or_else(bad)?,
            kind: EventKind::Focus {
                dep: crate::plugin_api::intern(dep),
                x: x.parse().map_err(|_| bad())?,
                y: y.parse().map_err(|_| bad())?,
            },
        });
    }
    let (kind, id) = rest.split_once('|').ok_or_else(bad)?;
    let kind = match kind.as_bytes().first() {
        Some(b'E') if kind.len() == 1 => EventKind::Enter,
        Some(b'X') if kind.len() == 1 => EventKind::Exit,
        Some(b'M') => {
            let (x, y) = kind[1..].split_once(',').ok_or_else(bad)?;
            EventKind::Move {
                x: x.parse().map_err(|_| bad())?,
                y: y.parse().map_err(|_| bad())?,
            }
        }
        _ => return Err(bad()),
    };
    Ok(Event {
        due_ms,
        customer: decode_id(id).ok_or_else(bad)?,
        kind,
    })
}

/// Parses the id part of a member.
fn decode_id(id: &str) -> Option<CustomerId> {
    match id.split_at_checked(1)? {
        ("n", digits) => Some(CustomerId::Number(digits.parse().ok()?)),
        ("t", text) => Some(CustomerId::Text(Arc::from(text))),
        _ => None,
    }
}

#[async_trait]
impl Timeline for RedisTimeline {
    async fn schedule(&self, events: Vec<Event>) -> Result<(), TimelineError> {
        for chunk in events.chunks(SCHEDULE_CHUNK) {
            // Members are made once: a retried write re-adds the same members, which Redis
            // ignores, so an answer lost to a dropped connection does not duplicate events.
            let first = self.seq.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let mut invocation = self.schedule_script.key(&self.keys.due);
            invocation.key(&self.keys.pending).arg(&self.instance);
            let mut member = Vec::with_capacity(64);
            for (offset, event) in chunk.iter().enumerate() {
                member.clear();
                encode(&mut member, first + offset as u64, &self.instance, event);
                invocation.arg(event.due_ms).arg(&member[..]);
            }
            let started = tokio::time::Instant::now();
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
            let mut announced = false;
            loop {
                let mut connection = self.connection.clone();
                match invocation.invoke_async::<u64>(&mut connection).await {
                    Ok(_) => {
                        if announced {
                            tracing::info!("redis timeline reachable again; events scheduled");
                        }
                        break;
                    }
                    Err(error) => match classify(error) {
                        TimelineError::Unavailable(why)
                            if started.elapsed() < SCHEDULE_PATIENCE =>
                        {
                            if !announced {
                                tracing::warn!(
                                    "redis timeline unavailable while scheduling, retrying: {why}"
                                );
                                announced = true;
                            }
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                        other => return Err(other),
                    },
                }
            }
        }
        self.scheduled.notify_one();
        Ok(())
    }

    async fn claim_due(&self, until_ms: i64, max: usize) -> Result<Claim, TimelineError> {
        let lease = format!(
            "{}:{}",
            self.instance,
            self.lease_seq.fetch_add(1, Ordering::Relaxed)
        );
        let lease_key = format!("{}{lease}", self.keys.lease_prefix);
        let mut connection = self.connection.clone();
        let answer: Vec<redis::Value> = self
            .claim_script
            .key(&self.keys.due)
            .key(&self.keys.leases)
            .key(&lease_key)
            .key(format!("{lease_key}:owners"))
            .key(&self.keys.instances)
            .arg(until_ms)
            .arg(max)
            .arg(self.lease_ms)
            .arg(&lease)
            .arg(&self.instance)
            .arg(self.heartbeat_ms)
            .arg(&self.keys.lease_prefix)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut answer = answer.into_iter();
        let reclaimed = match answer.next() {
            Some(redis::Value::Int(n)) => n as u64,
            other => {
                return Err(TimelineError::Invalid(format!(
                    "unexpected claim answer {other:?}"
                )));
            }
        };
        if reclaimed > 0 {
            self.stats.reclaimed.fetch_add(reclaimed, Ordering::Relaxed);
            tracing::warn!(
                "redis timeline: {reclaimed} events of an expired lease (an instance stopped before publishing them) are due again"
            );
        }
        let mut events = Vec::with_capacity(answer.len());
        for value in answer {
            let redis::Value::BulkString(member) = value else {
                return Err(TimelineError::Invalid(format!(
                    "unexpected claim answer {value:?}"
                )));
            };
            events.push(decode(&member).map_err(TimelineError::Invalid)?);
        }
        if events.is_empty() {
            return Ok(Claim::default());
        }
        self.stats
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        // Redis orders ties by member (sequence); the memory backend by customer, then sequence.
        events.sort_by(|a, b| (a.due_ms, &a.customer).cmp(&(b.due_ms, &b.customer)));
        Ok(Claim {
            events,
            lease: Some(lease),
        })
    }

    async fn acknowledge(&self, lease: &str) -> Result<(), TimelineError> {
        let lease_key = format!("{}{lease}", self.keys.lease_prefix);
        let owners = format!("{lease_key}:owners");
        let mut invocation = self.acknowledge_script.key(&self.keys.leases);
        invocation
            .key(&lease_key)
            .key(&owners)
            .key(&self.keys.pending)
            .arg(lease);
        // Retried while the lease runs (half of it): an acknowledgement lost to a Redis blip
        // would have the events published again.
        let started = tokio::time::Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            let mut connection = self.connection.clone();
            match invocation.invoke_async::<i64>(&mut connection).await {
                Ok(_) => return Ok(()),
                Err(error) => match classify(error) {
                    TimelineError::Unavailable(_)
                        if started.elapsed() < Duration::from_millis(self.lease_ms / 2) =>
                    {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    other => return Err(other),
                },
            }
        }
    }

    async fn next_due(&self) -> Result<Option<i64>, TimelineError> {
        let mut connection = self.connection.clone();
        let first: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE")
            .arg(&self.keys.due)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(first.first().map(|(_, score)| *score as i64))
    }

    async fn len(&self) -> Result<u64, TimelineError> {
        let mut connection = self.connection.clone();
        redis::cmd("ZCARD")
            .arg(&self.keys.due)
            .query_async(&mut connection)
            .await
            .map_err(classify)
    }

    async fn pending_here(&self) -> Result<u64, TimelineError> {
        let mut connection = self.connection.clone();
        let pending: i64 = self
            .pending_script
            .key(&self.keys.pending)
            .arg(&self.instance)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(pending.max(0) as u64)
    }

    fn scheduled(&self) -> Arc<Notify> {
        self.scheduled.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: Event) {
        let mut member = Vec::new();
        encode(&mut member, 42, "8000000000000abc", &event);
        assert_eq!(&member[..12], b"00000000002a");
        assert_eq!(&member[12..28], b"8000000000000abc");
        assert_eq!(decode(&member).unwrap(), event);
    }

    #[test]
    fn members_keep_every_event_exactly() {
        round_trip(Event {
            due_ms: 1_767_603_600_123,
            customer: CustomerId::Number(997),
            kind: EventKind::Enter,
        });
        round_trip(Event {
            due_ms: -5,
            customer: CustomerId::parse("007"),
            kind: EventKind::Move { x: -2, y: 30 },
        });
        round_trip(Event {
            due_ms: 0,
            customer: CustomerId::parse("a|b|\n ü"),
            kind: EventKind::Exit,
        });
        round_trip(Event {
            due_ms: 7,
            customer: CustomerId::parse("x|y"),
            kind: EventKind::Focus {
                dep: crate::plugin_api::intern("Snack|bar, 2: ü"),
                x: 450,
                y: -460,
            },
        });
        assert!(decode(b"short").is_err());
        assert!(decode(b"00000000002a8000000000000abc12|F1,2,9:Women|n1").is_err());
        assert!(decode(b"00000000002a8000000000000abc12|Q|n1").is_err());
    }

    #[test]
    fn text_and_number_ids_stay_apart() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let event = |customer| Event {
            due_ms: 1,
            customer,
            kind: EventKind::Enter,
        };
        encode(&mut a, 0, "8000000000000000", &event(CustomerId::Number(7)));
        encode(
            &mut b,
            0,
            "8000000000000000",
            &event(CustomerId::parse("07")),
        );
        assert_ne!(a, b);
        assert_eq!(decode(&b).unwrap().customer, CustomerId::parse("07"));
    }
}
