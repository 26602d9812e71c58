//! The `live_view` sink's bounds against the real binary: what one `/state` answer lists and what
//! clients that never read their answers cost, the cap on open pages, what stalled pages hold and
//! whether memory comes back when pages close; the bearer scheme in any case; the warning for a
//! server open to the network without a token. Memory is read from the process's own accounting
//! (`/proc/PID/status`), never from timings.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use customersim_testkit::http::HttpClient;
use customersim_testkit::net::free_port;
use customersim_testkit::run::{Process, StdoutMode, clean_command};
use customersim_testkit::temp::{TempFile, temp_file};
use serde_json::Value;

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// The binary serving a `live_view` on a free port; killed when dropped.
struct View {
    process: Process,
    port: u16,
    http: HttpClient,
    _config: TempFile,
}

impl View {
    /// Runs `yaml` (whose `live_view` listens on LIVE_VIEW_LISTEN) at `speed`.
    fn start(name: &str, yaml: &str, speed: &str) -> View {
        let port = free_port();
        let config = temp_file(name, yaml);
        let mut command = customersim();
        command
            .args(["run", "--speed", speed, "--config"])
            .arg(config.path())
            .env("LIVE_VIEW_LISTEN", format!("127.0.0.1:{port}"))
            .env("LOG_LEVEL", "warn");
        let process = Process::start(&mut command, StdoutMode::Discard);
        let http = HttpClient::local(port);
        http.wait_until_healthy(Duration::from_secs(30));
        View {
            process,
            port,
            http,
            _config: config,
        }
    }

    fn pid(&mut self) -> u32 {
        self.process.child().id()
    }

    fn state(&self) -> Value {
        let answer = self.http.get("/state");
        assert_eq!(answer.status, 200, "{}", answer.body);
        serde_json::from_str(&answer.body).expect("/state is JSON")
    }

    /// Waits until at least `count` shoppers are inside.
    fn wait_inside(&self, count: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let state = self.state();
            if state["inside"].as_u64() >= Some(count) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "never {count} inside: {state:.200}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A client that sends `GET path`, reads the first bytes of the answer (so the server has
    /// built it and started writing) and then never reads again; returns the status line.
    fn stalled_client(&self, path: &str) -> (TcpStream, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: view\r\n\r\n").unwrap();
        let mut first = [0u8; 12];
        stream
            .read_exact(&mut first)
            .expect("the answer's first bytes");
        (stream, String::from_utf8_lossy(&first).into_owned())
    }
}

/// A figure of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS") as f64 / 1024.0
}

/// Open descriptors of the process.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .count()
}

/// The highest RSS over `samples` readings half a second apart.
fn peak_rss_mib(pid: u32, samples: usize) -> f64 {
    (0..samples)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(500));
            rss_mib(pid)
        })
        .fold(0.0, f64::max)
}

/// A store with about `inside` shoppers who stay for hours of simulated time and rarely move,
/// each with an id of about `id_bytes` bytes, filled within seconds at speed 3600.
fn crowd(inside: u32, id_bytes: usize, live_view: &str) -> String {
    format!(
        "sources:\n  - type: random_walk\n    average_in_store: {inside}\n    mean_visit: 2h\n    \
         min_visit: 1h\n    mean_dwell: 2h\n    id_prefix: \"{}\"\nsinks:\n  - type: live_view\n{live_view}",
        "p".repeat(id_bytes)
    )
}

/// Finding 5: 150,000 listed per answer and 100 clients that never read took 2.25 GB. Now an
/// answer lists at most `state_limit` (default 1,000) and says it was truncated; answers are
/// shared and within one budget, so clients that never read cost a bounded amount.
#[test]
fn state_answers_are_capped_and_clients_that_never_read_cost_a_bounded_amount() {
    let mut view = View::start("state-crowd.yaml", &crowd(60_000, 200, ""), "3600");
    let state = view.wait_inside(50_000);
    assert_eq!(state["truncated"], true, "{:.200}", state.to_string());
    assert_eq!(state["shoppers"].as_array().unwrap().len(), 1_000);
    let pid = view.pid();
    let before = rss_mib(pid);
    // Each old answer (50,000 ids of 200 bytes: over 11 MB) stayed in memory for a client that
    // does not read it, beyond what the kernel's socket buffers took.
    let clients: Vec<_> = (0..25).map(|_| view.stalled_client("/state")).collect();
    for (_, status) in &clients {
        assert_eq!(status, "HTTP/1.1 200");
    }
    let after = peak_rss_mib(pid, 4);
    assert!(
        after - before < 64.0,
        "25 clients that never read their /state answers took RSS from {before:.0} MiB to {after:.0} MiB"
    );
    drop(clients);
    assert_eq!(view.state()["shoppers"].as_array().unwrap().len(), 1_000);
}

