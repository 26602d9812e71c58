//! The process's descriptor budget: the HTTP servers' connection caps together must leave
//! descriptors for the sinks' and timeline's own connections (a broker reconnecting, Redis), for
//! the listeners themselves and the runtime. Without it, a flood of clients could hold every
//! descriptor and a sink could not reconnect until they left.
//!
//! Each server reserves its `max_connections` when it is built; [`reserve`] refuses (a config
//! error) when the reservations plus [`RESERVED_FOR_OTHERS`] exceed the soft `RLIMIT_NOFILE`
//! (`ulimit -n`). A reservation is given back when dropped, so pipelines built one after another
//! in one process do not add up.

use std::sync::Mutex;

/// Descriptors kept out of the HTTP servers' reach: the sinks' and timeline's connections, the
/// listeners, the runtime's own (epoll, eventfd), stdout and stderr, files the run reads.
pub const RESERVED_FOR_OTHERS: u64 = 128;

/// Connections reserved by the servers built so far.
static RESERVED: Mutex<u64> = Mutex::new(0);

/// A server's share of the descriptors, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    connections: u64,
}

/// Reserves `connections` descriptors for the server configured by `key` (such as
/// `live_view.max_connections`, named in the error), or says why they do not fit.
pub fn reserve(key: &str, connections: usize) -> Result<Reservation, String> {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _hard)| soft)
        .filter(|soft| *soft != rlimit::INFINITY);
    reserve_within(key, connections as u64, limit)
}

fn reserve_within(key: &str, connections: u64, limit: Option<u64>) -> Result<Reservation, String> {
    let mut reserved = RESERVED.lock().expect("descriptor budget lock");
    if let Some(limit) = limit {
        let needed = reserved
            .saturating_add(connections)
            .saturating_add(RESERVED_FOR_OTHERS);
        if needed > limit {
            let others = if *reserved > 0 {
                format!(", the {reserved} of the other HTTP servers")
            } else {
                String::new()
            };
            return Err(format!(
                "{key}: {connections} connections{others} and {RESERVED_FOR_OTHERS} descriptors kept for the sinks' and timeline's own connections need {needed} descriptors, more than the process's limit of {limit} (ulimit -n); lower {key} or raise the limit"
            ));
        }
    }
    *reserved += connections;
    Ok(Reservation { connections })
}

impl Drop for Reservation {
    fn drop(&mut self) {
        *RESERVED.lock().expect("descriptor budget lock") -= self.connections;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_and_are_given_back() {
        // The only test touching the global budget with a limit, so sums are exact here.
        let a = reserve_within("one.max_connections", 500, Some(1024)).unwrap();
        let error = reserve_within("two.max_connections", 500, Some(1024)).unwrap_err();
        assert!(
            error.starts_with("two.max_connections: 500 connections, the 500 of the other HTTP servers and 128 descriptors")
                && error.contains("limit of 1024"),
            "{error}"
        );
        let b = reserve_within("two.max_connections", 396, Some(1024)).unwrap();
        drop((a, b));
        let alone = reserve_within("one.max_connections", 896, Some(1024)).unwrap();
        drop(alone);
        assert!(reserve_within("one.max_connections", 897, Some(1024)).is_err());
        // Without a limit (unlimited), everything fits.
        drop(reserve_within("one.max_connections", u64::MAX / 2, None).unwrap());
    }
}
