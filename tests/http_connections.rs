//! The connection layer both HTTP servers share (`http_ingress` and the `live_view` sink's),
//! through the real binary: connection caps, the per-peer share, idle timeouts, and the
//! descriptor budget checked against `ulimit -n`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use customersim_testkit::net::free_port;
use customersim_testkit::run::{Process, StdoutMode, clean_command};
use customersim_testkit::temp::{TempFile, temp_file};

/// The binary under a descriptor limit of `files` (`ulimit -n`), as a small deployment has,
/// with `http_ingress` and `live_view` on free ports.
struct Run {
    process: Process,
    api: u16,
    view: u16,
    _config: TempFile,
}

impl Run {
    fn start(yaml: &str, files: u32) -> Run {
        let config = temp_file("pipeline.yaml", yaml);
        let (api, view) = (free_port(), free_port());
        let mut command = limited(files);
        command
            .args(["run", "--config"])
            .arg(config.path())
            .env("HTTP_LISTEN", format!("127.0.0.1:{api}"))
            .env("LIVE_VIEW_LISTEN", format!("127.0.0.1:{view}"))
            .env("LOG_LEVEL", "warn");
        let process = Process::start(&mut command, StdoutMode::Lines);
        let run = Run {
            process,
            api,
            view,
            _config: config,
        };
        run.wait_until_healthy(run.api);
        if yaml.contains("live_view") {
            run.wait_until_healthy(run.view);
        }
        run
    }

    fn wait_until_healthy(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if try_request("127.0.0.1", port, "GET", "/health", "")
                .is_ok_and(|answer| answer.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("port {port} did not answer /health");
    }

    fn pid(&mut self) -> u32 {
        self.process.child().id()
    }
}

/// `customersim` under `ulimit -n files` (`exec`, so the pid is the binary's).
fn limited(files: u32) -> Command {
    let mut command = clean_command("/bin/sh");
    command.args([
        "-c",
        &format!("ulimit -n {files} && exec \"$0\" \"$@\""),
        env!("CARGO_BIN_EXE_customersim"),
    ]);
    command
}

/// A connection to 127.0.0.1:`port` from the loopback address `from` (any 127.x.y.z works on
/// Linux), so a test can be several peers.
fn connect_from(from: &str, port: u16) -> std::io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(format!("{from}:0").parse().unwrap())?;
        socket
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await?
            .into_std()
    })?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// One request from `from` (`Connection: close`) and the whole answer. Waits at most 60 s for
/// it: a server that never answers fails the test instead of hanging it.
fn try_request(
    from: &str,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<String> {
    let mut stream = connect_from(from, port)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn request(from: &str, port: u16, method: &str, path: &str, body: &str) -> String {
    try_request(from, port, method, path, body)
        .unwrap_or_else(|error| panic!("{method} {path} from {from}: {error}"))
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Idle sockets that never send a byte.
fn idle_sockets(port: u16, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect()
}

#[test]
fn idle_sockets_on_the_live_view_leave_descriptors_for_the_api_and_are_closed() {
    // The view's cap (with a per-peer share as large, so the cap itself is what holds) and a
    // short header timeout; the API's defaults.
    let mut run = Run::start(
        "sources:\n  - type: http_ingress\nsinks:\n  - type: stdout\n  - type: live_view\n    max_connections: 100\n    max_connections_per_peer: 100\n    header_timeout: 1s\n",
        1024,
    );
    let pid = run.pid();
    let before = open_descriptors(pid);
    // More idle sockets on the view than the process has descriptors.
    let idle = idle_sockets(run.view, 1100);
    // The API still answers, and publishes.
    let health = request("127.0.0.1", run.api, "GET", "/health", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let produced = request(
        "127.0.0.1",
        run.api,
        "POST",
        "/produce_entry",
        r#"{"id": "beside-the-flood", "ts": 5}"#,
    );
    assert!(produced.starts_with("HTTP/1.1 200"), "{produced}");
    let line = run
        .process
        .lines()
        .recv_timeout(Duration::from_secs(10))
        .expect("the event on stdout");
    assert!(line.text.contains("beside-the-flood"), "{}", line.text);
    // The view serves within its cap: never more descriptors than it allows.
    assert!(
        open_descriptors(pid) <= before + 100 + 2,
        "{} descriptors open, {before} before",
        open_descriptors(pid)
    );
    // It closed the idle sockets it had accepted (end of stream, perhaps after a 408)...
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).expect("closed, not timed out");
    // ...and, once the flood is gone, serves again and gives its descriptors back.
    drop(idle);
    run.wait_until_healthy(run.view);
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_descriptors(pid) > before + 2 {
        assert!(
            Instant::now() < deadline,
            "{} descriptors still open, {before} before the flood",
            open_descriptors(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn caps_that_leave_no_descriptors_for_the_sinks_are_refused_at_start() {
    // 800 + 128 (the view's default) + 128 kept for the sinks' own connections > 1024.
    let config = temp_file(
        "pipeline.yaml",
        "sources:\n  - type: http_ingress\n    max_connections: 800\nsinks:\n  - type: stdout\n  - type: live_view\n",
    );
    let mut command = limited(1024);
    command
        .args(["run", "--config"])
        .arg(config.path())
        .env("HTTP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LIVE_VIEW_LISTEN", format!("127.0.0.1:{}", free_port()));
    let mut process = Process::start(&mut command, StdoutMode::Collect);
    let status = process.wait(Duration::from_secs(30));
    let finished = process.finish();
    assert_eq!(status.code(), Some(2), "{}", finished.stderr);
    assert!(
        finished.stderr.contains(
            "live_view.max_connections: 128 connections, the 800 of the other HTTP servers"
        ) && finished.stderr.contains("limit of 1024 (ulimit -n)"),
        "{}",
        finished.stderr
    );
}

#[test]
fn one_peers_idle_sockets_cannot_starve_health_for_other_peers() {
    // A small cap and a header timeout of an hour: nothing frees a slot by itself.
    let mut run = Run::start(
        "sources:\n  - type: http_ingress\n    max_connections: 40\n    header_timeout: 1h\nsinks:\n  - type: stdout\n",
        1024,
    );
    let pid = run.pid();
    let before = open_descriptors(pid);
    // One client (127.0.0.1) opens far more idle sockets than the cap; it keeps its share
    // (a quarter, 10) and the rest are closed at once.
    let idle = idle_sockets(run.api, 200);
    // Another peer is still served, at once.
    let health = request("127.0.0.2", run.api, "GET", "/health", "");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("OK"),
        "{health}"
    );
    let produced = request(
        "127.0.0.3",
        run.api,
        "POST",
        "/produce_entry",
        r#"{"id": "another-peer", "ts": 5}"#,
    );
    assert!(produced.starts_with("HTTP/1.1 200"), "{produced}");
    // The flooding peer holds no more than its share of descriptors.
    assert!(
        open_descriptors(pid) <= before + 10 + 2,
        "{} descriptors open, {before} before",
        open_descriptors(pid)
    );
    drop(idle);
}
