//! The verdict on the system under test: whether it answered what it was sent (expectations)
//! and what the broker delivered (the delivery check).
//!
//! # How it runs
//! - At build time ([`VerdictPlan::build`]) the rules are checked, schemas read, and the sink
//!   whose broker is read back is asked for a [`Subscriber`] (a sink that publishes to a broker
//!   offers one on its own connection settings; the core never learns which broker it is).
//! - At run time the subscriber is started before anything is published. The sink's task hands
//!   each batch it published, with the wall time it was accepted, to the verdict task
//!   ([`Published`]); the subscriber hands it what the broker delivers ([`Heard`]). The task
//!   matches them ([`correlate`], [`delivery`]) and decides what is overdue ten times a second.
//! - After the last batch, it waits for the last window to end (unless the run was interrupted:
//!   then what is still open is *pending*), stops the subscriber and reports ([`VerdictReport`]).
//!
//! Gaps in the subscription (a broker that dropped the connection) are listed with their
//! length: replies sent during a gap may be counted missing, and the report says so.
//!
//! On a timeline shared with other instances (the backend offers [`Peers`]), replies are decided
//! together with them ([`shared`]): each instance counts the replies to the events it published,
//! and a reply that answers nothing, or is invalid, is counted by one of them.
//!
//! # Layout
//! - [`rules`]: `expect:` and `delivery_check:` as written, checked into [`rules::Rule`]s;
//! - [`correlate`]: one rule's open expectations, replies, and counts;
//! - [`delivery`]: the delivery check's bookkeeping;
//! - [`shared`]: deciding replies with the other instances sharing the timeline;
//! - this file: the plan, the task, the live figures and the report.

pub mod correlate;
pub mod delivery;
pub mod rules;
pub mod shared;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::batch::Batch;
use crate::config::ResolvedPipeline;
use crate::lateness::LatenessSummary;
use crate::plugin_api::clock::unix_now_us;
use crate::plugin_api::fleet::ID_BLOCK;
use crate::plugin_api::host::Shutdown;
use crate::plugin_api::{
    BuildContext, Event, Fleet, Heard, Peers, PluginError, Sink, Subscriber, Topics,
};
use crate::registry;
use correlate::{Correlator, Counts, Matched, Taken};
use delivery::{DeliveryCheck, DeliveryCounts, fingerprint};
use rules::Rule;
use shared::{Answer, Settling, Shared};

/// Messages read back that wait for the verdict task: a few hundred bytes each, so a few MB.
const HEARD_QUEUE: usize = 8_192;

/// Published batches that wait for the verdict task (each an `Arc` of the batch the sinks got).
const PUBLISHED_QUEUE: usize = 64;

/// How often overdue expectations are decided.
const DECIDE_EVERY: Duration = Duration::from_millis(100);

/// Subscription gaps kept for the report (more are counted).
const MAX_GAPS_LISTED: usize = 100;

/// A batch a sink published, and when it accepted it (wall clock, µs since the epoch).
pub type Published = (Batch, i64);

/// What a topic read back is for.
#[derive(Clone, Debug, Default)]
struct Route {
    /// Rules whose replies come on it, in `expect:` order.
    rules: Vec<usize>,
    /// It is one the sink publishes to (the delivery check).
    delivery: bool,
    /// The store whose topic it is (`{store}` in the reply topic), for the shard check.
    #[allow(dead_code)]
    store: Option<u32>,
}

/// The verdict, checked and built, not started.
pub struct VerdictPlan {
    rules: Vec<Rule>,
    schemas: Vec<Option<jsonschema::Validator>>,
    delivery: Option<rules::DeliveryCheckConfig>,
    /// The position in `sinks:` of the sink whose broker is read back.
    pub sink: usize,
    subscriber: Box<dyn Subscriber>,
    topics: Vec<String>,
    routes: Vec<Route>,
    /// The sink's topics, by topic text: where a published event is looked for on the way back.
    published_topics: HashMap<String, usize>,
    event_topics: Topics,
    fleet: Fleet,
    live: LiveVerdict,
}

/// The figures as they stand, shared with whoever shows them during the run.
#[derive(Clone, Default)]
pub struct LiveVerdict(Arc<Mutex<VerdictReport>>);

