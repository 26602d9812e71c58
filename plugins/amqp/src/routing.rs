//! Where each event goes on the broker: the routing key of its kind, made once from the
//! pipeline's topics by replacing `/` with `.` (`customer/move` → `customer.move`), the mapping
//! of RabbitMQ's own MQTT plugin, so MQTT and AMQP consumers of one broker see the same stream.

use customersim_plugin_api::{Event, EventKind, Fleet, PluginError, ResolvedTopic, Topics};

/// The longest routing key AMQP 0-9-1 carries (a short string: one length byte).
pub const MAX_ROUTING_KEY_BYTES: usize = 255;

/// Why `topic` cannot be an AMQP routing key, if it cannot: its key (`/` → `.`) is longer than
/// [`MAX_ROUTING_KEY_BYTES`], or a store id with a `.` would add a level to it (as a `/` would
/// to an MQTT topic, which the fleet refuses for every sink).
pub fn check_routing_key(topic: &ResolvedTopic) -> Result<(), String> {
    // `/` → `.` keeps the length.
    if topic.name.len() > MAX_ROUTING_KEY_BYTES {
        return Err(format!(
            "{} bytes, longer than the {MAX_ROUTING_KEY_BYTES} bytes an AMQP routing key may have",
            topic.name.len()
        ));
    }
    if let Some(store) = topic.store
        && store.contains('.')
    {
        return Err(
            "the store id holds a `.`, which would add a level to the AMQP routing key".into(),
        );
    }
    Ok(())
}

/// The routing key of each kind of event: its topic with `/` replaced by `.`; with `{store}` in
/// the topics, one set per store of the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingKeys {
    /// Four per store (one set when no topic names the store), indexed by [`RoutingKeys::index`].
    pub keys: Vec<String>,
    /// Where the keys of the truth topics (`topics.truth.*`, four, each kind's own topic's when
    /// unset) start in `keys`; `None` without truth topics.
    pub truth_from: Option<u32>,
}

impl RoutingKeys {
    /// The routing keys of the pipeline's topics for `fleet`'s stores, each checked
    /// ([`check_routing_key`]).
    pub fn new(topics: &Topics, fleet: &Fleet) -> Result<RoutingKeys, PluginError> {
        topics.check_each(fleet, check_routing_key)?;
        let mut keys: Vec<String> = topics
            .all_stores()
            .iter()
            .flat_map(|store| store.iter().map(|topic| routing_key(topic)))
            .collect();
        let truth_from = (!topics.truth.is_empty()).then(|| {
            let from = keys.len() as u32;
            let own = topics.patterns();
            for (kind, truth) in topics.truth.topics().into_iter().enumerate() {
                keys.push(routing_key(truth.unwrap_or(&own[kind])));
            }
            from
        });
        Ok(RoutingKeys { keys, truth_from })
    }

    /// Where `event`'s routing key is in [`RoutingKeys::keys`] (a store the fleet does not have
    /// gets the first store's).
    pub fn index(&self, event: &Event) -> u32 {
        if let Some(from) = self.truth_from
            && event.stamp.truth
        {
            return from + u32::from(kind_index(&event.kind));
        }
        let stores = (self.truth_from.unwrap_or(self.keys.len() as u32)) / 4;
        let store = if event.store < stores { event.store } else { 0 };
        store * 4 + u32::from(kind_index(&event.kind))
    }
}

/// `customer/move` → `customer.move` (RabbitMQ's MQTT plugin mapping).
pub fn routing_key(topic: &str) -> String {
    topic.replace('/', ".")
}

/// 0, 1, 2, 3 for enter, move, exit, focus.
pub fn kind_index(kind: &EventKind) -> u8 {
    match kind {
        EventKind::Enter => 0,
        EventKind::Move { .. } => 1,
        EventKind::Exit => 2,
        EventKind::Focus { .. } => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_copies_get_the_truth_routing_keys() {
        let topics = Topics {
            truth: customersim_plugin_api::TruthTopics {
                moves: Some("truth/move".into()),
                ..Default::default()
            },
            ..Topics::default()
        };
        let keys = RoutingKeys::new(&topics, &customersim_plugin_api::Fleet::single()).unwrap();
        let mut event = Event {
            due_ms: 0,
            customer: 1.into(),
            kind: EventKind::Move { x: 0, y: 0 },
            store: 0,
            stamp: Default::default(),
        };
        assert_eq!(keys.keys[keys.index(&event) as usize], "customer.move");
        event.stamp.truth = true;
        assert_eq!(keys.keys[keys.index(&event) as usize], "truth.move");
        // A kind without a truth topic keeps its own.
        event.kind = EventKind::Exit;
        assert_eq!(keys.keys[keys.index(&event) as usize], "customer.exit");
    }

    #[test]
    fn routing_keys_follow_the_mqtt_plugin_mapping() {
        let keys =
            RoutingKeys::new(&Topics::default(), &customersim_plugin_api::Fleet::single()).unwrap();
        assert_eq!(
            keys.keys,
            [
                "customer.enter",
                "customer.move",
                "customer.exit",
                "customer.focus"
            ]
            .map(String::from)
        );
        let fleet =
            customersim_plugin_api::Fleet::new(vec!["a".into(), "b".into()], Default::default())
                .unwrap();
        let per_store = Topics {
            moves: "store/{store}/move".into(),
            ..Topics::default()
        }
        .for_fleet(&fleet);
        let keys = RoutingKeys::new(&per_store, &fleet).unwrap();
        let event = Event {
            due_ms: 0,
            customer: 1.into(),
            kind: EventKind::Move { x: 0, y: 0 },
            store: 1,
            stamp: Default::default(),
        };
        assert_eq!(keys.keys[keys.index(&event) as usize], "store.b.move");
        let focus = Topics {
            focus: Some("store/7/focus".into()),
            ..Topics::default()
        };
        assert_eq!(
            RoutingKeys::new(&focus, &customersim_plugin_api::Fleet::single())
                .unwrap()
                .keys[3],
            "store.7.focus"
        );
        assert_eq!(routing_key("a/b/c"), "a.b.c");
    }

    #[test]
    fn long_keys_and_dotted_store_ids_are_refused_naming_the_store() {
        let fleet = customersim_plugin_api::Fleet::new(
            vec!["ok".into(), "x".repeat(300)],
            Default::default(),
        )
        .unwrap();
        let topics = Topics {
            enter: "s/{store}/enter".into(),
            ..Topics::default()
        }
        .for_fleet(&fleet);
        let why = RoutingKeys::new(&topics, &fleet).unwrap_err().to_string();
        assert!(
            why.contains("topics.enter") && why.contains("(store \"xxx") && why.contains("255"),
            "{why}"
        );
        let fleet =
            customersim_plugin_api::Fleet::new(vec!["a.b".into()], Default::default()).unwrap();
        let topics = topics.for_fleet(&fleet);
        let why = RoutingKeys::new(&topics, &fleet).unwrap_err().to_string();
        assert!(why.contains("\"a.b\"") && why.contains('.'), "{why}");
        let long_static = Topics {
            exit: "e".repeat(256),
            ..Topics::default()
        };
        assert!(RoutingKeys::new(&long_static, &customersim_plugin_api::Fleet::single()).is_err());
    }
}
