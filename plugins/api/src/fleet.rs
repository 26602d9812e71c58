//! A chain of stores: the fleet a pipeline simulates and the part of it (the shard) this process
//! runs.
//!
//! Every store of a fleet has the same layout and its own shoppers. What a store generates depends
//! only on the run's seed, the config and the store itself (its id and its position in the
//! fleet), never on which or how many other stores run in the process, so the fleet can be split
//! over processes ([`Shard`]) and the union of their outputs is the one-process run, event for
//! event. Events carry their store's position ([`crate::Event::store`]); `{store}` in a topic
//! becomes the store's id ([`crate::Topics::for_event`]).
//!
//! Without a `fleet:` section a pipeline is one store, exactly as before fleets existed: its seed,
//! its generated ids and its topics are unchanged ([`Fleet::single`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::derive_seed;
use crate::event::CustomerId;

/// Where a store is in its fleet: 0 for the first store of the `fleet:` list (and for the one
/// store of a pipeline without a fleet). Events carry it, so sinks find the store's topics.
pub type StoreIndex = u32;

/// Generated shopper ids of store `n` (its position + 1) are `n × ID_BLOCK + serial`, so they are
/// unique across the fleet, stay decimal digits, and show the store: store 7's 17th shopper is
/// `7000000017`. A store's serials stay below this block size.
pub const ID_BLOCK: u64 = 1_000_000_000;

/// The most stores a fleet may have (`fleet.stores`). Every store costs its topics, its
/// shopper model and its figures, about 7 KiB, in every process of the fleet: a short run of
/// 10,000 stores peaks near 90 MiB (100,000 took 700 MiB, 1,000,000 aborted at 3.7 GB). A bigger
/// chain is several pipelines.
pub const MAX_STORES: usize = 10_000;

/// The stores of the pipeline and the shard of them this process runs. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fleet {
    /// Store ids in fleet order (position = [`StoreIndex`]).
    ids: Arc<[Arc<str>]>,
    /// Whether a `fleet:` section made these stores (`false`: one store, as without fleets).
    configured: bool,
    shard: Shard,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::single()
    }
}

impl Fleet {
    /// A pipeline without a fleet: one store (id `1`), whose seed and ids are the pipeline's own,
    /// so its output is that of a pipeline from before fleets existed.
    pub fn single() -> Fleet {
        Fleet {
            ids: Arc::from([Arc::from("1")]),
            configured: false,
            shard: Shard::default(),
        }
    }

