//! The `live_view` sink in a real headless Chromium, driven through chromedriver (started by the
//! test on a free port) with fantoccini, against the real binary; and its promise never to change
//! what is published, whatever a page does.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Screenshots go to `target/test-artifacts/live_view_*.png`.

// A browser test holds its turn (a std lock) across awaits on purpose: each test has a runtime of
// its own, so the lock only keeps the other browser tests' threads waiting, never a task of its own.
#![allow(clippy::await_holding_lock)]

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use customersim_testkit::http::{HttpClient, bearer};
use customersim_testkit::net::free_port;
use customersim_testkit::responder::{Responder, ResponderBroker, ResponderOptions};
use customersim_testkit::run::{Process, StdoutMode, clean_command, run_ok};
use customersim_testkit::temp::{TempFile, temp_file};
use customersim_testkit::turns::Turns;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// One browser at a time: Chromium is heavy for a small machine, and the run-to-run comparison
/// below wants the processor to itself no more than the others do.
static BROWSERS: Turns = Turns::new();

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Where screenshots are written: `target/test-artifacts/`.
fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir.join(name)
}

/// The binary running a pipeline with a `live_view` sink on a free port; killed when dropped.
struct Run {
    process: Process,
    port: u16,
    http: HttpClient,
    _config: Option<TempFile>,
}

impl Run {
    /// Runs `args` with LIVE_VIEW_LISTEN on a free port and `env`; waits for the view's server.
    fn start(args: &[&str], env: &[(&str, &str)], config: Option<TempFile>) -> Run {
        let port = free_port();
        let mut command = customersim();
        command
            .arg("run")
            .args(args)
            .env("LIVE_VIEW_LISTEN", format!("127.0.0.1:{port}"))
            .env("LOG_LEVEL", "warn");
        if let Some(config) = &config {
            command.arg("--config").arg(config.path());
        }
        for (var, value) in env {
            command.env(var, value);
        }
        let process = Process::start(&mut command, StdoutMode::Discard);
        let http = HttpClient::local(port);
        http.wait_until_healthy(Duration::from_secs(30));
        Run {
            process,
            port,
            http,
            _config: config,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn state(&self, headers: &[(&str, &str)]) -> Value {
        let answer = self.http.get_with("/state", headers);
        assert_eq!(answer.status, 200, "{}", answer.body);
        serde_json::from_str(&answer.body).expect("/state is JSON")
    }

    /// Waits until `/state` satisfies `ready`.
    fn wait_state(&self, headers: &[(&str, &str)], ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.state(headers);
            if ready(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "/state never got there: {state}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A headless Chromium behind its own chromedriver; both end when dropped.
struct Browser {
    client: Client,
    driver: HttpClient,
    _chromedriver: Process,
}

impl Browser {
    async fn open() -> Browser {
        let port = free_port();
        let chromedriver = Process::start(
            Command::new("chromedriver").arg(format!("--port={port}")),
            StdoutMode::Discard,
        );
        let driver = HttpClient::local(port);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !driver
            .try_get("/status")
            .is_ok_and(|answer| answer.body.contains("\"ready\":true"))
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1440,1150",
                         "--hide-scrollbars", "--force-device-scale-factor=1"],
            }),
        );
        capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            driver,
            _chromedriver: chromedriver,
        }
    }

