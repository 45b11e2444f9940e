//! `/devices`: a user's app passwords (one per phone or laptop) — list, create (the password
//! shown once, with setup instructions and an Apple profile), revoke. The same store calls as
//! `ratspost app-password` ([`store::Store::issue_app_password`],
//! [`store::Store::withdraw_app_password`]), so the audit entries are the same.
//!
//! # Why the .mobileconfig is a POST from the page that shows the password
//!
//! The profile must carry the device's password, which exists in clear only in the response
//! that created it. Two designs were weighed: a one-time download link valid a few minutes
//! (the server would have to keep the password in clear until it is fetched, and the secret
//! would sit in a URL, in history and logs), or a form on the creation page that sends the
//! password back (chosen). The server keeps nothing: the form POSTs the label and the password
//! (CSRF-checked, over TLS, never in a URL), the password is checked against the stored hash
//! of that device of this user, and the profile is answered as a download with
//! `Cache-Control: no-store`. When the page is gone, so is every way to the profile.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Router, routing::get, routing::post};
use serde::Deserialize;

use crate::datetime::Dates;
use crate::session::LoggedIn;
use crate::{Web, mailsetup, pages};

/// Longest device label (as the store allows).
const MAX_LABEL: usize = 100;

/// The routes of the devices pages.
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/devices", get(list).post(create))
        .route("/devices/revoke", post(revoke))
        .route("/devices/mobileconfig", post(mobileconfig))
}

#[derive(Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    done: String,
}

#[derive(Deserialize)]
pub(crate) struct LabelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

#[derive(Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    password: String,
}

/// A device as listed.
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) created: String,
    pub(crate) last_used: String,
    pub(crate) last_ip: String,
}

/// Where and how a mail program connects (the setup instructions).
pub(crate) struct Setup {
    pub(crate) host: String,
    pub(crate) imaps_port: u16,
    pub(crate) imap_port: u16,
    pub(crate) login: String,
    /// Submission port and whether it is implicit TLS; `None` until it exists (issue #14).
    pub(crate) submission: Option<(u16, bool)>,
}

#[derive(askama::Template)]
#[template(path = "staff/devices.html")]
pub(crate) struct DevicesPage {
    pub(crate) c: pages::Chrome,
    pub(crate) rows: Vec<Row>,
    pub(crate) done: Option<&'static str>,
    pub(crate) error: Option<&'static str>,
    pub(crate) label: String,
}

#[derive(askama::Template)]
#[template(path = "staff/device_created.html")]
pub(crate) struct CreatedPage {
    pub(crate) c: pages::Chrome,
    pub(crate) label: String,
    pub(crate) password: String,
    pub(crate) setup: Setup,
}

/// The list page, with an optional confirmation or error.
async fn page(
    web: &Web,
    user: &LoggedIn,
    status: StatusCode,
    done: Option<&'static str>,
    error: Option<&'static str>,
    label: &str,
) -> Response {
    let list = match web.store.app_passwords(user.session.user_id).await {
        Ok(list) => list,
        Err(err) => {
            tracing::error!(error = %err, "web: cannot list app passwords");
            return pages::unavailable();
        }
    };
    let dates = Dates::new(web.time_zone, user.lang);
    let never = user.lang.t("noch nie");
    let rows = list
        .into_iter()
        .map(|a| Row {
            created: dates.millis(a.created_at),
            last_used: dates.or(a.last_used_at, never),
            last_ip: a.last_ip.unwrap_or_else(|| "–".to_owned()),
            label: a.label,
        })
        .collect();
    pages::render(
        status,
        &DevicesPage {
            c: user.chrome(),
            rows,
            done: done.map(|d| user.lang.t(d)),
            error: error.map(|e| user.lang.t(e)),
            label: label.chars().take(MAX_LABEL).collect(),
        },
    )
}

/// `GET /devices[?done=revoked]`.
async fn list(State(web): State<Arc<Web>>, user: LoggedIn, Query(q): Query<Done>) -> Response {
    let done = (q.done == "revoked")
        .then_some("Das Gerät wurde gesperrt; sein App-Passwort gilt nicht mehr.");
    page(&web, &user, StatusCode::OK, done, None, "").await
}

