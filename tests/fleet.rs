//! Fleets of stores and shards, through the real binary: 50 stores in one process equal the same
//! 50 split over 2 and over 5 shards, event for event; every event is on its store's topic with
//! an id of its store; a listed customer is never inside two stores at once; bad shards exit 2.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use customersim_testkit::run::{clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::{Line, parse_lines};
use customersim_testkit::temp::{TempFile, temp_file};

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

const STORES: usize = 50;

/// A fleet of 50 stores on store topics; `extra_sources` adds to `sources:`.
fn fleet_pipeline(extra_sources: &str) -> TempFile {
    temp_file(
        "fleet.yaml",
        &format!(
            "simulation: {{seed: 13, start: \"2026-01-05T09:00:00Z\"}}\n\
             fleet: {{stores: {STORES}}}\n\
             topics:\n  enter: store/{{store}}/customer/enter\n  move: store/{{store}}/customer/move\n  exit: store/{{store}}/customer/exit\n\
             sources:\n  - type: random_walk\n    average_in_store: 3\n    mean_dwell: 2m\n{extra_sources}\
             sinks:\n  - type: stdout\n"
        ),
    )
}

/// `run --speed max --duration 1h` of `config`, as shard `shard` (none: the whole fleet), given
/// through SHARD or `--shard`.
fn run(config: &Path, shard: Option<&str>, by_flag: bool) -> Vec<Line> {
    let mut command = customersim();
    command
        .args(["run", "--speed", "max", "--duration", "1h", "--config"])
        .arg(config);
    match shard {
        Some(shard) if by_flag => {
            command.args(["--shard", shard]);
        }
        Some(shard) => {
            command.env("SHARD", shard);
        }
        None => {}
    }
    parse_lines(&run_ok(&mut command).stdout)
}

/// The union of all `count` shards, sorted.
fn union_of_shards(config: &Path, count: usize) -> Vec<Line> {
    let mut union = Vec::new();
    for index in 0..count {
        let part = run(config, Some(&format!("{index}/{count}")), index % 2 == 1);
        assert!(!part.is_empty(), "shard {index}/{count} published nothing");
        union.extend(part);
    }
    union.sort_by(|a, b| (&a.payload, &a.topic).cmp(&(&b.payload, &b.topic)));
    union
}

fn sorted(mut lines: Vec<Line>) -> Vec<Line> {
    lines.sort_by(|a, b| (&a.payload, &a.topic).cmp(&(&b.payload, &b.topic)));
    lines
}

/// (store from the topic, kind from the topic, id, ts) of a line on a store topic.
fn parts(line: &Line) -> (usize, String, String, i64) {
    let rest = line
        .topic
        .strip_prefix("store/")
        .unwrap_or_else(|| panic!("not a store topic: {}", line.topic));
    let (store, kind) = rest
        .split_once("/customer/")
        .expect("store/N/customer/KIND");
    let payload: serde_json::Value = serde_json::from_str(&line.payload).unwrap();
    (
        store.parse().expect("a store number"),
        kind.to_string(),
        payload["id"].as_str().expect("a string id").to_string(),
        payload["ts"].as_i64().expect("ts"),
    )
}

#[test]
fn fifty_stores_in_one_process_equal_two_and_five_shards_event_for_event() {
    let config = fleet_pipeline("");
    let whole = sorted(run(config.path(), None, false));
    assert!(whole.len() > 5_000, "{} events", whole.len());
    assert_eq!(whole, union_of_shards(config.path(), 2), "2 shards");
    assert_eq!(whole, union_of_shards(config.path(), 5), "5 shards");

    // Every store runs, each event on its own store's topic, with an id of that store
    // (store n's generated ids are n × 1,000,000,000 + serial), so ids are unique fleet-wide.
    let mut store_of_id: HashMap<String, usize> = HashMap::new();
    let mut events_per_store: BTreeMap<usize, usize> = BTreeMap::new();
    for line in &whole {
        let (store, kind, id, _) = parts(line);
        assert!((1..=STORES).contains(&store), "{}", line.topic);
        assert!(["enter", "move", "exit"].contains(&kind.as_str()), "{kind}");
        let number: u64 = id.parse().expect("generated ids are digits");
        assert_eq!(
            number / 1_000_000_000,
            store as u64,
            "id {id} on {}",
            line.topic
        );
        let first = *store_of_id.entry(id.clone()).or_insert(store);
        assert_eq!(first, store, "id {id} in two stores");
        *events_per_store.entry(store).or_default() += 1;
    }
    assert_eq!(events_per_store.len(), STORES, "every store published");
}

