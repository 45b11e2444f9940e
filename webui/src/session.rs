//! Sessions: a random cookie whose hash the store keeps, with a per-session CSRF token.
//!
//! The cookies use the `__Host-` prefix (the browser only accepts them over HTTPS, for this
//! host, path `/`), are `HttpOnly`, and `SameSite=Lax`: the notice link is opened from a mail
//! program, a cross-site top-level navigation, and `Strict` would demand a new login every
//! time. State-changing requests are POSTs that must carry the CSRF token and, when the
//! browser sends one, an `Origin` of this host.
//!
//! # Why `Referrer-Policy: same-origin`, and why `Origin: null` is refused
//!
//! Browsers derive the `Origin` of a form POST from the page's referrer policy (Fetch,
//! "append a request `Origin` header"): under `no-referrer` Chromium sends `Origin: null`
//! even for our own forms, so nobody could log in or out. Two ways out were weighed:
//!
//! - Accept `Origin: null` when the token matches. But `null` is also what sandboxed
//!   frames, `data:` documents and cross-site redirects send: the Origin check would then
//!   stop nothing, and the token would be the only defence.
//! - Send `Referrer-Policy: same-origin` on every page (chosen). Same-origin POSTs then
//!   carry our real origin; any cross-origin request gets no referrer at all. The only
//!   place a secret sits in a URL is the link token in `/m/{token}` (and the login page's
//!   `next=/m/{token}`): under `same-origin` it only ever goes to this origin, which issued
//!   it. The viewer shows message text escaped, loads nothing (CSP `default-src 'none'`)
//!   and links only to its own downloads, so there is no cross-origin request it could
//!   leak into either way.
//!
//! So [`form_allowed`] keeps refusing `Origin: null` and every foreign origin, and still
//! demands the token: both checks must pass. A request without any `Origin` (older browsers
//! and non-browser clients) rests on the token alone.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use store::{Role, WebSession};

use crate::i18n::Lang;
use crate::{ClientAddr, Web, pages};

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "__Host-ratspost";
/// The cookie that carries the CSRF token of the login form (there is no session yet).
pub(crate) const LOGIN_COOKIE: &str = "__Host-ratspost-login";

/// The value of cookie `name`, if sent.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for `name`; `None` clears it.
pub(crate) fn set_cookie(name: &str, value: Option<&str>, max_age_secs: u64) -> String {
    match value {
        Some(v) => {
            format!("{name}={v}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}")
        }
        None => format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
    }
}

/// The client address as text (for the audit and the log).
pub(crate) fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|a| a.0.ip().to_string())
        .unwrap_or_default()
}

/// Whether a form POST may be acted on: the CSRF token matches and the `Origin`, if any, is
/// this host (`Origin: null` is refused: see the module docs).
pub(crate) fn form_allowed(headers: &HeaderMap, expected_csrf: &str, sent_csrf: &str) -> bool {
    let origin_ok = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("https://"))
            .is_some_and(|o| Some(o) == host.to_str().ok()),
        (Some(_), None) => false,
    };
    origin_ok
        && !expected_csrf.is_empty()
        && store::token::eq(expected_csrf.as_bytes(), sent_csrf.as_bytes())
}

/// The logged-in user. Handlers that take it are for logged-in users only: without a valid
/// session the browser is sent to the login page, and comes back afterwards.
pub(crate) struct LoggedIn {
    /// The session.
    pub(crate) session: WebSession,
    /// The client address.
    pub(crate) ip: String,
    /// The pages' language.
    pub(crate) lang: Lang,
    /// The request path (for the navigation).
    pub(crate) path: String,
}

// Used by the role pages (staff/, admin/, dpo/) as they are added.
#[allow(dead_code)]
impl LoggedIn {
    /// The page layout for this user.
    pub(crate) fn chrome(&self) -> pages::Chrome {
        pages::Chrome {
            lang: self.lang,
            name: self.session.name.clone(),
            role: Some(self.session.role),
            csrf: self.session.csrf.clone(),
            here: self.path.clone(),
        }
    }

    /// `Ok` when the user has one of `roles`, else the 403 page (the attempt is logged).
    // The error is the page the handler answers with (`?`), once per request: boxing it
    // would buy nothing.
    #[allow(clippy::result_large_err)]
    pub(crate) fn require(&self, roles: &[Role]) -> Result<(), Response> {
        if roles.contains(&self.session.role) {
            return Ok(());
        }
        tracing::warn!(login = %self.session.login, path = %self.path, "web: page refused to this role");
        Err(pages::status_in(
            self.lang,
            axum::http::StatusCode::FORBIDDEN,
            self.lang.t("Keine Berechtigung"),
            self.lang.t("Diese Seite ist Ihrer Rolle nicht zugänglich."),
        ))
    }

