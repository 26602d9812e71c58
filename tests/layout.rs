//! Store layouts with the real binary: every bad layout exits 2 naming the zone, `validate` shows
//! the resolved layout, and a simulated day in the demo store keeps the walking rules, the focus
//! rule of the demo's decision service and the consumers' field types. The original grid keeps its
//! output byte for byte.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use customersim_testkit::run::{clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::{Line, parse_lines};
use customersim_testkit::temp::TempFile;
use serde_json::Value;

/// The binary under test, with none of the caller's settings.
fn command() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// Writes `text` as `name` in a file of its own (removed when the guard drops).
fn temp_file(name: &str, text: &str) -> (TempFile, PathBuf) {
    let file = customersim_testkit::temp::temp_file(name, text);
    let path = file.path().to_path_buf();
    (file, path)
}

/// The shipped pipelines.
fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

fn demo_config() -> PathBuf {
    configs_dir().join("retail-demo.yaml")
}

/// A small store: 200×100 units on a 10-unit grid, doors in the top corners.
fn small_store(store_extra: &str, zones: &str) -> String {
    format!(
        "store:\n  width: 200\n  height: 100\n  cell: 10\n{store_extra}  zones:\n{zones}\
         sources:\n  - type: random_walk\nsinks:\n  - type: stdout\n"
    )
}

const DOORS: &str = "  entrance: [5, 5]\n  exit: [195, 5]\n";

#[test]
fn each_bad_layout_exits_2_with_one_message_naming_the_zone() {
    let dep = |name: &str, area: &str| {
        format!("    - {{name: {name}, kind: department, area: [{area}]}}\n")
    };
    let wall = |name: &str, area: &str| {
        format!("    - {{name: {name}, kind: obstacle, area: [{area}]}}\n")
    };
    let women = dep("Women", "20, 20, 59, 59");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            small_store(DOORS, &format!("{women}{}", dep("Out", "150, 50, 200, 60"))),
            vec![
                "store.zones[1] (name: \"Out\")",
                "reaches outside the 200x100 store",
                "(line 9)",
            ],
        ),
        (
            small_store("  entrance: [300, 5]\n  exit: [195, 5]\n", &women),
            vec!["store.entrance [300, 5] is outside the 200x100 store"],
        ),
        (
            small_store(DOORS, &format!("{women}{}", wall("Post", "190, 0, 199, 9"))),
            vec!["store.exit [195, 5]", "an obstacle blocks"],
        ),
        (
            small_store("  door: [250, 5]\n", &women),
            vec!["store.door [250, 5] is outside"],
        ),
        (
            small_store(
                DOORS,
                &format!(
                    "{women}{}{}{}{}{}",
                    wall("Top", "100, 40, 140, 40"),
                    wall("Bottom", "100, 80, 140, 80"),
                    wall("Left", "100, 40, 100, 80"),
                    wall("Right", "140, 40, 140, 80"),
                    dep("Closed", "110, 50, 130, 70"),
                ),
            ),
            vec![
                "store.zones[5] (name: \"Closed\")",
                "cannot be reached from the entrance",
                "(line 13)",
            ],
        ),
        (
            small_store(DOORS, &format!("{women}{}", dep("Men", "50, 50, 90, 90"))),
            vec![
                "store.zones[1] (name: \"Men\")",
                "overlaps the department zones[0] (name: \"Women\")",
            ],
        ),
        (
            small_store(
                DOORS,
                &format!("{women}{}", dep("Women", "100, 50, 120, 60")),
            ),
            vec![
                "store.zones[1] (name: \"Women\")",
                "already used by zones[0]",
                "(line 9)",
            ],
        ),
        (
            small_store(
                DOORS,
                "    - {name: Shelf, kind: shelf, area: [20, 20, 30, 30]}\n",
            ),
            vec!["store.zones[0].kind", "unknown variant `shelf`", "line 8"],
        ),
        (
            small_store(
                DOORS,
                "    - {name: Women, kind: department, area: [20, 20, 59, 59], weight: -1}\n",
            ),
            vec!["store.zones[0] (name: \"Women\")", "weight -1", "(line 8)"],
        ),
        (
            small_store(
                DOORS,
                "    - {name: Women, kind: department, area: [20, 20, 59, 59], weight: .nan}\n",
            ),
            vec!["store.zones[0] (name: \"Women\")", "weight NaN"],
        ),
        (
            small_store(DOORS, &dep("Tiny", "11, 11, 13, 13")),
            vec!["store.zones[0] (name: \"Tiny\")", "no walkable cell"],
        ),
        (
            small_store(
                DOORS,
                "    - {name: Women, kind: department, area: [20, 20, 59, 59], colour: red}\n",
            ),
            vec!["unknown field `colour`"],
        ),
        (
            small_store("  cell: 0\n  entrance: [5, 5]\n  exit: [195, 5]\n", &women)
                .replace("  cell: 10\n", ""),
            vec!["store.cell must be at least 1"],
        ),
        (
            small_store("  door: [5, 5]\n  entrance: [5, 5]\n", &women),
            vec!["store.door sets both entrance and exit"],
        ),
    ];
    for (text, needles) in cases {
        let (_dir, path) = temp_file("bad-layout.yaml", &text);
        let (output, stderr) = run_failing(command().args(["validate", "--config"]).arg(&path), 2);
        for needle in &needles {
            assert!(
                stderr.contains(needle),
                "{needle:?} in:\n{stderr}\nfor:\n{text}"
            );
        }
        let messages = stderr
            .lines()
            .filter(|line| line.starts_with("error:"))
            .count();
        assert_eq!(messages, 1, "one message:\n{stderr}");
        assert!(output.stdout.is_empty(), "nothing printed on stdout");
    }
}

