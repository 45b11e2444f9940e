//! `/forwarding`: the user's own forwarding exemptions — request one (target, days within
//! policy, reason), see where each stands and what is still missing, revoke one — and
//! `/forwarding/confirm/{token}`, the one-time link from the confirmation mail, where the
//! requesting user (logged in, nobody else) enters the 8-digit code.
//!
//! Requesting and confirming go through [`crate::Actions`] (the relay's code, shared with the
//! CLI: the mail with code and link is composed, classified, signed and queued there; a
//! confirmed request is announced to the approvers). Revoking does too (so the same mails go
//! out). The store checks ownership, policy and attempt limits; the page checks bounds first
//! so that a typo gets a precise answer.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::{Form, Router, routing::get, routing::post};
use serde::Deserialize;
use store::{Confirmation, ExemptionRequest, ExemptionState};

use crate::Web;
use crate::actions::ActionError;
use crate::datetime::Dates;
use crate::exemption_pages::{self, MAX_ADDRESS, MAX_REASON, Outcome, Row, Said};
use crate::i18n::Lang;
use crate::pages::{self, Chrome};
use crate::session::LoggedIn;

/// The routes of this page family.
pub(super) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/forwarding", get(page).post(request))
        .route("/forwarding/{id}/revoke", post(revoke))
        .route(
            "/forwarding/confirm/{token}",
            get(confirm_page).post(confirm),
        )
}

#[derive(Template)]
#[template(path = "staff/forwarding.html")]
struct Page<'a> {
    c: Chrome,
    said: Said,
    rows: Vec<Row>,
    max_days: i64,
    require_dpo: bool,
    /// The form as sent, when it is shown again with an error.
    target: &'a str,
    days: &'a str,
    reason: &'a str,
}

/// The request form.
#[derive(Deserialize)]
struct RequestForm {
    csrf: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    reason: String,
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
struct Plain {
    csrf: String,
}

/// The page with `said` and the form filled with `form` (when shown again).
async fn render(
    web: &Web,
    user: &LoggedIn,
    status: StatusCode,
    said: Said,
    form: Option<&RequestForm>,
) -> Response {
    let list = match web.store.exemptions_of(&user.session.login).await {
        Ok(list) => list,
        Err(err) => return exemption_pages::failed(&err),
    };
    let now = store::now_millis();
    let dates = Dates::new(web.time_zone, user.lang);
    let policy = &web.exemption_policy;
    pages::render(
        status,
        &Page {
            c: user.chrome(),
            said,
            rows: list
                .iter()
                .map(|e| Row::new(e, policy, now, dates, user.lang))
                .collect(),
            max_days: policy.max_days,
            require_dpo: policy.require_dpo,
            target: form.map_or("", |f| f.target.as_str()),
            days: form.map_or("", |f| f.days.as_str()),
            reason: form.map_or("", |f| f.reason.as_str()),
        },
    )
}

/// `GET /forwarding`.
async fn page(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(outcome): Query<Outcome>,
) -> Response {
    let said = outcome.said(user.lang);
    render(&web, &user, StatusCode::OK, said, None).await
}

/// What is wrong with the request form, checked before anything is asked of the store.
fn form_error(form: &RequestForm, max_days: i64, lang: Lang) -> Option<&'static str> {
    let target = form.target.trim();
    // The store's own rule: local@domain at a domain name (not an IP address).
    let well_formed = target.len() <= MAX_ADDRESS && store::is_mail_address(target);
    if !well_formed {
        return Some(lang.t("Bitte geben Sie eine gültige E-Mail-Adresse als Ziel an."));
    }
    if !form
        .days
        .trim()
        .parse::<i64>()
        .is_ok_and(|d| (1..=max_days).contains(&d))
    {
        return Some(
            lang.t("Bitte geben Sie eine Dauer in Tagen innerhalb der erlaubten Höchstdauer an."),
        );
    }
    let reason = form.reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON
        || store::has_hidden_formatting(reason)
    {
        return Some(lang.t("Bitte geben Sie eine Begründung an (höchstens 1000 Zeichen)."));
    }
    None
}

/// What the store's refusal of a request means for the user.
fn request_refusal(err: &ActionError, lang: Lang) -> Option<&'static str> {
    match err {
        ActionError::Withheld => Some(lang.t(
            "Die Bestätigungs-E-Mail enthielte Angaben, die als vertraulich eingestuft werden. Sie wurde nicht gesendet, und es wurde nichts beantragt. Bitte prüfen Sie Zieladresse und Begründung.",
        )),
        ActionError::Store(err) => match err.kind() {
            store::ErrorKind::Conflict => Some(lang.t(
                "Es gibt bereits einen offenen Antrag oder eine Anschlussausnahme. Schließen Sie ihn ab oder widerrufen Sie ihn zuerst.",
            )),
            store::ErrorKind::Invalid => Some(lang.t(
                "Diese Weiterleitung ist nach den Regeln nicht erlaubt: Das Ziel muss eine private Adresse einer zugelassenen Domain sein.",
            )),
            store::ErrorKind::Forbidden | store::ErrorKind::NotFound => {
                Some(lang.t("Das ist Ihnen nicht erlaubt."))
            }
            _ => None,
        },
    }
}

