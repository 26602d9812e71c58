//! The `shopping_trip` source through the real binary, in the demo store
//! (`configs/retail-demo.yaml`): a simulated week keeps every rule of the store (positions, steps,
//! doors, roster, browsing the list, focus events), and the same seed gives the same bytes at any
//! speed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use customersim_testkit::run::{clean_command, run_ok};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::temp_dir;
use serde_yaml::Value;

/// The binary under test, with none of the caller's settings.
fn customersim() -> std::process::Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// The shipped pipelines.
fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

/// The demo pipeline with its sources replaced by `sources` (YAML), printing to stdout, as fast
/// as the sinks go, written to `dir`; also returns its `store:` section.
fn demo_pipeline(dir: &Path, sources: &str) -> (PathBuf, Value) {
    let text = std::fs::read_to_string(configs_dir().join("retail-demo.yaml")).unwrap();
    let mut doc: Value = serde_yaml::from_str(&text).unwrap();
    doc["simulation"]["start"] = "2026-03-02T00:00:00Z".into();
    doc["timeline"] =
        serde_yaml::from_str("{consume_frequency: 0, consume_batch_size: 10000}").unwrap();
    doc["sources"] = serde_yaml::from_str(sources).unwrap();
    doc["sinks"] = serde_yaml::from_str("[{type: stdout}]").unwrap();
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, serde_yaml::to_string(&doc).unwrap()).unwrap();
    (path, doc["store"].clone())
}

/// The zones of `kind` in the store section: (name, [x1, y1, x2, y2]).
fn zones(store: &Value, kind: &str) -> Vec<(String, [i64; 4])> {
    store["zones"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|zone| zone["kind"].as_str() == Some(kind))
        .map(|zone| {
            let area: Vec<i64> = zone["area"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|n| n.as_i64().unwrap())
                .collect();
            (
                zone["name"].as_str().unwrap().to_string(),
                [area[0], area[1], area[2], area[3]],
            )
        })
        .collect()
}

/// One published event: (kind, id, ts, x, y, dep) with kind `e`nter, `m`ove, `x` exit, `f`ocus.
type Seen = (char, String, i64, i64, i64, String);

/// A visit's stays in a row: (department, reports in a row), `usize::MAX` outside departments.
type Runs = Vec<(usize, u32)>;

