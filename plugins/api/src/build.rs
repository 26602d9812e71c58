//! What a plugin is built with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::arrivals::{ArrivalRules, QueueMetrics};
use crate::error::PluginError;
use crate::event::Topics;
use crate::fleet::Fleet;
use crate::layout::StoreLayout;
use crate::load::{LoadPlan, LoadShare};
use crate::metrics::MetricsRegistry;
use crate::presence::{Presence, PresenceRecorder};
use crate::roster::Roster;

/// The resolved pipeline settings a plugin may need when it is checked and built, and the places
/// where plugins that compose (a roster provider and the shoppers' generator) meet.
pub struct BuildContext {
    /// The store's floor plan.
    pub store: StoreLayout,
    /// The topics of the pipeline (made [`Topics::for_fleet`], so `{store}` resolves per event).
    pub topics: Topics,
    /// The stores of the pipeline and the shard this process runs (one store without `fleet:`).
    pub fleet: Fleet,
    /// How focus events are announced when the pipeline makes them (`topics.focus` set), else
    /// `None`: a source that models what its shoppers publish (load stages) counts them with a
    /// [`crate::FocusStage`] of this rule.
    pub focus: Option<crate::focus::Announce>,
    /// The run's seed (derive per-use seeds with [`crate::derive_seed`]).
    pub seed: u64,
    /// Folder of the config file; relative paths in plugin configs resolve against it.
    pub config_dir: PathBuf,
    /// The process's metrics.
    pub metrics: MetricsRegistry,
    roster: Option<Arc<dyn Roster>>,
    pub(crate) presence: Option<PresenceRecorder>,
    queue_metrics: Option<QueueMetrics>,
    opening_hours: Option<ArrivalRules>,
    /// The pipeline's load stages (`load:`), if it has any.
    load: Option<LoadPlan>,
    /// How many sources said they follow them.
    load_followers: Arc<AtomicUsize>,
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
            fleet: Fleet::single(),
            focus: None,
            seed,
            config_dir,
            metrics,
            roster: None,
            presence: None,
            queue_metrics: None,
            opening_hours: None,
            load: None,
            load_followers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Hands the pipeline's load stages to the sources built with this context.
    pub fn set_load(&mut self, plan: LoadPlan) {
        self.load = Some(plan);
    }

    /// The pipeline's load stages, if it has any.
    pub fn load(&self) -> Option<&LoadPlan> {
        self.load.as_ref()
    }

    /// For a source that generates simulated shoppers with these arrival rules: its share of the
    /// pipeline's load stages (`None` without stages), counting it among the sources that follow
    /// them so the target is split over all of them. Refuses (an error naming the keys) arrival
    /// rules that follow the time of day: the stages set the rate over time themselves, and one
    /// rate cannot follow both. Call it from both `check` and `build`.
    pub fn follow_load(&self, arrivals: &ArrivalRules) -> Result<Option<LoadShare>, PluginError> {
        let Some(plan) = &self.load else {
            return Ok(None);
        };
        let keys = arrivals.time_of_day_keys();
        if !keys.is_empty() {
            return Err(PluginError::config(format!(
                "{} (time of day) cannot be combined with the pipeline's `load:` stages, which set \
                 the rate over time themselves: leave out one or the other",
                keys.join(" and ")
            )));
        }
        Ok(Some(LoadShare::new(
            plan.clone(),
            self.load_followers.clone(),
        )))
    }

    /// How many sources follow the load stages ([`BuildContext::follow_load`]) so far.
    pub fn load_followers(&self) -> usize {
        self.load_followers.load(Ordering::SeqCst)
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
            return Err(PluginError::config(
                "only one source may provide the list of customers",
            ));
        }
        self.roster = Some(roster);
        Ok(())
    }

    /// The roster offered by another plugin, if any.
    pub fn roster(&self) -> Option<Arc<dyn Roster>> {
        self.roster.clone()
    }

    /// The entrance queue's metrics, registered on first use and shared by every source of the
    /// pipeline that has a capacity (so they are registered once, and the run report reads them).
    pub fn queue_metrics(&mut self) -> QueueMetrics {
        let metrics = &self.metrics;
        self.queue_metrics
            .get_or_insert_with(|| QueueMetrics::register(metrics))
            .clone()
    }

    /// Tells the pipeline a source keeps opening hours (the first one told is kept), so figures
    /// "while open" (the run report's `mean_inside_open`) leave the closed hours out.
    pub fn announce_opening_hours(&mut self, rules: &ArrivalRules) {
        if rules.has_opening_hours() && self.opening_hours.is_none() {
            self.opening_hours = Some(rules.clone());
        }
    }

    /// The opening hours a source announced, if any.
    pub fn opening_hours(&self) -> Option<ArrivalRules> {
        self.opening_hours.clone()
    }

    /// The entrance queue's metrics, if a source asked for them.
    pub fn queue_metrics_in_use(&self) -> Option<QueueMetrics> {
        self.queue_metrics.clone()
    }

    /// Who is inside, kept from now on for this pipeline.
    pub fn presence(&mut self) -> Presence {
        let entrance = self.store.entrance();
        self.presence
            .get_or_insert_with(|| PresenceRecorder::new(entrance))
            .view()
    }
}