/// The page again with `form` as sent and `text` (in the page's language) as its error.
async fn again(
    web: &Web,
    user: &LoggedIn,
    text: &'static str,
    status: StatusCode,
    form: &RequestForm,
) -> Response {
    let said = Said {
        ok: None,
        error: Some(text),
    };
    render(web, user, status, said, Some(form)).await
}

/// `POST /forwarding`: requests an exemption for the logged-in user.
async fn request(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Form(form): Form<RequestForm>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &form.csrf) {
        return page;
    }
    if let Some(text) = form_error(&form, web.exemption_policy.max_days, user.lang) {
        return again(&web, &user, text, StatusCode::UNPROCESSABLE_ENTITY, &form).await;
    }
    let request = ExemptionRequest {
        login: user.session.login.clone(),
        target: form.target.trim().to_owned(),
        days: form.days.trim().parse().unwrap_or(0),
        reason: form.reason.trim().to_owned(),
        by: user.session.login.clone(),
    };
    match web.actions.request_exemption(request).await {
        Ok(e) => {
            tracing::info!(login = %user.session.login, id = e.id, "web: exemption requested");
            Redirect::to("/forwarding?done=requested").into_response()
        }
        Err(err) => match request_refusal(&err, user.lang) {
            Some(text) => again(&web, &user, text, StatusCode::CONFLICT, &form).await,
            None => {
                tracing::error!(error = ?err, "web: cannot request an exemption");
                pages::unavailable()
            }
        },
    }
}

/// `POST /forwarding/{id}/revoke`: the user ends one of their own exemptions.
async fn revoke(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<Plain>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &form.csrf) {
        return page;
    }
    // Only their own, whatever their role: admins revoke others' on /admin/exemptions.
    match web.store.exemption(id).await {
        Ok(e) if e.login == user.session.login => {}
        Ok(_) => return Redirect::to("/forwarding?error=not_found").into_response(),
        Err(err) if err.is_not_found() => {
            return Redirect::to("/forwarding?error=not_found").into_response();
        }
        Err(err) => return exemption_pages::failed(&err),
    }
    let result = web
        .actions
        .revoke_exemption(id, user.session.login.clone())
        .await;
    exemption_pages::after("/forwarding", "revoked", result)
}

#[derive(Template)]
#[template(path = "staff/forwarding_confirm.html")]
struct ConfirmPage {
    c: Chrome,
    token: String,
    id: i64,
    target: String,
    expires: String,
    error: Option<String>,
}

/// The code form as sent.
#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Whether `token` looks like one ratspost issues (64 hex digits); others are not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The exemption the link `token` belongs to, if it belongs to `user` and still waits for
/// the code; otherwise the page that says why not.
async fn linked(web: &Web, user: &LoggedIn, token: &str) -> Result<store::Exemption, Response> {
    let unknown = || {
        exemption_pages::refused(
            user.lang,
            StatusCode::NOT_FOUND,
            user.lang.t("Link unbekannt"),
            user.lang.t("Diesen Bestätigungslink gibt es nicht. Bitte prüfen Sie, ob er vollständig kopiert wurde."),
        )
    };
    if !well_formed(token) {
        return Err(unknown());
    }
    let e = match web
        .store
        .exemption_by_link(&store::token::hash(&token.to_ascii_lowercase()))
        .await
    {
        Ok(Some(e)) => e,
        Ok(None) => return Err(unknown()),
        Err(err) => return Err(exemption_pages::failed(&err)),
    };
    if e.login != user.session.login {
        tracing::warn!(login = %user.session.login, id = e.id, "web: confirmation link of another user");
        return Err(exemption_pages::refused(
            user.lang,
            StatusCode::FORBIDDEN,
            user.lang.t("Kein Zugriff"),
            user.lang.t("Dieser Bestätigungslink gehört zu einem anderen Benutzer. Nur wer die Weiterleitung für das eigene Postfach beantragt hat, kann sie bestätigen."),
        ));
    }
    let (title, text) = match e.state {
        ExemptionState::Requested if store::now_millis() < e.code_expires_at => return Ok(e),
        ExemptionState::Requested | ExemptionState::Expired => (
            user.lang.t("Link abgelaufen"),
            user.lang.t("Code und Link sind abgelaufen; der Antrag ist verfallen. Sie können unter „Weiterleitung“ einen neuen stellen."),
        ),
        ExemptionState::Confirmed | ExemptionState::Active => (
            user.lang.t("Bereits bestätigt"),
            user.lang.t("Diese Zieladresse ist bereits bestätigt. Den Stand sehen Sie unter „Weiterleitung“."),
        ),
        ExemptionState::Denied | ExemptionState::Revoked => (
            user.lang.t("Antrag beendet"),
            user.lang.t("Dieser Antrag wurde abgelehnt oder widerrufen; eine Bestätigung ist nicht mehr möglich."),
        ),
    };
    Err(exemption_pages::refused(
        user.lang,
        StatusCode::GONE,
        title,
        text,
    ))
}