/// Finding 6: pages had no cap. One more event stream than `max_pages` gets 503 with a clear
/// message; a page that closes gives its seat back.
#[test]
fn pages_beyond_max_pages_get_503_until_one_closes() {
    let mut view = View::start("pages-cap.yaml", &crowd(10, 1, "    max_pages: 3\n"), "60");
    let mut pages: Vec<_> = (0..3).map(|_| view.stalled_client("/events")).collect();
    for (_, status) in &pages {
        assert_eq!(status, "HTTP/1.1 200");
    }
    let refused = view.http.get("/events");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.contains("max_pages") && refused.body.contains('3'),
        "{}",
        refused.body
    );
    // /state and /health are not pages.
    assert_eq!(view.http.get("/health").status, 200);
    view.state();

    let pid = view.pid();
    let open = descriptors(pid);
    drop(pages.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    while descriptors(pid) >= open {
        assert!(
            Instant::now() < deadline,
            "the closed page's socket is never released"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_page, status) = view.stalled_client("/events");
    assert_eq!(
        status, "HTTP/1.1 200",
        "the closed page's seat is free again"
    );
}

/// Finding 6: 2,000 stalled pages took RSS from 14.6 MB to 1.07 GB (each page buffered frames
/// of its own). Frames are shared and a page holds at most the one being written.
#[test]
fn stalled_pages_hold_a_bounded_amount_of_memory() {
    let mut view = View::start(
        "pages-stalled.yaml",
        &crowd(
            10_000,
            1,
            "    max_pages: 200\n    max_connections: 400\n    max_connections_per_peer: 400\n",
        ),
        "3600",
    );
    view.wait_inside(9_000);
    let pid = view.pid();
    let before = peak_rss_mib(pid, 2);
    let pages: Vec<_> = (0..150).map(|_| view.stalled_client("/events")).collect();
    for (_, status) in &pages {
        assert_eq!(status, "HTTP/1.1 200");
    }
    let after = peak_rss_mib(pid, 16);
    assert!(
        after - before < 40.0,
        "150 stalled pages took RSS from {before:.0} MiB to {after:.0} MiB"
    );
}

/// Finding 6: memory was not given back after pages closed (455 → 909 MB over 6 cycles of
/// opening and closing pages). Nothing per page grows, so the sixth cycle ends about where the
/// second did.
#[test]
fn memory_comes_back_when_pages_close() {
    let mut view = View::start(
        "pages-cycles.yaml",
        &crowd(
            10_000,
            1,
            "    max_pages: 200\n    max_connections: 400\n    max_connections_per_peer: 400\n",
        ),
        "3600",
    );
    view.wait_inside(9_000);
    let pid = view.pid();
    let idle = descriptors(pid);
    let mut after_cycle = Vec::new();
    for _ in 0..6 {
        let pages: Vec<_> = (0..150).map(|_| view.stalled_client("/events")).collect();
        // The pages read a while (a few frames each), then stall, then close.
        std::thread::sleep(Duration::from_secs(3));
        drop(pages);
        let deadline = Instant::now() + Duration::from_secs(60);
        while descriptors(pid) > idle + 2 {
            assert!(
                Instant::now() < deadline,
                "closed pages' sockets are never released"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        after_cycle.push(peak_rss_mib(pid, 2));
    }
    let (second, sixth) = (after_cycle[1], after_cycle[5]);
    assert!(
        sixth < second * 1.25 + 10.0,
        "RSS after each cycle of 150 pages opened and closed: {after_cycle:.0?} MiB"
    );
}

/// Finding 20: http_ingress accepts `Authorization: BEARER tok` (the scheme is
/// case-insensitive), and so does the view now.
#[test]
fn the_bearer_scheme_is_accepted_in_any_case() {
    let view = View::start(
        "bearer-case.yaml",
        &crowd(10, 1, "    token: s3cret\n"),
        "60",
    );
    assert_eq!(view.http.get("/state").status, 401);
    for scheme in ["Bearer", "BEARER", "bearer"] {
        let header = format!("{scheme} s3cret");
        let answer = view
            .http
            .get_with("/state", &[("Authorization", header.as_str())]);
        assert_eq!(answer.status, 200, "{scheme}: {}", answer.body);
    }
    let wrong = view
        .http
        .get_with("/state", &[("Authorization", "BEARER s3cre")]);
    assert_eq!(wrong.status, 401);
}

/// Starts `yaml` with `env`, waits for `/health` on `port`, stops it and returns its stderr.
fn stderr_of_a_short_run(yaml: &str, env: &[(&str, String)], port: u16) -> String {
    let config = temp_file("exposed.yaml", yaml);
    let mut command = customersim();
    command
        .args(["run", "--config"])
        .arg(config.path())
        .env("LOG_LEVEL", "info");
    for (var, value) in env {
        command.env(var, value);
    }
    let process = Process::start(&mut command, StdoutMode::Discard);
    HttpClient::local(port).wait_until_healthy(Duration::from_secs(30));
    process.stop().stderr
}

/// Finding 20: no warning for a view (or the ingress) on 0.0.0.0 without a token. Now one WARN
/// line names the plugin and the address; on loopback, or with a token, there is none.
#[test]
fn a_server_open_to_the_network_without_a_token_is_warned_about() {
    let yaml = "sources:\n  - type: http_ingress\nsinks:\n  - type: live_view\n";
    let (view_port, ingress_port) = (free_port(), free_port());
    let open = stderr_of_a_short_run(
        yaml,
        &[
            ("LIVE_VIEW_LISTEN", format!("0.0.0.0:{view_port}")),
            ("HTTP_LISTEN", format!("0.0.0.0:{ingress_port}")),
        ],
        view_port,
    );
    for (plugin, port) in [("live_view", view_port), ("http_ingress", ingress_port)] {
        let address = format!("0.0.0.0:{port}");
        assert!(
            open.lines().any(|line| line.contains("WARN")
                && line.contains(plugin)
                && line.contains(&address)
                && line.contains("without a token")),
            "no warning for {plugin} on {address}:\n{open}"
        );
    }

    let (view_port, ingress_port) = (free_port(), free_port());
    let guarded = stderr_of_a_short_run(
        yaml,
        &[
            ("LIVE_VIEW_LISTEN", format!("0.0.0.0:{view_port}")),
            ("LIVE_VIEW_TOKEN", "s3cret".into()),
            ("HTTP_LISTEN", format!("127.0.0.1:{ingress_port}")),
        ],
        view_port,
    );
    assert!(
        !guarded.contains("without a token"),
        "a warning with a token or on loopback:\n{guarded}"
    );
}