#[test]
fn validate_prints_the_resolved_layout() {
    let output = run_ok(
        command()
            .args(["validate", "--config"])
            .arg(demo_config())
            .env("SINKS", "stdout"),
    );
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "# resolved layout:",
        "store 1808x1315, walking grid 91x66 cells of 20 (",
        "entrance cell (46, 2) at (929, 49), exit cell (53, 2) at (1069, 49)",
        "\"Women\" department [444, 443, 666, 879] weight 3 (",
        "\"Sport\" department [614, 984, 1186, 1292]",
        "\"Checkout 2\" checkout [1367, 197, 1527, 276]",
        "\"Checkout 1 counter\" obstacle [1150, 118, 1310, 196]",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    // Still the YAML of the pipeline: the layout is in comments.
    let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(value["topics"]["focus"].as_str(), Some("customer/focus"));
    assert_eq!(value["store"]["cell"].as_u64(), Some(20));
}

/// The zones of the demo store, read from its YAML (not through the simulator's layout code).
struct Plan {
    departments: Vec<(String, [i64; 4])>,
    obstacles: Vec<[i64; 4]>,
    cell: i64,
    width: i64,
    height: i64,
}

fn read_plan(path: &Path) -> Plan {
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let store = &value["store"];
    let mut plan = Plan {
        departments: Vec::new(),
        obstacles: Vec::new(),
        cell: store["cell"].as_i64().unwrap(),
        width: store["width"].as_i64().unwrap(),
        height: store["height"].as_i64().unwrap(),
    };
    for zone in store["zones"].as_sequence().unwrap() {
        let area: Vec<i64> = zone["area"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let area = [area[0], area[1], area[2], area[3]];
        match zone["kind"].as_str().unwrap() {
            // The departments the demo's decision service knows: not the rooms (`focus: false`).
            "department" if zone["focus"].as_bool() != Some(false) => plan
                .departments
                .push((zone["name"].as_str().unwrap().to_string(), area)),
            "obstacle" => plan.obstacles.push(area),
            _ => {}
        }
    }
    plan
}

fn inside([x1, y1, x2, y2]: [i64; 4], x: i64, y: i64) -> bool {
    (x1..=x2).contains(&x) && (y1..=y2).contains(&y)
}

/// One published event, parsed as the consumers parse it.
#[derive(Debug)]
struct Published {
    topic: String,
    id: u64,
    ts: i64,
    dep: Option<String>,
    at: Option<(i64, i64)>,
}

/// Parses a line under the consumers' types (visualization app: id int, ts int, dep/x/y optional;
/// recommendation service's focus: id str, ts int, dep str, x/y int) and checks the exact bytes.
fn published(line: &Line) -> Published {
    let payload: Value = serde_json::from_str(&line.payload).unwrap();
    let id_text = payload["id"].as_str().expect("id is a string");
    let id: u64 = id_text.parse().expect("id parses as an integer");
    assert!(
        (1..=46).contains(&id),
        "id {id} is one the visualization app knows"
    );
    let ts = payload["ts"].as_i64().expect("ts is an integer");
    let at = payload["x"]
        .as_i64()
        .map(|x| (x, payload["y"].as_i64().expect("y is an integer")));
    let dep = payload["dep"].as_str().map(str::to_string);
    let expected = match (line.topic.as_str(), &dep, at) {
        ("customer/enter" | "customer/exit", None, None) => {
            format!("{{\"id\": \"{id}\", \"ts\": {ts}}}")
        }
        ("customer/move", None, Some((x, y))) => {
            format!("{{\"id\": \"{id}\", \"ts\": {ts}, \"x\": {x}, \"y\": {y}}}")
        }
        ("customer/focus", Some(dep), Some((x, y))) => format!(
            "{{\"id\": \"{id}\", \"ts\": {ts}, \"dep\": {}, \"x\": {x}, \"y\": {y}}}",
            serde_json::to_string(dep).unwrap()
        ),
        other => panic!("unexpected event {other:?}: {}", line.payload),
    };
    assert_eq!(
        line.payload, expected,
        "payload bytes in the contract's style"
    );
    Published {
        topic: line.topic.clone(),
        id,
        ts,
        dep,
        at,
    }
}

/// A focus as the decision service computes it: (id, ts, department, x, y).
type Focus = (u64, i64, String, i64, i64);

/// The demo decision service's rule over the move stream: per customer, the department of each
/// move (the first inclusive rectangle containing it); the same department as the last move adds
/// one to the count, anything else starts it at 1 ("browsing"); a customer in a department with a
/// count of at least 3 is announced, at every such move. Returns the announcements with the count.
fn decision_service(events: &[Published], plan: &Plan) -> Vec<(Focus, u32)> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Unknown,
        Browsing,
        InDepartment,
    }
    // id -> (last department, count, state); kept across visits, as the service does.
    let mut customers: HashMap<u64, (Option<usize>, u32, State)> = HashMap::new();
    let mut announced = Vec::new();
    for event in events.iter().filter(|e| e.topic == "customer/move") {
        let (x, y) = event.at.unwrap();
        let seen = plan
            .departments
            .iter()
            .position(|(_, area)| inside(*area, x, y));
        let (last, count, state) = customers
            .entry(event.id)
            .or_insert((None, 1, State::Unknown));
        if seen.is_none() {
            *state = State::Browsing;
        }
        if seen.is_some() && seen == *last {
            *count += 1;
            *state = State::InDepartment;
        } else if seen.is_none() && last.is_none() {
            *count += 1;
        } else {
            *state = State::Browsing;
            *count = 1;
        }
        *last = seen;
        if *count >= 3 && *state != State::Browsing {
            let dep = plan.departments[seen.unwrap()].0.clone();
            announced.push(((event.id, event.ts, dep, x, y), *count));
        }
    }
    announced
}

