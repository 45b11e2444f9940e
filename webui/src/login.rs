//! Login and logout with the account password (app passwords are for IMAP devices).
//!
//! The user name is the login or any of the user's addresses, case-insensitive
//! ([`store::Store::user_by_name`], the same resolution IMAP uses). Every failure reads
//! the same ("Benutzername oder Passwort ist falsch.") and is answered after the same
//! pause, whether the name exists or not: a name that names nobody is checked against the
//! dummy hash.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::ErrorKind;

use crate::i18n::Lang;
use crate::session::{
    self, LOGIN_COOKIE, LoggedIn, SESSION_COOKIE, cookie, form_allowed, local_path, set_cookie,
};
use crate::{ClientAddr, Web, pages};

/// Lifetime of the login form's CSRF cookie.
const LOGIN_FORM_SECS: u64 = 3600;

#[derive(Deserialize)]
pub(crate) struct Next {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /`: who is logged in.
pub(crate) async fn home(user: LoggedIn) -> Response {
    pages::render(
        StatusCode::OK,
        &pages::Home {
            c: user.chrome(),
            login: &user.session.login,
        },
    )
}

fn login_page(
    lang: Lang,
    status: StatusCode,
    error: Option<&'static str>,
    next: &str,
    login: &str,
) -> Response {
    let csrf = store::token::new();
    let mut response = pages::render(
        status,
        &pages::Login {
            c: pages::Chrome::anonymous(lang),
            error: error.map(|e| lang.t(e)),
            csrf: &csrf,
            next: &local_path(next),
            login,
        },
    );
    if let Ok(v) = set_cookie(LOGIN_COOKIE, Some(&csrf), LOGIN_FORM_SECS).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET /login?next=PATH`.
pub(crate) async fn form(State(web): State<Arc<Web>>, Query(q): Query<Next>) -> Response {
    login_page(web.language, StatusCode::OK, None, &q.next, "")
}

/// `POST /login`.
pub(crate) async fn submit(
    State(web): State<Arc<Web>>,
    axum::Extension(ClientAddr(peer)): axum::Extension<ClientAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !form_allowed(&headers, expected, &f.csrf) {
        return login_page(
            web.language,
            StatusCode::BAD_REQUEST,
            Some("Das Formular war abgelaufen. Bitte melden Sie sich erneut an."),
            &f.next,
            &f.login,
        );
    }
    let user = match web.store.user_by_name(&f.login).await {
        Ok(user) => Some(user),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => {
            tracing::error!(error = %err, "web: cannot read accounts");
            return pages::unavailable();
        }
    };
    let stored = match &user {
        Some(user) => match web.store.password_hash(&user.login).await {
            Ok(hash) => Some(hash),
            Err(err) => {
                tracing::error!(error = %err, "web: cannot read accounts");
                return pages::unavailable();
            }
        },
        None => None,
    };
    // A name that names nobody is checked against the dummy hash: the answer takes as long
    // and reads the same as for a wrong password.
    let hash = stored.unwrap_or_else(|| store::password::dummy_hash().to_owned());
    let password = f.password;
    let matched = tokio::task::spawn_blocking(move || store::password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| matched) else {
        tracing::warn!(name = %f.login.trim(), ip = %peer.ip(), "web: login failed");
        tokio::time::sleep(web.login_failure_delay).await;
        return login_page(
            web.language,
            StatusCode::UNAUTHORIZED,
            Some("Benutzername oder Passwort ist falsch."),
            &f.next,
            &f.login,
        );
    };
    match start_session(&web, &user, &peer.ip().to_string()).await {
        Ok(token) => {
            tracing::info!(login = %user.login, ip = %peer.ip(), "web: logged in");
            let mut response = Redirect::to(&local_path(&f.next)).into_response();
            let h = response.headers_mut();
            let ttl = web.session_ttl.as_secs();
            for c in [
                set_cookie(SESSION_COOKIE, Some(&token), ttl),
                set_cookie(LOGIN_COOKIE, None, 0),
            ] {
                if let Ok(v) = c.parse() {
                    h.append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "web: cannot start a session");
            pages::unavailable()
        }
    }
}

async fn start_session(web: &Web, user: &store::User, ip: &str) -> store::Result<String> {
    let token = store::token::new();
    let now = store::now_millis();
    let ttl = i64::try_from(web.session_ttl.as_millis()).unwrap_or(i64::MAX);
    web.store
        .create_web_session(
            &store::token::hash(&token),
            user.id,
            &store::token::new(),
            ip,
            now,
            now.saturating_add(ttl),
        )
        .await?;
    Ok(token)
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !form_allowed(&headers, &user.session.csrf, &f.csrf) {
        return pages::status(
            StatusCode::BAD_REQUEST,
            "Abmelden fehlgeschlagen",
            "Das Formular war ungültig. Bitte laden Sie die Seite neu.",
        );
    }
    let token = session::cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    if let Err(err) = web
        .store
        .delete_web_session(&store::token::hash(token))
        .await
    {
        tracing::error!(error = %err, "web: cannot end a session");
        return pages::unavailable();
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, None, 0).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
