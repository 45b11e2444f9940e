//! All SQL of ratspost: schema, migrations and typed queries, on SQLite and PostgreSQL.
//!
//! Layout:
//! - [`Store`] opens either database from a URL, runs the embedded migrations and hides which
//!   one is in use behind one API (`db.rs`).
//! - `users.rs`: staff accounts, their roles and enrolled addresses; [`password`] hashes with
//!   argon2id.
//! - `messages.rs`: accepted messages with their envelope, one row per recipient and the
//!   processing state a restart resumes.
//! - [`audit`]: the hash-chained, append-only audit log and its verification.
//! - `exemptions.rs`: forwarding exemptions, their state machine, and the outbound queue
//!   rows a transition creates.
//! - `mailbox.rs`: IMAP mailboxes, entries with flags and mod-sequences, and what an entry
//!   serves (never the original of a sensitive message).
//! - `apppass.rs`: per-device app passwords.
//! - `logins.rs`: failed-login counters shared by web and IMAP, login history, own sessions.
//! - `register.rs`: the data-protection officer's register of exemptions (forwards counted
//!   per exemption); `audit/search.rs`: the audit trail filtered and counted.
//! - `processing.rs`: the pipeline's end of a message — verdict, notices, forward jobs,
//!   audit entries and inbox entries — committed for many messages in one transaction.
//! - `submission.rs`: messages users submit from their devices, queued for the city's
//!   mail server with their audit entry.
//! - `web.rs`: web UI sessions and the audited opening of notice links.
//! - `retention.rs`: storage limitation — the bytes of old messages purged once their links
//!   expired and no forward is pending; mailbox entries expunged as EXPUNGE does.
//! - `writer.rs`: group commit. Every message is committed before SMTP says `250`; to make
//!   that cheap, concurrent inserts share one transaction (one fsync) instead of one each.
//!
//! Key decision: no compile-time checked `query!` macros — they bind to a single database
//! (sqlx issue #1458). Queries are runtime `query_as` with `$N` placeholders that both
//! backends accept, and one contract test suite runs against both.

mod apppass;
pub mod audit;
mod db;
mod error;
mod exemptions;
mod logins;
mod mailbox;
mod messages;
pub mod password;
mod processing;
mod queue;
mod register;
mod retention;
mod shared_keys;
mod submission;
pub mod token;
mod users;
mod web;
mod writer;

#[cfg(feature = "testing")]
pub mod testing;

pub use apppass::{APP_PASSWORD_LENGTH, AppPassword, DeviceChange};
pub use audit::{
    Anchor, AuditCheck, AuditCounts, AuditEntry, AuditFilter, ChainStart, ChainVerifier, CutPolicy,
    NewAuditEntry,
};
pub use db::{Backend, Page, Store, StoreOptions, fold_sqlite_wal, redact_url, sqlite_path};
pub use error::{Error, ErrorKind, Result};
pub use exemptions::{
    Confirmation, Exemption, ExemptionPolicy, ExemptionRequest, ExemptionState, Missing, QueuedMail,
};
pub use logins::{Admission, FAILURE_WINDOW, LoginLimits, LoginRecord, LoginVia, SessionInfo};
pub use mailbox::{Entry, FlagOp, FlagUpdate, Mailbox, SPECIAL_USE};
pub use messages::{
    MessageEnvelope, MessageFilter, MessageState, MessageSummary, NewMessage, StoredRecipient,
    VerdictKind, VerdictRecord,
};
pub use processing::{Completion, ForwardDecision, MailboxNotice, PendingMessage};
pub use queue::{JobOutcome, LeasedJob, OutboundJob};
pub use register::ForwardCounts;
pub use retention::{PURGE_BATCH_MAX, PURGED_ACTION, PurgeReport};
pub use shared_keys::KeyMismatch;
pub use submission::{SUBMISSION_KIND, Submission};
pub use users::{NewUser, RecipientLookup, Role, User, is_mail_address, is_mail_domain};
pub use web::{
    HELD_PAGE_MAX, HeldNotice, NoticeAccess, NoticeView, PURGED_REASON, VerdictGate, WebSession,
};

/// Milliseconds since the Unix epoch: the one time representation in both schemas.
pub type Millis = i64;

/// The current time in [`Millis`].
#[must_use]
pub fn now_millis() -> Millis {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Whether `text` holds a control character other than a line break or tab (Unicode Cc),
/// or a bidirectional formatting character (the Cf marks and overrides U+200E/F,
/// U+202A–U+202E, U+2066–U+2069, U+061C): such a character in a label or reason would
/// reorder what the audit trail and the approvers' pages show (a "Trojan Source" style
/// spoof), so free text that people decide on refuses it.
#[must_use]
pub fn has_hidden_formatting(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}