    /// `Ok` when a form POST of this session may be acted on ([`form_allowed`]), else the
    /// 400 page: nothing was changed.
    // The error is the page the handler answers with (`?`), once per request: boxing it
    // would buy nothing.
    #[allow(clippy::result_large_err)]
    pub(crate) fn check_form(&self, headers: &HeaderMap, sent_csrf: &str) -> Result<(), Response> {
        if form_allowed(headers, &self.session.csrf, sent_csrf) {
            return Ok(());
        }
        Err(pages::status_in(
            self.lang,
            axum::http::StatusCode::BAD_REQUEST,
            self.lang.t("Formular ungültig"),
            self.lang
                .t("Das Formular war ungültig oder abgelaufen. Bitte laden Sie die Seite neu."),
        ))
    }
}

impl FromRequestParts<Arc<Web>> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, Response> {
        let ip = client_ip(parts);
        let token = cookie(&parts.headers, SESSION_COOKIE).unwrap_or_default();
        let session = if token.is_empty() {
            None
        } else {
            web.store
                .web_session(&store::token::hash(token), store::now_millis())
                .await
                .map_err(|err| {
                    tracing::error!(error = %err, "web: cannot read sessions");
                    pages::unavailable()
                })?
        };
        match session {
            Some(session) => Ok(Self {
                session,
                ip,
                lang: web.language,
                path: parts.uri.path().to_owned(),
            }),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                Err(
                    Redirect::to(&format!("/login?next={}", encode_component(&next)))
                        .into_response(),
                )
            }
        }
    }
}

/// Percent-encodes `s` for a query value.
pub(crate) fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `next` as a path on this site, else `/` (no open redirect to other hosts).
///
/// Browsers clean a `Location` before they resolve it (WHATWG URL: tabs and line breaks
/// removed anywhere, leading and trailing control characters and spaces trimmed, `\` read as
/// `/`), so `/\t/evil.example` becomes `//evil.example`: another host. The `url` crate
/// implements the same standard: `next` is resolved against a placeholder origin exactly as a
/// browser would, and only a result on that origin is kept — as the parser serialised it, so
/// what the browser follows is what was checked.
pub(crate) fn local_path(next: &str) -> String {
    const ORIGIN: &str = "https://ratspost.invalid/";
    let base = url::Url::parse(ORIGIN).expect("placeholder origin parses");
    // Only paths: a scheme or host in `next` ("https://…", "//…") is never followed.
    let relative = next.trim_start_matches(|c: char| c <= ' ');
    match base.join(next) {
        Ok(url)
            if relative.starts_with(['/', '\\'])
                && url.origin() == base.origin()
                && url.username().is_empty()
                && url.password().is_none()
                // "/.//x" resolves here to the path "//x", which a browser given it as a
                // Location reads as another host: such a path is never handed back.
                && !url.path().starts_with("//") =>
        {
            let mut path = url.path().to_owned();
            if let Some(query) = url.query() {
                path.push('?');
                path.push_str(query);
            }
            path
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; __Host-ratspost=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
    }

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(local_path("/m/abc"), "/m/abc");
        assert_eq!(local_path("/m/abc?x=1"), "/m/abc?x=1");
        for evil in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/\r\n/evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "m/abc",
            "",
            "/.\\\\",
            "/./\\evil.example",
            "/.//evil.example/x",
        ] {
            let kept = local_path(evil);
            assert!(
                kept == "/" || !kept.starts_with("//"),
                "{evil:?} became {kept:?}"
            );
            assert_eq!(kept, "/", "{evil:?}");
        }
    }

    proptest::proptest! {
        /// Whatever `next` holds, the redirect a browser follows stays on this origin: the
        /// kept value, resolved as a browser resolves a `Location`, has our origin.
        #[test]
        fn no_next_leaves_the_origin(next in "[/\\\\\t\r\n :a-z.@%?#]{0,24}") {
            let kept = local_path(&next);
            let base = url::Url::parse("https://ratspost.invalid/").unwrap();
            let followed = base.join(&kept).unwrap();
            proptest::prop_assert_eq!(followed.origin(), base.origin(), "{:?} -> {:?}", next, kept);
            proptest::prop_assert!(kept.starts_with('/') && !kept.starts_with("//"));
        }
    }

    #[test]
    fn forms_need_the_token_and_a_matching_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "ratspost.stadt.de".parse().unwrap());
        assert!(form_allowed(&h, "t0k3n", "t0k3n"));
        assert!(!form_allowed(&h, "t0k3n", "t0k3m"));
        assert!(!form_allowed(&h, "", ""));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!form_allowed(&h, "t0k3n", "t0k3n"));
        // What a sandboxed frame or a `data:` page sends: refused even with the token.
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!form_allowed(&h, "t0k3n", "t0k3n"));
        h.insert(header::ORIGIN, "http://ratspost.stadt.de".parse().unwrap());
        assert!(!form_allowed(&h, "t0k3n", "t0k3n"));
        h.insert(header::ORIGIN, "https://ratspost.stadt.de".parse().unwrap());
        assert!(form_allowed(&h, "t0k3n", "t0k3n"));
    }
}
