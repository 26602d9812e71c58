//! Bearer tokens for the plugins that serve HTTP (`http_ingress`, `live_view`): one reading of the
//! `Authorization` header, one comparison, and one warning for a server open to the network
//! without a token, so the plugins cannot disagree on what they accept.

use std::net::SocketAddr;

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 9110 §11.1, RFC 7235), so `BEARER` and `bearer` are the same; spaces around the token
/// are ignored.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without returning early, so timing does not tell how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a server on `address` without a token would be open to other machines: anything but
/// a loopback address (`0.0.0.0` and `::` listen on every interface).
pub fn exposed_without_token(address: SocketAddr, has_token: bool) -> bool {
    !has_token && !address.ip().is_loopback()
}

/// Logs a warning naming `plugin` and `address` when the server listens beyond this machine
/// without a token: anyone who can reach the address gets its data.
pub fn warn_if_exposed(plugin: &str, address: SocketAddr, has_token: bool) {
    if exposed_without_token(address, has_token) {
        tracing::warn!(
            "{plugin}: listening on {address}, reachable from other machines, without a token: \
             anyone who reaches it can use it (set a token, or listen on 127.0.0.1)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("BEARER s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("bEaReR  s3cret "), Some("s3cret"));
        assert_eq!(bearer_token("Basic s3cret"), None);
        assert_eq!(bearer_token("Bearers3cret"), None);
        assert_eq!(bearer_token("s3cret"), None);
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn only_non_loopback_addresses_without_a_token_are_exposed() {
        let at = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert!(exposed_without_token(at("0.0.0.0:8080"), false));
        assert!(exposed_without_token(at("[::]:8080"), false));
        assert!(exposed_without_token(at("192.168.1.2:8080"), false));
        assert!(!exposed_without_token(at("0.0.0.0:8080"), true));
        assert!(!exposed_without_token(at("127.0.0.1:8080"), false));
        assert!(!exposed_without_token(at("127.0.0.2:8080"), false));
        assert!(!exposed_without_token(at("[::1]:8080"), false));
    }
}
