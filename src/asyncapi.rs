//! `customersim asyncapi`: the AsyncAPI 3.0 document of a pipeline, the standard contract of an
//! event API that code generators, Microcks and Specmatic read.
//!
//! Everything in it comes from the resolved pipeline, so it cannot drift from what a run
//! publishes: the **servers** are the brokers the sinks publish to (each sink describes its own
//! through [`PluginConfig::brokers`](crate::plugin_api::PluginConfig::brokers); the core names
//! none), the **channels** are the topics (`{store}` becomes a channel parameter with a fleet's
//! store ids), and the **messages** carry the payload schemas and examples of the event contract
//! (`{"id": "997", "ts": 192326400, "x": 2, "y": 3}`), focus included when `topics.focus` is set.
//! Brokers that address a topic differently (AMQP routing keys replace `/` with `.`) get channels
//! of their own.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::ResolvedPipeline;
use crate::plugin_api::{BrokerEndpoint, STORE_PLACEHOLDER};

/// The AsyncAPI version written.
const ASYNCAPI_VERSION: &str = "3.0.0";

/// Longest customer id published (the HTTP API's and the customer list's limit).
const MAX_ID_BYTES: u64 = 256;

/// The document's top level, in the order the specification lists its fields.
#[derive(Serialize)]
struct Document {
    asyncapi: &'static str,
    info: Info,
    #[serde(rename = "defaultContentType")]
    default_content_type: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    servers: BTreeMap<String, Server>,
    channels: BTreeMap<String, Channel>,
    operations: BTreeMap<String, Operation>,
    components: Components,
}

#[derive(Serialize)]
struct Info {
    title: String,
    version: &'static str,
    description: String,
}

/// One broker a sink publishes to.
#[derive(Serialize)]
struct Server {
    host: String,
    protocol: String,
    #[serde(rename = "protocolVersion", skip_serializing_if = "Option::is_none")]
    protocol_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pathname: Option<String>,
    description: String,
}

/// One topic (or routing key) events of one kind are published on.
#[derive(Serialize)]
struct Channel {
    address: String,
    description: String,
    messages: BTreeMap<String, Reference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    servers: Vec<Reference>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    parameters: BTreeMap<String, Parameter>,
}

/// The `{store}` of a fleet's topics.
#[derive(Serialize)]
struct Parameter {
    description: String,
    #[serde(rename = "enum", skip_serializing_if = "Vec::is_empty")]
    values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    examples: Vec<String>,
}

#[derive(Serialize)]
struct Operation {
    action: &'static str,
    channel: Reference,
    summary: String,
    messages: Vec<Reference>,
}

#[derive(Serialize)]
struct Components {
    messages: BTreeMap<String, Message>,
}

#[derive(Serialize)]
struct Message {
    name: String,
    title: String,
    summary: String,
    #[serde(rename = "contentType")]
    content_type: &'static str,
    payload: Value,
    examples: Vec<Example>,
}

#[derive(Serialize)]
struct Example {
    name: String,
    payload: Value,
}

#[derive(Serialize)]
struct Reference {
    #[serde(rename = "$ref")]
    target: String,
}

fn reference(target: String) -> Reference {
    Reference { target }
}

/// The four kinds of event: the message id, the topic key, what it says, its example payload.
struct Kind {
    name: &'static str,
    summary: &'static str,
    /// The message its channel carries (a truth copy carries its kind's message).
    message: &'static str,
    /// The key under `topics:` that names its topic.
    key: &'static str,
}

const ENTER: Kind = Kind {
    name: "enter",
    message: "enter",
    key: "enter",
    summary: "A shopper came in through the entrance.",
};
const MOVE: Kind = Kind {
    name: "move",
    message: "move",
    key: "move",
    summary: "A shopper's location sensor reported a position (store coordinates).",
};
const EXIT: Kind = Kind {
    name: "exit",
    message: "exit",
    key: "exit",
    summary: "A shopper left through the exit.",
};
const FOCUS: Kind = Kind {
    name: "focus",
    message: "focus",
    key: "focus",
    summary: "Ground truth: a shopper's third consecutive report inside one department of a stay \
              (the decision service's rule), for the recommendation service.",
};

