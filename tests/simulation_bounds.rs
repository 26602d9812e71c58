//! Bounds of the simulated sources, through the real binary (issue 20): values that used to pass
//! `validate` and then hang, spin or exhaust memory are refused or cost little, and long runs stop
//! on SIGTERM. Timing-free: the waits are generous upper bounds that only a hang exceeds.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use customersim_testkit::run::{Process, StdoutMode, clean_command, run_failing, terminate};
use customersim_testkit::temp::{TempFile, temp_file};

/// The binary under test, with a clean environment.
fn customersim() -> std::process::Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

/// Long enough for any of these runs on a loaded machine; only a hang exceeds it.
const GENEROUS: Duration = Duration::from_secs(600);

fn pipeline(name: &str, text: &str) -> TempFile {
    temp_file(name, text)
}

/// 24 weights: `first` for hour 0, 0 for the others.
fn profile(first: &str) -> String {
    let mut weights = vec!["0"; 24];
    weights[0] = first;
    format!("[{}]", weights.join(", "))
}

/// Waits for `child` for at most `limit`; panics on a hang.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("query the child") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the binary did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Finding 1: weights whose normalisation leaves the range of numbers used to pass `validate`
/// and then spin at 100% CPU, ignoring SIGTERM.
#[test]
fn a_profile_whose_rates_cannot_be_normalised_exits_2_in_validate() {
    for source in ["random_walk", "shopping_trip"] {
        for weight in ["1e308", "5e-324"] {
            let config = pipeline(
                "profile.yaml",
                &format!(
                    "sources:\n  - type: {source}\n    hourly_profile: {}\nsinks:\n  - type: stdout\n",
                    profile(weight)
                ),
            );
            for command in ["validate", "run"] {
                let (output, stderr) = run_failing(
                    customersim()
                        .args([command, "--config"])
                        .arg(config.path())
                        .args(if command == "run" {
                            &["--speed", "max"][..]
                        } else {
                            &[][..]
                        }),
                    2,
                );
                if command == "run" {
                    assert!(output.stdout.is_empty(), "nothing published");
                }
                assert!(
                    stderr.contains(&format!(
                        "sources[0] (type: {source}): hourly_profile: these weights cannot be normalised"
                    )),
                    "{source} {weight} {command}: {stderr}"
                );
            }
        }
    }
}

/// Finding 1: a rate so slow that the next arrival lies beyond any run made the first draw walk
/// day after day for longer than the age of the universe; now it gives up after the longest run
/// and the store simply gets nobody.
#[test]
fn an_arrival_too_rare_for_any_run_ends_the_arrivals_instead_of_hanging() {
    let config = pipeline(
        "rare.yaml",
        "sources:\n  - type: random_walk\n    average_in_store: 0.001\n    mean_visit: 1000y\n    \
         opening_hours: [\"08:00\", \"08:01\"]\nsinks:\n  - type: stdout\n",
    );
    let mut run = Process::start(
        customersim()
            .args(["run", "--speed", "max", "--seed", "1", "--config"])
            .arg(config.path()),
        StdoutMode::Collect,
    );
    let status = run.wait(GENEROUS);
    let finished = run.finish();
    assert!(status.success(), "{status:?}: {}", finished.stderr);
    assert!(finished.stdout.is_empty(), "nobody came");
}

/// Finding 1: a legitimately endless computation (centuries of nearly idle simulated days at
/// full speed, an arrival every few years) stops on SIGTERM and exits 0.
#[test]
fn a_run_over_centuries_of_rare_arrivals_stops_on_sigterm() {
    let config = pipeline(
        "centuries.yaml",
        "sources:\n  - type: random_walk\n    average_in_store: 0.001\n    mean_visit: 2m\n    \
         min_visit: 30s\n    mean_dwell: 30m\n    opening_hours: [\"08:00\", \"08:01\"]\n\
         sinks:\n  - type: stdout\n",
    );
    let mut run = Process::start(
        customersim()
            .args(["run", "--speed", "max", "--seed", "7", "--config"])
            .arg(config.path()),
        StdoutMode::Lines,
    );
    // The first event: the run is under way, the signal handlers are in place.
    run.lines()
        .recv_timeout(GENEROUS)
        .expect("a first shopper within a few simulated years");
    run.terminate();
    let status = run.wait(GENEROUS);
    assert!(status.success(), "{status:?}");
}

/// Finding 9: path tables the run cannot hold are refused by `validate`, naming the limit.
#[test]
fn path_tables_beyond_their_limit_are_refused_by_validate() {
    let mut text =
        "store:\n  width: 2048\n  height: 2048\n  cell: 1\n  entrance: [0, 0]\n  exit: [0, 0]\n  zones:\n"
            .to_string();
    for n in 0..50 {
        text.push_str(&format!(
            "    - {{name: D{n}, kind: department, area: [{}, 1000, {}, 1020]}}\n",
            n * 40,
            n * 40 + 20
        ));
    }
    text.push_str("sources:\n  - type: shopping_trip\nsinks:\n  - type: stdout\n");
    let config = pipeline("departments.yaml", &text);
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path()),
        2,
    );
    assert!(
        stderr.contains(
            "sources[0] (type: shopping_trip): store: shopping_trip keeps a path table over the \
             4194304 cells of the walking grid for each of its 51 targets"
        ) && stderr.contains("more than its limit of 67108864 (320 MiB); raise store.cell"),
        "{stderr}"
    );
}

