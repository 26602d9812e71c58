//! The axum router: handlers, bearer-token check and request counting.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use customersim_plugin_api::prometheus_client::metrics::counter::Counter;
use customersim_plugin_api::prometheus_client::metrics::family::Family;
use customersim_plugin_api::serde::{Deserialize, Serialize};
use customersim_plugin_api::tokio::net::TcpListener;
use customersim_plugin_api::{Clock, MetricsRegistry, Presence, Publisher, Timeline, tracing};

use crate::MAX_BODY_BYTES;
use crate::body::{self, BodyError, ProduceKind};

/// Labels of `http_requests_total`: the route (or `other`) and the status code.
pub type Labels = ([(&'static str, &'static str); 1], [(&'static str, u16); 1]);

/// What the handlers share.
pub struct AppState {
    pub clock: Clock,
    pub timeline: Arc<dyn Timeline>,
    pub publisher: Publisher,
    pub presence: Presence,
    pub metrics: MetricsRegistry,
    pub requests: Family<Labels, Counter>,
    pub token: Option<String>,
    pub doors: body::Doors,
}

type Shared = State<Arc<AppState>>;

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
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stopped)
        .await
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
#[serde(crate = "customersim_plugin_api::serde")]
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
        match error {
            BodyError::Malformed(why) => ApiError::new(StatusCode::BAD_REQUEST, why),
            BodyError::Invalid(why) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why),
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
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Compares without returning early, so timing does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn produce_entry(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    produce(&state, body, ProduceKind::Enter).await
}

async fn produce_move(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    produce(&state, body, ProduceKind::Move).await
}

async fn produce_exit(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    produce(&state, body, ProduceKind::Exit).await
}

async fn produce(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
    kind: ProduceKind,
) -> Result<Response, ApiError> {
    let event = body::produce(&body?, kind)?;
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
#[serde(crate = "customersim_plugin_api::serde")]
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
    body: Result<Bytes, BytesRejection>,
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
                format!("recalculate_time: expected true or false, got {text:?}"),
            )
        })?,
    };
    let body = body?;
    let now = recalculate.then(|| state.clock.now_ms());
    let events = body::scenario(&body, now)?;
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
    state.timeline.schedule(events).await.map_err(|error| {
        tracing::warn!("http_ingress: could not schedule a scenario: {error}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("timeline: {error}"),
        )
    })
}

/// The answer of `/scenario_draft`: the expanded scenario.
#[derive(Serialize)]
#[serde(crate = "customersim_plugin_api::serde")]
struct ExpandedScenario<'a> {
    customer: ExpandedCustomer<'a>,
    path: &'a [body::TimedStep],
}

#[derive(Serialize)]
#[serde(crate = "customersim_plugin_api::serde")]
struct ExpandedCustomer<'a> {
    customer_id: &'a str,
}

async fn scenario_draft(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let expanded = body::draft(&body, state.clock.now_ms(), state.doors)?;
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
#[serde(crate = "customersim_plugin_api::serde")]
struct Inside {
    id: String,
    x: i64,
    y: i64,
    /// When their last event happened (RFC 3339, UTC).
    since: String,
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
            since: body::format_ms(at.since_ms),
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
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag("True"), Some(true));
        assert_eq!(parse_flag("0"), Some(false));
        assert_eq!(parse_flag("maybe"), None);
    }
}
