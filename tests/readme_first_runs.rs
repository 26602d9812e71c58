//! Every command of the README and of the book (`docs/book/src`) works as written: the commands
//! are read from the documents themselves, so they and this test cannot drift apart. The README's
//! *Quick start* runs on a fresh clone with no broker; elsewhere, every fenced shell command that
//! runs customersim and needs no broker (it prints, validates or lists) runs too, and a bare
//! `customersim` only appears after the reader was shown `cargo install --path .` (the README,
//! then the book's chapters in the order of its summary). `cargo run --release --` and
//! `customersim` stand for the binary under test; a run must end on its own (a `--duration`, or
//! `| head`) or is stopped with SIGTERM once it has started, and must then exit 0.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use customersim_testkit::run::{clean_command, stderr_text, terminate};

/// What the documents write before the binary's arguments.
const CARGO_RUN: &str = "cargo run --release --";

/// The command that puts `customersim` on the PATH; bare `customersim` commands come after it.
const INSTALL: &str = "cargo install --path .";

/// One line of a fenced shell block, comment removed: its document, its line number there, the
/// `## ` section it is in, and its place in reading order.
struct ShellLine {
    document: String,
    number: usize,
    order: usize,
    section: String,
    text: String,
}

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn readme() -> String {
    std::fs::read_to_string(repository("README.md")).unwrap()
}

/// The README, then the book's chapters in the order of `SUMMARY.md`: (path, text).
fn documents() -> Vec<(String, String)> {
    let summary = std::fs::read_to_string(repository("docs/book/src/SUMMARY.md")).unwrap();
    let mut documents = vec![("README.md".to_string(), readme())];
    for link in summary.split("](").skip(1) {
        let target = link.split(')').next().unwrap();
        if target.is_empty() {
            continue;
        }
        let path = format!("docs/book/src/{target}");
        if documents.iter().any(|(seen, _)| *seen == path) {
            continue;
        }
        let text = std::fs::read_to_string(repository(&path))
            .unwrap_or_else(|error| panic!("{path}: {error}"));
        documents.push((path, text));
    }
    assert!(documents.len() >= 8, "the book's chapters were found");
    documents
}

/// Every line of the documents' fenced `sh` blocks, comments removed, in reading order.
fn shell_lines() -> Vec<ShellLine> {
    let mut lines = Vec::new();
    for (document, text) in documents() {
        let mut section = String::new();
        let mut in_shell = false;
        let mut in_other = false;
        for (index, line) in text.lines().enumerate() {
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
            let order = lines.len();
            lines.push(ShellLine {
                document: document.clone(),
                number: index + 1,
                order,
                section: section.clone(),
                text: text.to_string(),
            });
        }
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
        .filter(|line| {
            line.document == "README.md"
                && line.section == "Quick start"
                && line.text.contains(CARGO_RUN)
        })
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
fn every_command_of_the_readme_and_the_book_without_a_broker_works_as_written() {
    let commands: Vec<ShellLine> = shell_lines()
        .into_iter()
        .filter(|line| {
            !(line.document == "README.md" && line.section == "Quick start")
                && runs_customersim(&line.text)
        })
        .collect();
    assert!(commands.len() >= 3, "README commands were found");
    let mut ran = 0;
    for line in &commands {
        let readme = parse(&line.text);
        if needs_broker(&readme) {
            continue;
        }
        run_as_written(
            &format!("{}:{}: {}", line.document, line.number, line.text),
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
        .expect("the README shows `cargo install --path .`");
    assert_eq!(installed.document, "README.md");
    for line in lines.iter().filter(|line| runs_customersim(&line.text)) {
        assert!(
            line.text.contains(CARGO_RUN) || line.order > installed.order,
            "{}:{}: `{}` runs a bare customersim before {}:{} installs it",
            line.document,
            line.number,
            line.text,
            installed.document,
            installed.number
        );
    }
    // The book read on its own shows the install before its first bare customersim too.
    let book: Vec<&ShellLine> = lines
        .iter()
        .filter(|line| line.document != "README.md")
        .collect();
    let book_install = book
        .iter()
        .find(|line| line.text == INSTALL)
        .expect("the book shows `cargo install --path .`");
    for line in book.iter().filter(|line| runs_customersim(&line.text)) {
        assert!(
            line.text.contains(CARGO_RUN) || line.order > book_install.order,
            "{}:{}: `{}` runs a bare customersim before the book installs it",
            line.document,
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
    let text: String = documents().into_iter().map(|(_, text)| text).collect();
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
