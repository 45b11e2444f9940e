//! `/m/{token}`: the original of a message that a notice points to.
//!
//! Only the mailbox owner, logged in, can open it; the store checks and audits in one
//! transaction (`notice.viewed`, or `notice.view_refused` with the reason), before anything
//! is shown. The message text is shown escaped; the original and its attachments can be
//! downloaded, each download audited as its own view.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::{NoticeAccess, NoticeView};

use crate::session::LoggedIn;
use crate::{Web, message, pages};

/// Whether `token` looks like one ratspost issues (64 hex digits); others are not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Opens the link for `user` (audited); the original message on success, the page to show
/// otherwise.
async fn open(web: &Web, user: &LoggedIn, token: &str, what: &str) -> Result<Vec<u8>, Response> {
    let not_found = || {
        pages::status(
            StatusCode::NOT_FOUND,
            "Link unbekannt",
            "Diesen Link gibt es nicht. Bitte prüfen Sie, ob er vollständig kopiert wurde.",
        )
    };
    if !well_formed(token) {
        return Err(not_found());
    }
    let hash = store::token::hash(&token.to_ascii_lowercase());
    let view = NoticeView {
        token_hash: &hash,
        user_id: user.session.user_id,
        login: &user.session.login,
        ip: &user.ip,
        what,
    };
    let access = web
        .store
        .open_notice(&view, store::now_millis())
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "web: cannot open a notice link");
            pages::unavailable()
        })?;
    match access {
        NoticeAccess::Open { message_id } => {
            tracing::info!(login = %user.session.login, message = message_id, what, "web: notice link opened");
            web.store.message_raw(message_id).await.map_err(|err| {
                tracing::error!(error = %err, "web: cannot read a message");
                pages::unavailable()
            })
        }
        NoticeAccess::Refused { reason } => {
            tracing::warn!(login = %user.session.login, reason, "web: notice link refused");
            Err(pages::status(
                if reason.contains("another") {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::GONE
                },
                "Link nicht verfügbar",
                &refusal_text(reason),
            ))
        }
        NoticeAccess::Unknown => Err(not_found()),
    }
}

fn refusal_text(reason: &str) -> String {
    if reason.contains("revoked") {
        "Dieser Link wurde widerrufen.".to_owned()
    } else if reason.contains("expired") {
        "Dieser Link ist abgelaufen. Die Nachricht liegt weiterhin in Ihrem Dienstpostfach."
            .to_owned()
    } else {
        "Dieser Link gehört zu einem anderen Postfach. Der Versuch wurde protokolliert.".to_owned()
    }
}

/// `GET /m/{token}`.
pub(crate) async fn message(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path(token): Path<String>,
) -> Response {
    match open(&web, &user, &token, "message").await {
        Ok(raw) => pages::render(
            StatusCode::OK,
            &pages::Message {
                c: user.chrome(),
                token: &token,
                shown: &message::show(&raw, web.time_zone),
            },
        ),
        Err(page) => page,
    }
}

/// `GET /m/{token}/original`: the message as received (`.eml`).
pub(crate) async fn original(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path(token): Path<String>,
) -> Response {
    match open(&web, &user, &token, "original").await {
        Ok(raw) => download("nachricht.eml", "message/rfc822", raw),
        Err(page) => page,
    }
}

/// `GET /m/{token}/attachments/{index}`.
pub(crate) async fn attachment(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path((token, index)): Path<(String, usize)>,
) -> Response {
    match open(&web, &user, &token, &format!("attachment {index}")).await {
        Ok(raw) => match message::attachment(&raw, index) {
            Some(d) => download(&d.name, &d.mime, d.bytes),
            None => pages::status(
                StatusCode::NOT_FOUND,
                "Anhang unbekannt",
                "Diese Nachricht hat keinen solchen Anhang.",
            ),
        },
        Err(page) => page,
    }
}

/// A download: always as attachment with a neutral type, so the browser never renders it.
fn download(name: &str, mime: &str, bytes: Vec<u8>) -> Response {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        if mime == "message/rfc822" {
            mime
        } else {
            "application/octet-stream"
        }
        .parse()
        .unwrap_or(header::HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = format!("attachment; filename=\"{safe}\"").parse() {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}
