//! The `http_ingress` source: the original service's HTTP API, on axum.
//!
//! ```yaml
//! sources:
//!   - type: http_ingress
//!     listen: 127.0.0.1:8000 # HTTP_LISTEN; 0.0.0.0:8000 serves other hosts (set a token)
//!     token: null            # HTTP_TOKEN: when set, every route but /health needs
//!                            # "Authorization: Bearer <token>" (scheme in any case)
//!     max_connections: 512   # served at once; more wait in the listen queue
//!     max_connections_per_peer: 128  # from one IP address (default: a quarter of max_connections)
//!     header_timeout: 10s    # to send a request's headers; idle keep-alive connections close after it
//!     body_timeout: 30s      # to send a request's body (408 after); also for a stalled answer
//!     max_events: 10000      # events one /scenario or /scenario_draft request may schedule
//!     max_pending_events: 100000  # HTTP_MAX_PENDING_EVENTS: scheduled, not yet due (429 beyond)
//!     max_ahead: 1d          # how far past the simulated clock a step may be dated (422 beyond)
//!     state_memory_bytes: 268435456  # /state answers held at once, all clients (503 beyond)
//! ```
//!
//! Endpoints (the original's curl commands work verbatim; bodies are JSON whatever the
//! `Content-Type`, so curl's default form type is fine):
//! - `POST /produce_entry`, `/produce_move`, `/produce_exit`: `{"id": "997", "ts": 192326400,
//!   "x": 2, "y": 3}` is published at once, straight to the sinks (a numeric `id` is published as
//!   a string). Answers `True`.
//! - `POST /scenario[?recalculate_time=true]`: `{"customer": {"customer_id": "3"}, "path":
//!   [{"type": "MOVE", "location": {"x": 1, "y": 2}, "timestamp": "2021-01-01T00:00:00Z"}]}`.
//!   The steps go onto the timeline in one write and are published at their time. Timestamps are
//!   ISO 8601 with a time zone, or epoch numbers (seconds; milliseconds above 2e10); coordinates
//!   may be floats (truncated); step types are case-insensitive. `recalculate_time` shifts the
//!   path so its earliest step is now (the simulated clock). Answers `True`.
//! - `POST /scenario_draft`: the same body without timestamps; the first step is 10 s from now,
//!   each next one after walking there at 0.03 s per coordinate unit, and a `FOCUS` step adds 5
//!   moves in place 7.5 s apart (the original's `30 / (5 - 1)`), timed to the microsecond as the
//!   original did, from the clock's microsecond. Answers the expanded scenario (a valid
//!   `/scenario` body) in the original's bytes: `json.dumps` spacing, timestamps as Python's
//!   `isoformat()` (`2021-01-01T00:00:10.123456+00:00`).
//! - `GET /state` (who is inside, where, since when), `GET /health` (`OK`), `GET /metrics`
//!   (Prometheus text of the whole process, with `http_requests_total` by route and status).
//!
//! Bad input is refused with a 4xx whose JSON `detail` names the field (`path[3].timestamp: …`):
//! 400 for malformed JSON, 422 for a missing, mistyped or unacceptable field (unknown step type,
//! timestamp without a zone or outside years 1 to 9999, duplicate steps, empty path with
//! `recalculate_time`, a customer id over 256 bytes or a numeric id that is not a whole number
//! within 64 bits, more events than `max_events`, a step dated more than `max_ahead` after the
//! simulated clock), 413 for a body over 1 MiB (at once when its `Content-Length` says so, before
//! reading it), 408 for a body not received within `body_timeout`, 401 for a missing or wrong
//! token, 429 when the request's future events would take the source over `max_pending_events`,
//! 503 with `Retry-After` when `/state` answers already hold `state_memory_bytes`. Nothing of a refused request
//! is scheduled or published, and publishing goes on. Error messages quote at most a short
//! excerpt of a refused value.
//!
//! One request's cost is bounded: at most 1 MiB of body, `max_events` events, each with an id of
//! at most 256 bytes, dated at most `max_ahead` ahead. The server's is too: at most
//! `max_pending_events` events scheduled and not yet due, `state_memory_bytes` of `/state`
//! answers, and `max_connections` connections (checked against the descriptor limit at start,
//! with descriptors left for the sinks), at most `max_connections_per_peer` of them from one IP
//! address (so one client's idle sockets cannot starve `/health` for others), each closed when
//! its headers or body are late, when it idles longer than `header_timeout`, or when its answer
//! goes unread for `body_timeout` (the accept loop is `customersim-http-serve`'s, shared with
//! `live_view`).
//!
//! The source stops accepting when the run shuts down or when the doors close
//! (`simulation.duration`); it does not pace the clock.
//!
//! # Layout
//! - this file: the config, its environment variables, and the running source (bind, serve,
//!   graceful stop).
//! - `server`: the axum router, the handlers, authentication and request metrics.
//! - `backlog`: the bound on events scheduled and not yet due, and on how far ahead they may be.
//! - `state`: `/state` answers built within a memory budget shared by all clients.
//! - [`parse`]: the body parsers the server uses, public for the fuzz targets (`fuzz/`).
//! - `body`: `/produce_*` and `/scenario` bodies into events, with the checks and error messages.
//! - `draft`: `/scenario_draft` bodies timed by walking distance.
//! - `values`: the leaf values of bodies (ids, integers, instants, step types) and their
//!   lenient parsing rules.

