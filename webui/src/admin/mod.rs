//! The pages of admins (role `admin`): approvals, exemptions, users, queue, messages.

mod approvals;
mod exemptions;

use std::sync::Arc;

use axum::Router;

use crate::Web;

/// The routes of the admin pages.
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .merge(approvals::routes())
        .merge(exemptions::routes())
}
