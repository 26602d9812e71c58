//! `expect:` and `delivery_check:` as written in the pipeline file, and the checked rules the
//! correlator runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plugin_api::duration;
use crate::plugin_api::{Event, EventKind};

/// One expectation: every event of a kind (optionally filtered by payload fields) expects a
/// reply of the system under test, on a topic of the broker a sink publishes to, whose field
/// equals the event's field, within a time.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    /// The rule's name in the summary, the run report, the live view and the JUnit file;
    /// default `expect[i]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which events expect a reply: `enter`, `move`, `exit` or `focus`. (Not `on:`, which YAML
    /// 1.1 tools read as `true`.)
    pub event: EventName,
    /// Only events whose payload field has one of the listed values (`dep: [Women, Boys]`);
    /// fields are the payload's members (`id`, `ts`, `dep`, `x`, `y`).
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, Vec<Scalar>>,
    /// The topic replies come on, as the system under test publishes it (`customer/prediction`;
    /// `{store}` is each store's id, so a shard reads only its own stores' replies).
    pub reply_topic: String,
    /// The path of the field in the reply's JSON that names the event answered, members joined
    /// by dots (`customer.id`); a number indexes an array.
    pub reply_field: String,
    /// The event's payload member the reply's field must equal (default `id`). Strings and
    /// numbers compare by their text, so `"7"` answers `7`.
    #[serde(default = "default_event_field")]
    pub event_field: String,
    /// How long the system under test has to answer, from the moment the event was published.
    #[serde(with = "duration::required")]
    pub within: Duration,
    /// How much longer a reply is still counted, as late, before the event counts as missing
    /// and the reply as unexpected; default: as long as `within`.
    #[serde(
        default,
        with = "duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub grace: Option<Duration>,
    /// A JSON Schema file every reply must pass (relative to the pipeline file); replies that
    /// fail it count as invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<PathBuf>,
    /// The sink (its position in `sinks:`, from 0) whose broker the replies come from; default:
    /// the one sink that can read back from its broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<usize>,
}

/// A value in `where:`: payload members are strings or integers.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    Integer(i64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Integer(number) => number.to_string(),
            Scalar::Text(text) => text.clone(),
        }
    }
}

fn default_event_field() -> String {
    "id".to_string()
}

/// `delivery_check:` reading back the events a sink published, to tell what the broker
/// delivered.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryCheckConfig {
    /// The sink (its position in `sinks:`, from 0) whose events are read back; default: the one
    /// sink that can read back from its broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<usize>,
    /// How long after publishing an event may take to come back before it counts as lost.
    #[serde(default = "default_delivery_window", with = "duration::required")]
    pub within: Duration,
    /// The most events waiting to come back at once; events published beyond it are not
    /// tracked (counted as `untracked`), so a broker that delivers nothing costs bounded memory.
    #[serde(default = "default_max_tracked")]
    pub max_tracked: usize,
}

fn default_delivery_window() -> Duration {
    Duration::from_secs(5)
}

/// A million events in flight: minutes of a busy broker's traffic, about 100 MB of bookkeeping.
fn default_max_tracked() -> usize {
    1_000_000
}

/// An event kind as rules name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventName {
    /// A shopper came in.
    Enter,
    /// A shopper's position.
    Move,
    /// A shopper left.
    Exit,
    /// The focus ground truth (`topics.focus`).
    Focus,
}

impl EventName {
    /// Whether `kind` is of this name.
    pub fn matches(self, kind: &EventKind) -> bool {
        matches!(
            (self, kind),
            (EventName::Enter, EventKind::Enter)
                | (EventName::Move, EventKind::Move { .. })
                | (EventName::Exit, EventKind::Exit)
                | (EventName::Focus, EventKind::Focus { .. })
        )
    }

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Enter => "enter",
            EventName::Move => "move",
            EventName::Exit => "exit",
            EventName::Focus => "focus",
        }
    }

    /// The payload members events of this kind have.
    fn members(self) -> &'static [&'static str] {
        match self {
            EventName::Enter | EventName::Exit => &["id", "ts"],
            EventName::Move => &["id", "ts", "x", "y"],
            EventName::Focus => &["id", "ts", "dep", "x", "y"],
        }
    }
}

