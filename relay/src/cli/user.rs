//! `ratspost user add|list|passwd`

use anyhow::Context as _;
use store::{NewUser, Role};

use super::{UserCommand, read_password_stdin};
use crate::config::Config;
use crate::setup::open_store;

pub(super) async fn run(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = match cmd {
        UserCommand::Add {
            login,
            name,
            addresses,
            role,
            password_stdin,
        } => {
            let role: Role = role.parse()?;
            let (password, generated) = new_password(password_stdin)?;
            let user = store
                .create_user(&NewUser {
                    login,
                    name,
                    role,
                    password_hash: store::password::hash(&password)?,
                    addresses,
                })
                .await
                .context("creating the user")?;
            store
                .append_audit(&store::NewAuditEntry {
                    actor: "cli".to_owned(),
                    action: "user.created".to_owned(),
                    subjects: vec![format!("user:{}", user.login)],
                    details: serde_json::json!({"role": user.role.as_str(), "addresses": user.addresses}),
                })
                .await
                .context("recording the change in the audit log")?;
            println!(
                "Created {} ({}) for {}",
                user.login,
                user.role.as_str(),
                if user.addresses.is_empty() {
                    "no addresses".to_owned()
                } else {
                    user.addresses.join(", ")
                }
            );
            if generated {
                println!("Password (shown only once): {password}");
            }
            Ok(())
        }
        UserCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                let dates = config.dates();
                println!(
                    "{:<20} {:<6} {:<25} {:<30} ADDRESSES",
                    "LOGIN", "ROLE", "NAME", "CREATED"
                );
                for u in users {
                    println!(
                        "{:<20} {:<6} {:<25} {:<30} {}",
                        u.login,
                        u.role.as_str(),
                        u.name,
                        dates.millis(u.created_at),
                        u.addresses.join(",")
                    );
                }
            }
            Ok(())
        }
        UserCommand::Passwd {
            login,
            password_stdin,
        } => {
            let (password, generated) = new_password(password_stdin)?;
            store
                .set_password_hash(&login, &store::password::hash(&password)?)
                .await
                .with_context(|| format!("setting the password of {login}"))?;
            store
                .append_audit(&store::NewAuditEntry {
                    actor: "cli".to_owned(),
                    action: "user.password_changed".to_owned(),
                    subjects: vec![format!("user:{}", login.trim().to_ascii_lowercase())],
                    details: serde_json::json!({}),
                })
                .await
                .context("recording the change in the audit log")?;
            println!("Password of {login} changed");
            if generated {
                println!("Password (shown only once): {password}");
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

/// The password from stdin, or a generated one (then `true`: it must be shown).
fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        Ok((read_password_stdin()?, false))
    } else {
        Ok((store::password::generate(20), true))
    }
}
