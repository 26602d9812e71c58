//! The engine against itself and against the engine of commit 3edf136: `cargo bench --bench engine`.
//!
//! Every figure is a ratio to a baseline measured in the same round, so a machine shared with
//! other work moves both sides; the bench prints each round, then the median and the spread
//! (lowest–highest) of `ENGINE_ROUNDS` rounds (default 5). All runs are `--speed max`, seed 1,
//! with 2 simulated hours from 2026-01-01T08:00Z, stdout written to a file (removed after each
//! run); wall seconds and CPU seconds (user + system, from `wait4`) of the whole process:
//!
//! 1. **the engine**: random_walk with 10,000 shoppers on the original 6×10 grid, this build
//!    against the release binary of commit 3edf136 (built once from `git archive` into
//!    `target/tmp/engine-3edf136`; `ENGINE_BASE_BIN` names a binary built elsewhere), with the same
//!    config file, which both read; the first round also checks that both wrote the same bytes.
//!    Target: ≥ 1.5× its events/s;
//! 2. **shopping_trip** with 10,000 shoppers in the demo store (`configs/retail-demo.yaml`: its
//!    store and topics, focus included; its `customer_list` is left out, since 46 customers cannot
//!    make 10,000 shoppers, and checkouts serve in 300 ms so three of them keep up) against
//!    random_walk above. Target: ≥ 0.8;
//! 3. **`--report`** and **the live view with one page open** (an event-stream client reading
//!    everything, as a browser tab does) each against the same random_walk run without. Target:
//!    ≥ 0.95 each;
//! 4. **a fleet of 1,000 stores × 20 shoppers** against one store with 20,000 (`{store}` topics
//!    in both). Target: ≥ 0.9;
//! 5. **peak RSS per shopper with 1,000,000 inside** (stdout to /dev/null): the peak RSS above an
//!    empty store run the same way, over the most shoppers inside at once; random_walk over 40
//!    simulated minutes, shopping_trip with trips of 10 to 11 minutes and few browse reports,
//!    the doors closing after 10 minutes (about 900,000 inside then). Target: ≤ 80 bytes and
//!    ≤ 100 bytes.
//!
//! `ENGINE_CASES` picks some of `engine,trip,report,view,fleet,rss` (default: all).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use customersim_testkit::net::free_port;
use customersim_testkit::run::clean_command;
use customersim_testkit::temp::{TempDir, temp_dir};

/// The engine the issue measured against.
const BASE_COMMIT: &str = "3edf136";

/// What one run of a binary did.
struct Figures {
    wall_s: f64,
    cpu_s: f64,
    events: u64,
    max_rss_bytes: u64,
    /// The most shoppers inside one store at once, from the source's last log line.
    peak_inside: u64,
    /// The size of what the run wrote to stdout.
    output_bytes: u64,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.events as f64 / self.wall_s
    }
    fn per_cpu(&self) -> f64 {
        self.events as f64 / self.cpu_s
    }
}

/// Where a run's stdout goes.
enum Output<'a> {
    /// A file of this name in the bench's folder, removed after the run unless kept.
    File {
        name: &'a str,
        keep: bool,
    },
    DevNull,
}

