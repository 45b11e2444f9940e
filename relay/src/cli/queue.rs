//! `ratspost queue list|retry|drop`: the outbound queue (never message content).

use anyhow::Context as _;

use super::QueueCommand;
use crate::config::Config;
use crate::setup::open_store;

pub(super) async fn run(config: &Config, cmd: QueueCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = store::now_millis();
    let result = match cmd {
        QueueCommand::List { json, limit } => match store.list_outbound(limit).await {
            Ok(jobs) if json => serde_json::to_string_pretty(&jobs)
                .map(|j| println!("{j}"))
                .map_err(Into::into),
            Ok(jobs) => {
                println!(
                    "{:>6} {:<13} {:<32} {:<10} {:>8} {:<30} LAST ERROR",
                    "ID", "KIND", "TO", "STATE", "ATTEMPTS", "NEXT ATTEMPT"
                );
                for j in jobs {
                    println!(
                        "{:>6} {:<13} {:<32} {:<10} {:>8} {:<30} {}",
                        j.id,
                        j.kind,
                        j.rcpt_to,
                        j.state,
                        j.attempts,
                        if j.state == "queued" {
                            config.dates().millis(j.next_attempt_at)
                        } else {
                            "-".to_owned()
                        },
                        j.last_error.as_deref().unwrap_or("-")
                    );
                }
                Ok(())
            }
            Err(err) => Err(err.into()),
        },
        QueueCommand::Retry { id } => store
            .retry_job(id, now)
            .await
            .map(|()| println!("Job {id} is due now"))
            .context("retrying the job"),
        QueueCommand::Drop { id, by } => store
            .drop_job(id, &by, now)
            .await
            .map(|()| println!("Job {id} dropped"))
            .context("dropping the job"),
    };
    store.close().await;
    result
}