#[test]
fn stores_do_not_depend_on_how_many_others_run() {
    // Store 3 of a 50-store fleet publishes what store 3 of a 3-store fleet publishes.
    let config = fleet_pipeline("");
    let small = temp_file(
        "small-fleet.yaml",
        &std::fs::read_to_string(config.path())
            .unwrap()
            .replace("stores: 50", "stores: 3"),
    );
    let of_store_3 = |lines: Vec<Line>| -> Vec<Line> {
        sorted(
            lines
                .into_iter()
                .filter(|line| line.topic.starts_with("store/3/"))
                .collect(),
        )
    };
    let in_fifty = of_store_3(run(config.path(), None, false));
    assert!(!in_fifty.is_empty());
    assert_eq!(in_fifty, of_store_3(run(small.path(), None, false)));
}

#[test]
fn a_listed_customer_is_never_inside_two_stores_at_once_and_shards_agree() {
    let config = fleet_pipeline("  - type: customer_list\n    path: customers.csv\n");
    let ids: String = (1..=400).map(|id| format!("{id},Name {id}\n")).collect();
    std::fs::write(
        config.dir().join("customers.csv"),
        format!("customer_id,name\n{ids}"),
    )
    .unwrap();
    let whole = run(config.path(), None, false);
    // The stdout sink prints in publishing order: time order across the fleet.
    let mut inside: HashMap<String, usize> = HashMap::new();
    let mut stores_of: HashMap<String, HashSet<usize>> = HashMap::new();
    let mut enters = 0;
    for line in &whole {
        let (store, kind, id, _) = parts(line);
        let number: u32 = id.parse().expect("a listed id");
        assert!((1..=400).contains(&number), "{id} is not listed");
        match kind.as_str() {
            "enter" => {
                enters += 1;
                if let Some(other) = inside.insert(id.clone(), store) {
                    panic!("{id} entered store {store} while inside store {other}");
                }
            }
            "exit" => assert_eq!(
                inside.remove(&id),
                Some(store),
                "{id} left a store it was not in"
            ),
            _ => assert_eq!(
                inside.get(&id),
                Some(&store),
                "{id} moved outside its store"
            ),
        }
        stores_of.entry(id).or_default().insert(store);
    }
    assert!(enters > 100, "{enters} visits");
    assert!(inside.is_empty(), "everyone left");
    // Each customer shops at one home store only.
    for (id, stores) in &stores_of {
        assert_eq!(stores.len(), 1, "{id} visited stores {stores:?}");
    }
    assert_eq!(sorted(whole), union_of_shards(config.path(), 5), "5 shards");
}

#[test]
fn bad_shards_exit_2_naming_shard() {
    let config = fleet_pipeline("");
    for bad in ["3/3", "a/b", "0/0", "7"] {
        let mut command = customersim();
        command
            .args(["run", "--speed", "max", "--duration", "1m", "--config"])
            .arg(config.path())
            .env("SHARD", bad);
        let (output, stderr) = run_failing(&mut command, 2);
        assert!(output.stdout.is_empty());
        assert!(
            stderr.contains("SHARD") && stderr.contains(bad),
            "SHARD={bad}: {stderr}"
        );
    }
    let mut command = customersim();
    command
        .args(["validate", "--config"])
        .arg(config.path())
        .env("SHARD", "60/100");
    let (_, stderr) = run_failing(&mut command, 2);
    assert!(
        stderr.contains("SHARD") && stderr.contains("100 shards for a fleet of 50 stores"),
        "{stderr}"
    );
    let mut command = customersim();
    command
        .args(["run", "--shard", "3/3", "--config"])
        .arg(config.path());
    let (_, stderr) = run_failing(&mut command, 2);
    assert!(stderr.contains("--shard"), "{stderr}");
}

#[test]
fn a_store_topic_without_a_fleet_is_refused() {
    let config = temp_file(
        "no-fleet.yaml",
        "topics: {move: \"store/{store}/customer/move\"}\nsources: [{type: random_walk}]\nsinks: [{type: stdout}]\n",
    );
    let mut command = customersim();
    command.args(["validate", "--config"]).arg(config.path());
    let (_, stderr) = run_failing(&mut command, 2);
    assert!(
        stderr.contains("topics.move") && stderr.contains("fleet"),
        "{stderr}"
    );
}

