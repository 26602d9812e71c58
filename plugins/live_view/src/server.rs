//! The axum router: the page and its assets (embedded in the binary), the frame stream (Server-Sent
//! Events), `/state`, `/health`, and the bearer-token check.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use customersim_http_serve::ConnectionLimits;
use futures_util::stream::{self, Stream};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::frame::View;

/// Bytes a second one page is sent at most: a page whose frames are larger gets them less often
/// (10,000 shoppers fit 20 frames a second).
const PAGE_BUDGET_BYTES_PER_S: f64 = 1_500_000.0;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// What the handlers share.
pub struct AppState {
    pub view: Arc<View>,
    /// The bearer token every route but `/health` needs, if any.
    pub token: Option<String>,
}

type Shared = State<Arc<AppState>>;

/// Serves the view on `listener` within `limits` (the accept loop `http_ingress` uses too:
/// connection cap, per-peer share, header and idle timeouts, write stall) until `stopped`
/// resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    limits: ConnectionLimits,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    customersim_http_serve::serve("live_view", listener, router(state), limits, stopped).await
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route("/events", get(events))
        .route("/state", get(current_state))
        .route("/health", get(|| async { "OK" }))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn current_state(State(state): Shared) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.view.state(),
    )
        .into_response()
}

/// The page's stream: a `hello` event, then the newest frame whenever there is one the page has
/// not seen, no faster than [`PAGE_BUDGET_BYTES_PER_S`] allows. A page that reads slowly simply
/// skips frames (only the newest is kept), so it never holds up the sink or other pages.
async fn events(State(state): Shared) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hello = Event::default().event("hello").data(state.view.hello());
    let mut frames = state.view.frames.clone();
    frames.mark_unchanged();
    let next = stream::unfold(
        (frames, Instant::now()),
        |(mut frames, allowed_at)| async move {
            tokio::time::sleep_until(allowed_at).await;
            frames.changed().await.ok()?;
            let frame = frames.borrow_and_update().clone();
            let pause = Duration::from_secs_f64(frame.len() as f64 / PAGE_BUDGET_BYTES_PER_S);
            let event = Event::default().event("frame").data(&*frame);
            Some((Ok(event), (frames, Instant::now() + pause)))
        },
    );
    let first = stream::once(async move { Ok(hello) });
    Sse::new(futures_util::StreamExt::chain(first, next)).keep_alive(KeepAlive::default())
}

/// Routes anyone may fetch: they hold no data of the run (a browser loads the page's assets
/// without the page's query string).
const OPEN_ROUTES: &[&str] = &["/health", "/app.js", "/style.css"];

/// Checks the bearer token on the page, `/events` and `/state`: an `Authorization: Bearer`
/// header, or `?token=` in the URL (a browser's page and its event stream cannot send headers).
async fn guard(State(state): Shared, request: Request, next: Next) -> Response {
    let open = OPEN_ROUTES.contains(&request.uri().path());
    match &state.token {
        Some(token) if !open && !authorized(&request, token) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            "live_view: missing or wrong token (open the page as /?token=<LIVE_VIEW_TOKEN> \
             or send \"Authorization: Bearer <LIVE_VIEW_TOKEN>\")\n",
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

/// The `?token=` of a page's URL.
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn authorized(request: &Request, token: &str) -> bool {
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim);
    let query = Query::<TokenQuery>::try_from_uri(request.uri()).ok();
    let from_query = query.as_ref().and_then(|query| query.token.as_deref());
    [from_header, from_query]
        .into_iter()
        .flatten()
        .any(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

/// Compares without returning early, so timing does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, authorization: Option<&str>) -> Request {
        let mut builder = Request::builder().uri(uri);
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_token_is_taken_from_the_header_or_the_query() {
        assert!(authorized(
            &request("/state", Some("Bearer s3cret")),
            "s3cret"
        ));
        assert!(authorized(&request("/events?token=s3cret", None), "s3cret"));
        assert!(authorized(&request("/?a=1&token=s3cret", None), "s3cret"));
        assert!(!authorized(
            &request("/state", Some("Bearer s3cre")),
            "s3cret"
        ));
        assert!(!authorized(&request("/?token=s3cre", None), "s3cret"));
        assert!(!authorized(&request("/", None), "s3cret"));
        assert!(authorized(&request("/?token=a%26b", None), "a&b"));
    }
}
