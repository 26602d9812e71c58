//! The accept loop (connection cap, header and idle timeouts) and the axum router: handlers,
//! bearer-token check, body deadline and request counting.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use customersim_plugin_api::auth::{bearer_token, constant_time_eq};
use customersim_plugin_api::prometheus_client::metrics::counter::Counter;
use customersim_plugin_api::prometheus_client::metrics::family::Family;
use customersim_plugin_api::{Clock, Fleet, MetricsRegistry, Presence, Publisher, Schedule};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::MAX_BODY_BYTES;
use crate::body::{self, BodyError, Limits, ProduceKind};
use crate::draft::{self, TimedStep};
use crate::stall::WriteDeadline;
use crate::values::{excerpt, format_ms};

/// Labels of `http_requests_total`: the route (or `other`) and the status code.
pub type Labels = ([(&'static str, &'static str); 1], [(&'static str, u16); 1]);

/// What the handlers share.
pub struct AppState {
    pub clock: Clock,
    pub schedule: Schedule,
    pub publisher: Publisher,
    pub presence: Presence,
    /// The stores of a fleet (`None`: one store), for `/state`.
    pub fleet: Option<Fleet>,
    pub metrics: MetricsRegistry,
    pub requests: Family<Labels, Counter>,
    pub token: Option<String>,
    pub doors: draft::Doors,
    /// How long a client may take to send a body.
    pub body_timeout: Duration,
    /// What one request may ask for.
    pub limits: Limits,
}

type Shared = State<Arc<AppState>>;

/// What bounds the connections: how many at once, and how long one may wait for headers.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections served at once; the rest wait in the kernel's listen queue.
    pub max_connections: usize,
    /// Time to send a request's headers, and to start the next request on a kept-alive
    /// connection; the connection is closed after it.
    pub header_timeout: Duration,
    /// How long an answer may wait for a client that reads none of it; closed after it.
    pub write_stall: Duration,
}

/// The routes the source answers (others are counted as `other`).
const ROUTES: &[&str] = &[
    "/produce_entry",
    "/produce_move",
    "/produce_exit",
    "/scenario",
    "/scenario_draft",
    "/state",
    "/health",
    "/metrics",
];

/// Serves `state`'s API on `listener` until `stopped` resolves, then finishes in-flight requests.
///
/// A connection is accepted only while fewer than `limits.max_connections` are open, so sockets
/// beyond the cap wait in the listen queue instead of taking descriptors the process needs (for
/// its own next connection, its sinks, its timeline). Each open connection is closed when its
/// request headers take longer than `limits.header_timeout`, which also bounds how long an idle
/// keep-alive connection holds its place; bodies have their own deadline ([`Body`]), and
/// answers nobody reads theirs (`limits.write_stall`, [`WriteDeadline`]).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    limits: ConnectionLimits,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connections = GracefulShutdown::new();
    let mut warned_about_accept = false;
    tokio::pin!(stopped);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut stopped => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    if !warned_about_accept {
                        warned_about_accept = true;
                        tracing::warn!(
                            "http_ingress: cannot accept connections: {error} (with too many open files, raise the descriptor limit or lower max_connections); retrying"
                        );
                    }
                    // Out of descriptors or memory: give closing connections a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(
            TokioIo::new(WriteDeadline::new(stream, limits.write_stall)),
            TowerToHyperService::new(app.clone()),
        );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!("http_ingress: connection closed: {error}");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// Errors of one incoming connection (it was reset before being accepted), not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// The API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/produce_entry", post(produce_entry))
        .route("/produce_move", post(produce_move))
        .route("/produce_exit", post(produce_exit))
        .route("/scenario", post(scenario))
        .route("/scenario_draft", post(scenario_draft))
        .route("/state", get(current_state))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// A refused request: its status and a message naming what was wrong, answered as
/// `{"detail": "…"}` (FastAPI's shape).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

#[derive(Serialize)]
struct Detail<'a> {
    detail: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Detail {
            detail: &self.detail,
        })
        .unwrap_or_default();
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
        match error {
            BodyError::Malformed(why) | BodyError::Invalid(why) => ApiError::new(status, why),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!("body: larger than the limit of 1 MiB ({MAX_BODY_BYTES} bytes)"),
            )
        } else {
            ApiError::new(status, format!("body: {}", rejection.body_text()))
        }
    }
}

/// A request body, read whole within the size limit (413 beyond it) and within the source's
/// `body_timeout` (408 after it), so a client sending slowly cannot hold a connection forever.
struct Body(Bytes);

impl FromRequest<Arc<AppState>> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Body, ApiError> {
        match tokio::time::timeout(state.body_timeout, Bytes::from_request(request, state)).await {
            Ok(read) => Ok(Body(read?)),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "body: not received within {:?} (the source's body_timeout)",
                    state.body_timeout
                ),
            )),
        }
    }
}

fn accepted() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "True",
    )
        .into_response()
}

