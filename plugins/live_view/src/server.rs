//! The HTTP side: the page and its assets (embedded in the binary), the frame stream (Server-Sent
//! Events), `/state`, `/health`, and the bearer-token check.
//!
//! Every request is first [`decide`]d from its method, URI and `Authorization` header alone (a
//! pure function: the fuzz target `live_view_request` drives it), then answered.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use customersim_http_serve::ConnectionLimits;
use customersim_plugin_api::auth::{bearer_token, constant_time_eq};
use tokio::net::TcpListener;

use crate::frame::View;
use crate::pages::Pages;
use crate::state::StateAnswers;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// What the handlers share.
pub struct AppState {
    pub view: Arc<View>,
    /// The bearer token every route but `/health` and the assets needs, if any.
    pub token: Option<String>,
    /// The open pages' seats and shared bandwidth.
    pub pages: Arc<Pages>,
    /// `/state` answers, capped and within their memory budget.
    pub answers: StateAnswers,
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

/// The routes: one handler that answers what [`decide`] says.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// What the view serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/`: the page.
    Page,
    /// `/app.js`: the page's script.
    Script,
    /// `/style.css`: the page's styles.
    Styles,
    /// `/events`: a page's event stream.
    Events,
    /// `/state`: the model as JSON.
    State,
    /// `/health`: `OK`.
    Health,
}

impl Route {
    /// Every route and its path.
    pub const ALL: [(&'static str, Route); 6] = [
        ("/", Route::Page),
        ("/app.js", Route::Script),
        ("/style.css", Route::Styles),
        ("/events", Route::Events),
        ("/state", Route::State),
        ("/health", Route::Health),
    ];

    /// The route of a path, if any.
    pub fn of(path: &str) -> Option<Route> {
        Route::ALL
            .iter()
            .find(|(at, _)| *at == path)
            .map(|&(_, route)| route)
    }

    /// Whether anyone may fetch the route: it holds no data of the run (a browser loads the
    /// page's assets without the page's query string).
    pub fn open(self) -> bool {
        matches!(self, Route::Script | Route::Styles | Route::Health)
    }
}

/// How a request is answered, decided before any handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The route answers (200, or 503 for a page beyond `max_pages`).
    Serve(Route),
    /// 401: a token is set and the request does not carry it (every path but the open routes,
    /// unknown ones too).
    Unauthorized,
    /// 404: no such route.
    NotFound,
    /// 405: a route, but not `GET` or `HEAD`.
    MethodNotAllowed,
}

impl Decision {
    /// The status of the answer (a page beyond the cap turns 200 into 503 later).
    pub fn status(self) -> StatusCode {
        match self {
            Decision::Serve(_) => StatusCode::OK,
            Decision::Unauthorized => StatusCode::UNAUTHORIZED,
            Decision::NotFound => StatusCode::NOT_FOUND,
            Decision::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// Decides how a request is answered, from its method, URI and `Authorization` header: the
/// token (when one is set) as `Authorization: Bearer <token>` (the scheme in any case) or as
/// `?token=<token>` in the URL (a browser's page and its event stream cannot send headers).
pub fn decide(
    method: &Method,
    uri: &Uri,
    authorization: Option<&HeaderValue>,
    token: Option<&str>,
) -> Decision {
    let route = Route::of(uri.path());
    if let Some(token) = token
        && !route.is_some_and(Route::open)
        && !authorized(uri, authorization, token)
    {
        return Decision::Unauthorized;
    }
    match route {
        None => Decision::NotFound,
        Some(_) if method != Method::GET && method != Method::HEAD => Decision::MethodNotAllowed,
        Some(route) => Decision::Serve(route),
    }
}

async fn dispatch(State(state): Shared, request: Request) -> Response {
    let decision = decide(
        request.method(),
        request.uri(),
        request.headers().get(header::AUTHORIZATION),
        state.token.as_deref(),
    );
    match decision {
        Decision::Serve(Route::Page) => asset("text/html; charset=utf-8", INDEX_HTML),
        Decision::Serve(Route::Script) => asset("text/javascript; charset=utf-8", APP_JS),
        Decision::Serve(Route::Styles) => asset("text/css; charset=utf-8", STYLE_CSS),
        Decision::Serve(Route::Events) => events(&state),
        Decision::Serve(Route::State) => current_state(&state).await,
        Decision::Serve(Route::Health) => "OK".into_response(),
        Decision::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            "live_view: missing or wrong token (open the page as /?token=<LIVE_VIEW_TOKEN> \
             or send \"Authorization: Bearer <LIVE_VIEW_TOKEN>\")\n",
        )
            .into_response(),
        Decision::NotFound => (
            StatusCode::NOT_FOUND,
            "live_view: no such page; the view serves /, /events, /state and /health\n",
        )
            .into_response(),
        Decision::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))],
            "live_view: only GET and HEAD\n",
        )
            .into_response(),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn current_state(state: &AppState) -> Response {
    match state.answers.answer(&state.view).await {
        Some(answer) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            answer,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "live_view: the answer is larger than the memory all /state answers may take; \
             lower state_limit\n",
        )
            .into_response(),
    }
}

