//! Proving who runs an audited command. `--by LOGIN` must name an existing user whose role
//! allows the command, and that user must give their account password — so the audit log's
//! actor is someone who proved it, and the four-eyes rule holds on the command line too.
//!
//! The password is read with [`super::read_password`]: on the terminal without echo when
//! stdin is one, else from the first line of stdin (a `--password-stdin` new password is
//! then the next line). A wrong password is refused after [`REFUSAL_DELAY`] and audited as
//! `cli.password_refused`.

use std::time::Duration;

use anyhow::Context as _;
use store::{Role, Store, User};

use super::readable::Readable as _;

/// How long a wrong password waits before the refusal: guessing through the command line
/// stays slow.
const REFUSAL_DELAY: Duration = Duration::from_secs(1);

/// Which roles may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum May {
    /// Only an admin.
    Admin,
    /// An admin or the data-protection officer.
    AdminOrDpo,
    /// Any user; the store decides what they may do (e.g. staff only for themselves).
    AnyUser,
}

impl May {
    fn allows(self, role: Role) -> bool {
        match self {
            Self::Admin => role == Role::Admin,
            Self::AdminOrDpo => matches!(role, Role::Admin | Role::Dpo),
            Self::AnyUser => true,
        }
    }

    fn who(self) -> &'static str {
        match self {
            Self::Admin => "an admin",
            Self::AdminOrDpo => "an admin or the data-protection officer",
            Self::AnyUser => "a user",
        }
    }
}

/// Checks that `login` exists and that `may` allows their role, then asks for their
/// password and verifies it. `doing` says what the command does ("drop jobs"), for the
/// refusal and the audit entry of a wrong password.
///
/// # Errors
/// An unknown user, a role that may not, no or a wrong password (after [`REFUSAL_DELAY`]).
pub(super) async fn prove(
    store: &Store,
    login: &str,
    may: May,
    doing: &str,
) -> anyhow::Result<User> {
    let user = store
        .user_by_login(login)
        .await
        .or_no(format!("user {}", login.trim().to_ascii_lowercase()))?;
    anyhow::ensure!(
        may.allows(user.role),
        "{} ({}) may not {doing}: only {} may",
        user.login,
        user.role.as_str(),
        may.who()
    );
    let password = super::read_password(
        &format!("Password for {}: ", user.login),
        &format!("password of {}", user.login),
    )?;
    let hash = store.password_hash(&user.login).await.readable()?;
    if store::password::verify(&password, &hash) {
        return Ok(user);
    }
    tokio::time::sleep(REFUSAL_DELAY).await;
    store
        .append_audit(&store::NewAuditEntry {
            actor: user.login.clone(),
            action: "cli.password_refused".to_owned(),
            subjects: vec![format!("user:{}", user.login)],
            details: serde_json::json!({ "command": doing }),
        })
        .await
        .readable()
        .context("recording the refused password in the audit log")?;
    anyhow::bail!("wrong password for {}", user.login)
}
