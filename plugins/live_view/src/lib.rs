//! The `live_view` sink: a web page that shows the run as it happens.
//!
//! ```yaml
//! sinks:
//!   - type: stdout           # or mqtt, amqp: the view goes beside the real sinks
//!   - type: live_view
//!     listen: 127.0.0.1:8080 # LIVE_VIEW_LISTEN
//!     token: null            # LIVE_VIEW_TOKEN: when set, the page and its data need it
//!     max_connections: 128   # served at once (pages, /state, assets); more wait in the listen queue
//!     max_connections_per_peer: 32  # from one IP address (default: a quarter of max_connections)
//!     header_timeout: 10s    # to send a request's headers; idle keep-alive connections close after it
//!     write_timeout: 30s     # an answer or page stream not read for this long is closed
//!     max_pages: 32          # event streams open at once; one more gets 503
//!     max_bytes_per_second: 8000000  # sent to all pages together
//!     state_limit: 1000      # shoppers one /state answer lists
//! ```
//!
//! `http://127.0.0.1:8080/` draws the pipeline's store layout (zones with their names, entrance,
//! exit, checkouts; the plain grid too) with every shopper inside as a moving mark, the simulated
//! clock, the speed, the lag of publishing behind the clock, shoppers inside and events per second
//! by topic over time, and the shoppers in each department. When the pipeline checks the system
//! under test (`expect:`, `delivery_check:`, `thresholds:`), a *Checks* card shows each rule's
//! counts and reply latency, the delivery check, subscription gaps and each threshold's ✓/✗ as
//! it stands. The page, its script and its styles are embedded in the binary: it works offline.
//!
//! # Never slowing the pipeline, never losing events
//! The sink sees every event (it is not lossy): [`Sink::publish`] only applies the batch to an
//! in-memory model of the floor under a lock and returns; it never waits for a page. A frame task
//! turns the model into a self-contained frame at most 20 times a second (only while a page is
//! open), and each page's stream sends the newest frame it has not seen, so a page that reads
//! slowly or not at all skips frames and holds nothing else up.
//!
//! # Bounded, whoever connects
//! Frames are built once and shared by every page; a page holds at most one event being
//! written, at most `max_pages` pages are open, and all of them together are sent at most
//! `max_bytes_per_second` (module `pages`). A `/state` answer lists at most `state_limit`
//! shoppers, and all answers being sent share a memory budget (module `state`).
//!
//! # Routes
//! - `GET /`: the page (`/app.js`, `/style.css` its assets).
//! - `GET /events`: Server-Sent Events: `hello` (layout, topics, speed, the last ten minutes of
//!   history), then `frame`s (module `frame` documents them) and, when the pipeline has checks,
//!   `checks` whenever they changed, read at most once a second (module `checks`).
//! - `GET /state`: `{"clock_ms": …, "inside": 2, "truncated": false, "shoppers": [{"id": "7",
//!   "x": 5, "y": 45}, …], "checks": {…}}`, the view's model, ordered by id: the first
//!   `state_limit` shoppers; `checks` (as in the `checks` event) only when the pipeline has some.
//! - `GET /health`: `OK`.
//!
//! With a `token`, `/`, `/events` and `/state` need `Authorization: Bearer <token>` (the scheme
//! in any case, as `http_ingress` reads it) or
//! `?token=<token>` in the URL (open the page as `/?token=…`; its script passes the token on);
//! `/health` and the page's script and styles (no data of the run) are open.
//!
//! # Connections
//! The accept loop is `customersim-http-serve`'s, shared with `http_ingress`: at most
//! `max_connections` connections (further clients wait in the kernel's listen queue), at most
//! `max_connections_per_peer` from one IP address (a further one is closed at once), each
//! closed when its headers take longer than `header_timeout` (also the longest a kept-alive
//! connection may idle) or when its client reads nothing of an answer for `write_timeout`. The
//! cap is reserved from the process's descriptor limit at build, beside `http_ingress`'s and
//! descriptors kept for the sinks' own connections: a config whose caps do not fit is refused.
//!
//! # Layout
//! - this file: the config, its environment variables, and the sink (bind, serve, apply batches).
//! - `floor`: who is where (the model the sink updates).
//! - `frame`: the hello, frames, history and `/state` built from the model.
//! - `checks`: the run's checks, read once a second, as the page and `/state` get them.
//! - `pages`: the pages' event streams, their cap and shared bandwidth.
//! - `state`: `/state` answers within their memory budget.
//! - `server`: how a request is decided ([`decide`]: route, token) and answered.