mod backlog;
mod body;
mod draft;
mod server;
mod state;
mod values;

/// The request-body parsers and checks, exactly as the server calls them: public so the fuzz
/// targets (`fuzz/fuzz_targets/http_*.rs`) exercise the very code that answers requests. Every
/// refusal is a [`BodyError`](parse::BodyError) whose [`status`](parse::BodyError::status) is a
/// 4xx.
pub mod parse {
    pub use crate::body::{BodyError, Limits, ProduceKind, produce, scenario};
    pub use crate::draft::{Doors, Expanded, draft};
    pub use crate::values::MAX_ID_BYTES;
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use customersim_http_serve::ConnectionLimits;
use customersim_http_serve::descriptors::{self, Reservation};
use customersim_plugin_api::prometheus_client::metrics::counter::Counter;
use customersim_plugin_api::prometheus_client::metrics::family::Family;
use customersim_plugin_api::{
    BuildContext, EnvKind, EnvOverride, Fleet, MetricsRegistry, PluginConfig, PluginError,
    Presence, Secret, Source, SourceConfig, SourceContext, async_trait, duration, source_config,
};
use tokio::net::TcpListener;

pub use body::BodyError;
pub use values::parse_iso;

/// Largest request body accepted (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// How long in-flight requests may take to finish once the source stops accepting.
const GRACE: Duration = Duration::from_secs(5);

/// Config of the `http_ingress` source.
#[source_config]
#[derive(Clone, Debug)]
pub struct HttpIngressConfig {
    /// Address to listen on, `IP:PORT`. Loopback by default, so a first run opens nothing to the
    /// network; the original service listened on `0.0.0.0:8000`, which a deployment sets
    /// explicitly (the container image does, through `HTTP_LISTEN`), with a `token`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// When set (and not empty), every route but `/health` requires the header
    /// `Authorization: Bearer <token>`; requests without it get 401. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Most connections served at once; further clients wait in the listen queue until one
    /// closes. Keep it well below the process's descriptor limit (`ulimit -n`), which the sinks
    /// and the timeline share: idle sockets beyond it then cost no descriptor.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections served at once from one IP address (default: a quarter of
    /// `max_connections`); a further one is closed at once, so one client cannot take every
    /// slot and keep `/health` or other clients waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_peer: Option<usize>,
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may stay idle before the next request: the connection is closed after it.
    #[serde(default = "default_header_timeout", with = "duration::required")]
    pub header_timeout: Duration,
    /// How long a client may take to send a request's whole body (it gets 408 after that), and
    /// how long an answer may wait for a client that reads none of it (the connection is closed).
    #[serde(default = "default_body_timeout", with = "duration::required")]
    pub body_timeout: Duration,
    /// Most events one `/scenario` or `/scenario_draft` request may put on the timeline (a
    /// scenario's steps; the moves a draft expands to), so one request's output is bounded.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Most events this source holds scheduled and not yet due, all requests together: a
    /// request whose future events would go beyond it gets 429 and schedules nothing. Events
    /// leave the count when the simulated clock reaches them.
    #[serde(default = "default_max_pending_events")]
    pub max_pending_events: usize,
    /// How far after the simulated clock a `/scenario` or `/scenario_draft` event may be dated
    /// (422 beyond), so no event waits in memory for longer than a run can last.
    #[serde(default = "default_max_ahead", with = "duration::required")]
    pub max_ahead: Duration,
    /// Bytes of `/state` answers held at once, all clients together (an answer stays held until
    /// its client has read it or `body_timeout` passed); beyond it `/state` answers 503 with
    /// `Retry-After`.
    #[serde(default = "default_state_memory_bytes")]
    pub state_memory_bytes: usize,
}

fn default_listen() -> String {
    "127.0.0.1:8000".into()
}

fn default_max_connections() -> usize {
    512
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}

pub(crate) fn default_max_events() -> usize {
    10_000
}

fn default_max_pending_events() -> usize {
    100_000
}

fn default_max_ahead() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_state_memory_bytes() -> usize {
    256 << 20
}

/// Longest `max_ahead` accepted: about a thousand years, the longest a run may last.
const MAX_AHEAD: Duration = Duration::from_secs(1000 * 366 * 24 * 3600);

impl Default for HttpIngressConfig {
    fn default() -> Self {
        HttpIngressConfig {
            listen: default_listen(),
            token: None,
            max_connections: default_max_connections(),
            max_connections_per_peer: None,
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            max_events: default_max_events(),
            max_pending_events: default_max_pending_events(),
            max_ahead: default_max_ahead(),
            state_memory_bytes: default_state_memory_bytes(),
        }
    }
}

impl HttpIngressConfig {
    /// The listen address, checked.
    pub fn address(&self) -> Result<SocketAddr, PluginError> {
        self.listen.trim().parse().map_err(|_| {
            PluginError::Config(format!(
                "listen: invalid address {:?}: expected IP:PORT, e.g. 0.0.0.0:8000 or 127.0.0.1:8080",
                self.listen
            ))
        })
    }
}

impl PluginConfig for HttpIngressConfig {
    const NAME: &'static str = "http_ingress";
    const DESCRIPTION: &'static str =
        "the original HTTP API: produce_*, scenario, scenario_draft, state, health, metrics";
    const ENV: &'static [EnvOverride] = &[
        EnvOverride {
            var: "HTTP_LISTEN",
            key: "listen",
            kind: EnvKind::Text,
            help: "address of the HTTP API, IP:PORT (default 127.0.0.1:8000; 0.0.0.0:8000 serves other hosts)",
        },
        EnvOverride {
            var: "HTTP_TOKEN",
            key: "token",
            kind: EnvKind::Text,
            help: "bearer token required by every HTTP route but /health (default unset: no authentication)",
        },
        EnvOverride {
            var: "HTTP_MAX_PENDING_EVENTS",
            key: "max_pending_events",
            kind: EnvKind::Integer,
            help: "most /scenario events scheduled and not yet due (default 100000; 429 beyond)",
        },
    ];

