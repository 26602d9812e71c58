//! Benchmark of the `http_ingress` source, through real HTTP against the release binary:
//!
//! - scenario ingestion: steps per second accepted by `POST /scenario`, 1,000-step bodies with
//!   ISO 8601 timestamps, from 1 and from 4 concurrent keep-alive clients;
//! - `POST /produce_move` requests per second (each published at once to the stdout sink, whose
//!   output goes to /dev/null), from 4 concurrent clients.
//!
//! Run: `cargo bench --bench http_ingress` (prints the figures). The original Python service
//! accepted about 28,000 steps/s; the target is 20 times that, 560,000 steps/s.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use customersim_testkit::http::HttpClient;
use customersim_testkit::net::free_port;
use customersim_testkit::run::clean_command;
use customersim_testkit::temp::{TempFile, temp_file};

const STEPS_PER_BODY: usize = 1_000;
const CLIENTS: usize = 4;
/// Scenario requests per client in a measured round.
const SCENARIO_REQUESTS: usize = 400;
/// produce_move requests per client.
const PRODUCE_REQUESTS: usize = 20_000;
/// The original service's ingestion rate, steps per second (from the issue).
const ORIGINAL_STEPS_PER_SECOND: f64 = 28_000.0;

/// The service under load; killed when dropped, its pipeline file removed.
struct Service {
    child: Child,
    _config: TempFile,
}

impl Service {
    /// CPU seconds the service has used so far (user + system, from /proc; 0 elsewhere).
    fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return 0.0;
        };
        // Fields after the command name (which is in parentheses): state is field 3; utime and
        // stime are fields 14 and 15, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that waits as long as a loaded service may take.
fn client(base: &str) -> HttpClient {
    HttpClient::with_timeout(base, Duration::from_secs(30))
}

fn start() -> (Service, String) {
    let port = free_port();
    let config = temp_file(
        "pipeline.yaml",
        "timeline:\n  consume_frequency: 1.0\nsources:\n  - type: http_ingress\nsinks:\n  - type: stdout\n",
    );
    let child = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .args(["run", "--config"])
        .arg(&config)
        .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the release binary starts");
    let service = Service {
        child,
        _config: config,
    };
    let base = format!("http://127.0.0.1:{port}");
    client(&base).wait_until_healthy(Duration::from_secs(30));
    (service, base)
}

/// A 1,000-step scenario for `customer`, due in 2100 (so nothing is published while measuring).
fn scenario_body(customer: usize) -> String {
    let mut body = format!(r#"{{"customer": {{"customer_id": "{customer}"}}, "path": ["#);
    for step in 0..STEPS_PER_BODY {
        if step > 0 {
            body.push_str(", ");
        }
        let kind = match step {
            0 => "ENTER",
            s if s == STEPS_PER_BODY - 1 => "EXIT",
            _ => "MOVE",
        };
        body.push_str(&format!(
            r#"{{"type": "{kind}", "location": {{"x": {}, "y": {}}}, "timestamp": "2100-01-01T{:02}:{:02}:{:02}.000Z"}}"#,
            step % 6,
            step % 10,
            step / 3600,
            step / 60 % 60,
            step % 60
        ));
    }
    body.push_str("]}");
    body
}

/// Sends `requests` bodies per client from `clients` threads; returns the seconds it took.
fn drive(base: &str, path: &str, bodies: Arc<Vec<String>>, clients: usize, requests: usize) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|sender| {
            let http = client(base);
            let path = path.to_string();
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                for request in 0..requests {
                    let body = &bodies[(sender + request * clients) % bodies.len()];
                    let answer = http.post(&path, body);
                    assert!(
                        answer.status == 200 && answer.body == "True",
                        "{}: {}",
                        answer.status,
                        answer.body
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let (service, base) = start();
    let bodies = Arc::new((0..64).map(scenario_body).collect::<Vec<_>>());
    println!(
        "http_ingress benchmark: {STEPS_PER_BODY}-step /scenario bodies of {} KiB",
        bodies[0].len() / 1024
    );
    // Warm up connections, allocator and timeline.
    drive(&base, "/scenario", bodies.clone(), CLIENTS, 25);

    for clients in [1, CLIENTS] {
        let requests = SCENARIO_REQUESTS * CLIENTS / clients / 2;
        let cpu = service.cpu_seconds();
        let seconds = drive(&base, "/scenario", bodies.clone(), clients, requests);
        let busy = (service.cpu_seconds() - cpu) / seconds;
        let steps = (clients * requests * STEPS_PER_BODY) as f64;
        let rate = steps / seconds;
        println!(
            "POST /scenario, {clients} client(s): {:.0} steps/s ({:.0} requests/s, {:.1}x the original's {:.0} steps/s; service busy {:.2} cores: {:.0} steps/s per service core)",
            rate,
            (clients * requests) as f64 / seconds,
            rate / ORIGINAL_STEPS_PER_SECOND,
            ORIGINAL_STEPS_PER_SECOND,
            busy,
            rate / busy.max(0.01)
        );
    }

    let cpu = service.cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let http = client(&base);
            std::thread::spawn(move || {
                for _ in 0..PRODUCE_REQUESTS {
                    assert_eq!(http.get("/health").body, "OK");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "GET /health, {CLIENTS} clients (the HTTP round trip alone): {:.0} requests/s (service busy {:.2} cores)",
        (CLIENTS * PRODUCE_REQUESTS) as f64 / seconds,
        (service.cpu_seconds() - cpu) / seconds
    );

    let produce: Arc<Vec<String>> = Arc::new(
        (0..64)
            .map(|id| format!(r#"{{"id": "{id}", "ts": 192326400, "x": 2, "y": 3}}"#))
            .collect(),
    );
    drive(&base, "/produce_move", produce.clone(), CLIENTS, 500);
    let cpu = service.cpu_seconds();
    let seconds = drive(&base, "/produce_move", produce, CLIENTS, PRODUCE_REQUESTS);
    println!(
        "POST /produce_move, {CLIENTS} clients, stdout sink to /dev/null: {:.0} requests/s (service busy {:.2} cores)",
        (CLIENTS * PRODUCE_REQUESTS) as f64 / seconds,
        (service.cpu_seconds() - cpu) / seconds
    );
}
