//! Ending a run: the signal plugins listen to, and the request a plugin makes to end it.
//!
//! Like mini-redis' listeners, plugins get only the receiving side: they cannot stop the run by
//! accident. A plugin that has a reason to end the run (the reader of stdout went away) asks for it
//! explicitly through [`EndRun`], which the core logs.

use tokio_util::sync::CancellationToken;

/// Fires on SIGINT/SIGTERM or when the run ends; plugins stop taking new work then.
#[derive(Clone, Debug)]
pub struct ShutdownSignal(pub(crate) CancellationToken);

impl ShutdownSignal {
    /// Whether it fired.
    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once it fires.
    pub async fn wait(&self) {
        self.0.cancelled().await;
    }
}

/// A plugin's request to end the whole run cleanly (exit code 0), e.g. when nobody reads its
/// output any more. Failures are reported by returning an error instead.
#[derive(Clone, Debug)]
pub struct EndRun(pub(crate) CancellationToken);

impl EndRun {
    /// Ends the run: sources stop, what was handed to the sinks is flushed. `why` is logged.
    pub fn request(&self, who: &str, why: &str) {
        if !self.0.is_cancelled() {
            tracing::info!("{who} ends the run: {why}");
        }
        self.0.cancel();
    }
}
