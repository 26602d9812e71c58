//! The `live_view` sink: a web page that shows the run as it happens.
//!
//! ```yaml
//! sinks:
//!   - type: stdout           # or mqtt, amqp: the view goes beside the real sinks
//!   - type: live_view
//!     listen: 127.0.0.1:8080 # LIVE_VIEW_LISTEN
//!     token: null            # LIVE_VIEW_TOKEN: when set, the page and its data need it
//! ```
//!
//! `http://127.0.0.1:8080/` draws the pipeline's store layout (zones with their names, entrance,
//! exit, checkouts; the plain grid too) with every shopper inside as a moving mark, the simulated
//! clock, the speed, the lag of publishing behind the clock, shoppers inside and events per second
//! by topic over time, and the shoppers in each department. The page, its script and its styles
//! are embedded in the binary: it works offline.
//!
//! # Never slowing the pipeline, never losing events
//! The sink sees every event (it is not lossy): [`Sink::publish`] only applies the batch to an
//! in-memory model of the floor under a lock and returns; it never waits for a page. A frame task
//! turns the model into a self-contained frame at most 20 times a second (only while a page is
//! open), and each page's stream sends the newest frame it has not seen, so a page that reads
//! slowly or not at all skips frames and holds nothing else up.
//!
//! # Routes
//! - `GET /`: the page (`/app.js`, `/style.css` its assets).
//! - `GET /events`: Server-Sent Events: `hello` (layout, topics, speed, the last ten minutes of
//!   history), then `frame`s (module `frame` documents them).
//! - `GET /state`: `{"clock_ms": …, "inside": 2, "shoppers": [{"id": "7", "x": 5, "y": 45}, …]}`,
//!   the view's model, ordered by id.
//! - `GET /health`: `OK`.
//!
//! With a `token`, `/`, `/events` and `/state` need `Authorization: Bearer <token>` or
//! `?token=<token>` in the URL (open the page as `/?token=…`; its script passes the token on);
//! `/health` and the page's script and styles (no data of the run) are open.
//!
//! # Layout
//! - this file: the config, its environment variables, and the sink (bind, serve, apply batches).
//! - `floor`: who is where (the model the sink updates).
//! - `frame`: the hello, frames, history and `/state` built from the model.
//! - `server`: the axum routes, the event stream and the token check.

mod floor;
mod frame;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::{
    BuildContext, EnvKind, EnvOverride, Event, PluginConfig, PluginError, Secret, Sink, SinkConfig,
    SinkContext, StoreLayout, Topics, async_trait, sink_config,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::frame::View;

/// How long open pages may keep the server from stopping at the end of the run.
const GRACE: Duration = Duration::from_secs(2);

/// Config of the `live_view` sink.
#[sink_config]
#[derive(Clone, Debug)]
pub struct LiveViewConfig {
    /// Address the page is served on, `IP:PORT`. The default serves this machine only; use
    /// `0.0.0.0:8080` (with a `token`) to show it to others.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// When set (and not empty), the page, `/events` and `/state` need `Authorization: Bearer
    /// <token>` or `?token=<token>` in the URL; requests without it get 401. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

impl Default for LiveViewConfig {
    fn default() -> Self {
        LiveViewConfig {
            listen: default_listen(),
            token: None,
        }
    }
}

impl LiveViewConfig {
    /// The listen address, checked.
    pub fn address(&self) -> Result<SocketAddr, PluginError> {
        self.listen.trim().parse().map_err(|_| {
            PluginError::Config(format!(
                "listen: invalid address {:?}: expected IP:PORT, e.g. 127.0.0.1:8080",
                self.listen
            ))
        })
    }
}

impl PluginConfig for LiveViewConfig {
    const NAME: &'static str = "live_view";
    const DESCRIPTION: &'static str =
        "a live web page of the store: shoppers moving, clock, speed, lag, occupancy, events/s";
    const ENV: &'static [EnvOverride] = &[
        EnvOverride {
            var: "LIVE_VIEW_LISTEN",
            key: "listen",
            kind: EnvKind::Text,
            help: "address of the live view page, IP:PORT (default 127.0.0.1:8080)",
        },
        EnvOverride {
            var: "LIVE_VIEW_TOKEN",
            key: "token",
            kind: EnvKind::Text,
            help: "token the live view page requires (default unset: no authentication)",
        },
    ];

