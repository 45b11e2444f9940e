//! What the web UI asks of the running server beyond the store.
//!
//! Some state changes need more than a store call: requesting an exemption composes,
//! classifies, DKIM-signs and queues the confirmation mail, in the same way the CLI does.
//! That code lives in the relay, which depends on this crate; the relay hands it in as an
//! [`Actions`] object, so a click and a command take the same path.

/// The server's side of the web UI's state changes.
pub trait Actions: Send + Sync + 'static {}
