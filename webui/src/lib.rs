//! The ratspost web UI: login and the notice-link viewer (more pages for admins, staff and
//! the data-protection officer follow with their issues).
//!
//! Layout:
//! - `session.rs`: the session cookie, the logged-in user as an extractor, CSRF checks.
//! - `login.rs`: login and logout.
//! - `viewer.rs`: `/m/{token}` — the original of a message a notice points to, for its
//!   mailbox owner only, every view audited by the store in the same transaction.
//! - `message.rs`: a message taken apart for display (headers, text, attachments).
//! - `pages.rs`: the askama templates (HTML escaped by default).
//! - `errors.rs`: every other error (unknown path, wrong method, rejected form, panic) as
//!   a German page in the site layout with a way back.
//! - [`datetime`]: dates as people read them (local time, German) and as machines read them;
//!   the relay takes its dates from here too, so there is one way to write a date.
//!
//! Served over HTTPS only ([`serve`]); every response carries headers that keep it out of
//! caches and frames, forbid scripts, and send referrers to this origin only
//! (`Referrer-Policy: same-origin`: the link token is in the URL, and our own form POSTs
//! need a real `Origin` for the CSRF check — see `session.rs` for why not `no-referrer`).

pub mod datetime;
mod errors;
mod login;
mod message;
mod pages;
mod session;
mod viewer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use store::Store;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// What the handlers share.
#[derive(Clone)]
pub struct Web {
    /// The store.
    pub store: Store,
    /// How long a login lasts.
    pub session_ttl: Duration,
    /// Pause after a failed login, so guessing is slow.
    pub login_failure_delay: Duration,
    /// Dates on the pages are local time of this zone.
    pub time_zone: datetime::Zone,
}

/// The client's address, added to every request by [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The routes.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/m/{token}", get(viewer::message))
        .route("/m/{token}/original", get(viewer::original))
        .route("/m/{token}/attachments/{index}", get(viewer::attachment))
        .layer(axum::middleware::from_fn(errors::catch_panics))
        .layer(axum::middleware::map_response(errors::html_errors))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(Arc::new(web))
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CACHE_CONTROL, "no-store");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    // Not `no-referrer`: under it Chromium posts our own forms with `Origin: null`.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    response
}

/// Limits of one HTTPS connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Serves `router` over TLS on `listener` until `stop` is cancelled; connections in
/// progress finish their current request.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    stop: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    loop {
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    tracing::warn!(error = %err, "web: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, router, stop) = (acceptor.clone(), router.clone(), stop.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "web: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(router.layer(axum::Extension(ClientAddr(peer))));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, error = %err, "web: connection ended");
                    }
                }
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