/// Finding 9: while a large store's path tables are built (before the run starts), SIGTERM
/// ends the process.
#[test]
fn a_large_store_stops_on_sigterm_while_its_path_tables_are_built() {
    let config = pipeline(
        "large.yaml",
        "store:\n  width: 2048\n  height: 2048\n  cell: 1\n  entrance: [0, 0]\n  exit: [2047, 2047]\n  \
         zones:\n    - {name: D, kind: department, area: [1000, 1000, 1100, 1100]}\n\
         sources:\n  - type: shopping_trip\nsinks:\n  - type: stdout\n",
    );
    let mut child = customersim()
        .args(["run", "--speed", "max", "--config"])
        .arg(config.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("read stderr") == 0 {
            panic!("stderr ended before the path tables were built: {seen}");
        }
        seen.push_str(&line);
        if line.contains("shopping_trip: building path tables") {
            break;
        }
    }
    terminate(&child);
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    let status = wait_for(&mut child, GENEROUS);
    let rest = drain.join().expect("the stderr reader");
    assert!(
        status.success() || status.signal() == Some(libc::SIGTERM),
        "{status:?}: {seen}{rest}"
    );
}

/// Finding 18: marking obstacles one by one was quadratic; 18,000 overlapping ones (a file under
/// 1 MiB) ran for minutes.
#[test]
fn eighteen_thousand_overlapping_obstacles_validate() {
    let mut text =
        "store:\n  width: 1000\n  height: 1000\n  cell: 1\n  entrance: [0, 0]\n  exit: [0, 0]\n  zones:\n"
            .to_string();
    for n in 0..18_000 {
        text.push_str(&format!(
            "  - {{name: z{n}, kind: obstacle, area: [9,9,900,900]}}\n"
        ));
    }
    text.push_str("  - {name: D, kind: department, area: [920, 920, 990, 990]}\n");
    text.push_str("sources:\n  - type: shopping_trip\nsinks:\n  - type: stdout\n");
    assert!(text.len() < 1 << 20);
    let config = pipeline("obstacles.yaml", &text);
    let mut validate = Process::start(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path()),
        StdoutMode::Collect,
    );
    let status = validate.wait(GENEROUS);
    let finished = validate.finish();
    assert!(status.success(), "{status:?}: {}", finished.stderr);
    assert!(String::from_utf8_lossy(&finished.stdout).contains("\"z17999\" obstacle"));
}

/// Finding 19: idle simulated time at the smallest crowd cost about 11 s a year (1000 years:
/// hours); now a run jumps from one arrival to the next.
#[test]
fn a_thousand_years_at_the_smallest_crowd_run_to_the_end() {
    let config = pipeline(
        "millennium.yaml",
        "sources:\n  - type: random_walk\n    average_in_store: 0.001\n    mean_dwell: 30m\n\
         sinks:\n  - type: stdout\n",
    );
    let mut run = Process::start(
        customersim()
            .args([
                "run",
                "--speed",
                "max",
                "--seed",
                "1",
                "--duration",
                "1000y",
            ])
            .arg("--config")
            .arg(config.path()),
        StdoutMode::Discard,
    );
    let status = run.wait(GENEROUS);
    let finished = run.finish();
    assert!(status.success(), "{status:?}: {}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("random_walk: doors closed and the last shopper left"),
        "{}",
        finished.stderr
    );
}

/// Finding 20: arrivals queueing outside a tiny store used to pile up without limit (1.4 GB in
/// 10 simulated hours); beyond `max_queue` they are turned back and counted. The peak resident
/// memory comes from the kernel's accounting of the child (`wait4`, the VmHWM at exit).
#[test]
fn the_queue_outside_a_tiny_store_stays_bounded() {
    let config = pipeline(
        "crowd.yaml",
        "sources:\n  - type: random_walk\n    average_in_store: 1000000\n    capacity: 1\n\
         sinks:\n  - type: stdout\n",
    );
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports the peak RSS
    let mut child = customersim()
        .args([
            "run",
            "--speed",
            "max",
            "--seed",
            "3",
            "--duration",
            "2h",
            "--config",
        ])
        .arg(config.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: wait4 on our own child with pointers to locals; it blocks until the child exits
    // (the test harness's overall limit catches a hang).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let stderr = reader.join().expect("the stderr reader");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}: {stderr}"
    );
    assert!(
        stderr.contains("turned back by a full queue (max_queue)"),
        "{stderr}"
    );
    // Millions of arrivals found the store full; 10,000 waiting take well under a megabyte.
    let peak_mb = usage.ru_maxrss / 1024;
    assert!(peak_mb < 64, "peak RSS {peak_mb} MB");
}

/// `max_queue` out of range is refused naming the key.
#[test]
fn a_max_queue_beyond_its_limit_exits_2_naming_the_key() {
    let config = pipeline(
        "queue.yaml",
        "sources:\n  - type: shopping_trip\n    capacity: 5\n    max_queue: 100000000\n\
         sinks:\n  - type: stdout\n",
    );
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path()),
        2,
    );
    assert!(
        stderr.contains("sources[0] (type: shopping_trip): max_queue: 100000000 is more than"),
        "{stderr}"
    );
}
