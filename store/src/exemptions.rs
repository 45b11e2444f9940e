//! Forwarding exemptions: the only way mail may reach a private address.
//!
//! States: `requested` → `confirmed` → `active` → `expired` | `revoked`, or `denied`.
//! An exemption becomes active only when its target address was proven (the confirmation
//! code sent there came back) *and* an approver who is not the requester approved it (plus
//! the data-protection officer, when the policy says so). "Active" is always judged against
//! the clock as well: an exemption past `valid_until` is not active even before the expiry
//! task has marked it, so a lagging task can never extend a forward.
//!
//! Every transition commits together with its audit entry, in one transaction.
//!
//! **Follow-ups** (issue 9): while an exemption is active, its user may ask for one more — a
//! follow-up — so that forwarding goes on without a gap (only one open *request* at a time,
//! and at most one follow-up waiting behind the current exemption). A follow-up that is
//! confirmed and approved becomes `active` with `valid_from` = the end of the current one and
//! `valid_until` = `valid_from` + its days (at most `max_days`): no gap, no overlap. Which
//! exemption forwards is decided at the moment of the decision: the one whose
//! `valid_from <= now < valid_until`. Revoking the current exemption ends only that one:
//! forwarding stops at once, and an approved follow-up stays scheduled for the period it was
//! approved for (it does not move forward). A data-protection officer who revokes expects
//! forwarding to stop now, and the follow-up's approvers approved exactly that period; the
//! follow-up can be revoked on its own.

use serde::Serialize;

use crate::audit::{NewAuditEntry, audit_append};
use crate::db::{with_pool, with_write_tx};
use crate::users::normalise_address;
use crate::{Error, ErrorKind, Millis, Result, Role, Store};

const DAY: Millis = 24 * 60 * 60 * 1000;

/// Where an exemption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExemptionState {
    /// Waiting for the confirmation code (and approval).
    Requested,
    /// Target proven; waiting for approval.
    Confirmed,
    /// Approved and confirmed: forwarding allowed from `valid_from` (later than now for an
    /// approved follow-up) until `valid_until`.
    Active,
    /// Ran out (or its confirmation code did).
    Expired,
    /// Ended by a person.
    Revoked,
    /// Refused by an approver, or too many wrong codes.
    Denied,
}

impl ExemptionState {
    fn parse(s: &str) -> Self {
        match s {
            "requested" => Self::Requested,
            "confirmed" => Self::Confirmed,
            "active" => Self::Active,
            "expired" => Self::Expired,
            "revoked" => Self::Revoked,
            _ => Self::Denied,
        }
    }

    /// The name stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Confirmed => "confirmed",
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Denied => "denied",
        }
    }
}

/// The rules an exemption must follow (from the configuration).
#[derive(Debug, Clone)]
pub struct ExemptionPolicy {
    /// Longest exemption in days.
    pub max_days: i64,
    /// A data-protection officer must approve as well as an admin.
    pub require_dpo: bool,
    /// How long a confirmation code is valid.
    pub code_ttl: Millis,
    /// Wrong codes before the request is denied.
    pub max_code_attempts: i64,
    /// When not empty, the only target domains allowed (lower-case).
    pub allowed_domains: Vec<String>,
    /// Target domains never allowed (lower-case).
    pub denied_domains: Vec<String>,
}

/// An exemption as stored (the code hash is never exposed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exemption {
    /// Id.
    pub id: i64,
    /// Whose mail.
    pub login: String,
    /// Private target address.
    pub target: String,
    /// Why.
    pub reason: String,
    /// Requested duration.
    pub days: i64,
    /// State.
    pub state: ExemptionState,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: Millis,
    /// When the code is no longer accepted.
    pub code_expires_at: Millis,
    /// Wrong codes so far.
    pub code_attempts: i64,
    /// When the target was proven.
    pub confirmed_at: Option<Millis>,
    /// Admin approval.
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<Millis>,
    /// DPO approval.
    pub dpo_approved_by: Option<String>,
    /// When.
    pub dpo_approved_at: Option<Millis>,
    /// Start of forwarding.
    pub valid_from: Option<Millis>,
    /// End of forwarding.
    pub valid_until: Option<Millis>,
    /// When the user was reminded that it ends soon.
    pub reminded_at: Option<Millis>,
    /// When it ended (expired, revoked, denied).
    pub ended_at: Option<Millis>,
    /// Who ended it (`system` for expiry).
    pub ended_by: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

