//! The pages, as askama templates in `webui/templates/` (HTML-escaped by default: message
//! headers and text are shown as text, never as markup).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::i18n::Lang;
use crate::message::Shown;
use store::Role;

/// What every page's layout needs (`c` in the templates): the language, and for a logged-in
/// user their name, role (which decides the navigation), CSRF token and the current path.
pub(crate) struct Chrome {
    /// The pages' language.
    pub(crate) lang: Lang,
    /// Display name; empty when nobody is logged in.
    pub(crate) name: String,
    /// Role of the logged-in user, `None` on the login and error pages.
    pub(crate) role: Option<Role>,
    /// The session's CSRF token, for the logout form and the page's own forms.
    pub(crate) csrf: String,
    /// The request path, to mark the current navigation entry (`aria-current`).
    pub(crate) here: String,
}

/// One link of the navigation.
pub(crate) struct NavItem {
    pub(crate) href: &'static str,
    pub(crate) label: &'static str,
    pub(crate) current: bool,
}

/// A group of links, headed by who they are for.
pub(crate) struct NavSection {
    pub(crate) label: &'static str,
    pub(crate) items: Vec<NavItem>,
}

impl Chrome {
    /// The layout for a page nobody is logged in to.
    pub(crate) fn anonymous(lang: Lang) -> Self {
        Self {
            lang,
            name: String::new(),
            role: None,
            csrf: String::new(),
            here: String::new(),
        }
    }

    /// `german` in the pages' language.
    pub(crate) fn t(&self, german: &'static str) -> &'static str {
        self.lang.t(german)
    }

    /// Whether someone is logged in (the header shows the logout button).
    pub(crate) fn logged_in(&self) -> bool {
        self.role.is_some()
    }

    /// The navigation for this user's role: everyone has their own mailbox part, admins and
    /// the data-protection officer their own part besides (both may approve exemptions).
    pub(crate) fn nav(&self) -> Vec<NavSection> {
        let Some(role) = self.role else {
            return Vec::new();
        };
        let item = |href: &'static str, label: &'static str| NavItem {
            href,
            label: self.t(label),
            current: self.here == href
                || (href != "/" && self.here.starts_with(&format!("{href}/"))),
        };
        let mut sections = vec![NavSection {
            label: self.t("Mitarbeiterin/Mitarbeiter"),
            items: vec![
                item("/", "Start"),
                item("/devices", "Geräte"),
                item("/forwarding", "Weiterleitung"),
                item("/held", "Zurückgehaltene Nachrichten"),
                item("/logins", "Anmeldungen"),
            ],
        }];
        if role == Role::Admin {
            sections.push(NavSection {
                label: self.t("Administration"),
                items: vec![
                    item("/approvals", "Freigaben"),
                    item("/admin/exemptions", "Ausnahmen"),
                    item("/admin/users", "Benutzer"),
                    item("/admin/queue", "Warteschlange"),
                    item("/admin/messages", "Nachrichten"),
                ],
            });
        }
        if role == Role::Dpo {
            sections.push(NavSection {
                label: self.t("Datenschutz"),
                items: vec![
                    item("/approvals", "Freigaben"),
                    item("/dpo/audit", "Protokoll"),
                    item("/dpo/register", "Verzeichnis"),
                    item("/dpo/figures", "Kennzahlen"),
                ],
            });
        }
        sections
    }
}

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
    pub(crate) c: Chrome,
    pub(crate) error: Option<&'static str>,
    pub(crate) csrf: &'a str,
    pub(crate) next: &'a str,
    pub(crate) login: &'a str,
}

#[derive(Template)]
#[template(path = "home.html")]
pub(crate) struct Home<'a> {
    pub(crate) c: Chrome,
    pub(crate) login: &'a str,
}

/// The viewer (`/m/{token}`).
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message<'a> {
    pub(crate) c: Chrome,
    /// The link's token (for the download links).
    pub(crate) token: &'a str,
    /// The message.
    pub(crate) shown: &'a Shown,
    /// The verdict's categories, for the banner (empty: no banner).
    pub(crate) categories: Vec<crate::categories::Category>,
    /// Why the original and attachments cannot be downloaded (`None`: they can).
    pub(crate) downloads_refused: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "status.html")]
struct Status<'a> {
    c: Chrome,
    title: &'a str,
    text: &'a str,
}

/// A page that only says something, with `status` (German: for pages outside a request's
/// language, such as the error pages).
pub(crate) fn status(status: StatusCode, title: &str, text: &str) -> Response {
    status_in(Lang::German, status, title, text)
}

/// A page that only says something, with `status`, its layout in `lang` (`title` and `text`
/// are already in it).
pub(crate) fn status_in(lang: Lang, status: StatusCode, title: &str, text: &str) -> Response {
    render(
        status,
        &Status {
            c: Chrome::anonymous(lang),
            title,
            text,
        },
    )
}

/// The page for a storage failure (nothing is shown that could not be audited).
pub(crate) fn unavailable() -> Response {
    status(
        StatusCode::SERVICE_UNAVAILABLE,
        "Vorübergehend nicht verfügbar",
        "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut.",
    )
}

/// The page for a store failure `err` while reading or changing something (logged here,
/// never shown: the text may hold SQL).
pub(crate) fn store_failed(err: &store::Error) -> Response {
    tracing::error!(error = %err, "web: store failed");
    unavailable()
}
