//! `ratspost user add|list|passwd`. Adding a user needs an admin (`--by`, with their
//! password); a new password needs the user's current one, or an admin's.

use anyhow::Context as _;
use store::{NewUser, Role, Store};

use super::actor::{May, prove};
use super::readable::Readable as _;
use super::{UserCommand, read_password};
use crate::config::Config;
use crate::setup::open_store;

pub(super) async fn run(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = execute(config, &store, cmd).await;
    store.close().await;
    result
}

async fn execute(config: &Config, store: &Store, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            login,
            name,
            addresses,
            role,
            by,
            password_stdin,
        } => {
            let role: Role = role.parse()?;
            let admin = prove(store, &by, May::Admin, "add users").await?;
            let (password, generated) = new_password(password_stdin, &login)?;
            let new = NewUser {
                login,
                name,
                role,
                password_hash: store::password::hash(&password).readable()?,
                addresses,
            };
            let user = match store.create_user(&new).await {
                Ok(user) => user,
                Err(err) if err.is_conflict() => return Err(taken(store, &new).await),
                Err(err) => return Err(err).readable(),
            };
            audit(
                store,
                &admin.login,
                "user.created",
                &user.login,
                serde_json::json!({"role": user.role.as_str(), "addresses": user.addresses}),
            )
            .await?;
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
            let users = store.list_users().await.readable()?;
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
            by,
            password_stdin,
        } => {
            let target = login.trim().to_ascii_lowercase();
            // Someone else's password needs an admin; one's own needs the current password.
            let actor = match by.filter(|by| by.trim().to_ascii_lowercase() != target) {
                Some(admin) => {
                    prove(store, &admin, May::Admin, "set other users' passwords").await?
                }
                None => prove(store, &target, May::AnyUser, "change their password").await?,
            };
            let user = store
                .user_by_login(&target)
                .await
                .or_no(format!("user {target}"))?;
            let (password, generated) = new_password(password_stdin, &user.login)?;
            store
                .set_password_hash(&user.login, &store::password::hash(&password).readable()?)
                .await
                .or_no(format!("user {target}"))?;
            audit(
                store,
                &actor.login,
                "user.password_changed",
                &user.login,
                serde_json::json!({}),
            )
            .await?;
            println!("Password of {} changed", user.login);
            if generated {
                println!("Password (shown only once): {password}");
            }
            Ok(())
        }
        UserCommand::Disable { login, by } => set_disabled(store, &login, &by, true).await,
        UserCommand::Enable { login, by } => set_disabled(store, &login, &by, false).await,
    }
}

/// Disables or enables `login`, as the admin `by` (who proves it); the store audits it.
async fn set_disabled(store: &Store, login: &str, by: &str, disabled: bool) -> anyhow::Result<()> {
    let verb = if disabled { "disable" } else { "enable" };
    let admin = prove(store, by, May::Admin, &format!("{verb} users")).await?;
    let target = login.trim().to_ascii_lowercase();
    match store
        .set_user_disabled(&target, disabled, &admin.login, store::now_millis())
        .await
    {
        Ok(_) => println!("{target} {verb}d"),
        Err(err) if err.is_conflict() => println!("{target} is {verb}d already"),
        Err(err) if err.kind() == store::ErrorKind::Invalid => {
            anyhow::bail!("an admin cannot disable their own account")
        }
        Err(err) => return Err(err).or_no(format!("user {target}")),
    }
    Ok(())
}

/// The new password of `login`: read (`--password-stdin`: the next line of stdin, or asked
/// for without echo on a terminal), or generated (then `true`: it must be shown).
fn new_password(from_stdin: bool, login: &str) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let login = login.trim().to_ascii_lowercase();
        let password = read_password(
            &format!("New password for {login}: "),
            &format!("new password of {login}"),
        )?;
        Ok((password, false))
    } else {
        Ok((store::password::generate(20), true))
    }
}

/// Why a new user conflicts, in the admin's terms: their login, or which address belongs
/// to whom.
async fn taken(store: &Store, new: &NewUser) -> anyhow::Error {
    let login = new.login.trim().to_ascii_lowercase();
    if store.user_by_login(&login).await.is_ok() {
        return anyhow::anyhow!("a user with the login {login} exists already");
    }
    if let Ok(users) = store.list_users().await {
        for address in &new.addresses {
            let address = address.trim().to_lowercase();
            if let Some(owner) = users.iter().find(|u| u.addresses.contains(&address)) {
                return anyhow::anyhow!("the address {address} belongs to {} already", owner.login);
            }
        }
    }
    anyhow::anyhow!("a user with the login {login} or one of these addresses exists already")
}

/// Records a change of `login`'s account (also of their app passwords), made by `actor`.
pub(super) async fn audit(
    store: &Store,
    actor: &str,
    action: &str,
    login: &str,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    store
        .append_audit(&store::NewAuditEntry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            subjects: vec![format!("user:{login}")],
            details,
        })
        .await
        .readable()
        .context("recording the change in the audit log")?;
    Ok(())
}
