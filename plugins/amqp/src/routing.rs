//! Where each event goes on the broker: the routing key of its kind, made once from the
//! pipeline's topics by replacing `/` with `.` (`customer/move` → `customer.move`), the mapping
//! of RabbitMQ's own MQTT plugin, so MQTT and AMQP consumers of one broker see the same stream.

use customersim_plugin_api::{Event, EventKind, PluginError, Topics};

/// The routing key of each kind of event: its topic with `/` replaced by `.`; with `{store}` in
/// the topics, one set per store of the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingKeys {
    /// Four per store (one set when no topic names the store), indexed by [`RoutingKeys::index`].
    pub keys: Vec<String>,
}

impl RoutingKeys {
    /// The routing keys of the pipeline's topics.
    pub fn new(topics: &Topics) -> Result<RoutingKeys, PluginError> {
        let keys: Vec<String> = topics
            .all_stores()
            .iter()
            .flat_map(|store| store.iter().map(|topic| routing_key(topic)))
            .collect();
        if let Some(long) = keys.iter().find(|key| key.len() > 255) {
            return Err(PluginError::Config(format!(
                "topic {long:?} is longer than the 255 bytes an AMQP routing key may have"
            )));
        }
        Ok(RoutingKeys { keys })
    }

    /// Where `event`'s routing key is in [`RoutingKeys::keys`] (a store the fleet does not have
    /// gets the first store's).
    pub fn index(&self, event: &Event) -> u32 {
        let stores = (self.keys.len() / 4) as u32;
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
    fn routing_keys_follow_the_mqtt_plugin_mapping() {
        let keys = RoutingKeys::new(&Topics::default()).unwrap();
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
        let keys = RoutingKeys::new(&per_store).unwrap();
        let event = Event {
            due_ms: 0,
            customer: 1.into(),
            kind: EventKind::Move { x: 0, y: 0 },
            store: 1,
        };
        assert_eq!(keys.keys[keys.index(&event) as usize], "store.b.move");
        let focus = Topics {
            focus: Some("store/7/focus".into()),
            ..Topics::default()
        };
        assert_eq!(RoutingKeys::new(&focus).unwrap().keys[3], "store.7.focus");
        assert_eq!(routing_key("a/b/c"), "a.b.c");
    }
}