fn demo_day(config: &Path, seed: &str, env: &[(&str, &str)]) -> Vec<Line> {
    let mut command = command();
    command
        .args("run --sink stdout --speed max --duration 24h --config".split(' '))
        .arg(config)
        .args(["--seed", seed])
        .env("SIMULATION_START", "2026-03-02T00:00:00Z")
        .env(
            "CUSTOMERS_LIST_FILE",
            configs_dir().join("retail-demo-customers.csv"),
        );
    for (var, value) in env {
        command.env(var, value);
    }
    parse_lines(&run_ok(&mut command).stdout)
}

#[test]
fn a_day_in_the_demo_store_keeps_the_walking_rules_and_the_focus_rule() {
    let plan = read_plan(&demo_config());
    let lines = demo_day(&demo_config(), "21", &[]);
    let events: Vec<Published> = lines.iter().map(published).collect();
    assert!(events.len() > 20_000, "a busy day: {}", events.len());

    let cell = plan.cell;
    let cell_of = |(x, y): (i64, i64)| (x / cell, y / cell);
    let blocked: HashSet<(i64, i64)> = plan
        .obstacles
        .iter()
        .flat_map(|[x1, y1, x2, y2]| {
            (y1 / cell..=y2 / cell).flat_map(move |r| (x1 / cell..=x2 / cell).map(move |c| (c, r)))
        })
        .collect();
    let entrance = (929, 49);
    let exit = (1069, 49);
    // id -> last position (None right after entering).
    let mut inside_now: HashMap<u64, Option<(i64, i64)>> = HashMap::new();
    let (mut visits, mut last_ts) = (0, i64::MIN);
    for (index, event) in events.iter().enumerate() {
        assert!(event.ts >= last_ts, "time order at line {index}");
        last_ts = event.ts;
        match event.topic.as_str() {
            "customer/enter" => {
                assert!(
                    inside_now.insert(event.id, None).is_none(),
                    "{} inside twice",
                    event.id
                );
                visits += 1;
            }
            "customer/move" => {
                let (x, y) = event.at.unwrap();
                assert!((0..plan.width).contains(&x) && (0..plan.height).contains(&y));
                assert!(
                    plan.obstacles.iter().all(|area| !inside(*area, x, y)),
                    "({x}, {y}) is inside an obstacle"
                );
                assert!(
                    !blocked.contains(&cell_of((x, y))),
                    "({x}, {y}) is on a blocked cell"
                );
                let before = inside_now
                    .get_mut(&event.id)
                    .unwrap_or_else(|| panic!("{} moves without entering", event.id));
                let from = before.unwrap_or(entrance);
                let (c0, r0) = cell_of(from);
                let (c1, r1) = cell_of((x, y));
                assert!(
                    (c1 - c0).abs() <= 1 && (r1 - r0).abs() <= 1,
                    "{} jumps from {from:?} to ({x}, {y})",
                    event.id
                );
                *before = Some((x, y));
            }
            "customer/exit" => {
                let last = inside_now.remove(&event.id).expect("exit after enter");
                assert_eq!(last, Some(exit), "{} leaves at the exit", event.id);
            }
            "customer/focus" => {
                let previous = &events[index - 1];
                assert_eq!(
                    (
                        previous.topic.as_str(),
                        previous.id,
                        previous.ts,
                        previous.at
                    ),
                    ("customer/move", event.id, event.ts, event.at),
                    "a focus follows the move that makes it"
                );
            }
            other => panic!("unexpected topic {other}"),
        }
    }
    assert!(inside_now.is_empty(), "everyone left after closing");
    assert!(visits > 200, "{visits} visits");

    // The ground truth is the decision service's first announcement of every stay.
    let announced = decision_service(&events, &plan);
    let expected: Vec<Focus> = announced
        .iter()
        .filter(|(_, count)| *count == 3)
        .map(|(focus, _)| focus.clone())
        .collect();
    let actual: Vec<Focus> = events
        .iter()
        .filter(|e| e.topic == "customer/focus")
        .map(|e| {
            let (x, y) = e.at.unwrap();
            (e.id, e.ts, e.dep.clone().unwrap(), x, y)
        })
        .collect();
    assert!(actual.len() > 50, "{} focus events", actual.len());
    assert_eq!(actual, expected, "event for event");
    assert!(
        announced.len() > actual.len(),
        "the decision service announces long stays again"
    );
    let departments: HashSet<&str> = actual.iter().map(|f| f.2.as_str()).collect();
    for name in ["Women", "Boys", "Girls", "Men"] {
        assert!(
            departments.contains(name),
            "{name} is visited: {departments:?}"
        );
    }
    for name in &departments {
        assert!(
            ["Women", "Boys", "Girls", "Men", "Sport"].contains(name),
            "a focus names {name}, which the demo's consumers do not know"
        );
    }
}

