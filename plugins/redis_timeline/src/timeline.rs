//! The shared timeline itself: connecting, the shared clock, the claim leases, heartbeats.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use tokio::sync::Notify;

use customersim_plugin_api::clock::unix_now_us;
use customersim_plugin_api::{
    Backoff, Claim, ClockOrigin, Event, SharedClock, Timeline, TimelineContext, TimelineError,
    async_trait,
};

use crate::RedisConfig;
use crate::member::{decode, encode};
use crate::peers::RedisPeers;

/// Adds events and counts them as pending for their instance; idempotent when retried.
const SCHEDULE: &str = include_str!("schedule.lua");

/// Puts back expired leases, then leases up to `max` due events to the caller.
const CLAIM: &str = include_str!("claim.lua");

/// Closes a lease whose events the sinks took.
const ACKNOWLEDGE: &str = include_str!("acknowledge.lua");

/// Joins the namespace, dropping the events due before the cutoff when no other instance is
/// alive, and stores or reads the shared clock.
const START: &str = include_str!("start.lua");

/// Keeps this instance registered as alive.
const HEARTBEAT: &str = include_str!("heartbeat.lua");

/// Forgets this instance, and the clock with the last one when nothing waits.
const LEAVE: &str = include_str!("leave.lua");

/// The clock an instance starting now would adopt, read-only.
const PEEK: &str = include_str!("peek.lua");

/// This instance's events not yet published by anyone.
const PENDING: &str = include_str!("pending.lua");

/// How long `schedule` retries an unreachable Redis itself before it reports it unavailable.
const SCHEDULE_PATIENCE: Duration = Duration::from_secs(60);

/// Most events per `schedule` round trip.
const SCHEDULE_CHUNK: usize = 8192;

/// How often an idle scheduler looks at the shared timeline for events other instances added.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// How often a worker started before any instance with sources looks for the clock.
const CLOCK_POLL: Duration = Duration::from_millis(200);

/// How often a worker still waiting for the clock says so again.
const STILL_WAITING: Duration = Duration::from_secs(60);

/// What this instance tells the others about how far it got, on a virtual clock (the `progress`
/// argument of `claim.lua`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// A scaled clock: events are due by wall time, nobody needs to know.
    NotKept,
    /// A virtual clock and no sources: claims stop at the generators' lowest progress.
    Follows,
    /// A virtual clock and sources: each claim's `until_ms + 1` is how far they got.
    Reports,
}

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
    leave_script: Script,
    progress: Progress,
    /// Renews the heartbeat while the instance runs; stopped by `leave` or drop.
    heartbeat: Option<tokio::task::JoinHandle<()>>,
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
    clock: String,
    progress: String,
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
            clock: format!("{tag}:clock"),
            progress: format!("{tag}:progress"),
        }
    }
}

/// What joining the namespace found.
pub struct Joined {
    /// Events dropped by CONSUME_FROM (only when no other instance was running).
    pub skipped: u64,
    /// The shared clock, stored by this instance or adopted.
    pub clock: SharedClock,
}

/// The answer of `start.lua`.
type StartAnswer = (u64, u64, u8, String, String, String, String);

