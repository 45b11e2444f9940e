//! `ratspost serve`: set up what is missing, bind, serve until SIGTERM/SIGINT, shut down in
//! two phases.

use std::sync::Arc;

use crate::config::Config;
use crate::server::{self, Listeners};
use crate::setup;
use crate::shutdown::Shutdown;

/// The longest the steps after the tasks' end may take (the final checkpoint, closing the
/// database): a stop takes at most `shutdown.grace_secs` + [`crate::shutdown::ABORT_MARGIN`]
/// + this.
const FINAL_STEPS: std::time::Duration = std::time::Duration::from_secs(3);

pub(super) async fn run(config: Config) -> anyhow::Result<()> {
    // First of all: from this instant a SIGTERM (systemd stopping a unit that is still
    // starting, a test) is caught and waits for the listeners to be up, instead of the
    // default action killing the process mid-setup.
    let mut signals = Signals::install();
    // Held until the process ends: `restore` refuses while a daemon runs here.
    let _running = setup::lock_data_dir(&config)?;
    super::backup::not_refused(&config)?;
    let (store, report) = setup::prepare(&config).await?;
    crate::shared_keys::check(&config, &store).await?;
    setup::print_report(&report, &config);
    let listeners = Listeners::bind(&config).await?;
    let grace = config.shutdown_grace;
    let shutdown = Shutdown::new();
    let checkpoints = server::start(listeners, Arc::new(config), store.clone(), &shutdown)?;
    tracing::info!(backend = ?store.backend(), "ratspost running");
    signals.wait().await;
    tracing::info!(grace_secs = grace.as_secs(), "shutting down");
    shutdown.run(grace).await;
    // The last checkpoint covers everything the stopped tasks recorded. Bounded like the
    // rest of the stop: an unreachable database must not hold it.
    let last = async {
        if let Err(err) = checkpoints.checkpoint_if_moved().await {
            tracing::error!(error = %format!("{err:#}"), "cannot write the final audit checkpoint");
        }
        store.close().await;
    };
    if tokio::time::timeout(FINAL_STEPS, last).await.is_err() {
        tracing::error!(
            "the final audit checkpoint and closing the database took too long; exiting without them"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT, registered when created (a signal that arrives before [`Self::wait`]
/// is kept for it).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Until SIGTERM or SIGINT (or, where they cannot be registered, Ctrl-C).
    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            let term = async {
                match self.term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let int = async {
                match self.int.as_mut() {
                    Some(int) => {
                        int.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                () = term => {}
                () = int => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
