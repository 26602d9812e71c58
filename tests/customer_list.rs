//! The `customer_list` source with `random_walk`, through the real binary: the shoppers are the
//! listed customers, never inside twice, and bad lists are refused with exit code 2.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use customersim_testkit::run::{clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::{Line, parse_lines};
use customersim_testkit::temp::{TempFile, temp_file};

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// The repository root, where the built-in default pipeline finds `configs/`.
const REPOSITORY: &str = env!("CARGO_MANIFEST_DIR");

/// A CSV in the original's format with the given ids.
fn csv_of(ids: impl IntoIterator<Item = String>) -> String {
    let mut text = String::from(
        "customer_id,name,age_range,marital_status,family_size,no_of_children,income_bracket,gender\n",
    );
    for id in ids {
        text.push_str(&format!("{id},Name {id},26-35,Single,1,,4,F\n"));
    }
    text
}

/// A pipeline file beside `customers.csv` in a fresh folder (removed with the returned file).
fn pipeline_with_list(list: &str, average_in_store: f64) -> TempFile {
    let config = temp_file(
        "pipeline.yaml",
        &format!(
            "simulation: {{seed: 7, start: \"2026-01-05T09:00:00Z\"}}\n\
             sources:\n  - type: random_walk\n    average_in_store: {average_in_store}\n    mean_dwell: 2m\n\
             \x20 - type: customer_list\n    path: customers.csv\n\
             sinks:\n  - type: stdout\n"
        ),
    );
    std::fs::write(config.dir().join("customers.csv"), list).unwrap();
    config
}

fn run_max(config: &Path, duration: &str) -> Command {
    let mut command = customersim();
    command
        .args(["run", "--config"])
        .arg(config)
        .args(["--speed", "max", "--duration", duration]);
    command
}

#[derive(Debug)]
struct Parsed {
    id: String,
    ts: i64,
    kind: &'static str,
}

fn parse(lines: &[Line]) -> Vec<Parsed> {
    lines
        .iter()
        .map(|line| {
            let payload: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
            let kind = match line.topic.as_str() {
                "customer/enter" => "enter",
                "customer/move" => "move",
                "customer/exit" => "exit",
                other => panic!("topic {other}"),
            };
            Parsed {
                id: payload["id"].as_str().expect("id is a string").to_string(),
                ts: payload["ts"].as_i64().unwrap(),
                kind,
            }
        })
        .collect()
}

/// Checks that every id is listed and nobody is inside twice; returns the most inside at once
/// and the time-weighted mean number inside over [from_ts, to_ts).
fn check_walks(
    events: &[Parsed],
    listed: &HashSet<String>,
    from_ts: i64,
    to_ts: i64,
) -> (usize, f64) {
    let mut inside = HashSet::new();
    let (mut most, mut area, mut last) = (0, 0f64, from_ts);
    for event in events {
        assert!(
            listed.contains(&event.id),
            "id {} is not in the list",
            event.id
        );
        let clamped = event.ts.clamp(from_ts, to_ts);
        area += (inside.len() as i64 * (clamped - last)) as f64;
        last = clamped;
        match event.kind {
            "enter" => assert!(
                inside.insert(event.id.clone()),
                "{} entered while inside",
                event.id
            ),
            "exit" => assert!(
                inside.remove(&event.id),
                "{} left without entering",
                event.id
            ),
            _ => assert!(
                inside.contains(&event.id),
                "{} moved while outside",
                event.id
            ),
        }
        most = most.max(inside.len());
    }
    assert!(inside.is_empty(), "everyone left after closing: {inside:?}");
    (most, area / (to_ts - from_ts) as f64)
}

const START_TS: i64 = 1_767_603_600; // 2026-01-05T09:00:00Z

#[test]
fn shoppers_are_listed_customers_never_inside_twice_and_occupancy_meets_the_target() {
    // 200 customers, a target of 180: the list allows the target, though often only just.
    let ids: Vec<String> = (0..199)
        .map(|n| (5000 + n * 3).to_string())
        .chain(["007".to_string()])
        .collect();
    let listed: HashSet<String> = ids.iter().cloned().collect();
    let config = pipeline_with_list(&csv_of(ids), 180.0);
    let output = run_ok(&mut run_max(&config, "5h"));
    let events = parse(&parse_lines(&output.stdout));
    assert!(events.len() > 30_000, "{} events", events.len());
    let (most, mean) = check_walks(&events, &listed, START_TS + 3600, START_TS + 5 * 3600);
    assert!(most <= 200);
    assert!(
        (mean / 180.0 - 1.0).abs() < 0.08,
        "mean inside {mean:.1}, target 180"
    );
    let seen: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert!(
        seen.len() > 190,
        "draws cover the list: {} of 200 seen",
        seen.len()
    );
}

