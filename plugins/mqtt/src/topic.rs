//! What MQTT accepts as a topic name to publish to (MQTT 3.1.1 and 5, section 4.7), checked on
//! every name the pipeline resolves ([`customersim_plugin_api::Topics::check_each`]): a name the
//! broker refuses drops the connection, and the sink would reconnect and resend it forever.

use customersim_plugin_api::ResolvedTopic;

/// The longest topic name MQTT carries: its length is a 16-bit prefix on the wire.
pub const MAX_TOPIC_BYTES: usize = 65_535;

/// Why MQTT cannot publish to `topic`, if it cannot: empty; a wildcard (`+`, `#`: only for
/// subscribing); U+0000 or another control character (brokers such as Mosquitto close the
/// connection on them, as the specification allows); longer than [`MAX_TOPIC_BYTES`] of UTF-8.
pub fn check_topic_name(topic: &ResolvedTopic) -> Result<(), String> {
    let name = topic.name;
    if name.is_empty() {
        return Err("an MQTT topic cannot be empty".into());
    }
    if name.len() > MAX_TOPIC_BYTES {
        return Err(format!(
            "{} bytes, longer than the {MAX_TOPIC_BYTES} bytes an MQTT topic may have",
            name.len()
        ));
    }
    if let Some(wildcard) = name.chars().find(|c| matches!(c, '+' | '#')) {
        return Err(format!(
            "holds the wildcard {wildcard:?}, which MQTT allows only in subscriptions"
        ));
    }
    if let Some(control) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "holds the control character {control:?}, which MQTT brokers refuse"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str) -> Result<(), String> {
        check_topic_name(&ResolvedTopic {
            key: "move",
            store: None,
            name,
        })
    }

    #[test]
    fn wildcards_controls_and_long_names_are_refused() {
        assert!(check("store/berlin-mitte/customer/move").is_ok());
        assert!(check("ümlaut/ß").is_ok());
        assert!(check(&"a".repeat(MAX_TOPIC_BYTES)).is_ok());
        for bad in ["", "a/#", "a/+/b", "a\0b", "a\tb", "a\u{85}b"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        let long = check(&"é".repeat(MAX_TOPIC_BYTES / 2 + 1)).unwrap_err();
        assert!(long.contains("65535"), "{long}");
    }
}
