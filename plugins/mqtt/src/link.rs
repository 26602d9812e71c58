//! The connection task: drives rumqttc's event loop (MQTT v3.1.1 or v5), counts deliveries into
//! the [`Gate`], reconnects with exponential backoff, and tells permanent failures from
//! temporary ones.
//!
//! Nothing unacknowledged is lost across a reconnect. When a connection breaks, rumqttc moves the
//! unacknowledged publishes and the requests still in its channel into `EventLoop::pending`, but
//! it clears that list again when the broker answers without a stored session (any broker restart
//! without persistence, or a clean session). This task therefore takes the list right after the
//! error and gives it back right after the next CONNACK, so those events are always sent again.
//! The [`Gate`] keeps them within rumqttc's in-flight window, so they keep their packet ids and
//! cannot collide with new ones.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::{Backoff, EndRun};
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode as V5Code, Packet as V5Packet, PubAckReason, PubCompReason,
};
use rumqttc::{ConnectReturnCode as V4Code, Outgoing, Packet as V4Packet};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use crate::gate::Gate;

/// How the connection is doing, for [`crate::MqttSink::start`] and the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// The first connection attempt has not finished.
    Connecting,
    /// Connected (CONNACK received).
    Up,
    /// Not connected; retrying. Holds the reason.
    Down(String),
    /// Failed for good (bad credentials, a certificate that does not verify).
    Failed(String),
    /// Disconnected on purpose by `close`.
    Closed,
}

/// What the connection task needs to know besides the event loop.
pub struct LinkSettings {
    /// `host:port`, for messages.
    pub address: String,
    /// The client id in use, for messages.
    pub client_id: String,
    /// `MQTTv311` / `MQTTv5`, for messages.
    pub protocol: &'static str,
    /// The configured QoS: decides which packet counts as delivery.
    pub qos: u8,
    /// The configured window (in-flight upper limit).
    pub window: usize,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest delay between reconnect attempts.
    pub max_backoff: Duration,
}

/// rumqttc's event loop of either protocol version, with the requests kept across a reconnect.
pub enum Wire {
    V4 {
        events: Box<rumqttc::EventLoop>,
        kept: VecDeque<rumqttc::Request>,
    },
    /// MQTT v5 brokers announce a *receive maximum* that can be lower than our window, and
    /// rumqttc replays its pending list without looking at it (extra publishes would take
    /// packet ids still in flight and overwrite one another). So kept requests go back
    /// `limit - in flight` at a time, topped up as acknowledgements free room.
    V5 {
        events: Box<rumqttc::v5::EventLoop>,
        kept: VecDeque<rumqttc::v5::Request>,
        /// Our in-flight upper limit, lowered by the broker's receive maximum.
        limit: usize,
        /// The configured upper limit.
        upper: usize,
        /// Whether a CONNACK came since the last error.
        connected: bool,
    },
}

/// One thing that happened on the wire, in protocol-neutral terms.
enum Step {
    /// CONNACK; `receive_max` is an MQTT v5 broker's in-flight limit.
    Connected {
        receive_max: Option<u16>,
    },
    /// PUBACK (QoS 1), PUBCOMP (QoS 2), or a QoS 0 publish written to the socket.
    PublishWritten,
    Acked,
    Completed,
    /// A v5 broker acknowledged an event but refused it (reason code).
    Refused(String),
    /// Our DISCONNECT went out.
    Disconnected,
    Other,
    Error(Failure),
}

/// Why the connection broke.
pub(crate) enum Failure {
    /// Retrying will not help: fail the sink with this message.
    Permanent(String),
    /// Retry later; the message says why it broke.
    Temporary(String),
    /// The client handle is gone (the sink was dropped).
    ClientGone,
}