#[test]
fn a_list_smaller_than_the_target_fills_the_store_and_arrivals_wait() {
    let ids: Vec<String> = (1..=5).map(|n| n.to_string()).collect();
    let listed: HashSet<String> = ids.iter().cloned().collect();
    let config = pipeline_with_list(&csv_of(ids), 20.0);
    let output = run_ok(&mut run_max(&config, "3h"));
    let events = parse(&parse_lines(&output.stdout));
    let (most, mean) = check_walks(&events, &listed, START_TS + 3600, START_TS + 3 * 3600);
    assert_eq!(most, 5, "the store fills up to the list");
    assert!(mean > 4.5, "mean inside {mean:.2}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("every listed customer is inside").count(),
        1,
        "logged once:\n{stderr}"
    );
}

#[test]
fn customers_list_file_overrides_the_yaml() {
    let config = pipeline_with_list(&csv_of((1..=50).map(|n| n.to_string())), 10.0);
    let other = temp_file("other.csv", &csv_of((900..=960).map(|n| n.to_string())));
    let output = run_ok(run_max(&config, "1h").env("CUSTOMERS_LIST_FILE", &other));
    let events = parse(&parse_lines(&output.stdout));
    assert!(!events.is_empty());
    for event in &events {
        let id: u32 = event.id.parse().unwrap();
        assert!(
            (900..=960).contains(&id),
            "id {id} is not from CUSTOMERS_LIST_FILE"
        );
    }
}

/// The built-in default pipeline (random_walk with customer_list) printing to stdout, at full
/// speed for `duration`, from `dir`.
fn built_in_default(dir: &Path, duration: &str) -> Command {
    let mut command = customersim();
    command.current_dir(dir).args([
        "run",
        "--sink",
        "stdout",
        "--speed",
        "max",
        "--duration",
        duration,
    ]);
    command
}

#[test]
fn the_built_in_default_uses_the_shipped_list_from_the_repository_root() {
    let shipped =
        std::fs::read_to_string(Path::new(REPOSITORY).join("configs/customers.csv")).unwrap();
    let listed: HashSet<String> = shipped
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(listed.len(), 1000);
    let mut command = built_in_default(Path::new(REPOSITORY), "2h");
    command.args(["--seed", "3"]);
    let events = parse(&parse_lines(&run_ok(&mut command).stdout));
    assert!(!events.is_empty());
    check_walks(&events, &listed, START_TS, START_TS + 1);
}

#[test]
fn the_built_in_default_reads_customers_csv_from_a_folder_without_configs() {
    let list = temp_file(
        "customers.csv",
        &csv_of(["41".to_string(), "42".to_string()]),
    );
    let dir = list.dir();
    let mut command = built_in_default(dir, "1h");
    let events = parse(&parse_lines(&run_ok(&mut command).stdout));
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e.id == "41" || e.id == "42"));

    // No list there: one clear error naming the file, exit 2.
    std::fs::remove_file(&list).unwrap();
    let (_, stderr) = run_failing(&mut command, 2);
    assert!(
        stderr.contains(&dir.join("customers.csv").display().to_string()),
        "{stderr}"
    );
}

/// Runs with `list` as the customers file and returns stderr; asserts exit code 2.
fn refused(list: &str) -> String {
    let config = pipeline_with_list(list, 5.0);
    let (output, stderr) = run_failing(&mut run_max(&config, "10m"), 2);
    assert!(output.stdout.is_empty(), "nothing published");
    assert!(
        stderr.contains("customers.csv"),
        "names the file:\n{stderr}"
    );
    stderr
}

