//! SIGINT/SIGTERM: stop taking new work, flush what the sinks were handed, exit 0.

use crate::plugin_api::host::Shutdown;

/// Fires `shutdown` on the first SIGINT or SIGTERM. The handlers are installed before this
/// returns (not when a spawned task first runs), so a signal that comes as soon as the run has
/// started is a clean stop, never the default action that kills the process.
pub fn trigger_on_signals(shutdown: Shutdown) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn received(signal: &mut std::io::Result<Signal>) {
            match signal {
                Ok(signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        let mut interrupt = signal(SignalKind::interrupt());
        let mut terminate = signal(SignalKind::terminate());
        tokio::spawn(async move {
            tokio::select! {
                () = received(&mut interrupt) => tracing::info!("SIGINT received: stopping, flushing the sinks"),
                () = received(&mut terminate) => tracing::info!("SIGTERM received: stopping, flushing the sinks"),
            }
            shutdown.trigger();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("SIGINT received: stopping, flushing the sinks");
            shutdown.trigger();
        }
    });
}
