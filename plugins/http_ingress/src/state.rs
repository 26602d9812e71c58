//! `/state` answers within a memory budget shared by all clients.
//!
//! With many shoppers inside, one `/state` answer is tens of MB, and it stays in memory until its
//! client has read it (or `body_timeout` passes for one that reads nothing). Without a bound, a
//! few dozen clients that ask and never read would hold gigabytes. Every answer takes its size
//! from one [`Budget`] before it is sent and gives it back when the connection drops the answer;
//! while the budget is spent, `/state` answers 503 with `Retry-After`.

use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes are counted in units of this size (a semaphore counts at most `u32` permits at once).
const UNIT: usize = 1024;

/// The bytes all `/state` answers may hold together.
pub struct Budget {
    units: Arc<Semaphore>,
    total_bytes: usize,
}

/// An answer and its share of the budget: the share is given back when the last copy of the
/// answer's bytes is dropped (written out, or its connection closed).
struct Held {
    answer: Vec<u8>,
    _share: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.answer
    }
}

/// Why an answer was not sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Other answers hold the budget now; retry later.
    Busy { total_bytes: usize },
    /// This answer alone is larger than the whole budget.
    TooLarge { bytes: usize, total_bytes: usize },
}

impl Budget {
    pub fn new(total_bytes: usize) -> Budget {
        let units = total_bytes
            .div_ceil(UNIT)
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        Budget {
            units: Arc::new(Semaphore::new(units)),
            total_bytes,
        }
    }

    /// `answer` as bytes that hold its share of the budget until dropped, or why not.
    pub fn hold(&self, mut answer: Vec<u8>) -> Result<Bytes, Refused> {
        answer.shrink_to_fit();
        let bytes = answer.len();
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        if bytes > self.total_bytes {
            return Err(Refused::TooLarge {
                bytes,
                total_bytes: self.total_bytes,
            });
        }
        let share = self
            .units
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| Refused::Busy {
                total_bytes: self.total_bytes,
            })?;
        Ok(Bytes::from_owner(Held {
            answer,
            _share: share,
        }))
    }

    /// Bytes of the budget not held now (rounded to whole units).
    #[cfg(test)]
    fn free_bytes(&self) -> usize {
        self.units.available_permits() * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_hold_their_size_until_dropped() {
        let budget = Budget::new(10 * UNIT);
        let first = budget.hold(vec![b'x'; 6 * UNIT]).unwrap();
        assert_eq!(first.len(), 6 * UNIT);
        assert_eq!(budget.free_bytes(), 4 * UNIT);
        assert_eq!(
            budget.hold(vec![b'y'; 5 * UNIT]),
            Err(Refused::Busy {
                total_bytes: 10 * UNIT
            })
        );
        // A clone (as hyper may keep) holds the share too.
        let copy = first.slice(10..20);
        drop(first);
        assert_eq!(budget.free_bytes(), 4 * UNIT);
        drop(copy);
        assert_eq!(budget.free_bytes(), 10 * UNIT);
        assert!(budget.hold(vec![b'y'; 5 * UNIT]).is_ok());
        assert_eq!(
            budget.hold(vec![b'z'; 10 * UNIT + 1]),
            Err(Refused::TooLarge {
                bytes: 10 * UNIT + 1,
                total_bytes: 10 * UNIT
            })
        );
        // An empty answer still counts a unit, and is given back.
        drop(budget.hold(Vec::new()).unwrap());
        assert_eq!(budget.free_bytes(), 10 * UNIT);
    }
}
