//! The pages of admins (role `admin`): approvals, exemptions, users, queue, messages.

mod approvals;
mod exemptions;
mod messages;
mod queue;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::Web;

/// The routes of the admin pages.
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .merge(approvals::routes())
        .merge(exemptions::routes())
        .route("/admin/users", get(users::list).post(users::add))
        .route("/admin/users/{login}", get(users::show))
        .route("/admin/users/{login}/disable", post(users::disable))
        .route("/admin/users/{login}/enable", post(users::enable))
        .route("/admin/users/{login}/password", post(users::reset_password))
        .route(
            "/admin/users/{login}/devices/revoke",
            post(users::revoke_device),
        )
        .route("/admin/queue", get(queue::list))
        .route("/admin/queue/{id}/retry", post(queue::retry))
        .route("/admin/queue/{id}/drop", post(queue::drop_job))
        .route("/admin/queue/{id}/release", post(queue::release))
        .route("/admin/messages", get(messages::list))
}
