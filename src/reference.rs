//! The reference pages of the book (`docs/book/src/reference/`), rendered from the code itself so
//! they cannot drift: the configuration keys of the core and of every registered plugin (from the
//! pipeline file's JSON Schema, which the config types generate: their doc comments, defaults and
//! types), the environment variables (from the override tables), and the command line (clap's
//! own help). `tests/book.rs` fails when the committed pages differ from these, and rewrites them
//! with `UPDATE_REFERENCE=1`.

use std::fmt::Write as _;

use clap::CommandFactory;
use serde_json::Value;

use crate::config::overrides::CORE_ENV;
use crate::config::schema::pipeline_schema;
use crate::plugin_api::{EnvOverride, Plugin, Role, Sink, Source, TimelineBackend, registered};

/// Where the pages go, relative to the repository.
pub const REFERENCE_DIR: &str = "docs/book/src/reference";

/// Every reference page: its file name in [`REFERENCE_DIR`] and its Markdown.
pub fn pages() -> Vec<(&'static str, String)> {
    vec![
        ("configuration.md", configuration()),
        ("environment.md", environment()),
        ("cli.md", cli()),
    ]
}

const GENERATED: &str = "<!-- Generated from the code by `UPDATE_REFERENCE=1 cargo test --test book`; do not edit. -->\n\n";

/// The configuration keys: the core's sections, then each plugin's section.
fn configuration() -> String {
    let schema = pipeline_schema();
    let definitions = &schema["definitions"];
    let mut out = String::from(GENERATED);
    out.push_str("# Configuration keys\n\n");
    out.push_str(
        "Every key of the pipeline file, with its type, default and description, as the config \
         types define them (the same source as `customersim schema`). Environment variables that \
         set a key are named beside it; the precedence is flag > environment > file > default.\n\n",
    );
    out.push_str("## The core\n\n");
    let top = schema["properties"]
        .as_object()
        .expect("top-level properties");
    for (section, value) in top {
        if matches!(section.as_str(), "sources" | "sinks") {
            continue;
        }
        let resolved = resolve(value, definitions);
        let _ = writeln!(out, "### `{section}`\n");
        if let Some(description) = describe(value).or_else(|| describe(&resolved)) {
            let _ = writeln!(out, "{description}\n");
        }
        if section == "timeline" {
            let backends: Vec<&str> = registered::<dyn TimelineBackend>()
                .into_iter()
                .map(|plugin| plugin.name)
                .collect();
            key_table(
                &mut out,
                &resolved,
                definitions,
                &core_env(section),
                &backends,
            );
            for plugin in registered::<dyn TimelineBackend>() {
                plugin_section(
                    &mut out,
                    plugin,
                    &resolved["properties"][plugin.name],
                    definitions,
                    &format!("timeline.{}", plugin.name),
                );
            }
        } else if resolved.get("properties").is_some() {
            key_table(&mut out, &resolved, definitions, &core_env(section), &[]);
        } else {
            let _ = writeln!(out, "Type: {}.\n", type_of(&resolved, definitions));
        }
    }
    out.push_str("## Sources\n\nEach entry of `sources:` is one of these, chosen by `type:`.\n\n");
    for plugin in registered::<dyn Source>() {
        plugin_schema_section(&mut out, plugin, definitions);
    }
    out.push_str("## Sinks\n\nEach entry of `sinks:` is one of these, chosen by `type:`.\n\n");
    for plugin in registered::<dyn Sink>() {
        plugin_schema_section(&mut out, plugin, definitions);
    }
    out
}