impl LiveVerdict {
    /// A copy of the figures now.
    pub fn snapshot(&self) -> VerdictReport {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl VerdictPlan {
    /// The plan of a pipeline with `expect:` or `delivery_check:`; `None` without either.
    /// Errors name the key (`expect[0].sink`) and are config errors (exit 2).
    pub fn build(
        resolved: &ResolvedPipeline,
        cx: &BuildContext,
    ) -> Result<Option<VerdictPlan>, PluginError> {
        let config = &resolved.config;
        if config.expect.is_empty() && config.delivery_check.is_none() {
            return Ok(None);
        }
        let origin = &resolved.origin;
        let rules = rules::check_rules(&config.expect)
            .map_err(|(key, why)| PluginError::config(format!("{origin}: {key}: {why}")))?;
        let sink = choose_sink(resolved, &rules, cx)?;
        let spec = &config.sinks[sink];
        let plugin = registry::lookup::<dyn Sink>(&spec.kind).map_err(PluginError::Config)?;
        let subscriber = plugin
            .subscriber(serde_yaml::Value::Mapping(spec.settings.clone()), cx)
            .expect("choose_sink picked a sink that reads back")
            .map_err(|error| {
                error.within(format!("{origin}: sinks[{sink}] (type: {})", spec.kind))
            })?;
        let schemas = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                rule.schema
                    .as_ref()
                    .map(|path| load_schema(&cx.resolve_path(path)))
                    .transpose()
                    .map_err(|why| {
                        PluginError::config(format!("{origin}: expect[{index}].schema: {why}"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // Every topic read back, once, with what it is for.
        let fleet = resolved.fleet.clone();
        let mut topics: Vec<String> = Vec::new();
        let mut routes: Vec<Route> = Vec::new();
        let mut route_of = |topic: String, store: Option<u32>| -> usize {
            match topics.iter().position(|known| *known == topic) {
                Some(index) => index,
                None => {
                    topics.push(topic);
                    routes.push(Route {
                        store,
                        ..Route::default()
                    });
                    topics.len() - 1
                }
            }
        };
        let mut rule_routes = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule
                .reply_topic
                .contains(crate::plugin_api::STORE_PLACEHOLDER)
            {
                for store in fleet.local_stores() {
                    let topic = rule
                        .reply_topic
                        .replace(crate::plugin_api::STORE_PLACEHOLDER, fleet.id(store));
                    rule_routes.push((route_of(topic, Some(store)), index));
                }
            } else {
                rule_routes.push((route_of(rule.reply_topic.clone(), None), index));
            }
        }
        let event_topics = cx.topics.clone();
        let mut published_topics = HashMap::new();
        if config.delivery_check.is_some() {
            let per_store = event_topics.all_stores();
            let stores: Vec<(Option<u32>, &[String; 4])> = if per_store.len() == 1 {
                vec![(None, &per_store[0])]
            } else {
                fleet
                    .local_stores()
                    .map(|store| (Some(store), &per_store[store as usize]))
                    .collect()
            };
            for (store, topics_of_store) in stores {
                for (kind, topic) in topics_of_store.iter().enumerate() {
                    // Focus is published only when `topics.focus` is set.
                    if kind == 3 && event_topics.focus.is_none() {
                        continue;
                    }
                    let route = route_of(topic.clone(), store);
                    published_topics.insert(topic.clone(), route);
                }
            }
        }
        for (route, rule) in rule_routes {
            routes[route].rules.push(rule);
        }
        for route in published_topics.values() {
            routes[*route].delivery = true;
        }
        let live = LiveVerdict::default();
        *live.0.lock().unwrap_or_else(|p| p.into_inner()) =
            VerdictReport::empty(&rules, config.delivery_check.is_some());
        Ok(Some(VerdictPlan {
            rules,
            schemas,
            delivery: config.delivery_check.clone(),
            sink,
            subscriber,
            topics,
            routes,
            published_topics,
            event_topics,
            fleet,
            live,
        }))
    }

    /// What the verdict will check, resolved (defaults filled in, `{store}` expanded), as
    /// `validate` prints it: one line per rule and one for the delivery check.
    pub fn describe(&self, sink_kind: &str) -> Vec<String> {
        let reader = format!("read back through sinks[{}] (type: {sink_kind})", self.sink);
        let mut lines: Vec<String> = self
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let filter: String = rule
                    .filter
                    .iter()
                    .map(|(member, allowed)| {
                        format!(" with {} in [{}]", member.name(), allowed.join(", "))
                    })
                    .collect();
                let topics: Vec<&str> = self
                    .routes
                    .iter()
                    .zip(&self.topics)
                    .filter(|(route, _)| route.rules.contains(&index))
                    .map(|(_, topic)| topic.as_str())
                    .collect();
                format!(
                    "expect {:?}: every {} event{filter} expects a reply on {} whose {} equals the event's {}, within {:?} (late until {:?}){}; {reader}",
                    rule.name,
                    rule.on.as_str(),
                    topics.join(", "),
                    rule.reply_field,
                    rule.event_field.name(),
                    rule.within,
                    rule.within + rule.grace,
                    if rule.schema.is_some() {
                        ", valid against its schema"
                    } else {
                        ""
                    },
                )
            })
            .collect();
        if let Some(check) = &self.delivery {
            lines.push(format!(
                "delivery check: every event published on {} topic(s) must come back within {:?} (at most {} tracked at once); {reader}",
                self.published_topics.len(),
                check.within,
                check.max_tracked
            ));
        }
        lines
    }

    /// The figures as they stand during the run (for a live view).
    pub fn live(&self) -> LiveVerdict {
        self.live.clone()
    }

    /// Subscribes (returning once the broker confirmed it, so nothing published later is
    /// missed) and starts the task. Feed it the sink's published batches through the returned
    /// sender; the report comes from [`RunningVerdict::finish`]. With `peers` (the timeline is
    /// shared with other instances: [`OpenedTimeline::peers`](crate::plugin_api::OpenedTimeline))
    /// replies are decided with them ([`shared`]); it joins them before returning.
    pub async fn start(
        self,
        peers: Option<Arc<dyn Peers>>,
    ) -> Result<(mpsc::Sender<Published>, RunningVerdict), PluginError> {
        let (heard_tx, heard) = mpsc::channel(HEARD_QUEUE);
        let stop_reading = Shutdown::new();
        self.subscriber
            .start(self.topics.clone(), heard_tx, stop_reading.signal())
            .await
            .map_err(|error| error.within("reading back for the verdict"))?;
        let (answers_tx, answers) = mpsc::channel(1);
        let shared = match peers {
            Some(peers) if !self.rules.is_empty() => {
                let mut shared = Shared::new(peers, &self.rules, answers_tx, unix_now_us());
                shared.join().await;
                tracing::info!(
                    "verdict: replies are decided with the other instances of {} (each waits until every instance has recorded what it published by then)",
                    shared.kept_at()
                );
                Some(shared)
            }
            _ => None,
        };
        let (published_tx, published) = mpsc::channel(PUBLISHED_QUEUE);
        let interrupted = Arc::new(AtomicBool::new(false));
        let state = State {
            shared,
            correlators: self.rules.into_iter().map(Correlator::new).collect(),
            schemas: self.schemas,
            delivery: self
                .delivery
                .as_ref()
                .map(|config| DeliveryCheck::new(config.within, config.max_tracked)),
            routes: self.routes,
            published_topics: self.published_topics,
            event_topics: self.event_topics,
            fleet: self.fleet,
            gaps: Vec::new(),
            gap_count: 0,
            lost_since: None,
            payload: Vec::new(),
        };
        let task = tokio::spawn(state.run(
            published,
            heard,
            answers,
            self.live,
            interrupted.clone(),
            stop_reading,
        ));
        Ok((published_tx, RunningVerdict { task, interrupted }))
    }
}

/// The verdict task, running.
pub struct RunningVerdict {
    task: JoinHandle<VerdictReport>,
    interrupted: Arc<AtomicBool>,
}

impl RunningVerdict {
    /// Once the sinks finished (the published sender is dropped): waits for the last windows
    /// (not when `interrupted`: the run was stopped by a signal) and returns the report.
    pub async fn finish(self, interrupted: bool) -> Result<VerdictReport, PluginError> {
        self.interrupted.store(interrupted, Ordering::Relaxed);
        self.task
            .await
            .map_err(|panic| PluginError::fatal(format!("the verdict task panicked: {panic}")))
    }
}

/// Picks the one sink whose broker the rules and the delivery check read back from.
fn choose_sink(
    resolved: &ResolvedPipeline,
    rules: &[Rule],
    cx: &BuildContext,
) -> Result<usize, PluginError> {
    let config = &resolved.config;
    let origin = &resolved.origin;
    let can_read_back = |index: usize| {
        let spec = &config.sinks[index];
        registry::lookup::<dyn Sink>(&spec.kind)
            .ok()
            .and_then(|plugin| {
                plugin.subscriber(serde_yaml::Value::Mapping(spec.settings.clone()), cx)
            })
            .is_some()
    };
    let mut asked: Vec<(String, usize)> = rules
        .iter()
        .enumerate()
        .filter_map(|(index, rule)| {
            rule.sink
                .map(|sink| (format!("expect[{index}].sink"), sink))
        })
        .collect();
    if let Some(sink) = config.delivery_check.as_ref().and_then(|check| check.sink) {
        asked.push(("delivery_check.sink".to_string(), sink));
    }
    for (key, sink) in &asked {
        if *sink >= config.sinks.len() {
            return Err(PluginError::config(format!(
                "{origin}: {key}: there is no sinks[{sink}] (the pipeline has {} sinks)",
                config.sinks.len()
            )));
        }
        if !can_read_back(*sink) {
            return Err(PluginError::config(format!(
                "{origin}: {key}: sinks[{sink}] (type: {}) cannot read back from a broker",
                config.sinks[*sink].kind
            )));
        }
        if *sink != asked[0].1 {
            return Err(PluginError::config(format!(
                "{origin}: {key}: every expectation and the delivery check read back from one sink ({} names sinks[{}])",
                asked[0].0, asked[0].1
            )));
        }
    }
    if let Some((_, sink)) = asked.first() {
        return Ok(*sink);
    }
    let readers: Vec<usize> = (0..config.sinks.len())
        .filter(|i| can_read_back(*i))
        .collect();
    let key = if rules.is_empty() {
        "delivery_check"
    } else {
        "expect"
    };
    match readers.as_slice() {
        [one] => Ok(*one),
        [] => Err(PluginError::config(format!(
            "{origin}: {key}: no sink in the pipeline can read back from its broker (a sink publishing to MQTT or AMQP can; stdout and web pages cannot)"
        ))),
        several => Err(PluginError::config(format!(
            "{origin}: {key}: sinks {several:?} can all read back: set `sink:` to the position of the one the system under test answers on"
        ))),
    }
}

fn load_schema(path: &std::path::Path) -> Result<jsonschema::Validator, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let schema: serde_json::Value = serde_json::from_str(&text)
        .map_err(|error| format!("{} is not JSON: {error}", path.display()))?;
    jsonschema::validator_for(&schema)
        .map_err(|error| format!("{} is not a valid JSON Schema: {error}", path.display()))
}

/// The verdict task's state.
struct State {
    correlators: Vec<Correlator>,
    schemas: Vec<Option<jsonschema::Validator>>,
    delivery: Option<DeliveryCheck>,
    routes: Vec<Route>,
    published_topics: HashMap<String, usize>,
    event_topics: Topics,
    fleet: Fleet,
    gaps: Vec<Gap>,
    gap_count: u64,
    lost_since: Option<(i64, String)>,
    /// Reused payload buffer (the delivery check renders each published event).
    payload: Vec<u8>,
    /// The instances sharing the timeline, when it is shared.
    shared: Option<Shared>,
}

impl State {
    async fn run(
        mut self,
        mut published: mpsc::Receiver<Published>,
        mut heard: mpsc::Receiver<Heard>,
        mut answers: mpsc::Receiver<Answer>,
        live: LiveVerdict,
        interrupted: Arc<AtomicBool>,
        stop_reading: Shutdown,
    ) -> VerdictReport {
        let mut tick = tokio::time::interval(DECIDE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut publishing = true;
        let mut reading = true;
        let mut last_deadline: Option<i64> = None;
        loop {
            tokio::select! {
                batch = published.recv(), if publishing => match batch {
                    Some((events, at_us)) => self.published(&events, at_us),
                    None => {
                        publishing = false;
                        if interrupted.load(Ordering::Relaxed) {
                            break;
                        }
                        last_deadline = self.last_deadline();
                        if last_deadline.is_none() {
                            break;
                        }
                    }
                },
                message = heard.recv(), if reading && !self.shared.as_ref().is_some_and(Shared::full) => match message {
                    Some(message) => self.heard(message),
                    // The subscription ended for good: what is open can only be missed now.
                    None => reading = false,
                },
                Some(answer) = answers.recv(), if self.shared.is_some() => self.exchanged(answer),
                _ = tick.tick() => {
                    let now = unix_now_us();
                    if let Some(shared) = &mut self.shared {
                        let mark = shared.own_mark(now, publishing, published.is_empty());
                        shared.start_exchange(&self.correlators, now, mark, false);
                    }
                    self.decide_until(now);
                    *live.0.lock().unwrap_or_else(|p| p.into_inner()) = self.report();
                    if !publishing && last_deadline.is_none_or(|deadline| now > deadline) {
                        break;
                    }
                }
            }
        }
        stop_reading.trigger();
        // What came before the stop is still judged.
        while let Ok(message) = heard.try_recv() {
            self.heard(message);
        }
        if self.shared.is_some() {
            self.wind_down(&mut answers, &mut heard).await;
        }
        let interrupted = interrupted.load(Ordering::Relaxed);
        for correlator in &mut self.correlators {
            if interrupted {
                correlator.settle_interrupted();
            } else {
                correlator.decide_until(unix_now_us());
                correlator.settle();
            }
        }
        if let Some(delivery) = &mut self.delivery {
            if !interrupted {
                delivery.decide_until(unix_now_us());
            }
            delivery.settle(interrupted);
        }
        if let Some((since, why)) = self.lost_since.take() {
            self.push_gap(since, None, why);
        }
        let report = self.report();
        *live.0.lock().unwrap_or_else(|p| p.into_inner()) = report.clone();
        report
    }

    fn last_deadline(&self) -> Option<i64> {
        self.correlators
            .iter()
            .filter_map(Correlator::last_deadline_us)
            .chain(
                self.delivery
                    .as_ref()
                    .and_then(DeliveryCheck::last_deadline_us),
            )
            .max()
    }

    /// Shared timelines: once reading stopped, decides the replies still waiting (waiting for
    /// the others' records as during the run, at most [`shared::MAX_WAIT`]) and tells the others
    /// it stopped reading.
    async fn wind_down(
        &mut self,
        answers: &mut mpsc::Receiver<Answer>,
        heard: &mut mpsc::Receiver<Heard>,
    ) {
        let stopped_us = unix_now_us();
        let force_after =
            stopped_us + i64::try_from(shared::MAX_WAIT.as_micros()).unwrap_or(i64::MAX);
        if let Some(shared) = &mut self.shared {
            shared.reading_until_us = Some(stopped_us);
        }
        let mut tick = tokio::time::interval(DECIDE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Replies read while the subscription was stopping are decided too (they came after
            // the stop: counted here only when another instance reads for this one).
            while let Ok(message) = heard.try_recv() {
                self.heard(message);
            }
            let shared = self.shared.as_mut().expect("a shared verdict");
            let now = unix_now_us();
            // Gives up telling the others (the backend is unreachable) once every reply is
            // decided and the longest wait is over.
            if shared.done() || (now > force_after && shared.settling.is_empty() && shared.idle()) {
                break;
            }
            if shared.idle() {
                shared.start_exchange(&self.correlators, now, i64::MAX, now > force_after);
            }
            tokio::select! {
                Some(answer) = answers.recv() => self.exchanged(answer),
                _ = tick.tick() => {}
            }
        }
        if let Some(shared) = &self.shared {
            tracing::debug!(
                "verdict: {} exchanges with the other instances of {}",
                shared.exchanges,
                shared.kept_at()
            );
        }
    }

    /// An exchange with the other instances came back: learns their records of the keys looked
    /// up and decides the replies it was for.
    fn exchanged(&mut self, answer: Answer) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let decide = shared.answered(answer, unix_now_us());
        let replies: Vec<Settling> = shared.settling.drain(..decide.replies).collect();
        let overtake_us = shared.overtake_us();
        if let Some(floor) = replies.first().map(Settling::received_us) {
            for found in &decide.found {
                self.correlators[found.rule].learn(
                    &found.key,
                    &found.entries,
                    found.until_us,
                    floor,
                );
            }
        }
        for reply in replies {
            self.decide_reply(reply, overtake_us);
        }
    }

    /// Decides one reply that waited for the other instances' records.
    fn decide_reply(&mut self, reply: Settling, overtake_us: i64) {
        match reply {
            Settling::Invalid { rule, received_us } => self.invalid(rule, received_us),
            Settling::Valid { received_us, keys } => {
                for (index, key) in &keys {
                    match self.correlators[*index].take(key, received_us, overtake_us) {
                        Some(Taken::Here) => return,
                        Some(Taken::Elsewhere) => {
                            self.correlators[*index].counts.foreign += 1;
                            return;
                        }
                        None => {}
                    }
                }
                let (index, key) = &keys[0];
                if self.foreign(*index, key) || !self.counts_unclaimed(received_us) {
                    self.correlators[*index].counts.foreign += 1;
                } else {
                    self.correlators[*index].counts.unexpected += 1;
                }
            }
        }
    }

    /// Whether this instance counts a reply that came at `received_us` and answers nothing (or
    /// is invalid): always, unless the timeline is shared and another instance does.
    fn counts_unclaimed(&self, received_us: i64) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.counts_unclaimed(received_us))
    }

    fn decide_until(&mut self, now_us: i64) {
        let until_us = self
            .shared
            .as_ref()
            .map_or(now_us, |shared| shared.decide_watermark(now_us));
        for correlator in &mut self.correlators {
            correlator.decide_until(until_us);
        }
        if let Some(delivery) = &mut self.delivery {
            delivery.decide_until(now_us);
        }
    }

    fn published(&mut self, events: &[Event], at_us: i64) {
        for (index, correlator) in self.correlators.iter_mut().enumerate() {
            for event in events {
                if correlator.rule.selects(event)
                    && let Some(key) = correlator.rule.key(event)
                {
                    match &mut self.shared {
                        None => {
                            correlator.expect(key, at_us);
                        }
                        Some(shared) => {
                            if correlator.expect(key.clone(), at_us) {
                                shared.record(index, key, at_us);
                            }
                        }
                    }
                }
            }
        }
        if let Some(shared) = &mut self.shared {
            shared.received(at_us);
        }
        if let Some(delivery) = &mut self.delivery {
            for event in events {
                let topic = self.event_topics.for_event(event);
                let Some(&route) = self.published_topics.get(topic.as_ref()) else {
                    continue;
                };
                self.payload.clear();
                event.write_payload(&mut self.payload);
                delivery.published(fingerprint(route, &self.payload), at_us);
            }
        }
    }

    fn heard(&mut self, heard: Heard) {
        match heard {
            Heard::Message(message) => {
                let Some(route) = self.routes.get(message.topic) else {
                    return;
                };
                if route.delivery
                    && let Some(delivery) = &mut self.delivery
                {
                    delivery.received(
                        fingerprint(message.topic, &message.payload),
                        message.received_us,
                    );
                }
                if !route.rules.is_empty() {
                    self.reply(message.topic, &message.payload, message.received_us);
                }
            }
            Heard::Lost { at_us, why } => {
                self.gap_count += 1;
                self.lost_since.get_or_insert((at_us, why));
            }
            Heard::Restored { at_us } => {
                if let Some((since, why)) = self.lost_since.take() {
                    self.push_gap(since, Some(at_us), why);
                }
            }
        }
    }

    fn push_gap(&mut self, from_us: i64, to_us: Option<i64>, why: String) {
        if self.gaps.len() < MAX_GAPS_LISTED {
            self.gaps.push(Gap {
                from: crate::scheduler::format_ms(from_us / 1000),
                to: to_us.map(|to| crate::scheduler::format_ms(to / 1000)),
                seconds: to_us.map(|to| (to - from_us) as f64 / 1e6),
                why,
            });
        }
    }

    /// One reply on a topic (by index) that rules read: the first rule it answers takes it.
    fn reply(&mut self, topic: usize, payload: &[u8], received_us: i64) {
        let rules = std::mem::take(&mut self.routes[topic].rules);
        self.match_reply(&rules, payload, received_us);
        self.routes[topic].rules = rules;
    }

    fn match_reply(&mut self, rules: &[usize], payload: &[u8], received_us: i64) {
        let first = rules[0];
        // The whole document only when a rule checks it against a schema.
        let document = if rules.iter().any(|index| self.schemas[*index].is_some()) {
            match serde_json::from_slice::<serde_json::Value>(payload) {
                Ok(document) => Some(document),
                Err(_) => {
                    self.reply_invalid(first, received_us);
                    return;
                }
            }
        } else {
            None
        };
        let mut waiting: Option<(usize, String)> = None;
        let mut keys: Vec<(usize, String)> = Vec::new();
        for &index in rules {
            let field = &self.correlators[index].rule.reply_field;
            let key = match (&document, &self.schemas[index]) {
                (Some(document), Some(schema)) if !schema.is_valid(document) => continue,
                (Some(document), _) => field.text(document),
                (None, _) => match field.read(payload) {
                    Ok(key) => key,
                    Err(_) => {
                        self.reply_invalid(first, received_us);
                        return;
                    }
                },
            };
            let Some(key) = key else {
                continue;
            };
            if self.shared.is_some() {
                keys.push((index, key));
                continue;
            }
            match self.correlators[index].reply(&key, received_us) {
                Matched::Answered => return,
                Matched::Nothing => {
                    waiting.get_or_insert((index, key));
                }
            }
        }
        if let Some(shared) = &mut self.shared {
            shared.settling.push_back(if keys.is_empty() {
                Settling::Invalid {
                    rule: first,
                    received_us,
                }
            } else {
                Settling::Valid { received_us, keys }
            });
            return;
        }
        match waiting {
            None => self.invalid(first, received_us),
            Some((index, key)) if self.foreign(index, &key) => {
                self.correlators[index].counts.foreign += 1;
            }
            Some((index, key)) => self.correlators[index].wait_in_limbo(key, received_us),
        }
    }

    /// A reply that names no event: counted now, or, on a shared timeline, once it is its turn.
    fn reply_invalid(&mut self, rule: usize, received_us: i64) {
        match &mut self.shared {
            Some(shared) => shared
                .settling
                .push_back(Settling::Invalid { rule, received_us }),
            None => self.invalid(rule, received_us),
        }
    }

    /// Counts a reply that names no event (not JSON, no such field, failing the schema). With
    /// shards that all read one reply topic, only the first shard counts it (the others call it
    /// foreign), and on a shared timeline only one of the instances reading then, so the
    /// instances' counts add up.
    fn invalid(&mut self, rule: usize, received_us: i64) {
        let shared_topic = !self.correlators[rule]
            .rule
            .reply_topic
            .contains(crate::plugin_api::STORE_PLACEHOLDER);
        let elsewhere =
            (shared_topic && self.fleet.shard().index != 0) || !self.counts_unclaimed(received_us);
        let counts = &mut self.correlators[rule].counts;
        if elsewhere {
            counts.foreign += 1;
        } else {
            counts.invalid += 1;
        }
    }

    /// Whether a reply keyed by a customer id belongs to a shopper of a store another shard
    /// runs: generated ids carry their store (`(store + 1) × 10⁹ + serial`), and any other id
    /// has the home store a customer list gives it without a `store` column (a stable hash of
    /// the id). Every shard reads a reply topic without `{store}`, so each counts a reply that
    /// answers nothing as unexpected only when it owns the id: the shards' counts add up.
    fn foreign(&self, rule: usize, key: &str) -> bool {
        let rule = &self.correlators[rule].rule;
        if rule.event_field != rules::Member::Id
            || rule
                .reply_topic
                .contains(crate::plugin_api::STORE_PLACEHOLDER)
            || !self.fleet.is_configured()
        {
            return false;
        }
        let store = match key.parse::<u64>() {
            Ok(id) if id >= ID_BLOCK => u32::try_from(id / ID_BLOCK - 1).ok(),
            _ => None,
        }
        .filter(|store| (*store as usize) < self.fleet.len())
        .or_else(|| self.fleet.home_store(key, None));
        store.is_some_and(|store| !self.fleet.runs(store))
    }

    fn report(&self) -> VerdictReport {
        VerdictReport {
            expectations: self
                .correlators
                .iter()
                .map(|correlator| ExpectationReport {
                    name: correlator.rule.name.clone(),
                    event: correlator.rule.on.as_str(),
                    reply_topic: correlator.rule.reply_topic.clone(),
                    within_seconds: correlator.rule.within.as_secs_f64(),
                    counts: correlator.counts.clone(),
                    latency_seconds: LatencyFigures::of(&correlator.latency.summary()),
                    latency: correlator.latency.summary(),
                })
                .collect(),
            delivery: self.delivery.as_ref().map(|check| DeliveryReport {
                counts: check.counts.clone(),
                latency_seconds: LatencyFigures::of(&check.latency.summary()),
                latency: check.latency.summary(),
            }),
            subscription_gaps: self.gap_count,
            gaps: self.gaps.clone(),
        }
    }
}

/// What the verdict found; part of the run report (`verdict`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerdictReport {
    pub expectations: Vec<ExpectationReport>,
    pub delivery: Option<DeliveryReport>,
    /// Times the subscription was lost during the run.
    pub subscription_gaps: u64,
    /// The first gaps: when the connection was lost, when it was back (`null`: not before the
    /// end), and why.
    pub gaps: Vec<Gap>,
}

