use std::path::PathBuf;

use super::*;
use crate::plugin_api::MAX_STORES;

fn resolve(
    text: &str,
    env: &[(&str, &str)],
    flags: &Flags,
) -> Result<ResolvedPipeline, ConfigError> {
    resolve_text(
        text,
        "test.yaml",
        PathBuf::from("."),
        &Environment::from_pairs(env.iter().copied()),
        flags,
    )
}

const MINIMAL: &str = "sources:\n  - type: random_walk\nsinks:\n  - type: stdout\n";

#[test]
fn defaults_fill_every_section() {
    let resolved = resolve(MINIMAL, &[], &Flags::default()).unwrap();
    let config = &resolved.config;
    assert_eq!(
        (config.store.width, config.store.height, config.store.door),
        (6, 10, None)
    );
    assert_eq!(
        (resolved.layout.entrance(), resolved.layout.exit()),
        ((0, 0), (0, 0))
    );
    assert_eq!(config.topics.moves, "customer/move");
    assert_eq!(
        config.timeline.consume_batch_size, None,
        "no throttle unless set"
    );
    assert_eq!(config.timeline.consume_frequency, None);
    assert_eq!(config.timeline.consume_from, ConsumeFrom::Latest);
    assert_eq!(config.simulation.speed, Speed::Factor(1.0));
    assert!(resolved.seed_drawn);
    assert_eq!(
        resolved.shown["sources"][0]["average_in_store"].as_f64(),
        Some(6.0),
        "validate shows the plugin's defaults"
    );
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let error = resolve(
        "store:\n  width: 3\n  hieght: 4\nsinks: [{type: stdout}]\n",
        &[],
        &Flags::default(),
    )
    .unwrap_err()
    .0;
    assert!(
        error.contains("test.yaml") && error.contains("hieght") && error.contains("line 3"),
        "{error}"
    );
    let error = resolve("colour: red\n", &[], &Flags::default())
        .unwrap_err()
        .0;
    assert!(
        error.contains("colour") && error.contains("line 1"),
        "{error}"
    );
}

#[test]
fn unknown_plugin_type_lists_the_registered_ones() {
    let error = resolve(
        "sources: [{type: walker}]\nsinks: [{type: stdout}]\n",
        &[],
        &Flags::default(),
    )
    .unwrap_err()
    .0;
    assert!(
        error.contains("sources[0]")
            && error.contains("\"walker\"")
            && error.contains("random_walk"),
        "{error}"
    );
}

#[test]
fn unknown_plugin_key_is_named_with_its_path() {
    let error = resolve(
        "sources: [{type: random_walk, stesp: 1}]\nsinks: [{type: stdout}]\n",
        &[],
        &Flags::default(),
    )
    .unwrap_err()
    .0;
    assert!(
        error.contains("sources[0] (type: random_walk)") && error.contains("stesp"),
        "{error}"
    );
}

#[test]
fn precedence_is_flag_then_env_then_yaml_then_default() {
    let text = "simulation: {seed: 1, speed: 2.0}\nstore: {width: 3}\nsources: [{type: random_walk, average_in_store: 9}]\nsinks: [{type: stdout}]\n";
    let env = [
        ("SIMULATION_SEED", "2"),
        ("STORE_WIDTH", "4"),
        ("CUSTOMERS_AVERAGE_IN_STORE", "12.5"),
    ];
    let flags = Flags {
        seed: Some(3),
        ..Flags::default()
    };
    let resolved = resolve(text, &env, &flags).unwrap();
    assert_eq!(resolved.seed, 3, "flag beats env");
    assert_eq!(resolved.config.store.width, 4, "env beats yaml");
    assert_eq!(resolved.config.store.height, 10, "default");
    assert_eq!(
        resolved.config.simulation.speed,
        Speed::Factor(2.0),
        "yaml beats default"
    );
    assert_eq!(
        resolved.config.sources[0].settings["average_in_store"].as_f64(),
        Some(12.5),
        "plugin env beats yaml"
    );
    let resolved = resolve(text, &env, &Flags::default()).unwrap();
    assert_eq!(resolved.seed, 2);
}

#[test]
fn bad_env_values_name_the_variable_and_value() {
    for (var, value) in [
        ("STORE_WIDTH", "wide"),
        ("CONSUME_FREQUENCY", "-1"),
        ("CONSUME_FROM", "yesterday"),
        ("SIMULATION_SPEED", "fast"),
        ("CUSTOMERS_AVERAGE_IN_STORE", "many"),
        ("TESTING_MOCK_MQTT", "perhaps"),
    ] {
        let error = resolve(MINIMAL, &[(var, value)], &Flags::default())
            .unwrap_err()
            .0;
        assert!(
            error.contains(var) && error.contains(value),
            "{var}: {error}"
        );
    }
}

#[test]
fn sink_selection_replaces_the_sink_list() {
    let text = "sources: [{type: random_walk}]\nsinks: [{type: stdout}]\n";
    let resolved = resolve(text, &[("TESTING_MOCK_MQTT", "true")], &Flags::default()).unwrap();
    assert_eq!(resolved.config.sinks.len(), 1);
    assert_eq!(resolved.config.sinks[0].kind, "stdout");
    let error = resolve(
        text,
        &[("SINKS", "stdout,carrier_pigeon")],
        &Flags::default(),
    )
    .unwrap_err()
    .0;
    assert!(
        error.contains("carrier_pigeon") && error.contains("stdout"),
        "{error}"
    );
    let flags = Flags {
        sinks: vec!["stdout".into()],
        ..Flags::default()
    };
    let resolved = resolve(text, &[("SINKS", "carrier_pigeon")], &flags).unwrap();
    assert_eq!(
        resolved.config.sinks[0].kind, "stdout",
        "--sink beats SINKS"
    );
}

