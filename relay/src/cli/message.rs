//! `ratspost message list`: metadata only, never content.

use serde::Serialize;
use store::MessageFilter;

use webui::datetime::rfc3339;

use super::MessageCommand;
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
}

pub(super) async fn run(config: &Config, cmd: MessageCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let (json, user, limit) = match cmd {
        MessageCommand::List { json, user, limit } => (json, user, limit),
        MessageCommand::RevokeLinks { id, by } => {
            let n = store
                .revoke_notice_tokens(id, &by, store::now_millis())
                .await;
            store.close().await;
            println!("{} notice link(s) of message {id} revoked", n?);
            return Ok(());
        }
    };
    let messages = store.list_messages(&MessageFilter { user, limit }).await;
    store.close().await;
    let listed: Vec<Listed> = messages?
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
            m.state,
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
