//! `/admin/users`: the accounts (role admin). List them with their addresses, role, state
//! and number of devices; add one (with a generated password, shown once); disable and
//! enable; reset the password (shown once); see and revoke a user's devices.
//!
//! The changes go through the store functions and audit entries of `ratspost user` and
//! `ratspost app-password` (`user.created`, `user.password_changed`, `app_password.revoked`;
//! `user.disabled`/`user.enabled` come with the store's change itself).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use serde::Deserialize;
use store::{AppPassword, ErrorKind, NewUser, Role, User};

use crate::datetime::Dates;
use crate::pages::{Chrome, render, store_failed};
use crate::session::LoggedIn;
use crate::{Web, pages};

/// Length of a generated account password (as `ratspost user add` makes them).
const PASSWORD_LENGTH: usize = 20;
/// Most addresses one form may enrol.
const MAX_ADDRESSES: usize = 20;

/// A user as listed.
pub(crate) struct Row {
    pub(crate) user: User,
    pub(crate) role: &'static str,
    pub(crate) devices: i64,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub(crate) struct UsersPage {
    c: Chrome,
    rows: Vec<Row>,
    done: Option<String>,
    error: Option<&'static str>,
    form: AddForm,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
pub(crate) struct UserPage {
    c: Chrome,
    user: User,
    role: &'static str,
    devices: Vec<(AppPassword, String, String)>,
    done: Option<&'static str>,
    myself: bool,
}

#[derive(Template)]
#[template(path = "admin/password.html")]
pub(crate) struct PasswordPage {
    c: Chrome,
    title: &'static str,
    text: String,
    login: String,
    password: String,
}

/// The form that adds a user (also what it showed, when it comes back with an error).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    login: String,
    name: String,
    #[serde(default)]
    addresses: String,
    role: String,
}

/// A form that only carries its token.
#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: String,
}

/// The form that revokes a device.
#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    csrf: String,
    label: String,
}

/// `?done=…&login=…`: what the last change did (shown as the confirmation).
#[derive(Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
    login: Option<String>,
}

/// The role in the pages' words.
pub(crate) fn role_name(c: &Chrome, role: Role) -> &'static str {
    match role {
        Role::Staff => c.t("Mitarbeiterin/Mitarbeiter"),
        Role::Admin => c.t("Administration"),
        Role::Dpo => c.t("Datenschutzbeauftragte/r"),
    }
}

/// `GET /admin/users`.
pub(crate) async fn list(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(done): Query<Done>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    let c = user.chrome();
    let done = match (done.done.as_deref(), done.login) {
        (Some("created"), Some(login)) => Some(format!(
            "{} {login}",
            c.t("Das Benutzerkonto wurde angelegt:")
        )),
        _ => None,
    };
    users_page(&web, c, StatusCode::OK, done, None, AddForm::default()).await
}

async fn users_page(
    web: &Web,
    c: Chrome,
    status: StatusCode,
    done: Option<String>,
    error: Option<&'static str>,
    form: AddForm,
) -> Result<Response, Response> {
    let users = web.store.list_users().await.map_err(|e| store_failed(&e))?;
    let counts = web
        .store
        .device_counts()
        .await
        .map_err(|e| store_failed(&e))?;
    let rows = users
        .into_iter()
        .map(|user| Row {
            role: role_name(&c, user.role),
            devices: counts.get(&user.id).copied().unwrap_or(0),
            user,
        })
        .collect();
    Ok(render(
        status,
        &UsersPage {
            c,
            rows,
            done,
            error,
            form,
        },
    ))
}

