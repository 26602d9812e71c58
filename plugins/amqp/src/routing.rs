//! Where each event goes on the broker: the routing key of its kind, made once from the
//! pipeline's topics by replacing `/` with `.` (`customer/move` → `customer.move`), the mapping
//! of RabbitMQ's own MQTT plugin, so MQTT and AMQP consumers of one broker see the same stream.

use customersim_plugin_api::{EventKind, PluginError, Topics};

/// The routing key of each kind of event: its topic with `/` replaced by `.`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingKeys {
    /// Indexed by [`kind_index`].
    pub keys: [String; 4],
}

impl RoutingKeys {
    /// The routing keys of the pipeline's topics.
    pub fn new(topics: &Topics) -> Result<RoutingKeys, PluginError> {
        let keys = [
            routing_key(&topics.enter),
            routing_key(&topics.moves),
            routing_key(&topics.exit),
            routing_key(topics.for_kind(&EventKind::Focus {
                dep: "",
                x: 0,
                y: 0,
            })),
        ];
        if let Some(long) = keys.iter().find(|key| key.len() > 255) {
            return Err(PluginError::Config(format!(
                "topic {long:?} is longer than the 255 bytes an AMQP routing key may have"
            )));
        }
        Ok(RoutingKeys { keys })
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
        let focus = Topics {
            focus: Some("store/7/focus".into()),
            ..Topics::default()
        };
        assert_eq!(RoutingKeys::new(&focus).unwrap().keys[3], "store.7.focus");
        assert_eq!(routing_key("a/b/c"), "a.b.c");
    }
}
