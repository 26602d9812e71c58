//! The `amqp` sink at run time: the factory that checks a config and makes the [`AmqpSink`], the
//! front end the scheduler talks to. It hands events through a bounded buffer to the background
//! publisher (`worker`) and waits while the buffer is full.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use customersim_plugin_api::{
    BrokerEndpoint, BuildContext, EnvOverride, Event, PluginConfig, PluginError, ShutdownSignal,
    Sink, SinkConfig, SinkContext, Subscriber, async_trait,
};
use lapin::uri::AMQPScheme;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::config::{self, AmqpConfig};
use crate::routing::RoutingKeys;
use crate::worker::{self, Outgoing, Shared, Worker};

impl PluginConfig for AmqpConfig {
    const NAME: &'static str = "amqp";
    const DESCRIPTION: &'static str = "publishes events to an AMQP exchange (RabbitMQ; default amq.topic, routing key = topic with / → .) with publisher confirms";
    const ENV: &'static [EnvOverride] = config::ENV;

    fn brokers(&self) -> Vec<BrokerEndpoint> {
        let Ok((uri, _)) = crate::broker::parse_url(self.url.expose()) else {
            return Vec::new(); // the check says why
        };
        let host = &uri.authority.host;
        let host = if host.contains(':') {
            format!("[{host}]:{}", uri.authority.port)
        } else {
            format!("{host}:{}", uri.authority.port)
        };
        vec![BrokerEndpoint {
            protocol: if uri.scheme == AMQPScheme::AMQPS {
                "amqps"
            } else {
                "amqp"
            },
            protocol_version: Some("0.9.1".into()),
            host,
            pathname: (uri.vhost != "/").then(|| format!("/{}", uri.vhost)),
            description: format!(
                "the amqp sink publishes to the {} exchange {:?}; the routing key is the topic \
                 with / replaced by .",
                self.exchange_type, self.exchange
            ),
            address: crate::routing::routing_key,
        }]
    }
}

impl SinkConfig for AmqpConfig {
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        if self.max_in_flight == 0 {
            return Err(PluginError::Config(
                "max_in_flight: must be at least 1".into(),
            ));
        }
        if self.buffer_size == 0 {
            return Err(PluginError::Config(
                "buffer_size: must be at least 1".into(),
            ));
        }
        if self.exchange.len() > 255 {
            return Err(PluginError::Config(
                "exchange: longer than 255 bytes".into(),
            ));
        }
        Broker::from_config(self, cx)?;
        RoutingKeys::new(&cx.topics, &cx.fleet)?;
        Ok(())
    }

    fn subscriber(&self, cx: &BuildContext) -> Option<Result<Box<dyn Subscriber>, PluginError>> {
        Some(self.make_subscriber(cx))
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        self.check(cx)?;
        let broker = Broker::from_config(&self, cx)?;
        let routing_keys = RoutingKeys::new(&cx.topics, &cx.fleet)?;
        Ok(Box::new(AmqpSink {
            settings: Arc::new(worker::Settings {
                exchange: self.exchange.clone(),
                exchange_type: self.exchange_type.clone(),
                declare: self.declare,
                persistent: self.persistent,
                confirms: self.confirms,
                max_in_flight: self.max_in_flight,
                routing_keys,
            }),
            broker: Some(broker),
            buffer_size: self.buffer_size,
            close_timeout: self.close_timeout,
            sender: None,
            task: None,
            shared: Arc::new(Shared::default()),
            accepted: 0,
            scratch: Vec::with_capacity(256),
            shutdown: None,
        }))
    }
}

/// The front end the scheduler talks to; the publishing happens in [`Worker`].
pub struct AmqpSink {
    settings: Arc<worker::Settings>,
    broker: Option<Broker>,
    buffer_size: usize,
    close_timeout: Duration,
    sender: Option<mpsc::Sender<Outgoing>>,
    task: Option<JoinHandle<Result<(), String>>>,
    shared: Arc<Shared>,
    /// Events taken from the scheduler.
    accepted: u64,
    /// Where payloads are written before they are copied into their message.
    scratch: Vec<u8>,
    /// The run's shutdown signal, from `start` on.
    shutdown: Option<ShutdownSignal>,
}

impl AmqpSink {
    /// Why the worker stopped, for errors returned by `publish`.
    fn worker_failure(&self) -> PluginError {
        PluginError::Fatal(
            self.shared
                .failure()
                .unwrap_or_else(|| "amqp: the publisher task stopped".into()),
        )
    }

    /// Events accepted but not (yet) confirmed / written.
    fn outstanding(&self) -> u64 {
        self.accepted
            .saturating_sub(self.shared.delivered.load(Ordering::Relaxed))
    }
}

#[async_trait]
impl Sink for AmqpSink {
    async fn start(&mut self, cx: &SinkContext) -> Result<(), PluginError> {
        let broker = self.broker.take().expect("start is called once");
        self.shutdown = Some(cx.shutdown.clone());
        let (sender, receiver) = mpsc::channel(self.buffer_size);
        let worker = Worker::start(broker, self.settings.clone(), self.shared.clone()).await?;
        self.sender = Some(sender);
        self.task = Some(tokio::spawn(worker.run(receiver)));
        Ok(())
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        let Some(sender) = &self.sender else {
            return Err(PluginError::Fatal("amqp: publish before start".into()));
        };
        let capacity = sender.max_capacity();
        for chunk in batch.chunks(capacity) {
            // Once the run stops, events already queued for this sink are still published, but a
            // broker that takes nothing holds the process at most `close_timeout` longer.
            let stuck = || {
                PluginError::Fatal(format!(
                    "amqp: stopped while the broker does not take events; {} accepted events were not delivered",
                    self.outstanding()
                ))
            };
            let permits = tokio::select! {
                permits = sender.reserve_many(chunk.len()) => permits,
                () = wait_for(&self.shutdown) => {
                    tokio::time::timeout(self.close_timeout, sender.reserve_many(chunk.len()))
                        .await
                        .map_err(|_| stuck())?
                }
            };
            let Ok(permits) = permits else {
                return Err(self.worker_failure());
            };
            for (permit, event) in permits.zip(chunk) {
                self.scratch.clear();
                event.write_payload(&mut self.scratch);
                permit.send(Outgoing {
                    key: self.settings.routing_keys.index(event),
                    ts: event.ts().max(0) as u64,
                    body: Arc::from(self.scratch.as_slice()),
                });
            }
            self.accepted += chunk.len() as u64;
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<(), PluginError> {
        drop(self.sender.take());
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(self.close_timeout, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(why))) => Err(PluginError::Fatal(why)),
            Ok(Err(join)) => Err(PluginError::Fatal(format!(
                "amqp: the publisher task failed: {join}"
            ))),
            Err(_) => {
                task.abort();
                let outstanding = self.outstanding();
                if outstanding == 0 {
                    tracing::warn!(
                        "amqp: every event was delivered but the broker did not answer the connection close within close_timeout ({:?})",
                        self.close_timeout
                    );
                    return Ok(());
                }
                Err(PluginError::Fatal(format!(
                    "amqp: {outstanding} events were not confirmed by the broker within close_timeout ({:?})",
                    self.close_timeout
                )))
            }
        }
    }
}

/// Resolves when the run's shutdown fires (never before `start` handed the signal over).
async fn wait_for(shutdown: &Option<ShutdownSignal>) {
    match shutdown {
        Some(signal) => signal.wait().await,
        None => std::future::pending().await,
    }
}
