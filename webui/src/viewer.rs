//! `/m/{token}`: the original of a message that a notice points to.
//!
//! Only the mailbox owner, logged in, can open it; the store checks and audits in one
//! transaction (`notice.viewed`, or `notice.view_refused` with the reason), before anything
//! is shown. The page shows the message (HTML sanitised, see `sanitize.rs`; text escaped)
//! under a banner with the verdict's categories. The original and its attachments can be
//! downloaded as `web.downloads` allows ([`Downloads`]); each download — and each refused
//! one — is audited as its own view.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::{NoticeAccess, NoticeView, VerdictGate};

use crate::downloads::Downloads;
use crate::i18n::Lang;
use crate::session::LoggedIn;
use crate::{Web, categories, message, pages};

/// Whether `token` looks like one ratspost issues (64 hex digits); others are not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A page that says why something is not shown, in the user's language.
fn refused_page(
    lang: Lang,
    status: StatusCode,
    title: &'static str,
    text: &'static str,
) -> Response {
    pages::status_in(lang, status, lang.t(title), lang.t(text))
}

/// Opens the link for `user` (audited; `gate` is the download policy, or open for the page
/// itself); the message's id and original on success, the page to show otherwise.
async fn open(
    web: &Web,
    user: &LoggedIn,
    token: &str,
    what: &str,
    gate: VerdictGate<'_>,
) -> Result<(i64, Vec<u8>), Response> {
    let lang = user.lang;
    let not_found = || {
        refused_page(
            lang,
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
        gate,
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
            let raw = web.store.message_raw(message_id).await.map_err(|err| {
                if err.is_purged() {
                    tracing::info!(message = message_id, "web: notice link to a purged message");
                    return purged_page(lang);
                }
                tracing::error!(error = %err, "web: cannot read a message");
                pages::unavailable()
            })?;
            Ok((message_id, raw))
        }
        NoticeAccess::Refused { reason } => {
            tracing::warn!(login = %user.session.login, reason, what, "web: notice link refused");
            Err(refusal(lang, reason))
        }
        NoticeAccess::Unknown => Err(not_found()),
    }
}

/// The page for a message whose content was purged under `retention.message_days`.
fn purged_page(lang: Lang) -> Response {
    refused_page(
        lang,
        StatusCode::GONE,
        "Nachricht gelöscht",
        "Der Inhalt dieser Nachricht wurde nach Ablauf der Aufbewahrungsfrist gelöscht (Speicherbegrenzung). Absender, Datum und Einstufung bleiben protokolliert.",
    )
}

/// The page for a refusal by the store (`reason` as audited).
fn refusal(lang: Lang, reason: &str) -> Response {
    if reason == store::PURGED_REASON {
        return purged_page(lang);
    }
    let (status, title, text) = if Downloads::is_policy_reason(reason) {
        (
            StatusCode::FORBIDDEN,
            "Download nicht erlaubt",
            "Das Original und die Anhänge dieser Nachricht dürfen nach den Vorgaben Ihrer Verwaltung nicht heruntergeladen werden. Sie können die Nachricht weiterhin ansehen. Der Versuch wurde protokolliert.",
        )
    } else if reason.contains("revoked") {
        (
            StatusCode::GONE,
            "Link nicht verfügbar",
            "Dieser Link wurde widerrufen.",
        )
    } else if reason.contains("expired") {
        (
            StatusCode::GONE,
            "Link nicht verfügbar",
            "Dieser Link ist abgelaufen. Die Nachricht liegt weiterhin in Ihrem Dienstpostfach.",
        )
    } else {
        (
            StatusCode::FORBIDDEN,
            "Link nicht verfügbar",
            "Dieser Link gehört zu einem anderen Postfach. Der Versuch wurde protokolliert.",
        )
    };
    refused_page(lang, status, title, text)
}

/// `GET /m/{token}`.
pub(crate) async fn message(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path(token): Path<String>,
) -> Response {
    let (message_id, raw) = match open(&web, &user, &token, "message", VerdictGate::Open).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let verdict = match web.store.verdict(message_id).await {
        Ok(v) => v,
        Err(err) => {
            tracing::error!(error = %err, "web: cannot read a verdict");
            return pages::unavailable();
        }
    };
    let found = verdict.map(|v| v.categories);
    let mut shown = message::show(&raw, web.time_zone, user.lang);
    if shown.date.is_empty() {
        // No readable `Date:`: when ratspost took it is the next best date.
        match web.store.message_envelope(message_id).await {
            Ok(envelope) => {
                shown.date = crate::datetime::Dates::new(web.time_zone, user.lang)
                    .millis(envelope.received_at);
            }
            Err(err) => tracing::warn!(error = %err, "web: no envelope for a message's date"),
        }
    }
    pages::render(
        StatusCode::OK,
        &pages::Message {
            token: &token,
            categories: categories::named(found.as_deref().unwrap_or_default(), user.lang),
            downloads_refused: web.downloads.refusal(found.as_deref(), user.lang),
            shown: &shown,
            c: user.chrome(),
        },
    )
}

/// `GET /m/{token}/original`: the message as received (`.eml`), if `web.downloads` allows.
pub(crate) async fn original(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path(token): Path<String>,
) -> Response {
    match open(&web, &user, &token, "original", web.downloads.gate()).await {
        Ok((_, raw)) => download("nachricht.eml", "message/rfc822", raw),
        Err(page) => page,
    }
}

/// Highest attachment index looked at (a message has far fewer; bounds the audit text).
const MAX_ATTACHMENT_INDEX: usize = 10_000;

/// `GET /m/{token}/attachments/{index}`, if `web.downloads` allows.
pub(crate) async fn attachment(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path((token, index)): Path<(String, usize)>,
) -> Response {
    let lang = user.lang;
    let unknown = || {
        refused_page(
            lang,
            StatusCode::NOT_FOUND,
            "Anhang unbekannt",
            "Diese Nachricht hat keinen solchen Anhang.",
        )
    };
    if index > MAX_ATTACHMENT_INDEX {
        return unknown();
    }
    match open(
        &web,
        &user,
        &token,
        &format!("attachment {index}"),
        web.downloads.gate(),
    )
    .await
    {
        Ok((_, raw)) => match message::attachment(&raw, index) {
            Some(d) => download(&d.name, &d.mime, d.bytes),
            None => unknown(),
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