/// Counts every answer and checks the bearer token on every route but `/health`.
async fn guard(State(state): Shared, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let route = ROUTES
        .iter()
        .copied()
        .find(|route| *route == path)
        .unwrap_or("other");
    let response = match &state.token {
        Some(token) if route != "/health" && !authorized(&request, token) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authorization: missing or wrong bearer token (send \"Authorization: Bearer <HTTP_TOKEN>\")",
        )
        .into_response_with_challenge(),
        _ => next.run(request).await,
    };
    if response.status().is_client_error() {
        tracing::debug!("http_ingress: {route}: answered {}", response.status());
    }
    state
        .requests
        .get_or_create(&([("route", route)], [("status", response.status().as_u16())]))
        .inc();
    response
}

impl ApiError {
    fn into_response_with_challenge(self) -> Response {
        let mut response = self.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

fn authorized(request: &Request, token: &str) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

async fn produce_entry(State(state): Shared, Body(body): Body) -> Result<Response, ApiError> {
    produce(&state, &body, ProduceKind::Enter).await
}

async fn produce_move(State(state): Shared, Body(body): Body) -> Result<Response, ApiError> {
    produce(&state, &body, ProduceKind::Move).await
}

async fn produce_exit(State(state): Shared, Body(body): Body) -> Result<Response, ApiError> {
    produce(&state, &body, ProduceKind::Exit).await
}

async fn produce(state: &AppState, body: &[u8], kind: ProduceKind) -> Result<Response, ApiError> {
    let event = body::produce(body, kind)?;
    state
        .publisher
        .publish(vec![event])
        .await
        .map_err(|error| {
            tracing::warn!("http_ingress: could not publish: {error}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("publishing failed: {error}"),
            )
        })?;
    Ok(accepted())
}

/// Query of `/scenario`.
#[derive(Deserialize)]
struct ScenarioQuery {
    recalculate_time: Option<String>,
}

fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

async fn scenario(
    State(state): Shared,
    query: Result<Query<ScenarioQuery>, QueryRejection>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("query: {}", rejection.body_text()),
        )
    })?;
    let recalculate = match query.recalculate_time.as_deref() {
        None => false,
        Some(text) => parse_flag(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "recalculate_time: expected true or false, got {}",
                    excerpt(text)
                ),
            )
        })?,
    };
    let now = recalculate.then(|| state.clock.now_ms());
    let events = body::scenario(&body, now, &state.limits)?;
    schedule(&state, events).await?;
    Ok(accepted())
}

async fn schedule(
    state: &AppState,
    events: Vec<customersim_plugin_api::Event>,
) -> Result<(), ApiError> {
    if events.is_empty() {
        return Ok(());
    }
    state.schedule.schedule(events).await.map_err(|error| {
        tracing::warn!("http_ingress: could not schedule a scenario: {error}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("timeline: {error}"),
        )
    })
}

/// The answer of `/scenario_draft`: the expanded scenario.
#[derive(Serialize)]
struct ExpandedScenario<'a> {
    customer: ExpandedCustomer<'a>,
    path: &'a [TimedStep],
}

#[derive(Serialize)]
struct ExpandedCustomer<'a> {
    customer_id: &'a str,
}

async fn scenario_draft(State(state): Shared, Body(body): Body) -> Result<Response, ApiError> {
    let expanded = draft::draft(&body, state.clock.now_ms(), state.doors, &state.limits)?;
    let answer = serde_json::to_vec(&ExpandedScenario {
        customer: ExpandedCustomer {
            customer_id: &expanded.customer,
        },
        path: &expanded.steps,
    })
    .unwrap_or_default();
    schedule(&state, expanded.events).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        answer,
    )
        .into_response())
}

/// One shopper inside, as `/state` lists them.
#[derive(Serialize)]
struct Inside {
    id: String,
    x: i64,
    y: i64,
    /// When their last event happened (RFC 3339, UTC).
    since: String,
    /// The store they are in, with a fleet of stores (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
}

async fn current_state(State(state): Shared) -> Response {
    let inside: Vec<Inside> = state
        .presence
        .snapshot()
        .into_iter()
        .map(|(id, at)| Inside {
            id: id.to_string(),
            x: at.x,
            y: at.y,
            since: format_ms(at.since_ms),
            store: state
                .fleet
                .as_ref()
                .map(|fleet| fleet.id(at.store).to_string()),
        })
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(&inside).unwrap_or_default(),
    )
        .into_response()
}

async fn health() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "OK",
    )
        .into_response()
}

async fn metrics(State(state): Shared) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {} {}; the API has POST /produce_entry, /produce_move, /produce_exit, /scenario, /scenario_draft and GET /state, /health, /metrics",
            request.method(),
            request.uri().path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(parse_flag("True"), Some(true));
        assert_eq!(parse_flag("0"), Some(false));
        assert_eq!(parse_flag("maybe"), None);
    }
}
