//! What plugins are given: at build time ([`BuildContext`]) and at run time ([`SourceContext`],
//! [`SinkContext`]), plus the small shared services those carry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::registry::{Metric, Registry};
use rand::RngCore;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::event::{CustomerId, Event, EventKind, Topics};
use crate::layout::StoreLayout;
use crate::plugin::PluginError;
use crate::timeline::{Timeline, Watermark};

/// Cooperative shutdown (SIGINT/SIGTERM, or the end of a run): plugins stop taking new work when it
/// fires.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A shutdown signal that has not fired.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }
    /// Fires the signal.
    pub fn trigger(&self) {
        self.0.cancel();
    }
    /// Whether it fired.
    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }
    /// Resolves once it fires.
    pub async fn wait(&self) {
        self.0.cancelled().await;
    }
}

/// Sends events to the sinks at once, bypassing the timeline (the `/produce_*` endpoints).
#[derive(Clone, Debug)]
pub struct Publisher {
    sender: mpsc::Sender<ImmediateBatch>,
}

/// A batch for immediate publication and where to report that the sinks took it.
#[derive(Debug)]
pub struct ImmediateBatch {
    /// The events, published in this order.
    pub events: Vec<Event>,
    /// Answered once every sink accepted the batch, or with the reason it did not.
    pub done: oneshot::Sender<Result<(), String>>,
}

impl Publisher {
    /// A publisher and the receiving end the scheduler drains.
    pub fn channel(capacity: usize) -> (Publisher, mpsc::Receiver<ImmediateBatch>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (Publisher { sender }, receiver)
    }

    /// Publishes `events` now; returns once every sink accepted them.
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), PluginError> {
        let (done, answer) = oneshot::channel();
        self.sender
            .send(ImmediateBatch { events, done })
            .await
            .map_err(|_| PluginError::Fatal("the publisher is shut down".into()))?;
        answer
            .await
            .map_err(|_| PluginError::Fatal("the publisher is shut down".into()))?
            .map_err(PluginError::Fatal)
    }
}

/// Who the shoppers are: a fixed list of customers (a `customer_list` source provides one). A
/// listed customer is inside at most once at a time.
pub trait Roster: Send + Sync {
    /// Picks, uniformly, a customer who is not inside and marks them inside; `None` when every
    /// listed customer is inside.
    fn admit(&self, rng: &mut dyn RngCore) -> Option<CustomerId>;
    /// Marks a customer as outside again.
    fn release(&self, customer: &CustomerId);
    /// How many customers the list holds.
    fn size(&self) -> usize;
}

/// Where a shopper who is inside stands, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(crate = "serde")]
pub struct Position {
    pub x: i64,
    pub y: i64,
    /// Simulated milliseconds since the epoch of the shopper's last event.
    pub since_ms: i64,
}

/// Who is inside right now, as published: updated by the scheduler after the sinks took each
/// batch. Only kept when a plugin asks for it ([`BuildContext::presence`]), so large simulations
/// that nobody inspects do not pay for it.
#[derive(Clone, Debug)]
pub struct Presence {
    door: (i64, i64),
    inside: Arc<RwLock<HashMap<CustomerId, Position>>>,
}

impl Presence {
    /// An empty store whose entrance (where shoppers stand when they come in) is at `door`.
    pub fn new(door: (u32, u32)) -> Presence {
        Presence {
            door: (i64::from(door.0), i64::from(door.1)),
            inside: Arc::default(),
        }
    }

    /// Records published events.
    pub fn apply(&self, events: &[Event]) {
        let mut inside = self.inside.write().expect("presence lock");
        for event in events {
            match event.kind {
                EventKind::Enter => {
                    let (x, y) = self.door;
                    inside.insert(
                        event.customer.clone(),
                        Position {
                            x,
                            y,
                            since_ms: event.due_ms,
                        },
                    );
                }
                EventKind::Move { x, y } => {
                    inside.insert(
                        event.customer.clone(),
                        Position {
                            x,
                            y,
                            since_ms: event.due_ms,
                        },
                    );
                }
                EventKind::Exit => {
                    inside.remove(&event.customer);
                }
                // Said where the shopper already stands (the move before it).
                EventKind::Focus { .. } => {}
            }
        }
    }

