//! `ratspost app-password create|list|revoke`: one password per device, so losing a phone
//! means revoking that phone alone. Creation and revocation are audited.

use super::AppPasswordCommand;
use super::actor::{May, prove};
use super::readable::Readable as _;
use crate::config::Config;
use crate::setup::open_store;

pub(super) async fn run(config: &Config, cmd: AppPasswordCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = match cmd {
        AppPasswordCommand::Create {
            login,
            label,
            by,
            json,
        } => {
            let user = store
                .user_by_login(&login)
                .await
                .or_no(format!("user {}", login.trim().to_ascii_lowercase()))?;
            let actor = owner_or_admin(&store, &by, &user, "create app passwords").await?;
            let change = store::DeviceChange {
                user_id: user.id,
                login: &user.login,
                label: &label,
                actor: &actor,
            };
            let password = match store.issue_app_password(&change, store::now_millis()).await {
                Err(err) if err.is_conflict() => anyhow::bail!(
                    "{} has an app password labelled {:?} already",
                    user.login,
                    label.trim()
                ),
                other => other.readable()?,
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"login": user.login, "label": label.trim(), "password": password})
                );
            } else {
                println!(
                    "App password for {} on {:?} (shown only once): {password}",
                    user.login,
                    label.trim()
                );
            }
            Ok(())
        }
        AppPasswordCommand::List { login, json } => {
            let user = store
                .user_by_login(&login)
                .await
                .or_no(format!("user {}", login.trim().to_ascii_lowercase()))?;
            let list = store.app_passwords(user.id).await.readable()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("{} has no app passwords", user.login);
            } else {
                let dates = config.dates();
                println!(
                    "{:<24} {:<30} {:<30} LAST IP",
                    "LABEL", "CREATED", "LAST USED"
                );
                for a in list {
                    println!(
                        "{:<24} {:<30} {:<30} {}",
                        a.label,
                        dates.millis(a.created_at),
                        dates.or(a.last_used_at, "never"),
                        a.last_ip.unwrap_or_else(|| "-".to_owned())
                    );
                }
            }
            Ok(())
        }
        AppPasswordCommand::Revoke { login, label, by } => {
            let user = store
                .user_by_login(&login)
                .await
                .or_no(format!("user {}", login.trim().to_ascii_lowercase()))?;
            let actor = owner_or_admin(&store, &by, &user, "revoke app passwords").await?;
            let change = store::DeviceChange {
                user_id: user.id,
                login: &user.login,
                label: &label,
                actor: &actor,
            };
            store
                .withdraw_app_password(&change, store::now_millis())
                .await
                .or_no(format!("app password {:?} of {}", label.trim(), user.login))?;
            println!(
                "Revoked the app password {:?} of {}",
                label.trim(),
                user.login
            );
            Ok(())
        }
    };
    store.close().await;
    result
}

/// An app password opens a mailbox: only its owner or an admin may create or revoke one,
/// proven by their password. Returns the actor's login for the audit entry.
async fn owner_or_admin(
    store: &store::Store,
    by: &str,
    owner: &store::User,
    doing: &str,
) -> anyhow::Result<String> {
    let actor = prove(store, by, May::AnyUser, doing).await?;
    anyhow::ensure!(
        actor.id == owner.id || actor.role == store::Role::Admin,
        "{} ({}) may not {doing} for {}: only {} themself or an admin may",
        actor.login,
        actor.role.as_str(),
        owner.login,
        owner.login
    );
    Ok(actor.login)
}