    fn listens(&self) -> Vec<SocketAddr> {
        self.address().into_iter().collect()
    }
}

impl HttpIngressConfig {
    /// What bounds the connections (`body_timeout` bounds a stalled answer too).
    fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_per_peer: self
                .max_connections_per_peer
                .unwrap_or_else(|| customersim_http_serve::default_per_peer(self.max_connections)),
            header_timeout: self.header_timeout,
            write_stall: self.body_timeout,
        }
    }

    /// The limits, checked.
    fn check_limits(&self) -> Result<(), PluginError> {
        let refuse = |why: String| Err(PluginError::Config(why));
        // First, so a bad one is named as the key the user wrote (it is also the write stall).
        customersim_http_serve::check_timeout("body_timeout", self.body_timeout)
            .map_err(PluginError::Config)?;
        self.connection_limits()
            .check()
            .map_err(PluginError::Config)?;
        for (key, value) in [
            ("max_events", self.max_events),
            ("max_pending_events", self.max_pending_events),
            ("state_memory_bytes", self.state_memory_bytes),
        ] {
            if value == 0 {
                return refuse(format!("{key}: must be at least 1"));
            }
        }
        if self.max_ahead.is_zero() || self.max_ahead > MAX_AHEAD {
            return refuse(format!(
                "max_ahead: {:?} is outside 1ms to 1000 years",
                self.max_ahead
            ));
        }
        Ok(())
    }
}

