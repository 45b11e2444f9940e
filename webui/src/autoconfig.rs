//! Thunderbird's autoconfig (`/.well-known/autoconfig/mail/config-v1.1.xml` and
//! `/mail/config-v1.1.xml?emailaddress=…`), served without login: it holds no secret, only
//! the server names and ports. Thunderbird asks before the user has an account here.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::{Web, mailsetup};

/// Longest `emailaddress` accepted (RFC 5321 paths are at most 256 octets).
const MAX_ADDRESS: usize = 254;

#[derive(Deserialize)]
pub(crate) struct Asked {
    #[serde(default)]
    emailaddress: Option<String>,
}

/// The routes (no login).
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/.well-known/autoconfig/mail/config-v1.1.xml", get(config))
        .route("/mail/config-v1.1.xml", get(config))
}

/// The domain the file is for: the address's, else the host asked (without the
/// `autoconfig.` Thunderbird puts in front), else the first mail domain. `Err` with the
/// status for a malformed address (400) or a domain ratspost does not serve (404).
fn domain_for(web: &Web, asked: &Asked, headers: &HeaderMap) -> Result<String, StatusCode> {
    let served = |d: &str| web.site.domains.iter().any(|s| s.eq_ignore_ascii_case(d));
    if let Some(address) = asked.emailaddress.as_deref() {
        let address = address.trim();
        if address.len() > MAX_ADDRESS || address.chars().any(char::is_control) {
            return Err(StatusCode::BAD_REQUEST);
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(StatusCode::BAD_REQUEST);
        };
        if local.is_empty() || domain.is_empty() {
            return Err(StatusCode::BAD_REQUEST);
        }
        let domain = domain.to_ascii_lowercase();
        return if served(&domain) {
            Ok(domain)
        } else {
            Err(StatusCode::NOT_FOUND)
        };
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
        .map(|h| h.trim_start_matches("autoconfig.").to_ascii_lowercase());
    match host {
        Some(h) if served(&h) => Ok(h),
        _ => web
            .site
            .domains
            .first()
            .cloned()
            .ok_or(StatusCode::NOT_FOUND),
    }
}

/// `GET` either path: the clientConfig XML, 404 for a domain not served, 400 for a
/// malformed address.
async fn config(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    asked: Result<Query<Asked>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(asked)) = asked else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match domain_for(&web, &asked, &headers) {
        Ok(domain) => (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            mailsetup::autoconfig(&web.site, &domain),
        )
            .into_response(),
        Err(status) => status.into_response(),
    }
}
