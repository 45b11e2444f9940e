//! `/admin/queue`: the outbound jobs (role admin) with state, attempts, last error and next
//! attempt — never the message they carry; retry one (due now), drop it (audited) or release
//! a held submission (audited), as `ratspost queue retry|drop|release` do.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use serde::Deserialize;
use store::{OutboundJob, Role};

use crate::Web;
use crate::datetime::Dates;
use crate::pages::{Chrome, render, store_failed};
use crate::paging::{Cursor, Links, PAGE_SIZE, arrange};
use crate::session::LoggedIn;

/// A job as shown.
pub(crate) struct Row {
    pub(crate) job: OutboundJob,
    pub(crate) kind: &'static str,
    pub(crate) state: &'static str,
    /// When it is next tried; empty when it is done.
    pub(crate) next: String,
}

#[derive(Template)]
#[template(path = "admin/queue.html")]
pub(crate) struct QueuePage {
    c: Chrome,
    rows: Vec<Row>,
    links: Links,
    done: Option<String>,
}

/// `?before=`/`?after=` and `?done=retried|dropped|gone&job=ID`.
#[derive(Deserialize)]
pub(crate) struct QueueQuery {
    before: Option<i64>,
    after: Option<i64>,
    done: Option<String>,
    job: Option<i64>,
}

/// A form that only carries its token.
#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: String,
}

fn kind_name(c: &Chrome, kind: &str) -> &'static str {
    match kind {
        "confirmation" => c.t("Bestätigungscode"),
        "forward" => c.t("Weiterleitung"),
        "notice" => c.t("Hinweis"),
        "reminder" => c.t("Erinnerung"),
        "failure_notice" => c.t("Unzustellbarkeitsnachricht"),
        store::SUBMISSION_KIND => c.t("Gesendete Nachricht"),
        _ => c.t("Sonstige"),
    }
}

fn state_name(c: &Chrome, state: &str) -> &'static str {
    match state {
        "queued" => c.t("wartet"),
        "held" => c.t("zurückgehalten"),
        "delivered" => c.t("zugestellt"),
        "failed" => c.t("gescheitert"),
        "dropped" => c.t("verworfen"),
        _ => c.t("unbekannt"),
    }
}

/// `GET /admin/queue`.
pub(crate) async fn list(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(q): Query<QueueQuery>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    let c = user.chrome();
    let page = Cursor {
        before: q.before,
        after: q.after,
    }
    .page();
    let jobs = web
        .store
        .list_outbound_page(page, PAGE_SIZE + 1)
        .await
        .map_err(|e| store_failed(&e))?;
    let (jobs, links) = arrange(page, jobs, |j| j.id, "/admin/queue");
    let dates = Dates::new(web.time_zone, web.language);
    let rows = jobs
        .into_iter()
        .map(|job| Row {
            kind: kind_name(&c, &job.kind),
            state: state_name(&c, &job.state),
            next: if job.state == "queued" {
                dates.millis(job.next_attempt_at)
            } else {
                String::new()
            },
            job,
        })
        .collect();
    let done = match (q.done.as_deref(), q.job) {
        (Some("retried"), Some(id)) => Some(format!(
            "{} {id} {}",
            c.t("Auftrag"),
            c.t("wird sofort erneut versucht.")
        )),
        (Some("dropped"), Some(id)) => Some(format!(
            "{} {id} {}",
            c.t("Auftrag"),
            c.t("wurde verworfen.")
        )),
        (Some("released"), Some(id)) => Some(format!(
            "{} {id} {}",
            c.t("Auftrag"),
            c.t("wurde freigegeben und wird jetzt versandt.")
        )),
        (Some("gone"), Some(id)) => Some(format!(
            "{} {id} {}",
            c.t("Auftrag"),
            c.t("wartet nicht mehr; es wurde nichts geändert.")
        )),
        (Some("busy"), Some(id)) => Some(format!(
            "{} {id} {}",
            c.t("Auftrag"),
            c.t("wird gerade zugestellt; es wurde nichts geändert. Bitte nach diesem Versuch erneut verwerfen.")
        )),
        _ => None,
    };
    Ok(render(
        StatusCode::OK,
        &QueuePage {
            c,
            rows,
            links,
            done,
        },
    ))
}

/// `POST /admin/queue/{id}/{action}`: `retry` (a waiting or failed job is due now), `drop`
/// (a waiting or held job is not sent; audited as `queue.dropped`) or `release` (a held
/// submission is relayed now; audited as `submission.released`), with the admin's login;
/// then back to the list with what happened (`gone` when the job is no longer in a state
/// that allows it).
pub(crate) async fn act(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    user.check_form(&headers, &form.csrf)?;
    let (now, by) = (store::now_millis(), user.session.login.as_str());
    let (result, done) = match action.as_str() {
        "retry" => (web.store.retry_job(id, now).await, "retried"),
        "drop" => (web.store.drop_job(id, by, now).await, "dropped"),
        "release" => (web.store.release_job(id, by, now).await, "released"),
        _ => return Err(StatusCode::NOT_FOUND.into_response()),
    };
    let done = match result {
        Ok(()) => done,
        Err(err) if err.is_not_found() => "gone",
        // A job in delivery is not dropped (its end may be on the way already).
        Err(err) if err.is_conflict() => "busy",
        Err(err) => return Err(store_failed(&err)),
    };
    Ok(Redirect::to(&format!("/admin/queue?done={done}&job={id}")).into_response())
}
