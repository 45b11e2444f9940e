//! `/approvals` (admins and the data-protection officer): exemption requests waiting for a
//! decision, oldest first — requester, user, target, days, reason, confirmation state — to
//! approve, or deny with a reason.
//!
//! The four-eyes rules are the store's (the same as for the CLI): the approver is neither
//! the requester nor the user; one approval per role; the DPO's as well when
//! `exemptions.require_dpo`. The page explains them and says, per request, why a button is
//! not offered to this approver; a forged POST is still refused by the store.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::{Form, Router, routing::get, routing::post};
use serde::Deserialize;
use store::{Exemption, ExemptionPolicy, ExemptionState, Role};

use crate::Web;
use crate::datetime::Dates;
use crate::exemption_pages::{self, MAX_REASON, Outcome, Row, Said};
use crate::i18n::Lang;
use crate::pages::{self, Chrome};
use crate::session::LoggedIn;

/// Who may see and use this page.
const ROLES: &[Role] = &[Role::Admin, Role::Dpo];

/// The routes of this page family.
pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/approvals", get(page))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/deny", post(deny))
}

/// A waiting request and what this approver may do with it.
struct Waiting {
    row: Row,
    /// Why neither button is offered (four eyes), if so.
    blocked: Option<&'static str>,
    /// Why approving is not offered while denying is, if so.
    no_approve: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "admin/approvals.html")]
struct Page {
    c: Chrome,
    said: Said,
    waiting: Vec<Waiting>,
    require_dpo: bool,
}

/// Why `login` (with `role`) cannot approve or deny `e` under `policy`, for each button:
/// the rules the store enforces, said before the click.
fn unavailable(
    e: &Exemption,
    login: &str,
    role: Role,
    policy: &ExemptionPolicy,
    lang: Lang,
) -> (Option<&'static str>, Option<&'static str>) {
    let own = if login == e.login {
        Some(lang.t("Es geht um Ihr eigenes Postfach: Eine andere Person muss entscheiden."))
    } else if login == e.requested_by {
        Some(lang.t("Sie haben den Antrag gestellt: Eine andere Person muss entscheiden."))
    } else {
        None
    };
    if own.is_some() {
        return (own, own);
    }
    let no_approve = match role {
        Role::Admin if e.approved_by.is_some() => {
            Some(lang.t("Die Administration hat bereits freigegeben."))
        }
        Role::Dpo if !policy.require_dpo => Some(lang.t(
            "Eine Freigabe durch den Datenschutz ist nicht vorgeschrieben; es entscheidet die Administration. Ablehnen können Sie.",
        )),
        Role::Dpo if e.dpo_approved_by.is_some() => {
            Some(lang.t("Der Datenschutz hat bereits freigegeben."))
        }
        _ => None,
    };
    (no_approve, None)
}

