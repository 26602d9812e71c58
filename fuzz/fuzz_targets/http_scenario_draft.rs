//! `POST /scenario_draft` bodies: the first 8 bytes are "now" in µs (clamped to years 1 to 9999), the
//! rest is the body. No input may panic; a refusal is a 4xx; an accepted draft has at most
//! `max_events` events, in time order, within years 1 to 9999, answered step for step.
#![no_main]

use customersim_source_http_ingress::parse::{Doors, Limits, draft};
use libfuzzer_sys::fuzz_target;

const YEARS: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, body) = data.split_at(8);
    let now_us = i64::from_le_bytes(head.try_into().unwrap())
        .clamp(*YEARS.start() * 1000, *YEARS.end() * 1000 + 999);
    let doors = Doors {
        entrance: (0, 0),
        exit: (5, 9),
    };
    let limits = Limits { max_events: 64 };
    match draft(body, now_us, doors, &limits) {
        Ok(expanded) => {
            assert!(expanded.events.len() <= limits.max_events);
            assert_eq!(expanded.events.len(), expanded.steps.len());
            for pair in expanded.events.windows(2) {
                assert!(pair[0].due_ms <= pair[1].due_ms, "{pair:?}");
            }
            for event in &expanded.events {
                assert!(YEARS.contains(&event.due_ms), "{event:?}");
                let _ = event.payload();
            }
            let _ = expanded.answer();
        }
        Err(refused) => assert!((400..500).contains(&refused.status()), "{refused:?}"),
    }
});