impl Wire {
    async fn next(&mut self) -> Step {
        match self {
            Wire::V4 { events, kept } => match events.poll().await {
                Ok(rumqttc::Event::Incoming(V4Packet::ConnAck(_))) => {
                    restore(&mut events.pending, kept);
                    Step::Connected { receive_max: None }
                }
                Ok(rumqttc::Event::Incoming(V4Packet::PubAck(_))) => Step::Acked,
                Ok(rumqttc::Event::Incoming(V4Packet::PubComp(_))) => Step::Completed,
                Ok(rumqttc::Event::Outgoing(Outgoing::Publish(_))) => Step::PublishWritten,
                Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) => Step::Disconnected,
                Ok(_) => Step::Other,
                Err(error) => {
                    kept.extend(events.pending.drain(..));
                    Step::Error(classify_v4(&error))
                }
            },
            Wire::V5 {
                events,
                kept,
                limit,
                upper,
                connected,
            } => {
                if *connected {
                    top_up_v5(events, kept, *limit);
                }
                match events.poll().await {
                    Ok(rumqttc::v5::Event::Incoming(V5Packet::ConnAck(connack))) => {
                        let receive_max = connack.properties.and_then(|p| p.receive_max);
                        *limit = (*upper).min(usize::from(receive_max.unwrap_or(u16::MAX)));
                        *connected = true;
                        // rumqttc may have cleared its pending list (no session): ours is intact.
                        kept.extend(events.pending.drain(..));
                        top_up_v5(events, kept, *limit);
                        Step::Connected { receive_max }
                    }
                    Ok(rumqttc::v5::Event::Incoming(V5Packet::PubAck(ack))) => match ack.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Step::Acked,
                        reason => Step::Refused(format!("{reason:?}")),
                    },
                    Ok(rumqttc::v5::Event::Incoming(V5Packet::PubComp(comp))) => {
                        match comp.reason {
                            PubCompReason::Success => Step::Completed,
                            reason => Step::Refused(format!("{reason:?}")),
                        }
                    }
                    Ok(rumqttc::v5::Event::Incoming(V5Packet::Disconnect(disconnect))) => {
                        Step::Error(Failure::Temporary(format!(
                            "the broker disconnected: {:?}",
                            disconnect.reason_code
                        )))
                    }
                    Ok(rumqttc::v5::Event::Outgoing(Outgoing::Publish(_))) => Step::PublishWritten,
                    Ok(rumqttc::v5::Event::Outgoing(Outgoing::Disconnect)) => Step::Disconnected,
                    Ok(_) => Step::Other,
                    Err(error) => {
                        *connected = false;
                        // What rumqttc took back (in flight, then its channel) was sent or queued
                        // after what is still kept from an earlier break... except that in-flight
                        // ones came from `kept` first: keep that order.
                        let mut again: VecDeque<_> = events.pending.drain(..).collect();
                        again.extend(kept.drain(..));
                        *kept = again;
                        Step::Error(classify_v5(&error))
                    }
                }
            }
        }
    }

    /// Requests kept for the next connection (sent again after the next CONNACK).
    fn kept(&self) -> usize {
        match self {
            Wire::V4 { kept, .. } => kept.len(),
            Wire::V5 { kept, .. } => kept.len(),
        }
    }
}

/// Hands kept requests back to rumqttc while the broker's in-flight limit has room.
fn top_up_v5(
    events: &mut rumqttc::v5::EventLoop,
    kept: &mut VecDeque<rumqttc::v5::Request>,
    limit: usize,
) {
    let busy = usize::from(events.state.inflight()) + events.pending.len();
    let room = limit.saturating_sub(busy).min(kept.len());
    events.pending.extend(kept.drain(..room));
}

/// Puts the kept requests in front of whatever rumqttc has pending, in their original order.
fn restore<T>(pending: &mut VecDeque<T>, kept: &mut VecDeque<T>) {
    if kept.is_empty() {
        return;
    }
    kept.extend(pending.drain(..));
    std::mem::swap(pending, kept);
}

