//! A small HTTP client for the `http_ingress` API (on `ureq`): every status comes back as an
//! answer rather than an error, so tests assert on 4xx and 5xx as on 200.

use std::time::{Duration, Instant};

/// A status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// A keep-alive client for one server; cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    base: String,
}

impl HttpClient {
    /// A client for `base` (`http://host:port`), each request bounded to 10 s.
    pub fn new(base: impl Into<String>) -> HttpClient {
        HttpClient::with_timeout(base, Duration::from_secs(10))
    }

    /// A client for `http://127.0.0.1:{port}`.
    pub fn local(port: u16) -> HttpClient {
        HttpClient::new(format!("http://127.0.0.1:{port}"))
    }

    /// A client for `base` whose requests may take up to `timeout` (loaded benchmarks).
    pub fn with_timeout(base: impl Into<String>, timeout: Duration) -> HttpClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        HttpClient {
            agent,
            base: base.into(),
        }
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`; panics if the server cannot be reached.
    pub fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[])
    }

    /// `GET path` with extra headers; panics if the server cannot be reached.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.try_get_with(path, headers)
            .unwrap_or_else(|error| panic!("GET {}: {error}", self.url(path)))
    }

    /// `GET path`, or why nothing answered (not listening yet, gone).
    pub fn try_get(&self, path: &str) -> Result<Answer, ureq::Error> {
        self.try_get_with(path, &[])
    }

    fn try_get_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer, ureq::Error> {
        let mut request = self.agent.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.call()?)
    }

    /// `POST path` with `body`; panics if the server cannot be reached.
    pub fn post(&self, path: &str, body: &str) -> Answer {
        self.post_with(path, body, &[])
    }

    /// `POST path` with `body` and extra headers; panics if the server cannot be reached.
    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.agent.post(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .send(body)
            .and_then(answer)
            .unwrap_or_else(|error| panic!("POST {}: {error}", self.url(path)))
    }

    /// Waits until `GET /health` answers 200, for at most `limit`.
    pub fn wait_until_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self
                .try_get("/health")
                .is_ok_and(|answer| answer.status == 200)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no healthy HTTP API at {} within {limit:?}",
                self.base
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The `Authorization` header value for a bearer token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn answer(mut response: ureq::http::Response<ureq::Body>) -> Result<Answer, ureq::Error> {
    Ok(Answer {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_string()?,
    })
}
