//! The scrub list comes from the registry: variables that plugins declare are removed from a
//! test's command without anyone listing them by hand.

use std::ffi::OsStr;

use customersim_testkit::run::clean_command;

#[test]
fn the_known_variables_include_what_plugins_declare() {
    let known = customersim::env::known_variables();
    for declared_by_a_plugin in [
        "MQTT_CLIENT_ID_SUFFIX",
        "AMQP_CA_FILE",
        "AMQP_CLIENT_CERT_FILE",
        "AMQP_CLIENT_KEY_FILE",
        "CUSTOMERS_LIST_FILE",
        "HTTP_TOKEN",
    ] {
        assert!(
            known.contains(&declared_by_a_plugin),
            "{declared_by_a_plugin} is missing from {known:?}"
        );
    }
    for read_by_the_core in ["STORE_WIDTH", "REDIS_KEY", "SINKS", "LOG_FILENAME"] {
        assert!(known.contains(&read_by_the_core), "{read_by_the_core}");
    }
    let mut sorted = known.clone();
    sorted.dedup();
    assert_eq!(sorted, known, "each variable once");
}

#[test]
fn a_clean_command_removes_every_known_variable() {
    let command = clean_command("customersim");
    let envs: Vec<(&OsStr, Option<&OsStr>)> = command.get_envs().collect();
    for variable in customersim::env::known_variables() {
        let set = envs
            .iter()
            .find(|(name, _)| *name == OsStr::new(variable))
            .map(|(_, value)| *value);
        match variable {
            // An ephemeral port, so tests running at once never collide on the default one.
            "HTTP_LISTEN" => assert_eq!(set, Some(Some(OsStr::new("127.0.0.1:0")))),
            _ => assert_eq!(set, Some(None), "{variable} is removed"),
        }
    }
}