/// The connection of a config (lazy: an unreachable Redis is retried, not fatal).
fn connect(config: &RedisConfig) -> Result<ConnectionManager, String> {
    let shown = config.url.masked();
    if config.url.expose().starts_with("rediss://") {
        // One TLS stack (rustls + ring) for the whole process; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = config.client().map_err(|error| error.to_string())?;
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_lazy_with_config(client, manager_config)
        .map_err(|error| format!("timeline.redis.url {shown}: {error}"))
}

/// A stored clock from its hash fields; the wall origin moved from Redis server time to this
/// host's wall clock (`offset_us`: server minus local).
fn stored_clock(
    start_ms: &str,
    speed: &str,
    wall_us: &str,
    offset_us: i64,
) -> Result<ClockOrigin, String> {
    let bad = || {
        format!(
            "unreadable shared clock (start_ms {start_ms:?}, speed {speed:?}, wall_us {wall_us:?})"
        )
    };
    let start_ms = start_ms.parse::<i64>().map_err(|_| bad())?;
    let speed = match speed {
        "max" => None,
        number => Some(
            number
                .parse::<f64>()
                .ok()
                .filter(|speed| *speed > 0.0 && speed.is_finite())
                .ok_or_else(bad)?,
        ),
    };
    let wall_us = wall_us.parse::<i64>().map_err(|_| bad())?;
    Ok(ClockOrigin {
        start_ms,
        speed,
        wall_origin_us: wall_us - offset_us,
    })
}

/// How far Redis's clock is ahead of this host's wall clock (server minus local, µs), read with
/// one `TIME`. Within what one round trip can measure (plus 1 ms) the clocks agree, and the
/// offset is 0: instances on hosts whose clocks agree (NTP) then share the clock exactly, and
/// only a host whose clock is off by more gets corrected.
async fn server_offset(connection: &mut ConnectionManager) -> Result<i64, RedisError> {
    let sent_us = unix_now_us();
    let (seconds, micros): (i64, i64) = redis::cmd("TIME").query_async(connection).await?;
    let received_us = unix_now_us();
    let offset = seconds * 1_000_000 + micros - (sent_us + received_us) / 2;
    let uncertainty = (received_us - sent_us) / 2 + 1_000;
    Ok(if offset.abs() <= uncertainty {
        0
    } else {
        offset
    })
}

/// `redis key "sim"`, for the log.
fn kept_at(config: &RedisConfig) -> String {
    format!("redis key {:?}", config.key)
}

impl RedisTimeline {
    /// Connects (lazily: an unreachable Redis is retried, not fatal) and joins the namespace,
    /// dropping the events due before `cx.skip_before_ms` when no other instance is running. It
    /// stores `cx.clock` as the shared clock when none is kept and `cx.generates`, and adopts
    /// the stored one otherwise; without sources and without a clock it waits for one (logged).
    pub async fn open(
        config: &RedisConfig,
        cx: &TimelineContext,
    ) -> Result<(RedisTimeline, Joined), String> {
        let shown = config.url.masked();
        let connection = connect(config)?;
        let instance = format!(
            "{:016x}",
            customersim_plugin_api::rand::random::<u64>() | (1 << 63)
        );
        // Heartbeats come with each claim (at least every CONSUME_FREQUENCY seconds) and from a
        // task of their own.
        let heartbeat_ms = (10_000.0 + 3_000.0 * cx.consume_frequency) as u64;
        let mut timeline = RedisTimeline {
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
            leave_script: Script::new(LEAVE),
            progress: Progress::NotKept,
            heartbeat: None,
            scheduled: Arc::new(Notify::new()),
            stats: Arc::default(),
        };
        let start = Script::new(START);
        let mut cutoff = cx
            .skip_before_ms
            .map(|ms| ms.to_string())
            .unwrap_or_default();
        let own = cx.clock;
        let (own_start, own_speed) = if cx.generates {
            (
                own.start_ms.to_string(),
                own.speed
                    .map_or_else(|| "max".to_string(), |speed| speed.to_string()),
            )
        } else {
            (String::new(), String::new())
        };
        let mut announced = false;
        let mut offset_us = None;
        let mut waiting_since: Option<tokio::time::Instant> = None;
        let mut waiting_said = tokio::time::Instant::now();
        let mut skipped_total = 0;
        let (alive, set_here, origin, started_ms) = loop {
            let mut connection = timeline.connection.clone();
            let offset = match offset_us {
                Some(offset) => Ok(offset),
                None => server_offset(&mut connection).await,
            };
            let outcome: Result<(StartAnswer, i64), RedisError> = match offset {
                Ok(offset) => start
                    .key(&timeline.keys.due)
                    .key(&timeline.keys.instances)
                    .key(&timeline.keys.clock)
                    .key(&timeline.keys.progress)
                    .key(&timeline.keys.leases)
                    .arg(&timeline.instance)
                    .arg(heartbeat_ms)
                    .arg(&cutoff)
                    .arg(&own_start)
                    .arg(&own_speed)
                    .arg(own.wall_origin_us + offset)
                    .invoke_async(&mut connection)
                    .await
                    .map(|answer| (answer, offset)),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(((alive, skipped, set_here, start_ms, speed, wall_us, started), offset)) => {
                    offset_us = Some(offset);
                    // CONSUME_FROM applies once, when joining.
                    cutoff.clear();
                    skipped_total += skipped;
                    if set_here == 1 {
                        break (alive, true, own, own.start_ms);
                    }
                    if !start_ms.is_empty() {
                        let origin = stored_clock(&start_ms, &speed, &wall_us, offset)
                            .map_err(|why| format!("redis timeline {shown}: {why}"))?;
                        let started = started.parse().unwrap_or(origin.start_ms);
                        break (alive, false, origin, started);
                    }
                    match waiting_since {
                        None => {
                            tracing::info!(
                                "redis timeline {shown}, key {:?}: no clock yet; this worker (no sources) waits for an instance with sources to set it",
                                config.key
                            );
                            waiting_since = Some(tokio::time::Instant::now());
                            waiting_said = tokio::time::Instant::now();
                        }
                        Some(since) if waiting_said.elapsed() >= STILL_WAITING => {
                            tracing::info!(
                                "redis timeline key {:?}: still waiting for the clock after {} s",
                                config.key,
                                since.elapsed().as_secs()
                            );
                            waiting_said = tokio::time::Instant::now();
                        }
                        Some(_) => {}
                    }
                    tokio::time::sleep(CLOCK_POLL).await;
                }
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
        timeline.progress = match (origin.speed, cx.generates) {
            (Some(_), _) => Progress::NotKept,
            (None, false) => Progress::Follows,
            (None, true) => Progress::Reports,
        };
        tracing::info!(
            "redis timeline {shown}, key {:?}: instance {}, {alive} other instance(s) running{}",
            config.key,
            timeline.instance,
            if alive > 0 && cx.skip_before_ms.is_some() {
                " (CONSUME_FROM applies only when none is)"
            } else {
                ""
            }
        );
        timeline.heartbeat = Some(tokio::spawn(keep_alive(
            timeline.connection.clone(),
            timeline.keys.instances.clone(),
            timeline.instance.clone(),
            heartbeat_ms,
        )));
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
        let joined = Joined {
            skipped: skipped_total,
            clock: SharedClock {
                origin,
                started_ms,
                set_here,
                kept_at: kept_at(config),
            },
        };
        Ok((timeline, joined))
    }

    /// This instance's id (the owner part of its members).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// What this instance's verdict tells the other instances of the key, on the timeline's
    /// connection.
    pub fn peers(&self, config: &RedisConfig) -> RedisPeers {
        RedisPeers::new(
            self.connection.clone(),
            &config.key,
            &self.instance,
            kept_at(config),
        )
    }

    /// The clock an instance joining now would adopt, read without joining; `None` when none is
    /// kept (no instance alive and nothing waiting, or no instance with sources started yet).
    pub async fn peek_clock(config: &RedisConfig) -> Result<Option<SharedClock>, String> {
        let shown = config.url.masked();
        let mut connection = connect(config)?;
        let keys = Keys::new(&config.key);
        let offset = server_offset(&mut connection)
            .await
            .map_err(|error| format!("redis timeline {shown}: {error}"))?;
        let answer: Vec<String> = Script::new(PEEK)
            .key(&keys.due)
            .key(&keys.instances)
            .key(&keys.clock)
            .key(&keys.leases)
            .invoke_async(&mut connection)
            .await
            .map_err(|error| format!("redis timeline {shown}: {error}"))?;
        let [start_ms, speed, wall_us, _alive] = &answer[..] else {
            return Ok(None);
        };
        let origin = stored_clock(start_ms, speed, wall_us, offset)
            .map_err(|why| format!("redis timeline {shown}: {why}"))?;
        Ok(Some(SharedClock {
            origin,
            started_ms: origin.start_ms,
            set_here: false,
            kept_at: kept_at(config),
        }))
    }
}

/// Renews the instance's heartbeat every third of its life, so it counts as alive also while
/// its sinks hold the scheduler up; a failed renewal is retried at the next turn.
async fn keep_alive(
    mut connection: ConnectionManager,
    instances: String,
    instance: String,
    heartbeat_ms: u64,
) {
    let script = Script::new(HEARTBEAT);
    loop {
        tokio::time::sleep(Duration::from_millis(heartbeat_ms / 3)).await;
        let renewed: Result<i64, RedisError> = script
            .key(&instances)
            .arg(&instance)
            .arg(heartbeat_ms)
            .invoke_async(&mut connection)
            .await;
        if let Err(error) = renewed {
            tracing::debug!("redis timeline: heartbeat not renewed: {error}");
        }
    }
}

impl Drop for RedisTimeline {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

/// Sorts a Redis failure into "retry later" and "will not work".
pub(crate) fn classify(error: RedisError) -> TimelineError {
    if let Some(tls) = tls_failure(&error) {
        // A certificate the server or this client refuses does not get better by retrying.
        return TimelineError::Invalid(format!(
            "redis: TLS failed ({tls}): check url (REDIS_URL), ca_file (REDIS_CA_FILE), client_cert_file and client_key_file"
        ));
    }
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

/// The rustls error inside a failed connection attempt, if TLS is what failed: the redis crate
/// keeps the I/O error (which holds it) behind an `Arc`.
fn tls_failure(error: &RedisError) -> Option<&rustls::Error> {
    let source = std::error::Error::source(error)?;
    let shared = source.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()?;
    let io = (**shared).downcast_ref::<std::io::Error>()?;
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

#[async_trait]
impl Timeline for RedisTimeline {
    fn summary(&self) -> Option<String> {
        let round_trips = self.stats.round_trips.load(Ordering::Relaxed);
        let claimed = self.stats.events.load(Ordering::Relaxed);
        Some(format!(
            "redis timeline: {claimed} events claimed in {round_trips} claim round trips ({:.4} per event)",
            round_trips as f64 / claimed.max(1) as f64
        ))
    }

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
            .key(&self.keys.progress)
            .key(&self.keys.clock)
            .arg(until_ms)
            .arg(max)
            .arg(self.lease_ms)
            .arg(&lease)
            .arg(&self.instance)
            .arg(self.heartbeat_ms)
            .arg(&self.keys.lease_prefix)
            .arg(match self.progress {
                Progress::NotKept => String::new(),
                Progress::Follows => "worker".to_string(),
                Progress::Reports => until_ms.saturating_add(1).to_string(),
            })
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

    async fn leave(&self) {
        if let Some(heartbeat) = &self.heartbeat {
            heartbeat.abort();
        }
        let mut connection = self.connection.clone();
        let left: Result<i64, RedisError> = self
            .leave_script
            .key(&self.keys.due)
            .key(&self.keys.instances)
            .key(&self.keys.clock)
            .key(&self.keys.progress)
            .key(&self.keys.leases)
            .arg(&self.instance)
            .invoke_async(&mut connection)
            .await;
        match left {
            Ok(1) => tracing::info!(
                "redis timeline: the last instance left and nothing waits: the next run starts a new clock"
            ),
            Ok(_) => {}
            Err(error) => tracing::debug!(
                "redis timeline: could not leave (the heartbeat expires instead): {error}"
            ),
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

    #[test]
    fn a_stored_clock_reads_back_on_this_hosts_wall_clock() {
        let clock = stored_clock("1748854800000", "300", "1000000500", 500).unwrap();
        assert_eq!(
            clock,
            ClockOrigin {
                start_ms: 1_748_854_800_000,
                speed: Some(300.0),
                wall_origin_us: 1_000_000_000,
            }
        );
        let virtual_clock = stored_clock("5", "max", "0", 0).unwrap();
        assert_eq!(virtual_clock.speed, None);
        for (start, speed, wall) in [("x", "1", "0"), ("1", "-2", "0"), ("1", "fast", "0")] {
            let why = stored_clock(start, speed, wall, 0).unwrap_err();
            assert!(why.contains("unreadable shared clock"), "{why}");
        }
    }
}
