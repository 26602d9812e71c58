//! Logging: LOG_LEVEL (the original's names: DEBUG, INFO, WARNING, ERROR, CRITICAL) to stderr,
//! and also to LOG_FILENAME when it is set. Stdout is left to the stdout sink.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use crate::env::Environment;

/// Parses a level name as the original service accepted them (any case).
pub fn parse_level(text: &str) -> Option<LevelFilter> {
    match text.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some(LevelFilter::TRACE),
        "DEBUG" => Some(LevelFilter::DEBUG),
        "INFO" => Some(LevelFilter::INFO),
        "WARN" | "WARNING" => Some(LevelFilter::WARN),
        "ERROR" | "CRITICAL" | "FATAL" => Some(LevelFilter::ERROR),
        "OFF" => Some(LevelFilter::OFF),
        _ => None,
    }
}

/// The target of log records that go to LOG_FILENAME only: what the command line also prints on
/// stderr itself (its final `error:` line), so a terminal shows it once.
pub const FILE_ONLY: &str = "customersim::file_only";

/// Installs the global subscriber; the error names the variable at fault.
pub fn init(env: &Environment) -> Result<(), String> {
    let level = match env.get("LOG_LEVEL") {
        Some(text) => parse_level(text).ok_or_else(|| {
            format!("environment variable LOG_LEVEL: invalid value {text:?}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        })?,
        None => LevelFilter::INFO,
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(crate::progress::log_writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.target() != FILE_ONLY
        }));
    let file = match env.get("LOG_FILENAME") {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| {
                    format!("environment variable LOG_FILENAME: cannot open {path:?}: {error}")
                })?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(Mutex::new(file))
                    .with_ansi(false)
                    .with_target(false),
            )
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(level)
        .with(stderr)
        .with(file)
        .try_init();
    Ok(())
}
