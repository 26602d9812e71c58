//! Focus events come from one stage every source's events pass through on their way to the
//! timeline, not from the sources: a source of this test binary (written as an out-of-tree team
//! writes one), `/scenario` and `/produce_*` of `http_ingress` get, for the same moves, exactly the
//! focus events `random_walk` gets, under both `focus.announce` rules; a draft's FOCUS step in a
//! department makes one.

// Shared with tests/pipeline_in_process.rs, which uses the parts this file does not.
#[allow(dead_code)]
mod in_process;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use customersim::config::Flags;
use customersim::pipeline::Pipeline;
use customersim::plugin_api::host::Shutdown;
use customersim::plugin_api::{
    BuildContext, Event, EventKind, PluginConfig, PluginError, Source, SourceConfig, SourceContext,
    async_trait, source_config,
};
use customersim_testkit::http::HttpClient;
use customersim_testkit::net::free_port;
use customersim_testkit::run::{Process, StdoutMode, clean_command};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::temp_file;
use in_process::{START, START_MS, recording, resolve};

/// The events each `replay` source schedules, by its `key`.
static REPLAYS: LazyLock<Mutex<HashMap<String, Vec<Event>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A source as a team adds its own: it knows nothing of focus, and schedules the events a test
/// left under its `key`, `batch` at a time.
#[source_config]
#[derive(Debug, Default)]
pub struct ReplayConfig {
    pub key: String,
    pub batch: usize,
}

impl PluginConfig for ReplayConfig {
    const NAME: &'static str = "replay";
    const DESCRIPTION: &'static str = "schedules the events a test left for it";
}

impl SourceConfig for ReplayConfig {
    fn build(self, _cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        Ok(Box::new(Replay(self)))
    }
}

struct Replay(ReplayConfig);

#[async_trait]
impl Source for Replay {
    /// Everything is scheduled before the virtual clock may move past it.
    fn paces_clock(&self) -> bool {
        true
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), PluginError> {
        let events = REPLAYS
            .lock()
            .unwrap()
            .remove(&self.0.key)
            .unwrap_or_default();
        for chunk in events.chunks(self.0.batch.max(1)) {
            cx.schedule
                .schedule(chunk.to_vec())
                .await
                .map_err(PluginError::fatal)?;
        }
        Ok(())
    }
}

/// The demo store's `store:` section (departments, rooms with `focus: false`, walls), as JSON.
fn demo_store() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/retail-demo.yaml"
    ))
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::to_string(&doc["store"]).unwrap()
}

/// A pipeline in the demo store with focus on, announced as `announce` says.
fn pipeline(announce: &str, sources: &str, key: &str) -> String {
    format!(
        "simulation: {{seed: 42, speed: max, start: \"{START}\"}}\n\
         store: {}\n\
         topics: {{focus: customer/focus}}\n\
         focus: {{announce: {announce}}}\n\
         timeline: {{consume_frequency: 0, consume_batch_size: 5000}}\n\
         sources: {sources}\n\
         sinks: [{{type: record, key: {key}}}]\n",
        demo_store()
    )
}

/// Runs `yaml` to its end; what its `record` sink under `key` got.
async fn run(yaml: &str, duration: Option<Duration>, key: &str) -> Vec<Event> {
    let flags = Flags {
        duration,
        ..Flags::default()
    };
    let pipeline = Pipeline::build(resolve(yaml, &flags, &[])).expect("pipeline builds");
    pipeline
        .run(Shutdown::new())
        .await
        .expect("the run ends well");
    recording(key).events()
}

/// An hour of random walkers in the demo store, with their focus events; `test` keeps its
/// recording apart from other tests'.
async fn random_walk(announce: &str, test: &str) -> Vec<Event> {
    let key = format!("focus-walk-{test}-{announce}");
    let sources = "[{type: random_walk, average_in_store: 30, mean_dwell: 5s}]";
    run(
        &pipeline(announce, sources, &key),
        Some(Duration::from_secs(3600)),
        &key,
    )
    .await
}