/// What a pending exemption still waits for before it becomes active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The confirmation code sent to the private address.
    Confirmation,
    /// An admin's approval.
    AdminApproval,
    /// The data-protection officer's approval (when the policy requires it).
    DpoApproval,
}

impl Exemption {
    /// Active at `now`: state active, started (`valid_from`) and not past `valid_until`.
    #[must_use]
    pub fn is_active_at(&self, now: Millis) -> bool {
        self.state == ExemptionState::Active
            && self.valid_from.is_some_and(|from| from <= now)
            && self.valid_until.is_some_and(|until| now < until)
    }

    /// Approved as a follow-up but not started yet at `now`.
    #[must_use]
    pub fn is_scheduled_at(&self, now: Millis) -> bool {
        self.state == ExemptionState::Active && self.valid_from.is_some_and(|from| now < from)
    }

    /// What a pending (requested or confirmed) exemption still waits for under `policy`;
    /// empty for every other state.
    #[must_use]
    pub fn missing(&self, policy: &ExemptionPolicy) -> Vec<Missing> {
        if !matches!(
            self.state,
            ExemptionState::Requested | ExemptionState::Confirmed
        ) {
            return Vec::new();
        }
        let mut missing = Vec::new();
        if self.confirmed_at.is_none() {
            missing.push(Missing::Confirmation);
        }
        if self.approved_by.is_none() {
            missing.push(Missing::AdminApproval);
        }
        if policy.require_dpo && self.dpo_approved_by.is_none() {
            missing.push(Missing::DpoApproval);
        }
        missing
    }
}

/// A new request.
#[derive(Debug, Clone)]
pub struct ExemptionRequest {
    /// Whose mail.
    pub login: String,
    /// Private target address.
    pub target: String,
    /// Duration in days.
    pub days: i64,
    /// Why (shown to approvers and in the audit log).
    pub reason: String,
    /// Who asks: the user themself or an admin.
    pub by: String,
}

/// A message to queue in the same transaction as a transition (the confirmation mail).
#[derive(Debug, Clone)]
pub struct QueuedMail {
    /// Kind of job (`confirmation`, `reminder`, …).
    pub kind: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipient.
    pub rcpt_to: String,
    /// The complete message.
    pub body: Vec<u8>,
}

/// What a confirmation attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The code was right; the exemption is now in this state (confirmed or active).
    Accepted(Box<Exemption>),
    /// Wrong code; this many tries remain.
    Wrong {
        /// Tries left.
        remaining: i64,
    },
    /// Wrong code and no tries left: the request was denied.
    Locked,
    /// The code had expired: the request expired.
    Expired,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    login: String,
    target: String,
    reason: String,
    days: i64,
    state: String,
    requested_by: String,
    requested_at: i64,
    code_hash: String,
    code_expires_at: i64,
    code_attempts: i64,
    confirmed_at: Option<i64>,
    approved_by: Option<String>,
    approved_at: Option<i64>,
    dpo_approved_by: Option<String>,
    dpo_approved_at: Option<i64>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    reminded_at: Option<i64>,
    ended_at: Option<i64>,
    ended_by: Option<String>,
    end_reason: Option<String>,
}

impl Row {
    fn exemption(self) -> Exemption {
        Exemption {
            id: self.id,
            login: self.login,
            target: self.target,
            reason: self.reason,
            days: self.days,
            state: ExemptionState::parse(&self.state),
            requested_by: self.requested_by,
            requested_at: self.requested_at,
            code_expires_at: self.code_expires_at,
            code_attempts: self.code_attempts,
            confirmed_at: self.confirmed_at,
            approved_by: self.approved_by,
            approved_at: self.approved_at,
            dpo_approved_by: self.dpo_approved_by,
            dpo_approved_at: self.dpo_approved_at,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            reminded_at: self.reminded_at,
            ended_at: self.ended_at,
            ended_by: self.ended_by,
            end_reason: self.end_reason,
        }
    }
}

const SELECT: &str = "SELECT e.id, u.login, e.target, e.reason, e.days, e.state, e.requested_by,
        e.requested_at, e.code_hash, e.code_expires_at, e.code_attempts, e.confirmed_at,
        e.approved_by, e.approved_at, e.dpo_approved_by, e.dpo_approved_at, e.valid_from,
        e.valid_until, e.reminded_at, e.ended_at, e.ended_by, e.end_reason
     FROM exemptions e JOIN users u ON u.id = e.user_id";

