//! SMTP intake (RFC 5321 ESMTP with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
//! ENHANCEDSTATUSCODES, STARTTLS and CHUNKING).
//!
//! - [`codec`]: bytes ↔ commands, message bodies and replies; no I/O, fuzzable.
//! - [`reply`]: the reply type every refusal carries.
//! - [`session`]: the state machine of one connection, generic over the stream so tests can
//!   drive it in memory, and upgraded in place by STARTTLS.
//! - [`envelope`]: MAIL and RCPT checks; [`data`]: turning a received body into a commit.
//! - [`listener`]: accepting connections with upstream allow-list and connection limits.

pub mod codec;
mod data;
mod envelope;
pub mod listener;
pub mod reply;
pub mod session;

pub use data::message_id;