    /// Everyone inside, ordered by id.
    pub fn snapshot(&self) -> Vec<(CustomerId, Position)> {
        let inside = self.inside.read().expect("presence lock");
        let mut all: Vec<_> = inside.iter().map(|(id, at)| (id.clone(), *at)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The process's Prometheus registry, shared by the core and the plugins.
#[derive(Clone, Debug, Default)]
pub struct MetricsRegistry(Arc<Mutex<Registry>>);

impl MetricsRegistry {
    /// Registers a metric under `name` (without the `customersim_` prefix, which is added).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.0
            .lock()
            .expect("metrics lock")
            .register(name, help, metric);
    }

    /// The registry in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.0.lock().expect("metrics lock");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// A registry whose names all start with `customersim_`.
    pub fn with_prefix() -> MetricsRegistry {
        MetricsRegistry(Arc::new(Mutex::new(Registry::with_prefix("customersim"))))
    }
}

/// What a plugin is built with: the resolved pipeline settings it may need, and the places where
/// plugins that compose (a roster provider and the shoppers' generator) meet.
pub struct BuildContext {
    /// The store's floor plan.
    pub store: StoreLayout,
    /// The topics of the pipeline.
    pub topics: Topics,
    /// The run's seed (derive per-use seeds with [`crate::derive_seed`]).
    pub seed: u64,
    /// Folder of the config file; relative paths in plugin configs resolve against it.
    pub config_dir: PathBuf,
    /// The process's metrics.
    pub metrics: MetricsRegistry,
    roster: Option<Arc<dyn Roster>>,
    presence: Option<Presence>,
}

impl BuildContext {
    /// A context for building the plugins of one pipeline.
    pub fn new(
        store: StoreLayout,
        topics: Topics,
        seed: u64,
        config_dir: PathBuf,
        metrics: MetricsRegistry,
    ) -> BuildContext {
        BuildContext {
            store,
            topics,
            seed,
            config_dir,
            metrics,
            roster: None,
            presence: None,
        }
    }

    /// Resolves a path from a plugin's config against the config file's folder.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.config_dir.join(path)
        }
    }

    /// Offers the pipeline's roster of customers. One per pipeline.
    pub fn provide_roster(&mut self, roster: Arc<dyn Roster>) -> Result<(), PluginError> {
        if self.roster.is_some() {
            return Err(PluginError::Config(
                "only one source may provide the list of customers".into(),
            ));
        }
        self.roster = Some(roster);
        Ok(())
    }

    /// The roster offered by another plugin, if any.
    pub fn roster(&self) -> Option<Arc<dyn Roster>> {
        self.roster.clone()
    }

    /// The presence table, kept from now on.
    pub fn presence(&mut self) -> Presence {
        let door = self.store.entrance();
        self.presence
            .get_or_insert_with(|| Presence::new(door))
            .clone()
    }

    /// The presence table if a plugin asked for it.
    pub fn presence_if_kept(&self) -> Option<Presence> {
        self.presence.clone()
    }
}

/// What a running source gets.
pub struct SourceContext {
    /// The run's clock; sources never read the wall clock.
    pub clock: Clock,
    /// Where the source schedules its events.
    pub timeline: Arc<dyn Timeline>,
    /// For sources that pace the clock ([`crate::Source::paces_clock`]): how far they generated.
    pub watermark: Watermark,
    /// Fires on SIGINT/SIGTERM or when the run ends.
    pub shutdown: Shutdown,
    /// Publishes at once, bypassing the timeline.
    pub publisher: Publisher,
    /// The roster of customers, when the pipeline has one (see [`BuildContext::roster`]).
    pub roster: Option<Arc<dyn Roster>>,
    /// When the doors close (`simulation.duration` after the start): no arrivals from then on.
    pub doors_close_ms: Option<i64>,
    /// This source's seed, derived from the run's seed and its position in the pipeline.
    pub seed: u64,
}

/// What a running sink gets.
pub struct SinkContext {
    /// Fires on SIGINT/SIGTERM or when the run ends.
    pub shutdown: Shutdown,
    /// The topics events go to.
    pub topics: Topics,
    /// The process's metrics.
    pub metrics: MetricsRegistry,
}
