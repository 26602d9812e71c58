//! The process's Prometheus registry, shared by the core and the plugins.

use std::sync::{Arc, Mutex};

use prometheus_client::registry::{Metric, Registry};

/// Where plugins register their metrics; served as Prometheus text (`GET /metrics`).
#[derive(Clone, Debug)]
pub struct MetricsRegistry(Arc<Mutex<Registry>>);

impl Default for MetricsRegistry {
    /// A registry whose names all start with `customersim_`.
    fn default() -> Self {
        MetricsRegistry(Arc::new(Mutex::new(Registry::with_prefix("customersim"))))
    }
}

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
}