/// Runs `binary run --config <text>` plus `args` with stdout to `output`, a page reading the
/// live view when `page` names its port; panics unless it exits 0.
fn run(
    dir: &TempDir,
    binary: &Path,
    text: &str,
    args: &[&str],
    output: Output,
    page: Option<u16>,
) -> Figures {
    let config = dir.path().join("engine.yaml");
    std::fs::write(&config, text).unwrap();
    let (stdout, written) = match output {
        Output::File { name, keep } => {
            let path = dir.path().join(name);
            (std::fs::File::create(&path).unwrap(), Some((path, keep)))
        }
        Output::DevNull => (std::fs::File::create("/dev/null").unwrap(), None),
    };
    let started = Instant::now();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports CPU and RSS
    let child = clean_command(binary)
        .args(["run", "--config"])
        .arg(&config)
        .args(args)
        .env("LOG_LEVEL", "INFO")
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let page = page.map(open_page);
    let pid = child.id() as libc::pid_t;
    let mut log = String::new();
    child.stderr.unwrap().read_to_string(&mut log).unwrap();
    let mut status = 0;
    // SAFETY: wait4 fills the zeroed struct this function owns.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall_s = started.elapsed().as_secs_f64();
    assert_eq!(status, 0, "customersim failed:\n{log}");
    if let Some(page) = page {
        assert!(
            page.recv().expect("the page's figures") > 0,
            "the page read nothing"
        );
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let output_bytes = match written {
        Some((path, keep)) => {
            let bytes = std::fs::metadata(&path).unwrap().len();
            if !keep {
                std::fs::remove_file(&path).unwrap();
            }
            bytes
        }
        None => 0,
    };
    Figures {
        wall_s,
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        events: number_after(&log, "stopped:"),
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        peak_inside: log
            .split("at most")
            .nth(1)
            .map_or(0, |_| number_after(&log, "at most")),
        output_bytes,
    }
}

/// The number right after `marker` in `log`.
fn number_after(log: &str, marker: &str) -> u64 {
    log.split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("{marker:?} not in the log:\n{log}"))
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no number after {marker:?}:\n{log}"))
}

/// A page reading the view's event stream from as soon as it listens to the end of the run, as
/// fast as it comes; sends how many bytes it read.
fn open_page(port: u16) -> mpsc::Receiver<u64> {
    let (sender, read) = mpsc::channel();
    std::thread::spawn(move || {
        let url = format!("http://127.0.0.1:{port}/events");
        let deadline = Instant::now() + Duration::from_secs(30);
        let response = loop {
            match ureq::get(&url).call() {
                Ok(response) => break response,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Err(error) => panic!("the view never answered: {error}"),
            }
        };
        let mut body = response.into_body().into_reader();
        let mut buffer = vec![0u8; 1 << 16];
        let mut bytes = 0u64;
        while let Ok(count) = body.read(&mut buffer) {
            if count == 0 {
                break;
            }
            bytes += count as u64;
        }
        let _ = sender.send(bytes);
    });
    read
}

/// The release binary of [`BASE_COMMIT`], built on first use (a few minutes) from the
/// repository this bench belongs to.
fn base_engine() -> PathBuf {
    if let Some(binary) = std::env::var_os("ENGINE_BASE_BIN") {
        return binary.into();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("engine-{BASE_COMMIT}"));
    let binary = dir.join("target/release/customersim");
    if binary.exists() {
        return binary;
    }
    let source = dir.join("source");
    if !source.join("Cargo.toml").exists() {
        std::fs::create_dir_all(&source).unwrap();
        let mut archive = Command::new("git")
            .args(["-C", env!("CARGO_MANIFEST_DIR"), "archive", BASE_COMMIT])
            .stdout(Stdio::piped())
            .spawn()
            .expect("git runs");
        let unpacked = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&source)
            .stdin(archive.stdout.take().unwrap())
            .status()
            .expect("tar runs");
        assert!(archive.wait().unwrap().success() && unpacked.success());
    }
    eprintln!("building the engine of {BASE_COMMIT} in {}", dir.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--release", "--locked", "--bin", "customersim"])
        .current_dir(&source)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the engine of {BASE_COMMIT} did not build");
    binary
}

/// The simulation both engines read: seed 1, `--speed max`, from 2026-01-01T08:00Z.
fn simulation(duration: &str) -> String {
    format!(
        "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: {duration}}}\n\
         timeline: {{consume_frequency: 0, consume_batch_size: 10000}}\n"
    )
}

