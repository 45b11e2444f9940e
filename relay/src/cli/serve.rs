//! `ratspost serve`: set up what is missing, bind, serve until SIGTERM/SIGINT, shut down in
//! two phases.

use std::sync::Arc;

use crate::config::Config;
use crate::server::{self, Listeners};
use crate::setup;
use crate::shutdown::Shutdown;

pub(super) async fn run(config: Config) -> anyhow::Result<()> {
    let (store, report) = setup::prepare(&config).await?;
    setup::print_report(&report, &config);
    let listeners = Listeners::bind(&config).await?;
    let grace = config.shutdown_grace;
    let shutdown = Shutdown::new();
    server::start(listeners, Arc::new(config), store.clone(), &shutdown)?;
    tracing::info!(backend = ?store.backend(), "ratspost running");
    wait_for_signal().await;
    tracing::info!(grace_secs = grace.as_secs(), "shutting down");
    shutdown.run(grace).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
