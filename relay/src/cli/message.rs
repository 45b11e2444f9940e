//! `ratspost message list`: metadata only, never content. A message whose content was
//! purged under `retention.message_days` is listed with its metadata and `purged` (JSON:
//! `purged_at`).

use serde::Serialize;
use store::MessageFilter;

use webui::datetime::rfc3339;

use super::MessageCommand;
use super::actor::{May, prove};
use super::readable::Readable as _;
use crate::config::Config;
use crate::setup::open_store;

#[derive(Serialize)]
struct Listed {
    id: i64,
    received_at: String,
    /// The same, for the text listing.
    #[serde(skip)]
    received_millis: i64,
    mail_from: String,
    recipients: Vec<String>,
    size: i64,
    sha256: String,
    message_id: Option<String>,
    state: String,
    /// `null` until classified.
    sensitive: Option<bool>,
    categories: Vec<String>,
    /// When its content was purged under `retention.message_days`; `null` while kept.
    purged_at: Option<String>,
}

pub(super) async fn run(config: &Config, cmd: MessageCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = match cmd {
        MessageCommand::List { json, user, limit } => {
            list(
                &store,
                config,
                json,
                MessageFilter {
                    user,
                    limit,
                    ..MessageFilter::default()
                },
            )
            .await
        }
        MessageCommand::RevokeLinks { id, by } => revoke_links(&store, id, &by).await,
    };
    store.close().await;
    result
}

/// Revokes every notice link of message `id`, as the admin `by` (who proves it).
async fn revoke_links(store: &store::Store, id: i64, by: &str) -> anyhow::Result<()> {
    let admin = prove(store, by, May::Admin, "revoke notice links").await?;
    let n = store
        .revoke_notice_tokens(id, &admin.login, store::now_millis())
        .await
        .or_no(format!("message {id}"))?;
    println!("{n} notice link(s) of message {id} revoked");
    Ok(())
}

async fn list(
    store: &store::Store,
    config: &Config,
    json: bool,
    filter: MessageFilter,
) -> anyhow::Result<()> {
    let listed: Vec<Listed> = store
        .list_messages(&filter)
        .await
        .readable()?
        .into_iter()
        .map(|m| Listed {
            id: m.id,
            received_at: rfc3339(m.received_at),
            received_millis: m.received_at,
            mail_from: m.mail_from,
            recipients: m.recipients,
            size: m.size,
            sha256: m.sha256,
            message_id: m.message_id,
            state: m.state,
            sensitive: m.sensitive,
            categories: m.categories,
            purged_at: m.purged_at.map(rfc3339),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    let dates = config.dates();
    println!(
        "{:>6} {:<30} {:<30} {:<30} {:>9} {:<10} {:<10} {:<24} MESSAGE-ID",
        "ID", "RECEIVED", "FROM", "TO", "SIZE", "SHA256", "STATE", "VERDICT"
    );
    for m in listed {
        println!(
            "{:>6} {:<30} {:<30} {:<30} {:>9} {:<10} {:<10} {:<24} {}",
            m.id,
            dates.millis(m.received_millis),
            if m.mail_from.is_empty() {
                "<>"
            } else {
                &m.mail_from
            },
            m.recipients.join(","),
            m.size,
            &m.sha256[..m.sha256.len().min(10)],
            if m.purged_at.is_some() {
                "purged"
            } else {
                &m.state
            },
            match m.sensitive {
                None => "-".to_owned(),
                Some(false) => "clean".to_owned(),
                Some(true) => format!("sensitive:{}", m.categories.join(",")),
            },
            m.message_id.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