#[test]
fn interpolation_feeds_typed_values() {
    let text = "store: {width: ${W:5}, height: ${H}}\nsources: [{type: random_walk}]\nsinks: [{type: stdout}]\n";
    let resolved = resolve(text, &[("H", "7")], &Flags::default()).unwrap();
    assert_eq!(
        (resolved.config.store.width, resolved.config.store.height),
        (5, 7)
    );
}

#[test]
fn the_built_in_default_resolves() {
    let resolved = resolve(
        DEFAULT_PIPELINE,
        &[("TESTING_MOCK_MQTT", "true")],
        &Flags::default(),
    )
    .unwrap();
    assert!(!resolved.config.sources.is_empty());
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    let with = |section: &str| {
        format!("{section}\nsources: [{{type: random_walk}}]\nsinks: [{{type: stdout}}]\n")
    };
    for (text, needle) in [
        (with("store: {door: [6, 0]}"), "store.door"),
        (with("store: {width: 0}"), "store.width"),
        (
            with("timeline: {consume_batch_size: 0}"),
            "consume_batch_size",
        ),
        (
            with("timeline: {consume_frequency: -1}"),
            "consume_frequency",
        ),
        (with("simulation: {speed: 0}"), "speed"),
        (with("simulation: {start: tomorrow}"), "tomorrow"),
        (with("simulation: {duration: forever}"), "forever"),
        (
            "sources: [{type: random_walk}]\nsinks: []\n".to_string(),
            "sinks",
        ),
        (
            "sources: []\nsinks: [{type: stdout}]\n".to_string(),
            "sources",
        ),
    ] {
        let error = resolve(&text, &[], &Flags::default()).unwrap_err().0;
        assert!(error.contains(needle), "{text}: {error}");
    }
}

#[test]
fn the_built_in_default_resolves_paths_in_configs_when_there_is_one() {
    let root = std::env::temp_dir().join(format!("customersim-default-dir-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    assert_eq!(
        default_config_dir(&root),
        root,
        "no configs/: the current directory"
    );
    std::fs::create_dir_all(root.join("configs")).unwrap();
    assert_eq!(default_config_dir(&root), root.join("configs"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn unset_variables_are_refused_unless_their_sink_is_replaced() {
    let text =
        "store: {width: \"${W}\"}\nsources: [{type: random_walk}]\nsinks: [{type: stdout}]\n";
    let error = resolve(text, &[], &Flags::default()).unwrap_err().0;
    assert!(
        error.contains("test.yaml: line 1: store.width") && error.contains("W is not set"),
        "{error}"
    );
    let text = "sources: [{type: random_walk}]\nsinks:\n  - {type: mqtt, host: \"${BROKER}\"}\n  - {type: stdout}\n";
    let error = resolve(text, &[], &Flags::default()).unwrap_err().0;
    assert!(
        error.contains("line 3: sinks[0].host") && error.contains("BROKER is not set"),
        "{error}"
    );
    // The mqtt sink replaced: its settings are never used, nor its variables needed.
    let stdout = Flags {
        sinks: vec!["stdout".into()],
        ..Flags::default()
    };
    assert!(resolve(text, &[], &stdout).is_ok());
    assert!(resolve(text, &[("SINKS", "stdout")], &Flags::default()).is_ok());
    // Kept by the selection: still needed.
    let mqtt = Flags {
        sinks: vec!["mqtt".into()],
        ..Flags::default()
    };
    assert!(resolve(text, &[], &mqtt).unwrap_err().0.contains("BROKER"));
}

#[test]
fn fleets_are_bounded_and_store_ids_add_no_topic_level() {
    let with = |fleet: &str| format!("fleet: {{stores: {fleet}}}\n{MINIMAL}");
    let error = resolve(&with("1000000"), &[], &Flags::default())
        .unwrap_err()
        .0;
    assert!(
        error.contains("fleet.stores") && error.contains(&MAX_STORES.to_string()),
        "{error}"
    );
    assert!(resolve(&with(&MAX_STORES.to_string()), &[], &Flags::default()).is_ok());
    let error = resolve(&with("[a, b/c]"), &[], &Flags::default())
        .unwrap_err()
        .0;
    assert!(
        error.contains("fleet.stores") && error.contains("\"b/c\""),
        "{error}"
    );
}

#[test]
fn two_listeners_on_one_port_are_refused_naming_both() {
    let text = "sources:\n  - {type: random_walk}\n  - {type: http_ingress, listen: \"0.0.0.0:18000\"}\nsinks:\n  - {type: live_view, listen: \"127.0.0.1:18000\"}\n";
    let error = resolve(text, &[], &Flags::default()).unwrap_err().0;
    assert!(
        error.contains("sources[1] (type: http_ingress) listens on 0.0.0.0:18000")
            && error.contains("sinks[0] (type: live_view) on 127.0.0.1:18000"),
        "{error}"
    );
    // HTTP_LISTEN moves one of them: no clash.
    assert!(
        resolve(
            text,
            &[("HTTP_LISTEN", "127.0.0.1:18001")],
            &Flags::default()
        )
        .is_ok()
    );
}