/// `POST /admin/users`: adds a user, as `ratspost user add` does, and shows their
/// generated password once.
pub(crate) async fn add(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    axum::Form(form): axum::Form<AddForm>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    user.check_form(&headers, &form.csrf)?;
    let c = user.chrome();
    let addresses: Vec<String> = form
        .addresses
        .split(|ch: char| ch.is_whitespace() || ch == ',' || ch == ';')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let role = match form.role.as_str() {
        "staff" => Some(Role::Staff),
        "admin" => Some(Role::Admin),
        "dpo" => Some(Role::Dpo),
        _ => None,
    };
    let invalid = "Bitte prüfen Sie die Angaben: Der Benutzername hat 1 bis 64 Zeichen (a–z, 0–9, Punkt, \
                   Unterstrich, Bindestrich), der Name 1 bis 200 Zeichen, jede Adresse die Form \
                   name@domain (höchstens 20).";
    let (Some(role), true) = (
        role,
        form.login.len() <= 64
            && form.name.chars().count() <= 200
            && form.addresses.len() <= 4000
            && addresses.len() <= MAX_ADDRESSES,
    ) else {
        return users_page(
            &web,
            c,
            StatusCode::BAD_REQUEST,
            None,
            Some(user.lang.t(invalid)),
            form,
        )
        .await;
    };
    let (password, hash) = new_password().await?;
    let new = NewUser {
        login: form.login.clone(),
        name: form.name.clone(),
        role,
        password_hash: hash,
        addresses,
    };
    let created = match web.store.create_user(&new).await {
        Ok(created) => created,
        Err(err) if err.kind() == ErrorKind::Invalid => {
            return users_page(
                &web,
                c,
                StatusCode::BAD_REQUEST,
                None,
                Some(user.lang.t(invalid)),
                form,
            )
            .await;
        }
        Err(err) if err.is_conflict() => {
            let taken = user.lang.t(
                "Der Benutzername oder eine der Adressen ist bereits vergeben. Jede Adresse kann nur zu einem Benutzerkonto gehören.",
            );
            return users_page(&web, c, StatusCode::CONFLICT, None, Some(taken), form).await;
        }
        Err(err) => return Err(store_failed(&err)),
    };
    audit(
        &web,
        &user,
        "user.created",
        &created.login,
        serde_json::json!({"role": created.role.as_str(), "addresses": created.addresses}),
    )
    .await?;
    Ok(render(
        StatusCode::OK,
        &PasswordPage {
            title: c.t("Benutzerkonto angelegt"),
            text: format!(
                "{} {} ({})",
                c.t("Das Benutzerkonto wurde angelegt:"),
                created.login,
                created.name
            ),
            c,
            login: created.login,
            password,
        },
    ))
}

/// A generated password and its argon2id hash (computed off the async threads: it is
/// slow on purpose).
async fn new_password() -> Result<(String, String), Response> {
    let password = store::password::generate(PASSWORD_LENGTH);
    let for_hash = password.clone();
    let hash = tokio::task::spawn_blocking(move || store::password::hash(&for_hash))
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?
        .map_err(|e| store_failed(&e))?;
    Ok((password, hash))
}

/// Records a change of `login`'s account made by the logged-in admin (as the CLI does).
async fn audit(
    web: &Web,
    user: &LoggedIn,
    action: &str,
    login: &str,
    details: serde_json::Value,
) -> Result<(), Response> {
    web.store
        .append_audit(&store::NewAuditEntry {
            actor: user.session.login.clone(),
            action: action.to_owned(),
            subjects: vec![format!("user:{login}")],
            details,
        })
        .await
        .map(|_| ())
        .map_err(|e| store_failed(&e))
}

/// The user `login` names, or the 404 page.
async fn target(web: &Web, user: &LoggedIn, login: &str) -> Result<User, Response> {
    if login.len() > 64 {
        return Err(not_found(user));
    }
    match web.store.user_by_login(login).await {
        Ok(u) => Ok(u),
        Err(err) if err.is_not_found() => Err(not_found(user)),
        Err(err) => Err(store_failed(&err)),
    }
}

fn not_found(user: &LoggedIn) -> Response {
    pages::status_in(
        user.lang,
        StatusCode::NOT_FOUND,
        user.lang.t("Benutzer nicht gefunden"),
        user.lang.t("Dieses Benutzerkonto gibt es nicht."),
    )
}

/// `GET /admin/users/{login}`: one account, its devices and what can be done with it.
pub(crate) async fn show(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path(login): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    let target = target(&web, &user, &login).await?;
    let c = user.chrome();
    let dates = Dates::new(web.time_zone, web.language);
    let never = c.t("nie");
    let devices = web
        .store
        .app_passwords(target.id)
        .await
        .map_err(|e| store_failed(&e))?
        .into_iter()
        .map(|d| {
            let (created, used) = (dates.millis(d.created_at), dates.or(d.last_used_at, never));
            (d, created, used)
        })
        .collect();
    let done = match done.done.as_deref() {
        Some("disabled") => {
            Some(c.t("Das Benutzerkonto ist gesperrt. Alle Anmeldungen wurden beendet."))
        }
        Some("enabled") => Some(c.t("Das Benutzerkonto ist wieder freigegeben.")),
        Some("revoked") => Some(c.t("Das Gerätepasswort wurde widerrufen.")),
        Some("no_device") => {
            Some(c.t("Ein Gerät mit diesem Namen gibt es nicht (mehr); es wurde nichts geändert."))
        }
        _ => None,
    };
    Ok(render(
        StatusCode::OK,
        &UserPage {
            role: role_name(&c, target.role),
            myself: target.login == user.session.login,
            c,
            user: target,
            devices,
            done,
        },
    ))
}

