//! `ratspost exemption request|confirm|approve|deny|revoke|list`.
//!
//! The confirmation code is generated here, sent only inside the queued confirmation mail to
//! the private address, and stored only as a hash: neither the requester nor an admin ever
//! sees it, so confirming proves the address.
//!
//! Every state change prints the new state and what is still missing ("approved by dora;
//! waiting for the address to be confirmed"); dates are local time (`time_zone`), while
//! `--json` keeps the stored fields (epoch milliseconds) and adds RFC 3339 ones.

use serde::Serialize;
use store::{Confirmation, Exemption, ExemptionPolicy, ExemptionRequest, ExemptionState, Missing};
use webui::ActionError;
use webui::datetime::{Dates, Language, rfc3339};

use super::ExemptionCommand;
use super::actor::{May, prove};
use super::readable::Readable as _;
use crate::config::Config;
use crate::exemptions::Exemptions;
use crate::setup::open_store;

/// The CLI's words for where an exemption stands (English, as its output always was; the
/// web pages take the same wording in German).
fn standing(e: &Exemption, policy: &ExemptionPolicy, now: i64, dates: Dates) -> String {
    webui::standing::standing(e, policy, now, dates, Language::English)
}

/// An action's refusal as the CLI reports it, with `what` naming the object for a
/// `NotFound`.
fn refused(err: ActionError, what: String) -> anyhow::Error {
    match err {
        ActionError::Store(err) => {
            let result: Result<(), store::Error> = Err(err);
            match result.or_no(what) {
                Err(err) => err,
                Ok(()) => anyhow::anyhow!("unreachable"),
            }
        }
        ActionError::Withheld => anyhow::anyhow!(
            "the confirmation mail would carry data the classifier flags; it was not sent and no \
             exemption was requested"
        ),
    }
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
    let dates = config.dates();
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
            let request = ExemptionRequest {
                login: user,
                target: to,
                days,
                reason,
                by: requester.login,
            };
            let login = request.login.trim().to_ascii_lowercase();
            let e = Exemptions::load(config, store)?
                .request(&request, now)
                .await
                .map_err(|err| refused(err, format!("user {login}")))?;
            let list = store.list_exemptions().await.readable()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&Shown::new(&e, &list, policy, now))?
                );
            } else {
                println!(
                    "Exemption {} requested for {} -> {} ({} days); {}. The confirmation code was \
                     queued to {} with a link to the page where the user enters it (or \
                     `ratspost exemption confirm {} CODE`).",
                    e.id,
                    e.login,
                    e.target,
                    e.days,
                    standing(&e, policy, now, dates),
                    e.target,
                    e.id
                );
                if let Some(current) = predecessor(&e, &list, now) {
                    println!(
                        "It is a follow-up of exemption {}, which is active until {}: once \
                         confirmed and approved, it starts then, without a gap.",
                        current.id,
                        dates.or(current.valid_until, "-")
                    );
                }
            }
            Ok(())
        }
        ExemptionCommand::Confirm { id, code } => {
            match Exemptions::load(config, store)?
                .confirm(id, &code, now)
                .await
                .map_err(|err| refused(err, format!("exemption {id}")))?
            {
                Confirmation::Accepted(e) => {
                    let now_ = if e.state == ExemptionState::Active {
                        "now "
                    } else {
                        ""
                    };
                    println!(
                        "Exemption {id}: address confirmed; {now_}{}",
                        standing(&e, policy, now, dates)
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
            let e = Exemptions::load(config, store)?
                .approve(id, &by, now)
                .await
                .map_err(|err| refused(err, format!("exemption {id}")))?;
            println!(
                "Exemption {id} approved by {by}; {}",
                standing(&e, policy, now, dates)
            );
            Ok(())
        }
        ExemptionCommand::Deny { id, by, reason } => {
            let by = prove(store, &by, May::AdminOrDpo, "deny exemptions")
                .await?
                .login;
            let e = Exemptions::load(config, store)?
                .deny(id, &by, &reason, now)
                .await
                .map_err(|err| refused(err, format!("exemption {id}")))?;
            println!(
                "Exemption {id} {}; nothing is forwarded under it",
                standing(&e, policy, now, dates)
            );
            Ok(())
        }
        ExemptionCommand::Revoke { id, by } => {
            let by = prove(store, &by, May::AnyUser, "revoke exemptions")
                .await?
                .login;
            let e = Exemptions::load(config, store)?
                .revoke(id, &by, now)
                .await
                .map_err(|err| refused(err, format!("exemption {id}")))?;
            println!(
                "Exemption {id} {}; forwarding under it stopped",
                standing(&e, policy, now, dates)
            );
            if let Some(next) = store.follow_up(id, now).await.readable()? {
                println!(
                    "Its follow-up, exemption {}, is not affected: {}. To end it too: \
                     `ratspost exemption revoke {} --by {by}`.",
                    next.id,
                    standing(&next, policy, now, dates),
                    next.id
                );
            }
            Ok(())
        }
        ExemptionCommand::List { json } => {
            // Expiry is judged against the clock anyway; marking them here keeps the list true.
            store.expire_exemptions(now).await.readable()?;
            let list = store.list_exemptions().await.readable()?;
            if json {
                let shown: Vec<Shown<'_>> = list
                    .iter()
                    .map(|e| Shown::new(e, &list, policy, now))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else if list.is_empty() {
                println!("No exemptions.");
            } else {
                for e in &list {
                    print!("{}", block(e, &list, policy, now, dates));
                }
            }
            Ok(())
        }
    }
}

/// An exemption in `--json`: every stored field as before, plus what the text shows.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    exemption: &'a Exemption,
    /// What a pending exemption still waits for (`confirmation`, `admin_approval`,
    /// `dpo_approval`).
    waiting_for: Vec<Missing>,
    /// Approved as a follow-up, not started yet.
    scheduled: bool,
    /// The exemption this one follows (active when it was requested).
    follows: Option<i64>,
    /// Its follow-up, when one is pending or approved.
    follow_up: Option<i64>,
    /// When forwarding under it started or starts (RFC 3339, UTC).
    valid_from_rfc3339: Option<String>,
    /// When it ended (expired, revoked, denied) or, while it has not, when it is planned to
    /// end (RFC 3339, UTC): a revoked exemption ends when it was revoked.
    ends_rfc3339: Option<String>,
    /// When the data-protection officer approved (RFC 3339, UTC).
    dpo_approved_at_rfc3339: Option<String>,
}

impl<'a> Shown<'a> {
    fn new(e: &'a Exemption, all: &'a [Exemption], policy: &ExemptionPolicy, now: i64) -> Self {
        Self {
            exemption: e,
            waiting_for: e.missing(policy),
            scheduled: e.is_scheduled_at(now),
            follows: predecessor(e, all, now).map(|p| p.id),
            follow_up: successor(e, all, now).map(|s| s.id),
            valid_from_rfc3339: e.valid_from.map(rfc3339),
            ends_rfc3339: e.ended_at.or(e.valid_until).map(rfc3339),
            dpo_approved_at_rfc3339: e.dpo_approved_at.map(rfc3339),
        }
    }
}

/// Still open at `now`: pending, or approved and not yet over.
fn is_open(e: &Exemption, now: i64) -> bool {
    match e.state {
        ExemptionState::Requested | ExemptionState::Confirmed => true,
        ExemptionState::Active => e.valid_until.is_some_and(|until| now < until),
        _ => false,
    }
}

/// The exemption `e` follows: of the same user, earlier, and active (not yet over) at `now`.
fn predecessor<'a>(e: &Exemption, all: &'a [Exemption], now: i64) -> Option<&'a Exemption> {
    if !is_open(e, now) {
        return None;
    }
    all.iter()
        .filter(|p| p.login == e.login && p.id < e.id && p.state == ExemptionState::Active)
        .filter(|p| p.valid_until.is_some_and(|until| now < until))
        .max_by_key(|p| p.id)
}

