//! SIGINT/SIGTERM: stop taking new work, flush what the sinks were handed, exit 0.

use crate::plugin_api::host::Shutdown;

/// Fires `shutdown` on the first SIGINT or SIGTERM.
pub fn trigger_on_signals(shutdown: Shutdown) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received: stopping, flushing the sinks"),
            () = terminate => tracing::info!("SIGTERM received: stopping, flushing the sinks"),
        }
        shutdown.trigger();
    });
}