/// `GET /approvals`.
async fn page(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(outcome): Query<Outcome>,
) -> Response {
    if let Err(page) = user.require(ROLES) {
        return page;
    }
    let now = store::now_millis();
    // Ran-out requests are marked first, so that none waits here that cannot be decided.
    if let Err(err) = web.store.expire_exemptions(now).await {
        return exemption_pages::failed(&err);
    }
    let mut list = match web.store.list_exemptions().await {
        Ok(list) => list,
        Err(err) => return exemption_pages::failed(&err),
    };
    list.retain(|e| {
        matches!(
            e.state,
            ExemptionState::Requested | ExemptionState::Confirmed
        )
    });
    list.sort_by_key(|e| (e.requested_at, e.id));
    let dates = Dates::new(web.time_zone, user.lang);
    let policy = &web.exemption_policy;
    let waiting = list
        .iter()
        .map(|e| {
            let (no_approve, no_deny) =
                unavailable(e, &user.session.login, user.session.role, policy, user.lang);
            Waiting {
                row: Row::new(e, policy, now, dates, user.lang),
                blocked: no_deny,
                no_approve: no_approve.filter(|_| no_deny.is_none()),
            }
        })
        .collect();
    pages::render(
        StatusCode::OK,
        &Page {
            c: user.chrome(),
            said: outcome.said(user.lang),
            waiting,
            require_dpo: policy.require_dpo,
        },
    )
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
struct Plain {
    csrf: String,
}

/// The denial form.
#[derive(Deserialize)]
struct DenyForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /approvals/{id}/approve`.
async fn approve(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Err(page) = checked(&user, &headers, &form.csrf) {
        return page;
    }
    let result = web
        .actions
        .approve_exemption(id, user.session.login.clone())
        .await;
    if result.is_ok() {
        tracing::info!(login = %user.session.login, id, "web: exemption approved");
    }
    exemption_pages::after("/approvals", "approved", result)
}

/// `POST /approvals/{id}/deny`: with a reason (1–1000 characters), which the user is told.
async fn deny(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<DenyForm>,
) -> Response {
    if let Err(page) = checked(&user, &headers, &form.csrf) {
        return page;
    }
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Redirect::to("/approvals?error=reason").into_response();
    }
    let result = web
        .actions
        .deny_exemption(id, user.session.login.clone(), reason.to_owned())
        .await;
    if result.is_ok() {
        tracing::info!(login = %user.session.login, id, "web: exemption denied");
    }
    exemption_pages::after("/approvals", "denied", result)
}

/// The role and form checks of both POSTs.
#[allow(clippy::result_large_err)] // a page, returned at once from the handler
fn checked(user: &LoggedIn, headers: &HeaderMap, csrf: &str) -> Result<(), Response> {
    user.require(ROLES)?;
    user.check_form(headers, csrf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(login: &str, by: &str) -> Exemption {
        Exemption {
            id: 1,
            login: login.into(),
            target: "a@example.net".into(),
            reason: "r".into(),
            days: 3,
            state: ExemptionState::Confirmed,
            requested_by: by.into(),
            requested_at: 0,
            code_expires_at: 0,
            code_attempts: 0,
            confirmed_at: Some(1),
            approved_by: None,
            approved_at: None,
            dpo_approved_by: None,
            dpo_approved_at: None,
            valid_from: None,
            valid_until: None,
            reminded_at: None,
            ended_at: None,
            ended_by: None,
            end_reason: None,
        }
    }

    fn policy(require_dpo: bool) -> ExemptionPolicy {
        ExemptionPolicy {
            max_days: 30,
            require_dpo,
            code_ttl: 1,
            max_code_attempts: 3,
            allowed_domains: vec![],
            denied_domains: vec![],
        }
    }

    #[test]
    fn the_page_says_why_a_button_is_not_offered() {
        let e = pending("anna", "admin1");
        let p = policy(false);
        let (a, d) = unavailable(&e, "admin1", Role::Admin, &p, Lang::German);
        assert!(a.is_some_and(|t| t.contains("Antrag gestellt")) && d.is_some());
        let (a, d) = unavailable(
            &pending("admin2", "admin2"),
            "admin2",
            Role::Admin,
            &p,
            Lang::German,
        );
        assert!(a.is_some_and(|t| t.contains("eigenes Postfach")) && d.is_some());
        assert_eq!(
            unavailable(&e, "admin2", Role::Admin, &p, Lang::German),
            (None, None)
        );
        let (a, d) = unavailable(&e, "dora", Role::Dpo, &p, Lang::German);
        assert!(
            a.is_some() && d.is_none(),
            "the DPO may deny, approving is the admins'"
        );
        assert_eq!(
            unavailable(&e, "dora", Role::Dpo, &policy(true), Lang::German),
            (None, None)
        );
        let mut approved = e.clone();
        approved.approved_by = Some("admin2".into());
        assert!(
            unavailable(&approved, "admin3", Role::Admin, &p, Lang::German)
                .0
                .is_some()
        );
        assert_eq!(
            unavailable(&approved, "dora", Role::Dpo, &policy(true), Lang::German),
            (None, None)
        );
    }
}
