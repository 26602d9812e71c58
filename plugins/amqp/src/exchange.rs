//! The exchange the sink publishes to and the subscriber binds its queue to: declared (durable)
//! when `declare: true`, otherwise checked, so both fail the same way, naming the exchange and
//! the vhost, when it does not exist.

use lapin::options::ExchangeDeclareOptions;
use lapin::protocol::AMQPErrorKind;
use lapin::types::FieldTable;
use lapin::{Channel, ErrorKind, ExchangeKind};

use crate::broker::Broker;

/// Why setting up a channel failed.
pub(crate) struct SetupError {
    /// `true` when retrying cannot help (the broker refused the exchange, a binding, a queue).
    pub permanent: bool,
    /// One line for the user, without the password.
    pub message: String,
}

impl SetupError {
    /// A failure worth retrying (the connection went away in the middle).
    pub fn transient(broker: &Broker, error: lapin::Error) -> SetupError {
        SetupError {
            permanent: false,
            message: format!("amqp: {}: {error}", broker.address()),
        }
    }
}

/// The `exchange`, `exchange_type` and `declare` settings of an `amqp` sink.
pub(crate) struct Exchange<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub declare: bool,
}

impl Exchange<'_> {
    /// Declares the exchange (`declare: true`) or checks that it exists. The default exchange
    /// (`""`) always exists and cannot be declared: nothing to do.
    pub async fn declare_on(&self, broker: &Broker, channel: &Channel) -> Result<(), SetupError> {
        if self.name.is_empty() {
            return Ok(());
        }
        let kind = match self.kind {
            "topic" => ExchangeKind::Topic,
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "headers" => ExchangeKind::Headers,
            other => ExchangeKind::Custom(other.to_string()),
        };
        let options = ExchangeDeclareOptions {
            passive: !self.declare,
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let declared = channel
            .exchange_declare(self.name.into(), kind, options, FieldTable::default())
            .await;
        let Err(error) = declared else {
            return Ok(());
        };
        if let ErrorKind::ProtocolError(amqp) = error.kind()
            && matches!(amqp.kind(), AMQPErrorKind::Soft(_))
        {
            let hint = if self.declare {
                format!(
                    "cannot declare exchange {:?} of type {:?} on vhost {:?}",
                    self.name,
                    self.kind,
                    broker.vhost()
                )
            } else {
                format!(
                    "exchange {:?} does not exist on vhost {:?} (set declare: true to create it)",
                    self.name,
                    broker.vhost()
                )
            };
            return Err(SetupError {
                permanent: true,
                message: format!("amqp: {hint}: {}", amqp.get_message().as_str()),
            });
        }
        Err(SetupError::transient(broker, error))
    }
}