#[test]
fn every_report_is_the_decision_services_announcements_event_for_event() {
    // A simulated day of the demo with `focus.announce: every_report` (FOCUS_ANNOUNCE): the focus
    // stream is what the demo's decision service announces from the move stream, every one of
    // them, recomputed here on its own.
    let plan = read_plan(&demo_config());
    let lines = demo_day(&demo_config(), "21", &[("FOCUS_ANNOUNCE", "every_report")]);
    let events: Vec<Published> = lines.iter().map(published).collect();
    for (index, event) in events.iter().enumerate() {
        if event.topic == "customer/focus" {
            let previous = &events[index - 1];
            assert_eq!(
                (
                    previous.topic.as_str(),
                    previous.id,
                    previous.ts,
                    previous.at
                ),
                ("customer/move", event.id, event.ts, event.at),
                "a focus follows the move that makes it"
            );
        }
    }
    let announced: Vec<Focus> = decision_service(&events, &plan)
        .into_iter()
        .map(|(focus, _)| focus)
        .collect();
    let actual: Vec<Focus> = events
        .iter()
        .filter(|e| e.topic == "customer/focus")
        .map(|e| {
            let (x, y) = e.at.unwrap();
            (e.id, e.ts, e.dep.clone().unwrap(), x, y)
        })
        .collect();
    assert!(actual.len() > 200, "{} focus events", actual.len());
    assert_eq!(actual, announced, "event for event");
    // The moves are the once-per-stay run's: only the announcements differ.
    let once = demo_day(&demo_config(), "21", &[]);
    let without_focus = |lines: &[Line]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.topic != "customer/focus")
            .map(|l| format!("{} {}", l.topic, l.payload))
            .collect()
    };
    assert_eq!(without_focus(&once), without_focus(&lines));
    let once_focus = once.iter().filter(|l| l.topic == "customer/focus").count();
    assert!(
        actual.len() > once_focus,
        "{} vs {once_focus}",
        actual.len()
    );
    for (_, _, name, _, _) in &actual {
        assert!(
            ["Women", "Boys", "Girls", "Men", "Sport"].contains(&name.as_str()),
            "a focus names {name}, which the demo's consumers do not know"
        );
    }
}

