//! The stages between the sources and the timeline: every event a source schedules, or publishes
//! at once, passes through them, whatever the source (built in or out of tree, generating or
//! driven over HTTP). Today one stage: focus ([`crate::focus`]).
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

/// The stages every event of one source passes through on its way to the timeline (or, published
/// at once, to the sinks): today the focus stage. Cheap to clone; clones share the state. Made by
/// the host ([`crate::host::stages`]); empty, it hands events through unchanged.
#[derive(Clone, Debug, Default)]
pub struct Stages {
    focus: Option<Arc<Mutex<FocusStage>>>,
}

/// What [`Stages::apply`] changed, for [`Stages::undo`].
#[derive(Debug, Default)]
pub struct StagesUndo {
    focus: FocusUndo,
}

impl Stages {
    /// The chain with this focus stage (`None`: no focus events).
    pub(crate) fn new(focus: Option<FocusStage>) -> Stages {
        Stages {
            focus: focus.map(|stage| Arc::new(Mutex::new(stage))),
        }
    }

    /// Whether events pass unchanged.
    pub fn is_empty(&self) -> bool {
        self.focus.is_none()
    }

    /// `events` as they leave the stages; with `undo`, what to give [`Stages::undo`] if they are
    /// refused after all.
    pub fn apply(&self, events: Vec<Event>, undo: Option<&mut StagesUndo>) -> Vec<Event> {
        match &self.focus {
            Some(stage) => stage
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(events, undo.map(|undo| &mut undo.focus)),
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
    }
}