#[test]
fn shopping_trip_stores_split_over_shards_too() {
    // The demo store's layout as a fleet of 4, focus events on their store's topic.
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/retail-demo.yaml"
    ))
    .unwrap();
    let layout = demo
        .split("\nstore:")
        .nth(1)
        .and_then(|rest| rest.split("\ntopics:").next())
        .expect("the demo's store section comes before its topics");
    let config = temp_file(
        "trip-fleet.yaml",
        &format!(
            "simulation: {{seed: 21, start: \"2026-01-05T09:00:00Z\"}}\nstore:{layout}\n\
             fleet: {{stores: [north, south, east, west]}}\n\
             topics: {{move: \"chain/{{store}}/move\", focus: \"chain/{{store}}/focus\"}}\n\
             sources: [{{type: shopping_trip, average_in_store: 4}}]\n\
             sinks: [{{type: stdout}}]\n"
        ),
    );
    let whole = sorted(run(config.path(), None, false));
    let focus: Vec<_> = whole
        .iter()
        .filter(|line| line.topic.ends_with("/focus"))
        .collect();
    assert!(!focus.is_empty(), "focus events are on");
    for store in ["north", "south", "east", "west"] {
        assert!(
            whole
                .iter()
                .any(|line| line.topic == format!("chain/{store}/move")),
            "no moves of {store}"
        );
    }
    assert_eq!(whole, union_of_shards(config.path(), 2), "2 shards");
}

/// `/state` (http_ingress) and the run report say which store: every shopper listed is in one of
/// the fleet's stores, and the report's `stores` add up to its totals.
#[test]
fn state_and_the_run_report_say_which_store() {
    use customersim_testkit::http::HttpClient;
    use customersim_testkit::net::free_port;
    use customersim_testkit::run::{Process, StdoutMode};
    use std::time::{Duration, Instant};

    let port = free_port();
    let config = temp_file(
        "fleet-state.yaml",
        "simulation: {seed: 5, speed: 600}\n\
             fleet: {stores: [north, south, west]}\n\
             topics:\n  enter: store/{store}/customer/enter\n  move: store/{store}/customer/move\n  exit: store/{store}/customer/exit\n\
             sources:\n  - type: random_walk\n    average_in_store: 4\n    mean_dwell: 1m\n\
             \x20 - type: http_ingress\n\
             sinks:\n  - type: stdout\n",
    );
    let report = temp_file("fleet-report.json", "");
    let mut process = Process::start(
        customersim()
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .args(["run", "--config"])
            .arg(config.path())
            .arg("--report")
            .arg(report.path()),
        StdoutMode::Collect,
    );
    let http = HttpClient::local(port);
    let started = Instant::now();
    while http.try_get("/health").is_err() {
        if !process.is_running() || started.elapsed() > Duration::from_secs(30) {
            process.terminate();
            panic!("no HTTP API: {}", process.finish().stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let stores_seen: HashSet<String> = loop {
        let state: Vec<serde_json::Value> =
            serde_json::from_str(&http.get("/state").body).expect("/state is JSON");
        for shopper in &state {
            let store = shopper["store"]
                .as_str()
                .expect("each shopper names a store");
            assert!(["north", "south", "west"].contains(&store), "{shopper}");
        }
        let seen: HashSet<String> = state
            .iter()
            .map(|shopper| shopper["store"].as_str().unwrap().to_string())
            .collect();
        if seen.len() == 3 || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        stores_seen.len(),
        3,
        "shoppers of every store: {stores_seen:?}"
    );
    process.terminate();
    let finished = process.finish();
    let lines = parse_lines(&finished.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.path()).unwrap())
            .expect("the report is JSON");
    let stores = report["stores"]
        .as_object()
        .expect("a fleet's report has `stores`");
    assert_eq!(stores.len(), 3);
    for (id, store) in stores {
        let published = lines
            .iter()
            .filter(|line| line.topic.starts_with(&format!("store/{id}/")))
            .count() as u64;
        assert_eq!(store["events"].as_u64(), Some(published), "store {id}");
    }
    let sum = |key: &str| -> u64 { stores.values().map(|s| s[key].as_u64().unwrap()).sum() };
    assert_eq!(report["visits"].as_u64(), Some(sum("visits")));
    assert_eq!(report["events"].as_u64(), Some(lines.len() as u64));
    assert!(
        report["peak_inside"].as_u64().unwrap()
            >= stores
                .values()
                .map(|s| s["peak_inside"].as_u64().unwrap())
                .max()
                .unwrap()
    );
}