/// One rule's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectationReport {
    pub name: String,
    pub event: &'static str,
    pub reply_topic: String,
    pub within_seconds: f64,
    #[serde(flatten)]
    pub counts: Counts,
    /// Reply latency (receipt − publish) of the replies that answered something.
    pub latency_seconds: LatencyFigures,
    #[serde(skip)]
    pub latency: LatenessSummary,
}

/// The delivery check's figures.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryReport {
    #[serde(flatten)]
    pub counts: DeliveryCounts,
    /// End-to-end latency (receipt − publish).
    pub latency_seconds: LatencyFigures,
    #[serde(skip)]
    pub latency: LatenessSummary,
}

/// One gap in the subscription.
#[derive(Clone, Debug, Serialize)]
pub struct Gap {
    pub from: String,
    pub to: Option<String>,
    pub seconds: Option<f64>,
    pub why: String,
}

/// Percentiles of a latency histogram (interpolated within buckets), seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyFigures {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencyFigures {
    fn of(summary: &LatenessSummary) -> LatencyFigures {
        LatencyFigures {
            p50: summary.quantile_seconds(0.5),
            p95: summary.quantile_seconds(0.95),
            p99: summary.quantile_seconds(0.99),
            max: summary.max_seconds(),
        }
    }
}

impl VerdictReport {
    fn empty(rules: &[Rule], delivery: bool) -> VerdictReport {
        VerdictReport {
            expectations: rules
                .iter()
                .map(|rule| ExpectationReport {
                    name: rule.name.clone(),
                    event: rule.on.as_str(),
                    reply_topic: rule.reply_topic.clone(),
                    within_seconds: rule.within.as_secs_f64(),
                    counts: Counts::default(),
                    latency_seconds: LatencyFigures::default(),
                    latency: LatenessSummary::default(),
                })
                .collect(),
            delivery: delivery.then(|| DeliveryReport {
                counts: DeliveryCounts::default(),
                latency_seconds: LatencyFigures::default(),
                latency: LatenessSummary::default(),
            }),
            subscription_gaps: 0,
            gaps: Vec::new(),
        }
    }

