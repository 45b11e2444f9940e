//! The IMAP server for staff devices.
//!
//! - `driver.rs`: imap-next's state machine over any async stream.
//! - `session.rs`: the IMAP state machine and its commands.
//! - `message.rs`: header/text/fields/partial of the bytes an entry serves.
//! - `mime.rs`: MIME structure for BODYSTRUCTURE, ENVELOPE and numbered sections.
//! - `utf7.rs`: modified UTF-7 mailbox names.
//! - `auth.rs`: app passwords and brute-force protection.
//! - `listener.rs`: implicit TLS and STARTTLS listeners with connection limits.

pub mod auth;
pub mod driver;
pub mod envelope;
pub mod listener;
pub mod message;
pub mod mime;
pub mod quirks;
pub mod session;
pub mod utf7;