impl SourceConfig for HttpIngressConfig {
    fn check(&self, _cx: &BuildContext) -> Result<(), PluginError> {
        self.address()?;
        self.check_limits()
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        let address = self.address()?;
        self.check_limits()?;
        // Bound here, before the run starts: bound when the source first ran, a taken port could
        // go unnoticed by a short run that ended before this source had its turn.
        let listener = std::net::TcpListener::bind(address)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|error| {
                PluginError::caused_by(
                    format!(
                        "http_ingress: cannot listen on {address} (set another `listen` or HTTP_LISTEN)"
                    ),
                    error,
                )
            })?;
        let descriptors =
            descriptors::reserve("http_ingress.max_connections", self.max_connections)
                .map_err(PluginError::Config)?;
        let requests = Family::<server::Labels, Counter>::default();
        cx.metrics.register(
            "http_requests",
            "HTTP requests answered by the http_ingress source, by route and status",
            requests.clone(),
        );
        Ok(Box::new(HttpIngress {
            address,
            listener,
            connections: self.connection_limits(),
            descriptors,
            body_timeout: self.body_timeout,
            limits: parse::Limits {
                max_events: self.max_events,
            },
            backlog: backlog::Bounds {
                max_pending: self.max_pending_events,
                max_ahead: self.max_ahead,
            },
            state_memory_bytes: self.state_memory_bytes,
            token: self
                .token
                .filter(|token| !token.is_empty())
                .map(|token| token.expose().to_string()),
            presence: cx.presence(),
            fleet: cx.fleet.is_configured().then(|| cx.fleet.clone()),
            metrics: cx.metrics.clone(),
            requests,
            doors: {
                let wide = |(x, y): (u32, u32)| (i64::from(x), i64::from(y));
                draft::Doors {
                    entrance: wide(cx.store.entrance()),
                    exit: wide(cx.store.exit()),
                }
            },
        }))
    }
}

/// The running source.
struct HttpIngress {
    address: SocketAddr,
    /// Bound at build time, so a taken port fails the run before it starts.
    listener: std::net::TcpListener,
    connections: ConnectionLimits,
    /// This server's share of the process's descriptors, held while it runs.
    descriptors: Reservation,
    body_timeout: Duration,
    limits: parse::Limits,
    backlog: backlog::Bounds,
    state_memory_bytes: usize,
    token: Option<String>,
    presence: Presence,
    /// The stores of a fleet, so `/state` says which store each shopper is in.
    fleet: Option<Fleet>,
    metrics: MetricsRegistry,
    requests: Family<server::Labels, Counter>,
    /// Where ENTER and EXIT steps of drafts without a location happen.
    doors: draft::Doors,
}

