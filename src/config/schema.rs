//! The JSON Schema of the pipeline file (`customersim schema`), made from the config types, so it
//! cannot drift from what `validate` accepts: the core's sections are derived from their types
//! (field doc comments become descriptions, named defaults become `default`), and `sources`,
//! `sinks` and `timeline` list every registered plugin's own config type, chosen by `type:` (or
//! `backend:`). Editors use it for completion and checks through the `yaml-language-server`
//! comment at the top of the shipped configs.
//!
//! Values the file may give as `${VAR}` are strings in the file; only string-typed keys take them
//! without the schema complaining (a number given through a variable fails the editor's check,
//! not `validate`).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::verdict::rules::{DeliveryCheckConfig, ExpectConfig};
use serde_json::{Map, Value, json};

use super::types::{
    ConsumeFrom, FleetConfig, FocusConfig, LoadConfig, SimulationConfig, Speed, Start, StoreConfig,
    StoreList, TimelineConfig,
};
use crate::plugin_api::{Plugin, Role, Shard, Sink, Source, TimelineBackend, Topics, registered};

/// Where the shipped configs point their editors (relative to `configs/`).
pub const SCHEMA_FILE: &str = "schema/pipeline.schema.json";

/// The schema of the pipeline file, as pretty JSON (what `customersim schema` prints and
/// `schema/pipeline.schema.json` holds).
pub fn pipeline_schema_json() -> String {
    serde_json::to_string_pretty(&pipeline_schema()).expect("a schema is JSON") + "\n"
}

/// The schema of the pipeline file.
pub fn pipeline_schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let properties = json!({
        "simulation": described(generator.subschema_for::<SimulationConfig>(), "Seed, speed, start and length of the simulated time."),
        "store": described(generator.subschema_for::<StoreConfig>(), "The store's floor plan: extent, walking grid, doors and zones."),
        "topics": described(generator.subschema_for::<Topics>(), "Topics of enter, move, exit and focus events."),
        "focus": described(generator.subschema_for::<FocusConfig>(), "How focus events (on when `topics.focus` is set) are announced."),
        "fleet": described(generator.subschema_for::<FleetConfig>(), "A chain of stores of this layout, each with its own shoppers; absent: one store."),
        "shard": generator.subschema_for::<Shard>(),
        "timeline": timeline(&mut generator),
        "sources": plugin_list::<dyn Source>(&mut generator, "What generates shoppers and their events (one entry per source, chosen by `type`)."),
        "sinks": plugin_list::<dyn Sink>(&mut generator, "Where events go (one entry per sink, chosen by `type`)."),
        "expect": described(generator.subschema_for::<Vec<ExpectConfig>>(), "Replies the system under test must send: one rule per entry."),
        "thresholds": described(generator.subschema_for::<crate::thresholds::ThresholdsConfig>(), "Pass/fail limits on what the run measured: a table, a JUnit file, exit code 99 when one is breached."),
        "delivery_check": described(generator.subschema_for::<DeliveryCheckConfig>(), "Read back the events a sink published, to report what the broker delivered."),
        "load": described(generator.subschema_for::<LoadConfig>(), "Target events per second over time, met by the simulated shopper sources; absent: their own `average_in_store`."),
    });
    let definitions: Map<String, Value> = generator.take_definitions(true);
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://customersim.invalid/pipeline.schema.json",
        "title": "customersim pipeline",
        "description": "A customersim pipeline file: sources put shoppers' events on a timeline, the scheduler hands due events to the sinks. `customersim validate` checks everything this schema does and more.",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "definitions": definitions,
    })
}

/// `schema` with a description where it has none (a `$ref` gets it beside).
fn described(schema: Schema, description: &str) -> Value {
    let mut value = schema.to_value();
    if let Value::Object(object) = &mut value
        && !object.contains_key("description")
    {
        object.insert("description".into(), json!(description));
    }
    value
}

/// A plugin list (`sources:`, `sinks:`): each entry is one of the registered plugins of the role,
/// chosen by its `type`.
fn plugin_list<R: Role + ?Sized>(generator: &mut SchemaGenerator, description: &str) -> Value {
    let choices: Vec<Value> = registered::<R>()
        .into_iter()
        .map(|plugin| plugin_entry(plugin, generator))
        .collect();
    json!({
        "description": description,
        "type": "array",
        "items": {"oneOf": choices},
    })
}

/// One plugin's entry: its config's keys plus `type: NAME`.
fn plugin_entry<R: ?Sized>(plugin: &Plugin<R>, generator: &mut SchemaGenerator) -> Value {
    let mut schema = plugin.schema(generator).to_value();
    let object = schema.as_object_mut().expect("a config type is an object");
    object.insert("title".into(), json!(plugin.name));
    object.insert("description".into(), json!(plugin.description));
    let properties = object
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties are an object");
    properties.insert(
        "type".into(),
        json!({"const": plugin.name, "description": "The plugin (`customersim plugins` lists them)."}),
    );
    let required = object.entry("required").or_insert_with(|| json!([]));
    if let Value::Array(required) = required {
        required.insert(0, json!("type"));
    }
    object.insert("additionalProperties".into(), json!(false));
    schema
}

/// `timeline:`: the scheduler's settings, `backend:` and each backend's own section under its
/// name.
fn timeline(generator: &mut SchemaGenerator) -> Value {
    let mut schema = TimelineConfig::json_schema(generator).to_value();
    let backends = registered::<dyn TimelineBackend>();
    let object = schema.as_object_mut().expect("timeline is an object");
    let properties = object
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties are an object");
    if let Some(Value::Object(backend)) = properties.get_mut("backend") {
        let names: Vec<&str> = backends.iter().map(|plugin| plugin.name).collect();
        backend.insert("enum".into(), json!(names));
    }
    for plugin in &backends {
        let mut section = plugin.schema(generator).to_value();
        if let Value::Object(section) = &mut section {
            section.insert("description".into(), json!(plugin.description));
            section.insert("additionalProperties".into(), json!(false));
        }
        properties.insert(plugin.name.into(), section);
    }
    object.insert("additionalProperties".into(), json!(false));
    object.insert(
        "description".into(),
        json!("Where events wait until due, and how the scheduler takes them."),
    );
    schema
}

impl JsonSchema for Speed {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Speed".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Simulated seconds per wall second (0.001 to 1,000,000; 1 is real time), or `max`: a virtual clock as fast as the sinks take events.",
            "anyOf": [
                {"type": "number", "minimum": Speed::SLOWEST, "maximum": Speed::FASTEST},
                {"type": "string", "pattern": "^\\s*([Mm][Aa][Xx]|[0-9.eE+-]+)\\s*$"}
            ],
            "default": 1.0
        })
    }
}

impl JsonSchema for Start {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Start".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "`now`, or an RFC 3339 instant to start the simulated time at (historical backfill).",
            "examples": ["now", "2026-03-02T10:00:00Z"],
            "default": "now"
        })
    }
}

impl JsonSchema for ConsumeFrom {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConsumeFrom".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "What to do with events due before the start: `earliest` publishes them all in order, `latest` skips those due before the run started, an RFC 3339 instant skips those before it (env CONSUME_FROM).",
            "examples": ["latest", "earliest", "2026-03-02T10:00:00Z"],
            "default": "latest"
        })
    }
}

impl JsonSchema for StoreList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StoreList".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of stores N (ids `1` to `N`), or the list of their ids.",
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1}
            ]
        })
    }
}
