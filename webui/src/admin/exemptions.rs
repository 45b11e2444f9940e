//! `/admin/exemptions` (admins): every exemption that forwards now or is scheduled to (an
//! approved follow-up), with the days left; revoke one. Revoking goes through
//! [`crate::Actions`] like the CLI's, so the user is told by mail.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Form, Router, routing::get, routing::post};
use serde::Deserialize;
use store::{ExemptionState, Role};

use crate::Web;
use crate::datetime::Dates;
use crate::exemption_pages::{self, Outcome, Row, Said};
use crate::pages::{self, Chrome};
use crate::session::LoggedIn;

/// The routes of this page family.
pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin/exemptions", get(page))
        .route("/admin/exemptions/{id}/revoke", post(revoke))
}

#[derive(Template)]
#[template(path = "admin/exemptions.html")]
struct Page {
    c: Chrome,
    said: Said,
    rows: Vec<Row>,
}

/// `GET /admin/exemptions`.
async fn page(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(outcome): Query<Outcome>,
) -> Response {
    if let Err(page) = user.require(&[Role::Admin]) {
        return page;
    }
    let now = store::now_millis();
    let mut list = match web.store.list_exemptions().await {
        Ok(list) => list,
        Err(err) => return exemption_pages::failed(&err),
    };
    // Active at the clock (a lagging expiry task never keeps one here), or scheduled.
    list.retain(|e| e.state == ExemptionState::Active && e.valid_until.is_some_and(|u| now < u));
    list.sort_by_key(|e| (e.valid_from, e.id));
    let dates = Dates::new(web.time_zone, user.lang);
    pages::render(
        StatusCode::OK,
        &Page {
            c: user.chrome(),
            said: outcome.said(user.lang),
            rows: list
                .iter()
                .map(|e| Row::new(e, &web.exemption_policy, now, dates, user.lang))
                .collect(),
        },
    )
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
struct Plain {
    csrf: String,
}

/// `POST /admin/exemptions/{id}/revoke`.
async fn revoke(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Err(page) = user.require(&[Role::Admin]) {
        return page;
    }
    if let Err(page) = user.check_form(&headers, &form.csrf) {
        return page;
    }
    let result = web
        .actions
        .revoke_exemption(id, user.session.login.clone())
        .await;
    if result.is_ok() {
        tracing::info!(login = %user.session.login, id, "web: exemption revoked");
    }
    exemption_pages::after("/admin/exemptions", "revoked", result)
}
