//! Every timeline backend against the kit's conformance suite of the `Timeline` contract: the
//! in-process memory backend, and the Redis backend on the real Redis at 127.0.0.1:6379 (each
//! timeline in a key namespace of its own, deleted afterwards).
//!
//! Backends are opened the way a run opens them: by name through the registry, from their settings
//! as a pipeline file gives them, so a new backend is tested by one more test here.

use std::path::PathBuf;
use std::sync::Arc;

use customersim::plugin_api::{
    BuildContext, MetricsRegistry, StoreLayout, Timeline, TimelineBackend, Topics,
};
use customersim::registry;
use customersim_testkit::redis::Namespace;
use customersim_testkit::timeline::{generating_from_zero, timeline_conformance};

/// Opens a fresh timeline of the registered backend `name` with `settings` (YAML).
async fn open(name: &str, settings: &str) -> Arc<dyn Timeline> {
    let mut cx = BuildContext::new(
        StoreLayout::default(),
        Topics::default(),
        1,
        PathBuf::from("."),
        MetricsRegistry::default(),
    );
    let settings = serde_yaml::from_str(settings).expect("settings are YAML");
    let backend = registry::lookup::<dyn TimelineBackend>(name)
        .expect("the backend is registered")
        .build(settings, &mut cx)
        .expect("the settings are valid");
    let opened = backend
        .open(generating_from_zero())
        .await
        .expect("the timeline opens");
    assert!(
        opened.skipped_at_open.unwrap_or(0) == 0,
        "nothing skipped without a cutoff"
    );
    opened.timeline
}

/// A fresh, empty memory timeline.
async fn memory_timeline() -> Arc<dyn Timeline> {
    open("memory", "{}").await
}

/// A fresh, empty Redis timeline in `namespace`.
async fn redis_timeline(namespace: &Namespace) -> Arc<dyn Timeline> {
    let settings = format!(
        "{{url: \"{}\", key: \"{}\"}}",
        namespace.url(),
        namespace.name()
    );
    open("redis", &settings).await
}

#[tokio::test]
async fn the_memory_timeline_meets_the_contract() {
    timeline_conformance(memory_timeline).await;
}

#[tokio::test]
async fn the_redis_timeline_meets_the_contract() {
    // One namespace per timeline; all of them are deleted when the test ends, pass or fail.
    let mut namespaces = Vec::new();
    timeline_conformance(|| {
        namespaces.push(Arc::new(Namespace::new("conformance")));
        let namespace = namespaces.last().cloned().expect("just pushed");
        async move { redis_timeline(&namespace).await }
    })
    .await;
}
