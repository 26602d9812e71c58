//! The shared timeline itself: connecting, the claim leases, heartbeats.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use tokio::sync::Notify;

use customersim_plugin_api::{Backoff, Claim, Event, Timeline, TimelineError, async_trait};

use crate::RedisConfig;
use crate::member::{decode, encode};

/// Adds events and counts them as pending for their instance; idempotent when retried.
const SCHEDULE: &str = include_str!("schedule.lua");

/// Puts back expired leases, then leases up to `max` due events to the caller.
const CLAIM: &str = include_str!("claim.lua");

/// Closes a lease whose events the sinks took.
const ACKNOWLEDGE: &str = include_str!("acknowledge.lua");

/// Joins the namespace, dropping the events due before the cutoff when no other instance is alive.
const START: &str = include_str!("start.lua");

/// This instance's events not yet published by anyone.
const PENDING: &str = include_str!("pending.lua");

/// How long `schedule` retries an unreachable Redis itself before it reports it unavailable.
const SCHEDULE_PATIENCE: Duration = Duration::from_secs(60);

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

impl RedisTimeline {
    /// Connects (lazily: an unreachable Redis is retried, not fatal) and joins the namespace,
    /// dropping the events due before `skip_before_ms` when no other instance is running.
    /// Returns the timeline and how many events were dropped.
    pub async fn open(
        config: &RedisConfig,
        consume_frequency: f64,
        skip_before_ms: Option<i64>,
    ) -> Result<(RedisTimeline, u64), String> {
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
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|error| format!("timeline.redis.url {shown}: {error}"))?;
        let instance = format!(
            "{:016x}",
            customersim_plugin_api::rand::random::<u64>() | (1 << 63)
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
