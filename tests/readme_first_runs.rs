//! Every command of the README's *Quick start* (its first runs included) works as written on a
//! fresh clone with no broker: the commands are read from the README itself, so the README and
//! this test cannot drift apart. `cargo run --release --` stands for the binary under test; a
//! command must end on its own (a `--duration`, or `| head`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use customersim_testkit::run::{clean_command, stderr_text, terminate};

/// What the README writes before the binary's arguments.
const CARGO_RUN: &str = "cargo run --release --";

/// The `cargo run` commands of the README's *Quick start* section, comments removed.
fn quick_start_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("\n## Quick start")
        .nth(1)
        .expect("a Quick start section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut commands = Vec::new();
    let mut in_code = false;
    for line in section.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let command = line.split(" # ").next().unwrap().trim();
        if in_code && command.contains(CARGO_RUN) {
            commands.push(command.to_string());
        }
    }
    commands
}

/// One README command: `VAR=value … cargo run --release -- ARGS [| head -n N]`.
struct ReadmeCommand {
    env: Vec<(String, String)>,
    args: Vec<String>,
    head: Option<usize>,
}

fn parse(command: &str) -> ReadmeCommand {
    let (command, head) = match command.split_once('|') {
        Some((command, pipe)) => {
            let words: Vec<&str> = pipe.split_whitespace().collect();
            assert_eq!(
                words.first(),
                Some(&"head"),
                "only `| head` is understood: {pipe}"
            );
            let lines = match words.get(1..) {
                Some(["-n", n]) => n.parse().unwrap(),
                Some([n]) if n.starts_with('-') => n[1..].parse().unwrap(),
                _ => 10,
            };
            (command, Some(lines))
        }
        None => (command, None),
    };
    let (before, after) = command.split_once(CARGO_RUN).unwrap();
    let env = before
        .split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("VAR=value before cargo run");
            (name.to_string(), value.to_string())
        })
        .collect();
    let args = after.split_whitespace().map(str::to_string).collect();
    ReadmeCommand { env, args, head }
}

#[test]
fn every_quick_start_command_works_as_written_without_a_broker() {
    let commands = quick_start_commands();
    assert!(
        commands.len() >= 4,
        "the Quick start's commands were found: {commands:?}"
    );
    for text in commands {
        let readme = parse(&text);
        let runs = readme.args.first().map(String::as_str) == Some("run");
        assert!(
            !runs || readme.head.is_some() || readme.args.iter().any(|arg| arg == "--duration"),
            "a README run must end on its own (--duration or | head): {text}"
        );
        // As on a fresh clone: from the repository, none of the developer's settings (the
        // HTTP API gets a free port, as tests running at once would collide on 8000).
        let mut command = clean_command(env!("CARGO_BIN_EXE_customersim"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(&readme.args)
            .envs(readme.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match readme.head {
            None => {
                let output = command.output().unwrap();
                assert!(
                    output.status.success(),
                    "{text}: {:?}\n{}",
                    output.status,
                    stderr_text(&output)
                );
                assert!(!output.stdout.is_empty(), "{text}: prints something");
            }
            Some(lines) => {
                let mut child = command
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let stdout = BufReader::new(child.stdout.take().unwrap());
                let read = stdout.lines().take(lines).count();
                assert_eq!(read, lines, "{text}");
                terminate(&child);
                child.wait().unwrap();
            }
        }
    }
}

#[test]
fn readme_commands_are_parsed_as_a_shell_would() {
    let command =
        parse("TESTING_MOCK_MQTT=true cargo run --release -- run --duration 1m | head -n 3");
    assert_eq!(
        command.env,
        [("TESTING_MOCK_MQTT".to_string(), "true".to_string())]
    );
    assert_eq!(command.args, ["run", "--duration", "1m"]);
    assert_eq!(command.head, Some(3));
}

/// The Quick start's first command, as the README writes it: the first `cargo run` line.
fn first_command() -> ReadmeCommand {
    parse(&quick_start_commands()[0])
}

#[test]
fn the_first_command_needs_no_free_port() {
    // Port 8000 (the built-in pipeline's HTTP API) is taken, by this test or by someone else:
    // either way the first command must still run to its end and print events.
    let _held = std::net::TcpListener::bind("127.0.0.1:8000");
    let first = first_command();
    let output = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("HTTP_LISTEN")
        .args(&first.args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_text(&output));
    let events = output.stdout.split(|&byte| byte == b'\n').count();
    assert!(events > 100, "{events} lines");
    assert!(
        !stderr_text(&output).contains("listening on"),
        "the first command opens no port: {}",
        stderr_text(&output)
    );
}

#[test]
fn the_built_in_http_api_listens_on_loopback_unless_told_otherwise() {
    let output = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .env_remove("HTTP_LISTEN")
        .env("MQTT_HOST", "broker.example")
        .arg("validate")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_text(&output));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("listen: 127.0.0.1:8000"), "{shown}");

    // The container image is where the API must be reachable from outside: it says so itself.
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(
        dockerfile
            .lines()
            .any(|line| line.trim() == "ENV HTTP_LISTEN=0.0.0.0:8000"),
        "{dockerfile}"
    );
}
