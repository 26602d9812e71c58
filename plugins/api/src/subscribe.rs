//! Reading messages back from a broker: the replies of the system under test (expectations) and
//! the events a sink published itself (the delivery check).
//!
//! A sink that publishes to a broker may also subscribe to it, on the same connection settings
//! (address, TLS, credentials) as it publishes with: its config implements
//! [`crate::SinkConfig::subscriber`]. The core asks for a subscriber only when the pipeline has
//! expectations or a delivery check, and never learns which broker it talks to: it hands over the
//! topics as published (`customer/prediction`) and reads [`Heard`] from a bounded channel. The
//! subscriber maps topics onto the broker's addressing (AMQP: a routing key on the sink's
//! exchange) and tells the core, by index, which of them a message came on.
//!
//! # Contract
//! - [`Subscriber::start`] connects and subscribes, and returns only once the broker confirmed
//!   every subscription, so nothing published after it returns can be missed. Permanent errors
//!   (refused credentials, a topic the broker refuses) fail it.
//! - The task it spawns sends every message, in the order the broker delivered them, and waits
//!   when the channel is full (back-pressure reaches the broker, memory stays bounded).
//! - A lost connection is reported ([`Heard::Lost`]), retried with a backoff, and once every
//!   subscription is back, reported again ([`Heard::Restored`]): a gap is never hidden.
//! - It ends when the shutdown signal fires or the channel is closed.

use crate::error::PluginError;
use crate::shutdown::ShutdownSignal;

/// What a subscription reports to the core.
#[derive(Clone, Debug, PartialEq)]
pub enum Heard {
    /// A message arrived.
    Message(Message),
    /// The connection was lost at this wall time (microseconds since the epoch): messages sent
    /// from now until [`Heard::Restored`] may never arrive.
    Lost {
        /// When the loss was noticed.
        at_us: i64,
        /// Why, as the client library said it.
        why: String,
    },
    /// Every subscription is back, at this wall time (microseconds since the epoch).
    Restored {
        /// When the broker confirmed the subscriptions again.
        at_us: i64,
    },
}

/// One message read from the broker.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Which of the topics given to [`Subscriber::start`] it came on (an index into that list).
    pub topic: usize,
    /// The message body, as published.
    pub payload: Vec<u8>,
    /// When it was read off the connection, wall clock, microseconds since the epoch.
    pub received_us: i64,
}

/// A subscription to a broker, made from a sink's config ([`crate::SinkConfig::subscriber`]).
#[crate::async_trait]
pub trait Subscriber: Send {
    /// Connects, subscribes to `topics` (as published; the subscriber maps them onto the broker's
    /// addressing) and returns once the broker confirmed them all. Then a task of its own sends
    /// what arrives to `heard` until `shutdown` fires or `heard` is closed, reconnecting when the
    /// connection is lost (see the module docs).
    async fn start(
        self: Box<Self>,
        topics: Vec<String>,
        heard: tokio::sync::mpsc::Sender<Heard>,
        shutdown: ShutdownSignal,
    ) -> Result<(), PluginError>;
}
