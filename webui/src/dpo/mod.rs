//! The pages of the data-protection officer (role `dpo`): audit trail, register of
//! exemptions, figures.

pub(crate) mod audit;
mod figures;
mod register;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::Web;

/// The routes of the dpo pages.
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/dpo/audit", get(audit::list))
        .route("/dpo/audit/verify", get(audit::verify))
        .route("/dpo/audit/export/{format}", get(audit::export))
        .route("/dpo/register", get(register::list))
        .route("/dpo/figures", get(figures::show))
}