/// The code page for `e`, with `error` when the last try failed.
fn confirm_render(
    web: &Web,
    user: &LoggedIn,
    token: String,
    e: &store::Exemption,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let dates = Dates::new(web.time_zone, user.lang);
    pages::render(
        status,
        &ConfirmPage {
            c: user.chrome(),
            token,
            id: e.id,
            target: e.target.clone(),
            expires: dates.millis(e.code_expires_at),
            error,
        },
    )
}

/// `GET /forwarding/confirm/{token}`: the form for the code.
async fn confirm_page(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path(token): Path<String>,
) -> Response {
    match linked(&web, &user, &token).await {
        Ok(e) => confirm_render(&web, &user, token, &e, StatusCode::OK, None),
        Err(page) => page,
    }
}

/// `POST /forwarding/confirm/{token}`: checks the code (each wrong one counts).
async fn confirm(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &form.csrf) {
        return page;
    }
    let e = match linked(&web, &user, &token).await {
        Ok(e) => e,
        Err(page) => return page,
    };
    // Spaces are how people copy groups of digits; anything else is not a code and does
    // not cost a try.
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 8 || !code.bytes().all(|b| b.is_ascii_digit()) {
        let error = user
            .lang
            .t("Bitte geben Sie die 8 Ziffern des Codes ein.")
            .to_owned();
        return confirm_render(
            &web,
            &user,
            token,
            &e,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(error),
        );
    }
    match web.actions.confirm_exemption(e.id, code).await {
        Ok(Confirmation::Accepted(_)) => {
            tracing::info!(login = %user.session.login, id = e.id, "web: exemption address confirmed");
            Redirect::to("/forwarding?done=confirmed").into_response()
        }
        Ok(Confirmation::Wrong { remaining }) => {
            let error = format!(
                "{} {remaining}",
                user.lang.t("Der Code ist falsch. Verbleibende Versuche:")
            );
            confirm_render(&web, &user, token, &e, StatusCode::UNPROCESSABLE_ENTITY, Some(error))
        }
        Ok(Confirmation::Locked) => exemption_pages::refused(
            user.lang,
            StatusCode::GONE,
            user.lang.t("Zu viele falsche Codes"),
            user.lang.t("Der Code wurde zu oft falsch eingegeben; der Antrag wurde abgelehnt. Sie können unter „Weiterleitung“ einen neuen stellen."),
        ),
        Ok(Confirmation::Expired) => exemption_pages::refused(
            user.lang,
            StatusCode::GONE,
            user.lang.t("Link abgelaufen"),
            user.lang.t("Code und Link sind abgelaufen; der Antrag ist verfallen. Sie können unter „Weiterleitung“ einen neuen stellen."),
        ),
        Err(err) => match exemption_pages::error_key(&err) {
            Some(_) => exemption_pages::refused(
                user.lang,
                StatusCode::GONE,
                user.lang.t("Bereits bestätigt"),
                user.lang.t("Diese Zieladresse ist bereits bestätigt. Den Stand sehen Sie unter „Weiterleitung“."),
            ),
            None => {
                tracing::error!(error = ?err, "web: cannot confirm an exemption");
                pages::unavailable()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(target: &str, days: &str, reason: &str) -> RequestForm {
        RequestForm {
            csrf: String::new(),
            target: target.into(),
            days: days.into(),
            reason: reason.into(),
        }
    }

    fn form_error_de(form: &RequestForm, max_days: i64) -> Option<&'static str> {
        form_error(form, max_days, Lang::German)
    }

    #[test]
    fn the_form_is_checked_before_the_store_is_asked() {
        assert_eq!(
            form_error_de(&form("a@example.net", "14", "Elternzeit"), 30),
            None
        );
        for bad in [
            form("", "14", "x"),
            form("kein at", "14", "x"),
            form("a@localhost", "14", "x"),
            form(&format!("{}@example.net", "a".repeat(250)), "14", "x"),
            form("a@example.net", "0", "x"),
            form("a@example.net", "31", "x"),
            form("a@example.net", "vierzehn", "x"),
            form("a@example.net", "14", "  "),
            form("a@example.net", "14", &"ä".repeat(1001)),
        ] {
            assert!(
                form_error_de(&bad, 30).is_some(),
                "{:?} {:?}",
                bad.target,
                bad.days
            );
        }
    }

    #[test]
    fn only_issued_tokens_are_looked_up() {
        assert!(well_formed(&"a1".repeat(32)));
        assert!(!well_formed("abc"));
        assert!(!well_formed(&"zz".repeat(32)));
    }
}