fn forbidden(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Forbidden, message)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Invalid, message)
}

/// An audit entry about exemption `id` of `login`.
fn audit(
    actor: &str,
    action: &str,
    id: i64,
    login: &str,
    details: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_owned(),
        action: format!("exemption.{action}"),
        subjects: vec![format!("exemption:{id}"), format!("user:{login}")],
        details,
    }
}

/// Runs a state change and its audit entries in one write transaction. `$load` gives the
/// row in `e` (as `Row`); the body returns the result.
macro_rules! transition {
    ($store:expr, $id:expr, $tx:ident, $e:ident => $body:expr) => {
        with_write_tx!(&$store.db, $tx => {
            let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE e.id = $1")))
                .bind($id)
                .fetch_optional(&mut *$tx)
                .await?;
            let Some($e) = row else {
                return Err(Error::new(ErrorKind::NotFound, format!("no exemption {}", $id)));
            };
            $body
        })
    };
}

/// Appends an audit entry inside the transaction `$tx`.
macro_rules! record {
    ($tx:ident, $entry:expr, $at:expr) => {{
        let entry: NewAuditEntry = $entry;
        let (details_text, subjects_text) = entry.texts()?;
        let _ = audit_append!($tx, &entry, $at, details_text, subjects_text);
    }};
}

/// Ends exemption `$id` in `$state` inside the transaction `$tx`.
macro_rules! end {
    ($tx:ident, $id:expr, $state:expr, $by:expr, $reason:expr, $now:expr) => {
        sqlx::query("UPDATE exemptions SET state = $1, ended_at = $2, ended_by = $3, end_reason = $4 WHERE id = $5")
            .bind($state)
            .bind($now)
            .bind($by)
            .bind($reason)
            .bind($id)
            .execute(&mut *$tx)
            .await?
    };
}

/// The refusal of an approval or denial of an exemption that is no longer pending; an
/// approved follow-up that has not started yet is named as such, not as active.
fn not_pending(id: i64, e: &Row, now: Millis) -> Error {
    if e.state == "active" && e.valid_from.is_some_and(|from| from > now) {
        invalid(format!(
            "exemption {id} is approved already and starts later, not pending"
        ))
    } else {
        invalid(format!("exemption {id} is {}, not pending", e.state))
    }
}

/// Moves exemption `$id` to active when it is confirmed and approved (by the DPO too, when
/// required); evaluates to whether it did. A follow-up starts when the user's current
/// exemption ends (no gap, no overlap); its length is its days, at most the policy's maximum.
macro_rules! activate_if_ready {
    ($tx:ident, $id:expr, $login:expr, $policy:expr, $now:expr) => {{
        let (user_id, state, approved, dpo, days): (i64, String, Option<String>, Option<String>, i64) =
            sqlx::query_as("SELECT user_id, state, approved_by, dpo_approved_by, days FROM exemptions WHERE id = $1")
                .bind($id)
                .fetch_one(&mut *$tx)
                .await?;
        let ready = state == "confirmed" && approved.is_some() && (!$policy.require_dpo || dpo.is_some());
        if ready {
            let (current_end,): (Option<i64>,) = sqlx::query_as(
                "SELECT MAX(valid_until) FROM exemptions
                 WHERE user_id = $1 AND id <> $2 AND state = 'active' AND valid_until > $3",
            )
            .bind(user_id)
            .bind($id)
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?;
            let from = current_end.map_or($now, |end| end.max($now));
            let until = from + days.min($policy.max_days) * DAY;
            sqlx::query("UPDATE exemptions SET state = 'active', valid_from = $1, valid_until = $2 WHERE id = $3")
                .bind(from)
                .bind(until)
                .bind($id)
                .execute(&mut *$tx)
                .await?;
            // A follow-up that starts later is scheduled, not active yet: the audit says so.
            let action = if from > $now { "scheduled" } else { "activated" };
            record!($tx, audit("system", action, $id, $login, serde_json::json!({ "valid_from": from, "valid_until": until })), $now);
        }
        ready
    }};
}