fn is_focus(event: &Event) -> bool {
    matches!(event.kind, EventKind::Focus { .. })
}

/// Checks every focus follows the move it announces, names a department the demo's consumers
/// know, and returns how many there are.
fn check_focus(events: &[Event]) -> usize {
    let mut count = 0;
    for (index, event) in events.iter().enumerate() {
        let EventKind::Focus { dep, x, y } = event.kind else {
            continue;
        };
        count += 1;
        let before = &events[index - 1];
        assert_eq!(
            (before.due_ms, &before.customer, before.kind),
            (event.due_ms, &event.customer, EventKind::Move { x, y }),
            "a focus follows its move"
        );
        assert!(
            ["Women", "Boys", "Girls", "Men", "Sport"].contains(&dep),
            "a focus names {dep}, a room with focus: false or no department"
        );
    }
    count
}

#[tokio::test]
async fn a_custom_source_gets_the_focus_random_walk_gets_for_the_same_moves() {
    for announce in ["once_per_stay", "every_report"] {
        let walked = random_walk(announce, "replay").await;
        let focuses = check_focus(&walked);
        assert!(focuses > 20, "{announce}: {focuses} focus events");
        let moves: Vec<Event> = walked.iter().filter(|e| !is_focus(e)).cloned().collect();
        // In batches of an odd size, so focus runs straddle them.
        for batch in [moves.len(), 97] {
            let key = format!("focus-replay-{announce}-{batch}");
            REPLAYS.lock().unwrap().insert(key.clone(), moves.clone());
            let sources = format!("[{{type: replay, key: {key}, batch: {batch}}}]");
            let replayed = run(&pipeline(announce, &sources, &key), None, &key).await;
            assert_eq!(
                replayed.len(),
                walked.len(),
                "{announce}, batches of {batch}"
            );
            assert!(
                replayed == walked,
                "{announce}, batches of {batch}: not the random walk's stream"
            );
        }
    }
}

/// The published line of `event`, as the stdout sink prints it (`topic payload`).
fn line(event: &Event) -> String {
    let topic = match event.kind {
        EventKind::Enter => "customer/enter",
        EventKind::Move { .. } => "customer/move",
        EventKind::Exit => "customer/exit",
        EventKind::Focus { .. } => "customer/focus",
    };
    format!("{topic} {}", String::from_utf8(event.payload()).unwrap())
}