#[async_trait]
impl Source for HttpIngress {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError> {
        let listener = TcpListener::from_std(self.listener).map_err(|error| {
            PluginError::caused_by(
                format!("http_ingress: cannot listen on {}", self.address),
                error,
            )
        })?;
        let local = listener.local_addr().unwrap_or(self.address);
        tracing::info!(
            "http_ingress: listening on http://{local}{}",
            if self.token.is_some() {
                " (bearer token required)"
            } else {
                ""
            }
        );
        customersim_plugin_api::auth::warn_if_exposed("http_ingress", local, self.token.is_some());
        let state = Arc::new(server::AppState {
            clock: cx.clock.clone(),
            schedule: cx.schedule.clone(),
            publisher: cx.publisher.clone(),
            presence: self.presence,
            fleet: self.fleet,
            metrics: self.metrics,
            requests: self.requests,
            token: self.token,
            doors: self.doors,
            body_timeout: self.body_timeout,
            limits: self.limits,
            backlog: backlog::Backlog::new(self.backlog),
            state_budget: state::Budget::new(self.state_memory_bytes),
        });
        let _descriptors = self.descriptors;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        let server = customersim_http_serve::serve(
            "http_ingress",
            listener,
            server::router(state),
            self.connections,
            stopped,
        );
        tokio::pin!(server);
        let doors_close = async {
            match cx.doors_close_ms {
                Some(at) => cx.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut server => {
                return result.map_err(|error| {
                    PluginError::Fatal(format!("http_ingress: the server on {local} failed: {error}"))
                });
            }
            () = cx.shutdown.wait() => {}
            () = doors_close => {
                tracing::info!("http_ingress: the doors closed; no longer accepting requests");
            }
        }
        let _ = stop.send(());
        if tokio::time::timeout(GRACE, server).await.is_err() {
            tracing::warn!("http_ingress: requests still in flight after {GRACE:?}; dropping them");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys_and_bad_addresses() {
        let error = serde_yaml::from_str::<HttpIngressConfig>("port: 80").unwrap_err();
        assert!(error.to_string().contains("port"), "{error}");
        let config = HttpIngressConfig {
            listen: "localhost".into(),
            ..HttpIngressConfig::default()
        };
        match config.address() {
            Err(PluginError::Config(why)) => assert!(why.starts_with("listen:"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            HttpIngressConfig::default().address().unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
    }

    #[test]
    fn limits_are_read_and_checked() {
        let config: HttpIngressConfig = serde_yaml::from_str(
            "max_connections: 3\nheader_timeout: 2s\nbody_timeout: 500ms\nmax_events: 9",
        )
        .unwrap();
        assert_eq!(config.max_connections, 3);
        assert_eq!(config.header_timeout, Duration::from_secs(2));
        assert_eq!(config.body_timeout, Duration::from_millis(500));
        assert_eq!(config.max_events, 9);
        assert!(config.check_limits().is_ok());
        assert!(HttpIngressConfig::default().check_limits().is_ok());
        for (yaml, key) in [
            ("max_connections: 0", "max_connections:"),
            (
                "max_connections: 4\nmax_connections_per_peer: 5",
                "max_connections_per_peer:",
            ),
            ("max_events: 0", "max_events:"),
            ("max_pending_events: 0", "max_pending_events:"),
            ("state_memory_bytes: 0", "state_memory_bytes:"),
            ("max_ahead: 0s", "max_ahead:"),
            ("header_timeout: 0s", "header_timeout:"),
            ("body_timeout: 400d", "body_timeout:"),
        ] {
            let config: HttpIngressConfig = serde_yaml::from_str(yaml).unwrap();
            match config.check_limits() {
                Err(PluginError::Config(why)) => assert!(why.starts_with(key), "{why}"),
                other => panic!("{yaml}: {other:?}"),
            }
        }
    }
}
