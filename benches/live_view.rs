//! The live view's cost: `cargo bench --bench live_view`.
//!
//! Runs the release binary with `random_walk` at 10,000 shoppers inside, `--speed max`, the stdout
//! sink writing to /dev/null, three rounds, each measuring in turn:
//! - **without** the view: events per second (the difference of a 1 h and a 4 h run, so the
//!   warm-up, an empty store filling up, and the process start cancel out);
//! - **with** a `live_view` sink beside stdout and one page open the whole time: an event-stream
//!   client that connects as soon as the view listens and reads everything as fast as it comes,
//!   like a browser tab; events per second the same way, and the bytes a second the page was sent
//!   (body bytes over the 4 h run, from its first frame to the end).
//!
//! Prints the median and the spread (lowest–highest) of each, and of the ratio with/without
//! within a round (target: at least 0.90), and of the page's bytes a second (target: at most
//! 2 MB/s).

use std::io::Read;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use customersim_testkit::net::free_port;
use customersim_testkit::run::clean_command;
use customersim_testkit::temp::temp_file;

const ROUNDS: usize = 3;
const SHOPPERS: u64 = 10_000;

/// What one page read: bytes, frames, and the seconds between its first frame and the end.
struct PageFigures {
    bytes: u64,
    frames: u64,
    seconds: f64,
}

struct RunFigures {
    seconds: f64,
    events: u64,
    page: Option<PageFigures>,
}

fn run(duration: &str, view: bool) -> RunFigures {
    let port = free_port();
    let view_sink = if view {
        format!(", {{type: live_view, listen: \"127.0.0.1:{port}\"}}")
    } else {
        String::new()
    };
    let text = format!(
        "simulation: {{seed: 1, speed: max, start: \"2026-01-01T08:00:00Z\", duration: {duration}}}\n\
         timeline: {{consume_frequency: 0, consume_batch_size: 10000}}\n\
         sources:\n  - type: random_walk\n    average_in_store: {SHOPPERS}\n\
         sinks: [{{type: stdout}}{view_sink}]\n"
    );
    let config = temp_file("bench.yaml", &text);
    let started = Instant::now();
    let mut child = clean_command(env!("CARGO_BIN_EXE_customersim"))
        .args(["run", "--config"])
        .arg(&config)
        .env("LOG_LEVEL", "INFO")
        .stdout(Stdio::from(std::fs::File::create("/dev/null").unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let page = view.then(|| open_page(port));
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let status = child.wait().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "customersim failed:\n{log}");
    let events = log
        .split("stopped:")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no event count in the log:\n{log}"));
    RunFigures {
        seconds,
        events,
        page: page.map(|page| page.recv().expect("the page's figures")),
    }
}

/// A page reading the view's event stream from as soon as it listens to the end of the run.
fn open_page(port: u16) -> mpsc::Receiver<PageFigures> {
    let (sender, figures) = mpsc::channel();
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
        let (mut bytes, mut frames, mut first_frame) = (0u64, 0u64, None);
        while let Ok(read) = body.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let chunk = &buffer[..read];
            let new_frames = chunk.windows(12).filter(|w| w == b"event: frame").count() as u64;
            if first_frame.is_none() && new_frames > 0 {
                first_frame = Some(Instant::now());
            } else if first_frame.is_some() {
                bytes += read as u64;
            }
            frames += new_frames;
        }
        let seconds = first_frame.map_or(0.0, |at| at.elapsed().as_secs_f64());
        let _ = sender.send(PageFigures {
            bytes,
            frames,
            seconds,
        });
    });
    figures
}

/// Events per second with 10,000 inside: the difference of a 1 h and a 4 h run; the page's
/// figures come from the 4 h run.
fn throughput(view: bool) -> (f64, Option<PageFigures>) {
    let short = run("1h", view);
    let long = run("4h", view);
    let rate = (long.events - short.events) as f64 / (long.seconds - short.seconds);
    (rate, long.page)
}

/// "median (lowest–highest)".
fn spread(mut values: Vec<f64>, digits: usize) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{:.digits$} ({:.digits$}–{:.digits$})",
        values[values.len() / 2],
        values[0],
        values[values.len() - 1]
    )
}

fn main() {
    let (mut without, mut with, mut ratios, mut page_rates, mut frame_rates) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 1..=ROUNDS {
        let (bare, _) = throughput(false);
        let (viewed, page) = throughput(true);
        let page = page.expect("a page was open");
        let page_rate = page.bytes as f64 / page.seconds;
        let frame_rate = page.frames as f64 / page.seconds;
        println!(
            "round {round}: without {:.0} events/s, with live_view {:.0} events/s (ratio {:.3}); \
             page {:.0} bytes/s, {:.1} frames/s over {:.1} s",
            bare,
            viewed,
            viewed / bare,
            page_rate,
            frame_rate,
            page.seconds
        );
        without.push(bare / 1e6);
        with.push(viewed / 1e6);
        ratios.push(viewed / bare);
        page_rates.push(page_rate / 1e6);
        frame_rates.push(frame_rate);
    }
    println!(
        "live_view, {SHOPPERS} shoppers, --speed max, {ROUNDS} rounds, median (lowest–highest):"
    );
    println!("  without the view: {} M events/s", spread(without, 2));
    println!(
        "  with the view and one page: {} M events/s",
        spread(with, 2)
    );
    println!(
        "  ratio with/without: {} (target ≥ 0.90)",
        spread(ratios, 3)
    );
    println!(
        "  bytes sent to the page: {} MB/s (target ≤ 2), {} frames/s",
        spread(page_rates, 2),
        spread(frame_rates, 1)
    );
}
