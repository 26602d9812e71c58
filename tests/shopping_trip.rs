//! The `shopping_trip` source through the real binary, in the demo store: a simulated week keeps
//! every rule of the store (positions, steps, doors, roster, browsing the list), and the same seed
//! gives the same bytes at any speed.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{customersim, parse_lines, run_ok};

/// The demo store plan (the `store:` section of a pipeline file).
const STORE: &str = include_str!("data/demo-store.yaml");

const CELL: i64 = 20;

/// A pipeline file with the demo store and a `shopping_trip` source (plus `extra` lines of
/// pipeline), in `dir`.
fn pipeline(dir: &Path, source: &str, extra: &str) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    let text = format!(
        "simulation: {{start: \"2026-03-02T00:00:00Z\"}}\n{STORE}{extra}\
         timeline: {{consume_frequency: 0, consume_batch_size: 10000}}\n\
         sources:\n  - type: shopping_trip\n{source}sinks: [{{type: stdout}}]\n"
    );
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

/// The obstacles' rectangles, and the cells they block (every cell they touch).
fn blocked_cells() -> HashSet<(i64, i64)> {
    let mut blocked = HashSet::new();
    for line in STORE.lines().filter(|l| l.contains("kind: obstacle")) {
        let area = line.split("area: [").nth(1).unwrap();
        let numbers: Vec<i64> = area
            .trim_end_matches("]}")
            .split(", ")
            .map(|n| n.parse().unwrap())
            .collect();
        for col in numbers[0] / CELL..=numbers[2] / CELL {
            for row in numbers[1] / CELL..=numbers[3] / CELL {
                blocked.insert((col, row));
            }
        }
    }
    blocked
}

/// The departments' rectangles by name.
fn departments() -> Vec<(String, [i64; 4])> {
    STORE
        .lines()
        .filter(|l| l.contains("kind: department"))
        .map(|line| {
            let name = line
                .split("name: ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            let area = line
                .split("area: [")
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap();
            let n: Vec<i64> = area.split(", ").map(|n| n.parse().unwrap()).collect();
            (name.to_string(), [n[0], n[1], n[2], n[3]])
        })
        .collect()
}

/// One published event: (topic suffix, id, ts, x, y).
fn parse(stdout: &[u8]) -> Vec<(char, String, i64, i64, i64)> {
    parse_lines(stdout)
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
            let kind = match line.topic.as_str() {
                "customer/enter" => 'e',
                "customer/move" => 'm',
                "customer/exit" => 'x',
                other => panic!("unexpected topic {other}"),
            };
            (
                kind,
                value["id"].as_str().unwrap().to_string(),
                value["ts"].as_i64().unwrap(),
                value["x"].as_i64().unwrap_or(-1),
                value["y"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn a_week_in_the_demo_store_keeps_every_rule_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let customers = dir.path().join("customers.csv");
    let list: String = (1..=46).map(|n| format!("{n}\n")).collect();
    std::fs::write(&customers, format!("customer_id\n{list}")).unwrap();
    let config = pipeline(
        dir.path(),
        "    average_in_store: 3\n  - type: customer_list\n    path: customers.csv\n",
        "",
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
    let blocked = blocked_cells();
    let departments = departments();
    let department_at = |x: i64, y: i64| {
        departments
            .iter()
            .position(|(_, [x1, y1, x2, y2])| (*x1..=*x2).contains(&x) && (*y1..=*y2).contains(&y))
    };
    let cell = |x: i64, y: i64| (x / CELL, y / CELL);
    let (entrance, exit) = (cell(937, 50), cell(1071, 50));
    let close = 1_772_409_600 + 168 * 3600; // 2026-03-02T00:00:00Z + a week
    // Per customer inside: last cell (None right after entering), runs of reports per department.
    let mut inside: HashMap<String, (Option<(i64, i64)>, Vec<(usize, u32)>)> = HashMap::new();
    let mut trips: HashMap<String, usize> = HashMap::new();
    let (mut last_ts, mut visits, mut checked) = (i64::MIN, 0, 0);
    for (kind, id, ts, x, y) in &events {
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
                assert!((0..1808).contains(x) && (0..1315).contains(y), "{x},{y}");
                let to = cell(*x, *y);
                assert_eq!(
                    (to.0 * CELL + (CELL - 1) / 2, to.1 * CELL + (CELL - 1) / 2),
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
            }
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
}

#[test]
fn max_speed_and_a_finite_speed_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline(
        dir.path(),
        "    average_in_store: 40\n    mean_browse: 30s\n    browse_step: 2s\n    min_trip: 1m\n    max_trip: 3m\n    mean_service: 5s\n",
        "",
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
    let dir = tempfile::tempdir().unwrap();
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
