//! `/dpo/register`: the register of exemptions (role dpo) — every exemption, past and
//! present: whose mail, to where, why, requested by, approved by (admin and DPO), from and
//! until, its state, and how many forwards and notices went out under it (counted from the
//! outbound jobs, see `store::register`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{Exemption, ExemptionState, ForwardCounts, Role};

use crate::Web;
use crate::datetime::Dates;
use crate::pages::{Chrome, render, store_failed};
use crate::paging::{Cursor, Links, PAGE_SIZE, arrange};
use crate::session::LoggedIn;

/// An exemption as shown.
pub(crate) struct Row {
    pub(crate) e: Exemption,
    pub(crate) user: String,
    pub(crate) requested: String,
    pub(crate) approvals: Vec<String>,
    pub(crate) from: String,
    pub(crate) until: String,
    /// When and by whom it ended; empty while it runs.
    pub(crate) ended: String,
    pub(crate) state: String,
    /// Why it ended, in the page's words (none for a plain revocation: the state says it).
    pub(crate) end_reason: Option<String>,
    pub(crate) counts: ForwardCounts,
}

#[derive(Template)]
#[template(path = "dpo/register.html")]
pub(crate) struct RegisterPage {
    c: Chrome,
    rows: Vec<Row>,
    links: Links,
}

/// `?before=ID|after=ID`.
#[derive(Deserialize)]
pub(crate) struct RegisterQuery {
    before: Option<i64>,
    after: Option<i64>,
}

/// The state in the pages' words (an approved follow-up that has not begun is "vorgemerkt").
fn state(c: &Chrome, e: &Exemption, now: store::Millis) -> String {
    let german = match e.state {
        ExemptionState::Requested => "beantragt, Code nicht bestätigt",
        ExemptionState::Confirmed => "bestätigt, wartet auf Genehmigung",
        ExemptionState::Active if e.valid_from.is_some_and(|f| f > now) => {
            "genehmigt, beginnt später"
        }
        ExemptionState::Active if e.is_active_at(now) => "aktiv",
        ExemptionState::Active | ExemptionState::Expired => "abgelaufen",
        ExemptionState::Revoked => "widerrufen",
        ExemptionState::Denied => "abgelehnt",
    };
    c.t(german).to_owned()
}

/// `GET /dpo/register`.
pub(crate) async fn list(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(q): Query<RegisterQuery>,
) -> Result<Response, Response> {
    user.require(&[Role::Dpo])?;
    let c = user.chrome();
    let page = Cursor {
        before: q.before,
        after: q.after,
    }
    .page();
    // Newest first, as the store lists them; a page is cut from that list the way the
    // store cuts pages of the long lists.
    let all = web
        .store
        .list_exemptions()
        .await
        .map_err(|e| store_failed(&e))?;
    let take = usize::try_from(PAGE_SIZE + 1).unwrap_or(51);
    let chosen: Vec<Exemption> = match page {
        store::Page::Newest => all.into_iter().take(take).collect(),
        store::Page::Before(id) => all.into_iter().filter(|e| e.id < id).take(take).collect(),
        store::Page::After(id) => all
            .into_iter()
            .rev()
            .filter(|e| e.id > id)
            .take(take)
            .collect(),
    };
    let (chosen, links) = arrange(page, chosen, |e| e.id, "/dpo/register");
    let counts = web
        .store
        .forward_counts()
        .await
        .map_err(|e| store_failed(&e))?;
    let names: std::collections::HashMap<String, String> = web
        .store
        .list_users()
        .await
        .map_err(|e| store_failed(&e))?
        .into_iter()
        .map(|u| (u.login, u.name))
        .collect();
    let person = |login: &str| match names.get(login) {
        Some(name) => format!("{name} ({login})"),
        None => login.to_owned(),
    };
    let dates = Dates::new(web.time_zone, web.language);
    let now = store::now_millis();
    let rows = chosen
        .into_iter()
        .map(|e| {
            let mut approvals = Vec::new();
            if let (Some(by), Some(at)) = (&e.approved_by, e.approved_at) {
                approvals.push(format!("{} ({})", person(by), dates.millis(at)));
            }
            if let (Some(by), Some(at)) = (&e.dpo_approved_by, e.dpo_approved_at) {
                approvals.push(format!(
                    "{} ({}, {})",
                    person(by),
                    c.t("Datenschutz"),
                    dates.millis(at)
                ));
            }
            Row {
                user: person(&e.login),
                requested: format!(
                    "{}, {}",
                    person(&e.requested_by),
                    dates.millis(e.requested_at)
                ),
                approvals,
                from: dates.or(e.valid_from, "–"),
                until: dates.or(e.valid_until, "–"),
                ended: match (&e.ended_by, e.ended_at) {
                    (Some(by), Some(at)) => format!("{}, {}", dates.millis(at), person(by)),
                    (None, Some(at)) => dates.millis(at),
                    _ => String::new(),
                },
                state: state(&c, &e, now),
                end_reason: e
                    .end_reason
                    .as_deref()
                    .filter(|r| *r != "revoked")
                    .map(|r| crate::dpo::audit::sentences::reason(c.lang, r)),
                counts: counts.get(&e.id).copied().unwrap_or_default(),
                e,
            }
        })
        .collect();
    Ok(render(StatusCode::OK, &RegisterPage { c, rows, links }))
}