#[test]
fn bad_lists_are_refused_with_exit_code_2_naming_file_and_line() {
    let cases: HashMap<&str, (String, &[&str])> = HashMap::from([
        (
            "no column",
            (
                "id,name\n1,Ann\n".to_string(),
                &["line 1", "no customer_id column"][..],
            ),
        ),
        (
            "no rows",
            ("customer_id,name\n".to_string(), &["no rows"][..]),
        ),
        ("empty file", (String::new(), &["empty"][..])),
        (
            "empty id",
            (
                "customer_id,name\n1,Ann\n,Bob\n".to_string(),
                &["line 3", "empty customer_id"][..],
            ),
        ),
        (
            "duplicate",
            (
                "customer_id,name\n1,Ann\n2,Bob\n2,Cid\n".to_string(),
                &["line 4", "duplicate customer_id \"2\"", "line 3"][..],
            ),
        ),
        (
            "malformed",
            (
                "customer_id,name\n1,Ann\n2,Bob,x\n".to_string(),
                &["line 3", "malformed row"][..],
            ),
        ),
    ]);
    for (case, (list, expected)) in cases {
        let stderr = refused(&list);
        for part in expected {
            assert!(
                stderr.contains(part),
                "{case}: expected {part:?} in:\n{stderr}"
            );
        }
    }
}

#[test]
fn a_missing_list_is_refused_naming_the_file() {
    let config = pipeline_with_list("customer_id\n1\n", 5.0);
    let (_, stderr) = run_failing(
        run_max(&config, "10m").env("CUSTOMERS_LIST_FILE", "/nonexistent/people.csv"),
        2,
    );
    assert!(
        stderr.contains("/nonexistent/people.csv") && stderr.contains("cannot read"),
        "{stderr}"
    );
    // validate checks the list too.
    run_failing(
        customersim()
            .args(["validate", "--config"])
            .arg(&config)
            .env("CUSTOMERS_LIST_FILE", "/nonexistent/people.csv"),
        2,
    );
}

/// Issue 20, finding 15: an id longer than 256 bytes (the limit of `http_ingress` too) is refused
/// naming the file, line and column (one 50 MB id used to make gigabytes of output), and a list
/// over 4 GiB is refused from its size before anything is read (it used to be read up to 4 GiB).
#[test]
fn long_ids_and_oversized_lists_are_refused_up_front() {
    let longest = "9".repeat(256);
    let config = pipeline_with_list(&format!("name,customer_id\nAnn,{longest}\n"), 5.0);
    run_ok(customersim().args(["validate", "--config"]).arg(&config));
    let stderr = refused(&format!("name,customer_id\nAnn,1\nBob,{longest}7\nCid,3\n"));
    assert!(
        stderr.contains("line 3")
            && stderr.contains("column 2 (customer_id)")
            && stderr.contains("257 bytes")
            && !stderr.contains(&longest),
        "{stderr}"
    );

    // A sparse file of 5 GiB: its size refuses it, so nothing of it is read.
    let huge = config.dir().join("huge.csv");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(5 << 30).unwrap();
    drop(file);
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate", "--config"])
            .arg(&config)
            .env("CUSTOMERS_LIST_FILE", &huge),
        2,
    );
    assert!(
        stderr.contains("huge.csv") && stderr.contains("the file is 5368709120 bytes"),
        "{stderr}"
    );
}

/// Issue 20, finding 16: `CUSTOMERS_LIST_FILE=/proc/self/environ` used to quote the process's
/// environment, MQTT_PASSWORD included, in the error. The kernel's pseudo-files, devices and
/// directories are refused before reading (exit 2), and nothing of them is shown.
#[test]
fn kernel_pseudo_files_and_devices_are_refused_without_showing_them() {
    const SECRET: &str = "some-secret-4711";
    for list in ["/proc/self/environ", "/dev/zero", "/"] {
        for args in [
            &["validate"][..],
            &["run", "--speed", "max", "--duration", "10m"][..],
        ] {
            // The secret first in the environment, so the start of the file holds it.
            let output = Command::new(env!("CARGO_BIN_EXE_customersim"))
                .env_clear()
                .env("MQTT_PASSWORD", SECRET)
                .env("MQTT_HOST", "127.0.0.1")
                .env("CUSTOMERS_LIST_FILE", list)
                .env("HTTP_LISTEN", "127.0.0.1:0")
                .current_dir(REPOSITORY)
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{list} {args:?}: {stderr}");
            assert!(
                stderr.contains(list) && stderr.contains("CUSTOMERS_LIST_FILE"),
                "{list} {args:?}: {stderr}"
            );
            assert!(
                !stdout.contains(SECRET) && !stderr.contains(SECRET),
                "{list} {args:?}: secret shown:\n{stdout}\n{stderr}"
            );
        }
    }
}