impl Store {
    /// Records a request and queues the confirmation mail to the target, atomically.
    /// `code_hash` is the hash of the code in `confirmation` (the caller made both).
    ///
    /// # Errors
    /// `NotFound` for unknown logins; `Forbidden` when `by` may not ask for this user;
    /// `Invalid` for a policy violation; `Conflict` when the user already has a pending
    /// request, or an active exemption *and* a follow-up to it (one active exemption without
    /// a follow-up allows this request as its follow-up).
    pub async fn request_exemption(
        &self,
        request: &ExemptionRequest,
        policy: &ExemptionPolicy,
        code_hash: &str,
        confirmation: impl FnOnce(i64) -> QueuedMail,
        now: Millis,
    ) -> Result<Exemption> {
        self.request_exemption_with_link(request, policy, code_hash, None, confirmation, now)
            .await
    }

    /// [`Store::request_exemption`], and stores `link_hash`, the SHA-256 of the token of the
    /// confirmation link in the mail (see [`Store::exemption_by_link`]), with the request.
    ///
    /// # Errors
    /// As [`Store::request_exemption`].
    pub async fn request_exemption_with_link(
        &self,
        request: &ExemptionRequest,
        policy: &ExemptionPolicy,
        code_hash: &str,
        link_hash: Option<&str>,
        confirmation: impl FnOnce(i64) -> QueuedMail,
        now: Millis,
    ) -> Result<Exemption> {
        let user = self.user_by_login(&request.login).await?;
        let actor = self.user_by_login(&request.by).await?;
        if actor.id != user.id && actor.role != Role::Admin {
            return Err(forbidden(format!(
                "{} may only request exemptions for themself (an admin may ask for others)",
                actor.login
            )));
        }
        if !(1..=policy.max_days).contains(&request.days) {
            return Err(invalid(format!(
                "days must be between 1 and {} (policy)",
                policy.max_days
            )));
        }
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(invalid("a reason of 1-1000 characters is required"));
        }
        if crate::has_hidden_formatting(reason) {
            return Err(invalid(
                "the reason must not hold control or text-direction characters",
            ));
        }
        let (target, domain) = normalise_address(&request.target)?;
        if !crate::is_mail_domain(&domain) {
            return Err(invalid(format!(
                "invalid target {target:?}: an address at a domain name is needed, not at an IP address"
            )));
        }
        if policy.denied_domains.contains(&domain)
            || (!policy.allowed_domains.is_empty() && !policy.allowed_domains.contains(&domain))
        {
            return Err(invalid(format!(
                "forwarding to {domain} is not allowed by policy"
            )));
        }
        let id = with_write_tx!(&self.db, tx => {
            let ours: Option<(i64,)> = sqlx::query_as("SELECT user_id FROM addresses WHERE domain = $1 LIMIT 1")
                .bind(&domain)
                .fetch_optional(&mut *tx)
                .await?;
            if ours.is_some() {
                return Err(invalid("the target must be a private address, not one of ours"));
            }
            let open: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, state FROM exemptions WHERE user_id = $1
                 AND (state IN ('requested', 'confirmed') OR (state = 'active' AND valid_until > $2))
                 ORDER BY id",
            )
            .bind(user.id)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            if let Some((pending, state)) = open.iter().find(|(_, state)| state != "active") {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} already has a pending exemption request ({pending}, {state}); \
                         one request at a time: finish or revoke it first",
                        user.login
                    ),
                ));
            }
            if let [(current, _), (follow_up, _), ..] = open.as_slice() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} already has a follow-up exemption ({follow_up}) after exemption {current}; \
                         request another when {follow_up} has started",
                        user.login
                    ),
                ));
            }
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO exemptions (user_id, target, reason, days, state, requested_by, requested_at, code_hash, code_expires_at, link_hash)
                 VALUES ($1, $2, $3, $4, 'requested', $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(user.id)
            .bind(&target)
            .bind(reason)
            .bind(request.days)
            .bind(&actor.login)
            .bind(now)
            .bind(code_hash)
            .bind(now + policy.code_ttl)
            .bind(link_hash)
            .fetch_one(&mut *tx)
            .await?;
            let mail = confirmation(id);
            crate::queue::insert_job!(&mut *tx, &mail, id, None::<i64>, now);
            record!(tx, audit(&actor.login, "requested", id, &user.login, serde_json::json!({
                "target": target, "days": request.days, "reason": reason,
            })), now);
            tx.commit().await?;
            id
        });
        self.exemption(id).await
    }

    /// Checks a confirmation code (given as its hash). A wrong code counts; too many deny
    /// the request; an expired code expires it. Every outcome is audited.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` when the exemption is not waiting for confirmation.
    pub async fn confirm_exemption(
        &self,
        id: i64,
        code_hash: &str,
        policy: &ExemptionPolicy,
        now: Millis,
    ) -> Result<Confirmation> {
        let outcome = transition!(self, id, tx, e => {
            if e.state != "requested" {
                return Err(invalid(format!("exemption {id} is {}, not waiting for confirmation", e.state)));
            }
            let outcome = if now >= e.code_expires_at {
                end!(tx, id, "expired", "system", "confirmation code expired", now);
                record!(tx, audit("system", "expired", id, &e.login, serde_json::json!({"reason": "confirmation code expired"})), now);
                Confirmation::Expired
            } else if !constant_time_eq(code_hash.as_bytes(), e.code_hash.as_bytes()) {
                let attempts = e.code_attempts + 1;
                sqlx::query("UPDATE exemptions SET code_attempts = $1 WHERE id = $2")
                    .bind(attempts)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                record!(tx, audit("system", "confirmation_failed", id, &e.login, serde_json::json!({"attempts": attempts})), now);
                if attempts >= policy.max_code_attempts {
                    end!(tx, id, "denied", "system", "too many wrong confirmation codes", now);
                    record!(tx, audit("system", "denied", id, &e.login, serde_json::json!({"reason": "too many wrong confirmation codes"})), now);
                    Confirmation::Locked
                } else {
                    Confirmation::Wrong { remaining: policy.max_code_attempts - attempts }
                }
            } else {
                sqlx::query("UPDATE exemptions SET state = 'confirmed', confirmed_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                record!(tx, audit("system", "confirmed", id, &e.login, serde_json::json!({"target": e.target})), now);
                activate_if_ready!(tx, id, &e.login, policy, now);
                Confirmation::Accepted(Box::new(e.exemption()))
            };
            tx.commit().await?;
            outcome
        });
        Ok(match outcome {
            Confirmation::Accepted(_) => {
                Confirmation::Accepted(Box::new(self.exemption(id).await?))
            }
            other => other,
        })
    }

    /// Approves as an admin, or as the data-protection officer (decided by `by`'s role). The
    /// approver must be neither the requester nor the user whose mail it is.
    ///
    /// # Errors
    /// `Forbidden` for staff, the requester or the user, and for the DPO when the policy does
    /// not require a DPO approval; `Invalid` when not pending.
    pub async fn approve_exemption(
        &self,
        id: i64,
        by: &str,
        policy: &ExemptionPolicy,
        now: Millis,
    ) -> Result<Exemption> {
        let approver = self.user_by_login(by).await?;
        let column = match approver.role {
            Role::Admin => "approved",
            Role::Dpo => "dpo_approved",
            Role::Staff => {
                return Err(forbidden(
                    "only an admin or the data-protection officer may approve",
                ));
            }
        };
        transition!(self, id, tx, e => {
            if approver.login == e.requested_by || approver.login == e.login {
                return Err(forbidden("four eyes: the approver must be neither the requester nor the user"));
            }
            // Without `require_dpo` there is no DPO approval to give: recording one would put
            // a decision in the register that the policy does not know.
            if approver.role == Role::Dpo && !policy.require_dpo {
                return Err(forbidden("approval by the data-protection officer is not required (exemptions.require_dpo = false)"));
            }
            if e.state != "requested" && e.state != "confirmed" {
                return Err(not_pending(id, &e, now));
            }
            // One approval per role: a second admin (or DPO) does not silently replace the first.
            let earlier = if column == "approved" { &e.approved_by } else { &e.dpo_approved_by };
            if let Some(earlier) = earlier {
                return Err(invalid(format!("exemption {id} is approved by {earlier} already")));
            }
            let sql = format!("UPDATE exemptions SET {column}_by = $1, {column}_at = $2 WHERE id = $3");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&approver.login)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            record!(tx, audit(&approver.login, "approved", id, &e.login, serde_json::json!({"role": approver.role.as_str()})), now);
            activate_if_ready!(tx, id, &e.login, policy, now);
            tx.commit().await?;
        });
        self.exemption(id).await
    }

    /// Denies a pending request, as an admin or the data-protection officer who is neither
    /// the requester nor the user (they withdraw with [`Store::revoke_exemption`]).
    ///
    /// # Errors
    /// `Forbidden` for staff, the requester or the user; `Invalid` when not pending.
    pub async fn deny_exemption(
        &self,
        id: i64,
        by: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Exemption> {
        let actor = self.user_by_login(by).await?;
        if actor.role == Role::Staff {
            return Err(forbidden(
                "only an admin or the data-protection officer may deny",
            ));
        }
        transition!(self, id, tx, e => {
            if actor.login == e.requested_by || actor.login == e.login {
                return Err(forbidden("four eyes: who denies must be neither the requester nor the user (they revoke instead)"));
            }
            if e.state != "requested" && e.state != "confirmed" {
                return Err(not_pending(id, &e, now));
            }
            end!(tx, id, "denied", &actor.login, reason, now);
            record!(tx, audit(&actor.login, "denied", id, &e.login, serde_json::json!({"reason": reason})), now);
            tx.commit().await?;
        });
        self.exemption(id).await
    }

    /// Ends an exemption at once: by an admin, the data-protection officer or the user. Its
    /// follow-up, if any, is not touched (see the module docs).
    ///
    /// # Errors
    /// `Forbidden` for other staff; `Invalid` when it has already ended.
    pub async fn revoke_exemption(&self, id: i64, by: &str, now: Millis) -> Result<Exemption> {
        let actor = self.user_by_login(by).await?;
        transition!(self, id, tx, e => {
            if actor.role == Role::Staff && actor.login != e.login {
                return Err(forbidden("staff may only revoke their own exemption"));
            }
            if !matches!(e.state.as_str(), "requested" | "confirmed" | "active") {
                return Err(invalid(format!("exemption {id} is already {}", e.state)));
            }
            end!(tx, id, "revoked", &actor.login, "revoked", now);
            record!(tx, audit(&actor.login, "revoked", id, &e.login, serde_json::json!({"was": e.state})), now);
            tx.commit().await?;
        });
        self.exemption(id).await
    }

    /// Marks active exemptions past `valid_until`, and requests whose code ran out, as
    /// expired (audited as `system`); returns them.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn expire_exemptions(&self, now: Millis) -> Result<Vec<Exemption>> {
        let due: Vec<(i64,)> = with_pool!(&self.db, read pool => {
            sqlx::query_as(
                "SELECT id FROM exemptions WHERE (state = 'active' AND valid_until <= $1)
                 OR (state = 'requested' AND code_expires_at <= $1)",
            )
            .bind(now)
            .fetch_all(pool)
            .await?
        });
        let mut expired = Vec::new();
        for (id,) in due {
            let done = transition!(self, id, tx, e => {
                let reason = if e.state == "active" { "validity ended" } else { "confirmation code expired" };
                let moved = (e.state == "active" && e.valid_until.is_some_and(|u| u <= now))
                    || (e.state == "requested" && e.code_expires_at <= now);
                if moved {
                    end!(tx, id, "expired", "system", reason, now);
                    record!(tx, audit("system", "expired", id, &e.login, serde_json::json!({"reason": reason})), now);
                }
                tx.commit().await?;
                moved
            });
            if done {
                expired.push(self.exemption(id).await?);
            }
        }
        Ok(expired)
    }

    /// Active exemptions ending within `window` of `now` whose user was not reminded yet.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn exemptions_to_remind(
        &self,
        now: Millis,
        window: Millis,
    ) -> Result<Vec<Exemption>> {
        let rows: Vec<Row> = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE e.state = 'active' AND e.reminded_at IS NULL AND e.valid_from <= $1
                 AND e.valid_until > $1 AND e.valid_until <= $2"
            )))
            .bind(now)
            .bind(now + window)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Row::exemption).collect())
    }

    /// Queues the reminder that exemption `id` ends soon, marks it reminded and audits it,
    /// in one transaction; `false` when it was already reminded or is no longer active.
    ///
    /// # Errors
    /// `NotFound`; `Unavailable` when the database fails.
    pub async fn remind_exemption(&self, id: i64, mail: &QueuedMail, now: Millis) -> Result<bool> {
        transition!(self, id, tx, e => {
            let due = e.state == "active" && e.reminded_at.is_none() && e.valid_until.is_some_and(|u| u > now);
            if due {
                sqlx::query("UPDATE exemptions SET reminded_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                crate::queue::insert_job!(&mut *tx, mail, id, None::<i64>, now);
                record!(tx, audit("system", "reminder_sent", id, &e.login, serde_json::json!({"valid_until": e.valid_until, "target": e.target})), now);
            }
            tx.commit().await?;
            Ok(due)
        })
    }

    /// One exemption.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn exemption(&self, id: i64) -> Result<Exemption> {
        let row: Row = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE e.id = $1")))
                .bind(id)
                .fetch_one(pool)
                .await?
        });
        Ok(row.exemption())
    }

    /// All exemptions, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn list_exemptions(&self) -> Result<Vec<Exemption>> {
        let rows: Vec<Row> = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY e.id DESC")))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Row::exemption).collect())
    }

    /// The exemption under which `user_id`'s mail may be forwarded at `now`, if any: the
    /// active one whose period contains `now` (a follow-up counts only from its start).
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn active_exemption(&self, user_id: i64, now: Millis) -> Result<Option<Exemption>> {
        Ok(self
            .active_exemptions(&[user_id], now)
            .await?
            .remove(&user_id)
            .flatten())
    }

    /// [`Self::active_exemption`] of each of `user_ids`, in one query: every user given is a
    /// key, `None` where there is no active exemption.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn active_exemptions(
        &self,
        user_ids: &[i64],
        now: Millis,
    ) -> Result<std::collections::HashMap<i64, Option<Exemption>>> {
        let mut active: std::collections::HashMap<i64, Option<Exemption>> =
            user_ids.iter().map(|user| (*user, None)).collect();
        if user_ids.is_empty() {
            return Ok(active);
        }
        // Each row says whose it is.
        #[derive(sqlx::FromRow)]
        struct Owned {
            owner: i64,
            #[sqlx(flatten)]
            row: Row,
        }
        let select = format!(
            "{} WHERE e.user_id IN ({}) AND e.state = 'active' AND e.valid_from <= $1
             AND e.valid_until > $1 ORDER BY e.user_id, e.valid_from DESC",
            SELECT.replacen("SELECT ", "SELECT e.user_id AS owner, ", 1),
            crate::db::placeholders(user_ids.len(), 1)
        );
        let rows: Vec<Owned> = with_pool!(&self.db, read pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(select.clone())).bind(now);
            for user in user_ids {
                query = query.bind(*user);
            }
            query.fetch_all(pool).await?
        });
        // The latest start first: a follow-up that has begun takes over.
        for Owned { owner, row } in rows {
            let slot = active.entry(owner).or_default();
            if slot.is_none() {
                *slot = Some(row.exemption());
            }
        }
        Ok(active)
    }
}