/// random_walk with `shoppers` inside on the original 6×10 grid, in a config 3edf136 reads too.
fn random_walk(shoppers: u64, duration: &str, sinks: &str) -> String {
    format!(
        "{}store: {{width: 6, height: 10, door: [0, 0]}}\n\
         sources: [{{type: random_walk, average_in_store: {shoppers}}}]\n\
         sinks: [{sinks}]\n",
        simulation(duration)
    )
}

/// The demo store's pipeline with shopping_trip and `extra` source keys instead of its
/// sources, its topics (focus on) and stdout instead of its sinks.
fn shopping_trip(shoppers: u64, duration: &str, extra: &str) -> String {
    use serde_yaml::{Mapping, Value};
    let demo: Value = serde_yaml::from_str(include_str!("../configs/retail-demo.yaml")).unwrap();
    let mut kept = Mapping::new();
    for key in ["store", "topics"] {
        kept.insert(key.into(), demo[key].clone());
    }
    format!(
        "{}{}sources:\n  - type: shopping_trip\n    average_in_store: {shoppers}\n{extra}sinks: [{{type: stdout}}]\n",
        simulation(duration),
        serde_yaml::to_string(&kept).unwrap()
    )
}

/// Checkouts that keep up with 10,000 shoppers inside.
const FAST_CHECKOUTS: &str = "    mean_service: 300ms\n";

/// Trips of 10 to 11 minutes with few browse reports: with 1,000,000 on average (the most a
/// source takes), about 95,000 arrive a minute and nobody leaves before the doors close at 10
/// minutes, when about 900,000 are inside.
const FILLING_TRIPS: &str = "    mean_browse: 30m\n    browse_step: 10m\n    min_trip: 10m\n    max_trip: 11m\n    checkout_share: 0\n";

/// random_walk in a fleet of `stores` with `per_store` shoppers each (`{store}` topics).
fn fleet(stores: u64, per_store: u64) -> String {
    format!(
        "{}fleet: {{stores: {stores}}}\n\
         topics: {{enter: \"store/{{store}}/customer/enter\", move: \"store/{{store}}/customer/move\", exit: \"store/{{store}}/customer/exit\"}}\n\
         sources: [{{type: random_walk, average_in_store: {per_store}}}]\n\
         sinks: [{{type: stdout}}]\n",
        simulation("2h")
    )
}

/// Bytes per shopper at the peak of `full` above `empty`.
fn per_shopper(empty: &Figures, full: &Figures) -> f64 {
    (full.max_rss_bytes as f64 - empty.max_rss_bytes as f64) / full.peak_inside.max(1) as f64
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (
        std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(a).unwrap()),
        std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(b).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let read = a.read(&mut x).unwrap();
        if read == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
        if b.read_exact(&mut y[..read]).is_err() || x[..read] != y[..read] {
            return false;
        }
    }
}

/// The 1-minute load average, printed with each round: figures from a busy machine are noisy.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split(' ').next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// "median (lowest–highest)".
fn spread(values: &[f64], digits: usize) -> String {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    format!(
        "{:.digits$} ({:.digits$}–{:.digits$})",
        values[values.len() / 2],
        values[0],
        values[values.len() - 1]
    )
}

/// The figures of every round, by name.
#[derive(Default)]
struct Rounds(Vec<(String, Vec<f64>)>);