/// A payload member of an event, as text (what a reply's field is compared with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    Id,
    Ts,
    Dep,
    X,
    Y,
}

impl Member {
    fn parse(name: &str) -> Option<Member> {
        Some(match name {
            "id" => Member::Id,
            "ts" => Member::Ts,
            "dep" => Member::Dep,
            "x" => Member::X,
            "y" => Member::Y,
            _ => return None,
        })
    }

    /// The member's name in the payload.
    pub fn name(self) -> &'static str {
        match self {
            Member::Id => "id",
            Member::Ts => "ts",
            Member::Dep => "dep",
            Member::X => "x",
            Member::Y => "y",
        }
    }

    /// The member's value in `event`, as text; `None` when the event has no such member.
    pub fn text(self, event: &Event) -> Option<String> {
        let position = match event.kind {
            EventKind::Move { x, y } | EventKind::Focus { x, y, .. } => Some((x, y)),
            EventKind::Enter | EventKind::Exit => None,
        };
        match self {
            Member::Id => Some(event.customer.to_string()),
            Member::Ts => Some(event.ts().to_string()),
            Member::Dep => match event.kind {
                EventKind::Focus { dep, .. } => Some(dep.to_string()),
                _ => None,
            },
            Member::X => position.map(|(x, _)| x.to_string()),
            Member::Y => position.map(|(_, y)| y.to_string()),
        }
    }
}

/// A path into a reply's JSON: members, or array positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    fn parse(text: &str) -> Result<FieldPath, String> {
        let steps: Vec<String> = text.split('.').map(str::to_string).collect();
        if steps.iter().any(String::is_empty) {
            return Err(format!(
                "{text:?} is not a field path (members joined by dots, e.g. customer.id)"
            ));
        }
        Ok(FieldPath(steps))
    }

    /// The field's value as text (strings as they are, numbers and booleans as JSON writes
    /// them); `None` when the reply has no such field or it is an object, array or null.
    pub fn text(&self, reply: &serde_json::Value) -> Option<String> {
        let mut at = reply;
        for step in &self.0 {
            at = match at {
                serde_json::Value::Object(members) => members.get(step)?,
                serde_json::Value::Array(items) => items.get(step.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        match at {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            serde_json::Value::Bool(value) => Some(value.to_string()),
            _ => None,
        }
    }
}

impl FieldPath {
    /// The field's value as text, read straight from a reply's bytes: serde_json walks the
    /// document and skips every member off the path without building it, so a reply costs no
    /// allocation beyond the key. `Err` when the bytes are not JSON.
    pub fn read(&self, payload: &[u8]) -> Result<Option<String>, serde_json::Error> {
        use serde::de::DeserializeSeed;
        let mut reader = serde_json::Deserializer::from_slice(payload);
        let found = Walk(&self.0).deserialize(&mut reader)?;
        reader.end()?;
        Ok(found)
    }
}

/// Follows the rest of a [`FieldPath`] through a JSON value.
struct Walk<'p>(&'p [String]);

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.split_first() {
                Some((step, rest)) if found.is_none() && key == step.as_str() => {
                    found = map.next_value_seed(Walk(rest))?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let wanted = self
            .0
            .split_first()
            .and_then(|(step, rest)| step.parse::<usize>().ok().map(|index| (index, rest)));
        let mut found = None;
        let mut index = 0;
        loop {
            let item = match wanted {
                Some((position, rest)) if position == index => seq.next_element_seed(Walk(rest))?,
                _ => seq.next_element::<serde::de::IgnoredAny>()?.map(|_| None),
            };
            match item {
                Some(value) => {
                    if value.is_some() {
                        found = value;
                    }
                }
                None => return Ok(found),
            }
            index += 1;
        }
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| text.to_string()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| number.to_string()))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| number.to_string()))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| {
            serde_json::Number::from_f64(number)
                .map_or_else(|| number.to_string(), |n| n.to_string())
        }))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| value.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A checked expectation.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `name:` or `expect[i]`.
    pub name: String,
    pub on: EventName,
    /// Member and the texts it may have; all must hold.
    pub filter: Vec<(Member, Vec<String>)>,
    pub reply_topic: String,
    pub reply_field: FieldPath,
    pub event_field: Member,
    pub within: Duration,
    pub grace: Duration,
    pub schema: Option<PathBuf>,
    pub sink: Option<usize>,
}