#[test]
fn focus_events_are_off_without_a_focus_topic_and_change_nothing_else() {
    let with = demo_day(&demo_config(), "5", &[]);
    // The demo without its `topics.focus` line.
    let text = std::fs::read_to_string(demo_config()).unwrap();
    let unfocused: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("focus:"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(unfocused, text);
    let (_dir, path) = temp_file("unfocused.yaml", &unfocused);
    let without = demo_day(&path, "5", &[]);
    assert!(without.iter().all(|line| line.topic != "customer/focus"));
    let others: Vec<&Line> = with
        .iter()
        .filter(|l| l.topic != "customer/focus")
        .collect();
    assert!(others.len() < with.len(), "the demo has focus events");
    assert_eq!(others, without.iter().collect::<Vec<_>>());
    // Another topic name is used as given.
    let renamed = demo_day(&path, "5", &[("FOCUS_TOPIC", "retail/mqttFocusTopic")]);
    assert_eq!(
        renamed
            .iter()
            .filter(|l| l.topic == "retail/mqttFocusTopic")
            .count(),
        with.len() - others.len()
    );
}

/// Customer 1's events on the original 6×10 grid with the door at (2, 3), seed 42, as the
/// simulator printed them before layouts existed: `kind ts [x y]`.
const ORIGINAL_GRID_CUSTOMER_1: &str = "enter 1772355763;move 1772355771 3 4;move 1772355781 2 3;\
move 1772355784 3 2;move 1772355786 4 1;move 1772355791 3 1;move 1772355793 2 0;\
move 1772355798 1 1;move 1772355800 2 0;move 1772355803 1 0;move 1772355816 2 0;\
move 1772355819 1 0;move 1772355823 0 0;move 1772355829 0 1;move 1772355838 0 2;\
move 1772355846 1 2;move 1772355851 0 1;move 1772355854 1 2;move 1772355862 0 1;\
move 1772355876 1 1;move 1772355879 1 2;move 1772355886 2 2;move 1772355889 1 3;\
move 1772355894 0 2;move 1772355897 1 1;move 1772355903 0 0;move 1772355905 1 1;\
move 1772355907 2 2;move 1772355909 2 3;exit 1772355911";

#[test]
fn the_original_grid_walks_as_before_layouts() {
    let (_dir, path) = temp_file(
        "grid.yaml",
        "simulation: {start: \"2026-03-01T09:00:00Z\"}\nstore: {width: 6, height: 10, door: [2, 3]}\n\
         sources:\n  - type: random_walk\n    average_in_store: 4\n    mean_dwell: 5s\n\
         sinks: [{type: stdout}]\n",
    );
    let output = run_ok(
        command()
            .args([
                "run",
                "--speed",
                "max",
                "--seed",
                "42",
                "--duration",
                "5m",
                "--config",
            ])
            .arg(&path),
    );
    let customer_1: Vec<String> = parse_lines(&output.stdout)
        .iter()
        .map(published)
        .filter(|event| event.id == 1)
        .map(|event| {
            let kind = event.topic.trim_start_matches("customer/");
            match event.at {
                Some((x, y)) => format!("{kind} {} {x} {y}", event.ts),
                None => format!("{kind} {}", event.ts),
            }
        })
        .collect();
    assert_eq!(customer_1.join(";"), ORIGINAL_GRID_CUSTOMER_1);
}

#[test]
fn focus_on_without_a_department_it_may_name_is_warned_about() {
    let (_config, config) = temp_file(
        "focus-nowhere.yaml",
        "topics: {focus: customer/focus}\n\
         store:\n  width: 100\n  height: 50\n  zones:\n    \
         - {name: Restrooms, kind: department, area: [0, 0, 9, 9], focus: false}\n\
         sources: [{type: random_walk}]\nsinks: [{type: stdout}]\n",
    );
    let output = run_ok(command().args(["validate", "--config"]).arg(&config));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("topics.focus") && stderr.contains("no focus event will be published"),
        "{stderr}"
    );
    // With a department it may name, no warning.
    let (_named, named) = temp_file(
        "focus-women.yaml",
        "topics: {focus: customer/focus}\n\
         store:\n  width: 100\n  height: 50\n  zones:\n    \
         - {name: Women, kind: department, area: [0, 0, 9, 9]}\n\
         sources: [{type: random_walk}]\nsinks: [{type: stdout}]\n",
    );
    let output = run_ok(command().args(["validate", "--config"]).arg(&named));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("no focus event"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_bad_focus_announce_exits_2_naming_the_key_and_one_without_a_topic_is_warned_about() {
    let (_config, config) = temp_file(
        "announce.yaml",
        "focus: {announce: twice}
sources: [{type: random_walk}]
sinks: [{type: stdout}]
",
    );
    let output = command()
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("focus.announce") && stderr.contains("every_report"),
        "{stderr}"
    );
    let (_plain, plain) = temp_file(
        "announce-env.yaml",
        "sources: [{type: random_walk}]\nsinks: [{type: stdout}]\n",
    );
    let output = command()
        .args(["validate", "--config"])
        .arg(&plain)
        .env("FOCUS_ANNOUNCE", "sometimes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FOCUS_ANNOUNCE"), "{stderr}");
    let (_quiet, quiet) = temp_file(
        "announce-no-topic.yaml",
        "focus: {announce: every_report}
sources: [{type: random_walk}]
sinks: [{type: stdout}]
",
    );
    let output = run_ok(command().args(["validate", "--config"]).arg(&quiet));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("focus.announce is every_report but topics.focus"),
        "{stderr}"
    );
}
