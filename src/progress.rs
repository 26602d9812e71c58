//! The progress bar of a `--speed max` run with a duration: simulated time done out of the
//! duration, events per second and the time left, redrawn on stderr a few times a second.
//!
//! Only when stderr is a terminal: a run whose stderr goes to a file or a pipe (a log collector,
//! a test) gets nothing extra there. Without a duration there is no end to measure against, and
//! at a scaled speed the run takes its known wall time, so neither gets a bar.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::plugin_api::Clock;
use crate::plugin_api::prometheus_client::metrics::counter::Counter;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// The bar being drawn, if any: log lines written meanwhile hide it, print, and redraw it, so a
/// log line never lands in the middle of the bar.
static DRAWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Stderr for the log ([`crate::logging`]): writes around a progress bar being drawn.
pub struct LogWriter;

/// What the log's stderr layer writes through.
pub fn log_writer() -> LogWriter {
    LogWriter
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let drawn = DRAWN.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match drawn {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A progress bar being drawn; [`RunProgress::finish`] clears it.
pub struct RunProgress {
    bar: ProgressBar,
    ticker: JoinHandle<()>,
}

impl RunProgress {
    /// Starts the bar for a virtual-clock run from `start_ms` until the doors close at
    /// `close_ms`, counting the events in `handed_over`, if stderr is a terminal (else `None`).
    pub fn start_if_terminal(
        clock: Clock,
        start_ms: i64,
        close_ms: i64,
        handed_over: Counter,
    ) -> Option<RunProgress> {
        if !clock.is_virtual() || !std::io::stderr().is_terminal() || close_ms <= start_ms {
            return None;
        }
        let total_s = ((close_ms - start_ms) / 1000).max(1) as u64;
        let bar = ProgressBar::with_draw_target(Some(total_s), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] simulated {msg} · ETA {eta_precise}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                loop {
                    let done_s = ((clock.now_ms() - start_ms).max(0) / 1000) as u64;
                    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
                    let rate = handed_over.get() as f64 / elapsed;
                    bar.set_position(done_s.min(total_s));
                    bar.set_message(format!(
                        "{} of {} · {} events/s",
                        hms(done_s.min(total_s)),
                        hms(total_s),
                        human(rate)
                    ));
                    tokio::time::sleep(TICK).await;
                }
            })
        };
        *DRAWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        Some(RunProgress { bar, ticker })
    }

    /// Stops redrawing and clears the bar (the final log lines and the report follow).
    pub fn finish(self) {
        self.ticker.abort();
        *DRAWN.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.bar.finish_and_clear();
    }
}

/// Seconds as `1h02m03s`.
fn hms(seconds: u64) -> String {
    format!(
        "{}h{:02}m{:02}s",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// A rate as `2.3M`, `41.0k` or `950`.
fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.1}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(hms(3723), "1h02m03s");
        assert_eq!(human(2_345_678.0), "2.3M");
        assert_eq!(human(41_000.0), "41.0k");
        assert_eq!(human(950.4), "950");
    }
}
