//! `ratspost queue list|retry|drop|release`: the outbound queue (never message content).

use super::QueueCommand;
use super::actor::{May, prove};
use super::readable::Readable as _;
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
            Err(err) => Err(err).readable(),
        },
        QueueCommand::Retry { id } => store
            .retry_job(id, now)
            .await
            .or_no(format!("job {id}"))
            .map(|()| println!("Job {id} is due now")),
        QueueCommand::Drop { id, by } => drop_job(&store, id, &by, now).await,
        QueueCommand::Release { id, by } => release_job(&store, id, &by, now).await,
    };
    store.close().await;
    result
}

/// Drops queued job `id`, as the admin `by` (who proves it).
async fn drop_job(
    store: &store::Store,
    id: i64,
    by: &str,
    now: store::Millis,
) -> anyhow::Result<()> {
    let admin = prove(store, by, May::Admin, "drop jobs").await?;
    store
        .drop_job(id, &admin.login, now)
        .await
        .or_no(format!("job {id}"))?;
    println!("Job {id} dropped");
    Ok(())
}

/// Releases held job `id`, as the admin `by` (who proves it).
async fn release_job(
    store: &store::Store,
    id: i64,
    by: &str,
    now: store::Millis,
) -> anyhow::Result<()> {
    let admin = prove(store, by, May::Admin, "release held messages").await?;
    store
        .release_job(id, &admin.login, now)
        .await
        .or_no(format!("held job {id}"))?;
    println!("Job {id} released: it is relayed now");
    Ok(())
}
