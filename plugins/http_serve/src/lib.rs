//! The accept loop of the plugins that serve HTTP (`http_ingress`, `live_view`), so both bound
//! their clients the same way:
//!
//! - at most `max_connections` connections at once: a server at its cap stops accepting and
//!   leaves further clients in the kernel's listen queue (they cost the process no descriptor);
//! - at most `max_connections_per_peer` of them from one IP address: a further connection from
//!   that address is closed at once, so one client cannot take every slot and starve `/health`
//!   or anyone else ([`peers`]);
//! - a connection is closed when its request headers take longer than `header_timeout`, which
//!   also bounds how long an idle keep-alive connection holds its slot;
//! - an answer the client does not read for `write_stall` closes the connection
//!   ([`stall::WriteDeadline`]);
//! - the servers' caps together, plus [`descriptors::RESERVED_FOR_OTHERS`] descriptors for the
//!   sinks' and timeline's own connections, must fit under the process's descriptor limit
//!   (`ulimit -n`): [`descriptors::reserve`] refuses a config that does not.
//!
//! Bodies have no deadline here: a plugin that reads bodies bounds their time and size itself.

pub mod descriptors;
pub mod peers;
pub mod stall;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::peers::Peers;
use crate::stall::WriteDeadline;

/// Longest timeout accepted (the timers add it to the current instant, which must not overflow).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What bounds a server's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; the rest wait in the kernel's listen queue.
    pub max_connections: usize,
    /// Connections served at once from one IP address; a further one is closed at once.
    pub max_per_peer: usize,
    /// Time to send a request's headers, and to start the next request on a kept-alive
    /// connection; the connection is closed after it.
    pub header_timeout: Duration,
    /// How long an answer may wait for a client that reads none of it; closed after it.
    pub write_stall: Duration,
}

/// The default `max_connections_per_peer`: a quarter of `max_connections` (at least 1), so at
/// least four clients can always be served whatever one of them holds.
pub fn default_per_peer(max_connections: usize) -> usize {
    (max_connections / 4).max(1)
}

impl ConnectionLimits {
    /// Checks the limits; an error names the key (`header_timeout: …`).
    pub fn check(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("max_connections: must be at least 1".into());
        }
        if self.max_per_peer == 0 || self.max_per_peer > self.max_connections {
            return Err(format!(
                "max_connections_per_peer: {} is outside 1 to max_connections ({})",
                self.max_per_peer, self.max_connections
            ));
        }
        for (key, value) in [
            ("header_timeout", self.header_timeout),
            ("write_stall", self.write_stall),
        ] {
            check_timeout(key, value)?;
        }
        Ok(())
    }
}

/// Refuses a zero timeout or one over [`MAX_TIMEOUT`], naming `key`.
pub fn check_timeout(key: &str, value: Duration) -> Result<(), String> {
    if value.is_zero() || value > MAX_TIMEOUT {
        Err(format!(
            "{key}: {value:?} is outside 1ms to 24h (the time a client may take)"
        ))
    } else {
        Ok(())
    }
}

/// Serves `app` on `listener` within `limits` until `stopped` resolves, then waits for the open
/// connections to finish (callers bound that wait). `name` prefixes the log lines.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Peers::new(limits.max_per_peer);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connections = GracefulShutdown::new();
    let mut warned_about_accept = false;
    let mut warned_about_peer = false;
    tokio::pin!(stopped);
    loop {
        // At the cap, nothing is accepted until a connection closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut stopped => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    if !warned_about_accept {
                        warned_about_accept = true;
                        tracing::warn!(
                            "{name}: cannot accept connections: {error} (with too many open files, raise the descriptor limit or lower max_connections); retrying"
                        );
                    }
                    // Out of descriptors or memory: give closing connections a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let Some(peer_slot) = peers.enter(peer.ip()) else {
            if !warned_about_peer {
                warned_about_peer = true;
                tracing::warn!(
                    "{name}: {} already has max_connections_per_peer ({}) connections open; closing its further ones (logged once)",
                    peer.ip(),
                    limits.max_per_peer
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(
            TokioIo::new(WriteDeadline::new(stream, limits.write_stall)),
            TowerToHyperService::new(app.clone()),
        );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!("{name}: connection closed: {error}");
            }
            drop(peer_slot);
            drop(slot);
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// Errors of one incoming connection (it was reset before being accepted), not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 8,
            max_per_peer: default_per_peer(8),
            header_timeout: Duration::from_secs(10),
            write_stall: Duration::from_secs(30),
        }
    }

    #[test]
    fn the_per_peer_default_is_a_quarter_and_at_least_one() {
        assert_eq!(default_per_peer(512), 128);
        assert_eq!(default_per_peer(3), 1);
        assert_eq!(default_per_peer(1), 1);
    }

    #[test]
    fn limits_are_checked_and_named() {
        assert_eq!(limits().check(), Ok(()));
        let zero = ConnectionLimits {
            max_connections: 0,
            ..limits()
        };
        assert!(zero.check().unwrap_err().starts_with("max_connections:"));
        let wide = ConnectionLimits {
            max_per_peer: 9,
            ..limits()
        };
        assert!(
            wide.check()
                .unwrap_err()
                .starts_with("max_connections_per_peer:")
        );
        let long = ConnectionLimits {
            header_timeout: Duration::from_secs(25 * 3600),
            ..limits()
        };
        assert!(long.check().unwrap_err().starts_with("header_timeout:"));
    }

    /// A server whose cap is reached accepts nothing more (the client waits in the listen
    /// queue), and one peer beyond its share is closed while another address is served.
    #[tokio::test]
    async fn the_cap_and_the_per_peer_limit_hold() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().route("/health", axum::routing::get(|| async { "OK" }));
        let limits = ConnectionLimits {
            max_connections: 4,
            max_per_peer: 2,
            header_timeout: Duration::from_secs(3600),
            write_stall: Duration::from_secs(3600),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve("test", listener, app, limits, async {
            let _ = stopped.await;
        }));
        let from = |ip: &str| {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
            socket.connect(address)
        };
        // Two idle connections from 127.0.0.1 hold their share; a third is closed at once.
        let _first = from("127.0.0.1").await.unwrap();
        let _second = from("127.0.0.1").await.unwrap();
        let mut third = from("127.0.0.1").await.unwrap();
        let mut rest = Vec::new();
        let closed = third.read_to_end(&mut rest).await;
        assert!(closed.is_err() || rest.is_empty(), "{closed:?} {rest:?}");
        // Another address is served.
        let mut other = from("127.0.0.2").await.unwrap();
        other
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        other.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("OK"), "{answer}");
        let _ = stop.send(());
        drop((_first, _second));
        server.await.unwrap().unwrap();
    }
}
