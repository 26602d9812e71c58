//! The `redis` timeline backend: one timeline shared by any number of instances, kept across
//! restarts (the README's *Several instances: the Redis timeline* says how to run it).
//!
//! ```yaml
//! timeline:
//!   backend: redis            # or TIMELINE_BACKEND=redis
//!   redis:
//!     url: redis://127.0.0.1:6379/0   # REDIS_URL; rediss:// for TLS
//!     key: customersim                # REDIS_KEY
//!     lease: 30s
//! ```
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
//! - `{key}:clock` — hash: the simulated clock every instance of the key follows (`start_ms`,
//!   `speed` (a number or `max`), `wall_us`: Redis server time at which the simulated time was
//!   `start_ms`, `set_by`; on a virtual clock `reached_ms`, the latest due time claimed).
//! - `{key}:progress` — hash, virtual clocks only: per generating instance, the due time before
//!   which its sources scheduled everything.
//!
//! # One clock per key
//! The first instance with sources stores its clock when it joins (`start.lua`); every other
//! instance adopts the stored one ([`customersim_plugin_api::SharedClock`]); an instance without
//! sources that finds none waits, polling, until one is stored. Wall origins are kept in Redis's
//! time, converted with an offset measured by `TIME` (0 when the host's clock agrees within what
//! one round trip can tell). On a virtual clock (`speed: max`) a generating instance's claims
//! carry its progress (`until_ms + 1`), and every claim stops short of the lowest live progress,
//! so nobody publishes ahead of a generator; a generator joining starts past it. The clock goes
//! when the last instance leaves (`leave.lua`, at the end of a run) and nothing waits, or is
//! dropped by the next join when no instance is alive and nothing waits. A task renews each
//! instance's heartbeat (`heartbeat.lua`), also while it waits for a clock or its sinks hold up
//! its claims.
//!
//! # Members
//! Each event is one string member of the `due` sorted set (and of a lease's list), scored by its
//! due time; [`member`] has the encoding.
//!
//! # Claims are leases
//! The claim script moves up to `max` due events into a new lease (atomically: each event goes to
//! one instance) and first puts back the events of expired leases, so the events of an instance
//! that died between claiming and handing them to its sinks are published by another one (a few
//! may be published twice then; none are lost). The scheduler acknowledges a lease once its sinks
//! took the batch, which deletes it.
//!
//! # Scripts
//! Every change to the shared state is a Lua script, run atomically by Redis (only the reads
//! `next_due` and `len` are plain commands): the `.lua` files in `src/` (`schedule`,
//! `claim`, `acknowledge`, `start`, `pending`, `heartbeat`, `leave`, `peek`), each opening with
//! what it does atomically and its KEYS and ARGV.

mod member;
mod timeline;

use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::{
    CredentialUrl, EnvKind, EnvOverride, KeptClock, OpenedTimeline, PluginConfig, PluginError,
    TimelineBackend, TimelineConfig, TimelineContext, async_trait, duration, timeline_config,
};

pub use timeline::{ClaimStats, Joined, RedisTimeline};

/// Settings of the `redis` backend (`timeline.redis:`).
#[timeline_config]
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`, or `rediss://…` for TLS. The password is never
    /// logged.
    #[serde(default = "default_url")]
    pub url: CredentialUrl,
    /// Namespace of this simulation's keys, so several simulations can share one Redis. Every
    /// instance of one simulation uses the same key.
    #[serde(default = "default_key")]
    pub key: String,
    /// How long claimed events stay leased to the instance that claimed them: if its sinks have
    /// not taken them by then (the instance died), another instance publishes them.
    #[serde(default = "default_lease", with = "duration::required")]
    pub lease: Duration,
}

fn default_url() -> CredentialUrl {
    CredentialUrl::new("redis://127.0.0.1:6379/0")
}
fn default_key() -> String {
    "customersim".into()
}
fn default_lease() -> Duration {
    Duration::from_secs(30)
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: default_url(),
            key: default_key(),
            lease: default_lease(),
        }
    }
}

impl PluginConfig for RedisConfig {
    const NAME: &'static str = "redis";
    const DESCRIPTION: &'static str =
        "events wait in Redis: shared by every instance with the same key, kept across restarts";
    const ENV: &'static [EnvOverride] = &[
        EnvOverride {
            var: "REDIS_URL",
            key: "url",
            kind: EnvKind::Text,
            help: "Redis of the redis timeline backend, redis:// or rediss:// (TLS); password never logged (default redis://127.0.0.1:6379/0)",
        },
        EnvOverride {
            var: "REDIS_KEY",
            key: "key",
            kind: EnvKind::Text,
            help: "namespace of the simulation's keys in Redis (default customersim)",
        },
    ];
}

impl TimelineConfig for RedisConfig {
    fn check(&self) -> Result<(), PluginError> {
        let shown = self.url.masked();
        let url = self.url.expose();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(PluginError::config(format!(
                "url {shown:?}: expected redis://host:port/db or rediss://… (REDIS_URL)"
            )));
        }
        if let Err(error) = redis::Client::open(url) {
            return Err(PluginError::config(format!(
                "url {shown:?}: {error} (REDIS_URL)"
            )));
        }
        if self.key.is_empty() || self.key.contains(['{', '}']) {
            return Err(PluginError::config(
                "key must be non-empty text without braces (REDIS_KEY)",
            ));
        }
        if self.lease < Duration::from_secs(1) {
            return Err(PluginError::config("lease must be at least 1s"));
        }
        Ok(())
    }

    fn build(self) -> Result<Box<dyn TimelineBackend>, PluginError> {
        Ok(Box::new(RedisBackend(self)))
    }
}

/// Connects when the run starts.
struct RedisBackend(RedisConfig);

#[async_trait]
impl TimelineBackend for RedisBackend {
    async fn open(self: Box<Self>, cx: TimelineContext) -> Result<OpenedTimeline, PluginError> {
        let (timeline, joined) = RedisTimeline::open(&self.0, &cx)
            .await
            .map_err(PluginError::Fatal)?;
        Ok(OpenedTimeline {
            timeline: Arc::new(timeline),
            skipped_at_open: Some(joined.skipped),
            clock: Some(joined.clock),
        })
    }

    async fn peek_clock(&mut self) -> Result<KeptClock, PluginError> {
        match RedisTimeline::peek_clock(&self.0).await {
            Ok(Some(clock)) => Ok(KeptClock::Kept(clock)),
            Ok(None) => Ok(KeptClock::NoneYet),
            Err(why) => Err(PluginError::Fatal(why)),
        }
    }
}
