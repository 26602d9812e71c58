//! Every command of the README works as written: the commands are read from the README itself, so
//! the README and this test cannot drift apart. The *Quick start* runs on a fresh clone with no
//! broker; elsewhere, every fenced shell command that runs customersim and needs no broker (it
//! prints, validates or lists) runs too, and a bare `customersim` only appears after the README has
//! shown `cargo install --path .`. `cargo run --release --` and `customersim` stand for the binary
//! under test; a run must end on its own (a `--duration`, or `| head`) or is stopped with SIGTERM
//! once it has started, and must then exit 0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use customersim_testkit::run::{clean_command, stderr_text, terminate};

/// What the README writes before the binary's arguments.
const CARGO_RUN: &str = "cargo run --release --";

/// The command that puts `customersim` on the PATH; bare `customersim` commands come after it.
const INSTALL: &str = "cargo install --path .";

/// One line of a fenced shell block of the README, comment removed, with its line number and the
/// `## ` section it is in.
struct ShellLine {
    number: usize,
    section: String,
    text: String,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// Every line of the README's fenced `sh` blocks, comments removed.
fn shell_lines() -> Vec<ShellLine> {
    let mut lines = Vec::new();
    let mut section = String::new();
    let mut in_shell = false;
    let mut in_other = false;
    for (index, line) in readme().lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(fence) = trimmed.strip_prefix("```") {
            if in_shell || in_other {
                (in_shell, in_other) = (false, false);
            } else if matches!(fence.trim(), "sh" | "bash" | "shell") {
                in_shell = true;
            } else {
                in_other = true;
            }
            continue;
        }
        if let Some(title) = line.strip_prefix("## ")
            && !in_shell
            && !in_other
        {
            section = title.trim().to_string();
        }
        if !in_shell {
            continue;
        }
        let text = match line.split_once(" # ") {
            Some((command, _comment)) => command,
            None => line,
        }
        .trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        lines.push(ShellLine {
            number: index + 1,
            section: section.clone(),
            text: text.to_string(),
        });
    }
    lines
}

/// Whether a shell line runs customersim: through cargo, or bare once installed.
fn runs_customersim(text: &str) -> bool {
    text.contains(CARGO_RUN)
        || text
            .split_whitespace()
            .find(|word| !word.contains('='))
            .is_some_and(|program| program == "customersim")
}

/// The `cargo run` commands of the README's *Quick start* section, comments removed.
fn quick_start_commands() -> Vec<String> {
    shell_lines()
        .into_iter()
        .filter(|line| line.section == "Quick start" && line.text.contains(CARGO_RUN))
        .map(|line| line.text)
        .collect()
}

/// One README command: `VAR=value … cargo run --release -- ARGS [| head -n N] [> /dev/null]`
/// (or `customersim ARGS …`).
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
    let command = command.split(" > ").next().unwrap();
    let (before, after) = command
        .split_once(CARGO_RUN)
        .or_else(|| command.split_once("customersim "))
        .expect("a customersim command");
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

/// Whether a README command talks to a broker (a run publishing to MQTT or AMQP): those are
/// not run here. Listing, validating (which connects nothing) and printing runs are.
fn needs_broker(command: &ReadmeCommand) -> bool {
    if command.args.first().map(String::as_str) != Some("run") {
        return false;
    }
    let mocked = command
        .env
        .iter()
        .any(|(name, value)| name == "TESTING_MOCK_MQTT" && value == "true");
    let sinks: Vec<&str> = command
        .args
        .windows(2)
        .filter(|pair| pair[0] == "--sink")
        .map(|pair| pair[1].as_str())
        .collect();
    let printing = !sinks.is_empty()
        && sinks
            .iter()
            .all(|sink| matches!(*sink, "stdout" | "live_view"));
    !(mocked || printing)
}

/// Runs one README command as written, as on a fresh clone: from the repository, none of the
/// developer's settings (the servers get free ports, as tests running at once would collide).
/// A run that does not end on its own is stopped with SIGTERM once it has logged that it
/// started; every command must exit 0.
fn run_as_written(text: &str, readme: &ReadmeCommand) {
    let mut command = clean_command(env!("CARGO_BIN_EXE_customersim"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LIVE_VIEW_LISTEN", "127.0.0.1:0")
        .args(&readme.args)
        .envs(readme.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let runs = readme.args.first().map(String::as_str) == Some("run");
    let ends = !runs || readme.args.iter().any(|arg| arg == "--duration");
    match readme.head {
        None if ends => {
            let output = command.output().unwrap();
            assert!(
                output.status.success(),
                "{text}: {:?}\n{}",
                output.status,
                stderr_text(&output)
            );
            assert!(!output.stdout.is_empty(), "{text}: prints something");
        }
        None => {
            let mut child = command
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Signals are handled from the moment the run logs that it starts.
            let stderr = BufReader::new(child.stderr.take().unwrap());
            let started = stderr
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains("starting at"));
            assert!(started, "{text}: logs that it started");
            terminate(&child);
            let status = child.wait().unwrap();
            assert!(status.success(), "{text}: {status:?} after SIGTERM");
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
            "a Quick start run must end on its own (--duration or | head): {text}"
        );
        assert!(
            !needs_broker(&readme),
            "the Quick start needs no broker: {text}"
        );
        run_as_written(&text, &readme);
    }
}

#[test]
fn every_readme_command_without_a_broker_works_as_written() {
    let commands: Vec<ShellLine> = shell_lines()
        .into_iter()
        .filter(|line| line.section != "Quick start" && runs_customersim(&line.text))
        .collect();
    assert!(commands.len() >= 3, "README commands were found");
    let mut ran = 0;
    for line in &commands {
        let readme = parse(&line.text);
        if needs_broker(&readme) {
            continue;
        }
        run_as_written(
            &format!("README.md:{}: {}", line.number, line.text),
            &readme,
        );
        ran += 1;
    }
    assert!(ran >= 2, "{ran} README commands ran");
}

#[test]
fn a_bare_customersim_comes_only_after_the_readme_installs_it() {
    let lines = shell_lines();
    let installed = lines
        .iter()
        .find(|line| line.text == INSTALL)
        .map(|line| line.number)
        .expect("the README shows `cargo install --path .`");
    for line in lines.iter().filter(|line| runs_customersim(&line.text)) {
        assert!(
            line.text.contains(CARGO_RUN) || line.number > installed,
            "README.md:{}: `{}` runs a bare customersim before line {installed} installs it",
            line.number,
            line.text
        );
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

#[test]
fn the_readme_lists_every_cargo_feature_of_the_built_in_plugins() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let default = manifest
        .lines()
        .find_map(|line| line.strip_prefix("default = ["))
        .expect("a default feature list");
    let features: Vec<&str> = default
        .trim_end_matches(']')
        .split(',')
        .map(|feature| feature.trim().trim_matches('"'))
        .filter(|feature| !feature.is_empty())
        .collect();
    let text = readme();
    let sentence = text
        .split("Every built-in plugin is a cargo feature of `customersim`")
        .nth(1)
        .expect("the README's feature list")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let listed: Vec<&str> = sentence.split('`').skip(1).step_by(2).collect();
    let mut expected = features.clone();
    expected.sort_unstable();
    let mut seen = listed.clone();
    seen.sort_unstable();
    assert_eq!(
        seen, expected,
        "README lists {listed:?}; Cargo.toml has {features:?}"
    );
    for (_, feature) in customersim::registry::BUILT_IN_FEATURES {
        assert!(features.contains(feature), "{feature} is a default feature");
    }
}