/// A source's or sink's section, from the pipeline schema's entry for it.
fn plugin_schema_section<R: Role + ?Sized>(
    out: &mut String,
    plugin: &Plugin<R>,
    definitions: &Value,
) {
    let schema = pipeline_schema();
    let entries = schema["properties"][R::SECTION]["items"]["oneOf"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let entry = entries
        .into_iter()
        .find(|entry| entry["title"] == plugin.name)
        .unwrap_or(Value::Null);
    plugin_section(out, plugin, &entry, definitions, plugin.name);
}

/// One plugin: its description, its keys and the variables that set them.
fn plugin_section<R: ?Sized>(
    out: &mut String,
    plugin: &Plugin<R>,
    schema: &Value,
    definitions: &Value,
    heading: &str,
) {
    let _ = writeln!(out, "### `{heading}`\n");
    let _ = writeln!(
        out,
        "{} ({}).\n",
        capitalised(plugin.description),
        plugin.origin
    );
    let env: Vec<(String, &'static str)> = plugin
        .env
        .iter()
        .map(|entry| (entry.key.to_string(), entry.var))
        .collect();
    key_table(out, schema, definitions, &env, &["type"]);
}

/// The core's variables of one section (`store.width` → `width`).
fn core_env(section: &str) -> Vec<(String, &'static str)> {
    CORE_ENV
        .iter()
        .filter_map(|entry| {
            entry
                .key
                .strip_prefix(section)
                .and_then(|rest| rest.strip_prefix('.'))
                .map(|key| (key.to_string(), entry.var))
        })
        .collect()
}

/// A table of an object schema's keys (leaving out `skip`).
fn key_table(
    out: &mut String,
    schema: &Value,
    definitions: &Value,
    env: &[(String, &'static str)],
    skip: &[&str],
) {
    let Some(properties) = schema["properties"].as_object() else {
        out.push_str("No keys.\n\n");
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| key | type | default | environment | description |\n|---|---|---|---|---|\n");
    let mut any = false;
    for (key, value) in properties {
        if skip.contains(&key.as_str()) {
            continue;
        }
        any = true;
        let resolved = resolve(value, definitions);
        let default = match value.get("default").or_else(|| resolved.get("default")) {
            Some(default) => format!("`{}`", compact(default)),
            None if required.contains(&key.as_str()) => "required".to_string(),
            None => "–".to_string(),
        };
        let variables: Vec<String> = env
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, var)| format!("`{var}`"))
            .collect();
        let description = describe(value)
            .or_else(|| describe(&resolved))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{key}` | {} | {default} | {} | {} |",
            type_of(&resolved, definitions),
            if variables.is_empty() {
                "–".to_string()
            } else {
                variables.join(", ")
            },
            one_line(&description)
        );
    }
    if !any {
        out.push_str("| – | | | | no keys of its own |\n");
    }
    out.push('\n');
}

/// A `$ref` followed into the definitions (one level, with an `allOf` of one ref too).
fn resolve(value: &Value, definitions: &Value) -> Value {
    if let Some(target) = value["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap_or_default();
        return definitions[name].clone();
    }
    if let Some([only]) = value["allOf"].as_array().map(Vec::as_slice) {
        return resolve(only, definitions);
    }
    value.clone()
}

/// A schema's type in a few words.
fn type_of(schema: &Value, definitions: &Value) -> String {
    let schema = resolve(schema, definitions);
    if let Some(values) = schema["enum"].as_array() {
        let names: Vec<String> = values
            .iter()
            .map(|value| format!("`{}`", compact(value)))
            .collect();
        return format!("one of {}", names.join(", "));
    }
    if let Some(options) = schema["anyOf"]
        .as_array()
        .or_else(|| schema["oneOf"].as_array())
    {
        // Variants with doc comments come as a `const` each: name the values, as for `enum`.
        let values: Option<Vec<String>> = options
            .iter()
            .map(|option| {
                option
                    .get("const")
                    .map(|value| format!("`{}`", compact(value)))
            })
            .collect();
        if let Some(values) = values {
            return format!("one of {}", values.join(", "));
        }
        let kinds: Vec<String> = options
            .iter()
            .map(|option| type_of(option, definitions))
            .collect();
        return kinds.join(" or ");
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    };
    if kind == "array" {
        let items = type_of(&schema["items"], definitions);
        return format!("list of {items}");
    }
    if kind.contains("object") && schema["properties"].is_object() {
        return "object (keys below)".to_string();
    }
    kind
}

fn describe(value: &Value) -> Option<String> {
    value["description"].as_str().map(str::to_string)
}

/// A JSON value on one line.
fn compact(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Text for a table cell: one line, pipes escaped.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Every environment variable: the core's, then each plugin's.
fn environment() -> String {
    let mut out = String::from(GENERATED);
    out.push_str("# Environment variables\n\n");
    out.push_str(
        "Every variable the binary reads, from the override tables of the core and of each \
         registered plugin. A variable overrides its key in every matching section of the \
         pipeline file; a flag overrides the variable. `SINKS` (a comma-separated list of sink \
         types, like `--sink`), `LOG_LEVEL` and `LOG_FILENAME` are read directly.\n\n",
    );
    out.push_str("## The core\n\n");
    env_table(&mut out, CORE_ENV.iter().map(|entry| ("core", entry)));
    out.push_str("## Plugins\n\n");
    let mut plugins = crate::registry::plugin_env_vars();
    plugins.sort_by_key(|(plugin, entry)| (*plugin, entry.var));
    env_table(&mut out, plugins.into_iter());
    let selecting: Vec<String> = crate::registry::sinks()
        .into_iter()
        .filter_map(|plugin| {
            plugin.selected_by.map(|var| {
                format!(
                    "`{var}` set to `true` selects the `{}` sink as the only one",
                    plugin.name
                )
            })
        })
        .collect();
    if !selecting.is_empty() {
        let _ = writeln!(out, "Also: {}.\n", selecting.join("; "));
    }
    out
}

fn env_table<'a>(out: &mut String, entries: impl Iterator<Item = (&'a str, &'a EnvOverride)>) {
    out.push_str("| variable | sets | of | meaning |\n|---|---|---|---|\n");
    for (owner, entry) in entries {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {owner} | {} |",
            entry.var,
            entry.key,
            one_line(entry.help)
        );
    }
    out.push('\n');
}

/// The command line: clap's help of the binary and of each subcommand.
fn cli() -> String {
    let mut out = String::from(GENERATED);
    out.push_str("# Command line\n\n");
    let mut command = crate::cli::Cli::command();
    command.build();
    let _ = writeln!(out, "```text\n{}```\n", command.render_long_help());
    for sub in command.get_subcommands_mut() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = sub.get_name().to_string();
        let help = sub.render_long_help();
        let _ = writeln!(out, "## `customersim {name}`\n\n```text\n{help}```\n");
    }
    out
}