/// Runs the connection until `close` disconnects, the client handle is dropped, or a permanent
/// failure (which fails the gate and ends the run: the failed publish reports why).
pub async fn run(
    mut wire: Wire,
    gate: Arc<Gate>,
    state: watch::Sender<LinkState>,
    end_run: EndRun,
    settings: LinkSettings,
) {
    let mut backoff = Backoff::new(settings.min_backoff, settings.max_backoff);
    let mut down_since: Option<Instant> = None;
    let mut refusals_logged = 0u32;
    loop {
        match wire.next().await {
            Step::Connected { receive_max } => {
                let resent = wire_resend_count(&wire);
                if let Some(limit) = receive_max {
                    let window = settings.window.min(usize::from(limit));
                    if window < settings.window {
                        tracing::info!(
                            "mqtt: the broker accepts {limit} unacknowledged messages at a time: sending at most that many"
                        );
                    }
                    gate.set_window(window);
                }
                match down_since.take() {
                    Some(since) => tracing::info!(
                        "mqtt: reconnected to {} after {:.1} s{}",
                        settings.address,
                        since.elapsed().as_secs_f64(),
                        if resent > 0 {
                            format!("; sending {resent} unacknowledged events again")
                        } else {
                            String::new()
                        }
                    ),
                    None => tracing::info!(
                        "mqtt: connected to {} as {:?} ({}, QoS {})",
                        settings.address,
                        settings.client_id,
                        settings.protocol,
                        settings.qos
                    ),
                }
                backoff.reset();
                state.send_replace(LinkState::Up);
            }
            Step::PublishWritten => {
                if settings.qos == 0 {
                    gate.release(1);
                }
            }
            Step::Acked => {
                if settings.qos == 1 {
                    gate.release(1);
                }
            }
            Step::Completed => {
                if settings.qos == 2 {
                    gate.release(1);
                }
            }
            Step::Refused(reason) => {
                gate.release(1);
                refusals_logged += 1;
                if refusals_logged <= 10 || refusals_logged.is_power_of_two() {
                    tracing::warn!(
                        "mqtt: the broker refused an event ({reason}); {refusals_logged} refused so far"
                    );
                }
            }
            Step::Disconnected => {
                state.send_replace(LinkState::Closed);
                return;
            }
            Step::Other => {}
            Step::Error(Failure::ClientGone) => {
                state.send_replace(LinkState::Closed);
                return;
            }
            Step::Error(Failure::Permanent(why)) => {
                let why = format!("mqtt broker {}: {why}", settings.address);
                gate.fail(why.clone());
                state.send_replace(LinkState::Failed(why.clone()));
                end_run.request("mqtt sink", &why);
                return;
            }
            Step::Error(Failure::Temporary(why)) => {
                let kept = wire.kept();
                let previous = state.send_replace(LinkState::Down(why.clone()));
                match previous {
                    LinkState::Connecting => tracing::warn!(
                        "mqtt: cannot connect to {}: {why}; retrying with backoff (the broker may not be up yet)",
                        settings.address
                    ),
                    LinkState::Up => tracing::warn!(
                        "mqtt: connection to {} lost: {why}; reconnecting with backoff{}",
                        settings.address,
                        if kept > 0 {
                            format!(", {kept} unacknowledged events kept to send again")
                        } else {
                            String::new()
                        }
                    ),
                    _ => tracing::debug!("mqtt: still cannot reach {}: {why}", settings.address),
                }
                down_since.get_or_insert_with(Instant::now);
                sleep(backoff.next_delay()).await;
            }
        }
    }
}

fn wire_resend_count(wire: &Wire) -> usize {
    match wire {
        Wire::V4 { events, .. } => events.pending.len(),
        Wire::V5 { events, kept, .. } => events.pending.len() + kept.len(),
    }
}

pub(crate) fn classify_v4(error: &rumqttc::ConnectionError) -> Failure {
    use rumqttc::ConnectionError as E;
    match error {
        E::ConnectionRefused(code) => match code {
            V4Code::BadUserNamePassword => {
                Failure::Permanent(bad_credentials("bad user name or password"))
            }
            V4Code::NotAuthorized => Failure::Permanent(bad_credentials("not authorized")),
            V4Code::RefusedProtocolVersion => Failure::Permanent(
                "connection refused: the broker does not speak this protocol version (MQTT_PROTOCOL_VERSION)"
                    .into(),
            ),
            V4Code::BadClientId => Failure::Permanent(
                "connection refused: the client id is not accepted (MQTT_CLIENT_ID)".into(),
            ),
            V4Code::ServiceUnavailable => {
                Failure::Temporary("connection refused: service unavailable".into())
            }
            V4Code::Success => Failure::Temporary("unexpected CONNACK".into()),
        },
        E::RequestsDone => Failure::ClientGone,
        other => tls_or_temporary(other),
    }
}

