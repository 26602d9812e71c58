//! Arbitrary topic templates and fleet store ids through the very functions a run uses: the
//! fleet's check of its ids (`Fleet::new`), the `{store}` substitution (`Topics::for_fleet`) and
//! each protocol's check of the resolved names (the mqtt sink's `check_topic_name`, the amqp
//! sink's `RoutingKeys::new`). The input is split at 0xFF bytes (never in UTF-8): the enter, move,
//! exit and focus templates (an empty focus: none), then up to 64 store ids. Whatever a check
//! accepts, every topic an event of the fleet is published to must obey its protocol: MQTT
//! names non-empty, without `+`, `#`, NUL or control characters, at most 65,535 bytes; AMQP
//! routing keys at most 255 bytes; no store id with `/`. No panic, no hang.
#![no_main]

use customersim::plugin_api::{CustomerId, Event, EventKind, Fleet, Shard, Topics};
use customersim_sink_amqp::{MAX_ROUTING_KEY_BYTES, RoutingKeys, check_routing_key, routing_key};
use customersim_sink_mqtt::{MAX_TOPIC_BYTES, check_topic_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data
        .split(|byte| *byte == 0xFF)
        .map(|part| String::from_utf8_lossy(part).into_owned());
    let mut template = || parts.next().unwrap_or_default();
    let topics = Topics {
        enter: template(),
        moves: template(),
        exit: template(),
        focus: Some(template()).filter(|focus| !focus.is_empty()),
        ..Topics::default()
    };
    let ids: Vec<String> = parts.take(64).collect();
    let fleet = if ids.is_empty() {
        Fleet::single()
    } else {
        match Fleet::new(ids, Shard::default()) {
            Ok(fleet) => fleet,
            Err(_) => return,
        }
    };
    assert!(fleet.ids().iter().all(|id| !id.contains('/')));
    let topics = topics.for_fleet(&fleet);
    let mqtt = topics.check_each(&fleet, check_topic_name).is_ok();
    let amqp = RoutingKeys::new(&topics, &fleet).ok();
    assert_eq!(
        amqp.is_some(),
        topics.check_each(&fleet, check_routing_key).is_ok()
    );
    let kinds = [
        EventKind::Enter,
        EventKind::Move { x: 0, y: 0 },
        EventKind::Exit,
        EventKind::Focus {
            dep: "d",
            x: 0,
            y: 0,
        },
    ];
    for store in 0..fleet.len() as u32 {
        for kind in &kinds {
            let event = Event {
                due_ms: 0,
                customer: CustomerId::Number(1),
                kind: *kind,
                store,
                stamp: Default::default(),
            };
            let topic = topics.for_event(&event);
            if mqtt {
                assert!(!topic.is_empty() && topic.len() <= MAX_TOPIC_BYTES, "{topic:?}");
                assert!(
                    !topic.chars().any(|c| c == '+' || c == '#' || c.is_control()),
                    "{topic:?}"
                );
            }
            if let Some(keys) = &amqp {
                let key = &keys.keys[keys.index(&event) as usize];
                assert_eq!(key, &routing_key(&topic));
                assert!(key.len() <= MAX_ROUTING_KEY_BYTES, "{key:?}");
            }
        }
    }
});
