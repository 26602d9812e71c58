//! The axum router: handlers, bearer-token check, body size and deadline, request counting.
//! The accept loop around it (connection caps, timeouts) is `customersim-http-serve`'s.

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
use serde::{Deserialize, Serialize};

use crate::MAX_BODY_BYTES;
use crate::backlog::{Backlog, Refusal};
use crate::body::{self, BodyError, Limits, ProduceKind};
use crate::draft;
use crate::state;
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
    /// Events scheduled and not yet due, all requests together.
    pub backlog: Backlog,
    /// Memory of `/state` answers, all clients together.
    pub state_budget: state::Budget,
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
            too_large()
        } else {
            ApiError::new(status, format!("body: {}", rejection.body_text()))
        }
    }
}

/// A request body, read whole within the size limit (413 beyond it) and within the source's
/// `body_timeout` (408 after it), so a client sending slowly cannot hold a connection forever.
/// A body whose `Content-Length` announces more than the limit is refused before any of it is
/// read (a client waiting for `100 Continue` learns at once, and sends nothing).
struct Body(Bytes);

/// The 413 of a body over [`MAX_BODY_BYTES`].
fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body: larger than the limit of 1 MiB ({MAX_BODY_BYTES} bytes)"),
    )
}

/// Whether `request` announces a body over [`MAX_BODY_BYTES`] (an unparsable length is left to
/// hyper, which refuses it).
fn announced_too_large(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
}

impl FromRequest<Arc<AppState>> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Body, ApiError> {
        if announced_too_large(&request) {
            return Err(too_large());
        }
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
    let now = state.clock.now_ms();
    let events = body::scenario(&body, recalculate.then_some(now), &state.limits)?;
    schedule(&state, events, now, |index| {
        format!("path[{index}].timestamp")
    })
    .await?;
    Ok(accepted())
}

/// Puts `events` on the timeline, within the backlog's bounds at simulated time `now_ms`:
/// all of them or, refused, none. `field` names an event's field in a refusal.
async fn schedule(
    state: &AppState,
    events: Vec<customersim_plugin_api::Event>,
    now_ms: i64,
    field: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    if events.is_empty() {
        return Ok(());
    }
    let admission =
        state
            .backlog
            .admit(&events, now_ms, field)
            .map_err(|refusal| match refusal {
                Refusal::TooFarAhead { message, .. } => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
                }
                Refusal::TooMany(why) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, why),
            })?;
    if let Err(error) = state.schedule.schedule(events).await {
        state.backlog.cancel(admission);
        tracing::warn!("http_ingress: could not schedule a scenario: {error}");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("timeline: {error}"),
        ));
    }
    Ok(())
}

async fn scenario_draft(State(state): Shared, Body(body): Body) -> Result<Response, ApiError> {
    // The original's clock has microseconds: a draft starts at the clock's, as its did.
    let now_us = state.clock.now_us();
    let now = now_us.div_euclid(1000);
    let expanded = draft::draft(&body, now_us, state.doors, &state.limits)?;
    let answer = expanded.answer();
    // A draft's events are its steps expanded (a FOCUS step is six), so name the path.
    schedule(&state, expanded.events, now, |index| {
        format!("path: its expanded event {index}")
    })
    .await?;
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
    let answer = serde_json::to_vec(&inside).unwrap_or_default();
    drop(inside);
    match state.state_budget.hold(answer) {
        Ok(answer) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            answer,
        )
            .into_response(),
        Err(state::Refused::Busy { total_bytes }) => {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "/state: other answers not yet read hold the budget of {total_bytes} bytes (state_memory_bytes); retry shortly"
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(state::Refused::TooLarge { bytes, total_bytes }) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "/state: the answer of {bytes} bytes is larger than the whole budget of {total_bytes} bytes (state_memory_bytes)"
            ),
        )
        .into_response(),
    }
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
    fn a_body_announced_over_the_limit_is_seen_before_reading() {
        let with_length = |length: &str| {
            Request::builder()
                .header(header::CONTENT_LENGTH, length)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert!(!announced_too_large(&with_length("1048576")));
        assert!(announced_too_large(&with_length("1048577")));
        assert!(announced_too_large(&with_length("18446744073709551615")));
        assert!(!announced_too_large(&with_length("nonsense")));
        assert!(!announced_too_large(
            &Request::builder().body(axum::body::Body::empty()).unwrap()
        ));
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag("True"), Some(true));
        assert_eq!(parse_flag("0"), Some(false));
        assert_eq!(parse_flag("maybe"), None);
    }
}
