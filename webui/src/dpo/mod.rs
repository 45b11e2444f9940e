//! The pages of the data-protection officer (role `dpo`): audit trail, register of
//! exemptions, figures.

use std::sync::Arc;

use axum::Router;

use crate::Web;

/// The routes of the dpo pages.
pub(crate) fn routes() -> Router<Arc<Web>> {
    Router::new()
}
