//! Mail submission (RFC 6409, RFC 8314): staff send from their own phones and laptops.
//!
//! The SMTP state machine is intake's, in [`crate::smtp::session::Role::Submission`]; what
//! differs lives here and in `smtp/session/{auth,submit}.rs`:
//! - [`sasl`]: AUTH PLAIN (RFC 4616) and LOGIN responses, without I/O.
//! - [`identity`]: the envelope sender and every `From:`, `Sender:`, `Resent-From:` and
//!   `Resent-Sender:` address must be the user's own.
//! - [`trace`]: the `Received:` line (without the device's address) and a missing `Date:`
//!   or `Message-ID:` (RFC 6409 §8).
//!
//! Key decisions: AUTH only in TLS and only with an app password (a device's, revocable;
//! failures count with IMAP's); a message is classified, queued and audited in one
//! transaction before `250`, and leaves only through the city's server
//! (`submission.relay`), never to MX hosts, so the city's signing, archiving and outbound
//! policies apply to it. The client stores its own copy in Sent over IMAP.

pub mod identity;
pub mod sasl;
pub mod trace;

use std::sync::Arc;

use classifier::Rules;
use tokio::sync::{Notify, Semaphore};

use crate::imap::gate::Gate;
use crate::ocr::Tesseract;

/// What submission sessions share besides the SMTP context.
pub struct Submitter {
    /// The classifier rules (the same as intake's).
    pub rules: Arc<Rules>,
    /// Reads scans; `None`: OCR off or not installed.
    pub ocr: Option<Arc<Tesseract>>,
    /// Hashing slots for the login check (submission takes app passwords, which need none;
    /// the check's signature is shared with IMAP).
    pub hashes: Gate,
    /// Classifications running at once (`classifier.workers`), all sessions together.
    pub classifying: Arc<Semaphore>,
    /// Wakes the delivery worker after a commit.
    pub queued: Arc<Notify>,
}

/// The mailbox address notes about a submitted message go to: the user's enrolled address the
/// message was sent from (`mail_from`, in any case), else their first, else `mail_from`.
#[must_use]
pub fn sender_address(user: &store::User, mail_from: &str) -> String {
    user.addresses
        .iter()
        .find(|a| a.eq_ignore_ascii_case(mail_from))
        .or(user.addresses.first())
        .cloned()
        .unwrap_or_else(|| mail_from.to_owned())
}
