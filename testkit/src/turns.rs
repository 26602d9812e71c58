//! Turns between the tests of one file: tests that measure timing, or that stop a service the
//! others use, run alone; the others share.
//!
//! `cargo test` runs one test binary at a time, so a lock inside the process is enough.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The turns of one test file; declare one `static` per file.
pub struct Turns(RwLock<()>);

impl Turns {
    /// Turns nobody holds yet.
    pub const fn new() -> Turns {
        Turns(RwLock::new(()))
    }

    /// Waits until no other test of the file runs, and keeps them waiting until dropped.
    pub fn alone(&self) -> RwLockWriteGuard<'_, ()> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs beside the other sharing tests, but never beside one that runs alone.
    pub fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Turns {
    fn default() -> Turns {
        Turns::new()
    }
}
