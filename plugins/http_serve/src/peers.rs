//! How many connections each IP address holds, so one client cannot take every slot.
//!
//! The server learns a client's address only by accepting it, so a connection beyond its
//! address's share is accepted and closed at once (a client that reopens in a loop costs itself
//! round trips, the server one descriptor for an instant). The table holds one entry per address
//! with an open connection, so it is bounded by `max_connections`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections by address.
pub struct Peers {
    open: Mutex<HashMap<IpAddr, usize>>,
    limit: usize,
}

/// One open connection of an address; gives its place back when dropped.
pub struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    /// A table allowing `limit` connections per address.
    pub fn new(limit: usize) -> Arc<Peers> {
        Arc::new(Peers {
            open: Mutex::new(HashMap::new()),
            limit,
        })
    }

    /// A place for one more connection from `ip`, or `None` when it has `limit` already. An
    /// IPv4 address seen through an IPv6 socket (`::ffff:a.b.c.d`) counts as the IPv4 one.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().expect("peer table lock");
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }

    /// Addresses with an open connection.
    pub fn addresses(&self) -> usize {
        self.open.lock().expect("peer table lock").len()
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().expect("peer table lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_share_and_gives_it_back() {
        let peers = Peers::new(2);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let a = peers.enter(one).unwrap();
        let b = peers.enter(mapped).unwrap();
        assert!(
            peers.enter(one).is_none(),
            "the mapped address is the same peer"
        );
        let c = peers.enter(two).unwrap();
        assert_eq!(peers.addresses(), 2);
        drop(a);
        let d = peers.enter(one).unwrap();
        drop((b, c, d));
        assert_eq!(peers.addresses(), 0, "no entry is kept for a gone peer");
    }
}