    async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|error| panic!("{script}: {error}"))
    }

    /// Waits until `script` returns true in the page.
    async fn wait_until(&self, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.script(script).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "never true in the page: {script}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The browser's console messages so far (chromedriver's log endpoint).
    async fn console(&self) -> Vec<Value> {
        let session = self.client.session_id().await.unwrap().expect("a session");
        let answer = self.driver.post_with(
            &format!("/session/{session}/se/log"),
            r#"{"type": "browser"}"#,
            &[("Content-Type", "application/json")],
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let log: Value = serde_json::from_str(&answer.body).unwrap();
        log["value"].as_array().cloned().unwrap_or_default()
    }

    async fn assert_no_console_errors(&self) {
        let errors: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|entry| entry["level"] == "SEVERE" || entry["level"] == "WARNING")
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    async fn marks_drawn(&self) -> u64 {
        let marks = self
            .client
            .find(Locator::Css("#marks"))
            .await
            .unwrap()
            .attr("data-marks")
            .await
            .unwrap()
            .expect("the canvas says how many marks it drew");
        marks.parse().unwrap()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(artifact(name), png).expect("write the screenshot");
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// The store section (and everything else but sources and sinks) of the demo store's pipeline.
fn demo_store_without_plugins() -> String {
    let demo = std::fs::read_to_string(repo_file("configs/retail-demo.yaml")).unwrap();
    let (head, _) = demo.split_once("\nsources:").expect("the demo has sources");
    format!("{head}\n")
}

/// The names the demo store's page must show: its departments and checkouts.
fn demo_zone_names() -> Vec<String> {
    let demo: Value = serde_yaml::from_str::<Value>(
        &std::fs::read_to_string(repo_file("configs/retail-demo.yaml")).unwrap(),
    )
    .unwrap();
    let names: Vec<String> = demo["store"]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|zone| zone["kind"] != "obstacle")
        .map(|zone| zone["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_store_page_shows_its_zones_and_every_shopper_inside() {
    let _turn = BROWSERS.alone();
    let demo = repo_file("configs/retail-demo.yaml");
    let run = Run::start(
        &["--config", demo.to_str().unwrap(), "--speed", "20"],
        &[("SINKS", "live_view"), ("CONSUME_BATCH_SIZE", "1000")],
        None,
    );
    run.wait_state(&[], |state| state["inside"].as_u64() >= Some(3));
    let browser = Browser::open().await;
    browser.client.goto(&run.url("/")).await.unwrap();
    browser
        .wait_until("return window.liveView && liveView.frames() > 2")
        .await;

    // Every department and checkout of the file is named on the plan and in the side panel.
    let on_plan: Vec<String> = serde_json::from_value(
        browser
            .script(
                "return [...document.querySelectorAll('#plan .zone-name')].map(t => t.textContent)",
            )
            .await,
    )
    .unwrap();
    let mut in_panel: Vec<String> = serde_json::from_value(
        browser
            .script("return [...document.querySelectorAll('#zones .name, #checkouts .name')].map(t => t.textContent)")
            .await,
    )
    .unwrap();
    let names = demo_zone_names();
    assert_eq!(on_plan, names);
    let mut sorted = names.clone();
    sorted.sort();
    in_panel.sort();
    assert_eq!(in_panel, sorted);
    for name in ["Women", "Checkout 3", "Entrance", "Exit"] {
        let shown = browser
            .client
            .find(Locator::XPath(&format!("//*[text()='{name}']")))
            .await
            .unwrap_or_else(|_| panic!("{name} is not on the page"));
        assert!(shown.is_displayed().await.unwrap(), "{name} is hidden");
    }

    // The marks drawn equal /state's count within one frame: compare whenever /state held still
    // across two frames.
    let mut compared = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while compared < 5 {
        assert!(Instant::now() < deadline, "/state never held still");
        let before = run.state(&[])["inside"].as_u64().unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let drawn = browser.marks_drawn().await;
        let after = run.state(&[])["inside"].as_u64().unwrap();
        if before == after {
            assert_eq!(drawn, before, "marks drawn vs /state");
            compared += 1;
        }
    }
    let shown_inside = browser
        .script("return document.getElementById('inside').textContent")
        .await;
    assert_ne!(shown_inside, json!("–"));

    browser.screenshot("live_view_demo_store.png").await;
    browser.assert_no_console_errors().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_posted_as_a_scenario_appears_at_its_coordinates() {
    let _turn = BROWSERS.alone();
    let yaml = format!(
        "{}sources:\n  - type: http_ingress\nsinks:\n  - type: live_view\n",
        demo_store_without_plugins()
    );
    let http_port = free_port();
    let listen = format!("127.0.0.1:{http_port}");
    let run = Run::start(
        &[],
        &[("HTTP_LISTEN", listen.as_str())],
        Some(temp_file("scenario-view.yaml", &yaml)),
    );
    let browser = Browser::open().await;
    browser.client.goto(&run.url("/")).await.unwrap();
    browser
        .wait_until("return window.liveView && liveView.frames() > 0")
        .await;
    assert_eq!(browser.marks_drawn().await, 0, "an empty store");

    // Enters at the door, walks into Women and stays there.
    let ingress = HttpClient::local(http_port);
    ingress.wait_until_healthy(Duration::from_secs(20));
    let scenario = json!({
        "customer": {"customer_id": "scenario-7"},
        "path": [
            {"type": "ENTER", "location": {"x": 929, "y": 49}, "timestamp": 0},
            {"type": "MOVE", "location": {"x": 555, "y": 700}, "timestamp": 1},
        ]
    });
    let answer = ingress.post("/scenario?recalculate_time=true", &scenario.to_string());
    assert_eq!(answer.status, 200, "{}", answer.body);

    let state = run.wait_state(&[], |state| {
        state["shoppers"] == json!([{"id": "scenario-7", "x": 555, "y": 700}])
    });
    assert_eq!(state["inside"], 1);
    browser
        .wait_until("return JSON.stringify(liveView.marks()) === '[[555,700]]'")
        .await;
    assert_eq!(browser.marks_drawn().await, 1);
    // The canvas really has the mark there: the pixel at (555, 700) is the marks' colour.
    let pixel = browser
        .script(
            "const [x, y] = liveView.toCanvas(555, 700);
             const d = document.getElementById('marks').getContext('2d').getImageData(x, y, 1, 1).data;
             return [d[0], d[1], d[2], d[3], ...liveView.markColor];",
        )
        .await;
    let pixel: Vec<i64> = serde_json::from_value(pixel).unwrap();
    assert_eq!(pixel[3], 255, "an opaque mark at (555, 700): {pixel:?}");
    for channel in 0..3 {
        assert!(
            (pixel[channel] - pixel[4 + channel]).abs() <= 8,
            "the mark's colour at (555, 700): {pixel:?}"
        );
    }
    // Women (zone 0) has one shopper in the panel.
    let women = browser
        .script(
            "return document.querySelector('#zones .zone-row[data-zone=\"0\"] .count').textContent",
        )
        .await;
    assert_eq!(women, json!("1"));
    browser.screenshot("live_view_scenario.png").await;
    browser.assert_no_console_errors().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_grid_is_drawn_and_a_token_guards_the_page_and_its_data() {
    let _turn = BROWSERS.alone();
    let yaml = "sources:\n  - type: random_walk\n    average_in_store: 8\n    mean_dwell: 2s\nsinks:\n  - type: live_view\n    token: s3cret\n";
    let run = Run::start(
        &["--speed", "10"],
        &[],
        Some(temp_file("grid-view.yaml", yaml)),
    );
    for path in ["/", "/state", "/events", "/?token=wrong"] {
        assert_eq!(run.http.get(path).status, 401, "{path}");
    }
    for path in ["/health", "/app.js", "/style.css"] {
        assert_eq!(run.http.get(path).status, 200, "{path}");
    }
    let authorization = bearer("s3cret");
    let state = run.wait_state(&[("Authorization", authorization.as_str())], |state| {
        state["inside"].as_u64() >= Some(1)
    });
    for shopper in state["shoppers"].as_array().unwrap() {
        assert!(shopper["x"].as_i64().unwrap() < 6 && shopper["y"].as_i64().unwrap() < 10);
    }

    let browser = Browser::open().await;
    browser
        .client
        .goto(&run.url("/?token=s3cret"))
        .await
        .unwrap();
    browser
        .wait_until(
            "return window.liveView && liveView.frames() > 2 && liveView.marks().length > 0",
        )
        .await;
    let lines = browser
        .script("return document.querySelectorAll('#plan line').length")
        .await;
    assert_eq!(lines, json!(5 + 9), "the 6 × 10 grid's inner lines");
    let foot = browser
        .script("return document.getElementById('map-foot').textContent")
        .await;
    assert_eq!(foot, json!("Plain grid: 6 × 10 cells, one door"));
    let door = browser
        .script("return [...document.querySelectorAll('#plan .door-name')].map(t => t.textContent)")
        .await;
    assert_eq!(door, json!(["Door"]));
    browser.screenshot("live_view_grid.png").await;
    browser.assert_no_console_errors().await;
    browser.close().await;
}

/// Opens the view's event stream as a page would, and returns its body to read (or not).
fn open_stream(url: &str) -> Result<impl Read + Send + 'static, ureq::Error> {
    let response = ureq::get(url)
        .header("Accept", "text/event-stream")
        .call()?;
    Ok(response.into_body().into_reader())
}

/// Reads an event stream like a page that cannot keep up: a few bytes, then a long pause; returns
/// what it read.
fn slow_reader(url: String) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let Ok(mut body) = open_stream(&url) else {
            return Vec::new();
        };
        let mut buffer = [0u8; 512];
        let mut all = Vec::new();
        while let Ok(read) = body.read(&mut buffer) {
            if read == 0 {
                break;
            }
            all.extend_from_slice(&buffer[..read]);
            std::thread::sleep(Duration::from_millis(200));
        }
        all
    })
}

#[test]
fn a_stuck_or_slow_page_does_not_change_what_is_published() {
    let _turn = BROWSERS.alone();
    let yaml = "sources:\n  - type: random_walk\n    average_in_store: 200\n    mean_dwell: 5s\nsinks:\n  - type: stdout\n";
    let config = temp_file("stdout-only.yaml", yaml);
    let args = [
        "--speed",
        "max",
        "--duration",
        "2h",
        "--seed",
        "11",
        "--start",
        "2026-01-01T08:00:00Z",
    ];
    let alone = run_ok(
        customersim()
            .arg("run")
            .arg("--config")
            .arg(config.path())
            .args(args),
    );
    assert!(alone.stdout.len() > 5_000_000, "a long enough run");

    let with_view = temp_file(
        "stdout-and-view.yaml",
        &format!("{yaml}  - type: live_view\n"),
    );
    let port = free_port();
    let mut command = customersim();
    command
        .args(["run", "--config"])
        .arg(with_view.path())
        .args(args)
        .env("LIVE_VIEW_LISTEN", format!("127.0.0.1:{port}"));
    let process = Process::start(&mut command, StdoutMode::Collect);
    // A stuck page (reads the first bytes, then never again) and a slow one, connected as soon
    // as the view listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stuck = loop {
        match open_stream(&format!("http://127.0.0.1:{port}/events")) {
            Ok(stream) => break stream,
            Err(_) => {
                assert!(Instant::now() < deadline, "the view never listened");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    let mut first = [0u8; 64];
    let read = stuck
        .read(&mut first)
        .expect("the stuck page's first bytes");
    assert!(read > 0);
    let slow = slow_reader(format!("http://127.0.0.1:{port}/events"));
    let finished = process.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    drop(stuck);
    let slow = String::from_utf8_lossy(&slow.join().unwrap()).into_owned();
    assert!(
        slow.contains("event: frame"),
        "the slow page got frames: {slow:.300}"
    );
    assert!(
        finished.stdout == alone.stdout,
        "the stdout stream differs with the view attached ({} vs {} bytes)",
        finished.stdout.len(),
        alone.stdout.len()
    );
}

/// Every bar of the side panel, read in one go: (list, count shown, bar length as a share of its
/// track).
const BARS: &str = "return [...document.querySelectorAll('.zone-row')].map(row => [
    row.dataset.kind,
    Number(row.querySelector('.count').textContent.replace(/,/g, '')),
    row.querySelector('.bar i').getBoundingClientRect().width
        / row.querySelector('.bar').getBoundingClientRect().width])";

/// Each bar is as long as its number makes it: the number over the largest of its list.
fn assert_bars_follow_their_numbers(bars: &Value) {
    let bars: Vec<(String, f64, f64)> = serde_json::from_value(bars.clone()).unwrap();
    assert!(!bars.is_empty());
    for kind in ["department", "checkout"] {
        let list: Vec<&(String, f64, f64)> = bars.iter().filter(|bar| bar.0 == kind).collect();
        assert!(!list.is_empty(), "{kind}: {bars:?}");
        let max = list.iter().map(|bar| bar.1).fold(1.0, f64::max);
        for (_, count, share) in list {
            assert!(
                (share - count / max).abs() < 0.02,
                "{kind}: a bar of {share:.3} beside {count} (largest {max}): {bars:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_what_its_numbers_say_at_speed_60_and_max() {
    let _turn = BROWSERS.alone();
    let demo = repo_file("configs/retail-demo.yaml");
    for speed in ["60", "max"] {
        let run = Run::start(
            &[
                "--config",
                demo.to_str().unwrap(),
                "--speed",
                speed,
                "--duration",
                "1000d",
            ],
            &[("SINKS", "live_view")],
            None,
        );
        run.wait_state(&[], |state| state["inside"].as_u64() >= Some(4));
        let browser = Browser::open().await;
        // A laptop's screen: the checkouts must be in view without scrolling.
        browser.client.set_window_size(1366, 768).await.unwrap();
        browser.client.goto(&run.url("/")).await.unwrap();
        browser
            .wait_until("return window.liveView && liveView.frames() > 20")
            .await;

        // Bars from the very numbers beside them, in the same frame.
        let bars = browser.script(BARS).await;
        assert_bars_follow_their_numbers(&bars);

        // Faster than real time: the charts run on the simulated clock and cover the run.
        assert_eq!(
            browser.script("return liveView.chartAxis()").await,
            json!("simulated")
        );
        let span: Vec<f64> =
            serde_json::from_value(browser.script("return liveView.chartSpan()").await).unwrap();
        assert!(span[1] - span[0] >= 60_000.0, "{span:?}");
        let peak = browser
            .script("return document.getElementById('peak').textContent")
            .await;
        let peak = peak.as_str().unwrap();
        assert!(
            peak.starts_with("peak ") && peak.ends_with("(simulated)"),
            "{peak}"
        );
        let hint = browser
            .script("return document.querySelector('.chart-span').textContent")
            .await;
        assert_eq!(hint, json!("simulated time, whole run"));

        // The legend names what this layout has.
        let legend = browser
            .script("return [...document.querySelectorAll('#map-legend [data-kind]')].map(e => e.dataset.kind)")
            .await;
        assert_eq!(
            legend,
            json!([
                "shopper",
                "department",
                "checkout",
                "obstacle",
                "entrance",
                "exit"
            ])
        );

        // The checkouts are in view.
        let fits = browser
            .script(
                "const rows = document.querySelectorAll('#checkouts .zone-row');
                 return rows.length === 3
                   && rows[2].getBoundingClientRect().bottom <= window.innerHeight",
            )
            .await;
        assert_eq!(
            fits,
            json!(true),
            "the three checkouts are visible without scrolling"
        );

        browser
            .screenshot(&format!("live_view_speed_{speed}.png"))
            .await;
        browser.assert_no_console_errors().await;
        browser.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoppers_on_one_position_are_counted_on_one_mark_and_real_time_charts_run_on_the_wall_clock()
 {
    let _turn = BROWSERS.alone();
    // The plain grid: the legend has no zone kinds, only the door.
    let yaml = "sources:\n  - type: http_ingress\nsinks:\n  - type: live_view\n";
    let http_port = free_port();
    let listen = format!("127.0.0.1:{http_port}");
    let run = Run::start(
        &[],
        &[("HTTP_LISTEN", listen.as_str())],
        Some(temp_file("together-view.yaml", yaml)),
    );
    let ingress = HttpClient::local(http_port);
    ingress.wait_until_healthy(Duration::from_secs(20));
    for (id, (x, y)) in [("a", (2, 3)), ("b", (2, 3)), ("c", (4, 5))] {
        let scenario = json!({
            "customer": {"customer_id": id},
            "path": [
                {"type": "ENTER", "location": {"x": 0, "y": 0}, "timestamp": 0},
                {"type": "MOVE", "location": {"x": x, "y": y}, "timestamp": 1},
            ]
        });
        let answer = ingress.post("/scenario?recalculate_time=true", &scenario.to_string());
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    run.wait_state(&[], |state| {
        state["shoppers"].as_array().is_some_and(|shoppers| {
            shoppers.len() == 3 && shoppers.iter().all(|shopper| shopper["x"] != 0)
        })
    });
    let browser = Browser::open().await;
    browser.client.goto(&run.url("/")).await.unwrap();
    browser
        .wait_until(
            "return window.liveView && liveView.marks().length === 3
               && document.getElementById('marks').dataset.positions === '2'",
        )
        .await;
    let mut groups: Vec<(i64, i64, i64)> =
        serde_json::from_value(browser.script("return liveView.groups()").await).unwrap();
    groups.sort();
    assert_eq!(groups, [(2, 3, 2), (4, 5, 1)]);
    assert_eq!(browser.marks_drawn().await, 3, "three shoppers");
    let positions = browser
        .script("return document.getElementById('marks').dataset.positions")
        .await;
    assert_eq!(positions, json!("2"));
    // The mark of two shows its number: white text on the mark's colour at its centre area.
    let white = browser
        .script(
            "const [x, y] = liveView.toCanvas(2, 3);
             const d = document.getElementById('marks').getContext('2d').getImageData(x - 8, y - 8, 16, 16).data;
             let white = 0;
             for (let i = 0; i < d.length; i += 4) if (d[i] > 240 && d[i + 1] > 240 && d[i + 2] > 240 && d[i + 3] > 200) white++;
             return white;",
        )
        .await;
    assert!(
        white.as_i64().unwrap() > 3,
        "the count is written on the mark: {white}"
    );

    // Real time (speed 1): the charts run on the wall clock, the peak over their ten minutes.
    assert_eq!(
        browser.script("return liveView.chartAxis()").await,
        json!("wall")
    );
    let peak = browser
        .script("return document.getElementById('peak').textContent")
        .await;
    assert_eq!(peak, json!("peak 3 in the last 10 min"));
    let legend = browser
        .script("return [...document.querySelectorAll('#map-legend [data-kind]')].map(e => e.dataset.kind)")
        .await;
    assert_eq!(legend, json!(["shopper", "door"]));
    let checkouts_hidden = browser
        .script("return document.getElementById('checkouts-card').hidden")
        .await;
    assert_eq!(checkouts_hidden, json!(true), "no checkouts, no card");
    browser.screenshot("live_view_together.png").await;
    browser.assert_no_console_errors().await;
    browser.close().await;
}

/// The demo store with its topics under `prefix`, shoppers arriving from 08:00 to 09:00 only (so
/// the store is quiet after its last shopper left, and every expectation gets decided while the
/// view still runs), an `mqtt` sink to the local Mosquitto that the replies are read back from,
/// and `extra` (the checks).
fn demo_checks_config(prefix: &str, extra: &str) -> TempFile {
    let customers = repo_file("configs/retail-demo-customers.csv");
    let yaml = format!(
        "{}sources:
  - type: shopping_trip
    average_in_store: 20
    opening_hours: [\"08:00\", \"09:00\"]
  - type: customer_list
    path: {}
sinks:
  - type: mqtt
    host: 127.0.0.1
  - type: live_view
{extra}",
        demo_store_without_plugins().replace("customer/", &format!("{prefix}/customer/")),
        customers.display(),
    );
    temp_file("checks-view.yaml", &yaml)
}

/// The figures of the Checks card's rules as the page shows them: name, each figure's number
/// read from the text, and the line under them.
const CARD_RULES: &str = "return [...document.querySelectorAll('#checks .rule')].map(rule => ({
    name: rule.querySelector('.rule-name').textContent,
    figures: Object.fromEntries([...rule.querySelectorAll('.figure')].map(figure => [
        figure.dataset.figure,
        Number(figure.querySelector('.n').textContent.replace(/,/g, ''))])),
    foot: rule.querySelector('.rule-foot').textContent}))";

/// The Checks card's threshold rows: mark, metric, expression, measured, what a screen reader
/// says instead of the mark.
const CARD_THRESHOLDS: &str =
    "return [...document.querySelectorAll('#checks .thresholds tr')].map(row => [
    row.querySelector('.verdict-mark').textContent,
    row.querySelector('.metric').textContent,
    row.querySelector('.expr').textContent,
    row.querySelector('.measured').textContent,
    row.querySelector('.sr-only').textContent])";

/// What the card shows of a rule.
const FIGURES: [&str; 6] = [
    "expected",
    "answered",
    "late",
    "missing",
    "unexpected",
    "invalid",
];

/// The card's figures of each rule, as `{name: {figure: n}}`, from checks JSON (the page's data,
/// `/state`'s or the run report's verdict).
fn figures_of(expectations: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for rule in expectations.as_array().expect("expectations") {
        let figures: serde_json::Map<String, Value> = FIGURES
            .iter()
            .map(|figure| (figure.to_string(), rule[*figure].clone()))
            .collect();
        out.insert(rule["name"].as_str().unwrap().into(), figures.into());
    }
    out.into()
}

/// The card's figures as the page's text says them, in the form of [`figures_of`].
fn card_figures(rules: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for rule in rules.as_array().unwrap() {
        out.insert(
            rule["name"].as_str().unwrap().into(),
            rule["figures"].clone(),
        );
    }
    out.into()
}

impl Browser {
    /// Waits until the card's text says what `/state`'s checks say (both come from the view's
    /// reads, once a second), and returns them.
    async fn card_as_in_state(&self, run: &Run) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = card_figures(&self.script(CARD_RULES).await);
            let data = figures_of(&self.script("return liveView.checks().expectations").await);
            let state = run.state(&[]);
            if shown == data && shown == figures_of(&state["checks"]["expectations"]) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "the card never showed /state's checks: {shown} vs {}",
                state["checks"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_card_shows_each_rule_and_threshold_as_the_run_report_does() {
    let _turn = BROWSERS.alone();
    let prefix = format!(
        "live-view-test/checks/{}-{}",
        std::process::id(),
        customersim::plugin_api::clock::unix_now_us()
    );
    // Answers every focus after 20 ms, but leaves every fifth one unanswered (missing), answers
    // every seventh late (after `within`, before `within + grace`) and sends a reply for nobody
    // after every eleventh (unexpected).
    let mut options = ResponderOptions::new(
        &format!("{prefix}/customer/focus"),
        &format!("{prefix}/customer/prediction"),
    );
    options.skip_every = 5;
    options.late_every = 7;
    options.late_delay = Duration::from_millis(1_500);
    options.unmatched_every = 11;
    let responder = Responder::start(ResponderBroker::local_mqtt(), options);
    let checks = format!(
        "expect:
  - name: coupons
    event: focus
    reply_topic: {prefix}/customer/prediction
    reply_field: customer.id
    within: 1s
thresholds:
  replies_missing: [\"rate < 0.5\"]
  reply_latency: [\"p(99) < 1ms\"]
"
    );
    let report = temp_file("checks-report.json", "");
    let run = Run::start(
        &[
            "--speed",
            "180",
            "--start",
            "2026-01-01T08:40:00Z",
            "--seed",
            "7",
            "--report",
            report.path().to_str().unwrap(),
        ],
        &[],
        Some(demo_checks_config(&prefix, &checks)),
    );
    let browser = Browser::open().await;
    browser.client.goto(&run.url("/")).await.unwrap();
    // Every kind of figure has happened (a missing one is decided 2 s after its focus).
    browser
        .wait_until(
            "const checks = window.liveView && liveView.checks();
             const rule = checks && checks.expectations[0];
             return !!rule && rule.answered > 0 && rule.late > 0 && rule.missing > 0
               && rule.unexpected > 0",
        )
        .await;
    assert_eq!(
        browser
            .script("return document.getElementById('checks-card').hidden")
            .await,
        json!(false)
    );

    // While the run goes on, the page's text says what the view read.
    let shown = browser.card_as_in_state(&run).await;
    let coupons = &shown["coupons"];
    let count = |figure: &str| coupons[figure].as_u64().unwrap();
    assert!(count("answered") > 0, "{shown}");
    assert!(
        count("answered") + count("late") + count("missing") <= count("expected"),
        "{shown}"
    );
    let rules = browser.script(CARD_RULES).await;
    let foot = rules[0]["foot"].as_str().unwrap();
    assert!(
        foot.starts_with("reply latency p50 ") && foot.contains(" ms · p99 "),
        "{foot}"
    );
    browser.screenshot("live_view_checks.png").await;

    // The store closed at 09:00 and its last shopper left: once every expectation is decided
    // (and a late reply for nobody out of its limbo), the card holds the run's final figures.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state = run.state(&[]);
        let rule = &state["checks"]["expectations"][0];
        let decided = |rule: &Value| {
            let n = |figure: &str| rule[figure].as_u64().unwrap_or(0);
            n("expected") > 0 && n("expected") == n("answered") + n("late") + n("missing")
        };
        if state["inside"] == 0
            && state["clock_ms"].as_i64() > Some(1_767_258_000_000)
            && decided(rule)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run never went quiet: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    responder.wait_idle(Duration::from_secs(2), Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shown = browser.card_as_in_state(&run).await;
    browser.assert_no_console_errors().await;

    // Stopped (SIGTERM), its thresholds breached (p99 under 1 ms cannot hold): exit 99.
    let finished = run.process.stop();
    assert_eq!(finished.status.code(), Some(99), "{}", finished.stderr);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(report.path()).unwrap())
        .expect("the run report is JSON");
    let verdict = &report["verdict"];
    assert_eq!(
        shown,
        figures_of(&verdict["expectations"]),
        "the card vs the run report's verdict"
    );
    let tally = responder.tally();
    let coupons = &shown["coupons"];
    assert_eq!(coupons["expected"], tally.expected(), "{tally:?}");
    assert_eq!(coupons["answered"], tally.answered, "{tally:?}");
    assert_eq!(coupons["late"], tally.late, "{tally:?}");
    assert_eq!(coupons["missing"], tally.skipped, "{tally:?}");
    assert_eq!(coupons["unexpected"], tally.unmatched, "{tally:?}");
    assert_eq!(coupons["invalid"], 0);

    // One row per threshold, ✓ or ✗ as in the report, with its expression and measured value.
    let rows: Vec<(String, String, String, String, String)> =
        serde_json::from_value(browser.script(CARD_THRESHOLDS).await).unwrap();
    let outcomes = report["thresholds"]
        .as_array()
        .expect("the report's thresholds");
    assert_eq!(rows.len(), outcomes.len(), "{rows:?} vs {outcomes:?}");
    for outcome in outcomes {
        let metric = outcome["metric"].as_str().unwrap();
        let (mark, _, expression, measured, said) = rows
            .iter()
            .find(|row| row.1 == metric)
            .unwrap_or_else(|| panic!("no row for {metric}: {rows:?}"));
        assert_eq!(expression, outcome["threshold"].as_str().unwrap());
        let expected = if outcome["passed"] == true {
            ("✓", "passed")
        } else {
            ("✗", "failed")
        };
        assert_eq!((mark.as_str(), said.as_str()), expected, "{metric}");
        let value = outcome["measured"].as_f64().unwrap();
        match metric {
            "replies_missing" => {
                assert_eq!(mark, "✓", "rate < 0.5");
                assert_eq!(
                    measured.parse::<f64>().unwrap(),
                    (value * 1e4).round() / 1e4
                );
            }
            "reply_latency" => {
                assert_eq!(mark, "✗", "p(99) < 1ms");
                assert!(
                    measured.ends_with(" s") || measured.ends_with(" ms"),
                    "{measured}"
                );
            }
            other => panic!("a threshold the config has not: {other}"),
        }
    }
    let hint = browser
        .script("return document.getElementById('checks-hint').textContent")
        .await;
    assert_eq!(hint, json!("so far · 1 of 2 thresholds failing"));
    browser.close().await;
}
