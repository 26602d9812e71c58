//! `POST /scenario[?recalculate_time=true]` bodies: the first byte says whether to recalculate
//! the time (to a "now" taken from the next 8 bytes, clamped to years 1 to 9999), the rest is the
//! body. No input may panic; a refusal is a 4xx; accepted events lie within years 1 to 9999, are
//! at most `max_events`, one per step.
#![no_main]

use customersim_source_http_ingress::parse::{Limits, scenario};
use libfuzzer_sys::fuzz_target;

const YEARS: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, body) = data.split_at(9);
    let now = i64::from_le_bytes(head[1..9].try_into().unwrap())
        .clamp(*YEARS.start(), *YEARS.end());
    let recalculate = (head[0] & 1 == 1).then_some(now);
    let limits = Limits { max_events: 64 };
    match scenario(body, recalculate, &limits) {
        Ok(events) => {
            assert!(events.len() <= limits.max_events);
            for event in &events {
                assert!(YEARS.contains(&event.due_ms), "{event:?}");
                let _ = event.payload();
            }
            if let (Some(now), Some(first)) = (recalculate, events.iter().map(|e| e.due_ms).min())
            {
                assert_eq!(first, now);
            }
        }
        Err(refused) => assert!((400..500).contains(&refused.status()), "{refused:?}"),
    }
});
