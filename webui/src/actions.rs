//! What the web UI asks of the running server beyond the store.
//!
//! Some state changes need more than a store call: requesting an exemption composes,
//! classifies, DKIM-signs and queues the confirmation mail, in the same way the CLI does;
//! confirming, approving, denying and revoking tell the people concerned by mail. That code
//! lives in the relay (`relay/src/exemptions.rs`), which depends on this crate; the relay
//! hands it in as an [`Actions`] object, so a click and a command take the same path.

use std::future::Future;
use std::pin::Pin;

use store::{Confirmation, Exemption, ExemptionRequest};

/// A running action: boxed, so that [`Actions`] stays object-safe.
pub type Acting<'a, T> = Pin<Box<dyn Future<Output = Result<T, ActionError>> + Send + 'a>>;

/// Why an action did not happen.
#[derive(Debug)]
pub enum ActionError {
    /// The store refused it (its kind says why: forbidden, invalid, conflict, not found) or
    /// failed.
    Store(store::Error),
    /// The confirmation mail would carry data the classifier flags: nothing was requested
    /// (audited as `notice.withheld`).
    Withheld,
}

impl From<store::Error> for ActionError {
    fn from(err: store::Error) -> Self {
        Self::Store(err)
    }
}

/// The server's side of the web UI's state changes. Every method takes the acting user's
/// login (`by`); the store checks roles and the four-eyes rules as for the CLI.
pub trait Actions: Send + Sync + 'static {
    /// Requests an exemption and queues the confirmation mail with its code and link.
    fn request_exemption(&self, request: ExemptionRequest) -> Acting<'_, Exemption>;
    /// Checks the confirmation code of exemption `id` (attempt limits as in the store); tells
    /// the approvers when the request now waits for them.
    fn confirm_exemption(&self, id: i64, code: String) -> Acting<'_, Confirmation>;
    /// Approves exemption `id` as `by`; tells the user.
    fn approve_exemption(&self, id: i64, by: String) -> Acting<'_, Exemption>;
    /// Denies exemption `id` as `by` for `reason`; tells the user.
    fn deny_exemption(&self, id: i64, by: String, reason: String) -> Acting<'_, Exemption>;
    /// Revokes exemption `id` as `by`; tells the user when someone else revoked it.
    fn revoke_exemption(&self, id: i64, by: String) -> Acting<'_, Exemption>;
    /// The signed audit checkpoints of this installation (its checkpoint file, signed by its
    /// key), for the chain check on the DPO's page. Reads files: call it off the async
    /// workers. None by default.
    fn audit_anchors(&self) -> Vec<store::Anchor> {
        Vec::new()
    }
}