/// The follow-up of `e`: of the same user, later, and still open at `now`.
fn successor<'a>(e: &Exemption, all: &'a [Exemption], now: i64) -> Option<&'a Exemption> {
    if !is_open(e, now) && e.state != ExemptionState::Revoked {
        return None;
    }
    all.iter()
        .filter(|s| s.login == e.login && s.id > e.id && is_open(s, now))
        .min_by_key(|s| s.id)
}

/// One exemption in `exemption list`: a heading line, then who did what when.
fn block(
    e: &Exemption,
    all: &[Exemption],
    policy: &ExemptionPolicy,
    now: i64,
    dates: Dates,
) -> String {
    use std::fmt::Write as _;
    let pending = matches!(
        e.state,
        ExemptionState::Requested | ExemptionState::Confirmed
    );
    let mut out = format!(
        "Exemption {}: {} -> {} ({} days) — {}{}\n  reason:    {}\n  requested: by {} on {}",
        e.id,
        e.login,
        e.target,
        e.days,
        if pending {
            format!("{}; ", e.state.as_str())
        } else {
            String::new()
        },
        standing(e, policy, now, dates),
        e.reason,
        e.requested_by,
        dates.millis(e.requested_at)
    );
    if let Some(at) = e.confirmed_at {
        let _ = write!(out, "; address confirmed on {}", dates.millis(at));
    }
    let approvals: Vec<String> = [
        (&e.approved_by, e.approved_at, "admin"),
        (
            &e.dpo_approved_by,
            e.dpo_approved_at,
            "data-protection officer",
        ),
    ]
    .into_iter()
    .filter_map(|(by, at, role)| {
        by.as_ref()
            .map(|by| format!("{by} ({role}) on {}", dates.or(at, "-")))
    })
    .collect();
    if !approvals.is_empty() {
        let _ = write!(out, "\n  approved:  by {}", approvals.join("; by "));
    }
    if let (Some(from), Some(until)) = (e.valid_from, e.valid_until) {
        // An exemption that ended early shows its real end, not the planned one.
        let end = e.ended_at.map_or(until, |ended| ended.min(until));
        if end > from {
            let _ = write!(
                out,
                "\n  period:    {} to {}",
                dates.millis(from),
                dates.millis(end)
            );
        } else {
            let _ = write!(out, "\n  period:    none (ended before its start)");
        }
    }
    if let Some(reason) = e.end_reason.as_deref().filter(|r| *r != "revoked") {
        let _ = write!(out, "\n  ended:     {reason}");
    }
    if let Some(p) = predecessor(e, all, now) {
        let _ = write!(out, "\n  follows:   exemption {}", p.id);
    }
    if let Some(s) = successor(e, all, now) {
        let _ = write!(
            out,
            "\n  follow-up: exemption {} ({})",
            s.id,
            standing(s, policy, now, dates)
        );
    }
    out.push('\n');
    out
}
