//! The ratspost web UI: staff set up their devices and request forwarding, admins approve
//! exemptions and manage users, the data-protection officer reads the audit trail; and the
//! notice-link viewer. Server-rendered, no scripts (the CSP forbids them).
//!
//! Layout:
//! - `session.rs`: the session cookie, the logged-in user as an extractor (with the role
//!   check and the form check every handler uses), CSRF checks.
//! - `staff/`, `admin/`, `dpo/`: the pages of each role, a file per page family.
//! - [`i18n`]: German texts and their English (`web.language`).
//! - [`Site`]: where devices find the server; [`Actions`]: what the running server does for
//!   the pages beyond the store (composing, classifying, signing and queueing mail).
//! - `login.rs`: login and logout.
//! - `mailsetup.rs`: the .mobileconfig and autoconfig files; `autoconfig.rs` serves the
//!   latter without login.
//! - `viewer.rs`: `/m/{token}` — the original of a message a notice points to, for its
//!   mailbox owner only, every view audited by the store in the same transaction.
//! - `message.rs`: a message taken apart for display (headers, body, attachments);
//!   `sanitize.rs`: its HTML made safe (ammonia; remote images blocked and counted);
//!   `downloads.rs`: the download policy (`web.downloads`); `categories.rs`: verdict
//!   categories by name.
//! - [`export`]: the audit trail as JSON Lines and CSV (the DPO's download and the CLI).
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

mod actions;
mod admin;
mod autoconfig;
mod categories;
pub mod datetime;
mod downloads;
mod dpo;
mod errors;
mod exemption_pages;
pub mod export;
pub mod i18n;
mod login;
mod mailsetup;
mod message;
mod pages;
mod paging;
mod sanitize;
mod session;
mod site;
mod staff;
pub mod standing;
mod viewer;

pub use actions::{Acting, ActionError, Actions};
pub use downloads::Downloads;
pub use site::Site;

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
    /// How failed logins are answered: the first delay (doubling), and the ban of an address
    /// — counted in the store together with IMAP's failures.
    pub login_limits: store::LoginLimits,
    /// Rows of login history kept per user.
    pub login_history: u32,
    /// Dates on the pages are local time of this zone.
    pub time_zone: datetime::Zone,
    /// The pages' language (`web.language`).
    pub language: i18n::Lang,
    /// Where devices find the server (setup instructions, .mobileconfig, autoconfig).
    pub site: Site,
    /// The exemption policy (`[exemptions]`), for the forms and the four-eyes explanations.
    pub exemption_policy: store::ExemptionPolicy,
    /// What the running server does beyond the store (mail it composes, signs and queues).
    pub actions: Arc<dyn Actions>,
    /// What the viewer lets people download (`web.downloads`).
    pub downloads: Downloads,
}

/// The client's address, added to every request by [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The routes.
pub fn router(web: Web) -> Router {
    let lang = web.language;
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/m/{token}", get(viewer::message))
        .route("/m/{token}/original", get(viewer::original))
        .route("/m/{token}/attachments/{index}", get(viewer::attachment))
        .merge(autoconfig::routes())
        .merge(staff::routes())
        .merge(admin::routes())
        .merge(dpo::routes())
        .layer(axum::middleware::from_fn(errors::catch_panics))
        .layer(axum::middleware::map_response(move |r| {
            errors::html_errors(lang, r)
        }))
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

/// Runs `f` when dropped (the connection's task ends, however it ends).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Limits of one HTTPS connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Limits of the HTTPS listener (`[web]` in the configuration). Without them, a thousand slow
/// connections held every file descriptor of the process and starved SMTP and IMAP.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections in total; beyond it a new connection is closed at once.
    pub max_connections: usize,
    /// Open connections per client IP address.
    pub max_connections_per_ip: usize,
    /// How long a request may take to arrive, headers and body, and how long a kept-alive
    /// connection may wait for the next one.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_connections_per_ip: 32,
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// Largest request body read (the UI's forms are a few hundred bytes), in bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the request body within the request timeout and size limit before any handler
/// sees it: a client that sends a body slowly (or endlessly) is cut off, never waited for.
async fn bounded_body(
    axum::Extension(timeout): axum::Extension<RequestTimeout>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes =
        match tokio::time::timeout(timeout.0, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return axum::response::IntoResponse::into_response(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                );
            }
            Err(_) => {
                return axum::response::IntoResponse::into_response(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                );
            }
        };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// The request timeout, handed to [`bounded_body`].
#[derive(Clone, Copy)]
struct RequestTimeout(Duration);

/// Open connections per client address.
#[derive(Default)]
struct PerIp(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

impl PerIp {
    /// Counts a connection from `ip` if it is within `max`; `false` when it is not.
    fn enter(&self, ip: std::net::IpAddr, max: usize) -> bool {
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_default();
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&self, ip: std::net::IpAddr) {
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// Serves `router` over TLS on `listener` until `stop` is cancelled; connections in
/// progress finish their current request. Connections beyond `limits` are closed at once.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let total = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let router = router
        .layer(axum::middleware::from_fn(bounded_body))
        .layer(axum::Extension(RequestTimeout(limits.request_timeout)));
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
        let Ok(permit) = Arc::clone(&total).try_acquire_owned() else {
            tracing::debug!(%peer, "web: connection limit reached");
            continue;
        };
        if !per_ip.enter(peer.ip(), limits.max_connections_per_ip) {
            tracing::debug!(%peer, "web: connection limit per address reached");
            continue;
        }
        let (acceptor, router, stop) = (acceptor.clone(), router.clone(), stop.clone());
        let (per_ip, request_timeout) = (Arc::clone(&per_ip), limits.request_timeout);
        tokio::spawn(async move {
            let _permit = permit;
            let _leave = scopeguard(move || per_ip.leave(peer.ip()));
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
                .header_read_timeout(HEADER_TIMEOUT.min(request_timeout))
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