/// The truth copies of each kind, with `sensors.enabled` and `topics.truth.*` (the book's
/// *Sensors* chapter).
const TRUTH: [Kind; 4] = [
    Kind {
        name: "truth-enter",
        message: "enter",
        key: "truth.enter",
        summary: "Ground truth: every enter, reported by the sensors or not.",
    },
    Kind {
        name: "truth-move",
        message: "move",
        key: "truth.move",
        summary: "Ground truth: every move at its exact position and time.",
    },
    Kind {
        name: "truth-exit",
        message: "exit",
        key: "truth.exit",
        summary: "Ground truth: every exit, reported by the sensors or not.",
    },
    Kind {
        name: "truth-focus",
        message: "focus",
        key: "truth.focus",
        summary: "A copy of the focus events.",
    },
];

/// The AsyncAPI document of `resolved`, whose sinks publish to `brokers` (each with the place of
/// its sink in the pipeline, e.g. `sinks[0] (type: mqtt)`), as YAML.
pub fn document(resolved: &ResolvedPipeline, brokers: &[(String, BrokerEndpoint)]) -> String {
    let document = build(resolved, brokers);
    serde_yaml::to_string(&document).expect("the document is plain data")
}

fn build(resolved: &ResolvedPipeline, brokers: &[(String, BrokerEndpoint)]) -> Document {
    let topics = &resolved.config.topics;
    let kinds: Vec<(&Kind, &str)> = [
        (&ENTER, topics.enter.as_str()),
        (&MOVE, topics.moves.as_str()),
        (&EXIT, topics.exit.as_str()),
    ]
    .into_iter()
    .chain(topics.focus.as_deref().map(|focus| (&FOCUS, focus)))
    .chain(
        TRUTH
            .iter()
            .zip(topics.truth.topics())
            .enumerate()
            .filter(|(index, _)| {
                resolved.config.sensors.enabled && (*index < 3 || topics.focus.is_some())
            })
            .filter_map(|(_, (kind, topic))| Some((kind, topic?))),
    )
    .collect();

    // Brokers that address the topics alike share channels; each other addressing gets its own.
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new(); // (addresses, server names)
    let mut servers = BTreeMap::new();
    for (index, (place, broker)) in brokers.iter().enumerate() {
        let name = format!("{}-{index}", broker.protocol);
        let addresses: Vec<String> = kinds
            .iter()
            .map(|(_, topic)| (broker.address)(topic))
            .collect();
        match groups.iter_mut().find(|(seen, _)| *seen == addresses) {
            Some((_, names)) => names.push(name.clone()),
            None => groups.push((addresses, vec![name.clone()])),
        }
        servers.insert(
            name,
            Server {
                host: broker.host.clone(),
                protocol: broker.protocol.to_string(),
                protocol_version: broker.protocol_version.clone(),
                pathname: broker.pathname.clone(),
                description: format!("{place}: {}", broker.description),
            },
        );
    }
    if groups.is_empty() {
        // Sinks with no broker (stdout, live_view): the channels are the topics as written.
        let addresses = kinds.iter().map(|(_, topic)| topic.to_string()).collect();
        groups.push((addresses, Vec::new()));
    }

    let mut channels = BTreeMap::new();
    let mut operations = BTreeMap::new();
    for (group, (addresses, names)) in groups.iter().enumerate() {
        for ((kind, topic), address) in kinds.iter().zip(addresses) {
            let id = if group == 0 {
                kind.name.to_string()
            } else {
                format!("{}-{}", kind.name, group + 1)
            };
            channels.insert(
                id.clone(),
                Channel {
                    address: address.clone(),
                    description: format!("`topics.{}`: {topic}", topic_key(kind)),
                    messages: BTreeMap::from([(
                        kind.message.to_string(),
                        reference(format!("#/components/messages/{}", kind.message)),
                    )]),
                    servers: names
                        .iter()
                        .map(|name| reference(format!("#/servers/{name}")))
                        .collect(),
                    parameters: store_parameter(resolved, address),
                },
            );
            operations.insert(
                format!("publish-{id}"),
                Operation {
                    action: "send",
                    channel: reference(format!("#/channels/{id}")),
                    summary: format!("customersim publishes {} events.", kind.name),
                    messages: vec![reference(format!(
                        "#/channels/{id}/messages/{}",
                        kind.message
                    ))],
                },
            );
        }
    }

    let messages = kinds
        .iter()
        .filter(|(kind, _)| kind.name == kind.message)
        .map(|(kind, _)| (kind.name.to_string(), message(kind, resolved)))
        .collect();
    Document {
        asyncapi: ASYNCAPI_VERSION,
        info: Info {
            title: format!("customersim events of {}", resolved.origin),
            version: env!("CARGO_PKG_VERSION"),
            description: "Shoppers entering, moving through and leaving a retail store, as their \
                          location sensors report them. Payloads are JSON objects written as \
                          Python's json.dumps writes them (\", \" between members, \": \" after \
                          keys), keys in the order of the schemas."
                .to_string(),
        },
        default_content_type: "application/json",
        servers,
        channels,
        operations,
        components: Components { messages },
    }
}

