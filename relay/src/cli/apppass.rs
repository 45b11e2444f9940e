//! `ratspost app-password create|list|revoke`: one password per device, so losing a phone
//! means revoking that phone alone. Creation and revocation are audited.

use anyhow::Context as _;

use super::AppPasswordCommand;
use crate::config::Config;
use crate::setup::open_store;

/// Length of generated app passwords: 24 characters from the generator's 56-letter
/// alphabet (139 bits), easy to type on a phone and far beyond guessing.
const LENGTH: usize = 24;

pub(super) async fn run(config: &Config, cmd: AppPasswordCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = match cmd {
        AppPasswordCommand::Create { login, label, json } => {
            let user = store.user_by_login(&login).await?;
            let password = store::password::generate(LENGTH);
            // SHA-256, not argon2: a slow hash protects passwords people choose; this one is
            // random with 139 bits, so no dictionary exists, and a fast check keeps the logins
            // of thousands of devices cheap. (Account passwords stay argon2id.)
            let hash = store::token::hash(&password);
            let now = store::now_millis();
            store
                .create_app_password(user.id, &label, &hash, now)
                .await
                .context("creating the app password")?;
            audit(&store, "app_password.created", &user.login, &label).await?;
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
            let user = store.user_by_login(&login).await?;
            let list = store.app_passwords(user.id).await?;
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
        AppPasswordCommand::Revoke { login, label } => {
            let user = store.user_by_login(&login).await?;
            store
                .revoke_app_password(user.id, &label, store::now_millis())
                .await?;
            audit(&store, "app_password.revoked", &user.login, &label).await?;
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

async fn audit(store: &store::Store, action: &str, login: &str, label: &str) -> anyhow::Result<()> {
    store
        .append_audit(&store::NewAuditEntry {
            actor: "cli".to_owned(),
            action: action.to_owned(),
            subjects: vec![format!("user:{login}")],
            details: serde_json::json!({"label": label.trim()}),
        })
        .await
        .context("recording the change in the audit log")?;
    Ok(())
}
