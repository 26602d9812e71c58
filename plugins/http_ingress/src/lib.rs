//! The `http_ingress` source: the original service's HTTP API, on axum (DESIGN.md §5).
//!
//! ```yaml
//! sources:
//!   - type: http_ingress
//!     listen: 0.0.0.0:8000   # HTTP_LISTEN
//!     token: null            # HTTP_TOKEN: when set, every route but /health needs
//!                            # "Authorization: Bearer <token>"
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
//!   moves in place over 30 s. Answers the expanded scenario (a valid `/scenario` body).
//! - `GET /state` (who is inside, where, since when), `GET /health` (`OK`), `GET /metrics`
//!   (Prometheus text of the whole process, with `http_requests_total` by route and status).
//!
//! Bad input is refused with a 4xx whose JSON `detail` names the field (`path[3].timestamp: …`):
//! 400 for malformed JSON, 422 for a missing, mistyped or unacceptable field (unknown step type,
//! timestamp without a zone, duplicate steps, empty path with `recalculate_time`), 413 for a body
//! over 1 MiB, 401 for a missing or wrong token. Nothing of a refused request is scheduled or
//! published, and publishing goes on.
//!
//! The source stops accepting when the run shuts down or when the doors close
//! (`simulation.duration`); it does not pace the clock.
//!
//! # Layout
//! - this file: the config, its environment variables, and the running source (bind, serve,
//!   graceful stop).
//! - `server`: the axum router, the handlers, authentication and request metrics.
//! - `body`: request bodies into events, with the checks and error messages.

mod body;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::prometheus_client::metrics::counter::Counter;
use customersim_plugin_api::prometheus_client::metrics::family::Family;
use customersim_plugin_api::serde::{Deserialize, Serialize};
use customersim_plugin_api::tokio::net::TcpListener;
use customersim_plugin_api::{
    BuildContext, EnvKind, EnvOverride, MetricsRegistry, PluginError, Presence, Shutdown, Source,
    SourceConfig, SourceContext, async_trait, register_source, tokio, tracing,
};

pub use body::{BodyError, parse_iso};

/// Largest request body accepted (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// How long in-flight requests may take to finish once the source stops accepting.
const GRACE: Duration = Duration::from_secs(5);

/// Config of the `http_ingress` source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, crate = "customersim_plugin_api::serde")]
pub struct HttpIngressConfig {
    /// Address to listen on, `IP:PORT`. The original service listened on `0.0.0.0:8000`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// When set (and not empty), every route but `/health` requires the header
    /// `Authorization: Bearer <token>`; requests without it get 401. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn default_listen() -> String {
    "0.0.0.0:8000".into()
}

impl Default for HttpIngressConfig {
    fn default() -> Self {
        HttpIngressConfig {
            listen: default_listen(),
            token: None,
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

impl SourceConfig for HttpIngressConfig {
    const NAME: &'static str = "http_ingress";
    const DESCRIPTION: &'static str =
        "the original HTTP API: produce_*, scenario, scenario_draft, state, health, metrics";
    const ENV: &'static [EnvOverride] = &[
        EnvOverride {
            var: "HTTP_LISTEN",
            key: "listen",
            kind: EnvKind::Text,
            help: "address of the HTTP API, IP:PORT (default 0.0.0.0:8000)",
        },
        EnvOverride {
            var: "HTTP_TOKEN",
            key: "token",
            kind: EnvKind::Secret,
            help: "bearer token required by every HTTP route but /health (default unset: no authentication)",
        },
    ];

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        let address = self.address()?;
        let requests = Family::<server::Labels, Counter>::default();
        cx.metrics.register(
            "http_requests",
            "HTTP requests answered by the http_ingress source, by route and status",
            requests.clone(),
        );
        Ok(Box::new(HttpIngress {
            address,
            token: self.token.filter(|token| !token.is_empty()),
            presence: cx.presence(),
            metrics: cx.metrics.clone(),
            requests,
            doors: {
                let wide = |(x, y): (u32, u32)| (i64::from(x), i64::from(y));
                body::Doors {
                    entrance: wide(cx.store.entrance()),
                    exit: wide(cx.store.exit()),
                }
            },
        }))
    }
}

register_source!(HttpIngressConfig);

/// The running source.
struct HttpIngress {
    address: SocketAddr,
    token: Option<String>,
    presence: Presence,
    metrics: MetricsRegistry,
    requests: Family<server::Labels, Counter>,
    /// Where ENTER and EXIT steps of drafts without a location happen.
    doors: body::Doors,
}

#[async_trait]
impl Source for HttpIngress {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError> {
        let listener = TcpListener::bind(self.address).await.map_err(|error| {
            PluginError::Fatal(format!(
                "http_ingress: cannot listen on {}: {error}",
                self.address
            ))
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
        let state = Arc::new(server::AppState {
            clock: cx.clock.clone(),
            timeline: cx.timeline.clone(),
            publisher: cx.publisher.clone(),
            presence: self.presence,
            metrics: self.metrics,
            requests: self.requests,
            token: self.token,
            doors: self.doors,
        });
        let stop = Shutdown::new();
        let stopped = {
            let stop = stop.clone();
            async move { stop.wait().await }
        };
        let server = server::serve(listener, state, stopped);
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
        stop.trigger();
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
        let error = customersim_plugin_api::serde_yaml::from_str::<HttpIngressConfig>("port: 80")
            .unwrap_err();
        assert!(error.to_string().contains("port"), "{error}");
        let config = HttpIngressConfig {
            listen: "localhost".into(),
            token: None,
        };
        match config.address() {
            Err(PluginError::Config(why)) => assert!(why.starts_with("listen:"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            HttpIngressConfig::default().address().unwrap(),
            "0.0.0.0:8000".parse().unwrap()
        );
    }
}
