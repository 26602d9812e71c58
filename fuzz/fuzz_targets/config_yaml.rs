//! Arbitrary pipeline text through the path `customersim validate` takes (interpolation, typed
//! parse, overrides, checks, each plugin's resolve and check), with an injected environment.
//! Every input must come back as a config or a config error: no panic, no hang.
#![no_main]

use std::path::PathBuf;

use customersim::config::{Flags, resolve_text};
use customersim::env::Environment;
use customersim::pipeline::Pipeline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = Environment::from_pairs([
        ("MQTT_HOST", "broker"),
        ("TOKEN", "s3cret"),
        ("FLOW", "ab, SECRETTAIL"),
        ("NULLISH", "~"),
    ]);
    let configs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs"));
    if let Ok(resolved) = resolve_text(text, "fuzz.yaml", configs, &env, &Flags::default()) {
        let _ = Pipeline::check(&resolved);
    }
});