    fn listens(&self) -> Vec<SocketAddr> {
        self.address().into_iter().collect()
    }
}

impl SinkConfig for LiveViewConfig {
    fn check(&self, _cx: &BuildContext) -> Result<(), PluginError> {
        self.address().map(|_| ())
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        Ok(Box::new(LiveView {
            address: self.address()?,
            token: self
                .token
                .filter(|token| !token.is_empty())
                .map(|token| token.expose().to_string()),
            layout: cx.store.clone(),
            topics: cx.topics.clone(),
            running: None,
        }))
    }
}

/// The sink: configured at build, serving from start to close.
struct LiveView {
    address: SocketAddr,
    token: Option<String>,
    layout: StoreLayout,
    topics: Topics,
    running: Option<Running>,
}

/// What runs between start and close.
struct Running {
    view: Arc<View>,
    frames: JoinHandle<()>,
    server: JoinHandle<std::io::Result<()>>,
    stop_server: oneshot::Sender<()>,
}

#[async_trait]
impl Sink for LiveView {
    async fn start(&mut self, cx: &SinkContext) -> Result<(), PluginError> {
        let listener = TcpListener::bind(self.address).await.map_err(|error| {
            PluginError::caused_by(
                format!("live_view: cannot listen on {}", self.address),
                error,
            )
        })?;
        let local = listener.local_addr().unwrap_or(self.address);
        tracing::info!(
            "live_view: open http://{local}/ in a browser{}",
            if self.token.is_some() {
                " (add ?token=…)"
            } else {
                ""
            }
        );
        let (view, sender) = View::new(self.layout.clone(), &self.topics, cx.clock.clone());
        let frames = tokio::spawn(frame::run_frames(view.clone(), sender));
        let (stop_server, stopped) = oneshot::channel();
        let state = Arc::new(server::AppState {
            view: view.clone(),
            token: self.token.clone(),
        });
        let server = tokio::spawn(server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        self.running = Some(Running {
            view,
            frames,
            server,
            stop_server,
        });
        Ok(())
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        if let Some(running) = &self.running {
            let now_ms = running.view.clock.now_ms();
            running.view.floor().apply(batch, now_ms);
        }
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), PluginError> {
        let Some(running) = self.running else {
            return Ok(());
        };
        // Without frames the pages' streams end, so the server can stop.
        running.frames.abort();
        let _ = running.stop_server.send(());
        let mut server = running.server;
        match tokio::time::timeout(GRACE, &mut server).await {
            Ok(Ok(Err(error))) => tracing::warn!("live_view: the server failed: {error}"),
            Ok(_) => {}
            Err(_) => server.abort(),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let config: LiveViewConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(config.address().unwrap().to_string(), "127.0.0.1:8080");
        assert!(config.token.is_none());
        let error = serde_yaml::from_str::<LiveViewConfig>("port: 80").unwrap_err();
        assert!(error.to_string().contains("port"), "{error}");
    }

    #[test]
    fn a_bad_address_names_the_key() {
        let config: LiveViewConfig = serde_yaml::from_str("listen: localhost").unwrap();
        let error = config.address().unwrap_err().to_string();
        assert!(
            error.contains("listen") && error.contains("localhost"),
            "{error}"
        );
    }

    #[test]
    fn the_token_is_masked_when_printed() {
        let config: LiveViewConfig = serde_yaml::from_str("token: s3cret").unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(!serde_yaml::to_string(&config).unwrap().contains("s3cret"));
    }
}