impl Rule {
    /// Whether `event` expects a reply under this rule.
    pub fn selects(&self, event: &Event) -> bool {
        self.on.matches(&event.kind)
            && self.filter.iter().all(|(member, allowed)| {
                member
                    .text(event)
                    .is_some_and(|text| allowed.contains(&text))
            })
    }

    /// The key a reply must carry to answer `event`.
    pub fn key(&self, event: &Event) -> Option<String> {
        self.event_field.text(event)
    }
}

/// Checks the `expect:` entries; an error names the key (`expect[0].reply_field`).
pub fn check_rules(entries: &[ExpectConfig]) -> Result<Vec<Rule>, (String, String)> {
    let mut names = std::collections::HashSet::new();
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let place = |key: &str| format!("expect[{index}].{key}");
            let name = entry
                .name
                .clone()
                .unwrap_or_else(|| format!("expect[{index}]"));
            if name.trim().is_empty() || name.len() > 100 {
                return Err((place("name"), "must be 1 to 100 characters".to_string()));
            }
            if !names.insert(name.clone()) {
                return Err((
                    place("name"),
                    format!("{name:?} is the name of an earlier rule"),
                ));
            }
            let member = |key: &str, text: &str| {
                Member::parse(text)
                    .filter(|_| entry.event.members().contains(&text))
                    .ok_or_else(|| {
                        (
                            place(key),
                            format!(
                                "{text:?} is not a member of {} events (they have {})",
                                entry.event.as_str(),
                                entry.event.members().join(", ")
                            ),
                        )
                    })
            };
            let event_field = member("event_field", &entry.event_field)?;
            let filter = entry
                .filter
                .iter()
                .map(|(field, values)| {
                    let member = member(&format!("where.{field}"), field)?;
                    let texts: Vec<String> = values.iter().map(Scalar::text).collect();
                    if texts.is_empty() {
                        return Err((
                            place(&format!("where.{field}")),
                            "lists no value, so no event would expect a reply".to_string(),
                        ));
                    }
                    Ok((member, texts))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let reply_field =
                FieldPath::parse(&entry.reply_field).map_err(|why| (place("reply_field"), why))?;
            if entry.reply_topic.trim().is_empty() {
                return Err((place("reply_topic"), "is empty".to_string()));
            }
            if entry.within.is_zero() {
                return Err((
                    place("within"),
                    "must be longer than 0 (no reply is ever in time)".to_string(),
                ));
            }
            if entry.within > MAX_WINDOW || entry.grace.is_some_and(|grace| grace > MAX_WINDOW) {
                return Err((
                    place(if entry.within > MAX_WINDOW {
                        "within"
                    } else {
                        "grace"
                    }),
                    format!(
                        "at most {}: every event waits this long in memory",
                        humantime_text(MAX_WINDOW)
                    ),
                ));
            }
            Ok(Rule {
                name,
                on: entry.event,
                filter,
                reply_topic: entry.reply_topic.clone(),
                reply_field,
                event_field,
                within: entry.within,
                grace: entry.grace.unwrap_or(entry.within),
                schema: entry.schema.clone(),
                sink: entry.sink,
            })
        })
        .collect()
}

/// The longest `within` or `grace`: events wait that long in memory before they are decided,
/// so an hour at a high rate is already many of them.
pub const MAX_WINDOW: Duration = Duration::from_secs(3_600);

