//! Error pages: every 4xx and 5xx answer is an HTML page in the site layout and language
//! (`web.language`), with a link back to the start page.
//!
//! Handlers that refuse something on purpose (a foreign link, a revoked one, a storage
//! failure) render their own page with [`pages::status`], saying exactly what happened.
//! Everything else that ends in an error — an unknown path, a method a route does not take,
//! a form or path the extractors reject, a page that could not be rendered, a handler that
//! panicked — arrives here as a bare status, and [`html_errors`] gives it the page for its
//! status. One layer instead of a fallback per case means no error can slip out as axum's
//! English plain text.

use std::panic::AssertUnwindSafe;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;

use crate::i18n::Lang;
use crate::pages;

/// Title and text of the page for `status`, in `lang`.
fn wording(lang: Lang, status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => (
            lang.t("Seite nicht gefunden"),
            lang.t("Diese Seite gibt es nicht. Bitte prüfen Sie die Adresse."),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            lang.t("Aufruf nicht möglich"),
            lang.t("Diese Seite kann so nicht aufgerufen werden. Bitte nutzen Sie die Links und Schaltflächen der Seiten."),
        ),
        StatusCode::FORBIDDEN => (
            lang.t("Kein Zugriff"),
            lang.t("Sie haben keinen Zugriff auf diese Seite."),
        ),
        StatusCode::GONE => (
            lang.t("Nicht mehr verfügbar"),
            lang.t("Diese Seite ist nicht mehr verfügbar."),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            lang.t("Anfrage zu groß"),
            lang.t("Die gesendeten Daten sind zu umfangreich."),
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            lang.t("Vorübergehend nicht verfügbar"),
            lang.t("Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut."),
        ),
        s if s.is_server_error() => (
            lang.t("Interner Fehler"),
            lang.t("Bei der Bearbeitung ist ein Fehler aufgetreten. Bitte versuchen Sie es später erneut."),
        ),
        // 400, 415, 422: what the form, query and path extractors reject.
        _ => (
            lang.t("Ungültige Anfrage"),
            lang.t("Die Anfrage oder das Formular war unvollständig oder fehlerhaft. Bitte laden Sie die Seite neu und versuchen Sie es erneut."),
        ),
    }
}

/// The last resort when even the error page cannot be rendered.
const PLAIN_FALLBACK: &str = "<!DOCTYPE html><html lang=\"de\"><head><meta charset=\"utf-8\">\
<title>Fehler – ratspost</title></head><body><h1>Fehler</h1>\
<p><a href=\"/\">Zur Startseite</a></p></body></html>";

/// Gives an error response that is not already an HTML page the page for its status;
/// everything else passes unchanged. Headers such as `Allow` and `Set-Cookie` are kept.
pub(crate) async fn html_errors(lang: Lang, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_html(&response) {
        return response;
    }
    let (title, text) = wording(lang, status);
    let page = pages::status_in(lang, status, title, text);
    let body = if is_html(&page) {
        page.into_body()
    } else {
        // The page itself failed to render (`pages::render` logged why).
        Body::from(PLAIN_FALLBACK)
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, body)
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Answers a handler's panic with a 500 (the page then comes from [`html_errors`]) instead
/// of dropping the connection without a word.
pub(crate) async fn catch_panics(request: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("web: a handler panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn bare_errors_become_german_pages_with_a_way_back() {
        for (status, title) in [
            (StatusCode::NOT_FOUND, "Seite nicht gefunden"),
            (StatusCode::METHOD_NOT_ALLOWED, "Aufruf nicht möglich"),
            (StatusCode::UNPROCESSABLE_ENTITY, "Ungültige Anfrage"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Ungültige Anfrage"),
            (StatusCode::INTERNAL_SERVER_ERROR, "Interner Fehler"),
        ] {
            let mut bare = (status, "Failed to deserialize form body").into_response();
            bare.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            let page = html_errors(Lang::German, bare).await;
            assert_eq!(page.status(), status);
            assert_eq!(
                page.headers().get(header::CONTENT_TYPE).unwrap(),
                "text/html; charset=utf-8"
            );
            assert_eq!(page.headers().get(header::ALLOW).unwrap(), "POST");
            let html = body_text(page).await;
            assert!(html.contains(title), "{status}: {html}");
            assert!(html.contains("href=\"/\""), "no way back: {html}");
            assert!(!html.contains("deserialize"), "axum's text leaked: {html}");
        }
    }

    #[tokio::test]
    async fn in_english_when_the_site_is() {
        let page = html_errors(Lang::English, StatusCode::NOT_FOUND.into_response()).await;
        let html = body_text(page).await;
        assert!(html.contains("<html lang=\"en\""), "{html}");
        assert!(html.contains("Page not found"), "{html}");
        assert!(!html.contains("Seite nicht gefunden"), "{html}");
    }

    #[tokio::test]
    async fn pages_and_successes_pass_unchanged() {
        let own = pages::status(StatusCode::GONE, "Link nicht verfügbar", "widerrufen");
        let html = body_text(html_errors(Lang::German, own).await).await;
        assert!(html.contains("widerrufen"));
        let download = (StatusCode::OK, "raw bytes").into_response();
        assert_eq!(
            body_text(html_errors(Lang::German, download).await).await,
            "raw bytes"
        );
        let redirect = axum::response::Redirect::to("/login").into_response();
        assert_eq!(
            html_errors(Lang::German, redirect).await.status(),
            StatusCode::SEE_OTHER
        );
    }
}
