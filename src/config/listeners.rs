//! One port, one listener: the addresses plugins declare they will listen on
//! ([`crate::plugin_api::PluginConfig::listens`]) checked against each other before anything
//! binds, so a pipeline whose second server could never start is a config error (exit 2), not a
//! failed run.

use std::net::{IpAddr, SocketAddr};

/// Whether listeners on `a` and `b` would want the same socket: the same port (not 0, which
/// picks a free one) and the same IP, or a wildcard covering the other (`0.0.0.0` every IPv4
/// address, `[::]` every address: Linux binds it dual-stack).
pub fn collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let (a, b) = (canonical(a.ip()), canonical(b.ip()));
    let covers = |wide: IpAddr, other: IpAddr| match wide {
        IpAddr::V6(ip) => ip.is_unspecified(),
        IpAddr::V4(ip) => ip.is_unspecified() && other.is_ipv4(),
    };
    a == b || covers(a, b) || covers(b, a)
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The first two listeners (by their place in the file, `sources[2] (type: …)`) that would
/// share a socket, as an error naming both and the address.
pub fn check(listeners: &[(String, SocketAddr)]) -> Result<(), String> {
    for (index, (place, address)) in listeners.iter().enumerate() {
        if let Some((other, other_address)) = listeners[..index]
            .iter()
            .find(|(_, earlier)| collide(*earlier, *address))
        {
            return Err(format!(
                "{other} listens on {other_address} and {place} on {address}: \
                 two servers cannot listen on one port (give one of them another `listen`)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn same_port_collides_when_the_addresses_overlap() {
        assert!(collide(at("127.0.0.1:8000"), at("127.0.0.1:8000")));
        assert!(collide(at("0.0.0.0:8000"), at("127.0.0.1:8000")));
        assert!(collide(at("127.0.0.2:8000"), at("0.0.0.0:8000")));
        assert!(collide(at("[::]:8000"), at("127.0.0.1:8000")));
        assert!(collide(at("[::]:8000"), at("[::1]:8000")));
        assert!(collide(at("[::ffff:127.0.0.1]:8000"), at("127.0.0.1:8000")));
        assert!(!collide(at("127.0.0.1:8000"), at("127.0.0.2:8000")));
        assert!(!collide(at("0.0.0.0:8000"), at("[::1]:8000")));
        assert!(!collide(at("127.0.0.1:8000"), at("127.0.0.1:8001")));
        assert!(
            !collide(at("127.0.0.1:0"), at("127.0.0.1:0")),
            "port 0 picks a free port"
        );
    }

    #[test]
    fn the_error_names_both_places_and_the_address() {
        let listeners = [
            ("sources[0] (type: a)".to_string(), at("0.0.0.0:8000")),
            ("sources[1] (type: b)".to_string(), at("127.0.0.1:9000")),
            ("sinks[0] (type: c)".to_string(), at("127.0.0.1:8000")),
        ];
        let why = check(&listeners).unwrap_err();
        assert!(
            why.contains("sources[0] (type: a) listens on 0.0.0.0:8000")
                && why.contains("sinks[0] (type: c) on 127.0.0.1:8000"),
            "{why}"
        );
        assert!(check(&listeners[..2]).is_ok());
    }
}