/// A page's stream (module `pages`), or 503 when `max_pages` are open.
fn events(state: &AppState) -> Response {
    match state.pages.open(&state.view) {
        Some(stream) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            Body::from_stream(stream),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
            format!(
                "live_view: {} pages are open, the most max_pages allows; close one, or raise \
                 max_pages\n",
                state.pages.max_pages()
            ),
        )
            .into_response(),
    }
}

/// The `?token=` of a page's URL.
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn authorized(uri: &Uri, authorization: Option<&HeaderValue>, token: &str) -> bool {
    let from_header = authorization
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    let query = Query::<TokenQuery>::try_from_uri(uri).ok();
    let from_query = query.as_ref().and_then(|query| query.token.as_deref());
    [from_header, from_query]
        .into_iter()
        .flatten()
        .any(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_get(uri: &str, authorization: Option<&str>, token: Option<&str>) -> Decision {
        let authorization = authorization.map(|value| HeaderValue::from_str(value).unwrap());
        decide(
            &Method::GET,
            &uri.parse().unwrap(),
            authorization.as_ref(),
            token,
        )
    }

    #[test]
    fn a_token_is_taken_from_the_header_or_the_query() {
        let token = Some("s3cret");
        let state = Decision::Serve(Route::State);
        assert_eq!(decide_get("/state", Some("Bearer s3cret"), token), state);
        assert_eq!(decide_get("/state", Some("BEARER s3cret"), token), state);
        assert_eq!(decide_get("/state", Some("bearer  s3cret "), token), state);
        assert_eq!(
            decide_get("/events?token=s3cret", None, token),
            Decision::Serve(Route::Events)
        );
        assert_eq!(
            decide_get("/?a=1&token=s3cret", None, token),
            Decision::Serve(Route::Page)
        );
        let refused = Decision::Unauthorized;
        assert_eq!(decide_get("/state", Some("Bearer s3cre"), token), refused);
        assert_eq!(decide_get("/state", Some("Basic s3cret"), token), refused);
        assert_eq!(decide_get("/?token=s3cre", None, token), refused);
        assert_eq!(decide_get("/", None, token), refused);
        assert_eq!(decide_get("/nope", None, token), refused);
        assert_eq!(
            decide_get("/?token=a%26b", None, Some("a&b")),
            Decision::Serve(Route::Page)
        );
    }

    #[test]
    fn open_routes_unknown_paths_and_methods() {
        for path in ["/health", "/app.js", "/style.css"] {
            assert!(matches!(
                decide_get(path, None, Some("s3cret")),
                Decision::Serve(_)
            ));
        }
        assert_eq!(decide_get("/nope", None, None), Decision::NotFound);
        assert_eq!(
            decide_get("/nope?token=t", None, Some("t")),
            Decision::NotFound
        );
        let post = decide(&Method::POST, &"/state".parse().unwrap(), None, None);
        assert_eq!(post, Decision::MethodNotAllowed);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        let head = decide(&Method::HEAD, &"/health".parse().unwrap(), None, None);
        assert_eq!(head, Decision::Serve(Route::Health));
    }
}