mod checks;
mod floor;
mod frame;
mod pages;
mod server;
mod state;

pub use crate::pages::PAGE_BYTES_PER_S;
pub use crate::server::{Decision, Route, decide};
pub use crate::state::STATE_BUDGET_BYTES;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use customersim_http_serve::ConnectionLimits;
use customersim_http_serve::descriptors::{self, Reservation};
use customersim_plugin_api::{
    BuildContext, EnvKind, EnvOverride, Event, LoadPlan, PluginConfig, PluginError, Secret, Sink,
    SinkConfig, SinkContext, StoreLayout, Topics, async_trait, duration, sink_config,
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
    /// Most connections served at once (each open page holds one for its stream); further
    /// clients wait in the listen queue until one closes. Reserved from the process's
    /// descriptor limit at start, beside the other HTTP servers' and the sinks' own.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections served at once from one IP address (default: a quarter of
    /// `max_connections`); a further one is closed at once, so one client cannot take them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_peer: Option<usize>,
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may stay idle before the next request: the connection is closed after it.
    #[serde(default = "default_header_timeout", with = "duration::required")]
    pub header_timeout: Duration,
    /// How long an answer (a page's stream too) may wait for a client that reads none of it:
    /// the connection is closed after it.
    #[serde(default = "default_write_timeout", with = "duration::required")]
    pub write_timeout: Duration,
    /// Most pages (event streams, `/events`) open at once; one more gets 503 until a page
    /// closes. Each open page holds a connection and at most one frame being written.
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Bytes a second sent to all pages together: with many pages open each gets frames less
    /// often, so pages never cost the run more than this. A page alone gets at most 1.5 MB/s.
    #[serde(default = "default_max_bytes_per_second")]
    pub max_bytes_per_second: u64,
    /// Most shoppers one `GET /state` answer lists (the first by id); the answer says
    /// `"truncated": true` when more are inside.
    #[serde(default = "default_state_limit")]
    pub state_limit: usize,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_max_connections() -> usize {
    128
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_write_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_pages() -> usize {
    32
}

fn default_max_bytes_per_second() -> u64 {
    8_000_000
}

fn default_state_limit() -> usize {
    1_000
}

/// Highest `max_pages`: each page holds a connection and a descriptor.
const MAX_PAGES: usize = 10_000;

/// Highest `state_limit`: an answer must fit the memory budget of all answers.
const MAX_STATE_LIMIT: usize = 100_000;

/// Lowest `max_bytes_per_second`: a frame of an empty store must go out now and then.
const MIN_BYTES_PER_SECOND: u64 = 10_000;

impl Default for LiveViewConfig {
    fn default() -> Self {
        LiveViewConfig {
            listen: default_listen(),
            token: None,
            max_connections: default_max_connections(),
            max_connections_per_peer: None,
            header_timeout: default_header_timeout(),
            write_timeout: default_write_timeout(),
            max_pages: default_max_pages(),
            max_bytes_per_second: default_max_bytes_per_second(),
            state_limit: default_state_limit(),
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

    /// The bounds, checked.
    fn check_limits(&self) -> Result<(), PluginError> {
        if !(1..=MAX_PAGES).contains(&self.max_pages) {
            return Err(PluginError::Config(format!(
                "max_pages: {} is out of range: 1 to {MAX_PAGES}",
                self.max_pages
            )));
        }
        if self.max_bytes_per_second < MIN_BYTES_PER_SECOND {
            return Err(PluginError::Config(format!(
                "max_bytes_per_second: {} is below the lowest, {MIN_BYTES_PER_SECOND}",
                self.max_bytes_per_second
            )));
        }
        if !(1..=MAX_STATE_LIMIT).contains(&self.state_limit) {
            return Err(PluginError::Config(format!(
                "state_limit: {} is out of range: 1 to {MAX_STATE_LIMIT}",
                self.state_limit
            )));
        }
        Ok(())
    }
}

impl LiveViewConfig {
    /// What bounds the connections, checked.
    pub fn connection_limits(&self) -> Result<ConnectionLimits, PluginError> {
        let limits = ConnectionLimits {
            max_connections: self.max_connections,
            max_per_peer: self
                .max_connections_per_peer
                .unwrap_or_else(|| customersim_http_serve::default_per_peer(self.max_connections)),
            header_timeout: self.header_timeout,
            write_stall: self.write_timeout,
        };
        limits
            .check()
            .map_err(|why| PluginError::Config(why.replace("write_stall", "write_timeout")))?;
        Ok(limits)
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
        self.address()?;
        self.check_limits()?;
        self.connection_limits().map(|_| ())
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        self.check_limits()?;
        let connections = self.connection_limits()?;
        let descriptors = descriptors::reserve("live_view.max_connections", self.max_connections)
            .map_err(PluginError::Config)?;
        Ok(Box::new(LiveView {
            address: self.address()?,
            connections,
            _descriptors: descriptors,
            max_pages: self.max_pages,
            max_bytes_per_second: self.max_bytes_per_second,
            state_limit: self.state_limit,
            token: self
                .token
                .filter(|token| !token.is_empty())
                .map(|token| token.expose().to_string()),
            layout: cx.store.clone(),
            topics: cx.topics.clone(),
            load: cx.load().map(|plan| {
                // This process publishes for its own stores only (a shard of the fleet).
                let fleet = &cx.fleet;
                plan.scaled(fleet.local_stores().count() as f64 / fleet.len().max(1) as f64)
            }),
            running: None,
        }))
    }
}

/// The sink: configured at build, serving from start to close.
struct LiveView {
    address: SocketAddr,
    connections: ConnectionLimits,
    /// This server's share of the process's descriptors, held until the sink is dropped.
    _descriptors: Reservation,
    max_pages: usize,
    max_bytes_per_second: u64,
    state_limit: usize,
    token: Option<String>,
    layout: StoreLayout,
    topics: Topics,
    /// The load stages (this process's share), when the pipeline has any.
    load: Option<LoadPlan>,
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
        customersim_plugin_api::auth::warn_if_exposed("live_view", local, self.token.is_some());
        let (view, sender) = View::new(
            self.layout.clone(),
            &self.topics,
            cx.clock.clone(),
            self.load.clone(),
            cx.checks.clone(),
        );
        let frames = tokio::spawn(frame::run_frames(view.clone(), sender));
        let (stop_server, stopped) = oneshot::channel();
        let state = Arc::new(server::AppState {
            view: view.clone(),
            token: self.token.clone(),
            pages: pages::Pages::new(self.max_pages, self.max_bytes_per_second),
            answers: state::StateAnswers::new(self.state_limit),
        });
        let server = tokio::spawn(server::serve(listener, state, self.connections, async {
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
        assert_eq!(config.max_pages, 32);
        assert_eq!(config.max_bytes_per_second, 8_000_000);
        assert_eq!(config.state_limit, 1_000);
        config.check_limits().unwrap();
        let error = serde_yaml::from_str::<LiveViewConfig>("port: 80").unwrap_err();
        assert!(error.to_string().contains("port"), "{error}");
    }

    #[test]
    fn connection_limits_have_defaults_and_are_checked() {
        let config: LiveViewConfig = serde_yaml::from_str("{}").unwrap();
        let limits = config.connection_limits().unwrap();
        assert_eq!((limits.max_connections, limits.max_per_peer), (128, 32));
        assert_eq!(limits.header_timeout, Duration::from_secs(10));
        assert_eq!(limits.write_stall, Duration::from_secs(30));
        for (yaml, key) in [
            ("max_connections: 0", "max_connections:"),
            (
                "max_connections: 4\nmax_connections_per_peer: 5",
                "max_connections_per_peer:",
            ),
            ("header_timeout: 0s", "header_timeout:"),
            ("write_timeout: 2d", "write_timeout:"),
        ] {
            let config: LiveViewConfig = serde_yaml::from_str(yaml).unwrap();
            match config.connection_limits() {
                Err(PluginError::Config(why)) => assert!(why.starts_with(key), "{why}"),
                other => panic!("{yaml}: {other:?}"),
            }
        }
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
    fn bounds_out_of_range_name_their_key() {
        for (yaml, key) in [
            ("max_pages: 0", "max_pages"),
            ("max_pages: 10001", "max_pages"),
            ("max_bytes_per_second: 10", "max_bytes_per_second"),
            ("state_limit: 0", "state_limit"),
            ("state_limit: 100001", "state_limit"),
        ] {
            let config: LiveViewConfig = serde_yaml::from_str(yaml).unwrap();
            let error = config.check_limits().unwrap_err().to_string();
            assert!(error.contains(key), "{yaml}: {error}");
        }
    }

    #[test]
    fn the_token_is_masked_when_printed() {
        let config: LiveViewConfig = serde_yaml::from_str("token: s3cret").unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(!serde_yaml::to_string(&config).unwrap().contains("s3cret"));
    }
}