    /// The summary printed on stderr at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "verdict");
        for rule in &self.expectations {
            let c = &rule.counts;
            let _ = writeln!(
                out,
                "  {} ({} → {}, within {}s)",
                rule.name, rule.event, rule.reply_topic, rule.within_seconds
            );
            let _ = writeln!(
                out,
                "    expected {}  answered {}  late {}  missing {}  unexpected {}  invalid {}{}{}{}",
                c.expected,
                c.answered,
                c.late,
                c.missing,
                c.unexpected,
                c.invalid,
                if c.foreign > 0 {
                    format!("  other instances' {}", c.foreign)
                } else {
                    String::new()
                },
                if c.untracked > 0 {
                    format!("  untracked {}", c.untracked)
                } else {
                    String::new()
                },
                if c.pending > 0 {
                    format!("  pending {} (run stopped)", c.pending)
                } else {
                    String::new()
                },
            );
            let l = &rule.latency_seconds;
            let _ = writeln!(
                out,
                "    reply latency p50 {:.3}s  p95 {:.3}s  p99 {:.3}s  max {:.3}s",
                l.p50, l.p95, l.p99, l.max
            );
        }
        if let Some(delivery) = &self.delivery {
            let c = &delivery.counts;
            let _ = writeln!(
                out,
                "  delivery: received {} of {} published, lost {}, duplicates {}, foreign {}",
                c.received, c.published, c.lost, c.duplicates, c.foreign
            );
            let l = &delivery.latency_seconds;
            let _ = writeln!(
                out,
                "    end-to-end latency p50 {:.3}s  p99 {:.3}s  max {:.3}s",
                l.p50, l.p99, l.max
            );
        }
        if self.subscription_gaps > 0 {
            let total: f64 = self.gaps.iter().filter_map(|gap| gap.seconds).sum();
            let _ = writeln!(
                out,
                "  reading back was interrupted {} time(s) ({total:.1} s): replies sent meanwhile may count as missing",
                self.subscription_gaps
            );
        }
        out
    }
}
