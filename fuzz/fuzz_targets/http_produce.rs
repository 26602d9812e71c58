//! `POST /produce_entry|move|exit` bodies: the first byte picks the endpoint, the rest is the
//! body. No input may panic; a refusal is a 4xx; an accepted event lies within years 1 to 9999
//! and its id within the length limit.
#![no_main]

use customersim_source_http_ingress::parse::{MAX_ID_BYTES, ProduceKind, produce};
use libfuzzer_sys::fuzz_target;

/// Milliseconds since the epoch of 0001-01-01 and of the end of 9999 (UTC).
const YEARS: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kind = match pick % 3 {
        0 => ProduceKind::Enter,
        1 => ProduceKind::Move,
        _ => ProduceKind::Exit,
    };
    match produce(body, kind) {
        Ok(event) => {
            assert!(YEARS.contains(&event.due_ms), "{event:?}");
            assert!(event.customer.to_string().len() <= MAX_ID_BYTES);
            let _ = event.payload();
        }
        Err(refused) => assert!((400..500).contains(&refused.status()), "{refused:?}"),
    }
});
