//! `/logins`: the user's own login history (web and IMAP, with the device and a flag when
//! the address was new) and their web sessions, each of which they can end — or all others.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Router, routing::get, routing::post};
use serde::Deserialize;

use crate::datetime::Dates;
use crate::session::{LoggedIn, SESSION_COOKIE, cookie};
use crate::{Web, pages};

/// Rows of history per page.
const PAGE: u32 = 50;

/// The routes of the logins page.
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/logins", get(show))
        .route("/logins/sessions/end", post(end_one))
        .route("/logins/sessions/end-others", post(end_others))
}

#[derive(Deserialize)]
pub(crate) struct Paging {
    /// Show rows older than this id.
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    done: String,
}

#[derive(Deserialize)]
pub(crate) struct EndForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    session: String,
}

/// A login as shown.
pub(crate) struct Row {
    pub(crate) when: String,
    pub(crate) device: String,
    pub(crate) ip: String,
    pub(crate) count: i64,
    pub(crate) new_address: bool,
}

/// A session as shown.
pub(crate) struct SessionRow {
    pub(crate) handle: String,
    pub(crate) started: String,
    pub(crate) ip: String,
    pub(crate) current: bool,
}

#[derive(askama::Template)]
#[template(path = "staff/logins.html")]
pub(crate) struct LoginsPage {
    pub(crate) c: pages::Chrome,
    pub(crate) rows: Vec<Row>,
    pub(crate) sessions: Vec<SessionRow>,
    pub(crate) done: Option<&'static str>,
    /// Link to the next (older) page.
    pub(crate) older: Option<String>,
    /// Whether this is not the first page (link to the newest).
    pub(crate) paged: bool,
}

/// The hash of this request's session cookie.
fn current_hash(headers: &HeaderMap) -> String {
    store::token::hash(cookie(headers, SESSION_COOKIE).unwrap_or_default())
}

/// `GET /logins[?before=ID]`.
async fn show(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    paging: Result<Query<Paging>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(paging)) = paging else {
        return Redirect::to("/logins").into_response();
    };
    let id = user.session.user_id;
    let now = store::now_millis();
    let history = web.store.logins(id, paging.before, PAGE + 1).await;
    let sessions = web
        .store
        .web_sessions_of(id, &current_hash(&headers), now)
        .await;
    let (Ok(mut history), Ok(sessions)) = (history, sessions) else {
        tracing::error!("web: cannot read the login history or sessions");
        return pages::unavailable();
    };
    let more = history.len() > PAGE as usize;
    history.truncate(PAGE as usize);
    let dates = Dates::new(web.time_zone, user.lang);
    let older = more
        .then(|| history.last().map(|r| format!("/logins?before={}", r.id)))
        .flatten();
    let rows = history
        .into_iter()
        .map(|r| Row {
            when: dates.millis(r.last_at),
            device: match (r.via.as_str(), r.device) {
                ("web", _) => user.lang.t("Web (Browser)").to_owned(),
                // The same device reads (IMAP) and sends (submission): say which it did.
                ("submission", Some(label)) => {
                    format!("{label} ({})", user.lang.t("Versand"))
                }
                (_, Some(label)) => label,
                (_, None) => user.lang.t("E-Mail-Programm").to_owned(),
            },
            ip: r.ip,
            count: r.count,
            new_address: r.new_address,
        })
        .collect();
    let sessions = sessions
        .into_iter()
        .map(|s| SessionRow {
            handle: s.handle,
            started: dates.millis(s.created_at),
            ip: s.ip,
            current: s.current,
        })
        .collect();
    let done = match paging.done.as_str() {
        "one" => Some("Die Sitzung wurde beendet."),
        "others" => Some("Alle anderen Sitzungen wurden beendet."),
        _ => None,
    };
    pages::render(
        StatusCode::OK,
        &LoginsPage {
            c: user.chrome(),
            rows,
            sessions,
            done: done.map(|d| user.lang.t(d)),
            older,
            paged: paging.before.is_some(),
        },
    )
}

/// `POST /logins/sessions/end`: ends one of the user's sessions (only their own: the store
/// looks the handle up among this user's sessions).
async fn end_one(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Form(f): Form<EndForm>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &f.csrf) {
        return page;
    }
    if f.session.len() > 64 {
        return Redirect::to("/logins").into_response();
    }
    match web
        .store
        .end_web_session(user.session.user_id, &f.session)
        .await
    {
        Ok(()) => {
            tracing::info!(login = %user.session.login, "web: a session was ended by its user");
            Redirect::to("/logins?done=one").into_response()
        }
        Err(err) if err.kind() == store::ErrorKind::NotFound => pages::status_in(
            user.lang,
            StatusCode::NOT_FOUND,
            user.lang.t("Sitzung nicht gefunden"),
            user.lang.t("Diese Sitzung ist schon beendet."),
        ),
        Err(err) => {
            tracing::error!(error = %err, "web: cannot end a session");
            pages::unavailable()
        }
    }
}

/// `POST /logins/sessions/end-others`: ends every session of the user but this one.
async fn end_others(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Form(f): Form<EndForm>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &f.csrf) {
        return page;
    }
    match web
        .store
        .end_other_web_sessions(user.session.user_id, &current_hash(&headers))
        .await
    {
        Ok(n) => {
            tracing::info!(login = %user.session.login, ended = n, "web: other sessions ended by their user");
            Redirect::to("/logins?done=others").into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "web: cannot end sessions");
            pages::unavailable()
        }
    }
}