/// The key of `topics:` that names a kind's topic.
fn topic_key(kind: &Kind) -> &'static str {
    kind.key
}

/// `{store}` in an address: its values are the fleet's store ids.
fn store_parameter(resolved: &ResolvedPipeline, address: &str) -> BTreeMap<String, Parameter> {
    if !address.contains(STORE_PLACEHOLDER) {
        return BTreeMap::new();
    }
    let ids: Vec<String> = resolved
        .fleet
        .ids()
        .iter()
        .map(|id| id.to_string())
        .collect();
    // A long list of ids is shown by example, not listed.
    let (values, examples) = if ids.len() <= 100 {
        (ids, Vec::new())
    } else {
        (Vec::new(), ids.into_iter().take(3).collect())
    };
    BTreeMap::from([(
        "store".to_string(),
        Parameter {
            description: "The id of the store the event happened in (`fleet:`).".to_string(),
            values,
            examples,
        },
    )])
}

/// The message of one kind: its payload schema and an example.
fn message(kind: &Kind, resolved: &ResolvedPipeline) -> Message {
    let layout = &resolved.layout;
    let id = json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_BYTES,
        "description": "The customer's id: decimal digits for generated shoppers (consumers parse \
                        it as an integer), the customer list's ids otherwise.",
    });
    let ts = json!({
        "type": "integer",
        "description": "Seconds since the Unix epoch (UTC) of the simulated moment.",
    });
    let coordinate = |axis: &str, extent: u32| {
        json!({
            "type": "integer",
            "description": format!(
                "{axis} in store coordinates: 0 to {} for simulated shoppers (the store is {extent} wide on this axis).",
                extent.saturating_sub(1)
            ),
        })
    };
    let (x, y) = (
        coordinate("x", layout.width()),
        coordinate("y", layout.height()),
    );
    let (entrance_x, entrance_y) = layout.entrance();
    let (payload, example) = match kind.name {
        "move" => (
            schema(&[("id", id), ("ts", ts), ("x", x), ("y", y)]),
            json!({"id": "997", "ts": 192326400, "x": entrance_x, "y": entrance_y}),
        ),
        "focus" => {
            let departments: Vec<&str> = layout
                .zones()
                .iter()
                .filter(|zone| zone.kind.as_str() == "department" && zone.focus)
                .map(|zone| zone.name.as_str())
                .collect();
            let mut dep = json!({
                "type": "string",
                "description": "The department (a zone of kind `department` of the layout that focus may name).",
            });
            if !departments.is_empty() {
                dep["enum"] = json!(departments);
            }
            let example_dep = departments.first().copied().unwrap_or("Women");
            (
                schema(&[("id", id), ("ts", ts), ("dep", dep), ("x", x), ("y", y)]),
                json!({"id": "3", "ts": 1700000000, "dep": example_dep, "x": entrance_x, "y": entrance_y}),
            )
        }
        _ => (
            schema(&[("id", id), ("ts", ts)]),
            json!({"id": "997", "ts": 192326400}),
        ),
    };
    Message {
        name: kind.name.to_string(),
        title: format!("{} event", kind.name),
        summary: kind.summary.to_string(),
        content_type: "application/json",
        payload,
        examples: vec![Example {
            name: format!("{}-example", kind.name),
            payload: example,
        }],
    }
}

/// A closed object schema: these properties, all required, nothing else.
fn schema(properties: &[(&str, Value)]) -> Value {
    let names: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    let properties: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| (name.to_string(), schema.clone()))
        .collect();
    json!({
        "type": "object",
        "required": names,
        "properties": properties,
        "additionalProperties": false,
    })
}
