//! Maps keyed by shopper (store and id), for the stages that look one up per event.
//!
//! The standard hasher (SipHash) cost about a tenth of a `--speed max` run in each such stage;
//! a multiply-mix of the key's words, keyed per map at random (so ids posted over HTTP cannot be
//! chosen to collide), costs a few cycles.

use hashbrown::HashMap;

use crate::event::CustomerId;
use crate::fleet::StoreIndex;

/// A map from a shopper to what a stage remembers of them.
pub(crate) type ShopperMap<V> = HashMap<(StoreIndex, CustomerId), V, KeyedState>;

/// Asks the processor to fetch the entry of `store`'s `customer` in `map`, without waiting for
/// it: a stage that looks up each event's shopper, in an order that is no order in memory, calls
/// this a few events ahead, so the lookup finds the entry cached. (The probe reads the table's
/// control bytes and hints each candidate entry; it compares no key.)
#[inline]
pub(crate) fn fetch_early<V>(map: &ShopperMap<V>, store: StoreIndex, customer: &CustomerId) {
    use std::hash::BuildHasher;
    let hash = map.hasher().hash_one((store, customer));
    map.raw_entry().from_hash(hash, |candidate| {
        crate::ahead::prefetch(candidate);
        false
    });
}

/// The hasher of [`ShopperMap`] (see the module's documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyedState(u64);

impl Default for KeyedState {
    fn default() -> KeyedState {
        use std::hash::BuildHasher;
        KeyedState(std::collections::hash_map::RandomState::new().hash_one(0x5e25_0125_u64) | 1)
    }
}

impl std::hash::BuildHasher for KeyedState {
    type Hasher = Keyed;

    fn build_hasher(&self) -> Keyed {
        Keyed(self.0)
    }
}

/// See [`KeyedState`].
pub(crate) struct Keyed(u64);

impl Keyed {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

impl std::hash::Hasher for Keyed {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
