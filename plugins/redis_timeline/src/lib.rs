//! The `redis` timeline backend: one timeline shared by any number of instances, kept across
//! restarts (the book's *Several instances: the Redis timeline* says how to run it).
//!
//! ```yaml
//! timeline:
//!   backend: redis            # or TIMELINE_BACKEND=redis
//!   redis:
//!     url: redis://127.0.0.1:6379/0   # REDIS_URL; rediss:// for TLS (ca_file: REDIS_CA_FILE)
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
//! - `{key}:judges`, `{key}:judging`, `{key}:expect:…` — what the instances' verdicts tell each
//!   other ([`customersim_plugin_api::Peers`], offered as [`OpenedTimeline::peers`]): who reads
//!   the replies, since and until when, and the records of the expected events each published;
//!   [`RedisPeers`] has the layout and the bounds.
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
//! `claim`, `acknowledge`, `start`, `pending`, `heartbeat`, `leave`, `peek`, and `peers`, the
//! verdicts' exchange), each opening with what it does atomically and its KEYS and ARGV.

mod member;
mod peers;
mod timeline;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::{
    CredentialUrl, EnvKind, EnvOverride, KeptClock, OpenedTimeline, PluginConfig, PluginError,
    TimelineBackend, TimelineConfig, TimelineContext, async_trait, duration, timeline_config,
};

pub use peers::RedisPeers;
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
    /// PEM file of the CA certificates that sign the server's certificate, for `rediss://`;
    /// without it the system's CA certificates. A path relative to the working directory.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate, for a server that requires one (`tls-auth-clients
    /// yes`, Redis's default).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
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
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
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
        EnvOverride {
            var: "REDIS_CA_FILE",
            key: "ca_file",
            kind: EnvKind::Text,
            help: "PEM CA certificates trusted for rediss:// (default: the system's)",
        },
        EnvOverride {
            var: "REDIS_CLIENT_CERT_FILE",
            key: "client_cert_file",
            kind: EnvKind::Text,
            help: "PEM client certificate for a Redis that requires one (tls-auth-clients yes)",
        },
        EnvOverride {
            var: "REDIS_CLIENT_KEY_FILE",
            key: "client_key_file",
            kind: EnvKind::Text,
            help: "PEM private key of the Redis client certificate",
        },
    ];
}

impl TimelineConfig for RedisConfig {
    fn check(&self) -> Result<(), PluginError> {
        self.client()?;
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
        // The same checks as `validate`, so a bad URL or TLS file stops `run` before it starts.
        self.check()?;
        Ok(Box::new(RedisBackend(self)))
    }
}

impl RedisConfig {
    /// The client for `url` and the TLS files (read and checked here, so a malformed URL, a
    /// missing file or a certificate that does not match its key is a configuration error naming
    /// the setting). The URL must be `redis://` or `rediss://` with a host
    /// ([`CredentialUrl::parse`]): `redis:/x` would otherwise connect somewhere else.
    pub fn client(&self) -> Result<redis::Client, PluginError> {
        let parsed = self.url.parse(&["redis", "rediss"]).map_err(|why| {
            PluginError::config(format!(
                "url (REDIS_URL): invalid Redis URL (not shown, it may hold a password): {why}; expected redis://[user:password@]host:port/db or rediss://…"
            ))
        })?;
        let shown = self.url.masked();
        let url = parsed.as_str();
        let files = [
            ("ca_file", "REDIS_CA_FILE", &self.ca_file),
            (
                "client_cert_file",
                "REDIS_CLIENT_CERT_FILE",
                &self.client_cert_file,
            ),
            (
                "client_key_file",
                "REDIS_CLIENT_KEY_FILE",
                &self.client_key_file,
            ),
        ];
        let set = files.iter().find(|(_, _, path)| path.is_some());
        let Some((key, var, _)) = set else {
            return redis::Client::open(url).map_err(|error| {
                PluginError::config(format!("url {shown:?}: {error} (REDIS_URL)"))
            });
        };
        if parsed.scheme() != "rediss" {
            return Err(PluginError::config(format!(
                "{key} ({var}) is set but url {shown:?} (REDIS_URL) is not rediss://: TLS files need a rediss:// URL"
            )));
        }
        let read = |key: &str, var: &str, path: &Path| {
            std::fs::read(path).map_err(|error| {
                PluginError::config(format!(
                    "{key} ({var}): cannot read {}: {error}",
                    path.display()
                ))
            })
        };
        let root_cert = match &self.ca_file {
            Some(path) => Some(read("ca_file", "REDIS_CA_FILE", path)?),
            None => None,
        };
        let client_tls = match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => {
                let client_cert = read("client_cert_file", "REDIS_CLIENT_CERT_FILE", cert)?;
                let client_key = read("client_key_file", "REDIS_CLIENT_KEY_FILE", key)?;
                check_identity(&client_cert, &client_key)?;
                Some(redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
            (None, None) => None,
            _ => {
                return Err(PluginError::config(
                    "client_cert_file (REDIS_CLIENT_CERT_FILE) and client_key_file (REDIS_CLIENT_KEY_FILE) go together: set both",
                ));
            }
        };
        let certificates = redis::TlsCertificates {
            client_tls,
            root_cert,
        };
        redis::Client::build_with_tls(url, certificates).map_err(|error| {
            PluginError::config(format!(
                "url {shown:?} (REDIS_URL) with ca_file / client_cert_file / client_key_file: {error}"
            ))
        })
    }
}

/// The redis crate hands the client certificate to rustls's own check when it connects; the
/// same check here makes a bad pair a configuration error instead of a failing connection.
/// (That check reads X.509 v3 certificates only; the mqtt and amqp sinks take any version.)
fn check_identity(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), PluginError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    const BOTH: &str =
        "client_cert_file (REDIS_CLIENT_CERT_FILE) / client_key_file (REDIS_CLIENT_KEY_FILE)";
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| {
            PluginError::config(
                "client_cert_file (REDIS_CLIENT_CERT_FILE) holds no PEM certificate",
            )
        })?;
    // The parser's error could quote the file: keep only that it failed.
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        PluginError::config(
            "client_key_file (REDIS_CLIENT_KEY_FILE) holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        )
    })?;
    rustls::sign::CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
        .map(drop)
        .map_err(|error| {
            PluginError::config(format!(
                "{BOTH}: the certificate and key cannot be used together: {error}"
            ))
        })
}

/// Connects when the run starts.
struct RedisBackend(RedisConfig);

#[async_trait]
impl TimelineBackend for RedisBackend {
    async fn open(self: Box<Self>, cx: TimelineContext) -> Result<OpenedTimeline, PluginError> {
        let (timeline, joined) = RedisTimeline::open(&self.0, &cx)
            .await
            .map_err(PluginError::Fatal)?;
        let peers = Arc::new(timeline.peers(&self.0));
        Ok(OpenedTimeline {
            timeline: Arc::new(timeline),
            skipped_at_open: Some(joined.skipped),
            clock: Some(joined.clock),
            peers: Some(peers),
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