pub(crate) fn classify_v5(error: &rumqttc::v5::ConnectionError) -> Failure {
    use rumqttc::v5::ConnectionError as E;
    match error {
        E::ConnectionRefused(code) => match code {
            V5Code::BadUserNamePassword => {
                Failure::Permanent(bad_credentials("bad user name or password"))
            }
            V5Code::NotAuthorized => Failure::Permanent(bad_credentials("not authorized")),
            V5Code::Banned => Failure::Permanent(bad_credentials("banned")),
            V5Code::BadAuthenticationMethod => {
                Failure::Permanent(bad_credentials("bad authentication method"))
            }
            V5Code::BadClientId | V5Code::ClientIdentifierNotValid => Failure::Permanent(
                "connection refused: the client id is not accepted (MQTT_CLIENT_ID)".into(),
            ),
            V5Code::RefusedProtocolVersion | V5Code::UnsupportedProtocolVersion => {
                Failure::Permanent(
                    "connection refused: the broker does not speak this protocol version (MQTT_PROTOCOL_VERSION)"
                        .into(),
                )
            }
            V5Code::ServiceUnavailable
            | V5Code::ServerUnavailable
            | V5Code::ServerBusy
            | V5Code::ConnectionRateExceeded
            | V5Code::QuotaExceeded
            | V5Code::UnspecifiedError
            | V5Code::ImplementationSpecificError
            | V5Code::Success => Failure::Temporary(format!("connection refused: {code:?}")),
            other => Failure::Permanent(format!("connection refused: {other:?}")),
        },
        E::RequestsDone => Failure::ClientGone,
        other => tls_or_temporary(other),
    }
}

fn bad_credentials(what: &str) -> String {
    format!("connection refused: {what} (check MQTT_USERNAME / MQTT_PASSWORD)")
}

/// A TLS error anywhere in the chain is permanent (a certificate that does not verify, a
/// handshake the broker rejects); anything else (refused, reset, timeout) is retried.
fn tls_or_temporary(error: &(dyn StdError + 'static)) -> Failure {
    match find_rustls_error(error) {
        Some(tls) => Failure::Permanent(describe_tls(tls)),
        None => Failure::Temporary(describe(error)),
    }
}

fn find_rustls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error::source skips the error it wraps: look inside it explicitly.
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = find_rustls_error(inner)
        {
            return Some(tls);
        }
        current = error.source();
    }
    None
}

fn describe_tls(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(why) => format!(
            "TLS: the broker's certificate does not verify against MQTT_BROKER_CERT_FILE: {why:?}"
        ),
        rustls::Error::AlertReceived(alert) => format!(
            "TLS: the broker rejected the handshake ({alert:?}): check MQTT_CLIENT_CERT_FILE / MQTT_CLIENT_KEY_FILE and that the broker expects TLS on this port"
        ),
        other => format!("TLS: {other} (does the broker expect TLS on this port?)"),
    }
}

/// The reason in plain words: the innermost I/O error when there is one ("Connection refused
/// (os error 111)"), else the error's own text.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut innermost_io = None;
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            innermost_io = Some(io);
        }
        current = error.source();
    }
    match innermost_io {
        Some(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the broker closed the connection".into()
        }
        Some(io) => io.to_string(),
        None => match error.to_string().as_str() {
            "Mqtt state: Connection closed by peer abruptly" => {
                "the broker closed the connection".into()
            }
            text => text.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_certificates_are_permanent_refused_connections_are_not() {
        let refused = rumqttc::ConnectionError::ConnectionRefused(V4Code::NotAuthorized);
        assert!(
            matches!(classify_v4(&refused), Failure::Permanent(why) if why.contains("not authorized") && why.contains("MQTT_PASSWORD"))
        );
        let io = rumqttc::ConnectionError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ));
        assert!(matches!(classify_v4(&io), Failure::Temporary(_)));
        let tls = rumqttc::ConnectionError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert!(
            matches!(classify_v4(&tls), Failure::Permanent(why) if why.contains("does not verify"))
        );
        let v5 = rumqttc::v5::ConnectionError::ConnectionRefused(V5Code::BadUserNamePassword);
        assert!(matches!(classify_v5(&v5), Failure::Permanent(_)));
        let reset = rumqttc::ConnectionError::MqttState(rumqttc::StateError::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ));
        assert!(
            matches!(classify_v4(&reset), Failure::Temporary(why) if why == "connection reset")
        );
        let v5 = rumqttc::v5::ConnectionError::ConnectionRefused(V5Code::ServerBusy);
        assert!(matches!(classify_v5(&v5), Failure::Temporary(_)));
    }

    #[test]
    fn kept_requests_go_first() {
        let mut pending: VecDeque<u32> = [3, 4].into();
        let mut kept: VecDeque<u32> = [1, 2].into();
        restore(&mut pending, &mut kept);
        assert_eq!(pending, [1, 2, 3, 4]);
        assert!(kept.is_empty());
    }
}
