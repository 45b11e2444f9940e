//! The pages, as askama templates in `webui/templates/` (HTML-escaped by default: message
//! headers and text are shown as text, never as markup).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::message::Shown;

/// Renders `page` with `status`.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "web: cannot render a page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct Login<'a> {
    pub(crate) error: Option<&'a str>,
    pub(crate) csrf: &'a str,
    pub(crate) next: &'a str,
    pub(crate) login: &'a str,
}

#[derive(Template)]
#[template(path = "home.html")]
pub(crate) struct Home<'a> {
    pub(crate) name: &'a str,
    pub(crate) login: &'a str,
    pub(crate) csrf: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message<'a> {
    pub(crate) name: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) token: &'a str,
    pub(crate) shown: &'a Shown,
}

#[derive(Template)]
#[template(path = "status.html")]
struct Status<'a> {
    title: &'a str,
    text: &'a str,
}

/// A page that only says something, with `status`.
pub(crate) fn status(status: StatusCode, title: &str, text: &str) -> Response {
    render(status, &Status { title, text })
}

/// The page for a storage failure (nothing is shown that could not be audited).
pub(crate) fn unavailable() -> Response {
    status(
        StatusCode::SERVICE_UNAVAILABLE,
        "Vorübergehend nicht verfügbar",
        "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut.",
    )
}
