//! Shared helpers for integration tests: run the real `customersim` binary and read what the
//! stdout sink printed.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Environment variables of the original service and of this one that must not leak from the
/// developer's shell into a test.
const SCRUBBED: &[&str] = &[
    "STORE_WIDTH",
    "STORE_HEIGHT",
    "STORE_DOOR",
    "CUSTOMERS_AVERAGE_IN_STORE",
    "CUSTOMERS_LIST_FILE",
    "MQTT_HOST",
    "MQTT_PORT",
    "MQTT_CLIENT_ID",
    "MQTT_USERNAME",
    "MQTT_PASSWORD",
    "MQTT_BROKER_CERT_FILE",
    "MQTT_CLIENT_CERT_FILE",
    "MQTT_CLIENT_KEY_FILE",
    "MQTT_PROTOCOL_VERSION",
    "MQTT_QOS",
    "ENTER_TOPIC",
    "MOVE_TOPIC",
    "EXIT_TOPIC",
    "LOG_LEVEL",
    "LOG_FILENAME",
    "CONSUME_FREQUENCY",
    "CONSUME_FROM",
    "CONSUME_BATCH_SIZE",
    "TESTING_MOCK_MQTT",
    "SINKS",
    "SIMULATION_SEED",
    "SIMULATION_SPEED",
    "SIMULATION_START",
    "SIMULATION_DURATION",
    "AMQP_URL",
    "REDIS_URL",
    "REDIS_KEY",
    "HTTP_LISTEN",
    "HTTP_TOKEN",
    "TIMELINE_BACKEND",
];

/// A `customersim` command with a clean environment (PATH and HOME kept; HTTP_LISTEN on an
/// ephemeral port).
pub fn customersim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_customersim"));
    for var in SCRUBBED {
        command.env_remove(var);
    }
    // The built-in pipeline serves HTTP on 0.0.0.0:8000; tests running it in parallel would
    // collide there, so each gets an ephemeral port unless the test sets HTTP_LISTEN itself.
    command.env("HTTP_LISTEN", "127.0.0.1:0");
    command.stdin(Stdio::null());
    command
}

/// Runs to the end and returns the output; panics with stderr if it did not exit 0.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("customersim runs");
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// One stdout-sink line, split into topic and the exact payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub topic: String,
    /// The payload object's bytes, exactly as a broker would receive them.
    pub payload: String,
}

/// Splits stdout-sink output into lines; panics on anything that is not a stdout-sink line.
pub fn parse_lines(stdout: &[u8]) -> Vec<Line> {
    let text = std::str::from_utf8(stdout).expect("utf-8 output");
    text.lines()
        .map(|line| {
            let rest = line
                .strip_prefix("{\"topic\": ")
                .unwrap_or_else(|| panic!("not a stdout sink line: {line}"));
            let (topic, rest) = rest.split_once(", \"payload\": ").expect("payload member");
            let payload = rest.strip_suffix('}').expect("closing brace");
            Line {
                topic: serde_json::from_str(topic).expect("topic is a JSON string"),
                payload: payload.to_string(),
            }
        })
        .collect()
}

/// Writes `text` to a new file in a fresh temp folder and returns its path.
pub fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "customersim-test-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The folder of the repository's `configs/`.
pub fn configs_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs"))
}

/// Starts `command` with stdout and stderr piped.
pub fn spawn_piped(command: &mut Command) -> std::process::Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("customersim starts")
}

/// Sends SIGTERM to a child (what Kubernetes and `docker stop` send).
pub fn terminate(child: &std::process::Child) {
    // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// Runs to the end, asserts the exit code (showing stderr if it differs) and returns the output
/// with its stderr as text: the shape of every bad-input and refused-connection check.
pub fn run_failing(command: &mut Command, code: i32) -> (Output, String) {
    let output = command.output().expect("customersim runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    (output, stderr)
}
