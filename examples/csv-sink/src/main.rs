//! An out-of-tree customersim sink: `csv_file` writes one CSV line per event to a file (see
//! [`csv_file`] for its settings).
//!
//! This crate shows what a team does to add its own sink without touching customersim: depend on
//! the library and the plugin API, mark a typed config with `#[sink_config]` (which derives its
//! deserializer, refusing unknown keys, and registers it), implement [`PluginConfig`] and
//! [`SinkConfig`], and reuse the library's command line. The binary has the built-in plugins
//! enabled in `Cargo.toml` (random_walk, stdout, the in-memory timeline) plus this one:
//!
//! ```sh
//! csv-sink plugins
//! csv-sink run --config pipeline.yaml --seed 7 --speed max --duration 1h
//! ```
//!
//! [`PluginConfig`]: customersim_plugin_api::PluginConfig
//! [`SinkConfig`]: customersim_plugin_api::SinkConfig

// Plugins register through `inventory`, and the linker drops a crate that nothing names, so a
// plugin crate this binary depends on but never names would compile and then be missing from
// `csv-sink plugins` without a word. With this lint that mistake is a compile error; name each
// plugin crate with `use my_plugins as _;`. Test builds are exempt because they also get the
// dev-dependencies (tempfile, serde_json), which only the integration tests use.
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod csv_file;

fn main() -> std::process::ExitCode {
    customersim::cli::main()
}

#[cfg(test)]
mod tests {
    use customersim::plugin_api::{Sink, registered};

    /// The shared contract, run in a build that links this crate's plugin: the same rules as the
    /// built-in plugins (snake_case name, one-line description, unknown keys refused by name,
    /// idempotent resolution, environment variables no other plugin claims).
    #[test]
    fn the_plugins_of_this_binary_meet_the_contract() {
        let sinks: Vec<&str> = registered::<dyn Sink>()
            .iter()
            .map(|plugin| plugin.name)
            .collect();
        assert!(sinks.contains(&"csv_file"), "{sinks:?}");
        if let Err(problems) = customersim::contract::check_registered_plugins() {
            panic!("plugin contract broken:\n{}", problems.join("\n"));
        }
    }
}
