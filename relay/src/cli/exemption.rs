//! `ratspost exemption request|confirm|approve|deny|revoke|list`.
//!
//! The confirmation code is generated here, sent only inside the queued confirmation mail to
//! the private address, and stored only as a hash: neither the requester nor an admin ever
//! sees it, so confirming proves the address.

use rand::Rng as _;
use sha2::{Digest, Sha256};
use store::{Confirmation, Exemption, ExemptionRequest};

use super::actor::{May, prove};
use super::readable::Readable as _;
use super::{ExemptionCommand, rfc3339};
use crate::compose;
use crate::config::Config;
use crate::setup::open_store;

/// Hash under which a confirmation code is stored and compared.
fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(
        format!("ratspost-exemption-code:{}", code.trim()).as_bytes(),
    ))
}

fn new_code() -> String {
    format!("{:08}", rand::rng().random_range(0..100_000_000u32))
}

pub(super) async fn run(config: &Config, cmd: ExemptionCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = execute(config, &store, cmd).await;
    store.close().await;
    result
}

async fn execute(
    config: &Config,
    store: &store::Store,
    cmd: ExemptionCommand,
) -> anyhow::Result<()> {
    let policy = &config.exemptions.policy;
    let now = store::now_millis();
    match cmd {
        ExemptionCommand::Request {
            user,
            to,
            days,
            reason,
            by,
            json,
        } => {
            let requester = prove(store, &by, May::AnyUser, "request exemptions").await?;
            let code = new_code();
            let request = ExemptionRequest {
                login: user,
                target: to,
                days,
                reason,
                by: requester.login,
            };
            let expires = rfc3339(now + policy.code_ttl);
            let signer = crate::dkim::Signer::load(config)?;
            let e = store
                .request_exemption(
                    &request,
                    policy,
                    &code_hash(&code),
                    |id| {
                        let mut mail = compose::confirmation(
                            &config.notices,
                            id,
                            &request.login,
                            &request.target.to_lowercase(),
                            &code,
                            days,
                            &expires,
                        );
                        mail.body = signer.sign(mail.body);
                        mail
                    },
                    now,
                )
                .await
                .or_no(format!(
                    "user {}",
                    request.login.trim().to_ascii_lowercase()
                ))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "Exemption {} requested for {} -> {} ({} days). A confirmation code was queued to {}; \
                     it must be confirmed with `ratspost exemption confirm {} CODE` and approved by an admin.",
                    e.id, e.login, e.target, e.days, e.target, e.id
                );
            }
            Ok(())
        }
        ExemptionCommand::Confirm { id, code } => {
            match store
                .confirm_exemption(id, &code_hash(&code), policy, now)
                .await
                .or_no(format!("exemption {id}"))?
            {
                Confirmation::Accepted(e) => {
                    println!(
                        "Exemption {id}: address confirmed; now {}",
                        e.state.as_str()
                    );
                    Ok(())
                }
                Confirmation::Wrong { remaining } => {
                    anyhow::bail!("wrong confirmation code; {remaining} tries left")
                }
                Confirmation::Locked => {
                    anyhow::bail!("wrong confirmation code; no tries left, the request was denied")
                }
                Confirmation::Expired => {
                    anyhow::bail!("the confirmation code has expired; the request expired")
                }
            }
        }
        ExemptionCommand::Approve { id, by } => {
            let by = prove(store, &by, May::AdminOrDpo, "approve exemptions")
                .await?
                .login;
            let e = store
                .approve_exemption(id, &by, policy, now)
                .await
                .or_no(format!("exemption {id}"))?;
            println!("Exemption {id} approved by {by}; now {}", describe(&e));
            Ok(())
        }
        ExemptionCommand::Deny { id, by, reason } => {
            let by = prove(store, &by, May::AdminOrDpo, "deny exemptions")
                .await?
                .login;
            store
                .deny_exemption(id, &by, &reason, now)
                .await
                .or_no(format!("exemption {id}"))?;
            println!("Exemption {id} denied by {by}");
            Ok(())
        }
        ExemptionCommand::Revoke { id, by } => {
            let by = prove(store, &by, May::AnyUser, "revoke exemptions")
                .await?
                .login;
            store
                .revoke_exemption(id, &by, now)
                .await
                .or_no(format!("exemption {id}"))?;
            println!("Exemption {id} revoked by {by}; forwarding stopped");
            Ok(())
        }
        ExemptionCommand::List { json } => {
            // Expiry is judged against the clock anyway; marking them here keeps the list true.
            store.expire_exemptions(now).await.readable()?;
            let list = store.list_exemptions().await.readable()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:>4} {:<12} {:<32} {:<10} {:<12} {:<24} REASON",
                    "ID", "USER", "TARGET", "STATE", "APPROVED", "VALID UNTIL"
                );
                for e in list {
                    println!(
                        "{:>4} {:<12} {:<32} {:<10} {:<12} {:<24} {}",
                        e.id,
                        e.login,
                        e.target,
                        e.state.as_str(),
                        e.approved_by.as_deref().unwrap_or("-"),
                        e.valid_until.map_or_else(|| "-".to_owned(), rfc3339),
                        e.reason
                    );
                }
            }
            Ok(())
        }
    }
}

fn describe(e: &Exemption) -> String {
    match e.valid_until {
        Some(until) if e.state == store::ExemptionState::Active => {
            format!("active until {}", rfc3339(until))
        }
        _ => e.state.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_digits_and_hashed_stably() {
        let code = new_code();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(code_hash("12345678"), code_hash(" 12345678\n"));
        assert_ne!(code_hash("12345678"), code_hash("12345679"));
    }
}