fn humantime_text(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_api::CustomerId;

    fn rule(yaml: &str) -> Result<Vec<Rule>, (String, String)> {
        let entries: Vec<ExpectConfig> = serde_yaml::from_str(yaml).unwrap();
        check_rules(&entries)
    }

    fn focus(id: u64, dep: &'static str) -> Event {
        Event {
            due_ms: 1_700_000_000_500,
            customer: CustomerId::Number(id),
            kind: EventKind::Focus { dep, x: 4, y: 5 },
            store: 0,
            stamp: Default::default(),
        }
    }

    #[test]
    fn a_rule_selects_by_kind_and_filter_and_keys_by_the_event_field() {
        let rules = rule(
            "- {event: focus, where: {dep: [Boys, Women]}, reply_topic: customer/prediction, reply_field: customer.id, within: 2s}",
        )
        .unwrap();
        let rule = &rules[0];
        assert_eq!(rule.name, "expect[0]");
        assert_eq!(rule.grace, Duration::from_secs(2));
        assert!(rule.selects(&focus(7, "Boys")));
        assert!(!rule.selects(&focus(7, "Restrooms")));
        assert_eq!(rule.key(&focus(7, "Boys")).as_deref(), Some("7"));
        let reply: serde_json::Value =
            serde_json::from_str(r#"{"customer": {"id": "7"}, "coupon": {"id": 1}}"#).unwrap();
        assert_eq!(rule.reply_field.text(&reply).as_deref(), Some("7"));
        let numeric: serde_json::Value =
            serde_json::from_str(r#"{"customer": {"id": 7}}"#).unwrap();
        assert_eq!(rule.reply_field.text(&numeric).as_deref(), Some("7"));
        let none: serde_json::Value = serde_json::from_str(r#"{"customer": 7}"#).unwrap();
        assert_eq!(rule.reply_field.text(&none), None);
        // Read from the bytes, the same answers, and an error for what is not JSON.
        let read = |text: &str| rule.reply_field.read(text.as_bytes());
        assert_eq!(
            read(r#"{"a": [1, {"b": 2}], "customer": {"x": null, "id": "7"}}"#)
                .unwrap()
                .as_deref(),
            Some("7")
        );
        assert_eq!(
            read(r#"{"customer": {"id": 7.5}}"#).unwrap().as_deref(),
            Some("7.5")
        );
        assert_eq!(read(r#"{"customer": 7}"#).unwrap(), None);
        assert_eq!(read(r#"{"customer": {"id": {"deep": 1}}}"#).unwrap(), None);
        assert!(read(r#"{"customer": {"id": "7"}"#).is_err());
        assert!(read(r#"{"customer": {"id": "7"}} trailing"#).is_err());
        assert!(read("not json").is_err());
        let indexed = FieldPath::parse("items.1.id").unwrap();
        assert_eq!(
            indexed
                .read(br#"{"items": [{"id": 1}, {"id": 2}]}"#)
                .unwrap()
                .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn bad_rules_name_their_key() {
        let cases = [
            (
                "- {event: enter, reply_topic: r, reply_field: a, event_field: dep, within: 1s}",
                "expect[0].event_field",
                "\"dep\" is not a member of enter events (they have id, ts)",
            ),
            (
                "- {event: focus, where: {shelf: [a]}, reply_topic: r, reply_field: a, within: 1s}",
                "expect[0].where.shelf",
                "not a member of focus events",
            ),
            (
                "- {event: focus, reply_topic: r, reply_field: a..b, within: 1s}",
                "expect[0].reply_field",
                "is not a field path",
            ),
            (
                "- {event: focus, reply_topic: r, reply_field: a, within: 0s}",
                "expect[0].within",
                "must be longer than 0",
            ),
            (
                "- {event: focus, reply_topic: r, reply_field: a, within: 2h}",
                "expect[0].within",
                "at most 3600s",
            ),
            (
                "- {name: a, event: focus, reply_topic: r, reply_field: a, within: 1s}\n- {name: a, event: move, reply_topic: r, reply_field: a, within: 1s}",
                "expect[1].name",
                "name of an earlier rule",
            ),
        ];
        for (yaml, key, why) in cases {
            let (got_key, got_why) = rule(yaml).unwrap_err();
            assert_eq!(got_key, key, "{yaml}");
            assert!(got_why.contains(why), "{yaml}: {got_why}");
        }
    }
}
