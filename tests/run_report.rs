//! The run report (`run --report FILE`), the progress bar and the publish-lateness histogram,
//! through the real binary: the report's figures are recomputed from the stdout stream of the same
//! run, the report survives SIGTERM, a bad path is refused before the run, the progress bar is
//! drawn on a pseudo-terminal (util-linux `script`) and nowhere else, and the lateness histogram
//! is served on `GET /metrics`.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use customersim_testkit::http::HttpClient;
use customersim_testkit::net::free_port;
use customersim_testkit::run::{Process, StdoutMode, clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::{temp_dir, temp_file};
use serde_json::Value;

fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

fn read_report(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the report was written");
    serde_json::from_str(&text).expect("the report is JSON")
}

/// The department and checkout rectangles of `configs/retail-demo.yaml`, as its file says.
fn demo_zones() -> Vec<(String, String, [i64; 4])> {
    let text = include_str!("../configs/retail-demo.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    doc["store"]["zones"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|zone| zone["kind"] != "obstacle")
        .map(|zone| {
            let area: Vec<i64> = zone["area"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            (
                zone["name"].as_str().unwrap().to_string(),
                zone["kind"].as_str().unwrap().to_string(),
                [area[0], area[1], area[2], area[3]],
            )
        })
        .collect()
}

#[test]
fn report_figures_match_the_stdout_stream_of_the_same_run() {
    let dir = temp_dir("report");
    let report_path = dir.path().join("report.json");
    let output = run_ok(
        customersim()
            .args([
                "run",
                "--config",
                "configs/retail-demo.yaml",
                "--sink",
                "stdout",
            ])
            .args(["--speed", "max", "--duration", "2h", "--seed", "7"])
            .args(["--start", "2026-03-02T10:00:00Z", "--report"])
            .arg(&report_path),
    );
    let report = read_report(&report_path);
    let lines = parse_lines(&output.stdout);

    // Events per topic.
    let mut per_topic: BTreeMap<String, u64> = BTreeMap::new();
    for line in &lines {
        *per_topic.entry(line.topic.clone()).or_default() += 1;
    }
    let reported: BTreeMap<String, u64> =
        serde_json::from_value(report["events_per_topic"].clone()).unwrap();
    assert_eq!(reported, per_topic);
    assert_eq!(report["events"], lines.len() as u64);

    // Visits, peak and end occupancy, per-department visits and focus, from the stream.
    let zones = demo_zones();
    let zone_of = |x: i64, y: i64| {
        zones.iter().position(|(_, _, [x1, y1, x2, y2])| {
            (*x1..=*x2).contains(&x) && (*y1..=*y2).contains(&y)
        })
    };
    // Per shopper inside: the zone of the last report, since when, and a finished checkout
    // stay waiting for what comes next (paid if the shopper leaves without reaching another
    // department or checkout).
    struct Inside {
        zone: Option<usize>,
        since: i64,
        checkout: Option<(usize, i64)>,
    }
    let mut inside: HashMap<String, Inside> = HashMap::new();
    let (mut visits, mut peak) = (0u64, 0u64);
    let mut zone_visits = vec![0u64; zones.len()];
    // Departments: (browsing stays, their seconds, passing through); checkouts: (paid, wait
    // seconds, passing through).
    let mut stays = vec![(0u64, 0i64, 0u64); zones.len()];
    let is_department = |zone: usize| zones[zone].1 == "department";
    let leave = |stays: &mut Vec<(u64, i64, u64)>, shopper: &mut Inside, ts: i64| {
        if let Some(zone) = shopper.zone {
            let stay = ts - shopper.since;
            if is_department(zone) {
                if stay >= 20 {
                    stays[zone].0 += 1;
                    stays[zone].1 += stay;
                } else {
                    stays[zone].2 += 1;
                }
            } else {
                if let Some((passed, _)) = shopper.checkout.take() {
                    stays[passed].2 += 1;
                }
                shopper.checkout = Some((zone, stay));
            }
        }
    };
    let mut focus: BTreeMap<String, u64> = BTreeMap::new();
    for line in &lines {
        let payload: Value = serde_json::from_str(&line.payload).unwrap();
        let id = payload["id"].as_str().unwrap().to_string();
        match line.topic.as_str() {
            "customer/enter" => {
                let since = payload["ts"].as_i64().unwrap();
                let shopper = Inside {
                    zone: None,
                    since,
                    checkout: None,
                };
                inside.insert(id, shopper);
                visits += 1;
                peak = peak.max(inside.len() as u64);
            }
            "customer/exit" => {
                let mut shopper = inside.remove(&id).expect("exits only while inside");
                leave(&mut stays, &mut shopper, payload["ts"].as_i64().unwrap());
                if let Some((paid, wait)) = shopper.checkout {
                    stays[paid].0 += 1;
                    stays[paid].1 += wait;
                }
            }
            "customer/move" => {
                let zone = zone_of(
                    payload["x"].as_i64().unwrap(),
                    payload["y"].as_i64().unwrap(),
                );
                let ts = payload["ts"].as_i64().unwrap();
                let shopper = inside.get_mut(&id).expect("moves only while inside");
                if shopper.zone != zone {
                    leave(&mut stays, shopper, ts);
                    shopper.since = ts;
                    if let Some(zone) = zone {
                        zone_visits[zone] += 1;
                        if let Some((passed, _)) = shopper.checkout.take() {
                            stays[passed].2 += 1;
                        }
                    }
                }
                shopper.zone = zone;
            }
            "customer/focus" => {
                *focus
                    .entry(payload["dep"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            other => panic!("unexpected topic {other}"),
        }
    }
    assert!(visits > 20, "a two-hour demo run has shoppers: {visits}");
    assert_eq!(report["visits"], visits);
    assert_eq!(report["peak_inside"], peak);
    assert_eq!(report["inside_at_end"], inside.len() as u64);
    assert_eq!(
        report["inside_at_end"], 0,
        "the doors closed and everyone left"
    );
    assert_eq!(report["visits_completed"], visits);
    for (index, (name, kind, _)) in zones.iter().enumerate() {
        let section = if kind == "department" {
            "departments"
        } else {
            "checkouts"
        };
        assert_eq!(
            report[section][name]["visits"], zone_visits[index],
            "{section}.{name}"
        );
        let (kept, seconds, passing) = stays[index];
        let (kept_key, mean_key) = if kind == "department" {
            ("browsing", "mean_browsing_seconds")
        } else {
            ("paid", "mean_wait_seconds")
        };
        assert_eq!(report[section][name][kept_key], kept, "{section}.{name}");
        assert_eq!(
            report[section][name]["passing_through"], passing,
            "{section}.{name}"
        );
        if kept > 0 {
            // The stream's timestamps are whole seconds; the report times to the millisecond.
            let mean = report[section][name][mean_key].as_f64().unwrap();
            let expected = seconds as f64 / kept as f64;
            assert!(
                (mean - expected).abs() <= 1.0,
                "{section}.{name}: {mean} vs {expected}"
            );
        }
        if kind == "department" {
            assert_eq!(
                report[section][name]["focus"],
                focus.get(name).copied().unwrap_or(0),
                "{name}"
            );
        }
    }
    assert!(
        zone_visits.iter().sum::<u64>() > visits,
        "shoppers visit departments"
    );
    assert_eq!(report["focus"], focus.values().sum::<u64>());

    let browsing: u64 = (0..zones.len())
        .filter(|&zone| is_department(zone))
        .map(|zone| stays[zone].0)
        .sum();
    let paid: u64 = (0..zones.len())
        .filter(|&zone| !is_department(zone))
        .map(|zone| stays[zone].0)
        .sum();
    assert!(browsing > 0 && paid > 0, "shoppers browse and pay");

    // On a virtual clock (`--speed max`) lateness means nothing and is left out; the run took
    // some wall time.
    assert!(report["publish_lateness_seconds"].is_null(), "{report}");
    assert!(report["wall_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(report["simulated_start"], "2026-03-02T10:00:00+00:00");

    // The same figures as a table on stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("run report"), "{stderr}");
    assert!(
        stderr.contains(&format!("visits             {visits} ")),
        "{stderr}"
    );
    assert!(stderr.contains("Women"), "{stderr}");
}

#[test]
fn the_entrance_queue_is_reported_as_the_source_counted_it() {
    let dir = temp_dir("report-queue");
    let report_path = dir.path().join("report.json");
    let config = temp_file(
        "queue.yaml",
        "sources:\n  - {type: random_walk, average_in_store: 50, capacity: 40}\nsinks: [{type: stdout}]\n",
    );
    let output = run_ok(
        customersim()
            .args([
                "run",
                "--speed",
                "max",
                "--duration",
                "2h",
                "--seed",
                "1",
                "--config",
            ])
            .arg(config.path())
            .arg("--report")
            .arg(&report_path),
    );
    let report = read_report(&report_path);
    let queue = &report["entrance_queue"];
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "random_walk: {} arrivals waited outside, mean wait {:.1}s",
        queue["queued"],
        queue["mean_wait_seconds"].as_f64().unwrap()
    );
    assert!(queue["queued"].as_u64().unwrap() > 0, "{report}");
    assert!(stderr.contains(&expected), "{expected}\n{stderr}");
    assert!(
        stderr.contains(&format!("; {} went home at closing", queue["turned_away"])),
        "{stderr}"
    );
}

#[test]
fn the_report_is_written_after_sigterm() {
    let dir = temp_dir("report-sigterm");
    let report_path = dir.path().join("report.json");
    let process = Process::start(
        customersim()
            .args(["run", "--sink", "stdout", "--speed", "600", "--seed", "3"])
            .env("CUSTOMERS_AVERAGE_IN_STORE", "50")
            .arg("--report")
            .arg(&report_path),
        StdoutMode::Lines,
    );
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < 20 {
        assert!(Instant::now() < deadline, "no events published");
        if process.lines().recv_timeout(Duration::from_secs(1)).is_ok() {
            seen += 1;
        }
    }
    process.terminate();
    // Every event handed to the sink before the signal is printed, then stdout closes.
    while process
        .lines()
        .recv_timeout(Duration::from_secs(30))
        .is_ok()
    {
        seen += 1;
    }
    let finished = process.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    let report = read_report(&report_path);
    assert_eq!(report["events"], seen, "{report}");
    // On a scaled clock, lateness is measured for every published event.
    let lateness = &report["publish_lateness_seconds"];
    assert_eq!(lateness["events"], seen, "{report}");
    assert!(lateness["p50"].as_f64().unwrap() <= lateness["p99"].as_f64().unwrap());
    assert!(lateness["p99"].as_f64().unwrap() <= lateness["max"].as_f64().unwrap());
    assert!(finished.stderr.contains("SIGTERM"), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("run report"),
        "{}",
        finished.stderr
    );
}

#[test]
fn the_report_is_written_when_the_reader_closes_stdout() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("report-head");
    let report_path = dir.path().join("report.json");
    let mut child = customersim()
        .args([
            "run", "--sink", "stdout", "--speed", "max", "--seed", "5", "--report",
        ])
        .arg(&report_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -3`: read three lines, then close the pipe.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..3 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("{\"topic\""), "{line}");
    }
    drop(reader);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("the reader closed stdout"), "{stderr}");
    let report = read_report(&report_path);
    assert!(report["events"].as_u64().unwrap() >= 3, "{report}");
}

#[test]
fn an_unwritable_report_path_is_refused_before_the_run() {
    let dir = temp_dir("report-bad");
    let (output, stderr) = run_failing(
        customersim()
            .args([
                "run",
                "--sink",
                "stdout",
                "--speed",
                "max",
                "--duration",
                "1h",
            ])
            .arg("--report")
            .arg(dir.path().join("no-such-folder").join("report.json")),
        2,
    );
    assert!(stderr.contains("--report"), "{stderr}");
    assert!(stderr.contains("no-such-folder"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing ran");
}

/// Runs a `--speed max` run with a duration with stderr on a pseudo-terminal (`script`), stdout
/// to /dev/null; returns what the terminal showed.
fn terminal_transcript(extra: &str) -> String {
    let command = format!(
        "{} run --sink stdout --speed max --duration 1h --seed 1 {extra} > /dev/null",
        env!("CARGO_BIN_EXE_customersim")
    );
    let output = clean_command("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("CUSTOMERS_AVERAGE_IN_STORE", "1000")
        .env("TERM", "xterm")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("util-linux script runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_progress_bar_is_drawn_on_a_terminal_only() {
    let shown = terminal_transcript("");
    assert!(shown.contains("simulated"), "{shown}");
    assert!(shown.contains("events/s"), "{shown}");
    assert!(shown.contains("ETA"), "{shown}");
    assert!(shown.contains("of 1h00m00s"), "{shown}");

    // The same run with stderr in a file: the log lines only.
    let dir = temp_dir("progress-file");
    let log = dir.path().join("stderr.txt");
    let status = customersim()
        .args([
            "run",
            "--sink",
            "stdout",
            "--speed",
            "max",
            "--duration",
            "1h",
            "--seed",
            "1",
        ])
        .env("CUSTOMERS_AVERAGE_IN_STORE", "1000")
        .env("TERM", "xterm")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("stopped:"), "{text}");
    assert!(!text.contains("ETA"), "{text}");
    assert!(!text.contains("events/s"), "{text}");
    assert!(!text.contains('\r'), "{text}");
}

#[test]
fn publish_lateness_is_served_on_metrics() {
    let port = free_port();
    let config = temp_file(
        "lateness.yaml",
        &format!(
            "simulation: {{seed: 1, speed: 1}}\n\
             timeline: {{consume_frequency: 0}}\n\
             sources:\n\
             \x20 - {{type: random_walk, average_in_store: 200, mean_dwell: 1s}}\n\
             \x20 - {{type: http_ingress, listen: \"127.0.0.1:{port}\"}}\n\
             sinks: [{{type: stdout}}]\n"
        ),
    );
    let process = Process::start(
        customersim()
            .arg("run")
            .arg("--config")
            .arg(config.path())
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}")),
        StdoutMode::Discard,
    );
    let http = HttpClient::local(port);
    http.wait_until_healthy(Duration::from_secs(30));
    let count_line = "customersim_publish_lateness_seconds_count{sink=\"stdout\"} ";
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let metrics = http.get("/metrics").body;
        let count: u64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(count_line))
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        if count >= 50 {
            break metrics;
        }
        assert!(Instant::now() < deadline, "no lateness counted:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        metrics.contains("# TYPE customersim_publish_lateness_seconds histogram"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("customersim_publish_lateness_seconds_bucket{le=\"0.002\",sink=\"stdout\"}"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("customersim_publish_lateness_seconds_bucket{le=\"+Inf\",sink=\"stdout\"}"),
        "{metrics}"
    );
    let finished = process.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
}

/// `run --sink stdout --speed max --duration 1h --report PATH`, with stdout piped.
fn report_run(report: &std::path::Path) -> Command {
    let mut command = customersim();
    command
        .args([
            "run",
            "--sink",
            "stdout",
            "--speed",
            "max",
            "--duration",
            "1h",
            "--seed",
            "5",
        ])
        .arg("--report")
        .arg(report);
    command
}

/// Issue 20, finding 13: the report goes to a temporary file renamed onto the path at the end, so
/// a run that fails leaves an existing file as it was (it used to be emptied at start), and a
/// symlink at the path is replaced, not followed.
#[test]
fn a_failed_run_keeps_the_old_report_and_symlinks_are_replaced() {
    let dir = temp_dir("report-atomic");
    let report_path = dir.path().join("report.json");
    std::fs::write(&report_path, "previous report").unwrap();
    // The http ingress cannot listen on a port that is taken: the run fails (the listener is bound
    // as the pipeline is built, so however short the run, the failure is seen).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = customersim()
        .args(["run", "--speed", "max", "--duration", "1h"])
        .env("SINKS", "stdout")
        .env("HTTP_LISTEN", taken.local_addr().unwrap().to_string())
        .arg("--report")
        .arg(&report_path)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the run failed");
    assert_eq!(
        std::fs::read_to_string(&report_path).unwrap(),
        "previous report"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");

    let elsewhere = dir.path().join("elsewhere.txt");
    std::fs::write(&elsewhere, "not a report").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    run_ok(&mut report_run(&link));
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "not a report");
    assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(read_report(&link)["events"].as_u64().unwrap() > 0);
}

/// Issue 20, findings 13 and 20: a FIFO (the run used to wait forever for its reader), the
/// pipeline file itself, a directory, `/dev/stdout` (the report went into the event stream) and
/// the regular file stdout is redirected to are refused before the run: exit 2 naming --report,
/// nothing published, nothing changed.
#[test]
fn fifos_devices_stdout_and_the_config_are_refused() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = temp_dir("report-refused");
    let fifo = dir.path().join("report.fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // A reader is there, so a binary that opened the FIFO would go on (and fail this test)
    // rather than wait.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let config = temp_file(
        "pipeline.yaml",
        "sources: [{type: random_walk}]\nsinks: [{type: stdout}]\n",
    );
    let config_text = std::fs::read_to_string(&config).unwrap();
    let mut with_config = report_run(&config);
    with_config.arg("--config").arg(&config);
    let mut to_stdout = report_run("/dev/stdout".as_ref());
    to_stdout.stdout(Stdio::piped());
    for (what, mut command) in [
        ("a FIFO", report_run(&fifo)),
        ("the config", with_config),
        ("a directory", report_run(dir.path())),
        ("/dev/stdout", to_stdout),
    ] {
        let (output, stderr) = run_failing(&mut command, 2);
        assert!(stderr.contains("--report"), "{what}: {stderr}");
        assert!(output.stdout.is_empty(), "{what}: nothing ran");
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), config_text);

    // stdout redirected to a regular file, and the report asked for at that file.
    let events = dir.path().join("events.jsonl");
    let file = std::fs::File::create(&events).unwrap();
    let (_, stderr) = run_failing(report_run(&events).stdout(file), 2);
    assert!(
        stderr.contains("--report") && stderr.contains("stdout"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&events).unwrap().len(), 0, "nothing ran");
}

/// Starts `command` with stdout and stderr to /dev/null; [`peak_rss_kib`] waits for it.
fn spawn_quiet(command: &mut Command) -> std::process::Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// Waits for `child` and returns its exit code and peak resident memory in KiB (the kernel's
/// own accounting of the process, its VmHWM, from wait4's rusage).
fn peak_rss_kib(child: std::process::Child) -> (Option<i32>, i64) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: wait4(2) on our own child, with a status and a zeroed rusage this function owns.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, usage.ru_maxrss)
}

/// Issue 20, finding 14: with `--report`, memory used to grow by about 100 bytes per shopper
/// inside (300,000 shoppers: +30 MB here, 138 MB against 49 MB in the finding). The report now
/// times at most `MAX_TIMED_SHOPPERS` (200,000) shoppers inside at once in 32-byte records and
/// counts the others: with 240,000 shoppers inside, its peak memory stays within 20 MiB of the
/// same run without a report.
#[test]
fn the_reports_memory_is_bounded_with_many_shoppers_inside() {
    let dir = temp_dir("report-memory");
    // 240,000 shoppers come in over 999 simulated hours and none leaves before the doors close;
    // nobody moves on the way (a 3 × 3 store, the door at the corner).
    let config = dir.path().join("many.yaml");
    std::fs::write(
        &config,
        "store: {width: 3, height: 3, door: [0, 0]}\n\
         sources:\n  - type: random_walk\n    average_in_store: 240000\n    mean_visit: 1000h\n    min_visit: 999h\n    mean_dwell: 1000h\n\
         sinks: [{type: stdout}]\n",
    )
    .unwrap();
    let report_path = dir.path().join("report.json");
    let run = |report: Option<&std::path::Path>| {
        let mut command = customersim();
        command
            .args(["run", "--speed", "max", "--duration", "999h", "--seed", "9"])
            .arg("--config")
            .arg(&config);
        if let Some(report) = report {
            command.arg("--report").arg(report);
        }
        spawn_quiet(&mut command)
    };
    // Both at once, so the test takes the time of one.
    let with_report = run(Some(&report_path));
    let without = run(None);
    let (code, with_kib) = peak_rss_kib(with_report);
    assert_eq!(code, Some(0));
    let (code, without_kib) = peak_rss_kib(without);
    assert_eq!(code, Some(0));
    let report = read_report(&report_path);
    assert!(
        report["peak_inside"].as_u64().unwrap() > 230_000,
        "{report}"
    );
    assert!(report["visits_untimed"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["visits_completed"], report["visits"], "{report}");
    let extra_mib = (with_kib - without_kib) as f64 / 1024.0;
    assert!(
        extra_mib < 20.0,
        "the report took {extra_mib:.1} MiB more ({with_kib} KiB against {without_kib} KiB)"
    );
}

/// Seconds of `[from, to)` (epoch seconds) within the daily opening hours `[open_h, close_h)` UTC.
fn open_seconds(from: i64, to: i64, open_h: i64, close_h: i64) -> i64 {
    let mut total = 0;
    let mut day = from.div_euclid(86_400) * 86_400;
    while day < to {
        let (open, close) = (day + open_h * 3600, day + close_h * 3600);
        total += (to.min(close) - from.max(open)).max(0);
        day += 86_400;
    }
    total
}

#[test]
fn occupancy_is_averaged_over_the_open_hours_too() {
    let dir = temp_dir("report-open");
    let report_path = dir.path().join("report.json");
    let config = temp_file(
        "open-hours.yaml",
        "sources:\n  - type: random_walk\n    average_in_store: 10\n    opening_hours: [\"08:00\", \"21:00\"]\n\
         sinks: [{type: stdout}]\n",
    );
    let output = run_ok(
        customersim()
            .args(["run", "--speed", "max", "--duration", "48h", "--seed", "4"])
            .args(["--start", "2026-03-02T00:00:00Z", "--config"])
            .arg(config.path())
            .arg("--report")
            .arg(&report_path),
    );
    let report = read_report(&report_path);
    let lines = parse_lines(&output.stdout);

    // From the stream: shoppers inside between consecutive events, over all time and over the
    // open hours only (08:00 to 21:00 UTC), from the start to the last event.
    let start = 1_772_409_600; // 2026-03-02T00:00:00Z
    let (mut inside, mut at) = (0i64, start);
    let (mut all, mut open, mut open_total) = (0i64, 0i64, 0i64);
    for line in &lines {
        let payload: Value = serde_json::from_str(&line.payload).unwrap();
        let ts = payload["ts"].as_i64().unwrap();
        all += inside * (ts - at);
        let open_part = open_seconds(at, ts, 8, 21);
        open += inside * open_part;
        open_total += open_part;
        at = ts;
        match line.topic.as_str() {
            "customer/enter" => inside += 1,
            "customer/exit" => inside -= 1,
            _ => {}
        }
    }
    let mean_all = all as f64 / (at - start) as f64;
    let mean_open = open as f64 / open_total as f64;
    let reported_all = report["mean_inside"].as_f64().unwrap();
    let reported_open = report["mean_inside_open"].as_f64().unwrap();
    // The stream's timestamps are whole seconds; the report integrates milliseconds.
    assert!(
        (reported_all - mean_all).abs() <= 0.02 * mean_all,
        "{reported_all} vs {mean_all}"
    );
    assert!(
        (reported_open - mean_open).abs() <= 0.02 * mean_open,
        "{reported_open} vs {mean_open}"
    );
    // Closed hours no longer pull the mean down: open 13 hours of 24, the target holds while open.
    assert!(
        reported_open > 1.5 * reported_all,
        "{reported_open} vs {reported_all}"
    );
    assert!(
        (7.0..13.0).contains(&reported_open),
        "target 10 while open: {reported_open}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("while open"), "{stderr}");

    // Without opening hours there is no separate figure.
    let plain = dir.path().join("plain.json");
    run_ok(
        customersim()
            .args([
                "run",
                "--sink",
                "stdout",
                "--speed",
                "max",
                "--duration",
                "1h",
                "--report",
            ])
            .arg(&plain),
    );
    assert!(read_report(&plain)["mean_inside_open"].is_null());
}