fn parse(stdout: &[u8]) -> Vec<Seen> {
    parse_lines(stdout)
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
            let kind = match line.topic.as_str() {
                "customer/enter" => 'e',
                "customer/move" => 'm',
                "customer/exit" => 'x',
                "customer/focus" => 'f',
                other => panic!("unexpected topic {other}"),
            };
            (
                kind,
                value["id"].as_str().unwrap().to_string(),
                value["ts"].as_i64().unwrap(),
                value["x"].as_i64().unwrap_or(-1),
                value["y"].as_i64().unwrap_or(-1),
                value["dep"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_week_in_the_demo_store_keeps_every_rule_of_the_store() {
    let dir = temp_dir("shopping-trip");
    let customers = configs_dir().join("retail-demo-customers.csv");
    let (config, store) = demo_pipeline(
        dir.path(),
        &format!(
            "[{{type: shopping_trip, average_in_store: 3}}, {{type: customer_list, path: {:?}}}]",
            customers.display().to_string()
        ),
    );
    let output = run_ok(
        customersim()
            .args(["run", "--speed", "max", "--seed", "3", "--duration", "168h"])
            .arg("--config")
            .arg(&config)
            .env("LOG_LEVEL", "DEBUG"),
    );
    let events = parse(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    // Each arrival's plan, in arrival order per customer: "shopping_trip: 17 plans Women, Sport".
    let mut plans: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for line in log.lines() {
        if let Some(rest) = line.split("shopping_trip: ").nth(1)
            && let Some((id, list)) = rest.split_once(" plans ")
        {
            let list = list.trim_end_matches(", then a checkout");
            plans
                .entry(id.to_string())
                .or_default()
                .push(list.split(", ").map(str::to_string).collect());
        }
    }
    let cell = store["cell"].as_i64().unwrap();
    let (width, height) = (
        store["width"].as_i64().unwrap(),
        store["height"].as_i64().unwrap(),
    );
    let mut blocked = HashSet::new();
    for (_, [x1, y1, x2, y2]) in zones(&store, "obstacle") {
        for col in x1 / cell..=x2 / cell {
            for row in y1 / cell..=y2 / cell {
                blocked.insert((col, row));
            }
        }
    }
    let departments = zones(&store, "department");
    // Rooms the consumers have no department for (`focus: false`): no focus names them.
    let rooms: HashSet<String> = store["zones"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|zone| zone["focus"].as_bool() == Some(false))
        .map(|zone| zone["name"].as_str().unwrap().to_string())
        .collect();
    let department_at = |x: i64, y: i64| {
        departments
            .iter()
            .position(|(_, [x1, y1, x2, y2])| (*x1..=*x2).contains(&x) && (*y1..=*y2).contains(&y))
    };
    let cell_of = |x: i64, y: i64| (x / cell, y / cell);
    let point = |key: &str| {
        let xy = store[key].as_sequence().unwrap();
        cell_of(xy[0].as_i64().unwrap(), xy[1].as_i64().unwrap())
    };
    let (entrance, exit) = (point("entrance"), point("exit"));
    let close = 1_772_409_600 + 168 * 3600; // 2026-03-02T00:00:00Z + a week
    // Per customer inside: last cell (None right after entering), runs of reports per department.
    let mut inside: HashMap<String, (Option<(i64, i64)>, Runs)> = HashMap::new();
    let mut trips: HashMap<String, usize> = HashMap::new();
    let (mut expected_focus, mut focus) = (Vec::new(), Vec::new());
    let (mut last_ts, mut visits, mut checked) = (i64::MIN, 0, 0);
    for (kind, id, ts, x, y, dep) in &events {
        assert!(*ts >= last_ts, "time order");
        last_ts = *ts;
        match kind {
            'e' => {
                let n: u32 = id.parse().expect("a listed id");
                assert!((1..=46).contains(&n), "{id} is listed");
                assert!(
                    inside.insert(id.clone(), (None, Vec::new())).is_none(),
                    "{id} inside twice"
                );
                visits += 1;
            }
            'm' => {
                assert!((0..width).contains(x) && (0..height).contains(y), "{x},{y}");
                let to = cell_of(*x, *y);
                assert_eq!(
                    (to.0 * cell + (cell - 1) / 2, to.1 * cell + (cell - 1) / 2),
                    (*x, *y),
                    "cell centres"
                );
                assert!(!blocked.contains(&to), "{x},{y} is in an obstacle");
                let (at, runs) = inside.get_mut(id).expect("moves only inside");
                let from = at.unwrap_or(entrance);
                assert!(
                    (to.0 - from.0).abs() <= 1 && (to.1 - from.1).abs() <= 1,
                    "{id}: one cell at a time: {from:?} -> {to:?}"
                );
                *at = Some(to);
                match (department_at(*x, *y), runs.last_mut()) {
                    (Some(d), Some((run, count))) if *run == d => *count += 1,
                    (Some(d), _) => runs.push((d, 1)),
                    (None, _) => runs.push((usize::MAX, 0)),
                }
                // The consumers' rule: the 3rd report in a row inside one department.
                if let Some(&(d, 3)) = runs.last()
                    && d != usize::MAX
                    && !rooms.contains(&departments[d].0)
                {
                    expected_focus.push((id.clone(), *ts, departments[d].0.clone(), *x, *y));
                }
            }
            'f' => focus.push((id.clone(), *ts, dep.clone(), *x, *y)),
            'x' => {
                let (at, runs) = inside.remove(id).expect("an exit after an enter");
                assert_eq!(at, Some(exit), "{id} leaves from the exit");
                let trip = trips.entry(id.clone()).or_default();
                let list = &plans[id][*trip];
                *trip += 1;
                if *ts >= close {
                    continue; // the doors closed during the trip: the rest of the list was skipped
                }
                for name in list {
                    let d = departments.iter().position(|(n, _)| n == name).unwrap();
                    assert!(
                        runs.iter().any(|&(run, count)| run == d && count >= 3),
                        "{id} browsed {name} with 3 reports in a row"
                    );
                }
                checked += 1;
            }
            _ => unreachable!(),
        }
    }
    assert!(inside.is_empty(), "everyone left after the doors closed");
    assert!(
        visits > 1000 && checked > 1000,
        "{visits} visits, {checked} checked"
    );
    assert!(focus.len() >= checked / 2, "{} focus events", focus.len());
    // Only the five departments the demo's consumers know are ever named.
    for (_, _, dep, _, _) in &focus {
        assert!(
            ["Women", "Boys", "Girls", "Men", "Sport"].contains(&dep.as_str()),
            "a focus names {dep}"
        );
    }
    assert_eq!(
        focus, expected_focus,
        "focus events follow the consumers' rule"
    );
}

#[test]
fn max_speed_and_a_finite_speed_give_the_same_bytes() {
    let dir = temp_dir("shopping-trip");
    let (config, _) = demo_pipeline(
        dir.path(),
        "[{type: shopping_trip, average_in_store: 40, mean_browse: 30s, browse_step: 2s, \
          min_trip: 1m, max_trip: 3m, mean_service: 5s}]",
    );
    let run = |speed: &str| {
        run_ok(
            customersim()
                .args(["run", "--seed", "8", "--duration", "10m", "--speed", speed])
                .arg("--config")
                .arg(&config),
        )
        .stdout
    };
    let fast = run("max");
    assert!(parse(&fast).len() > 10_000);
    assert_eq!(fast, run("300"), "same bytes at 300x");
}

#[test]
fn a_store_without_departments_is_refused_naming_the_key() {
    let dir = temp_dir("shopping-trip");
    let path = dir.path().join("grid.yaml");
    std::fs::write(
        &path,
        "sources: [{type: shopping_trip}]\nsinks: [{type: stdout}]\n",
    )
    .unwrap();
    let output = customersim()
        .args(["run", "--speed", "max", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store.zones"), "{stderr}");
}
