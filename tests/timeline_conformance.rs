//! Every timeline backend against the kit's conformance suite of the `Timeline` contract: the
//! in-process memory backend, and the Redis backend on the real Redis at 127.0.0.1:6379 (each
//! timeline in a key namespace of its own, deleted afterwards).
//!
//! The backend-specific construction stays in the small functions below.

use std::sync::Arc;

use customersim::config::RedisTimelineConfig;
use customersim::plugin_api::Timeline;
use customersim::timeline::{MemoryTimeline, RedisTimeline};
use customersim_testkit::redis::Namespace;
use customersim_testkit::timeline::timeline_conformance;

/// A fresh, empty memory timeline.
fn memory_timeline() -> Arc<dyn Timeline> {
    Arc::new(MemoryTimeline::default())
}

/// A fresh, empty Redis timeline in `namespace`.
async fn redis_timeline(namespace: &Namespace) -> Arc<dyn Timeline> {
    let config = RedisTimelineConfig {
        url: namespace.url().to_string(),
        key: namespace.name().to_string(),
        ..RedisTimelineConfig::default()
    };
    let (timeline, skipped) = RedisTimeline::open(&config, 1.0, None)
        .await
        .expect("open the Redis timeline");
    assert_eq!(skipped, 0, "nothing skipped without a cutoff");
    Arc::new(timeline)
}

#[tokio::test]
async fn the_memory_timeline_meets_the_contract() {
    timeline_conformance(|| async { memory_timeline() }).await;
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
