//! `/held`: the messages the user got a notice for instead of the message (their mailbox
//! copy or a forwarded notice) — date, sender address, categories — newest first, paged,
//! each with a link to its viewer.
//!
//! The store keeps notice tokens only hashed, so the page cannot rebuild the link a notice
//! carried. `/held/{id}` instead asks the store for a fresh token to that message — only
//! while one of the user's own links to it is valid, and expiring with it — and sends the
//! browser to `/m/{token}`: the view itself then takes the one audited path every notice
//! link takes (owner check, `notice.viewed`, downloads by policy). Keeping the original
//! links retrievable would have meant storing bearer secrets in clear; a viewer by message
//! id would have been a second door to audit.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::{Router, routing::get};
use serde::Deserialize;

use crate::datetime::{Dates, Language};
use crate::pages::{self, Chrome};
use crate::session::LoggedIn;
use crate::{Web, exemption_pages};

/// Notices per page.
const PAGE: i64 = 20;
/// Highest page number accepted (bounds the offset).
const MAX_PAGE: i64 = 10_000;

/// The routes of this page family.
pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/held", get(page))
        .route("/held/{id}", get(open))
}

/// One notice as the table shows it.
struct Row {
    id: i64,
    date: String,
    sender: String,
    categories: String,
    /// Whether a link still works (else: expired or revoked).
    open: bool,
}

#[derive(Template)]
#[template(path = "staff/held.html")]
struct Page {
    c: Chrome,
    rows: Vec<Row>,
    /// Link to newer notices (previous page), if any.
    newer: Option<String>,
    /// Link to older notices (next page), if any.
    older: Option<String>,
    /// Shown when a link had expired.
    gone: bool,
}

#[derive(Deserialize, Default)]
struct Paging {
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    gone: Option<u8>,
}

/// `GET /held?page=N`.
async fn page(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(paging): Query<Paging>,
) -> Response {
    let n = paging.page.unwrap_or(0).clamp(0, MAX_PAGE);
    // One more than shown, to know whether older ones exist.
    let mut list = match web
        .store
        .held_notices(user.session.user_id, n * PAGE, PAGE + 1)
        .await
    {
        Ok(list) => list,
        Err(err) => return exemption_pages::failed(&err),
    };
    let more = list.len() > usize::try_from(PAGE).unwrap_or(usize::MAX);
    list.truncate(usize::try_from(PAGE).unwrap_or(usize::MAX));
    let now = store::now_millis();
    let dates = Dates::new(web.time_zone, user.lang);
    let rows = list
        .iter()
        .map(|h| Row {
            id: h.message_id,
            date: dates.millis(h.received_at),
            sender: if h.sender.is_empty() {
                "<>".to_owned()
            } else {
                h.sender.clone()
            },
            categories: h
                .categories
                .iter()
                .map(|c| match user.lang {
                    Language::German => classifier::category::name_de(c),
                    Language::English => classifier::category::name_en(c),
                })
                .collect::<Vec<_>>()
                .join(", "),
            open: h.valid_until.is_some_and(|until| now < until),
        })
        .collect();
    pages::render(
        StatusCode::OK,
        &Page {
            c: user.chrome(),
            rows,
            newer: (n > 0).then(|| format!("/held?page={}", n - 1)),
            older: (more && n < MAX_PAGE).then(|| format!("/held?page={}", n + 1)),
            gone: paging.gone.is_some(),
        },
    )
}

/// `GET /held/{id}`: a fresh link to the user's own notice for message `id`, followed at once.
async fn open(State(web): State<Arc<Web>>, user: LoggedIn, Path(id): Path<i64>) -> Response {
    let token = store::token::new();
    match web
        .store
        .reissue_notice_token(
            id,
            user.session.user_id,
            &store::token::hash(&token),
            store::now_millis(),
        )
        .await
    {
        Ok(true) => Redirect::to(&format!("/m/{token}")).into_response(),
        // Expired, revoked, or not theirs: the list says which links still work.
        Ok(false) => Redirect::to("/held?gone=1").into_response(),
        Err(err) => exemption_pages::failed(&err),
    }
}