/// `POST /devices`: creates an app password and shows it once (no redirect: the password
/// exists in clear only in this response, which is `no-store`).
async fn create(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Form(f): Form<LabelForm>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &f.csrf) {
        return page;
    }
    let label = f.label.trim();
    // The store's rule, checked here to say it on the page: no control or text-direction
    // characters (they would reorder what the audit trail shows).
    if label.is_empty()
        || label.chars().count() > MAX_LABEL
        || label.chars().any(char::is_control)
        || store::has_hidden_formatting(label)
    {
        let error = "Bitte geben Sie dem Gerät einen Namen mit 1 bis 100 Zeichen.";
        return page(
            &web,
            &user,
            StatusCode::BAD_REQUEST,
            None,
            Some(error),
            label,
        )
        .await;
    }
    let change = store::DeviceChange {
        user_id: user.session.user_id,
        login: &user.session.login,
        label,
        actor: &user.session.login,
    };
    let password = match web
        .store
        .issue_app_password(&change, store::now_millis())
        .await
    {
        Ok(password) => password,
        Err(err) if err.is_conflict() => {
            let error = "Ein Gerät mit diesem Namen gibt es schon. Wählen Sie einen anderen Namen oder sperren Sie das alte Gerät zuerst.";
            return page(&web, &user, StatusCode::CONFLICT, None, Some(error), label).await;
        }
        Err(err) if err.kind() == store::ErrorKind::Invalid => {
            let error = "Bitte geben Sie dem Gerät einen Namen mit 1 bis 100 Zeichen.";
            return page(
                &web,
                &user,
                StatusCode::BAD_REQUEST,
                None,
                Some(error),
                label,
            )
            .await;
        }
        Err(err) => {
            tracing::error!(error = %err, "web: cannot create an app password");
            return pages::unavailable();
        }
    };
    tracing::info!(login = %user.session.login, "web: app password created");
    pages::render(
        StatusCode::OK,
        &CreatedPage {
            c: user.chrome(),
            label: label.to_owned(),
            password,
            setup: Setup {
                host: web.site.host.clone(),
                imaps_port: web.site.imaps_port,
                imap_port: web.site.imap_port,
                login: user.session.login.clone(),
                submission: web.site.submission(),
            },
        },
    )
}

/// `POST /devices/revoke`: revokes the device at once, then back to the list.
async fn revoke(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Form(f): Form<LabelForm>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &f.csrf) {
        return page;
    }
    let label: String = f.label.trim().chars().take(MAX_LABEL + 1).collect();
    let change = store::DeviceChange {
        user_id: user.session.user_id,
        login: &user.session.login,
        label: &label,
        actor: &user.session.login,
    };
    match web
        .store
        .withdraw_app_password(&change, store::now_millis())
        .await
    {
        Ok(()) => {
            tracing::info!(login = %user.session.login, "web: app password revoked");
            Redirect::to("/devices?done=revoked").into_response()
        }
        Err(err) if err.kind() == store::ErrorKind::NotFound => {
            let error = "Dieses Gerät gibt es nicht (mehr).";
            page(&web, &user, StatusCode::NOT_FOUND, None, Some(error), "").await
        }
        Err(err) => {
            tracing::error!(error = %err, "web: cannot revoke an app password");
            pages::unavailable()
        }
    }
}

/// `POST /devices/mobileconfig`: the Apple profile for a device whose password the form
/// carries (see the module docs); 403 when the password is not that device's.
async fn mobileconfig(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Form(f): Form<ProfileForm>,
) -> Response {
    if let Err(page) = user.check_form(&headers, &f.csrf) {
        return page;
    }
    let label = f.label.trim();
    let fits = label.chars().count() <= MAX_LABEL && f.password.len() <= 64;
    let matches = fits
        && match web
            .store
            .app_password_matches(user.session.user_id, label, &f.password)
            .await
        {
            Ok(m) => m,
            Err(err) => {
                tracing::error!(error = %err, "web: cannot check an app password");
                return pages::unavailable();
            }
        };
    if !matches {
        tracing::warn!(login = %user.session.login, "web: profile refused, password does not match the device");
        return pages::status_in(
            user.lang,
            StatusCode::FORBIDDEN,
            user.lang.t("Profil nicht möglich"),
            user.lang.t("Das Profil gibt es nur direkt nach dem Anlegen eines Geräts. Legen Sie das Gerät bitte neu an."),
        );
    }
    let account = match web.store.user_by_login(&user.session.login).await {
        Ok(u) => u,
        Err(err) => {
            tracing::error!(error = %err, "web: cannot read the account");
            return pages::unavailable();
        }
    };
    let address = account.addresses.first().cloned().unwrap_or_default();
    let body = mailsetup::mobileconfig(
        &web.site,
        &mailsetup::Profile {
            name: &account.name,
            login: &account.login,
            address: &address,
            label,
            password: &f.password,
        },
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "application/x-apple-aspen-config".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ratspost.mobileconfig\"".to_owned(),
            ),
        ],
        body,
    )
        .into_response()
}
