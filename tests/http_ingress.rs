//! The `http_ingress` source through real HTTP: the real binary on an ephemeral port with the
//! stdout sink, its stdout read line by line as events are published.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use customersim_testkit::http::{Answer, HttpClient, bearer};
use customersim_testkit::net::free_port;
use customersim_testkit::run::{Process, StdoutMode, clean_command, run_failing};
use customersim_testkit::stdout_sink::{parse_line, parse_lines};
use customersim_testkit::temp::{TempFile, temp_file};
use customersim_testkit::turns::Turns;

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// Tests that measure when events come out run alone, so the other tests of this file (each a
/// process of its own) do not delay them on a small machine; the others share.
static TIMING: Turns = Turns::new();

/// A pipeline with only the HTTP source and the stdout sink.
fn config(consume_frequency: f64) -> String {
    format!(
        "timeline:\n  consume_frequency: {consume_frequency}\nsources:\n  - type: http_ingress\nsinks:\n  - type: stdout\n"
    )
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A line the stdout sink printed and the wall-clock ms at which the test read it.
struct Printed {
    at_ms: i64,
    topic: String,
    payload: String,
}

/// The binary running with an HTTP port; killed when dropped.
struct Server {
    process: Process,
    port: u16,
    http: HttpClient,
    _config: TempFile,
}

impl Server {
    fn start(yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_command(customersim(), yaml, args, env)
    }

    /// The binary under a descriptor limit of `files` (`ulimit -n`), as a small deployment has.
    fn start_with_descriptor_limit(yaml: &str, files: u32) -> Server {
        let mut command = clean_command("/bin/sh");
        command.args([
            "-c",
            &format!("ulimit -n {files} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_customersim"),
        ]);
        Server::start_command(command, yaml, &[], &[])
    }

    fn start_command(
        mut command: Command,
        yaml: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let config = temp_file("pipeline.yaml", yaml);
        let port = free_port();
        command
            .args(["run", "--config"])
            .arg(&config)
            .args(args)
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("LOG_LEVEL", "warn");
        for (var, value) in env {
            command.env(var, value);
        }
        let process = Process::start(&mut command, StdoutMode::Lines);
        let http = HttpClient::local(port);
        http.wait_until_healthy(Duration::from_secs(20));
        Server {
            process,
            port,
            http,
            _config: config,
        }
    }

    fn post(&self, path: &str, body: &str) -> Answer {
        self.http.post(path, body)
    }

    fn post_with(&self, path: &str, body: &str, token: Option<&str>) -> Answer {
        match token {
            Some(token) => self
                .http
                .post_with(path, body, &[("Authorization", &bearer(token))]),
            None => self.http.post(path, body),
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        match token {
            Some(token) => self
                .http
                .get_with(path, &[("Authorization", &bearer(token))]),
            None => self.http.get(path),
        }
    }

    /// Posts as curl does (`curl URL -d BODY`: a form content type) and returns status and body.
    fn curl_d(&self, path: &str, body: &str) -> (u16, String) {
        let answer = self.http.post_with(
            path,
            body,
            &[
                ("User-Agent", "curl/8.5.0"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
        );
        (answer.status, answer.body)
    }

    fn next_line(&self, wait: Duration) -> Printed {
        let line = self
            .process
            .lines()
            .recv_timeout(wait)
            .expect("an event on stdout in time");
        let parsed = parse_line(&line.text);
        Printed {
            at_ms: line.read_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64,
            topic: parsed.topic,
            payload: parsed.payload,
        }
    }

    fn no_line_for(&self, wait: Duration) {
        if let Ok(line) = self.process.lines().recv_timeout(wait) {
            panic!("unexpected event: {}", line.text);
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        self.process.terminate();
        self.wait_exit(Duration::from_secs(15))
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.process.wait(limit)
    }
}

fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    // Days-to-civil, so the test does not need a date crate.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn step(kind: &str, x: i64, y: i64, timestamp: &str) -> String {
    format!(r#"{{"type": "{kind}", "location": {{"x": {x}, "y": {y}}}, "timestamp": {timestamp}}}"#)
}

fn scenario(customer: &str, steps: &[String]) -> String {
    format!(
        r#"{{"customer": {{"customer_id": "{customer}"}}, "path": [{}]}}"#,
        steps.join(", ")
    )
}

#[test]
fn produce_endpoints_publish_at_once_with_the_original_bytes() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[]);
    // The original README's commands, sent the way curl sends them (form content type).
    let (status, body) = server.curl_d(
        "/produce_move",
        r#"{"id": "997", "ts": 192326400, "x": 2, "y": 3}"#,
    );
    assert_eq!((status, body.as_str()), (200, "True"));
    let line = server.next_line(Duration::from_secs(5));
    assert_eq!(line.topic, "customer/move");
    assert_eq!(
        line.payload,
        r#"{"id": "997", "ts": 192326400, "x": 2, "y": 3}"#
    );

    let (status, _) = server.curl_d("/produce_entry", r#"{"id": "997", "ts": 192326400}"#);
    assert_eq!(status, 200);
    let line = server.next_line(Duration::from_secs(5));
    assert_eq!(
        (line.topic.as_str(), line.payload.as_str()),
        ("customer/enter", r#"{"id": "997", "ts": 192326400}"#)
    );

    // A numeric id is published as a string; floats are truncated.
    let answer = server.post("/produce_exit", r#"{"id": 998, "ts": 192326401.9}"#);
    assert_eq!((answer.status, answer.body.as_str()), (200, "True"));
    let line = server.next_line(Duration::from_secs(5));
    assert_eq!(
        (line.topic.as_str(), line.payload.as_str()),
        ("customer/exit", r#"{"id": "998", "ts": 192326401}"#)
    );
}

/// Steps of two customers, due shortly, are published at (not before) their time, within
/// 100 ms, ordered by (time, customer).
fn scenario_timing(consume_frequency: f64) {
    let _turn = TIMING.alone();
    let server = Server::start(&config(consume_frequency), &[], &[]);
    let base = wall_ms() + 700;
    let due = [base, base + 300, base + 300, base + 600];
    // Customer 7: ISO with a zone offset, epoch seconds (float), epoch ms.
    let plus_two = {
        let text = iso(due[0] + 2 * 3_600_000);
        format!("\"{}+02:00\"", text.trim_end_matches('Z'))
    };
    let seven = scenario(
        "7",
        &[
            step("ENTER", 0, 0, &plus_two),
            step("move", 1, 2, &format!("{:.3}", due[2] as f64 / 1000.0)),
            step("Exit", 0, 0, &due[3].to_string()),
        ],
    );
    let five = scenario("5", &[step("MOVE", 4, 4, &format!("\"{}\"", iso(due[1])))]);
    for body in [&seven, &five] {
        let answer = server.post("/scenario", body);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "True"),
            "{body}"
        );
    }
    let expected = [
        (
            due[0],
            "customer/enter",
            format!(r#"{{"id": "7", "ts": {}}}"#, due[0] / 1000),
        ),
        (
            due[1],
            "customer/move",
            format!(r#"{{"id": "5", "ts": {}, "x": 4, "y": 4}}"#, due[1] / 1000),
        ),
        (
            due[2],
            "customer/move",
            format!(r#"{{"id": "7", "ts": {}, "x": 1, "y": 2}}"#, due[2] / 1000),
        ),
        (
            due[3],
            "customer/exit",
            format!(r#"{{"id": "7", "ts": {}}}"#, due[3] / 1000),
        ),
    ];
    for (due_ms, topic, payload) in expected {
        let line = server.next_line(Duration::from_secs(5));
        assert_eq!((line.topic.as_str(), &line.payload), (topic, &payload));
        assert!(
            line.at_ms >= due_ms,
            "published {} ms before its time",
            due_ms - line.at_ms
        );
        assert!(
            line.at_ms <= due_ms + 100,
            "published {} ms late",
            line.at_ms - due_ms
        );
    }
    server.no_line_for(Duration::from_millis(300));
}

#[test]
fn scenario_steps_are_published_at_their_time_when_consuming_exactly_when_due() {
    scenario_timing(0.0);
}

#[test]
fn scenario_steps_are_published_at_their_time_when_polling_every_50_ms() {
    scenario_timing(0.05);
}

#[test]
fn recalculate_time_shifts_the_path_to_start_now() {
    let _turn = TIMING.alone();
    let server = Server::start(&config(0.0), &[], &[]);
    // A path recorded in 2021, replayed now: same spacing, first step now.
    let body = scenario(
        "3",
        &[
            step("ENTER", 0, 0, "\"2021-01-01T00:00:00Z\""),
            step("MOVE", 1, 1, "\"2021-01-01T00:00:00.800Z\""),
        ],
    );
    let sent = wall_ms();
    let answer = server.post("/scenario?recalculate_time=true", &body);
    assert_eq!((answer.status, answer.body.as_str()), (200, "True"));
    let enter = server.next_line(Duration::from_secs(5));
    let moved = server.next_line(Duration::from_secs(5));
    assert_eq!(enter.topic, "customer/enter");
    assert_eq!(moved.topic, "customer/move");
    assert!(
        enter.at_ms >= sent && enter.at_ms <= sent + 300,
        "{}",
        enter.at_ms - sent
    );
    let gap = moved.at_ms - enter.at_ms;
    assert!(
        (700..=900).contains(&gap),
        "steps {gap} ms apart instead of 800"
    );
    // The same path without recalculate_time is in the past: skipped (CONSUME_FROM=latest).
    assert_eq!(server.post("/scenario", &body).status, 200);
    server.no_line_for(Duration::from_millis(500));
}

#[test]
fn scenario_draft_times_steps_by_walking_distance() {
    let _turn = TIMING.shared();
    // 20 simulated seconds per wall second: the 10 s start delay and the 30 s FOCUS pass quickly.
    let server = Server::start(&config(0.0), &["--speed", "20"], &[]);
    let body = r#"{"customer": {"customer_id": 12}, "path": [
        {"type": "ENTER"},
        {"type": "move", "location": {"x": 30.9, "y": 40}},
        {"type": "FOCUS", "location": {"x": 30, "y": 0}},
        {"type": "exit", "location": {"x": 0, "y": 0}}]}"#;
    let answer = server.post("/scenario_draft", body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let expanded: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(expanded["customer"]["customer_id"], "12");
    let path = expanded["path"].as_array().unwrap();
    let times: Vec<i64> = path
        .iter()
        .map(|step| iso_ms(step["timestamp"].as_str().unwrap()))
        .collect();
    let relative: Vec<i64> = times.iter().map(|t| t - times[0]).collect();
    // door (0,0) → (30,40): 50 units × 30 ms; → (30,0): 40 units; 5 moves in place 7.5 s
    // apart; → (0,0): 30 units.
    assert_eq!(
        relative,
        vec![0, 1500, 2700, 10200, 17700, 25200, 32700, 40200, 41100]
    );
    let kinds: Vec<&str> = path.iter().map(|s| s["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ENTER", "MOVE", "MOVE", "MOVE", "MOVE", "MOVE", "MOVE", "MOVE", "EXIT"
        ]
    );
    // The expanded scenario is what gets published, in order.
    for (step, at) in path.iter().zip(&times) {
        let line = server.next_line(Duration::from_secs(10));
        let ts = at.div_euclid(1000);
        let expected = match step["type"].as_str().unwrap() {
            "ENTER" => (
                "customer/enter".to_string(),
                format!(r#"{{"id": "12", "ts": {ts}}}"#),
            ),
            "EXIT" => (
                "customer/exit".to_string(),
                format!(r#"{{"id": "12", "ts": {ts}}}"#),
            ),
            _ => (
                "customer/move".to_string(),
                format!(
                    r#"{{"id": "12", "ts": {ts}, "x": {}, "y": {}}}"#,
                    step["location"]["x"], step["location"]["y"]
                ),
            ),
        };
        assert_eq!((line.topic, line.payload), expected);
    }
}

/// Milliseconds since the epoch of `2026-11-28T01:03:42.197Z` (or `…42.197250Z`, rounded down).
fn iso_ms(text: &str) -> i64 {
    iso_us(text).div_euclid(1000)
}

/// Microseconds since the epoch of `2026-11-28T01:03:42.197250Z` (or `…+00:00`, as the
/// original's drafts write it).
fn iso_us(text: &str) -> i64 {
    let utc = text
        .strip_suffix("+00:00")
        .unwrap_or_else(|| text.trim_end_matches('Z'));
    let (date, time) = utc.split_once('T').unwrap();
    let parts: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (year, month, day) = (parts[0], parts[1], parts[2]);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let hms: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let micros: i64 = format!("{fraction:0<6}")[..6].parse().unwrap();
    ((days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1_000_000) + micros
}

#[test]
fn bad_input_is_refused_and_nothing_of_it_is_published() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(0.0), &[], &[]);
    // Steps due in 300 ms: if any were scheduled they would show up below.
    let soon = wall_ms() + 300;
    let at = |offset: i64| (soon + offset).to_string();
    let good = |x: i64, offset: i64| step("MOVE", x, 1, &at(offset));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/produce_move", r#"{"id": "1", "ts": "#.into(), 400, "body: malformed JSON"),
        ("/produce_move", r#"{"id": "1", "ts": 5, "x": 1}"#.into(), 422, "y: missing"),
        ("/produce_entry", r#"{"id": "1", "ts": "soon"}"#.into(), 422, "ts: invalid value"),
        ("/produce_exit", r#"{"id": true, "ts": 1}"#.into(), 422, "id: invalid type"),
        ("/produce_entry", r#"{"ts": 1}"#.into(), 422, "id: missing"),
        (
            "/scenario",
            scenario("1", &[good(1, 0), step("MOVE", 2, 2, "\"2031-01-01T00:00:00\"")]),
            422,
            "path[1].timestamp: timestamp \"2031-01-01T00:00:00\" has no time zone",
        ),
        (
            "/scenario",
            scenario("1", &[good(1, 0), step("JUMP", 2, 2, &at(10))]),
            422,
            "path[1].type: unknown step type \"JUMP\"",
        ),
        (
            "/scenario",
            scenario("1", &[good(1, 0), good(2, 0)]),
            422,
            "path[1].timestamp: same instant as path[0]",
        ),
        (
            "/scenario",
            scenario("1", &[good(1, 0), step("MOVE", 2, 2, "null")]),
            422,
            "path[1].timestamp: missing",
        ),
        (
            "/scenario",
            scenario("1", &[good(1, 0), r#"{"type": "MOVE", "location": {"x": "a", "y": 1}, "timestamp": 1}"#.into()]),
            422,
            "path[1].location.x: invalid value",
        ),
        (
            "/scenario",
            r#"{"path": []}"#.into(),
            422,
            "customer: missing",
        ),
        (
            "/scenario?recalculate_time=true",
            scenario("1", &[]),
            422,
            "path: empty",
        ),
        (
            "/scenario?recalculate_time=maybe",
            scenario("1", &[good(1, 0)]),
            422,
            "recalculate_time: expected true or false",
        ),
        (
            "/scenario_draft",
            r#"{"customer": {"customer_id": "1"}, "path": [{"type": "MOVE", "location": {"x": 1, "y": 1}}, {"type": "MOVE", "location": {"x": 1, "y": 1}}]}"#.into(),
            422,
            "path[1].location: same place",
        ),
        (
            "/scenario_draft",
            r#"{"customer": {"customer_id": "1"}, "path": [{"type": "wander", "location": {"x": 1, "y": 1}}]}"#.into(),
            422,
            "path[0].type: unknown step type",
        ),
        // A body over 1 MiB is refused as soon as its Content-Length announces it, before it is
        // sent (a client still writing it may see the connection close):
        // `a_body_announced_over_the_limit_is_refused_before_it_is_sent` checks that answer.
    ];
    for (path, body, status, detail) in &cases {
        let answer = server.post(path, body);
        assert_eq!(answer.status, *status, "{path}: {}", answer.body);
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let message = json["detail"].as_str().unwrap();
        assert!(
            message.starts_with(detail),
            "{path}: {message:?} should start with {detail:?}"
        );
    }
    // curl's form content type with a form body is not JSON.
    let (status, body) = server.curl_d("/produce_entry", "id=1&ts=2");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed JSON"), "{body}");

    // Nothing was published, and publishing goes on: at once and from the timeline.
    server.no_line_for(Duration::from_millis(600));
    assert_eq!(
        server
            .post("/produce_entry", r#"{"id": "sentinel", "ts": 1}"#)
            .status,
        200
    );
    let line = server.next_line(Duration::from_secs(5));
    assert_eq!(line.payload, r#"{"id": "sentinel", "ts": 1}"#);
    let later = wall_ms() + 200;
    let answer = server.post(
        "/scenario",
        &scenario("2", &[step("MOVE", 5, 6, &later.to_string())]),
    );
    assert_eq!(answer.status, 200);
    let line = server.next_line(Duration::from_secs(5));
    assert_eq!(
        line.payload,
        format!(r#"{{"id": "2", "ts": {}, "x": 5, "y": 6}}"#, later / 1000)
    );
}

#[test]
fn state_health_and_metrics() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[]);
    for (path, body) in [
        ("/produce_entry", r#"{"id": "41", "ts": 1700000000}"#),
        (
            "/produce_move",
            r#"{"id": "41", "ts": 1700000002, "x": 2, "y": 3}"#,
        ),
        ("/produce_entry", r#"{"id": "42", "ts": 1700000003}"#),
        ("/produce_exit", r#"{"id": "42", "ts": 1700000004}"#),
    ] {
        assert_eq!(server.post(path, body).status, 200);
        server.next_line(Duration::from_secs(5));
    }
    assert_eq!(server.post("/produce_exit", "{}").status, 422);
    let state = server.get("/state", None);
    assert_eq!(state.status, 200);
    let inside: serde_json::Value = serde_json::from_str(&state.body).unwrap();
    assert_eq!(
        inside,
        serde_json::json!([{"id": "41", "x": 2, "y": 3, "since": "2023-11-14T22:13:22.000Z"}])
    );
    let health = server.get("/health", None);
    assert_eq!((health.status, health.body.as_str()), (200, "OK"));
    let metrics = server.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    for expected in [
        "customersim_http_requests_total{route=\"/produce_entry\",status=\"200\"} 2",
        "customersim_http_requests_total{route=\"/produce_exit\",status=\"422\"} 1",
        "customersim_http_requests_total{route=\"/health\",status=\"200\"}",
        "customersim_events_published_total{topic=\"customer/enter\",sink=\"stdout\"} 2",
        "customersim_events_published_total{topic=\"customer/move\",sink=\"stdout\"} 1",
        "customersim_timeline_depth",
        "customersim_events_skipped_total 0",
    ] {
        assert!(
            metrics.body.contains(expected),
            "{expected} missing in:\n{}",
            metrics.body
        );
    }
    let missing = server.get("/nowhere", None);
    assert_eq!(missing.status, 404);
    let mut server = server;
    assert!(server.terminate().success());
}

#[test]
fn a_token_guards_every_route_but_health() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[("HTTP_TOKEN", "s3cret")]);
    assert_eq!(server.get("/health", None).status, 200);
    for path in ["/state", "/metrics"] {
        assert_eq!(server.get(path, None).status, 401, "{path}");
        assert_eq!(server.get(path, Some("wrong")).status, 401, "{path}");
        assert_eq!(server.get(path, Some("s3cret")).status, 200, "{path}");
    }
    let body = r#"{"id": "5", "ts": 10}"#;
    let refused = server.post("/produce_entry", body);
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("bearer token"), "{}", refused.body);
    assert_eq!(
        server
            .post_with(
                "/scenario",
                &scenario("5", &[step("MOVE", 1, 1, &(wall_ms() + 100).to_string())]),
                None
            )
            .status,
        401
    );
    server.no_line_for(Duration::from_millis(400));
    assert_eq!(
        server
            .post_with("/produce_entry", body, Some("s3cret"))
            .status,
        200
    );
    assert_eq!(server.next_line(Duration::from_secs(5)).payload, body);

    // The token is a secret: `validate` masks it.
    let path = temp_file("pipeline.yaml", &config(1.0));
    let output = customersim()
        .args(["validate", "--config"])
        .arg(&path)
        .env("HTTP_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(output.status.success());
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("token"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let _turn = TIMING.shared();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let path = temp_file("pipeline.yaml", &config(1.0));
    let (_, stderr) = run_failing(
        customersim()
            .args(["run", "--config"])
            .arg(&path)
            .env("HTTP_LISTEN", &address),
        1,
    );
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    // A malformed address is a config error (exit 2) naming the key.
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate", "--config"])
            .arg(&path)
            .env("HTTP_LISTEN", "localhost"),
        2,
    );
    assert!(stderr.contains("listen: invalid address"), "{stderr}");
}

#[test]
fn closing_the_doors_stops_accepting_and_the_run_ends_after_the_last_step() {
    let _turn = TIMING.shared();
    let mut server = Server::start(&config(0.0), &["--duration", "2s"], &[]);
    // Scheduled before the doors close, due after: still published, then the run ends.
    let due = wall_ms() + 2_500;
    let answer = server.post(
        "/scenario",
        &scenario("9", &[step("EXIT", 0, 0, &due.to_string())]),
    );
    assert_eq!(answer.status, 200);
    let line = server.next_line(Duration::from_secs(10));
    assert_eq!(
        line.payload,
        format!(r#"{{"id": "9", "ts": {}}}"#, due / 1000)
    );
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

#[test]
fn the_default_pipeline_serves_the_api_and_stops_on_sigterm() {
    let _turn = TIMING.shared();
    let output = customersim()
        .arg("validate")
        .env_remove("HTTP_LISTEN")
        .env("MQTT_HOST", "broker.example") // the default sink (mqtt) needs it
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("type: http_ingress"), "{shown}");
    // Loopback unless told otherwise: a first run opens nothing to the network.
    assert!(shown.contains("listen: 127.0.0.1:8000"), "{shown}");

    let port = free_port();
    let process = Process::start(
        customersim()
            .args(["run", "--sink", "stdout", "--seed", "1"])
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}")),
        StdoutMode::Collect,
    );
    let http = HttpClient::local(port);
    http.wait_until_healthy(Duration::from_secs(20));
    assert_eq!(http.get("/health").body, "OK");
    let finished = process.stop();
    assert!(finished.status.success(), "{:?}", finished.status);
}

#[test]
fn the_default_pipeline_with_a_duration_ends_on_a_virtual_clock() {
    let _turn = TIMING.shared();
    let port = free_port();
    let output = customersim()
        .args([
            "run",
            "--sink",
            "stdout",
            "--speed",
            "max",
            "--duration",
            "10m",
            "--seed",
            "3",
        ])
        .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!parse_lines(&output.stdout).is_empty());
}

/// A pipeline with the HTTP source (with extra settings, indented under it) and the stdout sink.
fn config_with(settings: &str) -> String {
    format!(
        "timeline:\n  consume_frequency: 0\nsources:\n  - type: http_ingress\n{settings}sinks:\n  - type: stdout\n"
    )
}

#[test]
fn scenario_draft_timing_equals_the_originals_arithmetic_step_for_step() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[]);
    // Distances with long fractions (√ of non-squares) and two FOCUS steps, one right after a
    // move and one before the exit.
    let path: [(&str, i64, i64); 7] = [
        ("ENTER", 2, 3),
        ("MOVE", 7, 11),
        ("FOCUS", 13, 29),
        ("MOVE", 14, 1),
        ("MOVE", 1807, 1314),
        ("FOCUS", 600, 333),
        ("EXIT", 1, 1),
    ];
    let steps: Vec<String> = path
        .iter()
        .map(|(kind, x, y)| format!(r#"{{"type": "{kind}", "location": {{"x": {x}, "y": {y}}}}}"#))
        .collect();
    let body = format!(
        r#"{{"customer": {{"customer_id": "d1"}}, "path": [{}]}}"#,
        steps.join(", ")
    );
    let answer = server.post("/scenario_draft", &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let expanded: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let times: Vec<i64> = expanded["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| iso_us(step["timestamp"].as_str().unwrap()))
        .collect();
    let ours: Vec<i64> = times.iter().map(|t| t - times[0]).collect();

    // The original's arithmetic in Python's own datetime: each step `math.dist` × 0.03 s after
    // the one before, a FOCUS step followed by 5 moves in place `30 / (5 - 1)` s apart.
    let script = r#"
import json, math, sys
from datetime import datetime, timedelta, timezone
start = datetime(2021, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
at, before, times = start, None, []
for kind, x, y in json.loads(sys.argv[1]):
    if before is not None:
        at = at + timedelta(seconds=math.dist(before, (x, y)) * 0.03)
    times.append(at)
    if kind == "FOCUS":
        for _ in range(5):
            at = at + timedelta(seconds=30 / (5 - 1))
            times.append(at)
    before = (x, y)
print(json.dumps([(t - start) // timedelta(microseconds=1) for t in times]))
"#;
    let output = Command::new("python3")
        .args(["-c", script, &serde_json::to_string(&path).unwrap()])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let original: Vec<i64> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(ours, original);
    // The focus moves are 7.5 s apart, and the step after them walks from the last one.
    assert_eq!(ours[3] - ours[2], 7_500_000);
    assert_eq!(ours[7] - ours[2], 37_500_000);
}

#[test]
fn scenario_draft_answers_carry_microseconds_byte_for_byte_as_the_original() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[]);
    // MOVE and FOCUS steps only: the original answers every step as a MOVE.
    let body = r#"{"customer": {"customer_id": 12}, "path": [
        {"type": "MOVE", "location": {"x": 3, "y": 4}},
        {"type": "FOCUS", "location": {"x": 7, "y": 11}},
        {"type": "move", "location": {"x": 0, "y": 0}}]}"#;
    let mut starts = Vec::new();
    for _ in 0..3 {
        let answer = server.post("/scenario_draft", body);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let expanded: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let first = expanded["path"][0]["timestamp"]
            .as_str()
            .unwrap()
            .to_string();
        let start_us = iso_us(&first);
        starts.push(start_us);
        // The original's expansion from the same instant, written as its pydantic model writes
        // it: `json.dumps` of the expanded scenario, timestamps by `datetime.isoformat()`.
        let script = r#"
import json, math, sys
from datetime import datetime, timedelta, timezone
start = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(sys.argv[1]))
draft = [("MOVE", 3, 4), ("FOCUS", 7, 11), ("MOVE", 0, 0)]
path, at, before = [], start, None
for kind, x, y in draft:
    if before is not None:
        at = at + timedelta(seconds=math.dist(before, (x, y)) * 0.03)
    path.append({"type": "MOVE", "location": {"x": x, "y": y}, "timestamp": at.isoformat()})
    if kind == "FOCUS":
        for _ in range(5):
            at = at + timedelta(seconds=30 / (5 - 1))
            path.append({"type": "MOVE", "location": {"x": x, "y": y}, "timestamp": at.isoformat()})
    before = (x, y)
sys.stdout.write(json.dumps({"customer": {"customer_id": "12"}, "path": path}))
"#;
        let output = Command::new("python3")
            .args(["-c", script, &start_us.to_string()])
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(answer.body, String::from_utf8(output.stdout).unwrap());
    }
    // The first step is 10 s after the simulated clock's microsecond, not a whole millisecond:
    // three drafts all starting on one would be a one-in-a-billion chance.
    assert!(
        starts.iter().any(|us| us % 1000 != 0),
        "drafts start on whole milliseconds: {starts:?}"
    );
}

#[test]
fn idle_sockets_beyond_the_descriptor_limit_cannot_starve_the_api() {
    let _turn = TIMING.alone();
    let server = Server::start_with_descriptor_limit(
        // One peer may hold them all here: this is about the cap (tests/http_connections.rs has
        // the per-peer share).
        &config_with(
            "    header_timeout: 1s\n    max_connections: 200\n    max_connections_per_peer: 200\n",
        ),
        1024,
    );
    // More idle sockets than the process has descriptors; they never send a byte.
    let idle: Vec<TcpStream> = (0..1100)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    let patient = HttpClient::with_timeout(
        format!("http://127.0.0.1:{}", server.port),
        Duration::from_secs(60),
    );
    let health = patient.try_get("/health").expect("/health answers");
    assert_eq!((health.status, health.body.as_str()), (200, "OK"));
    let answer = patient.post("/produce_entry", r#"{"id": "after-the-flood", "ts": 5}"#);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        server.next_line(Duration::from_secs(10)).payload,
        r#"{"id": "after-the-flood", "ts": 5}"#
    );
    // The server closed the idle sockets it had accepted (end of stream, perhaps after a 408).
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut first, &mut rest).expect("closed, not timed out");
}

#[test]
fn slow_headers_and_slow_bodies_are_cut_off() {
    use std::io::{Read, Write};
    let _turn = TIMING.shared();
    let server = Server::start(
        &config_with("    header_timeout: 1s\n    body_timeout: 1s\n"),
        &[],
        &[],
    );
    let read_all = |stream: &mut TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .expect("the server closes the connection");
        String::from_utf8_lossy(&answer).into_owned()
    };
    // Headers that never end.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"POST /produce_entry HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let answer = read_all(&mut slow);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // A body that never arrives in full: 408 naming the setting, nothing published.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(
        b"POST /produce_entry HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\": \"slow\",",
    )
    .unwrap();
    let answer = read_all(&mut slow);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    // A kept-alive connection that idles is closed too.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = read_all(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("OK"), "{answer}");
    server.no_line_for(Duration::from_millis(300));
}

#[test]
fn hostile_input_is_refused_and_bounded() {
    let _turn = TIMING.shared();
    let server = Server::start(&config_with("    max_events: 5\n"), &[], &[]);
    let soon = wall_ms() + 300;
    let good = |x: i64, offset: i64| step("MOVE", x, 1, &(soon + offset).to_string());
    let draft =
        |steps: &str| format!(r#"{{"customer": {{"customer_id": "1"}}, "path": [{steps}]}}"#);
    let long_id = "7".repeat(257);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/scenario",
            scenario(&long_id, &[good(1, 0)]),
            "customer.customer_id: id of 257 bytes is longer than the limit of 256 bytes",
        ),
        (
            "/produce_entry",
            format!(r#"{{"id": "{}", "ts": 5}}"#, "é".repeat(200)),
            "id: id of 400 bytes is longer than the limit of 256 bytes",
        ),
        (
            "/scenario",
            scenario("1", &(0..6).map(|n| good(n, n)).collect::<Vec<_>>()),
            "path: expands to more than the limit of 5 events per request (max_events)",
        ),
        (
            "/scenario_draft",
            draft(r#"{"type": "ENTER"}, {"type": "FOCUS", "location": {"x": 4, "y": 4}}"#),
            "path: expands to more than the limit of 5 events per request (max_events)",
        ),
        (
            "/scenario_draft",
            draft(&format!(
                r#"{{"type": "MOVE", "location": {{"x": {}, "y": 0}}}}, {{"type": "MOVE", "location": {{"x": {}, "y": 0}}}}"#,
                i64::MAX,
                i64::MIN
            )),
            "path[1].location: too far to walk",
        ),
        (
            "/scenario",
            scenario(
                "1",
                &[step("MOVE", 1, 1, "\"-262143-01-01T00:00:00+0000\"")],
            ),
            "path[0].timestamp: timestamp \"-262143-01-01T00:00:00+0000\" is outside years 1 to 9999",
        ),
        (
            "/produce_entry",
            r#"{"id": 18446744073709551616, "ts": 5}"#.into(),
            "id: the number 18446744073709552000 cannot be kept exactly",
        ),
        (
            "/produce_entry",
            r#"{"id": "1", "ts": 253402300800}"#.into(),
            "ts: 253402300800 is outside years 1 to 9999",
        ),
        (
            "/scenario?recalculate_time=true",
            scenario(
                "1",
                &[
                    step("MOVE", 1, 1, "\"0001-01-01T00:00:00Z\""),
                    step("MOVE", 2, 1, "\"9999-01-01T00:00:00Z\""),
                ],
            ),
            "path[1].timestamp: with recalculate_time it would fall outside years 1 to 9999",
        ),
    ];
    for (path, body, detail) in &cases {
        let answer = server.post(path, body);
        assert_eq!(answer.status, 422, "{path}: {}", answer.body);
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let message = json["detail"].as_str().unwrap();
        assert!(
            message.starts_with(detail),
            "{path}: {message:?} should start with {detail:?}"
        );
        assert!(!message.contains(&"7".repeat(100)), "{message}");
    }
    // Nothing of them was published; the largest accepted id and request still are.
    server.no_line_for(Duration::from_millis(600));
    let longest = "7".repeat(256);
    let answer = server.post(
        "/produce_entry",
        &format!(r#"{{"id": "{longest}", "ts": 5}}"#),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        server.next_line(Duration::from_secs(5)).payload,
        format!(r#"{{"id": "{longest}", "ts": 5}}"#)
    );
    let five: Vec<String> = (0..5).map(|n| good(n, 100 + n)).collect();
    assert_eq!(server.post("/scenario", &scenario("1", &five)).status, 200);
    for _ in 0..5 {
        server.next_line(Duration::from_secs(5));
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[("HTTP_TOKEN", "s3cret")]);
    for header in ["Bearer s3cret", "BEARER s3cret", "bearer s3cret"] {
        let answer = server.http.get_with("/state", &[("Authorization", header)]);
        assert_eq!(answer.status, 200, "{header}: {}", answer.body);
    }
    for header in ["BEARER wrong", "Basic s3cret", "s3cret"] {
        let answer = server.http.get_with("/state", &[("Authorization", header)]);
        assert_eq!(answer.status, 401, "{header}");
    }
}

#[test]
fn state_lists_only_who_is_inside() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[]);
    for n in 0..50 {
        let body = format!(r#"{{"id": "visitor-{n}", "ts": 5}}"#);
        assert_eq!(server.post("/produce_entry", &body).status, 200);
    }
    let body = r#"{"id": "visitor-7", "ts": 6, "x": 3, "y": 4}"#;
    assert_eq!(server.post("/produce_move", body).status, 200);
    for n in (0..50).filter(|n| *n != 7) {
        let body = format!(r#"{{"id": "visitor-{n}", "ts": 9}}"#);
        assert_eq!(server.post("/produce_exit", &body).status, 200);
    }
    let state: serde_json::Value = serde_json::from_str(&server.get("/state", None).body).unwrap();
    assert_eq!(
        state,
        serde_json::json!([{"id": "visitor-7", "x": 3, "y": 4, "since": "1970-01-01T00:00:06.000Z"}])
    );
}

/// The server process's own accounting of its memory: (VmRSS, VmHWM) in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sends `request` on a fresh connection and reads the whole answer (the server closes).
fn raw(port: u16, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("an answer, not a timeout");
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn state_answers_nobody_reads_stay_within_the_memory_budget() {
    use std::io::Write;
    let _turn = TIMING.alone();
    let mut server = Server::start(
        &config_with("    state_memory_bytes: 33554432\n    body_timeout: 1h\n"),
        &[],
        &[],
    );
    // 40,000 shoppers inside with long ids: one /state answer is about 13 MB.
    let port = server.port;
    let fillers: Vec<_> = (0..4)
        .map(|thread| {
            std::thread::spawn(move || {
                let http = HttpClient::local(port);
                for n in 0..10_000 {
                    let id = format!("{thread}-{n:05}-{}", "s".repeat(240));
                    let answer =
                        http.post("/produce_entry", &format!(r#"{{"id": "{id}", "ts": 5}}"#));
                    assert_eq!(answer.status, 200, "{}", answer.body);
                }
            })
        })
        .collect();
    for filler in fillers {
        filler.join().unwrap();
    }
    for _ in 0..40_000 {
        server.next_line(Duration::from_secs(30));
    }
    let pid = server.process.child().id();
    let (_, before) = memory_kb(pid);
    // 30 clients ask for /state and never read a byte of it.
    let stalled: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .write_all(b"GET /state HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Wait until the server has answered (or refused) all of them: its request counter says so.
    let patient =
        HttpClient::with_timeout(format!("http://127.0.0.1:{port}"), Duration::from_secs(120));
    let state_requests = || -> u64 {
        patient
            .get("/metrics")
            .body
            .lines()
            .filter(|line| {
                line.contains("http_requests_total{") && line.contains("route=\"/state\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while state_requests() < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "the /state requests were not answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = raw(
        port,
        b"GET /state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 200")
            || (answer.starts_with("HTTP/1.1 503")
                && answer.to_ascii_lowercase().contains("retry-after: 1")
                && answer.contains("state_memory_bytes")),
        "{}",
        &answer[..answer.len().min(300)]
    );
    // Without the budget, 30 answers of 13 MB (less the few MB the kernel's buffers take of
    // each) stay in the process; within it, at most 32 MiB of them.
    let (rss, peak) = memory_kb(pid);
    assert!(
        peak < before + 150_000,
        "peak {peak} kB (rss {rss} kB) after the stalled /state clients, {before} kB before"
    );
    // Once the clients are gone, their share is given back and /state answers again.
    drop(stalled);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = raw(
            port,
            b"GET /state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if answer.starts_with("HTTP/1.1 200") {
            let (_, body) = answer.split_once("\r\n\r\n").unwrap();
            let inside: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(inside.as_array().unwrap().len(), 40_000);
            break;
        }
        assert!(
            answer.starts_with("HTTP/1.1 503"),
            "{}",
            &answer[..answer.len().min(300)]
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the budget was not given back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn events_held_for_later_are_bounded_in_number_and_in_how_far_ahead() {
    let _turn = TIMING.shared();
    let server = Server::start(
        &config_with("    max_pending_events: 10\n    max_ahead: 1h\n"),
        &[],
        &[],
    );
    let now = wall_ms();
    let later = |offset_ms: i64| (now + offset_ms).to_string();
    // A step dated more than max_ahead after the clock: 422 naming the step and the setting.
    let far = scenario(
        "far",
        &[
            step("MOVE", 1, 1, &later(60_000)),
            step("MOVE", 2, 1, &later(2 * 3_600_000)),
        ],
    );
    let answer = server.post("/scenario", &far);
    assert_eq!(answer.status, 422, "{}", answer.body);
    let detail = serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("path[1].timestamp: ") && detail.contains("max_ahead"),
        "{detail}"
    );
    // Ten events for later fit; one more request of them is refused whole with 429.
    let six: Vec<String> = (0..6)
        .map(|n| step("MOVE", n, 1, &later(1_800_000 + n)))
        .collect();
    assert_eq!(server.post("/scenario", &scenario("a", &six)).status, 200);
    let four: Vec<String> = (0..4)
        .map(|n| step("MOVE", n, 1, &later(1_800_000 + n)))
        .collect();
    assert_eq!(server.post("/scenario", &scenario("b", &four)).status, 200);
    let answer = server.post("/scenario", &scenario("c", &four[..1]));
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(
        answer.body.contains("max_pending_events"),
        "{}",
        answer.body
    );
    // Drafts are held too.
    let answer = server.post(
        "/scenario_draft",
        r#"{"customer": {"customer_id": "d"}, "path": [{"type": "ENTER"}]}"#,
    );
    assert_eq!(answer.status, 429, "{}", answer.body);
    // Nothing of the refused requests was published.
    server.no_line_for(Duration::from_millis(300));
}

#[test]
fn a_body_announced_over_the_limit_is_refused_before_it_is_sent() {
    let _turn = TIMING.shared();
    // With a body timeout of an hour, a server that waited for the body would not answer.
    let server = Server::start(&config_with("    body_timeout: 1h\n"), &[], &[]);
    for path in ["/produce_entry", "/scenario", "/scenario_draft"] {
        let answer = raw(
            server.port,
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\n")
                .as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(
            answer.contains("larger than the limit of 1 MiB"),
            "{answer}"
        );
    }
    server.no_line_for(Duration::from_millis(300));
}

#[test]
fn a_negative_zero_id_is_the_id_0_as_python_reads_it() {
    let _turn = TIMING.shared();
    let server = Server::start(&config(1.0), &[], &[]);
    let answer = server.post("/produce_entry", r#"{"id": -0, "ts": 5}"#);
    assert_eq!((answer.status, answer.body.as_str()), (200, "True"));
    assert_eq!(
        server.next_line(Duration::from_secs(5)).payload,
        r#"{"id": "0", "ts": 5}"#
    );
}
