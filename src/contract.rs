//! The contract every registered plugin must meet (after Vector's component compliance helper):
//! a unique snake_case name, a one-line description, a config that refuses unknown keys by name
//! and resolves to a fixed point, and environment variables in the original's style that no two
//! plugins share and that name keys the config has.
//!
//! The project's own test suite runs [`check_registered_plugins`]; an out-of-tree plugin crate
//! runs it too, from a test of the binary that links its plugins, so its plugins are held to the
//! same contract as the built-in ones.

use std::collections::HashMap;

use crate::plugin_api::{Plugin, Role, Sink, Source, TimelineBackend, registered};

/// Checks every plugin registered in this binary; the error lists every broken rule.
pub fn check_registered_plugins() -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut vars = HashMap::new();
    check_role::<dyn Source>(&mut problems, &mut vars);
    check_role::<dyn Sink>(&mut problems, &mut vars);
    check_role::<dyn TimelineBackend>(&mut problems, &mut vars);
    let core: Vec<&str> = crate::config::overrides::CORE_ENV
        .iter()
        .map(|entry| entry.var)
        .collect();
    for (var, plugin) in &vars {
        if core.contains(var) {
            problems.push(format!("{var} is both a core and a {plugin} variable"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_role<R: Role + ?Sized>(
    problems: &mut Vec<String>,
    vars: &mut HashMap<&'static str, &'static str>,
) {
    let all = registered::<R>();
    let mut names = HashMap::new();
    for plugin in &all {
        let name = plugin.name;
        let mut problem = |why: String| problems.push(format!("{} {name}: {why}", R::NOUN));
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            problem("names are snake_case".into());
        }
        if names.insert(name, plugin.origin).is_some() {
            problem("registered twice".into());
        }
        if plugin.description.is_empty() || plugin.description.contains('\n') {
            problem("needs a one-line description".into());
        }
        check_config(plugin, &mut problem);
        for entry in plugin.env {
            if !entry
                .var
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                problem(format!("{}: variables are UPPER_SNAKE_CASE", entry.var));
            }
            if entry.help.is_empty() {
                problem(format!("{}: undocumented", entry.var));
            }
            if let Some(other) = vars.insert(entry.var, name)
                && other != name
            {
                problem(format!("{} is claimed by {other} too", entry.var));
            }
            let top_key = entry.key.split('.').next().unwrap_or(entry.key);
            let mut with_key = serde_yaml::Mapping::new();
            with_key.insert(top_key.into(), serde_yaml::Value::Null);
            if let Err(error) = plugin.resolve(serde_yaml::Value::Mapping(with_key))
                && error.contains("unknown field")
            {
                problem(format!(
                    "{} sets a key the config does not have: {error}",
                    entry.var
                ));
            }
        }
    }
}

fn check_config<R: ?Sized>(plugin: &Plugin<R>, problem: &mut impl FnMut(String)) {
    let mut bogus = serde_yaml::Mapping::new();
    bogus.insert("no_such_setting".into(), 1.into());
    match plugin.resolve(serde_yaml::Value::Mapping(bogus)) {
        Ok(_) => problem("accepts unknown keys (deny_unknown_fields is missing)".into()),
        Err(error) if !error.contains("no_such_setting") => {
            problem(format!(
                "the error for an unknown key does not name it: {error}"
            ));
        }
        Err(_) => {}
    }
    if let Ok(resolved) = plugin.resolve(serde_yaml::Value::Mapping(Default::default())) {
        match plugin.resolve(resolved.clone()) {
            Ok(again) if again == resolved => {}
            Ok(_) => problem("resolving is not idempotent (write the defaults out)".into()),
            Err(error) => problem(format!("a resolved config does not resolve again: {error}")),
        }
    }
}