impl Rounds {
    fn add(&mut self, name: &str, value: f64) {
        match self.0.iter_mut().find(|(known, _)| known == name) {
            Some((_, values)) => values.push(value),
            None => self.0.push((name.to_string(), vec![value])),
        }
    }
    fn get(&self, name: &str) -> Option<&[f64]> {
        self.0
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, values)| values.as_slice())
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for a list; this bench has no unit tests
    }
    let rounds: usize = std::env::var("ENGINE_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5);
    let cases = std::env::var("ENGINE_CASES")
        .unwrap_or_else(|_| "engine,trip,report,view,fleet,rss".into());
    let on = |case: &str| cases.split(',').any(|listed| listed.trim() == case);
    let this = Path::new(env!("CARGO_BIN_EXE_customersim"));
    let base = on("engine").then(base_engine);
    let dir = temp_dir("engine-bench");
    let file = |name| Output::File { name, keep: false };
    let stdout = "{type: stdout}";
    let rw = random_walk(10_000, "2h", stdout);
    println!(
        "customersim engine benchmark: --speed max, seed 1, 2 simulated hours, stdout to a file; \
         {rounds} rounds, median (lowest–highest); ratios against a baseline of the same round"
    );
    let mut figures = Rounds::default();
    for round in 1..=rounds {
        let mut line = format!("round {round} (load {}):", load_average());
        let ours = run(
            &dir,
            this,
            &rw,
            &[],
            Output::File {
                name: "ours.out",
                keep: round == 1,
            },
            None,
        );
        line += &format!(
            " random_walk {:.0} events/s, {:.0} per CPU-s ({} events)",
            ours.rate(),
            ours.per_cpu(),
            ours.events
        );
        figures.add("rw", ours.rate());
        figures.add("rw cpu", ours.per_cpu());
        if let Some(base) = &base {
            let theirs = run(
                &dir,
                base,
                &rw,
                &[],
                Output::File {
                    name: "base.out",
                    keep: round == 1,
                },
                None,
            );
            if round == 1 {
                let (a, b) = (dir.path().join("ours.out"), dir.path().join("base.out"));
                assert!(
                    same_bytes(&a, &b),
                    "this build and {BASE_COMMIT} wrote different bytes"
                );
                std::fs::remove_file(a).unwrap();
                std::fs::remove_file(b).unwrap();
                line += "; same bytes as 3edf136";
            }
            assert_eq!(ours.output_bytes, theirs.output_bytes);
            line += &format!(
                "; 3edf136 {:.0} events/s, {:.0} per CPU-s: ×{:.2}, ×{:.2} per CPU-s",
                theirs.rate(),
                theirs.per_cpu(),
                ours.rate() / theirs.rate(),
                ours.per_cpu() / theirs.per_cpu()
            );
            figures.add("base", theirs.rate());
            figures.add("base cpu", theirs.per_cpu());
            figures.add("rw/base", ours.rate() / theirs.rate());
            figures.add("rw/base cpu", ours.per_cpu() / theirs.per_cpu());
        } else if round == 1 {
            std::fs::remove_file(dir.path().join("ours.out")).unwrap();
        }
        if on("trip") {
            let trip = run(
                &dir,
                this,
                &shopping_trip(10_000, "2h", FAST_CHECKOUTS),
                &[],
                file("trip.out"),
                None,
            );
            line += &format!(
                "; shopping_trip {:.0} events/s, {:.0} per CPU-s ({:.2} of random_walk)",
                trip.rate(),
                trip.per_cpu(),
                trip.rate() / ours.rate()
            );
            figures.add("trip", trip.rate());
            figures.add("trip cpu", trip.per_cpu());
            figures.add("trip/rw", trip.rate() / ours.rate());
        }
        if on("report") {
            let report = dir.path().join("report.json");
            let report = report.to_str().unwrap();
            let with = run(
                &dir,
                this,
                &rw,
                &["--report", report],
                file("report.out"),
                None,
            );
            line += &format!(
                "; --report {:.0} events/s ({:.3})",
                with.rate(),
                with.rate() / ours.rate()
            );
            figures.add("report", with.rate());
            figures.add("report/rw", with.rate() / ours.rate());
        }
        if on("view") {
            let port = free_port();
            let sinks = format!("{stdout}, {{type: live_view, listen: \"127.0.0.1:{port}\"}}");
            let text = random_walk(10_000, "2h", &sinks);
            let with = run(&dir, this, &text, &[], file("view.out"), Some(port));
            line += &format!(
                "; live view {:.0} events/s ({:.3})",
                with.rate(),
                with.rate() / ours.rate()
            );
            figures.add("view", with.rate());
            figures.add("view/rw", with.rate() / ours.rate());
        }
        if on("fleet") {
            let chain = run(&dir, this, &fleet(1000, 20), &[], file("fleet.out"), None);
            let one = run(&dir, this, &fleet(1, 20_000), &[], file("one.out"), None);
            line += &format!(
                "; 1,000 stores × 20 {:.0} events/s, one store × 20,000 {:.0} ({:.3})",
                chain.rate(),
                one.rate(),
                chain.rate() / one.rate()
            );
            figures.add("fleet", chain.rate());
            figures.add("one store", one.rate());
            figures.add("fleet/one", chain.rate() / one.rate());
        }
        if on("rss") {
            let quiet = |text: &str| run(&dir, this, text, &[], Output::DevNull, None);
            let empty = quiet(&random_walk(0, "40m", stdout));
            let full = quiet(&random_walk(1_000_000, "40m", stdout));
            let trip_empty = quiet(&shopping_trip(0, "10m", ""));
            let trip_full = quiet(&shopping_trip(1_000_000, "10m", FILLING_TRIPS));
            let (walk, trip) = (
                per_shopper(&empty, &full),
                per_shopper(&trip_empty, &trip_full),
            );
            line += &format!(
                "; RSS random_walk {walk:.1} B/shopper at {} inside, shopping_trip {trip:.1} B/shopper at {} inside",
                full.peak_inside, trip_full.peak_inside
            );
            figures.add("rss rw", walk);
            figures.add("rss trip", trip);
        }
        println!("{line}");
    }
    println!("summary, median (lowest–highest) of {rounds} rounds:");
    let show = |label: &str, name: &str, digits: usize, target: &str| {
        if let Some(values) = figures.get(name) {
            println!("  {label}: {} {target}", spread(values, digits));
        }
    };
    show("random_walk 10,000, events/s", "rw", 0, "");
    show("random_walk 10,000, events per CPU-s", "rw cpu", 0, "");
    show(
        "3edf136 random_walk 10,000, events/s (baseline)",
        "base",
        0,
        "",
    );
    show(
        "3edf136 random_walk 10,000, events per CPU-s (baseline)",
        "base cpu",
        0,
        "",
    );
    show(
        "random_walk / 3edf136, events/s",
        "rw/base",
        2,
        "(target ≥ 1.5)",
    );
    show(
        "random_walk / 3edf136, events per CPU-s",
        "rw/base cpu",
        2,
        "",
    );
    show("shopping_trip 10,000 (demo store), events/s", "trip", 0, "");
    show(
        "shopping_trip 10,000 (demo store), events per CPU-s",
        "trip cpu",
        0,
        "",
    );
    show(
        "shopping_trip / random_walk, events/s",
        "trip/rw",
        2,
        "(target ≥ 0.8)",
    );
    show("random_walk with --report, events/s", "report", 0, "");
    show(
        "--report / without, events/s",
        "report/rw",
        3,
        "(target ≥ 0.95)",
    );
    show(
        "random_walk with the live view and one page, events/s",
        "view",
        0,
        "",
    );
    show(
        "live view / without, events/s",
        "view/rw",
        3,
        "(target ≥ 0.95)",
    );
    show("1,000 stores × 20 shoppers, events/s", "fleet", 0, "");
    show(
        "one store × 20,000 shoppers, events/s (baseline)",
        "one store",
        0,
        "",
    );
    show(
        "fleet / one store, events/s",
        "fleet/one",
        3,
        "(target ≥ 0.9)",
    );
    show(
        "peak RSS per shopper, random_walk, 1,000,000 inside, bytes",
        "rss rw",
        1,
        "(target ≤ 80)",
    );
    show(
        "peak RSS per shopper, shopping_trip, 1,000,000 inside, bytes",
        "rss trip",
        1,
        "(target ≤ 100)",
    );
}
