//! The stages between the sources and the timeline: every event a source schedules, or publishes
//! at once, passes through them, whatever the source (built in or out of tree, generating or
//! driven over HTTP): focus ([`crate::focus`]), then the sensors ([`crate::sensors`]), which see
//! the focus events as ground truth and the true moves they came from.
//!
//! Each source gets its own chain (so its shoppers are followed in the order it hands them over,
//! whatever other sources do at the same time), made by the host ([`crate::host::stages`]) and
//! applied by [`crate::Schedule`] and [`crate::Publisher`]: a source cannot skip it. The stages run
//! where the events are scheduled, in the instance whose source made them, before a shared
//! timeline: with several instances, each event is staged once, by the one instance that
//! scheduled it.

use std::sync::{Arc, Mutex, PoisonError};

use crate::event::Event;
use crate::focus::{FocusStage, FocusUndo};
use crate::sensors::{SensorStage, SensorUndo};

/// The stages every event of one source passes through on its way to the timeline (or, published
/// at once, to the sinks): the focus stage, then the sensor stage. Cheap to clone; clones share the state. Made by
/// the host ([`crate::host::stages`]); empty, it hands events through unchanged.
#[derive(Clone, Debug, Default)]
pub struct Stages {
    focus: Option<Arc<Mutex<FocusStage>>>,
    sensors: Option<Arc<Mutex<SensorStage>>>,
}

/// What [`Stages::apply`] changed, for [`Stages::undo`].
#[derive(Debug, Default)]
pub struct StagesUndo {
    focus: FocusUndo,
    sensors: SensorUndo,
}

impl Stages {
    /// The chain with this focus stage (`None`: no focus events).
    pub(crate) fn new(focus: Option<FocusStage>, sensors: Option<SensorStage>) -> Stages {
        Stages {
            focus: focus.map(|stage| Arc::new(Mutex::new(stage))),
            sensors: sensors.map(|stage| Arc::new(Mutex::new(stage))),
        }
    }

    /// Whether events pass unchanged.
    pub fn is_empty(&self) -> bool {
        self.focus.is_none() && self.sensors.is_none()
    }

    /// Whether the sensor stage is on: it costs about what generating the events does, so a
    /// generating source hands it its chunks on a thread of its own ([`crate::staging`]).
    pub(crate) fn has_sensors(&self) -> bool {
        self.sensors.is_some()
    }

    /// `events` through the focus stage alone (then [`Stages::apply_sensors`]).
    pub(crate) fn apply_focus(&self, events: Vec<Event>) -> Vec<Event> {
        match &self.focus {
            Some(stage) => stage
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(events, None),
            None => events,
        }
    }

    /// `events`, through the focus stage already, through the sensor stage.
    pub(crate) fn apply_sensors(&self, events: Vec<Event>) -> Vec<Event> {
        match &self.sensors {
            Some(stage) => stage
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(events, None),
            None => events,
        }
    }

    /// `events` as they leave the stages; with `undo`, what to give [`Stages::undo`] if they are
    /// refused after all.
    pub fn apply(&self, events: Vec<Event>, undo: Option<&mut StagesUndo>) -> Vec<Event> {
        let mut undo = undo;
        let events = match &self.focus {
            Some(stage) => stage
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(events, undo.as_deref_mut().map(|undo| &mut undo.focus)),
            None => events,
        };
        match &self.sensors {
            Some(stage) => stage
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(events, undo.map(|undo| &mut undo.sensors)),
            None => events,
        }
    }

    /// Puts back what a refused batch changed.
    pub fn undo(&self, undo: StagesUndo) {
        if let Some(stage) = &self.focus {
            stage
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .undo(undo.focus);
        }
        if let Some(stage) = &self.sensors {
            stage
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .undo(undo.sensors);
        }
    }
}