#[tokio::test]
async fn scenarios_drafts_and_produce_calls_get_the_focus_random_walk_gets_for_the_same_moves() {
    let walked = random_walk("once_per_stay", "http").await;
    // Each visit (enter to exit) of the walk, without its focus events.
    let mut visits: Vec<Vec<Event>> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for event in walked.iter().filter(|e| !is_focus(e)) {
        let id = event.customer.to_string();
        let visit = *open.entry(id.clone()).or_insert_with(|| {
            visits.push(Vec::new());
            visits.len() - 1
        });
        visits[visit].push(event.clone());
        if event.kind == EventKind::Exit {
            open.remove(&id);
        }
    }
    assert!(visits.len() > 50, "{} visits", visits.len());

    // An http_ingress run two hours later, publishing what was due before it started
    // (`consume_from: earliest`): the scenarios are in the past, so they are published at once.
    let port = free_port();
    let config = temp_file(
        "focus-http.yaml",
        &format!(
            "simulation: {{start: \"{}\", speed: 60, duration: 5m}}\n\
             store: {}\n\
             topics: {{focus: customer/focus}}\n\
             timeline: {{consume_from: earliest, consume_frequency: 0.05}}\n\
             sources: [{{type: http_ingress}}]\n\
             sinks: [{{type: stdout}}]\n",
            chrono::DateTime::from_timestamp_millis(START_MS + 2 * 3_600_000)
                .unwrap()
                .to_rfc3339(),
            demo_store()
        ),
    );
    let process = Process::start(
        clean_command(env!("CARGO_BIN_EXE_customersim"))
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .args(["run", "--config"])
            .arg(config.path()),
        StdoutMode::Collect,
    );
    let http = HttpClient::local(port);
    http.wait_until_healthy(Duration::from_secs(20));
    // A draft whose FOCUS step (a move and 5 more in place) is inside Women.
    let draft = r#"{"customer": {"customer_id": "draft-1"}, "path": [{"type": "ENTER"},
        {"type": "FOCUS", "location": {"x": 500, "y": 500}}, {"type": "EXIT"}]}"#;
    assert_eq!(http.post("/scenario_draft", draft).status, 200);
    // The first visit with a focus goes through /produce_* (published at once, `ts` in whole
    // seconds), every other one as a /scenario (timestamps in epoch milliseconds).
    let produced = visits
        .iter()
        .position(|visit| {
            walked
                .iter()
                .any(|e| is_focus(e) && e.customer == visit[0].customer)
        })
        .unwrap();
    for (index, visit) in visits.iter().enumerate() {
        if index == produced {
            for event in visit {
                let (path, body) = match event.kind {
                    EventKind::Enter => ("/produce_entry", String::new()),
                    EventKind::Exit => ("/produce_exit", String::new()),
                    EventKind::Move { x, y } => {
                        ("/produce_move", format!(", \"x\": {x}, \"y\": {y}"))
                    }
                    EventKind::Focus { .. } => unreachable!(),
                };
                let body = format!(
                    "{{\"id\": \"{}\", \"ts\": {}{body}}}",
                    event.customer,
                    event.ts()
                );
                assert_eq!(http.post(path, &body).status, 200, "{path} {body}");
            }
            continue;
        }
        let steps: Vec<String> = visit
            .iter()
            .map(|event| {
                let (kind, (x, y)) = match event.kind {
                    EventKind::Enter => ("ENTER", (0, 0)),
                    EventKind::Exit => ("EXIT", (0, 0)),
                    EventKind::Move { x, y } => ("MOVE", (x, y)),
                    EventKind::Focus { .. } => unreachable!(),
                };
                format!(
                    "{{\"type\": \"{kind}\", \"location\": {{\"x\": {x}, \"y\": {y}}}, \"timestamp\": {}}}",
                    event.due_ms
                )
            })
            .collect();
        let body = format!(
            "{{\"customer\": {{\"customer_id\": \"{}\"}}, \"path\": [{}]}}",
            visit[0].customer,
            steps.join(", ")
        );
        let answer = http.post("/scenario", &body);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let finished = process.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    let (drafted, lines): (Vec<String>, Vec<String>) = parse_lines(&finished.stdout)
        .into_iter()
        .map(|line| format!("{} {}", line.topic, line.payload))
        .partition(|line| line.contains(r#"{"id": "draft-1""#));
    // The draft's focus follows its 3rd report inside Women, once.
    let kinds: Vec<&str> = drafted
        .iter()
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "customer/enter",
            "customer/move",
            "customer/move",
            "customer/move",
            "customer/focus",
            "customer/move",
            "customer/move",
            "customer/move",
            "customer/exit"
        ],
        "{drafted:?}"
    );
    assert_eq!(
        drafted[4],
        drafted[3]
            .replace("customer/move", "customer/focus")
            .replace(", \"x\"", ", \"dep\": \"Women\", \"x\"")
    );
    assert_eq!(lines.len(), walked.len(), "{}", finished.stderr);
    // Each focus right after its move.
    for (index, focus) in lines.iter().enumerate() {
        let Some(payload) = focus.strip_prefix("customer/focus ") else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(
            lines[index - 1],
            format!(
                "customer/move {{\"id\": {}, \"ts\": {}, \"x\": {}, \"y\": {}}}",
                value["id"], value["ts"], value["x"], value["y"]
            )
        );
    }
    let sorted = |mut lines: Vec<String>| {
        lines.sort();
        lines
    };
    let expected = sorted(walked.iter().map(line).collect());
    assert!(
        expected
            .iter()
            .filter(|l| l.starts_with("customer/focus"))
            .count()
            > 20,
        "the walk has focus events"
    );
    assert!(
        sorted(lines) == expected,
        "the published lines are not the random walk's"
    );
}