    /// The fleet of these store ids (in order; each non-empty, unique and without `/`; at most
    /// [`MAX_STORES`]), run by `shard`.
    pub fn new(ids: Vec<String>, shard: Shard) -> Result<Fleet, String> {
        if ids.is_empty() {
            return Err("a fleet needs at least one store".into());
        }
        if ids.len() > MAX_STORES {
            return Err(format!(
                "{} stores, more than the {MAX_STORES} a fleet may have",
                ids.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (position, id) in ids.iter().enumerate() {
            if id.trim().is_empty() {
                return Err(format!("store {position} has an empty id"));
            }
            if id.contains('/') {
                // `{store}` in a topic would get one more level than the topic shows.
                return Err(format!(
                    "store id {} holds a `/`, which would add a level to its topics",
                    crate::excerpt(id)
                ));
            }
            if !seen.insert(id.as_str()) {
                return Err(format!("store id {} is given twice", crate::excerpt(id)));
            }
        }
        Ok(Fleet {
            ids: ids.into_iter().map(Arc::from).collect(),
            configured: true,
            shard,
        })
    }

    /// The same stores, run by another shard.
    pub fn with_shard(mut self, shard: Shard) -> Fleet {
        self.shard = shard;
        self
    }

    /// Whether a `fleet:` section defines the stores (otherwise: one store, as before fleets).
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    /// How many stores the whole fleet has (all shards).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always `false`: a fleet has at least one store.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the store at `index` (what `{store}` in a topic becomes).
    pub fn id(&self, index: StoreIndex) -> &str {
        &self.ids[index as usize]
    }

    /// Every store id, in fleet order.
    pub fn ids(&self) -> &[Arc<str>] {
        &self.ids
    }

    /// The position of the store with this id.
    pub fn index_of(&self, id: &str) -> Option<StoreIndex> {
        self.ids
            .iter()
            .position(|known| &**known == id)
            .map(|index| index as StoreIndex)
    }

    /// The shard this process runs.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Whether this process runs the store at `index`: store positions are dealt to shards in
    /// turn (`index mod count == shard`).
    pub fn runs(&self, index: StoreIndex) -> bool {
        self.shard.owns(index)
    }

    /// The stores this process runs, in fleet order.
    pub fn local_stores(&self) -> impl Iterator<Item = StoreIndex> + '_ {
        (0..self.ids.len() as StoreIndex).filter(|index| self.runs(*index))
    }

    /// The seed of one store's random streams, from the seed a source got: the store's id mixed
    /// in, so a store's shoppers do not depend on the other stores. Without a fleet, `seed`
    /// itself (the output of a one-store pipeline is unchanged).
    pub fn store_seed(&self, seed: u64, index: StoreIndex) -> u64 {
        if self.configured {
            derive_seed(seed, stable_hash(self.id(index).as_bytes()))
        } else {
            seed
        }
    }

    /// The generated id of a store's `serial`-th shopper (from 1): `serial` without a fleet,
    /// `(index + 1) × ID_BLOCK + serial` with one (see [`ID_BLOCK`]).
    pub fn shopper_number(&self, index: StoreIndex, serial: u64) -> u64 {
        self.id_base(index) + serial
    }

    /// What a store's serials are added to for its generated ids: 0 without a fleet,
    /// `(index + 1) × ID_BLOCK` with one.
    pub fn id_base(&self, index: StoreIndex) -> u64 {
        if self.configured {
            (u64::from(index) + 1) * ID_BLOCK
        } else {
            0
        }
    }

    /// The home store of a listed customer: the store named by its `store` column when the list
    /// has one (`None` when that names no store of the fleet), otherwise a stable hash of its id
    /// (the same in every process and run).
    pub fn home_store(&self, customer: &str, store_column: Option<&str>) -> Option<StoreIndex> {
        match store_column {
            Some(store) => self.index_of(store),
            None => Some((stable_hash(customer.as_bytes()) % self.ids.len() as u64) as StoreIndex),
        }
    }
}

/// FNV-1a, 64 bits: a hash that never changes between processes, versions or platforms (std's
/// hashers are randomised or unspecified), for store seeds and home stores.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Which part of the fleet a process runs: `index/count` (`shard: 2/4`, env SHARD), the stores
/// whose position modulo `count` is `index`. `0/1` (the default) is the whole fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// This shard, from 0 (a StatefulSet pod's ordinal).
    pub index: u32,
    /// How many shards share the fleet, at least 1.
    pub count: u32,
}

/// `shard:` is written `INDEX/COUNT`.
impl schemars::JsonSchema for Shard {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Shard".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^\\s*[0-9]+\\s*/\\s*[0-9]+\\s*$",
            "description": "The part of the fleet this process runs, `INDEX/COUNT` (env SHARD): the stores whose position modulo COUNT is INDEX. `0/1` is the whole fleet.",
            "examples": ["0/4"]
        })
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether the store at `store` is this shard's.
    pub fn owns(&self, store: StoreIndex) -> bool {
        store % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let invalid = |why: &str| format!("invalid shard {text:?}: {why}");
        let (index, count) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| invalid("expected INDEX/COUNT, e.g. 0/4"))?;
        let number = |part: &str| part.trim().parse::<u32>().ok();
        let (Some(index), Some(count)) = (number(index), number(count)) else {
            return Err(invalid("expected INDEX/COUNT with whole numbers, e.g. 0/4"));
        };
        if count == 0 {
            return Err(invalid("COUNT must be at least 1"));
        }
        if index >= count {
            return Err(invalid(&format!(
                "INDEX counts from 0 and must be below COUNT ({count})"
            )));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl serde::Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A customer id as a fleet's generated id (what a shopper model publishes without a roster).
pub fn generated_id(number: u64, prefix: &str) -> CustomerId {
    if prefix.is_empty() {
        CustomerId::Number(number)
    } else {
        CustomerId::Text(Arc::from(format!("{prefix}{number}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize, shard: &str) -> Fleet {
        Fleet::new(
            (1..=n).map(|n| n.to_string()).collect(),
            shard.parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn shards_split_the_fleet_by_position() {
        let all: Vec<_> = fleet(7, "0/1").local_stores().collect();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        let mut union: Vec<_> = (0..3)
            .flat_map(|i| {
                fleet(7, &format!("{i}/3"))
                    .local_stores()
                    .collect::<Vec<_>>()
            })
            .collect();
        union.sort();
        assert_eq!(union, all);
        assert_eq!(fleet(7, "1/3").local_stores().collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    fn bad_shards_say_why() {
        for bad in ["3/3", "a/b", "0/0", "1", "-1/2", ""] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(error.contains("invalid shard"), "{bad}: {error}");
        }
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
    }

    #[test]
    fn no_fleet_keeps_seed_and_ids() {
        let single = Fleet::single();
        assert_eq!(single.store_seed(42, 0), 42);
        assert_eq!(single.shopper_number(0, 17), 17);
        let small = fleet(3, "0/1");
        assert_eq!(small.shopper_number(6, 17), 7_000_000_017);
        assert_ne!(small.store_seed(42, 0), small.store_seed(42, 1));
        // A store's seed depends on its id, not on the fleet's size.
        assert_eq!(small.store_seed(42, 1), fleet(50, "0/1").store_seed(42, 1));
    }

    #[test]
    fn home_stores_are_stable_and_follow_the_store_column() {
        let fleet = fleet(5, "0/1");
        assert_eq!(fleet.home_store("abc", None), fleet.home_store("abc", None));
        assert_eq!(fleet.home_store("abc", Some("3")), Some(2));
        assert_eq!(fleet.home_store("abc", Some("nowhere")), None);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn ids_must_be_unique_and_non_empty() {
        assert!(Fleet::new(vec!["a".into(), "a".into()], Shard::default()).is_err());
        assert!(Fleet::new(vec![" ".into()], Shard::default()).is_err());
        assert!(Fleet::new(vec![], Shard::default()).is_err());
        let slash = Fleet::new(vec!["a/b".into()], Shard::default()).unwrap_err();
        assert!(slash.contains("\"a/b\"") && slash.contains('/'), "{slash}");
    }

    #[test]
    fn a_fleet_has_at_most_max_stores() {
        assert!(
            Fleet::new(
                (1..=MAX_STORES).map(|n| n.to_string()).collect(),
                Shard::default()
            )
            .is_ok()
        );
        let error = Fleet::new(
            (0..=MAX_STORES).map(|n| n.to_string()).collect(),
            Shard::default(),
        )
        .unwrap_err();
        assert!(error.contains("10000"), "{error}");
    }
}
