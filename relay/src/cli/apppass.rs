//! `ratspost app-password create|list|revoke`: one password per device, so losing a phone
//! means revoking that phone alone. Creation and revocation are audited.

use super::AppPasswordCommand;
use super::actor::{May, prove};
use super::readable::Readable as _;
use super::user::audit;
use crate::config::Config;
use crate::setup::open_store;

/// Length of generated app passwords: 24 characters from the generator's 56-letter
/// alphabet (139 bits), easy to type on a phone and far beyond guessing.
const LENGTH: usize = 24;

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
            let password = store::password::generate(LENGTH);
            // SHA-256, not argon2: a slow hash protects passwords people choose; this one is
            // random with 139 bits, so no dictionary exists, and a fast check keeps the logins
            // of thousands of devices cheap. (Account passwords stay argon2id.)
            let hash = store::token::hash(&password);
            let now = store::now_millis();
            match store.create_app_password(user.id, &label, &hash, now).await {
                Err(err) if err.is_conflict() => anyhow::bail!(
                    "{} has an app password labelled {:?} already",
                    user.login,
                    label.trim()
                ),
                other => other.readable()?,
            };
            let details = serde_json::json!({"label": label.trim()});
            audit(&store, &actor, "app_password.created", &user.login, details).await?;
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
            store
                .revoke_app_password(user.id, &label, store::now_millis())
                .await
                .or_no(format!("app password {:?} of {}", label.trim(), user.login))?;
            let details = serde_json::json!({"label": label.trim()});
            audit(&store, &actor, "app_password.revoked", &user.login, details).await?;
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