impl Store {
    /// The exemption whose confirmation link has the token with SHA-256 `link_hash`, whatever
    /// its state (the page says when it no longer waits for the code); `None` for an unknown
    /// token. Who may use it is the caller's check: only the user whose mail it is.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn exemption_by_link(&self, link_hash: &str) -> Result<Option<Exemption>> {
        let row: Option<Row> = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE e.link_hash = $1")))
                .bind(link_hash)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(Row::exemption))
    }

    /// The exemptions of user `login`, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the database fails.
    pub async fn exemptions_of(&self, login: &str) -> Result<Vec<Exemption>> {
        let login = login.trim().to_ascii_lowercase();
        let rows: Vec<Row> = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE u.login = $1 ORDER BY e.id DESC")))
                .bind(&login)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Row::exemption).collect())
    }

    /// The follow-up of exemption `id`: an exemption of the same user requested after it that
    /// is still pending, or approved and not yet ended at `now`.
    ///
    /// # Errors
    /// `NotFound` when `id` does not exist; `Unavailable` when the database fails.
    pub async fn follow_up(&self, id: i64, now: Millis) -> Result<Option<Exemption>> {
        let row: Option<Row> = with_pool!(&self.db, read pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE e.user_id = (SELECT user_id FROM exemptions WHERE id = $1) AND e.id > $1
                 AND (e.state IN ('requested', 'confirmed') OR (e.state = 'active' AND e.valid_until > $2))
                 ORDER BY e.id LIMIT 1"
            )))
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Row::exemption))
    }
}

/// Compares without an early exit, so timing tells nothing about how much of a code matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
