//! Login and logout with the account password (app passwords are for IMAP devices).
//!
//! The user name is the login or any of the user's addresses, case-insensitive
//! ([`store::Store::user_by_name`], the same resolution IMAP uses). Every failure reads
//! the same ("Benutzername oder Passwort ist falsch.") and is answered after the same
//! pause, whether the name exists or not: a name that names nobody is checked against the
//! dummy hash. Failures count in the store together with IMAP's (per address and per
//! account, [`store::Store::admit_login`]): the same doubling delay, and a banned address is
//! refused even with the right password. Every login goes into the user's history.

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
/// Longest user name or address accepted (bytes; an address has at most 254).
const MAX_NAME: usize = 320;
/// Longest password accepted (bytes): argon2 is not handed megabytes.
const MAX_PASSWORD: usize = 1024;

/// The outcome of checking a login.
enum Checked {
    /// The password is right.
    Accepted(store::User),
    /// Wrong name or password (counted); answer after `delay`.
    Refused { delay: std::time::Duration },
    /// The address is banned until `until`: refused without looking at the password.
    Banned { until: store::Millis },
}

/// Checks `name`/`password` from `ip`, counting the attempt with IMAP's in the store
/// ([`store::Store::admit_login`]): the account is the user the name names, or the name
/// itself, normalised, when it names nobody (as IMAP counts it).
async fn check_password(
    web: &Web,
    name: &str,
    password: String,
    ip: &str,
) -> store::Result<Checked> {
    let user = match web.store.user_by_name(name).await {
        Ok(user) => Some(user),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    let account = user
        .as_ref()
        .map_or_else(|| name.trim().to_lowercase(), |u| u.login.clone());
    let delay = match web
        .store
        .admit_login(&web.login_limits, ip, &account, store::now_millis())
        .await?
    {
        store::Admission::Banned { until } => return Ok(Checked::Banned { until }),
        store::Admission::Check { delay_if_wrong } => delay_if_wrong,
    };
    let stored = match &user {
        Some(user) => Some(web.store.password_hash(&user.login).await?),
        None => None,
    };
    // A name that names nobody is checked against the dummy hash: the answer takes as long
    // and reads the same as for a wrong password.
    let hash = stored.unwrap_or_else(|| store::password::dummy_hash().to_owned());
    let matched = tokio::task::spawn_blocking(move || store::password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    match user.filter(|_| matched) {
        Some(user) => {
            web.store.login_succeeded(ip, &account).await?;
            Ok(Checked::Accepted(user))
        }
        None => Ok(Checked::Refused { delay }),
    }
}

/// The page for a banned address: when to try again (429).
fn banned_page(web: &Web, until: store::Millis) -> Response {
    let lang = web.language;
    let dates = crate::datetime::Dates::new(web.time_zone, lang);
    let text = format!(
        "{} {}.",
        lang.t("Von Ihrer Adresse gab es zu viele fehlgeschlagene Anmeldungen. Die Anmeldung ist gesperrt bis"),
        dates.millis(until)
    );
    pages::status_in(
        lang,
        StatusCode::TOO_MANY_REQUESTS,
        lang.t("Anmeldung vorübergehend gesperrt"),
        &text,
    )
}

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
    if f.login.len() > MAX_NAME || f.password.len() > MAX_PASSWORD {
        return login_page(
            web.language,
            StatusCode::UNAUTHORIZED,
            Some("Benutzername oder Passwort ist falsch."),
            &f.next,
            "",
        );
    }
    let ip = peer.ip().to_string();
    let user = match check_password(&web, &f.login, f.password, &ip).await {
        Ok(Checked::Accepted(user)) => user,
        Ok(Checked::Banned { until }) => {
            tracing::warn!(ip = %ip, "web: login refused, address banned");
            return banned_page(&web, until);
        }
        Ok(Checked::Refused { delay }) => {
            tracing::warn!(name = %f.login.trim(), ip = %ip, "web: login failed");
            tokio::time::sleep(delay).await;
            return login_page(
                web.language,
                StatusCode::UNAUTHORIZED,
                Some("Benutzername oder Passwort ist falsch."),
                &f.next,
                &f.login,
            );
        }
        Err(err) => {
            tracing::error!(error = %err, "web: cannot check a login");
            return pages::unavailable();
        }
    };
    if let Err(err) = web
        .store
        .record_login(
            user.id,
            store::LoginVia::Web,
            &ip,
            store::now_millis(),
            web.login_history,
        )
        .await
    {
        tracing::error!(error = %err, "web: cannot record a login");
        return pages::unavailable();
    }
    match start_session(&web, &user, &ip).await {
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
