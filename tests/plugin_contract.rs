//! The contract every registered source and sink must meet (after Vector's component compliance
//! helper): a unique snake_case name, a one-line description, a config that rejects unknown keys
//! by name and resolves to a fixed point, and environment variables in the original's style that
//! no two plugins share.

use std::collections::HashMap;

use customersim::plugin_api::{Role, plugins, serde_yaml};

#[test]
fn every_plugin_meets_the_contract() {
    let all = plugins();
    assert!(
        all.iter().any(|p| p.role() == Role::Source) && all.iter().any(|p| p.role() == Role::Sink)
    );
    let mut names = HashMap::new();
    let mut vars = HashMap::new();
    for plugin in &all {
        let name = plugin.name;
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}: names are snake_case"
        );
        assert!(
            names.insert((plugin.role(), name), ()).is_none(),
            "{name}: registered twice"
        );
        assert!(
            !plugin.description.is_empty() && !plugin.description.contains('\n'),
            "{name}: one-line description"
        );

        let mut bogus = serde_yaml::Mapping::new();
        bogus.insert("no_such_setting".into(), 1.into());
        let error = (plugin.resolve)(serde_yaml::Value::Mapping(bogus))
            .expect_err("unknown keys are refused");
        assert!(
            error.contains("no_such_setting"),
            "{name}: the error names the key: {error}"
        );

        if let Ok(resolved) = (plugin.resolve)(serde_yaml::Value::Mapping(Default::default())) {
            let again =
                (plugin.resolve)(resolved.clone()).expect("a resolved config resolves again");
            assert_eq!(
                again, resolved,
                "{name}: resolving is idempotent (defaults are written out)"
            );
        }

        for entry in plugin.env {
            assert!(
                entry
                    .var
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                entry.var
            );
            assert!(!entry.help.is_empty(), "{}: documented", entry.var);
            if let Some(other) = vars.insert(entry.var, name) {
                assert_eq!(other, name, "{} is claimed by two plugins", entry.var);
            }
            let top_key = entry.key.split('.').next().unwrap();
            let mut with_key = serde_yaml::Mapping::new();
            with_key.insert(top_key.into(), serde_yaml::Value::Null);
            if let Err(error) = (plugin.resolve)(serde_yaml::Value::Mapping(with_key)) {
                assert!(
                    !error.contains("unknown field"),
                    "{name}: {} sets a key the config does not have: {error}",
                    entry.var
                );
            }
        }
    }
}

#[test]
fn core_and_plugin_environment_variables_do_not_collide() {
    let core: Vec<&str> = customersim::config::overrides::CORE_ENV
        .iter()
        .map(|entry| entry.var)
        .collect();
    for (plugin, entry) in customersim::registry::plugin_env_vars() {
        assert!(
            !core.contains(&entry.var),
            "{} is both a core and a {plugin} variable",
            entry.var
        );
    }
}

#[test]
fn every_environment_variable_is_in_the_readme_table() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("### Environment variables")
        .expect("README has the env table");
    let end = start
        + readme[start..]
            .find("\n## ")
            .expect("a section follows the table");
    let table = &readme[start..end];
    for var in customersim::env::known_variables() {
        assert!(
            table.contains(var),
            "{var} is missing from the README's environment table"
        );
    }
}