/// `POST /admin/users/{login}/disable`.
pub(crate) async fn disable(
    state: State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    login: Path<String>,
    form: axum::Form<TokenForm>,
) -> Result<Response, Response> {
    set_disabled(state, user, headers, login, form, true).await
}

/// `POST /admin/users/{login}/enable`.
pub(crate) async fn enable(
    state: State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    login: Path<String>,
    form: axum::Form<TokenForm>,
) -> Result<Response, Response> {
    set_disabled(state, user, headers, login, form, false).await
}

async fn set_disabled(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(login): Path<String>,
    axum::Form(form): axum::Form<TokenForm>,
    disabled: bool,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    user.check_form(&headers, &form.csrf)?;
    let target = target(&web, &user, &login).await?;
    let done = if disabled { "disabled" } else { "enabled" };
    match web
        .store
        .set_user_disabled(
            &target.login,
            disabled,
            &user.session.login,
            store::now_millis(),
        )
        .await
    {
        // Already so (a second click, another admin): the page shows the state as it is.
        Ok(_) => {}
        Err(err) if err.is_conflict() => {}
        Err(err) if err.kind() == ErrorKind::Invalid => {
            return Err(pages::status_in(
                user.lang,
                StatusCode::BAD_REQUEST,
                user.lang.t("Nicht möglich"),
                user.lang
                    .t("Sie können Ihr eigenes Benutzerkonto nicht sperren."),
            ));
        }
        Err(err) => return Err(store_failed(&err)),
    }
    Ok(Redirect::to(&user_path(&target.login, done)).into_response())
}

/// `/admin/users/LOGIN?done=DONE` (logins are `a-z 0-9 . _ -`: nothing to encode).
fn user_path(login: &str, done: &str) -> String {
    format!("/admin/users/{login}?done={done}")
}

/// `POST /admin/users/{login}/password`: a new generated password, shown once; the store
/// ends the user's web sessions with the change.
pub(crate) async fn reset_password(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(login): Path<String>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    user.check_form(&headers, &form.csrf)?;
    let target = target(&web, &user, &login).await?;
    let (password, hash) = new_password().await?;
    web.store
        .set_password_hash(&target.login, &hash)
        .await
        .map_err(|e| store_failed(&e))?;
    audit(
        &web,
        &user,
        "user.password_changed",
        &target.login,
        serde_json::json!({}),
    )
    .await?;
    let c = user.chrome();
    Ok(render(
        StatusCode::OK,
        &PasswordPage {
            title: c.t("Neues Passwort"),
            text: format!(
                "{} {} ({})",
                c.t("Das Passwort wurde neu gesetzt für"),
                target.login,
                target.name
            ),
            c,
            login: target.login,
            password,
        },
    ))
}

/// `POST /admin/users/{login}/devices/revoke`: ends one device's app password at once.
pub(crate) async fn revoke_device(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    headers: HeaderMap,
    Path(login): Path<String>,
    axum::Form(form): axum::Form<RevokeForm>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    user.check_form(&headers, &form.csrf)?;
    let target = target(&web, &user, &login).await?;
    if form.label.chars().count() > 100 {
        return Err(StatusCode::BAD_REQUEST.into_response());
    }
    // The same store function as the user's own page and `ratspost app-password revoke`:
    // the same audit entry, with the admin as its actor.
    let change = store::DeviceChange {
        user_id: target.id,
        login: &target.login,
        label: form.label.trim(),
        actor: &user.session.login,
    };
    let done = match web
        .store
        .withdraw_app_password(&change, store::now_millis())
        .await
    {
        Ok(()) => "revoked",
        // No such live device (revoked already by a second click, or never there): say so
        // rather than claim a revocation.
        Err(err) if err.is_not_found() => "no_device",
        Err(err) => return Err(store_failed(&err)),
    };
    Ok(Redirect::to(&user_path(&target.login, done)).into_response())
}
