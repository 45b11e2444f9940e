//! The pages every logged-in user has for their own account: devices and app passwords,
//! logins and sessions, forwarding, held messages.

mod devices;
mod forwarding;
mod held;
mod logins;

use std::sync::Arc;

use axum::Router;

use crate::Web;

/// The routes of the staff pages.
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .merge(devices::routes())
        .merge(logins::routes())
        .merge(forwarding::routes())
        .merge(held::routes())
}
