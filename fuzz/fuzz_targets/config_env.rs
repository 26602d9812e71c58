//! Arbitrary values for the environment variables the binary reads, over the built-in pipeline:
//! the input is split at NUL bytes, one value per known variable in order. Every input must come
//! back as a config or a config error: no panic, no hang.
#![no_main]

use std::path::PathBuf;

use customersim::config::{DEFAULT_PIPELINE, Flags, resolve_text};
use customersim::env::{Environment, known_variables};
use customersim::pipeline::Pipeline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let values: Vec<String> = data
        .split(|byte| *byte == 0)
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect();
    let variables = known_variables();
    let pairs: Vec<(&str, &str)> = variables
        .iter()
        .zip(values.iter())
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let mut env = Environment::from_pairs(pairs);
    if values.len() > variables.len() {
        env = env.with_unreadable(variables[values.len() % variables.len()]);
    }
    let configs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs"));
    if let Ok(resolved) =
        resolve_text(DEFAULT_PIPELINE, "built-in", configs, &env, &Flags::default())
    {
        let _ = Pipeline::check(&resolved);
    }
});
